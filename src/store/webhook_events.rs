//! `stack.webhook_events`: recording messages that change nothing in the mirror, reading
//! recorded messages back for replay, and pruning old ones.

use sqlx::PgExecutor;
use time::OffsetDateTime;

use super::stored_body;
use crate::model::Outcome;

/// Whether a statement recorded the message, or found it recorded already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    AlreadySeen,
}

impl From<Option<String>> for Recorded {
    fn from(returned_id: Option<String>) -> Self {
        match returned_id {
            Some(_) => Self::New,
            None => Self::AlreadySeen,
        }
    }
}

/// Why a message left the mirror untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unapplied {
    /// A type we do not mirror.
    Ignored,
    /// Verified but unusable; the error says why.
    Failed,
}

impl Unapplied {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
}

/// A message that changes nothing in the mirror, to record with its raw body.
#[derive(Debug, Clone, Copy)]
pub struct UnappliedMessage<'a> {
    pub svix_id: &'a str,
    /// `None` when the body had no readable type.
    pub event_type: Option<&'a str>,
    pub payload: &'a [u8],
    pub source_time: Option<OffsetDateTime>,
    pub outcome: Unapplied,
    pub error: Option<&'a str>,
}

/// Records the message, unless it was recorded before; a `replay` overwrites the earlier
/// outcome and error instead.
pub async fn record_unapplied(
    db: impl PgExecutor<'_>,
    message: &UnappliedMessage<'_>,
    replay: bool,
) -> Result<Recorded, sqlx::Error> {
    let body = stored_body::encode(message.payload);
    let inserted: Option<String> = sqlx::query_scalar(
        "insert into stack.webhook_events as e
             (svix_id, event_type, outcome, payload, payload_encoding, error, source_time)
         values ($1, $2, $3, $4, $5, $6, coalesce($7, now()))
         on conflict (svix_id) do update
         set outcome = excluded.outcome, error = excluded.error
         where $8
         returning svix_id",
    )
    .bind(message.svix_id)
    .bind(message.event_type)
    .bind(message.outcome.as_str())
    .bind(body.bytes.as_ref())
    .bind(body.encoding)
    .bind(message.error)
    .bind(message.source_time)
    .bind(replay)
    .fetch_optional(db)
    .await?;
    Ok(inserted.into())
}

/// Which recorded messages to replay. Filters combine; `None` and `false` leave them open.
#[derive(Debug, Clone, Default)]
pub struct StoredSelection {
    pub only_failed: bool,
    pub ids: Option<Vec<String>>,
    pub received_since: Option<OffsetDateTime>,
    pub received_until: Option<OffsetDateTime>,
}

/// A recorded message, as it arrived.
#[derive(Debug)]
pub struct StoredMessage {
    pub svix_id: String,
    pub outcome: Outcome,
    /// The body byte for byte as it was signed, whatever its stored encoding.
    pub payload: Vec<u8>,
    pub received_at: OffsetDateTime,
}

/// A row of `stack.webhook_events` as stored, before its body is decoded.
#[derive(sqlx::FromRow)]
struct StoredRow {
    svix_id: String,
    outcome: Outcome,
    payload: Vec<u8>,
    payload_encoding: Option<String>,
    received_at: OffsetDateTime,
}

/// The ids of the recorded messages matching `selection`, oldest change first.
pub async fn select_stored(
    db: impl PgExecutor<'_>,
    selection: &StoredSelection,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select svix_id from stack.webhook_events
         where (not $1 or outcome = 'failed')
           and ($2::text[] is null or svix_id = any($2))
           and ($3::timestamptz is null or received_at >= $3)
           and ($4::timestamptz is null or received_at < $4)
         order by source_time nulls first, received_at, svix_id",
    )
    .bind(selection.only_failed)
    .bind(selection.ids.as_deref())
    .bind(selection.received_since)
    .bind(selection.received_until)
    .fetch_all(db)
    .await
}

/// One recorded message by id. A body that cannot be decoded is a decode error.
pub async fn load_stored(
    db: impl PgExecutor<'_>,
    svix_id: &str,
) -> Result<Option<StoredMessage>, sqlx::Error> {
    let row: Option<StoredRow> = sqlx::query_as(
        "select svix_id, outcome, payload, payload_encoding, received_at
         from stack.webhook_events where svix_id = $1",
    )
    .bind(svix_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let payload = stored_body::decode(row.payload, row.payload_encoding.as_deref())
        .map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
    Ok(Some(StoredMessage {
        svix_id: row.svix_id,
        outcome: row.outcome,
        payload,
        received_at: row.received_at,
    }))
}

/// Deletes up to `batch_size` messages received more than `days` ago; returns how many.
/// Rows another session holds are skipped, so pruning never waits on (or blocks) delivery.
pub async fn prune_batch(
    db: impl PgExecutor<'_>,
    days: u32,
    batch_size: u32,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "delete from stack.webhook_events
         where svix_id in (
             select svix_id from stack.webhook_events
             where received_at < now() - make_interval(days => $1)
             order by received_at
             limit $2
             for update skip locked
         )",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .bind(i64::from(batch_size))
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}
