# Copyright (c) 2026, ku9 contributors
#
# Wake-ups of ku9.read(..., wait_ms): a reader sleeping on an empty queue
# returns as soon as another session commits a send (the latency is logged,
# and only asserted to be well within the budget); a send in a transaction
# still open does not deliver, and the reader that slept across it is woken
# by the commit; a rolled-back send never delivers; pg_cancel_backend and
# statement_timeout interrupt a waiting read (57014); a send to another
# queue, or to the queue of the same name and qid in another database, does
# not wake the reader; LISTEN clients are notified at commit; the
# ku9_queue_waits_total and ku9_queue_wakeups_total counters count.
#
# Nothing here sleeps for a fixed time: a reader is known to be asleep when
# pg_stat_activity shows it in the wait event "Extension".

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $node = ku9_node('wakeup', conf => ['log_statement = none']);

# queues made in the same order in two databases get the same qids
$node->safe_psql('postgres', 'CREATE DATABASE other');
for my $db ('postgres', 'other')
{
	$node->safe_psql(
		$db, q{
CREATE EXTENSION ku9 CASCADE;
SELECT ku9.create_queue('w');
SELECT ku9.create_queue('wa');
SELECT ku9.create_queue('wb');
});
}
my $qid_wa = $node->safe_psql('postgres',
	"SELECT qid FROM ku9.queues WHERE name = 'wa'");
is($node->safe_psql('other', "SELECT qid FROM ku9.queues WHERE name = 'wa'"),
	$qid_wa,
	"queue 'wa' has the same qid ($qid_wa) in both databases");

# still_sleeping says, without waiting, whether backend $pid sleeps in the
# wait of a ku9.read right now.
sub still_sleeping
{
	my ($pid) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce((SELECT state = 'active' AND wait_event_type = 'Extension'
		 FROM pg_stat_activity WHERE pid = $pid), false)") eq 't';
}

# start_query sends $sql to a background session and returns at once,
# while the query runs.
sub start_query
{
	my ($session, $tag, $sql) = @_;
	$session->query_until(qr/^\Q$tag\E\n/m, "\\echo $tag\n$sql;\n");
}

# finish_query waits for the query started by start_query and returns its
# output (without the trailing newline).
sub finish_query
{
	my ($session, $tag) = @_;
	my $out = $session->query_until(qr/^\Q$tag\E\n/m, "\\echo $tag\n");
	$out =~ s/^\Q$tag\E\n//m;
	chomp $out;
	return $out;
}

# take_stderr returns what a background session wrote to stderr so far, and
# forgets it.
sub take_stderr
{
	my ($session) = @_;
	my $err = $session->{stderr};
	$session->{stderr} = '';
	return $err;
}

sub percentile
{
	my ($p, @v) = @_;
	@v = sort { $a <=> $b } @v;
	return $v[ int($p * $#v + 0.5) ];
}

my $waiter = $node->background_psql('postgres', on_error_stop => 0);
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_safe('\set VERBOSITY verbose');
my $sender = $node->background_psql('postgres');

# 1. a sleeping reader wakes when a send commits; 20 rounds, latency logged
my $waits0 =
  stat_value($node, 'postgres', 'ku9_queue_waits_total', { queue => 'w' });
my $wakeups0 =
  stat_value($node, 'postgres', 'ku9_queue_wakeups_total', { queue => 'w' });
my $rounds = 20;
my (@latency, @bad);
for my $i (1 .. $rounds)
{
	start_query($waiter, "wait_$i",
		"SELECT msg_id, extract(epoch FROM clock_timestamp()) FROM ku9.read('w', 1, 30, 10000)"
	);
	if (!reader_sleeps($node, $waiter_pid))
	{
		push @bad, "round $i: the reader never slept";
		finish_query($waiter, "woke_$i");
		last;
	}
	my ($id, $committing) = split /\n/,
	  $sender->query_safe(
		"BEGIN; SELECT ku9.send('w', '{\"round\": $i}'); SELECT extract(epoch FROM clock_timestamp()); COMMIT;"
	  );
	my ($got, $woke) = split /\|/, finish_query($waiter, "woke_$i");
	if (!defined $got || $got ne $id)
	{
		push @bad,
		  "round $i: the reader returned '" . ($got // '') . "', not message $id";
		last;
	}
	my $ms = 1000 * ($woke - $committing);
	push @latency, $ms;
	if ($ms < 0 || $ms >= 5000)
	{
		push @bad, sprintf("round %d: woke %.3f ms after the send", $i, $ms);
		last;
	}
}
is_deeply(\@bad, [],
	"$rounds sleeping reads each return the message committed while they sleep, well within the budget"
);
is(scalar(@latency), $rounds, "all $rounds rounds measured");
my $lat = sprintf(
	"wake-up latency over %d rounds (from clock_timestamp() before COMMIT to the reader's return): p50 %.3f ms, p90 %.3f ms, max %.3f ms",
	scalar(@latency),
	percentile(0.5, @latency),
	percentile(0.9, @latency),
	percentile(1, @latency));
diag($lat);
is( stat_value($node, 'postgres', 'ku9_queue_waits_total', { queue => 'w' })
	  - $waits0,
	$rounds, 'ku9_queue_waits_total counts every read that slept');
is( stat_value($node, 'postgres', 'ku9_queue_wakeups_total', { queue => 'w' })
	  - $wakeups0,
	$rounds, 'ku9_queue_wakeups_total counts every read woken with a message');
like(
	$node->safe_psql('postgres', 'SELECT ku9.metrics()'),
	qr/^ku9_queue_wakeups_total\{[^}]*queue="w"[^}]*\} \Q$rounds\E$/m,
	'ku9.metrics() exports the wake-ups of the queue');

# 2. a send in a transaction still open does not deliver; its commit wakes
# a reader that has been asleep since before the send
start_query($waiter, 'open_1',
	"SELECT msg_id, extract(epoch FROM clock_timestamp()) FROM ku9.read('w', 1, 30, 10000)"
);
ok(reader_sleeps($node, $waiter_pid), 'open transaction: the reader sleeps');
my $open_id = $sender->query_safe(
	q{BEGIN; SELECT ku9.send('w', '{"open": true}')});
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), extract(epoch FROM clock_timestamp() - statement_timestamp()) >= 0.5
		 FROM ku9.read('w', 1, 30, 500)"),
	'0|t',
	'open transaction: a read with a 500 ms budget returns no rows while the send is not committed'
);
ok(still_sleeping($waiter_pid),
	'open transaction: the uncommitted send did not end the wait');
my $committing = $sender->query_safe(
	'SELECT extract(epoch FROM clock_timestamp()); COMMIT;');
my ($got, $woke) = split /\|/, finish_query($waiter, 'open_2');
is($got, $open_id, 'open transaction: its commit wakes the reader');
cmp_ok(1000 * ($woke - $committing),
	'<', 5000, 'open transaction: the reader wakes well within its budget');
note sprintf('open transaction: woke %.3f ms after the commit',
	1000 * ($woke - $committing));

# 3. a send that rolls back never delivers
is($node->safe_psql('postgres', "SELECT ku9.purge_queue('w')"),
	$rounds + 1, 'the messages read so far are purged');
start_query($waiter, 'rollback_1',
	"SELECT count(*), extract(epoch FROM clock_timestamp() - statement_timestamp()) >= 1.5
	 FROM ku9.read('w', 1, 30, 1500)");
ok(reader_sleeps($node, $waiter_pid), 'rollback: the reader sleeps');
$sender->query_safe(q{BEGIN; SELECT ku9.send('w', '{"rollback": true}'); ROLLBACK;});
is(finish_query($waiter, 'rollback_2'),
	'0|t', 'rollback: the reader returns no rows at the end of its budget');
is( $node->safe_psql(
		'postgres',
		"SELECT (SELECT count(*) FROM ku9.read('w', 10, 30)) + (SELECT count(*) FROM ku9_queue.q_w)"
	),
	0,
	'rollback: the rolled-back message is nowhere, and the queue is empty');

# 4. pg_cancel_backend interrupts a waiting read
start_query($waiter, 'cancel_1', "SELECT * FROM ku9.read('w', 1, 30, 30000)");
ok(reader_sleeps($node, $waiter_pid), 'cancel: the reader sleeps');
take_stderr($waiter);
my $t0 = time;
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($waiter_pid)"),
	't', 'cancel: pg_cancel_backend signals the reader');
is(finish_query($waiter, 'cancel_2'), '', 'cancel: the read returns no rows');
my $elapsed = time - $t0;
like(
	take_stderr($waiter),
	qr/ERROR:  57014: canceling statement due to user request/,
	'cancel: the read fails with 57014');
cmp_ok($elapsed, '<', 5, 'cancel: the read ends well before its 30 s budget');
note sprintf('cancel: the read ended %.3f s after pg_cancel_backend', $elapsed);

# 5. statement_timeout interrupts a waiting read
$waiter->query_safe(q{SET statement_timeout = '300ms'});
$t0 = time;
start_query($waiter, 'timeout_1', "SELECT * FROM ku9.read('w', 1, 30, 30000)");
is(finish_query($waiter, 'timeout_2'),
	'', 'statement_timeout: the read returns no rows');
$elapsed = time - $t0;
like(
	take_stderr($waiter),
	qr/ERROR:  57014: canceling statement due to statement timeout/,
	'statement_timeout: the read fails with 57014');
cmp_ok($elapsed, '>=', 0.3,
	'statement_timeout: the read waited until the timeout');
cmp_ok($elapsed, '<', 5,
	'statement_timeout: the read ends well before its 30 s budget');
note sprintf('statement_timeout: the read ended after %.3f s', $elapsed);
$waiter->query_safe('RESET statement_timeout');

# the interrupted session still waits and wakes normally
start_query($waiter, 'again_1',
	"SELECT payload->>'again' FROM ku9.read('w', 1, 30, 10000)");
ok(reader_sleeps($node, $waiter_pid),
	'after the interruptions: the reader sleeps again');
$sender->query_safe(q{SELECT ku9.send('w', '{"again": "yes"}')});
is(finish_query($waiter, 'again_2'),
	'yes', 'after the interruptions: a send wakes the reader');

# 6. a delayed message wakes a waiting reader when it is due: the reader
# sleeps no longer than until the next hidden message becomes visible
{
	my $delayed = $node->safe_psql('postgres',
		q{SELECT ku9.send('wa', '{"delayed": true}', '{"delay": 1}')});
	start_query($waiter, 'delayed_1',
		"SELECT msg_id, extract(epoch FROM clock_timestamp() - statement_timestamp())
		 FROM ku9.read('wa', 1, 30, 10000)");
	ok(reader_sleeps($node, $waiter_pid), 'delayed: the reader sleeps');
	my ($id, $waited) = split /\|/, finish_query($waiter, 'delayed_2');
	is($id, $delayed, 'delayed: the reader gets the message once it is due');
	cmp_ok($waited, '<', 5, 'delayed: well before the end of its 10 s budget');
	note sprintf('delayed: a 1 s delay was picked up after %.3f s', $waited);
}

# 7. sends elsewhere give a reader of 'wa' nothing: it returns empty at the
# end of its budget, and the message stays where it was sent
for my $case (
	[ "queue 'wb' in the same database", 'postgres', 'wb' ],
	[ "queue 'wa' of the database 'other'", 'other', 'wa' ])
{
	my ($what, $db, $queue) = @$case;
	start_query($waiter, "elsewhere_${db}_1",
		"SELECT count(*), extract(epoch FROM clock_timestamp() - statement_timestamp())
		 FROM ku9.read('wa', 1, 30, 1500)");
	ok(reader_sleeps($node, $waiter_pid), "$what: the reader of 'wa' sleeps");
	my $other_id = $node->safe_psql($db,
		"SELECT ku9.send('$queue', '{\"elsewhere\": true}')");
	my ($count, $waited) = split /\|/, finish_query($waiter, "elsewhere_${db}_2");
	is($count, 0, "$what: the reader of 'wa' gets nothing");
	cmp_ok($waited, '>=', 1.4, "$what: the reader returned at the end of its budget");
	is( $node->safe_psql(
			$db, "SELECT msg_id FROM ku9.read('$queue', 1, 30)"),
		$other_id,
		"$what: the message sent there stays there");
}

# 8. a reader that took a message and rolls back gives it back, and that
# wakes a waiting reader at once
{
	my $taker = $node->background_psql('postgres');
	my $id = $node->safe_psql('postgres', q{SELECT ku9.send('wa', '{"taken": true}')});
	$taker->query_safe(q{BEGIN; SELECT msg_id FROM ku9.read('wa', 1, 30)});
	start_query($waiter, 'rollback_1',
		"SELECT msg_id, extract(epoch FROM clock_timestamp() - statement_timestamp())
		 FROM ku9.read('wa', 1, 30, 10000)");
	ok(reader_sleeps($node, $waiter_pid), 'rollback: the reader sleeps');
	$taker->query_safe('ROLLBACK');
	my ($got, $waited) = split /\|/, finish_query($waiter, 'rollback_2');
	is($got, $id, 'rollback: the waiting reader gets the message given back');
	cmp_ok($waited, '<', 5, 'rollback: at once, not at the end of its budget');
	$taker->quit;
}

# 9. LISTEN ku9_queue_<name> hears a send at its commit, not before
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN ku9_queue_w');
$sender->query_safe(q{BEGIN; SELECT ku9.send('w', '{"notify": true}')});
unlike($listener->query_safe('SELECT 1'),
	qr/notification/, 'LISTEN: nothing is heard before the commit');
$sender->query_safe('COMMIT');
my $heard = '';
for (my $n = 0; $n < 10 * $PostgreSQL::Test::Utils::timeout_default; $n++)
{
	$heard .= $listener->query_safe('SELECT 1');
	last if $heard =~ /notification/;
	usleep(100_000);
}
like(
	$heard,
	qr/Asynchronous notification "ku9_queue_w" with payload "w" received/,
	'LISTEN: the commit notifies the channel ku9_queue_w with the queue name');
$listener->quit;

$waiter->quit;
$sender->quit;
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $waiter_pid"),
	'the waiting session is gone');
$node->stop;
log_has_no_crash($node, 'no backend crashed');

done_testing();
