//! Every event type, delivered over HTTP, leaves the tables as Stack's state says.

use serde_json::{Value, json};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::payloads::{example_with, new_id};
use crate::support::{TestApp, example};

fn uuid(value: &Value) -> Uuid {
    value.as_str().unwrap().parse().unwrap()
}

fn from_millis(value: &Value) -> OffsetDateTime {
    let millis = i128::from(value.as_i64().unwrap());
    OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).unwrap()
}

async fn user_row(app: &TestApp, id: Uuid) -> Option<sqlx::postgres::PgRow> {
    sqlx::query("select * from stack.users where id = $1")
        .bind(id)
        .fetch_optional(&app.db.pool)
        .await
        .unwrap()
}

async fn links_of_user(app: &TestApp, user_id: Uuid) -> (i64, i64, i64) {
    let row = sqlx::query(
        "select (select count(*) from stack.team_members where user_id = $1),
                (select count(*) from stack.team_permissions where user_id = $1),
                (select count(*) from stack.project_permissions where user_id = $1)",
    )
    .bind(user_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn user_created_fills_every_typed_column() {
    let app = TestApp::spawn().await;
    let event = example("user.created");
    let data = &event["data"];

    let (id, status) = app.deliver_event(&event).await;

    assert_eq!(status, "applied");
    let row = user_row(&app, uuid(&data["id"]))
        .await
        .expect("user mirrored");
    assert_eq!(
        row.get::<Option<String>, _>("display_name").as_deref(),
        data["display_name"].as_str()
    );
    assert_eq!(
        row.get::<Option<String>, _>("primary_email").as_deref(),
        data["primary_email"].as_str()
    );
    assert_eq!(
        row.get::<Option<bool>, _>("primary_email_verified"),
        data["primary_email_verified"].as_bool()
    );
    assert_eq!(
        row.get::<Option<bool>, _>("is_anonymous"),
        data["is_anonymous"].as_bool()
    );
    assert_eq!(
        row.get::<Option<String>, _>("country_code").as_deref(),
        data["country_code"].as_str()
    );
    assert_eq!(
        row.get::<Option<OffsetDateTime>, _>("signed_up_at"),
        Some(from_millis(&data["signed_up_at_millis"]))
    );
    assert_eq!(
        row.get::<Option<OffsetDateTime>, _>("last_active_at"),
        Some(from_millis(&data["last_active_at_millis"]))
    );
    assert_eq!(
        row.get::<Option<Value>, _>("risk_scores").as_ref(),
        Some(&data["risk_scores"])
    );
    assert_eq!(
        row.get::<Option<Value>, _>("oauth_providers").as_ref(),
        Some(&data["oauth_providers"])
    );
    assert_eq!(
        row.get::<Option<Value>, _>("external_auth_providers")
            .as_ref(),
        Some(&data["external_auth_providers"])
    );
    assert_eq!(
        row.get::<Option<Value>, _>("client_metadata"),
        None,
        "JSON null is SQL null"
    );
    assert_eq!(&row.get::<Value, _>("raw"), data);
    assert_eq!(row.get::<String, _>("svix_id"), id);
    assert_eq!(app.recorded_outcome(&id).await.as_deref(), Some("applied"));
}

#[tokio::test]
async fn user_updated_replaces_the_row() {
    let app = TestApp::spawn().await;
    app.deliver_event(&example("user.created")).await;
    let updated = example("user.updated");
    let data = &updated["data"];

    let (id, status) = app.deliver_event(&updated).await;

    assert_eq!(status, "applied");
    let row = user_row(&app, uuid(&data["id"])).await.unwrap();
    assert_eq!(
        row.get::<Option<String>, _>("display_name").as_deref(),
        data["display_name"].as_str()
    );
    assert_eq!(
        row.get::<Option<Uuid>, _>("selected_team_id"),
        Some(uuid(&data["selected_team_id"]))
    );
    assert_eq!(
        row.get::<Option<Value>, _>("server_metadata").as_ref(),
        Some(&data["server_metadata"])
    );
    assert_eq!(row.get::<Option<bool>, _>("has_password"), Some(true));
    assert_eq!(row.get::<String, _>("svix_id"), id);
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn anonymous_user_is_mirrored() {
    let app = TestApp::spawn().await;
    let event = example_with(
        "user.created",
        &[
            ("id", json!(new_id())),
            ("is_anonymous", json!(true)),
            ("primary_email", Value::Null),
            ("is_restricted", json!(true)),
            ("restricted_reason", json!({"type": "anonymous"})),
        ],
    );

    app.deliver_event(&event).await;

    let row = user_row(&app, uuid(&event["data"]["id"])).await.unwrap();
    assert_eq!(row.get::<Option<bool>, _>("is_anonymous"), Some(true));
    assert_eq!(row.get::<Option<String>, _>("primary_email"), None);
    assert_eq!(
        row.get::<Option<Value>, _>("restricted_reason"),
        Some(json!({"type": "anonymous"}))
    );
}

#[tokio::test]
async fn user_deleted_removes_the_user_and_all_their_links() {
    let app = TestApp::spawn().await;
    let user = example("user.created");
    let user_id = uuid(&user["data"]["id"]);
    let other_user = new_id();
    app.deliver_event(&user).await;
    for name in [
        "team_membership.created",
        "team_permission.created",
        "project_permission.created",
    ] {
        app.deliver_event(&example(name)).await;
        app.deliver_event(&example_with(name, &[("user_id", json!(other_user))]))
            .await;
    }
    assert_eq!(links_of_user(&app, user_id).await, (1, 1, 1));

    let (_, status) = app.deliver_event(&example("user.deleted")).await;

    assert_eq!(status, "applied");
    assert!(user_row(&app, user_id).await.is_none());
    assert_eq!(links_of_user(&app, user_id).await, (0, 0, 0));
    assert_eq!(
        links_of_user(&app, uuid(&json!(other_user))).await,
        (1, 1, 1),
        "others untouched"
    );
}

#[tokio::test]
async fn team_created_and_updated_are_mirrored() {
    let app = TestApp::spawn().await;
    let created = example("team.created");
    let updated = example("team.updated");
    let team_id = uuid(&created["data"]["id"]);

    assert_eq!(app.deliver_event(&created).await.1, "applied");
    let (id, status) = app.deliver_event(&updated).await;

    assert_eq!(status, "applied");
    let row = sqlx::query("select * from stack.teams where id = $1")
        .bind(team_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let data = &updated["data"];
    assert_eq!(
        row.get::<Option<String>, _>("display_name").as_deref(),
        data["display_name"].as_str()
    );
    assert_eq!(
        row.get::<Option<OffsetDateTime>, _>("created_at"),
        Some(from_millis(&data["created_at_millis"]))
    );
    assert_eq!(
        row.get::<Option<Value>, _>("server_metadata").as_ref(),
        Some(&data["server_metadata"])
    );
    assert_eq!(&row.get::<Value, _>("raw"), data);
    assert_eq!(row.get::<String, _>("svix_id"), id);
}

#[tokio::test]
async fn team_deleted_removes_its_memberships_permissions_and_selection() {
    let app = TestApp::spawn().await;
    let team_id = uuid(&example("team.created")["data"]["id"]);
    let other_team = new_id();
    app.deliver_event(&example("team.created")).await;
    app.deliver_event(&example("user.updated")).await; // selects the team
    for name in ["team_membership.created", "team_permission.created"] {
        app.deliver_event(&example(name)).await;
        app.deliver_event(&example_with(name, &[("team_id", json!(other_team))]))
            .await;
    }

    let (_, status) = app.deliver_event(&example("team.deleted")).await;

    assert_eq!(status, "applied");
    let left: (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from stack.teams where id = $1),
                (select count(*) from stack.team_members where team_id = $1),
                (select count(*) from stack.team_permissions where team_id = $1)",
    )
    .bind(team_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(left, (0, 0, 0));
    assert_eq!(
        app.count("team_members").await,
        1,
        "the other team's member stays"
    );
    assert_eq!(
        app.count("team_permissions").await,
        1,
        "the other team's permission stays"
    );
    let user = user_row(&app, uuid(&example("user.updated")["data"]["id"]))
        .await
        .unwrap();
    assert_eq!(user.get::<Option<Uuid>, _>("selected_team_id"), None);
    assert_eq!(user.get::<Value, _>("raw")["selected_team"], Value::Null);
}

#[tokio::test]
async fn membership_created_and_deleted_with_that_members_team_permissions() {
    let app = TestApp::spawn().await;
    let other_team = new_id();
    app.deliver_event(&example("team_membership.created")).await;
    app.deliver_event(&example("team_permission.created")).await;
    app.deliver_event(&example_with(
        "team_permission.created",
        &[("team_id", json!(other_team))],
    ))
    .await;
    assert_eq!(app.count("team_members").await, 1);

    let (_, status) = app.deliver_event(&example("team_membership.deleted")).await;

    assert_eq!(status, "applied");
    assert_eq!(app.count("team_members").await, 0);
    let left: Vec<Uuid> = sqlx::query_scalar("select team_id from stack.team_permissions")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        left,
        vec![uuid(&json!(other_team))],
        "only the other team's permission is left"
    );
}

#[tokio::test]
async fn team_permission_granted_and_revoked() {
    let app = TestApp::spawn().await;
    let granted = example("team_permission.created");
    let revoked = example_with(
        "team_permission.deleted",
        &[("id", granted["data"]["id"].clone())],
    );
    let unrelated = example("team_permission.deleted"); // another permission id

    app.deliver_event(&granted).await;
    let row: (Uuid, Uuid, String) =
        sqlx::query_as("select team_id, user_id, permission_id from stack.team_permissions")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let data = &granted["data"];
    assert_eq!(
        row,
        (
            uuid(&data["team_id"]),
            uuid(&data["user_id"]),
            data["id"].as_str().unwrap().to_owned()
        )
    );

    assert_eq!(app.deliver_event(&unrelated).await.1, "unchanged");
    assert_eq!(
        app.count("team_permissions").await,
        1,
        "revoking another permission keeps this one"
    );
    assert_eq!(app.deliver_event(&revoked).await.1, "applied");
    assert_eq!(app.count("team_permissions").await, 0);
}

#[tokio::test]
async fn project_permission_granted_and_revoked() {
    let app = TestApp::spawn().await;
    let granted = example("project_permission.created");

    app.deliver_event(&granted).await;
    let row: (Uuid, String) =
        sqlx::query_as("select user_id, permission_id from stack.project_permissions")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        row,
        (
            uuid(&granted["data"]["user_id"]),
            granted["data"]["id"].as_str().unwrap().to_owned()
        )
    );

    assert_eq!(
        app.deliver_event(&example("project_permission.deleted"))
            .await
            .1,
        "applied"
    );
    assert_eq!(app.count("project_permissions").await, 0);
}

#[tokio::test]
async fn membership_before_its_user_and_team_is_kept_and_joins_once_they_arrive() {
    let app = TestApp::spawn().await;
    let members_sql = "select u.id from stack.team_members m
                       join stack.users u on u.id = m.user_id
                       join stack.teams t on t.id = m.team_id";

    assert_eq!(
        app.deliver_event(&example("team_membership.created"))
            .await
            .1,
        "applied"
    );
    assert_eq!(
        app.deliver_event(&example("team_permission.created"))
            .await
            .1,
        "applied"
    );
    let joined: Vec<Uuid> = sqlx::query_scalar(members_sql)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(joined.is_empty());

    app.deliver_event(&example("user.created")).await;
    app.deliver_event(&example("team.created")).await;

    let joined: Vec<Uuid> = sqlx::query_scalar(members_sql)
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(joined, vec![uuid(&example("user.created")["data"]["id"])]);
    assert_eq!(app.count("team_permissions").await, 1);
}

#[tokio::test]
async fn stack_test_and_unknown_types_are_recorded_as_ignored() {
    let app = TestApp::spawn().await;

    let (test_id, test_status) = app.deliver_event(&example("stack.test")).await;
    let (unknown_id, unknown_status) = app
        .deliver_event(&json!({"type": "session.created", "data": {"id": new_id()}}))
        .await;

    assert_eq!(
        (test_status.as_str(), unknown_status.as_str()),
        ("ignored", "ignored")
    );
    assert_eq!(
        app.recorded_outcome(&test_id).await.as_deref(),
        Some("ignored")
    );
    let recorded: (Option<String>, Vec<u8>) =
        sqlx::query_as("select event_type, payload from stack.webhook_events where svix_id = $1")
            .bind(&unknown_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(recorded.0.as_deref(), Some("session.created"));
    assert_eq!(
        serde_json::from_slice::<Value>(&recorded.1).unwrap()["type"],
        "session.created"
    );
    for table in [
        "users",
        "teams",
        "team_members",
        "team_permissions",
        "project_permissions",
    ] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn numbers_are_kept_as_stack_sent_them() {
    let app = TestApp::spawn().await;
    // Written as text: no JSON library on the way may round them before the service sees them.
    let numbers = r#"{"big": 123456789012345678901234567890, "precise": 0.1000000000000000055511151231257827, "huge": 1e400, "scaled": 1.50}"#;
    let mut event = example("user.created");
    event["data"]["client_metadata"] = json!("NUMBERS");
    event["data"]["extra_count"] = json!("EXTRA");
    let body = event
        .to_string()
        .replace(r#""NUMBERS""#, numbers)
        .replace(r#""EXTRA""#, "98765432109876543210");
    let id = crate::support::message_id();

    let response = app.deliver(&id, body.as_bytes()).await;

    assert_eq!(response.status(), 200);
    // jsonb compares numbers by value, at Postgres's numeric precision (thousands of digits).
    let (metadata_kept, extra_kept, scale): (bool, bool, String) = sqlx::query_as(
        "select client_metadata = $1::jsonb,
                raw -> 'extra_count' = '98765432109876543210'::jsonb,
                client_metadata ->> 'scaled'
         from stack.users where svix_id = $2",
    )
    .bind(numbers)
    .bind(&id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(metadata_kept, "client_metadata altered");
    assert!(extra_kept, "an unknown field's number altered in raw");
    assert_eq!(scale, "1.50", "trailing zeros are part of what was sent");
}
