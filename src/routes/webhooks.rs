//! `POST /webhooks/stack`: applies a verified Stack webhook and says what became of it.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use serde::Serialize;

use time::OffsetDateTime;

use crate::error::AppError;
use crate::event_time;
use crate::metrics::Metrics;
use crate::model::Outcome;
use crate::signature::VerifiedWebhook;
use crate::sync::{Message, Mirror};
use crate::telemetry::loggable;

/// The answer body: `{"status": "applied" | "unchanged" | "stale" | "duplicate" | "ignored" |
/// "failed"}`.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub status: Outcome,
}

/// What the handler needs: the mirror to apply to, and the metrics of what it answered.
#[derive(Clone)]
pub struct WebhookState {
    pub mirror: Mirror,
    pub metrics: Metrics,
    /// `webhook.tolerance`: how far Svix's clock may be from ours.
    pub tolerance: Duration,
}

/// Applies one webhook. Only reachable through the signature middleware.
pub async fn receive_webhook(
    State(state): State<WebhookState>,
    Extension(webhook): Extension<VerifiedWebhook>,
    body: Bytes,
) -> Result<Json<Receipt>, AppError> {
    let started = Instant::now();
    let message = Message {
        svix_id: &webhook.id,
        body: &body,
        replay: false,
        // Created before Svix signed it, give or take the clocks' distance.
        created_by: OffsetDateTime::from_unix_timestamp(webhook.timestamp)
            .unwrap_or(OffsetDateTime::now_utc())
            + state.tolerance,
    };
    let processed = match state.mirror.process(message).await {
        Ok(processed) => processed,
        Err(unavailable) => {
            state.metrics.unavailable();
            return Err(unavailable.into());
        }
    };
    let lag = event_time::source_time(&webhook.id)
        .and_then(|created| Duration::try_from(OffsetDateTime::now_utc() - created).ok());
    let event_type = processed.event_type.as_deref();
    state.metrics.delivery(event_type, processed.outcome, lag);
    tracing::info!(
        webhook.id = loggable(&webhook.id),
        webhook.r#type = loggable(event_type.unwrap_or("-")),
        webhook.outcome = processed.outcome.as_str(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "webhook {}",
        processed.outcome.as_str(),
    );
    Ok(Json(Receipt {
        status: processed.outcome,
    }))
}
