//! SQL of `reconcile`: its run records, the marks of what it saw, applying fetched pages,
//! finding the rows Stack no longer has, and the lock that keeps runs apart.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::reconcile::Entity;

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
    entity: Entity,
    keys: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into stack_sync.reconcile_seen (run_id, kind, key)
         select $1, $2, unnest($3::text[])
         on conflict do nothing
         returning key",
    )
    .bind(run_id)
    .bind(entity.kind())
    .bind(keys)
    .fetch_all(db)
    .await
}

/// Keys this run saw, in order, after `after`; for walking the teams without holding them all.
pub async fn seen_after(
    db: impl PgExecutor<'_>,
    run_id: i64,
    entity: Entity,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select key from stack_sync.reconcile_seen
         where run_id = $1 and kind = $2 and key > $3
         order by key limit $4",
    )
    .bind(run_id)
    .bind(entity.kind())
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Applies fetched objects of `entity` with the guards of live delivery; returns the counts
/// `{"created", "updated", "unchanged", "stale"}`.
pub async fn apply_page(
    db: impl PgExecutor<'_>,
    run_id: i64,
    entity: Entity,
    items: &[Value],
    fetched_at: OffsetDateTime,
) -> Result<Value, sqlx::Error> {
    let counts: Json<Value> =
        sqlx::query_scalar("select stack_sync.reconcile_apply($1, $2, $3, $4)")
            .bind(run_id)
            .bind(entity.upsert_event())
            .bind(Json(items))
            .bind(fetched_at)
            .fetch_one(db)
            .await?;
    Ok(counts.0)
}

/// Mirror rows this run did not see in Stack, present before it started, after `after`.
pub async fn deletion_candidates(
    db: impl PgExecutor<'_>,
    run_id: i64,
    entity: Entity,
    started_at: OffsetDateTime,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let (table, key) = (entity.table(), entity.key_sql());
    let sql = format!(
        "select key from (select {key} as key, synced_at from {table}) as mirrored
         where synced_at < $3 and key > $4
           and not exists (
               select 1 from stack_sync.reconcile_seen s
               where s.run_id = $1 and s.kind = $2 and s.key = mirrored.key
           )
         order by key limit $5"
    );
    sqlx::query_scalar(&sql)
        .bind(run_id)
        .bind(entity.kind())
        .bind(started_at)
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// How many rows the mirror holds of `entity`.
pub async fn row_count(db: impl PgExecutor<'_>, entity: Entity) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("select count(*) from {}", entity.table()))
        .fetch_one(db)
        .await
}

/// Removes a row Stack confirmed gone at `confirmed_at`; returns 'applied', 'unchanged' or
/// 'stale' (a newer webhook brought it back).
pub async fn delete_confirmed(
    db: impl PgExecutor<'_>,
    run_id: i64,
    entity: Entity,
    data: &Value,
    confirmed_at: OffsetDateTime,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("select stack_sync.reconcile_delete($1, $2, $3, $4)")
        .bind(run_id)
        .bind(entity.delete_event())
        .bind(Json(data))
        .bind(confirmed_at)
        .fetch_one(db)
        .await
}
