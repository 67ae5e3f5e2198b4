//! `POST /webhooks/stack`: applies a verified Stack webhook and says what became of it.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use serde::Serialize;

use crate::error::AppError;
use crate::model::Outcome;
use crate::signature::VerifiedWebhook;
use crate::sync::{Message, Mirror};

/// The answer body: `{"status": "applied" | "unchanged" | "stale" | "duplicate" | "ignored" |
/// "failed"}`.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub status: Outcome,
}

/// Applies one webhook. Only reachable through the signature middleware.
pub async fn receive_webhook(
    State(mirror): State<Mirror>,
    Extension(webhook): Extension<VerifiedWebhook>,
    body: Bytes,
) -> Result<Json<Receipt>, AppError> {
    let started = Instant::now();
    let message = Message {
        svix_id: &webhook.id,
        body: &body,
        replay: false,
    };
    let processed = mirror.process(message).await?;
    tracing::info!(
        webhook.id = %webhook.id,
        webhook.r#type = processed.event_type.as_deref().unwrap_or("-"),
        webhook.outcome = processed.outcome.as_str(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "webhook {}",
        processed.outcome.as_str(),
    );
    Ok(Json(Receipt {
        status: processed.outcome,
    }))
}
