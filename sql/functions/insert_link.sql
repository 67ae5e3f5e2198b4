-- Generated from Kind::info in src/model/key.rs; do not edit. After changing the kinds,
-- `BLESS=1 cargo test generated` rewrites this file.
-- Adds a membership or permission unless it is there, announcing it on the feed; returns the
-- number of rows added. Not `on conflict do nothing`, which costs a WAL record more for every
-- row it adds: the caller holds the locks of the link's user and team, so nobody adds it between
-- the check and the insert.
create or replace function stack_sync.insert_link(
    p_change stack_sync.change, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_inserted integer;
begin
    case p_change.kind
    when 'team_member' then
        insert into stack.team_members (team_id, user_id, svix_id)
        select p_change.team_id, p_change.user_id, p_svix_id
        where not exists (
            select from stack.team_members
            where team_id = p_change.team_id and user_id = p_change.user_id
        );
    when 'team_permission' then
        insert into stack.team_permissions (team_id, user_id, permission_id, svix_id)
        select p_change.team_id, p_change.user_id, p_change.permission_id, p_svix_id
        where not exists (
            select from stack.team_permissions
            where team_id = p_change.team_id and user_id = p_change.user_id and permission_id = p_change.permission_id
        );
    else -- project_permission
        insert into stack.project_permissions (user_id, permission_id, svix_id)
        select p_change.user_id, p_change.permission_id, p_svix_id
        where not exists (
            select from stack.project_permissions
            where user_id = p_change.user_id and permission_id = p_change.permission_id
        );
    end case;
    get diagnostics v_inserted = row_count;
    if v_inserted > 0 then
        perform stack_sync.notify_link(
            p_change.kind, 'insert', p_change.user_id, p_change.team_id, p_change.permission_id,
            p_svix_id
        );
    end if;
    return v_inserted;
end;
$$;
