//! Through a real PgBouncer with its default settings: in session mode the service migrates,
//! serves concurrent and repeated deliveries, reconciles one run at a time and reports its
//! status; in transaction mode, which cannot carry its prepared statements and session locks,
//! it refuses to start and says what to use instead.

use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::support::command::{stack_sync, stderr_of};
use crate::support::fake_stack::{FakeStack, Fault, Paging};
use crate::support::payloads::example_with;
use crate::support::payloads::new_id;
use crate::support::pgbouncer::{PgBouncer, PoolMode};
use crate::support::postgres::TestDb;
use crate::support::serve_process::{ServeProcess, signed};

const USERS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_pooler_carries_concurrent_and_repeated_deliveries_once_each() {
    let db = TestDb::empty().await;
    let bouncer = PgBouncer::start(PoolMode::Session);
    // Migrates at start through the pooler, as a first deployment does.
    let service = ServeProcess::start_with_url(&bouncer.url(&db), &[]);
    let deliveries: Vec<_> = (0..USERS)
        .map(|_| {
            let body = example_with("user.created", &[("id", new_id().into())]).to_string();
            let (id, timestamp, signature) = signed(&body);
            (id, timestamp, signature, body)
        })
        .collect();

    // Each message twice at once, as a Svix retry racing its original.
    let answers = join_all(
        deliveries
            .iter()
            .chain(&deliveries)
            .map(|(id, timestamp, signature, body)| service.post(id, *timestamp, signature, body)),
    )
    .await;

    for answer in &answers {
        assert_eq!(answer.status(), 200);
    }
    let (users, messages): (i64, i64) = sqlx::query_as(
        "select (select count(*) from stack.users), (select count(*) from stack.webhook_events)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((users, messages), (USERS as i64, USERS as i64));
    let status = stack_sync(&["status"], &[("DATABASE_URL", &bouncer.url(&db))])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", stderr_of(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains(&USERS.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_session_pooler_a_second_reconcile_waits_for_the_first() {
    let db = TestDb::new().await;
    let bouncer = PgBouncer::start(PoolMode::Session);
    let stack = FakeStack::start(Paging::CursorIncluded).await;
    stack.add_user("10000000-0000-4000-8000-000000000001", "Ada", 1);
    // The first run holds the lock through a pause Stack asks for.
    stack.project().faults.push_back(Fault {
        status: 429,
        retry_after: Some("2"),
    });
    let url = bouncer.url(&db);
    let env = stack.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("DATABASE_URL", &url));

    let first = stack_sync(&["reconcile"], &vars).spawn().unwrap();
    wait_for(|| !stack.project().requests.is_empty());
    let second = stack_sync(&["reconcile"], &vars).output().unwrap();
    let first = first.wait_with_output().unwrap();

    assert!(first.status.success(), "{}", stderr_of(&first));
    assert!(!second.status.success());
    assert!(
        stderr_of(&second).contains("another reconcile is running"),
        "{}",
        stderr_of(&second)
    );
    let users: i64 = sqlx::query_scalar("select count(*) from stack.users")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn a_transaction_pooler_is_refused_at_start_naming_what_to_use() {
    let db = TestDb::new().await;
    let bouncer = PgBouncer::start(PoolMode::Transaction);
    for command in ["migrate", "status"] {
        let output = stack_sync(&[command], &[("DATABASE_URL", &bouncer.url(&db))])
            .output()
            .unwrap();
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{command}");
        assert!(
            stderr.contains("leads to a pooler in transaction mode")
                && stderr.contains("use the pooler's session mode or a direct connection"),
            "{command}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}
