//! `POST /webhooks/stack`: applies a verified Stack webhook and says what became of it.

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRef, State};
use serde::Serialize;
use time::OffsetDateTime;

use super::signed_webhook::{SignatureCheck, SignedWebhook};
use crate::delivery::{Message, Mirror};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::model::Outcome;
use crate::telemetry::loggable;

/// The answer body: `{"status": "applied" | "unchanged" | "stale" | "duplicate" | "ignored" |
/// "failed"}`.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub status: Outcome,
}

/// What the route needs: the signature check, the mirror to apply to, and the metrics of what it
/// answered.
#[derive(Clone)]
pub struct WebhookState {
    pub signature_check: SignatureCheck,
    pub mirror: Mirror,
}

impl FromRef<WebhookState> for SignatureCheck {
    fn from_ref(state: &WebhookState) -> Self {
        state.signature_check.clone()
    }
}

/// Applies one signed webhook.
pub async fn receive_webhook(
    State(state): State<WebhookState>,
    webhook: SignedWebhook,
) -> Result<Json<Receipt>, AppError> {
    let metrics: &Metrics = &state.signature_check.metrics;
    let processed = state.mirror.process(Message::live(&webhook)).await;
    metrics.duration(webhook.received.elapsed());
    let processed = match processed {
        Ok(processed) => processed,
        Err(unavailable) => {
            metrics.unavailable();
            return Err(unavailable.into());
        }
    };
    let lag = processed
        .source_time
        .and_then(|created| Duration::try_from(OffsetDateTime::now_utc() - created).ok());
    let event_type = processed.event_type.as_deref();
    metrics.delivery(event_type, processed.outcome, lag);
    tracing::info!(
        webhook.id = loggable(&webhook.id),
        webhook.r#type = loggable(event_type.unwrap_or("-")),
        webhook.outcome = processed.outcome.as_str(),
        duration_ms = webhook.received.elapsed().as_secs_f64() * 1000.0,
        "webhook {}",
        processed.outcome.as_str(),
    );
    Ok(Json(Receipt {
        status: processed.outcome,
    }))
}
