//! Pruning of old `stack.webhook_events` rows, of the versions of links removed as long ago, and
//! of the change log's rows every consumer has read, in small batches, in the background of
//! `serve`.
//!
//! The window must outlast Svix's retry schedule (about 28 hours) so that a retry still finds
//! its message recorded; even past it, a late message cannot undo newer state, because the
//! mirror's versions of live rows and the user and team tombstones (`stack_sync.versions`) are
//! kept.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::PgPool;
use tokio::time::Instant;

use crate::config::RetentionSettings;
use crate::metrics::Metrics;
use crate::store::changes::{self, Pruned};
use crate::store::versions::prune_removed_links_batch;
use crate::store::webhook_events::prune_batch;

/// Deletes every message older than `days`, `batch_size` at a time; returns how many.
pub async fn prune(pool: &PgPool, days: u32, batch_size: u32) -> Result<u64, sqlx::Error> {
    in_batches(batch_size, || prune_batch(pool, days, batch_size)).await
}

/// Deletes the versions of memberships and permissions removed more than `days` ago,
/// `batch_size` at a time; returns how many.
pub async fn prune_removed_links(
    pool: &PgPool,
    days: u32,
    batch_size: u32,
) -> Result<u64, sqlx::Error> {
    in_batches(batch_size, || {
        prune_removed_links_batch(pool, days, batch_size)
    })
    .await
}

/// Runs `batch` until it deletes fewer than `batch_size` rows; returns the total. Each batch is
/// a transaction of its own, so deliveries never wait long behind one.
async fn in_batches<Batch>(
    batch_size: u32,
    mut batch: impl FnMut() -> Batch,
) -> Result<u64, sqlx::Error>
where
    Batch: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let started = Instant::now();
        let deleted = batch().await?;
        total += deleted;
        if deleted < u64::from(batch_size) {
            return Ok(total);
        }
        // Give way to deliveries: rest as long as the batch took, so that working through a
        // large backlog holds Postgres at most half the time. Back to back, pruning 5 million
        // rows took 14 to 21 % off the delivery rate on 2 cores; paced, 1 to 13 %
        // (BENCHMARKS.md).
        tokio::time::sleep(started.elapsed()).await;
    }
}

/// Deletes the change log's rows past the window that every registered consumer has read, and
/// any past `max_age_days`; returns how many, and how many of those were unread.
pub async fn prune_changes(
    pool: &PgPool,
    days: Option<u32>,
    max_age_days: u32,
    batch_size: u32,
) -> Result<Pruned, sqlx::Error> {
    let unread = AtomicU64::new(0);
    let deleted = in_batches(batch_size, || async {
        let pruned = changes::prune(pool, days, max_age_days, i64::from(batch_size)).await?;
        unread.fetch_add(pruned.unread, Ordering::Relaxed);
        Ok(pruned.deleted)
    })
    .await?;
    Ok(Pruned {
        deleted,
        unread: unread.into_inner(),
    })
}

/// Prunes now and then every `interval`, forever; failures are logged and retried at the
/// next interval. Messages kept forever are not pruned; the change log still is, at
/// `changes_max_age_days`.
pub async fn run(
    pool: PgPool,
    settings: RetentionSettings,
    changes_max_age_days: u32,
    metrics: Metrics,
) {
    let mut ticks = tokio::time::interval(settings.interval);
    loop {
        ticks.tick().await;
        let pruned = prune_changes(
            &pool,
            settings.days,
            changes_max_age_days,
            settings.batch_size,
        );
        match pruned.await {
            Ok(Pruned { deleted: 0, .. }) => {}
            Ok(Pruned { deleted, unread: 0 }) => tracing::info!(deleted, "pruned the change log"),
            Ok(Pruned { deleted, unread }) => {
                metrics.changes_pruned_unread(unread);
                tracing::warn!(
                    deleted,
                    unread,
                    max_age_days = changes_max_age_days,
                    "pruned changes a registered consumer had not read: they were older than \
                     changes.max_age_days"
                );
            }
            Err(err) => tracing::warn!(error = %err, "pruning the change log failed; will retry"),
        }
        let Some(days) = settings.days else {
            continue;
        };
        match prune(&pool, days, settings.batch_size).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(deleted, days, "pruned old webhook events")
            }
            Err(err) => {
                tracing::warn!(error = %err, "pruning old webhook events failed; will retry")
            }
        }
        match prune_removed_links(&pool, days, settings.batch_size).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "pruned versions of removed links"),
            Err(err) => {
                tracing::warn!(error = %err, "pruning versions of removed links failed; will retry")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_backlog_is_pruned_at_most_half_the_time() {
        const TAKES: Duration = Duration::from_millis(40);
        let mut left = 3_500u64;
        let started = Instant::now();

        let total = in_batches(1000, || {
            let deleted = left.min(1000);
            left -= deleted;
            async move {
                tokio::time::sleep(TAKES).await;
                Ok(deleted)
            }
        })
        .await
        .unwrap();

        assert_eq!(total, 3_500);
        // Four batches, and a rest as long as each of the three full ones.
        assert_eq!(started.elapsed(), TAKES * 7);
    }
}
