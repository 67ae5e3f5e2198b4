//! `stack-sync forward`: every committed change reaches JetStream exactly once, in position
//! order, through a forwarder killed and restarted mid-burst and a NATS server stopped for a
//! while; nothing for a rolled-back transaction.

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::json;
use stack_sync::model::Position;
use stack_sync::store::changes::after;

use crate::support::TestApp;
use crate::support::command::stack_sync;
use crate::support::nats::NatsServer;
use crate::support::payloads::{example_with, new_id};

const STREAM: &str = "STACK_SYNC";

fn forwarder(database_url: &str, nats_url: &str) -> Child {
    stack_sync(
        &["forward"],
        &[
            ("DATABASE_URL", database_url),
            ("STACK_SYNC_FORWARD__NATS_URL", nats_url),
            ("STACK_SYNC_FORWARD__BATCH_SIZE", "20"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

async fn burst(app: &TestApp, users: usize) {
    futures::stream::iter(0..users)
        .for_each_concurrent(8, |n| async move {
            let event = example_with(
                "user.created",
                &[
                    ("id", json!(new_id())),
                    ("display_name", json!(format!("user {n}"))),
                ],
            );
            assert_eq!(app.deliver_event(&event).await.1, "applied");
        })
        .await;
}

/// Every message in the stream: its `Nats-Msg-Id`, in stream order.
async fn stream_ids(nats_url: &str) -> Vec<String> {
    let client = async_nats::connect(nats_url).await.unwrap();
    let stream = jetstream::new(client).get_stream(STREAM).await;
    let Ok(mut stream) = stream else {
        return Vec::new();
    };
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut ids = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let id = message.headers.get("Nats-Msg-Id").unwrap();
        ids.push(id.to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_arrives_once_in_order_through_a_killed_forwarder_and_a_stopped_broker() {
    let mut nats = NatsServer::start();
    let app = TestApp::spawn_with(|settings| settings.changes.enabled = true).await;
    let url = app.db.url.clone();
    let mut forwarding = forwarder(&url, &nats.url());

    burst(&app, 60).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    forwarding.kill().unwrap(); // SIGKILL
    forwarding.wait().unwrap();
    burst(&app, 60).await;
    let mut rolled_back = app.db.pool.begin().await.unwrap();
    sqlx::query("insert into stack.changes (table_name, operation, source) values ('users', 'upsert', 'webhook')")
        .execute(&mut *rolled_back)
        .await
        .unwrap();
    rolled_back.rollback().await.unwrap();
    let mut forwarding = forwarder(&url, &nats.url());
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.stop();
    burst(&app, 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.resume();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut logged = Vec::new();
    // Other tests' transactions on the cluster hold back what is settled while they run.
    while logged.len() < 180 && tokio::time::Instant::now() < deadline {
        logged = after(&app.db.pool, Position::START, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|change| change.position)
            .collect();
    }
    assert_eq!(logged.len(), 180, "one change per user");
    let mut forwarded = stream_ids(&nats.url()).await;
    while forwarded.len() < logged.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        forwarded = stream_ids(&nats.url()).await;
    }
    forwarding.kill().unwrap();
    forwarding.wait().unwrap();

    let status = stack_sync(&["status"], &[("DATABASE_URL", &url)])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("change log              on"), "{status}");
    assert!(status.contains("consumer nats:STACK_SYNC"), "{status}");
    let unique: HashSet<&String> = forwarded.iter().collect();
    assert_eq!(unique.len(), forwarded.len(), "no change published twice");
    assert_eq!(forwarded, logged, "every change, in position order");
}
