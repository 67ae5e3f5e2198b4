-- Why a message about this user or team may not keep its body: 'user deleted' or
-- 'team deleted' when either has a tombstone, null when both live (or are null). A body that
-- arrives after its subject was deleted is erased on arrival, as the earlier ones were.
-- PL/pgSQL rather than SQL, so that the query's plan is kept for the session: see key_of.
create or replace function stack_sync.erasure_of(p_user_id uuid, p_team_id uuid) returns text
language plpgsql stable as $$
begin
    -- The tombstones read directly, as is_deleted does.
    return case
        when exists (
            select 1 from stack_sync.versions
            where kind = 'user' and key = p_user_id::text and deleted
        ) then 'user deleted'
        when exists (
            select 1 from stack_sync.versions
            where kind = 'team' and key = p_team_id::text and deleted
        ) then 'team deleted'
    end;
end;
$$;
