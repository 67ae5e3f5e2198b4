-- Removing a member removes their permissions in that team (Stack does so without events),
-- except those granted after the removal; each is announced on the feed. Returns the number of
-- permissions removed.
create or replace function stack_sync.delete_permissions_granted_before(
    p_team_id uuid, p_user_id uuid, p_time timestamptz, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_deleted integer := 0;
    v_permission record;
begin
    for v_permission in
        delete from stack.team_permissions p
        using stack_sync.versions v
        where p.team_id = p_team_id and p.user_id = p_user_id
          and v.kind = 'team_permission'
          and v.key = stack_sync.key_of('team_permission', p.user_id, p.team_id, p.permission_id)
          and v.source_time <= p_time
        returning p.permission_id
    loop
        perform stack_sync.notify_link(
            'team_permission', 'delete', p_user_id, p_team_id, v_permission.permission_id,
            p_svix_id
        );
        v_deleted := v_deleted + 1;
    end loop;
    return v_deleted;
end;
$$;
