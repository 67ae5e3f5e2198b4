-- The change feed and the change log: tells listeners that one mirrored row changed, and records
-- it in stack.changes when the log is on (stack_sync.change_log). Sends one notification on the
-- channel this transaction was given (apply_event, apply_fetched and delete_confirmed set
-- stack_sync.feed_channel from the service's feed.channel; when it is empty, nothing is sent).
-- Postgres delivers it at commit, in commit order, and drops it if the transaction rolls back.
-- p_change names the row (table, op, ids); the source follows from p_svix_id: a webhook's message
-- id (a replay's when apply_event set stack_sync.replaying), 'reconcile:<run id>', 'refresh' or 'forget'. A value longer than 200 characters is left out and the payload
-- marked "truncated", so that it stays far below Postgres's 8000-byte limit.
create or replace function stack_sync.notify(p_change jsonb, p_svix_id text) returns void
language plpgsql as $$
declare
    v_channel text := coalesce(current_setting('stack_sync.feed_channel', true), '');
    v_log boolean := (select enabled from stack_sync.change_log);
    v_source jsonb;
    v_payload jsonb;
begin
    -- Both off, the common case: nothing to build.
    if not v_log and v_channel = '' then
        return;
    end if;
    v_source := case
        when p_svix_id like 'reconcile:%' then jsonb_build_object(
            'source', 'reconcile', 'run_id', substr(p_svix_id, length('reconcile:') + 1)::bigint)
        when p_svix_id in ('refresh', 'forget') then jsonb_build_object('source', p_svix_id)
        when current_setting('stack_sync.replaying', true) = 'true' then
            jsonb_build_object('source', 'replay', 'svix_id', p_svix_id)
        else jsonb_build_object('source', 'webhook', 'svix_id', p_svix_id)
    end;
    if v_log then
        insert into stack.changes
            (table_name, operation, user_id, team_id, permission_id, source, svix_id, run_id)
        values (
            p_change ->> 'table', p_change ->> 'op',
            coalesce(p_change ->> 'user_id',
                     case when p_change ->> 'table' = 'users' then p_change ->> 'id' end)::uuid,
            coalesce(p_change ->> 'team_id',
                     case when p_change ->> 'table' = 'teams' then p_change ->> 'id' end)::uuid,
            p_change ->> 'permission_id', v_source ->> 'source', v_source ->> 'svix_id',
            (v_source ->> 'run_id')::bigint
        );
    end if;
    if v_channel = '' then
        return;
    end if;
    v_payload := p_change || v_source;
    if exists (select 1 from jsonb_each_text(v_payload) as f where length(f.value) > 200) then
        v_payload := (
            select jsonb_object_agg(f.key, f.value) from jsonb_each(v_payload) as f
            where length(f.value #>> '{}') <= 200
        ) || '{"truncated": true}';
    end if;
    perform pg_notify(v_channel, v_payload::text);
end;
$$;
