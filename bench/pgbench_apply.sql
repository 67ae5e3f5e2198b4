-- The writes of one user.updated webhook, done by Postgres alone as one statement per
-- transaction: record the message and upsert the user row with stack_sync.write_user, the
-- write the service uses. The baseline for benches/throughput.rs; what it leaves out is the
-- convergence bookkeeping (locks, duplicate check, versions). bench_row (bench/pgbench.sh) makes
-- the row's columns from `data` as the service's validation does.
-- Variables come from bench/pgbench.sh.
\set n random(1, 1000000000)
\set u random(1, :user_count)
with data as (
    select jsonb_set(jsonb_set((:payload)::jsonb -> 'data', '{id}', to_jsonb(md5(:u::text)::uuid)),
                     '{display_name}', to_jsonb('user ' || :n)) as data
),
event as (
    insert into stack.webhook_events (svix_id, event_type, payload, source_time, outcome)
    values ('msg_' || :client_id || '_' || :n || '_' || txid_current(), 'user.updated',
            convert_to(:payload, 'UTF8'), now(), 'applied')
    returning svix_id
)
select stack_sync.write_user(
    bench_row(d.data),
    d.data,
    event.svix_id
)
from event, data as d;
