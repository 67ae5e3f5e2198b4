//! Reconcile at scale: the real `stack-sync reconcile` binary against a fake Stack API that
//! answers every request after a fixed delay (40 ms, a realistic round trip to the hosted API),
//! first into an empty database (the backfill), then again with nothing changed. Reports, per
//! run: requests, wall time, the binary's peak RSS (from `/usr/bin/time -v`) and the WAL it
//! made Postgres write.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench reconcile`
//! Knobs: USERS (20000), TEAMS (2000), LATENCY_MS (40), CONCURRENCY (8), PAGE_SIZE (1000).
//! Each user is in one team with one team permission, and has one project permission.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::PgPool;

use common::{Scratch, knob};

/// The fake project, every listing prepared once.
struct Project {
    /// Users in id order.
    users: Vec<Value>,
    teams: Vec<Value>,
    /// Indexes into `users` of each team's members, by team id.
    members: HashMap<String, Vec<usize>>,
    team_permissions: Vec<Value>,
    project_permissions: Vec<Value>,
    latency: Duration,
    requests: AtomicUsize,
}

fn project(users: usize, teams: usize, latency: Duration) -> Project {
    let template = stack_sync::samples::sample("user.created").unwrap()["data"].clone();
    let team_template = stack_sync::samples::sample("team.created").unwrap()["data"].clone();
    let team_ids: Vec<String> = (0..teams)
        .map(|n| format!("20000000-0000-4000-8000-{n:012}"))
        .collect();
    let mut project = Project {
        users: Vec::with_capacity(users),
        teams: Vec::with_capacity(teams),
        members: HashMap::new(),
        team_permissions: Vec::new(),
        project_permissions: Vec::new(),
        latency,
        requests: AtomicUsize::new(0),
    };
    for (n, team_id) in team_ids.iter().enumerate() {
        let mut team = team_template.clone();
        team["id"] = json!(team_id);
        team["display_name"] = json!(format!("team {n}"));
        project.teams.push(team);
    }
    for n in 0..users {
        let id = format!("10000000-0000-4000-8000-{n:012}");
        let team_id = &team_ids[n % teams];
        let mut user = template.clone();
        user["id"] = json!(id);
        user["display_name"] = json!(format!("user {n}"));
        user["primary_email"] = json!(format!("user{n}@example.com"));
        user["selected_team_id"] = Value::Null;
        user["selected_team"] = Value::Null;
        project.users.push(user);
        project.members.entry(team_id.clone()).or_default().push(n);
        project
            .team_permissions
            .push(json!({ "id": "team_member", "team_id": team_id, "user_id": id }));
        project
            .project_permissions
            .push(json!({ "id": "read_secret_info", "user_id": id }));
    }
    project
}

type Shared = State<Arc<Project>>;

/// `items` after `cursor` (excluded, as newer Stack does), at most `limit`.
fn page(items: Vec<&Value>, query: &HashMap<String, String>) -> Json<Value> {
    let limit: usize = query
        .get("limit")
        .map_or(usize::MAX, |l| l.parse().unwrap());
    let start = match query.get("cursor") {
        Some(cursor) => items
            .iter()
            .position(|item| item["id"] == **cursor)
            .map_or(0, |i| i + 1),
        None => 0,
    };
    let end = items.len().min(start.saturating_add(limit));
    let next_cursor = (end < items.len()).then(|| items[end - 1]["id"].clone());
    Json(json!({
        "items": items[start..end],
        "is_paginated": query.contains_key("limit"),
        "pagination": { "next_cursor": next_cursor },
    }))
}

async fn answer_later(project: &Project) {
    project.requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(project.latency).await;
}

async fn users(
    State(project): Shared,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    answer_later(&project).await;
    let items = match query.get("team_id") {
        Some(team) => project.members.get(team).map_or_else(Vec::new, |members| {
            members.iter().map(|n| &project.users[*n]).collect()
        }),
        None => project.users.iter().collect(),
    };
    page(items, &query)
}

async fn teams(
    State(project): Shared,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    answer_later(&project).await;
    page(project.teams.iter().collect(), &query)
}

async fn team_permissions(State(project): Shared) -> impl IntoResponse {
    answer_later(&project).await;
    Json(json!({ "items": project.team_permissions, "is_paginated": false }))
}

async fn project_permissions(State(project): Shared) -> impl IntoResponse {
    answer_later(&project).await;
    Json(json!({ "items": project.project_permissions, "is_paginated": false }))
}

async fn serve(project: Arc<Project>) -> String {
    let router = Router::new()
        .route("/api/v1/users", get(users))
        .route("/api/v1/teams", get(teams))
        .route("/api/v1/team-permissions", get(team_permissions))
        .route("/api/v1/project-permissions", get(project_permissions))
        .with_state(project);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// One run of the binary: wall time, peak RSS in MiB.
fn reconcile(database_url: &str, api_url: &str) -> (Duration, f64) {
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_stack-sync"))
        .arg("reconcile")
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("STACK_PROJECT_ID", "6f1c2e9a-0b7d-4e1f-9a3c-2d4e5f6a7b8c")
        .env("STACK_SECRET_SERVER_KEY", "ssk_bench")
        .env("STACK_API_URL", api_url)
        .env(
            "STACK_SYNC_RECONCILE__CONCURRENCY",
            knob("CONCURRENCY", 8).to_string(),
        )
        .env(
            "STACK_SYNC_RECONCILE__PAGE_SIZE",
            knob("PAGE_SIZE", 1000).to_string(),
        )
        .env("RUST_LOG", "warn")
        .output()
        .expect("running stack-sync reconcile under /usr/bin/time");
    let took = started.elapsed();
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    let peak_kib: f64 = report
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .expect("time -v reports the peak RSS")
        .parse()
        .unwrap();
    (took, peak_kib / 1024.0)
}

async fn wal_lsn(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select (pg_current_wal_lsn() - '0/0')::bigint")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::main]
async fn main() {
    let (users, teams) = (knob("USERS", 20_000), knob("TEAMS", 2_000));
    let latency = Duration::from_millis(knob("LATENCY_MS", 40) as u64);
    let project = Arc::new(project(users, teams, latency));
    let api_url = serve(Arc::clone(&project)).await;
    let scratch = Scratch::create("stack_sync_bench_reconcile").await;
    let pool = PgPool::connect(&scratch.url).await.unwrap();
    stack_sync::store::schema::migrate(&pool).await.unwrap();

    println!(
        "{users} users, {teams} teams ({users} memberships, {users} team and {users} project \
         permissions); {} ms per request, concurrency {}",
        latency.as_millis(),
        knob("CONCURRENCY", 8)
    );
    println!("| run | requests | wall time | peak RSS | WAL |");
    println!("|---|---:|---:|---:|---:|");
    // The API's client and the database are in this process; the binary is measured alone.
    let url = scratch.url.clone();
    for run in ["backfill (empty database)", "again, nothing changed"] {
        let (requests_before, wal_before) = (
            project.requests.load(Ordering::Relaxed),
            wal_lsn(&pool).await,
        );
        let (url, api) = (url.clone(), api_url.clone());
        let (took, peak_mib) = tokio::task::spawn_blocking(move || reconcile(&url, &api))
            .await
            .unwrap();
        let requests = project.requests.load(Ordering::Relaxed) - requests_before;
        let wal = wal_lsn(&pool).await - wal_before;
        println!(
            "| {run} | {requests} | {:.1} s | {peak_mib:.0} MiB | {:.1} MB |",
            took.as_secs_f64(),
            wal as f64 / 1e6
        );
    }
    let mirrored: i64 = sqlx::query_scalar("select count(*) from stack.users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mirrored, users as i64, "every user mirrored");
    pool.close().await;
    scratch.drop_it().await;
}
