# Copyright (c) 2026, ku9 contributors
#
# RS256/ES256 signing keys: tokens signed with them, and the keys and
# sessions behind them, survive a restart; after ku9.rotate_signing_key()
# new tokens name the new key while tokens of the retired key verify until
# ku9.jwt_exp plus the leeway after the rotation, then die with "unknown
# key"; ku9.jwks() publishes exactly the keys that may have signed a valid
# token.  Forged tokens are refused: an HS256 token whose HMAC secret is the
# RSA public key (algorithm confusion), and an RS256 header naming the
# ES256 key.  libjwt is loaded at run time, never linked into ku9.so.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(decode_base64url);
use FindBin;
use lib "$FindBin::Bin/lib";
use Ku9Test;

my $secret = 'k9-tap-auth-keys-0123456789-abcdefghijk';
$secret .= 'X' x (40 - length($secret));
die 'the test secret must be 40 characters' unless length($secret) == 40;

my $db = 'auth';
my $node = ku9_node('auth_keys', conf => ["ku9.jwt_secret = '$secret'"]);
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION ku9 CASCADE');

my $json = JSON::PP->new->canonical;

# sql runs statements in one session of the test database and returns the
# output (psql -At: rows one a line, columns separated by |)
sub sql
{
	my ($q) = @_;
	return $node->safe_psql($db, $q);
}

# lit quotes a string as an SQL literal
sub lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# rejected checks that SQL fails with SQLSTATE $code and a message matching
# $message
sub rejected
{
	my ($q, $code, $message, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($ret, $out, $err) = $node->psql($db, $q,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	isnt($ret, 0, "$name: fails");
	like($err, qr/ERROR:  $code: $message/, "$name: $code $message")
	  or diag("stdout: $out");
}

# header and claims of a token, decoded here rather than by ku9
sub header_of { return decode_json(decode_base64url((split /\./, $_[0])[0])); }
sub claims_of { return decode_json(decode_base64url((split /\./, $_[0])[1])); }

# verify returns ku9.jwt_verify's claims of a token (canonical JSON text),
# after the SET statements in $settings
sub verify
{
	my ($token, $settings) = @_;
	my $out = sql(($settings // '') . 'SELECT ku9.jwt_verify(' . lit($token) . ')');
	return $json->encode(decode_json($out));
}

# authenticate runs ku9.authenticate in a transaction and returns
# "sub|uid()|role()" as the transaction sees them
sub authenticate
{
	my ($token) = @_;
	return sql(
		'BEGIN; SELECT ku9.authenticate(' . lit($token) . q{)->>'sub', ku9.uid(), ku9.role(); COMMIT;});
}

# jwks returns ku9.jwks() as a Perl structure, after $settings
sub jwks
{
	my ($settings) = @_;
	return decode_json(sql(($settings // '') . 'SELECT ku9.jwks()'));
}
sub jwks_kids { return [ map { $_->{kid} } @{ jwks(@_)->{keys} } ]; }

my $now = time;
my $claims = qq({"sub":"5a0e6c1e-3f7b-4d2c-9a8e-1b2c3d4e5f60","role":"ku9_user",)
  . qq("aud":"authenticated","iat":$now,"exp":) . ($now + 1800) . '}';

# sign returns ku9.jwt_sign of $claims with ku9.jwt_alg = $alg
sub sign
{
	my ($alg, $c) = @_;
	return sql("SET ku9.jwt_alg = '$alg'; SELECT ku9.jwt_sign(" . lit($c // $claims) . ')');
}

# --------------------------------------------------------------------------
# keys, tokens and a signed-in user
# --------------------------------------------------------------------------

is(sql('SELECT count(*) FROM ku9.signing_keys'), 0, 'no signing keys at first');
is_deeply(jwks(), { keys => [] }, 'ku9.jwks() has no keys at first');
rejected("SET ku9.jwt_alg = 'RS256'; SELECT ku9.jwt_sign('{\"exp\": 1}')",
	'55000', 'there is no RS256 signing key', 'RS256 signing without a key');

my $rs1 = sql(q{SELECT ku9.rotate_signing_key('RS256')});
my $es1 = sql(q{SELECT ku9.rotate_signing_key('ES256')});
like($rs1, qr/^[0-9a-f]{32}$/, 'rotate_signing_key(RS256) returns a kid');
like($es1, qr/^[0-9a-f]{32}$/, 'rotate_signing_key(ES256) returns a kid');
isnt($rs1, $es1, 'the two keys have different kids');
is( sql(q{SELECT string_agg(kid || ':' || alg || ':' || (retired_at IS NULL), ',' ORDER BY alg)
		 FROM ku9.signing_keys}),
	"$es1:ES256:true,$rs1:RS256:true",
	'ku9.signing_keys has both keys, current');

my $jwks0 = jwks();
is_deeply([ sort @{ jwks_kids() } ], [ sort $rs1, $es1 ], 'ku9.jwks() lists both kids');
my ($rsa_jwk) = grep { $_->{kid} eq $rs1 } @{ $jwks0->{keys} };
my ($ec_jwk) = grep { $_->{kid} eq $es1 } @{ $jwks0->{keys} };
is_deeply(
	[ map { $_ // 'missing' } @$rsa_jwk{qw(kty alg use e)} ],
	[ 'RSA', 'RS256', 'sig', 'AQAB' ],
	'the RS256 JWK has kty, alg, use and e');
is(length(decode_base64url($rsa_jwk->{n})), 256, 'the RS256 JWK has a 2048-bit modulus');
is_deeply(
	[ map { $_ // 'missing' } @$ec_jwk{qw(kty alg use crv)} ],
	[ 'EC', 'ES256', 'sig', 'P-256' ],
	'the ES256 JWK has kty, alg, use and crv');
is(length(decode_base64url($ec_jwk->{x})) . ',' . length(decode_base64url($ec_jwk->{y})),
	'32,32', 'the ES256 JWK has 32-byte x and y');
ok(!grep({ exists $_->{d} || exists $_->{p} || exists $_->{q} } @{ $jwks0->{keys} }),
	'ku9.jwks() shows no private parameters');

# the JWK is the public key stored with it: compare with OpenSSL's reading
# of the public PEM
{
	my $pem = sql("SELECT public_key FROM ku9.signing_keys WHERE kid = '$rs1'");
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'openssl', 'pkey', '-pubin', '-noout', '-text' ],
		'<', \"$pem\n", '>', \$out, '2>', \$err)
	  or die "openssl pkey failed: $err";
	my ($hex) = $out =~ /Modulus:\s*\n((?:\s+[0-9a-f:]+\n)+)/;
	$hex =~ s/[\s:]//g;
	$hex =~ s/^00//;
	is($hex, unpack('H*', decode_base64url($rsa_jwk->{n})),
		'the JWK modulus is the public key PEM\'s');
}

my $t_rs = sign('RS256');
my $t_es = sign('ES256');
my $t_hs = sign('HS256');
is_deeply(header_of($t_rs), { alg => 'RS256', kid => $rs1, typ => 'JWT' },
	'an RS256 token names its key');
is_deeply(header_of($t_es), { alg => 'ES256', kid => $es1, typ => 'JWT' },
	'an ES256 token names its key');
is_deeply(header_of($t_hs), { alg => 'HS256', typ => 'JWT' },
	'an HS256 token has no kid');
is(length((split /\./, $t_es)[2]), 86,
	'an ES256 signature is 64 raw bytes (R||S, RFC 7518), not DER');
my $want = $json->encode(decode_json($claims));
is(verify($t_rs), $want, 'the RS256 token verifies');
is(verify($t_es), $want, 'the ES256 token verifies');
is(verify($t_hs), $want, 'the HS256 token verifies');
is(verify($t_rs, "SET ku9.jwt_alg = 'ES256';"),
	$want, 'the RS256 token verifies whatever ku9.jwt_alg says');

# a user signed in with RS256 tokens
my $email = 'keys-user@example.com';
my $uid = sql(
	"SET ku9.bcrypt_cost = 4; SELECT ku9.sign_up('$email', 'correct horse battery')");
like($uid, qr/^[0-9a-f-]{36}$/, 'sign_up returns the user id');
my $session = decode_json(
	sql(q{SET ku9.jwt_alg = 'RS256'; SELECT ku9.sign_in('}
		  . $email . q{', 'correct horse battery')}));
my $t_login = $session->{access_token};
my $refresh = $session->{refresh_token};
is_deeply(header_of($t_login), { alg => 'RS256', kid => $rs1, typ => 'JWT' },
	'sign_in with ku9.jwt_alg = RS256 issues an RS256 token with the kid');
is(claims_of($t_login)->{sub}, $uid, 'the access token names the user');
is(authenticate($t_login), "$uid|$uid|ku9_user",
	'authenticate accepts the RS256 access token');

# libjwt is loaded at run time into the backend that needs it; SQL's own
# json_object() still works beside jansson's
is( sql(q{SET ku9.jwt_alg = 'RS256'; SELECT ku9.jwt_sign('{"exp": 1}') IS NOT NULL;
		  SELECT count(*) > 0 FROM pg_catalog.regexp_split_to_table(
		      pg_catalog.pg_read_file('/proc/self/maps'), E'\n') l
		  WHERE l ~ 'libjwt';
		  SELECT json_object('{a,1}')::text}),
	"t\nt\n{\"a\" : \"1\"}",
	'libjwt is loaded at run time, and json_object() still works after it');

# --------------------------------------------------------------------------
# restart: keys, tokens and sessions survive
# --------------------------------------------------------------------------

$node->restart;

is(verify($t_rs), $want, 'after a restart: the RS256 token verifies');
is(verify($t_es), $want, 'after a restart: the ES256 token verifies');
is(verify($t_hs), $want, 'after a restart: the HS256 token verifies');
is(authenticate($t_login), "$uid|$uid|ku9_user",
	'after a restart: authenticate accepts the RS256 access token');
is($json->encode(jwks()), $json->encode($jwks0),
	'after a restart: ku9.jwks() has the same kids and public parameters');
is_deeply(header_of(sign('RS256')),
	{ alg => 'RS256', kid => $rs1, typ => 'JWT' },
	'after a restart: new RS256 tokens are signed with the same key');

# --------------------------------------------------------------------------
# rotation
# --------------------------------------------------------------------------

my $rs2 = sql(q{SELECT ku9.rotate_signing_key('RS256')});
like($rs2, qr/^[0-9a-f]{32}$/, 'a second RS256 rotation returns a kid');
isnt($rs2, $rs1, 'the new key has a new kid');
is( sql(q{SELECT string_agg(kid || ':' || (retired_at IS NULL), ',' ORDER BY created_at)
		 FROM ku9.signing_keys}),
	"$rs1:false,$es1:true,$rs2:true",
	'the rotation retired the old RS256 key only');
is_deeply(jwks_kids(), [ $rs2, $es1, $rs1 ],
	'ku9.jwks() lists the new key first, and still the retired one');
my ($rsa_jwk_after) = grep { $_->{kid} eq $rs1 } @{ jwks()->{keys} };
is_deeply($rsa_jwk_after, $rsa_jwk, 'the retired key is published unchanged');

my $t_rs2 = sign('RS256');
is_deeply(header_of($t_rs2), { alg => 'RS256', kid => $rs2, typ => 'JWT' },
	'new RS256 tokens carry the new kid');
is(verify($t_rs2), $want, 'a token of the new key verifies');
is(header_of(sign('ES256'))->{kid}, $es1, 'ES256 tokens still use the ES256 key');
is(verify($t_rs), $want, 'a token signed before the rotation still verifies');
is(authenticate($t_login), "$uid|$uid|ku9_user",
	'an access token signed before the rotation is still accepted by authenticate');

my $refreshed = decode_json(
	sql(q{SET ku9.jwt_alg = 'RS256'; SELECT ku9.refresh_session(} . lit($refresh) . ')'));
is(header_of($refreshed->{access_token})->{kid}, $rs2,
	'refresh_session issues a token of the new key');
is(authenticate($refreshed->{access_token}), "$uid|$uid|ku9_user",
	'the refreshed access token is accepted');

# the retired key verifies for ku9.jwt_exp + ku9.jwt_leeway after its
# retirement, the longest a token it signed can live
my $short = 'SET ku9.jwt_exp = 30;';    # + the default 10 s of leeway
sql("UPDATE ku9.signing_keys SET retired_at = now() - interval '30 seconds' WHERE kid = '$rs1'");
is(verify($t_rs, $short), $want,
	'retired 30 s ago, within jwt_exp (30 s) + leeway: the old token verifies');
ok(grep({ $_ eq $rs1 } @{ jwks_kids($short) }),
	'retired 30 s ago, within jwt_exp + leeway: ku9.jwks() lists the old key');
sql("UPDATE ku9.signing_keys SET retired_at = now() - interval '50 seconds' WHERE kid = '$rs1'");
rejected("$short SELECT ku9.jwt_verify(" . lit($t_rs) . ')',
	'28000', 'invalid token: unknown key',
	'retired 50 s ago, beyond jwt_exp (30 s) + leeway: the old token');
is_deeply(jwks_kids($short), [ $rs2, $es1 ],
	'retired 50 s ago, beyond jwt_exp + leeway: ku9.jwks() leaves the old key out');
is(verify($t_rs), $want,
	'retired 50 s ago, within the default jwt_exp (1 h): the old token verifies');

# two hours on: beyond the default jwt_exp + leeway
sql("UPDATE ku9.signing_keys SET retired_at = now() - interval '2 hours' WHERE kid = '$rs1'");
rejected('SELECT ku9.jwt_verify(' . lit($t_rs) . ')',
	'28000', 'invalid token: unknown key',
	'retired 2 h ago: a token of the old key');
rejected('BEGIN; SELECT ku9.authenticate(' . lit($t_login) . ')',
	'28000', 'invalid token: unknown key',
	'retired 2 h ago: authenticate with the old access token');
is_deeply(jwks_kids(), [ $rs2, $es1 ],
	'retired 2 h ago: ku9.jwks() leaves the old key out');
is(verify($t_rs2), $want, 'a token of the new key still verifies');
is(verify($t_es), $want, 'a token of the ES256 key still verifies');
is(authenticate($refreshed->{access_token}), "$uid|$uid|ku9_user",
	'the access token of the new key is still accepted by authenticate');
is_deeply(header_of(sign('RS256'))->{kid}, $rs2, 'new tokens still carry the new kid');

# --------------------------------------------------------------------------
# forged tokens
# --------------------------------------------------------------------------

# pg_temp.b64url: base64url without padding; pg_temp.forge_hs256 signs
# header.claims with pgcrypto's HMAC-SHA256 under a key of our choosing
my $forge_fns = q{
CREATE FUNCTION pg_temp.b64url(bytea) RETURNS text LANGUAGE sql
    AS $$ SELECT rtrim(translate(encode($1, 'base64'), E'+/\n', '-_'), '=') $$;
CREATE FUNCTION pg_temp.forge_hs256(header text, claims text, key text) RETURNS text LANGUAGE sql
    AS $$ SELECT s || '.' || pg_temp.b64url(hmac(s, key, 'sha256'))
          FROM (SELECT pg_temp.b64url(convert_to(header, 'UTF8')) || '.'
                       || pg_temp.b64url(convert_to(claims, 'UTF8')) AS s) p $$;
};

# forge returns a token built in SQL: HS256 over $header and the test
# claims, with the HMAC key given by the SQL expression $key
sub forge
{
	my ($header, $key) = @_;
	return sql("$forge_fns SELECT pg_temp.forge_hs256(" . lit($header) . ', '
		  . lit($claims) . ", $key)");
}

my $pem_of = "(SELECT public_key FROM ku9.signing_keys WHERE kid = '$rs2')";

# the forging itself is right: with the real secret the token verifies
is(verify(forge('{"alg":"HS256","typ":"JWT"}', lit($secret))), $want,
	'control: an HS256 token built in SQL with the real secret verifies');

for my $case (
	[ 'the RSA public key PEM', '{"alg":"HS256","typ":"JWT"}', $pem_of ],
	[ 'the PEM without its last newline', '{"alg":"HS256","typ":"JWT"}',
		"rtrim($pem_of, E'\\n')" ],
	[ 'the PEM, naming the RSA kid', qq({"alg":"HS256","kid":"$rs2","typ":"JWT"}), $pem_of ],
	[ 'the PEM, with "alg" given twice',
		qq({"alg":"RS256","kid":"$rs2","alg":"HS256","typ":"JWT"}), $pem_of ],
	[ 'the PEM, under an RS256 header', qq({"alg":"RS256","kid":"$rs2","typ":"JWT"}), $pem_of ],
	[ 'the JWK modulus', '{"alg":"HS256","typ":"JWT"}', lit($rsa_jwk->{n}) ])
{
	my ($what, $header, $key) = @$case;
	my $forged = forge($header, $key);
	rejected('SELECT ku9.jwt_verify(' . lit($forged) . ')',
		'28000', 'invalid token: bad signature',
		"algorithm confusion: HMAC-SHA256 keyed with $what");
}

# an RS256 header with the kid of the ES256 key, over a real RS256 signature
my (undef, $p_rs2, $s_rs2) = split /\./, $t_rs2;
my $b64 = sub { my $s = MIME::Base64::encode_base64url($_[0]); return $s; };
my $same = $b64->(qq({"alg":"RS256","kid":"$rs2","typ":"JWT"})) . ".$p_rs2.$s_rs2";
is($same, $t_rs2, 'control: the header rebuilt here is libjwt\'s, byte for byte');
rejected(
	'SELECT ku9.jwt_verify('
	  . lit($b64->(qq({"alg":"RS256","kid":"$es1","typ":"JWT"})) . ".$p_rs2.$s_rs2")
	  . ')',
	'28000',
	'invalid token: algorithm "RS256" does not match the key',
	'an RS256 header naming the ES256 key');
my (undef, $p_es, $s_es) = split /\./, $t_es;
rejected(
	'SELECT ku9.jwt_verify('
	  . lit($b64->(qq({"alg":"ES256","kid":"$rs2","typ":"JWT"})) . ".$p_es.$s_es")
	  . ')',
	'28000',
	'invalid token: algorithm "ES256" does not match the key',
	'an ES256 header naming the RS256 key');
rejected(
	'SELECT ku9.jwt_verify('
	  . lit($b64->(qq({"alg":"RS256","kid":"$rs1","typ":"JWT"})) . ".$p_rs2.$s_rs2")
	  . ')',
	'28000', 'invalid token: unknown key',
	'an RS256 header naming the expired key');
rejected(
	'SELECT ku9.jwt_verify('
	  . lit($b64->(qq({"alg":"RS256","kid":"no-such-key","typ":"JWT"})) . ".$p_rs2.$s_rs2")
	  . ')',
	'28000', 'invalid token: unknown key',
	'an RS256 header naming no key');
rejected(
	'SELECT ku9.jwt_verify('
	  . lit($b64->(q({"alg":"RS256","typ":"JWT"})) . ".$p_rs2.$s_rs2")
	  . ')',
	'28000', 'invalid token: no key id',
	'an RS256 header without kid');

# claims swapped under a valid RS256 signature
my $other_claims = $claims;
$other_claims =~ s/ku9_user/ku9_service/;
rejected(
	'SELECT ku9.jwt_verify('
	  . lit((split /\./, $t_rs2)[0] . '.' . $b64->($other_claims) . ".$s_rs2")
	  . ')',
	'28000', 'invalid token: bad signature',
	'RS256: claims changed under the signature');
rejected(
	'SELECT ku9.jwt_verify('
	  . lit((split /\./, $t_es)[0] . '.' . $b64->($other_claims) . ".$s_es")
	  . ')',
	'28000', 'invalid token: bad signature',
	'ES256: claims changed under the signature');

# an RS256 token whose claims fail the checks libjwt does not make
rejected(
	'SELECT ku9.jwt_verify('
	  . lit(sign('RS256', qq({"sub":"x","aud":"authenticated","exp":) . ($now - 3600) . '}'))
	  . ')',
	'28000', 'invalid token: expired',
	'an expired RS256 token');
rejected(
	'SELECT ku9.jwt_verify('
	  . lit(sign('ES256', qq({"sub":"x","aud":"other","exp":) . ($now + 600) . '}'))
	  . ')',
	'28000', 'invalid token: wrong audience',
	'an ES256 token for another audience');

# --------------------------------------------------------------------------
# no crash, no libjwt in ku9.so
# --------------------------------------------------------------------------

my $pkglibdir = $node->config_data('--pkglibdir');
my ($ldd, $ldd_err) = ('', '');
IPC::Run::run([ 'ldd', "$pkglibdir/ku9.so" ], '>', \$ldd, '2>', \$ldd_err)
  or die "ldd failed: $ldd_err";
like($ldd, qr/libcrypto/, 'ldd reads ku9.so (it links libcrypto)');
unlike($ldd, qr/libjwt|libjansson/, 'libjwt and jansson are not linked into ku9.so');

$node->stop;
log_has_no_crash($node, 'no backend crashed');

done_testing();
