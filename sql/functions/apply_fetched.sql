-- Applies changes fetched from Stack at p_time (a reconcile page, or a refresh) through the
-- same guards as webhooks; p_source names the fetch in version records ('reconcile:<run>',
-- 'refresh'). Returns one row per change, in order: its outcome, and whether the mirror held the
-- row before. Changed rows are announced on p_feed_channel, as apply_event does.
--
-- An object the mirror already holds exactly is 'unchanged' without passing the guards: its
-- version is not advanced either, so a run that finds nothing changed writes nothing. Not
-- advancing cannot let an older state back in for long: a webhook older than this fetch but
-- newer than the row's version describes a change that Stack has since undone, and the undoing
-- change is newer still, so it wins when its own webhook arrives (or the next run sees it).
create or replace function stack_sync.apply_fetched(
    p_source text, p_changes stack_sync.change[], p_time timestamptz, p_feed_channel text
) returns table (outcome text, existed boolean)
language plpgsql as $$
declare
    v_change stack_sync.change;
begin
    perform set_config('stack_sync.feed_channel', coalesce(p_feed_channel, ''), true);
    -- All the page's locks at once, in id order like every other caller: taking them item by
    -- item could deadlock against a webhook that holds one and waits for another.
    perform stack_sync.lock_ids(
        array(
            select c.user_id from unnest(p_changes) as c
            union all
            select c.team_id from unnest(p_changes) as c
        ),
        -- users' selected teams, as apply_event locks them
        array(select (c.columns ->> 'selected_team_id')::uuid from unnest(p_changes) as c)
    );
    foreach v_change in array p_changes loop
        existed := stack_sync.mirrored(v_change);
        if existed and stack_sync.holds(v_change) then
            outcome := 'unchanged';
        else
            outcome := stack_sync.change_mirror(v_change, p_time, p_source);
        end if;
        return next;
    end loop;
end;
$$;
