//! Wiring: the database pool, the router with its middleware stack, and the server's life from
//! binding the port to a graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{
    ChangesSettings, FeedSettings, ForwardSettings, ReconcileSettings, RefreshSettings,
    RetentionSettings, ServeNeeds, Settings,
};
use crate::delivery::Mirror;
use crate::metrics::{self, Metrics};
use crate::refresh::Refresher;
use crate::routes::signed_webhook::SignatureCheck;
use crate::routes::webhooks::WebhookState;
use crate::routes::{admin, health, webhooks};
use crate::server::{self, ConnectionLimits};
use crate::signature::SigningKey;
use crate::signature::Verifier;
use crate::stack_api::StackApi;
use crate::store::schema;
use crate::{changes, database, reconcile, refresh, retention};

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    pool: PgPool,
    retention: RetentionSettings,
    /// The scheduled reconcile and its period, when `reconcile.interval_secs` is set.
    reconcile: Option<(Duration, StackApi, ReconcileSettings)>,
    /// The refresh worker, when `refresh.enabled`.
    refresh: Option<(Refresher, RefreshSettings)>,
    feed: FeedSettings,
    changes: ChangesSettings,
    /// Whether `changes.enabled` reached the database at start.
    log_switched: bool,
    /// The forwarder, when `forward.in_serve`.
    forward: Option<ForwardSettings>,
    /// The Prometheus listener, apart from the webhook port.
    metrics_listener: TcpListener,
    /// The admin listener and its routes, when `admin.token` is set.
    admin: Option<(TcpListener, Router)>,
    metrics: Metrics,
    limits: ConnectionLimits,
}

impl Application {
    /// Connects to the database, applies migrations if configured, and binds the port.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // Check what serve needs before touching the network, so a gap fails fast and clearly.
        let needs = settings.serve_needs()?;
        let pool = connect(settings).await?;
        if settings.database.migrate_on_start {
            schema::migrate(&pool)
                .await
                .context("applying database migrations")?;
        }
        Self::bind(settings, needs, pool).await
    }

    /// Binds the port and builds the router over an existing pool (tests bring their own).
    pub async fn build_with_pool(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        Self::bind(settings, settings.serve_needs()?, pool).await
    }

    async fn bind(
        settings: &Settings,
        needs: ServeNeeds<'_>,
        pool: PgPool,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        // The change log is the database's, for every writer: serve says whether it is on.
        // A database that is away now gets it from `run_until` once it answers.
        let log_switched = crate::store::changes::set_enabled(&pool, settings.changes.enabled)
            .await
            .inspect_err(|err| tracing::warn!(error = %err, "setting changes.enabled failed"))
            .is_ok();
        let listener = bind_port(&settings.server.host, settings.server.port).await?;
        let metrics_host = settings.metrics.host.as_deref();
        let metrics_host = metrics_host.unwrap_or(&settings.server.host);
        let metrics_listener = bind_port(metrics_host, settings.metrics.port).await?;
        // One client for every use of Stack's API, so that they share its limiter: a 429 that
        // reconcile meets pauses refreshes too, and the other way round.
        let api = match &settings.stack {
            Some(api) => Some(StackApi::new(api)?),
            None => None,
        };
        let refresher = api.clone().map(|api| Refresher {
            pool: pool.clone(),
            api,
            feed_channel: settings.feed.channel.clone(),
        });
        let admin = match &settings.admin.token {
            Some(token) => Some((
                bind_port(&settings.admin.host, settings.admin.port).await?,
                admin::router(mirror(settings, pool.clone()), refresher.clone(), token),
            )),
            None => None,
        };
        let reconcile = match (needs.scheduled_reconcile, &api) {
            (Some((every, _)), Some(api)) => Some((every, api.clone(), settings.reconcile.clone())),
            _ => None,
        };
        let refresh = match (needs.refresh, refresher) {
            (Some(_), Some(refresher)) => Some((refresher, settings.refresh.clone())),
            _ => None,
        };
        Ok(Self {
            listener,
            router: router_for(settings, needs.keys, pool.clone(), metrics.clone()),
            pool,
            retention: settings.retention.clone(),
            reconcile,
            refresh,
            feed: settings.feed.clone(),
            changes: settings.changes.clone(),
            log_switched,
            forward: needs.forward.map(|_| settings.forward.clone()),
            metrics_listener,
            admin,
            metrics,
            limits: settings.server.connections.clone(),
        })
    }

    /// The address of the metrics listener (useful with port 0).
    pub fn metrics_addr(&self) -> io::Result<SocketAddr> {
        self.metrics_listener.local_addr()
    }

    /// The address of the admin listener, when it runs (useful with port 0).
    pub fn admin_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.admin
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight within the grace
    /// period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let metrics_router = metrics_router(self.metrics.clone(), self.pool.clone());
        let mut background = vec![
            tokio::spawn(retention::run(
                self.pool.clone(),
                self.retention,
                self.changes.max_age_days,
                self.metrics.clone(),
            )),
            tokio::spawn(metrics::refresh_forever(
                self.metrics.clone(),
                self.pool.clone(),
            )),
            tokio::spawn(server::serve(
                self.metrics_listener,
                metrics_router,
                self.limits.clone(),
                std::future::pending(),
            )),
        ];
        if let Some((listener, router)) = self.admin {
            background.push(tokio::spawn(server::serve(
                listener,
                router,
                self.limits.clone(),
                std::future::pending(),
            )));
        }
        if let Some((every, api, settings)) = self.reconcile {
            background.push(tokio::spawn(reconcile::run_every(
                self.pool.clone(),
                every,
                api,
                settings,
                self.feed.channel.clone(),
            )));
        }
        if !self.log_switched {
            background.push(tokio::spawn(changes::switch_log(
                self.pool.clone(),
                self.changes.enabled,
            )));
        }
        if let Some(forward) = self.forward {
            background.push(tokio::spawn(changes::forward::run_forever(
                self.pool.clone(),
                forward,
                self.metrics.clone(),
            )));
        }
        let refresh_worker = uuid::Uuid::new_v4();
        let refreshing = self.refresh.is_some();
        if let Some((refresher, settings)) = self.refresh {
            let metrics = self.metrics.clone();
            background.push(tokio::spawn(refresh::worker::run(
                refresher,
                settings,
                metrics,
                refresh_worker,
            )));
        }
        server::serve(self.listener, self.router, self.limits, shutdown).await;
        // An interrupted prune batch or reconcile page rolls back; the next run redoes it.
        background.iter().for_each(tokio::task::JoinHandle::abort);
        // Refreshes cut off here are left for the next worker at once, not after their lease.
        if refreshing {
            let released = crate::store::refresh::release(&self.pool, refresh_worker);
            match tokio::time::timeout(Duration::from_secs(1), released).await {
                Ok(Ok(released)) if released > 0 => {
                    tracing::info!(released, "refreshes in flight left for another worker");
                }
                Ok(Err(err)) => tracing::warn!(error = %err, "releasing refreshes failed"),
                _ => {}
            }
        }
        // Closing waits for connections still busy in the database, such as one a dropped
        // request left waiting on a lock; past a second, exiting closes their sockets and
        // Postgres rolls their transactions back.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.pool.close()).await;
        tracing::info!("shut down gracefully");
        Ok(())
    }
}

async fn bind_port(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let address = format!("{host}:{port}");
    TcpListener::bind(&address)
        .await
        .with_context(|| format!("binding {address}"))
}

/// `GET /metrics`, the Prometheus text format, on the metrics listener only.
pub fn metrics_router(metrics: Metrics, pool: PgPool) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let text = metrics.render(&pool);
            async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    text,
                )
            }
        }),
    )
}

/// The mirror over `pool`, announcing its changes as `settings` say.
pub fn mirror(settings: &Settings, pool: PgPool) -> Mirror {
    Mirror {
        pool,
        feed_channel: settings.feed.channel.as_deref().map(Arc::from),
        keep_bodies: settings.webhook.keep_bodies,
        refresh_after: settings.refresh.enabled.then_some(settings.refresh.delay),
    }
}

/// Opens the connection pool, failing now rather than on the first webhook.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    settings.database_url()?;
    Ok(database::connect(&settings.database).await?)
}

/// The service's router over `pool`, verifying with `keys`, as `serve` runs it. The tests build
/// theirs here too, so that the wiring has one definition.
pub fn router_for(
    settings: &Settings,
    keys: &[SigningKey],
    pool: PgPool,
    metrics: Metrics,
) -> Router {
    let signature_check = SignatureCheck {
        verifier: Arc::new(Verifier::new(keys.to_vec(), settings.webhook.tolerance)),
        max_body_bytes: settings.webhook.max_body_bytes,
        metrics,
    };
    router(
        mirror(settings, pool),
        signature_check,
        settings.server.request_timeout,
    )
}

/// The routes and, in one place, the middleware around them (outermost first).
fn router(mirror: Mirror, signature_check: SignatureCheck, request_timeout: Duration) -> Router {
    // Only the POST handler takes a `SignedWebhook`: other methods answer 405 and unknown paths
    // 404 without reading the body.
    let webhook_state = WebhookState {
        signature_check,
        mirror: mirror.clone(),
    };
    let webhook_routes = Router::new()
        .route("/webhooks/stack", post(webhooks::receive_webhook))
        // The extractor enforces webhook.max_body_bytes itself.
        .layer(DefaultBodyLimit::disable())
        .with_state(webhook_state);
    let health_routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(mirror.pool);
    Router::new()
        .merge(webhook_routes)
        .merge(health_routes)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // Every answer carries the request id, given by the caller or made here.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The span every log line of a request belongs to, with its request id; the middleware fills
/// in `webhook.id`. A caller may set the id, so only its first 64 letters, digits and `-_.:`
/// are logged: nothing in it can forge another field.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id: String = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.:".contains(*c))
        .take(64)
        .collect();
    tracing::info_span!(
        "request",
        http.method = %request.method(),
        http.path = request.uri().path(),
        request.id = %request_id,
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
