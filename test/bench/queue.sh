#!/usr/bin/env bash
# ku9 queues against the raw-SQL limit and against PgQ, pg-boss and
# graphile-worker, on the same cluster in one run (run by tools/bench.sh,
# which exports PG* for a database with ku9 installed).
#
#   raw SQL  pgbench scripts on tables shaped like ku9's q_<name> (same
#            columns, same three indexes): plain INSERT, the hand-written
#            DELETE ... WHERE msg_id IN (SELECT ... FOR UPDATE SKIP LOCKED
#            LIMIT n) dequeue, and "same work" (the UPDATE ... SKIP LOCKED
#            that hides a message plus the DELETE that acks it), SELECT 1
#   ku9      the same pgbench harness calling ku9.send, send_batch, read,
#            ack, pop
#   PgQ      pgbench calling insert_event, next_batch, get_batch_events,
#            finish_batch, with pgq.ticker() called by the benchmark
#   Node     pg-boss, graphile-worker and ku9 through node-postgres, with
#            the same loops (queue/peers.mjs); wake-up latencies
#
# Every pgbench figure is the median of REPS runs of DUR seconds, the
# systems taking turns; read figures start from a standing backlog of
# BACKLOG messages, freshly vacuumed.  Installs what it needs: the Debian
# package postgresql-15-pgq3 (as root) and the npm packages of
# test/bench/package.json.
#
#   DUR=2 REPS=3 BACKLOG=1000000 PEER_BACKLOG=100000 BENCH=queue make bench
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=$here/queue
DUR=${DUR:-2}
REPS=${REPS:-3}
BACKLOG=${BACKLOG:-1000000}
PGBENCH=${PGBENCH:-$(pg_config --bindir)/pgbench}
PAYLOAD='{"kind": "welcome_email", "user_id": 123456, "to": "ada@example.com", "locale": "en"}'
BATCH="[$(for i in $(seq 100); do printf '%s%s' "$([ "$i" -gt 1 ] && echo ', ')" "$PAYLOAD"; done)]"
# PgQ reads run a fixed number of batches (-t): one tick per batch has to be
# made beforehand
PGQ_T1=${PGQ_T1:-1500}
PGQ_T100=${PGQ_T100:-600}
export DUR BACKLOG PAYLOAD

work=$(mktemp -d /tmp/ku9-queue-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$SECONDS

sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
log() { printf '%s\n' "$*" >&2; }

# ------------------------------------------------------------------------
# what the peers need
# ------------------------------------------------------------------------
have_pgq=true
if [ ! -f "$(pg_config --sharedir)/extension/pgq.control" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        log "installing postgresql-15-pgq3"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends postgresql-15-pgq3 >/dev/null
    else
        log "PgQ is not installed (postgresql-15-pgq3) and this is not root: PgQ is left out"
        have_pgq=false
    fi
fi
have_node=true
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "node/npm missing: pg-boss and graphile-worker are left out"
    have_node=false
elif [ ! -d "$here/node_modules/pg-boss" ] || [ ! -d "$here/node_modules/graphile-worker" ] ||
     [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
    log "npm ci in test/bench"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# ------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------

# render TEMPLATE KEY=VALUE...: the pgbench script with @KEY@ replaced
render() {
    local src=$dir/$1 out expr=""
    out=$(mktemp "$work/XXXXXX.$1")
    shift
    for kv in "$@"; do
        expr="$expr; s/@${kv%%=*}@/${kv#*=}/g"
    done
    sed "${expr#; }" "$src" >"$out"
    echo "$out"
}

# pgbench_run FIGURE SYSTEM MSGS_PER_TXN CLIENTS SCRIPT [pgbench options]:
# one run; records msgs/s = tps * MSGS_PER_TXN
pgbench_run() {
    local figure=$1 system=$2 per=$3 clients=$4 script=$5
    shift 5
    local threads=$((clients < 2 ? clients : 2)) out=$work/pgbench.out tps
    local limit=(-T "$DUR")
    [ "$#" -gt 0 ] && limit=()
    if ! "$PGBENCH" -n -M prepared -f "$script" -c "$clients" -j "$threads" "${limit[@]}" "$@" \
        -D payload="$PAYLOAD" -D batch="$BATCH" >"$out" 2>&1 ||
        grep -q 'aborted' "$out"; then
        cat "$out" >&2
        log "pgbench failed: $figure / $system"
        exit 1
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
    sql -c "INSERT INTO bench.results (figure, system, value) VALUES ('$figure', '$system', $tps * $per)"
    log "$(awk -v s="$system" -v f="$figure" -v v="$tps" -v n="$per" 'BEGIN { printf "  %-16s %-16s %10.1f msgs/s", s, f, v * n }')"
}

# vacuum TABLE...: VACUUM ANALYZE, so every run starts from the same state
vacuum() {
    local t
    for t in "$@"; do
        sql -c "VACUUM ANALYZE $t"
    done
}

# ------------------------------------------------------------------------
# set-up and the standing backlogs
# ------------------------------------------------------------------------
log "set-up: queues, raw tables, a backlog of $BACKLOG messages each"
sql -v payload="$PAYLOAD" -f "$dir/setup.sql" >/dev/null
t0=$SECONDS
sql -c "CALL bench.fill_ku9('bench', $BACKLOG)"
sql -c "CALL bench.fill_raw('raw_q', $BACKLOG)"
if $have_pgq; then
    sql -v k1=$((PGQ_T1 * REPS)) -v k100=$((PGQ_T100 * REPS)) -v backlog="$BACKLOG" -v clients=16 \
        -f "$dir/pgq.sql" >/dev/null
fi
sql -c 'CHECKPOINT'
log "  filled in $((SECONDS - t0)) s"

# ------------------------------------------------------------------------
# pgbench: raw SQL, ku9, PgQ
# ------------------------------------------------------------------------
log "pgbench, $REPS runs of $DUR s each"
for rep in $(seq "$REPS"); do
    log "run $rep"
    pgbench_run 'select 1' raw 1 1 "$dir/select1.sql"

    pgbench_run 'send 1' raw 1 1 "$(render raw_send.sql T=raw_send)"
    pgbench_run 'send 1' ku9 1 1 "$(render ku9_send.sql Q=bench_send)"
    $have_pgq && pgbench_run 'send 1' PgQ 1 1 "$(render pgq_send.sql Q=pgq_send)"
    pgbench_run 'send batch 100' raw 100 1 "$(render raw_send_batch.sql T=raw_send)"
    pgbench_run 'send batch 100' ku9 100 1 "$(render ku9_send_batch.sql Q=bench_send)"
    $have_pgq && pgbench_run 'send batch 100' PgQ 100 1 "$(render pgq_send_batch.sql Q=pgq_send)"

    for n in 1 100; do
        # raw: DELETE ... SKIP LOCKED (the limit), then UPDATE + DELETE (same work)
        sql -c "CALL bench.fill_raw('raw_q', $BACKLOG)"
        vacuum bench.raw_q
        pgbench_run "read+ack $n" raw "$n" 1 "$(render raw_pop.sql T=raw_q N="$n")"
        sql -c "CALL bench.fill_raw('raw_q', $BACKLOG)"
        vacuum bench.raw_q
        pgbench_run "read+ack $n" 'raw same' "$n" 1 "$(render raw_readack.sql T=raw_q N="$n")"
        sql -c "CALL bench.fill_ku9('bench', $BACKLOG)"
        vacuum ku9_queue.q_bench
        pgbench_run "read+ack $n" ku9 "$n" 1 "$(render ku9_readack.sql Q=bench N="$n")"
        sql -c "CALL bench.fill_ku9('bench', $BACKLOG)"
        vacuum ku9_queue.q_bench
        pgbench_run "pop $n" ku9 "$n" 1 "$(render ku9_pop.sql Q=bench N="$n")"
        if $have_pgq; then
            vacuum pgq.subscription pgq.tick
            if [ "$n" = 1 ]; then
                pgbench_run "read+ack $n" PgQ 1 1 "$(render pgq_read.sql Q=pgq_bench C=c1)" -t "$PGQ_T1"
            else
                pgbench_run "read+ack $n" PgQ 100 1 "$(render pgq_read.sql Q=pgq_bench C=c100)" -t "$PGQ_T100"
            fi
        fi
    done

    for c in 1 4 16; do
        vacuum "bench.raw_e2e_$c"
        pgbench_run "e2e $c" raw 1 "$c" "$(render raw_e2e.sql T="raw_e2e_$c")"
        vacuum "bench.raw_same_$c"
        pgbench_run "e2e $c" 'raw same' 1 "$c" "$(render raw_e2e_same.sql T="raw_same_$c")"
        vacuum "ku9_queue.q_e2e_$c"
        pgbench_run "e2e $c" ku9 1 "$c" "$(render ku9_e2e.sql Q="e2e_$c")"
        if $have_pgq; then
            vacuum pgq.subscription pgq.tick
            pgbench_run "e2e $c" PgQ 1 "$c" "$(render pgq_e2e.sql Q=pgq_e2e_)"
        fi
    done
done

# ------------------------------------------------------------------------
# Node: ku9, pg-boss, graphile-worker through node-postgres; wake-ups
# ------------------------------------------------------------------------
if $have_node; then
    log "node: ku9, pg-boss, graphile-worker, $DUR s each"
    (cd "$here" && node queue/peers.mjs ku9 pgboss graphile wakeup)
fi

log "done in $((SECONDS - started)) s"
sql -v reps="$REPS" -v dur="$DUR" -v backlog="$BACKLOG" -f "$dir/report.sql"
