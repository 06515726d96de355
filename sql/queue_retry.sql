-- queue: fail with exponential backoff and jitter, max_attempts, dead letters
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- a retry waits base * 2^(attempts - 1) seconds, capped at backoff_max,
-- with equal jitter: between half of that and all of it
SELECT ku9.create_queue('qr', '{"max_attempts": 3, "backoff_base": 10, "backoff_max": 25}');
SELECT failed_total AS f0, dead_total AS d0 FROM ku9.queue_stats('qr') \gset
SELECT ku9.send('qr', '{"job": 1}', '{"priority": 4, "headers": {"h": "v"}, "dedup_key": "job-1"}') AS id \gset

-- attempt 1 fails: retry in 5 to 10 s
SELECT msg_id = :id AS is_id, attempts FROM ku9.read('qr', 1, 60);
SELECT clock_timestamp() AS t0 \gset
SELECT ku9.fail('qr', :id, 'first error') AS result;
SELECT clock_timestamp() AS t1 \gset
SELECT attempts, last_error,
       vt BETWEEN :'t0'::timestamptz + interval '5 s' AND :'t1'::timestamptz + interval '10 s' AS backoff_5_to_10s
FROM ku9_queue.q_qr WHERE msg_id = :id;
-- until then it is not handed out
SELECT count(*) AS hidden FROM ku9.read('qr', 1, 60);
SELECT count(*) AS hidden FROM ku9.pop('qr');

-- attempt 2 fails: retry in 10 to 20 s
SELECT ku9.nack('qr', :id) AS due_now;
SELECT attempts FROM ku9.read('qr', 1, 60);
SELECT clock_timestamp() AS t0 \gset
SELECT ku9.fail('qr', :id, 'second error') AS result;
SELECT clock_timestamp() AS t1 \gset
SELECT attempts, last_error,
       vt BETWEEN :'t0'::timestamptz + interval '10 s' AND :'t1'::timestamptz + interval '20 s' AS backoff_10_to_20s
FROM ku9_queue.q_qr WHERE msg_id = :id;

-- attempt 3 = max_attempts fails: the message is dead
SELECT ku9.nack('qr', :id) AS due_now;
SELECT attempts FROM ku9.read('qr', 1, 60);
SELECT clock_timestamp() AS t0 \gset
SELECT ku9.fail('qr', :id, 'third error') AS result;
SELECT clock_timestamp() AS t1 \gset
-- it moved to ku9_queue.d_qr with its attempts and last error
SELECT count(*) AS in_queue FROM ku9_queue.q_qr;
SELECT msg_id = :id AS is_id, priority, attempts, dedup_key, headers, payload, last_error,
       dead_at BETWEEN :'t0' AND :'t1' AS dead_now, enqueued_at < dead_at AS enqueued_before
FROM ku9_queue.d_qr;
-- and is never delivered, nacked, extended or failed again
SELECT count(*) AS read FROM ku9.read('qr', 10, 0);
SELECT count(*) AS popped FROM ku9.pop('qr', 10);
SELECT ku9.nack('qr', :id) AS nacked, ku9.extend('qr', :id, 10) IS NULL AS extend_null,
       ku9.fail('qr', :id, 'again') IS NULL AS fail_null, ku9.ack('qr', ARRAY[:id]) AS acked;
SELECT count(*) AS still_one_dead FROM ku9_queue.d_qr;
SELECT depth, dead, failed_total - :f0 AS failed, dead_total - :d0 AS dead_lettered FROM ku9.queue_stats('qr');
-- a dead message no longer holds its dedup key
SELECT ku9.send('qr', '{"job": 1, "again": true}', '{"dedup_key": "job-1"}') <> :id AS new_id;
SELECT ku9.purge_queue('qr') AS purged;

-- fail on an unknown id: NULL, nothing counted
SELECT ku9.fail('qr', -1, 'nothing') IS NULL AS unknown_is_null;
SELECT failed_total - :f0 AS failed FROM ku9.queue_stats('qr');

-- the cap: base 10, attempt 3 would be 40 s, capped at 25: retry in 12.5 to 25 s
SELECT ku9.create_queue('qr_cap', '{"max_attempts": 100, "backoff_base": 10, "backoff_max": 25}');
SELECT ku9.send('qr_cap', '{"c": 1}') AS cid \gset
SELECT count(*) FROM ku9.read('qr_cap', 1, 0);
SELECT count(*) FROM ku9.read('qr_cap', 1, 0);
SELECT attempts FROM ku9.read('qr_cap', 1, 60);
SELECT clock_timestamp() AS t0 \gset
SELECT ku9.fail('qr_cap', :cid, 'capped') AS result;
SELECT clock_timestamp() AS t1 \gset
SELECT vt BETWEEN :'t0'::timestamptz + interval '12.5 s' AND :'t1'::timestamptz + interval '25 s' AS capped_12_5_to_25s
FROM ku9_queue.q_qr_cap WHERE msg_id = :cid;
-- ... also far beyond (attempt 20 would be 10 * 2^19 s)
UPDATE ku9_queue.q_qr_cap SET attempts = 20 WHERE msg_id = :cid;
SELECT clock_timestamp() AS t0 \gset
SELECT ku9.fail('qr_cap', :cid, 'capped') AS result;
SELECT clock_timestamp() AS t1 \gset
SELECT vt BETWEEN :'t0'::timestamptz + interval '12.5 s' AND :'t1'::timestamptz + interval '25 s' AS capped_12_5_to_25s
FROM ku9_queue.q_qr_cap WHERE msg_id = :cid;

-- jitter: 40 first failures of a 10 s base all wait 5 to 10 s, not all the same
SELECT count(*) AS sent FROM ku9.send_batch('qr_cap', (SELECT jsonb_agg(jsonb_build_object('j', i)) FROM generate_series(1, 40) i));
CREATE TEMP TABLE jitter AS
    SELECT msg_id, clock_timestamp() AS t0, ku9.fail('qr_cap', msg_id, 'jitter') AS result, clock_timestamp() AS t1
    FROM ku9.read('qr_cap', 100, 60) WHERE attempts = 1;
SELECT count(*) AS failed, count(*) FILTER (WHERE result = 'retry') AS retries FROM jitter;
SELECT count(*) FILTER (WHERE q.vt BETWEEN j.t0 + interval '5 s' AND j.t1 + interval '10 s') AS within_5_to_10s,
       max(q.vt - j.t0) - min(q.vt - j.t0) > interval '1 s' AS jittered
FROM jitter j JOIN ku9_queue.q_qr_cap q USING (msg_id);

-- a fractional base works the same way: 0.5 s, attempt 2 waits 0.5 to 1 s
SELECT ku9.create_queue('qr_frac', '{"backoff_base": 0.5}');
SELECT ku9.send('qr_frac', '{"f": 1}') AS fid \gset
SELECT count(*) FROM ku9.read('qr_frac', 1, 0);
SELECT attempts FROM ku9.read('qr_frac', 1, 60);
SELECT clock_timestamp() AS t0 \gset
SELECT ku9.fail('qr_frac', :fid, 'frac') AS result;
SELECT clock_timestamp() AS t1 \gset
SELECT vt BETWEEN :'t0'::timestamptz + interval '0.5 s' AND :'t1'::timestamptz + interval '1 s' AS backoff_half_to_1s
FROM ku9_queue.q_qr_frac WHERE msg_id = :fid;

-- max_attempts 1: the first failure is final
SELECT ku9.create_queue('qr_once', '{"max_attempts": 1}');
SELECT ku9.send('qr_once', '{"o": 1}') AS oid \gset
SELECT attempts FROM ku9.read('qr_once', 1, 60);
SELECT ku9.fail('qr_once', :oid, 'only chance') AS result;
SELECT attempts, last_error FROM ku9_queue.d_qr_once;

-- read itself dead-letters a message that already had max_attempts
-- deliveries (its last vt ran out without an ack)
SELECT ku9.create_queue('qr_vt', '{"max_attempts": 2}');
SELECT dead_total AS vd0 FROM ku9.queue_stats('qr_vt') \gset
SELECT ku9.send('qr_vt', '{"v": 1}') AS vid \gset
SELECT attempts FROM ku9.read('qr_vt', 1, 0);
SELECT attempts FROM ku9.read('qr_vt', 1, 0);
SELECT count(*) AS not_delivered_a_third_time FROM ku9.read('qr_vt', 1, 0);
SELECT count(*) AS in_queue FROM ku9_queue.q_qr_vt;
SELECT msg_id = :vid AS is_vid, attempts, payload, last_error FROM ku9_queue.d_qr_vt;
SELECT depth, dead, dead_total - :vd0 AS dead_lettered FROM ku9.queue_stats('qr_vt');
-- a failure recorded earlier is kept as the last error
SELECT ku9.send('qr_vt', '{"v": 2}') AS vid2 \gset
SELECT attempts FROM ku9.read('qr_vt', 1, 60);
SELECT ku9.fail('qr_vt', :vid2, 'handler crashed') AS result;
SELECT ku9.nack('qr_vt', :vid2) AS due_now;
SELECT attempts FROM ku9.read('qr_vt', 1, 0);
SELECT count(*) AS not_delivered_a_third_time FROM ku9.read('qr_vt', 1, 0);
SELECT attempts, last_error FROM ku9_queue.d_qr_vt WHERE msg_id = :vid2;
SELECT dead, dead_total - :vd0 AS dead_lettered FROM ku9.queue_stats('qr_vt');

-- a read that dead-letters the head of the queue still hands out the
-- visible messages behind it
SELECT ku9.create_queue('qr_head', '{"max_attempts": 1}');
SELECT ku9.send('qr_head', '{"h": "exhausted"}') AS hid \gset
SELECT attempts FROM ku9.read('qr_head', 1, 0);
SELECT ku9.send('qr_head', '{"h": "fresh"}') AS hid2 \gset
SELECT msg_id = :hid2 AS is_fresh, attempts, payload FROM ku9.read('qr_head', 1, 0);
SELECT payload FROM ku9_queue.d_qr_head;

-- pop does not deliver a message that already had max_attempts deliveries
-- either: it goes to the dead letters
SELECT ku9.create_queue('qr_pop', '{"max_attempts": 1}');
SELECT ku9.send('qr_pop', '{"p": "exhausted"}') AS pid \gset
SELECT attempts FROM ku9.read('qr_pop', 1, 0);
SELECT attempts, payload FROM ku9.pop('qr_pop');
SELECT msg_id = :pid AS is_pid, attempts FROM ku9_queue.d_qr_pop;
SELECT count(*) AS in_queue FROM ku9_queue.q_qr_pop;

SELECT ku9.drop_queue(name) FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');
DROP EXTENSION ku9;
