-- auth: ku9.sign_up and ku9.sign_in, passwords, no enumeration, privileges
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql
SET ku9.jwt_secret = 'regress-secret-0123456789abcdefghijklmnop';
SET ku9.bcrypt_cost = 4;
-- throttling has its own test (auth_throttle); keep it out of the way here
SET ku9.auth_max_failures = 1000;
RESET request.headers;

-- pg_temp.try_sign_in(email, password): 'ok' or 'SQLSTATE: message'
CREATE FUNCTION pg_temp.try_sign_in(email text, password text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM ku9.sign_in(email, password);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$f$;

--
-- sign_up
--

-- returns the new user's id, a uuid
SELECT ku9.sign_up('Ada@Example.com', 'correct horse battery') AS ada \gset
SELECT pg_typeof(:'ada'::uuid) AS id_type, :'ada'::uuid = (SELECT id FROM ku9.users) AS is_the_row;
SELECT pg_typeof(ku9.sign_up('typeof@example.com', 'correct horse battery')) AS returns;
-- defaults: role ku9_user, confirmed (confirmation is off), empty metadata, not signed in yet
SELECT email, role, email_confirmed_at IS NOT NULL AS confirmed, banned_until IS NULL AS not_banned,
       app_metadata, user_metadata, last_sign_in_at IS NULL AS never_signed_in,
       created_at <= now() AND updated_at = created_at AS created_before_now
FROM ku9.users WHERE id = :'ada';

-- the email is trimmed; its case is kept but uniqueness ignores it
SELECT ku9.sign_up('  Grace@Example.com  ', 'correct horse battery') AS grace \gset
SELECT email FROM ku9.users WHERE id = :'grace';
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('ada@example.com', 'another password')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('  ADA@EXAMPLE.COM  ', 'another password')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('grace@example.com', 'another password')$$);
SELECT count(*) AS users_with_ada_email FROM ku9.users WHERE lower(email) = 'ada@example.com';

-- invalid emails: 22023
SELECT e AS email, pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', e, 'correct horse battery')) AS result
FROM unnest(ARRAY['', '   ', 'no-at-sign', 'ada@localhost', 'a b@example.com', 'ada@exa mple.com',
                  'ada@@example.com', '@example.com', 'ada@', 'ada@example.', 'ada@.com x',
                  'ada@example.com@example.com', E'ada\n@example.com']) AS e;
-- at most 254 characters
SELECT pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', repeat('a', 242) || '@example.com', 'correct horse battery')) AS len_254;
SELECT pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', repeat('a', 243) || '@example.com', 'correct horse battery')) AS len_255;

-- NULL email or password: 22004
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up(NULL, 'correct horse battery')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('null-pw@example.com', NULL)$$);

-- password policy: at least ku9.password_min_length characters (default 8)
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('short@example.com', 'seven77')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('short@example.com', '')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('eight@example.com', 'eight888')$$);
-- characters, not bytes: seven two-byte characters are too short
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('short-mb@example.com', repeat('é', 7))$$);
SET ku9.password_min_length = 12;
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('min12@example.com', 'elevenchars')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('min12@example.com', 'twelve chars')$$);
RESET ku9.password_min_length;

-- ... and at most 72 bytes: bcrypt ignores the rest, so longer ones are refused, not cut
SELECT pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', 'long73@example.com', repeat('a', 73)));
SELECT pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', 'long72@example.com', repeat('a', 72)));
-- bytes, not characters: 37 two-byte characters (74 bytes), 19 four-byte ones (76 bytes)
SELECT length(repeat('é', 37)) AS chars, octet_length(repeat('é', 37)) AS bytes,
       pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', 'long-mb@example.com', repeat('é', 37))) AS result;
SELECT length(repeat('😀', 19)) AS chars, octet_length(repeat('😀', 19)) AS bytes,
       pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', 'long-emoji@example.com', repeat('😀', 19))) AS result;
-- 36 two-byte characters are exactly 72 bytes: accepted
SELECT pg_temp.sqlerr(format('SELECT ku9.sign_up(%L, %L)', 'mb72@example.com', repeat('é', 36)));
SELECT count(*) AS refused_users_stored FROM ku9.users
WHERE email IN ('short@example.com', 'short-mb@example.com', 'long73@example.com', 'long-mb@example.com', 'long-emoji@example.com');

-- metadata: a JSON object, stored as user_metadata; never app_metadata or role
SELECT ku9.sign_up('meta@example.com', 'correct horse battery',
                   '{"name": "Meta", "role": "ku9_service", "app_metadata": {"admin": true}}') AS meta \gset
SELECT role, app_metadata, user_metadata FROM ku9.users WHERE id = :'meta';
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('meta2@example.com', 'correct horse battery', '[]')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('meta2@example.com', 'correct horse battery', '"x"')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('meta2@example.com', 'correct horse battery', 'null')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_up('meta2@example.com', 'correct horse battery', NULL)$$);

-- the hash: bcrypt $2a$ at ku9.bcrypt_cost, salted, never the password
SELECT left(encrypted_password, 7) AS prefix, length(encrypted_password) AS len,
       encrypted_password <> 'correct horse battery' AS not_plain,
       position('correct horse battery' IN encrypted_password) = 0 AS password_not_inside,
       crypt('correct horse battery', encrypted_password) = encrypted_password AS verifies
FROM ku9.users WHERE id = :'ada';
SET ku9.bcrypt_cost = 5;
SELECT ku9.sign_up('cost5@example.com', 'correct horse battery') AS cost5 \gset
SELECT left(encrypted_password, 7) AS prefix FROM ku9.users WHERE id = :'cost5';
SET ku9.bcrypt_cost = 4;
-- the same password gets a different salt
SELECT count(DISTINCT encrypted_password) AS distinct_hashes, count(*) AS users
FROM ku9.users WHERE id IN (:'ada', :'grace', :'meta');

-- with ku9.auth_confirm_email on, a new user is unconfirmed
SET ku9.auth_confirm_email = on;
SELECT ku9.sign_up('unconfirmed@example.com', 'correct horse battery') AS unconfirmed \gset
SELECT email_confirmed_at IS NULL AS unconfirmed FROM ku9.users WHERE id = :'unconfirmed';
RESET ku9.auth_confirm_email;

--
-- sign_in
--

SELECT ku9.sign_in('ada@example.com', 'correct horse battery') AS r \gset
-- the response: access_token, token_type, expires_in, expires_at, refresh_token, user
SELECT k AS key, jsonb_typeof(:'r'::jsonb -> k) AS type
FROM jsonb_object_keys(:'r'::jsonb) AS k ORDER BY k;
SELECT :'r'::jsonb ->> 'token_type' AS token_type,
       (:'r'::jsonb ->> 'expires_in')::int = 3600 AS expires_in_jwt_exp,
       length(:'r'::jsonb ->> 'refresh_token') >= 43 AS long_refresh_token,
       (:'r'::jsonb ->> 'refresh_token') ~ '^[A-Za-z0-9_-]+$' AS refresh_token_base64url,
       (:'r'::jsonb ->> 'access_token') <> (:'r'::jsonb ->> 'refresh_token') AS distinct_tokens;
SELECT k AS user_key, jsonb_typeof(:'r'::jsonb -> 'user' -> k) AS type
FROM jsonb_object_keys(:'r'::jsonb -> 'user') AS k ORDER BY k;
SELECT (:'r'::jsonb #>> '{user,id}')::uuid = :'ada' AS user_id,
       :'r'::jsonb #>> '{user,email}' AS email,
       :'r'::jsonb #>> '{user,role}' AS role,
       :'r'::jsonb ? 'password' OR :'r'::jsonb -> 'user' ? 'encrypted_password' AS leaks_hash;

-- the access token verifies and carries the claims
SELECT ku9.jwt_verify(:'r'::jsonb ->> 'access_token') AS c \gset
SELECT array_agg(k ORDER BY k) AS claims FROM jsonb_object_keys(:'c'::jsonb) AS k;
SELECT (:'c'::jsonb ->> 'sub')::uuid = :'ada' AS sub_is_user,
       :'c'::jsonb ->> 'role' AS role,
       :'c'::jsonb ->> 'aud' AS aud,
       :'c'::jsonb ->> 'email' AS email,
       :'c'::jsonb -> 'app_metadata' AS app_metadata,
       :'c'::jsonb -> 'user_metadata' AS user_metadata,
       (:'c'::jsonb ->> 'exp')::bigint - (:'c'::jsonb ->> 'iat')::bigint AS lifetime,
       (:'c'::jsonb ->> 'exp')::bigint = (:'r'::jsonb ->> 'expires_at')::bigint AS exp_is_expires_at,
       abs((:'c'::jsonb ->> 'iat')::bigint - extract(epoch FROM now())) < 60 AS issued_now,
       (:'c'::jsonb ->> 'session_id')::uuid = (SELECT id FROM ku9.sessions WHERE user_id = :'ada') AS session_id;
-- the token carries the user's metadata
SELECT (ku9.jwt_verify(ku9.sign_in('meta@example.com', 'correct horse battery') ->> 'access_token')) -> 'user_metadata' AS user_metadata;

-- last_sign_in_at is set; a session is stored, ending ku9.refresh_token_lifetime from now
SELECT last_sign_in_at IS NOT NULL AND last_sign_in_at <= now() AS signed_in_at
FROM ku9.users WHERE id = :'ada';
SELECT count(*) AS sessions,
       bool_and(expires_at BETWEEN now() + interval '30 days' - interval '1 min'
                           AND now() + interval '30 days' + interval '1 min') AS expires_in_30d,
       bool_and(revoked_at IS NULL) AS live
FROM ku9.sessions WHERE user_id = :'ada';
-- only the refresh token's hash is stored
SELECT count(*) AS tokens,
       count(*) FILTER (WHERE token_hash = sha256(convert_to(:'r'::jsonb ->> 'refresh_token', 'UTF8'))) AS hashed,
       count(*) FILTER (WHERE position(convert_to(:'r'::jsonb ->> 'refresh_token', 'UTF8') IN token_hash) > 0) AS plain
FROM ku9.refresh_tokens WHERE user_id = :'ada';

-- the lifetimes follow the settings
SET ku9.jwt_exp = '2min';
SET ku9.refresh_token_lifetime = '1h';
SELECT ku9.sign_in('grace@example.com', 'correct horse battery') AS r \gset
SELECT (:'r'::jsonb ->> 'expires_in')::int AS expires_in,
       (ku9.jwt_verify(:'r'::jsonb ->> 'access_token') ->> 'exp')::bigint
       - (ku9.jwt_verify(:'r'::jsonb ->> 'access_token') ->> 'iat')::bigint AS lifetime;
SELECT expires_at BETWEEN now() + interval '59 min' AND now() + interval '61 min' AS expires_in_1h
FROM ku9.sessions WHERE user_id = :'grace';
RESET ku9.jwt_exp;
RESET ku9.refresh_token_lifetime;

-- iss only when ku9.jwt_iss is set
SELECT ku9.jwt_verify(ku9.sign_in('grace@example.com', 'correct horse battery') ->> 'access_token') ? 'iss' AS has_iss;
SET ku9.jwt_iss = 'https://auth.example.com';
SELECT ku9.jwt_verify(ku9.sign_in('grace@example.com', 'correct horse battery') ->> 'access_token') ->> 'iss' AS iss;
RESET ku9.jwt_iss;
-- no audience when ku9.jwt_aud is empty
SET ku9.jwt_aud = '';
SELECT ku9.jwt_verify(ku9.sign_in('grace@example.com', 'correct horse battery') ->> 'access_token') ? 'aud' AS has_aud;
RESET ku9.jwt_aud;

-- the email matches case-insensitively and trimmed
SELECT pg_temp.try_sign_in('ADA@EXAMPLE.COM', 'correct horse battery') AS upper,
       pg_temp.try_sign_in('  ada@example.com ', 'correct horse battery') AS padded;
-- the password does not: it is exact
SELECT pg_temp.try_sign_in('ada@example.com', 'Correct horse battery') AS other_case,
       pg_temp.try_sign_in('ada@example.com', 'correct horse battery ') AS trailing_space,
       pg_temp.try_sign_in('ada@example.com', '') AS empty;

-- a wrong password and an unknown email fail alike: 28P01, the same message
SELECT pg_temp.try_sign_in('ada@example.com', 'wrong password') AS wrong_password;
SELECT pg_temp.try_sign_in('nobody@example.com', 'correct horse battery') AS unknown_email;
SELECT pg_temp.try_sign_in('ada@example.com', 'wrong password')
     = pg_temp.try_sign_in('nobody@example.com', 'wrong password') AS same_error;
SELECT pg_temp.try_sign_in('ada@example.com', NULL) AS null_password,
       pg_temp.try_sign_in(NULL, 'correct horse battery') AS null_email,
       pg_temp.try_sign_in('not an email', 'correct horse battery') AS not_an_email;
-- the same full error, detail and hint included
CREATE FUNCTION pg_temp.sign_in_error(email text, password text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    PERFORM ku9.sign_in(email, password);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN concat_ws(' | ', st, msg, det, hnt);
END
$f$;
SELECT pg_temp.sign_in_error('ada@example.com', 'wrong password')
     = pg_temp.sign_in_error('nobody@example.com', 'wrong password') AS same_full_error;
-- a failed sign-in leaves no trace in the tables
SELECT count(*) AS sessions FROM ku9.sessions s JOIN ku9.users u ON u.id = s.user_id WHERE u.email = 'nobody@example.com';

-- a banned user: 28000 only after the right password
UPDATE ku9.users SET banned_until = now() + interval '1 day' WHERE id = :'grace';
SELECT count(*) AS grace_sessions FROM ku9.sessions WHERE user_id = :'grace' \gset
SELECT pg_temp.try_sign_in('grace@example.com', 'correct horse battery') AS banned_right_password;
SELECT pg_temp.try_sign_in('grace@example.com', 'wrong password') AS banned_wrong_password;
SELECT count(*) = :grace_sessions AS no_new_session FROM ku9.sessions WHERE user_id = :'grace';
-- a ban that ended does not count
UPDATE ku9.users SET banned_until = now() - interval '1 s' WHERE id = :'grace';
SELECT pg_temp.try_sign_in('grace@example.com', 'correct horse battery') AS ban_over;

-- an unconfirmed user, while confirmation is required: 28000 only after the right password
SET ku9.auth_confirm_email = on;
SELECT pg_temp.try_sign_in('unconfirmed@example.com', 'correct horse battery') AS unconfirmed_right_password;
SELECT pg_temp.try_sign_in('unconfirmed@example.com', 'wrong password') AS unconfirmed_wrong_password;
-- confirmed users are not affected
SELECT pg_temp.try_sign_in('ada@example.com', 'correct horse battery') AS confirmed;
RESET ku9.auth_confirm_email;
-- when it is not required, the unconfirmed user signs in
SELECT pg_temp.try_sign_in('unconfirmed@example.com', 'correct horse battery') AS not_required;

-- bcrypt's 72-byte limit: a longer password whose first 72 bytes are the
-- stored password is refused (bcrypt alone would accept it)
SELECT ku9.sign_up('exact72@example.com', repeat('p', 72)) AS exact72 \gset
SELECT crypt(repeat('p', 72) || 'extra', encrypted_password) = encrypted_password AS bcrypt_alone_truncates
FROM ku9.users WHERE id = :'exact72';
SELECT pg_temp.try_sign_in('exact72@example.com', repeat('p', 72)) AS exactly_72,
       pg_temp.try_sign_in('exact72@example.com', repeat('p', 72) || 'extra') AS longer;
-- the same with multibyte characters: 36 × 'é' is 72 bytes
SELECT pg_temp.try_sign_in('mb72@example.com', repeat('é', 36)) AS exactly_72,
       pg_temp.try_sign_in('mb72@example.com', repeat('é', 36) || 'x') AS longer;
-- an imported hash of a password longer than 72 bytes (made by a system that
-- cut it): the whole password is refused like any password over 72 bytes;
-- only its first 72 bytes sign in
INSERT INTO ku9.users (email, encrypted_password, email_confirmed_at)
VALUES ('import-long@example.com', crypt(repeat('q', 80), gen_salt('bf', 4)), now());
SELECT pg_temp.try_sign_in('import-long@example.com', repeat('q', 80)) AS long_import,
       pg_temp.try_sign_in('import-long@example.com', repeat('q', 72)) AS first_72;

-- imported bcrypt hashes: $2a$, $2b$ and $2y$ are the same algorithm
SELECT crypt('imported password', gen_salt('bf', 4)) AS h \gset
INSERT INTO ku9.users (email, encrypted_password, email_confirmed_at) VALUES
    ('import-2a@example.com', :'h', now()),
    ('import-2b@example.com', '$2b$' || substr(:'h', 5), now()),
    ('import-2y@example.com', '$2y$' || substr(:'h', 5), now());
SELECT email, left(encrypted_password, 4) AS prefix,
       pg_temp.try_sign_in(email, 'imported password') AS right_password,
       pg_temp.try_sign_in(email, 'imported passwore') AS wrong_password
FROM ku9.users WHERE email LIKE 'import-2_@example.com' ORDER BY email;
-- other costs than ku9.bcrypt_cost work too
INSERT INTO ku9.users (email, encrypted_password, email_confirmed_at)
VALUES ('import-cost6@example.com', '$2b$' || substr(crypt('imported password', gen_salt('bf', 6)), 5), now());
SELECT pg_temp.try_sign_in('import-cost6@example.com', 'imported password') AS cost6;

-- a malformed stored hash never matches, and fails like a wrong password
-- (no other error that would tell that the email exists)
INSERT INTO ku9.users (email, encrypted_password, email_confirmed_at) VALUES
    ('bad-null@example.com', NULL, now()),
    ('bad-plain@example.com', 'imported password', now()),
    ('bad-empty@example.com', '', now()),
    ('bad-short@example.com', left(:'h', 40), now()),
    ('bad-2x@example.com', '$2x$' || substr(:'h', 5), now()),
    ('bad-md5@example.com', crypt('imported password', gen_salt('md5')), now()),
    ('bad-des@example.com', crypt('imported password', gen_salt('des')), now()),
    ('bad-newline@example.com', :'h' || E'\n', now()),
    ('bad-cost03@example.com', '$2a$03$' || substr(:'h', 8), now()),
    ('bad-cost99@example.com', '$2a$99$' || substr(:'h', 8), now());
SELECT email, pg_temp.try_sign_in(email, 'imported password') AS result
FROM ku9.users WHERE email LIKE 'bad-%@example.com' ORDER BY email;

--
-- privileges
--

-- ku9_anon signs up, signs in, refreshes and authenticates
SET ROLE ku9_anon;
SELECT ku9.sign_up('anon@example.com', 'correct horse battery') IS NOT NULL AS signed_up;
SELECT ku9.sign_in('anon@example.com', 'correct horse battery') AS r \gset
SELECT ku9.refresh_session(:'r'::jsonb ->> 'refresh_token') ? 'access_token' AS refreshed;
SELECT (ku9.authenticate(:'r'::jsonb ->> 'access_token') ->> 'email') AS authenticated;
SELECT ku9.jwt_verify(:'r'::jsonb ->> 'access_token') ->> 'email' AS verified;
-- but does not sign out, mint tokens, or call the helpers
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out()$$);
SELECT pg_temp.sqlerr($$SELECT ku9.sign_out('global')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.jwt_sign('{"role": "ku9_service"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9._crypt('a', 'b')$$);
SELECT pg_temp.sqlerr($$SELECT ku9._password_matches('a', 'b')$$);
SELECT pg_temp.sqlerr($$SELECT ku9._throttle_reset('email:anon@example.com')$$);
SELECT pg_temp.sqlerr($$SELECT ku9._throttle_failure('email:ada@example.com', 1, 60, 60)$$);
SELECT pg_temp.sqlerr($$SELECT ku9._random_token()$$);
-- nor read users, sessions or refresh tokens
SELECT pg_temp.sqlerr($$SELECT count(*) FROM ku9.users$$);
SELECT pg_temp.sqlerr($$SELECT count(*) FROM ku9.sessions$$);
SELECT pg_temp.sqlerr($$SELECT count(*) FROM ku9.refresh_tokens$$);
RESET ROLE;
-- no request role may execute any ku9._ helper
SELECT r AS role, count(*) FILTER (WHERE has_function_privilege(r, p.oid, 'EXECUTE')) AS executable_helpers
FROM pg_proc p, unnest(ARRAY['ku9_anon', 'ku9_user', 'ku9_service']) AS r
WHERE p.pronamespace = 'ku9'::regnamespace AND p.proname LIKE '\_%'
GROUP BY r ORDER BY r;
-- the entry points in SQL or PL/pgSQL are SECURITY DEFINER with a pinned
-- search_path (those in C switch to the tables' owner themselves)
SELECT p.proname,
       l.lanname = 'c' OR (p.prosecdef AND EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'))
           AS definer_with_search_path_or_c
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'ku9'::regnamespace
  AND p.proname IN ('sign_up', 'sign_in', 'refresh_session', 'sign_out', 'authenticate')
ORDER BY 1;
-- function EXECUTE grants of the entry points
SELECT p.proname,
       has_function_privilege('ku9_anon', p.oid, 'EXECUTE') AS anon,
       has_function_privilege('ku9_user', p.oid, 'EXECUTE') AS "user",
       has_function_privilege('ku9_service', p.oid, 'EXECUTE') AS service
FROM pg_proc p
WHERE p.pronamespace = 'ku9'::regnamespace
  AND p.proname IN ('sign_up', 'sign_in', 'refresh_session', 'sign_out', 'authenticate', 'jwt_sign', 'jwt_verify')
ORDER BY 1;

-- ku9_user sees only its own row of ku9.users
SELECT set_config('request.jwt.claims', jsonb_build_object('sub', :'ada', 'role', 'ku9_user')::text, false) IS NOT NULL AS claims_ada;
SET ROLE ku9_user;
SELECT count(*) AS visible_rows FROM ku9.users;
SELECT id = :'ada' AS own_row, email FROM ku9.users;
SELECT count(*) AS grace_visible FROM ku9.users WHERE id = :'grace';
-- every column but the password hash
SELECT id = :'ada' AS own, role, app_metadata, user_metadata, email_confirmed_at IS NOT NULL AS confirmed,
       banned_until, created_at IS NOT NULL AS created, updated_at IS NOT NULL AS updated,
       last_sign_in_at IS NOT NULL AS signed_in
FROM ku9.users;
SELECT pg_temp.sqlerr($$SELECT encrypted_password FROM ku9.users$$);
SELECT pg_temp.sqlerr($$SELECT * FROM ku9.users$$);
SELECT pg_temp.sqlerr($$SELECT count(*) FROM ku9.users WHERE encrypted_password LIKE '$2a$%'$$);
-- updates its own user_metadata, and nothing else
UPDATE ku9.users SET user_metadata = '{"theme": "dark"}';
UPDATE ku9.users SET user_metadata = '{"theme": "stolen"}' WHERE id = :'grace';
SELECT pg_temp.sqlerr($$UPDATE ku9.users SET role = 'ku9_service'$$);
SELECT pg_temp.sqlerr($$UPDATE ku9.users SET email = 'evil@example.com'$$);
SELECT pg_temp.sqlerr($$UPDATE ku9.users SET app_metadata = '{"admin": true}'$$);
SELECT pg_temp.sqlerr($$UPDATE ku9.users SET banned_until = NULL$$);
SELECT pg_temp.sqlerr($$UPDATE ku9.users SET encrypted_password = 'x'$$);
SELECT pg_temp.sqlerr($$UPDATE ku9.users SET email_confirmed_at = now()$$);
-- metadata stays an object
SELECT pg_temp.sqlerr($$UPDATE ku9.users SET user_metadata = '[1]'$$);
-- nor insert or delete users
SELECT pg_temp.sqlerr($$INSERT INTO ku9.users (email) VALUES ('new@example.com')$$);
SELECT pg_temp.sqlerr($$DELETE FROM ku9.users$$);
-- nor read sessions or refresh tokens
SELECT pg_temp.sqlerr($$SELECT count(*) FROM ku9.sessions$$);
SELECT pg_temp.sqlerr($$SELECT count(*) FROM ku9.refresh_tokens$$);
SELECT pg_temp.sqlerr($$UPDATE ku9.sessions SET revoked_at = NULL$$);
-- another user's claims see another row
SELECT set_config('request.jwt.claims', jsonb_build_object('sub', :'grace', 'role', 'ku9_user')::text, false) IS NOT NULL AS claims_grace;
SELECT count(*) AS visible_rows, bool_and(id = :'grace') AS is_grace FROM ku9.users;
-- and without claims, none
RESET request.jwt.claims;
SELECT count(*) AS visible_rows FROM ku9.users;
RESET ROLE;
SELECT email, user_metadata FROM ku9.users WHERE id IN (:'ada', :'grace') ORDER BY email;

-- deleting a user deletes their sessions and refresh tokens
SELECT count(*) > 0 AS had_sessions FROM ku9.sessions WHERE user_id = :'ada';
SELECT count(*) > 0 AS had_tokens FROM ku9.refresh_tokens WHERE user_id = :'ada';
DELETE FROM ku9.users WHERE id = :'ada';
SELECT count(*) AS sessions FROM ku9.sessions WHERE user_id = :'ada';
SELECT count(*) AS tokens FROM ku9.refresh_tokens WHERE user_id = :'ada';
SELECT pg_temp.try_sign_in('ada@example.com', 'correct horse battery') AS deleted_user;

-- without a JWT secret, sign_in cannot issue tokens
RESET ku9.jwt_secret;
SELECT pg_temp.try_sign_in('grace@example.com', 'correct horse battery') AS no_secret;
SET ku9.jwt_secret = 'regress-secret-0123456789abcdefghijklmnop';

RESET ku9.bcrypt_cost;
RESET ku9.auth_max_failures;
DROP EXTENSION ku9;
