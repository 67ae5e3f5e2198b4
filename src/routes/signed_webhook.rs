//! The extractor a webhook handler takes: a request whose body Svix signed with one of our
//! secrets, read up to the size limit. A handler that takes a [`SignedWebhook`] cannot run on an
//! unverified request, whatever route it is mounted on.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::signature::Verifier;

/// What checking a signature needs: the verifier with our secrets, the body size limit, and the
/// metrics refusals are counted in.
#[derive(Clone)]
pub struct SignatureCheck {
    pub verifier: Arc<Verifier>,
    pub max_body_bytes: usize,
    pub metrics: Metrics,
}

/// A verified delivery attempt of one Svix message.
#[derive(Debug)]
pub struct SignedWebhook {
    /// The Svix message id, the same on every retry of one message.
    pub id: String,
    /// When Svix signed this attempt (Unix seconds); new on every attempt.
    pub signed_at: i64,
    /// The body, byte for byte as signed.
    pub body: Bytes,
    /// When the request reached the service, for the duration metric.
    pub received: Instant,
}

impl<S> FromRequest<S> for SignedWebhook
where
    SignatureCheck: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    /// Verifies the request; a refusal is counted by its code, with how long it took.
    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let check = SignatureCheck::from_ref(state);
        let received = Instant::now();
        let verified = verify(&check, request, received).await;
        if let Err(refused) = &verified {
            check.metrics.rejection(refused.code());
            check.metrics.duration(received.elapsed());
        }
        verified
    }
}

async fn verify(
    check: &SignatureCheck,
    request: Request,
    received: Instant,
) -> Result<SignedWebhook, AppError> {
    let (parts, body) = request.into_parts();
    // A declared length over the limit is refused at once, without waiting for a body.
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > check.max_body_bytes as u64) {
        return Err(AppError::PayloadTooLarge);
    }
    let body = read_limited(body, check.max_body_bytes).await?;
    let verified = check
        .verifier
        .verify(&parts.headers, &body, SystemTime::now())?;
    tracing::Span::current().record("webhook.id", crate::telemetry::loggable(&verified.id));
    Ok(SignedWebhook {
        id: verified.id,
        signed_at: verified.timestamp,
        body,
        received,
    })
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
