-- queue: archive retention with ku9.prune_archive
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT ku9.create_queue('qar_a', '{"archive": true, "retention": "1 hour"}');
SELECT ku9.create_queue('qar_b', '{"archive": true, "retention": "0"}');
SELECT ku9.create_queue('qar_plain');

SELECT count(*) FROM ku9.send_batch('qar_a', '[{"n": 1}, {"n": 2}, {"n": 3}]');
SELECT count(*) FROM ku9.send_batch('qar_b', '[{"n": 1}, {"n": 2}]');
SELECT ku9.ack('qar_a', array_agg(msg_id)) FROM ku9.read('qar_a', 10);
SELECT ku9.ack('qar_b', array_agg(msg_id)) FROM ku9.read('qar_b', 10);
SELECT count(*) AS archived_a FROM ku9_queue.a_qar_a;

-- two of qar_a's archived messages are older than its retention
UPDATE ku9_queue.a_qar_a SET acked_at = now() - interval '2 hours' WHERE msg_id <= 2;
SELECT ku9.prune_archive('qar_a') AS pruned;
SELECT msg_id FROM ku9_queue.a_qar_a;
SELECT ku9.prune_archive('qar_a') AS pruned_again;

-- NULL prunes every queue; retention 0 keeps nothing acked before now
SELECT ku9.prune_archive() AS pruned_all;
SELECT count(*) AS left_b FROM ku9_queue.a_qar_b;
SELECT count(*) AS left_a FROM ku9_queue.a_qar_a;

-- errors
SELECT pg_temp.sqlerr($$SELECT ku9.prune_archive('qar_nope')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.prune_archive('Bad Name')$$);
CREATE ROLE regress_ku9_qar_user IN ROLE ku9_user;
SET ROLE regress_ku9_qar_user;
SELECT pg_temp.sqlerr($$SELECT ku9.prune_archive()$$);
RESET ROLE;
DROP ROLE regress_ku9_qar_user;

SELECT ku9.drop_queue(name) FROM ku9.list_queues() WHERE name LIKE 'qar%';
DROP EXTENSION ku9;
