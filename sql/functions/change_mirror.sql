-- What a change does to the mirror, given that it is new and holds its locks.
-- Returns 'applied', 'unchanged' or 'stale'. A kind it does not handle (one added to
-- stack_sync.kind without a branch here) is a data exception, SQLSTATE 22023, which the service
-- records as failed.
create or replace function stack_sync.change_mirror(
    p_change stack_sync.change, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_unselected constant jsonb := '{"selected_team_id": null, "selected_team": null}'::jsonb;
begin
    case p_change.kind
    when 'user' then
        if p_change.removed then
            return stack_sync.delete_user(p_change.user_id, p_time, p_svix_id);
        end if;
        -- advance refuses a buried user: a deletion outranks any event about it
        if not stack_sync.advance('user', p_change.user_id::text, p_time, false, p_svix_id) then
            return 'stale';
        end if;
        -- A user whose selected team is buried selects none: the team's deletion cleared the
        -- selection of the users it found (delete_team), and a state of the user older than
        -- the deletion, delivered after it, must not bring the team back. Callers lock the
        -- selected team shared with the user, and a team's own changes lock it exclusively, so
        -- the deletion cannot commit in between.
        if p_change.columns ->> 'selected_team_id' is not null
            and stack_sync.is_deleted('team', p_change.columns ->> 'selected_team_id') then
            return stack_sync.write_user(
                p_change.columns || v_unselected, p_change.raw || v_unselected, p_svix_id
            );
        end if;
        return stack_sync.write_user(p_change.columns, p_change.raw, p_svix_id);
    when 'team' then
        if p_change.removed then
            return stack_sync.delete_team(p_change.team_id, p_time, p_svix_id);
        end if;
        if not stack_sync.advance('team', p_change.team_id::text, p_time, false, p_svix_id) then
            return 'stale';
        end if;
        return stack_sync.write_team(p_change.columns, p_change.raw, p_svix_id);
    when 'team_member', 'team_permission', 'project_permission' then
        return stack_sync.change_link(p_change, p_time, p_svix_id);
    else
        raise exception 'stack-sync cannot apply a change of kind %', p_change.kind
            using errcode = 'invalid_parameter_value';
    end case;
end;
$$;
