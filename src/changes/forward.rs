//! `stack-sync forward`: publishes the change log to NATS JetStream, one message per change, in
//! position order, each with its position as `Nats-Msg-Id`, so that JetStream's duplicate window
//! turns a republish after a crash into a no-op. The forwarder's position is a registered
//! consumer's (`stack_sync.change_consumers`), advanced only after JetStream acknowledged every
//! message up to it; one forwarder runs at a time, through a session advisory lock.
//!
//! Other sinks (Kafka, Redis Streams, HTTP) would be other [`Sink`]s over the same loop.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use sqlx::PgPool;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use tokio::time::Instant;

use crate::config::ForwardSettings;
use crate::metrics::Metrics;
use crate::model::Position;
use crate::store::changes::{self, LoggedChange};

/// How long an idle forwarder waits before looking for new changes.
const POLL: Duration = Duration::from_millis(100);

/// How often the lag gauges are read while forwarding.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// How long JetStream remembers a message id: a republish within it is dropped. Longer than
/// any gap between an acknowledgement and the position's commit.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// Why forwarding stopped (each is retried by [`run_forever`]).
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("NATS: {0}")]
    Broker(String),
}

fn broker(err: impl std::fmt::Display) -> ForwardError {
    ForwardError::Broker(err.to_string())
}

/// Where changes go. JetStream is the one built; the loop needs only this.
trait Sink {
    /// The consumer name the sink's position is kept under.
    fn name(&self) -> String;

    /// Publishes `batch` in order and returns once all are acknowledged.
    async fn publish(&self, batch: &[LoggedChange]) -> Result<(), ForwardError>;
}

/// A JetStream stream, subjects `<prefix>.<table>.<operation>`.
struct JetStream {
    context: jetstream::Context,
    stream: String,
    prefix: String,
}

impl JetStream {
    async fn connect(settings: &ForwardSettings, url: &str) -> Result<Self, ForwardError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(broker)?;
        let context = jetstream::new(client);
        let config = stream::Config {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        context.get_or_create_stream(config).await.map_err(broker)?;
        Ok(Self {
            context,
            stream: settings.stream.clone(),
            prefix: settings.subject_prefix.clone(),
        })
    }
}

impl Sink for JetStream {
    fn name(&self) -> String {
        format!("nats:{}", self.stream)
    }

    async fn publish(&self, batch: &[LoggedChange]) -> Result<(), ForwardError> {
        let mut acks = Vec::with_capacity(batch.len());
        // Sent back to back on one connection, so JetStream stores them in this order.
        for change in batch {
            let subject = format!("{}.{}.{}", self.prefix, change.table_name, change.operation);
            let payload = serde_json::to_vec(change).expect("a change serializes");
            let message = PublishMessage::build()
                .message_id(&change.position)
                .payload(payload.into());
            let ack = self
                .context
                .send_publish(subject, message)
                .await
                .map_err(broker)?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(broker)?;
        }
        Ok(())
    }
}

/// Forwards forever, in `serve` or `stack-sync forward`: waits for the lock while another
/// forwarder runs, and starts over after any failure, from the last acknowledged position.
pub async fn run_forever(pool: PgPool, settings: ForwardSettings, metrics: Metrics) {
    let mut wait = Duration::from_secs(1);
    loop {
        match run(&pool, &settings, &metrics).await {
            Ok(()) => wait = Duration::from_secs(1),
            Err(err) => {
                metrics.forward_failed();
                tracing::warn!(error = %err, retry_in_s = wait.as_secs(), "forwarding failed; starting over");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Takes the lock (waiting while another forwarder holds it), connects, and forwards until a
/// failure. `Ok` only when the lock was not free, after a pause.
async fn run(
    pool: &PgPool,
    settings: &ForwardSettings,
    metrics: &Metrics,
) -> Result<(), ForwardError> {
    let mut lock: PoolConnection<Postgres> = pool.acquire().await?;
    if !changes::try_lock_forwarder(&mut lock).await? {
        tracing::debug!("another forwarder runs; waiting for its lock");
        tokio::time::sleep(Duration::from_secs(5)).await;
        return Ok(());
    }
    let url = settings.nats_url.as_deref().unwrap_or_default();
    let sink = JetStream::connect(settings, url).await?;
    tracing::info!(stream = %settings.stream, "forwarding the change log to NATS");
    // The lock is the connection's: it goes if the process dies, or when this returns.
    let forwarded = forward(pool, &sink, i64::from(settings.batch_size), metrics).await;
    lock.detach();
    forwarded
}

/// Publishes every settled change after the sink's position, batch by batch, forever.
async fn forward(
    pool: &PgPool,
    sink: &impl Sink,
    batch_size: i64,
    metrics: &Metrics,
) -> Result<(), ForwardError> {
    let name = sink.name();
    let mut position = changes::consumer_position(pool, &name)
        .await?
        .unwrap_or(Position::START);
    let mut lag_read = Instant::now() - LAG_EVERY;
    loop {
        if lag_read.elapsed() >= LAG_EVERY {
            metrics.forward_lag(changes::lag(pool, &name).await?);
            lag_read = Instant::now();
        }
        let batch = changes::after(pool, position, batch_size).await?;
        let Some(last) = batch.last() else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        sink.publish(&batch).await?;
        position = last.position();
        changes::advance_consumer(pool, &name, position).await?;
        metrics.forwarded(batch.len() as u64);
    }
}
