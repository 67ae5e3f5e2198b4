-- Applies one verified Stack event: the entry point of live delivery and replay. p_message is
-- the message as it will be recorded; p_change what it asks of the mirror.
-- Returns the outcome: 'applied', 'unchanged', 'stale', or 'duplicate' when the message was
-- recorded before (and p_replay is false). A null p_message.payload records no body
-- (webhook.keep_bodies). The message is recorded with its outcome in the same
-- transaction as the change. Changed rows are announced on p_feed_channel (see notify); null
-- or empty sends nothing.
create or replace function stack_sync.apply_event(
    p_message stack_sync.message, p_change stack_sync.change, p_replay boolean,
    p_feed_channel text
) returns text
language plpgsql as $$
declare
    v_time timestamptz := coalesce(p_message.source_time, now());
    v_outcome text;
    v_erased text;
begin
    -- One statement for the settings and the locks, as each PL/pgSQL statement that runs a
    -- query costs a pass through the executor. Its expressions run in order: the feed and the
    -- change log name a replayed message's changes as the replay's; a user's selected team is
    -- locked with the user, shared (see change_mirror).
    perform set_config('stack_sync.feed_channel', coalesce(p_feed_channel, ''), true),
        set_config('stack_sync.replaying', p_replay::text, true),
        stack_sync.lock_ids(
            array[p_change.user_id, p_change.team_id],
            array[(p_change.columns ->> 'selected_team_id')::uuid]
        );
    if not p_replay
        and exists (select 1 from stack.webhook_events where svix_id = p_message.svix_id) then
        return 'duplicate';
    end if;
    v_outcome := stack_sync.change_mirror(p_change, v_time, p_message.svix_id);
    -- A body about a deleted user or team is not kept, even one that arrives after the
    -- deletion (a late update, or the user.deleted itself): see erase_bodies.
    if p_message.payload is not null then
        v_erased := stack_sync.erasure_of(p_change.user_id, p_change.team_id);
    end if;
    if p_replay then
        insert into stack.webhook_events as e
            (svix_id, event_type, payload, payload_encoding, source_time, outcome, user_id,
             team_id, erased_at, erased_reason)
        values (p_message.svix_id, p_message.event_type,
                case when v_erased is null then p_message.payload end,
                case when v_erased is null then p_message.payload_encoding end,
                v_time, v_outcome, p_change.user_id, p_change.team_id,
                case when v_erased is not null then now() end, v_erased)
        on conflict (svix_id) do update
        set outcome = excluded.outcome, error = null, payload = excluded.payload,
            payload_encoding = excluded.payload_encoding, erased_at = excluded.erased_at,
            erased_reason = excluded.erased_reason;
    else
        -- A plain insert, as an insert that may conflict costs a WAL record more: the check
        -- above ran under the locks of the event's user or team, which every delivery of this
        -- message takes, so none of them can have inserted it since.
        insert into stack.webhook_events
            (svix_id, event_type, payload, payload_encoding, source_time, outcome, user_id,
             team_id, erased_at, erased_reason)
        values (p_message.svix_id, p_message.event_type,
                case when v_erased is null then p_message.payload end,
                case when v_erased is null then p_message.payload_encoding end,
                v_time, v_outcome, p_change.user_id, p_change.team_id,
                case when v_erased is not null then now() end, v_erased);
    end if;
    return v_outcome;
end;
$$;
