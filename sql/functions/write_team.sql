-- Generated from TEAM_FIELDS in src/model/fields.rs; do not edit. After changing the
-- fields, `BLESS=1 cargo test generated` rewrites this file.
--
-- Writes a team row from its validated columns (p_row, see model::Row) and Stack's
-- object as received (p_raw), unless the row holds exactly that object already, and
-- announces a written row on the feed. Returns 'applied' or 'unchanged'.
--
-- An update, then an insert if there is no row: the caller holds the team's lock
-- (stack_sync.lock_ids), so no other writer can insert it in between. An upsert would
-- do the same work but lock the existing row first, which costs a WAL record of its own.
-- When neither writes, the row holds this object already.
create or replace function stack_sync.write_team(
    p_row jsonb, p_raw jsonb, p_svix_id text
) returns text
language plpgsql as $$
begin
    update stack.teams as t set
        display_name = r.display_name,
        profile_image_url = r.profile_image_url,
        created_at = r.created_at,
        client_metadata = r.client_metadata,
        client_read_only_metadata = r.client_read_only_metadata,
        server_metadata = r.server_metadata,
        raw = p_raw,
        synced_at = now(),
        svix_id = p_svix_id
    from jsonb_populate_record(null::stack.teams, p_row) as r
    where t.id = r.id and t.raw is distinct from p_raw;
    if not found then
        insert into stack.teams (
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
        where not exists (select from stack.teams where id = r.id);
        if not found then
            return 'unchanged';
        end if;
    end if;
    perform stack_sync.notify(
        jsonb_build_object('table', 'teams', 'op', 'upsert', 'id', p_row ->> 'id'),
        p_svix_id
    );
    return 'applied';
end;
$$;
