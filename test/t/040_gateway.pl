# Copyright (c) 2026, ku9 contributors
#
# ku9's embedded HTTP gateway as a process: its workers start with the
# server and serve; bad traffic over raw sockets (a malformed request line,
# binary garbage, huge headers, a body over the limit, slow clients that
# send a header a byte at a time, a thousand connections at once) gets an
# error or is closed, never crashes anything, and the gateway keeps
# serving; a worker stopped with SIGTERM is started again by the launcher;
# after a SIGKILL (which restarts the server) the gateway comes back; the
# server stops cleanly with the gateway's streams open.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $node = ku9_node('gateway',
	conf => [
		"ku9.http_port = $http_port", 'ku9.http_workers = 2',
		'ku9.http_idle_timeout = 2', 'ku9.http_max_body = 4096',
		'ku9.workers = 0', 'restart_after_crash = on', 'max_connections = 60',
		"ku9.jwt_secret = 'tap-gateway-secret-0123456789abcdefghij'"
	]);
$node->safe_psql('postgres', 'CREATE EXTENSION ku9 CASCADE');
$node->safe_psql('postgres', 'ALTER ROLE ku9_authenticator LOGIN');

# request(RAW[, TIMEOUT]): send raw bytes, return what came back until close or timeout
sub request
{
	my ($raw, $timeout) = @_;
	$timeout //= 5;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $http_port, Proto => 'tcp', Timeout => 5)
	  or return '';
	$s->autoflush(1);
	print $s $raw;
	my $sel = IO::Select->new($s);
	my $out = '';
	my $end = time + $timeout;
	while (time < $end && $sel->can_read($end - time))
	{
		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$out .= $buf;
		last if $out =~ /\r\n\r\n/ && $out =~ /Content-Length: (\d+)/i && length($out) >= index($out, "\r\n\r\n") + 4 + $1;
	}
	close $s;
	return $out;
}

sub status_of { my ($r) = @_; return $r =~ m{^HTTP/1\.[01] (\d{3})} ? $1 : 0; }

sub jwks_ok
{
	return status_of(request("POST /rpc/jwks HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")) == 200;
}

sub wait_for_gateway
{
	for (1 .. 300)
	{
		return 1 if jwks_ok();
		sleep 0.1;
	}
	return 0;
}

sub gateway_pids
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ' ' ORDER BY application_name) FROM pg_stat_activity WHERE backend_type = 'ku9 gateway'");
}

ok(wait_for_gateway(), 'the gateway serves ku9_api after start');
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'ku9 gateway'")
  or die 'no gateway workers';
pass('two gateway workers run, named in pg_stat_activity');
is($node->safe_psql('postgres',
	"SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_activity WHERE application_name LIKE 'ku9 gateway%' AND backend_type = 'client backend'") =~ /^ku9 gateway \d( listener)?(,ku9 gateway \d( listener)?)*$/ ? 1 : 0,
	1, 'their database connections are named after them');

# malformed traffic
for my $bad ("GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET /health HTTP/1.1\r\nNo colon here\r\n\r\n",
	"POST /rpc/jwks HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "GET /%zz%00 HTTP/1.1\r\nHost: x\r\n\r\n")
{
	my $r = request($bad, 2);
	ok($r eq '' || status_of($r) >= 400, 'a malformed request is refused or dropped: ' . ($bad =~ s/\r\n.*//sr));
}
ok(jwks_ok(), 'and the gateway still serves');
my $bin = join('', map { chr(int(rand(256))) } 1 .. 4096);
request($bin, 2);
pass('binary garbage is dropped');
like(request("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " . ('a' x 100_000) . "\r\n\r\n"),
	qr{^HTTP/1\.[01] 4(31|13|00)}, 'huge headers are refused');
like(request("POST /rpc/sign_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"),
	qr{^HTTP/1\.[01] 413}, 'a declared body far over ku9.http_max_body gets 413 before it is sent');
like(request("POST /rpc/sign_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" . ('x' x 5000)),
	qr{^HTTP/1\.[01] 413}, 'a body just over the limit is read and refused with 413');
like(request("POST /rpc/sign_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"email\":"),
	qr{^HTTP/1\.[01] 400.*PGRST102}s, 'bad JSON gets 400 PGRST102');
like(request("POST /rpc/unread_count HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
	qr{^HTTP/1\.[01] 401.*PGRST301}s, 'a bad token gets 401');

# slow clients: a header a byte every half second, on many connections
my @slow;
for (1 .. 50)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $http_port, Proto => 'tcp') or last;
	$s->autoflush(1);
	print $s "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	push @slow, $s;
}
is(scalar(@slow), 50, 'fifty slow clients connected');
my $t0 = time;
ok(jwks_ok(), 'the gateway serves others while slow clients dribble');
ok(time - $t0 < 2, 'and without waiting for them');
# they stop sending: after ku9.http_idle_timeout (2 s) they are closed
sleep 3.5;
my $closed = 0;
for my $s (@slow)
{
	my $sel = IO::Select->new($s);
	if ($sel->can_read(0.5))
	{
		my $n = sysread($s, my $buf, 100);
		$closed++ if !$n || $buf =~ /^HTTP/;
	}
}
is($closed, 50, 'idle slow clients are closed after ku9.http_idle_timeout');
close $_ for @slow;

# a thousand connections at once
my @many;
for (1 .. 1000)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $http_port, Proto => 'tcp') or last;
	push @many, $s;
}
ok(@many >= 900, 'a thousand connections are accepted (' . scalar(@many) . ')');
ok(jwks_ok(), 'the gateway serves with a thousand idle connections open');
close $_ for @many;

# a worker stopped is started again by the launcher
my ($pid1) = split / /, gateway_pids();
kill 'TERM', $pid1;
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 AND NOT bool_or(pid = $pid1) FROM pg_stat_activity WHERE backend_type = 'ku9 gateway'")
  or die 'the stopped gateway worker was not started again';
pass('a stopped gateway worker is started again');
ok(wait_for_gateway(), 'and the gateway serves');

# SIGKILL: the server restarts, and the gateway with it (psql fails while
# the server restarts, so each try is guarded)
my ($pid2) = split / /, gateway_pids();
kill 'KILL', $pid2;
my $back = 0;
for (1 .. 600)
{
	my $r = eval {
		$node->safe_psql('postgres',
			"SELECT count(*) = 2 AND NOT bool_or(pid = $pid2) FROM pg_stat_activity WHERE backend_type = 'ku9 gateway'");
	};
	if (defined $r && $r eq 't') { $back = 1; last; }
	sleep 0.1;
}
ok($back, 'two gateway workers run again after a SIGKILL of one (the server restarted)');
ok(wait_for_gateway(), 'the gateway serves again after a SIGKILL of one of its workers');

# the server stops cleanly with an event stream open
my $token = $node->safe_psql('postgres',
	"SELECT ku9.jwt_sign(jsonb_build_object('sub', gen_random_uuid()::text, 'role', 'ku9_user', 'aud', 'authenticated',
	                                         'exp', extract(epoch from now())::int + 600))");
my $es = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $http_port, Proto => 'tcp');
print $es "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $token\r\n\r\n";
my $sel = IO::Select->new($es);
my $head = '';
while ($sel->can_read(5)) { my $n = sysread($es, my $b, 4096); last unless $n; $head .= $b; last if $head =~ /retry:/; }
like($head, qr{^HTTP/1\.1 200.*text/event-stream.*retry: }s, 'an event stream is open');
$node->stop('fast');
pass('the server stopped with the stream open');
my $log = slurp_file($node->logfile);
like($log, qr/ku9 gateway \d stopped/, 'the gateway workers stopped cleanly');
unlike($log, qr/gateway.*(terminated by signal 11|Segmentation|exited with exit code [^01])/, 'no gateway worker crashed');

done_testing();
