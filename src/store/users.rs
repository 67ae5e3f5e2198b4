//! Writes to `stack.users`, and the cascade a user deletion implies.

use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use super::{MessageRecord, Recorded, message_query, record_message};
use crate::events::User;

/// Inserts or replaces the user from a `user.created` / `user.updated` payload.
pub async fn upsert_user(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    user: &User,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        upserted as (
            insert into stack.users (
                id, display_name, primary_email, primary_email_verified,
                primary_email_auth_enabled, profile_image_url, signed_up_at,
                client_metadata, client_read_only_metadata, server_metadata,
                has_password, otp_auth_enabled, auth_with_email, requires_totp_mfa,
                passkey_auth_enabled, oauth_providers, selected_team_id, selected_team,
                last_active_at, is_anonymous, is_restricted, restricted_reason,
                restricted_by_admin, restricted_by_admin_reason,
                restricted_by_admin_private_details, country_code, risk_scores, raw, svix_id
            )
            select $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                   $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, event.svix_id
            from event
            on conflict (id) do update set
                display_name = excluded.display_name,
                primary_email = excluded.primary_email,
                primary_email_verified = excluded.primary_email_verified,
                primary_email_auth_enabled = excluded.primary_email_auth_enabled,
                profile_image_url = excluded.profile_image_url,
                signed_up_at = excluded.signed_up_at,
                client_metadata = excluded.client_metadata,
                client_read_only_metadata = excluded.client_read_only_metadata,
                server_metadata = excluded.server_metadata,
                has_password = excluded.has_password,
                otp_auth_enabled = excluded.otp_auth_enabled,
                auth_with_email = excluded.auth_with_email,
                requires_totp_mfa = excluded.requires_totp_mfa,
                passkey_auth_enabled = excluded.passkey_auth_enabled,
                oauth_providers = excluded.oauth_providers,
                selected_team_id = excluded.selected_team_id,
                selected_team = excluded.selected_team,
                last_active_at = excluded.last_active_at,
                is_anonymous = excluded.is_anonymous,
                is_restricted = excluded.is_restricted,
                restricted_reason = excluded.restricted_reason,
                restricted_by_admin = excluded.restricted_by_admin,
                restricted_by_admin_reason = excluded.restricted_by_admin_reason,
                restricted_by_admin_private_details = excluded.restricted_by_admin_private_details,
                country_code = excluded.country_code,
                risk_scores = excluded.risk_scores,
                raw = excluded.raw,
                synced_at = now(),
                svix_id = excluded.svix_id
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(user.id)
        .bind(&user.display_name)
        .bind(&user.primary_email)
        .bind(user.primary_email_verified)
        .bind(user.primary_email_auth_enabled)
        .bind(&user.profile_image_url)
        .bind(user.signed_up_at_millis)
        .bind(user.client_metadata.as_ref().map(Json))
        .bind(user.client_read_only_metadata.as_ref().map(Json))
        .bind(user.server_metadata.as_ref().map(Json))
        .bind(user.has_password)
        .bind(user.otp_auth_enabled)
        .bind(user.auth_with_email)
        .bind(user.requires_totp_mfa)
        .bind(user.passkey_auth_enabled)
        .bind(user.oauth_providers.as_ref().map(Json))
        .bind(user.selected_team_id)
        .bind(user.selected_team.as_ref().map(Json))
        .bind(user.last_active_at_millis)
        .bind(user.is_anonymous)
        .bind(user.is_restricted)
        .bind(user.restricted_reason.as_ref().map(Json))
        .bind(user.restricted_by_admin)
        .bind(&user.restricted_by_admin_reason)
        .bind(&user.restricted_by_admin_private_details)
        .bind(&user.country_code)
        .bind(user.risk_scores.as_ref().map(Json))
        .bind(Json(&user.raw))
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}

/// Removes the user with every membership and permission of theirs: Stack deletes those with the
/// user without sending events for the permissions (reference section 2.2, point 9).
pub async fn delete_user(
    db: impl PgExecutor<'_>,
    message: &MessageRecord<'_>,
    user_id: Uuid,
) -> Result<Recorded, sqlx::Error> {
    const SQL: &str = concat!(
        record_message!(),
        ",
        deleted_user as (
            delete from stack.users u using event where u.id = $4
        ),
        deleted_memberships as (
            delete from stack.team_members m using event where m.user_id = $4
        ),
        deleted_team_permissions as (
            delete from stack.team_permissions p using event where p.user_id = $4
        ),
        deleted_project_permissions as (
            delete from stack.project_permissions p using event where p.user_id = $4
        )
        select svix_id from event"
    );
    let returned = message_query(SQL, message)
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    Ok(returned.into())
}
