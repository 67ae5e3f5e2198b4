//! Svix's delivery behaviour: at-least-once (so duplicates, also concurrent ones), and a
//! service that finishes what it started when asked to stop.

use std::time::Duration;

use serde_json::json;

use crate::support::payloads::example_with;
use crate::support::{TestApp, example, message_id};

#[tokio::test]
async fn duplicate_delivery_is_applied_once() {
    let app = TestApp::spawn().await;
    let id = message_id();
    let first = example("user.created");
    // A redelivery of the same message id changes nothing, even if its body differed.
    let second = example_with("user.created", &[("display_name", json!("Someone Else"))]);

    let statuses = [
        app.deliver_json(&id, &first).await,
        app.deliver_json(&id, &second).await,
    ];

    assert_eq!(statuses, ["applied".to_owned(), "duplicate".to_owned()]);
    let (name, writer): (String, String) =
        sqlx::query_as("select display_name, svix_id from stack.users")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (name.as_str(), writer.as_str()),
        (first["data"]["display_name"].as_str().unwrap(), id.as_str())
    );
    assert_eq!(app.count("webhook_events").await, 1);
}

#[tokio::test]
async fn duplicate_of_a_delete_does_not_delete_again() {
    let app = TestApp::spawn().await;
    let id = message_id();
    app.deliver_json(&id, &example("team_membership.deleted"))
        .await;
    app.deliver_event(&example("team_membership.created")).await;

    let status = app
        .deliver_json(&id, &example("team_membership.deleted"))
        .await;

    assert_eq!(status, "duplicate");
    assert_eq!(
        app.count("team_members").await,
        1,
        "the later membership survives the retry"
    );
}

#[tokio::test]
async fn concurrent_deliveries_of_one_message_apply_it_once() {
    let app = TestApp::spawn().await;
    let id = message_id();
    let body = example("team_membership.created").to_string();

    let deliveries = (0..8).map(|_| app.deliver(&id, body.as_bytes()));
    let answers = futures::future::join_all(deliveries).await;

    let mut statuses = Vec::new();
    for response in answers {
        assert_eq!(response.status(), 200);
        let answer: serde_json::Value = response.json().await.unwrap();
        statuses.push(answer["status"].as_str().unwrap().to_owned());
    }
    statuses.sort();
    let mut expected = vec!["duplicate".to_owned(); 7];
    expected.insert(0, "applied".to_owned());
    assert_eq!(statuses, expected);
    assert_eq!(app.count("webhook_events").await, 1);
    assert_eq!(app.count("team_members").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_receiving_one_message_at_once_apply_it_once() {
    let app = TestApp::spawn().await;
    let replica = app.spawn_replica().await;
    let id = message_id();
    let body = example("project_permission.created").to_string();

    let deliveries = (0..8).map(|n| {
        let base_url = if n % 2 == 0 { &app.base_url } else { &replica };
        app.signed_request_to(base_url, &id, body.as_bytes()).send()
    });
    let answers = futures::future::join_all(deliveries).await;

    let mut applied = 0;
    for response in answers {
        let answer: serde_json::Value = response.unwrap().json().await.unwrap();
        applied += usize::from(answer["status"] == "applied");
        assert!(["applied", "duplicate"].contains(&answer["status"].as_str().unwrap()));
    }
    assert_eq!(applied, 1);
    assert_eq!(app.count("webhook_events").await, 1);
    assert_eq!(app.count("project_permissions").await, 1);
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight() {
    let mut app = TestApp::spawn().await;
    let (blocker, in_flight) = delivery_blocked_in_the_database(&app).await;

    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !app.has_stopped(),
        "shutdown must wait for the request in flight"
    );
    blocker.rollback().await.unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("an answer, not a dropped connection");

    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["status"], "applied");
    app.wait_stopped().await.expect("a clean shutdown");
    let refused = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections after shutdown");
}

/// A delivery that waits inside the database: its message id is held by an open transaction,
/// returned with the delivery; rolling it back lets the delivery go on.
pub(crate) async fn delivery_blocked_in_the_database(
    app: &TestApp,
) -> (
    sqlx::Transaction<'static, sqlx::Postgres>,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let id = message_id();
    let mut blocker = app.db.pool.begin().await.unwrap();
    sqlx::query(
        "insert into stack.webhook_events (svix_id, outcome, payload) values ($1, 'ignored', '')",
    )
    .bind(&id)
    .execute(&mut *blocker)
    .await
    .unwrap();
    let body = example("team.created").to_string();
    let in_flight = tokio::spawn(app.signed_request(&id, body.as_bytes()).send());
    wait_until_a_statement_waits_on_a_lock(app).await;
    (blocker, in_flight)
}

async fn wait_until_a_statement_waits_on_a_lock(app: &TestApp) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the delivery never reached the database");
}
