//! Housekeeping of `stack_sync.versions`: the versions of links removed long ago.

use sqlx::PgExecutor;

/// Deletes up to `batch_size` versions of memberships and permissions that were removed more
/// than `days` ago; returns how many.
///
/// Safe once the retention window has passed: a version only has to outrank messages that can
/// still arrive, and none older than the window can (Svix stops retrying after about 28 hours,
/// and replay reads recorded messages, which are pruned at the same age). User and team
/// tombstones are never pruned: they are what keeps a deleted id from coming back, whatever
/// reconcile is shown later.
pub async fn prune_removed_links_batch(
    db: impl PgExecutor<'_>,
    days: u32,
    batch_size: u32,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "delete from stack_sync.versions
         where (kind, key) in (
             select kind, key from stack_sync.versions
             where deleted and kind not in ('user', 'team')
               and removed_at < now() - make_interval(days => $1)
               and source_time < now() - make_interval(days => $1)
             limit $2
             for update skip locked
         )",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .bind(i64::from(batch_size))
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}
