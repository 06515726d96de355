/*
 * notify: topics, subscriptions, inboxes, devices, push and realtime fan-out
 *
 * A topic message is one row of ku9.notifications, whatever the number of
 * subscribers: a subscriber reads it through their subscription (fan-out on
 * read).  A subscription is a window of message ids: the user sees the
 * topic's messages with from_id < id (and id < until_id once they have
 * unsubscribed); subscribing again opens a new window.  Ids come from one
 * sequence, so "published after they subscribed" means "numbered after".
 * Direct notifications are rows with user_id set.  Read state is a row per
 * (user, message) in ku9.notification_reads, for both kinds.
 *
 * Work that grows with the audience is done after commit by ku9's
 * background workers, in batches, from ku9.fanout_jobs: 'push' jobs put one
 * message per batch of devices into the queue ku9_push, and 'realtime' jobs
 * NOTIFY each subscriber's channel.  A batch and the job's cursor commit
 * together, so a crash resumes where the last batch ended: no device is
 * skipped, and none is sent twice by the fan-out.
 *
 * The tables are reachable only through the functions, which are SECURITY
 * DEFINER and act for ku9.uid(), the request's user.
 */

CREATE TABLE ku9.topics (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    self_subscribe  boolean NOT NULL DEFAULT false,
    user_channels   boolean NOT NULL DEFAULT true,
    retention       interval CHECK (retention BETWEEN '1 second' AND '100 years'),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT topics_name_check CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$')
);
COMMENT ON TABLE ku9.topics IS 'ku9 notification topics and their options';
SELECT pg_catalog.pg_extension_config_dump('ku9.topics', '');
SELECT pg_catalog.pg_extension_config_dump('ku9.topics_id_seq', '');

CREATE SEQUENCE ku9.notification_seq;
COMMENT ON SEQUENCE ku9.notification_seq IS 'ids of notifications and of subscription windows';
SELECT pg_catalog.pg_extension_config_dump('ku9.notification_seq', '');

/*
 * Notification ids are taken with _notification_id, which notes them as in
 * flight until the transaction ends, and read up to _notification_horizon,
 * so that a reader's cursor never passes an id that commits later (see
 * src/notify/horizon.c).
 */
CREATE FUNCTION ku9._notification_id() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ku9_notification_id'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9._notification_id() IS 'the next notification id, noted in flight until the transaction ends, for ku9''s own use';
CREATE FUNCTION ku9._notification_horizon(last bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ku9_notification_horizon'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ku9._notification_horizon(bigint) IS
    'the highest notification id a reader may pass: no lower id can still commit, for ku9''s own use';
REVOKE ALL ON FUNCTION ku9._notification_id(), ku9._notification_horizon(bigint) FROM PUBLIC;

CREATE TABLE ku9.notifications (
    id          bigint PRIMARY KEY DEFAULT ku9._notification_id(),
    topic_id    integer REFERENCES ku9.topics ON DELETE CASCADE,
    user_id     uuid REFERENCES ku9.users ON DELETE CASCADE,
    payload     jsonb NOT NULL,
    push        boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT notifications_one_audience CHECK ((topic_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX notifications_topic_idx ON ku9.notifications (topic_id, id) WHERE topic_id IS NOT NULL;
CREATE INDEX notifications_user_idx ON ku9.notifications (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX notifications_created_idx ON ku9.notifications (created_at);
COMMENT ON TABLE ku9.notifications IS 'topic messages (stored once) and direct notifications (stored per user)';
SELECT pg_catalog.pg_extension_config_dump('ku9.notifications', '');

CREATE TABLE ku9.subscriptions (
    topic_id        integer NOT NULL REFERENCES ku9.topics ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES ku9.users ON DELETE CASCADE,
    from_id         bigint NOT NULL,
    until_id        bigint,
    subscribed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    unsubscribed_at timestamptz,
    PRIMARY KEY (user_id, topic_id, from_id),
    CONSTRAINT subscriptions_window CHECK (until_id > from_id)
);
-- one open window per user and topic; the fan-out walks a topic's users in order
CREATE UNIQUE INDEX subscriptions_open_idx ON ku9.subscriptions (topic_id, user_id) WHERE until_id IS NULL;
CREATE INDEX subscriptions_topic_idx ON ku9.subscriptions (topic_id, user_id, from_id);
COMMENT ON TABLE ku9.subscriptions IS
    'subscription windows: the user sees the topic''s messages with from_id < id < until_id (until_id NULL: still subscribed)';
SELECT pg_catalog.pg_extension_config_dump('ku9.subscriptions', '');

CREATE TABLE ku9.notification_reads (
    user_id     uuid NOT NULL REFERENCES ku9.users ON DELETE CASCADE,
    id          bigint NOT NULL REFERENCES ku9.notifications ON DELETE CASCADE,
    read_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (user_id, id)
);
CREATE INDEX notification_reads_id_idx ON ku9.notification_reads (id);
COMMENT ON TABLE ku9.notification_reads IS 'read state: which user has read which notification';
SELECT pg_catalog.pg_extension_config_dump('ku9.notification_reads', '');

CREATE TABLE ku9.devices (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES ku9.users ON DELETE CASCADE,
    platform    text NOT NULL CHECK (platform IN ('fcm', 'apns', 'webpush')),
    token       text NOT NULL UNIQUE CHECK (length(token) BETWEEN 1 AND 4096),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX devices_user_idx ON ku9.devices (user_id, id);
COMMENT ON TABLE ku9.devices IS 'push targets: a user''s devices, by platform and token';
SELECT pg_catalog.pg_extension_config_dump('ku9.devices', '');
SELECT pg_catalog.pg_extension_config_dump('ku9.devices_id_seq', '');

CREATE TABLE ku9.fanout_jobs (
    notification_id bigint NOT NULL REFERENCES ku9.notifications ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('push', 'realtime')),
    after_user      uuid,
    after_device    bigint NOT NULL DEFAULT 0,
    batches         integer NOT NULL DEFAULT 0,
    targets         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (notification_id, kind)
);
COMMENT ON TABLE ku9.fanout_jobs IS
    'fan-out in progress: the recipients after (after_user, after_device) are still to be done';
SELECT pg_catalog.pg_extension_config_dump('ku9.fanout_jobs', '');

REVOKE ALL ON ku9.topics, ku9.notifications, ku9.subscriptions, ku9.notification_reads,
    ku9.devices, ku9.fanout_jobs, ku9.notification_seq FROM PUBLIC;
GRANT SELECT ON ku9.topics TO ku9_service;

-- the outbound push queue: one message per batch of devices, for a sender to
-- FCM, APNs or Web Push.  Like ku9_mail it belongs to the extension and is
-- not dumped: its messages carry device tokens, and are stale after a restore.
SELECT ku9.create_queue('ku9_push', '{"max_attempts": 10, "backoff_base": 5, "max_payload": 33554432}');
SELECT pg_catalog.pg_extension_config_dump('ku9.queues',
    'WHERE name OPERATOR(pg_catalog.<>) ALL (ARRAY[''ku9_mail'', ''ku9_push''])');

CREATE FUNCTION ku9._count(metric text, label text, n bigint DEFAULT 1) RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_count'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION ku9._count(text, text, bigint) IS 'add to a notify or worker metric, for ku9''s own use';
REVOKE ALL ON FUNCTION ku9._count(text, text, bigint) FROM PUBLIC;

/*
 * _me returns ku9.uid(), or raises 28000 when the request has no user.
 */
CREATE FUNCTION ku9._me() RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me uuid := ku9.uid();
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'not signed in' USING ERRCODE = '28000',
            HINT = 'Notifications belong to the user named by the sub claim of request.jwt.claims.';
    END IF;
    RETURN me;
END
$$;
COMMENT ON FUNCTION ku9._me() IS 'the request''s user, or 28000, for ku9''s own use';

/*
 * _topic returns the topic called name, or raises 42704.
 */
CREATE FUNCTION ku9._topic(name text) RETURNS ku9.topics
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    t ku9.topics;
BEGIN
    SELECT * INTO t FROM ku9.topics WHERE topics.name = _topic.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'topic "%" does not exist', name USING ERRCODE = '42704';
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION ku9._topic(text) IS 'a topic by name, or 42704, for ku9''s own use';

/*
 * _check_payload raises unless payload is a JSON value no larger than
 * ku9.notification_max_payload.
 */
CREATE FUNCTION ku9._check_payload(payload jsonb) RETURNS void
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    lim bigint := pg_size_bytes(ku9._setting('ku9.notification_max_payload'));
    size integer;
BEGIN
    IF payload IS NULL THEN
        RAISE EXCEPTION 'payload must not be null' USING ERRCODE = '22004';
    END IF;
    size := pg_column_size(payload);
    IF size > lim THEN
        RAISE EXCEPTION 'notification payload of % bytes is larger than the limit of % bytes', size, lim
            USING ERRCODE = '54000', HINT = 'The limit is the setting "ku9.notification_max_payload".';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9._check_payload(jsonb) IS 'raise unless a payload may be stored, for ku9''s own use';

/*
 * _publish_event queues the realtime NOTIFY of a stored message on the
 * channel ku9_topic_<name> or ku9_user_<uuid>: {"id", "topic"} only, never
 * the payload; PostgreSQL delivers it at commit.
 */
CREATE FUNCTION ku9._publish_event(channel text, id bigint, topic text) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_notify(channel, json_build_object('id', id, 'topic', topic)::text)
$$;
COMMENT ON FUNCTION ku9._publish_event(text, bigint, text) IS 'NOTIFY a message id, for ku9''s own use';

/* ------------------------------------------------------------------------
 * topics and subscriptions
 * ------------------------------------------------------------------------
 */

CREATE FUNCTION ku9.create_topic(name text, options jsonb DEFAULT '{}') RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    k text;
    v jsonb;
    self boolean := false;
    channels boolean := true;
    keep interval;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,47}$' THEN
        RAISE EXCEPTION 'invalid topic name "%"', name USING ERRCODE = '42602',
            HINT = 'A topic name starts with a lowercase letter and has at most 48 lowercase letters, digits and underscores.';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'create_topic options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(options) LOOP
        IF k IN ('self_subscribe', 'user_channels') THEN
            IF jsonb_typeof(v) <> 'boolean' THEN
                RAISE EXCEPTION 'create_topic option "%" must be true or false', k USING ERRCODE = '22023';
            END IF;
            IF k = 'self_subscribe' THEN self := v::boolean; ELSE channels := v::boolean; END IF;
        ELSIF k = 'retention' THEN
            BEGIN
                keep := CASE jsonb_typeof(v) WHEN 'number' THEN make_interval(secs => v::numeric::double precision)
                                             WHEN 'string' THEN (v #>> '{}')::interval END;
            EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR numeric_value_out_of_range
                           OR interval_field_overflow THEN
                keep := NULL;
            END;
            IF keep IS NULL OR keep < '1 second' OR keep > '100 years' THEN
                RAISE EXCEPTION 'create_topic option "retention" must be an interval from 1 second to 100 years'
                    USING ERRCODE = '22023', HINT = 'Give seconds as a number, or an interval such as "30 days".';
            END IF;
        ELSE
            RAISE EXCEPTION 'unknown create_topic option "%"', k USING ERRCODE = '22023',
                HINT = 'The options are self_subscribe, user_channels and retention.';
        END IF;
    END LOOP;
    INSERT INTO ku9.topics (name, self_subscribe, user_channels, retention)
    VALUES (create_topic.name, self, channels, keep)
    ON CONFLICT ON CONSTRAINT topics_name_key DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'topic "%" already exists', name USING ERRCODE = '42710';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9.create_topic(text, jsonb) IS
    'create a topic; options: self_subscribe (users may subscribe themselves), user_channels (NOTIFY each subscriber), retention';

CREATE FUNCTION ku9.drop_topic(name text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    DELETE FROM ku9.topics WHERE topics.name = drop_topic.name;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION ku9.drop_topic(text) IS
    'drop a topic with its messages and subscriptions; false when it does not exist';

/*
 * _subscribe opens (on) or closes (off) user_id's window on topic; allowed
 * tells whether the caller may do it for that user.  Returns whether
 * anything changed.
 */
CREATE FUNCTION ku9._subscribe(topic text, user_id uuid, subscribe boolean, service boolean) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    t ku9.topics;
    uid uuid := user_id;
BEGIN
    -- to users, a topic they may not subscribe to and no topic look alike
    SELECT * INTO t FROM ku9.topics WHERE name = topic;
    IF NOT FOUND OR (NOT service AND subscribe AND NOT t.self_subscribe) THEN
        IF service THEN
            PERFORM ku9._topic(topic);
        ELSIF NOT subscribe THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'permission denied to subscribe to topic "%"', topic USING ERRCODE = '42501',
            HINT = 'Users subscribe themselves only to existing topics made with {"self_subscribe": true}; ku9_service subscribes anyone.';
    END IF;
    IF uid IS NULL THEN
        IF service THEN
            RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = '22004';
        END IF;
        uid := ku9._me();
    END IF;
    IF NOT service THEN
        IF uid IS DISTINCT FROM ku9._me() THEN
            RAISE EXCEPTION 'permission denied to % another user', CASE WHEN subscribe THEN 'subscribe' ELSE 'unsubscribe' END
                USING ERRCODE = '42501', HINT = 'Only members of ku9_service manage other users'' subscriptions.';
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ku9.users u WHERE u.id = uid) THEN
        RAISE EXCEPTION 'user % does not exist', uid USING ERRCODE = '23503';
    END IF;
    IF subscribe THEN
        INSERT INTO ku9.subscriptions (topic_id, user_id, from_id)
        VALUES (t.id, uid, nextval('ku9.notification_seq'))
        ON CONFLICT (topic_id, user_id) WHERE until_id IS NULL DO NOTHING;
    ELSE
        UPDATE ku9.subscriptions s SET until_id = nextval('ku9.notification_seq'), unsubscribed_at = now()
        WHERE s.topic_id = t.id AND s.user_id = uid AND s.until_id IS NULL;
    END IF;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION ku9._subscribe(text, uuid, boolean, boolean) IS 'open or close a subscription window, for ku9''s own use';
REVOKE ALL ON FUNCTION ku9._subscribe(text, uuid, boolean, boolean) FROM PUBLIC;

/*
 * subscribe and unsubscribe are C and SECURITY INVOKER: they see whether
 * the caller acts as ku9_service, then call _subscribe as its owner.
 */
CREATE FUNCTION ku9.subscribe(topic text, user_id uuid DEFAULT ku9.uid()) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_subscribe'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.subscribe(text, uuid) IS
    'subscribe a user (by default the caller) to a topic; false when already subscribed';

CREATE FUNCTION ku9.unsubscribe(topic text, user_id uuid DEFAULT ku9.uid()) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_unsubscribe'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.unsubscribe(text, uuid) IS
    'unsubscribe a user (by default the caller) from a topic; false when not subscribed';

CREATE FUNCTION ku9.list_subscriptions() RETURNS TABLE (topic text, subscribed_at timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
    SELECT t.name, s.subscribed_at
    FROM ku9.subscriptions s JOIN ku9.topics t ON t.id = s.topic_id
    WHERE s.user_id = ku9._me() AND s.until_id IS NULL
    ORDER BY t.name
$$;
COMMENT ON FUNCTION ku9.list_subscriptions() IS 'the topics the caller is subscribed to';

/* ------------------------------------------------------------------------
 * publishing
 * ------------------------------------------------------------------------
 */

CREATE FUNCTION ku9.publish(topic text, payload jsonb, push boolean DEFAULT false) RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    t ku9.topics := ku9._topic(topic);
    nid bigint;
BEGIN
    PERFORM ku9._check_payload(payload);
    INSERT INTO ku9.notifications (topic_id, payload, push)
    VALUES (t.id, payload, coalesce(publish.push, false))
    RETURNING id INTO nid;
    IF publish.push THEN
        INSERT INTO ku9.fanout_jobs (notification_id, kind) VALUES (nid, 'push');
    END IF;
    IF t.user_channels THEN
        INSERT INTO ku9.fanout_jobs (notification_id, kind) VALUES (nid, 'realtime');
    END IF;
    PERFORM ku9._publish_event('ku9_topic_' || t.name, nid, t.name);
    PERFORM ku9._count('published', t.name);
    PERFORM ku9._fanout_queued(publish.push OR t.user_channels);
    RETURN nid;
END
$$;
COMMENT ON FUNCTION ku9.publish(text, jsonb, boolean) IS
    'store a message once for every subscriber of a topic; push: also to their devices; returns its id';

CREATE FUNCTION ku9.notify_user(user_id uuid, payload jsonb, push boolean DEFAULT false) RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    nid bigint;
BEGIN
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM ku9._check_payload(payload);
    IF NOT EXISTS (SELECT 1 FROM ku9.users u WHERE u.id = notify_user.user_id) THEN
        RAISE EXCEPTION 'user % does not exist', user_id USING ERRCODE = '23503';
    END IF;
    INSERT INTO ku9.notifications (user_id, payload, push)
    VALUES (notify_user.user_id, payload, coalesce(notify_user.push, false))
    RETURNING id INTO nid;
    IF notify_user.push THEN
        INSERT INTO ku9.fanout_jobs (notification_id, kind) VALUES (nid, 'push');
    END IF;
    PERFORM ku9._publish_event('ku9_user_' || notify_user.user_id, nid, NULL);
    PERFORM ku9._count('direct', NULL);
    PERFORM ku9._fanout_queued(coalesce(notify_user.push, false));
    RETURN nid;
END
$$;
COMMENT ON FUNCTION ku9.notify_user(uuid, jsonb, boolean) IS
    'store a notification for one user; push: also to their devices; returns its id';

/* ------------------------------------------------------------------------
 * reading
 * ------------------------------------------------------------------------
 */

/*
 * _visible returns the ids among ids that user me may see: their direct
 * notifications and the messages inside one of their subscription windows.
 */
CREATE FUNCTION ku9._visible(me uuid, ids bigint[]) RETURNS SETOF bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.id FROM ku9.notifications n
    WHERE n.id = ANY (ids)
      AND (n.user_id = me
           OR EXISTS (SELECT 1 FROM ku9.subscriptions s
                      WHERE s.user_id = me AND s.topic_id = n.topic_id
                        AND n.id > s.from_id AND (s.until_id IS NULL OR n.id < s.until_id)))
$$;
COMMENT ON FUNCTION ku9._visible(uuid, bigint[]) IS 'the ids a user may see, for ku9''s own use';

CREATE FUNCTION ku9.inbox(after_id bigint DEFAULT 0, lim integer DEFAULT 50)
    RETURNS TABLE (id bigint, topic text, payload jsonb, created_at timestamptz, read boolean)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
    SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    me uuid := ku9._me();
    after bigint := coalesce(after_id, 0);
    delivered bigint;
BEGIN
    IF lim IS NULL OR lim < 1 OR lim > 1000 THEN
        RAISE EXCEPTION 'lim must be from 1 to 1000, not %', coalesce(lim::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    -- the ids first (index-only scans, one per subscription window), then
    -- the rows of the lim that win
    RETURN QUERY
    WITH ids AS (
        (SELECT n.id FROM ku9.notifications n
         WHERE n.user_id = me AND n.id > after
         ORDER BY n.id LIMIT lim)
        UNION ALL
        (SELECT n.id
         FROM ku9.subscriptions s
         CROSS JOIN LATERAL (
             SELECT n.id FROM ku9.notifications n
             WHERE n.topic_id = s.topic_id AND n.id > greatest(after, s.from_id)
               AND (s.until_id IS NULL OR n.id < s.until_id)
             ORDER BY n.id LIMIT lim) n
         WHERE s.user_id = me)
        ORDER BY id LIMIT lim)
    SELECT m.id, t.name, m.payload, m.created_at,
           EXISTS (SELECT 1 FROM ku9.notification_reads r WHERE r.user_id = me AND r.id = m.id)
    FROM ids JOIN ku9.notifications m ON m.id = ids.id
    LEFT JOIN ku9.topics t ON t.id = m.topic_id
    ORDER BY m.id;
    GET DIAGNOSTICS delivered = ROW_COUNT;
    PERFORM ku9._count('inbox', NULL, delivered);
END
$$;
COMMENT ON FUNCTION ku9.inbox(bigint, integer) IS
    'the caller''s direct and topic notifications with id > after_id, in id order, at most lim (keyset pages)';

CREATE FUNCTION ku9.mark_read(ids bigint[]) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me uuid := ku9._me();
    n integer;
BEGIN
    IF ids IS NULL THEN
        RAISE EXCEPTION 'ids must not be null' USING ERRCODE = '22004';
    END IF;
    IF cardinality(ids) > 10000 THEN
        RAISE EXCEPTION 'mark_read takes at most 10000 ids, not %', cardinality(ids) USING ERRCODE = '54000';
    END IF;
    INSERT INTO ku9.notification_reads (user_id, id)
    SELECT me, v FROM ku9._visible(me, ids) AS v
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION ku9.mark_read(bigint[]) IS
    'mark the caller''s notifications read; ids they cannot see are ignored; returns how many became read';

CREATE FUNCTION ku9.unread_count() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
    SET jit = off
AS $$
    WITH me AS (SELECT ku9._me() AS uid),
    visible AS (
        SELECT n.id FROM ku9.notifications n, me WHERE n.user_id = me.uid
        UNION ALL
        SELECT n.id FROM me, ku9.subscriptions s
        JOIN ku9.notifications n ON n.topic_id = s.topic_id AND n.id > s.from_id
                                AND (s.until_id IS NULL OR n.id < s.until_id)
        WHERE s.user_id = me.uid)
    SELECT count(*) FROM visible v, me
    WHERE NOT EXISTS (SELECT 1 FROM ku9.notification_reads r WHERE r.user_id = me.uid AND r.id = v.id)
$$;
COMMENT ON FUNCTION ku9.unread_count() IS 'how many of the caller''s notifications are unread';

/* ------------------------------------------------------------------------
 * devices
 * ------------------------------------------------------------------------
 */

CREATE FUNCTION ku9.register_device(platform text, token text) RETURNS void
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    me uuid := ku9._me();
BEGIN
    IF platform IS NULL OR platform NOT IN ('fcm', 'apns', 'webpush') THEN
        RAISE EXCEPTION 'invalid device platform "%"', platform USING ERRCODE = '22023',
            HINT = 'The platforms are fcm, apns and webpush.';
    END IF;
    IF token IS NULL OR length(token) NOT BETWEEN 1 AND 4096 THEN
        RAISE EXCEPTION 'a device token has 1 to 4096 characters' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ku9.users u WHERE u.id = me) THEN
        RAISE EXCEPTION 'user % does not exist', me USING ERRCODE = '23503';
    END IF;
    -- a token names one device: registering it again moves it to this user
    INSERT INTO ku9.devices (user_id, platform, token)
    VALUES (me, register_device.platform, register_device.token)
    ON CONFLICT ON CONSTRAINT devices_token_key DO UPDATE
        SET user_id = excluded.user_id, platform = excluded.platform, updated_at = now();
END
$$;
COMMENT ON FUNCTION ku9.register_device(text, text) IS
    'register a push target (fcm, apns or webpush) for the caller; a known token moves to the caller';

CREATE FUNCTION ku9.unregister_device(token text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    DELETE FROM ku9.devices d WHERE d.token = unregister_device.token AND d.user_id = ku9._me();
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION ku9.unregister_device(text) IS
    'remove one of the caller''s devices; false when they have no device with that token';

CREATE FUNCTION ku9.list_devices() RETURNS TABLE (platform text, token text, created_at timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
    SELECT d.platform, d.token, d.created_at FROM ku9.devices d WHERE d.user_id = ku9._me() ORDER BY d.id
$$;
COMMENT ON FUNCTION ku9.list_devices() IS 'the caller''s registered devices';

/* ------------------------------------------------------------------------
 * fan-out
 * ------------------------------------------------------------------------
 */

/*
 * _fanout_queued says, without preloading, that no worker will do the
 * fan-out just queued.
 */
CREATE FUNCTION ku9._fanout_queued(queued boolean) RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_fanout_queued'
    LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION ku9._fanout_queued(boolean) IS 'notice when no worker will fan out, for ku9''s own use';

/*
 * fanout_step does one batch of the oldest fan-out job nobody else is
 * doing: up to batch_size recipients after the job's cursor.  A push batch
 * becomes one message of ku9_push; a realtime batch, one NOTIFY per user.
 * The batch, the queue message and the cursor commit together.  Returns
 * how many recipients it handled (0: no job was waiting).
 */
CREATE FUNCTION ku9.fanout_step(batch_size integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
    SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    nil constant uuid := '00000000-0000-0000-0000-000000000000';
    -- a cursor's after_device meaning "all of after_user's devices are done"
    all_devices_done constant bigint := 9223372036854775807;
    j ku9.fanout_jobs;
    n ku9.notifications;
    tname text;
    done integer;
    last_user uuid;
    last_device bigint;
    targets jsonb;
    users uuid[];
    got integer;
    more jsonb;
    got_user uuid;
    got_device bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 100000 THEN
        RAISE EXCEPTION 'batch_size must be from 1 to 100000, not %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    LOOP
        SELECT * INTO j FROM ku9.fanout_jobs ORDER BY notification_id, kind
        LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN 0;
        END IF;
        SELECT * INTO n FROM ku9.notifications WHERE id = j.notification_id;
        SELECT name INTO tname FROM ku9.topics WHERE id = n.topic_id;

        IF j.kind = 'push' THEN
            -- the next batch_size devices of the recipients, in (user,
            -- device) order after the cursor
            IF n.user_id IS NOT NULL THEN
                SELECT count(*)::integer,
                       jsonb_agg(jsonb_build_object('user_id', b.user_id, 'platform', b.platform, 'token', b.token)
                                 ORDER BY b.id),
                       max(b.user_id::text)::uuid, max(b.id)
                INTO done, targets, last_user, last_device
                FROM (SELECT d.user_id, d.id, d.platform, d.token FROM ku9.devices d
                      WHERE d.user_id = n.user_id AND d.id > j.after_device
                      ORDER BY d.id LIMIT batch_size) b;
            ELSE
                -- fill the batch: take the next batch_size subscribers (an
                -- index scan that stops), then their devices after the
                -- cursor; when they had too few, go on after the last of them
                done := 0;
                targets := '[]';
                last_user := j.after_user;
                last_device := j.after_device;
                LOOP
                    SELECT array_agg(s.user_id ORDER BY s.user_id) INTO users
                    FROM (SELECT s.user_id FROM ku9.subscriptions s
                          WHERE s.topic_id = n.topic_id
                            AND s.user_id >= coalesce(last_user, nil)
                            -- the cursor's user only if some of their devices may be left
                            AND (last_user IS NULL OR s.user_id > last_user
                                 OR last_device < all_devices_done)
                            AND s.from_id < n.id AND (s.until_id IS NULL OR s.until_id > n.id)
                          ORDER BY s.user_id
                          LIMIT batch_size) s;
                    SELECT count(*)::integer,
                           coalesce(jsonb_agg(jsonb_build_object('user_id', b.user_id, 'platform', b.platform,
                                                                 'token', b.token) ORDER BY b.user_id, b.id), '[]'),
                           (array_agg(b.user_id ORDER BY b.user_id DESC, b.id DESC))[1],
                           (array_agg(b.id ORDER BY b.user_id DESC, b.id DESC))[1]
                    INTO got, more, got_user, got_device
                    FROM (SELECT d.user_id, d.id, d.platform, d.token
                          FROM unnest(users) AS u(user_id)
                          JOIN ku9.devices d ON d.user_id = u.user_id
                          WHERE last_user IS NULL OR d.user_id > last_user OR d.id > last_device
                          ORDER BY d.user_id, d.id
                          LIMIT batch_size - done) b;
                    done := done + got;
                    targets := targets || more;
                    IF got > 0 THEN
                        last_user := got_user;
                        last_device := got_device;
                    END IF;
                    -- full, or no subscriber left after these
                    EXIT WHEN done = batch_size OR coalesce(cardinality(users), 0) < batch_size;
                    -- these subscribers' devices are all taken
                    last_user := users[batch_size];
                    last_device := all_devices_done;
                END LOOP;
            END IF;
            IF done > 0 THEN
                PERFORM ku9.send('ku9_push', jsonb_build_object(
                    'notification_id', n.id, 'topic', tname, 'payload', n.payload, 'devices', targets));
                PERFORM ku9._count('push_jobs', NULL);
                PERFORM ku9._count('push_devices', NULL, done);
            END IF;
        ELSE
            -- the next subscribers, each told on their own channel
            SELECT array_agg(s.user_id ORDER BY s.user_id) INTO users
            FROM (SELECT s.user_id FROM ku9.subscriptions s
                  WHERE s.topic_id = n.topic_id
                    AND s.user_id >= coalesce(j.after_user, nil)
                    AND (j.after_user IS NULL OR s.user_id > j.after_user)
                    AND s.from_id < n.id AND (s.until_id IS NULL OR s.until_id > n.id)
                  ORDER BY s.user_id
                  LIMIT batch_size) s;
            done := coalesce(cardinality(users), 0);
            IF done > 0 THEN
                PERFORM ku9._publish_event('ku9_user_' || u, n.id, NULL) FROM unnest(users) AS u;
                last_user := users[done];
                last_device := 0;
                PERFORM ku9._count('realtime', NULL, done);
            END IF;
        END IF;

        IF done < batch_size THEN
            DELETE FROM ku9.fanout_jobs WHERE notification_id = j.notification_id AND kind = j.kind;
        ELSE
            UPDATE ku9.fanout_jobs
            SET after_user = last_user, after_device = last_device,
                batches = batches + (done > 0)::integer, targets = fanout_jobs.targets + done
            WHERE notification_id = j.notification_id AND kind = j.kind;
        END IF;
        IF done > 0 THEN
            RETURN done;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION ku9.fanout_step(integer) IS
    'do one batch of waiting push or realtime fan-out (workers call it); returns how many recipients, 0 when none waits';

REVOKE ALL ON FUNCTION ku9._me(), ku9._topic(text), ku9._check_payload(jsonb),
    ku9._publish_event(text, bigint, text), ku9._visible(uuid, bigint[]), ku9._fanout_queued(boolean),
    ku9.subscribe(text, uuid), ku9.unsubscribe(text, uuid),
    ku9.list_subscriptions(), ku9.inbox(bigint, integer), ku9.mark_read(bigint[]), ku9.unread_count(),
    ku9.register_device(text, text), ku9.unregister_device(text), ku9.list_devices()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.subscribe(text, uuid), ku9.unsubscribe(text, uuid),
    ku9.list_subscriptions(), ku9.inbox(bigint, integer), ku9.mark_read(bigint[]), ku9.unread_count(),
    ku9.register_device(text, text), ku9.unregister_device(text), ku9.list_devices()
    TO ku9_user, ku9_service;
REVOKE ALL ON FUNCTION ku9.create_topic(text, jsonb),
    ku9.drop_topic(text), ku9.publish(text, jsonb, boolean), ku9.notify_user(uuid, jsonb, boolean),
    ku9.fanout_step(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.create_topic(text, jsonb),
    ku9.drop_topic(text), ku9.publish(text, jsonb, boolean), ku9.notify_user(uuid, jsonb, boolean),
    ku9.fanout_step(integer)
    TO ku9_service;
