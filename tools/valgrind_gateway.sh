#!/usr/bin/env bash
# Runs a whole server under valgrind memcheck (every process it forks: the
# postmaster, backends, ku9's workers and the HTTP gateway worker) and the
# node gateway and event-stream tests against it; prints "ok gateway" when
# the tests pass and valgrind reports nothing, else "not ok gateway" and
# the reports.  Takes about 6 minutes; `make valgrind` runs it, `make test`
# does not.  Usage: tools/valgrind_gateway.sh DIR (a scratch directory).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tools/cluster.sh"
dir=$1
rm -rf "$dir"
mkdir -p "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
port=$(free_port $((56000 + RANDOM % 1000)))
http_port=$(free_port $((port + 1000)))
conf=$(mktemp)
cat "$root/test/ku9.conf" - >"$conf" <<CONF
ku9.workers = 1
ku9.http_port = $http_port
ku9.http_heartbeat = 2
CONF
cluster_init "$dir" "$port" "$conf" || { echo "not ok gateway (initdb)"; exit 1; }
rm -f "$conf"
as_pg valgrind --leak-check=no --track-origins=yes -q --log-file="$dir/vg.%p.log" \
    --suppressions="$root/test/valgrind/postgres.supp" \
    "$PG_BINDIR/postgres" -D "$dir/data" >"$dir/server.log" 2>&1 &
server=$!
trap 'as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1' EXIT
for _ in $(seq 1 180); do "$PG_BINDIR/pg_isready" -q -h "$dir" -p "$port" && break; sleep 1; done
psql="psql -X -q -h $dir -p $port -U postgres"
$psql -d postgres -c 'CREATE DATABASE ku9_node' &&
    $psql -d ku9_node -c 'CREATE EXTENSION ku9 CASCADE' \
        -c "ALTER DATABASE ku9_node SET ku9.jwt_secret = '$(head -c 36 /dev/urandom | base64 | tr -d '/+=\n')'" \
        -c 'ALTER DATABASE ku9_node SET ku9.bcrypt_cost = 4' -c 'ALTER ROLE ku9_authenticator LOGIN' ||
    { echo "not ok gateway (set-up)"; exit 1; }
cd "$root"
KU9_HTTP_URL="http://127.0.0.1:$http_port" PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=ku9_node \
    timeout 1200 node --test --test-concurrency=1 --test-reporter=tap \
    test/http/gateway.test.mjs test/http/events.test.mjs >"$dir/node.log" 2>&1
tests=$?
as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 300 stop >/dev/null
wait "$server" 2>/dev/null
trap - EXIT
reports=$(find "$dir" -name 'vg.*.log' -size +0 | sort)
if [ "$tests" -eq 0 ] && [ -z "$reports" ]; then
    echo "ok gateway"
    exit 0
fi
echo "not ok gateway (node tests exit $tests)"
grep -E '^not ok|^# (pass|fail)' "$dir/node.log"
for f in $reports; do echo "== $f"; head -n 80 "$f"; done
exit 1
