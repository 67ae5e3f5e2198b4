//! Applies one verified webhook to the mirror and decides its outcome. This is the whole
//! delivery contract: what gets written, what is a duplicate or stale, and which failures Svix
//! should retry (5xx) versus which are recorded as `failed` for an operator (2xx). Live
//! delivery and `stack-sync replay` both go through [`Mirror::process`].

use std::sync::Arc;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::event_time;
use crate::events::{Envelope, InvalidPayload};
use crate::model::Outcome;
use crate::store::mirror::{self, EventToApply};
use crate::store::webhook_events::{Recorded, Unapplied, UnappliedMessage, record_unapplied};
use crate::store::{RetryLater, is_permanent};

/// The result of processing one message.
#[derive(Debug)]
pub struct Processed {
    pub outcome: Outcome,
    /// The payload's `type`, when it had one.
    pub event_type: Option<String>,
}

/// A message to process: live from Svix, or stored and replayed.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub svix_id: &'a str,
    /// The raw body, as signed.
    pub body: &'a [u8],
    /// Replays re-apply a recorded message and overwrite its recorded outcome.
    pub replay: bool,
    /// The latest time the message can have been created: it is created before it is sent. A
    /// source time decoded from the id past it is cut to it, so that a bogus id from the
    /// future cannot make a row immune to every later update.
    pub created_by: OffsetDateTime,
}

/// The mirror messages are applied to: its database, and the feed its changes are announced on.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub pool: PgPool,
    /// The `NOTIFY` channel of the change feed; `None` when the feed is off.
    pub feed_channel: Option<Arc<str>>,
}

impl Mirror {
    /// Applies the verified `message` in one transaction and records what became of it.
    pub async fn process(&self, message: Message<'_>) -> Result<Processed, RetryLater> {
        process(&self.pool, self.feed_channel.as_deref(), message).await
    }
}

async fn process(
    pool: &PgPool,
    feed_channel: Option<&str>,
    message: Message<'_>,
) -> Result<Processed, RetryLater> {
    let source_time = event_time::source_time(message.svix_id).map(|t| t.min(message.created_by));
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
    let outcome = match &envelope.change {
        Some(change) => {
            let event = EventToApply {
                svix_id: message.svix_id,
                event_type: &envelope.event_type,
                payload: message.body,
                source_time,
                change,
                feed_channel,
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
        Ok(outcome) => Ok(outcome),
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
    let new = match message.outcome {
        Unapplied::Ignored => Outcome::Ignored,
        Unapplied::Failed => Outcome::Failed,
    };
    // Postgres refuses NUL in text, and an error message may quote one from the payload.
    let error = message.error.map(|error| error.replace('\0', "\u{FFFD}"));
    let message = UnappliedMessage {
        error: error.as_deref(),
        ..*message
    };
    Ok(match record_unapplied(pool, &message, replay).await? {
        Recorded::New => new,
        Recorded::AlreadySeen => Outcome::Duplicate,
    })
}
