-- auth: sessions: ku9.refresh_session, ku9.sign_out, ku9.authenticate
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql
SET ku9.jwt_secret = 'regress-secret-0123456789abcdefghijklmnop';
SET ku9.bcrypt_cost = 4;
SET ku9.auth_max_failures = 1000;
RESET request.headers;
RESET request.jwt.claims;

-- pg_temp.try_refresh(token): 'tokens', the error a reuse returns, or 'SQLSTATE: message'
CREATE FUNCTION pg_temp.try_refresh(token text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    r jsonb;
BEGIN
    r := ku9.refresh_session(token);
    RETURN coalesce(r ->> 'error', CASE WHEN r ? 'access_token' AND r ? 'refresh_token' THEN 'tokens' END, r::text);
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$f$;
-- pg_temp.try_auth(token): 'ok' or 'SQLSTATE: message'
CREATE FUNCTION pg_temp.try_auth(token text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    IF ku9.authenticate(token) IS NULL THEN
        RETURN 'no claims';
    END IF;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$f$;
-- pg_temp.b64url(text): base64url without padding, to build tokens by hand
CREATE FUNCTION pg_temp.b64url(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
    SELECT rtrim(translate(replace(encode(convert_to(s, 'UTF8'), 'base64'), E'\n', ''), '+/', '-_'), '=')
$f$;

SELECT ku9.sign_up('ada@example.com', 'correct horse battery') AS ada \gset
SELECT ku9.sign_up('bob@example.com', 'correct horse battery') AS bob \gset

--
-- refresh_session
--

SELECT r ->> 'access_token' AS a0, r ->> 'refresh_token' AS t0,
       ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS sid
FROM ku9.sign_in('ada@example.com', 'correct horse battery') AS r \gset
UPDATE ku9.sessions SET refreshed_at = refreshed_at - interval '1 h', expires_at = now() + interval '1 h'
WHERE id = :'sid';

-- a refresh returns the sign-in response with a new refresh token, for the same session
SELECT ku9.refresh_session(:'t0') AS r1 \gset
SELECT array_agg(k ORDER BY k) AS keys FROM jsonb_object_keys(:'r1'::jsonb) AS k;
SELECT :'r1'::jsonb ->> 'token_type' AS token_type,
       (:'r1'::jsonb ->> 'expires_in')::int AS expires_in,
       (:'r1'::jsonb ->> 'refresh_token') <> :'t0' AS new_refresh_token,
       (:'r1'::jsonb #>> '{user,id}')::uuid = :'ada' AS same_user,
       (ku9.jwt_verify(:'r1'::jsonb ->> 'access_token') ->> 'session_id') = :'sid' AS same_session,
       (ku9.jwt_verify(:'r1'::jsonb ->> 'access_token') ->> 'sub')::uuid = :'ada' AS same_sub;
SELECT :'r1'::jsonb ->> 'refresh_token' AS t1, :'r1'::jsonb ->> 'access_token' AS a1 \gset
-- the next refresh token cannot be computed from the previous one: only the
-- server may mint it (else whoever saw an old token could derive the
-- current one and never trip the reuse detection)
SELECT :'t1' <> rtrim(translate(encode(hmac('ku9 refresh token', :'t0', 'sha256'), 'base64'), '+/', '-_'), '=')
   AND :'t1' <> rtrim(translate(encode(hmac(:'t0', 'ku9 refresh token', 'sha256'), 'base64'), '+/', '-_'), '=')
   AND :'t1' <> rtrim(translate(encode(sha256(convert_to(:'t0', 'UTF8')), 'base64'), '+/', '-_'), '=')
       AS next_token_not_derivable;
-- the session was refreshed and lasts ku9.refresh_token_lifetime again
SELECT refreshed_at >= now() - interval '1 min' AS refreshed_now,
       expires_at BETWEEN now() + interval '30 days' - interval '1 min'
                      AND now() + interval '30 days' + interval '1 min' AS expires_in_30d,
       revoked_at IS NULL AS live
FROM ku9.sessions WHERE id = :'sid';
-- two tokens for the session: the old one rotated, the new one current; only hashes
SELECT count(*) AS tokens,
       count(*) FILTER (WHERE rotated_at IS NULL) AS current,
       count(*) FILTER (WHERE rotated_at IS NULL AND token_hash = sha256(convert_to(:'t1', 'UTF8'))) AS t1_current,
       count(*) FILTER (WHERE rotated_at IS NOT NULL AND token_hash = sha256(convert_to(:'t0', 'UTF8'))) AS t0_rotated
FROM ku9.refresh_tokens WHERE session_id = :'sid';
-- both access tokens still work
SELECT pg_temp.try_auth(:'a0') AS a0, pg_temp.try_auth(:'a1') AS a1;

-- the old token again, within ku9.refresh_reuse_interval (a client refreshing
-- twice at once): the same next token, and the session lives on
SELECT ku9.refresh_session(:'t0') AS r1b \gset
SELECT (:'r1b'::jsonb ->> 'refresh_token') = :'t1' AS same_next_token,
       :'r1b'::jsonb ? 'access_token' AS has_access_token,
       :'r1b'::jsonb ? 'error' AS has_error;
SELECT revoked_at IS NULL AS live FROM ku9.sessions WHERE id = :'sid';
SELECT count(*) AS tokens, count(*) FILTER (WHERE rotated_at IS NULL) AS current
FROM ku9.refresh_tokens WHERE session_id = :'sid';
SELECT pg_temp.try_refresh(:'t0') AS again;

-- the next token rotates as usual
SELECT ku9.refresh_session(:'t1') ->> 'refresh_token' AS t2 \gset
SELECT :'t2' <> :'t1' AND :'t2' <> :'t0' AS new_token;
-- now the first token comes back, though its successor was itself rotated:
-- taken as theft, the whole session is revoked; the result is returned, not
-- raised, so that the revocation commits
SELECT ku9.refresh_session(:'t0') AS reused \gset
SELECT :'reused'::jsonb ->> 'error' AS error, :'reused'::jsonb ->> 'message' AS message,
       :'reused'::jsonb ? 'access_token' AS has_access_token, :'reused'::jsonb ? 'refresh_token' AS has_refresh_token;
SELECT revoked_at IS NOT NULL AS revoked, revoked_reason FROM ku9.sessions WHERE id = :'sid';
-- every token of the session is dead, the newest too, and its access tokens
SELECT pg_temp.try_refresh(:'t2') AS newest, pg_temp.try_refresh(:'t1') AS t1, pg_temp.try_refresh(:'t0') AS t0;
SELECT pg_temp.try_auth(:'a0') AS a0, pg_temp.try_auth(:'a1') AS a1;

-- reuse after ku9.refresh_reuse_interval: the session is revoked
SELECT ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS bystander
FROM ku9.sign_in('ada@example.com', 'correct horse battery') AS r \gset
SELECT r ->> 'refresh_token' AS u0, ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS sid_u
FROM ku9.sign_in('ada@example.com', 'correct horse battery') AS r \gset
SELECT ku9.refresh_session(:'u0') ->> 'refresh_token' AS u1 \gset
SET ku9.refresh_reuse_interval = 0;
BEGIN;
SELECT ku9.refresh_session(:'u0') AS reused \gset
SELECT :'reused'::jsonb ->> 'error' AS error, :'reused'::jsonb ? 'access_token' AS has_access_token;
-- for PostgREST: HTTP 401
SELECT current_setting('response.status', true) AS response_status;
COMMIT;
SELECT revoked_at IS NOT NULL AS revoked, revoked_reason FROM ku9.sessions WHERE id = :'sid_u';
SELECT pg_temp.try_refresh(:'u1') AS newest;
-- only that session: ada's other sessions are not touched
SELECT revoked_at IS NULL AS bystander_live FROM ku9.sessions WHERE id = :'bystander';
-- a reuse in a transaction that rolls back revokes nothing
SELECT r ->> 'refresh_token' AS x0, ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS sid_x
FROM ku9.sign_in('ada@example.com', 'correct horse battery') AS r \gset
SELECT ku9.refresh_session(:'x0') ->> 'refresh_token' AS x1 \gset
BEGIN;
SELECT pg_temp.try_refresh(:'x0') AS reused;
ROLLBACK;
SELECT revoked_at IS NULL AS live FROM ku9.sessions WHERE id = :'sid_x';
SELECT pg_temp.try_refresh(:'x1') AS newest;
RESET ku9.refresh_reuse_interval;

-- unknown, NULL, empty and oversized tokens: 28000
SELECT pg_temp.try_refresh('no-such-token') AS unknown,
       pg_temp.try_refresh(NULL) AS null_token,
       pg_temp.try_refresh('') AS empty;
SELECT pg_temp.try_refresh(repeat('x', 10000)) AS oversized;
-- an access token is not a refresh token
SELECT r ->> 'access_token' AS v_access, r ->> 'refresh_token' AS v0,
       ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS sid_v
FROM ku9.sign_in('ada@example.com', 'correct horse battery') AS r \gset
SELECT pg_temp.try_refresh(:'v_access') AS access_token;
-- the token's hash is not the token
SELECT pg_temp.try_refresh(encode(sha256(convert_to(:'v0', 'UTF8')), 'hex')) AS hash_hex;

-- an expired session cannot be refreshed, and its access tokens fail
UPDATE ku9.sessions SET expires_at = now() - interval '1 s' WHERE id = :'sid_v';
SELECT pg_temp.try_refresh(:'v0') AS expired;
SELECT pg_temp.try_auth(:'v_access') AS expired_session;

-- a banned user cannot refresh; the refused refresh rotated nothing
SELECT r ->> 'refresh_token' AS w0 FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
UPDATE ku9.users SET banned_until = now() + interval '1 h' WHERE id = :'bob';
SELECT pg_temp.try_refresh(:'w0') AS banned;
UPDATE ku9.users SET banned_until = NULL WHERE id = :'bob';
SELECT pg_temp.try_refresh(:'w0') AS unbanned;

-- a refresh issues tokens with the user as they are now
SELECT r ->> 'refresh_token' AS m0 FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
UPDATE ku9.users SET user_metadata = '{"plan": "pro"}', app_metadata = '{"tier": 2}' WHERE id = :'bob';
SELECT c -> 'user_metadata' AS user_metadata, c -> 'app_metadata' AS app_metadata, c ->> 'role' AS role
FROM ku9.jwt_verify(ku9.refresh_session(:'m0') ->> 'access_token') AS c;

-- a deleted user's refresh tokens die with the user
SELECT ku9.sign_up('carol@example.com', 'correct horse battery') AS carol \gset
SELECT r ->> 'refresh_token' AS c0, r ->> 'access_token' AS c_access
FROM ku9.sign_in('carol@example.com', 'correct horse battery') AS r \gset
DELETE FROM ku9.users WHERE id = :'carol';
SELECT pg_temp.try_refresh(:'c0') AS deleted_user, pg_temp.try_auth(:'c_access') AS deleted_user_access;

--
-- sign_out
--

-- bob has three sessions, ada some of her own
SELECT r ->> 'access_token' AS b1_access, r ->> 'refresh_token' AS b1_refresh,
       ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS b1
FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
SELECT r ->> 'access_token' AS b2_access, r ->> 'refresh_token' AS b2_refresh,
       ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS b2
FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
SELECT r ->> 'access_token' AS b3_access, r ->> 'refresh_token' AS b3_refresh,
       ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS b3
FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
UPDATE ku9.sessions SET revoked_at = now(), revoked_reason = 'regress' WHERE user_id = :'bob' AND id NOT IN (:'b1', :'b2', :'b3');
SELECT count(*) FILTER (WHERE revoked_at IS NULL) AS ada_live FROM ku9.sessions WHERE user_id = :'ada' \gset

-- without claims: 28000
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out()$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('global')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('nonsense')$$);
SET request.jwt.claims = '{"role": "ku9_anon"}';
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out()$$);
RESET request.jwt.claims;

-- 'others': every session of the user but the current one
BEGIN;
SELECT ku9.authenticate(:'b1_access') IS NOT NULL AS authenticated;
SELECT ku9.sign_out('others') AS revoked;
COMMIT;
SELECT id = :'b1' AS is_b1, revoked_at IS NOT NULL AS revoked, revoked_reason
FROM ku9.sessions WHERE id IN (:'b1', :'b2', :'b3') ORDER BY id = :'b1' DESC, id = :'b2' DESC;
SELECT pg_temp.try_auth(:'b2_access') AS b2_access, pg_temp.try_refresh(:'b2_refresh') AS b2_refresh,
       pg_temp.try_auth(:'b3_access') AS b3_access, pg_temp.try_refresh(:'b3_refresh') AS b3_refresh;
SELECT pg_temp.try_auth(:'b1_access') AS b1_access;
-- again: nothing left to revoke
BEGIN;
SELECT ku9.authenticate(:'b1_access') IS NOT NULL AS authenticated;
SELECT ku9.sign_out('others') AS revoked;
-- a scope that is not one: 22023
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('everything')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('SESSION')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out(NULL)$$);
COMMIT;

-- 'session' (the default), as ku9_user with PostgREST-style claims
SELECT set_config('request.jwt.claims', ku9.jwt_verify(:'b1_access')::text, false) IS NOT NULL AS claims_set;
SET ROLE ku9_user;
SELECT ku9.sign_out() AS revoked;
-- the token of a session that has ended can sign out nothing more
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out()$$) AS revoked_again;
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('global')$$) AS global_from_ended_session;
RESET ROLE;
RESET request.jwt.claims;
SELECT revoked_at IS NOT NULL AS revoked, revoked_reason FROM ku9.sessions WHERE id = :'b1';
-- the signed-out session's tokens fail
SELECT pg_temp.try_auth(:'b1_access') AS b1_access;
SELECT pg_temp.try_refresh(:'b1_refresh') AS b1_refresh;
-- and a sign-in still works
SELECT pg_temp.sqlerr($$SELECT ku9.sign_in('bob@example.com', 'correct horse battery')$$) AS sign_in;
-- ada's sessions were never touched
SELECT count(*) FILTER (WHERE revoked_at IS NULL) = :ada_live AS ada_untouched FROM ku9.sessions WHERE user_id = :'ada';

-- 'global': all of the user's sessions, the current one included
SELECT r ->> 'access_token' AS g1_access, r ->> 'refresh_token' AS g1_refresh
FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
SELECT r ->> 'refresh_token' AS g2_refresh FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
SELECT count(*) AS bob_live FROM ku9.sessions WHERE user_id = :'bob' AND revoked_at IS NULL;
BEGIN;
SELECT ku9.authenticate(:'g1_access') IS NOT NULL AS authenticated;
SELECT ku9.sign_out('global') AS revoked;
COMMIT;
SELECT count(*) AS bob_live FROM ku9.sessions WHERE user_id = :'bob' AND revoked_at IS NULL;
SELECT DISTINCT revoked_reason FROM ku9.sessions WHERE user_id = :'bob' AND revoked_reason LIKE 'sign out (global)';
SELECT pg_temp.try_auth(:'g1_access') AS g1_access, pg_temp.try_refresh(:'g1_refresh') AS g1_refresh,
       pg_temp.try_refresh(:'g2_refresh') AS g2_refresh;
SELECT count(*) FILTER (WHERE revoked_at IS NULL) = :ada_live AS ada_untouched FROM ku9.sessions WHERE user_id = :'ada';

-- claims without a session_id (a token minted with ku9.jwt_sign), or
-- naming a session that is not the user's: no scope ends anything, so made-up
-- claims cannot sign a user out
SELECT r ->> 'refresh_token' AS h_refresh FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
SELECT set_config('request.jwt.claims', jsonb_build_object('sub', :'bob', 'role', 'ku9_user')::text, false) IS NOT NULL AS claims_set;
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('session')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('others')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('global')$$);
SELECT set_config('request.jwt.claims', jsonb_build_object('sub', :'bob', 'role', 'ku9_user',
                  'session_id', (SELECT id FROM ku9.sessions WHERE user_id = :'ada' AND revoked_at IS NULL LIMIT 1))::text,
                  false) IS NOT NULL AS claims_set;
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('global')$$) AS another_users_session;
RESET request.jwt.claims;
SELECT pg_temp.try_refresh(:'h_refresh') AS h_refresh;
-- a sign-out that rolls back revokes nothing
SELECT r ->> 'access_token' AS k_access, r ->> 'refresh_token' AS k_refresh
FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
BEGIN;
SELECT ku9.authenticate(:'k_access') IS NOT NULL AS authenticated;
SELECT ku9.sign_out() AS revoked;
ROLLBACK;
SELECT pg_temp.try_auth(:'k_access') AS k_access, pg_temp.try_refresh(:'k_refresh') AS k_refresh;

--
-- authenticate
--

SELECT r ->> 'access_token' AS at, ku9.jwt_verify(r ->> 'access_token') ->> 'session_id' AS sid_at
FROM ku9.sign_in('ada@example.com', 'correct horse battery') AS r \gset

-- returns the claims and sets request.jwt.claims for the transaction only
BEGIN;
SELECT ku9.authenticate(:'at') = ku9.jwt_verify(:'at') AS returns_claims;
SELECT ku9.uid() = :'ada' AS uid, ku9.role() AS role, ku9.claims() ->> 'email' AS email,
       ku9.claims() ->> 'session_id' = :'sid_at' AS session_id,
       current_setting('request.jwt.claims')::jsonb = ku9.jwt_verify(:'at') AS setting;
-- row-level security follows, as under PostgREST
SET LOCAL ROLE ku9_user;
SELECT count(*) AS visible_users, bool_and(id = :'ada') AS own_row FROM ku9.users;
COMMIT;
SELECT ku9.uid() IS NULL AS uid_null, ku9.claims() IS NULL AS claims_null;
-- after a rollback too
BEGIN;
SELECT ku9.authenticate(:'at') IS NOT NULL AS authenticated;
SELECT ku9.uid() = :'ada' AS uid;
ROLLBACK;
SELECT ku9.uid() IS NULL AS uid_null;
-- outside a transaction block the claims last for the statement's transaction only
SELECT ku9.authenticate(:'at') IS NOT NULL AS authenticated;
SELECT ku9.uid() IS NULL AS uid_null;
-- a session-level value comes back after the transaction
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000001", "role": "ku9_service"}';
BEGIN;
SELECT ku9.authenticate(:'at') IS NOT NULL AS authenticated;
SELECT ku9.uid() = :'ada' AS uid, ku9.role() AS role;
COMMIT;
SELECT ku9.uid(), ku9.role();
RESET request.jwt.claims;
-- a second authenticate in the transaction replaces the claims
SELECT r ->> 'access_token' AS bob_at FROM ku9.sign_in('bob@example.com', 'correct horse battery') AS r \gset
BEGIN;
SELECT ku9.authenticate(:'at') IS NOT NULL AS authenticated;
SELECT ku9.authenticate(:'bob_at') IS NOT NULL AS authenticated;
SELECT ku9.uid() = :'bob' AS uid_bob;
COMMIT;
-- a failed authenticate leaves no claims behind
BEGIN;
SELECT pg_temp.try_auth('not.a.token') AS result;
SELECT ku9.uid() IS NULL AS uid_null;
COMMIT;

-- ku9_anon and ku9_user may authenticate
SET ROLE ku9_anon;
BEGIN;
SELECT ku9.authenticate(:'at') ->> 'role' AS role;
SELECT ku9.uid() = :'ada' AS uid;
COMMIT;
RESET ROLE;
SET ROLE ku9_user;
SELECT pg_temp.try_auth(:'at') AS as_user;
RESET ROLE;

-- NULL is no token: 28000, not a silent NULL
SELECT left(pg_temp.sqlerr($$SELECT ku9.authenticate(NULL)$$), 5) AS null_token;

-- expired: 28000 (exp beyond ku9.jwt_leeway)
SELECT ku9.jwt_sign(jsonb_build_object('sub', :'ada', 'role', 'ku9_user', 'aud', 'authenticated',
                                       'session_id', :'sid_at',
                                       'iat', extract(epoch FROM now())::bigint - 7200,
                                       'exp', extract(epoch FROM now())::bigint - 3600)) AS expired \gset
SELECT pg_temp.try_auth(:'expired') AS expired;
-- tampered: another payload under the signature, e.g. a higher role, or another user
SELECT pg_temp.try_auth(split_part(:'at', '.', 1) || '.'
                        || pg_temp.b64url(jsonb_set(ku9.jwt_verify(:'at'), '{role}', '"ku9_service"')::text) || '.'
                        || split_part(:'at', '.', 3)) AS role_changed;
SELECT pg_temp.try_auth(split_part(:'at', '.', 1) || '.' || split_part(:'bob_at', '.', 2) || '.'
                        || split_part(:'at', '.', 3)) AS payload_swapped;
SELECT pg_temp.try_auth(split_part(:'at', '.', 1) || '.' || split_part(:'at', '.', 2) || '.'
                        || translate(split_part(:'at', '.', 3), 'AaBbCcDdEeFf', 'aAbBcCdDeEfF')) AS signature_changed;
SELECT pg_temp.try_auth(split_part(:'at', '.', 1) || '.' || split_part(:'at', '.', 2) || '.') AS signature_dropped;
SELECT pg_temp.try_auth(pg_temp.b64url('{"alg":"none","typ":"JWT"}') || '.' || split_part(:'at', '.', 2) || '.') AS alg_none;
-- signed with another secret
SELECT ku9.jwt_verify(:'bob_at') - 'session_id' AS bob_claims \gset
SET ku9.jwt_secret = 'another-secret-0123456789abcdefghijklmno';
SELECT ku9.jwt_sign(:'bob_claims') AS foreign_token \gset
SET ku9.jwt_secret = 'regress-secret-0123456789abcdefghijklmnop';
SELECT pg_temp.try_auth(:'foreign_token') AS other_secret;
-- another audience
SELECT pg_temp.try_auth(ku9.jwt_sign(jsonb_build_object('sub', :'ada', 'aud', 'somebody-else',
                                                        'exp', extract(epoch FROM now())::bigint + 600))) AS wrong_aud;
SELECT pg_temp.try_auth('') AS empty, pg_temp.try_auth('a.b.c') AS garbage;

-- a token without session_id (minted by ku9.jwt_sign for a backend) is
-- accepted: there is no session to check
SELECT ku9.jwt_sign(jsonb_build_object('sub', :'bob', 'role', 'ku9_user', 'aud', 'authenticated',
                                       'exp', extract(epoch FROM now())::bigint + 600)) AS no_sid \gset
BEGIN;
SELECT ku9.authenticate(:'no_sid') ? 'session_id' AS has_session_id;
SELECT ku9.uid() = :'bob' AS uid_bob;
COMMIT;
-- a session_id that is not a uuid, or names no session: 28000
SELECT v AS session_id,
       pg_temp.try_auth(ku9.jwt_sign(jsonb_build_object('sub', :'bob', 'role', 'ku9_user', 'aud', 'authenticated',
                                                        'exp', extract(epoch FROM now())::bigint + 600,
                                                        'session_id', v))) AS result
FROM (VALUES ('"not-a-uuid"'::jsonb), ('""'), ('42'), ('{"id": 1}'), ('["00000000-0000-4000-8000-000000000001"]'),
             ('"00000000-0000-4000-8000-000000000001"'), ('null')) AS t(v);

-- a session that expired or was revoked ends its access tokens at once
SELECT pg_temp.try_auth(:'at') AS before;
UPDATE ku9.sessions SET revoked_at = now(), revoked_reason = 'regress' WHERE id = :'sid_at';
SELECT pg_temp.try_auth(:'at') AS revoked;
UPDATE ku9.sessions SET revoked_at = NULL, revoked_reason = NULL, expires_at = now() - interval '1 s' WHERE id = :'sid_at';
SELECT pg_temp.try_auth(:'at') AS expired_session;
-- the session check is an index lookup on the sessions' primary key
SELECT count(*) AS pk_indexes FROM pg_index
WHERE indrelid = 'ku9.sessions'::regclass AND indisprimary AND indnatts = 1
  AND indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = 'ku9.sessions'::regclass AND attname = 'id');

RESET ku9.bcrypt_cost;
RESET ku9.auth_max_failures;
DROP EXTENSION ku9;
