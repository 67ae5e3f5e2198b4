//! Applying a verified change to the mirror tables, and the parameters a change becomes.

use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::{PgHasArrayType, PgTypeInfo};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::refresh::{self, Target};
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
    /// The refresh to queue if the event is applied (`refresh.enabled`).
    pub refresh: Option<RefreshAfter>,
}

/// A refresh of `target` to queue, due `delay` after the event that asks for it.
#[derive(Debug, Clone, Copy)]
pub struct RefreshAfter {
    pub target: Target,
    pub delay: Duration,
}

/// Objects fetched from Stack's API, validated, to apply as one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Fetched<'a> {
    /// How the rows name their source in version records: `reconcile:<run>`, `refresh`.
    pub source: &'a str,
    pub changes: &'a [Change],
    /// When they were asked for: Stack's state was at least this new.
    pub fetched_at: OffsetDateTime,
    /// The channel changed rows are announced on; `None` announces nothing.
    pub feed_channel: Option<&'a str>,
}

/// What applying one fetched row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct FetchedOutcome {
    pub outcome: Outcome,
    /// Whether the mirror held the row before.
    pub existed: bool,
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
    let apply = "select stack_sync.apply_event($1, $2, $3, $4) as outcome";
    let Some(refresh) = event.refresh else {
        return sqlx::query_scalar(apply)
            .bind(message)
            .bind(ChangeRecord::of(event.change))
            .bind(replay)
            .bind(event.feed_channel)
            .fetch_one(db)
            .await;
    };
    // The refresh is queued by the same statement, so in the same transaction: it is queued if
    // and only if the event is applied, at no extra round trip.
    let sql = format!(
        "with applied as ({apply}), queued as ({}) select outcome from applied",
        refresh::enqueue_after("applied", 5)
    );
    sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(message)
        .bind(ChangeRecord::of(event.change))
        .bind(replay)
        .bind(event.feed_channel)
        .bind(refresh.target.kind)
        .bind(refresh.target.id)
        .bind(refresh.target.with_links)
        .bind(refresh::delay_parameter(refresh.delay))
        .fetch_one(db)
        .await
}

/// Applies `fetched` in one statement, with the guards of live delivery; returns what became of
/// each change, in order.
pub async fn apply_fetched(
    db: impl PgExecutor<'_>,
    fetched: &Fetched<'_>,
) -> Result<Vec<FetchedOutcome>, sqlx::Error> {
    let records: Vec<ChangeRecord<'_>> = fetched.changes.iter().map(ChangeRecord::of).collect();
    sqlx::query_as("select * from stack_sync.apply_fetched($1, $2, $3, $4)")
        .bind(fetched.source)
        .bind(records)
        .bind(fetched.fetched_at)
        .bind(fetched.feed_channel)
        .fetch_all(db)
        .await
}
