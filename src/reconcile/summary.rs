//! What a reconcile run changed, per entity, as printed, logged and stored.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::model::{Kind, Outcome};

/// Invalid objects listed in a summary at most; the count goes on past it.
const LISTED_INVALID: usize = 100;

/// The name of a kind's row in summaries: its table's, as on the change feed.
pub fn entity_name(kind: Kind) -> &'static str {
    kind.info().table
}

/// Row counts for one entity.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    /// Left alone because a webhook newer than the fetched state got there first.
    pub stale: u64,
    /// Objects Stack sent that fail validation; left out of the run.
    pub invalid: u64,
}

impl Counts {
    /// Counts what applying a fetched row did; `existed` tells a creation from an update.
    pub fn add(&mut self, outcome: Outcome, existed: bool) {
        match outcome {
            Outcome::Applied if existed => self.updated += 1,
            Outcome::Applied => self.created += 1,
            Outcome::Stale => self.stale += 1,
            // Reconcile records no messages, so nothing else comes back; count it as a no-op.
            Outcome::Unchanged | Outcome::Duplicate | Outcome::Ignored | Outcome::Failed => {
                self.unchanged += 1
            }
        }
    }
}

/// An object Stack sent that fails validation.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidItem {
    pub entity: &'static str,
    /// Its `id` as sent (for memberships, the member's), or `?` when there is none.
    pub id: String,
    pub error: String,
}

/// The outcome of a run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub users: Counts,
    pub teams: Counts,
    /// `memberships` in the summaries of earlier builds: runs stored by them keep that name, and
    /// so does the metrics' `entity` label until the first run of this build.
    pub team_members: Counts,
    pub team_permissions: Counts,
    pub project_permissions: Counts,
    /// The first invalid objects, with why; `Counts::invalid` has how many there were.
    pub invalid: Vec<InvalidItem>,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
}

impl Summary {
    pub fn counts_mut(&mut self, kind: Kind) -> &mut Counts {
        match kind {
            Kind::User => &mut self.users,
            Kind::Team => &mut self.teams,
            Kind::TeamMember => &mut self.team_members,
            Kind::TeamPermission => &mut self.team_permissions,
            Kind::ProjectPermission => &mut self.project_permissions,
        }
    }

    pub fn counts(&self, kind: Kind) -> Counts {
        match kind {
            Kind::User => self.users,
            Kind::Team => self.teams,
            Kind::TeamMember => self.team_members,
            Kind::TeamPermission => self.team_permissions,
            Kind::ProjectPermission => self.project_permissions,
        }
    }

    /// Counts an object of `kind` that failed validation, logs it, and lists the first ones.
    pub fn add_invalid(&mut self, kind: Kind, id: Option<&str>, error: &str) {
        let id = id.unwrap_or("?").to_owned();
        let entity = entity_name(kind);
        tracing::warn!(
            reconcile.entity = entity,
            id,
            error,
            "invalid object left out"
        );
        self.counts_mut(kind).invalid += 1;
        if self.invalid.len() < LISTED_INVALID {
            self.invalid.push(InvalidItem {
                entity,
                id,
                error: error.to_owned(),
            });
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
        for kind in Kind::ALL {
            let c = self.counts(kind);
            writeln!(
                f,
                "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9}",
                entity_name(kind),
                c.created,
                c.updated,
                c.deleted,
                c.unchanged,
                c.stale
            )?;
        }
        let invalid: u64 = Kind::ALL
            .iter()
            .map(|&kind| self.counts(kind).invalid)
            .sum();
        if invalid > 0 {
            writeln!(f, "{invalid} invalid objects left out (fix them in Stack):")?;
            for item in &self.invalid {
                writeln!(f, "  {} {}: {}", item.entity, item.id, item.error)?;
            }
        }
        Ok(())
    }
}
