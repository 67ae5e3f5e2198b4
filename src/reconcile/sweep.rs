//! The deletion half of a run: rows of the mirror that the run did not see in Stack are asked
//! for one by one, deleted only on Stack's "not found", and never more than the allowed share.

use time::OffsetDateTime;

use super::summary::entity_name;
use super::{BATCH, ReconcileError, Run};
use crate::model::{Key, Kind, Outcome};
use crate::stack_api::ApiError;
use crate::store::reconcile as store;

/// Up to this many rows of a kind may always be deleted, whatever `max_delete_share` says, so
/// that small projects are not stopped by a single deletion.
const ALWAYS_ALLOWED_DELETIONS: u64 = 10;

impl Run<'_> {
    /// Deletes the rows of `kind` that Stack no longer has, confirmed one by one.
    pub(super) async fn sweep(&mut self, kind: Kind) -> Result<(), ReconcileError> {
        let rows = store::row_count(self.pool, kind).await?;
        let share = self.settings.max_delete_share;
        let allowed = ((rows as f64 * share).floor() as u64).max(ALWAYS_ALLOWED_DELETIONS);
        let gone = self.confirmed_gone(kind, allowed, rows).await?;
        for (key, confirmed_at) in gone {
            if self.dry_run {
                self.summary.counts_mut(kind).deleted += 1;
                continue;
            }
            let outcome = store::delete_confirmed(self.pool, self.run, &key, confirmed_at).await?;
            let counts = self.summary.counts_mut(kind);
            match outcome {
                Outcome::Applied => counts.deleted += 1,
                Outcome::Stale => counts.stale += 1,
                _ => counts.unchanged += 1,
            }
        }
        Ok(())
    }

    /// Candidates Stack answers "not found" for, with when it said so; stops past `allowed`.
    async fn confirmed_gone(
        &self,
        kind: Kind,
        allowed: u64,
        rows: i64,
    ) -> Result<Vec<(Key, OffsetDateTime)>, ReconcileError> {
        let mut gone = Vec::new();
        let mut after = String::new();
        loop {
            let candidates = store::deletion_candidates(
                self.pool,
                self.run.id,
                kind,
                self.started_at,
                &after,
                BATCH,
            )
            .await?;
            let Some((last, _)) = candidates.last() else {
                return Ok(gone);
            };
            after = last.clone();
            for (_, key) in candidates {
                let checked_at = OffsetDateTime::now_utc();
                if !self.gone_from_stack(&key).await? {
                    continue; // still in Stack: the listing missed it, the next run will see it
                }
                gone.push((key, checked_at));
                if gone.len() as u64 > allowed {
                    let share = self.settings.max_delete_share;
                    return Err(ReconcileError::TooManyDeletions {
                        entity: entity_name(kind),
                        allowed,
                        rows,
                        share,
                    });
                }
            }
        }
    }

    /// Asks Stack for the one object: a 404 (or an empty filtered list) confirms it is gone.
    async fn gone_from_stack(&self, key: &Key) -> Result<bool, ApiError> {
        let found = match key {
            Key::User(id) | Key::Team(id) => {
                let path = format!("{}/{id}", key.kind().info().api_path);
                self.api.get(&path, &[]).await?.is_some()
            }
            Key::TeamMember { team_id, user_id } => {
                let path = format!("{}/{team_id}/{user_id}", key.kind().info().api_path);
                self.api.get(&path, &[]).await?.is_some()
            }
            Key::TeamPermission {
                team_id,
                user_id,
                permission_id,
            } => {
                let (team, user) = (team_id.to_string(), user_id.to_string());
                let query = [
                    ("team_id", team.as_str()),
                    ("user_id", &user),
                    ("permission_id", permission_id),
                ];
                self.listed(key.kind().info().api_path, &query).await?
            }
            Key::ProjectPermission {
                user_id,
                permission_id,
            } => {
                let user = user_id.to_string();
                let query = [("user_id", user.as_str()), ("permission_id", permission_id)];
                self.listed(key.kind().info().api_path, &query).await?
            }
        };
        Ok(!found)
    }

    /// Whether a filtered listing finds anything.
    async fn listed(&self, path: &str, query: &[(&str, &str)]) -> Result<bool, ApiError> {
        let list = self.api.list(path, query).await?;
        Ok(list.is_some_and(|list| !list.items.is_empty()))
    }
}
