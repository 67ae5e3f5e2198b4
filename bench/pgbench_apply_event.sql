-- One user.updated webhook through stack_sync.apply_event, as the service sends it (one call
-- per transaction), for comparison with pgbench_apply.sql; bench_row is defined in pgbench.sh.
-- Variables come from bench/pgbench.sh. The body is passed as received (no zstd in SQL), so
-- this records more bytes per webhook than the service, which compresses user objects.
\set n random(1, 1000000000)
\set u random(1, :user_count)
select stack_sync.apply_event(
    row(
        'msg_' || :client_id || '_' || :n || '_' || txid_current(),
        'user.updated',
        convert_to(:payload, 'UTF8'),
        null,
        clock_timestamp()
    )::stack_sync.message,
    row('user', false, md5(:u::text)::uuid, null, null, bench_row(d.data), d.data)::stack_sync.change,
    false,
    null
)
from (
    select jsonb_set(jsonb_set((:payload)::jsonb -> 'data', '{id}', to_jsonb(md5(:u::text)::uuid)),
                     '{display_name}', to_jsonb('user ' || :n)) as data
) as d;
