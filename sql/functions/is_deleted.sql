-- Whether a user or team has a tombstone. PL/pgSQL rather than SQL, so that the query's plan
-- is kept for the session: see key_of.
create or replace function stack_sync.is_deleted(p_kind text, p_key text) returns boolean
language plpgsql stable as $$
begin
    return exists (
        select 1 from stack_sync.versions where kind = p_kind and key = p_key and deleted
    );
end;
$$;
