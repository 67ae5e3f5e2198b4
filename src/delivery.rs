//! Applies one verified webhook to the mirror and decides its outcome. This is the whole
//! delivery contract: what gets written, what is a duplicate or stale, and which failures Svix
//! should retry (5xx) versus which are recorded as `failed` for an operator (2xx). Live
//! delivery and `stack-sync replay` both go through [`Mirror::process`].

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::config::KeepBodies;
use crate::event_time;
use crate::events::{self, Envelope, InvalidPayload, Subject};
use crate::model::{Change, Key, Outcome};
use crate::routes::signed_webhook::SignedWebhook;
use crate::store::mirror::{self, EventToApply, RefreshAfter};
use crate::store::refresh::{Target, TargetKind};
use crate::store::webhook_events::{
    Recorded, StoredMessage, Unapplied, UnappliedMessage, record_unapplied,
};
use crate::store::{Permanent, RetryLater, classify};

/// The result of processing one message.
#[derive(Debug)]
pub struct Processed {
    pub outcome: Outcome,
    /// The payload's `type`, when it had one.
    pub event_type: Option<String>,
    /// When the change happened in Stack, as the message id tells it (cut to `created_by`);
    /// `None` when the id does not say, and the message was ordered by arrival.
    pub source_time: Option<OffsetDateTime>,
}

/// How a message reaches the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// From Svix: a message recorded before is a duplicate.
    Live,
    /// `stack-sync replay`: re-applies a recorded message and overwrites its recorded outcome.
    Replay,
}

/// A message to process: live from Svix, or stored and replayed.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub svix_id: &'a str,
    /// The raw body, as signed.
    pub body: &'a [u8],
    pub mode: Mode,
    /// The latest time the message can have been created: it is created before it is sent. A
    /// source time decoded from the id past it is cut to it, so that a bogus id from the
    /// future cannot make a row immune to every later update.
    pub created_by: OffsetDateTime,
}

/// How much later than its signature a message's id may say it was created. Both times come from
/// Svix's clocks (the id from the host that created the message, the signature from the one that
/// sent it), so this allows a second for the signature's time being whole seconds and a second
/// for skew between Svix's own hosts, not the distance between Svix's clock and ours
/// (`webhook.tolerance`, five minutes by default, which capped it before).
const SVIX_HOSTS_SKEW: Duration = Duration::from_secs(2);

impl<'a> Message<'a> {
    /// A delivery from Svix: created before Svix signed it, give or take [`SVIX_HOSTS_SKEW`].
    pub fn live(webhook: &'a SignedWebhook) -> Self {
        let signed_at = OffsetDateTime::from_unix_timestamp(webhook.signed_at)
            .unwrap_or(OffsetDateTime::now_utc());
        Self {
            svix_id: &webhook.id,
            body: &webhook.body,
            mode: Mode::Live,
            created_by: signed_at + SVIX_HOSTS_SKEW,
        }
    }

    /// A recorded message, re-applied with the `body` it kept: it had been created when it was
    /// first received.
    pub fn replayed(stored: &'a StoredMessage, body: &'a [u8]) -> Self {
        Self {
            svix_id: &stored.svix_id,
            body,
            mode: Mode::Replay,
            created_by: stored.received_at,
        }
    }

    /// When the change happened in Stack: the id's time, never later than `created_by`.
    fn source_time(&self) -> Option<OffsetDateTime> {
        event_time::source_time(self.svix_id).map(|time| time.min(self.created_by))
    }
}

/// The mirror messages are applied to: its database, the feed its changes are announced on, and
/// which bodies it keeps.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub pool: PgPool,
    /// The `NOTIFY` channel of the change feed; `None` when the feed is off.
    pub feed_channel: Option<Arc<str>>,
    pub keep_bodies: KeepBodies,
    /// Queue a refresh this long after each applied webhook about a user or team; `None` when
    /// `refresh.enabled` is off.
    pub refresh_after: Option<Duration>,
}

impl Mirror {
    /// Applies the verified `message` in one transaction and records what became of it.
    pub async fn process(&self, message: Message<'_>) -> Result<Processed, RetryLater> {
        process(self, message).await
    }

    /// The body to record for a message that went `fate`'s way; `None` keeps none.
    fn body_to_keep<'a>(&self, body: &'a [u8], fate: Fate<'_>) -> Option<&'a [u8]> {
        let keep = match (self.keep_bodies, fate) {
            (KeepBodies::All, _) => true,
            (KeepBodies::None, _) => false,
            // The mirror holds what an applied message carried.
            (KeepBodies::Unapplied, Fate::Mirrored) => false,
            (KeepBodies::Unapplied, Fate::Failed) => true,
            (KeepBodies::Unapplied, Fate::Ignored(event_type)) => {
                !events::is_never_mirrored(event_type)
            }
        };
        keep.then_some(body)
    }

    /// The refresh an applied event of `event_type` making `change` asks for: of the user or
    /// team it is about, with their memberships and permissions when it is new (Stack adds those
    /// silently at sign-up and at a team's creation). Deletions and links ask for none.
    fn refresh_for(&self, event_type: &str, change: &Change) -> Option<RefreshAfter> {
        let delay = self.refresh_after?;
        let Change::Upsert { key, .. } = change else {
            return None;
        };
        let (kind, id) = match key {
            Key::User(id) => (TargetKind::User, *id),
            Key::Team(id) => (TargetKind::Team, *id),
            _ => return None,
        };
        let with_links = event_type.ends_with(".created");
        Some(RefreshAfter {
            target: Target {
                kind,
                id,
                with_links,
            },
            delay,
        })
    }
}

/// Which way a message went, as far as keeping its body goes.
#[derive(Debug, Clone, Copy)]
enum Fate<'a> {
    /// Through `apply_event`: applied, unchanged or stale.
    Mirrored,
    Failed,
    /// Of this type, which is not mirrored.
    Ignored(&'a str),
}

async fn process(mirror: &Mirror, message: Message<'_>) -> Result<Processed, RetryLater> {
    let pool = &mirror.pool;
    let source_time = message.source_time();
    // The record of a message that changes nothing; each case fills in type, outcome, error,
    // and `record` the subject.
    let record_of = UnappliedMessage {
        svix_id: message.svix_id,
        event_type: None,
        payload: mirror.body_to_keep(message.body, Fate::Failed),
        user_id: None,
        team_id: None,
        source_time,
        outcome: Unapplied::Failed,
        error: None,
    };
    let envelope = match Envelope::parse(message.body) {
        Ok(envelope) => envelope,
        Err(invalid) => {
            let outcome = record_invalid(pool, record_of, &invalid, message).await?;
            return Ok(Processed {
                outcome,
                event_type: invalid.event_type,
                source_time,
            });
        }
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
                payload: mirror.body_to_keep(message.body, Fate::Mirrored),
                source_time,
                change,
                feed_channel: mirror.feed_channel.as_deref(),
                refresh: mirror.refresh_for(&envelope.event_type, change),
            };
            apply(pool, &event, record_of, message).await?
        }
        None => {
            let ignored = UnappliedMessage {
                outcome: Unapplied::Ignored,
                payload: mirror.body_to_keep(message.body, Fate::Ignored(&envelope.event_type)),
                ..record_of
            };
            record(pool, &ignored, message).await?
        }
    };
    Ok(Processed {
        outcome,
        event_type: Some(envelope.event_type),
        source_time,
    })
}

/// Records a body that is no Stack event as `failed`, with why.
async fn record_invalid(
    pool: &PgPool,
    record_of: UnappliedMessage<'_>,
    invalid: &InvalidPayload,
    message: Message<'_>,
) -> Result<Outcome, RetryLater> {
    let failed = UnappliedMessage {
        event_type: invalid.event_type.as_deref(),
        error: Some(&invalid.message),
        ..record_of
    };
    record(pool, &failed, message).await
}

/// Applies a mirrored event; values Postgres refuses record it as `failed` instead.
async fn apply(
    pool: &PgPool,
    event: &EventToApply<'_>,
    record_of: UnappliedMessage<'_>,
    message: Message<'_>,
) -> Result<Outcome, RetryLater> {
    let replay = message.mode == Mode::Replay;
    let Permanent(refused) = match mirror::apply_event(pool, event, replay).await {
        Ok(outcome) => return Ok(outcome),
        Err(err) => classify(err)?,
    };
    let reason = refused.to_string();
    let failed = UnappliedMessage {
        error: Some(&reason),
        ..record_of
    };
    record(pool, &failed, message).await
}

/// Records a message that changes nothing, or finds it recorded already (a duplicate). Any
/// failure to record it answers 503, even one Postgres calls permanent: a message that cannot be
/// recorded here is better kept by Svix, retried and then shown as failed in its dashboard, than
/// answered 200 and lost. The subject is read from the body here, off the path of applied
/// messages, which record theirs from the change.
async fn record(
    pool: &PgPool,
    unapplied: &UnappliedMessage<'_>,
    message: Message<'_>,
) -> Result<Outcome, RetryLater> {
    let new = match unapplied.outcome {
        Unapplied::Ignored => Outcome::Ignored,
        Unapplied::Failed => Outcome::Failed,
    };
    // Postgres refuses NUL in text, and an error message may quote one from the payload.
    let error = unapplied.error.map(|error| error.replace('\0', "\u{FFFD}"));
    let subject = Subject::of(message.body);
    let unapplied = UnappliedMessage {
        error: error.as_deref(),
        user_id: subject.user_id,
        team_id: subject.team_id,
        ..*unapplied
    };
    let recorded = record_unapplied(pool, &unapplied, message.mode == Mode::Replay)
        .await
        .map_err(RetryLater)?;
    Ok(match recorded {
        Recorded::New => new,
        Recorded::AlreadySeen => Outcome::Duplicate,
    })
}
