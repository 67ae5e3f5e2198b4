-- Marks a user or team deleted for good, whatever the event's time: Stack dispatches webhooks
-- asynchronously, so a deletion's message can be older than an update committed before it.
-- Returns false when it was buried already.
create or replace function stack_sync.bury(
    p_kind text, p_key text, p_time timestamptz, p_svix_id text
) returns boolean
language plpgsql as $$
declare
    v_buried boolean;
begin
    insert into stack_sync.versions as v (kind, key, source_time, deleted, removed_at, svix_id)
    values (p_kind, p_key, p_time, true, p_time, p_svix_id)
    on conflict (kind, key) do update
    set source_time = greatest(v.source_time, excluded.source_time),
        deleted = true,
        removed_at = excluded.removed_at,
        svix_id = excluded.svix_id
    where not v.deleted
    returning true into v_buried;
    return coalesce(v_buried, false);
end;
$$;
