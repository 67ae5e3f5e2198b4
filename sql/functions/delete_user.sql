-- user.deleted: buries the user and removes them with every membership and permission, as
-- Stack does without sending events for those. Returns 'applied', or 'unchanged' when the user
-- was buried already.
create or replace function stack_sync.delete_user(
    p_user_id uuid, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
begin
    if not stack_sync.bury('user', p_user_id::text, p_time, p_svix_id) then
        return 'unchanged';
    end if;
    delete from stack.users u where u.id = p_user_id;
    delete from stack.team_members m where m.user_id = p_user_id;
    delete from stack.team_permissions p where p.user_id = p_user_id;
    delete from stack.project_permissions p where p.user_id = p_user_id;
    return 'applied';
end;
$$;
