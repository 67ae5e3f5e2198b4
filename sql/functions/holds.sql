-- Whether the mirror already holds exactly this object: a user or team whose stored object
-- equals p_raw, or the link itself. Reconcile skips such objects entirely, so that a run which
-- finds nothing changed writes nothing, not even versions (see reconcile_apply).
create or replace function stack_sync.holds(
    p_kind text, p_user_id uuid, p_team_id uuid, p_permission_id text, p_raw jsonb
) returns boolean
language plpgsql stable as $$
begin
    case p_kind
    when 'user' then
        return exists (select 1 from stack.users where id = p_user_id and raw = p_raw);
    when 'team' then
        return exists (select 1 from stack.teams where id = p_team_id and raw = p_raw);
    else
        return stack_sync.mirrored(p_kind, p_user_id, p_team_id, p_permission_id);
    end case;
end;
$$;
