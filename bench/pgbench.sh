#!/usr/bin/env bash
# Postgres's own commit rate for the work of one webhook, as one statement per transaction
# (pgbench_apply.sql), and the same through stack_sync.apply_event (pgbench_apply_event.sql),
# at the concurrency benches/throughput.rs uses. Usage: bench/pgbench.sh [clients] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-8}"
seconds="${2:-20}"
server="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
database="stack_sync_pgbench_$$"
url="${server%/*}/$database"
psql -q "$server" -c "create database $database"
trap 'psql -q "$server" -c "drop database $database with (force)"' EXIT
DATABASE_URL="$url" cargo run -q --release -- migrate
# The columns of a user row from its `data`, as the service's validation makes them: each
# `<name>_millis` becomes a time named `<name>` (jsonb_populate_record ignores the rest).
psql -q "$url" <<'SQL'
create function bench_row(data jsonb) returns jsonb language sql immutable as $$
    select data || coalesce(jsonb_object_agg(left(f.key, -7),
                                             timestamptz 'epoch' + (f.value #>> '{}')::bigint * interval '1 ms'), '{}')
    from jsonb_each(data) as f where f.key like '%\_millis'
$$;
SQL
payload="$(tr -d '\n' < samples/user.updated.json)"
for script in pgbench_apply.sql pgbench_apply_event.sql; do
    echo "$script:"
    pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -D user_count=1000 \
        -D "payload=$payload" -f "bench/$script" "$url" | grep -E 'tps|latency average'
done
