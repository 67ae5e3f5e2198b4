//! What identifies a mirrored row: its kind and its ids, typed on both sides of the SQL boundary.

use std::fmt;

use uuid::Uuid;

/// A kind of mirrored row: Postgres's `stack_sync.kind`. Its name is also the text `kind` in
/// `stack_sync.versions` and `stack_sync.reconcile_seen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "stack_sync.kind", rename_all = "snake_case")]
pub enum Kind {
    User,
    Team,
    TeamMember,
    TeamPermission,
    ProjectPermission,
}

impl Kind {
    /// Every kind, in the order reconcile fetches them: links after the users and teams they
    /// join.
    pub const ALL: [Kind; 5] = [
        Kind::Team,
        Kind::User,
        Kind::TeamMember,
        Kind::TeamPermission,
        Kind::ProjectPermission,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Team => "team",
            Self::TeamMember => "team_member",
            Self::TeamPermission => "team_permission",
            Self::ProjectPermission => "project_permission",
        }
    }
}

/// What identifies one mirrored row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    User(Uuid),
    Team(Uuid),
    TeamMember {
        team_id: Uuid,
        user_id: Uuid,
    },
    TeamPermission {
        team_id: Uuid,
        user_id: Uuid,
        permission_id: String,
    },
    ProjectPermission {
        user_id: Uuid,
        permission_id: String,
    },
}

impl Key {
    pub fn kind(&self) -> Kind {
        match self {
            Self::User(_) => Kind::User,
            Self::Team(_) => Kind::Team,
            Self::TeamMember { .. } => Kind::TeamMember,
            Self::TeamPermission { .. } => Kind::TeamPermission,
            Self::ProjectPermission { .. } => Kind::ProjectPermission,
        }
    }

    /// The user the row belongs to, if any.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User(id) => Some(*id),
            Self::Team(_) => None,
            Self::TeamMember { user_id, .. }
            | Self::TeamPermission { user_id, .. }
            | Self::ProjectPermission { user_id, .. } => Some(*user_id),
        }
    }

    /// The team the row belongs to, if any.
    pub fn team_id(&self) -> Option<Uuid> {
        match self {
            Self::Team(id) => Some(*id),
            Self::TeamMember { team_id, .. } | Self::TeamPermission { team_id, .. } => {
                Some(*team_id)
            }
            Self::User(_) | Self::ProjectPermission { .. } => None,
        }
    }

    pub fn permission_id(&self) -> Option<&str> {
        match self {
            Self::TeamPermission { permission_id, .. }
            | Self::ProjectPermission { permission_id, .. } => Some(permission_id),
            _ => None,
        }
    }

    /// Rebuilds a key from its parts, as the mirror tables store them; `None` when a part the
    /// kind needs is missing.
    pub fn from_parts(
        kind: Kind,
        user_id: Option<Uuid>,
        team_id: Option<Uuid>,
        permission_id: Option<String>,
    ) -> Option<Self> {
        Some(match kind {
            Kind::User => Self::User(user_id?),
            Kind::Team => Self::Team(team_id?),
            Kind::TeamMember => Self::TeamMember {
                team_id: team_id?,
                user_id: user_id?,
            },
            Kind::TeamPermission => Self::TeamPermission {
                team_id: team_id?,
                user_id: user_id?,
                permission_id: permission_id?,
            },
            Kind::ProjectPermission => Self::ProjectPermission {
                user_id: user_id?,
                permission_id: permission_id?,
            },
        })
    }
}

/// The text form kept in `stack_sync.versions.key`, the same as SQL's `stack_sync.key_of`:
/// the ids joined with `/`, team before user before permission.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) | Self::Team(id) => write!(f, "{id}"),
            Self::TeamMember { team_id, user_id } => write!(f, "{team_id}/{user_id}"),
            Self::TeamPermission {
                team_id,
                user_id,
                permission_id,
            } => write!(f, "{team_id}/{user_id}/{permission_id}"),
            Self::ProjectPermission {
                user_id,
                permission_id,
            } => write!(f, "{user_id}/{permission_id}"),
        }
    }
}
