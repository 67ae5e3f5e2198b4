-- Memberships and permissions: granted and removed by key, each guarded by its own version.
-- Returns 'applied', 'unchanged' or 'stale'.
create or replace function stack_sync.change_link(
    p_change stack_sync.change, p_time timestamptz, p_svix_id text
) returns text
language plpgsql as $$
declare
    v_key text := stack_sync.key_of(
        p_change.kind, p_change.user_id, p_change.team_id, p_change.permission_id
    );
    v_changed integer := 0;
begin
    -- Both tombstones in one lookup (a null team matches nothing).
    if exists (
        select 1 from stack_sync.versions v
        where v.deleted
          and ((v.kind = 'user' and v.key = p_change.user_id::text)
               or (v.kind = 'team' and v.key = p_change.team_id::text))
    ) then
        -- the deletion already removed the link and outranks any event about it
        return case when p_change.removed then 'unchanged' else 'stale' end;
    end if;
    -- a grant older than the member's removal from the team went with the membership
    if p_change.kind = 'team_permission' and not p_change.removed and exists (
        select 1 from stack_sync.versions v
        where v.kind = 'team_member'
          and v.key = stack_sync.key_of('team_member', p_change.user_id, p_change.team_id, null)
          and v.removed_at > p_time
    ) then
        return 'stale';
    end if;
    if p_change.kind = 'team_member' and p_change.removed then
        -- A removal takes the permissions granted before it, even if the member was added
        -- again since (then the removal itself is stale).
        v_changed := stack_sync.delete_permissions_granted_before(
            p_change.team_id, p_change.user_id, p_time, p_svix_id
        );
    end if;
    if not stack_sync.advance(p_change.kind::text, v_key, p_time, p_change.removed, p_svix_id) then
        return case when v_changed > 0 then 'applied' else 'stale' end;
    end if;
    if p_change.removed then
        v_changed := v_changed + stack_sync.delete_link(p_change, p_svix_id);
    else
        v_changed := stack_sync.insert_link(p_change, p_svix_id);
    end if;
    return case when v_changed > 0 then 'applied' else 'unchanged' end;
end;
$$;
