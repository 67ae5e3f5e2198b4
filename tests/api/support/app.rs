//! The service running in-process on a loopback port, against a test database, and a client
//! that signs requests exactly as Svix does.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Response;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use stack_sync::config::Settings;
use stack_sync::startup::Application;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::postgres::TestDb;
use super::signing::{SECRET, Signer, message_id};

/// The test secret, a loopback address on a free port. Background pruning is off unless a test
/// turns it on: it would race tests that plant old messages. The service gets its pool from the
/// test, so the database URL is never used. Tests change these typed, so that a misspelt
/// setting does not compile.
pub fn test_settings() -> Settings {
    let env: HashMap<String, String> = [
        (
            "DATABASE_URL",
            "postgres://unused.invalid/given-by-the-test",
        ),
        ("STACK_WEBHOOK_SECRET", SECRET),
        ("STACK_SYNC_SERVER__HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("STACK_SYNC_METRICS__PORT", "0"),
        ("STACK_SYNC_RETENTION__DAYS", "forever"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Settings::load(None, &env).expect("test settings")
}

/// The service's router over `pool`, configured as the test service is, to call directly
/// without binding a port.
pub fn router(pool: PgPool) -> axum::Router {
    let settings = test_settings();
    let needs = settings.serve_needs().expect("test settings serve");
    let metrics = stack_sync::metrics::Metrics::new();
    stack_sync::startup::router_for(&settings, needs.keys, pool, metrics)
}

pub struct TestApp {
    pub base_url: String,
    /// `http://…/metrics` on the metrics listener.
    pub metrics_url: String,
    /// `http://…` of the admin listener, when `admin.token` is set.
    pub admin_url: Option<String>,
    pub db: TestDb,
    pub client: reqwest::Client,
    /// Signs with the secret the service is configured with.
    pub signer: Signer,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// The service with the test secret and default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The service with the test defaults as `configure` changes them.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::new().await;
        let pool = db.pool.clone();
        let mut settings = test_settings();
        configure(&mut settings);
        Self::start(db, pool, &settings).await
    }

    /// The service with a pool whose database never answers (a closed port).
    pub async fn spawn_unreachable_database() -> Self {
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy("postgres://postgres@127.0.0.1:1/unreachable")
            .unwrap();
        Self::start(TestDb::new().await, pool, &test_settings()).await
    }

    async fn start(db: TestDb, pool: PgPool, settings: &Settings) -> Self {
        let app = Application::build_with_pool(settings, pool)
            .await
            .expect("building the service");
        let base_url = format!("http://{}", app.local_addr().unwrap());
        let metrics_url = format!("http://{}/metrics", app.metrics_addr().unwrap());
        let admin_url = app
            .admin_addr()
            .map(|address| format!("http://{}", address.unwrap()));
        let (shutdown, stopped) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            base_url,
            metrics_url,
            admin_url,
            db,
            client: reqwest::Client::new(),
            signer: Signer::default(),
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// The `svix-signature` value Svix would send for this message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.signer.signature(id, timestamp, body)
    }

    /// Delivers `body` as message `id`, signed now.
    pub async fn deliver(&self, id: &str, body: &[u8]) -> Response {
        self.signed_request(id, body)
            .send()
            .await
            .expect("the service answers")
    }

    /// A request delivering `body` as message `id`, signed now, ready to send.
    pub fn signed_request(&self, id: &str, body: &[u8]) -> reqwest::RequestBuilder {
        self.signed_request_to(&self.base_url, id, body)
    }

    /// The same, to the service at `base_url` (e.g. a replica).
    pub fn signed_request_to(
        &self,
        base_url: &str,
        id: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let headers = self.signer.headers(id, body);
        self.request(base_url, &headers, body.to_vec())
    }

    /// Starts a second instance of the service on the same database, with a pool of its own,
    /// as a second replica would be; returns its base URL.
    pub async fn spawn_replica(&self) -> String {
        self.spawn_replica_with(|_| {}).await
    }

    /// The same, with the test defaults as `configure` changes them (e.g. the service started
    /// again after this one stopped).
    pub async fn spawn_replica_with(&self, configure: impl FnOnce(&mut Settings)) -> String {
        let pool = PgPool::connect(&self.db.url).await.unwrap();
        let mut settings = test_settings();
        configure(&mut settings);
        let replica = Application::build_with_pool(&settings, pool).await.unwrap();
        let base_url = format!("http://{}", replica.local_addr().unwrap());
        tokio::spawn(replica.run_until(std::future::pending()));
        base_url
    }

    /// Delivers `event` under a fresh message id and returns the id and the answer's status field.
    pub async fn deliver_event(&self, event: &Value) -> (String, String) {
        let id = message_id();
        let status = self.deliver_json(&id, event).await;
        (id, status)
    }

    /// Delivers `event` as message `id`, expects 200, and returns the answer's status field.
    pub async fn deliver_json(&self, id: &str, event: &Value) -> String {
        let response = self.deliver(id, event.to_string().as_bytes()).await;
        assert_eq!(response.status(), 200, "delivering {}", event["type"]);
        let answer: Value = response.json().await.unwrap();
        answer["status"].as_str().unwrap().to_owned()
    }

    /// Posts `body` to the webhook endpoint with exactly these headers.
    pub async fn post(&self, headers: &[(&str, String)], body: Vec<u8>) -> Response {
        let request = self.request(&self.base_url, headers, body);
        request.send().await.expect("the service answers")
    }

    fn request(
        &self,
        base_url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(format!("{base_url}/webhooks/stack"))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request
    }

    /// Asks the service to shut down, as SIGTERM does, without waiting.
    pub fn begin_shutdown(&mut self) {
        let _ = self.shutdown.take().expect("not shut down yet").send(());
    }

    /// Whether the server has stopped serving.
    pub fn has_stopped(&self) -> bool {
        self.server.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until the server, asked to shut down, has finished.
    pub async fn wait_stopped(&mut self) -> std::io::Result<()> {
        let server = self.server.take().expect("still running");
        server.await.expect("the server task")
    }

    /// How many rows `table` (in schema `stack`) holds.
    pub async fn count(&self, table: &str) -> i64 {
        self.count_in(&format!("stack.{table}")).await
    }

    /// How many rows the schema-qualified `table` holds.
    pub async fn count_in(&self, table: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from {table}")))
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// The outcome recorded for message `id`, if any.
    pub async fn recorded_outcome(&self, id: &str) -> Option<String> {
        sqlx::query_scalar("select outcome from stack.webhook_events where svix_id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .unwrap()
    }
}
