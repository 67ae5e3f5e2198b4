//! Personal data: what a deleted or forgotten user leaves behind (nothing of their name or
//! email in stored bodies, errors, the change feed or the logs), which bodies `keep_bodies`
//! keeps and what `replay` can do with each, and the admin endpoint's token.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::PgListener;
use stack_sync::config::KeepBodies;
use stack_sync::event_time::message_id_at;
use stack_sync::store::webhook_events::{RecordedBody, load_stored};
use time::OffsetDateTime;

use crate::support::command::stack_sync;
use crate::support::fake_stack::{FakeStack, Paging};
use crate::support::payloads::{example_with, new_id};
use crate::support::serve_process::{ServeProcess, signed};
use crate::support::{TestApp, message_id};

const NAME: &str = "Augusta Ada King";
const EMAIL: &str = "countess.lovelace@example.org";

/// A user event about `id` carrying the name and email this file looks for.
fn about(event_type: &str, id: &str, revision: u32) -> Value {
    example_with(
        event_type,
        &[
            ("id", json!(id)),
            ("display_name", json!(format!("{NAME} {revision}"))),
            ("primary_email", json!(EMAIL)),
        ],
    )
}

/// The messages about `id` a service records: a creation, two updates and a membership, at
/// consecutive times from ten minutes ago, and one update that fails (its error quotes the
/// email). Returns each with its message id, oldest first.
fn history(id: &str) -> Vec<(String, Value)> {
    let start = OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let at = |seconds: i64| message_id_at(start + time::Duration::seconds(seconds));
    let mut failing = about("user.updated", id, 9);
    failing["data"]["primary_email_verified"] = json!(EMAIL);
    vec![
        (at(0), about("user.created", id, 0)),
        (at(1), about("user.updated", id, 1)),
        (at(2), about("user.updated", id, 2)),
        (
            at(3),
            json!({"type": "team_membership.created",
                   "data": {"team_id": new_id(), "user_id": id}}),
        ),
        (at(4), failing),
    ]
}

/// Every place in `stack.webhook_events` and the mirror's users that still holds the name or
/// the email: bodies (decoded, whatever their encoding), errors, and rows.
async fn traces(pool: &sqlx::PgPool) -> Vec<String> {
    let mut found = Vec::new();
    let ids: Vec<(String, Option<String>)> =
        sqlx::query_as("select svix_id, error from stack.webhook_events")
            .fetch_all(pool)
            .await
            .unwrap();
    for (svix_id, error) in ids {
        if error.is_some_and(|error| holds_personal(&error)) {
            found.push(format!("the error of {svix_id}"));
        }
        let stored = load_stored(pool, &svix_id).await.unwrap().unwrap();
        if let RecordedBody::Kept(body) = stored.body
            && holds_personal(&String::from_utf8_lossy(&body))
        {
            found.push(format!("the body of {svix_id}"));
        }
    }
    let rows: Vec<String> = sqlx::query_scalar("select u::text from stack.users u")
        .fetch_all(pool)
        .await
        .unwrap();
    found.extend(rows.into_iter().filter(|row| holds_personal(row)));
    found
}

fn holds_personal(text: &str) -> bool {
    text.contains(NAME) || text.contains(EMAIL)
}

async fn erased_reasons(pool: &sqlx::PgPool, user_id: &str) -> Vec<Option<String>> {
    sqlx::query_scalar(
        "select erased_reason from stack.webhook_events where user_id = $1::uuid
         order by source_time",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn listen(url: &str) -> PgListener {
    let mut listener = PgListener::connect(url).await.unwrap();
    listener.listen("stack_sync").await.unwrap();
    listener
}

/// The notifications received until none comes for a second.
async fn drain(listener: &mut PgListener) -> Vec<String> {
    let mut payloads = Vec::new();
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(1), listener.recv()).await {
        payloads.push(next.unwrap().payload().to_owned());
    }
    payloads
}

async fn keeping_all() -> TestApp {
    TestApp::spawn_with(|settings| {
        settings.webhook.keep_bodies = KeepBodies::All;
        settings.feed.channel = Some("stack_sync".to_owned());
    })
    .await
}

#[tokio::test]
async fn a_user_deleted_by_webhook_leaves_no_name_or_email_anywhere() {
    let db = crate::support::postgres::TestDb::new().await;
    let service = ServeProcess::start(
        &db,
        &[
            ("STACK_SYNC_WEBHOOK__KEEP_BODIES", "all"),
            ("STACK_SYNC_FEED__ENABLED", "true"),
        ],
    );
    let mut feed = listen(&db.url).await;
    let id = new_id();
    let history = history(&id);
    for (svix_id, event) in &history {
        let body = event.to_string();
        let (_, timestamp, signature) = signed_as(svix_id, &body);
        assert_eq!(
            service
                .post(svix_id, timestamp, &signature, &body)
                .await
                .status(),
            200
        );
    }
    assert!(
        !traces(&db.pool).await.is_empty(),
        "kept before the deletion"
    );

    let deletion = json!({"type": "user.deleted", "data": {"id": id, "teams": []}}).to_string();
    let (deletion_id, timestamp, signature) = signed(&deletion);
    let answer = service
        .post(&deletion_id, timestamp, &signature, &deletion)
        .await;

    assert_eq!(answer.status(), 200);
    assert_eq!(traces(&db.pool).await, Vec::<String>::new());
    assert!(
        erased_reasons(&db.pool, &id)
            .await
            .iter()
            .all(|reason| reason.as_deref() == Some("user deleted"))
    );
    // What deduplication and ordering need stayed: a retry of an old message is a duplicate,
    // and a late update is stale, and its body is not kept either.
    let (old_id, old_event) = &history[1];
    let old = old_event.to_string();
    let (_, timestamp, signature) = signed_as(old_id, &old);
    let retried = service.post(old_id, timestamp, &signature, &old).await;
    assert_eq!(
        retried.json::<Value>().await.unwrap()["status"],
        "duplicate"
    );
    let late_id = message_id_at(OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let late = about("user.updated", &id, 3).to_string();
    let (_, timestamp, signature) = signed_as(&late_id, &late);
    let late_answer = service.post(&late_id, timestamp, &signature, &late).await;
    assert_eq!(
        late_answer.json::<Value>().await.unwrap()["status"],
        "stale"
    );
    assert_eq!(traces(&db.pool).await, Vec::<String>::new());
    let notified = drain(&mut feed).await;
    assert!(!notified.is_empty());
    assert!(
        !notified.iter().any(|payload| holds_personal(payload)),
        "{notified:?}"
    );
    service.terminate();
    let logs: Vec<String> = service.logs.iter().map(|line| line.to_string()).collect();
    assert!(logs.len() > history.len(), "{logs:?}");
    assert!(!logs.iter().any(|line| holds_personal(line)), "{logs:?}");
}

/// The signature Svix would send for `body` under the message id `svix_id`.
fn signed_as(svix_id: &str, body: &str) -> (String, i64, String) {
    let timestamp = crate::support::signing::now();
    let signature =
        crate::support::signing::Signer::default().signature(svix_id, timestamp, body.as_bytes());
    (svix_id.to_owned(), timestamp, signature)
}

async fn deliver_history(app: &TestApp, id: &str) {
    for (svix_id, event) in history(id) {
        app.deliver_json(&svix_id, &event).await;
    }
    assert!(!traces(&app.db.pool).await.is_empty(), "kept before");
}

#[tokio::test]
async fn a_user_deleted_by_reconcile_leaves_no_name_or_email() {
    let app = keeping_all().await;
    let id = new_id();
    deliver_history(&app, &id).await;
    // Stack no longer has the user: the run deletes them.
    let stack = FakeStack::start(Paging::CursorIncluded).await;
    stack.add_user(&new_id(), "Someone else", 1_000);

    let summary = stack.reconcile(&app.db, false, |_| {}).await.unwrap();

    assert_eq!(summary.users.deleted, 1);
    assert_eq!(traces(&app.db.pool).await, Vec::<String>::new());
    assert!(
        erased_reasons(&app.db.pool, &id)
            .await
            .iter()
            .all(|reason| reason.as_deref() == Some("user deleted"))
    );
}

fn forget(app: &TestApp, id: &str) -> Value {
    let output = stack_sync(&["forget", "user", id], &[("DATABASE_URL", &app.db.url)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(!holds_personal(&printed), "{printed}");
    serde_json::from_str(&printed).unwrap()
}

#[tokio::test]
async fn forget_erases_a_user_stack_never_deleted_and_keeps_them_out() {
    let app = keeping_all().await;
    let id = new_id();
    deliver_history(&app, &id).await;

    let first = forget(&app, &id);
    let second = forget(&app, &id);

    assert_eq!(
        first,
        json!({
            "bodies_erased": 5,
            "rows_deleted": {"users": 1, "team_members": 1, "team_permissions": 0,
                             "project_permissions": 0},
            "buried_before": false,
        })
    );
    assert_eq!(second["bodies_erased"], 0);
    assert_eq!(second["buried_before"], true);
    assert_eq!(traces(&app.db.pool).await, Vec::<String>::new());
    assert!(
        erased_reasons(&app.db.pool, &id)
            .await
            .iter()
            .all(|reason| reason.as_deref() == Some("forgotten"))
    );
    // Even an update newer than the forgetting does not bring them back, nor is it kept.
    let newer = app
        .deliver_json(&message_id(), &about("user.updated", &id, 4))
        .await;
    assert_eq!(newer, "stale");
    assert_eq!(app.count("users").await, 0);
    assert_eq!(traces(&app.db.pool).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_body_recorded_before_subjects_were_recorded_is_found_by_forget() {
    let app = keeping_all().await;
    let id = new_id();
    deliver_history(&app, &id).await;
    // As an earlier version recorded them: no subject ids.
    sqlx::query("update stack.webhook_events set user_id = null, team_id = null")
        .execute(&app.db.pool)
        .await
        .unwrap();

    let forgotten = forget(&app, &id);

    assert_eq!(forgotten["bodies_erased"], 5);
    assert_eq!(traces(&app.db.pool).await, Vec::<String>::new());
}

/// What a service keeping `keep` recorded of each kind of message, and what replaying each did.
async fn kept_and_replayed(keep: &str) -> Vec<(String, bool, String)> {
    let keep_bodies = match keep {
        "all" => KeepBodies::All,
        "unapplied" => KeepBodies::Unapplied,
        _ => KeepBodies::None,
    };
    let app = TestApp::spawn_with(|settings| settings.webhook.keep_bodies = keep_bodies).await;
    let id = new_id();
    let mut failing = about("user.updated", &id, 1);
    failing["data"]["has_password"] = json!("yes");
    let messages = [
        ("applied", about("user.created", &id, 0)),
        ("failed", failing),
        (
            "unknown type",
            json!({"type": "session.created", "data": {"user_id": id}}),
        ),
        (
            "stack.test",
            json!({"type": "stack.test", "data": {"message": "hi"}}),
        ),
        (
            "issue.*",
            json!({"type": "issue.created", "data": {"message": format!("no {EMAIL}")}}),
        ),
    ];
    let mut ids = Vec::new();
    for (what, event) in &messages {
        let svix_id = message_id();
        app.deliver_json(&svix_id, event).await;
        ids.push((*what, svix_id));
    }
    let mut seen = Vec::new();
    for (what, svix_id) in ids {
        let stored = load_stored(&app.db.pool, &svix_id).await.unwrap().unwrap();
        let output = stack_sync(
            &["replay", "--id", &svix_id],
            &[
                ("DATABASE_URL", &app.db.url),
                ("STACK_SYNC_WEBHOOK__KEEP_BODIES", keep),
            ],
        )
        .output()
        .unwrap();
        let report = String::from_utf8(output.stdout).unwrap();
        let line = report.lines().next().unwrap_or_default();
        let replayed = line.split(" -> ").nth(1).unwrap_or_default();
        let replayed = replayed.split(':').next().unwrap_or_default().to_owned();
        seen.push((
            what.to_owned(),
            matches!(stored.body, RecordedBody::Kept(_)),
            replayed,
        ));
    }
    seen
}

fn expect(rows: &[(&str, bool, &str)]) -> Vec<(String, bool, String)> {
    rows.iter()
        .map(|(what, kept, replayed)| ((*what).to_owned(), *kept, (*replayed).to_owned()))
        .collect()
}

#[tokio::test]
async fn keep_bodies_all_keeps_and_replays_every_message() {
    assert_eq!(
        kept_and_replayed("all").await,
        expect(&[
            ("applied", true, "unchanged"),
            ("failed", true, "failed"),
            ("unknown type", true, "ignored"),
            ("stack.test", true, "ignored"),
            ("issue.*", true, "ignored"),
        ])
    );
}

#[tokio::test]
async fn keep_bodies_unapplied_keeps_what_a_replay_could_use() {
    assert_eq!(
        kept_and_replayed("unapplied").await,
        expect(&[
            ("applied", false, "not replayed"),
            ("failed", true, "failed"),
            ("unknown type", true, "ignored"),
            ("stack.test", false, "not replayed"),
            ("issue.*", false, "not replayed"),
        ])
    );
}

#[tokio::test]
async fn keep_bodies_none_keeps_no_body_and_a_replay_says_so() {
    assert_eq!(
        kept_and_replayed("none").await,
        expect(&[
            ("applied", false, "not replayed"),
            ("failed", false, "not replayed"),
            ("unknown type", false, "not replayed"),
            ("stack.test", false, "not replayed"),
            ("issue.*", false, "not replayed"),
        ])
    );
}

#[tokio::test]
async fn message_says_why_an_erased_body_is_gone() {
    let app = keeping_all().await;
    let id = new_id();
    let svix_id = message_id();
    app.deliver_json(&svix_id, &about("user.created", &id, 0))
        .await;
    forget(&app, &id);

    let output = stack_sync(&["message", &svix_id], &[("DATABASE_URL", &app.db.url)])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("its body was erased at"), "{stderr}");
    assert!(stderr.contains("(forgotten)"), "{stderr}");
    assert!(output.stdout.is_empty());
}

const TOKEN: &str = "a-test-token-of-some-length";

#[tokio::test]
async fn the_forget_endpoint_answers_only_the_right_token() {
    let app = TestApp::spawn_with(|settings| {
        settings.admin.port = 0;
        settings.admin.token = Some(TOKEN.into());
        settings.webhook.keep_bodies = KeepBodies::All;
    })
    .await;
    let id = new_id();
    app.deliver_json(&message_id(), &about("user.created", &id, 0))
        .await;
    let url = format!("{}/forget/users/{id}", app.admin_url.as_deref().unwrap());
    let send = |authorization: Option<&str>| {
        let mut request = app.client.post(&url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };

    let missing = send(None).await.unwrap();
    let wrong = send(Some("Bearer a-test-token-of-some-lengtH"))
        .await
        .unwrap();
    let not_bearer = send(Some(TOKEN)).await.unwrap();
    assert_eq!(
        [missing.status(), wrong.status(), not_bearer.status()].map(|s| s.as_u16()),
        [401; 3]
    );
    assert_eq!(app.count("users").await, 1, "nothing forgotten yet");

    let right = send(Some(&format!("Bearer {TOKEN}"))).await.unwrap();

    assert_eq!(right.status(), 200);
    let answer: Value = right.json().await.unwrap();
    assert_eq!(answer["bodies_erased"], 1);
    assert_eq!(answer["rows_deleted"]["users"], 1);
    assert_eq!(app.count("users").await, 0);
    // Not on the webhook port.
    let on_webhook_port = app
        .client
        .post(format!("{}/forget/users/{id}", app.base_url))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_webhook_port.status(), 404);
}

#[tokio::test]
async fn without_a_token_no_admin_listener_runs() {
    let app = TestApp::spawn_with(|settings| settings.admin.port = 0).await;

    assert!(app.admin_url.is_none());
}
