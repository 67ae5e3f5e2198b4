//! The reading half of a run: every listing after the teams, fetched concurrently (the API
//! client's limiter bounds the requests in flight) and handed to the writer as batches through
//! a bounded channel, so that the next pages are fetched while the previous ones are written and
//! memory holds a few pages, never the project.
//!
//! Requests per run, for U users and T teams at page size P: the teams (one, or T/P pages), U/P
//! pages of users, one paged listing of members per team, and one request each for all team
//! permissions and all project permissions: Stack lists every direct grant of the project when
//! these routes are given no filter, in a few hundred bytes per thousand grants, which is cheaper
//! than one request per team. Members have no such route short of
//! `/team-member-profiles` without a filter, which answers with every membership *and* its full
//! user in one unbounded response, so they stay per team.

use std::io::BufReader;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::mpsc::Sender;
use tokio_util::io::{StreamReader, SyncIoBridge};
use uuid::Uuid;

use super::{BATCH, OBJECTS_PER_WRITE, ReconcileError};
use crate::model::Kind;
use crate::stack_api::pager::Pager;
use crate::stack_api::{ApiError, StackApi, streamed};
use crate::store::reconcile as store;

/// Objects of one kind fetched together, and when they were asked for.
pub struct Batch {
    pub kind: Kind,
    pub objects: Vec<Value>,
    pub fetched_at: OffsetDateTime,
}

impl Batch {
    /// Takes in `other`'s objects (of the same kind). The merged batch claims only what the
    /// older fetch can: Stack's state is at least as new as the earlier of the two.
    pub fn absorb(&mut self, other: Batch) {
        self.objects.extend(other.objects);
        self.fetched_at = self.fetched_at.min(other.fetched_at);
    }
}

/// What the fetchers need from the run; copied into each.
#[derive(Clone, Copy)]
pub struct Fetcher<'a> {
    pub api: &'a StackApi,
    pub pool: &'a PgPool,
    pub run_id: i64,
    pub page_size: u32,
}

impl<'a> Fetcher<'a> {
    /// Users, every team's members, and both kinds of permissions, sent to `batches` as they
    /// arrive. Teams must have been applied: their members are listed from what the run saw.
    pub async fn users_and_links(self, batches: Sender<Batch>) -> Result<(), ReconcileError> {
        tokio::try_join!(
            self.pages(
                user_pager(self.api, None, self.page_size),
                Kind::User,
                &batches,
                |items| { items }
            ),
            self.all_members(&batches),
            self.whole_list(Kind::TeamPermission, &batches),
            self.whole_list(Kind::ProjectPermission, &batches),
        )?;
        Ok(())
    }

    /// Each team's members, several teams at a time, walking the teams in the database.
    async fn all_members(self, batches: &Sender<Batch>) -> Result<(), ReconcileError> {
        let mut after = None;
        loop {
            let teams = store::teams_seen_after(self.pool, self.run_id, after, BATCH).await?;
            let Some(&last) = teams.last() else {
                return Ok(());
            };
            after = Some(last);
            futures::stream::iter(teams)
                .map(|team| self.members_of(team, batches))
                .buffer_unordered(self.api.concurrency())
                .try_collect::<()>()
                .await?;
        }
    }

    /// One team's members, paged as users of the team, sent as memberships.
    async fn members_of(self, team: Uuid, batches: &Sender<Batch>) -> Result<(), ReconcileError> {
        let team = team.to_string();
        let pager = user_pager(self.api, Some(&team), self.page_size);
        self.pages(pager, Kind::TeamMember, batches, |users| {
            memberships(&team, users)
        })
        .await
    }

    /// An unpaginated list endpoint, asked without a filter. Its body is parsed as it arrives,
    /// a write's worth of items at a time, on a thread that may block: a project's grants grow
    /// with the project, memory must not.
    async fn whole_list(self, kind: Kind, batches: &Sender<Batch>) -> Result<(), ReconcileError> {
        let path = kind.info().api_path;
        let fetched_at = OffsetDateTime::now_utc();
        let Some(response) = self.api.list_unread(path).await? else {
            return Ok(());
        };
        let body = response.bytes_stream().map_err(std::io::Error::other);
        let body = BufReader::new(SyncIoBridge::new(StreamReader::new(body)));
        let batches = batches.clone();
        let read = tokio::task::spawn_blocking(move || {
            streamed::for_each_chunk(body, OBJECTS_PER_WRITE, |objects| {
                let batch = Batch {
                    kind,
                    objects,
                    fetched_at,
                };
                // false once the writer has stopped: its error ends the run
                batches.blocking_send(batch).is_ok()
            })
        });
        let read = read.await.expect("reading a list does not panic");
        read.map_err(|err| {
            ReconcileError::from(ApiError::Malformed {
                path: path.to_owned(),
                message: err.to_string(),
            })
        })
    }

    /// Every page of `pager`, turned into objects of `kind`.
    async fn pages(
        self,
        mut pager: Pager<'a>,
        kind: Kind,
        batches: &Sender<Batch>,
        to_objects: impl Fn(Vec<Value>) -> Vec<Value>,
    ) -> Result<(), ReconcileError> {
        while let Some(page) = pager.next_page().await? {
            if !send(batches, kind, to_objects(page.items), page.fetched_at).await {
                break;
            }
        }
        Ok(())
    }
}

/// Sends a batch; `false` when the writer has stopped (its error ends the run).
async fn send(
    batches: &Sender<Batch>,
    kind: Kind,
    objects: Vec<Value>,
    fetched_at: OffsetDateTime,
) -> bool {
    let batch = Batch {
        kind,
        objects,
        fetched_at,
    };
    batches.send(batch).await.is_ok()
}

/// `/users`, of one team if given, with anonymous and restricted users: webhooks cover them too.
fn user_pager<'a>(api: &'a StackApi, team_id: Option<&str>, page_size: u32) -> Pager<'a> {
    let mut query = vec![
        ("include_anonymous", "true".to_owned()),
        ("limit", page_size.to_string()),
    ];
    if let Some(team_id) = team_id {
        query.push(("team_id", team_id.to_owned()));
    }
    Pager::new(api, Kind::User.info().api_path, query)
}

fn memberships(team_id: &str, users: Vec<Value>) -> Vec<Value> {
    users
        .iter()
        .map(|user| json!({ "team_id": team_id, "user_id": user["id"] }))
        .collect()
}
