-- Erases a user or team from the mirror on request (`stack-sync forget`), whether or not Stack
-- deleted them: erases the bodies of every message about them ('forgotten'), removes their row
-- with its memberships and permissions (and a team from its users' selection) as a deletion
-- does, and buries the id, so that no later webhook or reconcile brings it back. Safe to run
-- again. Returns what it removed, as counts, and whether the id was buried already.
create or replace function stack_sync.forget(
    p_kind stack_sync.kind, p_id uuid, p_feed_channel text
) returns jsonb
language plpgsql as $$
declare
    v_erased bigint;
    v_rows jsonb;
    v_outcome text;
begin
    perform set_config('stack_sync.feed_channel', coalesce(p_feed_channel, ''), true);
    perform stack_sync.lock_ids(array[p_id]);
    -- First, so that the rows say 'forgotten' rather than the deletion's reason.
    v_erased := stack_sync.erase_bodies(p_kind, p_id, 'forgotten');
    case p_kind
    when 'user' then
        v_rows := jsonb_build_object(
            'users', (select count(*) from stack.users where id = p_id),
            'team_members', (select count(*) from stack.team_members where user_id = p_id),
            'team_permissions',
                (select count(*) from stack.team_permissions where user_id = p_id),
            'project_permissions',
                (select count(*) from stack.project_permissions where user_id = p_id)
        );
        v_outcome := stack_sync.delete_user(p_id, now(), 'forget');
    when 'team' then
        v_rows := jsonb_build_object(
            'teams', (select count(*) from stack.teams where id = p_id),
            'team_members', (select count(*) from stack.team_members where team_id = p_id),
            'team_permissions',
                (select count(*) from stack.team_permissions where team_id = p_id),
            'users_unselected',
                (select count(*) from stack.users where selected_team_id = p_id)
        );
        v_outcome := stack_sync.delete_team(p_id, now(), 'forget');
    else
        raise exception 'only a user or a team can be forgotten, not a %', p_kind
            using errcode = 'invalid_parameter_value';
    end case;
    return jsonb_build_object(
        'bodies_erased', v_erased,
        'rows_deleted', v_rows,
        'buried_before', v_outcome = 'unchanged'
    );
end;
$$;
