/*
 * worker: queue handlers, maintenance and schedules
 *
 * ku9's background workers (src/worker/worker.c) run in the database named
 * by ku9.database when ku9 is preloaded.  They call the handlers of
 * ku9.queue_handlers for the messages of their queues, do the fan-out of
 * ku9.fanout_jobs (ku9.fanout_step) and run ku9.run_maintenance every
 * ku9.maintenance_interval.  Schedules are pg_cron jobs that send to a queue.
 */

CREATE TABLE ku9.queue_handlers (
    queue       text PRIMARY KEY REFERENCES ku9.queues (name) ON DELETE CASCADE,
    handler     text NOT NULL,
    run_as      text NOT NULL,
    batch       integer NOT NULL DEFAULT 10 CHECK (batch BETWEEN 1 AND 1000),
    vt          integer CHECK (vt BETWEEN 1 AND 43200),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ku9.queue_handlers IS
    'queue handlers: the function (schema-qualified signature) ku9''s workers call, as run_as, for each message of the queue';
SELECT pg_catalog.pg_extension_config_dump('ku9.queue_handlers', '');
REVOKE ALL ON ku9.queue_handlers FROM PUBLIC;
GRANT SELECT ON ku9.queue_handlers TO ku9_service;

CREATE FUNCTION ku9.set_queue_handler(queue text, handler regprocedure, options jsonb DEFAULT '{}')
    RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_set_queue_handler'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.set_queue_handler(text, regprocedure, jsonb) IS
    'let ku9''s workers call handler(ku9.message) for each message of a queue; options: role, batch, vt, enabled';

CREATE FUNCTION ku9.remove_queue_handler(queue text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    DELETE FROM ku9.queue_handlers h WHERE h.queue = remove_queue_handler.queue;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION ku9.remove_queue_handler(text) IS
    'stop handling a queue''s messages in the workers; false when it had no handler';

/*
 * run_maintenance deletes what has outlived its use: sessions ended more
 * than ku9.session_retention ago (with their refresh tokens), used or
 * expired one-time tokens, archived messages older than their queue's
 * retention, notifications older than their topic's retention (or
 * ku9.notification_retention) and subscription windows left empty.
 */
CREATE FUNCTION ku9.run_maintenance() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    keep_sessions interval := make_interval(secs => ku9._seconds('ku9.session_retention'));
    keep_notes interval := make_interval(secs => ku9._seconds('ku9.notification_retention'));
    n_sessions bigint;
    n_tokens bigint;
    n_archive bigint;
    n_notes bigint;
    n_subs bigint;
BEGIN
    DELETE FROM ku9.sessions
    WHERE coalesce(least(revoked_at, expires_at), expires_at) < now() - keep_sessions;
    GET DIAGNOSTICS n_sessions = ROW_COUNT;

    DELETE FROM ku9.one_time_tokens WHERE expires_at < now() OR used_at IS NOT NULL;
    GET DIAGNOSTICS n_tokens = ROW_COUNT;

    n_archive := ku9.prune_archive(NULL);

    DELETE FROM ku9.notifications n
    WHERE n.created_at < now() - coalesce((SELECT t.retention FROM ku9.topics t WHERE t.id = n.topic_id), keep_notes);
    GET DIAGNOSTICS n_notes = ROW_COUNT;

    -- a closed window with no message left in it shows nothing any more (a
    -- day after it closed: a publish that took an id inside it may still be
    -- committing)
    DELETE FROM ku9.subscriptions s
    WHERE s.until_id IS NOT NULL AND s.unsubscribed_at < now() - interval '1 day'
      AND NOT EXISTS (SELECT 1 FROM ku9.notifications n
                      WHERE n.topic_id = s.topic_id AND n.id > s.from_id AND n.id < s.until_id);
    GET DIAGNOSTICS n_subs = ROW_COUNT;

    PERFORM ku9._count('maintenance', NULL);
    PERFORM ku9._count('deleted', w, c)
    FROM (VALUES ('sessions', n_sessions), ('one_time_tokens', n_tokens), ('archive', n_archive),
                 ('notifications', n_notes), ('subscriptions', n_subs)) AS v(w, c)
    WHERE c > 0;
    RETURN jsonb_build_object('sessions', n_sessions, 'one_time_tokens', n_tokens, 'archive', n_archive,
                              'notifications', n_notes, 'subscriptions', n_subs);
END
$$;
COMMENT ON FUNCTION ku9.run_maintenance() IS
    'delete ended sessions, spent one-time tokens, old archived messages, old notifications and empty subscription windows; returns how many of each';

/*
 * A schedule is a row of ku9.schedules and a pg_cron job called ku9_<name>
 * whose command is SELECT ku9._run_schedule('<name>').  pg_cron is
 * optional: these functions say so when it is absent.  The jobs run as the
 * extension's owner, so a job sends even to queues no role is granted.
 */
CREATE TABLE ku9.schedules (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$'),
    cron        text NOT NULL,
    queue       text NOT NULL REFERENCES ku9.queues (name) ON DELETE CASCADE,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE ku9.schedules IS 'periodic sends, each run by the pg_cron job ku9_<name>';
SELECT pg_catalog.pg_extension_config_dump('ku9.schedules', '');
REVOKE ALL ON ku9.schedules FROM PUBLIC;
GRANT SELECT ON ku9.schedules TO ku9_service;

CREATE FUNCTION ku9._require_pg_cron() RETURNS void
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'ku9 schedules need the extension pg_cron, which is not installed in this database'
            USING ERRCODE = '55000',
            HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, restart, and run CREATE EXTENSION pg_cron.';
    END IF;
END
$$;
COMMENT ON FUNCTION ku9._require_pg_cron() IS 'raise 55000 without pg_cron, for ku9''s own use';

/*
 * _schedule_gone removes the pg_cron job of a schedule that is deleted —
 * by ku9.unschedule, or with its queue (ON DELETE CASCADE).
 */
CREATE FUNCTION ku9._schedule_gone() RETURNS trigger
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
DECLARE
    had_job boolean;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO had_job USING 'ku9_' || OLD.name;
        IF had_job THEN
            EXECUTE 'SELECT cron.unschedule($1)' USING 'ku9_' || OLD.name;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION ku9._schedule_gone() IS 'remove the pg_cron job of a deleted schedule, for ku9''s own use';
CREATE TRIGGER schedules_gone AFTER DELETE ON ku9.schedules
    FOR EACH ROW EXECUTE FUNCTION ku9._schedule_gone();

CREATE FUNCTION ku9._run_schedule(name text) RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
    SELECT ku9.send(s.queue, s.payload) FROM ku9.schedules s WHERE s.name = _run_schedule.name
$$;
COMMENT ON FUNCTION ku9._run_schedule(text) IS 'send a schedule''s message (its pg_cron job calls it), for ku9''s own use';

CREATE FUNCTION ku9.schedule(name text, cron text, queue text, payload jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    jobid bigint;
    taken boolean;
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,47}$' THEN
        RAISE EXCEPTION 'invalid schedule name "%"', name USING ERRCODE = '42602',
            HINT = 'A schedule name starts with a lowercase letter and has at most 48 lowercase letters, digits and underscores.';
    END IF;
    IF cron IS NULL OR payload IS NULL THEN
        RAISE EXCEPTION 'cron and payload must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ku9.queues q WHERE q.name = schedule.queue) THEN
        RAISE EXCEPTION 'queue "%" does not exist', queue USING ERRCODE = '42704';
    END IF;
    PERFORM ku9._require_pg_cron();
    -- a pg_cron job of that name that ku9 did not make is not ours to replace
    IF NOT EXISTS (SELECT 1 FROM ku9.schedules s WHERE s.name = schedule.name) THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO taken USING 'ku9_' || name;
        IF taken THEN
            RAISE EXCEPTION 'a pg_cron job named "ku9_%" exists and is not a ku9 schedule', name
                USING ERRCODE = '42710', HINT = 'Choose another name, or unschedule that job with cron.unschedule.';
        END IF;
    END IF;
    INSERT INTO ku9.schedules AS s (name, cron, queue, payload)
    VALUES (schedule.name, schedule.cron, schedule.queue, schedule.payload)
    ON CONFLICT ON CONSTRAINT schedules_pkey DO UPDATE
        SET cron = excluded.cron, queue = excluded.queue, payload = excluded.payload;
    -- pg_cron checks the expression, and replaces a job of the same name
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid
    USING 'ku9_' || name, cron, format('SELECT ku9._run_schedule(%L)', name);
    RETURN jobid;
END
$$;
COMMENT ON FUNCTION ku9.schedule(text, text, text, jsonb) IS
    'send payload to queue on a cron schedule (needs pg_cron; the same name replaces a schedule); returns the pg_cron job id';

CREATE FUNCTION ku9.unschedule(name text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, ku9, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM ku9._require_pg_cron();
    -- the trigger on ku9.schedules removes the pg_cron job
    DELETE FROM ku9.schedules s WHERE s.name = unschedule.name;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION ku9.unschedule(text) IS 'remove a schedule; false when there was none';

REVOKE ALL ON FUNCTION ku9.set_queue_handler(text, regprocedure, jsonb), ku9.remove_queue_handler(text),
    ku9.run_maintenance(), ku9._require_pg_cron(), ku9._run_schedule(text), ku9._schedule_gone(),
    ku9.schedule(text, text, text, jsonb), ku9.unschedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.set_queue_handler(text, regprocedure, jsonb), ku9.remove_queue_handler(text),
    ku9.run_maintenance(), ku9.schedule(text, text, text, jsonb), ku9.unschedule(text)
    TO ku9_service;
