//! The admin listener's routes, for the app's backend: `POST /forget/users/{id}` and
//! `POST /forget/teams/{id}` (erasure), `POST /refresh/users/{id}` and `POST /refresh/teams/{id}`
//! (read-your-writes after a sign-up), each behind the bearer token `admin.token`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::delivery::Mirror;
use crate::model::Kind;
use crate::refresh::Refresher;
use crate::store::refresh::{Target, TargetKind};
use crate::store::{Permanent, RetryLater, classify};

/// The admin routes over `mirror`, every one answering 401 without `Bearer <token>`. Refreshing
/// needs Stack's API (`refresher`); without it, those routes answer 409 saying so.
pub fn router(mirror: Mirror, refresher: Option<Refresher>, token: &SecretString) -> Router {
    let token = Arc::new(Token::new(token));
    let refresh_routes = Router::new()
        .route("/refresh/users/{id}", post(refresh_user))
        .route("/refresh/teams/{id}", post(refresh_team))
        .with_state(refresher.map(Arc::new));
    Router::new()
        .route("/forget/users/{id}", post(forget_user))
        .route("/forget/teams/{id}", post(forget_team))
        .with_state(mirror)
        .merge(refresh_routes)
        .layer(middleware::from_fn(move |request, next| {
            require_token(Arc::clone(&token), request, next)
        }))
}

/// The token, kept as its SHA-256 digest: comparing digests of equal length in constant time
/// tells a caller nothing about the token, not even its length.
struct Token([u8; 32]);

impl Token {
    fn new(token: &SecretString) -> Self {
        Self(Sha256::digest(token.expose_secret().as_bytes()).into())
    }

    fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&presented).into()
    }
}

async fn require_token(token: Arc<Token>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if token.matches(presented) => next.run(request).await,
        _ => {
            tracing::warn!(
                http.path = request.uri().path(),
                "admin request without a valid token"
            );
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "unauthorized"})),
            )
                .into_response()
        }
    }
}

async fn forget_user(State(mirror): State<Mirror>, Path(id): Path<Uuid>) -> Response {
    forget(&mirror, Kind::User, id).await
}

async fn forget_team(State(mirror): State<Mirror>, Path(id): Path<Uuid>) -> Response {
    forget(&mirror, Kind::Team, id).await
}

/// Forgets `id` and answers what was removed, once it is committed.
async fn forget(mirror: &Mirror, kind: Kind, id: Uuid) -> Response {
    let forgotten =
        crate::forget::forget(&mirror.pool, kind, id, mirror.feed_channel.as_deref()).await;
    match forgotten {
        Ok(forgotten) => {
            tracing::info!(%id, kind = kind.as_str(), erased = forgotten.bodies_erased, "forgotten");
            Json(forgotten).into_response()
        }
        Err(err) => {
            // 503 when a retry may pass (the database is away, a lock timed out).
            let (status, err) = match classify(err) {
                Ok(Permanent(err)) => (StatusCode::INTERNAL_SERVER_ERROR, err),
                Err(RetryLater(err)) => (StatusCode::SERVICE_UNAVAILABLE, err),
            };
            tracing::error!(%id, error = %err, "forget failed");
            (status, Json(json!({"error": "forget_failed"}))).into_response()
        }
    }
}

type MaybeRefresher = State<Option<Arc<Refresher>>>;

async fn refresh_user(State(refresher): MaybeRefresher, Path(id): Path<Uuid>) -> Response {
    refresh(refresher.as_deref(), TargetKind::User, id).await
}

async fn refresh_team(State(refresher): MaybeRefresher, Path(id): Path<Uuid>) -> Response {
    refresh(refresher.as_deref(), TargetKind::Team, id).await
}

/// Refreshes `id` with its memberships and permissions and answers what changed, once it is
/// committed.
async fn refresh(refresher: Option<&Refresher>, kind: TargetKind, id: Uuid) -> Response {
    let Some(refresher) = refresher else {
        let detail = "refreshing needs Hexclave's API: set HEXCLAVE_PROJECT_ID and \
                      HEXCLAVE_SECRET_SERVER_KEY (or STACK_PROJECT_ID and STACK_SECRET_SERVER_KEY)";
        let body = json!({"error": "refresh_unavailable", "detail": detail});
        return (StatusCode::CONFLICT, Json(body)).into_response();
    };
    let target = Target {
        kind,
        id,
        with_links: true,
    };
    match refresher.refresh(target).await {
        Ok(report) => Json(report).into_response(),
        Err(err) => {
            // 503 either way: the API or the database may answer on a retry.
            tracing::error!(%id, error = %err, "refresh failed");
            let body = json!({"error": "refresh_failed", "detail": err.to_string()});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
