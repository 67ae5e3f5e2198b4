//! Verified messages that cannot be applied are kept as `failed` (2xx, so Svix stops retrying);
//! database failures that a retry may not meet answer 503 and record nothing.

use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use stack_sync::store::schema;

use crate::support::payloads::{example_with, new_id};
use crate::support::{TestApp, example, message_id};

async fn failed_record(app: &TestApp, id: &str) -> (Option<String>, String, Vec<u8>, String) {
    sqlx::query_as(
        "select event_type, outcome, payload, error from stack.webhook_events where svix_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

async fn deliver_raw(app: &TestApp, body: &[u8]) -> (String, Value) {
    let id = message_id();
    let response = app.deliver(&id, body).await;
    assert_eq!(response.status(), 200);
    (id, response.json().await.unwrap())
}

#[tokio::test]
async fn body_that_is_not_json_is_kept_as_failed() {
    let app = TestApp::spawn().await;
    let body = b"user.created but not JSON \x00\xff";

    let (id, answer) = deliver_raw(&app, body).await;

    assert_eq!(answer, json!({"status": "failed"}));
    let (event_type, outcome, payload, error) = failed_record(&app, &id).await;
    assert_eq!((event_type, outcome.as_str()), (None, "failed"));
    assert_eq!(payload, body, "the raw body is kept byte for byte");
    assert!(
        error.starts_with("body is not a Stack webhook envelope"),
        "{error}"
    );
}

#[tokio::test]
async fn data_with_wrong_types_is_kept_as_failed_naming_the_field() {
    let app = TestApp::spawn().await;
    let event = example_with("user.updated", &[("primary_email_verified", json!("yes"))]);

    let (id, answer) = deliver_raw(&app, event.to_string().as_bytes()).await;

    assert_eq!(answer["status"], "failed");
    let (event_type, _, _, error) = failed_record(&app, &id).await;
    assert_eq!(event_type.as_deref(), Some("user.updated"));
    assert!(error.contains("primary_email_verified"), "{error}");
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn values_postgres_refuses_are_kept_as_failed_and_write_nothing_else() {
    let app = TestApp::spawn().await;
    // Postgres text and jsonb cannot hold the NUL character.
    let cases = [
        example_with("user.created", &[("display_name", json!("Ada\u{0}"))]),
        example_with(
            "team.created",
            &[("client_metadata", json!({"note": "\u{0}"}))],
        ),
        example_with("team_permission.created", &[("id", json!("admin\u{0}"))]),
    ];
    for event in &cases {
        let (id, answer) = deliver_raw(&app, event.to_string().as_bytes()).await;

        assert_eq!(answer["status"], "failed", "{}", event["type"]);
        let (event_type, outcome, _, error) = failed_record(&app, &id).await;
        assert_eq!(
            (event_type.as_deref(), outcome.as_str()),
            (event["type"].as_str(), "failed")
        );
        assert!(!error.is_empty());
    }
    for table in ["users", "teams", "team_permissions"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn a_failed_message_delivered_again_is_a_duplicate() {
    let app = TestApp::spawn().await;
    let id = message_id();

    let first = app
        .deliver(&id, b"not json")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let again = app
        .deliver(&id, b"not json")
        .await
        .json::<Value>()
        .await
        .unwrap();

    assert_eq!(
        (first["status"].as_str(), again["status"].as_str()),
        (Some("failed"), Some("duplicate"))
    );
    assert_eq!(app.count("webhook_events").await, 1);
}

#[tokio::test]
async fn database_failure_answers_503_records_nothing_and_the_retry_applies() {
    let app = TestApp::spawn().await;
    let id = message_id();
    let event = example_with("team.created", &[("id", json!(new_id()))]);
    // Take the events table away, as a failing database would.
    sqlx::query("alter table stack.webhook_events rename to webhook_events_away")
        .execute(&app.db.pool)
        .await
        .unwrap();

    let response = app.deliver(&id, event.to_string().as_bytes()).await;

    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "database_unavailable"})
    );
    sqlx::query("alter table stack.webhook_events_away rename to webhook_events")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(app.count("webhook_events").await, 0);
    assert_eq!(app.count("teams").await, 0);

    // Svix retries the same message id later: nothing was lost.
    assert_eq!(app.deliver_json(&id, &event).await, "applied");
    assert_eq!(app.count("teams").await, 1);
}

#[tokio::test]
async fn unreachable_database_answers_503_and_readiness_fails() {
    let app = TestApp::spawn_unreachable_database().await;
    let body = example("team.created").to_string();

    let response = app.deliver(&message_id(), body.as_bytes()).await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    let alive = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "database_unavailable"})
    );
    assert_eq!(
        (ready.status().as_u16(), alive.status().as_u16()),
        (503, 200)
    );
}

#[tokio::test]
async fn readiness_answers_200_with_a_database() {
    let app = TestApp::spawn().await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}

#[tokio::test]
async fn a_kind_the_database_functions_do_not_know_is_kept_as_failed_not_retried() {
    let app = TestApp::spawn().await;
    // As if the database's functions predated teams: the service knows the event type, the
    // database does not know what to do with it.
    let (_, change_mirror) = schema::FUNCTIONS
        .iter()
        .find(|(name, _)| *name == "change_mirror")
        .unwrap();
    // The team branch made unreachable: a second `when 'user'` never matches.
    let without_teams = change_mirror.replace("when 'team' then", "when 'user' then");
    sqlx::raw_sql(AssertSqlSafe(without_teams.as_str()))
        .execute(&app.db.pool)
        .await
        .unwrap();

    let (id, answer) = deliver_raw(&app, example("team.created").to_string().as_bytes()).await;

    assert_eq!(answer, json!({"status": "failed"}));
    let (event_type, outcome, _, error) = failed_record(&app, &id).await;
    assert_eq!(
        (event_type.as_deref(), outcome.as_str()),
        (Some("team.created"), "failed")
    );
    assert!(
        error.contains("cannot apply a change of kind team"),
        "{error}"
    );
    assert_eq!(app.count("teams").await, 0);
}

#[tokio::test]
async fn nul_characters_in_a_type_or_an_id_are_kept_as_failed_not_retried() {
    let app = TestApp::spawn().await;
    let nul_type = br#"{"type":"x\u0000y","data":{}}"#;
    let nul_id = json!({"type": "user.created", "data": {"id": "\u{0}"}}).to_string();

    for body in [&nul_type[..], nul_id.as_bytes()] {
        let (id, answer) = deliver_raw(&app, body).await;

        assert_eq!(
            answer,
            json!({"status": "failed"}),
            "{}",
            String::from_utf8_lossy(body)
        );
        let (_, outcome, payload, error) = failed_record(&app, &id).await;
        assert_eq!(outcome, "failed");
        assert_eq!(payload, body, "the raw body is kept byte for byte");
        assert!(!error.contains('\0'), "{error}");
    }
    assert_eq!(app.count("users").await, 0);
}
