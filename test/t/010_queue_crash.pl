# Copyright (c) 2026, ku9 contributors
#
# SIGKILL the postmaster while producers send and consumers read and ack,
# then start the server again: crash recovery must keep every send that
# committed and every ack that committed, and nothing else.
#
# Every producer transaction records the ids and unique tokens of the
# messages it sends in sent_log, and every consumer transaction records the
# ids it reads in acked_log and acks them, in the same transaction; so after
# the restart, for each queue, the messages in q_<name> must be exactly
# sent_log minus acked_log (same ids, same tokens), and, for the archiving
# queue, a_<name> exactly acked_log.  Reads that were not acked never
# committed, so every message left has attempts = 0.

use strict;
use warnings;
use Cwd qw(realpath);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

# data_dir_processes returns the pids of the processes whose working
# directory is the node's data directory: the postmaster and its children
# (every PostgreSQL process chdirs there).
sub data_dir_processes
{
	my ($node) = @_;
	my $pgdata = realpath($node->data_dir);
	my @pids;
	opendir(my $dh, '/proc') or die "cannot read /proc: $!";
	for my $pid (grep { /^[0-9]+$/ } readdir($dh))
	{
		my $cwd = readlink("/proc/$pid/cwd");
		push @pids, $pid if defined $cwd && $cwd eq $pgdata;
	}
	closedir($dh);
	return @pids;
}

# alive says whether process $pid exists and is not a zombie.
sub alive
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close($fh);
	return defined $stat && $stat !~ /^\d+ \(.*\) Z /s;
}

# wait_gone waits until no process is left in the node's data directory:
# after the postmaster's death its children exit as they notice it, and a
# new postmaster refuses to start while any of them still holds the old
# shared memory.
sub wait_gone
{
	my ($node) = @_;
	for (my $n = 0; $n < 10 * $PostgreSQL::Test::Utils::timeout_default; $n++)
	{
		my @left = data_dir_processes($node);
		return 1 unless @left;
		usleep(100_000);
	}
	diag('still running: ' . join(' ', data_dir_processes($node)));
	return 0;
}

my $node = ku9_node('qcrash',
	conf => [ 'log_statement = none', 'max_connections = 40' ]);

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION ku9 CASCADE;
SELECT ku9.create_queue('crash');
SELECT ku9.create_queue('crash_arch', '{"archive": true}');
SELECT ku9.create_queue('idle');
CREATE TABLE sent_log (
    queue   text NOT NULL,
    msg_id  bigint NOT NULL,
    token   text NOT NULL UNIQUE,
    PRIMARY KEY (queue, msg_id));
CREATE TABLE acked_log (
    queue   text NOT NULL,
    msg_id  bigint NOT NULL,
    PRIMARY KEY (queue, msg_id));
-- a backlog, so that consumers have work from the start
INSERT INTO sent_log (queue, msg_id, token)
SELECT q.name, b.id, p.arr -> (b.n::int - 1) ->> 'token'
FROM (VALUES ('crash'), ('crash_arch')) AS q(name),
     LATERAL (SELECT jsonb_agg(jsonb_build_object('token', q.name || '-' || gen_random_uuid()) ORDER BY i) AS arr
              FROM generate_series(1, 300) AS i) AS p,
     LATERAL ku9.send_batch(q.name, p.arr) WITH ORDINALITY AS b(id, n);
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM sent_log'),
	600, 'a backlog of 600 messages is sent and logged');

# pgbench scripts.  Variables are substituted as text (simple protocol).
my %scripts = (
	# one message to one of the queues
	'produce' => q{
\set q random(0, 1)
BEGIN;
SELECT CASE WHEN :q = 0 THEN 'crash' ELSE 'crash_arch' END AS qname, gen_random_uuid() AS token \gset
SELECT ku9.send(':qname', jsonb_build_object('token', ':token')) AS msg_id \gset
INSERT INTO sent_log (queue, msg_id, token) VALUES (':qname', :msg_id, ':token');
COMMIT;
},
	# a batch of 5
	'produce_batch' => q{
BEGIN;
WITH p AS (
    SELECT jsonb_agg(jsonb_build_object('token', gen_random_uuid()) ORDER BY i) AS arr
    FROM generate_series(1, 5) AS i)
INSERT INTO sent_log (queue, msg_id, token)
SELECT 'crash', b.id, p.arr -> (b.n::int - 1) ->> 'token'
FROM p, ku9.send_batch('crash', p.arr) WITH ORDINALITY AS b(id, n);
COMMIT;
},
	# read up to 5 (waiting up to 100 ms for one), log them, ack them; an
	# ack that does not find every message read divides by zero
	'consume' => q{
\set q random(0, 1)
BEGIN;
SELECT CASE WHEN :q = 0 THEN 'crash' ELSE 'crash_arch' END AS qname \gset
SELECT coalesce(array_agg(msg_id), '{}') AS ids, count(*) AS n FROM ku9.read(':qname', 5, 30, 100) \gset
INSERT INTO acked_log (queue, msg_id) SELECT ':qname', unnest(':ids'::bigint[]);
SELECT 1 / (ku9.ack(':qname', ':ids') = :n)::int AS ack_ok;
COMMIT;
},
	# read and give up: the read rolls back
	'consume_rollback' => q{
BEGIN;
SELECT count(*) FROM ku9.read('crash', 3, 30);
ROLLBACK;
},);
my @files;
for my $name (sort keys %scripts)
{
	my $file = $node->basedir . "/010_$name.sql";
	append_to_file($file, $scripts{$name});
	my $weight = $name eq 'consume' ? 4 : $name eq 'produce' ? 4 : 1;
	push @files, "--file=$file\@$weight";
}

my ($bench_out, $bench_err) = ('', '');
my $bench;
{
	# pgbench's backends are told apart by application_name
	local $ENV{PGAPPNAME} = 'ku9_qload';
	$bench = IPC::Run::start(
		[
			'pgbench', '--no-vacuum', '--client=8', '--jobs=2',
			'--time=120', '--protocol=simple', @files,
			'--host=' . $node->host, '--port=' . $node->port, 'postgres'
		],
		'>', \$bench_out, '2>', \$bench_err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

ok( $node->poll_query_until(
		'postgres', q{
SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ku9_qload') = 8
   AND (SELECT count(*) FROM sent_log) >= 8000
   AND (SELECT count(*) FROM acked_log) >= 5000}),
	'load: 8 pgbench clients have sent 8000 and acked 5000 messages');
my ($sent_before, $acked_before) = split /\|/,
  $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM sent_log), (SELECT count(*) FROM acked_log)');

# SIGKILL the postmaster in the middle of the load
my $postmaster = $node->{_pid};
is( (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0],
	$postmaster, 'the pid to kill is the postmaster of the node');
my @children = grep { $_ != $postmaster } data_dir_processes($node);
cmp_ok(scalar(@children), '>=', 8,
	'the postmaster has children (at least the 8 pgbench backends)');
$node->kill9;
ok(wait_gone($node), 'the postmaster and all its children are gone');
# the killed postmaster may linger as a zombie until whoever adopted it
# reaps it, and a new postmaster takes a pid that exists for a live one:
# then its lock files are stale, and removed
ok(!alive($postmaster), "the postmaster $postmaster is dead");
if (-e "/proc/$postmaster")
{
	note "postmaster $postmaster is a zombie: removing its stale lock files";
	for my $lock ($node->data_dir . '/postmaster.pid',
		$node->host . '/.s.PGSQL.' . $node->port . '.lock')
	{
		unlink($lock) or die "cannot remove $lock: $!";
	}
}

# the dead server ends every pgbench connection
$bench->finish;
note "before the kill: at least $sent_before sent and $acked_before acked; pgbench exited with status "
  . ($? >> 8)
  . ":\n$bench_out$bench_err";
unlike(
	$bench_err,
	qr/division by zero|duplicate key|violates/,
	'no consumer acked less than it read, no message was read twice');

my $offset = -s $node->logfile;
$node->start;
like(
	slurp_file($node->logfile, $offset),
	qr/database system was not properly shut down; automatic recovery in progress/,
	'the server went through crash recovery');

my ($sent, $acked) = split /\|/,
  $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM sent_log), (SELECT count(*) FROM acked_log)');
note "after the restart: $sent sends and $acked acks committed";
cmp_ok($sent, '>=', $sent_before,
	'every send seen committed before the kill is counted after the restart');
cmp_ok($acked, '>=', $acked_before,
	'every ack seen committed before the kill is counted after the restart');

for my $queue ('crash', 'crash_arch')
{
	my $q = "ku9_queue.q_$queue";
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM sent_log s
WHERE s.queue = '$queue'
  AND NOT EXISTS (SELECT FROM acked_log a WHERE a.queue = s.queue AND a.msg_id = s.msg_id)
  AND NOT EXISTS (SELECT FROM $q m WHERE m.msg_id = s.msg_id AND m.payload->>'token' = s.token)}
		),
		0,
		"$queue: every committed send is in the queue or acked (nothing committed is lost)"
	);
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM acked_log a JOIN $q m USING (msg_id) WHERE a.queue = '$queue'}),
		0,
		"$queue: no committed ack is undone (no acked message is in the queue)");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM acked_log a
WHERE a.queue = '$queue'
  AND NOT EXISTS (SELECT FROM sent_log s WHERE s.queue = a.queue AND s.msg_id = a.msg_id)}
		),
		0,
		"$queue: every acked message was a committed send");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM $q m
WHERE NOT EXISTS (SELECT FROM sent_log s
                  WHERE s.queue = '$queue' AND s.msg_id = m.msg_id AND s.token = m.payload->>'token')}
		),
		0,
		"$queue: every message in the queue is a committed send, with its own payload"
	);
	is( $node->safe_psql(
			'postgres', qq{
SELECT (SELECT count(*) FROM $q)
     = (SELECT count(*) FROM sent_log WHERE queue = '$queue')
     - (SELECT count(*) FROM acked_log WHERE queue = '$queue')}),
		't',
		"$queue: the queue holds exactly the committed sends minus the committed acks"
	);
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM $q WHERE attempts <> 0 OR vt > now() OR last_error IS NOT NULL"
		),
		0,
		"$queue: no read that was not acked survives (every message left is untouched)"
	);
	is($node->safe_psql('postgres', "SELECT count(*) FROM ku9_queue.d_$queue"),
		0, "$queue: nothing was dead-lettered");
}

# the archive holds exactly the committed acks, with their payloads
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (
    SELECT a.msg_id, s.token FROM acked_log a JOIN sent_log s USING (queue, msg_id)
    WHERE a.queue = 'crash_arch'
    EXCEPT
    SELECT msg_id, payload->>'token' FROM ku9_queue.a_crash_arch) AS missing}),
	0,
	'crash_arch: every committed ack is in the archive with its payload');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM ku9_queue.a_crash_arch m
WHERE NOT EXISTS (SELECT FROM acked_log a WHERE a.queue = 'crash_arch' AND a.msg_id = m.msg_id)}
	),
	0,
	'crash_arch: the archive holds nothing but committed acks');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ku9_queue.a_crash'),
	0, 'crash: a queue without archive archives nothing');

# the queues still work: ids continue past every id given out before the
# crash, a priority message is read first and acked
for my $queue ('crash', 'crash_arch')
{
	my $max = $node->safe_psql('postgres',
		"SELECT max(msg_id) FROM sent_log WHERE queue = '$queue'");
	my $id = $node->safe_psql('postgres',
		"SELECT ku9.send('$queue', '{\"after\": \"restart\"}', '{\"priority\": 10}')"
	);
	cmp_ok($id, '>', $max,
		"$queue: a send after the restart gets a new id ($id > $max)");
	is( $node->safe_psql(
			'postgres',
			"SELECT msg_id, attempts, payload->>'after' FROM ku9.read('$queue', 1, 30)"),
		"$id|1|restart",
		"$queue: read after the restart gets the new message first");
	is($node->safe_psql('postgres', "SELECT ku9.ack('$queue', ARRAY[$id]::bigint[])"),
		1, "$queue: ack after the restart");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM ku9_queue.q_$queue WHERE msg_id = $id"),
		0,
		"$queue: the acked message is gone");
}

# a waiting read is woken after the restart (fresh wake-up slots)
my $waiter = $node->background_psql('postgres');
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/^waiting\n/m,
	"\\echo waiting\nSELECT payload->>'woken' FROM ku9.read('idle', 1, 30, 10000);\n");
ok(reader_sleeps($node, $waiter_pid),
	'a read on an empty queue waits after the restart');
$node->safe_psql('postgres', q{SELECT ku9.send('idle', '{"woken": "yes"}')});
my $woken = $waiter->query_until(qr/^done\n/m, "\\echo done\n");
is($woken, "yes\ndone\n", 'a send after the restart wakes the waiting read');
$waiter->quit;

# metrics work and count again from zero
my $metrics = $node->safe_psql('postgres', 'SELECT ku9.metrics()');
like($metrics, qr/^ku9_build_info\{version="[^"]+"\} 1$/m,
	'ku9.metrics() works after the restart');
like(
	$metrics,
	qr/^ku9_queue_sent_total\{(?=[^}]*database="postgres")(?=[^}]*queue="crash")[^}]*\} 1$/m,
	'ku9_queue_sent_total counts from zero after the restart');
is( $node->safe_psql(
		'postgres',
		"SELECT depth, sent_total, acked_total FROM ku9.queue_stats('crash')"),
	$node->safe_psql('postgres', 'SELECT count(*) FROM ku9_queue.q_crash')
	  . '|1|1',
	'ku9.queue_stats works after the restart');

$node->stop;
log_has_no_crash($node, 'no crash after the restart', $offset);

done_testing();
