//! Applying a verified event to the mirror tables.

use serde_json::Value;
use sqlx::PgExecutor;
use sqlx::types::Json;
use time::OffsetDateTime;

/// One Stack event to apply.
#[derive(Debug, Clone, Copy)]
pub struct EventToApply<'a> {
    pub svix_id: &'a str,
    pub event_type: &'a str,
    /// The raw request body, recorded as it was signed.
    pub payload: &'a [u8],
    /// When Svix created the message; `None` orders it by arrival.
    pub source_time: Option<OffsetDateTime>,
    /// The payload's `data`.
    pub data: &'a Value,
}

/// Applies `event` and records it. Returns what happened: `applied`, `unchanged`, `stale`, or
/// `duplicate` when the message was recorded before and this is not a `replay`.
pub async fn apply_event(
    db: impl PgExecutor<'_>,
    event: &EventToApply<'_>,
    replay: bool,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("select stack_sync.apply_event($1, $2, $3, $4, $5, $6)")
        .bind(event.svix_id)
        .bind(event.event_type)
        .bind(event.payload)
        .bind(event.source_time)
        .bind(Json(event.data))
        .bind(replay)
        .fetch_one(db)
        .await
}
