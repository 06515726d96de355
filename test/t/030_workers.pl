# Copyright (c) 2026, ku9 contributors
#
# ku9's background workers: the launcher starts ku9.workers workers in
# ku9.database with the server, under clear names in pg_stat_activity; they
# run queue handlers as the chosen role (ack on success, retries then a dead
# letter on error, the handler's work undone when it raises, no way back to
# the worker's superuser); a worker that exits is started again, and after
# a SIGKILL (which restarts the server) they all come back; a handler whose
# process is killed loses nothing: its message comes back after its vt; the
# push fan-out goes on after a crash in the middle without skipping or
# repeating a device; maintenance runs; the server stops cleanly.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $node = ku9_node('workers',
	conf => [ 'ku9.workers = 2', 'ku9.maintenance_interval = 1', 'restart_after_crash = on' ]);

# the workers, as pg_stat_activity shows them: "name pid" lines
sub workers
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(coalesce(nullif(application_name, ''), backend_type) || ' ' || pid, E'\\n'
		        ORDER BY application_name)
		 FROM pg_stat_activity WHERE backend_type IN ('ku9 launcher', 'ku9 worker')");
}

sub worker_pid
{
	my ($n) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ku9 worker' AND application_name = 'ku9 worker $n'");
}

sub wait_for_workers
{
	my ($what) = @_;
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) FILTER (WHERE backend_type = 'ku9 worker' AND datname = 'postgres') = 2
			    AND count(*) FILTER (WHERE backend_type = 'ku9 launcher') = 1
			 FROM pg_stat_activity"),
		$what);
}

wait_for_workers('the launcher and two workers start with the server');
like(workers(), qr/\Aku9 launcher \d+\nku9 worker 1 \d+\nku9 worker 2 \d+\z/,
	'pg_stat_activity names them "ku9 launcher", "ku9 worker 1" and "ku9 worker 2"');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION ku9 CASCADE;
CREATE ROLE app_worker;
CREATE TABLE public.seen (msg_id bigint, payload jsonb, attempts int, who text, work_mem text);
GRANT INSERT ON public.seen TO app_worker;
-- a deferred constraint trigger would fire at commit, after the handler
CREATE TABLE public.deferred_t (x int);
GRANT INSERT ON public.deferred_t TO app_worker;
CREATE FUNCTION public.record_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.seen VALUES (0, '{}', 0, current_user, '');
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON public.deferred_t
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.record_commit();
CREATE FUNCTION public.handle(m ku9.message) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF m.payload ? 'slow' AND m.attempts = 1 THEN
        PERFORM pg_sleep(600);
    END IF;
    INSERT INTO public.seen VALUES (m.msg_id, m.payload, m.attempts, current_user, current_setting('work_mem'));
    IF m.payload ? 'fail' THEN
        RAISE EXCEPTION 'failing on purpose: %', m.payload->>'fail';
    END IF;
    IF m.payload ? 'sql' THEN
        EXECUTE m.payload->>'sql';
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION public.handle(ku9.message) TO app_worker;
SELECT ku9.create_queue('jobs', '{"max_attempts": 3, "backoff_base": 0.05, "backoff_max": 0.1, "vt": 3}');
SELECT ku9.set_queue_handler('jobs', 'public.handle(ku9.message)', '{"role": "app_worker", "batch": 5}');
SELECT ku9.send('jobs', jsonb_build_object('n', g)) FROM generate_series(1, 20) g;
SELECT ku9.send('jobs', '{"fail": "x"}');
SELECT ku9.send('jobs', '{"sql": "SET ROLE postgres"}');
SELECT ku9.send('jobs', '{"sql": "SET SESSION AUTHORIZATION DEFAULT"}');
SELECT ku9.send('jobs', '{"sql": "INSERT INTO public.deferred_t VALUES (1)"}');
});

# handlers: successes are acked, errors retried then dead-lettered
ok( $node->poll_query_until(
		'postgres',
		"SELECT (SELECT count(*) FROM ku9_queue.q_jobs) = 0
		    AND (SELECT count(*) FROM ku9_queue.d_jobs) = 4"),
	'the workers handle every message: the queue empties, four dead letters');
is($node->safe_psql('postgres', "SELECT count(*), min(who), max(who) FROM public.seen WHERE payload ? 'n' AND NOT payload ? 'sql'"),
	'20|app_worker|app_worker', 'the 20 good messages ran once each, as app_worker');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.seen WHERE NOT payload ? 'n'"),
	'0', 'a handler that raised left nothing of its work');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(attempts || ': ' || last_error, E'\\n' ORDER BY msg_id) FROM ku9_queue.d_jobs"),
	"3: failing on purpose: x\n"
	  . "3: cannot set parameter \"role\" within security-definer function\n"
	  . "3: cannot set parameter \"session_authorization\" within security-definer function\n"
	  . "3: cannot fire deferred trigger within security-restricted operation",
	'failing messages were tried max_attempts times and dead-lettered with the error; a handler cannot change its role, nor leave a deferred trigger to run after it');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.seen WHERE who <> 'app_worker'"),
	'0', 'nothing ran as another role');
is(stat_value($node, 'postgres', 'ku9_handler_succeeded_total', { queue => 'jobs' }),
	20, 'ku9_handler_succeeded_total counts the successes');
is(stat_value($node, 'postgres', 'ku9_handler_failed_total', { queue => 'jobs' }),
	12, 'ku9_handler_failed_total counts every failed attempt');

# a setting a handler changes, even with SET, ends with its call: the next
# message of the same batch sees the default
$node->safe_psql('postgres', q{
BEGIN;
SELECT ku9.send('jobs', '{"sql": "SELECT set_config(''work_mem'', ''1234kB'', false)", "n": "setter"}');
SELECT ku9.send('jobs', '{"n": "after"}');
COMMIT;
});
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM public.seen WHERE payload->>'n' = 'after'"),
	'the two messages are handled');
is($node->safe_psql('postgres', "SELECT work_mem FROM public.seen WHERE payload->>'n' = 'after'"),
	'4MB', 'a handler\'s SET does not reach the next handler');

# an idle worker sleeps on its latch; a send wakes it
ok( $node->poll_query_until(
		'postgres',
		"SELECT bool_and(wait_event = 'Extension') FROM pg_stat_activity WHERE backend_type = 'ku9 worker'"),
	'idle workers sleep in the wait event "Extension"');
$node->safe_psql('postgres', q{SELECT ku9.send('jobs', '{"n": 21}')});
ok($node->poll_query_until('postgres', "SELECT count(*) = 23 FROM public.seen"),
	'a send wakes a worker, which handles the message');

# a worker that exits is started again by the launcher
my $pid1 = worker_pid(1);
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ku9 launcher'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'ku9 worker 1' AND pid <> $pid1"),
	'a terminated worker is started again');
is($node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'ku9 launcher'"),
	$launcher, 'by the same launcher');
cmp_ok(
	$node->safe_psql('postgres', "SELECT value FROM ku9.stats WHERE name = 'ku9_worker_restarts_total'"),
	'>=', 1, 'ku9_worker_restarts_total counts the restart');

# SIGKILL makes the server restart; the launcher and workers come back
my $pid2 = worker_pid(2);
my $log_offset = -s $node->logfile;
kill 'KILL', $pid2;
ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid <> $pid2 AND backend_type = 'ku9 launcher' AND pid <> $launcher"),
	'after a SIGKILL of a worker the server restarts with a new launcher');
wait_for_workers('and the workers come back');
$node->safe_psql('postgres', q{SELECT ku9.send('jobs', '{"n": 22}')});
ok($node->poll_query_until('postgres', "SELECT count(*) = 24 FROM public.seen"),
	'the new workers handle messages');

# a handler killed in the middle: its message comes back after vt (3 s)
my $slow = $node->safe_psql('postgres', q{SELECT ku9.send('jobs', '{"slow": true}')});
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'ku9 worker' AND query = 'ku9 handler of queue jobs' AND wait_event = 'PgSleep'"),
	'a worker runs the slow handler');
my $busy = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ku9 worker' AND wait_event = 'PgSleep'");
kill 'KILL', $busy;
wait_for_workers('the workers come back after the handler\'s process was killed');
ok( $node->poll_query_until(
		'postgres', "SELECT attempts = 2 FROM public.seen WHERE msg_id = $slow"),
	'the message of the killed handler is handled again, on its second attempt');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ku9_queue.q_jobs'),
	'0', 'and acked');

# push fan-out: 40 users with 25 devices each, in batches of 50 devices,
# each batch slowed down so that a SIGKILL lands in the middle
$node->safe_psql(
	'postgres', q{
ALTER SYSTEM SET ku9.push_batch_size = 50;
SELECT pg_reload_conf();
SELECT ku9.create_topic('everyone');
SELECT ku9.subscribe('everyone', ku9.admin_create_user(format('u%s@example.com', g))) FROM generate_series(1, 40) g;
INSERT INTO ku9.devices (user_id, platform, token)
SELECT u.id, 'fcm', u.email || '/' || d FROM ku9.users u, generate_series(1, 25) d;
CREATE FUNCTION public.slow_push() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(0.1);
    RETURN NEW;
END
$$;
CREATE TRIGGER slow_push BEFORE INSERT ON ku9_queue.q_ku9_push FOR EACH ROW EXECUTE FUNCTION public.slow_push();
});
$node->safe_psql('postgres', q{SELECT ku9.publish('everyone', '{"hello": "all"}', true)});
ok( $node->poll_query_until(
		'postgres',
		"SELECT batches >= 5 FROM ku9.fanout_jobs WHERE kind = 'push'"),
	'the push fan-out is under way');
my $fanning = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ku9 worker' AND query = 'ku9 fan-out' AND state = 'active' LIMIT 1");
my $done_before = $node->safe_psql('postgres', "SELECT count(*) FROM ku9_queue.q_ku9_push");
kill 'KILL', $fanning if $fanning;
ok($fanning ne '', "a worker doing the fan-out was killed after $done_before batches");
wait_for_workers('the workers come back after the fan-out crash');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM ku9.fanout_jobs"),
	'the fan-out finishes after the crash');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT d->>'token'), max(jsonb_array_length(m.payload->'devices'))
FROM ku9_queue.q_ku9_push m, jsonb_array_elements(m.payload->'devices') d}),
	'1000|1000|50',
	'every one of the 1000 devices is in exactly one push job of at most 50 devices');
is($node->safe_psql('postgres', "SELECT count(*) FROM ku9_queue.q_ku9_push"),
	'20', 'in 20 jobs');

# maintenance runs in the workers
$node->safe_psql(
	'postgres', q{
INSERT INTO ku9.one_time_tokens (token_hash, user_id, kind, expires_at)
SELECT '\x01', id, 'password_reset', now() - interval '1 minute' FROM ku9.users LIMIT 1;
});
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM ku9.one_time_tokens"),
	'a worker runs ku9.run_maintenance, which deletes an expired token');

# a clean stop
$log_offset = -s $node->logfile;
$node->stop('fast');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/database system is shut down/, 'the server stops cleanly with its workers');
unlike($log, qr/terminated by signal|PANIC|exited with exit code [^01]/,
	'no process crashed while stopping');

done_testing();
