//! Applying a verified change to the mirror tables, and the parameters a change becomes.

use serde_json::{Map, Value};
use sqlx::postgres::{PgHasArrayType, PgTypeInfo};
use sqlx::types::Json;
use sqlx::{PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::stored_body;
use crate::model::{Change, Kind, Outcome};

/// One Stack event to apply.
#[derive(Debug, Clone, Copy)]
pub struct EventToApply<'a> {
    pub svix_id: &'a str,
    pub event_type: &'a str,
    /// The raw request body, recorded as it was signed; `None` records no body
    /// (`webhook.keep_bodies`).
    pub payload: Option<&'a [u8]>,
    /// When Svix created the message; `None` orders it by arrival.
    pub source_time: Option<OffsetDateTime>,
    pub change: &'a Change,
    /// The channel changed rows are announced on; `None` announces nothing.
    pub feed_channel: Option<&'a str>,
}

/// A change as the functions take it: Postgres's `stack_sync.change` (migration 0009). Only
/// ever sent, so it borrows what it sends and derives no decoding.
#[derive(sqlx::Encode)]
pub(crate) struct ChangeRecord<'a> {
    kind: Kind,
    removed: bool,
    user_id: Option<Uuid>,
    team_id: Option<Uuid>,
    permission_id: Option<&'a str>,
    /// A user's or team's validated columns.
    columns: Option<Json<&'a Map<String, Value>>>,
    /// The object as Stack sent it, kept as `raw`.
    raw: Option<Json<&'a Value>>,
}

impl<'a> ChangeRecord<'a> {
    pub fn of(change: &'a Change) -> Self {
        let key = change.key();
        let (columns, raw) = match change {
            Change::Upsert { row, data, .. } => (Some(Json(&row.columns)), Some(Json(data))),
            Change::Grant(_) | Change::Remove(_) => (None, None),
        };
        Self {
            kind: key.kind(),
            removed: matches!(change, Change::Remove(_)),
            user_id: key.user_id(),
            team_id: key.team_id(),
            permission_id: key.permission_id(),
            columns,
            raw,
        }
    }
}

impl sqlx::Type<Postgres> for ChangeRecord<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("stack_sync.change")
    }
}

impl PgHasArrayType for ChangeRecord<'_> {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::array_of("stack_sync.change")
    }
}

/// A message as the functions record it: Postgres's `stack_sync.message`.
#[derive(sqlx::Encode)]
pub(crate) struct MessageRecord<'a> {
    svix_id: &'a str,
    event_type: Option<&'a str>,
    /// The body as stored (see `stored_body`), or none kept.
    payload: Option<&'a [u8]>,
    payload_encoding: Option<&'static str>,
    source_time: Option<OffsetDateTime>,
}

impl<'a> MessageRecord<'a> {
    /// The message as recorded, `body` (when kept) encoded as `stored_body` stores it.
    pub fn of(
        svix_id: &'a str,
        event_type: Option<&'a str>,
        body: Option<&'a stored_body::StoredBody<'a>>,
        source_time: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            svix_id,
            event_type,
            payload: body.map(|body| body.bytes.as_ref()),
            payload_encoding: body.and_then(|body| body.encoding),
            source_time,
        }
    }
}

impl sqlx::Type<Postgres> for MessageRecord<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("stack_sync.message")
    }
}

/// Applies `event` and records it. Returns what happened: applied, unchanged, stale, or
/// duplicate when the message was recorded before and this is not a `replay`.
pub async fn apply_event(
    db: impl PgExecutor<'_>,
    event: &EventToApply<'_>,
    replay: bool,
) -> Result<Outcome, sqlx::Error> {
    let body = event.payload.map(stored_body::encode);
    let message = MessageRecord::of(
        event.svix_id,
        Some(event.event_type),
        body.as_ref(),
        event.source_time,
    );
    sqlx::query_scalar("select stack_sync.apply_event($1, $2, $3, $4)")
        .bind(message)
        .bind(ChangeRecord::of(event.change))
        .bind(replay)
        .bind(event.feed_channel)
        .fetch_one(db)
        .await
}
