//! `stack.webhook_events`: recording messages that change nothing in the mirror, reading
//! recorded messages back for replay, and pruning old ones.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use super::mirror::MessageRecord;
use super::stored_body;
use crate::model::Outcome;

/// Whether a statement recorded the message, or found it recorded already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    AlreadySeen,
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

/// A message that changes nothing in the mirror, to record.
#[derive(Debug, Clone, Copy)]
pub struct UnappliedMessage<'a> {
    pub svix_id: &'a str,
    /// `None` when the body had no readable type.
    pub event_type: Option<&'a str>,
    /// The raw body, or `None` to keep none (`webhook.keep_bodies`).
    pub payload: Option<&'a [u8]>,
    /// The user and team the body is about, so that their deletion erases it.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub source_time: Option<OffsetDateTime>,
    pub outcome: Unapplied,
    pub error: Option<&'a str>,
}

/// Records the message, unless it was recorded before; a `replay` overwrites the earlier
/// outcome, error and body instead. Neither body nor error is kept when the subject is deleted
/// (`sql/functions/record_unapplied.sql`).
pub async fn record_unapplied(
    db: impl PgExecutor<'_>,
    message: &UnappliedMessage<'_>,
    replay: bool,
) -> Result<Recorded, sqlx::Error> {
    let body = message.payload.map(stored_body::encode);
    let record = MessageRecord::of(
        message.svix_id,
        message.event_type,
        body.as_ref(),
        message.source_time,
    );
    let recorded: bool =
        sqlx::query_scalar("select stack_sync.record_unapplied($1, $2, $3, $4, $5, $6)")
            .bind(record)
            .bind(message.user_id)
            .bind(message.team_id)
            .bind(message.outcome.as_str())
            .bind(message.error)
            .bind(replay)
            .fetch_one(db)
            .await?;
    Ok(if recorded {
        Recorded::New
    } else {
        Recorded::AlreadySeen
    })
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
    pub event_type: Option<String>,
    pub outcome: Outcome,
    pub body: RecordedBody,
    pub received_at: OffsetDateTime,
}

/// What a recorded message kept of its body.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordedBody {
    /// The body byte for byte as it was signed, whatever its stored encoding.
    Kept(Vec<u8>),
    /// `webhook.keep_bodies` did not keep it.
    NotKept,
    /// Erased with the user or team it was about, or by `stack-sync forget`.
    Erased {
        at: OffsetDateTime,
        /// `user deleted`, `team deleted` or `forgotten`.
        reason: String,
    },
}

impl RecordedBody {
    /// Why there is no body to read, in words for an operator; `None` when there is one.
    pub fn missing_because(&self) -> Option<String> {
        match self {
            Self::Kept(_) => None,
            Self::NotKept => Some("its body was not kept (webhook.keep_bodies)".to_owned()),
            Self::Erased { at, reason } => Some(format!(
                "its body was erased at {} ({reason})",
                at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| at.to_string())
            )),
        }
    }
}

/// A row of `stack.webhook_events` as stored, before its body is decoded.
#[derive(sqlx::FromRow)]
struct StoredRow {
    svix_id: String,
    event_type: Option<String>,
    outcome: Outcome,
    payload: Option<Vec<u8>>,
    payload_encoding: Option<String>,
    received_at: OffsetDateTime,
    erased_at: Option<OffsetDateTime>,
    erased_reason: Option<String>,
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
        "select svix_id, event_type, outcome, payload, payload_encoding, received_at,
                erased_at, erased_reason
         from stack.webhook_events where svix_id = $1",
    )
    .bind(svix_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let body = match (row.payload, row.erased_at, row.erased_reason) {
        (Some(payload), _, _) => RecordedBody::Kept(
            stored_body::decode(payload, row.payload_encoding.as_deref())
                .map_err(|err| sqlx::Error::Decode(Box::new(err)))?,
        ),
        (None, Some(at), reason) => RecordedBody::Erased {
            at,
            reason: reason.unwrap_or_default(),
        },
        (None, None, _) => RecordedBody::NotKept,
    };
    Ok(Some(StoredMessage {
        svix_id: row.svix_id,
        event_type: row.event_type,
        outcome: row.outcome,
        body,
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
