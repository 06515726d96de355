# Copyright (c) 2026, ku9 contributors
#
# ku9 preloaded: identity functions, the claims counters in shared memory
# (exact under concurrent backends), the Prometheus exposition, and a clean
# restart that starts every counter again from zero.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $uid = '6f1c3a52-8d0e-4b6b-9a43-2f5d1e7c9b10';
my $claims_a = qq({"sub":"$uid","role":"ku9_user","email":"a\@example.com"});
my $claims_b = q({"sub":"0b9e2c4d-1111-4e2f-8a3b-5c6d7e8f9a0b","role":"ku9_service"});

my $node = ku9_node('main');

$node->safe_psql('postgres', 'CREATE EXTENSION ku9 CASCADE');
is( $node->safe_psql('postgres',
		"SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension
		 WHERE extname IN ('ku9', 'pgcrypto')"),
	'ku9,pgcrypto',
	'CREATE EXTENSION ku9 CASCADE installs ku9 and pgcrypto');

is(stat_value($node, 'postgres', 'ku9_claims_parsed_total'),
	0, 'no claims parsed before the first call');

# identity functions; a second call with the same claims hits the cache, a
# new claims text is parsed again
is( $node->safe_psql(
		'postgres', qq(
SET request.jwt.claims = '$claims_a';
SELECT ku9.claims()->>'email', ku9.uid(), ku9.role();
SELECT ku9.claims() = '$claims_a'::jsonb;
SET request.jwt.claims = '$claims_b';
SELECT ku9.role();
RESET request.jwt.claims;
SELECT ku9.claims() IS NULL AND ku9.uid() IS NULL AND ku9.role() IS NULL;
)),
	"a\@example.com|$uid|ku9_user\nt\nku9_service\nt",
	'identity functions read request.jwt.claims');

is(stat_value($node, 'postgres', 'ku9_claims_parsed_total'),
	2, 'each distinct claims text is parsed once');
is(stat_value($node, 'postgres', 'ku9_claims_size_bytes_count'),
	2, 'claims size histogram counts the parses');
is(stat_value($node, 'postgres', 'ku9_claims_size_bytes_sum'),
	length($claims_a) + length($claims_b),
	'claims size histogram sums the bytes parsed');

# an invalid claims text is rejected and counted
my ($ret, $out, $err) = $node->psql('postgres',
	"SET request.jwt.claims = '[1, 2]'; SELECT ku9.claims();");
isnt($ret, 0, 'claims that are not a JSON object are rejected');
like($err, qr/not a JSON object/, 'rejection says what is wrong');
is(stat_value($node, 'postgres', 'ku9_claims_invalid_total'),
	1, 'the rejection is counted');

# ku9.metrics() and ku9.stats show the same samples
my $metrics = $node->safe_psql('postgres', 'SELECT ku9.metrics()');
like(
	$metrics,
	qr/^# TYPE ku9_claims_parsed_total counter\nku9_claims_parsed_total\{database="postgres"\} 3$/m,
	'ku9.metrics() exports the claims counter');
like($metrics, qr/^ku9_build_info\{version="[^"]+"\} 1$/m,
	'ku9.metrics() exports ku9_build_info');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ku9.stats'),
	scalar(grep { !/^#/ } split /\n/, $metrics),
	'ku9.stats has a row for every sample of ku9.metrics()');
promtool_ok($metrics, 'promtool accepts ku9.metrics()');

# a database name that needs escaping in a label value; once the database
# is dropped its series are no longer exported
my $odd = q{odd "db" \ x};
$node->safe_psql('postgres', q{CREATE DATABASE "odd ""db"" \ x"});
is( $node->safe_psql(
		$odd, qq(
CREATE EXTENSION ku9 CASCADE;
SET request.jwt.claims = '$claims_b';
SELECT ku9.role();
)),
	'ku9_service',
	'identity functions work in a second database');
$metrics = $node->safe_psql('postgres', 'SELECT ku9.metrics()');
like(
	$metrics,
	qr/^ku9_claims_parsed_total\{database="odd \\"db\\" \\\\ x"\} 1$/m,
	'a database name is escaped in the label value');
like(
	$metrics,
	qr/^ku9_claims_parsed_total\{database="postgres"\} 3$/m,
	'each database has its own series');
is( $node->safe_psql(
		'postgres', q{
SELECT value FROM ku9.stats
WHERE name = 'ku9_claims_parsed_total' AND labels->>'database' = 'odd "db" \ x'}),
	1,
	'ku9.stats has the database name unescaped');
promtool_ok($metrics, 'promtool accepts an escaped database label');
$node->safe_psql('postgres', q{DROP DATABASE "odd ""db"" \ x"});
$metrics = $node->safe_psql('postgres', 'SELECT ku9.metrics()');
unlike($metrics, qr/database="odd /,
	'series of a dropped database are not exported');
promtool_ok($metrics, 'promtool accepts ku9.metrics() after DROP DATABASE');

# exact sums with 8 concurrent backends: each transaction sets claims of its
# own (the txn field makes them unique), reads them twice and the uid once;
# only the first call parses.  A failed check divides by zero and fails the
# transaction, so pgbench exits non-zero.
my $claims_len = length(
	sprintf('{"sub":"%s","role":"ku9_user","txn":"%s"}', $uid, '0' x 12));
my $parsed0 = stat_value($node, 'postgres', 'ku9_claims_parsed_total');
my $count0 = stat_value($node, 'postgres', 'ku9_claims_size_bytes_count');
my $sum0 = stat_value($node, 'postgres', 'ku9_claims_size_bytes_sum');
my $invalid0 = stat_value($node, 'postgres', 'ku9_claims_invalid_total');

$node->pgbench(
	'--no-vacuum --client=8 --jobs=2 --transactions=250',
	0,
	[qr{processed: 2000/2000}],
	[qr{^$}],
	'pgbench: 8 clients x 250 transactions setting distinct claims',
	{
		'001_claims' => q{
BEGIN;
SELECT set_config('request.jwt.claims',
    format('{"sub":"%s","role":"ku9_user","txn":"%s"}',
           gen_random_uuid(), lpad(pg_current_xact_id()::text, 12, '0')),
    true);
SELECT 1 / (ku9.claims()->>'txn' = lpad(pg_current_xact_id()::text, 12, '0'))::int;
SELECT 1 / (ku9.uid() = (ku9.claims()->>'sub')::uuid)::int;
COMMIT;
}
	},
	'postgres');

is(stat_value($node, 'postgres', 'ku9_claims_parsed_total') - $parsed0,
	2000, 'ku9_claims_parsed_total grew by exactly one per transaction');
is(stat_value($node, 'postgres', 'ku9_claims_size_bytes_count') - $count0,
	2000, 'ku9_claims_size_bytes_count grew by exactly one per transaction');
is(stat_value($node, 'postgres', 'ku9_claims_size_bytes_sum') - $sum0,
	2000 * $claims_len,
	'ku9_claims_size_bytes_sum grew by exactly the bytes parsed');
is(stat_value($node, 'postgres', 'ku9_claims_invalid_total') - $invalid0,
	0, 'no claims were rejected under concurrency');
is( $node->safe_psql(
		'postgres', q{
SELECT value FROM ku9.stats
WHERE name = 'ku9_claims_size_bytes_bucket' AND labels->>'le' = '+Inf'}),
	stat_value($node, 'postgres', 'ku9_claims_size_bytes_count'),
	'the +Inf bucket equals the histogram count');
promtool_ok($node->safe_psql('postgres', 'SELECT ku9.metrics()'),
	'promtool accepts ku9.metrics() after concurrent updates');

# restart: shared memory is fresh, everything still works
$node->restart;

is(stat_value($node, 'postgres', 'ku9_claims_parsed_total'),
	0, 'ku9_claims_parsed_total starts again from zero after a restart');
is(stat_value($node, 'postgres', 'ku9_claims_size_bytes_count'),
	0, 'ku9_claims_size_bytes_count starts again from zero after a restart');
is(stat_value($node, 'postgres', 'ku9_claims_invalid_total'),
	0, 'ku9_claims_invalid_total starts again from zero after a restart');

is( $node->safe_psql(
		'postgres', qq(
SET request.jwt.claims = '$claims_a';
SELECT ku9.uid(), ku9.role(), ku9.claims()->>'email';
)),
	"$uid|ku9_user|a\@example.com",
	'identity functions work after a restart');
is(stat_value($node, 'postgres', 'ku9_claims_parsed_total'),
	1, 'ku9_claims_parsed_total counts again after a restart');
is(stat_value($node, 'postgres', 'ku9_claims_size_bytes_sum'),
	length($claims_a), 'claims size histogram records again after a restart');

$metrics = $node->safe_psql('postgres', 'SELECT ku9.metrics()');
like(
	$metrics,
	qr/^ku9_claims_parsed_total\{database="postgres"\} 1$/m,
	'ku9.metrics() works after a restart');
like($metrics, qr/^ku9_build_info\{version="[^"]+"\} 1$/m,
	'ku9_build_info is back after a restart');
promtool_ok($metrics, 'promtool accepts ku9.metrics() after a restart');

$node->stop;
log_has_no_crash($node, 'no backend crashed');

done_testing();
