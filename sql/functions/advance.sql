-- Moves a row's version to an event at p_time unless a newer event is known; ties go to the
-- later arrival. A removal's time is noted even when it is stale. Returns whether it moved.
create or replace function stack_sync.advance(
    p_kind text, p_key text, p_time timestamptz, p_deleted boolean, p_svix_id text
) returns boolean
language plpgsql as $$
declare
    v_moved boolean;
begin
    insert into stack_sync.versions as v (kind, key, source_time, deleted, removed_at, svix_id)
    values (p_kind, p_key, p_time, p_deleted, case when p_deleted then p_time end, p_svix_id)
    on conflict (kind, key) do update
    set removed_at = greatest(v.removed_at, excluded.removed_at),
        deleted = case when v.source_time <= excluded.source_time
                       then excluded.deleted else v.deleted end,
        svix_id = case when v.source_time <= excluded.source_time
                       then excluded.svix_id else v.svix_id end,
        source_time = greatest(v.source_time, excluded.source_time)
    returning v.svix_id = p_svix_id into v_moved;
    return v_moved;
end;
$$;
