-- Moves a row's version to an event at p_time unless a newer event is known; ties go to the
-- later arrival. A removal's time is noted even when it is stale. Returns whether it moved, or
-- whether it was at this very message already (a replay, timed by an earlier arrival). A user
-- or team with a tombstone (bury) never moves: its deletion outranks every event. Checking that
-- here rather than before saves a lookup of the same row.
--
-- One statement that updates the version, or inserts it when there is none. Not an upsert:
-- that would lock the existing version first, a WAL record of its own, and write a new row
-- version even for a stale event that changes nothing, which the update's condition skips.
-- The parts see one snapshot; callers hold the locks of the row's users and teams
-- (stack_sync.lock_ids), so nobody inserts the version in between.
create or replace function stack_sync.advance(
    p_kind text, p_key text, p_time timestamptz, p_deleted boolean, p_svix_id text
) returns boolean
language plpgsql as $$
declare
    v_removed_at timestamptz := case when p_deleted then p_time end;
    v_moved boolean;
begin
    with current_version as (
        select v.svix_id, v.deleted and p_kind in ('user', 'team') as buried
        from stack_sync.versions as v where v.kind = p_kind and v.key = p_key
    ), updated as (
        update stack_sync.versions as v
        set removed_at = greatest(v.removed_at, v_removed_at),
            deleted = case when v.source_time <= p_time then p_deleted else v.deleted end,
            svix_id = case when v.source_time <= p_time then p_svix_id else v.svix_id end,
            source_time = greatest(v.source_time, p_time)
        where v.kind = p_kind and v.key = p_key
          and not (v.deleted and p_kind in ('user', 'team'))
          and (v.source_time <= p_time
               or v.removed_at is distinct from greatest(v.removed_at, v_removed_at))
        returning v.svix_id = p_svix_id as moved
    ), inserted as (
        insert into stack_sync.versions (kind, key, source_time, deleted, removed_at, svix_id)
        select p_kind, p_key, p_time, p_deleted, v_removed_at, p_svix_id
        where not exists (select from current_version)
        returning true as moved
    )
    select coalesce(
        (select moved from updated),
        (select moved from inserted),
        (select svix_id = p_svix_id and not buried from current_version)
    ) into v_moved;
    return v_moved;
end;
$$;
