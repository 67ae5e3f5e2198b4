-- Generated from USER_FIELDS in src/model/fields.rs; do not edit. After changing the
-- fields, `STACK_SYNC_BLESS=1 cargo test generated` rewrites this file.
--
-- Writes a user row from its validated columns (p_row, see model::Row) and Stack's
-- object as received (p_raw), unless the row holds exactly that object already, and
-- announces a written row on the feed. Returns 'applied' or 'unchanged'.
create or replace function stack_sync.write_user(
    p_row jsonb, p_raw jsonb, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_written boolean;
begin
    insert into stack.users as t (
        id,
        display_name,
        primary_email,
        primary_email_verified,
        primary_email_auth_enabled,
        profile_image_url,
        signed_up_at,
        client_metadata,
        client_read_only_metadata,
        server_metadata,
        has_password,
        otp_auth_enabled,
        auth_with_email,
        requires_totp_mfa,
        passkey_auth_enabled,
        oauth_providers,
        selected_team_id,
        selected_team,
        last_active_at,
        is_anonymous,
        is_restricted,
        restricted_reason,
        restricted_by_admin,
        restricted_by_admin_reason,
        restricted_by_admin_private_details,
        country_code,
        risk_scores,
        raw, svix_id
    )
    select
        r.id,
        r.display_name,
        r.primary_email,
        r.primary_email_verified,
        r.primary_email_auth_enabled,
        r.profile_image_url,
        r.signed_up_at,
        r.client_metadata,
        r.client_read_only_metadata,
        r.server_metadata,
        r.has_password,
        r.otp_auth_enabled,
        r.auth_with_email,
        r.requires_totp_mfa,
        r.passkey_auth_enabled,
        r.oauth_providers,
        r.selected_team_id,
        r.selected_team,
        r.last_active_at,
        r.is_anonymous,
        r.is_restricted,
        r.restricted_reason,
        r.restricted_by_admin,
        r.restricted_by_admin_reason,
        r.restricted_by_admin_private_details,
        r.country_code,
        r.risk_scores,
        p_raw, p_svix_id
    from jsonb_populate_record(null::stack.users, p_row) as r
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
    where t.raw is distinct from excluded.raw
    returning true into v_written;
    if v_written then
        perform stack_sync.notify(
            jsonb_build_object('table', 'users', 'op', 'upsert', 'id', p_row ->> 'id'),
            p_svix_id
        );
    end if;
    return case when v_written then 'applied' else 'unchanged' end;
end;
$$;
