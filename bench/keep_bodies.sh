#!/usr/bin/env bash
# What each webhook.keep_bodies value costs Postgres, in one run: the webhook rate, the WAL per
# delivery and the replay log's size per million messages, for the realistic mix of event types.
# Usage: bench/keep_bodies.sh [senders] [events]; DATABASE_URL names the server.
set -euo pipefail
cd "$(dirname "$0")/.."
senders="${1:-16}"
events="${2:-20000}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
cargo build -q --release --bench throughput
for keep in all unapplied none; do
    echo "== keep_bodies = $keep"
    KEEP_BODIES="$keep" MIX=1 CONCURRENCY="$senders" EVENTS="$events" \
        cargo bench -q --bench throughput 2>/dev/null | grep -E 'events/s|CPU|WAL|replay log'
done
