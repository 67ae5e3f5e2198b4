-- Records a message that changes nothing in the mirror: 'ignored' (a type not mirrored) or
-- 'failed' (verified but unusable, with p_error saying why). p_user_id and p_team_id are the
-- subject the body names, as far as it could be read; under their locks, a body and error about
-- a deleted user or team are not kept (erasure_of). Returns false when the message was recorded
-- before, which p_replay overwrites instead (its outcome, error and body).
create or replace function stack_sync.record_unapplied(
    p_message stack_sync.message, p_user_id uuid, p_team_id uuid, p_outcome text,
    p_error text, p_replay boolean
) returns boolean
language plpgsql as $$
declare
    v_erased text;
    v_recorded boolean;
begin
    perform stack_sync.lock_ids(array[p_user_id, p_team_id]);
    if p_message.payload is not null or p_error is not null then
        v_erased := stack_sync.erasure_of(p_user_id, p_team_id);
    end if;
    insert into stack.webhook_events as e
        (svix_id, event_type, outcome, payload, payload_encoding, error, source_time, user_id,
         team_id, erased_at, erased_reason)
    values (
        p_message.svix_id, p_message.event_type, p_outcome,
        case when v_erased is null then p_message.payload end,
        case when v_erased is null then p_message.payload_encoding end,
        case when v_erased is null then p_error end,
        coalesce(p_message.source_time, now()), p_user_id, p_team_id,
        case when v_erased is not null then now() end, v_erased
    )
    on conflict (svix_id) do update
    set outcome = excluded.outcome, error = excluded.error, payload = excluded.payload,
        payload_encoding = excluded.payload_encoding, erased_at = excluded.erased_at,
        erased_reason = excluded.erased_reason
    where p_replay
    returning true into v_recorded;
    return coalesce(v_recorded, false);
end;
$$;
