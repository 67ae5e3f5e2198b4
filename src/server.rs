//! The HTTP server loop: accepts connections up to a cap, closes the ones that are slow to send
//! a request or sit idle, and at shutdown gives requests in flight a bounded grace period.
//!
//! `axum::serve` does none of this: it runs hyper without a timer, so a client trickling header
//! bytes, or a thousand silent sockets, would hold connections (and file descriptors) forever.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::{Service, ServiceExt};

/// How long a pause after a failed `accept` lasts: long enough not to spin while the process is
/// out of file descriptors, short enough to serve again as soon as one is freed.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What one listener allows its clients.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// From the moment a connection opens, or finishes its previous response, until the
    /// request's headers are complete. Hyper starts this clock while a kept-alive connection
    /// waits for its next request, so it is the idle timeout too.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// After shutdown begins, how long requests in flight have to finish before their
    /// connections are dropped.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, closes every
/// connection that has no request in the service (idle or half-sent) at once, and gives the
/// others at most the grace period to answer.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    // HTTP/1.1 only: it is what Svix and proxies speak to an upstream, and an idle HTTP/2
    // connection would escape the header-read timeout.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Take a slot before accepting: at the cap, new clients queue in the kernel instead of
        // costing a file descriptor each.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            Some(_) = connections.join_next() => continue,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // EMFILE and ECONNABORTED are the usual ones; none is a reason to stop.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and written at once; waiting to coalesce them only adds latency.
        let _ = stream.set_nodelay(true);
        let requests = InService::default();
        let connection = builder
            .serve_connection(
                TokioIo::new(stream),
                requests.clone().counting(router.clone()),
            )
            .into_owned();
        connections.spawn(run_connection(connection, requests, stopping.clone(), slot));
    }
    drop(listener);
    let _ = stop.send(true);
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, finished)
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            grace_secs = limits.shutdown_grace.as_secs(),
            "requests still in flight at the end of the grace period were dropped"
        );
    }
    connections.shutdown().await;
}

/// Drives one connection; once `stopping` turns true, closes it at once unless a request is in
/// the service, in which case that request is answered and the connection closed after it.
async fn run_connection<C>(
    connection: C,
    requests: InService,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => return log_end(ended),
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    if requests.none() {
        // Idle, or still sending a request's head: nothing was received that needs an answer.
        return;
    }
    connection.as_mut().graceful_shutdown();
    log_end(connection.await);
}

fn log_end(ended: Result<(), impl std::fmt::Display>) {
    // An error here is the client's: a reset, a timeout, a malformed request.
    if let Err(err) = ended {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

/// How many of one connection's requests are in the service, from the head read to the answer
/// given back to hyper.
#[derive(Clone, Default)]
struct InService(Arc<AtomicUsize>);

impl InService {
    fn none(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }

    /// `router` as a hyper service that counts its requests here.
    fn counting(
        self,
        router: Router,
    ) -> TowerToHyperService<
        impl Service<
            Request<Incoming>,
            Response = Response,
            Error = Infallible,
            Future = impl Future<Output = Result<Response, Infallible>> + Send,
        > + Clone,
    > {
        TowerToHyperService::new(tower::service_fn(move |request: Request<Incoming>| {
            let entered = self.enter();
            let answer = router.clone().oneshot(request);
            async move {
                let answer = answer.await;
                drop(entered);
                answer
            }
        }))
    }

    fn enter(&self) -> Entered {
        self.0.fetch_add(1, Ordering::AcqRel);
        Entered(Arc::clone(&self.0))
    }
}

/// A request in the service; leaving (even by cancellation) counts it out.
struct Entered(Arc<AtomicUsize>);

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
