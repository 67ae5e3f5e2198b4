//! The database schema: the forward-only migrations under `migrations/` (tables, indexes,
//! views), then the current definition of every function, one file each under
//! `sql/functions/`. Functions are replaced as a whole on every migration, so each has exactly
//! one definition to read and change; their history is git's.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

/// The schema migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// The advisory lock key held while functions are replaced ("stackfun" in ASCII), so that
/// replicas starting together take turns.
const FUNCTIONS_LOCK: i64 = 0x7374_6163_6b66_756e;

macro_rules! functions {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../sql/functions/", $name, ".sql")))),*]
    };
}

/// Every function of the `stack_sync` schema: file name and definition.
pub const FUNCTIONS: &[(&str, &str)] = functions![
    "advance",
    "apply_event",
    "bury",
    "change_link",
    "change_mirror",
    "delete_link",
    "delete_permissions_granted_before",
    "delete_team",
    "delete_user",
    "holds",
    "insert_link",
    "is_deleted",
    "key_of",
    "lock_ids",
    "mirrored",
    "notify",
    "notify_link",
    "reconcile_apply",
    "reconcile_delete",
    "write_team",
    "write_user",
];

/// The search path functions run with, whoever calls them: nothing a caller's schemas hold can
/// stand in for a built-in. Every other name in a body is qualified.
const FUNCTION_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Applies pending migrations, then replaces every function of `stack_sync` with the
/// definitions this binary carries, in one transaction.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    let mut connection = migration_connection(pool).await?;
    MIGRATOR.run(&mut connection).await?;
    connection.close().await?;
    replace_functions(pool).await.map_err(MigrateError::Execute)
}

/// The table where sqlx records applied migrations, qualified, if there is one yet.
pub async fn migrations_table(pool: &PgPool) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select coalesce(to_regclass('stack_sync._sqlx_migrations'),
                         to_regclass('_sqlx_migrations'))::text",
    )
    .fetch_one(pool)
    .await
}

/// A connection for sqlx's migrator, which names its table without a schema. A new install keeps
/// it in `stack_sync`, so that the service needs no right on `public` (which Postgres 15 gives
/// only to the database owner); an install that already has it on the default search path
/// (every install made before this rule, usually in `public`) keeps it there.
async fn migration_connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let options = pool.connect_options().as_ref().clone();
    let on_default_path: bool =
        sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
            .fetch_one(pool)
            .await?;
    if on_default_path {
        return PgConnection::connect_with(&options).await;
    }
    pool.execute("create schema if not exists stack_sync")
        .await?;
    // A `set`, not the startup parameter `options`, which PgBouncer refuses.
    let mut connection = PgConnection::connect_with(&options).await?;
    connection.execute("set search_path = stack_sync").await?;
    Ok(connection)
}

async fn replace_functions(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(FUNCTIONS_LOCK)
        .execute(&mut *tx)
        .await?;
    // Bodies refer to each other; check them when called, not in file order (as pg_dump does).
    tx.execute("set local check_function_bodies = off").await?;
    // Dropped first, so that a function whose arguments changed leaves no stale overload.
    tx.execute(AssertSqlSafe(for_each_function(&["drop function %s"])))
        .await?;
    for (_, definition) in FUNCTIONS {
        sqlx::raw_sql(*definition).execute(&mut *tx).await?;
    }
    // Functions are executable by PUBLIC unless revoked: only the owner (stack-sync's role)
    // needs them, and an app reading `stack.*` needs none.
    let search_path = format!("alter function %s set search_path = {FUNCTION_SEARCH_PATH}");
    tx.execute(AssertSqlSafe(for_each_function(&[
        &search_path,
        "revoke execute on function %s from public",
    ])))
    .await?;
    tx.commit().await
}

/// A block (made of this file's constants, so safe to run) that runs each of `statements` (with `%s` standing for the function) on every
/// function of `stack_sync`.
fn for_each_function(statements: &[&str]) -> String {
    let executes: String = statements
        .iter()
        .map(|statement| format!("execute format('{statement}', f);\n"))
        .collect();
    format!(
        "do $$
         declare
             f regprocedure;
         begin
             for f in select oid from pg_proc where pronamespace = 'stack_sync'::regnamespace loop
                 {executes}
             end loop;
         end;
         $$"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_file_is_applied() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/functions");
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let listed: Vec<String> = FUNCTIONS
            .iter()
            .map(|(name, _)| format!("{name}.sql"))
            .collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn each_file_defines_the_function_it_is_named_for() {
        for (name, definition) in FUNCTIONS {
            let header = format!("create or replace function stack_sync.{name}(");
            assert_eq!(definition.matches(&header).count(), 1, "{name}.sql");
            assert_eq!(definition.matches("create ").count(), 1, "{name}.sql");
        }
    }
}
