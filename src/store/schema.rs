//! The database schema: the forward-only migrations under `migrations/` (tables, indexes,
//! views), then the current definition of every function, one file each under
//! `sql/functions/`. Functions are replaced as a whole on every migration, so each has exactly
//! one definition to read and change; their history is git's.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Executor, PgPool};

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

/// Applies pending migrations, then replaces every function of `stack_sync` with the
/// definitions this binary carries, in one transaction.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await?;
    replace_functions(pool).await.map_err(MigrateError::Execute)
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
    tx.execute(
        "do $$
         declare
             f regprocedure;
         begin
             for f in select oid from pg_proc where pronamespace = 'stack_sync'::regnamespace loop
                 execute format('drop function %s', f);
             end loop;
         end;
         $$",
    )
    .await?;
    for (_, definition) in FUNCTIONS {
        sqlx::raw_sql(definition).execute(&mut *tx).await?;
    }
    tx.commit().await
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
