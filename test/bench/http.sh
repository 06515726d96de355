#!/usr/bin/env bash
# ku9's HTTP gateway (run by tools/bench.sh, which exports PG* for a database
# with ku9 installed, a superuser's connection, and KU9_HTTP_URL for the
# gateway serving that database; rate limits off).
#
#   rpc      wrk (HTTP_CONC connections, 2 threads, HTTP_DUR s, keep-alive)
#            against POST /rpc/<fn> vs pgbench (-M prepared, the same
#            number of clients, 2 threads, HTTP_DUR s) making the same call
#            over SQL: a trivial function (ku9_api.bench_echo(x) → x, as
#            ku9_anon) and find_one by _id in a 10,000-document owner
#            collection, as the owner (pgbench: BEGIN, role and claims with
#            set_config, the call, COMMIT — what a SQL client does to call
#            as a user).  Target: gateway req/s >= 0.7 x pgbench tps.
#   sse      test/bench/http/sse.mjs: SSE_CLIENTS streams (one user each,
#            all subscribed to one topic); RSS per idle stream; then
#            SSE_MESSAGES publishes, one per SSE_INTERVAL ms: events/s
#            delivered and publish-to-receive latency (target p99 < 50 ms).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DUR=${HTTP_DUR:-10}
CONC=${HTTP_CONC:-16}
URL=${KU9_HTTP_URL:?KU9_HTTP_URL is not set}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE OR REPLACE FUNCTION ku9_api.bench_echo(x integer) RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT x';
GRANT EXECUTE ON FUNCTION ku9_api.bench_echo(integer) TO ku9_anon, ku9_user;
SELECT ku9.create_collection('bench_http') WHERE NOT EXISTS (SELECT 1 FROM ku9.collections WHERE name = 'bench_http');
INSERT INTO ku9.users (id, email, email_confirmed_at)
VALUES ('00000000-0000-4000-8000-00000000be01', 'bench-http@example.com', now()) ON CONFLICT DO NOTHING;
NOTIFY pgrst;
SQL
uid=00000000-0000-4000-8000-00000000be01
claims="{\"sub\": \"$uid\", \"role\": \"ku9_user\"}"
psql -X -q -v ON_ERROR_STOP=1 -c "BEGIN" \
    -c "SELECT set_config('role', 'ku9_user', true), set_config('request.jwt.claims', '$claims', true)" \
    -c "SELECT ku9.insert_many('bench_http', (SELECT jsonb_agg(jsonb_build_object('n', g, 'title', 'doc ' || g)) FROM generate_series(1, 10000) g))" \
    -c "COMMIT" >/dev/null
id=$(psql -X -At -c "BEGIN" -c "SELECT set_config('role', 'ku9_user', true) IS NULL, set_config('request.jwt.claims', '$claims', true) IS NULL" \
    -c "SELECT ku9.find_one('bench_http', '{\"n\": 5000}')->>'_id'" -c "COMMIT" | sed -n 3p)
token=$(psql -X -At -c "SELECT ku9.jwt_sign(jsonb_build_object('sub', '$uid', 'role', 'ku9_user', 'aud', 'authenticated', 'exp', extract(epoch from now())::int + 3600))")
sleep 2   # the gateway reloads its catalog (NOTIFY pgrst)

cat >"$tmp/echo.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"x": 1}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$tmp/find.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"collection": "bench_http", "filter": {"_id": "$id"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
echo 'SELECT ku9_api.bench_echo(1);' >"$tmp/echo.sql"
cat >"$tmp/find.sql" <<SQL
BEGIN;
SELECT set_config('role', 'ku9_user', true), set_config('request.jwt.claims', '$claims', true);
SELECT ku9_api.find_one('bench_http', '{"_id": "$id"}');
COMMIT;
SQL
# what the gateway runs per request, over SQL as ku9_authenticator (token
# check, role, request settings, pre_request, the call): the HTTP layer's cost
cat >"$tmp/echo_gw.sql" <<SQL
BEGIN;
SELECT ku9._gateway_begin(NULL, 'POST', '/rpc/bench_echo', '{"content-type": "application/json", "x-forwarded-for": "127.0.0.1"}', '{}', false, 'rpc');
SELECT ku9_api.bench_echo(1);
COMMIT;
SQL
cat >"$tmp/find_gw.sql" <<SQL
BEGIN;
SELECT ku9._gateway_begin('$token', 'POST', '/rpc/find_one', '{"content-type": "application/json", "x-forwarded-for": "127.0.0.1"}', '{}', false, 'rpc');
SELECT ku9_api.find_one('bench_http', '{"_id": "$id"}');
COMMIT;
SQL

# sanity: both calls answer 200 with the expected body
curl -sf -X POST -H 'Content-Type: application/json' -d '{"x": 7}' "$URL/rpc/bench_echo" | grep -qx 7
curl -sf -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
    -d "{\"collection\": \"bench_http\", \"filter\": {\"_id\": \"$id\"}}" "$URL/rpc/find_one" | grep -q "$id"

wrk_run() {   # wrk_run SCRIPT PATH → "req/s p50 p99"
    wrk -t2 -c"$CONC" -d"${DUR}s" --latency -s "$1" "$URL$2" >"$tmp/wrk.out"
    if grep -q 'Non-2xx' "$tmp/wrk.out"; then cat "$tmp/wrk.out" >&2; echo "ku9 bench: non-2xx answers" >&2; exit 1; fi
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print r, p50, p99}' "$tmp/wrk.out"
}
pgb_run() {   # pgb_run SCRIPT [USER] → tps
    pgbench -n -M prepared -c "$CONC" -j 2 -T "$DUR" -f "$1" ${2:+-U "$2"} 2>/dev/null | awk '/^tps/ {print $3}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "| call | gateway (wrk) req/s | p50 | p99 | pgbench: the call alone | gateway / that | pgbench: the gateway's transaction | gateway / that |"
echo "|---|---|---|---|---|---|---|---|"
for what in echo find; do
    read -r rps p50 p99 < <(wrk_run "$tmp/$what.lua" "/rpc/$([ $what = echo ] && echo bench_echo || echo find_one)")
    tps=$(pgb_run "$tmp/$what.sql")
    tps_gw=$(pgb_run "$tmp/${what}_gw.sql" ku9_authenticator)
    label=$([ $what = echo ] && echo "trivial function (anon)" || echo "find_one by _id (user)")
    echo "| $label | ${rps%.*} | $p50 | $p99 | ${tps%.*} | $(ratio "$rps" "$tps") | ${tps_gw%.*} | $(ratio "$rps" "$tps_gw") |"
done
echo
echo "SSE (test/bench/http/sse.mjs):"
echo
echo "| | |"
echo "|---|---|"
KU9_HTTP_URL=$URL node "$here/http/sse.mjs"

psql -X -q -c "SELECT ku9.drop_collection('bench_http')" -c "DROP FUNCTION ku9_api.bench_echo(integer)" \
    -c "DELETE FROM ku9.users WHERE id = '$uid'" >/dev/null
