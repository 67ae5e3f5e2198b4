-- Whether a user or team has a tombstone.
create or replace function stack_sync.is_deleted(p_kind text, p_key text) returns boolean
language sql stable as $$
    select exists (
        select 1 from stack_sync.versions where kind = p_kind and key = p_key and deleted
    );
$$;
