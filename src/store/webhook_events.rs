//! `stack.webhook_events` rows for messages that change nothing in the mirror.

use sqlx::PgExecutor;
use time::OffsetDateTime;

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
    let inserted: Option<String> = sqlx::query_scalar(
        "insert into stack.webhook_events as e
             (svix_id, event_type, outcome, payload, error, source_time)
         values ($1, $2, $3, $4, $5, coalesce($6, now()))
         on conflict (svix_id) do update
         set outcome = excluded.outcome, error = excluded.error
         where $7
         returning svix_id",
    )
    .bind(message.svix_id)
    .bind(message.event_type)
    .bind(message.outcome.as_str())
    .bind(message.payload)
    .bind(message.error)
    .bind(message.source_time)
    .bind(replay)
    .fetch_optional(db)
    .await?;
    Ok(inserted.into())
}
