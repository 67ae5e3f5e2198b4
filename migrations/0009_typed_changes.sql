-- The vocabulary the service and the functions share, typed: a kind of mirrored row, a change to
-- one, and a message that brought changes. The service binds a stack_sync.change and a
-- stack_sync.message where it bound fourteen positional parameters, and reconcile one array of
-- changes where it bound five parallel ones. The tables keep text kinds: the labels are the same,
-- and changing the columns' type would rewrite stack_sync.versions under a lock.
create type stack_sync.kind as enum (
    'user', 'team', 'team_member', 'team_permission', 'project_permission'
);

create type stack_sync.change as (
    kind stack_sync.kind,
    -- whether the row goes: a deletion, or a membership or permission taken away
    removed boolean,
    -- the row's ids, null where its kind has none
    user_id uuid,
    team_id uuid,
    permission_id text,
    -- a user's or team's validated columns (model::Row), and Stack's object as received (raw)
    columns jsonb,
    raw jsonb
);

create type stack_sync.message as (
    svix_id text,
    event_type text,
    -- the body as signed, or compressed as payload_encoding says (stack.webhook_events)
    payload bytea,
    payload_encoding text,
    -- when Svix created the message; null orders it by arrival
    source_time timestamptz
);
