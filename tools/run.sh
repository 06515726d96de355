#!/usr/bin/env bash
# make run: install what is missing, build and install ku9, and run a local
# PostgreSQL with ku9 (and pg_cron) preloaded, in the foreground, until
# Ctrl-C.  The cluster lives in .run/ and is reused by the next run.
#
#   KU9_PORT       TCP port on 127.0.0.1 (default 5433; Debian's own cluster
#                  usually takes 5432)
#   KU9_HTTP_PORT  port of the embedded HTTP gateway (default 3000)
#   KU9_DB         database to create with the extension (default ku9)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. tools/cluster.sh

port=${KU9_PORT:-5433}
http_port=${KU9_HTTP_PORT:-3000}
db=${KU9_DB:-ku9}
dir=$root/.run

bash tools/deps.sh
PG_BINDIR=$(pg_config --bindir)
make -s >/dev/null
make -s install >/dev/null

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [ ! -f "$dir/data/postmaster.pid" ]; then
    echo "ku9 run: port $port is taken; choose another with KU9_PORT=<port> make run" >&2
    exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null && [ ! -f "$dir/data/postmaster.pid" ]; then
    echo "ku9 run: port $http_port is taken; choose another with KU9_HTTP_PORT=<port> make run" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$root"; then
    echo "ku9 run: the postgres user cannot reach $root; make its parent directories searchable (chmod o+x)" >&2
    exit 1
fi

conf=$(mktemp)
secret=$(head -c 36 /dev/urandom | base64 | tr -d '/+=\n')
cat >"$conf" <<CONF
shared_preload_libraries = 'ku9, pg_cron'
ku9.database = '$db'
cron.database_name = '$db'
# a secret made for this development cluster (HS256 tokens)
ku9.jwt_secret = '$secret'
# the embedded HTTP gateway (PostgREST's protocol for ku9_api)
ku9.http_port = $http_port
CONF
cluster_init "$dir" "$port" "$conf"
rm -f "$conf"
# a cluster made by an earlier version of this script: set the gateway's port
if ! grep -q '^ku9.http_port' "$dir/data/postgresql.conf"; then
    echo "ku9.http_port = $http_port" >>"$dir/data/postgresql.conf"
else
    sed -i "s/^ku9.http_port = .*/ku9.http_port = $http_port/" "$dir/data/postgresql.conf"
fi
cluster_stop "$dir"    # a server left running by an earlier, killed run

# the server in the foreground: its log goes to this terminal
as_pg "$PG_BINDIR/postgres" -D "$dir/data" &
server=$!
stop() {
    trap - INT TERM
    echo
    echo "ku9 run: stopping the server"
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    exit 0
}
trap stop INT TERM

for _ in $(seq 1 120); do
    "$PG_BINDIR/pg_isready" -q -h "$dir" -p "$port" -U postgres && break
    kill -0 "$server" 2>/dev/null || { echo "ku9 run: the server did not start" >&2; exit 1; }
    sleep 0.5
done

psql="psql -X -q -h $dir -p $port -U postgres"
if [ -z "$($psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
    $psql -d postgres -c "CREATE DATABASE \"$db\""
fi
$psql -d "$db" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION IF NOT EXISTS ku9 CASCADE" \
    -c "CREATE EXTENSION IF NOT EXISTS pg_cron" \
    -c "ALTER EXTENSION ku9 UPDATE" \
    -c "ALTER ROLE ku9_authenticator LOGIN"

# 0.1 is in development: a database made by an older build keeps that
# build's objects (ALTER EXTENSION UPDATE has no newer version to go to)
if [ -z "$($psql -d "$db" -Atc "SELECT 1 FROM pg_proc WHERE proname = '_gateway_begin'")" ]; then
    echo "ku9 run: the database $db has ku9 from an older build; to start afresh (its data is lost):" >&2
    echo "ku9 run:   psql -h $dir -p $port -U postgres $db -c 'DROP EXTENSION ku9 CASCADE; CREATE EXTENSION ku9 CASCADE'" >&2
    echo "ku9 run: (or stop, remove $dir and run make run again)" >&2
fi

# the gateway connects as ku9_authenticator once it may log in
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$http_port/rpc/jwks")" = 200 ] && break
    sleep 0.2
done

cat <<MSG

  ku9 is running (PostgreSQL $("$PG_BINDIR/postgres" -V | awk '{print $3}'), data in $dir/data).

    psql -h $dir -p $port -U postgres $db
    psql postgresql://postgres@127.0.0.1:$port/$db

  HTTP gateway (PostgREST's protocol for ku9_api): http://127.0.0.1:$http_port

    curl -s http://127.0.0.1:$http_port/rpc/sign_up -H 'Content-Type: application/json' \\
         -d '{"email": "ada@example.com", "password": "correct horse battery"}'
    curl -s http://127.0.0.1:$http_port/rpc/sign_in -H 'Content-Type: application/json' \\
         -d '{"email": "ada@example.com", "password": "correct horse battery"}'
    curl -s http://127.0.0.1:$http_port/rpc/unread_count -H "Authorization: Bearer <access_token>"
    curl -s -N http://127.0.0.1:$http_port/events -H "Authorization: Bearer <access_token>"

  Press Ctrl-C to stop.

MSG
wait "$server"
