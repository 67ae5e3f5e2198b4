//! Applies one verified webhook to the mirror and decides its outcome. This is the whole
//! delivery contract: what gets written, what is a duplicate, and which failures Svix should
//! retry (5xx) versus which are recorded as `failed` for an operator (2xx).

use serde::Serialize;
use sqlx::PgPool;

use crate::events::{Envelope, Event};
use crate::store::webhook_events::{Unapplied, record_unapplied};
use crate::store::{MessageRecord, Recorded, links, teams, users};

/// What became of a delivery; sent back as `{"status": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The mirror now reflects the event.
    Applied,
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
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
}

/// The result of processing one delivery.
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

/// Applies the verified message `svix_id` with raw `body`, in one transaction.
pub async fn process(pool: &PgPool, svix_id: &str, body: &[u8]) -> Result<Processed, RetryLater> {
    let envelope = match Envelope::parse(body) {
        Ok(envelope) => envelope,
        Err(invalid) => {
            let event_type = invalid.event_type.as_deref();
            let recorded = record_unapplied(
                pool,
                svix_id,
                event_type,
                body,
                Unapplied::Failed,
                Some(&invalid.message),
            )
            .await?;
            let outcome = outcome_of(recorded, Outcome::Failed);
            return Ok(Processed {
                outcome,
                event_type: invalid.event_type,
            });
        }
    };
    let message = MessageRecord {
        svix_id,
        event_type: &envelope.event_type,
        payload: body,
    };
    let outcome = apply_or_record_failure(pool, &message, envelope.event.as_ref()).await?;
    Ok(Processed {
        outcome,
        event_type: Some(envelope.event_type),
    })
}

async fn apply_or_record_failure(
    pool: &PgPool,
    message: &MessageRecord<'_>,
    event: Option<&Event>,
) -> Result<Outcome, sqlx::Error> {
    let Some(event) = event else {
        let recorded = record(pool, message, Unapplied::Ignored, None).await?;
        return Ok(outcome_of(recorded, Outcome::Ignored));
    };
    match apply(pool, message, event).await {
        Ok(recorded) => Ok(outcome_of(recorded, Outcome::Applied)),
        Err(err) if is_permanent(&err) => {
            let reason = err.to_string();
            let recorded = record(pool, message, Unapplied::Failed, Some(&reason)).await?;
            Ok(outcome_of(recorded, Outcome::Failed))
        }
        Err(err) => Err(err),
    }
}

async fn record(
    pool: &PgPool,
    message: &MessageRecord<'_>,
    outcome: Unapplied,
    error: Option<&str>,
) -> Result<Recorded, sqlx::Error> {
    let event_type = Some(message.event_type);
    record_unapplied(
        pool,
        message.svix_id,
        event_type,
        message.payload,
        outcome,
        error,
    )
    .await
}

/// Runs the one statement that records the message and changes the mirror.
async fn apply(
    pool: &PgPool,
    message: &MessageRecord<'_>,
    event: &Event,
) -> Result<Recorded, sqlx::Error> {
    match event {
        Event::UserUpserted(user) => users::upsert_user(pool, message, user).await,
        Event::UserDeleted(deleted) => users::delete_user(pool, message, deleted.id).await,
        Event::TeamUpserted(team) => teams::upsert_team(pool, message, team).await,
        Event::TeamDeleted(deleted) => teams::delete_team(pool, message, deleted.id).await,
        Event::MembershipAdded(m) => links::add_membership(pool, message, m).await,
        Event::MembershipRemoved(m) => links::remove_membership(pool, message, m).await,
        Event::TeamPermissionGranted(p) => links::grant_team_permission(pool, message, p).await,
        Event::TeamPermissionRevoked(p) => links::revoke_team_permission(pool, message, p).await,
        Event::ProjectPermissionGranted(p) => {
            links::grant_project_permission(pool, message, p).await
        }
        Event::ProjectPermissionRevoked(p) => {
            links::revoke_project_permission(pool, message, p).await
        }
    }
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
/// timeouts, deadlocks, shutdowns) may pass on a retry.
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
