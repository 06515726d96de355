/*
 * auth: JSON Web Tokens
 */

CREATE FUNCTION ku9.jwt_sign(claims jsonb) RETURNS text
    AS 'MODULE_PATHNAME', 'ku9_jwt_sign'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.jwt_sign(jsonb) IS
    'sign claims as a token: HS256 with ku9.jwt_secret, or RS256/ES256 with the newest key, per ku9.jwt_alg';

CREATE FUNCTION ku9.jwt_verify(token text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_jwt_verify'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.jwt_verify(text) IS
    'check a token (HS256, RS256 or ES256: signature, key, exp, nbf, iat, aud, iss) and return its claims';

-- minting tokens is for trusted backends; checking them is for anyone
REVOKE ALL ON FUNCTION ku9.jwt_sign(jsonb), ku9.jwt_verify(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.jwt_sign(jsonb) TO ku9_service;
GRANT EXECUTE ON FUNCTION ku9.jwt_verify(text) TO ku9_anon, ku9_user, ku9_service;

/*
 * auth: users, sessions, refresh tokens
 *
 * Secrets (password hashes, refresh token hashes) live in tables no request
 * role can read; the functions that use them are SECURITY DEFINER with a
 * pinned search_path.  A user reads and updates their own profile through
 * column grants and row-level security on ku9.users.
 */

-- pgcrypto's functions, qualified with the schema it was installed in
DO $pgcrypto$
DECLARE
    s text := (SELECT pg_catalog.quote_ident(n.nspname)
               FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
               WHERE e.extname OPERATOR(pg_catalog.=) 'pgcrypto');
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION ku9._crypt(password text, salt text) RETURNS text LANGUAGE sql STRICT VOLATILE PARALLEL SAFE AS %L',
        pg_catalog.format('SELECT %s.crypt($1, $2)', s));
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION ku9._gen_salt(cost integer) RETURNS text LANGUAGE sql STRICT VOLATILE PARALLEL SAFE AS %L',
        pg_catalog.format('SELECT %s.gen_salt(''bf'', $1)', s));
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION ku9._random_token() RETURNS text LANGUAGE sql VOLATILE PARALLEL SAFE AS %L',
        pg_catalog.format('SELECT pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(%s.gen_random_bytes(32), ''base64''), ''+/'', ''-_''), ''='')', s));
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION ku9._hmac(data text, key text) RETURNS bytea LANGUAGE sql STRICT IMMUTABLE PARALLEL SAFE AS %L',
        pg_catalog.format('SELECT %s.hmac($1, $2, ''sha256'')', s));
END
$pgcrypto$;
COMMENT ON FUNCTION ku9._crypt(text, text) IS 'pgcrypto crypt(), for ku9''s own use';
COMMENT ON FUNCTION ku9._gen_salt(integer) IS 'pgcrypto gen_salt(''bf''), for ku9''s own use';
COMMENT ON FUNCTION ku9._random_token() IS '32 random bytes as base64url, for ku9''s own use';
COMMENT ON FUNCTION ku9._hmac(text, text) IS 'pgcrypto hmac(sha256), for ku9''s own use';

CREATE FUNCTION ku9._throttle_check(keys text[], what text DEFAULT 'failed sign-in attempts') RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_throttle_check'
    LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9._throttle_check(text[], text) IS 'raise PT429 while a key is locked, for ku9''s own use';
CREATE FUNCTION ku9._throttle_failure(key text, max_failures integer, window_s integer, lockout_s integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'ku9_throttle_failure'
    LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9._throttle_failure(text, integer, integer, integer) IS 'count a failed sign-in, for ku9''s own use';
CREATE FUNCTION ku9._throttle_reset(key text) RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_throttle_reset'
    LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9._throttle_reset(text) IS 'forget failed sign-ins, for ku9''s own use';

CREATE TABLE ku9.users (
    id                  uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    email               text NOT NULL,
    encrypted_password  text,
    role                text NOT NULL DEFAULT 'ku9_user',
    email_confirmed_at  timestamptz,
    banned_until        timestamptz,
    app_metadata        jsonb NOT NULL DEFAULT '{}',
    user_metadata       jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_sign_in_at     timestamptz,
    CONSTRAINT users_email_check CHECK (pg_catalog.length(email) OPERATOR(pg_catalog.<=) 254),
    CONSTRAINT users_metadata_check CHECK (pg_catalog.jsonb_typeof(user_metadata) OPERATOR(pg_catalog.=) 'object'
                                           AND pg_catalog.jsonb_typeof(app_metadata) OPERATOR(pg_catalog.=) 'object'),
    -- metadata rides in every token: keep it small
    CONSTRAINT users_metadata_size CHECK (pg_catalog.pg_column_size(user_metadata) OPERATOR(pg_catalog.<=) 16384
                                          AND pg_catalog.pg_column_size(app_metadata) OPERATOR(pg_catalog.<=) 16384)
);
CREATE UNIQUE INDEX users_email_key ON ku9.users (pg_catalog.lower(email));
COMMENT ON TABLE ku9.users IS 'ku9 users; a user sees and updates only their own row';
SELECT pg_catalog.pg_extension_config_dump('ku9.users', '');

CREATE TABLE ku9.sessions (
    id              uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES ku9.users ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    refreshed_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    user_agent      text,
    ip              text,
    refresh_key     text NOT NULL DEFAULT ku9._random_token()
);
CREATE INDEX sessions_user_id_idx ON ku9.sessions (user_id);
COMMENT ON TABLE ku9.sessions IS 'ku9 sign-in sessions; a revoked session''s tokens no longer work';
SELECT pg_catalog.pg_extension_config_dump('ku9.sessions', '');

CREATE TABLE ku9.refresh_tokens (
    token_hash      bytea PRIMARY KEY,
    session_id      uuid NOT NULL REFERENCES ku9.sessions ON DELETE CASCADE,
    user_id         uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rotated_at      timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON ku9.refresh_tokens (session_id);
COMMENT ON TABLE ku9.refresh_tokens IS 'SHA-256 hashes of refresh tokens; the one with rotated_at NULL is a session''s current token';
SELECT pg_catalog.pg_extension_config_dump('ku9.refresh_tokens', '');

REVOKE ALL ON ku9.users, ku9.sessions, ku9.refresh_tokens FROM PUBLIC;
-- a user's own profile: every column but the password hash; only metadata is theirs to change
GRANT SELECT (id, email, role, email_confirmed_at, banned_until, app_metadata, user_metadata,
              created_at, updated_at, last_sign_in_at) ON ku9.users TO ku9_user;
GRANT UPDATE (user_metadata) ON ku9.users TO ku9_user;
ALTER TABLE ku9.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_own_row ON ku9.users TO ku9_user
    USING (id OPERATOR(pg_catalog.=) (SELECT ku9.uid()))
    WITH CHECK (id OPERATOR(pg_catalog.=) (SELECT ku9.uid()));

/*
 * _seconds returns a time setting (shown in units such as 1h or 15min) in
 * seconds.
 */
CREATE FUNCTION ku9._seconds(setting text) RETURNS integer
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT extract(epoch FROM ku9._setting(setting)::interval)::integer
$$;
COMMENT ON FUNCTION ku9._seconds(text) IS 'a time setting in seconds, for ku9''s own use';

/*
 * _count_failure counts a failure for key (nothing when key is NULL) with
 * the limit in the setting limit_setting and the window and lockout of
 * ku9.auth_failure_window and ku9.auth_lockout.
 */
CREATE FUNCTION ku9._count_failure(key text, limit_setting text) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ku9._throttle_failure(key, ku9._setting(limit_setting)::integer,
                                 ku9._seconds('ku9.auth_failure_window'), ku9._seconds('ku9.auth_lockout'))
$$;
COMMENT ON FUNCTION ku9._count_failure(text, text) IS 'count a throttled failure, for ku9''s own use';

/*
 * _claimed_session returns the session_id claim, or NULL when it is absent
 * or not a uuid.
 */
CREATE FUNCTION ku9._claimed_session() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- no exception block (a subtransaction per request): uuid_in's forms, checked first
    SELECT CASE WHEN s ~* '^\{?[0-9a-f]{4}(-?[0-9a-f]{4}){7}\}?$' THEN s::uuid END
    FROM (SELECT ku9.claims() ->> 'session_id' AS s) c
$$;
COMMENT ON FUNCTION ku9._claimed_session() IS 'the session_id claim as uuid, for ku9''s own use';

/*
 * _session_live tells whether sid is a session of user uid that is neither
 * revoked nor expired.
 */
CREATE FUNCTION ku9._session_live(sid uuid, uid uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ku9.sessions
                   WHERE id = sid AND user_id = uid AND revoked_at IS NULL AND expires_at > now())
$$;
COMMENT ON FUNCTION ku9._session_live(uuid, uuid) IS 'whether a session of a user is live, for ku9''s own use';

/*
 * _check_password errors (22023) unless password meets the policy: at
 * least ku9.password_min_length characters and at most 72 bytes (bcrypt
 * ignores the rest, so longer ones are refused rather than cut).
 */
CREATE FUNCTION ku9._check_password(password text) RETURNS void
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF password IS NULL THEN
        RAISE EXCEPTION 'password must not be null' USING ERRCODE = '22004';
    END IF;
    IF length(password) < ku9._setting('ku9.password_min_length')::int THEN
        RAISE EXCEPTION 'password is too short'
            USING ERRCODE = '22023',
                  DETAIL = format('A password has at least %s characters.', ku9._setting('ku9.password_min_length'));
    END IF;
    IF octet_length(password) > 72 THEN
        RAISE EXCEPTION 'password is too long'
            USING ERRCODE = '22023',
                  DETAIL = 'A password has at most 72 bytes (bcrypt ignores the rest).';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9._check_password(text) IS 'raise 22023 unless a password meets the policy, for ku9''s own use';

/*
 * _password_matches compares a password with a bcrypt hash; $2b$ and $2y$
 * hashes (bcrypt's other spellings, from imports) are read as $2a$, which
 * is the same algorithm.
 */
CREATE FUNCTION ku9._password_matches(password text, hash text) RETURNS boolean
    LANGUAGE sql VOLATILE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN hash IS NULL OR password IS NULL OR octet_length(password) > 72 THEN false
        WHEN hash ~ '^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$' THEN
            ku9._crypt(password, '$2a$' || substr(hash, 5)) = '$2a$' || substr(hash, 5)
        ELSE false
    END
$$;
COMMENT ON FUNCTION ku9._password_matches(text, text) IS 'bcrypt comparison, for ku9''s own use';

/*
 * _session_response issues an access token for a session and returns the
 * sign-in response: {access_token, token_type, expires_in, expires_at,
 * refresh_token, user}.
 */
CREATE FUNCTION ku9._session_response(u ku9.users, session_id uuid, refresh_token text) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    now_s bigint := floor(extract(epoch FROM clock_timestamp()));
    exp_s bigint := now_s + ku9._seconds('ku9.jwt_exp');
    claims jsonb;
BEGIN
    claims := jsonb_build_object(
        'sub', u.id, 'role', u.role, 'iat', now_s, 'exp', exp_s,
        'session_id', session_id, 'email', u.email,
        'app_metadata', u.app_metadata, 'user_metadata', u.user_metadata);
    IF ku9._setting('ku9.jwt_aud') <> '' THEN
        claims := claims || jsonb_build_object('aud', ku9._setting('ku9.jwt_aud'));
    END IF;
    IF ku9._setting('ku9.jwt_iss') <> '' THEN
        claims := claims || jsonb_build_object('iss', ku9._setting('ku9.jwt_iss'));
    END IF;
    RETURN jsonb_build_object(
        'access_token', ku9.jwt_sign(claims),
        'token_type', 'bearer',
        'expires_in', ku9._seconds('ku9.jwt_exp'),
        'expires_at', exp_s,
        'refresh_token', refresh_token,
        'user', jsonb_build_object(
            'id', u.id, 'email', u.email, 'role', u.role,
            'email_confirmed_at', u.email_confirmed_at,
            'app_metadata', u.app_metadata, 'user_metadata', u.user_metadata,
            'created_at', u.created_at, 'last_sign_in_at', u.last_sign_in_at));
END
$$;
COMMENT ON FUNCTION ku9._session_response(ku9.users, uuid, text) IS 'sign-in response for a session, for ku9''s own use';

/*
 * _client_address returns the caller's address from PostgREST's
 * request.headers, or NULL: the last x-forwarded-for entry (the one the
 * proxy in front of PostgREST added; earlier ones come from the client and
 * can be forged), else x-real-ip.
 */
CREATE FUNCTION ku9._client_address() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nullif(btrim(coalesce(
        (regexp_match(h ->> 'x-forwarded-for', '([^,]*)$'))[1],
        h ->> 'x-real-ip')), '')
    FROM (SELECT CASE WHEN coalesce(current_setting('request.headers', true), '') ~ '^\s*\{'
                      THEN current_setting('request.headers', true)::jsonb END AS h) s
$$;
COMMENT ON FUNCTION ku9._client_address() IS 'client address from request.headers, for ku9''s own use';

CREATE FUNCTION ku9.sign_up(email text, password text, metadata jsonb DEFAULT '{}') RETURNS uuid
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF email IS NULL THEN
        RAISE EXCEPTION 'email must not be null' USING ERRCODE = '22004';
    END IF;
    email := btrim(email, E' \t\r\n');
    IF email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(email) > 254 THEN
        RAISE EXCEPTION 'invalid email address' USING ERRCODE = '22023';
    END IF;
    PERFORM ku9._check_password(password);
    IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF pg_column_size(metadata) > 16384 THEN
        RAISE EXCEPTION 'metadata is too large' USING ERRCODE = '54000',
            DETAIL = 'User metadata has at most 16384 bytes; it is copied into every token.';
    END IF;
    INSERT INTO ku9.users (email, encrypted_password, user_metadata, email_confirmed_at)
    VALUES (email, ku9._crypt(password, ku9._gen_salt(ku9._setting('ku9.bcrypt_cost')::int)),
            metadata,
            CASE WHEN ku9._setting('ku9.auth_confirm_email')::boolean THEN NULL ELSE now() END)
    ON CONFLICT ((lower(users.email))) DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'a user with this email already exists' USING ERRCODE = '23505';
    END IF;
    IF ku9._setting('ku9.auth_confirm_email')::boolean THEN
        PERFORM ku9._mail_token(u, 'email_confirmation') FROM ku9.users u WHERE u.id = new_id;
    END IF;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION ku9.sign_up(text, text, jsonb) IS
    'create a user with an email and password; returns the user id';

CREATE FUNCTION ku9.sign_in(email text, password text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    u ku9.users;
    addr text := ku9._client_address();
    email_key text := 'email:' || lower(btrim(coalesce(left(email, 300), ''), E' \t\r\n'));
    addr_key text := 'addr:' || addr;
    ok boolean;
    sid uuid;
    token text := ku9._random_token();
BEGIN
    PERFORM ku9._throttle_check(ARRAY[email_key, addr_key]);

    SELECT * INTO u FROM ku9.users WHERE lower(users.email) = lower(btrim(left(sign_in.email, 300), E' \t\r\n'));
    -- without a user, hash anyway, so that the time tells nothing
    ok := ku9._password_matches(password,
              coalesce(u.encrypted_password,
                       '$2a$' || lpad(ku9._setting('ku9.bcrypt_cost'), 2, '0') || '$' || repeat('.', 53)))
          AND u.id IS NOT NULL;
    IF NOT ok THEN
        PERFORM ku9._count_failure(email_key, 'ku9.auth_max_failures');
        PERFORM ku9._count_failure(addr_key, 'ku9.auth_address_max_failures');
        RAISE EXCEPTION 'invalid email or password' USING ERRCODE = '28P01';
    END IF;

    IF u.banned_until IS NOT NULL AND u.banned_until > now() THEN
        RAISE EXCEPTION 'user is banned' USING ERRCODE = '28000',
            DETAIL = format('The ban ends at %s.', u.banned_until);
    END IF;
    IF u.email_confirmed_at IS NULL AND ku9._setting('ku9.auth_confirm_email')::boolean THEN
        RAISE EXCEPTION 'email not confirmed' USING ERRCODE = '28000',
            HINT = 'Follow the link in the confirmation email first.';
    END IF;

    PERFORM ku9._throttle_reset(email_key);
    UPDATE ku9.users SET last_sign_in_at = now() WHERE id = u.id RETURNING * INTO u;
    INSERT INTO ku9.sessions (user_id, expires_at, ip, user_agent)
    VALUES (u.id, now() + make_interval(secs => ku9._seconds('ku9.refresh_token_lifetime')), addr,
            CASE WHEN coalesce(current_setting('request.headers', true), '') ~ '^\s*\{'
                 THEN current_setting('request.headers', true)::jsonb ->> 'user-agent' END)
    RETURNING id INTO sid;
    INSERT INTO ku9.refresh_tokens (token_hash, session_id, user_id)
    VALUES (sha256(convert_to(token, 'UTF8')), sid, u.id);
    RETURN ku9._session_response(u, sid, token);
END
$$;
COMMENT ON FUNCTION ku9.sign_in(text, text) IS
    'check an email and password and start a session: access token, refresh token, user';

CREATE FUNCTION ku9.refresh_session(refresh_token text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    rt ku9.refresh_tokens;
    s ku9.sessions;
    u ku9.users;
    child text;
    child_hash bytea;
    child_current boolean;
BEGIN
    IF refresh_token IS NULL OR length(refresh_token) > 200 THEN
        RAISE EXCEPTION 'invalid refresh token' USING ERRCODE = '28000';
    END IF;
    SELECT * INTO rt FROM ku9.refresh_tokens
    WHERE token_hash = sha256(convert_to(refresh_token, 'UTF8')) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invalid refresh token' USING ERRCODE = '28000';
    END IF;
    SELECT * INTO s FROM ku9.sessions WHERE id = rt.session_id FOR UPDATE;
    IF s.revoked_at IS NOT NULL OR s.expires_at <= now() THEN
        RAISE EXCEPTION 'session has ended' USING ERRCODE = '28000';
    END IF;

    -- the next token is derived from this one with the session's secret key,
    -- so that a second refresh with the same token gets the same next token,
    -- and nobody without the key can compute it
    child := rtrim(translate(encode(ku9._hmac(refresh_token, s.refresh_key), 'base64'), '+/', '-_'), '=');
    child_hash := sha256(convert_to(child, 'UTF8'));

    IF rt.rotated_at IS NOT NULL THEN
        SELECT rotated_at IS NULL INTO child_current FROM ku9.refresh_tokens WHERE token_hash = child_hash;
        IF NOT (coalesce(child_current, false)
                AND clock_timestamp() - rt.rotated_at <= make_interval(secs => ku9._seconds('ku9.refresh_reuse_interval'))) THEN
            -- a rotated token came back: it may have been stolen; end the session.
            -- This must be committed, so it is reported, not raised.
            UPDATE ku9.sessions SET revoked_at = now(), revoked_reason = 'refresh token reused'
            WHERE id = s.id;
            PERFORM set_config('response.status', '401', true);
            RETURN jsonb_build_object(
                'error', 'refresh_token_reused',
                'message', 'refresh token was already used; the session has been revoked');
        END IF;
    ELSE
        UPDATE ku9.refresh_tokens SET rotated_at = clock_timestamp() WHERE token_hash = rt.token_hash;
        INSERT INTO ku9.refresh_tokens (token_hash, session_id, user_id)
        VALUES (child_hash, s.id, s.user_id);
        UPDATE ku9.sessions SET refreshed_at = now(),
            expires_at = now() + make_interval(secs => ku9._seconds('ku9.refresh_token_lifetime'))
        WHERE id = s.id;
    END IF;

    SELECT * INTO u FROM ku9.users WHERE id = s.user_id;
    IF u.banned_until IS NOT NULL AND u.banned_until > now() THEN
        RAISE EXCEPTION 'user is banned' USING ERRCODE = '28000';
    END IF;
    RETURN ku9._session_response(u, s.id, child);
END
$$;
COMMENT ON FUNCTION ku9.refresh_session(text) IS
    'trade a refresh token for new tokens; reusing a rotated token revokes the session';

CREATE FUNCTION ku9.sign_out(scope text DEFAULT 'session') RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    uid uuid := ku9.uid();
    sid uuid;
    n integer;
BEGIN
    IF uid IS NULL THEN
        RAISE EXCEPTION 'not signed in' USING ERRCODE = '28000';
    END IF;
    sid := ku9._claimed_session();
    IF scope NOT IN ('session', 'others', 'global') OR scope IS NULL THEN
        RAISE EXCEPTION 'invalid sign-out scope "%"', scope USING ERRCODE = '22023',
            HINT = 'The scopes are ''session'', ''others'' and ''global''.';
    END IF;
    IF sid IS NULL THEN
        RAISE EXCEPTION 'the token has no session' USING ERRCODE = '28000';
    END IF;
    -- the claims must name a live session of their user: a token of a
    -- session that has ended (or claims made up without one) ends nothing
    IF NOT ku9._session_live(sid, uid) THEN
        RAISE EXCEPTION 'session has ended' USING ERRCODE = '28000';
    END IF;
    UPDATE ku9.sessions SET revoked_at = now(), revoked_reason = 'sign out (' || scope || ')'
    WHERE user_id = uid AND revoked_at IS NULL
      AND CASE scope WHEN 'session' THEN id = sid
                     WHEN 'others' THEN id <> sid
                     ELSE true END;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ku9.sign_out(text) IS
    'end this session (''session''), the user''s other sessions (''others'') or all (''global''); returns how many';

CREATE FUNCTION ku9.authenticate(token text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_authenticate'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.authenticate(text) IS
    'verify an access token and its session, and set request.jwt.claims for this transaction';

/*
 * auth: one-time tokens (password reset, email confirmation) and the mail
 * queue.  A token is 32 random bytes shown once, in the job put on the
 * queue ku9_mail for a mailer; only its SHA-256 hash is stored.  A user has
 * at most one pending token of each kind: a new request replaces the old.
 */

SELECT ku9.create_queue('ku9_mail', '{"max_attempts": 10, "backoff_base": 5}');
-- the mail queue belongs to the extension: its registry row is not dumped,
-- and neither are its messages, which carry live one-time tokens that must
-- not end up in backups (a restored database starts with an empty queue)
SELECT pg_catalog.pg_extension_config_dump('ku9.queues', 'WHERE name OPERATOR(pg_catalog.<>) ''ku9_mail''');

CREATE TABLE ku9.one_time_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES ku9.users ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('password_reset', 'email_confirmation')),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    UNIQUE (user_id, kind)
);
COMMENT ON TABLE ku9.one_time_tokens IS 'hashes of pending password-reset and email-confirmation tokens';
SELECT pg_catalog.pg_extension_config_dump('ku9.one_time_tokens', '');
REVOKE ALL ON ku9.one_time_tokens FROM PUBLIC;

/*
 * _mail_token makes a one-time token of a kind for a user, replacing any
 * pending one, and sends the mail job {type, to, user_id, token,
 * expires_at} to ku9_mail.
 */
CREATE FUNCTION ku9._mail_token(u ku9.users, kind text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text := ku9._random_token();
    expires timestamptz := now() + make_interval(secs => ku9._seconds('ku9.auth_token_lifetime'));
BEGIN
    INSERT INTO ku9.one_time_tokens (token_hash, user_id, kind, expires_at)
    VALUES (sha256(convert_to(token, 'UTF8')), u.id, kind, expires)
    ON CONFLICT ON CONSTRAINT one_time_tokens_user_id_kind_key DO UPDATE
        SET token_hash = excluded.token_hash, created_at = now(),
            expires_at = excluded.expires_at, used_at = NULL;
    PERFORM ku9.send('ku9_mail', jsonb_build_object(
        'type', kind, 'to', u.email, 'user_id', u.id,
        'token', token, 'expires_at', expires));
END
$$;
COMMENT ON FUNCTION ku9._mail_token(ku9.users, text) IS 'make a one-time token and queue its mail, for ku9''s own use';

/*
 * _use_token consumes a one-time token of a kind and returns its user;
 * 28000 when it is unknown, used or expired.
 */
CREATE FUNCTION ku9._use_token(token text, kind text) RETURNS ku9.users
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t ku9.one_time_tokens;
    u ku9.users;
BEGIN
    SELECT * INTO t FROM ku9.one_time_tokens
    WHERE token_hash = sha256(convert_to(coalesce(token, ''), 'UTF8'))
      AND one_time_tokens.kind = _use_token.kind
    FOR UPDATE;
    IF NOT FOUND OR t.used_at IS NOT NULL OR t.expires_at <= now() THEN
        RAISE EXCEPTION 'invalid or expired token' USING ERRCODE = '28000';
    END IF;
    UPDATE ku9.one_time_tokens SET used_at = now() WHERE token_hash = t.token_hash;
    SELECT * INTO u FROM ku9.users WHERE id = t.user_id FOR UPDATE;
    RETURN u;
END
$$;
COMMENT ON FUNCTION ku9._use_token(text, text) IS 'consume a one-time token, for ku9''s own use';

CREATE FUNCTION ku9.change_password(old_password text, new_password text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    u ku9.users;
    sid uuid;
BEGIN
    sid := ku9._claimed_session();
    SELECT * INTO u FROM ku9.users WHERE id = ku9.uid() FOR UPDATE;
    -- the claims must name a live session of the user, as for sign_out
    IF NOT FOUND OR sid IS NULL OR NOT ku9._session_live(sid, u.id) THEN
        RAISE EXCEPTION 'not signed in' USING ERRCODE = '28000';
    END IF;
    -- guessing the old password here is throttled like signing in
    PERFORM ku9._throttle_check(ARRAY['email:' || lower(u.email)]);
    IF NOT ku9._password_matches(old_password, u.encrypted_password) THEN
        PERFORM ku9._count_failure('email:' || lower(u.email), 'ku9.auth_max_failures');
        RAISE EXCEPTION 'invalid password' USING ERRCODE = '28P01';
    END IF;
    PERFORM ku9._check_password(new_password);
    UPDATE ku9.users
    SET encrypted_password = ku9._crypt(new_password, ku9._gen_salt(ku9._setting('ku9.bcrypt_cost')::int)),
        updated_at = now()
    WHERE id = u.id;
    -- other sessions may belong to whoever knew the old password
    UPDATE ku9.sessions SET revoked_at = now(), revoked_reason = 'password changed'
    WHERE user_id = u.id AND revoked_at IS NULL AND id IS DISTINCT FROM sid;
END
$$;
COMMENT ON FUNCTION ku9.change_password(text, text) IS
    'change the signed-in user''s password (the old one is needed); ends their other sessions';

/*
 * _mail_request_allowed counts a reset or confirmation request for an email
 * (whether or not it has an account) and its client address, and raises
 * PT429 once either made ku9.auth_max_failures requests in
 * ku9.auth_failure_window, so that nobody can flood a mailbox or keep
 * replacing someone's pending token.
 */
CREATE FUNCTION ku9._mail_request_allowed(email text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    email_key text := 'mail:' || lower(left(coalesce(email, ''), 254));
    addr text := ku9._client_address();
BEGIN
    PERFORM ku9._throttle_check(ARRAY[email_key, 'mailaddr:' || addr], 'requests for mail');
    PERFORM ku9._count_failure(email_key, 'ku9.auth_max_failures');
    PERFORM ku9._count_failure('mailaddr:' || addr, 'ku9.auth_address_max_failures');
END
$$;
COMMENT ON FUNCTION ku9._mail_request_allowed(text) IS 'rate-limit reset and confirmation mails, for ku9''s own use';

CREATE FUNCTION ku9.request_password_reset(email text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    u ku9.users;
BEGIN
    PERFORM ku9._mail_request_allowed(request_password_reset.email);
    SELECT * INTO u FROM ku9.users
    WHERE lower(users.email) = lower(btrim(coalesce(left(request_password_reset.email, 300), ''), E' \t\r\n'));
    -- the same answer whether or not the email has an account
    IF FOUND THEN
        PERFORM ku9._mail_token(u, 'password_reset');
    END IF;
END
$$;
COMMENT ON FUNCTION ku9.request_password_reset(text) IS
    'queue a password-reset mail (on ku9_mail) when the email has an account; answers the same either way';

CREATE FUNCTION ku9.reset_password(token text, new_password text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    u ku9.users;
BEGIN
    PERFORM ku9._check_password(new_password);
    u := ku9._use_token(token, 'password_reset');
    UPDATE ku9.users
    SET encrypted_password = ku9._crypt(new_password, ku9._gen_salt(ku9._setting('ku9.bcrypt_cost')::int)),
        -- the mail reached its owner: the address is confirmed too
        email_confirmed_at = coalesce(email_confirmed_at, now()),
        updated_at = now()
    WHERE id = u.id;
    UPDATE ku9.sessions SET revoked_at = now(), revoked_reason = 'password reset'
    WHERE user_id = u.id AND revoked_at IS NULL;
END
$$;
COMMENT ON FUNCTION ku9.reset_password(text, text) IS
    'set a new password with a reset token from the mail; ends every session of the user';

CREATE FUNCTION ku9.request_email_confirmation(email text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    u ku9.users;
BEGIN
    PERFORM ku9._mail_request_allowed(request_email_confirmation.email);
    SELECT * INTO u FROM ku9.users
    WHERE lower(users.email) = lower(btrim(coalesce(left(request_email_confirmation.email, 300), ''), E' \t\r\n'))
      AND email_confirmed_at IS NULL;
    IF FOUND THEN
        PERFORM ku9._mail_token(u, 'email_confirmation');
    END IF;
END
$$;
COMMENT ON FUNCTION ku9.request_email_confirmation(text) IS
    'queue a confirmation mail (on ku9_mail) when the email has an unconfirmed account; answers the same either way';

CREATE FUNCTION ku9.confirm_email(token text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    u ku9.users;
BEGIN
    u := ku9._use_token(token, 'email_confirmation');
    UPDATE ku9.users SET email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now()
    WHERE id = u.id;
END
$$;
COMMENT ON FUNCTION ku9.confirm_email(text) IS 'confirm an email with the token from the confirmation mail';

/*
 * auth: administration, for ku9_service (EXECUTE is granted to it alone)
 */

/*
 * _check_role errors (22023) unless role is one ku9_authenticator may switch
 * to, so that PostgREST can act on tokens naming it.
 */
CREATE FUNCTION ku9._check_role(role text) RETURNS void
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL OR role = 'ku9_authenticator'
       OR NOT EXISTS (SELECT 1 FROM pg_roles
                      WHERE rolname = role AND NOT rolcanlogin AND NOT rolsuper
                        AND NOT rolbypassrls AND NOT rolcreaterole)
       OR NOT pg_has_role('ku9_authenticator', role, 'MEMBER') THEN
        RAISE EXCEPTION 'invalid user role "%"', role USING ERRCODE = '22023',
            HINT = 'A user role is a NOLOGIN role without superuser, BYPASSRLS or CREATEROLE that is granted to ku9_authenticator, such as ku9_user.';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9._check_role(text) IS 'raise 22023 unless a role suits users, for ku9''s own use';

CREATE FUNCTION ku9.admin_create_user(email text, password text DEFAULT NULL, password_hash text DEFAULT NULL,
                                      role text DEFAULT 'ku9_user', email_confirmed boolean DEFAULT true,
                                      user_metadata jsonb DEFAULT '{}', app_metadata jsonb DEFAULT '{}')
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    new_id uuid;
    hash text;
BEGIN
    IF email IS NULL OR btrim(email, E' \t\r\n') !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(btrim(email, E' \t\r\n')) > 254 THEN
        RAISE EXCEPTION 'invalid email address' USING ERRCODE = '22023';
    END IF;
    IF password IS NOT NULL AND password_hash IS NOT NULL THEN
        RAISE EXCEPTION 'give a password or a password_hash, not both' USING ERRCODE = '22023';
    ELSIF password IS NOT NULL THEN
        PERFORM ku9._check_password(password);
        hash := ku9._crypt(password, ku9._gen_salt(ku9._setting('ku9.bcrypt_cost')::int));
    ELSIF password_hash IS NOT NULL THEN
        IF password_hash !~ '^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$' THEN
            RAISE EXCEPTION 'password_hash is not a bcrypt hash' USING ERRCODE = '22023',
                DETAIL = 'A bcrypt hash starts with $2a$, $2b$ or $2y$, then the cost and 53 characters.';
        END IF;
        hash := password_hash;
    END IF;
    PERFORM ku9._check_role(role);
    IF coalesce(jsonb_typeof(user_metadata), 'object') <> 'object'
       OR coalesce(jsonb_typeof(app_metadata), 'object') <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ku9.users (email, encrypted_password, role, email_confirmed_at, user_metadata, app_metadata)
    VALUES (btrim(email, E' \t\r\n'), hash, role, CASE WHEN email_confirmed THEN now() END,
            coalesce(user_metadata, '{}'), coalesce(app_metadata, '{}'))
    ON CONFLICT ((lower(users.email))) DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'a user with this email already exists' USING ERRCODE = '23505';
    END IF;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION ku9.admin_create_user(text, text, text, text, boolean, jsonb, jsonb) IS
    'create (or import, with a bcrypt password_hash) a user';

CREATE FUNCTION ku9.admin_set_role(user_id uuid, role text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
BEGIN
    PERFORM ku9._check_role(role);
    UPDATE ku9.users SET role = admin_set_role.role, updated_at = now() WHERE id = user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist', user_id USING ERRCODE = '42704';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9.admin_set_role(uuid, text) IS
    'set the role a user''s tokens name (a role granted to ku9_authenticator)';

CREATE FUNCTION ku9.admin_ban(user_id uuid, until timestamptz) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
BEGIN
    UPDATE ku9.users SET banned_until = until, updated_at = now() WHERE id = user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist', user_id USING ERRCODE = '42704';
    END IF;
    IF until > now() THEN
        UPDATE ku9.sessions SET revoked_at = now(), revoked_reason = 'banned'
        WHERE sessions.user_id = admin_ban.user_id AND revoked_at IS NULL;
    END IF;
END
$$;
COMMENT ON FUNCTION ku9.admin_ban(uuid, timestamptz) IS
    'ban a user until a time (ending their sessions), or lift the ban with NULL';

CREATE FUNCTION ku9.admin_set_app_metadata(user_id uuid, app_metadata jsonb) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
BEGIN
    IF app_metadata IS NULL OR jsonb_typeof(app_metadata) <> 'object' THEN
        RAISE EXCEPTION 'app_metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    UPDATE ku9.users SET app_metadata = admin_set_app_metadata.app_metadata, updated_at = now()
    WHERE id = user_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist', user_id USING ERRCODE = '42704';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9.admin_set_app_metadata(uuid, jsonb) IS
    'set a user''s app_metadata (claims only the service writes)';

CREATE FUNCTION ku9.admin_delete_user(user_id uuid) RETURNS boolean
    LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
    WITH d AS (DELETE FROM ku9.users WHERE id = admin_delete_user.user_id RETURNING 1)
    SELECT count(*) > 0 FROM d
$$;
COMMENT ON FUNCTION ku9.admin_delete_user(uuid) IS
    'delete a user with their sessions and tokens; false when there was none';

CREATE FUNCTION ku9.admin_list_users(lim integer DEFAULT 100, off integer DEFAULT 0)
    RETURNS TABLE (id uuid, email text, role text, email_confirmed_at timestamptz,
                   banned_until timestamptz, created_at timestamptz, last_sign_in_at timestamptz,
                   active_sessions bigint)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
    SELECT u.id, u.email, u.role, u.email_confirmed_at, u.banned_until, u.created_at, u.last_sign_in_at,
           (SELECT count(*) FROM ku9.sessions s
            WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > now())
    FROM ku9.users u
    ORDER BY u.created_at, u.id
    LIMIT least(greatest(lim, 0), 10000) OFFSET greatest(off, 0)
$$;
COMMENT ON FUNCTION ku9.admin_list_users(integer, integer) IS
    'list users (at most 10000 a page), oldest first';

REVOKE ALL ON FUNCTION
    ku9._crypt(text, text), ku9._gen_salt(integer), ku9._random_token(), ku9._hmac(text, text),
    ku9._throttle_check(text[], text), ku9._throttle_failure(text, integer, integer, integer),
    ku9._throttle_reset(text), ku9._seconds(text), ku9._check_password(text), ku9._password_matches(text, text),
    ku9._session_response(ku9.users, uuid, text), ku9._client_address(),
    ku9.sign_up(text, text, jsonb), ku9.sign_in(text, text), ku9.refresh_session(text),
    ku9.sign_out(text), ku9.authenticate(text),
    ku9._mail_token(ku9.users, text), ku9._use_token(text, text), ku9._check_role(text),
    ku9._mail_request_allowed(text), ku9._count_failure(text, text), ku9._claimed_session(),
    ku9._session_live(uuid, uuid),
    ku9.change_password(text, text), ku9.request_password_reset(text), ku9.reset_password(text, text),
    ku9.request_email_confirmation(text), ku9.confirm_email(text),
    ku9.admin_create_user(text, text, text, text, boolean, jsonb, jsonb), ku9.admin_set_role(uuid, text),
    ku9.admin_ban(uuid, timestamptz), ku9.admin_set_app_metadata(uuid, jsonb),
    ku9.admin_delete_user(uuid), ku9.admin_list_users(integer, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.sign_up(text, text, jsonb), ku9.sign_in(text, text),
    ku9.refresh_session(text), ku9.authenticate(text)
    TO ku9_anon, ku9_user, ku9_service;
GRANT EXECUTE ON FUNCTION ku9.sign_out(text), ku9.change_password(text, text) TO ku9_user, ku9_service;
GRANT EXECUTE ON FUNCTION ku9.request_password_reset(text), ku9.reset_password(text, text),
    ku9.request_email_confirmation(text), ku9.confirm_email(text)
    TO ku9_anon, ku9_user, ku9_service;
GRANT EXECUTE ON FUNCTION
    ku9.admin_create_user(text, text, text, text, boolean, jsonb, jsonb), ku9.admin_set_role(uuid, text),
    ku9.admin_ban(uuid, timestamptz), ku9.admin_set_app_metadata(uuid, jsonb),
    ku9.admin_delete_user(uuid), ku9.admin_list_users(integer, integer)
    TO ku9_service;

/*
 * auth: asymmetric signing keys (RS256, ES256) and the JWKS
 */

CREATE TABLE ku9.signing_keys (
    kid         text PRIMARY KEY,
    alg         text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    private_key text NOT NULL,
    public_key  text NOT NULL,
    jwk         jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at  timestamptz
);
COMMENT ON TABLE ku9.signing_keys IS 'RS256/ES256 key pairs; the newest unretired key of ku9.jwt_alg signs';
SELECT pg_catalog.pg_extension_config_dump('ku9.signing_keys', '');
REVOKE ALL ON ku9.signing_keys FROM PUBLIC;

CREATE FUNCTION ku9._generate_signing_key(alg text, OUT private_pem text, OUT public_pem text, OUT jwk jsonb)
    AS 'MODULE_PATHNAME', 'ku9_generate_signing_key'
    LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION ku9._generate_signing_key(text) IS 'a new key pair and its JWK, for ku9''s own use';

CREATE FUNCTION ku9.rotate_signing_key(alg text DEFAULT 'RS256') RETURNS text
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    k record;
    new_kid text := replace(gen_random_uuid()::text, '-', '');
BEGIN
    IF alg IS NULL OR alg NOT IN ('RS256', 'ES256') THEN
        RAISE EXCEPTION 'unsupported signing algorithm "%"', alg USING ERRCODE = '22023',
            HINT = 'Signing keys are RS256 or ES256.';
    END IF;
    -- one rotation at a time, so that each retires the key before it
    LOCK TABLE ku9.signing_keys IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO k FROM ku9._generate_signing_key(alg);
    -- the old key stops signing, and verifies until its last tokens expire
    UPDATE ku9.signing_keys SET retired_at = now()
    WHERE signing_keys.alg = rotate_signing_key.alg AND retired_at IS NULL;
    INSERT INTO ku9.signing_keys (kid, alg, private_key, public_key, jwk)
    VALUES (new_kid, alg, k.private_pem, k.public_pem, k.jwk || jsonb_build_object('kid', new_kid));
    RETURN new_kid;
END
$$;
COMMENT ON FUNCTION ku9.rotate_signing_key(text) IS
    'make a new RS256 or ES256 signing key; the old one keeps verifying until its tokens expire; returns the kid';

CREATE FUNCTION ku9.jwks() RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
    SELECT jsonb_build_object('keys', coalesce(jsonb_agg(jwk ORDER BY created_at DESC), '[]'))
    FROM ku9.signing_keys
    WHERE retired_at IS NULL
       OR retired_at + make_interval(secs => ku9._seconds('ku9.jwt_exp') + ku9._seconds('ku9.jwt_leeway')) > now()
$$;
COMMENT ON FUNCTION ku9.jwks() IS 'the public signing keys that may have signed a valid token, as a JWKS document';

REVOKE ALL ON FUNCTION ku9._generate_signing_key(text), ku9.rotate_signing_key(text), ku9.jwks() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.rotate_signing_key(text) TO ku9_service;
GRANT EXECUTE ON FUNCTION ku9.jwks() TO ku9_anon, ku9_user, ku9_service;
