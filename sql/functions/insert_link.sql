-- Adds a membership or permission unless it is there, announcing it on the feed; returns the
-- number of rows added. The caller holds the locks of the link's user and team, so nobody adds
-- it between the check and the insert; an insert that may conflict costs a WAL record more.
create or replace function stack_sync.insert_link(
    p_kind text, p_user_id uuid, p_team_id uuid, p_permission_id text, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_inserted integer;
begin
    if stack_sync.mirrored(p_kind, p_user_id, p_team_id, p_permission_id) then
        return 0;
    end if;
    if p_kind = 'team_member' then
        insert into stack.team_members (team_id, user_id, svix_id)
        values (p_team_id, p_user_id, p_svix_id);
    elsif p_kind = 'team_permission' then
        insert into stack.team_permissions (team_id, user_id, permission_id, svix_id)
        values (p_team_id, p_user_id, p_permission_id, p_svix_id);
    else
        insert into stack.project_permissions (user_id, permission_id, svix_id)
        values (p_user_id, p_permission_id, p_svix_id);
    end if;
    get diagnostics v_inserted = row_count;
    if v_inserted > 0 then
        perform stack_sync.notify_link(
            p_kind, 'insert', p_user_id, p_team_id, p_permission_id, p_svix_id
        );
    end if;
    return v_inserted;
end;
$$;
