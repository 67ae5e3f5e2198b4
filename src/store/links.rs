//! Writes to the link tables: team memberships, team permissions and project permissions.
//! None of them requires its user or team to be mirrored yet, since events arrive in any order.

use sqlx::PgExecutor;

use super::{MessageRecord, Recorded, message_query, record_message};
use crate::events::{Membership, ProjectPermission, TeamPermission};

/// Records that the user is a member of the team.
pub async fn add_membership(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    membership: &Membership,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        added as (
            insert into stack.team_members (team_id, user_id, svix_id)
            select $4, $5, event.svix_id from event
            on conflict (team_id, user_id) do update
            set synced_at = now(), svix_id = excluded.svix_id
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(membership.team_id)
        .bind(membership.user_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}

/// Removes the membership and the member's permissions in that team, which Stack removes with
/// it without sending events (reference section 2.2, point 10).
pub async fn remove_membership(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    membership: &Membership,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        removed as (
            delete from stack.team_members m using event
            where m.team_id = $4 and m.user_id = $5
        ),
        removed_permissions as (
            delete from stack.team_permissions p using event
            where p.team_id = $4 and p.user_id = $5
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(membership.team_id)
        .bind(membership.user_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}

/// Records a permission granted directly to a member in a team.
pub async fn grant_team_permission(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    permission: &TeamPermission,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        granted as (
            insert into stack.team_permissions (team_id, user_id, permission_id, svix_id)
            select $4, $5, $6, event.svix_id from event
            on conflict (team_id, user_id, permission_id) do update
            set synced_at = now(), svix_id = excluded.svix_id
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(permission.team_id)
        .bind(permission.user_id)
        .bind(&permission.permission_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}

/// Removes a team permission.
pub async fn revoke_team_permission(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    permission: &TeamPermission,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        revoked as (
            delete from stack.team_permissions p using event
            where p.team_id = $4 and p.user_id = $5 and p.permission_id = $6
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(permission.team_id)
        .bind(permission.user_id)
        .bind(&permission.permission_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}

/// Records a project-wide permission granted directly to a user.
pub async fn grant_project_permission(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    permission: &ProjectPermission,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        granted as (
            insert into stack.project_permissions (user_id, permission_id, svix_id)
            select $4, $5, event.svix_id from event
            on conflict (user_id, permission_id) do update
            set synced_at = now(), svix_id = excluded.svix_id
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(permission.user_id)
        .bind(&permission.permission_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}

/// Removes a project permission.
pub async fn revoke_project_permission(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    permission: &ProjectPermission,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        revoked as (
            delete from stack.project_permissions p using event
            where p.user_id = $4 and p.permission_id = $5
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(permission.user_id)
        .bind(&permission.permission_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}
