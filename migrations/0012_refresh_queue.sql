-- What `serve` is still to fetch from Stack's API after a webhook (refresh.enabled): one row
-- per user or team, however many webhooks asked for it before it was fetched. Kept here, not in
-- memory, so that a restart loses nothing and every replica shares the work.
create table stack_sync.refresh_queue (
    kind text not null check (kind in ('user', 'team')),
    id uuid not null,
    -- Also fetch the memberships and permissions (after a user.created or team.created).
    with_links boolean not null,
    -- Requests since the last fetch: more than one is coalesced into it.
    requests integer not null default 1,
    first_requested_at timestamptz not null default now(),
    requested_at timestamptz not null default now(),
    -- When a worker may take it next: after the coalescing delay, a worker's lease, or the
    -- back-off after a failure.
    due_at timestamptz not null,
    -- The worker that holds it (a process's random id), until it finishes, fails or releases it.
    claimed_by uuid,
    attempts integer not null default 0,
    last_error text,
    primary key (kind, id)
);

create index refresh_queue_due on stack_sync.refresh_queue (due_at);
