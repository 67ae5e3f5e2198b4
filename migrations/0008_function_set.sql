-- Which set of stack_sync functions the database holds, written by `migrate` in the transaction
-- that replaces them. A build refuses to put its own older set back over a newer one (see
-- store::schema): an older replica starting during a rolling deploy would otherwise do so.
create table stack_sync.function_set (
    only_row boolean primary key default true check (only_row),
    -- store::schema::FUNCTION_SET of the build that wrote the functions: raised with every
    -- change to them.
    version integer not null,
    -- sha-256 of the definitions, to tell two builds of one version apart.
    digest text not null,
    -- that build's version, for the message that refuses it.
    written_by text not null,
    written_at timestamptz not null default now()
);
