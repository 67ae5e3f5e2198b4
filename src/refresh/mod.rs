//! Freshness: a user's or team's current state fetched from Stack's API and applied under the
//! same guards as reconcile, so that a webhook newer than the fetch still wins. It puts right,
//! within seconds, what Stack changes without a webhook (a sign-up's membership and
//! permissions, a linked OAuth account, a verified email) and a late copy of an older update.
//! [`Refresher::refresh`] does one; `serve` runs [`worker`] over the queue that webhooks fill,
//! and `stack-sync refresh` and `POST /refresh/…` ask for one on demand.

pub mod worker;

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::model::{Change, Kind};
use crate::reconcile::{Counts, OBJECTS_PER_WRITE};
use crate::stack_api::pager::{Pager, PagingError};
use crate::stack_api::{ApiError, StackApi};
use crate::store::mirror::{self, Fetched};
use crate::store::refresh::{Target, TargetKind};

/// How a refresh names itself in the rows' version records.
const SOURCE: &str = "refresh";

/// Members asked for per page when a team is refreshed.
const MEMBERS_PER_PAGE: &str = "500";

/// Why a refresh did not finish; a queued one is retried later.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Paging(#[from] PagingError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What one refresh found and changed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub target: Target,
    /// Whether Stack has the user or team. One it does not have is left as the mirror holds it:
    /// its deletion arrives by webhook, or the next reconcile confirms it.
    pub found: bool,
    pub users: Counts,
    pub teams: Counts,
    pub team_members: Counts,
    pub team_permissions: Counts,
    pub project_permissions: Counts,
}

impl Report {
    fn new(target: Target) -> Self {
        Self {
            target,
            found: false,
            users: Counts::default(),
            teams: Counts::default(),
            team_members: Counts::default(),
            team_permissions: Counts::default(),
            project_permissions: Counts::default(),
        }
    }

    fn counts_mut(&mut self, kind: Kind) -> &mut Counts {
        match kind {
            Kind::User => &mut self.users,
            Kind::Team => &mut self.teams,
            Kind::TeamMember => &mut self.team_members,
            Kind::TeamPermission => &mut self.team_permissions,
            Kind::ProjectPermission => &mut self.project_permissions,
        }
    }

    fn counts(&self) -> [(Kind, &Counts); 5] {
        [
            (Kind::User, &self.users),
            (Kind::Team, &self.teams),
            (Kind::TeamMember, &self.team_members),
            (Kind::TeamPermission, &self.team_permissions),
            (Kind::ProjectPermission, &self.project_permissions),
        ]
    }

    /// Rows created or updated.
    pub fn changed(&self) -> u64 {
        self.counts()
            .iter()
            .map(|(_, c)| c.created + c.updated)
            .sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.target.kind {
            TargetKind::User => "user",
            TargetKind::Team => "team",
        };
        if !self.found {
            return writeln!(
                f,
                "{kind} {} is not in Stack; the mirror is left as it is",
                self.target.id
            );
        }
        writeln!(f, "refreshed {kind} {}", self.target.id)?;
        for (kind, c) in self.counts() {
            let seen = c.created + c.updated + c.unchanged + c.stale + c.invalid;
            if seen > 0 {
                writeln!(
                    f,
                    "{:<20} {} created, {} updated, {} unchanged, {} stale, {} invalid",
                    kind.info().table,
                    c.created,
                    c.updated,
                    c.unchanged,
                    c.stale,
                    c.invalid
                )?;
            }
        }
        Ok(())
    }
}

/// Fetches and applies refreshes. Clones share the API client, and so its limiter.
#[derive(Debug, Clone)]
pub struct Refresher {
    pub pool: PgPool,
    pub api: StackApi,
    /// The channel changed rows are announced on; `None` announces nothing.
    pub feed_channel: Option<String>,
}

impl Refresher {
    /// Fetches `target`'s state (and its links, if asked) and applies it; returns what changed
    /// once it is committed.
    pub async fn refresh(&self, target: Target) -> Result<Report, RefreshError> {
        let mut report = Report::new(target);
        // Every request is sent after this: Stack's state is at least this new.
        let fetched_at = OffsetDateTime::now_utc();
        let Some(objects) = self.fetch(target).await? else {
            return Ok(report);
        };
        report.found = true;
        let changes = validate(objects, &mut report);
        for chunk in changes.chunks(OBJECTS_PER_WRITE) {
            let kinds: Vec<Kind> = chunk.iter().map(|change| change.key().kind()).collect();
            let fetched = Fetched {
                source: SOURCE,
                changes: chunk,
                fetched_at,
                feed_channel: self.feed_channel.as_deref(),
            };
            let outcomes = mirror::apply_fetched(&self.pool, &fetched).await?;
            for (kind, applied) in kinds.into_iter().zip(outcomes) {
                report
                    .counts_mut(kind)
                    .add(applied.outcome, applied.existed);
            }
        }
        Ok(report)
    }

    /// The objects to apply, those that others refer to first; `None` when Stack does not have
    /// the target.
    async fn fetch(&self, target: Target) -> Result<Option<Vec<(Kind, Value)>>, RefreshError> {
        let id = target.id.to_string();
        let (kind, path) = match target.kind {
            TargetKind::User => (Kind::User, format!("/users/{id}")),
            TargetKind::Team => (Kind::Team, format!("/teams/{id}")),
        };
        let Some(object) = self.api.get(&path, &[]).await? else {
            return Ok(None);
        };
        let mut objects = vec![(kind, object)];
        if target.with_links {
            match target.kind {
                TargetKind::User => objects.extend(self.links_of_user(&id).await?),
                TargetKind::Team => objects.extend(self.links_of_team(&id).await?),
            }
        }
        Ok(Some(objects))
    }

    /// The user's teams and memberships, and their team and project permissions.
    async fn links_of_user(&self, id: &str) -> Result<Vec<(Kind, Value)>, RefreshError> {
        let of_user = || vec![("user_id", id.to_owned())];
        let (teams, team_permissions, project_permissions) = tokio::try_join!(
            self.list(Kind::Team.info().api_path, of_user()),
            self.list(Kind::TeamPermission.info().api_path, of_user()),
            self.list(Kind::ProjectPermission.info().api_path, of_user()),
        )?;
        let memberships: Vec<Value> = teams
            .iter()
            .map(|team| json!({ "team_id": team["id"], "user_id": id }))
            .collect();
        Ok(tagged(Kind::Team, teams)
            .chain(tagged(Kind::TeamMember, memberships))
            .chain(tagged(Kind::TeamPermission, team_permissions))
            .chain(tagged(Kind::ProjectPermission, project_permissions))
            .collect())
    }

    /// The team's members (as users and as memberships) and their team permissions.
    async fn links_of_team(&self, id: &str) -> Result<Vec<(Kind, Value)>, RefreshError> {
        let members_query = vec![
            ("team_id", id.to_owned()),
            ("include_anonymous", "true".to_owned()),
            ("limit", MEMBERS_PER_PAGE.to_owned()),
        ];
        let (members, team_permissions) = tokio::try_join!(
            self.list(Kind::User.info().api_path, members_query),
            self.list(
                Kind::TeamPermission.info().api_path,
                vec![("team_id", id.to_owned())]
            ),
        )?;
        let memberships: Vec<Value> = members
            .iter()
            .map(|user| json!({ "team_id": id, "user_id": user["id"] }))
            .collect();
        Ok(tagged(Kind::User, members)
            .chain(tagged(Kind::TeamMember, memberships))
            .chain(tagged(Kind::TeamPermission, team_permissions))
            .collect())
    }

    /// Every page of a listing.
    async fn list(
        &self,
        path: &str,
        query: Vec<(&'static str, String)>,
    ) -> Result<Vec<Value>, PagingError> {
        let mut pager = Pager::new(&self.api, path, query);
        let mut items = Vec::new();
        while let Some(page) = pager.next_page().await? {
            items.extend(page.items);
        }
        Ok(items)
    }
}

fn tagged(kind: Kind, objects: Vec<Value>) -> impl Iterator<Item = (Kind, Value)> {
    objects.into_iter().map(move |object| (kind, object))
}

/// The objects that pass validation, as changes; the others are counted and logged.
fn validate(objects: Vec<(Kind, Value)>, report: &mut Report) -> Vec<Change> {
    let mut changes = Vec::with_capacity(objects.len());
    for (kind, object) in objects {
        match Change::parse(kind, false, object) {
            Ok(change) => changes.push(change),
            Err(err) => {
                tracing::warn!(
                    refresh.entity = kind.info().table,
                    error = %err,
                    "invalid object left out of a refresh"
                );
                report.counts_mut(kind).invalid += 1;
            }
        }
    }
    changes
}
