# Copyright (c) 2026, ku9 contributors
#
# pg_dump and restore of a database with document collections.  The
# collection tables are not extension members and the registry
# ku9.collections is marked for pg_dump, so a dump carries the collections,
# their documents (owners, versions, times), their indexes (made by
# create_index, on ku9_docs.sort_key) and their row-level security.  After
# a restore with pg_restore (custom format) and with psql (plain format),
# everything must be the same and the collections must work: queries use the
# indexes, a unique index still refuses duplicates, users still see only
# their own documents, and a new _id still comes out.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $node = ku9_node('ddump', conf => ['log_statement = none']);

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
CREATE EXTENSION ku9 CASCADE;
SELECT ku9.create_collection('todos');
SELECT ku9.create_collection('posts', '{"access": "public_read", "events": false}');
SELECT ku9.create_index('todos', '{"due": 1}');
SELECT ku9.create_index('todos', '{"key": 1}', '{"unique": true}');
SELECT ku9.insert_many('todos', (SELECT jsonb_agg(jsonb_build_object('_id', g, 'key', 'k' || g, 'due', g % 50,
    'tags', jsonb_build_array('t' || (g % 3)))) FROM generate_series(1, 500) g));
SELECT ku9.insert_one('todos', '{"_id": "arr", "key": "karr", "due": [7, 70]}');
SELECT ku9.update_many('todos', '{"due": {"$lt": 5}}', '{"$inc": {"edits": 1}}');
SELECT ku9.insert_one('posts', '{"_id": 1, "title": "hello"}');
-- documents of two users
BEGIN;
SET LOCAL ROLE ku9_user;
SET LOCAL request.jwt.claims = '{"sub": "00000000-0000-4000-8000-00000000000a"}';
SELECT ku9.insert_one('todos', '{"_id": "a1", "key": "ka1", "due": 1}');
SET LOCAL request.jwt.claims = '{"sub": "00000000-0000-4000-8000-00000000000b"}';
SELECT ku9.insert_one('todos', '{"_id": "b1", "key": "kb1", "due": 2}');
COMMIT;
});

my %checks = (
	registry => q{SELECT string_agg(format('%s %s %s', name, access, events), ', ' ORDER BY name) FROM ku9.collections},
	documents => q{SELECT md5(string_agg(format('%s %s %s %s %s %s', _id, owner, version, created_at, updated_at, doc), '|' ORDER BY _id)) FROM ku9_docs.todos},
	posts => q{SELECT string_agg(doc::text, ',') FROM ku9_docs.posts},
	indexes => q{SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'ku9_docs'},
	policies => q{SELECT string_agg(format('%s %s %s %s %s', tablename, policyname, roles, cmd, qual), E'\n' ORDER BY tablename, policyname) FROM pg_policies WHERE schemaname = 'ku9_docs'},
	rls => q{SELECT string_agg(relname || ' ' || relrowsecurity, ', ' ORDER BY relname) FROM pg_class WHERE relnamespace = 'ku9_docs'::regnamespace AND relkind = 'r'},
	grants => q{SELECT string_agg(format('%s %s %s', table_name, grantee, privilege_type), ', ' ORDER BY table_name, grantee, privilege_type) FROM information_schema.role_table_grants WHERE table_schema = 'ku9_docs' AND grantee LIKE 'ku9%'},
	column_grants => q{SELECT string_agg(format('%s %s %s %s', table_name, column_name, grantee, privilege_type), ', ' ORDER BY table_name, column_name, grantee, privilege_type) FROM information_schema.column_privileges WHERE table_schema = 'ku9_docs' AND grantee = 'ku9_user' AND privilege_type = 'UPDATE'},
);

sub snapshot
{
	my ($db) = @_;
	my %s;
	$s{$_} = $node->safe_psql($db, $checks{$_}) for keys %checks;
	return \%s;
}

my $before = snapshot('src');
like($before->{indexes}, qr/todos\$due_1.*ku9_docs\.sort_key\(doc, 'due'::text, false\)/,
	'the source has the create_index B-tree');

my $dump_c = $node->basedir . '/docs.dump';
my $dump_p = $node->basedir . '/docs.sql';
$node->command_checks_all([ 'pg_dump', '-Fc', '-f', $dump_c, '-d', 'src' ],
	0, [qr/^$/], [qr/^$/], 'pg_dump -Fc of the database');
$node->command_checks_all([ 'pg_dump', '-Fp', '-f', $dump_p, '-d', 'src' ],
	0, [qr/^$/], [qr/^$/], 'pg_dump -Fp of the database');

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
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'dst_plain', '-f', $dump_p ],
	0, [qr//], [qr/^$/],
	'psql restores the plain dump into an empty database without an error');

for my $db ('dst_custom', 'dst_plain')
{
	my $after = snapshot($db);
	for my $check (sort keys %checks)
	{
		is($after->{$check}, $before->{$check}, "$db: $check round-trip");
	}

	$node->safe_psql($db, 'ANALYZE ku9_docs.todos');
	like(
		$node->safe_psql($db,
			q{SELECT string_agg(e, E'\n') FROM ku9.explain_find('todos', '{"due": {"$gt": 40}}', '{"sort": {"due": 1}, "limit": 3}') e}),
		qr/Index Scan using "todos\$due_1"/,
		"$db: a range with a sort reads the restored index");
	is( $node->safe_psql(
			$db,
			q{SELECT string_agg(d->>'_id', ' ') FROM ku9.find('todos', '{"due": {"$gt": 48}}', '{"sort": {"due": 1}, "limit": 3}') d}),
		'arr 49 99',
		"$db: and answers as before, array documents included");
	my ($ret, $out, $err) = $node->psql($db,
		q{SELECT ku9.insert_one('todos', '{"key": "k7"}')});
	like($err, qr/duplicate key value violates unique constraint "todos\$key_1"/,
		"$db: the unique index still refuses a duplicate");
	like($node->safe_psql($db, q{SELECT ku9.insert_one('todos', '{"key": "new"}')->>'inserted_id'}),
		qr/^[0-9a-f]{24}$/, "$db: a new _id comes out");
	is( $node->safe_psql(
			$db, q{
BEGIN;
SET LOCAL ROLE ku9_user;
SET LOCAL request.jwt.claims = '{"sub": "00000000-0000-4000-8000-00000000000a"}';
SELECT string_agg(d->>'_id', ' ') FROM ku9.find('todos') d;
SELECT ku9.update_many('todos', '{}', '{"$set": {"seen": true}}')->>'modified_count';
COMMIT;}),
		"a1\n1",
		"$db: a user sees and changes only their own document");
	is($node->safe_psql($db, q{SELECT count(*) FROM ku9_docs.todos WHERE doc ? 'seen'}),
		1, "$db: nobody else's document changed");
}

is_deeply(snapshot('src'), $before, 'the source database is unchanged');

done_testing();
