-- queue: bad input — names, NULLs, payloads, limits, unknown queues; nothing stored on error
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- pg_temp.sqlerr_detail(stmt): like sqlerr, with the error's DETAIL
CREATE FUNCTION pg_temp.sqlerr_detail(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    d text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' (' || nullif(d, '') || ')', '');
END
$f$;

SELECT ku9.create_queue('qe');
SELECT ku9.send('qe', '{"seed": 1}') AS seed \gset

-- bad queue names: 22023 with the rule in the detail, from every function
SELECT n AS name, pg_temp.sqlerr(format('SELECT ku9.create_queue(%L)', n))
FROM unnest(ARRAY['Qe', 'QE', repeat('a', 49), '', '1queue', '_queue', 'a-b', 'a b', 'a.b', 'é',
                  'a"b', 'a;b', $$x'; DROP TABLE ku9.queues; --$$, 'q"; DROP SCHEMA ku9_queue CASCADE; --',
                  E'a\nb', 'qe ']) AS n;
SELECT pg_temp.sqlerr_detail($$SELECT ku9.create_queue('Bad')$$);
-- 48 characters is the longest name
SELECT length(repeat('a', 48)) AS len, ku9.create_queue(repeat('a', 48));
SELECT ku9.send(repeat('a', 48), '{}') > 0 AS sent;
SELECT ku9.drop_queue(repeat('a', 48));
-- nothing was made for the bad names
SELECT name FROM ku9.queues ORDER BY 1;
SELECT relname FROM pg_class WHERE relnamespace = 'ku9_queue'::regnamespace AND relkind = 'r' AND relname !~ 'ku9_(mail|push)' ORDER BY 1;
SELECT count(*) AS queue_schemas_intact FROM pg_namespace WHERE nspname IN ('ku9', 'ku9_queue');
-- and every other function checks the name the same way
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.drop_queue('QE')$$,
    $$SELECT ku9.purge_queue('qe;')$$,
    $$SELECT ku9.send('qe''', '{}')$$,
    $$SELECT ku9.send_batch('q e', '[{}]')$$,
    $$SELECT ku9.read('"qe"')$$,
    $$SELECT ku9.pop('qe--')$$,
    $$SELECT ku9.ack('ku9_queue.q_qe', '{1}')$$,
    $$SELECT ku9.nack('q_qe; DELETE FROM ku9.queues', 1)$$,
    $$SELECT ku9.fail('', 1, 'e')$$,
    $$SELECT ku9.extend('1', 1, 10)$$,
    $$SELECT ku9.queue_stats('Qe')$$,
    $$SELECT ku9.grant_queue('qe)', 'ku9_user', 'send')$$,
    $$SELECT ku9.revoke_queue('qe*', 'ku9_user', 'send')$$]) AS f;

-- an unknown queue: 42704 (drop_queue answers false)
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.purge_queue('qe_none')$$,
    $$SELECT ku9.send('qe_none', '{}')$$,
    $$SELECT ku9.send_batch('qe_none', '[{}]')$$,
    $$SELECT ku9.send_batch('qe_none', '[]')$$,
    $$SELECT ku9.read('qe_none')$$,
    $$SELECT ku9.read('qe_none', 1, 0, 10)$$,
    $$SELECT ku9.pop('qe_none')$$,
    $$SELECT ku9.ack('qe_none', '{1}')$$,
    $$SELECT ku9.nack('qe_none', 1)$$,
    $$SELECT ku9.fail('qe_none', 1, 'e')$$,
    $$SELECT ku9.extend('qe_none', 1, 10)$$,
    $$SELECT ku9.queue_stats('qe_none')$$,
    $$SELECT ku9.grant_queue('qe_none', 'ku9_user', 'send')$$,
    $$SELECT ku9.revoke_queue('qe_none', 'ku9_user', 'read')$$]) AS f;
SELECT ku9.drop_queue('qe_none') AS dropped;
-- the name of a queue's own table is not a queue
SELECT pg_temp.sqlerr($$SELECT ku9.send('q_qe', '{}')$$);

-- NULL arguments: 22004
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.create_queue(NULL)$$,
    $$SELECT ku9.drop_queue(NULL)$$,
    $$SELECT ku9.purge_queue(NULL)$$,
    $$SELECT ku9.send(NULL, '{}')$$,
    $$SELECT ku9.send('qe', NULL)$$,
    $$SELECT ku9.send_batch(NULL, '[{}]')$$,
    $$SELECT ku9.send_batch('qe', NULL)$$,
    $$SELECT ku9.read(NULL)$$,
    $$SELECT ku9.read('qe', NULL)$$,
    $$SELECT ku9.read('qe', 1, 0, NULL)$$,
    $$SELECT ku9.pop(NULL)$$,
    $$SELECT ku9.pop('qe', NULL)$$,
    $$SELECT ku9.ack(NULL, '{1}')$$,
    $$SELECT ku9.ack('qe', NULL)$$,
    $$SELECT ku9.nack(NULL, 1)$$,
    $$SELECT ku9.nack('qe', NULL)$$,
    $$SELECT ku9.nack('qe', 1, NULL)$$,
    $$SELECT ku9.fail(NULL, 1, 'e')$$,
    $$SELECT ku9.fail('qe', NULL, 'e')$$,
    $$SELECT ku9.extend(NULL, 1, 10)$$,
    $$SELECT ku9.extend('qe', NULL, 10)$$,
    $$SELECT ku9.extend('qe', 1, NULL)$$,
    $$SELECT ku9.queue_stats(NULL)$$,
    $$SELECT ku9.grant_queue(NULL, 'ku9_user', 'send')$$,
    $$SELECT ku9.grant_queue('qe', NULL, 'send')$$,
    $$SELECT ku9.grant_queue('qe', 'ku9_user', NULL)$$,
    $$SELECT ku9.revoke_queue('qe', 'ku9_user', NULL)$$]) AS f;
-- where NULL means a default, it is no error: options (none), read's vt (the
-- queue's), fail's error (recorded as '(no error given)')
SELECT pg_temp.sqlerr($$SELECT ku9.create_queue('qe_nullopts', NULL)$$);
SELECT pg_temp.sqlerr($$SELECT ku9.send('qe_nullopts', '{"n": 1}', NULL)$$);
SELECT pg_temp.sqlerr($$SELECT ku9.send_batch('qe_nullopts', '[{"n": 2}]', NULL)$$);
SELECT msg_id AS nid FROM ku9.read('qe_nullopts', 1, NULL) \gset
SELECT ku9.fail('qe_nullopts', :nid, NULL) AS failed;
SELECT last_error FROM ku9_queue.q_qe_nullopts WHERE msg_id = :nid;
SELECT ku9.drop_queue('qe_nullopts');

-- payloads: a JSON object or array, never a scalar (22023)
SELECT p, pg_temp.sqlerr(format('SELECT ku9.send(%L, %L)', 'qe', p))
FROM unnest(ARRAY['1', '"text"', 'true', 'null', '1.5']) AS p;
SELECT p, pg_temp.sqlerr(format('SELECT ku9.send(%L, %L)', 'qe', p))
FROM unnest(ARRAY['{}', '[]', '[null]', '{"a": null}']) AS p;
-- send_batch: an array of payloads; a scalar element is refused, and named
SELECT p, pg_temp.sqlerr_detail(format('SELECT ku9.send_batch(%L, %L)', 'qe', p))
FROM unnest(ARRAY['{"a": 1}', '1', 'null', '"s"', '[{"ok": 1}, 2, {"ok": 3}]', '[{"ok": 1}, {"ok": 2}, null]',
                  '[true]', '[[1], {}, "x"]']) AS p;
-- a batch larger than 10000: 54000
SELECT pg_temp.sqlerr(format('SELECT ku9.send_batch(%L, %L)', 'qe',
                             (SELECT jsonb_agg('{}'::jsonb) FROM generate_series(1, 10001))));
-- the payload size limit: 54000
SELECT ku9.create_queue('qe_small', '{"max_payload": 50}');
SELECT pg_temp.sqlerr(format('SELECT ku9.send(%L, %L)', 'qe_small', jsonb_build_object('k', repeat('v', 100))));
SELECT pg_temp.sqlerr(format('SELECT ku9.send_batch(%L, %L)', 'qe_small', jsonb_build_array(jsonb_build_object('k', repeat('v', 100)))));
SELECT count(*) AS stored FROM ku9_queue.q_qe_small;
SELECT ku9.drop_queue('qe_small');

-- read and pop: qty from 1 to 10000, vt from 0 to 43200 s, wait_ms from 0 to ku9.queue_max_wait
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.read('qe', 0)$$,
    $$SELECT ku9.read('qe', -1)$$,
    $$SELECT ku9.read('qe', 10001)$$,
    $$SELECT ku9.read('qe', 1, -1)$$,
    $$SELECT ku9.read('qe', 1, 43201)$$,
    $$SELECT ku9.read('qe', 1, 0, -1)$$,
    $$SELECT ku9.read('qe', 1, 0, 60001)$$,
    $$SELECT ku9.pop('qe', 0)$$,
    $$SELECT ku9.pop('qe', 10001)$$,
    $$SELECT ku9.nack('qe', 1, -1)$$,
    $$SELECT ku9.nack('qe', 1, 43201)$$,
    $$SELECT ku9.extend('qe', 1, -1)$$,
    $$SELECT ku9.extend('qe', 1, 43201)$$,
    $$SELECT ku9.ack('qe', '{{1, 2}, {3, 4}}')$$]) AS f;
SELECT current_setting('ku9.queue_max_wait') AS default_max_wait;
SET ku9.queue_max_wait = 100;
SELECT pg_temp.sqlerr($$SELECT ku9.read('qe', 1, 0, 101)$$);
-- a wait up to the bound is fine, and returns at once when a message is there
SELECT payload FROM ku9.read('qe', 1, 0, 100);
RESET ku9.queue_max_wait;
-- the limits themselves are accepted
SELECT count(*) AS read FROM ku9.read('qe', 10000, 43200);
SELECT ku9.extend('qe', :seed, 43200) IS NOT NULL AS extended;
SELECT ku9.nack('qe', :seed, 43200) AS nacked;
SELECT ku9.nack('qe', :seed, 0) AS nacked;
SELECT count(*) AS popped FROM ku9.pop('qe', 10000);

-- a short wait on an empty queue returns no rows (after about wait_ms)
SELECT clock_timestamp() AS t_before \gset
SELECT count(*) AS none FROM ku9.read('qe', 1, 30, 50);
SELECT clock_timestamp() - :'t_before'::timestamptz >= interval '50 ms' AS waited;
-- waiting needs READ COMMITTED: a transaction snapshot would never see a new message
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.sqlerr($$SELECT ku9.read('qe', 1, 30, 50)$$);
SELECT count(*) AS no_wait_is_fine FROM ku9.read('qe', 1, 30, 0);
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT pg_temp.sqlerr($$SELECT ku9.read('qe', 1, 30, 1)$$);
ROLLBACK;
-- a statement_timeout interrupts a wait
-- (WHEN OTHERS does not catch 57014, so show it with VERBOSITY sqlstate)
\set VERBOSITY sqlstate
SET statement_timeout = '50ms';
SELECT count(*) FROM ku9.read('qe', 1, 30, 5000);
RESET statement_timeout;
\set VERBOSITY default
-- the queue still works after the interrupted wait
SELECT ku9.send('qe', '{"after": "timeout"}') > 0 AS sent;
SELECT payload FROM ku9.read('qe', 1, 30, 1000);

-- nothing was stored by any failed call
-- (the four valid payloads sent above, and the last one)
SELECT payload FROM ku9_queue.q_qe ORDER BY msg_id;
SELECT name FROM ku9.queues ORDER BY 1;

SELECT ku9.drop_queue('qe');
DROP EXTENSION ku9;
