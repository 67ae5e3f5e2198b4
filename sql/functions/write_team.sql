-- Generated from TEAM_FIELDS in src/model/fields.rs; do not edit. After changing the
-- fields, `STACK_SYNC_BLESS=1 cargo test generated` rewrites this file.
--
-- Writes a team row from its validated columns (p_row, see model::Row) and Stack's
-- object as received (p_raw), unless the row holds exactly that object already, and
-- announces a written row on the feed. Returns 'applied' or 'unchanged'.
create or replace function stack_sync.write_team(
    p_row jsonb, p_raw jsonb, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_written boolean;
begin
    insert into stack.teams as t (
        id,
        display_name,
        profile_image_url,
        created_at,
        client_metadata,
        client_read_only_metadata,
        server_metadata,
        raw, svix_id
    )
    select
        r.id,
        r.display_name,
        r.profile_image_url,
        r.created_at,
        r.client_metadata,
        r.client_read_only_metadata,
        r.server_metadata,
        p_raw, p_svix_id
    from jsonb_populate_record(null::stack.teams, p_row) as r
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
    where t.raw is distinct from excluded.raw
    returning true into v_written;
    if v_written then
        perform stack_sync.notify(
            jsonb_build_object('table', 'teams', 'op', 'upsert', 'id', p_row ->> 'id'),
            p_svix_id
        );
    end if;
    return case when v_written then 'applied' else 'unchanged' end;
end;
$$;
