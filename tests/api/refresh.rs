//! Freshness (`refresh.*`): after a webhook about a user or team the service fetches its state
//! from the fake Stack API and applies it, so that what Stack changes without a webhook reaches
//! the mirror within seconds; coalesced, retried, kept across a restart, and never in the way of
//! a webhook. And the same on demand: `stack-sync refresh` and `POST /refresh/users/{id}`.

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use stack_sync::config::Settings;
use stack_sync::event_time::message_id_at;
use time::OffsetDateTime;

use crate::support::TestApp;
use crate::support::command::{stack_sync, stderr_of};
use crate::support::fake_stack::{FakeStack, Fault, Paging};
use crate::support::payloads::new_id;

const TOKEN: &str = "a-test-admin-token-long-enough";

/// Refreshing after webhooks against `fake`, fetching `delay` after each.
fn refreshing(fake: &FakeStack, delay: Duration) -> impl FnOnce(&mut Settings) {
    let api = fake.api_settings();
    move |settings| {
        settings.stack = Some(api);
        settings.refresh.enabled = true;
        settings.refresh.delay = delay;
    }
}

/// Waits until `check` holds, asking every 50 ms for at most 15 s; fails the test otherwise.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn event(event_type: &str, data: &Value) -> Value {
    json!({ "type": event_type, "data": data })
}

/// Delivers an event of `event_type` about `data` and expects it applied.
async fn applied(app: &TestApp, event_type: &str, data: &Value) {
    let (_, status) = app.deliver_event(&event(event_type, data)).await;
    assert_eq!(status, "applied", "{event_type}");
}

async fn queued(app: &TestApp) -> i64 {
    app.count_in("stack_sync.refresh_queue").await
}

async fn display_name(app: &TestApp, id: &str) -> Option<String> {
    sqlx::query_scalar("select display_name from stack.users where id = $1::uuid")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sign_up_gets_what_stack_added_without_a_webhook_within_seconds() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let app = TestApp::spawn_with(refreshing(&fake, Duration::from_millis(100))).await;
    let (user, team) = (new_id(), new_id());
    let (team_data, user_data) = fake.sign_up(&user, &team);

    // Only what Stack sends: no membership, no permission.
    applied(&app, "team.created", &team_data).await;
    applied(&app, "user.created", &user_data).await;

    eventually(
        "the membership and both permissions are mirrored",
        || async {
            app.count("team_members").await == 1
                && app.count("team_permissions").await == 1
                && app.count("project_permissions").await == 1
        },
    )
    .await;
    eventually("the queue is empty", || async { queued(&app).await == 0 }).await;
    let admin: bool = sqlx::query_scalar(
        "select exists (select 1 from stack.team_permissions
                        where team_id = $1::uuid and user_id = $2::uuid and permission_id = 'team_admin')",
    )
    .bind(&team)
    .bind(&user)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(admin, "the creator's team_admin");
    assert_eq!(fake.requests_to(&format!("/api/v1/users/{user}")), 1);
    assert_eq!(fake.requests_to(&format!("/api/v1/teams/{team}")), 1);
}

#[tokio::test]
async fn ten_updates_in_the_delay_are_one_fetch() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let app = TestApp::spawn_with(refreshing(&fake, Duration::from_secs(2))).await;
    let (user, team) = (new_id(), new_id());
    let (_, mut user_data) = fake.sign_up(&user, &team);

    let start = OffsetDateTime::now_utc();
    for n in 0..10 {
        user_data["display_name"] = json!(format!("Ada {n}"));
        let id = message_id_at(start + time::Duration::milliseconds(n * 5));
        app.deliver_json(&id, &event("user.updated", &user_data))
            .await;
    }

    eventually("the refresh is done", || async {
        fake.requests_to(&format!("/api/v1/users/{user}")) > 0 && queued(&app).await == 0
    })
    .await;
    assert_eq!(fake.requests_to(&format!("/api/v1/users/{user}")), 1);
    assert_eq!(
        fake.requests_to("/api/v1/teams"),
        0,
        "updates ask for the user alone"
    );
    assert_eq!(
        display_name(&app, &user).await.as_deref(),
        Some("Ada Lovelace")
    );
    let metrics = app.client.get(&app.metrics_url).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("stack_sync_refreshes_coalesced_total 9"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"stack_sync_refreshes_total{result="done"} 1"#));
}

#[tokio::test]
async fn a_late_copy_of_an_older_update_is_put_right() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let app = TestApp::spawn_with(refreshing(&fake, Duration::from_millis(100))).await;
    let (user, team) = (new_id(), new_id());
    let (_, mut user_data) = fake.sign_up(&user, &team);
    let start = OffsetDateTime::now_utc() - time::Duration::seconds(5);

    let mut older = user_data.clone();
    older["display_name"] = json!("Ada Byron");
    user_data["display_name"] = json!("Ada Lovelace");
    let at = |ms: i64| message_id_at(start + time::Duration::milliseconds(ms));
    app.deliver_json(&at(0), &event("user.updated", &user_data))
        .await;
    // Sent again after a 429, under a new id with a later time (as Hexclave's code says it can).
    let copy = app
        .deliver_json(&at(200), &event("user.updated", &older))
        .await;
    assert_eq!(
        copy, "applied",
        "the mirror cannot tell the copy from a newer update"
    );

    eventually("the refresh restores Stack's state", || async {
        display_name(&app, &user).await.as_deref() == Some("Ada Lovelace")
    })
    .await;
}

/// A Stack API that answers 503 to everything until the faults are cleared.
fn down(fake: &FakeStack) {
    let faults = std::iter::repeat_n(
        Fault {
            status: 503,
            retry_after: None,
        },
        100_000,
    );
    fake.project().faults.extend(faults);
}

#[tokio::test]
async fn an_api_outage_slows_refreshes_but_never_a_webhook() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let app = TestApp::spawn_with(refreshing(&fake, Duration::from_millis(50))).await;
    let (user, team) = (new_id(), new_id());
    let (_, user_data) = fake.sign_up(&user, &team);
    down(&fake);

    applied(&app, "user.created", &user_data).await;
    eventually("the refresh has failed", || async {
        let failing: i64 = sqlx::query_scalar(
            "select count(*) from stack_sync.refresh_queue where last_error is not null",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        failing == 1
    })
    .await;
    // Webhooks go on while it fails.
    let mut renamed = user_data.clone();
    renamed["display_name"] = json!("Ada, still");
    applied(&app, "user.updated", &renamed).await;
    let status = stack_sync(&["status"], &[("DATABASE_URL", &app.db.url)])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("refreshes pending       1"), "{status}");
    assert!(status.contains("1 failing"), "{status}");

    fake.project().faults.clear();
    eventually("the refresh succeeds once Stack is back", || async {
        app.count("team_members").await == 1 && queued(&app).await == 0
    })
    .await;
}

#[tokio::test]
async fn a_rate_limit_pauses_refreshes_and_they_still_finish() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let app = TestApp::spawn_with(refreshing(&fake, Duration::from_millis(50))).await;
    let (user, team) = (new_id(), new_id());
    let (_, user_data) = fake.sign_up(&user, &team);
    let limited = Fault {
        status: 429,
        retry_after: Some("1"),
    };
    fake.project().faults.extend([limited.clone(), limited]);

    applied(&app, "user.created", &user_data).await;
    eventually("the refresh finishes after the pause", || async {
        app.count("project_permissions").await == 1 && queued(&app).await == 0
    })
    .await;
}

#[tokio::test]
async fn a_restart_loses_no_pending_refresh() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let mut first = TestApp::spawn_with(refreshing(&fake, Duration::from_millis(50))).await;
    let (user, team) = (new_id(), new_id());
    let (_, user_data) = fake.sign_up(&user, &team);
    down(&fake);
    applied(&first, "user.created", &user_data).await;
    eventually("the first attempt has failed", || async {
        fake.requests_to("/api/v1/users/") > 0
    })
    .await;
    first.begin_shutdown();
    first.wait_stopped().await.unwrap();
    fake.project().faults.clear();
    // The stopped service closed the test's pool.
    let pool = sqlx::PgPool::connect(&first.db.url).await.unwrap();
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            let sql = format!("select count(*) from {table}");
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .unwrap();
            count
        }
    };
    assert_eq!(
        count("stack_sync.refresh_queue").await,
        1,
        "the refresh waits in the database"
    );

    first
        .spawn_replica_with(refreshing(&fake, Duration::from_millis(50)))
        .await;
    eventually("the service started again refreshes it", || async {
        count("stack.team_members").await == 1 && count("stack_sync.refresh_queue").await == 0
    })
    .await;
}

#[tokio::test]
async fn without_refresh_a_webhook_queues_nothing() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let api = fake.api_settings();
    let app = TestApp::spawn_with(|settings| settings.stack = Some(api)).await;
    let (_, user_data) = fake.sign_up(&new_id(), &new_id());
    applied(&app, "user.created", &user_data).await;
    assert_eq!(queued(&app).await, 0);
    assert_eq!(fake.requests_to("/api/v1/"), 0);
}

#[tokio::test]
async fn the_admin_endpoint_answers_what_changed_once_committed() {
    let fake = FakeStack::start(Paging::CursorExcluded).await;
    let api = fake.api_settings();
    let app = TestApp::spawn_with(|settings| {
        settings.stack = Some(api);
        settings.admin.token = Some(TOKEN.into());
        settings.admin.port = 0;
    })
    .await;
    let (user, team) = (new_id(), new_id());
    fake.sign_up(&user, &team);
    let path = format!("/refresh/users/{user}");
    let url = format!("{}{path}", app.admin_url.as_deref().unwrap());

    let refused = app.client.post(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let report = refresh_as_admin(&app, &path).await;

    assert_eq!(report["found"], true);
    assert_eq!(report["users"]["created"], 1);
    assert_eq!(report["teams"]["created"], 1);
    assert_eq!(report["team_members"]["created"], 1);
    assert_eq!(report["team_permissions"]["created"], 1);
    assert_eq!(report["project_permissions"]["created"], 1);
    assert_eq!(
        app.count("team_members").await,
        1,
        "committed before the answer"
    );

    let again = refresh_as_admin(&app, &path).await;
    assert_eq!(again["users"]["unchanged"], 1);
    assert_eq!(again["team_members"]["created"], 0);

    let unknown = refresh_as_admin(&app, &format!("/refresh/teams/{}", new_id())).await;
    assert_eq!(unknown["found"], false);
}

/// `POST <path>` on the admin listener with the token; expects 200 and returns the report.
async fn refresh_as_admin(app: &TestApp, path: &str) -> Value {
    let url = format!("{}{path}", app.admin_url.as_deref().unwrap());
    let answer = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{path}");
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_admin_endpoint_says_what_is_missing_without_the_api() {
    let app = TestApp::spawn_with(|settings| {
        settings.admin.token = Some(TOKEN.into());
        settings.admin.port = 0;
    })
    .await;
    let url = format!(
        "{}/refresh/users/{}",
        app.admin_url.as_deref().unwrap(),
        new_id()
    );
    let answer = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("HEXCLAVE_SECRET_SERVER_KEY")
    );
}

#[tokio::test]
async fn the_refresh_command_prints_what_changed() {
    let fake = FakeStack::start(Paging::CursorIncluded).await;
    let app = TestApp::spawn().await;
    let (user, team) = (new_id(), new_id());
    fake.sign_up(&user, &team);
    let mut vars: Vec<(&str, String)> = fake.env();
    vars.push(("DATABASE_URL", app.db.url.clone()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Run without blocking the runtime, which serves the fake.
    let command = stack_sync(&["refresh", "team", &team], &vars);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(&format!("refreshed team {team}")),
        "{printed}"
    );
    assert!(
        printed.contains("team_members         1 created"),
        "{printed}"
    );
    assert_eq!(app.count("team_permissions").await, 1);

    let missing = stack_sync(
        &["refresh", "user", &team],
        &[("DATABASE_URL", &app.db.url)],
    )
    .output()
    .unwrap();
    assert!(!missing.status.success());
    assert!(
        stderr_of(&missing).contains("HEXCLAVE_PROJECT_ID"),
        "{}",
        stderr_of(&missing)
    );
}
