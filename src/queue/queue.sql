/*
 * queue: durable message queues
 *
 * Each queue has three tables in the schema ku9_queue, made at run time by
 * ku9.create_queue() and owned by the extension's owner: q_<name> (pending
 * and in-flight messages), a_<name> (archive) and d_<name> (dead letters).
 * They are not extension members; the registry ku9.queues is, and is
 * dumped, so pg_dump/pg_restore carries queues and their messages.
 *
 * The functions are C and SECURITY INVOKER: they check the caller's rights
 * (ku9_service, or a per-queue grant held as a privilege on q_<name>), then
 * run their prepared statements as the tables' owner.
 */

CREATE SCHEMA ku9_queue;
COMMENT ON SCHEMA ku9_queue IS 'ku9 queue storage: q_<name> messages, a_<name> archive, d_<name> dead letters';
REVOKE ALL ON SCHEMA ku9_queue FROM PUBLIC;
GRANT USAGE ON SCHEMA ku9_queue TO ku9_service;

CREATE TYPE ku9.message AS (
    msg_id      bigint,
    attempts    integer,
    enqueued_at timestamptz,
    vt          timestamptz,
    payload     jsonb,
    headers     jsonb
);
COMMENT ON TYPE ku9.message IS 'a message handed out by ku9.read() or ku9.pop()';

CREATE TABLE ku9.queues (
    name            text PRIMARY KEY,
    qid             integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    vt              integer NOT NULL DEFAULT 30 CHECK (vt BETWEEN 0 AND 43200),
    max_attempts    integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    backoff_base    double precision NOT NULL DEFAULT 1 CHECK (backoff_base > 0),
    backoff_max     double precision NOT NULL DEFAULT 3600 CHECK (backoff_max >= backoff_base),
    archive         boolean NOT NULL DEFAULT false,
    retention       interval NOT NULL DEFAULT '7 days'
                    CHECK (retention BETWEEN '0' AND '100 years'),
    max_payload     integer NOT NULL DEFAULT 1048576 CHECK (max_payload > 0),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT queues_name_check CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$')
);
COMMENT ON TABLE ku9.queues IS 'ku9 queues and their options; the messages live in ku9_queue';
SELECT pg_catalog.pg_extension_config_dump('ku9.queues', '');
SELECT pg_catalog.pg_extension_config_dump('ku9.queues_qid_seq', '');
REVOKE ALL ON ku9.queues FROM PUBLIC;
GRANT SELECT ON ku9.queues TO ku9_service;

CREATE FUNCTION ku9.create_queue(name text, options jsonb DEFAULT '{}')
    RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_create_queue'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.create_queue(text, jsonb) IS
    'create a queue; options: vt, max_attempts, backoff_base, backoff_max, archive, retention, max_payload';

CREATE FUNCTION ku9.drop_queue(name text)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_drop_queue'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.drop_queue(text) IS
    'drop a queue with its messages, archive and dead letters; false when it does not exist';

CREATE FUNCTION ku9.purge_queue(name text)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'ku9_purge_queue'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.purge_queue(text) IS
    'delete every message of a queue (not its archive or dead letters); returns how many';

CREATE FUNCTION ku9.prune_archive(queue text DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'ku9_prune_archive'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.prune_archive(text) IS
    'delete archived messages older than their queue''s retention, in one queue or (NULL) all; returns how many';

CREATE FUNCTION ku9.send(queue text, payload jsonb, options jsonb DEFAULT '{}')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'ku9_send'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.send(text, jsonb, jsonb) IS
    'send a message; options: delay (seconds or timestamptz), priority, dedup_key, headers';

CREATE FUNCTION ku9.send_batch(queue text, payloads jsonb, options jsonb DEFAULT '{}')
    RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'ku9_send_batch'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100;
COMMENT ON FUNCTION ku9.send_batch(text, jsonb, jsonb) IS
    'send each element of a JSON array as a message; options: delay, priority, headers';

CREATE FUNCTION ku9.read(queue text, qty integer DEFAULT 1, vt integer DEFAULT NULL, wait_ms integer DEFAULT 0)
    RETURNS SETOF ku9.message
    AS 'MODULE_PATHNAME', 'ku9_read'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;
COMMENT ON FUNCTION ku9.read(text, integer, integer, integer) IS
    'take up to qty visible messages, hiding them for vt seconds; wait up to wait_ms for one to arrive';

CREATE FUNCTION ku9.pop(queue text, qty integer DEFAULT 1)
    RETURNS SETOF ku9.message
    AS 'MODULE_PATHNAME', 'ku9_pop'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;
COMMENT ON FUNCTION ku9.pop(text, integer) IS
    'take and delete up to qty visible messages (at-most-once)';

CREATE FUNCTION ku9.ack(queue text, ids bigint[])
    RETURNS integer
    AS 'MODULE_PATHNAME', 'ku9_ack'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.ack(text, bigint[]) IS
    'acknowledge messages: delete them, or archive them when the queue archives; returns how many';

CREATE FUNCTION ku9.nack(queue text, id bigint, delay integer DEFAULT 0)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_nack'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.nack(text, bigint, integer) IS
    'make a message visible again after delay seconds; false when it does not exist';

CREATE FUNCTION ku9.fail(queue text, id bigint, error text)
    RETURNS text
    AS 'MODULE_PATHNAME', 'ku9_fail'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.fail(text, bigint, text) IS
    'record a failed attempt: ''retry'' after a backoff, or ''dead'' after max_attempts; NULL when the message does not exist';

CREATE FUNCTION ku9.extend(queue text, id bigint, vt integer)
    RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'ku9_extend'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.extend(text, bigint, integer) IS
    'hide a message for vt more seconds from now; returns its new vt, NULL when it does not exist';

CREATE FUNCTION ku9.queue_stats(queue text,
    OUT queue text, OUT depth bigint, OUT visible bigint, OUT in_flight bigint,
    OUT delayed bigint, OUT dead bigint, OUT archived bigint,
    OUT oldest_age interval,
    OUT sent_total bigint, OUT read_total bigint, OUT acked_total bigint,
    OUT failed_total bigint, OUT dead_total bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'ku9_queue_stats'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.queue_stats(text) IS
    'counts of a queue''s messages by state, and totals since server start';

CREATE FUNCTION ku9.list_queues()
    RETURNS SETOF ku9.queues
    LANGUAGE sql STABLE PARALLEL SAFE
    AS 'SELECT * FROM ku9.queues ORDER BY name';
COMMENT ON FUNCTION ku9.list_queues() IS 'the queues and their options';

CREATE FUNCTION ku9.grant_queue(queue text, role regrole, privilege text)
    RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_grant_queue'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.grant_queue(text, regrole, text) IS
    'let a role ''send'' to or ''read'' (read, pop, ack, nack, fail, extend) from a queue';

CREATE FUNCTION ku9.revoke_queue(queue text, role regrole, privilege text)
    RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_revoke_queue'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.revoke_queue(text, regrole, text) IS
    'take back a privilege given by ku9.grant_queue';

REVOKE ALL ON FUNCTION
    ku9.create_queue(text, jsonb), ku9.drop_queue(text), ku9.purge_queue(text),
    ku9.prune_archive(text), ku9.send(text, jsonb, jsonb), ku9.send_batch(text, jsonb, jsonb),
    ku9.read(text, integer, integer, integer), ku9.pop(text, integer),
    ku9.ack(text, bigint[]), ku9.nack(text, bigint, integer), ku9.fail(text, bigint, text),
    ku9.extend(text, bigint, integer), ku9.queue_stats(text), ku9.list_queues(),
    ku9.grant_queue(text, regrole, text), ku9.revoke_queue(text, regrole, text)
    FROM PUBLIC;
-- managing queues is for ku9_service (checked again in C)
GRANT EXECUTE ON FUNCTION
    ku9.create_queue(text, jsonb), ku9.drop_queue(text), ku9.purge_queue(text),
    ku9.prune_archive(text), ku9.queue_stats(text), ku9.list_queues(),
    ku9.grant_queue(text, regrole, text), ku9.revoke_queue(text, regrole, text)
    TO ku9_service;
-- sending and reading: whoever holds the queue's grant (checked in C)
GRANT EXECUTE ON FUNCTION
    ku9.send(text, jsonb, jsonb), ku9.send_batch(text, jsonb, jsonb),
    ku9.read(text, integer, integer, integer), ku9.pop(text, integer),
    ku9.ack(text, bigint[]), ku9.nack(text, bigint, integer), ku9.fail(text, bigint, text),
    ku9.extend(text, bigint, integer)
    TO ku9_anon, ku9_user, ku9_service;
