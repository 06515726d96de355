-- notify: push and realtime fan-out in batches (ku9.fanout_step, which the
-- workers call), and retention (ku9.run_maintenance)
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql
CREATE TEMP VIEW m AS
SELECT name, labels - 'database' AS labels, value FROM ku9.stats
WHERE name IN ('ku9_push_jobs_total', 'ku9_push_devices_total', 'ku9_notify_delivered_total',
               'ku9_maintenance_runs_total')
  AND labels->>'database' = current_database();
CREATE TEMP TABLE m0 AS SELECT * FROM m;

-- five users: 1 has 2 devices, 2 none, 3 three; 4 subscribes after the
-- message and 5 unsubscribes before it, so neither is a recipient
CREATE TEMP TABLE u AS
SELECT n, ku9.admin_create_user(format('fanout-%s@example.com', n)) AS id FROM generate_series(1, 5) n;
INSERT INTO ku9.devices (user_id, platform, token)
SELECT u.id, 'fcm', format('u%s-d%s', u.n, d)
FROM u, generate_series(1, 3) d
WHERE (u.n = 1 AND d <= 2) OR u.n = 3 OR (u.n IN (4, 5) AND d = 1);

SELECT ku9.create_topic('alerts');
SELECT ku9.create_topic('quiet', '{"user_channels": false}');
SELECT ku9.subscribe('alerts', id) FROM u WHERE n IN (1, 2, 3, 5) ORDER BY n;
SELECT ku9.subscribe('quiet', id) FROM u WHERE n = 1;
SELECT ku9.unsubscribe('alerts', id) FROM u WHERE n = 5;
SELECT ku9.publish('alerts', '{"alert": "fire"}', push => true) AS m \gset
SELECT ku9.subscribe('alerts', id) FROM u WHERE n = 4;

-- publishing only queued the work: one push job and one realtime job
SELECT kind, after_user IS NULL AS at_start, batches, targets FROM ku9.fanout_jobs ORDER BY kind;

-- a batch that rolls back leaves the job where it was, and sends nothing
BEGIN;
SELECT ku9.fanout_step(2) AS done;
ROLLBACK;
SELECT kind, batches, targets FROM ku9.fanout_jobs ORDER BY kind;
SELECT count(*) AS push_messages FROM ku9_queue.q_ku9_push;

-- batches of 2: push 2 + 2 + 1 devices, then realtime 2 + 1 users
SELECT ku9.fanout_step(2) AS done;
SELECT kind, after_user IS NOT NULL AS moved, batches, targets FROM ku9.fanout_jobs ORDER BY kind;
SELECT ku9.fanout_step(2) AS done;
SELECT ku9.fanout_step(2) AS done;
SELECT kind, batches, targets FROM ku9.fanout_jobs ORDER BY kind;
SELECT ku9.fanout_step(2) AS done;
SELECT ku9.fanout_step(2) AS done;
SELECT ku9.fanout_step(2) AS done;
SELECT count(*) AS jobs_left FROM ku9.fanout_jobs;

-- every device of every recipient once, in messages of at most 2 devices
SELECT payload->'notification_id' = to_jsonb(:m) AS same_message, payload->>'topic' AS topic,
       payload->'payload' AS payload, jsonb_array_length(payload->'devices') AS devices
FROM ku9_queue.q_ku9_push ORDER BY msg_id;
SELECT d->>'token' AS token, d->>'platform' AS platform, count(*) AS times,
       bool_and((d->>'user_id')::uuid = (SELECT id FROM u WHERE n = substr(d->>'token', 2, 1)::int)) AS owner_ok
FROM ku9_queue.q_ku9_push, jsonb_array_elements(payload->'devices') d
GROUP BY 1, 2 ORDER BY 1;

-- a direct notification pushes to its user's devices; no realtime job (it
-- was told at once); a topic without user channels has no realtime job
SELECT ku9.purge_queue('ku9_push');
SELECT ku9.notify_user(id, '{"hello": 3}', true) AS d FROM u WHERE n = 3 \gset
SELECT ku9.notify_user(id, '{"hello": 2}', true) FROM u WHERE n = 2;
SELECT ku9.publish('quiet', '{"shh": 1}') AS q \gset
SELECT notification_id = :d AS direct, kind FROM ku9.fanout_jobs ORDER BY notification_id, kind;
SELECT ku9.fanout_step(10) AS done;
SELECT ku9.fanout_step(10) AS done;
SELECT payload->>'topic' AS topic, payload->'payload' AS payload,
       (SELECT array_agg(d->>'token' ORDER BY d->>'token') FROM jsonb_array_elements(payload->'devices') d) AS tokens
FROM ku9_queue.q_ku9_push;
SELECT pg_temp.sqlerr('SELECT ku9.fanout_step(0)');

-- batches of one device, subscribers without devices among them: every
-- device once, and the job ends
SELECT ku9.purge_queue('ku9_push');
SELECT ku9.subscribe('alerts', id) FROM u WHERE n = 5;
SELECT ku9.publish('alerts', '{"one": "by one"}', true) AS m1 \gset
DELETE FROM ku9.fanout_jobs WHERE kind = 'realtime';
SELECT array_agg(ku9.fanout_step(1)) AS steps FROM generate_series(1, 9);
SELECT count(*) AS jobs_left FROM ku9.fanout_jobs;
SELECT string_agg(d->>'token', ', ' ORDER BY d->>'token') AS tokens, max(jsonb_array_length(payload->'devices')) AS per_job
FROM ku9_queue.q_ku9_push, jsonb_array_elements(payload->'devices') d;

-- retention: notifications older than their topic's retention or
-- ku9.notification_retention go, with windows left empty; ended sessions
-- after ku9.session_retention; spent one-time tokens
SELECT ku9.create_topic('brief', '{"retention": 3600}');
SELECT ku9.subscribe('brief', id) FROM u WHERE n = 1;
SELECT ku9.publish('brief', '{"b": "old"}') AS b_old \gset
SELECT ku9.publish('brief', '{"b": "new"}') AS b_new \gset
SELECT ku9.unsubscribe('brief', id) FROM u WHERE n = 1;
-- windows closed two days ago: past the day maintenance waits for late publishes
UPDATE ku9.subscriptions SET unsubscribed_at = now() - interval '2 days' WHERE until_id IS NOT NULL;
UPDATE ku9.notifications SET created_at = now() - interval '2 hours' WHERE id = :b_old;
UPDATE ku9.notifications SET created_at = now() - interval '40 days' WHERE id = :m;
UPDATE ku9.notifications SET created_at = now() - interval '10 days' WHERE id = :d;
INSERT INTO ku9.sessions (user_id, expires_at, revoked_at)
SELECT id, now() - interval '8 days', NULL FROM u WHERE n = 1
UNION ALL SELECT id, now() + interval '1 day', now() - interval '8 days' FROM u WHERE n = 2
UNION ALL SELECT id, now() + interval '1 day', now() - interval '1 day' FROM u WHERE n = 3
UNION ALL SELECT id, now() + interval '1 day', NULL FROM u WHERE n = 4;
INSERT INTO ku9.one_time_tokens (token_hash, user_id, kind, expires_at, used_at)
SELECT sha256(convert_to(n::text, 'UTF8')), id, 'password_reset', now() + CASE WHEN n = 1 THEN interval '-1 minute' ELSE interval '1 hour' END,
       CASE WHEN n = 2 THEN now() END
FROM u WHERE n IN (1, 2, 3);
SELECT ku9.run_maintenance();
SELECT id = :b_new AS kept_new FROM ku9.notifications WHERE topic_id = (SELECT id FROM ku9.topics WHERE name = 'brief');
SELECT count(*) AS old_topic_message FROM ku9.notifications WHERE id = :m;
SELECT count(*) AS recent_direct FROM ku9.notifications WHERE id = :d;
SELECT (SELECT n FROM u WHERE u.id = s.user_id) AS user_n, revoked_at IS NOT NULL AS revoked
FROM ku9.sessions s WHERE user_id IN (SELECT id FROM u) ORDER BY 1;
SELECT (SELECT n FROM u WHERE u.id = t.user_id) AS user_n FROM ku9.one_time_tokens t WHERE user_id IN (SELECT id FROM u);
-- a second run finds nothing
SELECT ku9.run_maintenance();
SET ku9.notification_retention = '5d';
SELECT ku9.run_maintenance()->'notifications' AS with_5_days;
RESET ku9.notification_retention;

-- metrics of the fan-out and maintenance, counted during this test
SELECT m.name, m.labels, m.value - coalesce(m0.value, 0) AS counted
FROM m LEFT JOIN m0 USING (name, labels) WHERE m.value <> coalesce(m0.value, 0) ORDER BY 1, 2::text;

SELECT ku9.purge_queue('ku9_push');
SELECT ku9.drop_topic(name) FROM ku9.topics;
DELETE FROM ku9.users WHERE id IN (SELECT id FROM u);
DROP VIEW m;
DROP EXTENSION ku9;
