-- Erases what the recorded messages about one user or team could hold of personal data (the
-- body and the error, which may quote it), keeping what deduplication, ordering and the audit
-- trail need: the svix id, the type, the times, the outcome and the subject's ids. Each erased
-- row says when and why (p_reason: 'user deleted', 'team deleted' or 'forgotten'). Returns how
-- many rows it erased.
create or replace function stack_sync.erase_bodies(
    p_kind stack_sync.kind, p_id uuid, p_reason text
) returns bigint
language plpgsql as $$
declare
    v_erased bigint;
begin
    -- Two statements rather than one with a condition on p_kind, so that each is planned on its
    -- partial index (migration 0010), whose predicate the conditions repeat.
    case p_kind
    when 'user' then
        update stack.webhook_events
        set payload = null, payload_encoding = null, error = null,
            erased_at = now(), erased_reason = p_reason
        where user_id = p_id and (payload is not null or error is not null);
    when 'team' then
        update stack.webhook_events
        set payload = null, payload_encoding = null, error = null,
            erased_at = now(), erased_reason = p_reason
        where team_id = p_id and (payload is not null or error is not null);
    else
        raise exception 'only a user''s or a team''s messages can be erased, not a %''s', p_kind
            using errcode = 'invalid_parameter_value';
    end case;
    get diagnostics v_erased = row_count;
    return v_erased;
end;
$$;
