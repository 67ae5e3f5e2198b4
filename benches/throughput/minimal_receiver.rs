//! The baseline the throughput bench compares stack-sync with (`RECEIVER=minimal`): a webhook
//! receiver written as Stack's documentation suggests one, and no more. It verifies the Svix
//! signature, records the `svix-id` with `on conflict do nothing` (a duplicate ends there), and
//! upserts the user or team as a few typed columns and `raw` (or inserts or deletes the link),
//! in a transaction of its own. No ordering, tombstones, cascades, replay log or metrics.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use sqlx::PgPool;
use stack_sync::signature::{SigningKey, Verifier};

const SCHEMA: &str = "
    create schema minimal;
    create table minimal.webhook_ids (svix_id text primary key, received_at timestamptz not null default now());
    create table minimal.users (id uuid primary key, display_name text, primary_email text, raw jsonb not null);
    create table minimal.teams (id uuid primary key, display_name text, raw jsonb not null);
    create table minimal.team_members (team_id uuid, user_id uuid, primary key (team_id, user_id));
    create table minimal.team_permissions (team_id uuid, user_id uuid, id text, primary key (team_id, user_id, id));
    create table minimal.project_permissions (user_id uuid, id text, primary key (user_id, id));
";

struct Receiver {
    pool: PgPool,
    verifier: Verifier,
}

/// Creates its tables in `pool`'s database and serves `POST /webhooks/stack` on a free port;
/// returns the endpoint.
pub async fn serve(pool: PgPool, secret: &str) -> String {
    sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
    let key = SigningKey::from_secret(secret).unwrap();
    let receiver = Arc::new(Receiver {
        pool,
        verifier: Verifier::new(vec![key], Duration::from_secs(300)),
    });
    let router = Router::new()
        .route("/webhooks/stack", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/webhooks/stack", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    endpoint
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Ok(verified) = receiver.verifier.verify(&headers, &body, SystemTime::now()) else {
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    match apply(&receiver.pool, &verified.id, &event).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn apply(pool: &PgPool, svix_id: &str, event: &Value) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let new =
        sqlx::query("insert into minimal.webhook_ids (svix_id) values ($1) on conflict do nothing")
            .bind(svix_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if new == 0 {
        return tx.commit().await;
    }
    let data = &event["data"];
    let text = |field: &str| data[field].as_str().map(str::to_owned);
    let id = |field: &str| text(field).and_then(|id| id.parse::<uuid::Uuid>().ok());
    let statement = match event["type"].as_str().unwrap_or_default() {
        "user.created" | "user.updated" => sqlx::query(
            "insert into minimal.users (id, display_name, primary_email, raw) values ($1, $2, $3, $4)
             on conflict (id) do update set display_name = excluded.display_name,
                 primary_email = excluded.primary_email, raw = excluded.raw",
        )
        .bind(id("id"))
        .bind(text("display_name"))
        .bind(text("primary_email"))
        .bind(data),
        "user.deleted" => sqlx::query("delete from minimal.users where id = $1").bind(id("id")),
        "team.created" | "team.updated" => sqlx::query(
            "insert into minimal.teams (id, display_name, raw) values ($1, $2, $3)
             on conflict (id) do update set display_name = excluded.display_name, raw = excluded.raw",
        )
        .bind(id("id"))
        .bind(text("display_name"))
        .bind(data),
        "team.deleted" => sqlx::query("delete from minimal.teams where id = $1").bind(id("id")),
        "team_membership.created" => sqlx::query(
            "insert into minimal.team_members values ($1, $2) on conflict do nothing",
        )
        .bind(id("team_id"))
        .bind(id("user_id")),
        "team_membership.deleted" => sqlx::query(
            "delete from minimal.team_members where team_id = $1 and user_id = $2",
        )
        .bind(id("team_id"))
        .bind(id("user_id")),
        "team_permission.created" => sqlx::query(
            "insert into minimal.team_permissions values ($1, $2, $3) on conflict do nothing",
        )
        .bind(id("team_id"))
        .bind(id("user_id"))
        .bind(text("id")),
        "team_permission.deleted" => sqlx::query(
            "delete from minimal.team_permissions where team_id = $1 and user_id = $2 and id = $3",
        )
        .bind(id("team_id"))
        .bind(id("user_id"))
        .bind(text("id")),
        "project_permission.created" => sqlx::query(
            "insert into minimal.project_permissions values ($1, $2) on conflict do nothing",
        )
        .bind(id("user_id"))
        .bind(text("id")),
        "project_permission.deleted" => {
            sqlx::query("delete from minimal.project_permissions where user_id = $1 and id = $2")
                .bind(id("user_id"))
                .bind(text("id"))
        }
        _ => return tx.commit().await,
    };
    statement.execute(&mut *tx).await?;
    tx.commit().await
}
