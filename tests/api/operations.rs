//! What an operator sees: `/metrics` on its own listener and `stack-sync status`, after a known
//! sequence of deliveries.

use serde_json::{Value, json};
use time::OffsetDateTime;

use stack_sync::config::Settings;

use crate::support::command::{stack_sync, stderr_of};
use crate::support::payloads::{example_with, new_id};
use crate::support::{TestApp, message_id};

/// Applied, duplicate, failed, stale and two refused deliveries; returns the user's id.
async fn known_sequence(app: &TestApp) -> String {
    let user = new_id();
    let created = example_with("user.created", &[("id", json!(user))]);
    let (id, status) = app.deliver_event(&created).await;
    assert_eq!(status, "applied");
    assert_eq!(app.deliver_json(&id, &created).await, "duplicate");
    let bad = example_with(
        "user.updated",
        &[("id", json!(user)), ("has_password", json!(1))],
    );
    assert_eq!(app.deliver_event(&bad).await.1, "failed");
    let older = stack_sync::event_time::message_id_at(
        OffsetDateTime::now_utc() - time::Duration::minutes(10),
    );
    let stale = example_with("user.updated", &[("id", json!(user))]);
    assert_eq!(app.deliver_json(&older, &stale).await, "stale");
    let mut headers = app.signer.headers(&message_id(), b"{}");
    headers[2].1 = "v1,forged".to_owned();
    assert_eq!(app.post(&headers, b"{}".to_vec()).await.status(), 401);
    let too_big = vec![b' '; 3000];
    let signed = app.signer.headers(&message_id(), &too_big);
    assert_eq!(app.post(&signed, too_big).await.status(), 413);
    user
}

/// The value of the sample `name` (with its labels, as exposed) in a text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

/// A body limit the known sequence's 413 crosses.
fn small_bodies(settings: &mut Settings) {
    settings.webhook.max_body_bytes = 2500;
}

#[tokio::test]
async fn metrics_listen_on_their_own_address_when_told() {
    let app = TestApp::spawn_with(|s| s.metrics.host = Some("127.0.0.2".to_owned())).await;
    let metrics: url::Url = app.metrics_url.parse().unwrap();
    let webhooks: url::Url = app.base_url.parse().unwrap();
    assert_eq!(metrics.host_str(), Some("127.0.0.2"));
    assert_eq!(webhooks.host_str(), Some("127.0.0.1"));

    let scraped = app.client.get(metrics.as_str()).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let mut on_webhook_address = metrics.clone();
    on_webhook_address.set_host(Some("127.0.0.1")).unwrap();
    let refused = app.client.get(on_webhook_address.as_str()).send().await;
    assert!(
        refused.is_err(),
        "nothing listens on 127.0.0.1:{:?}",
        metrics.port()
    );
}

#[tokio::test]
async fn metrics_count_each_answer_on_their_own_port() {
    let app = TestApp::spawn_with(small_bodies).await;
    known_sequence(&app).await;

    let text = app.client.get(&app.metrics_url).send().await.unwrap();
    let text = text.text().await.unwrap();

    for (name, expected) in [
        (
            r#"stack_sync_webhooks_total{type="user.created",outcome="applied"}"#,
            1.0,
        ),
        (
            r#"stack_sync_webhooks_total{type="user.created",outcome="duplicate"}"#,
            1.0,
        ),
        (
            r#"stack_sync_webhooks_total{type="user.updated",outcome="failed"}"#,
            1.0,
        ),
        (
            r#"stack_sync_webhooks_total{type="user.updated",outcome="stale"}"#,
            1.0,
        ),
        (
            r#"stack_sync_webhook_rejections_total{reason="invalid_signature"}"#,
            1.0,
        ),
        (
            r#"stack_sync_webhook_rejections_total{reason="payload_too_large"}"#,
            1.0,
        ),
        ("stack_sync_webhook_duration_seconds_count", 6.0),
        ("stack_sync_delivery_lag_seconds_count", 4.0),
    ] {
        assert_eq!(sample(&text, name), Some(expected), "{name} in\n{text}");
    }
    let applied_at = sample(&text, "stack_sync_last_applied_timestamp_seconds").unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!((now - applied_at).abs() < 60.0, "{applied_at}");
    assert!(text.contains("stack_sync_db_pool_connections{state=\"idle\"}"));
    let on_webhook_port = app
        .client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_webhook_port.status(),
        404,
        "the webhook port shows no internals"
    );
}

#[tokio::test]
async fn the_failed_gauge_is_read_from_the_database() {
    let app = TestApp::spawn_with(small_bodies).await;
    known_sequence(&app).await;
    let metrics = stack_sync::metrics::Metrics::new();

    metrics.refresh(&app.db.pool).await.unwrap();

    let text = metrics.render(&app.db.pool);
    assert_eq!(
        sample(&text, "stack_sync_failed_events"),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_same_sequence_as_json() {
    let app = TestApp::spawn_with(small_bodies).await;
    known_sequence(&app).await;
    let url = app.db.url.clone();

    let output = tokio::task::spawn_blocking(move || {
        stack_sync(&["status", "--json"], &[("DATABASE_URL", url.as_str())])
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    assert!(output.status.success(), "{}", stderr_of(&output));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let deliveries = &status["deliveries"];
    assert_eq!(
        deliveries["outcomes_24h"],
        json!({"applied": 1, "failed": 1, "stale": 1})
    );
    assert_eq!(deliveries["failed_waiting"], 1);
    assert!(deliveries["last_applied_at"].is_string());
    assert!(deliveries["lag_p99_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(status["schema"]["row_counts"]["users"], 1);
    let newest = stack_sync::store::schema::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max();
    assert_eq!(status["schema"]["migration_version"], json!(newest));
    assert_eq!(status["last_reconcile"], Value::Null);
}

#[test]
fn status_fails_without_a_database() {
    let output = stack_sync(
        &["status"],
        &[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
            ("STACK_SYNC_DATABASE__ACQUIRE_TIMEOUT_SECS", "2"),
        ],
    )
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("connecting to the database"), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
}
