//! Throughput of the whole hot path: signed HTTP deliveries of `user.updated` events into the
//! service (in-process, release build) against a real Postgres. Compare with
//! `bench/pgbench.sh`, which makes Postgres do the same writes as one statement per transaction.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench throughput`
//! Knobs: `EVENTS` (default 20000), `CONCURRENCY` (default 8), `USERS` (default 1000); `FEED=1`
//! turns the change feed on, and `LISTEN=1` also keeps a listener on its channel that counts
//! what it receives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Scratch, knob, percentile, user_updates};
use futures::StreamExt;
use stack_sync::config::Settings;
use stack_sync::signature::SigningKey;
use stack_sync::startup::{Application, connect};
use stack_sync::store::schema;

mod common;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() {
    let (events, concurrency, users) = (
        knob("EVENTS", 20_000),
        knob("CONCURRENCY", 8),
        knob("USERS", 1000),
    );
    let database = Scratch::create("stack_sync_bench").await;
    let feed = knob("FEED", 0) == 1;
    let env: HashMap<String, String> = [
        (
            "STACK_SYNC_FEED__ENABLED",
            if feed { "true" } else { "false" },
        ),
        ("DATABASE_URL", database.url.as_str()),
        ("STACK_WEBHOOK_SECRET", SECRET),
        ("PORT", "0"),
        ("STACK_SYNC_METRICS__PORT", "0"),
        ("STACK_SYNC_SERVER__HOST", "127.0.0.1"),
        (
            "STACK_SYNC_DATABASE__MAX_CONNECTIONS",
            &concurrency.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::load(None, &env).unwrap();
    let pool = connect(&settings).await.unwrap();
    schema::migrate(&pool).await.unwrap();
    let app = Application::build_with_pool(&settings, pool.clone())
        .await
        .unwrap();
    let endpoint = format!("http://{}/webhooks/stack", app.local_addr().unwrap());
    let server_task = tokio::spawn(app.run_until_stopped());
    let listener =
        (knob("LISTEN", 0) == 1).then(|| tokio::spawn(count_notifications(database.url.clone())));

    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let bodies: Vec<(String, String)> = user_updates(events, users, start)
        .into_iter()
        .map(|(id, event)| (id, event.to_string()))
        .collect();
    let (elapsed, mut latencies) = deliver(&endpoint, &bodies, concurrency).await;

    latencies.sort();
    println!(
        "{events} user.updated deliveries over HTTP, {concurrency} at a time, {users} users: \
         {:.0} events/s; latency p50 {:?}, p99 {:?}",
        events as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    if let Some(listener) = listener {
        // Notifications follow their commits; give the last ones a moment to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        listener.abort();
        println!(
            "feed: {} notifications received",
            NOTIFIED.load(Ordering::Relaxed)
        );
    }
    server_task.abort();
    pool.close().await;
    database.drop_it().await;
}

async fn deliver(
    endpoint: &str,
    bodies: &[(String, String)],
    concurrency: usize,
) -> (Duration, Vec<Duration>) {
    let key = SigningKey::from_secret(SECRET).unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let latencies = futures::stream::iter(bodies)
        .map(|(id, body)| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let timestamp = i64::try_from(now).unwrap();
            let request = client
                .post(endpoint)
                .header("svix-id", id)
                .header("svix-timestamp", timestamp.to_string())
                .header(
                    "svix-signature",
                    key.signature_header(id, timestamp, body.as_bytes()),
                )
                .body(body.clone());
            async move {
                let sent = Instant::now();
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                sent.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    (started.elapsed(), latencies)
}

static NOTIFIED: AtomicUsize = AtomicUsize::new(0);

/// Listens on the feed's channel and counts notifications until aborted.
async fn count_notifications(url: String) {
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("stack_sync").await.unwrap();
    while listener.recv().await.is_ok() {
        NOTIFIED.fetch_add(1, Ordering::Relaxed);
    }
}
