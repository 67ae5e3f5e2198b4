//! The HTTP side of signature checking: an axum middleware in front of the webhook route that
//! buffers the body (up to the limit), verifies it, and hands the handler the verified message.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::signature::Verifier;

/// What the middleware needs: the verifier with our secrets, the body size limit, and the
/// metrics it records refusals and durations in.
#[derive(Clone)]
pub struct SignatureCheck {
    pub verifier: Arc<Verifier>,
    pub max_body_bytes: usize,
    pub metrics: Metrics,
}

/// Rejects requests not signed by Svix with one of our secrets; on success the handler finds a
/// [`VerifiedWebhook`](crate::signature::VerifiedWebhook) in the request extensions.
pub async fn require_svix_signature(
    State(state): State<SignatureCheck>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let received = Instant::now();
    let answer = verify_then_handle(&state, request, next).await;
    if let Err(refused) = &answer {
        state.metrics.rejection(refused.code());
    }
    state.metrics.duration(received.elapsed());
    answer
}

async fn verify_then_handle(
    state: &SignatureCheck,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    // A declared length over the limit is refused at once, without waiting for a body.
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.max_body_bytes as u64) {
        return Err(AppError::PayloadTooLarge);
    }
    let bytes = read_limited(body, state.max_body_bytes).await?;
    let webhook = state
        .verifier
        .verify(&parts.headers, &bytes, SystemTime::now())?;
    tracing::Span::current().record("webhook.id", crate::telemetry::loggable(&webhook.id));
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(webhook);
    Ok(next.run(request).await)
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, AppError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(AppError::PayloadTooLarge)
        }
        Err(_) => Err(AppError::UnreadableBody),
    }
}
