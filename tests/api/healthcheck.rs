//! `stack-sync healthcheck`, the real binary, as a container runtime runs it.

use std::process::Output;

use crate::support::TestApp;
use crate::support::command::{stack_sync, stderr_of};

async fn healthcheck(url: String) -> Output {
    let mut command = stack_sync(&["healthcheck", "--url", &url], &[]);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_service_is_healthy() {
    let app = TestApp::spawn().await;

    let output = healthcheck(format!("{}/readyz", app.base_url)).await;

    assert!(output.status.success(), "{}", stderr_of(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_its_database_or_not_running_is_not() {
    let app = TestApp::spawn_unreachable_database().await;

    let without_database = healthcheck(format!("{}/readyz", app.base_url)).await;
    let not_running = healthcheck("http://127.0.0.1:1/readyz".to_owned()).await;

    assert_eq!(without_database.status.code(), Some(1));
    assert!(stderr_of(&without_database).contains("not ready: HTTP 503"));
    assert_eq!(not_running.status.code(), Some(1));
    assert!(stderr_of(&not_running).contains("did not answer"));
}
