-- Generated from Kind::info in src/model/key.rs; do not edit. After changing the kinds,
-- `BLESS=1 cargo test generated` rewrites this file.
-- Removes a membership or permission, announcing it on the feed; returns the number of rows
-- removed.
create or replace function stack_sync.delete_link(
    p_change stack_sync.change, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_deleted integer;
begin
    case p_change.kind
    when 'team_member' then
        delete from stack.team_members as t
        where t.team_id = p_change.team_id and t.user_id = p_change.user_id;
    when 'team_permission' then
        delete from stack.team_permissions as t
        where t.team_id = p_change.team_id and t.user_id = p_change.user_id and t.permission_id = p_change.permission_id;
    else -- project_permission
        delete from stack.project_permissions as t
        where t.user_id = p_change.user_id and t.permission_id = p_change.permission_id;
    end case;
    get diagnostics v_deleted = row_count;
    if v_deleted > 0 then
        perform stack_sync.notify_link(
            p_change.kind, 'delete', p_change.user_id, p_change.team_id, p_change.permission_id,
            p_svix_id
        );
    end if;
    return v_deleted;
end;
$$;
