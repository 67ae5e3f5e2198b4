//! A good citizen on the app's own database: its sessions say who they are, and a lock the app
//! holds delays a webhook only up to `database.lock_timeout_secs`, after which Svix is asked to
//! retry.

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

use crate::support::example;
use crate::support::postgres::TestDb;
use crate::support::serve_process::{ServeProcess, signed};

async fn application_names(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select distinct application_name from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn its_sessions_are_named_stack_sync_unless_told_otherwise() {
    let db = TestDb::new().await;
    let service = ServeProcess::start(&db, &[]);
    assert!(
        application_names(&db)
            .await
            .contains(&"stack-sync".to_owned())
    );
    drop(service);

    let renamed = ServeProcess::start(&db, &[("PGAPPNAME", "mirror-eu")]);
    let names = application_names(&db).await;
    assert!(names.contains(&"mirror-eu".to_owned()), "{names:?}");
    drop(renamed);
}

#[tokio::test]
async fn a_lock_held_by_the_app_answers_503_after_the_lock_timeout_and_the_retry_applies() {
    let db = TestDb::new().await;
    let service = ServeProcess::start(&db, &[("STACK_SYNC_DATABASE__LOCK_TIMEOUT_SECS", "1")]);
    let mut app = PgConnection::connect(&db.url).await.unwrap();
    app.execute("begin; lock table stack.users in exclusive mode")
        .await
        .unwrap();
    let body = example("user.created").to_string();
    let (id, timestamp, signature) = signed(&body);

    let started = Instant::now();
    let blocked = service.post(&id, timestamp, &signature, &body).await;
    let waited = started.elapsed();
    app.execute("rollback").await.unwrap();
    let retried = service.post(&id, timestamp, &signature, &body).await;

    assert_eq!(blocked.status(), 503);
    assert!(
        waited >= Duration::from_secs(1),
        "waited for the lock: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(9),
        "gave up before the request timeout: {waited:?}"
    );
    assert_eq!(retried.status(), 200);
    let users: i64 = sqlx::query_scalar("select count(*) from stack.users")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}
