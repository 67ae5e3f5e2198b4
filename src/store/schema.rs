//! The database schema: the forward-only migrations under `migrations/` (tables, indexes,
//! views), then the current definition of every function, one file each under
//! `sql/functions/`. Functions are replaced as a whole on every migration, so each has exactly
//! one definition to read and change; their history is git's.

use sha2::{Digest, Sha256};
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
    "apply_fetched",
    "bury",
    "change_link",
    "change_mirror",
    "changes_after",
    "delete_confirmed",
    "delete_link",
    "delete_permissions_granted_before",
    "delete_team",
    "delete_user",
    "erase_bodies",
    "erasure_of",
    "forget",
    "holds",
    "insert_link",
    "is_deleted",
    "key_of",
    "lock_ids",
    "mirrored",
    "notify",
    "notify_link",
    "record_unapplied",
    "write_team",
    "write_user",
];

/// The version of the function set this build carries, recorded in `stack_sync.function_set`
/// when it replaces the functions, with the digest of [`FUNCTIONS`] it stands for. Raise the
/// version with every change to a function; a unit test holds the digest to the definitions.
pub const FUNCTION_SET: (i32, &str) = (
    5,
    "88fc747d3106f3ee5ca5e036d9f8f0e8d231fc98087934e7f3b6a9e287a693c8",
);

/// Whether `migrate` may replace a newer function set with this build's older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downgrade {
    /// Stop instead: the usual case, an older build starting after a newer one.
    Refuse,
    /// Put this build's functions back on purpose: a rollback.
    Allow,
}

/// Why the schema could not be brought to this build's.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(
        "the database's functions are set {found}, written by stack-sync {written_by}; this \
         build carries the older set {ours} and will not put it back over them: run the newer \
         build, or `stack-sync migrate --allow-downgrade` to roll the functions back on purpose"
    )]
    NewerFunctions {
        found: i32,
        written_by: String,
        ours: i32,
    },
}

impl From<sqlx::Error> for SchemaError {
    fn from(err: sqlx::Error) -> Self {
        Self::Migrate(MigrateError::Execute(err))
    }
}

/// The search path functions run with, whoever calls them: nothing a caller's schemas hold can
/// stand in for a built-in. Every other name in a body is qualified.
const FUNCTION_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Applies pending migrations, then replaces every function of `stack_sync` with the
/// definitions this binary carries, in one transaction, unless the database holds a newer set.
pub async fn migrate(pool: &PgPool) -> Result<(), SchemaError> {
    migrate_with(pool, Downgrade::Refuse).await
}

/// [`migrate`], saying what to do with a newer function set.
pub async fn migrate_with(pool: &PgPool, downgrade: Downgrade) -> Result<(), SchemaError> {
    let mut connection = migration_connection(pool).await?;
    MIGRATOR.run(&mut connection).await?;
    connection.close().await?;
    replace_functions(pool, downgrade).await
}

/// The sha-256 of every definition, in order, as lowercase hex.
pub fn functions_digest() -> String {
    let mut hasher = Sha256::new();
    for (name, definition) in FUNCTIONS {
        hasher.update(name.as_bytes());
        hasher.update(definition.as_bytes());
    }
    format!("{:x}", hasher.finalize())
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
    // Created only when missing: `if not exists` on every start would log Postgres's notice.
    let schema_missing: bool = sqlx::query_scalar("select to_regnamespace('stack_sync') is null")
        .fetch_one(pool)
        .await?;
    if schema_missing {
        pool.execute("create schema if not exists stack_sync")
            .await?;
    }
    // A `set`, not the startup parameter `options`, which PgBouncer refuses.
    let mut connection = PgConnection::connect_with(&options).await?;
    connection.execute("set search_path = stack_sync").await?;
    Ok(connection)
}

async fn replace_functions(pool: &PgPool, downgrade: Downgrade) -> Result<(), SchemaError> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(FUNCTIONS_LOCK)
        .execute(&mut *tx)
        .await?;
    let (ours, _) = FUNCTION_SET;
    let recorded: Option<(i32, String)> =
        sqlx::query_as("select version, written_by from stack_sync.function_set")
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((found, written_by)) = recorded
        && found > ours
        && downgrade == Downgrade::Refuse
    {
        return Err(SchemaError::NewerFunctions {
            found,
            written_by,
            ours,
        });
    }
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
    sqlx::query(
        "insert into stack_sync.function_set (version, digest, written_by) values ($1, $2, $3)
         on conflict (only_row) do update
         set version = excluded.version, digest = excluded.digest,
             written_by = excluded.written_by, written_at = now()",
    )
    .bind(ours)
    .bind(functions_digest())
    .bind(env!("CARGO_PKG_VERSION"))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
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
    fn the_function_set_version_moves_with_its_definitions() {
        let digest = functions_digest();
        assert!(
            FUNCTION_SET.1 == digest,
            "the functions changed: raise FUNCTION_SET's version in src/store/schema.rs and set \
             its digest to \"{digest}\""
        );
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
