#!/usr/bin/env bash
# stack-sync against a minimal receiver written as Stack's docs suggest (verify, record the
# svix-id with on conflict do nothing, upsert the object, one transaction; see
# benches/throughput/minimal_receiver.rs), in one run, alternating, on the same Postgres: the
# rate, p50/p99, Postgres CPU and WAL per delivery for the realistic mix.
# Usage: bench/receivers.sh [senders] [events] [rounds]; DATABASE_URL names the server.
set -euo pipefail
cd "$(dirname "$0")/.."
senders="${1:-16}"
events="${2:-20000}"
rounds="${3:-3}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo build -q --release --bench throughput
for round in $(seq 1 "$rounds"); do
    for receiver in stack-sync minimal; do
        echo "== round $round: $receiver"
        RECEIVER="$receiver" MIX=1 CONCURRENCY="$senders" EVENTS="$events" \
            cargo bench -q --bench throughput 2>/dev/null | grep -E 'events/s|CPU|WAL'
    done
done
