#!/usr/bin/env bash
# The webhook rate of one build, in one run, by the way it reaches Postgres: directly without
# TLS, directly over TLS, and through PgBouncer (Debian's, default settings, session mode).
# Usage: bench/databases.sh [senders] [events]; DATABASE_URL names the server (its ssl must be
# on, as Debian's default cluster has it).
set -euo pipefail
cd "$(dirname "$0")/.."
senders="${1:-16}"
events="${2:-20000}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
host=$(python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 5432, p.username or "postgres")' "$DATABASE_URL")
read -r pg_host pg_port pg_user <<<"$host"

dir=$(mktemp -d)
trap 'kill "$(cat "$dir/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '"%s" ""\n' "$pg_user" > "$dir/users.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = session
INI
chmod -R a+rX "$dir"
# PgBouncer will not run as root.
if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); else run=(); fi
"${run[@]}" /usr/sbin/pgbouncer "$dir/pgbouncer.ini" >"$dir/log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

cargo build -q --release --bench throughput
for way in "direct, no TLS:SSLMODE=disable" "direct, TLS:SSLMODE=require" \
           "PgBouncer session mode, no TLS:SSLMODE=disable VIA_PORT=$port"; do
    echo "== ${way%%:*}"
    if ! env ${way#*:} MIX=1 CONCURRENCY="$senders" EVENTS="$events" \
        cargo bench -q --bench throughput 2>"$dir/bench.err" | grep -E 'events/s|CPU|WAL'; then
        tail -n 20 "$dir/bench.err" "$dir/log"
        exit 1
    fi
done
