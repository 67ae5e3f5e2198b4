-- Why a message about this user or team may not keep its body: 'user deleted' or
-- 'team deleted' when either has a tombstone, null when both live (or are null). A body that
-- arrives after its subject was deleted is erased on arrival, as the earlier ones were.
create or replace function stack_sync.erasure_of(p_user_id uuid, p_team_id uuid) returns text
language sql stable as $$
    -- The tombstones read directly (as is_deleted does), so that this definition does not
    -- depend on another function existing when it is created.
    select case
        when exists (
            select 1 from stack_sync.versions
            where kind = 'user' and key = p_user_id::text and deleted
        ) then 'user deleted'
        when exists (
            select 1 from stack_sync.versions
            where kind = 'team' and key = p_team_id::text and deleted
        ) then 'team deleted'
    end;
$$;
