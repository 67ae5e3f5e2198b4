-- Applies one verified Stack event: the entry point of live delivery and replay. The change is
-- given as change_mirror takes it; p_payload is the raw body as it was signed, or compressed as
-- p_payload_encoding says (see stack.webhook_events.payload_encoding).
-- Returns the outcome: 'applied', 'unchanged', 'stale', or 'duplicate' when the message was
-- recorded before (and p_replay is false). The message is recorded with its outcome in the same
-- transaction as the change. Changed rows are announced on p_feed_channel (see notify); null
-- or empty sends nothing.
create or replace function stack_sync.apply_event(
    p_svix_id text, p_event_type text, p_payload bytea, p_payload_encoding text,
    p_source_time timestamptz,
    p_kind text, p_removed boolean, p_user_id uuid, p_team_id uuid, p_permission_id text,
    p_row jsonb, p_raw jsonb, p_replay boolean, p_feed_channel text
) returns text
language plpgsql as $$
declare
    v_time timestamptz := coalesce(p_source_time, now());
    v_outcome text;
begin
    perform set_config('stack_sync.feed_channel', coalesce(p_feed_channel, ''), true);
    perform stack_sync.lock_ids(p_user_id, p_team_id);
    if not p_replay and exists (select 1 from stack.webhook_events where svix_id = p_svix_id) then
        return 'duplicate';
    end if;
    v_outcome := stack_sync.change_mirror(
        p_kind, p_removed, p_user_id, p_team_id, p_permission_id, p_row, p_raw, v_time, p_svix_id
    );
    if p_replay then
        insert into stack.webhook_events as e
            (svix_id, event_type, payload, payload_encoding, source_time, outcome)
        values (p_svix_id, p_event_type, p_payload, p_payload_encoding, v_time, v_outcome)
        on conflict (svix_id) do update set outcome = excluded.outcome, error = null;
    else
        -- A plain insert, as an insert that may conflict costs a WAL record more: the check
        -- above ran under the locks of the event's user or team, which every delivery of this
        -- message takes, so none of them can have inserted it since.
        insert into stack.webhook_events
            (svix_id, event_type, payload, payload_encoding, source_time, outcome)
        values (p_svix_id, p_event_type, p_payload, p_payload_encoding, v_time, v_outcome);
    end if;
    return v_outcome;
end;
$$;
