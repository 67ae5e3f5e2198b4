//! The change feed: with `feed.enabled`, exactly the rows the mirror commits are announced on
//! the channel, one notification each, in commit order; nothing for messages that change
//! nothing, dry runs or rolled-back transactions.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use stack_sync::config::Settings;
use stack_sync::event_time::message_id_at;
use stack_sync::model::{Change, Kind};
use stack_sync::store::mirror::{EventToApply, apply_event};
use time::OffsetDateTime;

use crate::support::fake_stack::{FakeStack, Paging};
use crate::support::payloads::{example_with, new_id};
use crate::support::{TestApp, message_id};

/// The feed on, on the default channel.
fn feed_on(settings: &mut Settings) {
    settings.feed.channel = Some("stack_sync".to_owned());
}
/// Sent last, so that everything before it has been delivered when it arrives.
const END: &str = "end of test";

async fn listen(app: &TestApp, channel: &str) -> PgListener {
    let mut listener = PgListener::connect(&app.db.url).await.unwrap();
    listener.listen(channel).await.unwrap();
    listener
}

/// Every notification on `channel` up to the end marker, as JSON.
async fn received(app: &TestApp, listener: &mut PgListener, channel: &str) -> Vec<Value> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(channel)
        .bind(END)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let mut payloads = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), listener.recv());
        let notification = next.await.expect("the end marker in time").unwrap();
        if notification.payload() == END {
            return payloads;
        }
        payloads.push(serde_json::from_str(notification.payload()).unwrap());
    }
}

fn row(table: &str, op: &str, id: &str, svix_id: &str) -> Value {
    json!({ "table": table, "op": op, "id": id, "source": "webhook", "svix_id": svix_id })
}

fn link(table: &str, op: &str, ids: &[(&str, &str)], svix_id: &str) -> Value {
    let mut link = json!({ "table": table, "op": op, "source": "webhook", "svix_id": svix_id });
    for (name, id) in ids {
        link[*name] = json!(id);
    }
    link
}

#[tokio::test]
async fn each_committed_change_is_announced_once_and_nothing_else() {
    let app = TestApp::spawn_with(feed_on).await;
    let mut listener = listen(&app, "stack_sync").await;
    let (user, team) = (new_id(), new_id());
    let user_created = example_with(
        "user.created",
        &[("id", json!(user)), ("selected_team_id", json!(team))],
    );
    let early = message_id_at(OffsetDateTime::now_utc() - time::Duration::minutes(5));

    let (created, _) = app.deliver_event(&user_created).await;
    assert_eq!(app.deliver_json(&created, &user_created).await, "duplicate");
    assert_eq!(app.deliver_event(&user_created).await.1, "unchanged");
    let older = example_with("user.updated", &[("id", json!(user))]);
    assert_eq!(app.deliver_json(&early, &older).await, "stale");
    let test_event = json!({"type": "stack.test", "data": {"message": "hi"}});
    assert_eq!(app.deliver_event(&test_event).await.1, "ignored");
    let bad = example_with(
        "user.updated",
        &[("id", json!(user)), ("has_password", json!("yes"))],
    );
    assert_eq!(app.deliver_event(&bad).await.1, "failed");

    let (team_created, _) = app
        .deliver_event(&example_with("team.created", &[("id", json!(team))]))
        .await;
    let ids = [("team_id", json!(team)), ("user_id", json!(user))];
    let (joined, _) = app
        .deliver_event(&example_with("team_membership.created", &ids))
        .await;
    let admin = [&ids[..], &[("id", json!("team_admin"))]].concat();
    let (granted, _) = app
        .deliver_event(&example_with("team_permission.created", &admin))
        .await;
    let reader = [("user_id", json!(user)), ("id", json!("read"))];
    let (read_granted, _) = app
        .deliver_event(&example_with("project_permission.created", &reader))
        .await;
    let (left, _) = app
        .deliver_event(&example_with("team_membership.deleted", &ids))
        .await;
    let (team_deleted, _) = app
        .deliver_event(&json!({"type": "team.deleted", "data": {"id": team}}))
        .await;
    let (user_deleted, _) = app
        .deliver_event(&json!({"type": "user.deleted", "data": {"id": user, "teams": []}}))
        .await;

    let (t, u) = (team.as_str(), user.as_str());
    let member = [("team_id", t), ("user_id", u)];
    let admin = [
        ("team_id", t),
        ("user_id", u),
        ("permission_id", "team_admin"),
    ];
    let read = [("user_id", u), ("permission_id", "read")];
    assert_eq!(
        received(&app, &mut listener, "stack_sync").await,
        [
            row("users", "upsert", u, &created),
            row("teams", "upsert", t, &team_created),
            link("team_members", "insert", &member, &joined),
            link("team_permissions", "insert", &admin, &granted),
            link("project_permissions", "insert", &read, &read_granted),
            // The removal takes the member's permissions in the team, then the membership.
            link("team_permissions", "delete", &admin, &left),
            link("team_members", "delete", &member, &left),
            // The team goes, and the user who had it selected changes.
            row("teams", "delete", t, &team_deleted),
            row("users", "upsert", u, &team_deleted),
            row("users", "delete", u, &user_deleted),
            link("project_permissions", "delete", &read, &user_deleted),
        ]
    );
}

#[tokio::test]
async fn reconcile_announces_its_changes_and_a_dry_run_nothing() {
    let app = TestApp::spawn_with(feed_on).await;
    let mut listener = listen(&app, "stack_sync").await;
    let stack = FakeStack::start(Paging::CursorIncluded).await;
    let ada = new_id();
    stack.add_user(&ada, "Ada", 1_000);

    let dry = stack.reconcile(&app.db, true, feed_on).await.unwrap();
    let real = stack.reconcile(&app.db, false, feed_on).await.unwrap();

    assert_eq!((dry.users.created, real.users.created), (1, 1));
    let run_id: i64 =
        sqlx::query_scalar("select max(id) from stack_sync.reconcile_runs where not dry_run")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        received(&app, &mut listener, "stack_sync").await,
        [
            json!({ "table": "users", "op": "upsert", "id": ada, "source": "reconcile",
                 "run_id": run_id })
        ]
    );
}

#[tokio::test]
async fn a_rolled_back_transaction_announces_nothing() {
    let app = TestApp::spawn_with(feed_on).await;
    let mut listener = listen(&app, "stack_sync").await;
    let data = example_with("user.created", &[("id", json!(new_id()))])["data"].clone();
    let change = Change::parse(Kind::User, false, data).unwrap();
    let svix_id = message_id();
    let event = EventToApply {
        svix_id: &svix_id,
        event_type: "user.created",
        payload: Some(b"{}"),
        source_time: None,
        change: &change,
        feed_channel: Some("stack_sync"),
        refresh: None,
    };

    let mut tx = app.db.pool.begin().await.unwrap();
    let outcome = apply_event(&mut *tx, &event, false).await.unwrap();
    tx.rollback().await.unwrap();

    assert_eq!(outcome.as_str(), "applied");
    assert_eq!(
        received(&app, &mut listener, "stack_sync").await,
        Vec::<Value>::new()
    );
}

#[tokio::test]
async fn the_feed_is_silent_when_off_and_follows_its_channel_when_renamed() {
    let off = TestApp::spawn().await;
    let mut off_listener = listen(&off, "stack_sync").await;
    off.deliver_event(&example_with("team.created", &[("id", json!(new_id()))]))
        .await;
    assert_eq!(
        received(&off, &mut off_listener, "stack_sync").await,
        Vec::<Value>::new()
    );

    let renamed = TestApp::spawn_with(|s| s.feed.channel = Some("mirror".to_owned())).await;
    let mut listener = listen(&renamed, "mirror").await;
    let team = new_id();
    let (id, _) = renamed
        .deliver_event(&example_with("team.created", &[("id", json!(team))]))
        .await;
    assert_eq!(
        received(&renamed, &mut listener, "mirror").await,
        [row("teams", "upsert", &team, &id)]
    );
}

#[tokio::test]
async fn long_ids_are_left_out_so_that_payloads_stay_small() {
    let app = TestApp::spawn_with(feed_on).await;
    let mut listener = listen(&app, "stack_sync").await;
    let (user, permission) = (new_id(), "p".repeat(5000));
    let grant = example_with(
        "project_permission.created",
        &[("user_id", json!(user)), ("id", json!(permission))],
    );

    let (id, status) = app.deliver_event(&grant).await;

    assert_eq!(status, "applied");
    let notifications = received(&app, &mut listener, "stack_sync").await;
    assert_eq!(
        notifications,
        [
            json!({ "table": "project_permissions", "op": "insert", "user_id": user,
                 "source": "webhook", "svix_id": id, "truncated": true })
        ]
    );
}
