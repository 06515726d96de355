#!/usr/bin/env bash
# make test: install what is missing, build, install, start a throwaway
# cluster, run every suite, stop the cluster, and end with one line
# "N passed, N failed".  Exit status is non-zero on any failure.
#
# Suites: pg_regress (sql/, expected/), isolation (test/isolation/),
# TAP (test/t/, each test makes its own clusters), valgrind (test/valgrind/,
# single-user backends under memcheck), node (test/http/).
# They run as the postgres user in a copy of the tree that it can write.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. tools/cluster.sh

die() { echo "ku9 test: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

bash tools/deps.sh || die "could not install the Debian packages"
PG_BINDIR=$(pg_config --bindir)
make -s KU9_WERROR=1 >/dev/null || die "build failed"
make -s install >/dev/null || die "make install failed"
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed"
fi

work=$(mktemp -d /tmp/ku9-test.XXXXXX)
chmod 755 "$work"
mkdir "$work/tree"
tar --exclude=node_modules --exclude=./.git --exclude=./.run --exclude=./.test -cf - . | tar -C "$work/tree" -xf -
[ "$(id -u)" -eq 0 ] && chown -R postgres "$work"

port=$(free_port $((54000 + RANDOM % 5000)))
http_port=$(free_port $((port + 1000)))
trap 'cluster_stop "$work/pg"' EXIT
# the main cluster also runs the HTTP gateway, for the node tests
cat test/ku9.conf - >"$work/ku9.conf" <<CONF
ku9.http_port = $http_port
ku9.http_heartbeat = 2
CONF
cluster_init "$work/pg" "$port" "$work/ku9.conf" || die "initdb failed"
cluster_start "$work/pg" || die "the test cluster did not start"
export PGHOST="$work/pg" PGPORT="$port" PGUSER=postgres

passed=0
failed=0
failures=()
mkdir -p .test

# tally NAME STATUS LOG PASS_REGEX FAIL_REGEX: add a suite's results; a
# suite that failed without a failing test counts as one failure
tally() {
    local name=$1 status=$2 log=$3 p f
    p=$(grep -cE "$4" "$log")
    f=$(grep -cE "$5" "$log")
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    echo "== $name: $p passed, $f failed"
    if [ "$f" -ne 0 ]; then
        failures+=("$name")
        cp "$log" ".test/$name.log"
    fi
}

# pg_regress and the isolation tester print "name ... ok" (PG 15) or TAP
# lines (PG 16+)
regress_ok='(\.\.\. ok)|(^ok [0-9]+ )'
regress_fail='(\.\.\. FAILED)|(\.\.\. failed)|(^not ok [0-9]+ )'

echo "== pg_regress"
as_pg make -C "$work/tree" -s check-regress >"$work/regress.log" 2>&1
tally regress $? "$work/regress.log" "$regress_ok" "$regress_fail"
[ -f "$work/tree/regression.diffs" ] && cp "$work/tree/regression.diffs" .test/regression.diffs

echo "== isolation"
as_pg make -C "$work/tree" -s check-isolation >"$work/isolation.log" 2>&1
tally isolation $? "$work/isolation.log" "$regress_ok" "$regress_fail"
[ -f "$work/tree/output_iso/regression.diffs" ] && cp "$work/tree/output_iso/regression.diffs" .test/isolation.diffs

echo "== TAP"
as_pg make -C "$work/tree" -s check-tap PROVE_FLAGS=-v >"$work/tap.log" 2>&1
tally tap $? "$work/tap.log" '^\s*ok [0-9]+' '^\s*not ok [0-9]+'
[ -d "$work/tree/tmp_check/log" ] && rm -rf .test/tap-logs && cp -r "$work/tree/tmp_check/log" .test/tap-logs

echo "== valgrind"
bash tools/valgrind.sh "$work/valgrind" >"$work/valgrind.log" 2>&1
tally valgrind $? "$work/valgrind.log" '^ok ' '^not ok '

echo "== node"
if [ -d test/http ] && ls test/http/*.test.mjs >/dev/null 2>&1; then
    psql -X -q -d postgres -c 'CREATE DATABASE ku9_node' &&
        psql -X -q -d ku9_node -c 'CREATE EXTENSION ku9 CASCADE' \
            -c "ALTER DATABASE ku9_node SET ku9.jwt_secret = '$(head -c 36 /dev/urandom | base64 | tr -d '/+=\n')'" \
            -c 'ALTER DATABASE ku9_node SET ku9.bcrypt_cost = 4' \
            -c 'ALTER ROLE ku9_authenticator LOGIN' ||
        die "could not create the node test database"
    KU9_HTTP_URL="http://127.0.0.1:$http_port" PGHOST=127.0.0.1 PGDATABASE=ku9_node node --test --test-concurrency=1 --test-reporter=tap test/http/ >"$work/node.log" 2>&1
    status=$?
    p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$work/node.log" | tail -n 1)
    f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$work/node.log" | tail -n 1)
    p=${p:-0} f=${f:-0}
    [ "$status" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p))
    failed=$((failed + f))
    echo "== node: $p passed, $f failed"
    if [ "$f" -ne 0 ]; then failures+=(node); cp "$work/node.log" .test/node.log; fi
fi

if [ "$failed" -ne 0 ]; then
    for name in "${failures[@]}"; do
        echo "---- $name (log in .test/$name.log) ----"
        case $name in
            regress) cat .test/regression.diffs 2>/dev/null | head -n 200 ;;
            isolation) cat .test/isolation.diffs 2>/dev/null | head -n 200 ;;
            *) grep -vE '^\s*ok [0-9]+' ".test/$name.log" | tail -n 80 ;;
        esac
    done
    echo "---- server log (tail) ----"
    tail -n 40 "$work/pg/server.log"
fi

cluster_stop "$work/pg"
trap - EXIT
[ "$failed" -eq 0 ] && rm -rf "$work"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
