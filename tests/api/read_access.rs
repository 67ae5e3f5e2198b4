//! The README's read-only grant for an app's role, run as written: the role reads every table
//! and view of `stack` and writes none.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::support::postgres::TestDb;
use crate::support::readme_sql_after;

/// The SQL block under "Read-only access" in the README, for the role `role`.
fn readme_grant(role: &str) -> String {
    readme_sql_after("**Read-only access.**").replace("app_role", role)
}

#[tokio::test]
async fn the_readme_grant_lets_an_app_role_read_and_not_write() {
    let db = TestDb::new().await;
    let role = format!("app_reader_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    conn.execute(AssertSqlSafe(format!("create role {role}")))
        .await
        .unwrap();
    conn.execute(AssertSqlSafe(readme_grant(&role)))
        .await
        .unwrap();

    conn.execute(AssertSqlSafe(format!("set role {role}")))
        .await
        .unwrap();
    let relations: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables where table_schema = 'stack'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(relations.len() >= 8, "{relations:?}");
    for relation in &relations {
        let read = format!("select count(*) from stack.{relation}");
        assert!(
            conn.execute(AssertSqlSafe(read.as_str())).await.is_ok(),
            "reading {relation}"
        );
    }
    let write = conn.execute("delete from stack.users").await.unwrap_err();
    let code = write.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("42501"), "{write}");

    conn.execute("reset role").await.unwrap();
    conn.execute(AssertSqlSafe(format!(
        "drop owned by {role}; drop role {role}"
    )))
    .await
    .unwrap();
}
