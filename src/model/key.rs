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

/// What a kind of row is, wherever it is named. The per-kind SQL (`key_of`, `mirrored`,
/// `insert_link`, `delete_link`, `notify_link`) is rendered from it by `store::generated`, and
/// the Rust that names kinds reads it, so that a kind is described once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// Its table in schema `stack`: also its name on the change feed, in reconcile summaries
    /// and in the metrics' `entity` label.
    pub table: &'static str,
    /// The ids that name one row, in the order of its text key (team before user before
    /// permission): each a field of `stack_sync.change` and the column of `table` holding it.
    pub key: &'static [KeyPart],
    /// Its objects in Stack's server REST API: listed there (users, teams, permissions), and
    /// one asked for by its ids below it (users, teams, members' profiles) to confirm it gone.
    pub api_path: &'static str,
}

/// One id of a row's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPart {
    /// The field of `stack_sync.change` (and `model::Key`) that carries it.
    pub field: &'static str,
    /// Its column in the kind's table.
    pub column: &'static str,
}

const fn same(name: &'static str) -> KeyPart {
    KeyPart {
        field: name,
        column: name,
    }
}

const TEAM_ID: KeyPart = same("team_id");
const USER_ID: KeyPart = same("user_id");
const PERMISSION_ID: KeyPart = same("permission_id");

impl Kind {
    pub const fn info(self) -> KindInfo {
        match self {
            Self::User => KindInfo {
                table: "users",
                key: &[KeyPart {
                    field: "user_id",
                    column: "id",
                }],
                api_path: "/users",
            },
            Self::Team => KindInfo {
                table: "teams",
                key: &[KeyPart {
                    field: "team_id",
                    column: "id",
                }],
                api_path: "/teams",
            },
            Self::TeamMember => KindInfo {
                table: "team_members",
                key: &[TEAM_ID, USER_ID],
                // Listed as the users of each team (`/users?team_id=`), which pages.
                api_path: "/team-member-profiles",
            },
            Self::TeamPermission => KindInfo {
                table: "team_permissions",
                key: &[TEAM_ID, USER_ID, PERMISSION_ID],
                api_path: "/team-permissions",
            },
            Self::ProjectPermission => KindInfo {
                table: "project_permissions",
                key: &[USER_ID, PERMISSION_ID],
                api_path: "/project-permissions",
            },
        }
    }

    /// Whether rows of this kind are links (memberships and permissions), kept by their key
    /// alone, rather than objects with columns of their own.
    pub const fn is_link(self) -> bool {
        !matches!(self, Self::User | Self::Team)
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
