-- Serializes the transactions touching the same users or teams: one advisory lock per id, taken
-- in id order so that two transactions never wait on each other crosswise, held until commit.
-- Null ids are skipped.
create or replace function stack_sync.lock_ids(variadic p_ids uuid[]) returns void
language plpgsql as $$
begin
    perform pg_advisory_xact_lock(hashtextextended(id::text, 0))
    from (select distinct id from unnest(p_ids) as id where id is not null order by id) as ids;
end;
$$;
