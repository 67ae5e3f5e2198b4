-- team.deleted: buries the team and removes it with its memberships and team permissions, and
-- clears the selection of users who had it selected, as Stack does without sending events for
-- those. Returns 'applied', or 'unchanged' when the team was buried already.
create or replace function stack_sync.delete_team(
    p_team_id uuid, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
begin
    if not stack_sync.bury('team', p_team_id::text, p_time, p_svix_id) then
        return 'unchanged';
    end if;
    delete from stack.teams t where t.id = p_team_id;
    delete from stack.team_members m where m.team_id = p_team_id;
    delete from stack.team_permissions p where p.team_id = p_team_id;
    update stack.users u
    set selected_team_id = null,
        selected_team = null,
        raw = u.raw || '{"selected_team_id": null, "selected_team": null}',
        synced_at = now(),
        svix_id = p_svix_id
    where u.selected_team_id = p_team_id;
    return 'applied';
end;
$$;
