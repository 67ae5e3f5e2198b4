-- Serializes the transactions touching the same users or teams: one advisory lock per id, taken
-- in id order so that two transactions never wait on each other crosswise, held until commit.
-- p_ids are the ids a transaction writes, locked exclusively; p_shared_ids those it only reads
-- and must not see change under it (a user's selected team), locked shared, so that the many
-- users selecting one team do not wait on each other, only on a change to the team. An id in
-- both is locked exclusively. Null ids are skipped.
create or replace function stack_sync.lock_ids(
    p_ids uuid[], p_shared_ids uuid[] default '{}'
) returns void
language plpgsql as $$
begin
    perform case
        when wanted.exclusive then pg_advisory_xact_lock(hashtextextended(wanted.id::text, 0))
        else pg_advisory_xact_lock_shared(hashtextextended(wanted.id::text, 0))
    end
    from (
        select ids.id, bool_or(ids.exclusive) as exclusive
        from (
            select unnest(p_ids) as id, true as exclusive
            union all
            select unnest(p_shared_ids), false
        ) as ids
        where ids.id is not null
        group by ids.id
        order by ids.id
    ) as wanted;
end;
$$;
