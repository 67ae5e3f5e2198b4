-- Removes a membership or permission, announcing it on the feed; returns the number of rows
-- removed.
create or replace function stack_sync.delete_link(
    p_kind text, p_user_id uuid, p_team_id uuid, p_permission_id text, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_deleted integer;
begin
    if p_kind = 'team_member' then
        delete from stack.team_members m where m.team_id = p_team_id and m.user_id = p_user_id;
    elsif p_kind = 'team_permission' then
        delete from stack.team_permissions p
        where p.team_id = p_team_id and p.user_id = p_user_id and p.permission_id = p_permission_id;
    else
        delete from stack.project_permissions p
        where p.user_id = p_user_id and p.permission_id = p_permission_id;
    end if;
    get diagnostics v_deleted = row_count;
    if v_deleted > 0 then
        perform stack_sync.notify_link(
            p_kind, 'delete', p_user_id, p_team_id, p_permission_id, p_svix_id
        );
    end if;
    return v_deleted;
end;
$$;
