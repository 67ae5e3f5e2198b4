-- Generated from Kind::info in src/model/key.rs; do not edit. After changing the kinds,
-- `BLESS=1 cargo test generated` rewrites this file.
-- Whether the mirror holds the row a change names (reconcile tells created from updated).
create or replace function stack_sync.mirrored(p_change stack_sync.change) returns boolean
language plpgsql stable as $$
begin
    case p_change.kind
    when 'team' then
        return exists (
            select 1 from stack.teams
            where id = p_change.team_id
        );
    when 'user' then
        return exists (
            select 1 from stack.users
            where id = p_change.user_id
        );
    when 'team_member' then
        return exists (
            select 1 from stack.team_members
            where team_id = p_change.team_id and user_id = p_change.user_id
        );
    when 'team_permission' then
        return exists (
            select 1 from stack.team_permissions
            where team_id = p_change.team_id and user_id = p_change.user_id and permission_id = p_change.permission_id
        );
    else -- project_permission
        return exists (
            select 1 from stack.project_permissions
            where user_id = p_change.user_id and permission_id = p_change.permission_id
        );
    end case;
end;
$$;
