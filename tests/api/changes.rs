//! The change log (`changes.enabled`): one row per committed change, nothing for what changed
//! nothing or rolled back, and a reader that resumes from any position never skips a change,
//! even one whose transaction took its position before others committed.

use serde_json::{Value, json};
use sqlx::PgPool;
use stack_sync::model::{Change, Kind, Position};
use stack_sync::store::changes::{LoggedChange, after};
use stack_sync::store::mirror::{EventToApply, apply_event};

use crate::support::command::{stack_sync, stderr_of};
use crate::support::payloads::{example_with, new_id};
use crate::support::{TestApp, message_id};

async fn logging() -> TestApp {
    TestApp::spawn_with(|settings| settings.changes.enabled = true).await
}

async fn everything(pool: &PgPool) -> Vec<LoggedChange> {
    after(pool, Position::START, 10_000).await.unwrap()
}

/// The changes after `from` once at least `count` are settled. Other tests' transactions on the
/// same cluster hold back what is settled while they run (the log's rule is the cluster's
/// oldest running transaction), so this waits for them; a change settled stays settled.
async fn settled(pool: &PgPool, from: Position, count: usize) -> Vec<LoggedChange> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let changes = after(pool, from, 10_000).await.unwrap();
        if changes.len() >= count || tokio::time::Instant::now() > deadline {
            return changes;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn user(id: &str, name: &str) -> Value {
    example_with(
        "user.created",
        &[("id", json!(id)), ("display_name", json!(name))],
    )
}

/// Applies a new user's creation in `tx` without committing it.
async fn create_in(tx: &mut sqlx::PgConnection, id: &str) {
    let data = user(id, "open")["data"].clone();
    let change = Change::parse(Kind::User, false, data).unwrap();
    let svix_id = message_id();
    let event = EventToApply {
        svix_id: &svix_id,
        event_type: "user.created",
        payload: None,
        source_time: None,
        change: &change,
        feed_channel: None,
        refresh: None,
    };
    apply_event(&mut *tx, &event, false).await.unwrap();
}

#[tokio::test]
async fn each_committed_change_is_logged_once_and_nothing_else() {
    let app = logging().await;
    let (id, team) = (new_id(), new_id());
    let created = user(&id, "Ada");
    let (svix_id, status) = app.deliver_event(&created).await;
    assert_eq!(status, "applied");
    app.deliver_json(&svix_id, &created).await; // duplicate
    app.deliver_event(&created).await; // unchanged
    app.deliver_event(&json!({"type": "issue.created", "data": {}}))
        .await; // ignored
    let bad = json!({"type": "user.updated", "data": {"id": id, "display_name": 7}});
    app.deliver_event(&bad).await; // failed
    let membership = json!({"type": "team_membership.created",
                            "data": {"team_id": team, "user_id": id}});
    app.deliver_event(&membership).await;
    let deleted = json!({"type": "user.deleted", "data": {"id": id, "teams": [{"id": team}]}});
    let (deletion, _) = app.deliver_event(&deleted).await;
    let mut tx = app.db.pool.begin().await.unwrap();
    create_in(&mut tx, &new_id()).await;
    tx.rollback().await.unwrap();

    let logged: Vec<(String, String, String)> = settled(&app.db.pool, Position::START, 4)
        .await
        .into_iter()
        .map(|c| (c.table_name, c.operation, c.svix_id.unwrap_or_default()))
        .collect();
    let row =
        |table: &str, op: &str, svix: &str| (table.to_owned(), op.to_owned(), svix.to_owned());
    assert_eq!(
        logged,
        [
            row("users", "upsert", &svix_id),
            row("team_members", "insert", &logged[1].2),
            row("users", "delete", &deletion),
            row("team_members", "delete", &deletion),
        ]
    );
}

#[tokio::test]
async fn off_by_default_nothing_is_logged() {
    let app = TestApp::spawn().await;
    app.deliver_event(&user(&new_id(), "Ada")).await;
    assert_eq!(app.count("changes").await, 0);
}

#[tokio::test]
async fn a_reader_never_moves_past_a_change_still_to_commit() {
    let app = logging().await;
    let pool = &app.db.pool;
    let (first, second, third) = (new_id(), new_id(), new_id());

    // The open transaction has the older id: it wrote first, and commits last.
    let mut open = pool.begin().await.unwrap();
    create_in(&mut open, &first).await;
    app.deliver_event(&user(&second, "committed")).await;
    assert!(
        everything(pool).await.is_empty(),
        "the committed change waits behind the open one"
    );
    open.commit().await.unwrap();
    let both = settled(pool, Position::START, 2).await;
    let ids: Vec<_> = both
        .iter()
        .map(|c| c.user_id.unwrap().to_string())
        .collect();
    assert_eq!(ids, [first.clone(), second.clone()]);

    // Now the other way: a transaction that took its id before the next one, and commits after.
    let mut early: sqlx::Transaction<'_, sqlx::Postgres> = pool.begin().await.unwrap();
    sqlx::query("select pg_current_xact_id()")
        .execute(&mut *early)
        .await
        .unwrap();
    let last_seen = both.last().unwrap().position();
    app.deliver_event(&user(&third, "committed first")).await;
    assert!(after(pool, last_seen, 100).await.unwrap().is_empty());
    let fourth = new_id();
    create_in(&mut early, &fourth).await;
    early.commit().await.unwrap();
    let rest: Vec<_> = settled(pool, last_seen, 2)
        .await
        .iter()
        .map(|c| c.user_id.unwrap().to_string())
        .collect();
    assert_eq!(rest, [fourth, third], "in position order, both there");
}

#[tokio::test]
async fn resuming_from_any_position_gives_exactly_the_rest() {
    let app = logging().await;
    for n in 0..12 {
        app.deliver_event(&user(&new_id(), &format!("user {n}")))
            .await;
    }
    let all = settled(&app.db.pool, Position::START, 12).await;
    assert_eq!(all.len(), 12);
    for (i, change) in all.iter().enumerate() {
        let rest = after(&app.db.pool, change.position(), 100).await.unwrap();
        let expected: Vec<&str> = all[i + 1..].iter().map(|c| c.position.as_str()).collect();
        let got: Vec<&str> = rest.iter().map(|c| c.position.as_str()).collect();
        assert_eq!(got, expected, "after {}", change.position);
    }
    let two = after(&app.db.pool, Position::START, 2).await.unwrap();
    assert_eq!(two.len(), 2, "a bounded batch");
}

#[tokio::test]
async fn the_changes_command_prints_the_log_and_resumes() {
    let app = logging().await;
    let ids = [new_id(), new_id(), new_id()];
    for id in &ids {
        app.deliver_event(&user(id, "Ada")).await;
    }
    assert_eq!(settled(&app.db.pool, Position::START, 3).await.len(), 3);
    let url = app.db.url.clone();
    let output = stack_sync(&["changes", "--json"], &[("DATABASE_URL", &url)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let users: Vec<&str> = lines
        .iter()
        .map(|l| l["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(lines[0]["source"], "webhook");
    assert_eq!(lines[0]["table"], "users");

    let from = lines[1]["position"].as_str().unwrap();
    let output = stack_sync(&["changes", "--from", from], &[("DATABASE_URL", &url)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&format!("user={}", ids[2])), "{text}");

    let bad = stack_sync(&["changes", "--from", "7412"], &[("DATABASE_URL", &url)])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        stderr_of(&bad).contains("<xid>/<seq>"),
        "{}",
        stderr_of(&bad)
    );
}

#[tokio::test]
async fn pruning_waits_for_every_consumer_up_to_the_hard_limit() {
    let app = logging().await;
    for n in 0..4 {
        app.deliver_event(&user(&new_id(), &format!("user {n}")))
            .await;
    }
    let all = settled(&app.db.pool, Position::START, 4).await;
    // All four are past the 30-day window; one is past the 90-day limit too.
    sqlx::query("update stack.changes set changed_at = now() - interval '40 days'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("update stack.changes set changed_at = now() - interval '100 days' where seq = $1")
        .bind(all[0].position().seq)
        .execute(&app.db.pool)
        .await
        .unwrap();
    // A consumer that has read the first two.
    stack_sync::store::changes::advance_consumer(&app.db.pool, "search-index", all[1].position())
        .await
        .unwrap();

    let pruned = stack_sync::retention::prune_changes(&app.db.pool, Some(30), 90, 1000)
        .await
        .unwrap();

    assert_eq!((pruned.deleted, pruned.unread), (2, 0), "the two read ones");
    let left = everything(&app.db.pool).await;
    assert_eq!(left.len(), 2, "kept for the consumer");
    sqlx::query("update stack.changes set changed_at = now() - interval '100 days'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let forced = stack_sync::retention::prune_changes(&app.db.pool, Some(30), 90, 1000)
        .await
        .unwrap();
    assert_eq!(
        (forced.deleted, forced.unread),
        (2, 2),
        "past the hard limit, read or not"
    );
}

#[tokio::test]
async fn each_change_says_where_it_came_from() {
    use crate::support::fake_stack::{FakeStack, Paging};
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let api = fake.api_settings();
    let app = TestApp::spawn_with(|settings| {
        settings.changes.enabled = true;
        settings.stack = Some(api);
        settings.admin.token = Some("a-test-admin-token-long-enough".into());
        settings.admin.port = 0;
    })
    .await;
    let (user, team) = (new_id(), new_id());
    fake.sign_up(&user, &team);
    fake.reconcile(&app.db, false, |_| {}).await.unwrap();
    let url = format!("{}/refresh/users/{user}", app.admin_url.as_deref().unwrap());
    fake.project().users.get_mut(&user).unwrap()["display_name"] = json!("renamed");
    let refreshed = app
        .client
        .post(&url)
        .bearer_auth("a-test-admin-token-long-enough");
    assert_eq!(refreshed.send().await.unwrap().status(), 200);
    let forgotten = format!("{}/forget/users/{user}", app.admin_url.as_deref().unwrap());
    let forgotten = app
        .client
        .post(&forgotten)
        .bearer_auth("a-test-admin-token-long-enough");
    assert_eq!(forgotten.send().await.unwrap().status(), 200);

    let sources: Vec<(String, String)> = settled(&app.db.pool, Position::START, 9)
        .await
        .into_iter()
        .filter(|c| c.table_name == "users")
        .map(|c| (c.operation, c.source))
        .collect();
    let pair = |op: &str, source: &str| (op.to_owned(), source.to_owned());
    assert_eq!(
        sources,
        [
            pair("upsert", "reconcile"),
            pair("upsert", "refresh"),
            pair("delete", "forget")
        ]
    );
}
