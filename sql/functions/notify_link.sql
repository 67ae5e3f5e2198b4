-- The change feed's notification for a membership or permission: p_op is 'insert' or 'delete'.
create or replace function stack_sync.notify_link(
    p_kind stack_sync.kind, p_op text, p_user_id uuid, p_team_id uuid, p_permission_id text, p_svix_id text
) returns void
language sql as $$
    select stack_sync.notify(
        jsonb_strip_nulls(jsonb_build_object(
            'table', case p_kind
                when 'team_member' then 'team_members'
                when 'team_permission' then 'team_permissions'
                when 'project_permission' then 'project_permissions'
            end,
            'op', p_op,
            'team_id', p_team_id,
            'user_id', p_user_id,
            'permission_id', p_permission_id
        )),
        p_svix_id
    );
$$;
