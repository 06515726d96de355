/*
 * http: the ku9_api schema, ku9's HTTP surface for PostgREST (db-schemas)
 * and the embedded gateway
 *
 * Each ku9_api function wraps the ku9 function of the same name with the
 * same argument names, so that POST /rpc/<name> takes the ku9 function's
 * arguments as a JSON object.  They are SECURITY INVOKER: the ku9 function
 * does the checks for the request's role and claims, exactly as over SQL.
 * Nothing else of the database is in ku9_api, and the request roles reach
 * nothing outside it over PostgREST (db-schemas = ku9_api).
 *
 * ku9_anon may call the sign-up and sign-in flows and jwks only; ku9_user
 * and ku9_service everything here (the ku9 functions decide the rest).
 */

COMMENT ON SCHEMA ku9_api IS 'ku9''s HTTP surface: PostgREST''s db-schemas, and the embedded gateway''s';

-- auth
CREATE FUNCTION ku9_api.sign_up(email text, password text, metadata jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('user_id', ku9.sign_up(email, password, metadata)) $$;
CREATE FUNCTION ku9_api.sign_in(email text, password text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.sign_in(email, password) $$;
CREATE FUNCTION ku9_api.refresh_session(refresh_token text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.refresh_session(refresh_token) $$;
CREATE FUNCTION ku9_api.sign_out(scope text DEFAULT 'session') RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('sessions_ended', ku9.sign_out(scope)) $$;
CREATE FUNCTION ku9_api.change_password(old_password text, new_password text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.change_password(old_password, new_password); SELECT '{}'::jsonb $$;
CREATE FUNCTION ku9_api.request_password_reset(email text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.request_password_reset(email); SELECT '{}'::jsonb $$;
CREATE FUNCTION ku9_api.reset_password(token text, new_password text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.reset_password(token, new_password); SELECT '{}'::jsonb $$;
CREATE FUNCTION ku9_api.request_email_confirmation(email text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.request_email_confirmation(email); SELECT '{}'::jsonb $$;
CREATE FUNCTION ku9_api.confirm_email(token text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.confirm_email(token); SELECT '{}'::jsonb $$;
CREATE FUNCTION ku9_api.jwks() RETURNS jsonb
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.jwks() $$;

-- documents
CREATE FUNCTION ku9_api.find(collection text, filter jsonb DEFAULT '{}', options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT coalesce(jsonb_agg(d), '[]') FROM ku9.find(collection, filter, options) AS d $$;
CREATE FUNCTION ku9_api.find_one(collection text, filter jsonb DEFAULT '{}', options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.find_one(collection, filter, options) $$;
CREATE FUNCTION ku9_api.find_page(collection text, filter jsonb DEFAULT '{}', options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.find_page(collection, filter, options) $$;
CREATE FUNCTION ku9_api.count_documents(collection text, filter jsonb DEFAULT '{}') RETURNS bigint
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.count_documents(collection, filter) $$;
CREATE FUNCTION ku9_api.insert_one(collection text, document jsonb) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.insert_one(collection, document) $$;
CREATE FUNCTION ku9_api.insert_many(collection text, documents jsonb) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.insert_many(collection, documents) $$;
CREATE FUNCTION ku9_api.update_one(collection text, filter jsonb, update jsonb, options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.update_one(collection, filter, update, options) $$;
CREATE FUNCTION ku9_api.update_many(collection text, filter jsonb, update jsonb, options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.update_many(collection, filter, update, options) $$;
CREATE FUNCTION ku9_api.replace_one(collection text, filter jsonb, replacement jsonb, options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.replace_one(collection, filter, replacement, options) $$;
CREATE FUNCTION ku9_api.delete_one(collection text, filter jsonb) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.delete_one(collection, filter) $$;
CREATE FUNCTION ku9_api.delete_many(collection text, filter jsonb) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.delete_many(collection, filter) $$;

-- queues (each call still needs the queue's grant, or ku9_service)
CREATE FUNCTION ku9_api.send(queue text, payload jsonb, options jsonb DEFAULT '{}') RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('msg_id', ku9.send(queue, payload, options)) $$;
CREATE FUNCTION ku9_api.read(queue text, qty integer DEFAULT 1, vt integer DEFAULT NULL, wait_ms integer DEFAULT 0)
    RETURNS SETOF ku9.message
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM ku9.read(queue, qty, vt, wait_ms) $$;
CREATE FUNCTION ku9_api.ack(queue text, ids bigint[]) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('acked', ku9.ack(queue, ids)) $$;
CREATE FUNCTION ku9_api.nack(queue text, id bigint, delay integer DEFAULT 0) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('found', ku9.nack(queue, id, delay)) $$;
CREATE FUNCTION ku9_api.fail(queue text, id bigint, error text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('outcome', ku9.fail(queue, id, error)) $$;

-- notifications
CREATE FUNCTION ku9_api.inbox(after_id bigint DEFAULT 0, lim integer DEFAULT 50)
    RETURNS TABLE (id bigint, topic text, payload jsonb, created_at timestamptz, read boolean)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM ku9.inbox(after_id, lim) $$;
CREATE FUNCTION ku9_api.mark_read(ids bigint[]) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('marked', ku9.mark_read(ids)) $$;
CREATE FUNCTION ku9_api.unread_count() RETURNS bigint
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.unread_count() $$;
CREATE FUNCTION ku9_api.subscribe(topic text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('subscribed', ku9.subscribe(topic)) $$;
CREATE FUNCTION ku9_api.unsubscribe(topic text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('unsubscribed', ku9.unsubscribe(topic)) $$;
CREATE FUNCTION ku9_api.list_subscriptions() RETURNS TABLE (topic text, subscribed_at timestamptz)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM ku9.list_subscriptions() $$;
CREATE FUNCTION ku9_api.register_device(platform text, token text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT ku9.register_device(platform, token); SELECT '{}'::jsonb $$;
CREATE FUNCTION ku9_api.unregister_device(token text) RETURNS jsonb
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT jsonb_build_object('removed', ku9.unregister_device(token)) $$;
CREATE FUNCTION ku9_api.list_devices() RETURNS TABLE (platform text, token text, created_at timestamptz)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT * FROM ku9.list_devices() $$;

-- every wrapper says which ku9 function it calls
DO $comments$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'ku9_api'::regnamespace LOOP
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', f,
            pg_catalog.format('POST /rpc/%s: ku9.%s with the same arguments, for PostgREST and the gateway',
                (SELECT proname FROM pg_catalog.pg_proc WHERE oid OPERATOR(pg_catalog.=) f),
                (SELECT proname FROM pg_catalog.pg_proc WHERE oid OPERATOR(pg_catalog.=) f)));
    END LOOP;
END
$comments$;

/*
 * _require_live_session refuses (PT401) a token that names a session which
 * has ended (sign-out, refresh token reuse, ban, deleted user) although its
 * signature and exp are still good.  For pre_request and the event stream.
 */
CREATE FUNCTION ku9._require_live_session(uid uuid) RETURNS void
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sid uuid := ku9._claimed_session();
BEGIN
    IF sid IS NOT NULL AND NOT ku9._session_live(sid, uid) THEN
        RAISE EXCEPTION 'session has ended' USING ERRCODE = 'PT401',
            HINT = 'The token belongs to a session that was signed out or revoked; sign in again.';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9._require_live_session(uuid) IS 'PT401 unless the claims'' session is live, for ku9''s own use';
REVOKE ALL ON FUNCTION ku9._require_live_session(uuid) FROM PUBLIC;

/*
 * pre_request is PostgREST's db-pre-request (and the gateway calls it too):
 * it runs before every request, after the role and request.jwt.claims are
 * set.  A token that names a session which has ended (sign-out, refresh
 * token reuse, ban, deleted user) is refused with PT401 although its
 * signature and exp are still good; requests beyond
 * ku9.rate_limit_per_user per user or ku9.rate_limit_per_address per
 * client address in ku9.rate_limit_window are refused with PT429
 * (PostgREST answers PTxyz with HTTP status xyz).
 */
CREATE FUNCTION ku9_api.pre_request() RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    uid uuid := ku9.uid();
    addr text;
    per_user integer := ku9._setting('ku9.rate_limit_per_user')::integer;
    per_addr integer := ku9._setting('ku9.rate_limit_per_address')::integer;
    win integer;
    keys text[] := ARRAY[]::text[];
BEGIN
    -- each lookup only when it can matter: this runs before every request
    IF uid IS NOT NULL THEN
        PERFORM ku9._require_live_session(uid);
    END IF;
    IF per_user > 0 AND uid IS NOT NULL THEN
        keys := keys || ('rate:user:' || uid);
    END IF;
    IF per_addr > 0 THEN
        addr := ku9._client_address();
        IF addr IS NOT NULL THEN
            keys := keys || ('rate:address:' || addr);
        END IF;
    END IF;
    IF cardinality(keys) = 0 THEN
        RETURN;
    END IF;
    win := ku9._seconds('ku9.rate_limit_window');
    PERFORM ku9._throttle_check(keys, 'requests');
    -- count this request; the one that reaches the limit locks the key for the window
    IF per_user > 0 AND uid IS NOT NULL THEN
        PERFORM ku9._throttle_failure('rate:user:' || uid, per_user, win, win);
    END IF;
    IF per_addr > 0 AND addr IS NOT NULL THEN
        PERFORM ku9._throttle_failure('rate:address:' || addr, per_addr, win, win);
    END IF;
END
$$;
COMMENT ON FUNCTION ku9_api.pre_request() IS
    'PostgREST''s db-pre-request: refuse tokens of ended sessions (PT401) and requests over the rate limits (PT429)';

/*
 * postgrest_config returns a postgrest.conf for this database: ku9_api as
 * the only schema, ku9_anon, pre_request, and the key PostgREST verifies
 * tokens with (the HS256 secret, or the JWKS of ku9's RS256/ES256 keys).
 * It holds the secret, so only superusers may call it.
 */
CREATE FUNCTION ku9.postgrest_config(db_uri text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    alg text := ku9._setting('ku9.jwt_alg');
    secret text := ku9._setting('ku9.jwt_secret');
    aud text := ku9._setting('ku9.jwt_aud');
    key text;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'permission denied to read the PostgREST configuration' USING ERRCODE = '42501',
            HINT = 'It holds the JWT secret: only superusers may call ku9.postgrest_config().';
    END IF;
    IF alg = 'HS256' THEN
        IF octet_length(secret) < 32 THEN
            RAISE EXCEPTION 'ku9.jwt_secret is not set (or shorter than 32 bytes)' USING ERRCODE = '55000',
                HINT = 'ALTER SYSTEM SET ku9.jwt_secret = ''…''; SELECT pg_reload_conf();';
        END IF;
        key := secret;
    ELSE
        key := ku9.jwks()::text;
    END IF;
    RETURN concat_ws(E'\n',
        '# postgrest.conf for ku9, made by ku9.postgrest_config() in database ' || quote_ident(current_database()),
        '# ku9_authenticator must be able to log in: ALTER ROLE ku9_authenticator LOGIN PASSWORD ''…'';',
        format('db-uri = "%s"', coalesce(db_uri, format('postgres://ku9_authenticator:PASSWORD@localhost:%s/%s',
                                                         current_setting('port'), current_database()))),
        'db-schemas = "ku9_api"',
        'db-anon-role = "ku9_anon"',
        'db-pre-request = "ku9_api.pre_request"',
        'db-extra-search-path = "pg_catalog"',
        format('jwt-secret = "%s"', replace(replace(key, '\', '\\'), '"', '\"')),
        CASE WHEN alg = 'HS256' THEN 'jwt-secret-is-base64 = false' END,
        CASE WHEN aud <> '' THEN format('jwt-aud = "%s"', aud) END,
        'jwt-role-claim-key = ".role"',
        '') ;
END
$$;
COMMENT ON FUNCTION ku9.postgrest_config(text) IS
    'a postgrest.conf for this database: ku9_api, ku9_anon, pre_request and the JWT key (superusers only: it holds the secret)';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ku9_api FROM PUBLIC;
REVOKE ALL ON FUNCTION ku9.postgrest_config(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9_api.sign_up(text, text, jsonb), ku9_api.sign_in(text, text),
    ku9_api.refresh_session(text), ku9_api.request_password_reset(text), ku9_api.reset_password(text, text),
    ku9_api.request_email_confirmation(text), ku9_api.confirm_email(text), ku9_api.jwks(),
    ku9_api.pre_request()
    TO ku9_anon;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ku9_api TO ku9_user, ku9_service;

/*
 * The embedded gateway (src/http/gateway.c) connects as ku9_authenticator,
 * as PostgREST does, and runs each request in one transaction of a pipeline:
 * ku9._gateway_begin (verify the bearer token, switch to its role, set the
 * request.* settings, run pre_request), then the ku9_api function.  These
 * helpers are for ku9_authenticator alone; once the role is switched they
 * are out of reach.
 */
GRANT USAGE ON SCHEMA ku9 TO ku9_authenticator;

/*
 * _gateway_begin prepares the transaction of one request as PostgREST does
 * (src/http/request.c): role (the token's "role" claim, or ku9_anon without
 * a token; only roles granted to ku9_authenticator, else 42501),
 * request.jwt.claims, request.method, request.path, request.headers,
 * request.cookies and search_path; a read-only transaction for GET and
 * HEAD; then, for kind 'rpc', ku9_api.pre_request().  Kind 'events' (the
 * event stream's reads) leaves the checks to ku9.events_after.
 */
CREATE FUNCTION ku9._gateway_begin(token text, method text, path text, headers text,
                                   cookies text, read_only boolean, kind text) RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_gateway_begin'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9._gateway_begin(text, text, text, text, text, boolean, text) IS
    'the start of each request of the embedded gateway: token, role, request settings, pre_request';

/*
 * _sse_notification is one notification as a server-sent event: its id is
 * the notification id.
 */
CREATE FUNCTION ku9._sse_notification(id bigint, topic text, payload jsonb, created_at timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT pg_catalog.format(E'id: %s\nevent: notification\ndata: %s\n\n', id,
                                   pg_catalog.json_build_object('id', id, 'topic', topic, 'payload', payload,
                                                                'created_at', created_at)) $$;
COMMENT ON FUNCTION ku9._sse_notification(bigint, text, jsonb, timestamptz) IS
    'a notification as a server-sent event, for the gateway';

/*
 * events_after reads the event stream of the signed-in user (GET
 * /events): what ku9._gateway_read reads for the user after after_id
 * (NULL: from now, for a stream without Last-Event-ID), at most lim, in
 * server-sent events form, with the user's id, the new cursor, how many
 * were read, the user's topics one per line (the channels the gateway
 * listens to for them), and of the collections asked for, those whose
 * change events the user may see, as "name<TAB>access" lines (owner: the
 * user's own documents; public_read: all; service: all, for ku9_service).
 * A token whose session has ended gets PT401.  held says that newer rows
 * wait for an older id still in flight (see _gateway_read).
 */
CREATE FUNCTION ku9.events_after(after_id bigint, lim integer, collections text[] DEFAULT '{}',
                                 OUT user_id uuid, OUT cursor bigint, OUT n integer,
                                 OUT stream text, OUT topics text, OUT follows text, OUT held boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    service boolean := ku9.role() = 'ku9_service';
BEGIN
    user_id := ku9.uid();
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'sign in to receive events' USING ERRCODE = 'PT401',
            HINT = 'Send a user''s access token as "Authorization: Bearer <token>" or "?access_token=<token>".';
    END IF;
    PERFORM ku9._require_live_session(user_id);
    IF lim IS NULL OR lim < 1 OR lim > 1000 THEN
        RAISE EXCEPTION 'lim must be from 1 to 1000, not %', coalesce(lim::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    SELECT r.cursor, r.n, r.stream, r.held INTO cursor, n, stream, held
      FROM ku9._gateway_read(ARRAY[user_id], ARRAY[after_id], lim) r;
    SELECT coalesce(string_agg(s.topic, E'\n' ORDER BY s.topic), '') INTO topics
      FROM ku9.list_subscriptions() s;
    SELECT coalesce(string_agg(c.name || E'\t' || c.access, E'\n' ORDER BY c.name), '') INTO follows
      FROM ku9.collections c
     WHERE c.name = ANY (coalesce(collections, '{}')) AND c.events
       AND (c.access <> 'service' OR service);
END
$$;
COMMENT ON FUNCTION ku9.events_after(bigint, integer, text[]) IS
    'the signed-in user''s notifications after a cursor, and the collections they may follow, for the gateway''s event stream';

/*
 * _gateway_read reads the event streams of users: for each (user, cursor)
 * by position, the user's inbox (direct notifications and subscription
 * windows, as ku9.inbox) after the cursor (NULL: from now), at most lim,
 * as server-sent events.  Only ids up to ku9._notification_horizon are
 * read, so a cursor never passes an id that commits later (hence VOLATILE:
 * the rows are read in a snapshot taken after the horizon); held says that
 * newer rows wait for it.  The gateway calls it for the streams a NOTIFY
 * woke, and events_after for one stream with its token.  Executable by
 * ku9_authenticator only: the gateway verified each stream's token when it
 * opened it, and verifies it again at every heartbeat re-read.
 */
CREATE FUNCTION ku9._gateway_read(users uuid[], cursors bigint[], lim integer)
    RETURNS TABLE (i integer, cursor bigint, n integer, stream text, held boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    last bigint;
    horizon bigint;
BEGIN
    -- first how far every id is settled, then (a new snapshot) the rows up to there
    last := (SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END FROM ku9.notification_seq s);
    horizon := ku9._notification_horizon(last);
    -- ku9._inbox_of's rows for every user in one set-based query (a call per
    -- user costs more than its index probes), each notification's text once
    RETURN QUERY
    WITH u AS (
        -- a NULL cursor (a new stream) starts now: at the horizon
        SELECT x.uid, coalesce(x.c, CASE WHEN horizon > 0 THEN horizon ELSE last END) AS c, x.i
        FROM unnest(users, cursors) WITH ORDINALITY AS x(uid, c, i)),
    hits AS (
        SELECT u.i, n.id FROM u
        CROSS JOIN LATERAL (SELECT n.id FROM ku9.notifications n
                            WHERE n.user_id = u.uid AND n.id > u.c ORDER BY n.id LIMIT lim) n
        UNION ALL
        SELECT u.i, n.id FROM u
        JOIN ku9.subscriptions s ON s.user_id = u.uid
        CROSS JOIN LATERAL (SELECT n.id FROM ku9.notifications n
                            WHERE n.topic_id = s.topic_id AND n.id > greatest(u.c, s.from_id)
                              AND (s.until_id IS NULL OR n.id < s.until_id)
                            ORDER BY n.id LIMIT lim) n),
    kept AS (
        SELECT r.i, r.id FROM (SELECT h.i, h.id, row_number() OVER (PARTITION BY h.i ORDER BY h.id) AS k
                               FROM hits h) r
        WHERE r.k <= lim),
    texts AS (
        SELECT m.id, ku9._sse_notification(m.id, t.name, m.payload, m.created_at) AS sse
        FROM (SELECT DISTINCT kept.id FROM kept WHERE kept.id <= horizon) d
        JOIN ku9.notifications m ON m.id = d.id
        LEFT JOIN ku9.topics t ON t.id = m.topic_id)
    SELECT u.i::integer,
           coalesce(max(k.id) FILTER (WHERE k.id <= horizon), u.c),
           (count(k.id) FILTER (WHERE k.id <= horizon))::integer,
           coalesce(string_agg(x.sse, '' ORDER BY k.id) FILTER (WHERE k.id <= horizon), ''),
           coalesce(bool_or(k.id > horizon), false)
    FROM u
    LEFT JOIN kept k ON k.i = u.i
    LEFT JOIN texts x ON x.id = k.id
    GROUP BY u.i, u.c;
END
$$;
COMMENT ON FUNCTION ku9._gateway_read(uuid[], bigint[], integer) IS
    'the notifications of many event streams after their cursors, for the gateway';

/*
 * _gateway_health: the database answers, and ku9's workers are up (as many
 * as ku9.workers asks for: else "degraded", which the gateway answers with
 * 503).
 */
CREATE FUNCTION ku9._gateway_health(OUT healthy boolean, OUT body text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.running >= w.expected,
           json_build_object('status', CASE WHEN w.running >= w.expected THEN 'ok' ELSE 'degraded' END,
                             'database', current_database(),
                             'workers', w.running, 'workers_expected', w.expected,
                             'gateways', (SELECT count(*) FROM pg_stat_activity
                                          WHERE backend_type = 'ku9 gateway'))::text
    FROM (SELECT (SELECT count(*) FROM pg_stat_activity
                  WHERE backend_type = 'ku9 worker' AND datname = current_database()) AS running,
                 CASE WHEN current_setting('ku9.database', true) = current_database()
                      THEN coalesce(current_setting('ku9.workers', true), '0')::integer ELSE 0 END AS expected) w
$$;
COMMENT ON FUNCTION ku9._gateway_health() IS 'GET /health of the gateway';

REVOKE ALL ON FUNCTION ku9._gateway_begin(text, text, text, text, text, boolean, text),
    ku9._gateway_read(uuid[], bigint[], integer), ku9._sse_notification(bigint, text, jsonb, timestamptz),
    ku9.events_after(bigint, integer, text[]), ku9._gateway_health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9._gateway_begin(text, text, text, text, text, boolean, text),
    ku9._gateway_read(uuid[], bigint[], integer),
    ku9._gateway_health() TO ku9_authenticator;
GRANT EXECUTE ON FUNCTION ku9.events_after(bigint, integer, text[]) TO ku9_anon, ku9_user, ku9_service;
GRANT EXECUTE ON FUNCTION ku9.metrics() TO ku9_authenticator;
