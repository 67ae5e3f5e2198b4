#!/usr/bin/env bash
# What the change log costs, in one run: the webhook rate, p99, WAL and Postgres CPU per delivery
# for the realistic mix with the log off, on, and on with the forwarder publishing to NATS
# JetStream (NATS_URL, the machine's server by default), and the forwarder's drain time and
# end-to-end latency. Usage: bench/changes.sh [senders] [events]; DATABASE_URL names the server.
set -euo pipefail
cd "$(dirname "$0")/.."
senders="${1:-16}"
events="${2:-20000}"
nats="${NATS_URL:-nats://127.0.0.1:4222}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo build -q --release --bench throughput
run() {
    MIX=1 CONCURRENCY="$senders" EVENTS="$events" "$@" \
        cargo bench -q --bench throughput 2>/dev/null | grep -E 'events/s|CPU|WAL|forward:'
}
echo "== changes.enabled = false"; run env
echo "== changes.enabled = true"; run env CHANGES=1
echo "== changes.enabled = true, forwarding to $nats"; run env FORWARD_NATS="$nats"
