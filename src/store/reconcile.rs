//! SQL of `reconcile`: its run records, the marks of what it saw, applying fetched pages,
//! finding the rows Stack no longer has, and the lock that keeps runs apart.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use super::mirror::{ChangeRecord, Fetched, FetchedOutcome, apply_fetched};
use crate::model::{Change, Key, Kind, Outcome};

/// The advisory lock key held by a running reconcile ("stacksyn" in ASCII).
const LOCK_KEY: i64 = 0x7374_6163_6b73_796e;

/// Takes the reconcile lock on this connection unless another session holds it.
pub async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(conn)
        .await
}

pub async fn unlock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a new run; returns its id and start time (the database's clock). Call it holding
/// the lock: runs left `running` by a process that died are closed as failed, and what they saw
/// is forgotten.
pub async fn start_run(
    db: &mut PgConnection,
    dry_run: bool,
) -> Result<(i64, OffsetDateTime), sqlx::Error> {
    sqlx::query(
        "update stack_sync.reconcile_runs
         set status = 'failed', finished_at = now(), error = 'interrupted'
         where status = 'running'",
    )
    .execute(&mut *db)
    .await?;
    sqlx::query("delete from stack_sync.reconcile_seen")
        .execute(&mut *db)
        .await?;
    sqlx::query_as(
        "insert into stack_sync.reconcile_runs (dry_run) values ($1) returning id, started_at",
    )
    .bind(dry_run)
    .fetch_one(db)
    .await
}

/// Records how a run ended, and forgets what it saw.
pub async fn finish_run(
    db: &mut PgConnection,
    run_id: i64,
    summary: &Value,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update stack_sync.reconcile_runs
         set finished_at = now(), summary = $2, error = $3,
             status = case when $3 is null then 'succeeded' else 'failed' end
         where id = $1",
    )
    .bind(run_id)
    .bind(Json(summary))
    .bind(error)
    .execute(&mut *db)
    .await?;
    sqlx::query("delete from stack_sync.reconcile_seen where run_id = $1")
        .bind(run_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Marks keys as seen in Stack by this run; returns those not seen before in it.
pub async fn mark_seen(
    db: impl PgExecutor<'_>,
    run_id: i64,
    kind: Kind,
    keys: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into stack_sync.reconcile_seen (run_id, kind, key)
         select $1, $2, unnest($3::text[])
         on conflict do nothing
         returning key",
    )
    .bind(run_id)
    .bind(kind.as_str())
    .bind(keys)
    .fetch_all(db)
    .await
}

/// The teams this run saw, in id order, after `after`; for walking them without holding them all.
pub async fn teams_seen_after(
    db: impl PgExecutor<'_>,
    run_id: i64,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "select key::uuid from stack_sync.reconcile_seen
         where run_id = $1 and kind = 'team' and key > $2
         order by key limit $3",
    )
    .bind(run_id)
    // A uuid's text sorts as the uuid does.
    .bind(after.map(|id| id.to_string()).unwrap_or_default())
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A reconcile run, as its statements name it.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    pub id: i64,
    /// The channel changed rows are announced on; `None` announces nothing.
    pub feed_channel: Option<&'a str>,
}

impl RunRef<'_> {
    /// How the rows it writes name their source in version records.
    fn source(&self) -> String {
        format!("reconcile:{}", self.id)
    }
}

/// Applies validated `changes` (grants and upserts) fetched at `fetched_at`, with the guards of
/// live delivery; returns what became of each, in order.
pub async fn apply_page(
    db: impl PgExecutor<'_>,
    run: RunRef<'_>,
    changes: &[Change],
    fetched_at: OffsetDateTime,
) -> Result<Vec<FetchedOutcome>, sqlx::Error> {
    let fetched = Fetched {
        source: &run.source(),
        changes,
        fetched_at,
        feed_channel: run.feed_channel,
    };
    apply_fetched(db, &fetched).await
}

/// Where the rows of a kind live, with their ids in the columns `stack_sync.key_of` takes:
/// a statement made of `Kind::info`'s names, constants all.
fn mirror_rows(kind: Kind) -> String {
    let info = kind.info();
    let id = |field: &str, null: &str| match info.key.iter().find(|part| part.field == field) {
        Some(part) => format!("{} as {field}", part.column),
        None => format!("{null} as {field}"),
    };
    format!(
        "select {}, {}, {}, synced_at from stack.{}",
        id("user_id", "null::uuid"),
        id("team_id", "null::uuid"),
        id("permission_id", "null::text"),
        info.table
    )
}

/// A mirrored row's key, as the database spells it and as its parts.
#[derive(Debug, sqlx::FromRow)]
struct KeyRow {
    key: String,
    user_id: Option<Uuid>,
    team_id: Option<Uuid>,
    permission_id: Option<String>,
}

/// Mirror rows this run did not see in Stack, present before it started, after the key `after`
/// (in the order of their text keys); with each key's text, to resume from.
pub async fn deletion_candidates(
    db: impl PgExecutor<'_>,
    run_id: i64,
    kind: Kind,
    started_at: OffsetDateTime,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Key)>, sqlx::Error> {
    let sql = format!(
        "select key, user_id, team_id, permission_id from (
             select stack_sync.key_of($2::stack_sync.kind, user_id, team_id, permission_id) as key, *
             from ({}) as rows
         ) as mirrored
         where synced_at < $3 and key > $4
           and not exists (
               select 1 from stack_sync.reconcile_seen s
               where s.run_id = $1 and s.kind = $2 and s.key = mirrored.key
           )
         order by key limit $5",
        mirror_rows(kind)
    );
    // Built from `mirror_rows`, constants all.
    let rows: Vec<KeyRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(run_id)
        .bind(kind.as_str())
        .bind(started_at)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let key = Key::from_parts(kind, row.user_id, row.team_id, row.permission_id)
                .ok_or_else(|| sqlx::Error::Protocol(format!("incomplete key {}", row.key)))?;
            Ok((row.key, key))
        })
        .collect()
}

/// How many rows the mirror holds of `kind`.
pub async fn row_count(db: impl PgExecutor<'_>, kind: Kind) -> Result<i64, sqlx::Error> {
    let sql = format!("select count(*) from ({}) as rows", mirror_rows(kind));
    sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(db).await
}

/// Removes a row Stack confirmed gone at `confirmed_at`; returns applied, unchanged or stale
/// (a newer webhook brought it back).
pub async fn delete_confirmed(
    db: impl PgExecutor<'_>,
    run: RunRef<'_>,
    key: &Key,
    confirmed_at: OffsetDateTime,
) -> Result<Outcome, sqlx::Error> {
    let removal = Change::Remove(key.clone());
    sqlx::query_scalar("select stack_sync.delete_confirmed($1, $2, $3, $4)")
        .bind(run.source())
        .bind(ChangeRecord::of(&removal))
        .bind(confirmed_at)
        .bind(run.feed_channel)
        .fetch_one(db)
        .await
}
