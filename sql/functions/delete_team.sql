-- team.deleted: buries the team and removes it with its memberships and team permissions, and
-- clears the selection of users who had it selected, as Stack does without sending events for
-- those, and erases the bodies of the messages about it (erase_bodies); each changed row is
-- announced on the feed. Returns 'applied', or 'unchanged' when the
-- team was buried already.
create or replace function stack_sync.delete_team(
    p_team_id uuid, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_row record;
begin
    if not stack_sync.bury('team', p_team_id::text, p_time, p_svix_id) then
        return 'unchanged';
    end if;
    perform stack_sync.erase_bodies('team', p_team_id, 'team deleted');
    delete from stack.teams t where t.id = p_team_id;
    if found then
        perform stack_sync.notify(
            jsonb_build_object('table', 'teams', 'op', 'delete', 'id', p_team_id), p_svix_id
        );
    end if;
    for v_row in
        delete from stack.team_members m where m.team_id = p_team_id returning m.user_id
    loop
        perform stack_sync.notify_link(
            'team_member', 'delete', v_row.user_id, p_team_id, null, p_svix_id
        );
    end loop;
    for v_row in
        delete from stack.team_permissions p where p.team_id = p_team_id
        returning p.user_id, p.permission_id
    loop
        perform stack_sync.notify_link(
            'team_permission', 'delete', v_row.user_id, p_team_id, v_row.permission_id, p_svix_id
        );
    end loop;
    for v_row in
        update stack.users u
        set selected_team_id = null,
            selected_team = null,
            raw = u.raw || '{"selected_team_id": null, "selected_team": null}',
            synced_at = now(),
            svix_id = p_svix_id
        where u.selected_team_id = p_team_id
        returning u.id
    loop
        perform stack_sync.notify(
            jsonb_build_object('table', 'users', 'op', 'upsert', 'id', v_row.id), p_svix_id
        );
    end loop;
    return 'applied';
end;
$$;
