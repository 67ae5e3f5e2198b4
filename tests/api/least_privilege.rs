//! The service as a role that is no superuser and owns nothing but its two schemas: migrate,
//! serve every event type and reconcile, as the README's setup gives it.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::support::command::{stack_sync, stderr_of};
use crate::support::fake_stack::{FakeStack, Paging};
use crate::support::postgres::TestDb;
use crate::support::readme_sql_after;
use crate::support::serve_process::{ServeProcess, signed};

/// The SQL block under "Its own role" in the README, for role `role`, database `database`.
fn readme_setup(role: &str, database: &str) -> String {
    readme_sql_after("**Its own role.**")
        .replace("stack_sync_service", role)
        .replace("app_database", database)
        .replace("change-me", "secret")
}

/// `db.url` with `role` as the user.
fn url_as(db: &TestDb, role: &str) -> String {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(role).unwrap();
    url.set_password(Some("secret")).unwrap();
    url.to_string()
}

#[tokio::test]
async fn the_service_runs_as_a_role_owning_only_its_schemas() {
    let db = TestDb::empty().await;
    let role = format!("sync_{}", uuid::Uuid::new_v4().simple());
    let database: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    db.pool
        .execute(AssertSqlSafe(readme_setup(&role, &database)))
        .await
        .unwrap();
    let url = url_as(&db, &role);

    let migrated = stack_sync(&["migrate"], &[("DATABASE_URL", &url)])
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));

    let service = ServeProcess::start_with_url(&url, &[]);
    for event_type in stack_sync::samples::event_types() {
        let body = stack_sync::samples::sample(event_type).unwrap().to_string();
        let (id, ts, signature) = signed(&body);
        let response = service.post(&id, ts, &signature, &body).await;
        assert_eq!(response.status(), 200, "{event_type}");
    }
    drop(service);

    let stack = FakeStack::start(Paging::CursorIncluded).await;
    stack.add_user("10000000-0000-4000-8000-000000000001", "Ada", 1);
    let env = stack.env();
    let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.push(("DATABASE_URL", &url));
    // Awaited, not blocked on: the fake API answers from this test's runtime.
    let reconciled = tokio::process::Command::from(stack_sync(&["reconcile"], &vars))
        .output()
        .await
        .unwrap();
    assert!(reconciled.status.success(), "{}", stderr_of(&reconciled));

    let recorded: i64 = sqlx::query_scalar("select count(*) from stack.webhook_events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(recorded, stack_sync::samples::event_types().count() as i64);
    let ada: i64 = sqlx::query_scalar(
        "select count(*) from stack.users where id = '10000000-0000-4000-8000-000000000001'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(ada, 1, "reconcile wrote as the role");
    assert_owns_only_its_schemas(&db, &role).await;
    assert_functions_are_closed(&db).await;

    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    admin
        .execute(AssertSqlSafe(format!(
            "drop owned by {role} cascade; drop role {role}"
        )))
        .await
        .unwrap();
}

async fn assert_owns_only_its_schemas(db: &TestDb, role: &str) {
    let superuser: bool = sqlx::query_scalar("select rolsuper from pg_roles where rolname = $1")
        .bind(role)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(!superuser);
    let schemas: Vec<String> = sqlx::query_scalar(
        "select nspname::text from pg_namespace where nspowner = $1::regrole order by 1",
    )
    .bind(role)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(schemas, ["stack", "stack_sync"]);
    let elsewhere: Vec<String> = sqlx::query_scalar(
        "select c.oid::regclass::text from pg_class c
         where c.relowner = $1::regrole
           and c.relnamespace not in ('stack'::regnamespace, 'stack_sync'::regnamespace)
           -- the out-of-line storage of its own tables
           and c.relnamespace <> 'pg_toast'::regnamespace",
    )
    .bind(role)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(elsewhere.is_empty(), "outside its schemas: {elsewhere:?}");
}

async fn assert_functions_are_closed(db: &TestDb) {
    let (functions, open, unpinned): (i64, Vec<String>, Vec<String>) = sqlx::query_as(
        "select count(*),
                coalesce(array_agg(p.oid::regprocedure::text) filter (
                    where p.proacl is null
                       or exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0)), '{}'),
                coalesce(array_agg(p.oid::regprocedure::text) filter (
                    where not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false)), '{}')
         from pg_proc p where p.pronamespace = 'stack_sync'::regnamespace",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(functions >= 20, "{functions} functions");
    assert!(open.is_empty(), "executable by PUBLIC: {open:?}");
    assert!(unpinned.is_empty(), "no fixed search_path: {unpinned:?}");
}

#[tokio::test]
async fn an_install_with_its_migration_table_on_the_default_path_keeps_it_there() {
    let db = TestDb::empty().await;
    // How every install made before the table moved into stack_sync was migrated.
    stack_sync::store::schema::MIGRATOR
        .run(&db.pool)
        .await
        .unwrap();

    stack_sync::store::schema::migrate(&db.pool).await.unwrap();

    let tables: Vec<String> = sqlx::query_scalar(
        "select c.oid::regclass::text from pg_class c where c.relname = '_sqlx_migrations'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(tables, ["_sqlx_migrations"], "one table, in public");
}
