//! `stack.webhook_events` rows for messages that change nothing in the mirror.

use sqlx::PgExecutor;

use super::Recorded;

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

/// Records a message that changes nothing, with its raw body and the error if any.
/// `event_type` is `None` when the body had no readable type.
pub async fn record_unapplied(
    db: impl PgExecutor<'_>,
    svix_id: &str,
    event_type: Option<&str>,
    payload: &[u8],
    outcome: Unapplied,
    error: Option<&str>,
) -> Result<Recorded, sqlx::Error> {
    let inserted: Option<String> = sqlx::query_scalar(
        "insert into stack.webhook_events (svix_id, event_type, outcome, payload, error)
         values ($1, $2, $3, $4, $5)
         on conflict (svix_id) do nothing
         returning svix_id",
    )
    .bind(svix_id)
    .bind(event_type)
    .bind(outcome.as_str())
    .bind(payload)
    .bind(error)
    .fetch_optional(db)
    .await?;
    Ok(inserted.into())
}
