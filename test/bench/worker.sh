#!/usr/bin/env bash
# ku9's queue handlers: how fast the background workers drain a backlog
# through a handler that does nothing, against the queue's own read+ack
# from as many clients as there are workers (run by tools/bench.sh, which
# exports PG* for a database with ku9 installed, the connection a
# superuser's, and ku9's workers running in that database).
#
#   workers   queue bench_h with the handler public.noop(ku9.message)
#             (LANGUAGE sql AS 'SELECT'), run as the role bench_worker, with
#             {"batch": N}.  The handler is disabled ({"enabled": false})
#             while BACKLOG messages go in with ku9.send_batch (chunks of
#             10,000, one transaction each) and the table is vacuumed; then
#             set_queue_handler enables it, which wakes the workers at
#             commit, and the time runs from just before that commit until
#             the queue table is empty (polled every 50 ms through its
#             dequeue index, on the server's clock).  msgs/s = BACKLOG /
#             that time.  Each worker round takes a batch with ku9.read (one
#             transaction), hands each message to the handler in a
#             subtransaction as bench_worker, acks the batch (a second
#             transaction), and looks for fan-out work.
#   read+ack  the same backlog in queue bench_q, drained by pgbench with as
#             many clients as workers run (ku9.workers, 2 by default), each
#             transaction SELECT ku9.ack('bench_q', ARRAY(SELECT msg_id FROM
#             ku9.read('bench_q', N, 30))) — one transaction where the
#             workers use two, and no handler call; pgbench -n -M prepared
#             -t BACKLOG / N / clients.  msgs/s = tps * N.
#
# For each N in BATCHES, REPS runs per side, the sides taking turns; the
# table shows medians and workers / read+ack.  A drain still running after
# MAX_S seconds is cut off (and counted with the messages it did).  The
# queues, the function and the role are dropped at the end (KEEP=1 keeps
# them).  About 4 minutes with the defaults on 2 cores.
#
#   BACKLOG=200000 BATCHES="10 100" REPS=3 MAX_S=300 BENCH=worker make bench
set -euo pipefail

BACKLOG=${BACKLOG:-200000}
BATCHES=${BATCHES:-10 100}
REPS=${REPS:-3}
MAX_S=${MAX_S:-300}
PGBENCH=${PGBENCH:-$(pg_config --bindir)/pgbench}
PAYLOAD='{"kind": "welcome_email", "user_id": 123456, "to": "ada@example.com", "locale": "en"}'

work=$(mktemp -d /tmp/ku9-worker-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$SECONDS

sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
val() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
log() { printf '%s\n' "$*" >&2; }

# median: the median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

workers_running() {
    val -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ku9 worker' AND datname = current_database()"
}

nworkers=$(workers_running)
if [ "$nworkers" -eq 0 ]; then
    # the launcher may still be starting them
    for _ in $(seq 20); do
        sleep 1
        nworkers=$(workers_running)
        [ "$nworkers" -gt 0 ] && break
    done
fi
if [ "$nworkers" -eq 0 ]; then
    log "no ku9 worker runs in database $(val -c 'SELECT current_database()'): nothing to measure"
    echo "No ku9 worker runs in this database (ku9 not preloaded, ku9.workers = 0, or ku9.database elsewhere): no figures."
    exit 0
fi
jobs=$(val -c 'SELECT count(*) FROM ku9.fanout_jobs')
[ "$jobs" -gt 0 ] && log "warning: $jobs fan-out jobs are waiting; the workers will spend time on them"

# ------------------------------------------------------------------------
# set-up
# ------------------------------------------------------------------------
log "set-up: queues bench_h (handler) and bench_q (read+ack), $nworkers workers"
drop_all() {
    sql <<'SQL'
SET client_min_messages = warning;
SELECT ku9.drop_queue('bench_h'), ku9.drop_queue('bench_q') \g /dev/null
DROP FUNCTION IF EXISTS public.noop(ku9.message);
DROP SCHEMA IF EXISTS bench_hq CASCADE;
DROP ROLE IF EXISTS bench_worker;
SQL
}
drop_all
sql -v payload="$PAYLOAD" <<'SQL'
SET client_min_messages = warning;
CREATE SCHEMA bench_hq;
CREATE ROLE bench_worker;
CREATE FUNCTION public.noop(m ku9.message) RETURNS void LANGUAGE sql AS 'SELECT';
REVOKE ALL ON FUNCTION public.noop(ku9.message) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.noop(ku9.message) TO bench_worker;
SELECT ku9.create_queue('bench_h'), ku9.create_queue('bench_q') \g /dev/null
SELECT ku9.set_queue_handler('bench_h', 'public.noop(ku9.message)', '{"role": "bench_worker", "enabled": false}') \g /dev/null

CREATE TABLE bench_hq.config AS SELECT (:'payload')::jsonb AS payload;

-- fill(queue, n): empty the queue, then send_batch chunks of 10,000 until it holds n
CREATE PROCEDURE bench_hq.fill(q text, n bigint) LANGUAGE plpgsql AS $$
DECLARE
    chunk jsonb := (SELECT jsonb_agg(payload) FROM bench_hq.config, generate_series(1, 10000));
    have bigint := 0;
BEGIN
    PERFORM ku9.purge_queue(q);
    COMMIT;
    WHILE have < n LOOP
        PERFORM count(*) FROM ku9.send_batch(q, CASE WHEN n - have >= 10000 THEN chunk
                                                     ELSE (SELECT jsonb_agg(e) FROM (SELECT e FROM jsonb_array_elements(chunk) e
                                                                                      LIMIT n - have) s) END);
        COMMIT;
        have := have + 10000;
    END LOOP;
END $$;

-- wait_empty(queue, t0, max_s): poll until the queue table is empty (or
-- max_s after t0); the seconds since t0 and what is left
CREATE PROCEDURE bench_hq.wait_empty(q text, t0 timestamptz, max_s float8,
                                     INOUT seconds float8 DEFAULT 0, INOUT left_over bigint DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
    probe text := format('SELECT msg_id FROM ku9_queue.%I ORDER BY priority DESC, msg_id LIMIT 1', 'q_' || q);
    id bigint;
BEGIN
    LOOP
        EXECUTE probe INTO id;
        EXIT WHEN id IS NULL OR clock_timestamp() - t0 > make_interval(secs => max_s);
        COMMIT;
        PERFORM pg_sleep(0.05);
    END LOOP;
    seconds := extract(epoch FROM clock_timestamp() - t0);
    EXECUTE format('SELECT count(*) FROM ku9_queue.%I', 'q_' || q) INTO left_over;
END $$;
SQL

results=$work/results
: >"$results"

# ------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------

# workers_run N: the workers drain BACKLOG messages with batches of N
workers_run() {
    local n=$1 s left msgs
    sql -c "CALL bench_hq.fill('bench_h', $BACKLOG)" -c 'VACUUM ANALYZE ku9_queue.q_bench_h' -c 'CHECKPOINT'
    read -r s left <<<"$(val -F ' ' -v n="$n" -v max="$MAX_S" <<'SQL'
SELECT clock_timestamp() AS t0 \gset
SELECT ku9.set_queue_handler('bench_h', 'public.noop(ku9.message)',
                             jsonb_build_object('role', 'bench_worker', 'batch', :n)) \g /dev/null
CALL bench_hq.wait_empty('bench_h', :'t0', :max);
SQL
)"
    sql -c "SELECT ku9.set_queue_handler('bench_h', 'public.noop(ku9.message)',
                                         jsonb_build_object('role', 'bench_worker', 'batch', $n, 'enabled', false))" >/dev/null
    msgs=$((BACKLOG - left))
    echo "$n workers $(awk -v m="$msgs" -v s="$s" 'BEGIN { print m / s }') $s $left" >>"$results"
    log "$(awk -v n="$n" -v m="$msgs" -v s="$s" -v l="$left" 'BEGIN { printf "  batch %4d  workers   %8d msgs in %7.3f s  %9.1f msgs/s%s", n, m, s, m / s, (l > 0 ? "  (cut off, " l " left)" : "") }')"
}

# readack_run N: pgbench clients drain BACKLOG messages with read+ack of N
readack_run() {
    local n=$1 out=$work/pgbench.out tps left per
    per=$(((BACKLOG + n * nworkers - 1) / (n * nworkers)))
    sql -c "CALL bench_hq.fill('bench_q', $BACKLOG)" -c 'VACUUM ANALYZE ku9_queue.q_bench_q' -c 'CHECKPOINT'
    cat >"$work/readack.sql" <<EOF
SELECT ku9.ack('bench_q', ARRAY(SELECT msg_id FROM ku9.read('bench_q', $n, 30)));
EOF
    if ! "$PGBENCH" -n -M prepared -f "$work/readack.sql" -c "$nworkers" -j "$nworkers" -t "$per" >"$out" 2>&1 ||
        grep -q 'aborted' "$out"; then
        cat "$out" >&2
        log "pgbench failed: read+ack $n"
        exit 1
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
    left=$(val -c 'SELECT count(*) FROM ku9_queue.q_bench_q')
    echo "$n readack $(awk -v t="$tps" -v n="$n" 'BEGIN { print t * n }') 0 $left" >>"$results"
    log "$(awk -v n="$n" -v t="$tps" -v l="$left" 'BEGIN { printf "  batch %4d  read+ack  %9.1f msgs/s%s", n, t * n, (l > 0 ? "  (" l " left)" : "") }')"
}

log "$REPS runs per batch size and side, $BACKLOG messages each"
for rep in $(seq "$REPS"); do
    log "run $rep"
    for n in $BATCHES; do
        workers_run "$n"
        readack_run "$n"
    done
done
log "done in $((SECONDS - started)) s"

if [ -z "${KEEP:-}" ]; then
    drop_all
fi

# ------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------
echo "A backlog of $BACKLOG messages drained by ku9's $nworkers workers through a no-op handler," \
     "and by $nworkers pgbench clients doing read+ack (-M prepared); medians of $REPS runs."
echo
echo "| batch | workers, msgs/s | read+ack, $nworkers clients, msgs/s | workers / read+ack |"
echo '|---:|---:|---:|---:|'
for n in $BATCHES; do
    w=$(awk -v n="$n" '$1 == n && $2 == "workers" { print $3 }' "$results" | median)
    r=$(awk -v n="$n" '$1 == n && $2 == "readack" { print $3 }' "$results" | median)
    awk -v n="$n" -v w="$w" -v r="$r" 'BEGIN { printf "| %d | %.0f | %.0f | %.2f |\n", n, w, r, w / r }'
done
cut=$(awk '$2 == "workers" && $5 > 0' "$results" | wc -l)
[ "$cut" -gt 0 ] && echo && echo "$cut worker runs were cut off after $MAX_S s."
exit 0
