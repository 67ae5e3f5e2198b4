//! Applying a verified change to the mirror tables, and the parameters a change becomes.

use serde_json::{Map, Value};
use sqlx::PgExecutor;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::stored_body;
use crate::model::{Change, Outcome};

/// One Stack event to apply.
#[derive(Debug, Clone, Copy)]
pub struct EventToApply<'a> {
    pub svix_id: &'a str,
    pub event_type: &'a str,
    /// The raw request body, recorded as it was signed.
    pub payload: &'a [u8],
    /// When Svix created the message; `None` orders it by arrival.
    pub source_time: Option<OffsetDateTime>,
    pub change: &'a Change,
    /// The channel changed rows are announced on; `None` announces nothing.
    pub feed_channel: Option<&'a str>,
}

/// A change as `stack_sync.change_mirror` takes it.
pub(crate) struct ChangeParams<'a> {
    pub kind: &'static str,
    pub removed: bool,
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub permission_id: Option<&'a str>,
    /// A user's or team's validated columns.
    pub row: Option<Json<&'a Map<String, Value>>>,
    /// The object as Stack sent it, kept as `raw`.
    pub raw: Option<Json<&'a Value>>,
}

impl<'a> ChangeParams<'a> {
    pub fn of(change: &'a Change) -> Self {
        let key = change.key();
        let (row, raw) = match change {
            Change::Upsert { row, data, .. } => (Some(Json(&row.columns)), Some(Json(data))),
            Change::Grant(_) | Change::Remove(_) => (None, None),
        };
        Self {
            kind: key.kind().as_str(),
            removed: matches!(change, Change::Remove(_)),
            user_id: key.user_id(),
            team_id: key.team_id(),
            permission_id: key.permission_id(),
            row,
            raw,
        }
    }
}

/// Applies `event` and records it. Returns what happened: applied, unchanged, stale, or
/// duplicate when the message was recorded before and this is not a `replay`.
pub async fn apply_event(
    db: impl PgExecutor<'_>,
    event: &EventToApply<'_>,
    replay: bool,
) -> Result<Outcome, sqlx::Error> {
    let change = ChangeParams::of(event.change);
    let body = stored_body::encode(event.payload);
    sqlx::query_scalar(
        "select stack_sync.apply_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(event.svix_id)
    .bind(event.event_type)
    .bind(body.bytes.as_ref())
    .bind(body.encoding)
    .bind(event.source_time)
    .bind(change.kind)
    .bind(change.removed)
    .bind(change.user_id)
    .bind(change.team_id)
    .bind(change.permission_id)
    .bind(change.row)
    .bind(change.raw)
    .bind(replay)
    .bind(event.feed_channel)
    .fetch_one(db)
    .await
}
