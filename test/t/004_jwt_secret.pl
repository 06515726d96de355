# Copyright (c) 2026, ku9 contributors
#
# ku9.jwt_secret, set in postgresql.conf, is readable only by superusers and
# members of pg_read_all_settings, and only superusers change it or
# ku9.jwt_exp.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $secret = 'k9-tap-secret-0123456789-abcdefghijklmn';
$secret .= 'X' x (40 - length($secret));
die 'the test secret must be 40 characters' unless length($secret) == 40;

my $node = ku9_node('secret', conf => ["ku9.jwt_secret = '$secret'"]);
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION ku9 CASCADE;
CREATE ROLE app LOGIN;
CREATE ROLE reader LOGIN IN ROLE pg_read_all_settings;
});

# as_role runs SQL as a role; returns (exit code, stdout, stderr), with the
# SQLSTATE in error messages
sub as_role
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql(
		'postgres', $sql,
		extra_params => [ '-U', $role, '-v', 'VERBOSITY=verbose' ]);
	return ($ret, $out, $err);
}

# denied checks that SQL run by app fails with insufficient_privilege and
# shows nothing of the secret
sub denied
{
	my ($sql, $message, $name) = @_;
	my ($ret, $out, $err) = as_role('app', $sql);
	isnt($ret, 0, "$name: fails");
	like($err, qr/ERROR:  42501: \Q$message\E/, "$name: insufficient_privilege");
	unlike("$out$err", qr/\Q$secret\E/, "$name: does not show the secret");
}

# the superuser sees the secret
is($node->safe_psql('postgres', 'SHOW ku9.jwt_secret'),
	$secret, 'superuser: SHOW shows the secret');
is( $node->safe_psql(
		'postgres',
		"SELECT setting FROM pg_settings WHERE name = 'ku9.jwt_secret'"),
	$secret,
	'superuser: pg_settings has the secret');

# a member of pg_read_all_settings sees it too
my ($ret, $out, $err) = as_role('reader', 'SHOW ku9.jwt_secret');
is($out, $secret, 'pg_read_all_settings member: SHOW shows the secret');

# an ordinary role sees nothing of it
my $examine =
  'must be superuser or have privileges of pg_read_all_settings to examine "ku9.jwt_secret"';
denied('SHOW ku9.jwt_secret', $examine, 'SHOW ku9.jwt_secret');
denied("SELECT current_setting('ku9.jwt_secret')",
	$examine, 'current_setting()');
denied("SELECT current_setting('ku9.jwt_secret', true)",
	$examine, 'current_setting(missing_ok)');

($ret, $out, $err) = as_role('app',
	"SELECT count(*) FROM pg_settings WHERE name = 'ku9.jwt_secret'");
is($out, '0', 'pg_settings has no row for ku9.jwt_secret');
($ret, $out, $err) = as_role('app', 'SELECT * FROM pg_settings');
is($ret, 0, 'pg_settings can be read');
unlike($out, qr/\Q$secret\E/, 'pg_settings does not show the secret');
like($out, qr/^ku9\.jwt_exp\|/m, 'pg_settings shows the other ku9 settings');
($ret, $out, $err) = as_role('app', 'SHOW ALL');
is($ret, 0, 'SHOW ALL works');
unlike($out, qr/\Q$secret\E/, 'SHOW ALL does not show the secret');
unlike($out, qr/^ku9\.jwt_secret\|/m, 'SHOW ALL does not list ku9.jwt_secret');
like($out, qr/^ku9\.jwt_exp\|1h\|/m, 'SHOW ALL lists ku9.jwt_exp');
denied('SELECT * FROM pg_file_settings',
	'permission denied for view pg_file_settings',
	'pg_file_settings');

# an ordinary role cannot change the secret or the token lifetime
denied(q{SET ku9.jwt_secret = 'x'},
	'permission denied to set parameter "ku9.jwt_secret"',
	'SET ku9.jwt_secret');
denied(q{SELECT set_config('ku9.jwt_secret', 'x', false)},
	'permission denied to set parameter "ku9.jwt_secret"',
	'set_config(ku9.jwt_secret)');
denied(q{BEGIN; SET LOCAL ku9.jwt_secret = 'x'},
	'permission denied to set parameter "ku9.jwt_secret"',
	'SET LOCAL ku9.jwt_secret');
denied('RESET ku9.jwt_secret',
	'permission denied to set parameter "ku9.jwt_secret"',
	'RESET ku9.jwt_secret');
denied(q{ALTER ROLE app SET ku9.jwt_secret = 'x'},
	'permission denied to set parameter "ku9.jwt_secret"',
	'ALTER ROLE app SET ku9.jwt_secret');
denied(q{SET ku9.jwt_exp = '1d'},
	'permission denied to set parameter "ku9.jwt_exp"',
	'SET ku9.jwt_exp');
denied(q{SELECT set_config('ku9.jwt_exp', '60', false)},
	'permission denied to set parameter "ku9.jwt_exp"',
	'set_config(ku9.jwt_exp)');
denied(q{ALTER ROLE app SET ku9.jwt_exp = '1d'},
	'permission denied to set parameter "ku9.jwt_exp"',
	'ALTER ROLE app SET ku9.jwt_exp');

($ret, $out, $err) = as_role('app', 'SHOW ku9.jwt_exp');
is($out, '1h', 'an ordinary role may read ku9.jwt_exp');

# nothing was changed
is( $node->safe_psql(
		'postgres', q{
SELECT current_setting('ku9.jwt_exp'), (SELECT count(*) FROM pg_db_role_setting)}),
	'1h|0',
	'ku9.jwt_exp is unchanged and no role setting was stored');
is($node->safe_psql('postgres', 'SHOW ku9.jwt_secret'),
	$secret, 'the secret is unchanged');

# the superuser may change both
is( $node->safe_psql(
		'postgres', q{
SET ku9.jwt_exp = '15min';
SET ku9.jwt_secret = 'another-secret-of-at-least-32-bytes!!';
SELECT current_setting('ku9.jwt_exp'), current_setting('ku9.jwt_secret');
}),
	'15min|another-secret-of-at-least-32-bytes!!',
	'the superuser may set ku9.jwt_secret and ku9.jwt_exp');

$node->stop;
unlike(slurp_file($node->logfile),
	qr/\Q$secret\E/, 'the secret never appears in the server log');

done_testing();
