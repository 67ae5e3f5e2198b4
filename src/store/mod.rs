//! Every SQL statement the service runs, each one round trip, and the schema they run against.
//! The caller chooses the connection or transaction a statement runs on. Nothing here depends
//! on the modules above it: statements take and return the types of `model`.
//!
//! Applying an event is one call of `stack_sync.apply_event` (`sql/functions/apply_event.sql`):
//! it takes per-user and per-team locks, skips a message already recorded, guards against stale
//! and deleted rows, changes the mirror and records the message, all in one transaction.

pub mod changes;
pub mod erasure;
pub mod generated;
pub mod mirror;
pub mod reconcile;
pub mod refresh;
pub mod schema;
pub mod status;
pub mod stored_body;
pub mod versions;
pub mod webhook_events;

use sqlx::PgPool;

/// `result`, or `None` when it failed because a table does not exist yet: what `status` and the
/// metrics read from a schema that a migration has still to give it.
pub(crate) fn unless_before_migration<T>(
    result: Result<T, sqlx::Error>,
) -> Result<Option<T>, sqlx::Error> {
    /// SQLSTATE undefined_table.
    const UNDEFINED_TABLE: &str = "42P01";
    match result {
        Ok(value) => Ok(Some(value)),
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some(UNDEFINED_TABLE) => {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// A database failure that a later retry may not meet: Svix should try again. Made only by
/// [`classify`] or where a caller decides so in words, never by a `?` on its own.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RetryLater(pub sqlx::Error);

/// A failure Postgres will repeat for the same message: it is recorded as `failed`.
#[derive(Debug)]
pub struct Permanent(pub sqlx::Error);

/// The one decision between retrying a message and recording it as failed: see
/// [`is_permanent`].
pub fn classify(err: sqlx::Error) -> Result<Permanent, RetryLater> {
    if is_permanent(&err) {
        Ok(Permanent(err))
    } else {
        Err(RetryLater(err))
    }
}

/// Whether Postgres refused the values themselves, so that retrying the same message can never
/// succeed. SQLSTATE classes 22 (data exception, e.g. a NUL character in text, or a change of a
/// kind the database does not know), 23 (integrity constraint) and 54 (program limit,
/// e.g. a value too large to index); see
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

/// One round trip, to tell whether the database answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("select 1").execute(pool).await.map(drop)
}
