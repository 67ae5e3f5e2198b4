-- Moves a row's version to an event at p_time unless a newer event is known; ties go to the
-- later arrival. A removal's time is noted even when it is stale. Returns whether it moved, or
-- whether it was at this very message already.
--
-- An update, then an insert if the row has no version yet: callers hold the locks of the row's
-- users and teams (stack_sync.lock_ids), so nobody inserts it in between. An upsert would lock
-- the version first, a WAL record of its own, and would write a new row version even for a
-- stale event that changes nothing; the update's condition skips those.
create or replace function stack_sync.advance(
    p_kind text, p_key text, p_time timestamptz, p_deleted boolean, p_svix_id text
) returns boolean
language plpgsql as $$
declare
    v_removed_at timestamptz := case when p_deleted then p_time end;
    v_moved boolean;
begin
    update stack_sync.versions as v
    set removed_at = greatest(v.removed_at, v_removed_at),
        deleted = case when v.source_time <= p_time then p_deleted else v.deleted end,
        svix_id = case when v.source_time <= p_time then p_svix_id else v.svix_id end,
        source_time = greatest(v.source_time, p_time)
    where v.kind = p_kind and v.key = p_key
      and (v.source_time <= p_time or v.removed_at is distinct from greatest(v.removed_at, v_removed_at))
    returning v.svix_id = p_svix_id into v_moved;
    if found then
        return v_moved;
    end if;
    -- stale; unless the version is this very message (replayed with an earlier time)
    select v.svix_id = p_svix_id into v_moved
    from stack_sync.versions as v where v.kind = p_kind and v.key = p_key;
    if found then
        return v_moved;
    end if;
    insert into stack_sync.versions (kind, key, source_time, deleted, removed_at, svix_id)
    values (p_kind, p_key, p_time, p_deleted, v_removed_at, p_svix_id);
    return true;
end;
$$;
