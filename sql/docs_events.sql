-- docs: change events, and the outbox.  After a commit, every document a
-- statement inserted, changed or deleted is announced by NOTIFY on channel
-- ku9_docs_<collection> with payload {"op", "_id", "owner", "version"};
-- nothing is sent for a change rolled back, for a statement that changed
-- nothing, or on a collection made with events false.
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT ku9.create_collection('ev');
SELECT ku9.create_collection('ev_quiet', '{"events": false}');
LISTEN ku9_docs_ev;
LISTEN ku9_docs_ev_quiet;

-- psql prints the notifications it has received after each statement, as
-- "Asynchronous notification ... received from server process with PID n",
-- and n, the PID of the backend that sent it, changes from run to run.  So
-- up to the \o below, the output passes through sed, which writes N for it;
-- statements are not echoed (an echo would not keep its place among the
-- lines going through sed), \qecho says what each step does, and nothing
-- may write to stderr.
\set ECHO none
\o | sed 's/received from server process with PID [0-9]*/received from server process with PID N/'

\qecho -- insert_one: insert, version 1; the superuser has no uid, so owner null
SELECT ku9.insert_one('ev', '{"_id": 1, "n": 1}');
\qecho -- insert_many: one event a document, in order, with each _id as it is
SELECT ku9.insert_many('ev', '[{"_id": 2, "n": 2}, {"_id": "two", "n": 2}, {"_id": {"k": [3, "x"]}, "n": 3}]');
\qecho -- update_one: update, version 2
SELECT ku9.update_one('ev', '{"_id": 1}', '{"$inc": {"n": 10}}');
\qecho -- update_many: of the two it matches only _id 1 changes, and only it has an event
SELECT ku9.update_many('ev', '{"n": {"$gte": 3}}', '{"$set": {"n": 3}}');
\qecho -- replace_one: replace, version 4
SELECT ku9.replace_one('ev', '{"_id": 1}', '{"n": 4, "replaced": true}');
\qecho -- a replacement equal to the document changes nothing: no event
SELECT ku9.replace_one('ev', '{"_id": 1}', '{"n": 4, "replaced": true}');
\qecho -- an update that matches nothing: no event
SELECT ku9.update_one('ev', '{"_id": 99}', '{"$set": {"n": 0}}');
\qecho -- delete_one: delete, with the version the document had
SELECT ku9.delete_one('ev', '{"_id": 1}');
\qecho -- upserts insert: insert events
SELECT ku9.update_one('ev', '{"_id": 5}', '{"$set": {"n": 5}}', '{"upsert": true}');
SELECT ku9.replace_one('ev', '{"_id": 6}', '{"n": 6}', '{"upsert": true}');
\qecho -- delete_many: one event a document
SELECT ku9.delete_many('ev', '{"_id": {"$in": [5, 6]}}');

\qecho -- in a transaction: nothing until COMMIT, then every event in order
BEGIN;
SELECT ku9.insert_one('ev', '{"_id": 10}');
SELECT ku9.update_one('ev', '{"_id": 10}', '{"$set": {"n": 10}}');
SELECT ku9.replace_one('ev', '{"_id": 10}', '{"n": 11}');
SELECT ku9.delete_one('ev', '{"_id": 10}');
\qecho -- COMMIT
COMMIT;

\qecho -- rolled back: no event
BEGIN;
SELECT ku9.insert_one('ev', '{"_id": 20}');
SELECT ku9.update_one('ev', '{"_id": 2}', '{"$set": {"n": 20}}');
SELECT ku9.replace_one('ev', '{"_id": "two"}', '{"n": 20}');
SELECT ku9.delete_one('ev', '{"_id": {"k": [3, "x"]}}');
\qecho -- ROLLBACK
ROLLBACK;
SELECT count(*) AS rolled_back_20 FROM ku9.find('ev', '{"_id": 20}');

\qecho -- a savepoint rolled back takes its events with it: only 21 is announced
BEGIN;
SELECT ku9.insert_one('ev', '{"_id": 21}');
SAVEPOINT s;
SELECT ku9.insert_one('ev', '{"_id": 22}');
SELECT ku9.delete_one('ev', '{"_id": 2}');
ROLLBACK TO SAVEPOINT s;
\qecho -- COMMIT
COMMIT;

\qecho -- insert, delete and re-insert of one _id in a transaction: three events
\qecho -- (seq keeps PostgreSQL from folding the two identical inserts into one)
BEGIN;
SELECT ku9.insert_one('ev', '{"_id": 23}');
SELECT ku9.delete_one('ev', '{"_id": 23}');
SELECT ku9.insert_one('ev', '{"_id": 23}');
\qecho -- COMMIT
COMMIT;

\qecho -- a statement that fails sends nothing, not even for the documents before the error
SELECT pg_temp.sqlerr($$SELECT ku9.insert_many('ev', '[{"_id": 30}, {"_id": 31}, {"_id": 2}]')$$);
SELECT count(*) AS inserted_30_31 FROM ku9.find('ev', '{"_id": {"$in": [30, 31]}}');

\qecho -- the events of a user name the owner
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-00000000000a", "role": "ku9_user"}';
SET ROLE ku9_user;
SELECT ku9.insert_one('ev', '{"_id": "a1"}');
SELECT ku9.update_one('ev', '{"_id": "a1"}', '{"$set": {"n": 1}}');
SELECT ku9.delete_one('ev', '{"_id": "a1"}');
RESET ROLE;
RESET request.jwt.claims;

\qecho -- events false: the same changes, and no event
SELECT ku9.insert_one('ev_quiet', '{"_id": 1, "n": 1}');
SELECT ku9.insert_many('ev_quiet', '[{"_id": 2}, {"_id": 3}]');
SELECT ku9.update_one('ev_quiet', '{"_id": 1}', '{"$inc": {"n": 1}}');
SELECT ku9.update_many('ev_quiet', '{}', '{"$set": {"m": 1}}');
SELECT ku9.replace_one('ev_quiet', '{"_id": 1}', '{"n": 3}');
SELECT ku9.delete_one('ev_quiet', '{"_id": 1}');
SELECT ku9.delete_many('ev_quiet', '{}');
\qecho -- (but the collection ev still announces)
SELECT ku9.insert_one('ev', '{"_id": 40}');

\o
\set ECHO all
UNLISTEN *;

-- what ev and ev_quiet hold now
SELECT d FROM ku9.find('ev') d ORDER BY d::text;
SELECT count(*) AS quiet FROM ku9.find('ev_quiet');

-- The outbox: a service that changes its data and must tell others (a
-- queue, a broker) writes to two systems, and no transaction spans both.
-- Commit and then crash before sending, and the message is lost; send
-- first and then roll back, and others act on a change that never
-- happened.  That is the problem outbox tables with relays, and sagas
-- with their compensating steps, are built to solve.  With the documents
-- and the queue in one database it is gone: the document and the message
-- are written in one transaction, and either both exist or neither does.
SELECT ku9.create_queue('ev_outbox');

-- rolled back: neither the document nor the message
BEGIN;
SELECT ku9.insert_one('ev', '{"_id": "order-1", "total": 42}');
SELECT ku9.send('ev_outbox', '{"event": "order_created", "order": "order-1"}') > 0 AS sent;
ROLLBACK;
SELECT count(*) AS documents FROM ku9.find('ev', '{"_id": "order-1"}');
SELECT count(*) AS messages FROM ku9.read('ev_outbox', 10, 30);

-- and when the send fails, the document goes with it
BEGIN;
SELECT ku9.insert_one('ev', '{"_id": "order-1", "total": 42}');
SELECT ku9.send('ev_no_such_queue', '{"event": "order_created", "order": "order-1"}');
COMMIT;
SELECT count(*) AS documents FROM ku9.find('ev', '{"_id": "order-1"}');

-- committed: both
BEGIN;
SELECT ku9.insert_one('ev', '{"_id": "order-1", "total": 42}');
SELECT ku9.send('ev_outbox', '{"event": "order_created", "order": "order-1"}') > 0 AS sent;
COMMIT;
SELECT ku9.find_one('ev', '{"_id": "order-1"}');
SELECT payload FROM ku9.read('ev_outbox', 10, 30);

SELECT ku9.drop_queue('ev_outbox');
SELECT ku9.drop_collection('ev');
SELECT ku9.drop_collection('ev_quiet');
DROP EXTENSION ku9;
