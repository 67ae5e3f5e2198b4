//! Writes to `stack.teams`, and the cascade a team deletion implies.

use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use super::{MessageRecord, Recorded, message_query, record_message};
use crate::events::Team;

/// Inserts or replaces the team from a `team.created` / `team.updated` payload.
pub async fn upsert_team(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    team: &Team,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        upserted as (
            insert into stack.teams (
                id, display_name, profile_image_url, created_at, client_metadata,
                client_read_only_metadata, server_metadata, raw, svix_id
            )
            select $4, $5, $6, $7, $8, $9, $10, $11, event.svix_id
            from event
            on conflict (id) do update set
                display_name = excluded.display_name,
                profile_image_url = excluded.profile_image_url,
                created_at = excluded.created_at,
                client_metadata = excluded.client_metadata,
                client_read_only_metadata = excluded.client_read_only_metadata,
                server_metadata = excluded.server_metadata,
                raw = excluded.raw,
                synced_at = now(),
                svix_id = excluded.svix_id
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(team.id)
        .bind(&team.display_name)
        .bind(&team.profile_image_url)
        .bind(team.created_at_millis)
        .bind(team.client_metadata.as_ref().map(Json))
        .bind(team.client_read_only_metadata.as_ref().map(Json))
        .bind(team.server_metadata.as_ref().map(Json))
        .bind(Json(&team.raw))
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}

/// Removes the team with its memberships and team permissions, which Stack deletes silently
/// (reference section 2.2, point 8). Users who had it selected lose the selection, as in Stack.
pub async fn delete_team(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    team_id: Uuid,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        deleted_team as (
            delete from stack.teams t using event where t.id = $4
        ),
        deleted_memberships as (
            delete from stack.team_members m using event where m.team_id = $4
        ),
        deleted_permissions as (
            delete from stack.team_permissions p using event where p.team_id = $4
        ),
        unselected as (
            update stack.users u
            set selected_team_id = null,
                selected_team = null,
                raw = u.raw || '{\"selected_team_id\": null, \"selected_team\": null}',
                synced_at = now(),
                svix_id = event.svix_id
            from event
            where u.selected_team_id = $4
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(team_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}
