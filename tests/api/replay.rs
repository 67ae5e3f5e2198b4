//! `stack-sync replay`: recorded messages re-applied through the live path and its guards.

use std::process::{Command, Output};

use serde_json::json;
use stack_sync::config::KeepBodies;
use stack_sync::event_time::message_id_at;
use time::{Duration, OffsetDateTime};

use crate::support::payloads::{example_with, new_id};
use crate::support::{TestApp, example};

fn replay(app: &TestApp, args: &[&str]) -> Output {
    replay_keeping(app, "unapplied", args)
}

/// `stack-sync replay` with `webhook.keep_bodies` set to `keep`.
fn replay_keeping(app: &TestApp, keep: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stack-sync"))
        .arg("replay")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &app.db.url)
        .env("STACK_SYNC_WEBHOOK__KEEP_BODIES", keep)
        .output()
        .unwrap()
}

/// A service keeping every body, so that applied messages can be replayed.
async fn keeping_all() -> TestApp {
    TestApp::spawn_with(|settings| settings.webhook.keep_bodies = KeepBodies::All).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Records `event` as a message an earlier version of the service had failed.
async fn record_as_failed(app: &TestApp, svix_id: &str, event: &serde_json::Value) {
    sqlx::query(
        "insert into stack.webhook_events (svix_id, event_type, outcome, payload, error)
         values ($1, $2, 'failed', $3, 'unsupported by an older version')",
    )
    .bind(svix_id)
    .bind(event["type"].as_str())
    .bind(event.to_string().into_bytes())
    .execute(&app.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn failed_messages_are_applied_by_a_replay_and_reported() {
    let app = TestApp::spawn().await;
    let event = example("user.created");
    let svix_id = message_id_at(OffsetDateTime::now_utc() - Duration::minutes(5));
    record_as_failed(&app, &svix_id, &event).await;
    let (_, still_broken) = app
        .deliver_event(&json!({"type": "team.created", "data": {"id": 5}}))
        .await;
    assert_eq!(still_broken, "failed");

    let output = replay(&app, &["--failed"]);

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout(&output);
    assert!(
        report.contains(&format!("{svix_id}\tuser.created\tfailed -> applied")),
        "{report}"
    );
    assert!(
        report.contains("team.created\tfailed -> failed"),
        "{report}"
    );
    assert!(
        report.contains("replayed 2 messages: 1 applied, 1 failed"),
        "{report}"
    );
    assert_eq!(
        app.recorded_outcome(&svix_id).await.as_deref(),
        Some("applied")
    );
    let error: Option<String> =
        sqlx::query_scalar("select error from stack.webhook_events where svix_id = $1")
            .bind(&svix_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(error, None);
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn a_replay_passes_the_same_guards_as_live_delivery() {
    let app = keeping_all().await;
    let id = new_id();
    let start = OffsetDateTime::now_utc() - Duration::minutes(10);
    let (older, newer) = (
        message_id_at(start),
        message_id_at(start + Duration::seconds(1)),
    );
    let named = |name: &str| {
        example_with(
            "user.updated",
            &[("id", json!(id)), ("display_name", json!(name))],
        )
    };
    app.deliver_json(&newer, &named("Newer")).await;
    app.deliver_json(&older, &named("Older")).await;

    let output = replay_keeping(&app, "all", &["--id", &older, "--id", &newer]);

    let report = stdout(&output);
    assert!(
        report.contains(&format!("{older}\tuser.updated\tstale -> stale")),
        "{report}"
    );
    assert!(
        report.contains(&format!("{newer}\tuser.updated\tapplied -> unchanged")),
        "{report}"
    );
    let name: String = sqlx::query_scalar("select display_name from stack.users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(name, "Newer");
}

#[tokio::test]
async fn a_time_range_picks_messages_by_when_they_were_received() {
    let app = keeping_all().await;
    let (inside, _) = app.deliver_event(&example("team.created")).await;
    let (before, _) = app.deliver_event(&example("stack.test")).await;
    sqlx::query(
        "update stack.webhook_events set received_at = '2026-01-01T12:00:00Z' where svix_id = $1",
    )
    .bind(&inside)
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "update stack.webhook_events set received_at = '2025-12-31T12:00:00Z' where svix_id = $1",
    )
    .bind(&before)
    .execute(&app.db.pool)
    .await
    .unwrap();

    let output = replay_keeping(
        &app,
        "all",
        &[
            "--since",
            "2026-01-01T00:00:00Z",
            "--until",
            "2026-01-02T00:00:00Z",
        ],
    );

    let report = stdout(&output);
    assert!(output.status.success());
    assert!(
        report.contains(&format!("{inside}\tteam.created\tapplied -> unchanged")),
        "{report}"
    );
    assert!(!report.contains(&before), "{report}");
    assert!(report.contains("replayed 1 messages"), "{report}");
}

#[tokio::test]
async fn replaying_an_id_never_recorded_fails_naming_it() {
    let app = TestApp::spawn().await;

    let output = replay(&app, &["--id", "msg_unknown"]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("never recorded: msg_unknown"), "{stderr}");
}
