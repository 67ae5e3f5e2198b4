//! Throughput of the whole hot path: signed HTTP deliveries of `user.updated` events (or, with
//! `MIX=1`, of every event type in the proportions of `common::MIX`, or with `MIX_ONLY=<type>`
//! that type's share of the mix) into the service (in-process, release build) against a real
//! Postgres. Compare with
//! `bench/pgbench.sh`, which makes Postgres do the same writes as one statement per transaction.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench throughput`
//! Knobs: `EVENTS` (default 20000), `CONCURRENCY` (default 8), `USERS` (default 1000); `FEED=1`
//! turns the change feed on, and `LISTEN=1` also keeps a listener on its channel that counts
//! what it receives. Tables as they grow: `MIRRORED_USERS` more users already in the mirror,
//! `RECORDED_EVENTS` messages already recorded (both generated in SQL before the run), and
//! `EXPIRED_EVENTS` recorded messages past the retention window, which the service starts
//! pruning as the deliveries begin. `KEEP=1` leaves the scratch database behind to look into;
//! `KEEP_BODIES` sets `webhook.keep_bodies` (`bench/keep_bodies.sh` runs each value).
//! `REFRESH=1` turns refresh on against a fake Stack API in this process, answering each request
//! after `LATENCY_MS` (default 40) with the object asked for and empty link lists, and reports the
//! API requests per webhook and how long the queue took to drain after the last delivery
//! (`bench/refresh.sh` runs it off and on). WAL and CPU then count until the queue is empty.
//! `CHANGES=1` turns the change log on; `FORWARD_NATS=<url>` also runs the forwarder inside the
//! service, and reports how long it took to publish every change after the last delivery and
//! the end-to-end latency (commit to a NATS subscriber), from a subscription of the bench's own
//! (`bench/changes.sh` runs the three).
//! `RECEIVER=minimal` sends the same deliveries to a minimal receiver instead (see
//! `minimal_receiver`), on the same Postgres, for the ratio (`bench/receivers.sh` runs both).
//! `PROFILE=1` turns on `track_functions` for the scratch database and prints, per delivery, the
//! time spent in each `stack_sync` function, by itself and with what it calls; when the server
//! loads `pg_stat_statements`, also the statements that took the most time, those inside the
//! functions included if `pg_stat_statements.track = all`.
//! How the service connects: `SSLMODE` (added to its URL; unset, libpq's `prefer`) and
//! `VIA_PORT`, a pooler's port on the same host (`bench/databases.sh` runs all three).
//!
//! Besides the rate and latency, it reports what each delivery cost Postgres: the WAL it wrote,
//! the CPU time of its processes, and the growth of the replay log on disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    Scratch, clock_ticks, event_mix, knob, percentile, postgres_cpu_seconds, user_updates,
};
use futures::StreamExt;
use sqlx::Connection;
use stack_sync::config::Settings;
use stack_sync::signature::SigningKey;
use stack_sync::startup::{Application, connect};
use stack_sync::store::schema;

mod common;
#[path = "throughput/minimal_receiver.rs"]
mod minimal_receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() {
    let (events, concurrency, users) = (
        knob("EVENTS", 20_000),
        knob("CONCURRENCY", 8),
        knob("USERS", 1000),
    );
    let database = Scratch::create("stack_sync_bench").await;
    let profile = knob("PROFILE", 0) == 1;
    if profile {
        // Before any session of the service opens, so that every one counts.
        let mut admin = sqlx::PgConnection::connect(&database.url).await.unwrap();
        // With pg_stat_statements loaded, the statements inside the functions count too, and
        // their planning apart; the server's own setting can stay `none`, costing nothing.
        let sql = "select format('alter database %I set track_functions = ''pl''', d)
                   || case when 'pg_stat_statements' = any(string_to_array(
                          current_setting('shared_preload_libraries'), ','))
                      then format('; alter database %I set pg_stat_statements.track = ''all''; \
                                   alter database %I set pg_stat_statements.track_planning = on',
                                  d, d) else '' end
                   from current_database() as d";
        let alter: String = sqlx::query_scalar(sql).fetch_one(&mut admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(alter))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let service_url = service_url(&database.url);
    let feed = knob("FEED", 0) == 1;
    // `KEEP_BODIES` sets webhook.keep_bodies (unset: the default).
    let keep_bodies = std::env::var("KEEP_BODIES").ok();
    let mut env: HashMap<String, String> = [
        (
            "STACK_SYNC_FEED__ENABLED",
            if feed { "true" } else { "false" },
        ),
        ("DATABASE_URL", service_url.as_str()),
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
    if let Some(keep) = keep_bodies {
        env.insert("STACK_SYNC_WEBHOOK__KEEP_BODIES".to_owned(), keep);
    }
    if knob("CHANGES", 0) == 1 {
        env.insert("STACK_SYNC_CHANGES__ENABLED".to_owned(), "true".to_owned());
    }
    let forward_nats = std::env::var("FORWARD_NATS").ok();
    if let Some(url) = &forward_nats {
        env.insert("STACK_SYNC_CHANGES__ENABLED".to_owned(), "true".to_owned());
        env.insert("STACK_SYNC_FORWARD__IN_SERVE".to_owned(), "true".to_owned());
        env.insert("STACK_SYNC_FORWARD__NATS_URL".to_owned(), url.clone());
        // A stream of this run's own, so that runs do not add up.
        let stream = format!("BENCH_{}", std::process::id());
        env.insert("STACK_SYNC_FORWARD__STREAM".to_owned(), stream.clone());
        env.insert(
            "STACK_SYNC_FORWARD__SUBJECT_PREFIX".to_owned(),
            stream.to_lowercase(),
        );
    }
    let refresh = knob("REFRESH", 0) == 1;
    if refresh {
        let latency = Duration::from_millis(knob("LATENCY_MS", 40) as u64);
        for (key, value) in [
            ("STACK_SYNC_REFRESH__ENABLED", "true".to_owned()),
            ("STACK_PROJECT_ID", "bench".to_owned()),
            ("STACK_SECRET_SERVER_KEY", "ssk_bench".to_owned()),
            ("STACK_API_URL", fake_api::serve(latency).await),
        ] {
            env.insert(key.to_owned(), value);
        }
    }
    let settings = Settings::load(None, &env).unwrap();
    let pool = connect(&settings).await.unwrap();
    schema::migrate(&pool).await.unwrap();
    let expired = knob("EXPIRED_EVENTS", 0);
    prefill(
        &pool,
        knob("MIRRORED_USERS", 0),
        knob("RECORDED_EVENTS", 0),
        expired,
    )
    .await;
    let minimal = std::env::var("RECEIVER").is_ok_and(|receiver| receiver == "minimal");
    let (endpoint, server_task) = if minimal {
        let endpoint = minimal_receiver::serve(pool.clone(), SECRET).await;
        (
            endpoint,
            tokio::spawn(std::future::pending::<std::io::Result<()>>()),
        )
    } else {
        let app = Application::build_with_pool(&settings, pool.clone())
            .await
            .unwrap();
        let endpoint = format!("http://{}/webhooks/stack", app.local_addr().unwrap());
        (endpoint, tokio::spawn(app.run_until_stopped()))
    };
    let listener =
        (knob("LISTEN", 0) == 1).then(|| tokio::spawn(count_notifications(database.url.clone())));

    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let only = std::env::var("MIX_ONLY").ok();
    let mix = knob("MIX", 0) == 1 || only.is_some();
    let generated = if mix {
        event_mix(events, users, start, only.as_deref())
    } else {
        user_updates(events, users, start)
    };
    let bodies: Vec<(String, String)> = generated
        .into_iter()
        .map(|(id, event)| (id, event.to_string()))
        .collect();
    let statements = profile && statement_profile_reset(&pool).await;
    let (wal_before, log_before) = (wal_lsn(&pool).await, recorded_bytes(&pool).await);
    let cpu_before = postgres_cpu_seconds();
    let subscriber = match &forward_nats {
        Some(url) => Some(forwarded::subscribe(url, &settings.forward.subject_prefix).await),
        None => None,
    };
    let (elapsed, mut latencies) = deliver(&endpoint, &bodies, concurrency).await;
    if let Some(subscriber) = subscriber {
        let logged: i64 = sqlx::query_scalar("select count(*) from stack.changes")
            .fetch_one(&pool)
            .await
            .unwrap();
        let report = subscriber.until(logged as usize).await;
        println!(
            "forward: {logged} changes; all in NATS {:.1?} after the last delivery; \
             commit to subscriber p50 {:?}, p99 {:?}",
            report.after_last_delivery,
            percentile(&report.latencies, 0.5),
            percentile(&report.latencies, 0.99),
        );
    }
    if refresh {
        let drained = wait_for_refreshes(&pool).await;
        let requests = fake_api::REQUESTS.load(Ordering::Relaxed);
        println!(
            "refresh: {requests} API requests, {:.2} per webhook; the queue drained {drained:.1?} \
             after the last delivery",
            requests as f64 / events as f64
        );
    }
    let cpu_per_event = (postgres_cpu_seconds() - cpu_before) / events as f64;
    let wal_per_event = (wal_lsn(&pool).await - wal_before) as f64 / events as f64;
    let log_per_million = (recorded_bytes(&pool).await - log_before) as f64 / events as f64 * 1e6;

    latencies.sort();
    println!(
        "{}{events} {} deliveries over HTTP, {concurrency} at a time, {users} users: \
         {:.0} events/s; latency p50 {:?}, p99 {:?}",
        if minimal { "minimal receiver: " } else { "" },
        only.as_deref()
            .unwrap_or(if mix { "mixed" } else { "user.updated" }),
        events as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    println!("WAL: {wal_per_event:.0} bytes per delivery (everything Postgres wrote meanwhile)");
    println!(
        "Postgres CPU: {:.0} µs per delivery (every postgres process, at {} ticks/s)",
        cpu_per_event * 1e6,
        clock_ticks()
    );
    println!(
        "replay log: {:.0} MB per million recorded messages (stack.webhook_events with its \
         indexes and TOAST, before vacuum)",
        log_per_million / 1e6
    );
    if expired > 0 {
        let left: i64 = sqlx::query_scalar(
            "select count(*) from stack.webhook_events where received_at < now() - interval '31 days'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        println!(
            "retention: {} of {expired} expired messages pruned during the run",
            expired as i64 - left
        );
    }
    if let Some(listener) = listener {
        // Notifications follow their commits; give the last ones a moment to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        listener.abort();
        println!(
            "feed: {} notifications received",
            NOTIFIED.load(Ordering::Relaxed)
        );
    }
    if profile {
        print_profile(&pool, events).await;
    }
    if statements {
        print_statement_profile(&pool, events).await;
    }
    server_task.abort();
    pool.close().await;
    if knob("KEEP", 0) == 0 {
        database.drop_it().await;
    }
}

/// A NATS subscription to the forwarded changes, timing each from its commit as it arrives.
mod forwarded {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use futures::StreamExt;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    /// Commit (`changed_at`, the database's clock, on this machine) to receipt, per change.
    type Latencies = Arc<Mutex<Vec<Duration>>>;

    pub struct Subscriber {
        latencies: Latencies,
    }

    pub struct Report {
        pub after_last_delivery: Duration,
        pub latencies: Vec<Duration>,
    }

    pub async fn subscribe(url: &str, prefix: &str) -> Subscriber {
        let client = async_nats::connect(url).await.unwrap();
        let mut subscription = client.subscribe(format!("{prefix}.>")).await.unwrap();
        let latencies = Latencies::default();
        let received = Arc::clone(&latencies);
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let change: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
                let committed = change["changed_at"].as_str().unwrap();
                let committed = OffsetDateTime::parse(committed, &Rfc3339).unwrap();
                let latency = (OffsetDateTime::now_utc() - committed).try_into();
                received.lock().unwrap().push(latency.unwrap_or_default());
            }
        });
        Subscriber { latencies }
    }

    impl Subscriber {
        /// Waits until `count` changes have arrived.
        pub async fn until(self, count: usize) -> Report {
            let started = Instant::now();
            while self.latencies.lock().unwrap().len() < count {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut latencies = self.latencies.lock().unwrap().clone();
            latencies.sort();
            Report {
                after_last_delivery: started.elapsed(),
                latencies,
            }
        }
    }
}

/// Time in each `stack_sync` function per delivery, most first: by itself (`self`) and with the
/// functions it calls (`total`), in µs, and calls per delivery. The statistics collector
/// publishes an idle session's counts within 10 s, so this waits that long first.
async fn print_profile(pool: &sqlx::PgPool, events: usize) {
    tokio::time::sleep(Duration::from_secs(11)).await;
    let rows: Vec<(String, i64, f64, f64)> = sqlx::query_as(
        "select funcname::text, calls, self_time, total_time from pg_stat_user_functions
         where schemaname = 'stack_sync' order by self_time desc",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    println!("profile: function, calls per delivery, self µs, total µs per delivery");
    for (name, calls, self_ms, total_ms) in rows {
        let per = |ms: f64| ms * 1000.0 / events as f64;
        println!(
            "  {name:<34} {:>6.2} {:>8.1} {:>8.1}",
            calls as f64 / events as f64,
            per(self_ms),
            per(total_ms)
        );
    }
}

/// Starts counting statements with `pg_stat_statements`, when the server loads it
/// (`shared_preload_libraries`; with `pg_stat_statements.track = all` the statements inside the
/// functions count too). Returns whether it does.
async fn statement_profile_reset(pool: &sqlx::PgPool) -> bool {
    let loaded: bool = sqlx::query_scalar(
        "select 'pg_stat_statements' = any(string_to_array(current_setting('shared_preload_libraries'), ','))",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    if !loaded {
        println!("statement profile: pg_stat_statements is not in shared_preload_libraries");
        return false;
    }
    sqlx::raw_sql(
        "create extension if not exists pg_stat_statements; select pg_stat_statements_reset()",
    )
    .execute(pool)
    .await
    .unwrap();
    true
}

/// The statements of this database that took the most time, per delivery: calls, execution and
/// planning µs, buffers hit, and the statement's start.
async fn print_statement_profile(pool: &sqlx::PgPool, events: usize) {
    let rows: Vec<(String, i64, f64, f64, i64)> = sqlx::query_as(
        "select regexp_replace(query, '\\s+', ' ', 'g'), calls, total_exec_time, total_plan_time,
                shared_blks_hit + shared_blks_read
         from pg_stat_statements
         where dbid = (select oid from pg_database where datname = current_database())
         order by total_exec_time + total_plan_time desc limit 30",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    println!("statements: calls, exec µs, plan µs, buffers per delivery; statement");
    for (query, calls, exec_ms, plan_ms, buffers) in rows {
        let per = |ms: f64| ms * 1000.0 / events as f64;
        let start: String = query.chars().take(110).collect();
        println!(
            "  {:>5.2} {:>7.1} {:>6.1} {:>5.1}  {start}",
            calls as f64 / events as f64,
            per(exec_ms),
            per(plan_ms),
            buffers as f64 / events as f64
        );
    }
}

/// Waits until every queued refresh is done; returns how long that took.
async fn wait_for_refreshes(pool: &sqlx::PgPool) -> Duration {
    let started = Instant::now();
    loop {
        let queued: i64 = sqlx::query_scalar("select count(*) from stack_sync.refresh_queue")
            .fetch_one(pool)
            .await
            .unwrap();
        if queued == 0 {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stack's API as refresh reads it, answering after a fixed latency: the user or team asked for
/// (the sample object with that id) and empty lists of links.
mod fake_api {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::extract::Path;
    use axum::routing::get;
    use serde_json::{Value, json};

    /// Requests answered.
    pub static REQUESTS: AtomicUsize = AtomicUsize::new(0);

    pub async fn serve(latency: Duration) -> String {
        let object = |event_type: &'static str| {
            move |Path(id): Path<String>| async move {
                answered(latency).await;
                let mut data = stack_sync::samples::sample(event_type).unwrap()["data"].clone();
                data["id"] = json!(id);
                axum::Json(data)
            }
        };
        let empty = move || async move {
            answered(latency).await;
            axum::Json(json!({"items": Vec::<Value>::new(), "is_paginated": false}))
        };
        let router = Router::new()
            .route("/api/v1/users/{id}", get(object("user.created")))
            .route("/api/v1/teams/{id}", get(object("team.created")))
            .route("/api/v1/users", get(empty))
            .route("/api/v1/teams", get(empty))
            .route("/api/v1/team-permissions", get(empty))
            .route("/api/v1/project-permissions", get(empty));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    async fn answered(latency: Duration) {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(latency).await;
    }
}

/// The scratch database's URL as the service is to reach it: through a pooler on `VIA_PORT`,
/// with `SSLMODE`.
fn service_url(direct: &str) -> String {
    let mut url = url::Url::parse(direct).unwrap();
    if let Ok(port) = std::env::var("VIA_PORT") {
        url.set_port(Some(port.parse().expect("VIA_PORT"))).unwrap();
    }
    if let Ok(mode) = std::env::var("SSLMODE") {
        url.query_pairs_mut().append_pair("sslmode", &mode);
    }
    url.to_string()
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

/// Grows the tables before the run: `users` more mirrored users (with their versions),
/// `recorded` messages received in the last days, `expired` ones from 60 days ago. Each is a
/// small but complete row; what grows with them is the indexes the hot path uses.
async fn prefill(pool: &sqlx::PgPool, users: usize, recorded: usize, expired: usize) {
    let started = Instant::now();
    let statements = [
        (
            users,
            "insert into stack.users (id, display_name, primary_email, raw, svix_id)
             select u.id, 'user ' || n, 'user' || n || '@example.com',
                    jsonb_build_object('id', u.id, 'display_name', 'user ' || n), 'prefill'
             from generate_series(1, $1) n,
                  lateral (select ('30000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid as id) u",
        ),
        (
            users,
            "insert into stack_sync.versions (kind, key, source_time, deleted, svix_id)
             select 'user', '30000000-0000-4000-8000-' || lpad(n::text, 12, '0'),
                    now() - interval '1 day', false, 'prefill'
             from generate_series(1, $1) n",
        ),
        (
            recorded,
            "insert into stack.webhook_events (svix_id, event_type, received_at, source_time, outcome, payload)
             select 'msg_recorded_' || n, 'user.updated', now() - (n % 2500000) * interval '1 s',
                    now() - (n % 2500000) * interval '1 s', 'applied', '\\x7b7d'
             from generate_series(1, $1) n",
        ),
        (
            expired,
            "insert into stack.webhook_events (svix_id, event_type, received_at, source_time, outcome, payload)
             select 'msg_expired_' || n, 'user.updated', now() - interval '60 days',
                    now() - interval '60 days', 'applied', '\\x7b7d'
             from generate_series(1, $1) n",
        ),
    ];
    for (rows, statement) in statements {
        if rows > 0 {
            sqlx::query(statement)
                .bind(rows as i64)
                .execute(pool)
                .await
                .unwrap();
        }
    }
    if users + recorded + expired > 0 {
        sqlx::query("vacuum analyze").execute(pool).await.unwrap();
        // Start from a checkpoint, as the runs on empty tables do: otherwise the one the
        // prefill's WAL triggers falls inside the timed part, with its full-page images.
        sqlx::query("checkpoint").execute(pool).await.unwrap();
        println!(
            "prefilled {users} users, {recorded} recorded and {expired} expired messages in {:.0?}",
            started.elapsed()
        );
    }
}

/// The size of the replay log on disk: `stack.webhook_events`, its indexes and its TOAST.
async fn recorded_bytes(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("select pg_total_relation_size('stack.webhook_events')")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wal_lsn(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("select (pg_current_wal_lsn() - '0/0')::bigint")
        .fetch_one(pool)
        .await
        .unwrap()
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
