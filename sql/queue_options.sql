-- queue: options of create_queue, send and send_batch; archive; payload size
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- pg_temp.sqlstate_names(stmt, word): the SQLSTATE of stmt's error, and
-- whether its message names word (used where only these two are fixed)
CREATE FUNCTION pg_temp.sqlstate_names(stmt text, word text, OUT code text, OUT names_it boolean)
LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE stmt;
    code := 'no error';
EXCEPTION WHEN OTHERS THEN
    code := SQLSTATE;
    names_it := strpos(SQLERRM, word) > 0;
END
$f$;

-- create_queue: defaults, every option, and NULL options meaning the defaults
SELECT ku9.create_queue('qo_defaults');
SELECT ku9.create_queue('qo_null', NULL);
SELECT ku9.create_queue('qo_all', '{"vt": 5, "max_attempts": 7, "backoff_base": 0.5, "backoff_max": 90,
                                    "archive": true, "retention": "2 days 3 hours", "max_payload": 4096}');
SELECT ku9.create_queue('qo_edges', '{"vt": 0, "max_attempts": 1, "backoff_base": 86400, "backoff_max": 604800,
                                      "archive": false, "retention": "0", "max_payload": 1}');
SELECT ku9.create_queue('qo_vt_max', '{"vt": 43200, "backoff_base": 2, "backoff_max": 2}');
SELECT name, vt, max_attempts, backoff_base, backoff_max, archive, retention, max_payload
FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');
-- the registry keeps the same values
SELECT name, vt, max_attempts, backoff_base, backoff_max, archive, retention, max_payload
FROM ku9.queues WHERE name = 'qo_all';

-- the options take effect: vt is the default visibility timeout of read
SELECT ku9.send('qo_all', '{"x": 1}') AS id \gset
SELECT clock_timestamp() AS t_before \gset
SELECT vt AS r_vt FROM ku9.read('qo_all') \gset
SELECT clock_timestamp() AS t_after \gset
SELECT :'r_vt'::timestamptz BETWEEN :'t_before'::timestamptz + interval '5 s'
                                AND :'t_after'::timestamptz + interval '5 s' AS vt_from_option;
-- max_payload 1 refuses even an empty object
SELECT pg_temp.sqlerr($$SELECT ku9.send('qo_edges', '{}')$$);
-- a queue with vt 0 hands a message out again at once
SELECT ku9.create_queue('qo_vt0', '{"vt": 0}');
SELECT ku9.send('qo_vt0', '{}') > 0 AS sent;
SELECT attempts FROM ku9.read('qo_vt0');
SELECT attempts FROM ku9.read('qo_vt0');

-- bad values: 22023, naming the option; nothing stored
SELECT o, pg_temp.sqlerr(format('SELECT ku9.create_queue(%L, %L)', 'qo_bad', o))
FROM unnest(ARRAY[
    '{"vt": -1}', '{"vt": 43201}', '{"vt": 1.5}', '{"vt": "30"}', '{"vt": null}',
    '{"max_attempts": 0}', '{"max_attempts": 2.5}', '{"max_attempts": true}',
    '{"backoff_base": 0}', '{"backoff_base": -1}', '{"backoff_base": 86401}', '{"backoff_base": "1"}',
    '{"backoff_max": 0}', '{"backoff_max": 604801}', '{"backoff_max": 0.5}',
    '{"backoff_base": 10, "backoff_max": 5}',
    '{"archive": "yes"}', '{"archive": 1}', '{"archive": null}',
    '{"retention": 86400}', '{"retention": ["1 day"]}',
    '{"max_payload": 0}', '{"max_payload": 268435457}', '{"max_payload": "1MB"}',
    '{"visibility_timeout": 30}', '{"VT": 30}', '{"vt": 30, "dedup_key": "x"}']) AS o;
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qo_bad', '[]')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qo_bad', '"vt"')$$);
-- a retention that is no interval, a negative retention and an out-of-range
-- number are bad values like the others
SELECT * FROM pg_temp.sqlstate_names($$SELECT ku9.create_queue('qo_bad', '{"retention": "a while"}')$$, '"retention"');
SELECT * FROM pg_temp.sqlstate_names($$SELECT ku9.create_queue('qo_bad', '{"retention": "-1 day"}')$$, '"retention"');
SELECT * FROM pg_temp.sqlstate_names($$SELECT ku9.create_queue('qo_bad', '{"retention": "200000 years"}')$$, '"retention"');
SELECT * FROM pg_temp.sqlstate_names($$SELECT ku9.create_queue('qo_bad', '{"vt": 1e400}')$$, '"vt"');
SELECT count(*) AS bad_queues FROM ku9.queues WHERE name = 'qo_bad';
SELECT count(*) AS bad_tables FROM pg_class WHERE relnamespace = 'ku9_queue'::regnamespace AND relname LIKE '%qo\_bad%';
-- the last of duplicate keys wins, as in jsonb
SELECT ku9.create_queue('qo_dupkey', '{"vt": 1, "vt": 2}');
SELECT vt FROM ku9.list_queues() WHERE name = 'qo_dupkey';

-- a name in use: 42710, the first queue keeps its options
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qo_all', '{"vt": 9}')$$);
SELECT vt FROM ku9.list_queues() WHERE name = 'qo_all';

-- send: priority (higher first, FIFO within a priority)
SELECT ku9.create_queue('qo_prio');
SELECT ku9.send('qo_prio', jsonb_build_object('n', n, 'p', p), jsonb_build_object('priority', p)) > 0 AS sent
FROM (VALUES (1, 0), (2, 5), (3, -1), (4, 5), (5, 0), (6, 32767), (7, -32768), (8, 5)) AS v(n, p);
SELECT ku9.send('qo_prio', '{"n": 9, "p": 0}') > 0 AS sent_default_priority;
SELECT payload FROM ku9.read('qo_prio', 3, 0);
SELECT payload FROM ku9.read('qo_prio', 100, 60);
-- a message made visible again keeps its place
SELECT ku9.nack('qo_prio', msg_id) FROM ku9_queue.q_qo_prio WHERE payload ->> 'n' IN ('3', '5', '2');
SELECT payload FROM ku9.read('qo_prio', 100, 60);
SELECT o, pg_temp.sqlerr(format('SELECT ku9.send(%L, %L, %L)', 'qo_prio', '{"bad": true}', o))
FROM unnest(ARRAY['{"priority": 32768}', '{"priority": -32769}', '{"priority": 1.5}', '{"priority": "high"}']) AS o;

-- send: delay in seconds
SELECT ku9.create_queue('qo_delay');
SELECT clock_timestamp() AS t_before \gset
SELECT ku9.send('qo_delay', '{"d": "60 s"}', '{"delay": 60}') AS d60 \gset
SELECT clock_timestamp() AS t_after \gset
SELECT vt BETWEEN :'t_before'::timestamptz + interval '60 s' AND :'t_after'::timestamptz + interval '60 s' AS vt_in_60s,
       enqueued_at BETWEEN :'t_before' AND :'t_after' AS enqueued_now, attempts
FROM ku9_queue.q_qo_delay WHERE msg_id = :d60;
-- as a timestamp: in the future it is the vt; in the past it is now
SELECT (clock_timestamp() + interval '1 hour')::text AS at \gset
SELECT ku9.send('qo_delay', '{"d": "1 hour"}', jsonb_build_object('delay', :'at')) AS d3600 \gset
SELECT vt = :'at'::timestamptz AS vt_is_at FROM ku9_queue.q_qo_delay WHERE msg_id = :d3600;
SELECT ku9.send('qo_delay', '{"d": "past"}', '{"delay": "2000-01-01 00:00:00+00"}') AS dpast \gset
SELECT ku9.send('qo_delay', '{"d": "0"}', '{"delay": 0}') AS d0 \gset
SELECT ku9.send('qo_delay', '{"d": "1 s"}', '{"delay": 1}') AS dfrac \gset
SELECT vt > '2000-01-02'::timestamptz AS past_means_now FROM ku9_queue.q_qo_delay WHERE msg_id = :dpast;
-- delayed messages are counted as delayed, and not read until due
SELECT depth, visible, in_flight, delayed FROM ku9.queue_stats('qo_delay');
SELECT payload FROM ku9.read('qo_delay', 10, 60);
SELECT count(*) AS none_due FROM ku9.read('qo_delay', 10, 60);
-- (sleep until the 1 s delay has passed)
SELECT pg_sleep(extract(epoch FROM vt - clock_timestamp())::float8 + 0.01) FROM ku9_queue.q_qo_delay WHERE msg_id = :dfrac;
SELECT payload FROM ku9.read('qo_delay', 10, 60);
SELECT depth, visible, in_flight, delayed FROM ku9.queue_stats('qo_delay');
SELECT o, pg_temp.sqlerr(format('SELECT ku9.send(%L, %L, %L)', 'qo_delay', '{"bad": true}', o))
FROM unnest(ARRAY['{"delay": -1}', '{"delay": 31536001}', '{"delay": true}', '{"delay": null}', '{"delay": [1]}']) AS o;
SELECT * FROM pg_temp.sqlstate_names($$SELECT ku9.send('qo_delay', '{"bad": true}', '{"delay": "tomorrow-ish"}')$$, '"delay"');
-- a message due never is refused like any other bad delay
SELECT * FROM pg_temp.sqlstate_names($$SELECT ku9.send('qo_delay', '{"bad": true}', '{"delay": "infinity"}')$$, '"delay"');
SELECT count(*) AS bad_stored FROM ku9_queue.q_qo_delay WHERE payload ? 'bad';

-- send: dedup_key — a second send with the key of a pending message
-- returns that message's id and stores nothing
SELECT ku9.create_queue('qo_dedup');
SELECT ku9.send('qo_dedup', '{"v": 1}', '{"dedup_key": "order-42"}') AS k1 \gset
SELECT ku9.send('qo_dedup', '{"v": 2}', '{"dedup_key": "order-42"}') = :k1 AS same_id;
SELECT ku9.send('qo_dedup', '{"v": 3}', '{"dedup_key": "order-42", "delay": 600, "priority": 9}') = :k1 AS same_id;
SELECT count(*) AS stored, min(payload ->> 'v') AS first_payload, min(priority) AS priority FROM ku9_queue.q_qo_dedup;
-- other keys and no key are separate messages
SELECT ku9.send('qo_dedup', '{"v": 4}', '{"dedup_key": "order-43"}') <> :k1 AS new_id;
SELECT ku9.send('qo_dedup', '{"v": 5}') <> :k1 AS new_id;
SELECT ku9.send('qo_dedup', '{"v": 6}') <> :k1 AS new_id;
-- keys are compared exactly; quotes in a key are data
SELECT ku9.send('qo_dedup', '{"v": 7}', '{"dedup_key": "ORDER-42"}') <> :k1 AS new_id;
SELECT ku9.send('qo_dedup', '{"v": 8}', $${"dedup_key": "x'); DROP TABLE ku9.queues; --"}$$) AS kq \gset
SELECT ku9.send('qo_dedup', '{"v": 9}', $${"dedup_key": "x'); DROP TABLE ku9.queues; --"}$$) = :kq AS same_id;
SELECT dedup_key FROM ku9_queue.q_qo_dedup WHERE msg_id = :kq;
SELECT count(*) AS queues_still_there FROM ku9.queues WHERE name = 'qo_dedup';
-- still pending while in flight
SELECT count(*) AS read FROM ku9.read('qo_dedup', 1, 60);
SELECT ku9.send('qo_dedup', '{"v": 10}', '{"dedup_key": "order-42"}') = :k1 AS same_id_in_flight;
-- once acked, the key is free again
SELECT ku9.ack('qo_dedup', ARRAY[:k1]) AS acked;
SELECT ku9.send('qo_dedup', '{"v": 11}', '{"dedup_key": "order-42"}') AS k2 \gset
SELECT :k2 <> :k1 AS new_id;
SELECT ku9.send('qo_dedup', '{"v": 12}', '{"dedup_key": "order-42"}') = :k2 AS same_as_new;
SELECT payload FROM ku9_queue.q_qo_dedup WHERE dedup_key = 'order-42';
-- and after a pop
SELECT count(*) AS popped FROM ku9.pop('qo_dedup', 100);
SELECT ku9.send('qo_dedup', '{"v": 13}', '{"dedup_key": "order-42"}') NOT IN (:k1, :k2) AS new_id;
SELECT o, pg_temp.sqlerr(format('SELECT ku9.send(%L, %L, %L)', 'qo_dedup', '{"bad": true}', o))
FROM unnest(ARRAY['{"dedup_key": ""}', '{"dedup_key": 42}', '{"dedup_key": null}']) AS o;
SELECT pg_temp.sqlerr(format('SELECT ku9.send(%L, %L, %L)', 'qo_dedup', '{"bad": true}',
                             jsonb_build_object('dedup_key', repeat('k', 513))));
SELECT ku9.send('qo_dedup', '{"v": 14}', jsonb_build_object('dedup_key', repeat('k', 512))) > 0 AS key_512_bytes;
SELECT count(*) AS bad_stored FROM ku9_queue.q_qo_dedup WHERE payload ? 'bad';

-- send: headers, a JSON object, handed back by read
SELECT ku9.create_queue('qo_headers');
SELECT ku9.send('qo_headers', '{"h": 1}', '{"headers": {"content-type": "application/json", "n": [1, 2]}}') > 0 AS sent;
SELECT ku9.send('qo_headers', '{"h": 2}', '{"headers": {}}') > 0 AS sent;
SELECT payload, headers FROM ku9.read('qo_headers', 10, 0);
SELECT o, pg_temp.sqlerr(format('SELECT ku9.send(%L, %L, %L)', 'qo_headers', '{"bad": true}', o))
FROM unnest(ARRAY['{"headers": [1]}', '{"headers": "x"}', '{"headers": 1}', '{"headers": null}']) AS o;
-- other option keys and a non-object are refused
SELECT pg_temp.sqlerr($$SELECT ku9.send('qo_headers', '{"bad": true}', '{"ttl": 5}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.send('qo_headers', '{"bad": true}', '[]')$$);
SELECT ku9.send('qo_headers', '{"h": 3}', NULL) > 0 AS null_options_are_none;
SELECT count(*) AS bad_stored FROM ku9_queue.q_qo_headers WHERE payload ? 'bad';

-- send_batch: ids in order, the options apply to every message
SELECT ku9.create_queue('qo_batch');
SELECT array_agg(id) AS ids FROM ku9.send_batch('qo_batch', '[{"b": 1}, {"b": 2}, [3], {"b": 4}]') AS id \gset
SELECT :'ids'::bigint[] = (SELECT array_agg(msg_id ORDER BY msg_id) FROM ku9_queue.q_qo_batch) AS ids_are_stored,
       (SELECT array_agg(payload ORDER BY msg_id) FROM ku9_queue.q_qo_batch) AS payloads_in_order,
       (SELECT bool_and(a < b) FROM (SELECT x AS a, lead(x) OVER (ORDER BY o) AS b FROM unnest(:'ids'::bigint[]) WITH ORDINALITY AS t(x, o)) s WHERE b IS NOT NULL) AS increasing;
SELECT count(*) AS no_rows FROM ku9.send_batch('qo_batch', '[]');
SELECT clock_timestamp() AS t_before \gset
SELECT count(*) AS sent FROM ku9.send_batch('qo_batch', '[{"b": 5}, {"b": 6}]',
                                            '{"priority": 3, "headers": {"batch": "x"}, "delay": 600}');
SELECT clock_timestamp() AS t_after \gset
SELECT payload, priority, headers,
       vt BETWEEN :'t_before'::timestamptz + interval '600 s' AND :'t_after'::timestamptz + interval '600 s' AS delayed_600s
FROM ku9_queue.q_qo_batch WHERE priority = 3 ORDER BY msg_id;
SELECT count(*) AS sent FROM ku9.send_batch('qo_batch', '[{"b": 7}]', '{"priority": 1}');
SELECT payload FROM ku9.read('qo_batch', 100, 0);
-- dedup_key is for single sends only
SELECT pg_temp.sqlerr($$SELECT ku9.send_batch('qo_batch', '[{"bad": true}]', '{"dedup_key": "k"}')$$);
SELECT count(*) AS bad_stored FROM ku9_queue.q_qo_batch WHERE payload ? 'bad';

-- archive: ack and pop move messages to ku9_queue.a_<name>
SELECT ku9.create_queue('qo_archive', '{"archive": true}');
SELECT ku9.send('qo_archive', '{"a": 1}', '{"priority": 2, "headers": {"h": 1}, "dedup_key": "ka"}') AS a1 \gset
SELECT ku9.send('qo_archive', '{"a": 2}') AS a2 \gset
SELECT ku9.send('qo_archive', '{"a": 3}') AS a3 \gset
SELECT count(*) AS read FROM ku9.read('qo_archive', 1, 60);
SELECT clock_timestamp() AS t_before \gset
SELECT ku9.ack('qo_archive', ARRAY[:a1, -1]) AS acked;
SELECT clock_timestamp() AS t_after \gset
SELECT msg_id = :a1 AS is_a1, priority, attempts, dedup_key, headers, payload,
       acked_at BETWEEN :'t_before' AND :'t_after' AS acked_now,
       enqueued_at < acked_at AS enqueued_before
FROM ku9_queue.a_qo_archive;
SELECT ku9.ack('qo_archive', ARRAY[:a1]) AS acked_again;
SELECT count(*) AS archive_rows FROM ku9_queue.a_qo_archive;
SELECT payload, attempts FROM ku9.pop('qo_archive');
SELECT msg_id = :a2 AS is_a2, attempts, payload FROM ku9_queue.a_qo_archive WHERE msg_id <> :a1;
SELECT depth, archived FROM ku9.queue_stats('qo_archive');
-- without archive, ack and pop keep nothing
SELECT ku9.send('qo_defaults', '{"x": 1}') AS x1 \gset
SELECT ku9.send('qo_defaults', '{"x": 2}') > 0 AS sent;
SELECT ku9.ack('qo_defaults', ARRAY[:x1]) AS acked;
SELECT count(*) AS popped FROM ku9.pop('qo_defaults');
SELECT count(*) AS archive_rows FROM ku9_queue.a_qo_defaults;

-- max_payload: a larger payload is 54000 and not stored; the default is 1 MB
SELECT ku9.create_queue('qo_small', '{"max_payload": 100}');
SELECT ku9.send('qo_small', '{"s": "short"}') > 0 AS small_ok;
SELECT pg_temp.sqlerr(format('SELECT ku9.send(%L, %L)', 'qo_small', jsonb_build_object('s', repeat('x', 200))));
SELECT pg_temp.sqlerr(format('SELECT ku9.send_batch(%L, %L)', 'qo_small',
                             jsonb_build_array('{"s": "short"}'::jsonb, jsonb_build_object('s', repeat('x', 200)))));
SELECT count(*) AS stored FROM ku9_queue.q_qo_small;
SELECT ku9.send('qo_defaults', jsonb_build_object('s', repeat('x', 1000000))) > 0 AS under_1mb_ok;
SELECT pg_temp.sqlerr(format('SELECT ku9.send(%L, %L)', 'qo_defaults', jsonb_build_object('s', repeat('x', 1048576))));
SELECT count(*) AS big_stored FROM ku9_queue.q_qo_defaults WHERE octet_length(payload ->> 's') = 1048576;

SELECT ku9.drop_queue(name) FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');
SELECT count(*) AS tables_left FROM pg_class WHERE relnamespace = 'ku9_queue'::regnamespace AND relname !~ 'ku9_(mail|push)';

DROP EXTENSION ku9;
