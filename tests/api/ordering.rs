//! Named delivery orders that Svix produces: late retries, reordering, deletes racing updates,
//! and one change sent twice. Each event's message id carries its creation time, as Svix's do.

use std::sync::OnceLock;

use serde_json::{Value, json};
use sqlx::Row;
use stack_sync::event_time::message_id_at;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::support::payloads::{example_with, new_id};
use crate::support::{TestApp, example};

/// Stack's changes, one time step apart, from a start an hour ago fixed once per test run
/// (so a step's time does not depend on when the test asks for it).
fn at(step: i64) -> String {
    static START: OnceLock<OffsetDateTime> = OnceLock::new();
    let start = *START.get_or_init(|| OffsetDateTime::now_utc() - Duration::hours(1));
    message_id_at(start + Duration::milliseconds(100 * step))
}

fn user(id: &str, name: &str) -> Value {
    example_with(
        "user.updated",
        &[("id", json!(id)), ("display_name", json!(name))],
    )
}

async fn display_name(app: &TestApp, id: &str) -> Option<String> {
    sqlx::query_scalar("select display_name from stack.users where id = $1::uuid")
        .bind(id)
        .fetch_optional(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn update_after_delete_is_stale_and_does_not_revive_the_user() {
    let app = TestApp::spawn().await;
    let id = new_id();
    app.deliver_json(&at(1), &user(&id, "Ada")).await;
    app.deliver_json(
        &at(3),
        &json!({"type": "user.deleted", "data": {"id": id, "teams": []}}),
    )
    .await;

    let late_update = app.deliver_json(&at(2), &user(&id, "Ada King")).await;

    assert_eq!(late_update, "stale");
    assert_eq!(display_name(&app, &id).await, None);
    let tombstones: i64 =
        sqlx::query_scalar("select count(*) from stack.deleted_users where id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(tombstones, 1);
}

#[tokio::test]
async fn create_after_delete_is_stale_for_users_and_teams() {
    let app = TestApp::spawn().await;
    let (user_id, team_id) = (new_id(), new_id());
    app.deliver_json(
        &at(2),
        &json!({"type": "user.deleted", "data": {"id": user_id, "teams": []}}),
    )
    .await;
    app.deliver_json(
        &at(2),
        &json!({"type": "team.deleted", "data": {"id": team_id}}),
    )
    .await;

    let user_created = example_with("user.created", &[("id", json!(user_id))]);
    let team_created = example_with("team.created", &[("id", json!(team_id))]);
    let outcomes = [
        app.deliver_json(&at(1), &user_created).await,
        app.deliver_json(&at(1), &team_created).await,
    ];

    assert_eq!(outcomes, ["stale", "stale"]);
    assert_eq!((app.count("users").await, app.count("teams").await), (0, 0));
}

#[tokio::test]
async fn a_delete_wins_even_when_its_message_is_older_than_the_last_update() {
    // Stack dispatches webhooks after commit, asynchronously: a deletion's message can be
    // created before the message of an update committed just ahead of it.
    let app = TestApp::spawn().await;
    let id = new_id();
    app.deliver_json(&at(2), &user(&id, "Ada")).await;

    let delete = app
        .deliver_json(
            &at(1),
            &json!({"type": "user.deleted", "data": {"id": id, "teams": []}}),
        )
        .await;

    assert_eq!(delete, "applied");
    assert_eq!(display_name(&app, &id).await, None);
}

#[tokio::test]
async fn retry_of_an_old_update_after_a_newer_one_is_stale() {
    let app = TestApp::spawn().await;
    let id = new_id();
    let old = at(1);
    app.deliver_json(&at(2), &user(&id, "Newer")).await;

    let retried = app.deliver_json(&old, &user(&id, "Older")).await;

    assert_eq!(retried, "stale");
    assert_eq!(display_name(&app, &id).await.as_deref(), Some("Newer"));
    assert_eq!(app.recorded_outcome(&old).await.as_deref(), Some("stale"));
}

#[tokio::test]
async fn the_same_change_under_two_ids_writes_once() {
    let app = TestApp::spawn().await;
    let id = new_id();
    let first = at(1);
    app.deliver_json(&first, &user(&id, "Ada")).await;
    let before = sqlx::query("select synced_at, svix_id, xmin::text as version from stack.users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    let second = app.deliver_json(&at(2), &user(&id, "Ada")).await;

    assert_eq!(second, "unchanged");
    let after = sqlx::query("select synced_at, svix_id, xmin::text as version from stack.users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        after.get::<OffsetDateTime, _>("synced_at"),
        before.get::<OffsetDateTime, _>("synced_at")
    );
    assert_eq!(after.get::<String, _>("svix_id"), first);
    assert_eq!(
        after.get::<String, _>("version"),
        before.get::<String, _>("version"),
        "the row was not rewritten"
    );
}

#[tokio::test]
async fn an_unchanged_event_still_counts_as_the_newest() {
    // Renamed to B, then back to A; the A event lands first and finds A already there.
    let app = TestApp::spawn().await;
    let id = new_id();
    app.deliver_json(&at(1), &user(&id, "A")).await;
    assert_eq!(app.deliver_json(&at(3), &user(&id, "A")).await, "unchanged");

    let late_rename = app.deliver_json(&at(2), &user(&id, "B")).await;

    assert_eq!(late_rename, "stale");
    assert_eq!(display_name(&app, &id).await.as_deref(), Some("A"));
}

#[tokio::test]
async fn a_user_update_older_than_its_selected_teams_deletion_leaves_no_selection() {
    let app = TestApp::spawn().await;
    let team = example("team.created");
    let update = example("user.updated");
    assert_eq!(update["data"]["selected_team_id"], team["data"]["id"]);
    app.deliver_json(&at(1), &team).await;
    app.deliver_json(&at(3), &example("team.deleted")).await;

    // Created before the deletion, delivered after it (a retry).
    let late = app.deliver_json(&at(2), &update).await;

    assert_eq!(late, "applied");
    let row = sqlx::query(
        "select selected_team_id, selected_team, raw -> 'selected_team_id' as raw_selected
         from stack.users where id = $1::uuid",
    )
    .bind(update["data"]["id"].as_str().unwrap())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(row.get::<Option<Uuid>, _>("selected_team_id"), None);
    assert_eq!(row.get::<Option<Value>, _>("selected_team"), None);
    assert_eq!(
        row.get::<Option<Value>, _>("raw_selected"),
        Some(Value::Null)
    );
}

/// Takes, on a connection of its own inside an open transaction, the advisory lock that
/// `stack_sync.lock_ids` takes for `id`, shared or not.
async fn hold_lock(
    app: &TestApp,
    id: &str,
    shared: bool,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = app.db.pool.begin().await.unwrap();
    let take = if shared {
        "select pg_advisory_xact_lock_shared(hashtextextended($1, 0))"
    } else {
        "select pg_advisory_xact_lock(hashtextextended($1, 0))"
    };
    sqlx::query(take)
        .bind(id)
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

#[tokio::test]
async fn users_selecting_one_team_do_not_wait_on_each_other_but_its_deletion_waits_for_them() {
    let app = TestApp::spawn().await;
    let team = example("team.created");
    let team_id = team["data"]["id"].as_str().unwrap().to_owned();
    app.deliver_json(&at(1), &team).await;

    // As a user event in flight holds it: shared.
    let in_flight = hold_lock(&app, &team_id, true).await;
    let other_user = example_with("user.updated", &[("id", json!(new_id()))]);
    assert_eq!(other_user["data"]["selected_team_id"], json!(team_id));
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.deliver_json(&at(2), &other_user),
    )
    .await
    .expect("a user selecting the team does not wait for another one");
    assert_eq!(answer, "applied");

    let (deletion_id, team_deleted) = (at(3), example("team.deleted"));
    let deletion = app.deliver_json(&deletion_id, &team_deleted);
    tokio::pin!(deletion);
    let waited = tokio::time::timeout(std::time::Duration::from_millis(500), &mut deletion).await;
    assert!(
        waited.is_err(),
        "the deletion waits for the user event in flight"
    );
    in_flight.commit().await.unwrap();
    assert_eq!(deletion.await, "applied");
}

#[tokio::test]
async fn membership_after_its_team_was_deleted_is_stale() {
    let app = TestApp::spawn().await;
    let team_id = example("team.created")["data"]["id"].clone();
    app.deliver_json(&at(1), &example("team.created")).await;
    app.deliver_json(&at(3), &example("team.deleted")).await;

    let older = app
        .deliver_json(&at(2), &example("team_membership.created"))
        .await;
    let permission = app
        .deliver_json(&at(2), &example("team_permission.created"))
        .await;

    assert_eq!((older.as_str(), permission.as_str()), ("stale", "stale"));
    assert_eq!(app.count("team_members").await, 0);
    assert_eq!(app.count("team_permissions").await, 0);
    let buried: i64 = sqlx::query_scalar("select count(*) from stack.deleted_teams where id = $1")
        .bind(team_id.as_str().unwrap().parse::<Uuid>().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(buried, 1);
}

#[tokio::test]
async fn a_grant_older_than_a_removal_changes_nothing_and_the_reverse() {
    let app = TestApp::spawn().await;
    let grant = example("project_permission.created");
    let revoke = example("project_permission.deleted");
    app.deliver_json(&at(2), &revoke).await;

    assert_eq!(app.deliver_json(&at(1), &grant).await, "stale");
    assert_eq!(app.count("project_permissions").await, 0);

    assert_eq!(app.deliver_json(&at(4), &grant).await, "applied");
    assert_eq!(app.deliver_json(&at(3), &revoke).await, "stale");
    assert_eq!(app.count("project_permissions").await, 1);
}

#[tokio::test]
async fn removal_of_a_member_takes_only_the_permissions_granted_before_it() {
    let app = TestApp::spawn().await;
    let member = example("team_membership.created");
    let removed = example("team_membership.deleted");
    let old_grant = example_with(
        "team_permission.created",
        &[("id", json!("manage_billing"))],
    );
    let new_grant = example_with("team_permission.created", &[("id", json!("team_member"))]);
    // Stack: added (1), granted manage_billing (2), removed (3), re-added (4), granted team_member (5).
    app.deliver_json(&at(4), &member).await;
    app.deliver_json(&at(5), &new_grant).await;
    assert_eq!(app.deliver_json(&at(3), &removed).await, "stale");
    assert_eq!(app.deliver_json(&at(2), &old_grant).await, "stale");
    assert_eq!(app.deliver_json(&at(1), &member).await, "stale");

    let permissions: Vec<String> =
        sqlx::query_scalar("select permission_id from stack.team_permissions")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(permissions, ["team_member"]);
    assert_eq!(app.count("team_members").await, 1);
}

#[tokio::test]
async fn ids_without_a_time_are_ordered_by_arrival() {
    let app = TestApp::spawn().await;
    let id = new_id();
    for (message, name) in [("first-delivery", "A"), ("second-delivery", "B")] {
        assert_eq!(app.deliver_json(message, &user(&id, name)).await, "applied");
    }
    assert_eq!(display_name(&app, &id).await.as_deref(), Some("B"));
    let time: Option<OffsetDateTime> = sqlx::query_scalar(
        "select source_time from stack.webhook_events where svix_id = 'second-delivery'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(
        time.is_some(),
        "the arrival time stands in for the source time"
    );
}

/// A `user.updated` that renames `user` to `name`.
fn renamed(user: &str, name: &str) -> Value {
    example_with(
        "user.updated",
        &[("id", json!(user)), ("display_name", json!(name))],
    )
}

/// Applies an update of `user` whose message id claims the year 2100; returns the id.
async fn apply_an_update_dated_2100(app: &TestApp, user: &str) -> String {
    let year_2100 = message_id_at(time::macros::datetime!(2100-01-01 0:00 UTC));
    assert_eq!(
        app.deliver_json(&year_2100, &renamed(user, "bogus")).await,
        "applied"
    );
    year_2100
}

#[tokio::test]
async fn a_message_id_from_the_future_holds_nothing_a_few_seconds_later() {
    // The default tolerance of Svix's clock against ours, 5 minutes: it no longer widens the cap.
    let app = TestApp::spawn().await;
    let user = new_id();
    apply_an_update_dated_2100(&app, &user).await;

    // A real update ten seconds later, signed when it was created, as Svix does.
    let created = OffsetDateTime::now_utc() + Duration::seconds(10);
    let (id, body) = (message_id_at(created), renamed(&user, "real").to_string());
    let headers = app
        .signer
        .headers_at(&id, created.unix_timestamp(), body.as_bytes());
    let answer = app.post(&headers, body.into_bytes()).await;

    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["status"], "applied");
    assert_eq!(display_name(&app, &user).await.as_deref(), Some("real"));
}

#[tokio::test]
async fn a_message_id_from_the_future_cannot_make_a_row_immune() {
    let app =
        TestApp::spawn_with(|s| s.webhook.tolerance = std::time::Duration::from_secs(1)).await;
    let user = new_id();
    let year_2100 = apply_an_update_dated_2100(&app, &user).await;
    let recorded: OffsetDateTime =
        sqlx::query_scalar("select source_time from stack.webhook_events where svix_id = $1")
            .bind(&year_2100)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    // Cut to when it was signed plus 2 s, whatever the tolerance: a later real update applies.
    let later = message_id_at(OffsetDateTime::now_utc() + Duration::seconds(2));
    let real = app.deliver_json(&later, &renamed(&user, "real")).await;

    assert!(
        recorded < OffsetDateTime::now_utc() + Duration::seconds(5),
        "{recorded}"
    );
    assert_eq!(real, "applied");
}
