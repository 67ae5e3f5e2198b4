//! What a reconcile run changed, per entity, as printed, logged and stored.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::Entity;

/// Row counts for one entity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    /// Left alone because a webhook newer than the fetched state got there first.
    pub stale: u64,
}

impl Counts {
    /// Adds the counts `stack_sync.reconcile_apply` returns.
    pub fn add_applied(&mut self, counts: &Value) {
        let count = |name: &str| counts[name].as_u64().unwrap_or(0);
        self.created += count("created");
        self.updated += count("updated");
        self.unchanged += count("unchanged");
        self.stale += count("stale");
    }
}

/// The outcome of a run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub users: Counts,
    pub teams: Counts,
    pub memberships: Counts,
    pub team_permissions: Counts,
    pub project_permissions: Counts,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
}

impl Summary {
    pub fn counts_mut(&mut self, entity: Entity) -> &mut Counts {
        match entity {
            Entity::User => &mut self.users,
            Entity::Team => &mut self.teams,
            Entity::Membership => &mut self.memberships,
            Entity::TeamPermission => &mut self.team_permissions,
            Entity::ProjectPermission => &mut self.project_permissions,
        }
    }

    pub fn counts(&self, entity: Entity) -> Counts {
        match entity {
            Entity::User => self.users,
            Entity::Team => self.teams,
            Entity::Membership => self.memberships,
            Entity::TeamPermission => self.team_permissions,
            Entity::ProjectPermission => self.project_permissions,
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        };
        writeln!(
            f,
            "reconcile took {:.1} s{mode}",
            self.duration.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "created", "updated", "deleted", "unchanged", "stale"
        )?;
        for entity in Entity::ALL {
            let c = self.counts(entity);
            writeln!(
                f,
                "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9}",
                entity.name(),
                c.created,
                c.updated,
                c.deleted,
                c.unchanged,
                c.stale
            )?;
        }
        Ok(())
    }
}
