#!/usr/bin/env bash
# What refresh.enabled costs, in one run: the webhook rate, p99, WAL and Postgres CPU per delivery
# for the realistic mix with refresh off and on (against a fake API answering in LATENCY_MS, 40 by
# default), the API requests per webhook, and how long the queue takes to drain after the burst.
# Usage: bench/refresh.sh [senders] [events]; DATABASE_URL names the server.
set -euo pipefail
cd "$(dirname "$0")/.."
senders="${1:-16}"
events="${2:-20000}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo build -q --release --bench throughput
for refresh in 0 1; do
    echo "== refresh.enabled = $([ "$refresh" = 1 ] && echo true || echo false)"
    REFRESH="$refresh" MIX=1 CONCURRENCY="$senders" EVENTS="$events" \
        cargo bench -q --bench throughput 2>/dev/null | grep -E 'events/s|CPU|WAL|refresh:'
done
