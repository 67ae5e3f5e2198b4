//! The one error type of the HTTP layer, and the response each error becomes. Bodies carry a
//! stable snake_case code; internals are logged here, once, and never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::signature::VerifyError;
use crate::store::RetryLater;

/// Why a request was not answered 2xx.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not signed by Svix with one of our secrets: 401, and nothing is written.
    #[error("webhook rejected: {0}")]
    Unverified(#[from] VerifyError),
    /// Body over `webhook.max_body_bytes`: 413.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The connection broke while the body was being read: 400.
    #[error("request body could not be read")]
    UnreadableBody,
    /// The database failed in a way a retry may not meet: 503, so Svix retries.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(#[from] RetryLater),
}

impl AppError {
    /// The stable code the answer carries, e.g. `invalid_signature`.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unverified(err) => (StatusCode::UNAUTHORIZED, err.code()),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnreadableBody => (StatusCode::BAD_REQUEST, "unreadable_body"),
            Self::DatabaseUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error.code = code, error = %self, "webhook not processed, Svix will retry");
        } else {
            tracing::warn!(error.code = code, "webhook rejected");
        }
        (status, Json(json!({ "error": code }))).into_response()
    }
}
