//! Erasing what the mirror holds of one user or team on request (`stack-sync forget`), and
//! finding the message bodies that name no subject, such as those recorded before migration 0010.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use crate::model::Kind;

/// What `stack_sync.forget` removed (`sql/functions/forget.sql`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgotten {
    /// Recorded messages whose body or error was erased.
    pub bodies_erased: i64,
    /// Rows deleted per table (and, for a team, users it was unselected from).
    pub rows_deleted: BTreeMap<String, i64>,
    /// Whether the id had been buried already, by a deletion or an earlier `forget`.
    pub buried_before: bool,
}

/// Erases `id`'s messages, deletes its rows and buries it, in one transaction.
pub async fn forget(
    db: impl PgExecutor<'_>,
    kind: Kind,
    id: Uuid,
    feed_channel: Option<&str>,
) -> Result<Forgotten, sqlx::Error> {
    let Json(forgotten): Json<Forgotten> =
        sqlx::query_scalar("select stack_sync.forget($1, $2, $3)")
            .bind(kind)
            .bind(id)
            .bind(feed_channel)
            .fetch_one(db)
            .await?;
    Ok(forgotten)
}

/// A body recorded before messages named their subject, to be read for the ids it holds.
#[derive(Debug, sqlx::FromRow)]
pub struct UnattributedBody {
    pub svix_id: String,
    pub payload: Vec<u8>,
    pub payload_encoding: Option<String>,
}

/// The kept bodies that name no subject: those recorded before migration 0010, which did not
/// record one (fewer as retention prunes them), and since then only bodies without readable ids
/// (`stack.test`, damaged ones).
pub async fn unattributed_bodies(
    db: impl PgExecutor<'_>,
) -> Result<Vec<UnattributedBody>, sqlx::Error> {
    sqlx::query_as(
        "select svix_id, payload, payload_encoding from stack.webhook_events
         where payload is not null and user_id is null and team_id is null",
    )
    .fetch_all(db)
    .await
}

/// Erases the bodies `svix_ids` as forgotten; returns how many.
pub async fn erase_forgotten(
    db: impl PgExecutor<'_>,
    svix_ids: &[String],
) -> Result<u64, sqlx::Error> {
    let erased = sqlx::query(
        "update stack.webhook_events
         set payload = null, payload_encoding = null, error = null,
             erased_at = now(), erased_reason = 'forgotten'
         where svix_id = any($1) and payload is not null",
    )
    .bind(svix_ids)
    .execute(db)
    .await?;
    Ok(erased.rows_affected())
}
