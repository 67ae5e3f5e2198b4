-- The change log (changes.enabled): one row per committed change of a mirror row, written by the
-- transaction that makes it, for consumers that resume from a position (see docs/design.md,
-- "A change log that cannot skip"). A position is (xid, seq): the writing transaction's id and
-- the row's number in insertion order. Rows are read only below the oldest transaction still
-- running (stack.settled_changes), so a reader never moves past a change that has yet to commit.
create table stack.changes (
    xid xid8 not null default pg_current_xact_id(),
    seq bigint generated always as identity,
    table_name text not null,
    operation text not null check (operation in ('insert', 'upsert', 'delete')),
    user_id uuid,
    team_id uuid,
    permission_id text,
    -- webhook, replay (both with svix_id), reconcile (with run_id), refresh or forget
    source text not null,
    svix_id text,
    run_id bigint,
    changed_at timestamptz not null default now(),
    primary key (xid, seq)
);

create index changes_changed_at on stack.changes (changed_at);

-- The changes every reader may take: those of transactions that have all ended.
create view stack.settled_changes as
select xid::text || '/' || seq as position, xid, seq, table_name, operation, user_id, team_id,
       permission_id, source, svix_id, run_id, changed_at
from stack.changes
where xid < pg_snapshot_xmin(pg_current_snapshot());

-- Whether writers log changes: one row, set by `serve` from changes.enabled at start, so that
-- every writer of the database (serve, reconcile, replay, refresh, forget) agrees.
create table stack_sync.change_log (
    only_row boolean primary key default true check (only_row),
    enabled boolean not null default false
);
insert into stack_sync.change_log default values;

-- Registered consumers and how far each has read (the forwarder is one, named after its sink):
-- pruning never removes what one of them has not read, up to changes.max_age_days.
create table stack_sync.change_consumers (
    name text primary key,
    xid xid8 not null,
    seq bigint not null,
    updated_at timestamptz not null default now()
);
