//! The real `stack-sync` binary: configuration errors, `migrate`, and `serve` from start to a
//! graceful stop on SIGTERM.

use crate::support::command::{stack_sync, stderr_of};
use crate::support::fake_stack::{FakeStack, Paging};
use crate::support::postgres::TestDb;
use crate::support::serve_process::{ServeProcess, next_log_with, signed};
use crate::support::signing::{Signer, now};
use crate::support::{SECRET, example};

#[test]
fn serve_without_a_database_url_fails_with_one_line_naming_it() {
    let output = stack_sync(&["serve"], &[("STACK_WEBHOOK_SECRET", SECRET)])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn serve_without_a_secret_fails_with_one_line_naming_it() {
    let vars = [("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")];
    let output = stack_sync(&["serve"], &vars).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("STACK_WEBHOOK_SECRET"), "{stderr}");
}

#[test]
fn a_misspelt_variable_stops_the_command_naming_the_one_meant() {
    let vars = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
        ("STACK_SYNC_RETENTON__DAYS", "7"),
    ];
    let output = stack_sync(&["migrate"], &vars).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "unknown setting STACK_SYNC_RETENTON__DAYS (did you mean STACK_SYNC_RETENTION__DAYS?)"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn secrets_can_come_from_files_and_a_missing_one_is_named() {
    let db = TestDb::new().await;
    let url_file = std::env::temp_dir().join(format!("stack-sync-url-{}", std::process::id()));
    std::fs::write(&url_file, format!("{}\n", db.url)).unwrap();
    let from_file = url_file.display().to_string();

    let migrated = stack_sync(&["migrate"], &[("DATABASE_URL_FILE", &from_file)])
        .output()
        .unwrap();
    std::fs::remove_file(&url_file).unwrap();
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));

    let missing = stack_sync(&["migrate"], &[("DATABASE_URL_FILE", &from_file)])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = stderr_of(&missing);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("DATABASE_URL_FILE: cannot read {from_file}")),
        "{stderr}"
    );
}

#[test]
fn a_malformed_secret_is_refused_without_echoing_it() {
    let vars = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
        ("STACK_WEBHOOK_SECRET", "whsec_sup3r-s3cret!"),
    ];
    let output = stack_sync(&["serve"], &vars).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("secret number 1 is not valid standard base64"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sup3r"),
        "the secret must not be printed: {stderr}"
    );
}

#[test]
fn a_url_of_another_database_is_refused_naming_the_setting() {
    let output = stack_sync(
        &["migrate"],
        &[("DATABASE_URL", "mysql://root:hunter2@127.0.0.1:3306/app")],
    )
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("is not a Postgres URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password is not printed");
}

#[tokio::test]
async fn migrate_creates_the_schema_and_exits() {
    let db = TestDb::new().await;
    let tables =
        "select array_agg(table_schema || '.' || table_name order by table_schema, table_name)
        from information_schema.tables
        where table_schema in ('stack', 'stack_sync') and table_type = 'BASE TABLE'
          and table_name <> '_sqlx_migrations'";
    let migrated_in_process: Vec<String> = sqlx::query_scalar(tables)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "drop schema stack cascade; drop schema stack_sync cascade; drop table if exists _sqlx_migrations",
    )
    .execute(&db.pool)
    .await
    .unwrap();

    let output = stack_sync(&["migrate"], &[("DATABASE_URL", &db.url)])
        .output()
        .unwrap();

    assert!(output.status.success(), "{}", stderr_of(&output));
    let migrated_by_the_binary: Vec<String> = sqlx::query_scalar(tables)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(migrated_by_the_binary.contains(&"stack.users".to_owned()));
    assert_eq!(migrated_by_the_binary, migrated_in_process);
}

#[tokio::test]
async fn serve_mirrors_a_webhook_and_stops_gracefully_on_sigterm() {
    let db = TestDb::new().await;
    let mut service = ServeProcess::start(&db, &[]);
    let body = example("user.created").to_string();
    let (id, ts, signature) = signed(&body);

    let response = service.post(&id, ts, &signature, &body).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let event_log = next_log_with(&service.logs, "webhook applied");
    let probes = (
        service.status_of("/healthz").await,
        service.status_of("/readyz").await,
    );
    service.terminate();
    next_log_with(&service.logs, "shut down gracefully");
    let status = service.child.wait().unwrap();

    assert!(status.success(), "{status}");
    assert_eq!(probes, (200, 200));
    assert_eq!(event_log["webhook.id"], id.as_str());
    assert_eq!(event_log["webhook.type"], "user.created");
    assert_eq!(event_log["webhook.outcome"], "applied");
    assert!(event_log["duration_ms"].is_number());
    assert_eq!(event_log["span"]["request.id"], request_id.as_str());
    assert_eq!(request_id.len(), 36, "a generated uuid: {request_id}");
    let users: i64 = sqlx::query_scalar("select count(*) from stack.users")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[tokio::test]
async fn ids_and_types_from_a_request_cannot_forge_or_flood_log_fields() {
    let db = TestDb::new().await;
    let mut service = ServeProcess::start(&db, &[]);
    let body = format!(r#"{{"type":"{}","data":{{}}}}"#, "t".repeat(100_000));
    let id = "msg_forged outcome=applied";
    let ts = now();
    let signature = Signer::default().signature(id, ts, body.as_bytes());

    let response = service.post(id, ts, &signature, &body).await;
    assert_eq!(response.status(), 200);
    let event_log = next_log_with(&service.logs, "webhook ignored");
    service.terminate();
    service.child.wait().unwrap();

    assert_eq!(event_log["webhook.id"], "msg_forged?outcome?applied");
    assert_eq!(event_log["webhook.type"].as_str().unwrap().len(), 100);
}

#[tokio::test]
async fn serve_migrates_at_start_unless_told_not_to() {
    let db = TestDb::new().await;
    sqlx::raw_sql(
        "drop schema stack cascade; drop schema stack_sync cascade; drop table if exists _sqlx_migrations",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let schema_exists = "select exists (select 1 from pg_namespace where nspname = 'stack')";

    let mut untouched =
        ServeProcess::start(&db, &[("STACK_SYNC_DATABASE__MIGRATE_ON_START", "false")]);
    untouched.terminate();
    untouched.child.wait().unwrap();
    let after_untouched: bool = sqlx::query_scalar(schema_exists)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let mut migrating = ServeProcess::start(&db, &[]);
    migrating.terminate();
    migrating.child.wait().unwrap();
    let after_migrating: bool = sqlx::query_scalar(schema_exists)
        .fetch_one(&db.pool)
        .await
        .unwrap();

    assert_eq!((after_untouched, after_migrating), (false, true));
}

#[tokio::test]
async fn logs_carry_no_secret_signature_body_email_or_name() {
    let db = TestDb::new().await;
    let mut service = ServeProcess::start(&db, &[("RUST_LOG", "trace")]);
    let event = example("user.updated");
    let body = event.to_string();
    let (id, ts, signature) = signed(&body);

    for signature in [signature.as_str(), "v1,forged"] {
        service.post(&id, ts, signature, &body).await;
    }
    service.terminate();
    service.child.wait().unwrap();

    let all: Vec<String> = service.logs.iter().map(|line| line.to_string()).collect();
    let all = all.join("\n");
    assert!(all.contains(&id), "the message id is logged");
    let data = &event["data"];
    for private in [
        SECRET.trim_start_matches("whsec_"),
        signature.trim_start_matches("v1,"),
        data["primary_email"].as_str().unwrap(),
        data["display_name"].as_str().unwrap(),
        "stripe_customer_id",
    ] {
        assert!(!all.contains(private), "logs contain {private:?}");
    }
}

#[test]
fn serve_with_a_reconcile_schedule_but_no_stack_settings_fails_before_connecting() {
    let vars = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
        ("STACK_WEBHOOK_SECRET", SECRET),
        ("STACK_SYNC_RECONCILE__INTERVAL_SECS", "60"),
    ];
    let output = stack_sync(&["serve"], &vars).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("missing settings for Stack's API"),
        "{stderr}"
    );
}

#[test]
fn reconcile_without_stack_settings_names_them_in_one_line() {
    let vars = [("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")];
    let output = stack_sync(&["reconcile"], &vars).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("STACK_PROJECT_ID") && stderr.contains("STACK_SECRET_SERVER_KEY"),
        "{stderr}"
    );
}

// Multi-threaded: the fake API serves on the runtime while this thread waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_prints_its_summary_and_fails_cleanly_on_a_bad_key() {
    let db = TestDb::new().await;
    let stack = FakeStack::start(Paging::CursorIncluded).await;
    stack.add_user("10000000-0000-4000-8000-000000000001", "Ada", 1);
    let env = stack.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("DATABASE_URL", &db.url));

    let output = stack_sync(&["reconcile", "--dry-run"], &vars)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logs = stderr_of(&output);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stdout.contains("(dry run: nothing written)"), "{stdout}");
    assert!(
        logs.contains("reconcile progress"),
        "progress is shown: {logs}"
    );
    assert!(
        logs.contains("reconcile finished"),
        "the run is logged: {logs}"
    );
    let users_row = stdout
        .lines()
        .find(|line| line.starts_with("users "))
        .unwrap();
    assert_eq!(
        users_row.split_whitespace().collect::<Vec<_>>(),
        ["users", "1", "0", "0", "0", "0"]
    );

    vars.retain(|(k, _)| *k != "STACK_SECRET_SERVER_KEY");
    vars.push(("STACK_SECRET_SERVER_KEY", "ssk_wrong_and_secret"));
    let output = stack_sync(&["reconcile"], &vars).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("INVALID_SECRET_SERVER_KEY"), "{stderr}");
    let everything = format!("{stderr}{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        !everything.contains("ssk_wrong_and_secret"),
        "the key must not be printed"
    );
}
