//! The deletion half of a run: rows of the mirror that the run did not see in Stack are asked
//! for one by one, deleted only on Stack's "not found", and never more than the allowed share.

use time::OffsetDateTime;

use super::{BATCH, Entity, ReconcileError, Run};
use crate::stack_api::ApiError;
use crate::store::reconcile as store;

/// Up to this many rows of a kind may always be deleted, whatever `max_delete_share` says, so
/// that small projects are not stopped by a single deletion.
const ALWAYS_ALLOWED_DELETIONS: u64 = 10;

impl Run<'_> {
    /// Deletes the rows of `entity` that Stack no longer has, confirmed one by one.
    pub(super) async fn sweep(&mut self, entity: Entity) -> Result<(), ReconcileError> {
        let rows = store::row_count(self.pool, entity).await?;
        let share = self.settings.max_delete_share;
        let allowed = ((rows as f64 * share).floor() as u64).max(ALWAYS_ALLOWED_DELETIONS);
        let gone = self.confirmed_gone(entity, allowed, rows).await?;
        for (key, confirmed_at) in gone {
            if self.dry_run {
                self.summary.counts_mut(entity).deleted += 1;
                continue;
            }
            let data = entity.data_of(&key);
            let outcome =
                store::delete_confirmed(self.pool, self.run_id, entity, &data, confirmed_at)
                    .await?;
            let counts = self.summary.counts_mut(entity);
            match outcome.as_str() {
                "applied" => counts.deleted += 1,
                "stale" => counts.stale += 1,
                _ => counts.unchanged += 1,
            }
        }
        Ok(())
    }

    /// Candidates Stack answers "not found" for, with when it said so; stops past `allowed`.
    async fn confirmed_gone(
        &self,
        entity: Entity,
        allowed: u64,
        rows: i64,
    ) -> Result<Vec<(String, OffsetDateTime)>, ReconcileError> {
        let mut gone = Vec::new();
        let mut after = String::new();
        loop {
            let candidates = store::deletion_candidates(
                self.pool,
                self.run_id,
                entity,
                self.started_at,
                &after,
                BATCH,
            )
            .await?;
            let Some(last) = candidates.last() else {
                return Ok(gone);
            };
            after = last.clone();
            for key in candidates {
                let checked_at = OffsetDateTime::now_utc();
                if !self.gone_from_stack(entity, &key).await? {
                    continue; // still in Stack: the listing missed it, the next run will see it
                }
                gone.push((key, checked_at));
                if gone.len() as u64 > allowed {
                    let share = self.settings.max_delete_share;
                    return Err(ReconcileError::TooManyDeletions {
                        entity: entity.name(),
                        allowed,
                        rows,
                        share,
                    });
                }
            }
        }
    }

    /// Asks Stack for the one object: a 404 (or an empty filtered list) confirms it is gone.
    async fn gone_from_stack(&self, entity: Entity, key: &str) -> Result<bool, ApiError> {
        let data = entity.data_of(key);
        let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
        let (team, user, id) = (field("team_id"), field("user_id"), field("id"));
        let found = match entity {
            Entity::User => self.api.get(&format!("/users/{id}"), &[]).await?.is_some(),
            Entity::Team => self.api.get(&format!("/teams/{id}"), &[]).await?.is_some(),
            Entity::Membership => {
                let path = format!("/team-member-profiles/{team}/{user}");
                self.api.get(&path, &[]).await?.is_some()
            }
            Entity::TeamPermission => {
                let query = [
                    ("team_id", team.as_str()),
                    ("user_id", &user),
                    ("permission_id", &id),
                ];
                self.api
                    .list("/team-permissions", &query)
                    .await?
                    .is_some_and(|l| !l.items.is_empty())
            }
            Entity::ProjectPermission => {
                let query = [("user_id", user.as_str()), ("permission_id", &id)];
                self.api
                    .list("/project-permissions", &query)
                    .await?
                    .is_some_and(|l| !l.items.is_empty())
            }
        };
        Ok(!found)
    }
}
