# Copyright (c) 2026, ku9 contributors
#
# Helpers shared by the TAP tests in test/t.  A test loads them with
#
#   use FindBin;
#   use lib "$FindBin::Bin/lib";
#   use Ku9Test;

package Ku9Test;

use strict;
use warnings;
use Carp;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(ku9_node promtool_ok stat_value reader_sleeps log_has_no_crash);

# ku9_node makes, configures and starts a node called $name, and returns it.
# Options:
#   preload => 0     leave shared_preload_libraries unset (by default it
#                    is 'ku9')
#   conf => [lines]  more lines for postgresql.conf
sub ku9_node
{
	my ($name, %opts) = @_;
	my $preload = exists $opts{preload} ? delete $opts{preload} : 1;
	my @conf = @{ delete $opts{conf} // [] };
	croak 'ku9_node: unknown options: ' . join(', ', sort keys %opts)
	  if %opts;

	# the HTTP gateway only where a test turns it on (later lines win)
	unshift @conf, 'ku9.http_port = 0';
	unshift @conf, "shared_preload_libraries = 'ku9'" if $preload;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join('', map { "$_\n" } @conf))
	  if @conf;
	$node->start;
	return $node;
}

# promtool_ok checks a Prometheus exposition with promtool (read from stdin).
sub promtool_ok
{
	my ($text, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'promtool', 'check', 'metrics' ],
		'<', \$text, '>', \$out, '2>', \$err);
	ok($ok, $name) or diag("promtool said:\n$out$err\ninput was:\n$text");
	return $ok;
}

# stat_value returns the value of the sample $name of the database $db from
# ku9.stats, restricted to the series whose labels also have the values in
# %$labels (if given); 0 when there is no such series yet.  It does not call
# any identity function, so it never changes the claims counters itself.
sub stat_value
{
	my ($node, $db, $name, $labels) = @_;
	my $quote = sub { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; };
	my $where = join '',
	  map { " AND labels->>" . $quote->($_) . ' = ' . $quote->($labels->{$_}) }
	  sort keys %{ $labels // {} };
	return $node->safe_psql($db,
		"SELECT coalesce((SELECT value FROM ku9.stats
			WHERE name = " . $quote->($name)
		  . " AND labels->>'database' = current_database()$where), 0)::numeric"
	);
}

# reader_sleeps waits until backend $pid sleeps in the wait of a ku9.read
# (the wait event "Extension"); true when it does before the timeout.
sub reader_sleeps
{
	my ($node, $pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT state = 'active' AND wait_event_type = 'Extension'
		 FROM pg_stat_activity WHERE pid = $pid");
}

# log_has_no_crash checks that the server log of $node (from byte $offset
# on, if given) shows no backend terminated by a signal, no PANIC and no
# failed assertion.
sub log_has_no_crash
{
	my ($node, $name, $offset) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return unlike(
		slurp_file($node->logfile, $offset),
		qr/terminated by signal|PANIC|TRAP:/,
		$name);
}

1;
