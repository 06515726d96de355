-- auth: sign-in throttling per email and per client address (shared memory)
--
-- The counts live in shared memory until the server restarts, whatever
-- happens to the database: every email and address below is new on each
-- run (it contains a random run id), so that the test passes again on the
-- same server; none of them is printed.
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql
SET ku9.jwt_secret = 'regress-secret-0123456789abcdefghijklmnop';
SET ku9.bcrypt_cost = 4;
SET ku9.auth_max_failures = 3;
SET ku9.auth_address_max_failures = 20;
RESET request.headers;

-- throttling needs ku9 in shared_preload_libraries
SELECT 'ku9' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded;

-- pg_temp.try_sign_in(email, password): 'ok' or 'SQLSTATE: message'
CREATE FUNCTION pg_temp.try_sign_in(email text, password text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM ku9.sign_in(email, password);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$f$;
-- pg_temp.sign_in_detail(email, password): the error's detail, or NULL
CREATE FUNCTION pg_temp.sign_in_detail(email text, password text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    d text;
BEGIN
    PERFORM ku9.sign_in(email, password);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN d;
END
$f$;
-- pg_temp.set_address(xff): PostgREST's request.headers with that x-forwarded-for
CREATE FUNCTION pg_temp.set_address(xff text) RETURNS boolean LANGUAGE sql AS $f$
    SELECT set_config('request.headers',
                      jsonb_build_object('x-forwarded-for', xff, 'user-agent', 'regress')::text, false) IS NOT NULL
$f$;

SELECT replace(gen_random_uuid()::text, '-', '') AS run \gset
SELECT format('known-%s@example.com', :'run') AS known,
       format('ghost-%s@example.com', :'run') AS ghost,
       format('bystander-%s@example.com', :'run') AS bystander,
       format('reset-%s@example.com', :'run') AS reset,
       format('rollback-%s@example.com', :'run') AS rollback,
       format('expiry-%s@example.com', :'run') AS expiry,
       format('addr-a-%s@example.com', :'run') AS addr_a,
       format('addr-b-%s@example.com', :'run') AS addr_b,
       format('addr-c-%s@example.com', :'run') AS addr_c,
       format('addr-d-%s@example.com', :'run') AS addr_d,
       format('2001:db8:%s:%s::7', substr(:'run', 1, 4), substr(:'run', 5, 4)) AS ip1,
       format('2001:db8:%s:%s::8', substr(:'run', 1, 4), substr(:'run', 5, 4)) AS ip2,
       format('2001:db8:%s:%s::9', substr(:'run', 1, 4), substr(:'run', 5, 4)) AS ip3 \gset
SELECT ku9.sign_up(e, 'correct horse battery') IS NOT NULL AS signed_up
FROM unnest(ARRAY[:'known', :'bystander', :'reset', :'rollback', :'expiry', :'addr_a', :'addr_b', :'addr_c']) AS e;

--
-- per email
--

-- three failures (ku9.auth_max_failures) for an email with an account ...
SELECT n, pg_temp.try_sign_in(:'known', 'wrong password') AS result FROM generate_series(1, 3) AS n;
-- ... and the next attempt is refused, even with the right password
SELECT pg_temp.try_sign_in(:'known', 'correct horse battery') AS right_password;
SELECT pg_temp.try_sign_in(:'known', 'wrong password') AS wrong_password;
SELECT pg_temp.sign_in_detail(:'known', 'correct horse battery') ~ '^Try again in [0-9]+ seconds\.$' AS detail;
-- the email is the same key in any case and with blanks around it
SELECT pg_temp.try_sign_in(upper(:'known'), 'correct horse battery') AS upper_case,
       pg_temp.try_sign_in('  ' || :'known' || '  ', 'correct horse battery') AS padded;
-- the refused sign-ins did nothing
SELECT last_sign_in_at IS NULL AS never_signed_in,
       (SELECT count(*) FROM ku9.sessions s WHERE s.user_id = u.id) AS sessions
FROM ku9.users u WHERE email = :'known';

-- an email without an account is counted and locked just the same, as
-- ku9_anon: a lockout tells nothing about whether the account exists
SET ROLE ku9_anon;
SELECT n, pg_temp.try_sign_in(:'ghost', 'wrong password') AS result FROM generate_series(1, 3) AS n;
SELECT pg_temp.try_sign_in(:'ghost', 'correct horse battery') AS locked;
SELECT pg_temp.try_sign_in(:'ghost', 'x') = pg_temp.try_sign_in(:'known', 'x') AS same_error;
SELECT pg_temp.sign_in_detail(:'ghost', 'x') ~ '^Try again in [0-9]+ seconds\.$' AS detail;
RESET ROLE;
-- signing up does not lift the lock on the email
SELECT ku9.sign_up(:'ghost', 'correct horse battery') IS NOT NULL AS signed_up;
SELECT pg_temp.try_sign_in(:'ghost', 'correct horse battery') AS after_sign_up;

-- another email is not affected
SELECT pg_temp.try_sign_in(:'bystander', 'correct horse battery') AS other_email;
SELECT pg_temp.try_sign_in(:'bystander', 'wrong password') AS other_email_wrong;
SELECT pg_temp.try_sign_in(:'bystander', 'correct horse battery') AS other_email_again;

-- a successful sign-in clears the email's count
SELECT n, pg_temp.try_sign_in(:'reset', 'wrong password') AS result FROM generate_series(1, 2) AS n;
SELECT pg_temp.try_sign_in(:'reset', 'correct horse battery') AS success;
SELECT n, pg_temp.try_sign_in(:'reset', 'wrong password') AS result FROM generate_series(1, 2) AS n;
SELECT pg_temp.try_sign_in(:'reset', 'correct horse battery') AS not_locked;
-- ... but three in a row still lock it
SELECT n, pg_temp.try_sign_in(:'reset', 'wrong password') AS result FROM generate_series(1, 3) AS n;
SELECT pg_temp.try_sign_in(:'reset', 'correct horse battery') AS locked;

-- the counts survive a rollback: a failed sign-in rolls its transaction
-- back, and it still counts
\set VERBOSITY terse
BEGIN;
SELECT ku9.sign_in(:'rollback', 'wrong password');
ROLLBACK;
BEGIN;
SELECT pg_temp.try_sign_in(:'rollback', 'wrong password') AS in_transaction;
ROLLBACK;
BEGIN;
SELECT pg_temp.try_sign_in(:'rollback', 'wrong password') AS in_transaction;
ROLLBACK;
\set VERBOSITY default
SELECT pg_temp.try_sign_in(:'rollback', 'correct horse battery') AS after_rollbacks;

-- a lockout ends after ku9.auth_lockout
SET ku9.auth_lockout = '2s';
SELECT n, pg_temp.try_sign_in(:'expiry', 'wrong password') AS result FROM generate_series(1, 3) AS n;
SELECT pg_temp.try_sign_in(:'expiry', 'correct horse battery') AS locked;
SELECT pg_sleep(2.5) IS NOT NULL AS waited;
SELECT pg_temp.try_sign_in(:'expiry', 'correct horse battery') AS lockout_over;
RESET ku9.auth_lockout;

--
-- per client address: the last x-forwarded-for entry of request.headers (the one
-- the proxy in front of PostgREST added; a client can forge the earlier ones)
--

SET ku9.auth_address_max_failures = 2;
-- failures for different emails (each below its own limit) from one address ...
SELECT pg_temp.set_address('198.51.100.1, ' || :'ip1') AS from_ip1;
SELECT pg_temp.try_sign_in(:'addr_a', 'wrong password') AS email_a;
SELECT pg_temp.try_sign_in(:'addr_b', 'wrong password') AS email_b;
-- ... lock the address: a third email, with the right password, is refused
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS email_c;
SELECT pg_temp.try_sign_in(:'addr_a', 'correct horse battery') AS email_a;
-- forging another first entry does not change the address
SELECT pg_temp.set_address('198.51.100.2, ' || :'ip1') AS forged_first;
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS still_locked;
-- the session records the address
SELECT pg_temp.set_address('198.51.100.1, ' || :'ip2') AS from_ip2;
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS other_address;
SELECT ip = :'ip2' AS ip_is_client, user_agent FROM ku9.sessions
WHERE user_id = (SELECT id FROM ku9.users WHERE email = :'addr_c');
-- without request.headers the emails are not locked (one failure each)
RESET request.headers;
SELECT pg_temp.try_sign_in(:'addr_a', 'correct horse battery') AS no_address;
-- the same address behind no proxy is the same key
SELECT pg_temp.set_address(:'ip1') AS from_ip1_direct;
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS same_address;
-- a success for an email does not clear its address's count
SELECT pg_temp.set_address(:'ip3') AS from_ip3;
SELECT pg_temp.try_sign_in(:'addr_a', 'wrong password') AS failure;
SELECT pg_temp.try_sign_in(:'addr_b', 'correct horse battery') AS success;
SELECT pg_temp.try_sign_in(:'addr_b', 'wrong password') AS failure;
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS address_locked;
-- x-real-ip when there is no x-forwarded-for
SELECT set_config('request.headers', jsonb_build_object('x-real-ip', :'ip2')::text, false) IS NOT NULL AS real_ip;
SELECT pg_temp.try_sign_in(:'addr_d', 'wrong password') AS failure_1,
       pg_temp.try_sign_in(:'ghost' || '.invalid', 'wrong password') AS failure_2;
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS real_ip_locked;
SELECT pg_temp.set_address('198.51.100.3, ' || :'ip2') AS from_ip2;
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS same_address_via_xff;
RESET request.headers;
-- and the emails themselves are still free
SELECT pg_temp.try_sign_in(:'addr_c', 'correct horse battery') AS no_address;

RESET ku9.auth_max_failures;
RESET ku9.auth_address_max_failures;
RESET ku9.bcrypt_cost;
DROP EXTENSION ku9;
