# Copyright (c) 2026, ku9 contributors
#
# ku9.schedule with pg_cron installed: a schedule is a pg_cron job that
# sends its payload to the queue (pg_cron runs it; it is also run here by
# hand so the test need not wait for a minute boundary twice); the same name
# replaces a schedule; ku9.unschedule removes the job; dropping the queue
# leaves a job that sends nothing.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'ku9,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION ku9 CASCADE;
SELECT ku9.create_queue('ticks');
});

my $jobid = $node->safe_psql('postgres',
	q{SELECT ku9.schedule('tick', '* * * * *', 'ticks', '{"tick": true}')});
like($jobid, qr/^\d+$/, 'ku9.schedule returns the pg_cron job id');
is( $node->safe_psql(
		'postgres',
		"SELECT jobname, schedule, command, database, username = current_user FROM cron.job WHERE jobid = $jobid"),
	"ku9_tick|* * * * *|SELECT ku9._run_schedule('tick')|postgres|t",
	'the pg_cron job ku9_tick runs ku9._run_schedule as the extension owner, in this database');
is($node->safe_psql('postgres', 'SELECT name, cron, queue, payload FROM ku9.schedules'),
	'tick|* * * * *|ticks|{"tick": true}', 'ku9.schedules holds the schedule');

# the job's command sends the payload
$node->safe_psql('postgres', "SELECT ku9._run_schedule('tick')");
is($node->safe_psql('postgres', 'SELECT payload FROM ku9_queue.q_ticks'),
	'{"tick": true}', 'the job\'s command sends the payload to the queue');
$node->safe_psql('postgres', 'SELECT ku9.purge_queue(\'ticks\')');

# pg_cron runs it at the next minute
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) > 0 FROM ku9_queue.q_ticks WHERE payload = '{\"tick\": true}'"),
	'pg_cron runs the schedule, which sends to the queue');
is( $node->safe_psql(
		'postgres', "SELECT status FROM cron.job_run_details WHERE jobid = $jobid ORDER BY runid DESC LIMIT 1"),
	'succeeded', 'pg_cron records the run as succeeded');

# the same name replaces the schedule; a bad expression is refused by pg_cron
is( $node->safe_psql(
		'postgres', q{SELECT ku9.schedule('tick', '*/5 * * * *', 'ticks', '{"tick": 5}')}),
	$jobid, 'scheduling the same name again keeps the job');
is($node->safe_psql('postgres', "SELECT schedule FROM cron.job WHERE jobname = 'ku9_tick'"),
	'*/5 * * * *', 'with the new schedule');
is($node->safe_psql('postgres', 'SELECT payload FROM ku9.schedules'),
	'{"tick": 5}', 'and the new payload');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT ku9.schedule('bad', 'every day', 'ticks', '{}')});
like($err, qr/ERROR:.*invalid schedule/, 'pg_cron refuses a bad cron expression');
is($node->safe_psql('postgres', "SELECT count(*) FROM ku9.schedules WHERE name = 'bad'"),
	'0', 'and no schedule is left behind');

# unschedule
is($node->safe_psql('postgres', q{SELECT ku9.unschedule('tick')}),
	't', 'ku9.unschedule removes the schedule');
is($node->safe_psql('postgres', q{SELECT ku9.unschedule('tick')}),
	'f', 'a second time, there is none');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname LIKE 'ku9%'"),
	'0', 'the pg_cron job is gone');

# dropping the queue drops its schedules and their jobs
$node->safe_psql('postgres', q{SELECT ku9.schedule('orphan', '* * * * *', 'ticks', '{}')});
$node->safe_psql('postgres', q{SELECT ku9.drop_queue('ticks')});
is($node->safe_psql('postgres', "SELECT count(*) FROM ku9.schedules"),
	'0', 'dropping the queue drops its schedule');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname LIKE 'ku9%'"),
	'0', 'and its pg_cron job');

# a pg_cron job that ku9 did not make is neither replaced nor removed
$node->safe_psql('postgres', q{
SELECT ku9.create_queue('ticks');
SELECT cron.schedule('ku9_vacuum', '0 4 * * *', 'VACUUM');
});
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT ku9.schedule('vacuum', '* * * * *', 'ticks', '{}')});
like($err, qr/ERROR:  a pg_cron job named "ku9_vacuum" exists and is not a ku9 schedule/,
	'ku9.schedule does not replace a pg_cron job it did not make');
is($node->safe_psql('postgres', q{SELECT ku9.unschedule('vacuum')}),
	'f', 'ku9.unschedule does not remove it');
is($node->safe_psql('postgres', "SELECT command FROM cron.job WHERE jobname = 'ku9_vacuum'"),
	'VACUUM', 'the job is untouched');

$node->stop;
done_testing();
