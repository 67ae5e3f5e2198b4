-- Applies one deletion that Stack confirmed at p_time. Returns 'applied', 'unchanged' or 'stale'
-- (a webhook newer than the confirmation brought the row back). Changed rows are announced on
-- p_feed_channel, as apply_event does.
create or replace function stack_sync.delete_confirmed(
    p_source text, p_change stack_sync.change, p_time timestamptz, p_feed_channel text
) returns text
language plpgsql as $$
begin
    perform set_config('stack_sync.feed_channel', coalesce(p_feed_channel, ''), true);
    perform stack_sync.lock_ids(array[p_change.user_id, p_change.team_id]);
    return stack_sync.change_mirror(p_change, p_time, p_source);
end;
$$;
