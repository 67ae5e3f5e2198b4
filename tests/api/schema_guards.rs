//! What keeps the database half sound before it runs: `plpgsql_check` over every function, and
//! an older build's refusal to put its functions back over a newer set.

use sqlx::PgPool;
use stack_sync::store::schema::FUNCTION_SET;

use crate::support::command::{stack_sync, stderr_of};
use crate::support::postgres::TestDb;

/// What `plpgsql_check` finds in the plpgsql functions of `stack_sync`, errors and warnings
/// alike (performance hints aside), one line each.
async fn plpgsql_check_findings(pool: &PgPool) -> Vec<String> {
    sqlx::query("create extension if not exists plpgsql_check")
        .execute(pool)
        .await
        .expect(
            "the plpgsql_check extension (Debian: apt-get install postgresql-15-plpgsql-check)",
        );
    sqlx::query_scalar(
        "select format('%s line %s: %s: %s', p.oid::regprocedure, c.lineno, c.level, c.message)
         from pg_proc as p
         cross join lateral plpgsql_check_function_tb(
             p.oid, fatal_errors => false, other_warnings => true, extra_warnings => true,
             performance_warnings => false
         ) as c
         where p.pronamespace = 'stack_sync'::regnamespace
           and p.prolang = (select oid from pg_language where lanname = 'plpgsql')",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn plpgsql_check_finds_nothing_in_any_function() {
    let db = TestDb::new().await;
    assert_eq!(plpgsql_check_findings(&db.pool).await, Vec::<String>::new());
}

#[tokio::test]
async fn plpgsql_check_finds_a_misspelt_column_in_a_branch_never_taken() {
    let db = TestDb::new().await;
    sqlx::raw_sql(
        "set check_function_bodies = off;
         create function stack_sync.probe(p_id uuid) returns void language plpgsql as $$
         begin
             if p_id is null then
                 update stack.users set selected_tem_id = null where id = p_id;
             end if;
         end;
         $$;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let findings = plpgsql_check_findings(&db.pool).await;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].contains("probe(uuid)") && findings[0].contains("selected_tem_id"),
        "{findings:?}"
    );
}

/// The oids of the functions of `stack_sync`, which replacing them changes.
async fn function_oids(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar(
        "select oid::bigint from pg_proc where pronamespace = 'stack_sync'::regnamespace
         order by oid",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn recorded_set(pool: &PgPool) -> (i32, String) {
    sqlx::query_as("select version, written_by from stack_sync.function_set")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_records_the_function_set_it_wrote() {
    let db = TestDb::new().await;
    let digest: String = sqlx::query_scalar("select digest from stack_sync.function_set")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        recorded_set(&db.pool).await,
        (FUNCTION_SET.0, env!("CARGO_PKG_VERSION").to_owned())
    );
    assert_eq!(digest, FUNCTION_SET.1);
}

#[tokio::test]
async fn an_older_build_refuses_to_replace_a_newer_function_set_unless_told_to() {
    let db = TestDb::new().await;
    let newer = FUNCTION_SET.0 + 1;
    sqlx::query("update stack_sync.function_set set version = $1, written_by = '9.9.9'")
        .bind(newer)
        .execute(&db.pool)
        .await
        .unwrap();
    let before = function_oids(&db.pool).await;

    let output = stack_sync(&["migrate"], &[("DATABASE_URL", &db.url)])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the database's functions are set {newer}, written by stack-sync 9.9.9"
        )) && stderr.contains("--allow-downgrade"),
        "{stderr}"
    );
    assert_eq!(function_oids(&db.pool).await, before, "nothing replaced");
    assert_eq!(recorded_set(&db.pool).await.0, newer);

    let output = stack_sync(
        &["migrate", "--allow-downgrade"],
        &[("DATABASE_URL", &db.url)],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_ne!(function_oids(&db.pool).await, before, "replaced");
    assert_eq!(recorded_set(&db.pool).await.0, FUNCTION_SET.0);
}
