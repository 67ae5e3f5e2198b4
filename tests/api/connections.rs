//! Hostile connections, none of which needs the secret: clients that trickle header bytes or sit
//! idle are closed, a flood past the connection cap and the open-file limit does not stop signed
//! deliveries, and a shutdown ends within its grace period whatever the clients do.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::postgres::TestDb;
use crate::support::serve_process::{ServeProcess, next_log_with, signed};
use crate::support::{TestApp, example};

/// Long enough for any of these tests to pass when the service behaves, short enough that a
/// service that never closes a connection fails them in reasonable time.
const PATIENCE: Duration = Duration::from_secs(30);

/// Whether the peer closes `stream` within `within`, reading and discarding what it sends.
async fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0_u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_elapsed) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_client_trickling_header_bytes_is_cut_off() {
    let app =
        TestApp::spawn_with(|s| s.server.connections.header_read_timeout = Duration::from_secs(1))
            .await;
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /webhooks/stack HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    // One header byte every 200 ms: never silent for long, never finished.
    let started = Instant::now();
    let mut cut_off = false;
    while started.elapsed() < PATIENCE {
        if stream.write_all(b"x").await.is_err() {
            cut_off = true;
            break;
        }
        if closed_by_peer(&mut stream, Duration::from_millis(200)).await {
            cut_off = true;
            break;
        }
    }

    assert!(cut_off, "the connection was still open after {PATIENCE:?}");
    let status = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the service itself is unaffected");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app =
        TestApp::spawn_with(|s| s.server.connections.header_read_timeout = Duration::from_secs(1))
            .await;
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0_u8; 12];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200", "a kept-alive answer first");

    assert!(
        closed_by_peer(&mut stream, PATIENCE).await,
        "an idle connection was kept past {PATIENCE:?}"
    );
}

#[tokio::test]
async fn a_flood_of_silent_connections_past_the_file_limit_does_not_stop_deliveries() {
    let db = TestDb::new().await;
    // 256 open files for the service, 400 silent clients: without a cap below the limit,
    // `accept` fails with EMFILE and nothing is served until a client leaves, which these never
    // do.
    let service = ServeProcess::start_with_open_file_limit(
        &db,
        &[
            ("STACK_SYNC_SERVER__MAX_CONNECTIONS", "100"),
            ("STACK_SYNC_SERVER__HEADER_READ_TIMEOUT_SECS", "2"),
        ],
        256,
    );
    let mut flood = Vec::new();
    for _ in 0..400 {
        flood.push(TcpStream::connect(&service.address).await.unwrap());
    }

    let body = example("user.created").to_string();
    let (id, ts, signature) = signed(&body);
    let delivery = tokio::time::timeout(PATIENCE, service.post(&id, ts, &signature, &body)).await;
    let health = tokio::time::timeout(PATIENCE, service.status_of("/healthz")).await;

    let delivery = delivery.expect("the signed delivery was not served");
    assert_eq!(delivery.status(), 200);
    assert_eq!(health.expect("/healthz was not served"), 200);
    let closed = futures::future::join_all(
        flood
            .iter_mut()
            .map(|stream| closed_by_peer(stream, PATIENCE)),
    )
    .await;
    assert!(
        closed.iter().all(|closed| *closed),
        "every silent client is closed"
    );
    drop(service);
}

#[tokio::test]
async fn sigterm_closes_a_half_sent_request_and_exits() {
    let db = TestDb::new().await;
    // Header timeout and grace far beyond the test's patience: only shutdown can close it.
    let mut service = ServeProcess::start(
        &db,
        &[
            ("STACK_SYNC_SERVER__HEADER_READ_TIMEOUT_SECS", "3600"),
            ("STACK_SYNC_SERVER__SHUTDOWN_GRACE_SECS", "3600"),
        ],
    );
    let mut half_sent = TcpStream::connect(&service.address).await.unwrap();
    half_sent
        .write_all(b"POST /webhooks/stack HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    // Let the service read those bytes before it is told to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;

    service.terminate();

    assert!(
        closed_by_peer(&mut half_sent, PATIENCE).await,
        "the half-sent request kept its connection"
    );
    next_log_with(&service.logs, "shut down gracefully");
    assert!(service.child.wait().unwrap().success());
}

#[tokio::test]
async fn shutdown_drops_a_request_still_in_flight_after_the_grace_period() {
    let mut app =
        TestApp::spawn_with(|s| s.server.connections.shutdown_grace = Duration::from_secs(1)).await;
    let (blocker, in_flight) = crate::delivery::delivery_blocked_in_the_database(&app).await;

    app.begin_shutdown();
    let stopped = tokio::time::timeout(PATIENCE, app.wait_stopped()).await;
    let answer = in_flight.await.unwrap();
    blocker.rollback().await.unwrap();

    assert!(
        stopped.is_ok(),
        "shutdown waited past its grace period for the blocked request"
    );
    assert!(
        answer.is_err(),
        "no answer for a request that never finished: {answer:?}"
    );
}
