//! `stack-sync status`: what an operator asks first, read from the database, as text for people
//! or JSON for scripts.

use std::fmt;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::store::changes::{self, LogStatus};
use crate::store::refresh::{self, Pending};
use crate::store::status::{self, Deliveries, LastReconcile, Schema};

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Status {
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
    pub deliveries: Deliveries,
    pub last_reconcile: Option<LastReconcile>,
    /// The refresh queue; `None` before migration 0012.
    pub refresh: Option<Pending>,
    /// The change log; `None` before migration 0013.
    pub changes: Option<LogStatus>,
    pub schema: Schema,
}

impl Status {
    pub async fn read(pool: &PgPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            now: OffsetDateTime::now_utc(),
            deliveries: status::deliveries(pool).await?,
            last_reconcile: status::last_reconcile(pool).await?,
            refresh: refresh::pending(pool).await?,
            changes: changes::status(pool).await?,
            schema: status::schema(pool).await?,
        })
    }
}

/// "5 m ago", "never".
fn age(now: OffsetDateTime, then: Option<OffsetDateTime>) -> String {
    let Some(then) = then else {
        return "never".to_owned();
    };
    let seconds = (now - then).whole_seconds().max(0);
    match seconds {
        0..=119 => format!("{seconds} s ago"),
        120..=7199 => format!("{} min ago", seconds / 60),
        7200..=172_799 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86_400),
    }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |s| format!("{s:.2} s"))
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.deliveries;
        writeln!(
            f,
            "last webhook received   {}",
            age(self.now, d.last_received_at)
        )?;
        writeln!(
            f,
            "last webhook applied    {}",
            age(self.now, d.last_applied_at)
        )?;
        writeln!(f, "outcomes, last 24 h     {}", d.outcomes_24h.0)?;
        writeln!(f, "failed, awaiting replay {}", d.failed_waiting)?;
        writeln!(
            f,
            "delivery lag, last hour p50 {}, p99 {}",
            seconds(d.lag_p50_seconds),
            seconds(d.lag_p99_seconds)
        )?;
        match &self.last_reconcile {
            None => writeln!(f, "last reconcile          never")?,
            Some(run) => {
                let dry = if run.dry_run { " (dry run)" } else { "" };
                let changes: Vec<String> = run
                    .changes()
                    .into_iter()
                    .filter(|(_, _, n)| *n > 0)
                    .map(|(entity, kind, n)| format!("{entity} {kind} {n}"))
                    .collect();
                let changes = if changes.is_empty() {
                    "no changes".to_owned()
                } else {
                    changes.join(", ")
                };
                writeln!(
                    f,
                    "last reconcile          {}{dry}, started {}: {changes}",
                    run.status,
                    age(self.now, Some(run.started_at))
                )?;
            }
        }
        if let Some(queue) = &self.refresh {
            write!(f, "refreshes pending       {}", queue.pending)?;
            if let Some(oldest) = queue.oldest_seconds {
                write!(f, ", oldest {oldest:.0} s")?;
            }
            if queue.failing > 0 {
                let error = queue.last_error.as_deref().unwrap_or("-");
                write!(f, ", {} failing (last: {error})", queue.failing)?;
            }
            writeln!(f)?;
        }
        if let Some(log) = &self.changes {
            let state = if log.enabled { "on" } else { "off" };
            writeln!(f, "change log              {state}")?;
            for consumer in &log.consumers {
                writeln!(
                    f,
                    "  consumer {}    at {}, {} behind ({:.0} s)",
                    consumer.name, consumer.position, consumer.behind, consumer.behind_seconds
                )?;
            }
        }
        let version = self.schema.migration_version.unwrap_or(0);
        writeln!(f, "schema migration        {version}")?;
        writeln!(f, "rows                    {}", self.schema.row_counts.0)
    }
}
