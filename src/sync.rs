//! Applies one verified webhook to the mirror and decides its outcome. This is the whole
//! delivery contract: what gets written, what is a duplicate or stale, and which failures Svix
//! should retry (5xx) versus which are recorded as `failed` for an operator (2xx). Live
//! delivery and `stack-sync replay` both go through [`process`].

use serde::Serialize;
use sqlx::PgPool;

use crate::event_time;
use crate::events::{Envelope, InvalidPayload};
use crate::store::mirror::{self, EventToApply};
use crate::store::webhook_events::{Recorded, Unapplied, UnappliedMessage, record_unapplied};

/// What became of a delivery; sent back as `{"status": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The mirror now reflects the event.
    Applied,
    /// The mirror already held exactly this (Stack sent the same change twice); nothing written.
    Unchanged,
    /// The mirror already reflects a newer event for the same row, or the row was deleted.
    Stale,
    /// This `svix-id` was received before; nothing changed.
    Duplicate,
    /// A type we do not mirror; recorded only.
    Ignored,
    /// Verified but unusable; recorded with its error for replay after a fix.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Stale => "stale",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }

    fn from_database(outcome: &str) -> Result<Self, sqlx::Error> {
        Ok(match outcome {
            "applied" => Self::Applied,
            "unchanged" => Self::Unchanged,
            "stale" => Self::Stale,
            "duplicate" => Self::Duplicate,
            other => {
                let message = format!("stack_sync.apply_event returned {other:?}");
                return Err(sqlx::Error::Protocol(message));
            }
        })
    }
}

/// The result of processing one message.
#[derive(Debug)]
pub struct Processed {
    pub outcome: Outcome,
    /// The payload's `type`, when it had one.
    pub event_type: Option<String>,
}

/// A database failure that a later retry may not meet: Svix should try again.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RetryLater(#[from] pub sqlx::Error);

/// A message to process: live from Svix, or stored and replayed.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub svix_id: &'a str,
    /// The raw body, as signed.
    pub body: &'a [u8],
    /// Replays re-apply a recorded message and overwrite its recorded outcome.
    pub replay: bool,
}

/// Applies the verified `message` in one transaction and records what became of it.
pub async fn process(pool: &PgPool, message: Message<'_>) -> Result<Processed, RetryLater> {
    let source_time = event_time::source_time(message.svix_id);
    // The record of a message that changes nothing; each case fills in type, outcome, error.
    let record_of = UnappliedMessage {
        svix_id: message.svix_id,
        event_type: None,
        payload: message.body,
        source_time,
        outcome: Unapplied::Failed,
        error: None,
    };
    let envelope = match Envelope::parse(message.body) {
        Ok(envelope) => envelope,
        Err(invalid) => return record_invalid(pool, record_of, invalid, message.replay).await,
    };
    let record_of = UnappliedMessage {
        event_type: Some(&envelope.event_type),
        ..record_of
    };
    let outcome = match envelope.event {
        Some(_) => {
            let event = EventToApply {
                svix_id: message.svix_id,
                event_type: &envelope.event_type,
                payload: message.body,
                source_time,
                data: &envelope.data,
            };
            apply(pool, &event, record_of, message.replay).await?
        }
        None => {
            let ignored = UnappliedMessage {
                outcome: Unapplied::Ignored,
                ..record_of
            };
            record(pool, &ignored, message.replay).await?
        }
    };
    Ok(Processed {
        outcome,
        event_type: Some(envelope.event_type),
    })
}

/// Records a body that is no Stack event as `failed`, with why.
async fn record_invalid(
    pool: &PgPool,
    record_of: UnappliedMessage<'_>,
    invalid: InvalidPayload,
    replay: bool,
) -> Result<Processed, RetryLater> {
    let failed = UnappliedMessage {
        event_type: invalid.event_type.as_deref(),
        error: Some(&invalid.message),
        ..record_of
    };
    let outcome = record(pool, &failed, replay).await?;
    Ok(Processed {
        outcome,
        event_type: invalid.event_type,
    })
}

/// Applies a mirrored event; values Postgres refuses record it as `failed` instead.
async fn apply(
    pool: &PgPool,
    event: &EventToApply<'_>,
    record_of: UnappliedMessage<'_>,
    replay: bool,
) -> Result<Outcome, RetryLater> {
    match mirror::apply_event(pool, event, replay).await {
        Ok(outcome) => Ok(Outcome::from_database(&outcome)?),
        Err(err) if is_permanent(&err) => {
            let reason = err.to_string();
            let failed = UnappliedMessage {
                error: Some(&reason),
                ..record_of
            };
            record(pool, &failed, replay).await
        }
        Err(err) => Err(err.into()),
    }
}

/// Records a message that changes nothing, or finds it recorded already (a duplicate).
async fn record(
    pool: &PgPool,
    message: &UnappliedMessage<'_>,
    replay: bool,
) -> Result<Outcome, RetryLater> {
    let outcome = match message.outcome {
        Unapplied::Ignored => Outcome::Ignored,
        Unapplied::Failed => Outcome::Failed,
    };
    Ok(outcome_of(
        record_unapplied(pool, message, replay).await?,
        outcome,
    ))
}

fn outcome_of(recorded: Recorded, new: Outcome) -> Outcome {
    match recorded {
        Recorded::New => new,
        Recorded::AlreadySeen => Outcome::Duplicate,
    }
}

/// Whether Postgres refused the values themselves, so that retrying the same message can never
/// succeed. SQLSTATE classes 22 (data exception, e.g. a NUL character in text), 23 (integrity
/// constraint) and 54 (program limit, e.g. a value too large to index); see
/// <https://www.postgresql.org/docs/15/errcodes-appendix.html>. Anything else (connections,
/// timeouts, deadlocks, shutdowns, a missing table) may pass on a retry.
fn is_permanent(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["22", "23", "54"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}
