#!/usr/bin/env bash
# make bench: build and install ku9, start a throwaway cluster with ku9
# preloaded, and run every benchmark in test/bench/ against it.
#
# A benchmark is an executable test/bench/<name>.sh that reads the PG*
# environment (a database with ku9 installed) and prints its figures as a
# Markdown table.  Figures go to doc/benchmarks.md by hand, with the date
# and this command.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. tools/cluster.sh

bash tools/deps.sh
# wrk drives the HTTP benchmark
if ! command -v wrk >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
PG_BINDIR=$(pg_config --bindir)
make -s >/dev/null
make -s install >/dev/null

work=$(mktemp -d /tmp/ku9-bench.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown postgres "$work"
port=$(free_port $((59000 + RANDOM % 1000)))
conf=$(mktemp)
cat test/ku9.conf >"$conf"
echo "shared_buffers = '1GB'" >>"$conf"
# ku9's background workers (queue handlers, fan-out) run in the bench database
echo "ku9.database = 'ku9_bench'" >>"$conf"
# the HTTP gateway serves the bench database
http_port=$(free_port $((port + 1000)))
echo "ku9.http_port = $http_port" >>"$conf"
cluster_init "$work/pg" "$port" "$conf"
rm -f "$conf"
trap 'cluster_stop "$work/pg"; rm -rf "$work"' EXIT
cluster_start "$work/pg"

export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres PGDATABASE=ku9_bench
psql -X -q -d postgres -c 'CREATE DATABASE ku9_bench'
psql -X -q -c 'CREATE EXTENSION ku9 CASCADE' \
    -c "ALTER DATABASE ku9_bench SET ku9.jwt_secret = '$(head -c 36 /dev/urandom | base64 | tr -d '/+=\n')'" \
    -c 'ALTER DATABASE ku9_bench SET ku9.rate_limit_per_user = 0' \
    -c 'ALTER DATABASE ku9_bench SET ku9.rate_limit_per_address = 0' \
    -c 'ALTER ROLE ku9_authenticator LOGIN'
export KU9_HTTP_URL="http://127.0.0.1:$http_port"

echo "# ku9 benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, $("$PG_BINDIR/postgres" -V)"
for bench in test/bench/*.sh; do
    [ -e "$bench" ] || continue
    if [ -n "${BENCH:-}" ] && [ "$(basename "$bench" .sh)" != "$BENCH" ]; then
        continue
    fi
    echo
    echo "## $(basename "$bench" .sh)"
    bash "$bench"
done
