//! Wiring: the database pool, the router with its middleware stack, and the server's life from
//! binding the port to a graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{ReconcileSettings, RetentionSettings, Settings};
use crate::routes::{health, webhooks};
use crate::signature::Verifier;
use crate::stack_api::StackApi;
use crate::store::schema;
use crate::verification::{SignatureCheck, require_svix_signature};
use crate::{reconcile, retention};

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    pool: PgPool,
    retention: RetentionSettings,
    /// The scheduled reconcile, when `reconcile.interval_secs` is set.
    reconcile: Option<(StackApi, ReconcileSettings)>,
}

impl Application {
    /// Connects to the database, applies migrations if configured, and binds the port.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // Check every setting before touching the network, so a typo fails fast and clearly.
        settings.signing_keys()?;
        if settings.reconcile.interval_secs > 0 {
            settings.stack_api()?;
        }
        let pool = connect(settings).await?;
        if settings.database.migrate_on_start {
            schema::migrate(&pool)
                .await
                .context("applying database migrations")?;
        }
        Self::build_with_pool(settings, pool).await
    }

    /// Binds the port and builds the router over an existing pool (tests bring their own).
    pub async fn build_with_pool(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        let signature_check = SignatureCheck {
            verifier: Arc::new(Verifier::new(
                settings.signing_keys()?,
                settings.tolerance(),
            )),
            max_body_bytes: settings.webhook.max_body_bytes,
        };
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("binding {address}"))?;
        let timeout = Duration::from_secs(settings.server.request_timeout_secs);
        let reconcile = match settings.reconcile.interval_secs {
            0 => None,
            _ => Some((
                StackApi::new(&settings.stack_api()?)?,
                settings.reconcile.clone(),
            )),
        };
        Ok(Self {
            listener,
            router: router(pool.clone(), signature_check, timeout),
            pool,
            retention: settings.retention.clone(),
            reconcile,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let mut background = vec![tokio::spawn(retention::run(
            self.pool.clone(),
            self.retention,
        ))];
        if let Some((api, settings)) = self.reconcile {
            background.push(tokio::spawn(reconcile::run_every(
                self.pool.clone(),
                api,
                settings,
            )));
        }
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        // An interrupted prune batch or reconcile page rolls back; the next run redoes it.
        background.iter().for_each(tokio::task::JoinHandle::abort);
        served?;
        self.pool.close().await;
        tracing::info!("shut down gracefully");
        Ok(())
    }
}

/// Opens the connection pool, failing now rather than on the first webhook.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let url: &SecretString = settings.database_url()?;
    // The URL may hold a password: errors name the setting, never the value.
    let options = PgConnectOptions::from_str(url.expose_secret())
        .context("database.url (DATABASE_URL) is not a valid Postgres URL")?;
    PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(Duration::from_secs(settings.database.acquire_timeout_secs))
        .connect_with(options)
        .await
        .context("connecting to the database given by database.url (DATABASE_URL)")
}

/// The routes and, in one place, the middleware around them (outermost first).
pub fn router(pool: PgPool, signature_check: SignatureCheck, request_timeout: Duration) -> Router {
    // The signature check wraps the POST handler only: other methods answer 405 and unknown
    // paths 404 without reading the body.
    let verified_webhook = webhooks::receive_webhook
        .layer(from_fn_with_state(signature_check, require_svix_signature));
    let webhook_routes = Router::new()
        .route("/webhooks/stack", post(verified_webhook))
        // The signature middleware enforces webhook.max_body_bytes itself.
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .merge(webhook_routes)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(pool)
}

/// The span every log line of a request belongs to; the middleware fills in `webhook.id`.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    tracing::info_span!(
        "request",
        http.method = %request.method(),
        http.path = request.uri().path(),
        webhook.id = tracing::field::Empty,
    )
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what container runtimes send).
pub async fn shutdown_signal() {
    let interrupt = async {
        tokio::signal::ctrl_c()
            .await
            .expect("installing the SIGINT handler");
    };
    let terminate = async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler")
            .recv()
            .await;
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing requests in flight");
}
