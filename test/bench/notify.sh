#!/usr/bin/env bash
# ku9 notifications: publishing to large audiences, reading a busy inbox, and
# the push fan-out of one message to a million devices (run by
# tools/bench.sh, which exports PG* for a database with ku9 installed, the
# connection a superuser's, and ku9's workers running in that database).
#
#   publish    SELECT ku9.publish(topic, '{"title": "hello"}') with pgbench
#              (-n -M prepared, one client, REPS runs of DUR s per audience,
#              the audiences taking turns) on topics with AUDIENCES
#              subscribers, made with {"user_channels": false}: a topic
#              message is stored once, so the latency should not grow with
#              the audience (target: largest / 1 <= 1.5).  Once more for the
#              smallest and the largest audience with user_channels true: the
#              workers then NOTIFY every subscriber's channel after each
#              publish, in the background on the same cores (the smallest
#              audience is the control: the same publish, next to no fan-out
#              work); the fan-out jobs left are deleted after each run.
#   inbox      one user subscribed to INBOX_TOPICS topics holding
#              INBOX_MESSAGES messages (round-robin over the topics, all
#              published after the subscriptions), INBOX_DIRECT direct
#              notifications among them and every 10th message already read.
#              pgbench, one client, connected as ku9_user with the user's
#              request.jwt.claims (PGOPTIONS), INBOX_DUR s per figure after
#              a 1 s warm-up (another session); p50 / p99 from the
#              per-transaction log (-l), and the mean of the session's first
#              five calls (PL/pgSQL gives them custom plans, which JIT
#              compiles when they cost more than jit_above_cost):
#              inbox(0, 50), inbox(<random id>, 50), unread_count(),
#              mark_read(50 consecutive ids from a random place).
#   push       PUSH_USERS users with PUSH_DEVICES devices each, all
#              subscribed to one topic; publish(..., push => true) and the
#              time until its fan-out is done, in devices/s:
#              - ku9.fanout_step(PUSH_BATCH) called in a loop, one
#                transaction per call as the workers do (a procedure that
#                COMMITs after each call), in a second database
#                <PGDATABASE>_fanout with ku9, where no worker competes;
#              - the same data in that database, with raw SQL: one INSERT ...
#                SELECT of every (subscriber, device) row into a plain table,
#                and one INSERT of the same rows aggregated by PUSH_BATCH
#                devices into jsonb messages shaped like ku9_push's into a
#                copy of its queue table (median of REPS runs each);
#              - ku9's workers in this database (users, devices and topic
#                made the same way): the publish commits, then the poll of
#                ku9.fanout_jobs until the job is gone.
#              A fan-out still running after FANOUT_MAX s is cut off
#              (recorded as such, with the devices done so far).
#
# The data go in with INSERT ... SELECT straight into ku9's tables
# (users with generated emails u<n>@bench.example, subscriptions with
# from_id from ku9.notification_seq), with session_replication_role =
# replica so that foreign keys are not checked row by row (the rows are
# consistent by construction).  Everything is deleted at the end (KEEP=1
# keeps it; the second database is always dropped), and so are every
# waiting fan-out job and the messages of ku9_push.  About 6 minutes with
# the defaults on 2 cores (1 for loading and cleaning up, 1.5 for the
# FANOUT_MAX cut-offs).
#
#   AUDIENCES="1 1000 100000 1000000" DUR=5 REPS=3 INBOX_TOPICS=1000 \
#   INBOX_MESSAGES=100000 INBOX_DUR=10 PUSH_USERS=200000 PUSH_DEVICES=5 \
#   PUSH_BATCH=500 FANOUT_MAX=40 BENCH=notify make bench
set -euo pipefail

AUDIENCES=${AUDIENCES:-1 1000 100000 1000000}
DUR=${DUR:-5}
REPS=${REPS:-3}
INBOX_TOPICS=${INBOX_TOPICS:-1000}
INBOX_MESSAGES=${INBOX_MESSAGES:-100000}
INBOX_DIRECT=${INBOX_DIRECT:-20}
INBOX_DUR=${INBOX_DUR:-10}
PUSH_USERS=${PUSH_USERS:-200000}
PUSH_DEVICES=${PUSH_DEVICES:-5}
PUSH_BATCH=${PUSH_BATCH:-500}
FANOUT_MAX=${FANOUT_MAX:-40}
PGBENCH=${PGBENCH:-$(pg_config --bindir)/pgbench}
PAYLOAD='{"title": "hello"}'
DB=${PGDATABASE:-$(psql -X -At -c 'SELECT current_database()')}
FANOUT_DB=${DB}_fanout
LARGEST=$(printf '%s\n' $AUDIENCES | sort -n | tail -n 1)
SMALLEST=$(printf '%s\n' $AUDIENCES | sort -n | head -n 1)
NUSERS=$((LARGEST > PUSH_USERS ? LARGEST : PUSH_USERS))
DEVICES=$((PUSH_USERS * PUSH_DEVICES))

work=$(mktemp -d /tmp/ku9-notify-bench.XXXXXX)
chmod 755 "$work"
started=$SECONDS

sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
val() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
log() { printf '%s\n' "$*" >&2; }

cleanup_fanout_db() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $FANOUT_DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'cleanup_fanout_db; rm -rf "$work"' EXIT

# ------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------

# pgbench_run OUT SCRIPT [pgbench options]: one run, its output in OUT
pgbench_run() {
    local out=$1 script=$2
    shift 2
    if ! "$PGBENCH" -n -M prepared -f "$script" "$@" >"$out" 2>&1 || grep -q 'aborted' "$out"; then
        cat "$out" >&2
        log "pgbench failed: $script"
        exit 1
    fi
}

# median: the median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# percentiles FILE...: "n mean p50 p99" of the latencies (µs, field 3) of
# pgbench per-transaction logs, in ms
percentiles() {
    cat "$@" | awk '{ print $3 }' | sort -n | awk '
        { v[NR] = $1; s += $1 }
        END {
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
            printf "%d %.3f %.3f %.3f\n", NR, s / NR / 1000, v[i50] / 1000, v[i99] / 1000
        }'
}

# workers_running: how many ku9 workers run in this database
workers_running() {
    val -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ku9 worker' AND datname = current_database()"
}

# clean: delete what an earlier run of this benchmark left in the database
clean() {
    sql <<'SQL'
SET client_min_messages = warning;
DELETE FROM ku9.fanout_jobs j USING ku9.notifications n, ku9.topics t
    WHERE n.id = j.notification_id AND t.id = n.topic_id AND t.name LIKE 'bench\_%';
SELECT ku9.purge_queue('ku9_push') \g /dev/null
CREATE TEMP TABLE gone AS SELECT id FROM ku9.users WHERE email LIKE '%@bench.example';
-- the rows that name the users, then the users without the per-row
-- foreign key triggers (nothing names them any more)
DELETE FROM ku9.subscriptions s USING ku9.topics t WHERE t.id = s.topic_id AND t.name LIKE 'bench\_%';
DELETE FROM ku9.subscriptions WHERE user_id IN (SELECT id FROM gone);
DELETE FROM ku9.notification_reads WHERE user_id IN (SELECT id FROM gone);
DELETE FROM ku9.devices WHERE user_id IN (SELECT id FROM gone);
DELETE FROM ku9.fanout_jobs j USING ku9.notifications n
    WHERE n.id = j.notification_id AND n.user_id IN (SELECT id FROM gone);
DELETE FROM ku9.notification_reads r USING ku9.notifications n, ku9.topics t
    WHERE n.id = r.id AND t.id = n.topic_id AND t.name LIKE 'bench\_%';
SET session_replication_role = replica;
DELETE FROM ku9.notifications n USING ku9.topics t WHERE t.id = n.topic_id AND t.name LIKE 'bench\_%';
DELETE FROM ku9.notifications WHERE user_id IN (SELECT id FROM gone);
DELETE FROM ku9.sessions WHERE user_id IN (SELECT id FROM gone);
DELETE FROM ku9.one_time_tokens WHERE user_id IN (SELECT id FROM gone);
DELETE FROM ku9.users WHERE id IN (SELECT id FROM gone);
RESET session_replication_role;
DELETE FROM ku9.topics WHERE name LIKE 'bench\_%';
DROP SCHEMA IF EXISTS bench_notify CASCADE;
-- the deletes leave the indexes bloated, and plans that depend on their
-- size (fanout_step's did) would differ in the next run
VACUUM FULL ku9.subscriptions;
VACUUM FULL ku9.devices;
VACUUM FULL ku9.notification_reads;
VACUUM FULL ku9.notifications;
VACUUM FULL ku9.users;
SQL
}

# ------------------------------------------------------------------------
# the data
# ------------------------------------------------------------------------
nworkers=$(workers_running)
if [ "$nworkers" -eq 0 ]; then
    # the launcher may still be starting them
    for _ in $(seq 20); do
        sleep 1
        nworkers=$(workers_running)
        [ "$nworkers" -gt 0 ] && break
    done
fi
[ "$nworkers" -eq 0 ] && log "no ku9 worker runs in database $DB: the figures that need workers are left out"

log "cleaning up after earlier runs"
clean
cleanup_fanout_db

log "loading: $NUSERS users, topics with $AUDIENCES subscribers, an inbox of $INBOX_MESSAGES messages" \
    "over $INBOX_TOPICS topics, $DEVICES devices"
t0=$SECONDS
sql -v nusers="$NUSERS" -v audiences="{${AUDIENCES// /,}}" -v inbox_topics="$INBOX_TOPICS" \
    -v inbox_messages="$INBOX_MESSAGES" -v inbox_direct="$INBOX_DIRECT" \
    -v push_users="$PUSH_USERS" -v push_devices="$PUSH_DEVICES" <<'SQL'
SET client_min_messages = warning;
CREATE SCHEMA bench_notify;
-- the benchmark's users, numbered
CREATE TABLE bench_notify.users (n int PRIMARY KEY, id uuid NOT NULL);
INSERT INTO bench_notify.users SELECT n, gen_random_uuid() FROM generate_series(0, :nusers) n;
INSERT INTO ku9.users (id, email, role)
    SELECT id, 'u' || n || '@bench.example', 'ku9_user' FROM bench_notify.users ORDER BY id;

SET session_replication_role = replica;

-- publish: topic bench_a_<N> has the users 1..N as subscribers
SELECT ku9.create_topic('bench_a_' || a, '{"user_channels": false}') FROM unnest(:'audiences'::int[]) a \g /dev/null
INSERT INTO ku9.subscriptions (topic_id, user_id, from_id)
    SELECT t.id, u.id, nextval('ku9.notification_seq')
    FROM unnest(:'audiences'::int[]) a
    JOIN ku9.topics t ON t.name = 'bench_a_' || a
    JOIN bench_notify.users u ON u.n BETWEEN 1 AND a
    ORDER BY t.id, u.id;

-- inbox: user 0 follows bench_i_1 .. bench_i_<INBOX_TOPICS>
SELECT ku9.create_topic('bench_i_' || i, '{"user_channels": false}') FROM generate_series(1, :inbox_topics) i \g /dev/null
INSERT INTO ku9.subscriptions (topic_id, user_id, from_id)
    SELECT t.id, u.id, nextval('ku9.notification_seq')
    FROM generate_series(1, :inbox_topics) i
    JOIN ku9.topics t ON t.name = 'bench_i_' || i
    JOIN bench_notify.users u ON u.n = 0
    ORDER BY t.id;
-- the messages, one per topic in turn, created over the last days; every
-- (messages / direct)-th one a direct notification instead
CREATE TABLE bench_notify.inbox_topics AS
    SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM ku9.topics WHERE name LIKE 'bench\_i\_%';
CREATE TABLE bench_notify.config AS
    SELECT (SELECT id FROM bench_notify.users WHERE n = 0) AS inbox_user,
           nextval('ku9.notification_seq') + 1 AS first_id;
INSERT INTO ku9.notifications (id, topic_id, user_id, payload, created_at)
    SELECT nextval('ku9.notification_seq'),
           CASE WHEN direct THEN NULL ELSE (SELECT id FROM bench_notify.inbox_topics WHERE k = m % :inbox_topics) END,
           CASE WHEN direct THEN (SELECT inbox_user FROM bench_notify.config) END,
           jsonb_build_object('title', 'message ' || m, 'body', 'Something happened that you may want to know about.',
                              'url', '/things/' || m),
           now() - (:inbox_messages + :inbox_direct - m) * interval '5 seconds'
    FROM (SELECT m, :inbox_direct > 0 AND m % ((:inbox_messages + :inbox_direct) / greatest(:inbox_direct, 1)) = 0 AS direct
          FROM generate_series(1, :inbox_messages + :inbox_direct) m) s
    ORDER BY m;
ALTER TABLE bench_notify.config ADD last_id bigint;
UPDATE bench_notify.config SET last_id = currval('ku9.notification_seq');
-- every 10th already read
INSERT INTO ku9.notification_reads (user_id, id)
    SELECT c.inbox_user, n.id FROM bench_notify.config c, ku9.notifications n
    WHERE n.id BETWEEN c.first_id AND c.last_id AND n.id % 10 = 0;

-- push: users 1..PUSH_USERS follow bench_push and have PUSH_DEVICES devices each
SELECT ku9.create_topic('bench_push', '{"user_channels": false}') \g /dev/null
INSERT INTO ku9.subscriptions (topic_id, user_id, from_id)
    SELECT t.id, u.id, nextval('ku9.notification_seq')
    FROM ku9.topics t JOIN bench_notify.users u ON u.n BETWEEN 1 AND :push_users
    WHERE t.name = 'bench_push' ORDER BY u.id;
INSERT INTO ku9.devices (user_id, platform, token)
    SELECT u.id, (ARRAY['fcm', 'apns', 'webpush'])[1 + k % 3],
           md5(u.id::text || k) || md5(k || u.id::text) || md5(u.n || '/' || k) || md5(k || '/' || u.n) || 'bench0123'
    FROM bench_notify.users u, generate_series(1, :push_devices) k
    WHERE u.n BETWEEN 1 AND :push_users
    ORDER BY u.id, k;
RESET session_replication_role;
VACUUM ANALYZE ku9.users;
VACUUM ANALYZE ku9.topics;
VACUUM ANALYZE ku9.subscriptions;
VACUUM ANALYZE ku9.notifications;
VACUUM ANALYZE ku9.notification_reads;
VACUUM ANALYZE ku9.devices;
VACUUM ANALYZE bench_notify.users;
CHECKPOINT;
SQL
load_s=$((SECONDS - t0))
log "  loaded in $load_s s"

# ------------------------------------------------------------------------
# publish: latency against the audience
# ------------------------------------------------------------------------
results=$work/results
: >"$results"
cat >"$work/publish.sql" <<'EOF'
SELECT ku9.publish(:topic, :payload::jsonb);
EOF

# publish_run AUDIENCE CHANNELS: one run; records "publish AUDIENCE CHANNELS tps latency_ms"
publish_run() {
    local a=$1 channels=$2 out=$work/pgbench.out tps lat
    pgbench_run "$out" "$work/publish.sql" -c 1 -j 1 -T "$DUR" -D topic="bench_a_$a" -D payload="$PAYLOAD"
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out")
    echo "publish $a $channels $tps $lat" >>"$results"
    log "$(printf '  publish to %8d subscribers, user_channels %-5s %9.1f tps  %7.3f ms' "$a" "$channels" "$tps" "$lat")"
}

log "publish: $REPS runs of $DUR s per audience, the audiences taking turns"
for _ in $(seq "$REPS"); do
    for a in $AUDIENCES; do
        publish_run "$a" false
    done
    [ "$nworkers" -gt 0 ] || continue
    for a in $(printf '%s\n' "$SMALLEST" "$LARGEST" | uniq); do
        sql -c "UPDATE ku9.topics SET user_channels = true WHERE name = 'bench_a_$a'"
        publish_run "$a" true
        # how far the workers got during the run, then away with the rest
        read -r jobs notified <<<"$(val -F ' ' -c "SELECT count(*), coalesce(sum(targets), 0) FROM ku9.fanout_jobs")"
        log "    $jobs realtime jobs were waiting at the end (the open ones $notified subscribers in)"
        echo "waiting $a true $jobs" >>"$results"
        sql -c "UPDATE ku9.topics SET user_channels = false WHERE name = 'bench_a_$a'" \
            -c 'DELETE FROM ku9.fanout_jobs'
    done
done

# ------------------------------------------------------------------------
# inbox: one user, INBOX_TOPICS subscriptions
# ------------------------------------------------------------------------
read -r inbox_user first_id last_id <<<"$(val -F ' ' -c 'SELECT inbox_user, first_id, last_id FROM bench_notify.config')"
cat >"$work/inbox_first.sql" <<'EOF'
SELECT * FROM ku9.inbox(0, 50);
EOF
cat >"$work/inbox_middle.sql" <<'EOF'
\set after random(:first_id, :last_id)
SELECT * FROM ku9.inbox(:after, 50);
EOF
cat >"$work/unread_count.sql" <<'EOF'
SELECT ku9.unread_count();
EOF
cat >"$work/mark_read.sql" <<'EOF'
\set a random(:first_id, :last_id - 49)
SELECT ku9.mark_read(ARRAY(SELECT generate_series(:a::bigint, :a::bigint + 49)));
EOF

# the checks: what the figures read
read -r page1 unread <<<"$(PGOPTIONS="-c role=ku9_user -c request.jwt.claims={\"sub\":\"$inbox_user\",\"role\":\"ku9_user\"}" \
    val -F ' ' -c 'SELECT (SELECT count(*) FROM ku9.inbox(0, 50)), ku9.unread_count()')"
log "inbox of $inbox_user: first page $page1 messages, $unread unread"

log "inbox: $INBOX_DUR s per figure, one client as ku9_user"
for figure in inbox_first inbox_middle unread_count mark_read; do
    # a warm-up second, then the logged run
    PGOPTIONS="-c role=ku9_user -c request.jwt.claims={\"sub\":\"$inbox_user\",\"role\":\"ku9_user\"}" \
        pgbench_run "$work/pgbench.out" "$work/$figure.sql" -c 1 -j 1 -T 1 -D first_id="$first_id" -D last_id="$last_id"
    rm -f "$work/log_$figure".*
    PGOPTIONS="-c role=ku9_user -c request.jwt.claims={\"sub\":\"$inbox_user\",\"role\":\"ku9_user\"}" \
        pgbench_run "$work/pgbench.out" "$work/$figure.sql" -c 1 -j 1 -T "$INBOX_DUR" \
        -D first_id="$first_id" -D last_id="$last_id" -l --log-prefix="$work/log_$figure"
    read -r n mean p50 p99 <<<"$(percentiles "$work/log_$figure".*)"
    # the session's first calls: PL/pgSQL plans its statements anew for
    # the first five, then may keep a generic plan
    first=$(head -n 5 "$work/log_$figure".* | awk '{ s += $3; n++ } END { printf "%.3f", s / n / 1000 }')
    echo "inbox $figure $n $mean $p50 $p99 $first" >>"$results"
    log "$(printf '  %-14s %6d calls  mean %8.3f ms  p50 %8.3f ms  p99 %8.3f ms  first 5 %8.3f ms' "$figure" "$n" "$mean" "$p50" "$p99" "$first")"
done
marked=$(val -c "SELECT count(*) FROM ku9.notification_reads WHERE user_id = '$inbox_user'")
log "  $marked of the user's messages are read now"

# ------------------------------------------------------------------------
# push fan-out
# ------------------------------------------------------------------------
log "push: $PUSH_USERS users x $PUSH_DEVICES devices in database $FANOUT_DB (no workers there)"
t0=$SECONDS
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $FANOUT_DB"
sql -d "$FANOUT_DB" -v push_users="$PUSH_USERS" -v push_devices="$PUSH_DEVICES" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ku9 CASCADE;
CREATE TABLE users (n int PRIMARY KEY, id uuid NOT NULL);
INSERT INTO users SELECT n, gen_random_uuid() FROM generate_series(1, :push_users) n;
INSERT INTO ku9.users (id, email, role) SELECT id, 'u' || n || '@bench.example', 'ku9_user' FROM users ORDER BY id;
SET session_replication_role = replica;
SELECT ku9.create_topic('bench_push', '{"user_channels": false}') \g /dev/null
INSERT INTO ku9.subscriptions (topic_id, user_id, from_id)
    SELECT t.id, u.id, nextval('ku9.notification_seq')
    FROM ku9.topics t, users u WHERE t.name = 'bench_push' ORDER BY u.id;
INSERT INTO ku9.devices (user_id, platform, token)
    SELECT u.id, (ARRAY['fcm', 'apns', 'webpush'])[1 + k % 3],
           md5(u.id::text || k) || md5(k || u.id::text) || md5(u.n || '/' || k) || md5(k || '/' || u.n) || 'bench0123'
    FROM users u, generate_series(1, :push_devices) k
    ORDER BY u.id, k;
RESET session_replication_role;
-- the raw side: one row per device, and messages shaped like ku9_push's
-- in a table shaped like its queue table
CREATE TABLE push_raw (notification_id bigint NOT NULL, user_id uuid NOT NULL, platform text NOT NULL, token text NOT NULL);
CREATE TABLE push_raw_batch (LIKE ku9_queue.q_ku9_push INCLUDING ALL);
-- fanout_loop: fanout_step until it returns 0 or max_s have passed, one
-- transaction per call
CREATE PROCEDURE fanout_loop(batch int, max_s float8, INOUT devices bigint DEFAULT 0, INOUT steps int DEFAULT 0,
                             INOUT seconds float8 DEFAULT 0, INOUT complete boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    d int;
BEGIN
    LOOP
        d := ku9.fanout_step(batch);
        COMMIT;
        IF d = 0 THEN
            complete := true;
            EXIT;
        END IF;
        devices := devices + d;
        steps := steps + 1;
        EXIT WHEN clock_timestamp() - t0 > make_interval(secs => max_s);
    END LOOP;
    seconds := extract(epoch FROM clock_timestamp() - t0);
END $$;
VACUUM ANALYZE ku9.users;
VACUUM ANALYZE ku9.subscriptions;
VACUUM ANALYZE ku9.devices;
CHECKPOINT;
SQL
log "  loaded in $((SECONDS - t0)) s"

# timed DB SQL: the seconds the statements take, from the server's clock
timed() {
    val -d "$1" <<EOF
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$2
SELECT extract(epoch FROM clock_timestamp()) - :t0;
EOF
}

nid=$(val -d "$FANOUT_DB" -c "SELECT ku9.publish('bench_push', '$PAYLOAD', push => true)")
log "raw SQL: $REPS runs each"
for _ in $(seq "$REPS"); do
    val -d "$FANOUT_DB" -c 'TRUNCATE push_raw, push_raw_batch' -c 'CHECKPOINT' >/dev/null
    s=$(timed "$FANOUT_DB" "
INSERT INTO push_raw (notification_id, user_id, platform, token)
    SELECT n.id, d.user_id, d.platform, d.token
    FROM ku9.notifications n
    JOIN ku9.subscriptions s ON s.topic_id = n.topic_id AND s.from_id < n.id AND (s.until_id IS NULL OR s.until_id > n.id)
    JOIN ku9.devices d ON d.user_id = s.user_id
    WHERE n.id = $nid;")
    rows=$(val -d "$FANOUT_DB" -c 'SELECT count(*) FROM push_raw')
    echo "push raw_rows $rows $s" >>"$results"
    log "$(printf '  raw rows        %8d devices in %7.3f s' "$rows" "$s")"
    s=$(timed "$FANOUT_DB" "
INSERT INTO push_raw_batch (vt, enqueued_at, payload)
    SELECT now(), now(), jsonb_build_object('notification_id', n.id, 'topic', t.name, 'payload', n.payload,
                                            'devices', b.devices)
    FROM ku9.notifications n
    JOIN ku9.topics t ON t.id = n.topic_id
    CROSS JOIN LATERAL (
        SELECT jsonb_agg(jsonb_build_object('user_id', user_id, 'platform', platform, 'token', token)
                         ORDER BY user_id, id) AS devices
        FROM (SELECT d.user_id, d.id, d.platform, d.token,
                     (row_number() OVER (ORDER BY d.user_id, d.id) - 1) / $PUSH_BATCH AS b
              FROM ku9.subscriptions s JOIN ku9.devices d ON d.user_id = s.user_id
              WHERE s.topic_id = n.topic_id AND s.from_id < n.id AND (s.until_id IS NULL OR s.until_id > n.id)) x
        GROUP BY b) b
    WHERE n.id = $nid;")
    read -r msgs devs <<<"$(val -F ' ' -d "$FANOUT_DB" -c "SELECT count(*), coalesce(sum(jsonb_array_length(payload -> 'devices')), 0) FROM push_raw_batch")"
    echo "push raw_batch $devs $s $msgs" >>"$results"
    log "$(printf '  raw batched     %8d devices in %7.3f s (%d messages)' "$devs" "$s" "$msgs")"
done
val -d "$FANOUT_DB" -c 'TRUNCATE push_raw, push_raw_batch' -c 'CHECKPOINT' >/dev/null

log "ku9.fanout_step($PUSH_BATCH) in a loop, at most $FANOUT_MAX s"
read -r devs steps s complete <<<"$(val -F ' ' -d "$FANOUT_DB" -c "CALL fanout_loop($PUSH_BATCH, $FANOUT_MAX)")"
echo "push ku9_loop $devs $s $complete $steps" >>"$results"
log "$(printf '  ku9 loop        %8d devices in %7.3f s, %d steps, complete: %s' "$devs" "$s" "$steps" "$complete")"
cleanup_fanout_db

if [ "$nworkers" -gt 0 ]; then
    log "ku9's $nworkers workers, at most $FANOUT_MAX s"
    sql -c 'SELECT ku9.purge_queue($$ku9_push$$)' >/dev/null
    # publish, then poll every 0.1 s until the job is gone, on the server's clock
    read -r devs s complete <<<"$(val -F ' ' -v max="$FANOUT_MAX" -v payload="$PAYLOAD" <<'SQL'
SELECT ku9.publish('bench_push', :'payload', push => true) AS nid \gset
SELECT clock_timestamp() AS t0 \gset
CREATE PROCEDURE pg_temp.wait_job(nid bigint, t0 timestamptz, max_s float8) LANGUAGE plpgsql AS $$
BEGIN
    WHILE EXISTS (SELECT 1 FROM ku9.fanout_jobs WHERE notification_id = nid)
          AND clock_timestamp() - t0 < make_interval(secs => max_s) LOOP
        PERFORM pg_sleep(0.1);
        COMMIT;
    END LOOP;
END $$;
CALL pg_temp.wait_job(:nid, :'t0', :max);
SELECT coalesce((SELECT targets FROM ku9.fanout_jobs WHERE notification_id = :nid),
                (SELECT sum(jsonb_array_length(payload -> 'devices')) FROM ku9_queue.q_ku9_push)),
       extract(epoch FROM clock_timestamp() - :'t0'::timestamptz),
       NOT EXISTS (SELECT 1 FROM ku9.fanout_jobs WHERE notification_id = :nid);
SQL
)"
    echo "push ku9_workers $devs $s $complete" >>"$results"
    log "$(printf '  ku9 workers     %8d devices in %7.3f s, complete: %s' "$devs" "$s" "$complete")"
    sql -c 'DELETE FROM ku9.fanout_jobs' -c 'SELECT ku9.purge_queue($$ku9_push$$)' >/dev/null
fi

if [ -z "${KEEP:-}" ]; then
    log "cleaning up"
    clean
fi
log "done in $((SECONDS - started)) s"

# ------------------------------------------------------------------------
# the tables
# ------------------------------------------------------------------------
echo "$NUSERS users loaded with their subscriptions, inbox and devices in $load_s s; pgbench -n -M prepared, one client."
echo
echo "### publish: latency against the audience (median of $REPS runs of $DUR s each)"
echo
echo '| subscribers | user_channels | publishes/s | mean latency, ms | latency / latency at '"$SMALLEST"' |'
echo '|---:|---|---:|---:|---:|'
for a in $AUDIENCES; do
    for ch in false true; do
        grep -q "^publish $a $ch " "$results" || continue
        tps=$(awk -v a="$a" -v c="$ch" '$1 == "publish" && $2 == a && $3 == c { print $4 }' "$results" | median)
        lat=$(awk -v a="$a" -v c="$ch" '$1 == "publish" && $2 == a && $3 == c { print $5 }' "$results" | median)
        base=$(awk -v a="$SMALLEST" '$1 == "publish" && $2 == a && $3 == "false" { print $5 }' "$results" | median)
        printf '| %s | %s | %.0f | %.3f | %.2f |\n' "$a" "$ch" "$tps" "$lat" \
            "$(awk -v x="$lat" -v y="$base" 'BEGIN { print x / y }')"
    done
done
if grep -q '^waiting ' "$results"; then
    echo
    echo "With user_channels true the workers NOTIFY each subscriber in the background, on the same 2 cores;" \
         "realtime fan-out jobs still waiting at the end of a run (median), then deleted:" \
         "$(for a in $(printf '%s\n' "$SMALLEST" "$LARGEST" | uniq); do
                printf '%s subscribers: %s; ' "$a" "$(awk -v a="$a" '$1 == "waiting" && $2 == a { print $4 }' "$results" | median)"
            done | sed 's/; $/./')"
fi
echo
echo "### inbox: one user with $INBOX_TOPICS subscriptions, $INBOX_MESSAGES topic messages, $INBOX_DIRECT direct ($INBOX_DUR s per figure)"
echo
echo '| call | calls | mean, ms | p50, ms | p99, ms | first 5 calls of the session, mean, ms |'
echo '|---|---:|---:|---:|---:|---:|'
awk '$1 == "inbox" {
        label["inbox_first"] = "inbox(0, 50): first page"
        label["inbox_middle"] = "inbox(<random id>, 50): a middle page"
        label["unread_count"] = "unread_count()"
        label["mark_read"] = "mark_read(50 ids)"
        printf "| %s | %d | %.3f | %.3f | %.3f | %.3f |\n", label[$2], $3, $4, $5, $6, $7
    }' "$results"
echo
echo "### push fan-out: one publish to $PUSH_USERS subscribers with $PUSH_DEVICES devices each ($DEVICES devices), batches of $PUSH_BATCH"
echo
echo "| how | devices | seconds | devices/s | ms per $PUSH_BATCH devices | ÷ raw rows | ÷ raw batched | note |"
echo '|---|---:|---:|---:|---:|---:|---:|---|'
# push_row HOW DEVICES SECONDS NOTE: one row, with the ratios to the raw figures
raw_rows=$(awk '$1 == "push" && $2 == "raw_rows" { print $3 / $4 }' "$results" | median)
raw_batch=$(awk '$1 == "push" && $2 == "raw_batch" { print $3 / $4 }' "$results" | median)
push_row() {
    awk -v how="$1" -v d="$2" -v s="$3" -v note="$4" -v rr="$raw_rows" -v rb="$raw_batch" -v b="$PUSH_BATCH" 'BEGIN {
        r = d / s
        printf "| %s | %d | %.2f | %.0f | %.2f | %.3f | %.3f | %s |\n", how, d, s, r, s * 1000 / (d / b), r / rr, r / rb, note
    }'
}
for how in raw_rows raw_batch; do
    devs=$(awk -v h="$how" '$1 == "push" && $2 == h { print $3 }' "$results" | median)
    s=$(awk -v h="$how" '$1 == "push" && $2 == h { print $4 }' "$results" | median)
    if [ "$how" = raw_rows ]; then
        push_row 'raw SQL: one INSERT ... SELECT, a row per device' "$devs" "$s" "median of $REPS"
    else
        msgs=$(awk '$1 == "push" && $2 == "raw_batch" { print $5 }' "$results" | median)
        push_row "raw SQL: one INSERT ... SELECT of $msgs jsonb messages" "$devs" "$s" "median of $REPS"
    fi
done
while read -r _ how devs s complete steps; do
    if [ "$how" = ku9_loop ]; then
        label='ku9.fanout_step in a loop, no workers'
        note="$steps steps"
    else
        label="ku9's $nworkers workers"
        note=''
    fi
    if [ "$complete" = t ]; then
        note="${note:+$note, }complete"
    else
        note="${note:+$note, }cut off after $FANOUT_MAX s"
    fi
    push_row "$label" "$devs" "$s" "$note"
done < <(grep -E '^push ku9_' "$results")
