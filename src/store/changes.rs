//! SQL of the change log (`stack.changes`, migration 0013): switching it on, reading settled
//! changes after a position, consumers' positions, the forwarder's lock and lag, and pruning.

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::Position;

/// The advisory lock key held by the running forwarder ("stackfwd" in ASCII).
const FORWARDER_LOCK: i64 = 0x7374_6163_6b66_7764;

/// One logged change, as readers get it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LoggedChange {
    /// Where a reader resumes after this change: `<xid>/<seq>`.
    pub position: String,
    #[serde(rename = "table")]
    pub table_name: String,
    /// insert, upsert or delete.
    pub operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_id: Option<String>,
    /// webhook, replay, reconcile, refresh or forget.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svix_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

impl LoggedChange {
    pub fn position(&self) -> Position {
        self.position
            .parse()
            .expect("the database writes positions")
    }
}

/// Turns the log on or off for every writer of the database.
pub async fn set_enabled(db: impl PgExecutor<'_>, enabled: bool) -> Result<(), sqlx::Error> {
    sqlx::query("update stack_sync.change_log set enabled = $1 where enabled is distinct from $1")
        .bind(enabled)
        .execute(db)
        .await?;
    Ok(())
}

/// The settled changes after `after`, oldest first, at most `limit`.
pub async fn after(
    db: impl PgExecutor<'_>,
    after: Position,
    limit: i64,
) -> Result<Vec<LoggedChange>, sqlx::Error> {
    sqlx::query_as(
        "select position, table_name, operation, user_id, team_id, permission_id, source,
                svix_id, run_id, changed_at
         from stack_sync.changes_after($1::text::xid8, $2, $3::integer)",
    )
    .bind(after.xid.to_string())
    .bind(after.seq)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How far consumer `name` has read; `None` before its first change.
pub async fn consumer_position(
    db: impl PgExecutor<'_>,
    name: &str,
) -> Result<Option<Position>, sqlx::Error> {
    let found: Option<String> = sqlx::query_scalar(
        "select xid::text || '/' || seq from stack_sync.change_consumers where name = $1",
    )
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(found.map(|position| position.parse().expect("the database writes positions")))
}

/// Records that consumer `name` has read up to `position` (registering it the first time).
pub async fn advance_consumer(
    db: impl PgExecutor<'_>,
    name: &str,
    position: Position,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into stack_sync.change_consumers (name, xid, seq) values ($1, $2::text::xid8, $3)
         on conflict (name) do update
         set xid = excluded.xid, seq = excluded.seq, updated_at = now()",
    )
    .bind(name)
    .bind(position.xid.to_string())
    .bind(position.seq)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes the forwarder's lock on this connection, unless another forwarder holds it.
pub async fn try_lock_forwarder(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(FORWARDER_LOCK)
        .fetch_one(conn)
        .await
}

/// How far consumer `name` is behind: settled changes it has not read, and the age of the
/// oldest of them in seconds (0 when none).
#[derive(Debug, Clone, Copy, Default, Serialize, sqlx::FromRow)]
pub struct Lag {
    pub changes: i64,
    pub seconds: f64,
}

pub async fn lag(db: impl PgExecutor<'_>, name: &str) -> Result<Lag, sqlx::Error> {
    sqlx::query_as(
        "select count(*) as changes,
                coalesce(extract(epoch from now() - min(c.changed_at)), 0)::float8 as seconds
         from stack.settled_changes c
         left join stack_sync.change_consumers k on k.name = $1
         where k.name is null or (c.xid, c.seq) > (k.xid, k.seq)",
    )
    .bind(name)
    .fetch_one(db)
    .await
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: u64,
    /// Of those, changes a registered consumer had not read, removed for being older than the
    /// hard limit.
    pub unread: u64,
}

/// Removes up to `batch` changes older than `retention_days` that every registered consumer has
/// read, and any older than `max_age_days` whether read or not.
pub async fn prune(
    db: impl PgExecutor<'_>,
    retention_days: Option<u32>,
    max_age_days: u32,
    batch: i64,
) -> Result<Pruned, sqlx::Error> {
    let (deleted, unread): (i64, i64) = sqlx::query_as(
        "with slowest as (
             select xid, seq from stack_sync.change_consumers order by xid, seq limit 1
         ),
         doomed as (
             select c.xid, c.seq,
                    exists (select 1 from slowest s where (c.xid, c.seq) > (s.xid, s.seq)) as unread
             from stack.changes c
             where ($1::integer is not null and c.changed_at < now() - make_interval(days => $1)
                    and not exists (select 1 from slowest s where (c.xid, c.seq) > (s.xid, s.seq)))
                or c.changed_at < now() - make_interval(days => $2)
             limit $3
         ),
         deleted as (
             delete from stack.changes c using doomed d
             where c.xid = d.xid and c.seq = d.seq
             returning d.unread
         )
         select count(*), count(*) filter (where unread) from deleted",
    )
    .bind(retention_days.map(|days| i32::try_from(days).unwrap_or(i32::MAX)))
    .bind(i32::try_from(max_age_days).unwrap_or(i32::MAX))
    .bind(batch)
    .fetch_one(db)
    .await?;
    Ok(Pruned {
        deleted: deleted.try_into().unwrap_or(0),
        unread: unread.try_into().unwrap_or(0),
    })
}

/// The log as `status` shows it: whether it is on, and each registered consumer's lag.
#[derive(Debug, Clone, Serialize)]
pub struct LogStatus {
    pub enabled: bool,
    pub consumers: Vec<ConsumerStatus>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConsumerStatus {
    pub name: String,
    pub position: String,
    /// Settled changes it has not read, and the age of the oldest of them in seconds.
    pub behind: i64,
    pub behind_seconds: f64,
}

/// `None` on a schema from before the log (migration 0013).
pub async fn status(pool: &sqlx::PgPool) -> Result<Option<LogStatus>, sqlx::Error> {
    let enabled = sqlx::query_scalar("select enabled from stack_sync.change_log")
        .fetch_one(pool)
        .await;
    let Some(enabled) = super::unless_before_migration(enabled)? else {
        return Ok(None);
    };
    let consumers = sqlx::query_as(
        "select k.name, k.xid::text || '/' || k.seq as position,
                count(c.seq) as behind,
                coalesce(extract(epoch from now() - min(c.changed_at)), 0)::float8 as behind_seconds
         from stack_sync.change_consumers k
         left join stack.settled_changes c on (c.xid, c.seq) > (k.xid, k.seq)
         group by k.name, k.xid, k.seq
         order by k.name",
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(LogStatus { enabled, consumers }))
}
