# Copyright (c) 2026, ku9 contributors
#
# A backend killed with SIGKILL makes the postmaster reinitialize shared
# memory.  ku9's registry must come back fresh and usable: ku9.metrics() and
# ku9.stats work and pass promtool, the counters count again from zero, and
# the identity functions work.  Killed twice: once an idle session that had
# used ku9, once a backend of a pgbench run that loads the claims and
# metrics paths from several backends at once.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

# kill_backend sends SIGKILL to a backend and waits until the postmaster
# has reinitialized and accepts connections again.
sub kill_backend
{
	my ($node, $pid, $what) = @_;
	my $offset = -s $node->logfile;

	# never signal pid 0 or a negative pid (a process group)
	die "$what: not a backend pid: '$pid'" unless $pid =~ /^[1-9][0-9]*$/;
	is(kill('KILL', $pid), 1, "$what: SIGKILL sent to backend $pid");
	$node->wait_for_log(
		qr/server process \(PID $pid\) was terminated by signal 9/, $offset);
	$node->wait_for_log(
		qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(
		qr/database system is ready to accept connections/, $offset);
	ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
		"$what: server accepts queries after the crash restart");
}

# check_fresh checks ku9 after a crash restart: fresh counters, working
# exposition and identity functions, counters that count again.
sub check_fresh
{
	my ($node, $what) = @_;
	my $uid = 'a3c1e1f0-5b7d-4c2e-9f10-1234567890ab';

	is(stat_value($node, 'postgres', 'ku9_claims_parsed_total'),
		0, "$what: ku9_claims_parsed_total starts again from zero");
	is( $node->safe_psql(
			'postgres',
			"SELECT value FROM ku9.stats WHERE name = 'ku9_build_info'"),
		1,
		"$what: ku9.stats has the start-up series again");

	is( $node->safe_psql(
			'postgres', qq(
SET request.jwt.claims = '{"sub":"$uid","role":"ku9_user"}';
SELECT ku9.uid(), ku9.role(), ku9.claims()->>'role';
SET request.jwt.claims = '{"role":"ku9_anon"}';
SELECT ku9.uid() IS NULL, ku9.role();
)),
		"$uid|ku9_user|ku9_user\nt|ku9_anon",
		"$what: identity functions work");

	is(stat_value($node, 'postgres', 'ku9_claims_parsed_total'),
		2, "$what: ku9_claims_parsed_total counts again");
	is(stat_value($node, 'postgres', 'ku9_claims_size_bytes_count'),
		2, "$what: ku9_claims_size_bytes_count counts again");

	my $metrics = $node->safe_psql('postgres', 'SELECT ku9.metrics()');
	like(
		$metrics,
		qr/^ku9_claims_parsed_total\{database="postgres"\} 2$/m,
		"$what: ku9.metrics() shows the new count");
	like($metrics, qr/^ku9_build_info\{version="[^"]+"\} 1$/m,
		"$what: ku9.metrics() has the start-up series again");
	promtool_ok($metrics, "$what: promtool accepts ku9.metrics()");
}

my $node = ku9_node('crash',
	conf => [ 'restart_after_crash = on', 'log_statement = none' ]);
$node->safe_psql('postgres', 'CREATE EXTENSION ku9 CASCADE');

my @killed;

# 1. an idle session that has parsed claims and read the metrics
my $session = $node->background_psql('postgres');
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe(
	q{SET request.jwt.claims = '{"sub":"0b9e2c4d-1111-4e2f-8a3b-5c6d7e8f9a0b"}'});
is($session->query_safe('SELECT ku9.uid()'),
	'0b9e2c4d-1111-4e2f-8a3b-5c6d7e8f9a0b',
	'the session to be killed uses the identity functions');
is( $session->query_safe(
		q{SELECT ku9.metrics() ~ 'ku9_claims_parsed_total\{database="postgres"\} 1'}),
	't',
	'the session to be killed reads the metrics');
is(stat_value($node, 'postgres', 'ku9_claims_parsed_total'),
	1, 'its parse is counted before the crash');

kill_backend($node, $pid, 'idle session');
push @killed, $pid;
$session->quit;
check_fresh($node, 'after killing an idle session');

# 2. a backend of a pgbench run loading the claims and metrics paths
my $script = $node->basedir . '/002_load.sql';
append_to_file(
	$script, q{
SELECT set_config('request.jwt.claims',
    format('{"sub":"%s","role":"ku9_user"}', gen_random_uuid()), false);
SELECT ku9.uid(), ku9.role(), ku9.claims();
SELECT length(ku9.metrics());
SELECT count(*) FROM ku9.stats;
});
my ($bench_out, $bench_err) = ('', '');
my $bench;
{
	# pgbench's backends are told apart by application_name
	local $ENV{PGAPPNAME} = 'ku9_load';
	$bench = IPC::Run::start(
		[
			'pgbench', '--no-vacuum', '--client=4', '--jobs=2', '--time=60',
			'--file=' . $script, '--host=' . $node->host,
			'--port=' . $node->port, 'postgres'
		],
		'>', \$bench_out, '2>', \$bench_err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 4 FROM pg_stat_activity WHERE application_name = 'ku9_load'
AND (SELECT value FROM ku9.stats WHERE name = 'ku9_claims_parsed_total'
     AND labels->>'database' = 'postgres') >= 200}),
	'pgbench is running and parsing claims');
$pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE application_name = 'ku9_load' ORDER BY pid LIMIT 1"
);

kill_backend($node, $pid, 'pgbench backend');
push @killed, $pid;

# the crash ends every pgbench connection, so pgbench stops on its own
$bench->finish;
note "pgbench exited with status " . ($? >> 8) . ":\n$bench_out$bench_err";
check_fresh($node, 'after killing a pgbench backend');

$node->stop;
my @crashed =
  slurp_file($node->logfile) =~ /server process \(PID (\d+)\) was terminated by signal/g;
is_deeply(\@crashed, \@killed, 'no backend crashed but the two killed');
unlike(slurp_file($node->logfile), qr/PANIC|TRAP:/, 'no PANIC or assertion');

done_testing();
