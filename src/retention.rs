//! Pruning of old `stack.webhook_events` rows, in small batches, in the background of `serve`.
//!
//! The window must outlast Svix's retry schedule (about 28 hours) so that a retry still finds
//! its message recorded; even past it, a late message cannot undo newer state, because the
//! mirror's versions and tombstones (`stack_sync.versions`) are kept.

use std::time::Duration;

use sqlx::PgPool;

use crate::config::RetentionSettings;
use crate::store::webhook_events::prune_batch;

/// Deletes every message older than the window, batch by batch; returns how many.
pub async fn prune(pool: &PgPool, settings: &RetentionSettings) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = prune_batch(pool, settings.days, settings.batch_size).await?;
        total += deleted;
        if deleted < u64::from(settings.batch_size) {
            return Ok(total);
        }
        // Give way to deliveries between batches.
        tokio::task::yield_now().await;
    }
}

/// Prunes now and then every `interval_secs`, forever; failures are logged and retried at the
/// next interval. Does nothing when `days` is 0 (keep forever).
pub async fn run(pool: PgPool, settings: RetentionSettings) {
    if settings.days == 0 {
        return;
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(settings.interval_secs.max(1)));
    loop {
        ticks.tick().await;
        match prune(&pool, &settings).await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(deleted, days = settings.days, "pruned old webhook events")
            }
            Err(err) => {
                tracing::warn!(error = %err, "pruning old webhook events failed; will retry")
            }
        }
    }
}
