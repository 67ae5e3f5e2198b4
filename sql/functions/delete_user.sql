-- user.deleted: buries the user and removes them with every membership and permission, as
-- Stack does without sending events for those, and erases the bodies of the messages about
-- them (erase_bodies); each removed row is announced on the feed.
-- Returns 'applied', or 'unchanged' when the user was buried already.
create or replace function stack_sync.delete_user(
    p_user_id uuid, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_link record;
begin
    if not stack_sync.bury('user', p_user_id::text, p_time, p_svix_id) then
        return 'unchanged';
    end if;
    perform stack_sync.erase_bodies('user', p_user_id, 'user deleted');
    delete from stack.users u where u.id = p_user_id;
    if found then
        perform stack_sync.notify(
            jsonb_build_object('table', 'users', 'op', 'delete', 'id', p_user_id), p_svix_id
        );
    end if;
    for v_link in
        delete from stack.team_members m where m.user_id = p_user_id returning m.team_id
    loop
        perform stack_sync.notify_link(
            'team_member', 'delete', p_user_id, v_link.team_id, null, p_svix_id
        );
    end loop;
    for v_link in
        delete from stack.team_permissions p where p.user_id = p_user_id
        returning p.team_id, p.permission_id
    loop
        perform stack_sync.notify_link(
            'team_permission', 'delete', p_user_id, v_link.team_id, v_link.permission_id, p_svix_id
        );
    end loop;
    for v_link in
        delete from stack.project_permissions p where p.user_id = p_user_id
        returning p.permission_id
    loop
        perform stack_sync.notify_link(
            'project_permission', 'delete', p_user_id, null, v_link.permission_id, p_svix_id
        );
    end loop;
    return 'applied';
end;
$$;
