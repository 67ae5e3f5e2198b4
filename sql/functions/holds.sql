-- Whether the mirror already holds exactly this object: a user or team whose stored object
-- equals the change's raw, or the link itself. Reconcile skips such objects entirely, so that a run which
-- finds nothing changed writes nothing, not even versions (see apply_fetched).
create or replace function stack_sync.holds(p_change stack_sync.change) returns boolean
language plpgsql stable as $$
begin
    case p_change.kind
    when 'user' then
        return exists (
            select 1 from stack.users where id = p_change.user_id and raw = p_change.raw
        );
    when 'team' then
        return exists (
            select 1 from stack.teams where id = p_change.team_id and raw = p_change.raw
        );
    else
        return stack_sync.mirrored(p_change);
    end case;
end;
$$;
