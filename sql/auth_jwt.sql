-- auth: ku9.jwt_sign and ku9.jwt_verify (HS256); every rejection, with the
-- bad tokens built here by an independent signer on pgcrypto's hmac()
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- base64url without padding (RFC 4648 section 5) of bytes, and of text
CREATE FUNCTION pg_temp.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT translate(rtrim(replace(encode(b, 'base64'), E'\n', ''), '='), '+/', '-_')
$f$;
-- and back (adding the padding decode() wants)
CREATE FUNCTION pg_temp.unb64url(s text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT decode(translate(s, '-_', '+/') || repeat('=', (4 - length(s) % 4) % 4), 'base64')
$f$;
CREATE FUNCTION pg_temp.b64url_text(t text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT pg_temp.b64url(convert_to(t, 'UTF8'))
$f$;
-- the HS256 signature of a signing input ("header.payload"), base64url
CREATE FUNCTION pg_temp.hs256(signing_input text, secret text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT pg_temp.b64url(hmac(convert_to(signing_input, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256'))
$f$;
-- "header.payload" signed with ku9.jwt_secret: any segments, any bytes
CREATE FUNCTION pg_temp.sign_segments(header text, payload text) RETURNS text LANGUAGE sql STABLE STRICT AS $f$
    SELECT header || '.' || payload || '.' || pg_temp.hs256(header || '.' || payload, current_setting('ku9.jwt_secret'))
$f$;
CREATE FUNCTION pg_temp.sign_bytes(header bytea, claims bytea) RETURNS text LANGUAGE sql STABLE STRICT AS $f$
    SELECT pg_temp.sign_segments(pg_temp.b64url(header), pg_temp.b64url(claims))
$f$;
CREATE FUNCTION pg_temp.sign(header text, claims text) RETURNS text LANGUAGE sql STABLE STRICT AS $f$
    SELECT pg_temp.sign_bytes(convert_to(header, 'UTF8'), convert_to(claims, 'UTF8'))
$f$;
-- the header ku9 writes
CREATE FUNCTION pg_temp.hdr() RETURNS text LANGUAGE sql IMMUTABLE AS $f$
    SELECT '{"alg":"HS256","typ":"JWT"}'
$f$;
-- now + s seconds as a NumericDate
CREATE FUNCTION pg_temp.at(s int) RETURNS bigint LANGUAGE sql VOLATILE AS $f$
    SELECT round(extract(epoch FROM clock_timestamp()))::bigint + s
$f$;
-- claims valid for ten minutes, with extra merged in
CREATE FUNCTION pg_temp.good(extra jsonb DEFAULT '{}') RETURNS text LANGUAGE sql VOLATILE AS $f$
    SELECT (jsonb_build_object('sub', 'u1', 'role', 'ku9_user', 'aud', 'authenticated', 'exp', pg_temp.at(600)) || extra)::text
$f$;
-- the last base64url character moved up by one: the same bytes, but with
-- unused low bits set (only for a segment whose unused bits are zero)
CREATE FUNCTION pg_temp.bump_last(s text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT left(s, -1) || substr(a, strpos(a, right(s, 1)) + 1, 1)
    FROM (SELECT 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'::text AS a) x
$f$;
-- a token's segment n
CREATE FUNCTION pg_temp.part(tok text, n int) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $f$
    SELECT split_part(tok, '.', n)
$f$;
-- verify: the claims without their times, or 'SQLSTATE: message (detail)'
CREATE FUNCTION pg_temp.v(tok text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    c jsonb;
    d text;
BEGIN
    c := ku9.jwt_verify(tok);
    RETURN 'accepted: ' || (c - '{exp,nbf,iat}'::text[])::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(nullif(' (' || d || ')', ' ()'), '');
END
$f$;

SET ku9.jwt_secret = 'ku9-regress-secret-0123456789abcdef';
SET ku9.jwt_leeway = 30;
SET ku9.jwt_aud = 'authenticated';
SET ku9.jwt_iss = '';
SET ku9.jwt_alg = 'HS256';

--
-- the round trip, and the cross-check with the pgcrypto signer
--
SELECT pg_temp.v(ku9.jwt_sign(pg_temp.good()::jsonb));
-- ku9's tokens are exactly what the pgcrypto signer makes of the same bytes
-- (header {"alg":"HS256","typ":"JWT"}, claims as jsonb prints them)
SELECT count(*) AS tokens,
       count(*) FILTER (WHERE t = pg_temp.sign(pg_temp.hdr(), c::text)) AS same_as_pgcrypto,
       count(*) FILTER (WHERE pg_temp.part(t, 3) = pg_temp.hs256(pg_temp.part(t, 1) || '.' || pg_temp.part(t, 2),
                                                                 current_setting('ku9.jwt_secret'))) AS same_signature,
       count(*) FILTER (WHERE convert_from(pg_temp.unb64url(pg_temp.part(t, 1)), 'UTF8') = pg_temp.hdr()) AS ku9_header,
       count(*) FILTER (WHERE convert_from(pg_temp.unb64url(pg_temp.part(t, 2)), 'UTF8') = c::text) AS claims_as_jsonb_prints,
       count(*) FILTER (WHERE ku9.jwt_verify(t) = c) AS ku9_verified,
       count(*) FILTER (WHERE ku9.jwt_verify(pg_temp.sign('{"alg":"HS256","typ":"JWT","kid":"k1"}', c::text)) = c) AS pgcrypto_verified
FROM (SELECT c, ku9.jwt_sign(c) AS t
      FROM (SELECT pg_temp.good(jsonb_build_object('sub', 'user ' || i, 'n', i, 'name', 'Zoë "Z" \ Ω',
                                                   'pad', repeat('x', i % 7))) :: jsonb AS c
            FROM generate_series(1, 200) i) s) s;
-- and the pgcrypto signer's tokens verify in ku9: the usual header (ku9's
-- fast path), and other headers that name HS256 (parsed)
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"typ":"JWT","alg":"HS256"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS256"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign(' { "alg" : "HS256", "kid": "k1" } ', pg_temp.good('{"email": "ada@example.com"}')));
-- signing is deterministic
SELECT ku9.jwt_sign('{"sub": "u1", "exp": 2000000000}') = ku9.jwt_sign('{"exp": 2000000000, "sub": "u1"}') AS deterministic;

--
-- algorithms
--
SELECT pg_temp.v(pg_temp.sign('{"alg":"none","typ":"JWT"}', pg_temp.good()));
-- alg none as usually sent: an empty signature
SELECT pg_temp.v(pg_temp.b64url_text('{"alg":"none","typ":"JWT"}') || '.' || pg_temp.b64url_text(pg_temp.good()) || '.');
SELECT pg_temp.v(pg_temp.b64url_text('{"alg":"none"}') || '.' || pg_temp.b64url_text(pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"None"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":""}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS512","typ":"JWT"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS384","typ":"JWT"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"PS256","typ":"JWT"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"hs256","typ":"JWT"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS256 ","typ":"JWT"}', pg_temp.good()));
-- the algorithm is checked before the signature
SELECT pg_temp.v(pg_temp.b64url_text('{"alg":"HS512"}') || '.' || pg_temp.b64url_text(pg_temp.good()) || '.' || repeat('A', 86));
-- RS256 and ES256 tokens name one of ku9's keys (ku9.signing_keys), and an
-- HMAC never verifies them: not with ku9.jwt_secret, not with the public
-- key as the secret (the key confusion attack)
SELECT pg_temp.v(pg_temp.sign('{"alg":"RS256","typ":"JWT"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"ES256","kid":42}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"RS256","kid":"no-such-key"}', pg_temp.good()));
SELECT ku9.rotate_signing_key('RS256') AS rsa_kid \gset
SELECT public_key AS rsa_pem FROM ku9.signing_keys WHERE kid = :'rsa_kid' \gset
CREATE FUNCTION pg_temp.v_kid(tok text) RETURNS text LANGUAGE sql AS $f$
    SELECT replace(pg_temp.v(tok), current_setting('regress.rsa_kid'), '<kid>')
$f$;
SET regress.rsa_kid = :'rsa_kid';
SELECT pg_temp.v_kid(pg_temp.sign(format('{"alg":"RS256","kid":"%s"}', :'rsa_kid'), pg_temp.good()));
SELECT pg_temp.v_kid(h || '.' || p || '.' || pg_temp.hs256(h || '.' || p, :'rsa_pem'))
FROM (SELECT pg_temp.b64url_text(format('{"alg":"RS256","kid":"%s"}', :'rsa_kid')) AS h, pg_temp.b64url_text(pg_temp.good()) AS p) s;
SELECT pg_temp.v_kid(h || '.' || p || '.' || pg_temp.hs256(h || '.' || p, :'rsa_pem'))
FROM (SELECT pg_temp.b64url_text(format('{"alg":"HS256","kid":"%s"}', :'rsa_kid')) AS h, pg_temp.b64url_text(pg_temp.good()) AS p) s;
SELECT pg_temp.v_kid(pg_temp.sign(format('{"alg":"ES256","kid":"%s"}', :'rsa_kid'), pg_temp.good()));
-- (HS256 ignores kid, and the key itself signs good RS256 tokens)
SELECT pg_temp.v_kid(pg_temp.sign(format('{"alg":"HS256","kid":"%s"}', :'rsa_kid'), pg_temp.good()));
SET ku9.jwt_alg = 'RS256';
SELECT pg_temp.v_kid(ku9.jwt_sign(pg_temp.good()::jsonb));
SET ku9.jwt_alg = 'HS256';
RESET regress.rsa_kid;

--
-- malformed headers
--
SELECT pg_temp.v(pg_temp.sign('{"typ":"JWT"}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":null}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":256}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":["HS256"]}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"header":{"alg":"HS256"}}', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('not json', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS256"', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('["HS256"]', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('"HS256"', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('null', pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign('', pg_temp.good()));
-- a NUL after the object, and inside it (raw bytes, not the \u0000 escape)
SELECT pg_temp.v(pg_temp.sign_bytes('\x7b22616c67223a224853323536227d00'::bytea, convert_to(pg_temp.good(), 'UTF8')));
SELECT pg_temp.v(pg_temp.sign_bytes('\x7b22616c67223a22485300323536227d'::bytea, convert_to(pg_temp.good(), 'UTF8')));
SELECT convert_from('\x7b22616c67223a224853323536227d'::bytea, 'UTF8') AS those_bytes_without_the_nul;
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS256","x":"\u0000"}', pg_temp.good()));
-- not UTF-8, in alg (checked before the signature) and elsewhere
SELECT pg_temp.v(pg_temp.b64url(convert_to('{"alg":"', 'UTF8') || '\xff'::bytea || convert_to('"}', 'UTF8')) || '.e30.AAAA');
SELECT pg_temp.v(pg_temp.sign_bytes(convert_to('{"alg":"HS256","kid":"', 'UTF8') || '\xff'::bytea || convert_to('"}', 'UTF8'),
                                    convert_to(pg_temp.good(), 'UTF8')));
SELECT pg_temp.v(pg_temp.sign_bytes(convert_to('{"alg":"RS256","kid":"', 'UTF8') || '\xff'::bytea || convert_to('"}', 'UTF8'),
                                    convert_to(pg_temp.good(), 'UTF8')));
-- deeply nested
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS256","x":' || repeat('[', 5000) || repeat(']', 5000) || '}', pg_temp.good()));

--
-- base64url
--
-- characters outside the alphabet: standard base64's + / and = padding,
-- and others, in each segment
SELECT pg_temp.v(replace(pg_temp.sign(pg_temp.hdr(), pg_temp.good()), 'eyJ', 'ey+'));
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text('{"alg":"HS256"} ') || '==', pg_temp.b64url_text(pg_temp.good())));
SELECT pg_temp.v(pg_temp.sign_segments('*' || pg_temp.b64url_text('{"alg":"HS256"}'), pg_temp.b64url_text(pg_temp.good())));
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), pg_temp.b64url_text(pg_temp.good() || ' ') || '='));
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), pg_temp.b64url_text(pg_temp.good()) || '/'));
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), ' ' || pg_temp.b64url_text(pg_temp.good())));
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), replace(encode(convert_to(pg_temp.good(), 'UTF8'), 'base64'), E'\n', '')));
SELECT pg_temp.v(t || '=') FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
SELECT pg_temp.v(t || E'\n') FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
SELECT pg_temp.v(' ' || t) FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
SELECT pg_temp.v(left(t, -1) || '+') FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
-- a segment of 4n+1 characters is no base64
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text('{"alg":"HS256"}') || 'A', pg_temp.b64url_text(pg_temp.good())));
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), b || 'A'))
FROM (SELECT pg_temp.b64url_text(pg_temp.good(jsonb_build_object('pad', repeat('x', i)))) AS b FROM generate_series(0, 2) i) s
WHERE length(b) % 4 = 0;
-- non-canonical: unused trailing bits set (the same bytes would decode)
SELECT length(b) % 4 AS rest, pg_temp.v(pg_temp.sign_segments(b, pg_temp.b64url_text(pg_temp.good()))) AS canonical,
       pg_temp.v(pg_temp.sign_segments(pg_temp.bump_last(b), pg_temp.b64url_text(pg_temp.good()))) AS trailing_bits
FROM (SELECT pg_temp.b64url_text('{"alg":"HS256"} ') AS b) s;
SELECT length(b) % 4 AS rest, pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), b)) AS canonical,
       pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), pg_temp.bump_last(b))) AS trailing_bits
FROM (SELECT pg_temp.b64url_text(pg_temp.good(jsonb_build_object('pad', repeat('x', i)))) AS b FROM generate_series(0, 2) i) s
WHERE length(b) % 4 IN (2, 3) ORDER BY 1;
-- the signature (43 characters, two unused bits) too: no second spelling
SELECT pg_temp.v(left(t, -1) || pg_temp.bump_last(right(t, 1))) FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;

--
-- segments
--
SELECT pg_temp.v(pg_temp.b64url_text(pg_temp.hdr()) || '.' || pg_temp.b64url_text(pg_temp.good()));
SELECT pg_temp.v(pg_temp.part(t, 1) || '.' || pg_temp.part(t, 3)) FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
SELECT pg_temp.v(t || '.') FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
SELECT pg_temp.v(t || '.' || pg_temp.part(t, 3)) FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
SELECT pg_temp.v(pg_temp.part(t, 1) || '..' || pg_temp.part(t, 2) || '.' || pg_temp.part(t, 3)) FROM (SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t) s;
SELECT pg_temp.v(pg_temp.b64url_text(pg_temp.good()));
SELECT pg_temp.v('');
SELECT pg_temp.v('.');
SELECT pg_temp.v('..');
SELECT pg_temp.v('...');
-- empty parts
SELECT pg_temp.v(pg_temp.sign_segments('', pg_temp.b64url_text(pg_temp.good())));
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text(pg_temp.hdr()), ''));
SELECT pg_temp.v(pg_temp.b64url_text(pg_temp.hdr()) || '.' || pg_temp.b64url_text(pg_temp.good()) || '.');
SELECT pg_temp.v(pg_temp.b64url_text(pg_temp.hdr()) || '..');

--
-- claims
--
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), '[' || pg_temp.good() || ']'));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), '"' || pg_temp.good() || '"'));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), '2000000000'));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), 'null'));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), 'not json'));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), left(pg_temp.good(), -1)));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good() || ' x'));
-- a NUL after the object, and inside a string (raw bytes)
SELECT pg_temp.v(pg_temp.sign_bytes(convert_to(pg_temp.hdr(), 'UTF8'), convert_to(pg_temp.good(), 'UTF8') || '\x00'::bytea));
SELECT pg_temp.v(pg_temp.sign_bytes(convert_to(pg_temp.hdr(), 'UTF8'),
                                    convert_to(pg_temp.good(), 'UTF8') || '\x00207b2261646d696e223a747275657d'::bytea));
SELECT pg_temp.v(pg_temp.sign_bytes(convert_to(pg_temp.hdr(), 'UTF8'),
                                    convert_to(left(pg_temp.good(), -1) || ', "x": "a', 'UTF8') || '\x00'::bytea || convert_to('b"}', 'UTF8')));
-- the \u0000 escape
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), left(pg_temp.good(), -1) || ', "x": "a\u0000b"}'));
-- not UTF-8 (JSON is UTF-8, RFC 8259): a byte that never occurs, an
-- overlong '/', a UTF-16 surrogate; PostgreSQL's text must never hold these
SELECT encode(b, 'hex') AS bytes, pg_temp.v(pg_temp.sign_bytes(convert_to(pg_temp.hdr(), 'UTF8'),
                        convert_to(left(pg_temp.good(), -1) || ', "x": "', 'UTF8') || b || convert_to('"}', 'UTF8')))
FROM unnest('{"\\xff","\\xc0af","\\xeda080"}'::bytea[]) b;
-- duplicate keys: the last one counts (and it is signed)
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), left(pg_temp.good(), -1) || ', "exp": "later"}'));

--
-- size: at most 16384 bytes
--
CREATE FUNCTION pg_temp.sized(len int) RETURNS text LANGUAGE sql VOLATILE AS $f$
    -- a token of len characters: header 36, signature 43, two dots, and r
    -- characters of claims, which encode r / 4 * 3 + (r % 4 - 1) bytes
    SELECT pg_temp.sign(pg_temp.hdr(), format('{"aud":"authenticated","exp":%s,"pad":"%s"}', e,
                        repeat('x', r / 4 * 3 + greatest(r % 4 - 1, 0) - length(format('{"aud":"authenticated","exp":%s,"pad":""}', e)))))
    FROM (SELECT pg_temp.at(600) AS e, len - 36 - 1 - 1 - 43 AS r) s
$f$;
SELECT length(t) AS length, CASE WHEN r LIKE 'accepted: %' THEN 'accepted' ELSE r END AS v
FROM (SELECT t, pg_temp.v(t) AS r FROM (SELECT pg_temp.sized(n) AS t FROM unnest('{16383,16384,16385,16387}'::int[]) n) s) s;
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('pad', repeat('x', 1000000)))));
SELECT pg_temp.v(repeat('x', 16385));
-- nor does jwt_sign make them
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign(jsonb_build_object('pad', repeat('x', 20000)))$$);

-- a critical header extension ku9 does not know is refused (RFC 7515 4.1.11)
SELECT pg_temp.v(pg_temp.sign('{"alg":"HS256","typ":"JWT","crit":["exp"]}', pg_temp.good()));
-- an unaccepted algorithm is quoted only in part
SELECT pg_temp.v(pg_temp.sign('{"alg":"' || repeat('A', 5000) || '"}', pg_temp.good()));
-- an exp too large for a float is not "never"
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), '{"aud":"authenticated","exp":1e400}'));

--
-- signatures
--
CREATE TEMP TABLE good AS SELECT ku9.jwt_sign(pg_temp.good()::jsonb) AS t;
SELECT pg_temp.v(t) FROM good;
-- one character of the signature changed, at the start, middle and end
SELECT i, pg_temp.v(left(t, -43) || overlay(s PLACING CASE substr(s, i, 1) WHEN 'A' THEN 'B' ELSE 'A' END FROM i FOR 1))
FROM good, pg_temp.part(t, 3) s, unnest('{1,22,42,43}'::int[]) i ORDER BY i;
-- one character of the claims or the header changed
SELECT pg_temp.v(pg_temp.part(t, 1) || '.' || overlay(pg_temp.part(t, 2) PLACING
                 CASE substr(pg_temp.part(t, 2), 10, 1) WHEN 'A' THEN 'B' ELSE 'A' END FROM 10 FOR 1) || '.' || pg_temp.part(t, 3))
FROM good;
SELECT pg_temp.v('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ8' || substr(t, 37)) FROM good;
-- other claims with this signature: the role raised
SELECT pg_temp.v(pg_temp.part(t, 1) || '.' ||
                 pg_temp.b64url_text(replace(convert_from(pg_temp.unb64url(pg_temp.part(t, 2)), 'UTF8'), 'ku9_user', 'ku9_service')) ||
                 '.' || pg_temp.part(t, 3))
FROM good;
-- signatures of the wrong length
SELECT pg_temp.v(left(t, -1)) FROM good;
SELECT pg_temp.v(t || 'A') FROM good;
SELECT pg_temp.v(t || 'AAAA') FROM good;
SELECT pg_temp.v(left(t, -43) || repeat('A', 43)) FROM good;
SELECT pg_temp.v(left(t, -43) || pg_temp.b64url(hmac(left(t, -44), current_setting('ku9.jwt_secret'), 'sha512'))) FROM good;
SELECT pg_temp.v(left(t, -43) || pg_temp.b64url(hmac(left(t, -44), current_setting('ku9.jwt_secret'), 'sha1'))) FROM good;
-- signed with another secret, or with the secret's bytes differing at the end
SELECT pg_temp.v(left(t, -43) || pg_temp.hs256(left(t, -44), 'another-secret-0123456789abcdef-0123')) FROM good;
SELECT pg_temp.v(left(t, -43) || pg_temp.hs256(left(t, -44), current_setting('ku9.jwt_secret') || ' ')) FROM good;
-- when the secret changes, tokens signed with the old one stop verifying
SET ku9.jwt_secret = 'ku9-regress-secret-rotated-0123456789';
SELECT pg_temp.v(t) FROM good;
SELECT pg_temp.v(ku9.jwt_sign(pg_temp.good()::jsonb));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good()));
BEGIN;
SET LOCAL ku9.jwt_secret = 'ku9-regress-secret-0123456789abcdef';
SELECT pg_temp.v(t) FROM good;
ROLLBACK;
SELECT pg_temp.v(t) FROM good;
SET ku9.jwt_secret = 'ku9-regress-secret-0123456789abcdef';
SELECT pg_temp.v(t) FROM good;

--
-- exp, nbf, iat, with ku9.jwt_leeway = 30
--
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), '{"aud": "authenticated"}'));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), ((pg_temp.good()::jsonb - 'exp') || '{"iat": 1700000000}')::text));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('exp', pg_temp.at(-60)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('exp', pg_temp.at(-15)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('exp', pg_temp.at(-15) + 0.5))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": 1}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": 0}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": -1e300}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": 1.7e9}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": 4102444800}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": "4102444800"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": null}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": true}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": [4102444800]}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"exp": {"t": 4102444800}}')));
-- nbf
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('nbf', pg_temp.at(120)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('nbf', pg_temp.at(15)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('nbf', pg_temp.at(-60)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"nbf": "0"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"nbf": null}')));
-- iat
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('iat', pg_temp.at(120)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('iat', pg_temp.at(15)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('iat', pg_temp.at(-60)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iat": "now"}')));
-- the leeway setting is what counts
SET ku9.jwt_leeway = 0;
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('exp', pg_temp.at(-15)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('nbf', pg_temp.at(15)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('iat', pg_temp.at(15)))));
SET ku9.jwt_leeway = 120;
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('exp', pg_temp.at(-60)))));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good(jsonb_build_object('exp', pg_temp.at(-300)))));
SET ku9.jwt_leeway = 30;
-- the checks come in order: exp, nbf, iat, aud, iss
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), jsonb_build_object('exp', pg_temp.at(-60), 'nbf', pg_temp.at(120), 'aud', 'x')::text));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), jsonb_build_object('exp', pg_temp.at(600), 'nbf', pg_temp.at(120), 'iat', pg_temp.at(120), 'aud', 'x')::text));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), jsonb_build_object('exp', pg_temp.at(600), 'iat', pg_temp.at(120), 'aud', 'x')::text));

--
-- aud (ku9.jwt_aud = 'authenticated')
--
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": "anon"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), (pg_temp.good()::jsonb - 'aud')::text));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": "Authenticated"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": "authenticated "}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": ""}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": null}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": ["api", "authenticated"]}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": ["authenticated"]}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": ["api", "anon"]}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": []}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": [["authenticated"]]}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": {"authenticated": true}}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": 1}')));
SET ku9.jwt_aud = 'https://api.example.com';
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": "https://api.example.com"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good()));
-- '' disables the check
SET ku9.jwt_aud = '';
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": "anon"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), (pg_temp.good()::jsonb - 'aud')::text));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": 1}')));
RESET ku9.jwt_aud;
SHOW ku9.jwt_aud;
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": "anon"}')));

--
-- iss (not checked while ku9.jwt_iss is empty)
--
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iss": "anyone"}')));
SET ku9.jwt_iss = 'https://ku9.example/auth';
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good()));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iss": "https://evil.example/auth"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iss": "https://ku9.example/auth/"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iss": "https://ku9.example/aut"}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iss": ["https://ku9.example/auth"]}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iss": null}')));
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"iss": "https://ku9.example/auth"}')));
-- aud is checked before iss
SELECT pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good('{"aud": "anon"}')));
SET ku9.jwt_iss = '';

--
-- jwt_sign: a JSON object, or NULL
--
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('[]')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('[{"sub": "u1"}]')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('"claims"')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('1')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('null')$$);
SELECT ku9.jwt_sign(NULL) IS NULL AS sign_null, ku9.jwt_verify(NULL) IS NULL AS verify_null;
-- the empty object signs, but does not verify (no exp)
SELECT ku9.jwt_sign('{}') = pg_temp.sign(pg_temp.hdr(), '{}') AS same_as_pgcrypto, pg_temp.v(ku9.jwt_sign('{}'));
SELECT pg_temp.v(ku9.jwt_sign('{"exp": 4102444800, "aud": "authenticated", "name": "Zoë \"Z\" \\ Ω"}'));

--
-- the secret: unset or shorter than 32 bytes
--
SET ku9.jwt_secret = '';
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"sub": "u1"}')$$);
SELECT pg_temp.v(t) FROM good;
RESET ku9.jwt_secret;
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"sub": "u1"}')$$);
SELECT pg_temp.v(t) FROM good;
-- 31 bytes
SET ku9.jwt_secret = 'ku9-regress-secret-0123456789ab';
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"sub": "u1"}')$$);
SELECT pg_temp.v(t) FROM good;
-- 31 bytes in 16 characters
SET ku9.jwt_secret = 'ΩΩΩΩΩΩΩΩΩΩΩΩΩΩΩx';
SELECT octet_length(current_setting('ku9.jwt_secret')) AS bytes;
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"sub": "u1"}')$$);
-- 32 bytes is enough, also in 16 characters
SET ku9.jwt_secret = 'ku9-regress-secret-0123456789abc';
SELECT pg_temp.v(ku9.jwt_sign(pg_temp.good()::jsonb)), pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good()));
SET ku9.jwt_secret = 'ΩΩΩΩΩΩΩΩΩΩΩΩΩΩΩΩ';
SELECT pg_temp.v(ku9.jwt_sign(pg_temp.good()::jsonb)), pg_temp.v(pg_temp.sign(pg_temp.hdr(), pg_temp.good()));
-- the secret's errors come before the signature's, after the header's
SET ku9.jwt_secret = 'short';
SELECT pg_temp.v(left(t, -1)) FROM good;
SELECT pg_temp.v(pg_temp.sign_segments(pg_temp.b64url_text('{"alg":"none"}'), 'e30')) FROM good;
-- the error in full
SELECT ku9.jwt_sign('{"sub": "u1"}');
SET ku9.jwt_secret = 'ku9-regress-secret-0123456789abcdef';

--
-- privileges: anyone verifies; only ku9_service signs
--
SELECT t AS tok FROM good \gset
SET ROLE ku9_anon;
SELECT pg_temp.v(:'tok');
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"sub": "u1"}')$$);
RESET ROLE;
SET ROLE ku9_user;
SELECT pg_temp.v(:'tok');
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"sub": "u1"}')$$);
RESET ROLE;
SET ROLE ku9_service;
SELECT pg_temp.v(:'tok');
SELECT pg_temp.v(ku9.jwt_sign('{"exp": 4102444800, "aud": "authenticated", "sub": "u1", "role": "ku9_user"}'));
RESET ROLE;
-- the secret itself is for superusers only
SET ROLE ku9_service;
SELECT pg_temp.sqlerr($$SELECT current_setting('ku9.jwt_secret')$$);
SELECT pg_temp.sqlerr($$SET ku9.jwt_secret = 'ku9-regress-secret-chosen-by-service'$$);
RESET ROLE;
-- a role with no ku9 grants: neither
CREATE ROLE regress_ku9_jwt_plain;
SET ROLE regress_ku9_jwt_plain;
SELECT pg_temp.sqlerr(format('SELECT ku9.jwt_verify(%L)', :'tok'));
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"sub": "u1"}')$$);
RESET ROLE;
DROP ROLE regress_ku9_jwt_plain;
SELECT r AS role, has_function_privilege(r, 'ku9.jwt_verify(text)', 'EXECUTE') AS verify,
       has_function_privilege(r, 'ku9.jwt_sign(jsonb)', 'EXECUTE') AS sign
FROM unnest('{ku9_anon,ku9_user,ku9_service,ku9_authenticator}'::text[]) r ORDER BY 1;

DROP TABLE good;
RESET ku9.jwt_secret;
RESET ku9.jwt_leeway;
RESET ku9.jwt_aud;
RESET ku9.jwt_iss;
RESET ku9.jwt_alg;
DROP EXTENSION ku9;
