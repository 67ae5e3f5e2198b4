-- Generated from Kind::info in src/model/key.rs; do not edit. After changing the kinds,
-- `BLESS=1 cargo test generated` rewrites this file.
-- The change feed's notification for a membership or permission: p_op is 'insert' or 'delete';
-- the feed names the row by its table.
create or replace function stack_sync.notify_link(
    p_kind stack_sync.kind, p_op text, p_user_id uuid, p_team_id uuid, p_permission_id text,
    p_svix_id text
) returns void
language plpgsql as $$
declare
    v_table text;
begin
    case p_kind
    when 'team_member' then
        v_table := 'team_members';
    when 'team_permission' then
        v_table := 'team_permissions';
    else -- project_permission
        v_table := 'project_permissions';
    end case;
    perform stack_sync.notify(
        jsonb_strip_nulls(jsonb_build_object(
            'table', v_table,
            'op', p_op,
            'team_id', p_team_id,
            'user_id', p_user_id,
            'permission_id', p_permission_id
        )),
        p_svix_id
    );
end;
$$;
