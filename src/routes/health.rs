//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers too).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::store;

/// How long readiness waits for the database before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: answers as long as the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: 200 when a database round trip succeeds, 503 otherwise.
pub async fn readyz(State(pool): State<PgPool>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(READY_TIMEOUT, store::ping(&pool)).await {
        Ok(Ok(_)) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "not ready: database unreachable");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("not ready: database did not answer in time");
            unavailable()
        }
    }
}

fn unavailable() -> (StatusCode, Json<Value>) {
    let body = json!({ "error": "database_unavailable" });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}
