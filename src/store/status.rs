//! What an operator asks first, read from the database so that it is right across replicas and
//! restarts: for `stack-sync status` and the database-backed metrics.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgExecutor, PgPool};
use time::OffsetDateTime;

use super::schema;
use crate::model::Kind;

/// Messages recorded as failed and not replayed since.
pub async fn failed_waiting(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from stack.webhook_events where outcome = 'failed'")
        .fetch_one(db)
        .await
}

/// When the last successful (not dry) reconcile finished.
pub async fn last_success(db: impl PgExecutor<'_>) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar(
        "select max(finished_at) from stack_sync.reconcile_runs
         where status = 'succeeded' and not dry_run",
    )
    .fetch_one(db)
    .await
}

/// The last reconcile run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LastReconcile {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// running, succeeded or failed.
    pub status: String,
    pub dry_run: bool,
    pub summary: Option<Json<Value>>,
    pub error: Option<String>,
}

impl LastReconcile {
    /// What the run changed: (entity, created | updated | deleted, rows).
    pub fn changes(&self) -> Vec<(&str, &'static str, i64)> {
        let Some(Json(Value::Object(summary))) = &self.summary else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        for (entity, counts) in summary.iter().filter(|(_, counts)| counts.is_object()) {
            for kind in ["created", "updated", "deleted"] {
                let count = counts[kind].as_i64().unwrap_or(0);
                changes.push((entity.as_str(), kind, count));
            }
        }
        changes
    }
}

pub async fn last_reconcile(db: impl PgExecutor<'_>) -> Result<Option<LastReconcile>, sqlx::Error> {
    sqlx::query_as(
        "select id, started_at, finished_at, status, dry_run, summary, error
         from stack_sync.reconcile_runs order by id desc limit 1",
    )
    .fetch_optional(db)
    .await
}

/// The delivery side of the status.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Deliveries {
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_received_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_applied_at: Option<OffsetDateTime>,
    /// Outcome to count, over the last 24 hours.
    pub outcomes_24h: Json<Value>,
    pub failed_waiting: i64,
    /// Arrival minus source time over the last hour, in seconds.
    pub lag_p50_seconds: Option<f64>,
    pub lag_p99_seconds: Option<f64>,
}

pub async fn deliveries(db: impl PgExecutor<'_>) -> Result<Deliveries, sqlx::Error> {
    sqlx::query_as(
        "select
             (select max(received_at) from stack.webhook_events) as last_received_at,
             (select max(received_at) from stack.webhook_events where outcome = 'applied')
                 as last_applied_at,
             (select coalesce(jsonb_object_agg(outcome, n), '{}') from (
                  select outcome, count(*) as n from stack.webhook_events
                  where received_at > now() - interval '24 hours' group by outcome
              ) as recent) as outcomes_24h,
             (select count(*) from stack.webhook_events where outcome = 'failed')
                 as failed_waiting,
             lag.p50 as lag_p50_seconds, lag.p99 as lag_p99_seconds
         from (
             select percentile_cont(0.5) within group (order by seconds) as p50,
                    percentile_cont(0.99) within group (order by seconds) as p99
             from (
                 select extract(epoch from received_at - source_time)::float8 as seconds
                 from stack.webhook_events
                 where received_at > now() - interval '1 hour' and source_time is not null
             ) as recent
         ) as lag",
    )
    .fetch_one(db)
    .await
}

/// The newest migration applied, and the rows of each mirror table.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Schema {
    pub migration_version: Option<i64>,
    pub row_counts: Json<Value>,
}

pub async fn schema(db: &PgPool) -> Result<Schema, sqlx::Error> {
    let table = schema::migrations_table(db).await?;
    // A name Postgres itself resolved, so safe to place in the statement.
    let version = match table {
        Some(table) => format!("(select max(version) from {table} where success)"),
        None => "null::bigint".to_owned(),
    };
    // The mirror's tables, named by `Kind::info`.
    let mirrored: String = Kind::ALL
        .iter()
        .map(|kind| {
            let table = kind.info().table;
            format!("'{table}', (select count(*) from stack.{table}),\n")
        })
        .collect();
    sqlx::query_as(AssertSqlSafe(format!(
        "select {version} as migration_version,
                jsonb_build_object(
                    {mirrored}
                    'webhook_events', (select count(*) from stack.webhook_events),
                    'deleted_users', (select count(*) from stack.deleted_users),
                    'deleted_teams', (select count(*) from stack.deleted_teams)
                ) as row_counts"
    )))
    .fetch_one(db)
    .await
}
