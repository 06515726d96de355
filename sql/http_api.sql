-- http: the ku9_api schema for PostgREST: who may call what, that nothing
-- else is reachable, pre_request (ended sessions, rate limits) and
-- postgrest_config()
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql
SET ku9.jwt_secret = 'http-regress-secret-0123456789abcdefghij';
SET ku9.bcrypt_cost = 4;

-- every ku9_api function wraps the ku9 function of the same name, with the
-- same argument names
SELECT p.proname, pg_get_function_identity_arguments(p.oid) = pg_get_function_identity_arguments(k.oid)
         OR p.proname IN ('subscribe', 'unsubscribe') AS same_arguments
FROM pg_proc p LEFT JOIN pg_proc k ON k.proname = p.proname AND k.pronamespace = 'ku9'::regnamespace
WHERE p.pronamespace = 'ku9_api'::regnamespace AND p.proname <> 'pre_request'
ORDER BY 1;
-- none is SECURITY DEFINER but pre_request: the ku9 functions check the caller
SELECT proname FROM pg_proc WHERE pronamespace = 'ku9_api'::regnamespace AND prosecdef;

-- what each request role may execute in ku9_api
SELECT r, string_agg(p.proname, ', ' ORDER BY p.proname) AS executable
FROM unnest(ARRAY['ku9_anon', 'ku9_user', 'ku9_service']) r,
     pg_proc p
WHERE p.pronamespace = 'ku9_api'::regnamespace AND has_function_privilege(r, p.oid, 'EXECUTE')
GROUP BY r ORDER BY r;
-- PUBLIC executes nothing there; ku9_anon reads only the list of collections
-- (outside db-schemas, so not over HTTP)
SELECT count(*) AS public_executable FROM pg_proc p
WHERE p.pronamespace = 'ku9_api'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE');
SELECT c.oid::regclass AS anon_readable_outside_ku9_api FROM pg_class c
WHERE c.relnamespace IN ('ku9'::regnamespace, 'ku9_api'::regnamespace, 'ku9_queue'::regnamespace, 'ku9_docs'::regnamespace)
  AND c.relkind IN ('r', 'v', 'p') AND has_table_privilege('ku9_anon', c.oid, 'SELECT');

-- the app flow through ku9_api, as PostgREST would run it
SET ROLE ku9_anon;
SELECT ku9_api.sign_up('api@example.com', 'correct horse battery') ? 'user_id' AS signed_up;
SELECT ku9_api.sign_in('api@example.com', 'correct horse battery') AS s \gset
SELECT (:'s'::jsonb) ?& ARRAY['access_token', 'refresh_token', 'user'] AS session;
SELECT ku9_api.jwks() ? 'keys' AS jwks;
SELECT pg_temp.sqlerr($$SELECT ku9_api.inbox()$$);
SELECT pg_temp.sqlerr($$SELECT ku9_api.find('notes')$$);
RESET ROLE;
SELECT ku9.create_collection('api_notes');
SELECT set_config('request.jwt.claims', ku9.jwt_verify((:'s'::jsonb)->>'access_token')::text, false) IS NOT NULL AS claims_set;
SET ROLE ku9_user;
SELECT ku9_api.insert_one('api_notes', '{"text": "hi"}') ? 'inserted_id' AS inserted;
SELECT jsonb_array_length(ku9_api.find('api_notes', '{"text": "hi"}')) AS found;
SELECT ku9_api.find('api_notes', '{"text": "nothing"}') AS none_found;
SELECT ku9_api.count_documents('api_notes') AS counted;
SELECT count(*) FROM ku9_api.inbox();
SELECT ku9_api.unread_count();
-- pre_request lets a live session through
SELECT ku9_api.pre_request();
SELECT ku9_api.sign_out() AS signed_out;
-- the same token, now of an ended session: 401 through PostgREST's PT convention
SELECT pg_temp.sqlerr($$SELECT ku9_api.pre_request()$$);
RESET ROLE;

-- rate limits: per user and per client address, PT429 past the limit
SET ku9.rate_limit_per_user = 3;
SET ku9.rate_limit_window = '1h';
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000000aa", "role": "ku9_user"}';
SET ROLE ku9_user;
SELECT ku9_api.pre_request();
SELECT ku9_api.pre_request();
SELECT ku9_api.pre_request();
SELECT pg_temp.sqlerr($$SELECT ku9_api.pre_request()$$);
RESET ROLE;
-- another user is not limited by the first one
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000000bb", "role": "ku9_user"}';
SELECT ku9_api.pre_request();
SET ku9.rate_limit_per_address = 2;
SET request.jwt.claims = '{"role": "ku9_anon"}';
SET request.headers = '{"x-forwarded-for": "203.0.113.9"}';
SET ROLE ku9_anon;
SELECT ku9_api.pre_request();
SELECT ku9_api.pre_request();
SELECT pg_temp.sqlerr($$SELECT ku9_api.pre_request()$$);
RESET ROLE;
SET request.headers = '{"x-forwarded-for": "203.0.113.10"}';
SELECT ku9_api.pre_request();
RESET request.headers;
RESET request.jwt.claims;
RESET ku9.rate_limit_per_user;
RESET ku9.rate_limit_per_address;
RESET ku9.rate_limit_window;

-- postgrest_config: a ready postgrest.conf, for superusers only
SELECT replace(regexp_replace(ku9.postgrest_config(), 'localhost:[0-9]+/', 'localhost:PORT/'), current_database(), 'DB');
SELECT ku9.postgrest_config('postgres://ku9_authenticator:s3cret@db:5432/app') ~ 'db-uri = "postgres://ku9_authenticator:s3cret@db:5432/app"' AS own_uri;
SET ROLE ku9_service;
SELECT pg_temp.sqlerr($$SELECT ku9.postgrest_config()$$);
RESET ROLE;
RESET ku9.jwt_secret;
SELECT pg_temp.sqlerr($$SELECT ku9.postgrest_config()$$);

-- the gateway's start of a request (ku9._gateway_begin), as ku9_authenticator
SET ku9.jwt_secret = 'http-regress-secret-0123456789abcdefghij';
SELECT ku9.jwt_sign(jsonb_build_object('sub', '00000000-0000-4000-8000-0000000000b1', 'role', 'ku9_user',
                                       'aud', 'authenticated', 'exp', extract(epoch from now())::int + 600)) AS user_token \gset
SELECT ku9.jwt_sign(jsonb_build_object('sub', '00000000-0000-4000-8000-0000000000b1', 'role', 'postgres',
                                       'aud', 'authenticated', 'exp', extract(epoch from now())::int + 600)) AS super_token \gset
SELECT ku9.jwt_sign(jsonb_build_object('sub', '00000000-0000-4000-8000-0000000000b1', 'role', 'ku9_user',
                                       'aud', 'authenticated', 'exp', extract(epoch from now())::int - 600)) AS old_token \gset
SET ROLE ku9_authenticator;
BEGIN;
SELECT ku9._gateway_begin(NULL, 'GET', '/rpc/jwks', '{"accept": "*/*"}', '{}', true, 'rpc');
SELECT current_user, ku9.uid() IS NULL AS no_uid, current_setting('request.method') AS method,
       current_setting('request.path') AS path, current_setting('request.headers') AS headers,
       current_setting('request.jwt.claims') AS claims, current_setting('transaction_read_only') AS read_only;
ROLLBACK;
BEGIN;
SELECT ku9._gateway_begin(:'user_token', 'POST', '/rpc/unread_count', '{}', '{"c": "1"}', false, 'rpc');
SELECT current_user, ku9.uid(), current_setting('request.cookies') AS cookies,
       current_setting('transaction_read_only') AS read_only;
-- once switched, the gateway's helpers are out of reach
SELECT pg_temp.sqlerr($$SELECT ku9._gateway_begin(NULL, 'GET', '/', '{}', '{}', true, 'rpc')$$);
ROLLBACK;
SELECT pg_temp.sqlerr(format($$SELECT ku9._gateway_begin(%L, 'POST', '/rpc/x', '{}', '{}', false, 'rpc')$$, :'super_token'));
SELECT pg_temp.sqlerr(format($$SELECT ku9._gateway_begin(%L, 'POST', '/rpc/x', '{}', '{}', false, 'rpc')$$, :'old_token'));
SELECT pg_temp.sqlerr($$SELECT ku9._gateway_begin('not.a.token', 'POST', '/rpc/x', '{}', '{}', false, 'rpc')$$);
-- the event stream's reader: anonymous callers get PT401
BEGIN;
SELECT ku9._gateway_begin(NULL, 'GET', '/events', '{}', '{}', true, 'events');
SELECT pg_temp.sqlerr($$SELECT * FROM ku9.events_after(NULL, 10)$$);
ROLLBACK;
BEGIN;
SELECT ku9._gateway_begin(:'user_token', 'GET', '/events', '{}', '{}', true, 'events');
SELECT user_id, cursor >= 0 AS has_cursor, n, stream, topics FROM ku9.events_after(0, 10);
ROLLBACK;
RESET ROLE;
-- a transaction that published notifications cannot be prepared (two-phase
-- commit): its ids would become visible after the event streams passed them
INSERT INTO ku9.users (id, email, email_confirmed_at)
VALUES ('00000000-0000-4000-8000-0000000000b2', 'prepare@example.com', now());
BEGIN;
SELECT ku9.notify_user('00000000-0000-4000-8000-0000000000b2', '{"n": 1}') > 0 AS sent;
PREPARE TRANSACTION 'ku9_notify';
SELECT count(*) AS kept FROM ku9.notifications WHERE user_id = '00000000-0000-4000-8000-0000000000b2';
DELETE FROM ku9.users WHERE id = '00000000-0000-4000-8000-0000000000b2';
-- GET /health: workers expected only where ku9.database points (not here)
SELECT healthy, (body::jsonb - 'database' - 'gateways') AS body FROM ku9._gateway_health();
-- request roles cannot call the gateway's helpers
SET ROLE ku9_user;
SELECT pg_temp.sqlerr($$SELECT ku9._gateway_begin(NULL, 'GET', '/', '{}', '{}', true, 'rpc')$$);
SELECT pg_temp.sqlerr($$SELECT ku9._gateway_health()$$);
RESET ROLE;
RESET ku9.jwt_secret;

SELECT ku9.drop_collection('api_notes');
DELETE FROM ku9.users WHERE email = 'api@example.com';
DROP EXTENSION ku9;
