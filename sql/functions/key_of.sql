-- Generated from Kind::info in src/model/key.rs; do not edit. After changing the kinds,
-- `BLESS=1 cargo test generated` rewrites this file.
-- The key of a mirrored row in stack_sync.versions and stack_sync.reconcile_seen: its ids joined
-- with '/', team before user before permission. Uuids have a fixed length, so a permission id
-- may contain anything. Rust's `model::Key` prints the same text. PL/pgSQL rather than SQL:
-- Postgres 15 parses and plans a SQL function's body on every call that is not inlined, and
-- the pinned search_path keeps it from being inlined.
create or replace function stack_sync.key_of(
    p_kind stack_sync.kind, p_user_id uuid, p_team_id uuid, p_permission_id text
) returns text
language plpgsql immutable as $$
begin
    return case p_kind
        when 'team' then p_team_id::text
        when 'user' then p_user_id::text
        when 'team_member' then p_team_id || '/' || p_user_id
        when 'team_permission' then p_team_id || '/' || p_user_id || '/' || p_permission_id
        when 'project_permission' then p_user_id || '/' || p_permission_id
    end;
end;
$$;
