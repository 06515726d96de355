-- queue: per-queue counters in ku9.metrics(), ku9.stats and queue_stats
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- pg_temp.qsample(sample_name, queue_name): a queue's counter in ku9.stats (0 when absent)
CREATE FUNCTION pg_temp.qsample(sample_name text, queue_name text)
RETURNS bigint LANGUAGE sql AS $f$
    SELECT coalesce(sum(value), 0)::bigint FROM ku9.stats
    WHERE name = sample_name
      AND labels = jsonb_build_object('database', current_database(), 'queue', queue_name)
$f$;
-- pg_temp.qcounters(queue): all of a queue's counters as one row
CREATE FUNCTION pg_temp.qcounters(queue text,
    OUT sent bigint, OUT read bigint, OUT acked bigint, OUT failed bigint,
    OUT dead bigint, OUT waits bigint, OUT wakeups bigint)
LANGUAGE sql AS $f$
    SELECT pg_temp.qsample('ku9_queue_sent_total', queue),
           pg_temp.qsample('ku9_queue_read_total', queue),
           pg_temp.qsample('ku9_queue_acked_total', queue),
           pg_temp.qsample('ku9_queue_failed_total', queue),
           pg_temp.qsample('ku9_queue_dead_lettered_total', queue),
           pg_temp.qsample('ku9_queue_waits_total', queue),
           pg_temp.qsample('ku9_queue_wakeups_total', queue)
$f$;

SELECT ku9.create_queue('qm', '{"max_attempts": 2}');
SELECT ku9.create_queue('qm_other');
SELECT * FROM pg_temp.qcounters('qm') \gset c0_
SELECT * FROM pg_temp.qcounters('qm_other') \gset o0_

-- sent: every stored message; not a deduplicated send, a refused one or an empty batch
SELECT ku9.send('qm', '{"m": 1}', '{"dedup_key": "k"}') AS k \gset
SELECT ku9.send('qm', '{"m": 1}', '{"dedup_key": "k"}') = :k AS deduplicated;
SELECT count(*) AS sent FROM ku9.send_batch('qm', '[{"m": 2}, {"m": 3}, {"m": 4}]');
SELECT count(*) AS sent FROM ku9.send_batch('qm', '[]');
SELECT pg_temp.sqlerr($$SELECT ku9.send('qm', '"scalar"')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.send_batch('qm', '[{"m": 5}, 6]')$$);
SELECT ku9.send('qm', '{"m": 7}', '{"delay": 600}') > 0 AS sent_delayed;
SELECT c.sent - :c0_sent AS sent, c.read - :c0_read AS read FROM pg_temp.qcounters('qm') c;

-- read: messages handed out by read and pop; acked: by ack and pop
SELECT count(*) AS read FROM ku9.read('qm', 2, 600);
SELECT count(*) AS popped FROM ku9.pop('qm');
SELECT ku9.ack('qm', ARRAY[:k, :k, -1]) AS acked;
SELECT count(*) AS read FROM ku9.read('qm', 5, 600);
SELECT c.read - :c0_read AS read, c.acked - :c0_acked AS acked FROM pg_temp.qcounters('qm') c;

-- failed: every fail; dead: fail after the last attempt, and read after it
SELECT msg_id AS f1 FROM ku9_queue.q_qm WHERE payload = '{"m": 2}' \gset
SELECT msg_id AS f2 FROM ku9_queue.q_qm WHERE payload = '{"m": 4}' \gset
SELECT ku9.fail('qm', :f1, 'e') AS result;
SELECT ku9.nack('qm', :f1) AS due_now;
SELECT attempts FROM ku9.read('qm', 1, 600);
SELECT ku9.fail('qm', :f1, 'e') AS result;
SELECT ku9.fail('qm', -1, 'unknown') IS NULL AS unknown;
SELECT c.failed - :c0_failed AS failed, c.dead - :c0_dead AS dead FROM pg_temp.qcounters('qm') c;
-- (f2 was delivered once above; deliver it a second time, then let read bury it)
SELECT ku9.nack('qm', :f2) AS due_now;
SELECT attempts FROM ku9.read('qm', 1, 0);
SELECT count(*) AS not_delivered_again FROM ku9.read('qm', 1, 0);
SELECT c.failed - :c0_failed AS failed, c.dead - :c0_dead AS dead FROM pg_temp.qcounters('qm') c;

-- waits: a read that found the queue empty and slept; no send woke it
SELECT count(*) AS none FROM ku9.read('qm', 1, 600, 20);
SELECT count(*) AS none FROM ku9.read('qm', 1, 600, 0);
SELECT c.waits - :c0_waits AS waits, c.wakeups - :c0_wakeups AS wakeups FROM pg_temp.qcounters('qm') c;

-- all together, and nothing counted for the other queue
SELECT c.sent - :c0_sent AS sent, c.read - :c0_read AS read, c.acked - :c0_acked AS acked,
       c.failed - :c0_failed AS failed, c.dead - :c0_dead AS dead,
       c.waits - :c0_waits AS waits, c.wakeups - :c0_wakeups AS wakeups
FROM pg_temp.qcounters('qm') c;
SELECT o.sent - :o0_sent AS sent, o.read - :o0_read AS read, o.acked - :o0_acked AS acked,
       o.failed - :o0_failed AS failed, o.dead - :o0_dead AS dead, o.waits - :o0_waits AS waits
FROM pg_temp.qcounters('qm_other') o;

-- queue_stats shows the same totals
SELECT s.sent_total = c.sent AS sent, s.read_total = c.read AS read, s.acked_total = c.acked AS acked,
       s.failed_total = c.failed AS failed, s.dead_total = c.dead AS dead
FROM ku9.queue_stats('qm') s, pg_temp.qcounters('qm') c;

-- the exposition text: counter families with HELP and TYPE, and one sample
-- per queue labelled with the database and the queue (wakeups_total has
-- none yet: nothing woke a reader of qm)
SELECT ku9.metrics() AS text \gset
SELECT f AS family,
       strpos(:'text', '# HELP ' || f || ' ') > 0 AS help,
       strpos(:'text', '# TYPE ' || f || ' counter' || E'\n') > 0 AS type_counter,
       (SELECT count(*) FROM regexp_matches(:'text',
            '(^|\n)' || f || '\{database="' || regexp_replace(current_database(), '([^a-zA-Z0-9_])', '\\\1', 'g')
            || '",queue="qm"\} ([0-9]+)(\n|$)', 'g')) AS qm_samples
FROM unnest(ARRAY['ku9_queue_sent_total', 'ku9_queue_read_total', 'ku9_queue_acked_total',
                  'ku9_queue_failed_total', 'ku9_queue_dead_lettered_total',
                  'ku9_queue_waits_total']) AS f;
SELECT (regexp_match(:'text', '(?:^|\n)ku9_queue_sent_total\{database="[^"]*",queue="qm"\} ([0-9]+)'))[1]::bigint
       = pg_temp.qsample('ku9_queue_sent_total', 'qm') AS text_matches_stats;

-- a dropped and re-created queue keeps counting under its name
SELECT ku9.drop_queue('qm');
SELECT ku9.create_queue('qm');
SELECT ku9.send('qm', '{"again": 1}') > 0 AS sent;
SELECT c.sent - :c0_sent AS sent FROM pg_temp.qcounters('qm') c;

SELECT ku9.drop_queue('qm');
SELECT ku9.drop_queue('qm_other');
DROP EXTENSION ku9;
