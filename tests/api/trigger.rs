//! `stack-sync trigger`, the real binary, against the service: each scenario leaves the tables
//! as its story says, and a wrong secret or an unreachable target is a clear error.

use std::process::Output;

use crate::support::command::{stack_sync, stderr_of};
use crate::support::{SECRET, TestApp};

/// Runs `stack-sync trigger <args>` against `app` with `secret`, off the runtime's threads.
async fn trigger(app: &TestApp, secret: &str, args: &[&str]) -> Output {
    let url = format!("{}/webhooks/stack", app.base_url);
    let mut all = vec!["trigger", "--to", url.as_str()];
    all.extend_from_slice(args);
    let mut command = stack_sync(&all, &[("STACK_WEBHOOK_SECRET", secret)]);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The answers printed, one per delivery: the last column.
fn statuses(output: &Output) -> Vec<String> {
    assert!(output.status.success(), "{}", stderr_of(output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.rsplit('\t').next().unwrap().to_owned())
        .collect()
}

async fn counts(app: &TestApp) -> [i64; 5] {
    let mut counts = [0; 5];
    for (count, table) in counts.iter_mut().zip([
        "users",
        "teams",
        "team_members",
        "team_permissions",
        "deleted_teams",
    ]) {
        *count = app.count(table).await;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_mirrors_a_user_with_a_team_membership_and_permission() {
    let app = TestApp::spawn().await;

    let output = trigger(&app, SECRET, &["--scenario", "signup"]).await;

    assert_eq!(statuses(&output), ["applied"; 4]);
    assert_eq!(counts(&app).await, [1, 1, 1, 1, 0]);
    let member: (String, String) = sqlx::query_as(
        "select u.display_name, p.permission_id from stack.team_members m
         join stack.users u on u.id = m.user_id
         join stack.team_permissions p on (p.team_id, p.user_id) = (m.team_id, m.user_id)",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(member, ("Ada Lovelace".to_owned(), "team_admin".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_lifecycle_ends_with_the_team_deleted_and_its_members_kept() {
    let app = TestApp::spawn().await;

    let output = trigger(&app, SECRET, &["--scenario", "team-lifecycle"]).await;

    assert_eq!(statuses(&output), ["applied"; 9]);
    assert_eq!(counts(&app).await, [2, 0, 0, 0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_ends_as_the_events_happened() {
    let app = TestApp::spawn().await;

    let output = trigger(&app, SECRET, &["--scenario", "out-of-order", "--seed", "7"]).await;

    let statuses = statuses(&output);
    assert_eq!(statuses.len(), 8, "6 events, one retried, one sent twice");
    assert_eq!(statuses.iter().filter(|s| *s == "duplicate").count(), 2);
    assert!(
        statuses.contains(&"stale".to_owned()),
        "arrived out of order: {statuses:?}"
    );
    // The rename holds, the membership stays, the revoked permission stays revoked.
    assert_eq!(counts(&app).await, [1, 1, 1, 0, 0]);
    let name: String = sqlx::query_scalar("select display_name from stack.users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(name, "Ada King");
}

async fn users(app: &TestApp) -> Vec<(String, String, bool)> {
    sqlx::query_as("select id::text, display_name, has_password from stack.users order by id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_repeats_the_ids_and_fields_can_be_set() {
    let (first, second) = (TestApp::spawn().await, TestApp::spawn().await);
    let args = [
        "user.created",
        "--count",
        "2",
        "--seed",
        "11",
        "--set",
        "display_name=Ada",
        "--set",
        "has_password=false",
    ];

    let one = trigger(&first, SECRET, &args).await;
    let other = trigger(&second, SECRET, &args).await;

    assert_eq!(statuses(&one), ["applied", "applied"]);
    assert_eq!(statuses(&other), ["applied", "applied"]);
    let (one_users, other_users) = (users(&first).await, users(&second).await);
    assert_eq!(one_users, other_users);
    assert!(
        one_users
            .iter()
            .all(|(_, name, password)| name == "Ada" && !password)
    );
    assert_ne!(one_users[0].0, one_users[1].0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_a_clear_401_and_never_printed() {
    let app = TestApp::spawn().await;
    let wrong = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    let output = trigger(&app, wrong, &["stack.test"]).await;

    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("refused the signature (401 invalid_signature)"),
        "{stderr}"
    );
    assert!(stderr.contains("STACK_WEBHOOK_SECRET"), "{stderr}");
    let everything = format!("{stderr}{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        !everything.contains("C2FVsBQIhrscChlQIMV"),
        "the secret is not printed"
    );
    assert!(
        !everything.contains("MfKQ9r8GKYqrTwjUPD8"),
        "the secret is not printed"
    );
    assert_eq!(app.count("webhook_events").await, 0);
}

#[test]
fn an_unreachable_target_is_named() {
    let url = "http://127.0.0.1:1/webhooks/stack";
    let output = stack_sync(
        &["trigger", "user.created", "--to", url],
        &[("STACK_WEBHOOK_SECRET", SECRET)],
    )
    .output()
    .unwrap();

    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("could not reach {url}")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
