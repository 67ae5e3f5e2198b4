-- Applies a page of rows of one kind, fetched from Stack at p_time, through the same guards as
-- webhooks. The arrays are parallel, one element per row, as change_mirror takes them. Returns
-- one row per element, in order: its outcome, and whether the mirror held the row before.
-- Changed rows are announced on p_feed_channel, as apply_event does.
--
-- An object the mirror already holds exactly is 'unchanged' without passing the guards: its
-- version is not advanced either, so a run that finds nothing changed writes nothing. Not
-- advancing cannot let an older state back in for long: a webhook older than this fetch but
-- newer than the row's version describes a change that Stack has since undone, and the undoing
-- change is newer still, so it wins when its own webhook arrives (or the next run sees it).
create or replace function stack_sync.reconcile_apply(
    p_run_id bigint, p_kind text, p_user_ids uuid[], p_team_ids uuid[], p_permission_ids text[],
    p_rows jsonb[], p_raws jsonb[], p_time timestamptz, p_feed_channel text
) returns table (outcome text, existed boolean)
language plpgsql as $$
declare
    v_item record;
begin
    perform set_config('stack_sync.feed_channel', coalesce(p_feed_channel, ''), true);
    -- All the page's locks at once, in id order like every other caller: taking them item by
    -- item could deadlock against a webhook that holds one and waits for another.
    perform stack_sync.lock_ids(variadic p_user_ids || p_team_ids);
    for v_item in
        select * from unnest(p_user_ids, p_team_ids, p_permission_ids, p_rows, p_raws)
            as item (user_id, team_id, permission_id, row_data, raw_data)
    loop
        existed := stack_sync.mirrored(p_kind, v_item.user_id, v_item.team_id, v_item.permission_id);
        if existed and stack_sync.holds(
            p_kind, v_item.user_id, v_item.team_id, v_item.permission_id, v_item.raw_data
        ) then
            outcome := 'unchanged';
        else
            outcome := stack_sync.change_mirror(
                p_kind, false, v_item.user_id, v_item.team_id, v_item.permission_id,
                v_item.row_data, v_item.raw_data, p_time, 'reconcile:' || p_run_id
            );
        end if;
        return next;
    end loop;
end;
$$;
