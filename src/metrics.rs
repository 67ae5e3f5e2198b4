//! Prometheus metrics, served on a listener of their own (`metrics.port`) so that the webhook
//! port shows nothing internal. Counters and histograms are recorded as deliveries are
//! answered; what must be right across replicas and restarts (failed messages waiting, the last
//! reconcile) is read from the database by a background refresh.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::model::Outcome;
use crate::store::status::{self, LastReconcile};

/// How often the database-backed gauges are refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    r#type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    entity: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of one service; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    webhooks: Family<DeliveryLabels, Counter>,
    rejections: Family<ReasonLabels, Counter>,
    duration: Histogram,
    lag: Histogram,
    last_received: FloatGauge,
    last_applied: FloatGauge,
    failed_events: Gauge,
    reconcile_last_success: FloatGauge,
    reconcile_last_status: Family<StatusLabels, Gauge>,
    reconcile_changes: Family<ChangeLabels, Gauge>,
    pool_connections: Family<PoolLabels, Gauge>,
    refreshes: Family<ResultLabels, Counter>,
    refreshes_coalesced: Counter,
    refresh_pending: Gauge,
    refresh_failing: Gauge,
    refresh_oldest_pending: FloatGauge,
    changes_pruned_unread: Counter,
    forwarded: Counter,
    forward_failures: Counter,
    forward_lag_changes: Gauge,
    forward_lag_seconds: FloatGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let inner = Inner {
            webhooks: Family::default(),
            rejections: Family::default(),
            // 1 ms to about 16 s, doubling.
            duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            // 10 ms to about 45 h, quadrupling: retries after an outage arrive hours late.
            lag: Histogram::new(exponential_buckets(0.01, 4.0, 13)),
            last_received: FloatGauge::default(),
            last_applied: FloatGauge::default(),
            failed_events: Gauge::default(),
            reconcile_last_success: FloatGauge::default(),
            reconcile_last_status: Family::default(),
            reconcile_changes: Family::default(),
            pool_connections: Family::default(),
            refreshes: Family::default(),
            refreshes_coalesced: Counter::default(),
            refresh_pending: Gauge::default(),
            refresh_failing: Gauge::default(),
            refresh_oldest_pending: FloatGauge::default(),
            changes_pruned_unread: Counter::default(),
            forwarded: Counter::default(),
            forward_failures: Counter::default(),
            forward_lag_changes: Gauge::default(),
            forward_lag_seconds: FloatGauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "stack_sync_webhooks",
            "Deliveries answered, by event type and outcome",
            inner.webhooks.clone(),
        );
        r.register(
            "stack_sync_webhook_rejections",
            "Requests refused before processing (401, 413, 400), by error code",
            inner.rejections.clone(),
        );
        r.register(
            "stack_sync_webhook_duration_seconds",
            "Time from receiving a webhook request to answering it",
            inner.duration.clone(),
        );
        r.register(
            "stack_sync_delivery_lag_seconds",
            "Arrival time minus the event's source time (when Svix created the message)",
            inner.lag.clone(),
        );
        r.register(
            "stack_sync_last_received_timestamp_seconds",
            "When this replica last answered a verified webhook (Unix time)",
            inner.last_received.clone(),
        );
        r.register(
            "stack_sync_last_applied_timestamp_seconds",
            "When this replica last applied a webhook to the mirror (Unix time)",
            inner.last_applied.clone(),
        );
        r.register(
            "stack_sync_failed_events",
            "Messages recorded as failed and not replayed since (from the database)",
            inner.failed_events.clone(),
        );
        r.register(
            "stack_sync_reconcile_last_success_timestamp_seconds",
            "When the last successful reconcile finished (Unix time, from the database)",
            inner.reconcile_last_success.clone(),
        );
        r.register(
            "stack_sync_reconcile_last_status",
            "1 for the status of the last reconcile run: running, succeeded or failed",
            inner.reconcile_last_status.clone(),
        );
        r.register(
            "stack_sync_reconcile_last_changes",
            "Rows the last reconcile run changed, by entity and kind of change",
            inner.reconcile_changes.clone(),
        );
        r.register(
            "stack_sync_db_pool_connections",
            "Database pool connections, by state: in_use, idle",
            inner.pool_connections.clone(),
        );
        r.register(
            "stack_sync_refreshes",
            "Refreshes from Stack's API this replica finished, by result: done, failed",
            inner.refreshes.clone(),
        );
        r.register(
            "stack_sync_refreshes_coalesced",
            "Refresh requests served by another request's fetch (webhooks about one object in \
             the coalescing delay)",
            inner.refreshes_coalesced.clone(),
        );
        r.register(
            "stack_sync_refresh_pending",
            "Refreshes waiting in the queue, failing ones included (from the database)",
            inner.refresh_pending.clone(),
        );
        r.register(
            "stack_sync_refresh_failing",
            "Refreshes waiting whose last attempt failed (from the database)",
            inner.refresh_failing.clone(),
        );
        r.register(
            "stack_sync_refresh_oldest_pending_seconds",
            "How long the oldest waiting refresh has waited (from the database; 0 when none)",
            inner.refresh_oldest_pending.clone(),
        );
        r.register(
            "stack_sync_changes_pruned_unread",
            "Changes pruned before a registered consumer read them (older than \
             changes.max_age_days)",
            inner.changes_pruned_unread.clone(),
        );
        r.register(
            "stack_sync_forwarded_changes",
            "Changes this replica's forwarder published and the broker acknowledged",
            inner.forwarded.clone(),
        );
        r.register(
            "stack_sync_forward_failures",
            "Forwarding rounds that failed (broker or database), each retried",
            inner.forward_failures.clone(),
        );
        r.register(
            "stack_sync_forward_lag_changes",
            "Settled changes the forwarder has not published yet (while this replica forwards)",
            inner.forward_lag_changes.clone(),
        );
        r.register(
            "stack_sync_forward_lag_seconds",
            "Age of the oldest change the forwarder has not published yet (0 when none)",
            inner.forward_lag_seconds.clone(),
        );
        Self(Arc::new(Inner { registry, ..inner }))
    }

    /// A verified delivery answered with `outcome`; `event_type` is bounded to the types the
    /// service knows, so that a sender cannot grow the label set.
    pub fn delivery(&self, event_type: Option<&str>, outcome: Outcome, lag: Option<Duration>) {
        let known = event_type.filter(|t| crate::samples::event_types().any(|k| k == *t));
        let labels = DeliveryLabels {
            r#type: known.unwrap_or("other").to_owned(),
            outcome: outcome.as_str().to_owned(),
        };
        self.0.webhooks.get_or_create(&labels).inc();
        let now = unix_now();
        self.0.last_received.set(now);
        if outcome == Outcome::Applied {
            self.0.last_applied.set(now);
        }
        if let Some(lag) = lag {
            self.0.lag.observe(lag.as_secs_f64());
        }
    }

    /// A verified delivery answered 503 because the database failed; Svix retries it.
    pub fn unavailable(&self) {
        let labels = DeliveryLabels {
            r#type: "other".to_owned(),
            outcome: "unavailable".to_owned(),
        };
        self.0.webhooks.get_or_create(&labels).inc();
    }

    /// A request refused before processing, by the code its answer carries.
    pub fn rejection(&self, code: &str) {
        let labels = ReasonLabels {
            reason: code.to_owned(),
        };
        self.0.rejections.get_or_create(&labels).inc();
    }

    /// How long a webhook request took, receive to answer.
    pub fn duration(&self, took: Duration) {
        self.0.duration.observe(took.as_secs_f64());
    }

    /// A refresh applied, serving `requests` webhooks' requests.
    pub fn refresh_done(&self, requests: i32) {
        self.refresh_result("done");
        let coalesced = u64::try_from(requests.saturating_sub(1)).unwrap_or(0);
        self.0.refreshes_coalesced.inc_by(coalesced);
    }

    /// A refresh that failed, to be retried.
    pub fn refresh_failed(&self) {
        self.refresh_result("failed");
    }

    fn refresh_result(&self, result: &str) {
        let labels = ResultLabels {
            result: result.to_owned(),
        };
        self.0.refreshes.get_or_create(&labels).inc();
    }

    /// Changes pruned before a registered consumer read them.
    pub fn changes_pruned_unread(&self, count: u64) {
        self.0.changes_pruned_unread.inc_by(count);
    }

    /// Changes published and acknowledged.
    pub fn forwarded(&self, count: u64) {
        self.0.forwarded.inc_by(count);
    }

    /// A forwarding round that failed.
    pub fn forward_failed(&self) {
        self.0.forward_failures.inc();
    }

    /// How far behind the forwarder is.
    pub fn forward_lag(&self, lag: crate::store::changes::Lag) {
        self.0.forward_lag_changes.set(lag.changes);
        self.0.forward_lag_seconds.set(lag.seconds);
    }

    /// Reads the database-backed gauges again.
    pub async fn refresh(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        self.0
            .failed_events
            .set(status::failed_waiting(pool).await?);
        if let Some(success) = status::last_success(pool).await? {
            self.0.reconcile_last_success.set(unix_seconds(success));
        }
        if let Some(last) = status::last_reconcile(pool).await? {
            self.set_last_reconcile(&last);
        }
        let queue = crate::store::refresh::pending(pool)
            .await?
            .unwrap_or_default();
        self.0.refresh_pending.set(queue.pending);
        self.0.refresh_failing.set(queue.failing);
        self.0
            .refresh_oldest_pending
            .set(queue.oldest_seconds.unwrap_or(0.0));
        Ok(())
    }

    fn set_last_reconcile(&self, last: &LastReconcile) {
        self.0.reconcile_last_status.clear();
        let labels = StatusLabels {
            status: last.status.clone(),
        };
        self.0.reconcile_last_status.get_or_create(&labels).set(1);
        for (entity, kind, count) in last.changes() {
            let labels = ChangeLabels {
                entity: entity.to_owned(),
                kind: kind.to_owned(),
            };
            self.0.reconcile_changes.get_or_create(&labels).set(count);
        }
    }

    /// The Prometheus text exposition of every metric, with the pool's state as of now.
    pub fn render(&self, pool: &PgPool) -> String {
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        let size = i64::from(pool.size());
        for (state, count) in [("idle", idle), ("in_use", size - idle)] {
            let labels = PoolLabels {
                state: state.to_owned(),
            };
            self.0.pool_connections.get_or_create(&labels).set(count);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.0.registry);
        text
    }
}

/// Refreshes the database-backed gauges every [`REFRESH_EVERY`], forever; failures are logged
/// and retried at the next tick.
pub async fn refresh_forever(metrics: Metrics, pool: PgPool) {
    let mut ticks = tokio::time::interval(REFRESH_EVERY);
    loop {
        ticks.tick().await;
        if let Err(err) = metrics.refresh(&pool).await {
            tracing::warn!(error = %err, "refreshing metrics from the database failed");
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

fn unix_seconds(time: time::OffsetDateTime) -> f64 {
    time.unix_timestamp_nanos() as f64 / 1e9
}
