//! Where the apply logic should live: the one-call plpgsql function the service uses
//! (`stack_sync.apply_event`, one round trip per event) against the same steps issued by Rust
//! as separate statements in a transaction it owns (begin, lock, duplicate check, tombstone and
//! version guard, write, record, commit: seven round trips). Both apply the same validated
//! `user.updated` changes, 16 at a time, against the same database, in alternating rounds; the
//! figures are events/s, p99 latency, and Postgres CPU time per event (all `postgres`
//! processes, from /proc). The decision and its figures are in `docs/design.md`.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench apply_strategies`
//! Knobs: `EVENTS` per round (default 20000), `CONCURRENCY` (16), `USERS` (1000), `ROUNDS` (2).

use std::time::{Duration, Instant};

use common::{Scratch, clock_ticks, knob, percentile, postgres_cpu_seconds, user_updates};
use futures::StreamExt;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use sqlx::types::Json;
use stack_sync::model::{Change, Kind, Outcome};
use stack_sync::store::mirror::{EventToApply, apply_event};
use stack_sync::store::schema;
use time::OffsetDateTime;

mod common;

/// One event ready to apply: message id, body, validated change.
struct Prepared {
    svix_id: String,
    body: String,
    change: Change,
}

#[derive(Clone, Copy, Debug)]
enum Strategy {
    /// `select stack_sync.apply_event(...)`: what the service does.
    Plpgsql,
    /// The same steps as separate statements in a Rust-owned transaction.
    RustTransaction,
}

#[tokio::main]
async fn main() {
    let (events, concurrency, users, rounds) = (
        knob("EVENTS", 20_000),
        knob("CONCURRENCY", 16),
        knob("USERS", 1000),
        knob("ROUNDS", 2),
    );
    let database = Scratch::create("stack_sync_strategies").await;
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency).unwrap())
        .connect(&database.url)
        .await
        .unwrap();
    schema::migrate(&pool).await.unwrap();

    println!(
        "{events} user.updated events per round, {concurrency} at a time, {users} users, \
         Postgres CPU from /proc at {} ticks/s",
        clock_ticks()
    );
    let mut start = OffsetDateTime::now_utc() - time::Duration::hours(2);
    for round in 1..=rounds {
        for strategy in [Strategy::Plpgsql, Strategy::RustTransaction] {
            let prepared = prepared_updates(events, users, start);
            start += time::Duration::minutes(10);
            let report = run(&pool, strategy, &prepared, concurrency).await;
            println!("round {round} {strategy:?}: {report}");
        }
    }
    pool.close().await;
    database.drop_it().await;
}

/// Applies every event with `strategy`, `concurrency` at a time, and describes the run.
async fn run(
    pool: &PgPool,
    strategy: Strategy,
    prepared: &[Prepared],
    concurrency: usize,
) -> String {
    let cpu_before = postgres_cpu_seconds();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(prepared)
        .map(|event| async move {
            let sent = Instant::now();
            let outcome = match strategy {
                Strategy::Plpgsql => plpgsql(pool, event).await,
                Strategy::RustTransaction => rust_transaction(pool, event).await,
            };
            assert_eq!(outcome, Outcome::Applied);
            sent.elapsed()
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = postgres_cpu_seconds() - cpu_before;
    latencies.sort();
    let count = prepared.len() as f64;
    format!(
        "{:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, Postgres CPU {:.0} µs/event",
        count / elapsed,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        cpu / count * 1e6
    )
}

async fn plpgsql(pool: &PgPool, event: &Prepared) -> Outcome {
    let to_apply = EventToApply {
        svix_id: &event.svix_id,
        event_type: "user.updated",
        payload: Some(event.body.as_bytes()),
        source_time: stack_sync::event_time::source_time(&event.svix_id),
        change: &event.change,
        feed_channel: None,
        refresh: None,
    };
    apply_event(pool, &to_apply, false).await.unwrap()
}

/// The steps of `apply_event` for a user upsert, each its own statement.
async fn rust_transaction(pool: &PgPool, event: &Prepared) -> Outcome {
    let Change::Upsert { key, row, data } = &event.change else {
        unreachable!("user.updated")
    };
    let (svix_id, key) = (event.svix_id.as_str(), key.to_string());
    let time = stack_sync::event_time::source_time(svix_id).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&key)
        .execute(&mut *tx)
        .await
        .unwrap();
    let seen: bool =
        sqlx::query_scalar("select exists (select 1 from stack.webhook_events where svix_id = $1)")
            .bind(svix_id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert!(!seen);
    let moved: bool = sqlx::query_scalar(
        "select not stack_sync.is_deleted('user', $1)
                and stack_sync.advance('user', $1, $2, false, $3)",
    )
    .bind(&key)
    .bind(time)
    .bind(svix_id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert!(moved);
    let outcome: Outcome = sqlx::query_scalar("select stack_sync.write_user($1, $2, $3)")
        .bind(Json(&row.columns))
        .bind(Json(data))
        .bind(svix_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "insert into stack.webhook_events (svix_id, event_type, payload, source_time, outcome)
         values ($1, 'user.updated', $2, $3, $4)",
    )
    .bind(svix_id)
    .bind(event.body.as_bytes())
    .bind(time)
    .bind(outcome.as_str())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    outcome
}

/// `user_updates`, validated as the service validates them.
fn prepared_updates(events: usize, users: usize, start: OffsetDateTime) -> Vec<Prepared> {
    user_updates(events, users, start)
        .into_iter()
        .map(|(svix_id, event)| Prepared {
            change: Change::parse(Kind::User, false, event["data"].clone()).unwrap(),
            body: event.to_string(),
            svix_id,
        })
        .collect()
}
