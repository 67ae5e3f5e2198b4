-- What a change does to the mirror, given that it is new and holds its locks.
--   p_kind: a stack_sync.versions kind; p_removed: whether the row goes;
--   p_user_id, p_team_id, p_permission_id: the row's ids (null where the kind has none);
--   p_row: a user's or team's validated columns; p_raw: the object as Stack sent it.
-- Returns 'applied', 'unchanged' or 'stale'. A kind it does not know (a service newer than
-- these functions) is a data exception, SQLSTATE 22023, which the service records as failed.
create or replace function stack_sync.change_mirror(
    p_kind text, p_removed boolean, p_user_id uuid, p_team_id uuid, p_permission_id text,
    p_row jsonb, p_raw jsonb, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
begin
    case p_kind
    when 'user' then
        if p_removed then
            return stack_sync.delete_user(p_user_id, p_time, p_svix_id);
        end if;
        if stack_sync.is_deleted('user', p_user_id::text)
            or not stack_sync.advance('user', p_user_id::text, p_time, false, p_svix_id) then
            return 'stale';
        end if;
        return stack_sync.write_user(p_row, p_raw, p_svix_id);
    when 'team' then
        if p_removed then
            return stack_sync.delete_team(p_team_id, p_time, p_svix_id);
        end if;
        if stack_sync.is_deleted('team', p_team_id::text)
            or not stack_sync.advance('team', p_team_id::text, p_time, false, p_svix_id) then
            return 'stale';
        end if;
        return stack_sync.write_team(p_row, p_raw, p_svix_id);
    when 'team_member', 'team_permission', 'project_permission' then
        return stack_sync.change_link(
            p_kind, p_removed, p_user_id, p_team_id, p_permission_id, p_time, p_svix_id
        );
    else
        raise exception 'stack-sync cannot apply a change of kind %', p_kind
            using errcode = 'invalid_parameter_value';
    end case;
end;
$$;
