//! What a Stack object asks of the mirror, validated. Webhooks and reconcile both build their
//! changes here, so an object is checked the same way whichever path brings it.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::fields::{FieldError, Row, TEAM_FIELDS, USER_FIELDS};
use super::key::{Key, Kind};

/// A validated change to one mirrored row.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A user or team, created or updated, with its row; `data` is Stack's object as
    /// received, kept whole as `raw` with any fields this version does not know.
    Upsert { key: Key, row: Row, data: Value },
    /// A membership or permission granted.
    Grant(Key),
    /// A row removed: a user or team deleted, a membership or permission taken away.
    Remove(Key),
}

/// An object that does not have the shape Stack documents for its kind.
pub type InvalidObject = FieldError;

impl Change {
    /// Validates `data`, Stack's object for a row of `kind` (a webhook's `data` or an item of
    /// an API listing), as a change that keeps (`removed == false`) or removes that row.
    /// Takes `data` by value: an upsert keeps it whole as `raw`, without copying it.
    pub fn parse(kind: Kind, removed: bool, data: Value) -> Result<Self, InvalidObject> {
        if removed {
            return Ok(Self::Remove(key_of(kind, &data)?));
        }
        let fields = match kind {
            Kind::User => USER_FIELDS,
            Kind::Team => TEAM_FIELDS,
            _ => return Ok(Self::Grant(key_of(kind, &data)?)),
        };
        let row = Row::validate(fields, &data)?;
        let key = match kind {
            Kind::User => Key::User(row.id),
            _ => Key::Team(row.id),
        };
        Ok(Self::Upsert { key, row, data })
    }

    pub fn key(&self) -> &Key {
        match self {
            Self::Upsert { key, .. } | Self::Grant(key) | Self::Remove(key) => key,
        }
    }
}

/// The ids naming a row of `kind` in Stack's object: `id` for users and teams, and for links
/// `team_id`, `user_id` and the permission's `id`.
fn key_of(kind: Kind, data: &Value) -> Result<Key, InvalidObject> {
    Ok(match kind {
        Kind::User => Key::User(typed::<Id>(data)?.id),
        Kind::Team => Key::Team(typed::<Id>(data)?.id),
        Kind::TeamMember => {
            let link: Membership = typed(data)?;
            Key::TeamMember {
                team_id: link.team_id,
                user_id: link.user_id,
            }
        }
        Kind::TeamPermission => {
            let link: TeamPermission = typed(data)?;
            Key::TeamPermission {
                team_id: link.team_id,
                user_id: link.user_id,
                permission_id: link.id,
            }
        }
        Kind::ProjectPermission => {
            let link: ProjectPermission = typed(data)?;
            Key::ProjectPermission {
                user_id: link.user_id,
                permission_id: link.id,
            }
        }
    })
}

#[derive(Deserialize)]
struct Id {
    id: Uuid,
}

#[derive(Deserialize)]
struct Membership {
    team_id: Uuid,
    user_id: Uuid,
}

#[derive(Deserialize)]
struct TeamPermission {
    id: String,
    team_id: Uuid,
    user_id: Uuid,
}

#[derive(Deserialize)]
struct ProjectPermission {
    id: String,
    user_id: Uuid,
}

/// Deserializes `data` into `T`, naming the offending field on error (`user_id: ...`).
fn typed<'a, T: Deserialize<'a>>(data: &'a Value) -> Result<T, InvalidObject> {
    serde_path_to_error::deserialize(data).map_err(|err| FieldError {
        field: err.path().to_string(),
        message: err.into_inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TEAM_ID: &str = "ad962777-8244-496a-b6a2-e0c6a449c79e";
    const USER_ID: &str = "3241a285-8329-4d69-8f3d-316e08cf140c";

    #[test]
    fn links_are_keyed_by_their_ids_and_extra_fields_are_not_read() {
        let data = json!({ "id": "team_admin", "team_id": TEAM_ID, "user_id": USER_ID,
                           "project_id": "not read" });
        let change = Change::parse(Kind::TeamPermission, false, data).unwrap();
        assert_eq!(
            change.key().to_string(),
            format!("{TEAM_ID}/{USER_ID}/team_admin")
        );
        assert!(matches!(change, Change::Grant(_)));
    }

    #[test]
    fn a_deletion_needs_only_the_id() {
        let change = Change::parse(Kind::User, true, json!({ "id": USER_ID, "teams": [] }));
        assert_eq!(
            change.unwrap(),
            Change::Remove(Key::User(USER_ID.parse().unwrap()))
        );
    }

    #[test]
    fn a_malformed_link_names_its_field() {
        let data = json!({ "team_id": TEAM_ID, "user_id": "nope" });
        let err = Change::parse(Kind::TeamMember, false, data).unwrap_err();
        assert_eq!(err.field, "user_id");
    }
}
