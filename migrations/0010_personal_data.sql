-- What a deleted user or team leaves in stack.webhook_events is erased with them (see the
-- README, "Personal data"). Each message records the ids of the user and team it is about, so
-- that deleting one can find the bodies that mention them; a body may be absent, because
-- webhook.keep_bodies did not keep it or because it was erased, and the row says which.
alter table stack.webhook_events
    alter column payload drop not null,
    add column user_id uuid,
    add column team_id uuid,
    add column erased_at timestamptz,
    add column erased_reason text
        check (erased_reason in ('user deleted', 'team deleted', 'forgotten')),
    add constraint webhook_events_erasure_check
        check ((erased_at is null) = (erased_reason is null)
               and (erased_at is null or payload is null));

comment on column stack.webhook_events.payload is
    'the body as signed (or compressed, see payload_encoding); null when webhook.keep_bodies did '
    'not keep it, or when it was erased (erased_at)';
comment on column stack.webhook_events.user_id is
    'the user the message is about, when its body names one (recorded from migration 0010 on)';
comment on column stack.webhook_events.team_id is
    'the team the message is about, when its body names one (recorded from migration 0010 on)';
comment on column stack.webhook_events.erased_reason is
    'why the body and error were erased: user deleted, team deleted, or forgotten (stack-sync forget)';

-- Only rows that still hold a body or an error are indexed: erasure looks for those alone
-- (stack_sync.erase_bodies repeats the predicate), and a row that kept neither, as applied
-- messages do by default, costs the indexes nothing.
create index webhook_events_user_id_idx on stack.webhook_events (user_id)
    where payload is not null or error is not null;
create index webhook_events_team_id_idx on stack.webhook_events (team_id)
    where payload is not null or error is not null;
