#!/usr/bin/env bash
# Sign-in against bare bcrypt, and authenticate() against the bare token
# check, in-server (one statement or one DO block, so client round trips
# do not count).
#   sign_in:      N sign-ins at ku9.bcrypt_cost 10, vs N crypt() calls at cost 10
#   authenticate: M calls of ku9.authenticate (verify + session check + set
#                 claims) vs M of ku9.jwt_verify on the same tokens
set -euo pipefail
N=${N:-30}
M=${M:-20000}

psql -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
SET ku9.jwt_secret = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';
SET ku9.bcrypt_cost = 10;
SET ku9.auth_max_failures = 1000;
DELETE FROM ku9.users WHERE email LIKE 'bench-%@example.com';
SELECT count(ku9.sign_up('bench-' || i || '@example.com', 'correct horse battery')) AS users FROM generate_series(1, 4) i \gset
CREATE TEMP TABLE results (bench text, calls int, us_per_call numeric);
CREATE TEMP TABLE toks (t text);
DO \$\$
DECLARE
    t0 timestamptz;
    n int := $N;
    m int := $M;
    h text := crypt('correct horse battery', gen_salt('bf', 10));
    r jsonb;
BEGIN
    t0 := clock_timestamp();
    FOR i IN 1..n LOOP
        PERFORM crypt('correct horse battery', h);
    END LOOP;
    INSERT INTO results VALUES ('crypt() at cost 10', n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

    t0 := clock_timestamp();
    FOR i IN 1..n LOOP
        r := ku9.sign_in('bench-' || (i % 4 + 1) || '@example.com', 'correct horse battery');
        IF i <= 4 THEN
            INSERT INTO toks VALUES (r ->> 'access_token');
        END IF;
    END LOOP;
    INSERT INTO results VALUES ('ku9.sign_in at cost 10', n, extract(epoch FROM clock_timestamp() - t0) * 1e6 / n);

    INSERT INTO toks SELECT t FROM toks, generate_series(1, m / 4 - 1);
END
\$\$;
DO \$\$
DECLARE
    t0 timestamptz;
    m int := (SELECT count(*) FROM toks);
BEGIN
    t0 := clock_timestamp();
    PERFORM count(ku9.jwt_verify(t)) FROM toks;
    INSERT INTO results VALUES ('ku9.jwt_verify', m, extract(epoch FROM clock_timestamp() - t0) * 1e6 / m);

    t0 := clock_timestamp();
    PERFORM count(ku9.authenticate(t)) FROM toks;
    INSERT INTO results VALUES ('ku9.authenticate (verify + session check + set claims)', m, extract(epoch FROM clock_timestamp() - t0) * 1e6 / m);
END
\$\$;
\pset format unaligned
\pset tuples_only on
SELECT '| bench | calls | µs per call |' UNION ALL SELECT '|---|---:|---:|';
SELECT format('| %s | %s | %s |', bench, calls, round(us_per_call, 1)) FROM results;
SELECT format('sign_in rate / crypt rate: %s (target >= 0.95)',
              round((SELECT us_per_call FROM results WHERE bench LIKE 'crypt%')
                    / (SELECT us_per_call FROM results WHERE bench LIKE 'ku9.sign_in%'), 3));
SELECT format('session check and claims add: %s µs per call',
              round((SELECT us_per_call FROM results WHERE bench LIKE 'ku9.authenticate%')
                    - (SELECT us_per_call FROM results WHERE bench = 'ku9.jwt_verify'), 1));
DELETE FROM ku9.users WHERE email LIKE 'bench-%@example.com';
SQL
