# Copyright (c) 2026, ku9 contributors
#
# ku9 without shared_preload_libraries: the extension installs and the
# identity functions work; the metrics, which need shared memory, say so with
# a NOTICE and return nothing, and nothing crashes.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $node = ku9_node('plain', preload => 0);

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'ku9 is not preloaded');

my ($ret, $out, $err) =
  $node->psql('postgres', 'CREATE EXTENSION ku9 CASCADE');
is($ret, 0, 'CREATE EXTENSION ku9 CASCADE works without preloading');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension
		 WHERE extname IN ('ku9', 'pgcrypto')"),
	'ku9,pgcrypto',
	'ku9 and pgcrypto are installed');

my $uid = '6f1c3a52-8d0e-4b6b-9a43-2f5d1e7c9b10';
is( $node->safe_psql(
		'postgres', qq(
SET request.jwt.claims = '{"sub":"$uid","role":"ku9_user","n":1}';
SELECT ku9.uid(), ku9.role(), ku9.claims()->>'n';
SET request.jwt.claims = '{"role":"ku9_anon"}';
SELECT ku9.uid() IS NULL, ku9.role();
RESET request.jwt.claims;
SELECT ku9.claims() IS NULL AND ku9.uid() IS NULL AND ku9.role() IS NULL;
)),
	"$uid|ku9_user|1\nt|ku9_anon\nt",
	'identity functions work without preloading');

($ret, $out, $err) = $node->psql('postgres',
	q{SET request.jwt.claims = '{"sub":"not-a-uuid"}'; SELECT ku9.uid();});
isnt($ret, 0, 'a bad sub claim is still rejected');
like($err, qr/claim "sub" is not a valid uuid/,
	'the rejection says what is wrong');

# ku9.metrics(): a comment only, and a NOTICE that names the fix
($ret, $out, $err) = $node->psql('postgres', 'SELECT ku9.metrics()');
is($ret, 0, 'ku9.metrics() succeeds without preloading');
like($out, qr/\A#[^\n]*shared_preload_libraries[^\n]*\n?\z/,
	'ku9.metrics() returns a single comment line');
like($err, qr/NOTICE:.*not preloaded/, 'ku9.metrics() raises a NOTICE');
like($err, qr/HINT:.*shared_preload_libraries/,
	'the NOTICE mentions shared_preload_libraries');

promtool_ok("$out\n", 'promtool accepts the comment-only exposition');

# ku9.stats: no rows, and the same NOTICE
($ret, $out, $err) =
  $node->psql('postgres', 'SELECT count(*) FROM ku9.stats');
is($ret, 0, 'ku9.stats can be queried without preloading');
is($out, '0', 'ku9.stats returns zero rows');
like($err, qr/NOTICE:.*not preloaded/, 'ku9.stats raises a NOTICE');

# the postmaster-only settings exist only when preloaded
($ret, $out, $err) = $node->psql('postgres',
	'SELECT ku9.role(); SHOW ku9.metrics_max_series');
isnt($ret, 0, 'ku9.metrics_max_series is not defined without preloading');
like($err, qr/unrecognized configuration parameter "ku9.metrics_max_series"/,
	'SHOW says the setting is unknown');
is($node->safe_psql('postgres', 'SELECT ku9.role(); SHOW ku9.jwt_exp'),
	"\n1h", 'the session settings are defined once ku9 is loaded');

# workers: none run; setting a handler and publishing say so, and the
# functions themselves work (the fan-out can be run by hand)
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'ku9%'"),
	'0', 'no ku9 background worker runs');
$node->safe_psql(
	'postgres', q{
CREATE ROLE app_worker;
CREATE FUNCTION public.handle(m ku9.message) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT ku9.create_queue('jobs');
});
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT ku9.set_queue_handler('jobs', 'public.handle(ku9.message)', '{"role": "app_worker"}')});
is($ret, 0, 'set_queue_handler works without preloading');
like($err, qr/NOTICE:  no ku9 worker will run this handler because ku9 is not preloaded/,
	'and says that no worker will run the handler');
is($node->safe_psql('postgres', 'SELECT handler FROM ku9.queue_handlers'),
	'public.handle(ku9.message)', 'the handler is recorded for when ku9 is preloaded');
($ret, $out, $err) = $node->psql(
	'postgres', q{
SELECT ku9.create_topic('news');
SELECT ku9.subscribe('news', ku9.admin_create_user('a@example.com'));
SELECT ku9.publish('news', '{"n": 1}', true);
});
is($ret, 0, 'publish works without preloading');
like($err, qr/NOTICE:  no ku9 worker will fan this message out because ku9 is not preloaded/,
	'and says that no worker will fan it out');
is($node->safe_psql('postgres', 'SELECT ku9.fanout_step(), ku9.fanout_step(), ku9.fanout_step()'),
	'1|0|0', 'ku9.fanout_step does the fan-out by hand (no device to push to, one user to tell)');
is($node->safe_psql('postgres', "SELECT (ku9.run_maintenance() ? 'sessions')::text"),
	'true', 'ku9.run_maintenance works without preloading, in a new session');
is( $node->safe_psql(
		'postgres', "SELECT ku9.admin_create_user('b\@example.com', 'a long password') IS NOT NULL"),
	't', 'so do the auth functions that read ku9 settings first thing');

$node->stop;
unlike(
	slurp_file($node->logfile),
	qr/terminated by signal|PANIC|TRAP:|server process .* exited with exit code/,
	'no crash in the server log');

done_testing();
