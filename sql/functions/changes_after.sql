-- The settled changes after position (p_xid, p_seq), oldest first, at most p_limit: what
-- `stack-sync changes` and the forwarder read. Start from ('0', 0) for everything kept.
create or replace function stack_sync.changes_after(p_xid xid8, p_seq bigint, p_limit integer)
returns setof stack.settled_changes
language sql stable as $$
    select * from stack.settled_changes
    where (xid, seq) > (p_xid, p_seq)
    order by xid, seq
    limit p_limit
$$;
