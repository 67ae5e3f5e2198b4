//! SQL of the refresh queue (`stack_sync.refresh_queue`, migration 0012): what is still to be
//! fetched from Stack after a webhook, claimed by one worker at a time across replicas, and
//! kept until its fetch has been applied.

use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::types::PgInterval;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a refresh fetches: a user or a team, and whether its memberships and permissions too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Target {
    pub kind: TargetKind,
    pub id: Uuid,
    pub with_links: bool,
}

/// The kinds of object a refresh starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum TargetKind {
    User,
    Team,
}

/// A queued refresh a worker has taken, as it was when taken.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub kind: TargetKind,
    pub id: Uuid,
    pub with_links: bool,
    /// Webhooks that asked for it since its last fetch.
    pub requests: i32,
    pub requested_at: OffsetDateTime,
    /// Including this one.
    pub attempts: i32,
}

impl Claimed {
    pub fn target(&self) -> Target {
        Target {
            kind: self.kind,
            id: self.id,
            with_links: self.with_links,
        }
    }
}

fn interval(duration: Duration) -> PgInterval {
    PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
    }
}

/// The statement that queues `target` after the webhook applied in `applied` (a `with` query
/// whose row has `outcome`), due after `$delay`: a target queued already takes this request in
/// (coalesced), keeping the earlier due time unless it is backing off after a failure. The
/// caller binds kind, id, links and delay as the parameters numbered from `first`.
pub fn enqueue_after(applied: &str, first: usize) -> String {
    let [kind, id, links, delay] = [first, first + 1, first + 2, first + 3];
    format!(
        "insert into stack_sync.refresh_queue as q (kind, id, with_links, due_at)
         select ${kind}, ${id}, ${links}, now() + ${delay}
         from {applied} where outcome = 'applied'
         on conflict (kind, id) do update
         set with_links = q.with_links or excluded.with_links,
             requests = q.requests + 1,
             requested_at = excluded.requested_at,
             due_at = case when q.last_error is null then least(q.due_at, excluded.due_at)
                           else q.due_at end"
    )
}

/// The interval parameter of [`enqueue_after`].
pub fn delay_parameter(delay: Duration) -> PgInterval {
    interval(delay)
}

/// Queues `target` due after `delay`, as a webhook does (for `refresh` on demand and tests).
pub async fn enqueue(
    db: impl PgExecutor<'_>,
    target: Target,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "with applied as (select 'applied' as outcome) {}",
        enqueue_after("applied", 1)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(target.kind)
        .bind(target.id)
        .bind(target.with_links)
        .bind(interval(delay))
        .execute(db)
        .await?;
    Ok(())
}

/// Takes up to `limit` due refreshes for `worker`, for `lease`: until it ends, no other worker
/// takes them, and if this one dies they become due again when it does.
pub async fn claim(
    pool: &PgPool,
    worker: Uuid,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "update stack_sync.refresh_queue q
         set due_at = now() + $2, attempts = q.attempts + 1, claimed_by = $3
         from (
             select kind, id from stack_sync.refresh_queue
             where due_at <= now()
             order by due_at
             limit $1
             for update skip locked
         ) as due
         where q.kind = due.kind and q.id = due.id
         returning q.kind, q.id, q.with_links, q.requests, q.requested_at, q.attempts",
    )
    .bind(limit)
    .bind(interval(lease))
    .bind(worker)
    .fetch_all(pool)
    .await
}

/// Makes what `worker` still holds due now, for another worker (a service shutting down).
pub async fn release(pool: &PgPool, worker: Uuid) -> Result<u64, sqlx::Error> {
    let released = sqlx::query(
        "update stack_sync.refresh_queue set due_at = now(), claimed_by = null
         where claimed_by = $1",
    )
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(released.rows_affected())
}

/// Removes a refresh whose fetch was applied. One requested again while it was fetched stays
/// queued for the requests that came after (the fetch may predate what they announced).
pub async fn finish(db: impl PgExecutor<'_>, claimed: &Claimed) -> Result<(), sqlx::Error> {
    sqlx::query(
        "with done as (
             delete from stack_sync.refresh_queue
             where kind = $1 and id = $2 and requested_at = $3
             returning 1
         )
         update stack_sync.refresh_queue
         set requests = greatest(requests - $4, 1), attempts = 0, last_error = null,
             first_requested_at = requested_at, claimed_by = null
         where kind = $1 and id = $2 and not exists (select 1 from done)",
    )
    .bind(claimed.kind)
    .bind(claimed.id)
    .bind(claimed.requested_at)
    .bind(claimed.requests)
    .execute(db)
    .await?;
    Ok(())
}

/// Puts a failed refresh back, due again after `retry_in`, with why it failed.
pub async fn fail(
    db: impl PgExecutor<'_>,
    claimed: &Claimed,
    error: &str,
    retry_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update stack_sync.refresh_queue
         set due_at = now() + $3, last_error = $4, claimed_by = null
         where kind = $1 and id = $2",
    )
    .bind(claimed.kind)
    .bind(claimed.id)
    .bind(interval(retry_in))
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// The queue as an operator sees it.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct Pending {
    /// Refreshes waiting, failed ones included.
    pub pending: i64,
    /// Those whose last attempt failed.
    pub failing: i64,
    /// How long the oldest one has waited, in seconds.
    pub oldest_seconds: Option<f64>,
    /// The error of the most recent failure still waiting.
    pub last_error: Option<String>,
}

/// The queue's state; `None` on a schema from before it (migration 0012), as `status` may read.
pub async fn pending(db: impl PgExecutor<'_>) -> Result<Option<Pending>, sqlx::Error> {
    let pending = sqlx::query_as(
        "select count(*) as pending,
                count(*) filter (where last_error is not null) as failing,
                extract(epoch from now() - min(first_requested_at))::float8 as oldest_seconds,
                (array_agg(last_error order by requested_at desc)
                    filter (where last_error is not null))[1] as last_error
         from stack_sync.refresh_queue",
    )
    .fetch_one(db)
    .await;
    super::unless_before_migration(pending)
}
