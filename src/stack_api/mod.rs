//! A client for Stack's server REST API (`/api/v1`; the facts it relies on are in `docs/stack.md`)
//! as `reconcile` needs it: server-key authentication, a bound on requests in flight, retries
//! with back-off on 429, 5xx and network errors (honouring `Retry-After`, and pausing every
//! request, not just the one), and errors that say what to fix.

mod limiter;
pub mod pager;
pub mod streamed;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::StackApiSettings;
use limiter::Limiter;

/// Longest wait between attempts, whatever Stack asks for.
const MAX_WAIT: Duration = Duration::from_secs(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request to Stack did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "Stack refused the server credentials (HTTP {status}, {code}): check HEXCLAVE_PROJECT_ID \
         and HEXCLAVE_SECRET_SERVER_KEY (or STACK_PROJECT_ID and STACK_SECRET_SERVER_KEY)"
    )]
    Unauthorized { status: u16, code: String },
    #[error("Stack answered HTTP {status} ({code}) to GET {path}")]
    Rejected {
        status: u16,
        code: String,
        path: String,
    },
    #[error("Stack still failed GET {path} after {attempts} attempts, last with {last}")]
    GaveUp {
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("unexpected answer to GET {path}: {message}")]
    Malformed { path: String, message: String },
}

/// A list answer: `{items, is_paginated, pagination: {next_cursor}}`.
#[derive(Debug, Deserialize)]
pub struct ListPage {
    pub items: Vec<Value>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    next_cursor: Option<String>,
}

impl ListPage {
    /// The cursor for the next page, to pass back unchanged; `None` at the end.
    pub fn next_cursor(&self) -> Option<&str> {
        self.pagination.as_ref()?.next_cursor.as_deref()
    }
}

/// Stack's server API for one project. Clones share one limiter.
#[derive(Debug, Clone)]
pub struct StackApi {
    http: reqwest::Client,
    base_url: String,
    attempts: u32,
    retry_base: Duration,
    limiter: Arc<Limiter>,
    concurrency: usize,
}

impl StackApi {
    pub fn new(settings: &StackApiSettings) -> Result<Self, reqwest::Error> {
        // Each header under Hexclave's name and Stack Auth's: Hexclave reads its own first and
        // still accepts the old ones, which are all a self-hosted Stack from before the rename
        // knows.
        let mut headers = HeaderMap::new();
        for prefix in ["x-hexclave", "x-stack"] {
            let name = |suffix: &str| {
                HeaderName::try_from(format!("{prefix}-{suffix}")).expect("a header name")
            };
            headers.insert(name("access-type"), HeaderValue::from_static("server"));
            // A value that cannot be a header is left out; Stack then answers 400 or 401.
            if let Ok(project) = HeaderValue::from_str(&settings.project_id) {
                headers.insert(name("project-id"), project);
            }
            if let Ok(mut key) = HeaderValue::from_str(settings.secret_server_key.expose_secret()) {
                key.set_sensitive(true);
                headers.insert(name("secret-server-key"), key);
            }
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("stack-sync/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            base_url: format!("{}/api/v1", settings.api_url),
            attempts: settings.request_attempts,
            retry_base: settings.retry_base,
            limiter: Arc::new(Limiter::new(settings.concurrency)),
            concurrency: settings.concurrency,
        })
    }

    /// `GET /api/v1{path}`; `None` when Stack answers 404 (the object does not exist).
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<Value>, ApiError> {
        self.get_as(path, query).await
    }

    /// An unpaginated list endpoint with no filter, answered with its body unread: a whole
    /// project's grants are read as they arrive (see `streamed`), never held at once. Retries
    /// cover getting the answer, not reading it.
    pub async fn list_unread(&self, path: &str) -> Result<Option<reqwest::Response>, ApiError> {
        self.answer(path, &[]).await
    }

    async fn get_as<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, ApiError> {
        let Some(response) = self.answer(path, query).await? else {
            return Ok(None);
        };
        response
            .json()
            .await
            .map(Some)
            .map_err(|err| ApiError::Malformed {
                path: path.to_owned(),
                message: err.to_string(),
            })
    }

    /// A successful answer, its body unread, after the retries it took; `None` on 404.
    async fn answer(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<reqwest::Response>, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let turn = self.limiter.turn().await;
            let answer = self.http.get(&url).query(query).send().await;
            drop(turn);
            let wait = match answer {
                Err(err) => {
                    last = format!("a network error: {err}");
                    self.backoff(attempt)
                }
                Ok(response) => match classify(response, path).await? {
                    Answer::Found(response) => return Ok(Some(response)),
                    Answer::NotFound => return Ok(None),
                    Answer::RetryAfter(status, asked) => {
                        last = format!("HTTP {status}");
                        asked.unwrap_or_else(|| self.backoff(attempt)).min(MAX_WAIT)
                    }
                },
            };
            if attempt < self.attempts {
                tracing::info!(
                    path,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "{last} from Stack; pausing every request, then retrying"
                );
                self.limiter.pause_all(wait);
            }
        }
        let attempts = self.attempts;
        Err(ApiError::GaveUp {
            path: path.to_owned(),
            attempts,
            last,
        })
    }

    /// A list endpoint's page; `None` when Stack answers 404.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<ListPage>, ApiError> {
        let Some(value) = self.get(path, query).await? else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|err| ApiError::Malformed {
                path: path.to_owned(),
                message: err.to_string(),
            })
    }

    /// Requests this client lets be in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry_base
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(Duration::from_secs(30))
    }
}

enum Answer {
    Found(reqwest::Response),
    NotFound,
    RetryAfter(StatusCode, Option<Duration>),
}

async fn classify(response: reqwest::Response, path: &str) -> Result<Answer, ApiError> {
    let status = response.status();
    if status.is_success() {
        return Ok(Answer::Found(response));
    }
    // 508 INFINITE_LOOP_DETECTED is a hosting quirk Stack's own SDK retries.
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Ok(Answer::RetryAfter(status, retry_after(response.headers())));
    }
    if status == StatusCode::NOT_FOUND {
        return Ok(Answer::NotFound);
    }
    let code = error_code(response).await;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(ApiError::Unauthorized {
            status: status.as_u16(),
            code,
        });
    }
    Err(ApiError::Rejected {
        status: status.as_u16(),
        code,
        path: path.to_owned(),
    })
}

/// Stack's error code: the known-error header (Hexclave's name first), else the JSON body's
/// `code`, else the start of a plain-text body.
async fn error_code(response: reqwest::Response) -> String {
    let header = ["x-hexclave-known-error", "x-stack-known-error"]
        .iter()
        .find_map(|name| {
            response
                .headers()
                .get(*name)?
                .to_str()
                .ok()
                .map(str::to_owned)
        });
    if let Some(code) = header {
        return code;
    }
    let body = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&body) {
        Ok(json) if json["code"].is_string() => {
            json["code"].as_str().unwrap_or_default().to_owned()
        }
        _ => body.chars().take(200).collect(),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
