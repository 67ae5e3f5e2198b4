-- The writes of one user.updated webhook, done by Postgres alone as one statement per
-- transaction: record the message and upsert the user row into the real stack.users table,
-- extracting every column from the payload as stack_sync.write_user does. The baseline for
-- benches/throughput.rs; what it leaves out is the convergence bookkeeping (locks, versions).
-- Variables come from bench/pgbench.sh.
\set n random(1, 1000000000)
\set u random(1, :user_count)
with data as (
select jsonb_set(jsonb_set((:payload)::jsonb -> 'data', '{id}', to_jsonb(md5(:u::text)::uuid)),
                 '{display_name}', to_jsonb('user ' || :n)) as data
),
event as (
insert into stack.webhook_events (svix_id, event_type, payload, source_time, outcome)
values ('msg_' || :client_id || '_' || :n || '_' || txid_current(), 'user.updated',
        convert_to(:payload, 'UTF8'), now(), 'applied')
returning svix_id
)
insert into stack.users as u (
    id, display_name, primary_email, primary_email_verified, primary_email_auth_enabled,
    profile_image_url, signed_up_at, client_metadata, client_read_only_metadata,
    server_metadata, has_password, otp_auth_enabled, auth_with_email, requires_totp_mfa,
    passkey_auth_enabled, oauth_providers, selected_team_id, selected_team, last_active_at,
    is_anonymous, is_restricted, restricted_reason, restricted_by_admin,
    restricted_by_admin_reason, restricted_by_admin_private_details, country_code,
    risk_scores, raw, svix_id
)
select
    (d.data ->> 'id')::uuid,
    d.data ->> 'display_name',
    d.data ->> 'primary_email',
    (d.data ->> 'primary_email_verified')::boolean,
    (d.data ->> 'primary_email_auth_enabled')::boolean,
    d.data ->> 'profile_image_url',
    stack_sync.millis_to_time(d.data -> 'signed_up_at_millis'),
    stack_sync.json_or_null(d.data -> 'client_metadata'),
    stack_sync.json_or_null(d.data -> 'client_read_only_metadata'),
    stack_sync.json_or_null(d.data -> 'server_metadata'),
    (d.data ->> 'has_password')::boolean,
    (d.data ->> 'otp_auth_enabled')::boolean,
    (d.data ->> 'auth_with_email')::boolean,
    (d.data ->> 'requires_totp_mfa')::boolean,
    (d.data ->> 'passkey_auth_enabled')::boolean,
    stack_sync.json_or_null(d.data -> 'oauth_providers'),
    (d.data ->> 'selected_team_id')::uuid,
    stack_sync.json_or_null(d.data -> 'selected_team'),
    stack_sync.millis_to_time(d.data -> 'last_active_at_millis'),
    (d.data ->> 'is_anonymous')::boolean,
    (d.data ->> 'is_restricted')::boolean,
    stack_sync.json_or_null(d.data -> 'restricted_reason'),
    (d.data ->> 'restricted_by_admin')::boolean,
    d.data ->> 'restricted_by_admin_reason',
    d.data ->> 'restricted_by_admin_private_details',
    d.data ->> 'country_code',
    stack_sync.json_or_null(d.data -> 'risk_scores'),
    d.data,
    event.svix_id
from event, data as d
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
where u.raw is distinct from excluded.raw;
