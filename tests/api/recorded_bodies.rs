//! How bodies are kept in `stack.webhook_events`: user and team objects compressed with zstd,
//! short bodies as received, and every one read back byte for byte as it was signed.

use serde_json::json;
use stack_sync::config::KeepBodies;
use stack_sync::store::webhook_events::{RecordedBody, load_stored};

use crate::support::command::{stack_sync, stderr_of};
use crate::support::payloads::new_id;
use crate::support::{TestApp, example, message_id};

/// Delivers `body` as it is, byte for byte; returns its message id.
async fn deliver_bytes(app: &TestApp, body: &[u8]) -> String {
    let id = message_id();
    let response = app.deliver(&id, body).await;
    assert_eq!(response.status(), 200);
    id
}

/// The stored encoding and length of the recorded body.
async fn stored(app: &TestApp, id: &str) -> (Option<String>, i32) {
    sqlx::query_as(
        "select payload_encoding, octet_length(payload) from stack.webhook_events
         where svix_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn read_back(app: &TestApp, id: &str) -> Vec<u8> {
    match load_stored(&app.db.pool, id).await.unwrap().unwrap().body {
        RecordedBody::Kept(body) => body,
        missing => panic!("no body for {id}: {missing:?}"),
    }
}

/// A service that keeps every body, as these tests read applied ones back.
async fn keeping_all() -> TestApp {
    TestApp::spawn_with(|settings| settings.webhook.keep_bodies = KeepBodies::All).await
}

#[tokio::test]
async fn a_user_object_is_stored_compressed_and_read_back_as_signed() {
    let app = keeping_all().await;
    // Pretty-printed, as a sender may well do: the bytes, not the JSON, are what is kept.
    let body = serde_json::to_vec_pretty(&example("user.updated")).unwrap();

    let id = deliver_bytes(&app, &body).await;

    let (encoding, length) = stored(&app, &id).await;
    assert_eq!(encoding.as_deref(), Some("zstd"));
    assert!(
        usize::try_from(length).unwrap() < body.len() / 2,
        "{length} of {}",
        body.len()
    );
    assert_eq!(read_back(&app, &id).await, body);
}

#[tokio::test]
async fn a_failed_body_is_kept_compressed_byte_for_byte() {
    let app = TestApp::spawn().await;
    let mut event = example("user.created");
    event["data"]["id"] = json!(5);
    let body = format!("{event}\n\u{0}\u{7f}").into_bytes();

    let id = deliver_bytes(&app, &body).await;

    assert_eq!(app.recorded_outcome(&id).await.as_deref(), Some("failed"));
    assert_eq!(stored(&app, &id).await.0.as_deref(), Some("zstd"));
    assert_eq!(read_back(&app, &id).await, body);
}

#[tokio::test]
async fn a_short_body_stays_readable_in_sql() {
    let app = keeping_all().await;
    let body = json!({
        "type": "team_membership.created",
        "data": {"team_id": new_id(), "user_id": new_id()},
    })
    .to_string();

    let id = deliver_bytes(&app, body.as_bytes()).await;

    let (encoding, text): (Option<String>, String) = sqlx::query_as(
        "select payload_encoding, convert_from(payload, 'UTF8') from stack.webhook_events
         where svix_id = $1",
    )
    .bind(&id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((encoding, text), (None, body));
}

#[tokio::test]
async fn stack_sync_message_prints_a_body_as_received() {
    let app = keeping_all().await;
    let body = serde_json::to_vec_pretty(&example("team.updated")).unwrap();
    let id = deliver_bytes(&app, &body).await;
    assert_eq!(stored(&app, &id).await.0.as_deref(), Some("zstd"));

    let printed = message(&app, &id);
    let unknown = message(&app, "msg_never_sent");

    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(printed.stdout, body);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = stderr_of(&unknown);
    assert!(
        stderr.contains("never recorded: msg_never_sent"),
        "{stderr}"
    );
}

fn message(app: &TestApp, svix_id: &str) -> std::process::Output {
    stack_sync(&["message", svix_id], &[("DATABASE_URL", &app.db.url)])
        .output()
        .unwrap()
}
