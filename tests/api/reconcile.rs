//! `reconcile` against a fake of Stack's REST API: backfill, drift repaired both ways, dry
//! runs, the guards shared with webhooks, API faults, both pagination behaviours, and a
//! 10,000-user project streamed page by page.

use std::time::{Duration, Instant};

use serde_json::json;
use stack_sync::config::Settings;
use stack_sync::event_time::message_id_at;
use stack_sync::reconcile::{ReconcileError, Summary};
use time::OffsetDateTime;

use crate::support::TestApp;
use crate::support::fake_stack::{FakeStack, Fault, Paging, forget_user};
use crate::support::payloads::example_with;
use crate::support::stack_model::mirror_state;

// Users and teams of the fake project, named as `small_project` and `drift` name them.
const ANONYMOUS: &str = "10000000-0000-4000-8000-000000000001";
const ADA: &str = "10000000-0000-4000-8000-000000000002";
const GRACE: &str = "10000000-0000-4000-8000-000000000003";
const LINUS: &str = "10000000-0000-4000-8000-000000000004";
const ACME: &str = "20000000-0000-4000-8000-000000000001";
const GLOBEX: &str = "20000000-0000-4000-8000-000000000002";
const INITECH: &str = "20000000-0000-4000-8000-000000000003";

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

fn triple(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.to_owned(), b.to_owned(), c.to_owned())
}

/// A small project: an anonymous user, two teams, members and permissions.
async fn small_project(paging: Paging) -> FakeStack {
    let stack = FakeStack::start(paging).await;
    stack.add_user(ANONYMOUS, "anonymous", 1_000);
    stack.project().users.get_mut(ANONYMOUS).unwrap()["is_anonymous"] = json!(true);
    stack.add_user(ADA, "Ada", 2_000);
    stack.add_user(GRACE, "Grace", 3_000);
    stack.add_team(ACME, "Acme");
    stack.add_team(GLOBEX, "Globex");
    let mut project = stack.project();
    project
        .members
        .extend([pair(ACME, ANONYMOUS), pair(ACME, ADA), pair(GLOBEX, GRACE)]);
    project.team_permissions.extend([
        triple(ACME, ADA, "manage_billing"),
        triple(GLOBEX, GRACE, "team_member"),
    ]);
    project
        .project_permissions
        .insert(pair(ADA, "read_secret_info"));
    drop(project);
    stack
}

async fn run(
    app: &TestApp,
    stack: &FakeStack,
    dry_run: bool,
    configure: impl FnOnce(&mut Settings),
) -> Result<Summary, ReconcileError> {
    stack.reconcile(&app.db, dry_run, configure).await
}

#[tokio::test]
async fn backfill_fills_an_empty_database_under_both_pagination_behaviours() {
    for paging in [Paging::CursorIncluded, Paging::CursorExcluded] {
        let app = TestApp::spawn().await;
        let stack = small_project(paging).await;

        let summary = run(&app, &stack, false, |s| s.reconcile.page_size = 2)
            .await
            .unwrap();

        assert_eq!(
            mirror_state(&app.db.pool).await,
            stack.state(),
            "{paging:?}"
        );
        let created = [
            summary.users,
            summary.teams,
            summary.team_members,
            summary.team_permissions,
            summary.project_permissions,
        ]
        .map(|counts| counts.created);
        assert_eq!(created, [3, 2, 3, 2, 1], "{paging:?}");
    }
}

/// Changes the small project in every direction for every entity.
fn drift(stack: &FakeStack) {
    stack.add_user(LINUS, "Linus", 4_000);
    stack.add_team(INITECH, "Initech");
    let mut project = stack.project();
    project.users.get_mut(ADA).unwrap()["display_name"] = json!("Ada King");
    project.teams.get_mut(ACME).unwrap()["display_name"] = json!("Acme Labs");
    forget_user(&mut project, GRACE);
    project.teams.remove(GLOBEX);
    project.members.retain(|(team, _)| team != GLOBEX);
    project
        .team_permissions
        .retain(|(team, _, _)| team != GLOBEX);
    project.members.remove(&pair(ACME, ANONYMOUS));
    project.members.insert(pair(INITECH, LINUS));
    project
        .team_permissions
        .remove(&triple(ACME, ADA, "manage_billing"));
    project
        .team_permissions
        .insert(triple(INITECH, LINUS, "team_member"));
    project
        .project_permissions
        .remove(&pair(ADA, "read_secret_info"));
    project
        .project_permissions
        .insert(pair(LINUS, "read_secret_info"));
}

#[tokio::test]
async fn drift_is_repaired_in_each_direction_for_every_entity() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    run(&app, &stack, false, |_| {}).await.unwrap();
    drift(&stack);

    let summary = run(&app, &stack, false, |_| {}).await.unwrap();

    assert_eq!(mirror_state(&app.db.pool).await, stack.state());
    let changes = |c: stack_sync::reconcile::Counts| (c.created, c.updated, c.deleted);
    assert_eq!(changes(summary.users), (1, 1, 1), "users");
    assert_eq!(changes(summary.teams), (1, 1, 1), "teams");
    assert_eq!(changes(summary.team_members), (1, 0, 1), "memberships");
    assert_eq!(
        changes(summary.team_permissions),
        (1, 0, 1),
        "team permissions"
    );
    assert_eq!(
        changes(summary.project_permissions),
        (1, 0, 1),
        "project permissions"
    );
    assert_eq!(summary.users.unchanged, 1, "the anonymous user");
}

#[tokio::test]
async fn a_dry_run_reports_the_drift_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    run(&app, &stack, false, |_| {}).await.unwrap();
    drift(&stack);
    let before = mirror_state(&app.db.pool).await;
    let versions = "select count(*) from stack_sync.versions";
    let versions_before: i64 = sqlx::query_scalar(versions)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    let dry = run(&app, &stack, true, |_| {}).await.unwrap();

    assert_eq!(mirror_state(&app.db.pool).await, before);
    let versions_after: i64 = sqlx::query_scalar(versions)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(versions_after, versions_before);
    assert!(dry.dry_run);
    assert_eq!(
        (dry.users.created, dry.users.updated, dry.users.deleted),
        (1, 1, 1)
    );
    assert!(
        dry.to_string().contains("dry run: nothing written"),
        "{dry}"
    );
    let real = run(&app, &stack, false, |_| {}).await.unwrap();
    assert_eq!(
        (real.users.created, real.users.updated, real.users.deleted),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_webhook_newer_than_the_fetched_state_wins_and_deleted_stays_deleted() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    // Stack changed after this reconcile's pages were read; the webhooks came first.
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(10);
    let renamed = example_with(
        "user.updated",
        &[("id", json!(ADA)), ("display_name", json!("From webhook"))],
    );
    app.deliver_json(&message_id_at(later), &renamed).await;
    let deleted = json!({"type": "user.deleted", "data": {"id": GRACE, "teams": []}});
    app.deliver_json(&message_id_at(later), &deleted).await;

    let summary = run(&app, &stack, false, |_| {}).await.unwrap();

    let users: Vec<(String, String)> =
        sqlx::query_as("select id::text, display_name from stack.users order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        users,
        [pair(ANONYMOUS, "anonymous"), pair(ADA, "From webhook")]
    );
    assert_eq!(summary.users.stale, 2);
    let members_of_u3: i64 =
        sqlx::query_scalar("select count(*) from stack.team_members where user_id = $1::uuid")
            .bind(GRACE)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        members_of_u3, 0,
        "links of a deleted user are not brought back"
    );
}

#[tokio::test]
async fn an_invalid_object_is_reported_left_out_and_the_run_goes_on() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    // ADA is mirrored from a webhook; Stack's listing then sends it with a field of a wrong type.
    let from_webhook = example_with("user.created", &[("id", json!(ADA))]);
    app.deliver_json(&message_id_at(OffsetDateTime::now_utc()), &from_webhook)
        .await;
    stack.project().users.get_mut(ADA).unwrap()["has_password"] = json!("yes");

    let summary = run(&app, &stack, false, |_| {}).await.unwrap();

    assert_eq!(summary.users.invalid, 1);
    let invalid = &summary.invalid[0];
    assert_eq!((invalid.entity, invalid.id.as_str()), ("users", ADA));
    assert!(
        invalid.error.starts_with("has_password: invalid type"),
        "{}",
        invalid.error
    );
    assert!(
        summary
            .to_string()
            .contains(&format!("users {ADA}: has_password"))
    );
    // Nothing of it written, and not deleted either; the rest of the project went in.
    let users: Vec<(String, String)> =
        sqlx::query_as("select id::text, svix_id from stack.users order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let ids: Vec<&str> = users.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, [ANONYMOUS, ADA, GRACE]);
    assert!(
        !users[1].1.starts_with("reconcile:"),
        "ADA is as the webhook left it"
    );
    assert_eq!(summary.team_members.created, 3);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_honouring_retry_after() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    stack.project().faults.extend([
        Fault {
            status: 429,
            retry_after: Some("1"),
        },
        Fault {
            status: 500,
            retry_after: None,
        },
        Fault {
            status: 503,
            retry_after: None,
        },
    ]);
    let started = Instant::now();

    run(&app, &stack, false, |_| {}).await.unwrap();

    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(mirror_state(&app.db.pool).await, stack.state());
    let requests = stack.project().requests.clone();
    assert_eq!(
        requests[..4]
            .iter()
            .filter(|r| r.starts_with("/api/v1/teams"))
            .count(),
        4,
        "{requests:?}"
    );
}

#[tokio::test]
async fn a_server_that_keeps_failing_fails_the_run_and_records_it() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    stack.project().faults.extend((0..3).map(|_| Fault {
        status: 502,
        retry_after: None,
    }));

    let result = run(&app, &stack, false, |s| {
        s.stack.as_mut().unwrap().request_attempts = 3
    })
    .await;

    assert!(
        matches!(result, Err(ReconcileError::Paging(_))),
        "{result:?}"
    );
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("after 3 attempts, last with HTTP 502"),
        "{message}"
    );
    let (status, error): (String, Option<String>) = sqlx::query_as(
        "select status, error from stack_sync.reconcile_runs order by id desc limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(error, Some(message));
}

#[tokio::test]
async fn an_empty_page_after_a_cursor_is_resumed_not_taken_as_the_end() {
    for paging in [Paging::CursorIncluded, Paging::CursorExcluded] {
        let app = TestApp::spawn().await;
        let stack = small_project(paging).await;
        stack.project().empty_page_after_cursor = true;

        run(&app, &stack, false, |s| s.reconcile.page_size = 1)
            .await
            .unwrap();

        assert_eq!(
            mirror_state(&app.db.pool).await,
            stack.state(),
            "{paging:?}"
        );
    }
}

#[tokio::test]
async fn a_user_deleted_while_paging_is_skipped_and_then_swept() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    run(&app, &stack, false, |_| {}).await.unwrap();
    stack.add_user(LINUS, "Linus", 4_000);
    // With pages of 2, GRACE is the cursor of the second page; it goes after the first page, so
    // Stack answers that page empty although LINUS follows.
    stack.project().delete_during_paging = Some(GRACE.to_owned());

    let summary = run(&app, &stack, false, |s| s.reconcile.page_size = 2)
        .await
        .unwrap();

    assert_eq!((summary.users.created, summary.users.deleted), (1, 1));
    assert_eq!(mirror_state(&app.db.pool).await, stack.state());
    let requests = stack.project().requests.clone();
    let resumed = format!("cursor={ADA}");
    assert!(
        requests.iter().any(|r| r.contains(&resumed)),
        "resumed from the previous page: {requests:?}"
    );
}

#[tokio::test]
async fn deleting_more_than_the_allowed_share_stops_before_deleting() {
    let app = TestApp::spawn().await;
    let stack = FakeStack::start(Paging::CursorIncluded).await;
    let ids: Vec<String> = (0..30)
        .map(|n| format!("30000000-0000-4000-8000-{n:012}"))
        .collect();
    for (n, id) in (0_i64..).zip(&ids) {
        stack.add_user(id, "user", n);
    }
    run(&app, &stack, false, |_| {}).await.unwrap();
    for id in &ids[..20] {
        forget_user(&mut stack.project(), id);
    }

    let result = run(&app, &stack, false, |s| s.reconcile.max_delete_share = 0.1).await;

    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("stopped before deleting users: more than 10 of 30"),
        "{message}"
    );
    assert_eq!(app.count("users").await, 30);
}

#[tokio::test]
async fn a_bad_server_key_stops_at_once_with_what_to_check() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;

    let result = run(&app, &stack, false, |s| {
        s.stack.as_mut().unwrap().secret_server_key = "ssk_wrong".into()
    })
    .await;

    let err = result.unwrap_err();
    assert!(matches!(err, ReconcileError::Paging(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("INVALID_SECRET_SERVER_KEY"), "{message}");
    assert!(message.contains("STACK_SECRET_SERVER_KEY"), "{message}");
    assert_eq!(
        stack.project().requests.len(),
        0,
        "no request got past authentication, none was retried"
    );
}

#[tokio::test]
async fn a_run_left_running_by_a_dead_process_is_closed_as_interrupted() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    sqlx::raw_sql(
        "insert into stack_sync.reconcile_runs (id, dry_run) values (1000, false);
         insert into stack_sync.reconcile_seen values (1000, 'user', 'x');",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();

    run(&app, &stack, false, |_| {}).await.unwrap();

    let dead: (String, Option<String>) =
        sqlx::query_as("select status, error from stack_sync.reconcile_runs where id = 1000")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(dead, ("failed".to_owned(), Some("interrupted".to_owned())));
    assert_eq!(app.count_in("stack_sync.reconcile_seen").await, 0);
}

#[tokio::test]
async fn only_one_reconcile_runs_at_a_time() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorIncluded).await;
    let mut holder = app.db.pool.acquire().await.unwrap();
    let locked = stack_sync::store::reconcile::try_lock(&mut holder).await;
    assert!(locked.unwrap());

    let result = run(&app, &stack, false, |_| {}).await;

    assert!(
        matches!(result, Err(ReconcileError::AlreadyRunning)),
        "{result:?}"
    );
    stack_sync::store::reconcile::unlock(&mut holder)
        .await
        .unwrap();
}

#[tokio::test]
async fn ten_thousand_users_are_streamed_page_by_page() {
    let app = TestApp::spawn().await;
    let stack = FakeStack::start(Paging::CursorExcluded).await;
    for n in 0..10_000_i64 {
        stack.add_user(&format!("40000000-0000-4000-8000-{n:012}"), "user", n);
    }
    stack.project().observe = Some(app.db.pool.clone());

    let summary = run(&app, &stack, false, |s| s.reconcile.page_size = 100)
        .await
        .unwrap();

    assert_eq!(summary.users.created, 10_000);
    let seen = stack.project().mirrored_at_each_page.clone();
    assert_eq!(seen.len(), 100, "100 pages of 100");
    // The page requested is at most 7 past the pages written: up to 3 merged into the write in
    // progress (a write takes 250 objects, 3 pages of 100), 4 waiting batches, then the page
    // being requested, which the fetcher holds until there is room. Memory holds a few pages,
    // never the project.
    let most_ahead = 7;
    for (page, mirrored) in seen.iter().enumerate() {
        let written_pages = usize::try_from(*mirrored).unwrap() / 100;
        assert!(
            page <= written_pages + most_ahead,
            "page {page} was requested with only {written_pages} written"
        );
    }
}

#[tokio::test]
async fn serve_reconciles_on_a_schedule() {
    let stack = small_project(Paging::CursorIncluded).await;
    let app = TestApp::spawn_with(|s| {
        s.stack = Some(stack.api_settings());
        s.reconcile.every = Some(Duration::from_secs(1));
    })
    .await;

    let mut finished = None;
    for _ in 0..100 {
        finished = sqlx::query_scalar::<_, String>(
            "select status from stack_sync.reconcile_runs where finished_at is not null limit 1",
        )
        .fetch_optional(&app.db.pool)
        .await
        .unwrap();
        if finished.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(finished.as_deref(), Some("succeeded"));
    assert_eq!(mirror_state(&app.db.pool).await, stack.state());
}

/// Every row of the mirror and of the versions, with the transaction that last wrote it.
async fn row_versions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select t || ':' || x from (
             select 'users' as t, xmin::text as x, id::text as k from stack.users
             union all select 'teams', xmin::text, id::text from stack.teams
             union all select 'team_members', xmin::text, team_id || '/' || user_id from stack.team_members
             union all select 'team_permissions', xmin::text, team_id || '/' || user_id || '/' || permission_id from stack.team_permissions
             union all select 'project_permissions', xmin::text, user_id || '/' || permission_id from stack.project_permissions
             union all select 'versions', xmin::text, kind || '/' || key from stack_sync.versions
         ) rows order by t, k",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_run_that_finds_nothing_changed_writes_no_row_and_no_version() {
    let app = TestApp::spawn().await;
    let stack = small_project(Paging::CursorExcluded).await;
    run(&app, &stack, false, |_| {}).await.unwrap();
    let before = row_versions(&app.db.pool).await;

    let summary = run(&app, &stack, false, |_| {}).await.unwrap();

    assert_eq!(row_versions(&app.db.pool).await, before);
    assert!(before.len() >= 14, "rows and their versions: {before:?}");
    let total = |counts: &stack_sync::reconcile::Counts| {
        counts.created + counts.updated + counts.deleted + counts.stale
    };
    for counts in [
        &summary.users,
        &summary.teams,
        &summary.team_members,
        &summary.team_permissions,
        &summary.project_permissions,
    ] {
        assert_eq!(total(counts), 0, "{summary:?}");
    }
}
