-- The writes of one user.updated webhook, done by Postgres alone as one statement per
-- transaction: record the message and upsert the user row with stack_sync.write_user, the
-- write the service uses. The baseline for benches/throughput.rs; what it leaves out is the
-- convergence bookkeeping (locks, duplicate check, versions). The row is made from `data` as
-- the service's validation makes it: each `<name>_millis` becomes a time named `<name>`.
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
    d.data || coalesce((
        select jsonb_object_agg(left(f.key, -7),
                                timestamptz 'epoch' + (f.value #>> '{}')::bigint * interval '1 ms')
        from jsonb_each(d.data) as f where f.key like '%\_millis'
    ), '{}'),
    d.data,
    event.svix_id
)
from event, data as d;
