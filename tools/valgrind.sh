#!/usr/bin/env bash
# Runs each test/valgrind/*.sql in a single-user ku9 backend under
# valgrind memcheck and prints "ok <name>" or "not ok <name>" per script.
# Usage: tools/valgrind.sh DIR   (DIR: a scratch directory the cluster
# owner can write)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tools/cluster.sh"
dir=$1
mkdir -p "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
as_pg "$PG_BINDIR/initdb" -D "$dir/data" -A trust >/dev/null 2>&1 || { echo "not ok initdb"; exit 1; }

status=0
for f in "$root"/test/valgrind/*.sql; do
    name=$(basename "$f" .sql)
    as_pg timeout 900 valgrind --error-exitcode=99 --leak-check=no --track-origins=yes -q \
        --suppressions="$root/test/valgrind/postgres.supp" \
        "$PG_BINDIR/postgres" --single -D "$dir/data" -c shared_preload_libraries=ku9 postgres \
        <"$f" >"$dir/$name.out" 2>&1
    rc=$?
    # a clean run exits 0 and valgrind reports nothing (it prefixes every
    # report, its own fatal errors included, with ==pid==)
    if [ "$rc" -ne 0 ] || grep -q '^==[0-9]*== ' "$dir/$name.out" ||
        grep -q "PANIC\|server process .* was terminated" "$dir/$name.out"; then
        echo "not ok $name"
        grep -A25 '==[0-9]*== [A-Z]' "$dir/$name.out" | head -n 60
        status=1
    else
        echo "ok $name"
    fi
done
exit $status
