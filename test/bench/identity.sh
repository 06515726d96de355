#!/usr/bin/env bash
# ku9.uid() against the usual SQL definition of auth.uid() (PostgREST /
# Supabase style: current_setting + jsonb cast + uuid cast), per call,
# in-server, over N calls in one statement.
#   cached:  the same claims for every call (RLS on a large scan)
#   changed: new claims for every call (a new request each time)
set -euo pipefail
N=${N:-1000000}

psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE OR REPLACE FUNCTION pg_temp.sql_uid() RETURNS uuid LANGUAGE sql STABLE AS \$\$
    SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
\$\$;
CREATE TEMP TABLE claims AS
    SELECT jsonb_build_object('sub', gen_random_uuid(), 'role', 'ku9_user', 'aud', 'authenticated',
                              'iat', 1700000000 + i, 'exp', 1700003600 + i,
                              'email', 'user' || i || '@example.com')::text AS c
    FROM generate_series(1, $N / 10) i;
SET request.jwt.claims = '{"sub": "8a4b1f0e-2d2c-4b9e-9f1a-0c5a6e7d8f90", "role": "ku9_user", "aud": "authenticated", "iat": 1700000000, "exp": 1700003600, "email": "ada@example.com"}';

CREATE TEMP TABLE results (bench text, calls int, us_per_call numeric);
DO \$\$
DECLARE
    t0 timestamptz;
    n int := $N;
    m int := $N / 10;
BEGIN
    t0 := clock_timestamp();
    PERFORM count(*) FROM (SELECT 1 FROM generate_series(1, n) OFFSET 0) s;
    INSERT INTO results VALUES ('empty loop', n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

    t0 := clock_timestamp();
    PERFORM count(ku9.uid()) FROM generate_series(1, n);
    INSERT INTO results VALUES ('ku9.uid(), cached', n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

    t0 := clock_timestamp();
    PERFORM count(pg_temp.sql_uid()) FROM generate_series(1, n);
    INSERT INTO results VALUES ('SQL auth.uid(), same claims', n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

    t0 := clock_timestamp();
    PERFORM count(set_config('request.jwt.claims', c, true)) FROM claims;
    INSERT INTO results VALUES ('set_config alone', m, extract(epoch FROM clock_timestamp() - t0) * 1e6 / m);

    t0 := clock_timestamp();
    PERFORM count(x) FROM (SELECT set_config('request.jwt.claims', c, true) AS s, ku9.uid() AS x FROM claims) q;
    INSERT INTO results VALUES ('set_config + ku9.uid(), new claims', m, extract(epoch FROM clock_timestamp() - t0) * 1e6 / m);

    t0 := clock_timestamp();
    PERFORM count(x) FROM (SELECT set_config('request.jwt.claims', c, true) AS s, pg_temp.sql_uid() AS x FROM claims) q;
    INSERT INTO results VALUES ('set_config + SQL auth.uid(), new claims', m, extract(epoch FROM clock_timestamp() - t0) * 1e6 / m);
END
\$\$;
\pset format unaligned
\pset tuples_only on
SELECT '| bench | calls | µs per call |' UNION ALL SELECT '|---|---:|---:|';
SELECT format('| %s | %s | %s |', bench, calls, round(us_per_call, 3)) FROM results;
SQL
