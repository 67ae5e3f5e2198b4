//! `stack-sync reconcile`: reads Stack's current state over its REST API and makes the mirror
//! equal to it (the backfill, on an empty database). Fetched objects go through the same guards
//! as webhooks, with the time each page was asked for as their source time, so a newer webhook
//! wins and nothing deleted comes back. Rows Stack no longer lists are confirmed gone one by one
//! before they are deleted, and a run that would delete too much stops instead.

mod fetch;
mod summary;
mod sweep;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::mpsc;

pub use summary::{Counts, InvalidItem, Summary};

use crate::config::ReconcileSettings;
use crate::model::{Change, Kind};
use crate::stack_api::pager::{Page, Pager, PagingError};
use crate::stack_api::{ApiError, StackApi};
use crate::store::reconcile as store;
use fetch::{Batch, Fetcher};

/// Rows read from the database at a time while walking teams and deletion candidates.
const BATCH: i64 = 500;

/// Fetched batches waiting for the writer: enough to keep it busy, few enough that memory holds
/// a handful of pages (a page of 1000 users is a few MB parsed).
const WAITING_BATCHES: usize = 4;

/// Objects per write transaction: the writer merges waiting batches of one kind up to this, and
/// splits larger ones (a whole permission list). Each object takes one or two advisory locks
/// until its transaction ends, and Postgres's lock table holds only
/// `max_locks_per_transaction` (64) times `max_connections` (100) by default: a list of 20,000
/// grants in one transaction failed with "out of shared memory".
pub(crate) const OBJECTS_PER_WRITE: usize = 250;

/// Why a run did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("another reconcile is running (it holds the database lock); try again after it")]
    AlreadyRunning,
    #[error(transparent)]
    Paging(#[from] PagingError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "stopped before deleting {entity}: more than {allowed} of {rows} rows are gone from Stack \
         (reconcile.max_delete_share = {share}); nothing of them was deleted. If Stack really lost \
         them, raise the share for one run"
    )]
    TooManyDeletions {
        entity: &'static str,
        allowed: u64,
        rows: i64,
        share: f64,
    },
}

/// Runs one reconcile, unless another holds the lock. Writes nothing when `dry_run`.
/// Changed rows are announced on `feed_channel`, as webhooks' are.
pub async fn reconcile(
    pool: &PgPool,
    api: &StackApi,
    settings: &ReconcileSettings,
    feed_channel: Option<&str>,
    dry_run: bool,
) -> Result<Summary, ReconcileError> {
    let clock = Instant::now();
    // Session-level lock on a connection of its own, held for the whole run.
    let mut lock = pool.acquire().await?;
    if !store::try_lock(&mut lock).await? {
        return Err(ReconcileError::AlreadyRunning);
    }
    let (run_id, started_at) = store::start_run(&mut lock, dry_run).await?;
    let summary = Summary {
        dry_run,
        ..Summary::default()
    };
    let mut run = Run {
        pool,
        api,
        settings,
        run: store::RunRef {
            id: run_id,
            feed_channel,
        },
        started_at,
        dry_run,
        summary,
    };
    let result = run.all_phases().await;
    run.summary.duration = clock.elapsed();
    let error = result.as_ref().err().map(ToString::to_string);
    store::finish_run(&mut lock, run_id, &run.summary.to_json(), error.as_deref()).await?;
    store::unlock(&mut lock).await?;
    let summary = run.summary.to_json();
    match &error {
        None => tracing::info!(reconcile.run = run_id, %summary, "reconcile finished"),
        Some(error) => tracing::error!(reconcile.run = run_id, %summary, error, "reconcile failed"),
    }
    result.map(|()| run.summary)
}

/// Reconciles every `period` inside `serve`, forever; one replica at a time.
pub async fn run_every(
    pool: PgPool,
    period: Duration,
    api: StackApi,
    settings: ReconcileSettings,
    feed_channel: Option<String>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        // Outcomes and failures are logged by `reconcile` itself.
        let run = reconcile(&pool, &api, &settings, feed_channel.as_deref(), false);
        if let Err(ReconcileError::AlreadyRunning) = run.await {
            tracing::info!("scheduled reconcile skipped: another one is running");
        }
    }
}

struct Run<'a> {
    pool: &'a PgPool,
    api: &'a StackApi,
    settings: &'a ReconcileSettings,
    run: store::RunRef<'a>,
    /// The database's clock at the start: rows written after it are not deletion candidates.
    started_at: OffsetDateTime,
    dry_run: bool,
    summary: Summary,
}

impl<'a> Run<'a> {
    async fn all_phases(&mut self) -> Result<(), ReconcileError> {
        self.fetch_teams().await?;
        let fetcher = Fetcher {
            api: self.api,
            pool: self.pool,
            run_id: self.run.id,
            page_size: self.settings.page_size,
        };
        let (batches, fetched) = mpsc::channel(WAITING_BATCHES);
        tokio::try_join!(fetcher.users_and_links(batches), self.write(fetched))?;
        for kind in [
            Kind::User,
            Kind::Team,
            Kind::TeamMember,
            Kind::TeamPermission,
            Kind::ProjectPermission,
        ] {
            self.sweep(kind).await?;
        }
        Ok(())
    }

    /// Applies batches as they are fetched, merging those waiting of one kind.
    async fn write(&mut self, mut fetched: mpsc::Receiver<Batch>) -> Result<(), ReconcileError> {
        let mut progress: HashMap<Kind, usize> = HashMap::new();
        let mut next = fetched.recv().await;
        while let Some(mut batch) = next.take() {
            while batch.objects.len() < OBJECTS_PER_WRITE {
                match fetched.try_recv() {
                    Ok(more) if more.kind == batch.kind => batch.absorb(more),
                    Ok(other) => {
                        next = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let count = progress.entry(batch.kind).or_default();
            *count += batch.objects.len();
            let (kind, count) = (batch.kind, *count);
            let mut objects = batch.objects;
            while !objects.is_empty() {
                let rest = objects.split_off(objects.len().min(OBJECTS_PER_WRITE));
                self.apply(kind, objects, batch.fetched_at).await?;
                objects = rest;
            }
            tracing::info!(
                reconcile.entity = summary::entity_name(kind),
                fetched = count,
                "reconcile progress"
            );
            if next.is_none() {
                next = fetched.recv().await;
            }
        }
        Ok(())
    }

    /// Newer Stack pages `/teams`; older Stack rejects `limit` there and lists them all at once.
    async fn fetch_teams(&mut self) -> Result<(), ReconcileError> {
        let path = Kind::Team.info().api_path;
        let mut pager = Pager::new(self.api, path, vec![("limit", self.page_size())]);
        let first = match pager.next_page().await {
            Err(PagingError::Api(ApiError::Rejected { status: 400, .. })) => {
                pager = Pager::new(self.api, path, Vec::new());
                pager.next_page().await?
            }
            other => other?,
        };
        self.apply_pages(Kind::Team, pager, first, |items| items)
            .await
    }

    /// Applies `first` (if given) and every following page, one page at a time.
    async fn apply_pages(
        &mut self,
        kind: Kind,
        mut pager: Pager<'a>,
        first: Option<Page>,
        to_objects: impl Fn(Vec<Value>) -> Vec<Value>,
    ) -> Result<(), ReconcileError> {
        let mut next = match first {
            Some(page) => Some(page),
            None => pager.next_page().await?,
        };
        let mut fetched = 0;
        while let Some(page) = next {
            fetched += page.items.len();
            self.apply(kind, to_objects(page.items), page.fetched_at)
                .await?;
            tracing::info!(
                reconcile.entity = summary::entity_name(kind),
                fetched,
                "reconcile progress"
            );
            next = pager.next_page().await?;
        }
        Ok(())
    }

    /// Validates the objects as webhooks' are, marks the valid ones seen, and applies those
    /// not seen before in this run. An invalid object is reported and left out: nothing of it
    /// is written, and since it is not marked seen, its row is not deleted either.
    async fn apply(
        &mut self,
        kind: Kind,
        objects: Vec<Value>,
        fetched_at: OffsetDateTime,
    ) -> Result<(), ReconcileError> {
        let changes = self.validate(kind, objects);
        let keys: Vec<String> = changes.iter().map(|c| c.key().to_string()).collect();
        let new: HashSet<String> = store::mark_seen(self.pool, self.run.id, kind, &keys)
            .await?
            .into_iter()
            .collect();
        let fresh: Vec<Change> = changes
            .into_iter()
            .zip(keys)
            .filter(|(_, key)| new.contains(key))
            .map(|(change, _)| change)
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let outcomes = if self.dry_run {
            let mut tx = self.pool.begin().await?;
            let outcomes = store::apply_page(&mut *tx, self.run, &fresh, fetched_at).await?;
            tx.rollback().await?;
            outcomes
        } else {
            store::apply_page(self.pool, self.run, &fresh, fetched_at).await?
        };
        let counts = self.summary.counts_mut(kind);
        for applied in outcomes {
            counts.add(applied.outcome, applied.existed);
        }
        Ok(())
    }

    /// The objects that pass validation, as changes; the others are counted and reported.
    fn validate(&mut self, kind: Kind, objects: Vec<Value>) -> Vec<Change> {
        let mut changes = Vec::with_capacity(objects.len());
        for object in objects {
            // Kept apart for the report (a membership by its member): parsing takes the object.
            let id = object.get("id").or_else(|| object.get("user_id"));
            let id = id.and_then(Value::as_str).map(str::to_owned);
            match Change::parse(kind, false, object) {
                Ok(change) => changes.push(change),
                Err(err) => self
                    .summary
                    .add_invalid(kind, id.as_deref(), &err.to_string()),
            }
        }
        changes
    }

    fn page_size(&self) -> String {
        self.settings.page_size.to_string()
    }
}
