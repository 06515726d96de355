-- worker: setting queue handlers (who may, with which role and function),
-- and schedules without pg_cron.  The workers themselves run in
-- ku9.database (not this database): test/t/030_workers.pl runs handlers.
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

CREATE ROLE regress_ku9_w_svc IN ROLE ku9_service;
CREATE ROLE regress_ku9_w_runner;
CREATE ROLE regress_ku9_w_other;
GRANT regress_ku9_w_runner TO regress_ku9_w_svc;
CREATE SCHEMA regress_app;
GRANT USAGE ON SCHEMA regress_app TO PUBLIC;
CREATE FUNCTION regress_app.handle(m ku9.message) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION regress_app.returns_int(m ku9.message) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION regress_app.private(m ku9.message) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION regress_app.two_args(m ku9.message, x int) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION regress_app.wrong_type(m jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
CREATE FUNCTION regress_app.many(m ku9.message) RETURNS SETOF int LANGUAGE sql AS 'SELECT 1';
CREATE PROCEDURE regress_app.proc(m ku9.message) LANGUAGE sql AS 'SELECT';
REVOKE EXECUTE ON FUNCTION regress_app.private(ku9.message) FROM PUBLIC;
SELECT ku9.create_queue('wq');

-- a superuser must name the role: handlers never run as one silently
SELECT pg_temp.sqlerr($$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"role": "postgres"}')$$);

-- a service role runs handlers as itself or a role it is a member of
SET ROLE regress_ku9_w_svc;
SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"role": "regress_ku9_w_runner", "batch": 50, "vt": 120}');
SELECT queue, handler, run_as, batch, vt, enabled FROM ku9.queue_handlers;
-- replacing it
SELECT ku9.set_queue_handler('wq', 'regress_app.returns_int(ku9.message)');
SELECT queue, handler, run_as, batch, vt, enabled FROM ku9.queue_handlers;
SELECT left(f, 100) AS f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"role": "regress_ku9_w_other"}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"role": "no_such_role"}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.private(ku9.message)', '{"role": "regress_ku9_w_runner"}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.two_args(ku9.message, int)')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.wrong_type(jsonb)')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.many(ku9.message)')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.proc(ku9.message)')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.nope(ku9.message)')$$,
    $$SELECT ku9.set_queue_handler('wq', NULL)$$,
    $$SELECT ku9.set_queue_handler('nope', 'regress_app.handle(ku9.message)')$$,
    $$SELECT ku9.set_queue_handler('Bad Name', 'regress_app.handle(ku9.message)')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '[]')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"batch": 0}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"batch": 1.5}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"vt": "long"}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"enabled": 1}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"role": 7}')$$,
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"when": "now"}')$$]) AS f;
-- nothing of that changed the handler
SELECT queue, handler, run_as FROM ku9.queue_handlers;
RESET ROLE;

-- users and other roles may not set handlers, nor see them
SET ROLE ku9_user;
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)')$$,
    $$SELECT ku9.remove_queue_handler('wq')$$,
    $$SELECT * FROM ku9.queue_handlers$$,
    $$SELECT ku9.run_maintenance()$$,
    $$SELECT ku9.schedule('x', '* * * * *', 'wq', '{}')$$]) AS f;
RESET ROLE;
SET ROLE regress_ku9_w_runner;
SELECT pg_temp.sqlerr($$SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)')$$);
RESET ROLE;

-- removing; dropping the queue removes its handler
SELECT ku9.remove_queue_handler('wq') AS removed, ku9.remove_queue_handler('wq') AS removed_again;
SELECT ku9.set_queue_handler('wq', 'regress_app.handle(ku9.message)', '{"role": "regress_ku9_w_runner", "enabled": false}');
SELECT queue, enabled FROM ku9.queue_handlers;
SELECT ku9.drop_queue('wq');
SELECT count(*) AS handlers_left FROM ku9.queue_handlers;

-- schedules need pg_cron, which this database does not have
SELECT ku9.create_queue('wq');
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.schedule('tick', '* * * * *', 'wq', '{"tick": true}')$$,
    $$SELECT ku9.unschedule('tick')$$,
    $$SELECT ku9.schedule('Tick!', '* * * * *', 'wq', '{}')$$,
    $$SELECT ku9.schedule('tick', '* * * * *', 'nope', '{}')$$,
    $$SELECT ku9.schedule('tick', NULL, 'wq', '{}')$$]) AS f;
SELECT count(*) AS schedules FROM ku9.schedules;

SELECT ku9.drop_queue('wq');
DROP SCHEMA regress_app CASCADE;
DROP ROLE regress_ku9_w_svc, regress_ku9_w_runner, regress_ku9_w_other;
DROP EXTENSION ku9;
