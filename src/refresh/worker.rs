//! The refresh worker inside `serve`: takes due refreshes from the queue that webhooks fill
//! (`stack_sync.refresh_queue`), at most `refresh.concurrency` at a time, and retries failed ones
//! with a doubling back-off. Replicas share the queue: a claimed refresh is leased to one worker.

use std::time::Duration;

use tokio::task::JoinSet;
use uuid::Uuid;

use super::Refresher;
use crate::config::RefreshSettings;
use crate::metrics::Metrics;
use crate::store::refresh::{self as queue, Claimed};

/// How often an idle worker looks for due refreshes: a refresh waits `refresh.delay_ms` plus at
/// most this.
const POLL: Duration = Duration::from_millis(250);

/// How long a claimed refresh is this worker's. A worker that stops releases what it holds; one
/// that dies holds it this long. A fetch that outlasts it (the API retrying through a long
/// outage) may be done twice, which the guards make harmless.
const LEASE: Duration = Duration::from_secs(120);

/// The first wait after a failure, doubled with each further one up to `refresh.max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);

/// Runs refreshes as they fall due, forever, as `worker` in the queue's claims.
pub async fn run(refresher: Refresher, settings: RefreshSettings, metrics: Metrics, worker: Uuid) {
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = settings.concurrency.saturating_sub(running.len());
        let claimed = match free {
            0 => Vec::new(),
            free => claim(&refresher, worker, free).await,
        };
        let idle = claimed.is_empty();
        for claimed in claimed {
            let (refresher, metrics) = (refresher.clone(), metrics.clone());
            let max_backoff = settings.max_backoff;
            running.spawn(async move { refresh(&refresher, claimed, max_backoff, &metrics).await });
        }
        if idle {
            // Wake when a refresh finishes (a slot is free) or to look again.
            tokio::select! {
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

async fn claim(refresher: &Refresher, worker: Uuid, free: usize) -> Vec<Claimed> {
    let limit = i64::try_from(free).unwrap_or(i64::MAX);
    match queue::claim(&refresher.pool, worker, limit, LEASE).await {
        Ok(claimed) => claimed,
        Err(err) => {
            tracing::warn!(error = %err, "reading the refresh queue failed; trying again");
            Vec::new()
        }
    }
}

/// One claimed refresh: applied and removed from the queue, or put back to retry later.
async fn refresh(
    refresher: &Refresher,
    claimed: Claimed,
    max_backoff: Duration,
    metrics: &Metrics,
) {
    let target = claimed.target();
    let kind = target.kind;
    let outcome = match refresher.refresh(target).await {
        Ok(report) => {
            tracing::info!(
                refresh.kind = ?kind,
                refresh.id = %target.id,
                found = report.found,
                changed = report.changed(),
                coalesced = claimed.requests - 1,
                "refreshed"
            );
            metrics.refresh_done(claimed.requests);
            queue::finish(&refresher.pool, &claimed).await
        }
        Err(err) => {
            let retry_in = backoff(claimed.attempts, max_backoff);
            tracing::warn!(
                refresh.kind = ?kind,
                refresh.id = %target.id,
                attempt = claimed.attempts,
                retry_in_s = retry_in.as_secs(),
                error = %err,
                "refresh failed; retrying later"
            );
            metrics.refresh_failed();
            queue::fail(&refresher.pool, &claimed, &err.to_string(), retry_in).await
        }
    };
    // Left as claimed, it is due again when its lease ends.
    if let Err(err) = outcome {
        tracing::warn!(refresh.id = %target.id, error = %err, "updating the refresh queue failed");
    }
}

/// The wait before attempt `attempts + 1`.
fn backoff(attempts: i32, max: Duration) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_the_maximum() {
        let max = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
    }
}
