-- queue: create, list, send, read, ack, nack, extend, pop, purge, stats, drop
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- create_queue makes a registry row and three tables in ku9_queue
SELECT ku9.create_queue('qb');
SELECT name, vt, max_attempts, backoff_base, backoff_max, archive, retention, max_payload,
       created_at <= now() AS created_before_now
FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');
SELECT tablename, tableowner = (SELECT relowner::regrole::name FROM pg_class WHERE oid = 'ku9.queues'::regclass) AS owned_by_registry_owner
FROM pg_tables WHERE schemaname = 'ku9_queue' AND tablename !~ 'ku9_(mail|push)' ORDER BY 1;
-- the per-queue tables are not extension members
SELECT count(*) AS member_tables FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ku9')
  AND d.classid = 'pg_class'::regclass
  AND d.objid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ku9_queue'::regnamespace AND relname !~ 'ku9_(mail|push)');
-- a second create of the same name is refused
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qb')$$);
SELECT count(*) AS queues FROM ku9.queues;

-- an empty queue
SELECT queue, depth, visible, in_flight, delayed, dead, archived, oldest_age IS NULL AS no_oldest
FROM ku9.queue_stats('qb');
SELECT count(*) AS none FROM ku9.read('qb');

-- send returns the new message's id, a bigint
SELECT ku9.send('qb', '{"n": 1}') AS id1 \gset
SELECT pg_typeof(:id1::bigint) AS id_type, :id1 > 0 AS positive;
SELECT clock_timestamp() AS t_before \gset
SELECT ku9.send('qb', '{"n": 2}') AS id2 \gset
SELECT ku9.send('qb', '[1, 2, 3]', '{"headers": {"trace": "abc"}}') AS id3 \gset
SELECT clock_timestamp() AS t_after \gset
SELECT :id2 > :id1 AS increasing, :id3 > :id2 AS increasing;
SELECT msg_id = :id2 AS is_id2, enqueued_at BETWEEN :'t_before' AND :'t_after' AS enqueued_now,
       vt = enqueued_at AS visible_at_once, attempts, priority, headers, payload
FROM ku9_queue.q_qb WHERE msg_id = :id2;
SELECT msg_id = :id3 AS is_id3, payload, headers FROM ku9_queue.q_qb WHERE msg_id = :id3;

-- read hands out a ku9.message: msg_id, attempts, enqueued_at, vt, payload, headers
SELECT p.proretset AS returns_set, p.prorettype::regtype AS returns
FROM pg_proc p WHERE p.oid = 'ku9.read(text, integer, integer, integer)'::regprocedure;
SELECT attname, atttypid::regtype AS type FROM pg_attribute
WHERE attrelid = 'ku9.message'::regclass AND attnum > 0 ORDER BY attnum;
SELECT clock_timestamp() AS t_before \gset
SELECT msg_id, attempts, enqueued_at, vt, payload, headers IS NULL AS no_headers FROM ku9.read('qb', 1, 30) \gset r_
SELECT clock_timestamp() AS t_after \gset
SELECT :r_msg_id = :id1 AS first_in, :r_attempts AS attempts, :'r_payload'::jsonb AS payload,
       :'r_no_headers' AS no_headers,
       :'r_enqueued_at'::timestamptz < :'t_before' AS enqueued_earlier,
       :'r_vt'::timestamptz BETWEEN :'t_before'::timestamptz + interval '30 s'
                                AND :'t_after'::timestamptz + interval '30 s' AS vt_30s_out;
-- while its vt runs, it is hidden: the next read gets the others, in order
SELECT msg_id = :id2 AS is_id2, msg_id = :id3 AS is_id3, attempts, payload, headers FROM ku9.read('qb', 5, 30);
SELECT count(*) AS none_left FROM ku9.read('qb', 5, 30);
SELECT queue, depth, visible, in_flight, delayed FROM ku9.queue_stats('qb');

-- extend hides a message longer and returns its new vt; NULL for an unknown id
SELECT clock_timestamp() AS t_before \gset
SELECT ku9.extend('qb', :id1, 600) AS new_vt \gset
SELECT clock_timestamp() AS t_after \gset
SELECT :'new_vt'::timestamptz BETWEEN :'t_before'::timestamptz + interval '600 s'
                                  AND :'t_after'::timestamptz + interval '600 s' AS vt_600s_out,
       (SELECT vt FROM ku9_queue.q_qb WHERE msg_id = :id1) = :'new_vt' AS stored;
SELECT ku9.extend('qb', -1, 10) IS NULL AS unknown_is_null;

-- nack makes a message visible again (at once by default, or after a delay)
SELECT ku9.nack('qb', :id1) AS nacked;
SELECT ku9.nack('qb', :id2, 600) AS nacked_later;
SELECT ku9.nack('qb', -1) AS unknown;
SELECT queue, depth, visible FROM ku9.queue_stats('qb');
-- the next delivery counts another attempt
SELECT msg_id = :id1 AS is_id1, attempts, payload FROM ku9.read('qb', 5, 30);

-- vt = 0 leaves a message visible at once: read twice, get it twice
SELECT ku9.send('qb', '{"n": 4}') AS id4 \gset
SELECT msg_id = :id4 AS is_id4, attempts FROM ku9.read('qb', 1, 0);
SELECT msg_id = :id4 AS is_id4, attempts FROM ku9.read('qb', 1, 0);

-- vt NULL takes the queue's vt (30 s by default)
SELECT clock_timestamp() AS t_before \gset
SELECT msg_id = :id4 AS is_id4, vt AS r_vt FROM ku9.read('qb', 1, NULL) \gset
SELECT clock_timestamp() AS t_after \gset
SELECT :'is_id4' AS is_id4,
       :'r_vt'::timestamptz BETWEEN :'t_before'::timestamptz + interval '30 s'
                                AND :'t_after'::timestamptz + interval '30 s' AS default_vt;

-- a rolled-back read hands nothing out: the message and its attempts are as before
SELECT ku9.nack('qb', :id4) AS nacked;
BEGIN;
SELECT msg_id = :id4 AS is_id4, attempts FROM ku9.read('qb', 1, 30);
ROLLBACK;
SELECT msg_id = :id4 AS is_id4, attempts FROM ku9.read('qb', 1, 30);
-- and a rolled-back send stores nothing
BEGIN;
SELECT ku9.send('qb', '{"n": "rolled back"}') > 0 AS sent;
ROLLBACK;
SELECT count(*) AS rolled_back FROM ku9_queue.q_qb WHERE payload = '{"n": "rolled back"}';

-- ack removes messages and counts the ones it found; unknown and
-- already-acked ids are not errors and are not counted
SELECT ku9.ack('qb', ARRAY[:id1, :id3, :id4]) AS acked;
SELECT ku9.ack('qb', ARRAY[:id1, :id3]) AS acked_again;
SELECT ku9.ack('qb', ARRAY[:id2, :id2, -1, NULL]) AS acked_dup_unknown_null;
SELECT ku9.ack('qb', '{}') AS acked_empty;
SELECT count(*) AS left FROM ku9_queue.q_qb;
-- without the archive option nothing is kept
SELECT count(*) AS archived FROM ku9_queue.a_qb;

-- pop takes and deletes, at most once; default qty 1
SELECT ku9.send_batch('qb', '[{"p": 1}, {"p": 2}, {"p": 3}]') IS NOT NULL AS sent;
SELECT attempts, payload, headers FROM ku9.pop('qb');
SELECT attempts, payload FROM ku9.pop('qb', 5);
SELECT count(*) AS none FROM ku9.pop('qb', 5);
SELECT count(*) AS left FROM ku9_queue.q_qb;
SELECT count(*) AS archived FROM ku9_queue.a_qb;
-- pop skips messages whose vt runs
SELECT ku9.send('qb', '{"p": 4}') AS id5 \gset
SELECT count(*) AS read FROM ku9.read('qb', 1, 60);
SELECT count(*) AS none FROM ku9.pop('qb');

-- queue_stats on a known state of an archiving queue with one attempt:
--   e visible, d in flight, c delayed, b dead, a archived
SELECT ku9.create_queue('qb_stats', '{"archive": true, "max_attempts": 1}');
SELECT sent_total AS s0, read_total AS r0, acked_total AS a0, failed_total AS f0, dead_total AS d0
FROM ku9.queue_stats('qb_stats') \gset
SELECT clock_timestamp() AS t_first \gset
SELECT ku9.send('qb_stats', '{"m": "a"}') AS a \gset
SELECT ku9.send('qb_stats', '{"m": "b"}') AS b \gset
SELECT ku9.send('qb_stats', '{"m": "c"}', '{"delay": 600}') AS c \gset
SELECT ku9.send('qb_stats', '{"m": "d"}') AS d \gset
SELECT payload FROM ku9.read('qb_stats', 2, 600);
SELECT ku9.ack('qb_stats', ARRAY[:a]) AS acked;
SELECT ku9.fail('qb_stats', :b, 'boom') AS failed;
SELECT payload FROM ku9.read('qb_stats', 1, 600);
SELECT ku9.send('qb_stats', '{"m": "e"}') AS e \gset
SELECT clock_timestamp() AS t_last \gset
SELECT queue, depth, visible, in_flight, delayed, dead, archived,
       oldest_age > interval '0' AND oldest_age <= :'t_last'::timestamptz - :'t_first'::timestamptz + interval '1 s' AS oldest_age_ok,
       sent_total - :s0 AS sent, read_total - :r0 AS read, acked_total - :a0 AS acked,
       failed_total - :f0 AS failed, dead_total - :d0 AS dead_lettered
FROM ku9.queue_stats('qb_stats');
SELECT pg_typeof(oldest_age) AS oldest_age_type FROM ku9.queue_stats('qb_stats');

-- purge deletes every message and returns how many; archive and dead
-- letters stay
SELECT ku9.purge_queue('qb_stats') AS purged;
SELECT ku9.purge_queue('qb_stats') AS purged_again;
SELECT depth, dead, archived, oldest_age IS NULL AS no_oldest FROM ku9.queue_stats('qb_stats');
SELECT (SELECT count(*) FROM ku9_queue.a_qb_stats) AS archive_rows, (SELECT count(*) FROM ku9_queue.d_qb_stats) AS dead_rows;
-- the queue still works after a purge
SELECT ku9.send('qb_stats', '{"m": "f"}') > :e AS new_id;
SELECT payload FROM ku9.read('qb_stats', 5, 0);

-- list_queues lists every queue by name
SELECT name, archive, max_attempts FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');

-- a name that looks like another queue's index or sequence is a queue like any other
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qb_dequeue')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qb_pkey')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qb_msg_id_seq')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qb_stats_acked_at')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.send('qb_dequeue', '{"x": 1}')$$);
SELECT payload FROM ku9.read('qb_dequeue', 1, 0);
SELECT name FROM ku9.list_queues() WHERE name LIKE 'qb\_%' ORDER BY 1;
SELECT ku9.drop_queue(name) FROM ku9.list_queues() WHERE name IN ('qb_dequeue', 'qb_pkey', 'qb_msg_id_seq', 'qb_stats_acked_at');

-- drop_queue removes the queue and its tables; false when there is none
SELECT ku9.drop_queue('qb') AS dropped;
SELECT ku9.drop_queue('qb') AS dropped_again;
SELECT ku9.drop_queue('qb_never') AS never_existed;
SELECT pg_temp.sqlerr($$SELECT ku9.send('qb', '{}')$$);
SELECT ku9.drop_queue('qb_stats') AS dropped;
SELECT count(*) AS queues FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');
SELECT count(*) AS tables FROM pg_class WHERE relnamespace = 'ku9_queue'::regnamespace AND relname !~ 'ku9_(mail|push)';

-- a queue re-created under a dropped one's name starts empty, with its new options
SELECT ku9.create_queue('qb', '{"max_payload": 64}');
SELECT ku9.send('qb', '{"a": 1}') > 0 AS sent;
SELECT pg_temp.sqlerr($$SELECT ku9.send('qb', '{"big": "0123456789012345678901234567890123456789012345678901234567890123456789"}')$$);
SELECT ku9.drop_queue('qb');
SELECT ku9.create_queue('qb');
SELECT count(*) AS empty FROM ku9.read('qb', 10, 0);
SELECT ku9.send('qb', '{"big": "0123456789012345678901234567890123456789012345678901234567890123456789"}') > 0 AS sent;
SELECT payload ->> 'big' IS NOT NULL AS big FROM ku9.read('qb', 10, 0);
SELECT ku9.drop_queue('qb');

DROP EXTENSION ku9;
