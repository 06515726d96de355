-- queue: who may manage, send to and read from a queue
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- an application role (a ku9_user), a trusted backend (a ku9_service)
CREATE ROLE regress_ku9_q_app IN ROLE ku9_user;
CREATE ROLE regress_ku9_q_svc IN ROLE ku9_service;
CREATE ROLE "regress_ku9 Odd ""Role""" IN ROLE ku9_user;

SELECT ku9.create_queue('qa');
SELECT ku9.create_queue('qa_other');
SELECT ku9.send('qa', '{"n": 1}') AS m1 \gset
SELECT ku9.send('qa_other', '{"n": 1}') AS o1 \gset

-- without a grant: 42501 for sending, reading, and managing
SET ROLE regress_ku9_q_app;
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.send('qa', '{"n": "denied"}')$$,
    $$SELECT ku9.send_batch('qa', '[{"n": "denied"}]')$$,
    $$SELECT ku9.read('qa')$$,
    $$SELECT ku9.read('qa', 1, 0, 10)$$,
    $$SELECT ku9.pop('qa')$$,
    $$SELECT ku9.ack('qa', '{1}')$$,
    $$SELECT ku9.nack('qa', 1)$$,
    $$SELECT ku9.fail('qa', 1, 'e')$$,
    $$SELECT ku9.extend('qa', 1, 10)$$,
    $$SELECT ku9.create_queue('qa_mine')$$,
    $$SELECT ku9.drop_queue('qa')$$,
    $$SELECT ku9.purge_queue('qa')$$,
    $$SELECT ku9.grant_queue('qa', 'regress_ku9_q_app', 'send')$$,
    $$SELECT ku9.revoke_queue('qa', 'regress_ku9_q_app', 'send')$$,
    $$SELECT ku9.queue_stats('qa')$$,
    $$SELECT ku9.list_queues()$$]) AS f;
-- nor directly at the tables
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT * FROM ku9.queues$$,
    $$SELECT * FROM ku9_queue.q_qa$$,
    $$INSERT INTO ku9_queue.q_qa (vt, enqueued_at, payload) VALUES (now(), now(), '{}')$$,
    $$SELECT * FROM ku9_queue.d_qa$$]) AS f;
RESET ROLE;
SELECT count(*) AS messages_in_qa FROM ku9_queue.q_qa;

-- 'send' lets the role send, and nothing else
SELECT ku9.grant_queue('qa', 'regress_ku9_q_app', 'send');
SET ROLE regress_ku9_q_app;
SELECT ku9.send('qa', '{"n": 2}') > :m1 AS sent;
SELECT count(*) AS sent FROM ku9.send_batch('qa', '[{"n": 3}, {"n": 4}]');
-- an empty batch, too, hands the caller's identity back
SELECT count(*) AS sent FROM ku9.send_batch('qa', '[]');
SELECT current_user = 'regress_ku9_q_app' AS still_the_caller;
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.read('qa')$$,
    $$SELECT ku9.pop('qa')$$,
    $$SELECT ku9.ack('qa', '{1}')$$,
    $$SELECT ku9.nack('qa', 1)$$,
    $$SELECT ku9.fail('qa', 1, 'e')$$,
    $$SELECT ku9.extend('qa', 1, 10)$$,
    $$SELECT ku9.purge_queue('qa')$$,
    $$SELECT ku9.queue_stats('qa')$$,
    $$SELECT ku9.send('qa_other', '{"n": "denied"}')$$,
    $$SELECT * FROM ku9_queue.q_qa$$,
    $$INSERT INTO ku9_queue.q_qa (vt, enqueued_at, payload) VALUES (now(), now(), '{}')$$]) AS f;
RESET ROLE;
SELECT payload FROM ku9_queue.q_qa ORDER BY msg_id;

-- 'read' lets it read, pop, ack, nack, fail and extend
SELECT ku9.grant_queue('qa', 'regress_ku9_q_app', 'read');
SET ROLE regress_ku9_q_app;
SELECT msg_id = :m1 AS is_m1, attempts, payload FROM ku9.read('qa', 1, 60);
SELECT ku9.extend('qa', :m1, 120) IS NOT NULL AS extended;
SELECT ku9.nack('qa', :m1) AS nacked;
SELECT ku9.fail('qa', :m1, 'app error') AS failed;
SELECT ku9.extend('qa', :m1, 600) IS NOT NULL AS extended;
SELECT payload FROM ku9.read('qa', 1, 60);
SELECT payload FROM ku9.pop('qa');
SELECT ku9.ack('qa', array_agg(msg_id)) AS acked FROM ku9.read('qa', 10, 60);
SELECT count(*) AS empty_after_wait FROM ku9.read('qa', 1, 60, 10);
-- other queues, the management functions and the tables stay closed
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.read('qa_other')$$,
    $$SELECT ku9.ack('qa_other', ARRAY[1::bigint])$$,
    $$SELECT ku9.purge_queue('qa')$$,
    $$SELECT ku9.queue_stats('qa')$$,
    $$SELECT ku9.grant_queue('qa_other', 'regress_ku9_q_app', 'read')$$,
    $$UPDATE ku9_queue.q_qa SET vt = now()$$]) AS f;
RESET ROLE;
SELECT payload, last_error FROM ku9_queue.q_qa ORDER BY msg_id;
SELECT count(*) AS other_untouched FROM ku9_queue.q_qa_other WHERE msg_id = :o1 AND attempts = 0;

-- revoke_queue takes each privilege back
SELECT ku9.send('qa', '{"n": 5}') > 0 AS sent;
SELECT ku9.revoke_queue('qa', 'regress_ku9_q_app', 'send');
SET ROLE regress_ku9_q_app;
SELECT pg_temp.sqlerr($$SELECT ku9.send('qa', '{"n": "denied"}')$$);
SELECT count(*) AS can_still_read FROM ku9.read('qa', 1, 60);
RESET ROLE;
SELECT ku9.revoke_queue('qa', 'regress_ku9_q_app', 'read');
SET ROLE regress_ku9_q_app;
SELECT pg_temp.sqlerr($$SELECT ku9.read('qa')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.ack('qa', '{1}')$$);
RESET ROLE;
-- revoking what was not granted is no error
SELECT ku9.revoke_queue('qa', 'regress_ku9_q_app', 'read');
SELECT count(*) AS denied_stored FROM ku9_queue.q_qa WHERE payload = '{"n": "denied"}';

-- the privilege word is 'send' or 'read'; the role must exist
SELECT p, pg_temp.sqlerr(format('SELECT ku9.grant_queue(%L, %L, %L)', 'qa', 'regress_ku9_q_app', p))
FROM unnest(ARRAY['write', 'SEND', 'Read', 'send,read', 'all', '', 'send; DROP TABLE ku9.queues']) AS p;
SELECT pg_temp.sqlerr($$SELECT ku9.revoke_queue('qa', 'regress_ku9_q_app', 'delete')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.grant_queue('qa', 'regress_ku9_no_such_role', 'send')$$);
SELECT has_table_privilege('regress_ku9_q_app', 'ku9_queue.q_qa', 'INSERT, UPDATE, SELECT, DELETE') AS any_left;

-- a role name that needs quoting is granted exactly
SELECT ku9.grant_queue('qa', '"regress_ku9 Odd ""Role"""', 'send');
SET ROLE "regress_ku9 Odd ""Role""";
SELECT ku9.send('qa', '{"n": "odd"}') > 0 AS sent;
SELECT pg_temp.sqlerr($$SELECT ku9.read('qa')$$);
RESET ROLE;
SELECT ku9.revoke_queue('qa', '"regress_ku9 Odd ""Role"""', 'send');

-- the anonymous role holds nothing on a queue either
SET ROLE ku9_anon;
SELECT pg_temp.sqlerr($$SELECT ku9.send('qa', '{"n": "anon"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.read('qa')$$);
RESET ROLE;

-- a ku9_service member manages queues, and sends to and reads from all of them
SET ROLE regress_ku9_q_svc;
SELECT ku9.create_queue('qa_svc', '{"archive": true}');
SELECT ku9.send('qa_svc', '{"s": 1}') AS s1 \gset
SELECT ku9.send('qa', '{"n": "from service"}') > 0 AS sent_to_qa;
SELECT payload FROM ku9.read('qa_svc', 1, 60);
SELECT ku9.ack('qa_svc', ARRAY[:s1]) AS acked;
SELECT depth, archived FROM ku9.queue_stats('qa_svc');
SELECT name FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');
SELECT ku9.grant_queue('qa_svc', 'regress_ku9_q_app', 'read');
SELECT ku9.revoke_queue('qa_svc', 'regress_ku9_q_app', 'read');
SELECT ku9.send('qa_svc', '{"s": 2}') > 0 AS sent;
SELECT ku9.purge_queue('qa_svc') AS purged;
-- it may read the archive, but not delete from it or add tables to ku9_queue
SELECT count(*) AS archive_rows FROM ku9_queue.a_qa_svc;
SELECT pg_temp.sqlerr($$DELETE FROM ku9_queue.a_qa_svc$$);
SELECT pg_temp.sqlerr($$CREATE TABLE ku9_queue.q_intruder (id int)$$);
SELECT ku9.drop_queue('qa_svc');
RESET ROLE;
SELECT count(*) AS svc_tables_left FROM pg_class WHERE relnamespace = 'ku9_queue'::regnamespace AND relname LIKE '%qa\_svc%';

-- the caller's search_path changes nothing: with look-alike types first in
-- the path, a new queue's columns still have the pg_catalog types (else a
-- domain's CHECK function would run as the tables' owner on every send)
CREATE SCHEMA regress_ku9_q_types;
CREATE DOMAIN regress_ku9_q_types.jsonb AS pg_catalog.jsonb;
CREATE DOMAIN regress_ku9_q_types.timestamptz AS pg_catalog.timestamptz;
CREATE DOMAIN regress_ku9_q_types.text AS pg_catalog.text;
SET search_path = regress_ku9_q_types, pg_catalog;
SELECT ku9.create_queue('qa_path');
SELECT ku9.send('qa_path', '{"p": 1}') > 0 AS sent;
SELECT payload FROM ku9.read('qa_path', 1, 0);
RESET search_path;
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relnamespace = 'ku9_queue'::regnamespace AND c.relname IN ('q_qa_path', 'a_qa_path', 'd_qa_path')
  AND a.attnum > 0 AND t.typnamespace <> 'pg_catalog'::regnamespace
ORDER BY 1, 2;
SELECT ku9.drop_queue('qa_path');
DROP DOMAIN regress_ku9_q_types.jsonb, regress_ku9_q_types.timestamptz, regress_ku9_q_types.text;
DROP SCHEMA regress_ku9_q_types;

-- a grant to a role that cannot reach ku9's functions says so
CREATE ROLE regress_ku9_q_plain;
SELECT ku9.create_queue('qa_plain');
SELECT ku9.grant_queue('qa_plain', 'regress_ku9_q_plain', 'send');
SELECT ku9.revoke_queue('qa_plain', 'regress_ku9_q_plain', 'send');
DROP ROLE regress_ku9_q_plain;

SELECT ku9.drop_queue(name) FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push');
DROP ROLE regress_ku9_q_app;
DROP ROLE regress_ku9_q_svc;
DROP ROLE "regress_ku9 Odd ""Role""";
DROP EXTENSION ku9;
