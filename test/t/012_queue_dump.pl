# Copyright (c) 2026, ku9 contributors
#
# pg_dump and restore of a database with ku9 and two queues.  The queue
# tables are not extension members and the registry ku9.queues is marked
# for pg_dump, so a dump of the database carries the queues, their options,
# messages, archive and dead letters, their per-queue grants and their id
# sequences.  Restored into an empty database (the dump says CREATE
# EXTENSION) with pg_restore from the custom format, and with psql from the
# plain format, everything must be the same, and the queues must work: ids
# continue after the last id given out, grants still grant, dedup keys
# still dedup, and a waiting read is woken.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $node = ku9_node('qdump', conf => ['log_statement = none']);

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
CREATE EXTENSION ku9 CASCADE;
-- application roles (roles are cluster-wide: not in the dump)
CREATE ROLE app_sender LOGIN IN ROLE ku9_user;
CREATE ROLE app_reader LOGIN IN ROLE ku9_user;
-- a dropped queue leaves a gap in the qids
SELECT ku9.create_queue('gone');
SELECT ku9.create_queue('jobs', '{"vt": 45, "max_attempts": 2, "backoff_base": 2,
    "backoff_max": 60, "retention": "3 days", "max_payload": 4096}');
SELECT ku9.create_queue('events', '{"archive": true, "retention": "1 day"}');
SELECT ku9.drop_queue('gone');
SELECT ku9.grant_queue('jobs', 'app_sender', 'send');
SELECT ku9.grant_queue('events', 'app_reader', 'read');

-- jobs: 1 pending, then in flight; 2 dead-lettered; 3 delayed; 4 with a
-- dedup key; 5 an array payload; 6 acked (gone: the last id given out is
-- in no table)
SELECT ku9.send('jobs', '{"job": 1}');
SELECT ku9.send('jobs', '{"job": 2}', '{"priority": 5, "headers": {"trace": "t-2"}}');
SELECT ku9.send('jobs', '{"job": 3}', '{"delay": 3600}');
SELECT ku9.send('jobs', '{"job": 4}', '{"dedup_key": "k4"}');
SELECT ku9.send('jobs', '["array", {"text": "ünïcödé ✓", "quote": "it''s"}]');
SELECT ku9.read('jobs', 1, 0);                 -- job 2, attempt 1
SELECT ku9.read('jobs', 1, 30);                -- job 2, attempt 2
SELECT ku9.fail('jobs', 2, 'boom: "quoted" error');
SELECT ku9.read('jobs', 1, 45);                -- job 1 in flight
SELECT ku9.ack('jobs', ARRAY[ku9.send('jobs', '{"job": 6}')]);

-- events: 1 and 2 acked (archived), 3 to 5 pending
SELECT ku9.send_batch('events', '[{"e": 1}, {"e": 2}, {"e": 3}, {"e": 4}, {"e": 5}]',
    '{"headers": {"src": "batch"}}');
SELECT ku9.ack('events', ARRAY(SELECT msg_id FROM ku9.read('events', 2, 30)));
});

is( $node->safe_psql(
		'src', q{
SELECT string_agg(format('%s: %s in queue, %s archived, %s dead', s.queue, s.depth, s.archived, s.dead),
                  '; ' ORDER BY s.queue)
FROM ku9.list_queues() AS l, ku9.queue_stats(l.name) AS s WHERE l.name NOT IN ('ku9_mail', 'ku9_push')}),
	'events: 3 in queue, 2 archived, 0 dead; jobs: 4 in queue, 0 archived, 1 dead',
	'source: events has 3 messages and 2 archived, jobs 4 messages and 1 dead letter'
);

# snapshot returns what must survive a dump and restore, one query each
my %checks = (
	# ku9_mail is made by CREATE EXTENSION in each database, so its row
	# (created_at) is not carried over; its messages are
	'ku9.list_queues()' => q{SELECT * FROM ku9.list_queues() WHERE name NOT IN ('ku9_mail', 'ku9_push')},
	'qid sequence' =>
	  'SELECT last_value, is_called FROM ku9.queues_qid_seq',
	'grants on the queue tables' => q{
SELECT c.relname, c.relacl FROM pg_class c
WHERE c.relnamespace = 'ku9_queue'::regnamespace AND c.relkind = 'r' ORDER BY 1},
	'indexes of the queue tables' => q{
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ku9_queue'::regnamespace)
ORDER BY indexrelid::regclass::text},
	'owners of the queue tables' => q{
SELECT c.relname, pg_get_userbyid(c.relowner) = (SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'ku9')
FROM pg_class c WHERE c.relnamespace = 'ku9_queue'::regnamespace ORDER BY 1},
);
for my $queue ('jobs', 'events')
{
	for my $t ('q', 'a', 'd')
	{
		$checks{"ku9_queue.${t}_$queue"} =
		  "SELECT * FROM ku9_queue.${t}_$queue ORDER BY msg_id";
	}
	$checks{"msg_id sequence of q_$queue"} =
	  "SELECT last_value, is_called FROM %seq(ku9_queue.q_$queue)%";
}

# snapshot returns the output of every check in database $db.  In a check,
# %seq(table)% stands for the identity sequence of table's msg_id.
sub snapshot
{
	my ($db) = @_;
	my %s;
	for my $check (keys %checks)
	{
		my $sql = $checks{$check};
		$sql =~ s{%seq\(([^)]+)\)%}{
			$node->safe_psql($db, "SELECT pg_get_serial_sequence('$1', 'msg_id')")
		}ge;
		$s{$check} = $node->safe_psql($db, $sql);
	}
	return \%s;
}

my $before = snapshot('src');
is( $before->{'ku9_queue.q_jobs'} =~ tr/\n//,
	3, 'source: q_jobs has 4 rows');
like($before->{'ku9_queue.d_jobs'},
	qr/^2\|.*boom: "quoted" error$/, 'source: job 2 is a dead letter');
like($before->{'msg_id sequence of q_jobs'},
	qr/^6\|t$/, 'source: the last id given out to jobs is 6');

my $dump_c = $node->basedir . '/src.dump';
my $dump_p = $node->basedir . '/src.sql';
$node->command_checks_all([ 'pg_dump', '-Fc', '-f', $dump_c, '-d', 'src' ],
	0, [qr/^$/], [qr/^$/], 'pg_dump -Fc of the database');
$node->command_checks_all([ 'pg_dump', '-Fp', '-f', $dump_p, '-d', 'src' ],
	0, [qr/^$/], [qr/^$/], 'pg_dump -Fp of the database');
like(slurp_file($dump_p), qr/^CREATE EXTENSION IF NOT EXISTS ku9\b/m,
	'the dump creates the extension');

$node->safe_psql(
	'postgres', q{
CREATE DATABASE dst_custom TEMPLATE template0;
CREATE DATABASE dst_plain TEMPLATE template0;
});
$node->command_checks_all(
	[ 'pg_restore', '--exit-on-error', '-d', 'dst_custom', $dump_c ],
	0, [qr/^$/], [qr/^$/],
	'pg_restore into an empty database succeeds without a message');
$node->command_checks_all(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', 'dst_plain', '-f', $dump_p
	],
	0,
	[qr//],
	[qr/^$/],
	'psql restores the plain dump into an empty database without an error');

for my $db ('dst_custom', 'dst_plain')
{
	my $after = snapshot($db);
	for my $check (sort keys %checks)
	{
		is($after->{$check}, $before->{$check}, "$db: $check round-trips");
	}

	# ids continue after the last one given out
	is($node->safe_psql($db, q{SELECT ku9.send('jobs', '{"job": 7}')}),
		7, "$db: jobs gives out id 7 next");
	is($node->safe_psql($db, q{SELECT ku9.send('events', '{"e": 6}')}),
		6, "$db: events gives out id 6 next");
	$node->safe_psql($db, q{SELECT ku9.create_queue('later')});
	is($node->safe_psql($db, q{SELECT qid FROM ku9.queues WHERE name = 'later'}),
		6, "$db: the next queue gets qid 6 (after the qids of ku9_mail, ku9_push, jobs, events and the dropped queue)");

	# a dedup key of a pending message still dedups
	is( $node->safe_psql(
			$db, q{SELECT ku9.send('jobs', '{"job": "again"}', '{"dedup_key": "k4"}')}),
		4,
		"$db: a send with the dedup key of pending job 4 returns 4");

	# reads: in-flight, delayed and dead messages are not handed out
	is( $node->safe_psql(
			$db, q{SELECT string_agg(msg_id::text, ',' ORDER BY msg_id) FROM ku9.read('jobs', 10, 30)}),
		'4,5,7',
		"$db: jobs hands out 4, 5 and 7 (1 is in flight, 3 delayed, 2 dead)");
	is($node->safe_psql($db, q{SELECT ku9.ack('jobs', '{4,5,7}')}),
		3, "$db: jobs acks them");

	# the grants survive: app_sender sends to jobs and reads nothing;
	# app_reader reads and acks events, and sends nothing
	my @as_sender = (extra_params => [ '-U', 'app_sender' ]);
	my @as_reader = (extra_params => [ '-U', 'app_reader' ]);
	my $id = $node->safe_psql($db,
		q{SELECT ku9.send('jobs', '{"job": "from app_sender"}')}, @as_sender);
	cmp_ok($id, '>', 7, "$db: the role granted 'send' on jobs sends to it");
	my ($ret, $out, $err) = $node->psql(
		$db, q{\set VERBOSITY verbose
SELECT * FROM ku9.read('jobs')}, @as_sender);
	like($err, qr/ERROR:  42501: permission denied to read from queue "jobs"/,
		"$db: the role granted 'send' on jobs cannot read it");
	is( $node->safe_psql(
			$db,
			q{SELECT msg_id, attempts, payload, headers FROM ku9.read('events', 1, 30)},
			@as_reader),
		'3|1|{"e": 3}|{"src": "batch"}',
		"$db: the role granted 'read' on events reads from it");
	is($node->safe_psql($db, q{SELECT ku9.ack('events', '{3}')}, @as_reader),
		1, "$db: the role granted 'read' on events acks");
	($ret, $out, $err) = $node->psql(
		$db, q{\set VERBOSITY verbose
SELECT ku9.send('events', '{"e": "denied"}')}, @as_reader);
	like($err, qr/ERROR:  42501: permission denied to send to queue "events"/,
		"$db: the role granted 'read' on events cannot send to it");
	is( $node->safe_psql(
			$db, q{SELECT string_agg(msg_id::text, ',' ORDER BY msg_id) FROM ku9_queue.a_events}),
		'1,2,3',
		"$db: events archives the ack after the restore");

	# a waiting read on a restored queue is woken by a send
	is($node->safe_psql($db, q{SELECT ku9.purge_queue('events')}),
		3, "$db: events is purged of 4, 5 and 6");
	my $waiter = $node->background_psql($db);
	my $pid = $waiter->query_safe('SELECT pg_backend_pid()');
	$waiter->query_until(qr/^waiting\n/m,
		"\\echo waiting\nSELECT payload->>'e' FROM ku9.read('events', 1, 30, 10000);\n"
	);
	ok(reader_sleeps($node, $pid),
		"$db: a read of the empty restored queue waits");
	$node->safe_psql($db, q{SELECT ku9.send('events', '{"e": "woken"}')});
	is($waiter->query_until(qr/^done\n/m, "\\echo done\n"),
		"woken\ndone\n", "$db: a send wakes the waiting read");
	$waiter->quit;
}

# the source is untouched by all that
is_deeply(snapshot('src'), $before, 'the source database is unchanged');

$node->stop;
log_has_no_crash($node, 'no backend crashed');

done_testing();
