#!/usr/bin/env bash
# HS256 tokens, in-server: ku9.jwt_verify and ku9.jwt_sign against
#   (a) the floor: bare pgcrypto hmac() over the same header.payload bytes;
#   (b) a PL/pgSQL HS256 verifier and signer written here in the style of
#       pgjwt (split, base64url through translate + decode, hmac, compare
#       the encoded signature, convert_from + ::jsonb, check the claims).
# Every call gets a different token (or claims) read from a table: a
# constant argument would be folded at plan time and measure nothing, and
# repeated tokens would measure a cache.  Each row is one statement over N
# rows, timed with clock_timestamp(); the benches take turns ROUNDS times.
# Printed per call: the median, min and max over the rounds, and the
# ratios from the medians and from the minima (the minima are the steadier
# figure when other work shares the machine).  Run by tools/bench.sh (PG* point at
# a database with ku9; the connection is a superuser's, which may set
# ku9.jwt_secret).
#
#   N=100000 ROUNDS=5 BENCH=jwt make bench
set -euo pipefail
N=${N:-100000}
ROUNDS=${ROUNDS:-5}
SECRET=${SECRET:-ku9-bench-secret-0123456789abcdef-0123456789}

psql -X -q -v ON_ERROR_STOP=1 -v secret="$SECRET" <<SQL
SET temp_buffers = '512MB';
SET ku9.jwt_secret = :'secret';
-- also ku9's defaults, spelled out: the PL/pgSQL verifier checks the same
SET ku9.jwt_aud = 'authenticated';
SET ku9.jwt_iss = '';

-- base64url, pgjwt style
CREATE FUNCTION pg_temp.url_encode(data bytea) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS \$\$
BEGIN
    RETURN translate(encode(data, 'base64'), E'+/=\n', '-_');
END
\$\$;
CREATE FUNCTION pg_temp.url_decode(data text) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT AS \$\$
DECLARE
    t text := translate(data, '-_', '+/');
BEGIN
    RETURN decode(t || repeat('=', (4 - length(t) % 4) % 4), 'base64');
END
\$\$;

-- the PL/pgSQL verifier: the checks ku9.jwt_verify makes on a good token
-- (three parts, alg HS256, signature, claims an object, exp, nbf, iat, aud)
CREATE FUNCTION pg_temp.plpgsql_verify(token text, secret text) RETURNS jsonb LANGUAGE plpgsql STABLE AS \$\$
DECLARE
    r text[] := string_to_array(token, '.');
    header jsonb;
    claims jsonb;
    now numeric := extract(epoch FROM clock_timestamp());
BEGIN
    IF length(token) > 16384 OR array_length(r, 1) <> 3 THEN
        RAISE EXCEPTION 'invalid token: malformed' USING ERRCODE = '28000';
    END IF;
    header := convert_from(pg_temp.url_decode(r[1]), 'UTF8')::jsonb;
    IF jsonb_typeof(header) <> 'object' OR header ->> 'alg' IS DISTINCT FROM 'HS256' THEN
        RAISE EXCEPTION 'invalid token: algorithm' USING ERRCODE = '28000';
    END IF;
    IF pg_temp.url_encode(hmac(r[1] || '.' || r[2], secret, 'sha256')) <> r[3] THEN
        RAISE EXCEPTION 'invalid token: bad signature' USING ERRCODE = '28000';
    END IF;
    claims := convert_from(pg_temp.url_decode(r[2]), 'UTF8')::jsonb;
    IF jsonb_typeof(claims) <> 'object' THEN
        RAISE EXCEPTION 'invalid token: malformed claims' USING ERRCODE = '28000';
    END IF;
    IF jsonb_typeof(claims -> 'exp') IS DISTINCT FROM 'number' OR (claims ->> 'exp')::numeric + 10 < now THEN
        RAISE EXCEPTION 'invalid token: expired' USING ERRCODE = '28000';
    END IF;
    IF (claims ->> 'nbf')::numeric - 10 > now OR (claims ->> 'iat')::numeric - 10 > now THEN
        RAISE EXCEPTION 'invalid token: not valid yet' USING ERRCODE = '28000';
    END IF;
    IF NOT (claims -> 'aud' = '"authenticated"' OR claims -> 'aud' @> '["authenticated"]') THEN
        RAISE EXCEPTION 'invalid token: wrong audience' USING ERRCODE = '28000';
    END IF;
    RETURN claims;
END
\$\$;

-- the PL/pgSQL signer: ku9's header, the claims as jsonb prints them
CREATE FUNCTION pg_temp.plpgsql_sign(claims jsonb, secret text) RETURNS text LANGUAGE plpgsql STABLE AS \$\$
DECLARE
    signables text;
BEGIN
    signables := pg_temp.url_encode(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.' ||
                 pg_temp.url_encode(convert_to(claims::text, 'UTF8'));
    RETURN signables || '.' || pg_temp.url_encode(hmac(signables, secret, 'sha256'));
END
\$\$;

-- N distinct access tokens (claims as ku9 issues them; about 300 bytes)
CREATE TEMP TABLE tokens AS
    SELECT c, t, left(t, -44) AS signables, :'secret'::text AS secret
    FROM (SELECT c, ku9.jwt_sign(c) AS t
          FROM (SELECT jsonb_build_object('sub', gen_random_uuid(), 'role', 'ku9_user', 'aud', 'authenticated',
                                          'iat', extract(epoch FROM now())::bigint + i % 60 - 60,
                                          'exp', extract(epoch FROM now())::bigint + 3600 + i,
                                          'session_id', gen_random_uuid(),
                                          'email', 'user' || i || '@example.com') AS c
                FROM generate_series(1, $N) i) s) s;
ANALYZE tokens;

-- the four implementations agree
DO \$\$
DECLARE
    bad int;
BEGIN
    SELECT count(*) INTO bad FROM (SELECT * FROM tokens LIMIT 1000) s
    WHERE ku9.jwt_verify(t) <> c OR pg_temp.plpgsql_verify(t, secret) <> c
       OR pg_temp.plpgsql_sign(c, secret) <> t
       OR pg_temp.url_encode(hmac(signables, secret, 'sha256')) <> right(t, 43);
    IF bad > 0 THEN
        RAISE EXCEPTION '% of 1000 tokens disagree', bad;
    END IF;
END
\$\$;

CREATE TEMP TABLE results (bench text, round int, calls int, us_per_call float8);
DO \$\$
DECLARE
    t0 timestamptz;
    n int := (SELECT count(*) FROM tokens);
BEGIN
    -- one untimed pass over everything: caches, the HMAC context, plans
    PERFORM count(ku9.jwt_verify(t)), count(ku9.jwt_sign(c)), count(hmac(signables, secret, 'sha256')),
            count(pg_temp.plpgsql_verify(t, secret)), count(pg_temp.plpgsql_sign(c, secret))
    FROM (SELECT * FROM tokens LIMIT 1000) s;
    FOR r IN 1..$ROUNDS LOOP
        t0 := clock_timestamp();
        PERFORM count(t) FROM tokens;
        INSERT INTO results VALUES ('scan (count of the token column)', r, n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

        t0 := clock_timestamp();
        PERFORM count(hmac(signables, secret, 'sha256')) FROM tokens;
        INSERT INTO results VALUES ('hmac(header.payload, secret, ''sha256'')', r, n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

        t0 := clock_timestamp();
        PERFORM count(ku9.jwt_verify(t)) FROM tokens;
        INSERT INTO results VALUES ('ku9.jwt_verify(token)', r, n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

        t0 := clock_timestamp();
        PERFORM count(pg_temp.plpgsql_verify(t, secret)) FROM tokens;
        INSERT INTO results VALUES ('PL/pgSQL verify', r, n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

        t0 := clock_timestamp();
        PERFORM count(ku9.jwt_sign(c)) FROM tokens;
        INSERT INTO results VALUES ('ku9.jwt_sign(claims)', r, n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

        t0 := clock_timestamp();
        PERFORM count(pg_temp.plpgsql_sign(c, secret)) FROM tokens;
        INSERT INTO results VALUES ('PL/pgSQL sign', r, n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);
    END LOOP;
END
\$\$;

CREATE TEMP VIEW med AS
    SELECT bench, min(calls) AS calls, percentile_cont(0.5) WITHIN GROUP (ORDER BY us_per_call) AS us,
           min(us_per_call) AS lo, max(us_per_call) AS hi
    FROM results GROUP BY bench;
CREATE FUNCTION pg_temp.us(b text) RETURNS float8 LANGUAGE sql AS \$\$ SELECT us FROM med WHERE bench = b \$\$;
CREATE FUNCTION pg_temp.lo(b text) RETURNS float8 LANGUAGE sql AS \$\$ SELECT lo FROM med WHERE bench = b \$\$;

\pset format unaligned
\pset tuples_only on
SELECT format('%s distinct tokens of %s bytes on average; %s rounds',
              count(*), round(avg(length(t))), $ROUNDS) FROM tokens;
SELECT '';
SELECT '| bench | calls | µs per call, median | min | max |' UNION ALL SELECT '|---|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s |', bench, calls, round(us::numeric, 2), round(lo::numeric, 2), round(hi::numeric, 2))
FROM med ORDER BY array_position(ARRAY['scan (count of the token column)', 'hmac(header.payload, secret, ''sha256'')',
                                       'ku9.jwt_verify(token)', 'PL/pgSQL verify', 'ku9.jwt_sign(claims)', 'PL/pgSQL sign'], bench);
SELECT '';
SELECT '| ratio | from medians | from minima | target |' UNION ALL SELECT '|---|---:|---:|---|';
SELECT format('| %s | %s | %s | %s |', what, round((pg_temp.us(a) / pg_temp.us(b))::numeric, 2),
              round((pg_temp.lo(a) / pg_temp.lo(b))::numeric, 2), target)
FROM (VALUES
    ('jwt_verify / hmac', 'ku9.jwt_verify(token)', 'hmac(header.payload, secret, ''sha256'')', '≤ 3', 1),
    ('PL/pgSQL verify / jwt_verify', 'PL/pgSQL verify', 'ku9.jwt_verify(token)', '≥ 4', 2),
    ('jwt_sign / hmac', 'ku9.jwt_sign(claims)', 'hmac(header.payload, secret, ''sha256'')', '≤ 2', 3),
    ('PL/pgSQL sign / jwt_sign', 'PL/pgSQL sign', 'ku9.jwt_sign(claims)', '—', 4)) x(what, a, b, target, o)
ORDER BY o;
SQL
