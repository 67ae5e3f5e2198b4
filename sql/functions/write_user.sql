-- Generated from USER_FIELDS in src/model/fields.rs; do not edit. After changing the
-- fields, `BLESS=1 cargo test generated` rewrites this file.
--
-- Writes a user row from its validated columns (p_row, see model::Row) and Stack's
-- object as received (p_raw), unless the row holds exactly that object already, and
-- announces a written row on the feed. Returns 'applied' or 'unchanged'.
--
-- An update, then an insert if there is no row: the caller holds the user's lock
-- (stack_sync.lock_ids), so no other writer can insert it in between. An upsert would
-- do the same work but lock the existing row first, which costs a WAL record of its own.
-- When neither writes, the row holds this object already.
create or replace function stack_sync.write_user(
    p_row jsonb, p_raw jsonb, p_svix_id text
) returns text
language plpgsql as $$
begin
    update stack.users as t set
        display_name = r.display_name,
        primary_email = r.primary_email,
        primary_email_verified = r.primary_email_verified,
        primary_email_auth_enabled = r.primary_email_auth_enabled,
        profile_image_url = r.profile_image_url,
        signed_up_at = r.signed_up_at,
        client_metadata = r.client_metadata,
        client_read_only_metadata = r.client_read_only_metadata,
        server_metadata = r.server_metadata,
        has_password = r.has_password,
        otp_auth_enabled = r.otp_auth_enabled,
        auth_with_email = r.auth_with_email,
        requires_totp_mfa = r.requires_totp_mfa,
        passkey_auth_enabled = r.passkey_auth_enabled,
        oauth_providers = r.oauth_providers,
        external_auth_providers = r.external_auth_providers,
        selected_team_id = r.selected_team_id,
        selected_team = r.selected_team,
        last_active_at = r.last_active_at,
        is_anonymous = r.is_anonymous,
        is_restricted = r.is_restricted,
        restricted_reason = r.restricted_reason,
        restricted_by_admin = r.restricted_by_admin,
        restricted_by_admin_reason = r.restricted_by_admin_reason,
        restricted_by_admin_private_details = r.restricted_by_admin_private_details,
        country_code = r.country_code,
        risk_scores = r.risk_scores,
        raw = p_raw,
        synced_at = now(),
        svix_id = p_svix_id
    from jsonb_populate_record(null::stack.users, p_row) as r
    where t.id = r.id and t.raw is distinct from p_raw;
    if not found then
        insert into stack.users (
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
            external_auth_providers,
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
            r.external_auth_providers,
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
        where not exists (select from stack.users where id = r.id);
        if not found then
            return 'unchanged';
        end if;
    end if;
    perform stack_sync.notify(
        jsonb_build_object('table', 'users', 'op', 'upsert', 'id', p_row ->> 'id'),
        p_svix_id
    );
    return 'applied';
end;
$$;
