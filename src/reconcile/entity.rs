//! The five kinds of mirrored rows, and how each is keyed, stored and confirmed gone.

use serde_json::{Value, json};

/// A kind of mirrored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Team,
    Membership,
    TeamPermission,
    ProjectPermission,
}

impl Entity {
    pub const ALL: [Entity; 5] = [
        Entity::Team,
        Entity::User,
        Entity::Membership,
        Entity::TeamPermission,
        Entity::ProjectPermission,
    ];

    /// The name in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "users",
            Self::Team => "teams",
            Self::Membership => "memberships",
            Self::TeamPermission => "team_permissions",
            Self::ProjectPermission => "project_permissions",
        }
    }

    /// The kind in `stack_sync.versions` and `stack_sync.reconcile_seen`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Team => "team",
            Self::Membership => "team_member",
            Self::TeamPermission => "team_permission",
            Self::ProjectPermission => "project_permission",
        }
    }

    /// The mirror table.
    pub fn table(self) -> &'static str {
        match self {
            Self::User => "stack.users",
            Self::Team => "stack.teams",
            Self::Membership => "stack.team_members",
            Self::TeamPermission => "stack.team_permissions",
            Self::ProjectPermission => "stack.project_permissions",
        }
    }

    /// SQL computing a row's key from the mirror table's columns, as in `stack_sync.versions`.
    pub fn key_sql(self) -> &'static str {
        match self {
            Self::User | Self::Team => "id::text",
            Self::Membership => "team_id || '/' || user_id",
            Self::TeamPermission => "team_id || '/' || user_id || '/' || permission_id",
            Self::ProjectPermission => "user_id || '/' || permission_id",
        }
    }

    /// The webhook type whose payload has the shape of a fetched object.
    pub fn upsert_event(self) -> &'static str {
        match self {
            Self::User => "user.updated",
            Self::Team => "team.updated",
            Self::Membership => "team_membership.created",
            Self::TeamPermission => "team_permission.created",
            Self::ProjectPermission => "project_permission.created",
        }
    }

    /// The webhook type that removes a row.
    pub fn delete_event(self) -> &'static str {
        match self {
            Self::User => "user.deleted",
            Self::Team => "team.deleted",
            Self::Membership => "team_membership.deleted",
            Self::TeamPermission => "team_permission.deleted",
            Self::ProjectPermission => "project_permission.deleted",
        }
    }

    /// The key of a fetched object (or webhook `data`) of this kind.
    pub fn key_of(self, data: &Value) -> String {
        let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
        match self {
            Self::User | Self::Team => field("id"),
            Self::Membership => format!("{}/{}", field("team_id"), field("user_id")),
            Self::TeamPermission => {
                format!("{}/{}/{}", field("team_id"), field("user_id"), field("id"))
            }
            Self::ProjectPermission => format!("{}/{}", field("user_id"), field("id")),
        }
    }

    /// The webhook `data` naming the row with this key. Uuids have a fixed length of 36, so
    /// a permission id may contain anything.
    pub fn data_of(self, key: &str) -> Value {
        let (first, rest) = key.split_at(key.len().min(36));
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        match self {
            Self::User | Self::Team => json!({ "id": key }),
            Self::Membership => json!({ "team_id": first, "user_id": rest }),
            Self::TeamPermission => {
                let (user, permission) = rest.split_at(rest.len().min(36));
                let permission = permission.strip_prefix('/').unwrap_or(permission);
                json!({ "team_id": first, "user_id": user, "id": permission })
            }
            Self::ProjectPermission => json!({ "user_id": first, "id": rest }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_data_round_trip_even_with_slashes_in_permission_ids() {
        let team = "ad962777-8244-496a-b6a2-e0c6a449c79e";
        let user = "3241a285-8329-4d69-8f3d-316e08cf140c";
        let cases = [
            (Entity::User, json!({ "id": user })),
            (
                Entity::Membership,
                json!({ "team_id": team, "user_id": user }),
            ),
            (
                Entity::TeamPermission,
                json!({ "team_id": team, "user_id": user, "id": "a/b:c" }),
            ),
            (
                Entity::ProjectPermission,
                json!({ "user_id": user, "id": "$read/x" }),
            ),
        ];
        for (entity, data) in cases {
            assert_eq!(entity.data_of(&entity.key_of(&data)), data, "{entity:?}");
        }
    }
}
