-- auth: limits that keep made-up claims, floods and oversized input harmless
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql
SET ku9.jwt_secret = 'regress-secret-0123456789abcdefghijklmnop';
SET ku9.bcrypt_cost = 4;
-- emails unique to this run, since throttling state outlives it
SELECT 'hard-' || replace(gen_random_uuid()::text, '-', '') || '@example.com' AS email \gset
SELECT ku9.sign_up(:'email', 'correct horse battery') AS uid \gset

-- change_password needs claims naming a live session of the user: claims
-- made up with only a sub change nothing
SELECT set_config('request.jwt.claims', jsonb_build_object('sub', :'uid')::text, false) IS NOT NULL AS claims;
SELECT pg_temp.sqlerr($$SELECT ku9.change_password('correct horse battery', 'another password')$$);
RESET request.jwt.claims;
SELECT ku9.sign_in(:'email', 'correct horse battery') IS NOT NULL AS old_password_still_works;

-- with a real session, wrong old passwords are throttled like sign-ins
SET ku9.auth_max_failures = 2;
SELECT ku9.sign_in(:'email', 'correct horse battery') ->> 'access_token' AS token \gset
BEGIN;
SELECT ku9.authenticate(:'token') IS NOT NULL AS authenticated;
SELECT pg_temp.sqlerr($$SELECT ku9.change_password('guess one', 'another password')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.change_password('guess two', 'another password')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.change_password('correct horse battery', 'another password')$$) AS right_but_locked;
ROLLBACK;
RESET ku9.auth_max_failures;

-- reset and confirmation mails are rate-limited per email, existing or not
SET ku9.auth_max_failures = 3;
SELECT 'nobody-' || replace(gen_random_uuid()::text, '-', '') || '@example.com' AS ghost \gset
SELECT pg_temp.sqlerr(format('SELECT ku9.request_password_reset(%L)', :'ghost')) AS first,
       pg_temp.sqlerr(format('SELECT ku9.request_password_reset(%L)', :'ghost')) AS second,
       pg_temp.sqlerr(format('SELECT ku9.request_email_confirmation(%L)', :'ghost')) AS third,
       pg_temp.sqlerr(format('SELECT ku9.request_password_reset(%L)', :'ghost')) AS fourth;
RESET ku9.auth_max_failures;

-- oversized input
SELECT pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L, %L)', 'big-' || :'email', 'correct horse battery',
                             jsonb_build_object('pad', repeat('x', 20000))));
SELECT pg_temp.sqlerr(format('SELECT ku9.sign_in(%L, %L)', repeat('a', 100000) || '@example.com', 'x'));

-- a user's role must be a plain request role, never the authenticator itself
SELECT pg_temp.sqlerr(format('SELECT ku9.admin_set_role(%L, %L)', :'uid', 'ku9_authenticator'));
SELECT pg_temp.sqlerr(format('SELECT ku9.admin_set_role(%L, %L)', :'uid', 'postgres'));
SELECT pg_temp.sqlerr(format('SELECT ku9.admin_set_role(%L, %L)', :'uid', 'ku9_service'));

-- the mail queue's messages (live tokens) are not dumped
SELECT count(*) AS mail_tables_dumped
FROM pg_extension e, unnest(e.extconfig) AS c(oid)
WHERE e.extname = 'ku9' AND c.oid::regclass::text LIKE 'ku9_queue.%ku9_mail%';

DELETE FROM ku9.users WHERE email = :'email';
RESET ku9.jwt_secret;
DROP EXTENSION ku9;
