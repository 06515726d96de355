-- notify: topics, subscription windows, direct notifications, inboxes,
-- read state, who may do what, and bad input
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT ku9.admin_create_user('notify-a@example.com') AS a \gset
SELECT ku9.admin_create_user('notify-b@example.com') AS b \gset
SELECT ku9.admin_create_user('notify-c@example.com') AS c \gset
\set as_a 'RESET ROLE; SELECT set_config(''request.jwt.claims'', json_build_object(''sub'', :''a'', ''role'', ''ku9_user'')::text, false) IS NOT NULL AS as_a; SET ROLE ku9_user;'
\set as_b 'RESET ROLE; SELECT set_config(''request.jwt.claims'', json_build_object(''sub'', :''b'', ''role'', ''ku9_user'')::text, false) IS NOT NULL AS as_b; SET ROLE ku9_user;'
\set as_service 'RESET ROLE; SET request.jwt.claims = ''{"role": "ku9_service"}''; SET ROLE ku9_service;'
\set as_anon 'RESET ROLE; SET request.jwt.claims = ''{"role": "ku9_anon"}''; SET ROLE ku9_anon;'
\set as_nobody 'RESET ROLE; RESET request.jwt.claims; SET ROLE ku9_user;'
\set as_super 'RESET ROLE; RESET request.jwt.claims;'

-- topics are made by ku9_service
:as_service
SELECT ku9.create_topic('news', '{"self_subscribe": true}');
SELECT ku9.create_topic('staff');
SELECT ku9.create_topic('digest', '{"retention": "2 days", "user_channels": false}');
SELECT name, self_subscribe, user_channels, retention FROM ku9.topics ORDER BY name;
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.create_topic('news')$$,
    $$SELECT ku9.create_topic('News')$$,
    $$SELECT ku9.create_topic(NULL)$$,
    $$SELECT ku9.create_topic('x', '[]')$$,
    $$SELECT ku9.create_topic('x', '{"self_subscribe": "yes"}')$$,
    $$SELECT ku9.create_topic('x', '{"retention": "forever"}')$$,
    $$SELECT ku9.create_topic('x', '{"retention": 0}')$$,
    $$SELECT ku9.create_topic('x', '{"colour": "red"}')$$]) AS f;
:as_a
SELECT pg_temp.sqlerr($$SELECT ku9.create_topic('mine')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.drop_topic('news')$$);

-- subscription windows: a user sees the messages published while subscribed
:as_service
SELECT ku9.publish('news', '{"n": 1}') AS n1 \gset
:as_a
SELECT ku9.subscribe('news') AS subscribed;
SELECT ku9.subscribe('news') AS subscribed_again;
:as_service
SELECT ku9.publish('news', '{"n": 2}') AS n2 \gset
:as_b
SELECT ku9.subscribe('news', :'b') AS subscribed;
:as_service
SELECT ku9.publish('news', '{"n": 3}') AS n3 \gset
SELECT ku9.notify_user(:'a', '{"direct": "to a"}') AS d1 \gset
SELECT ku9.notify_user(:'b', '{"direct": "to b"}') AS d2 \gset
:as_a
SELECT ku9.unsubscribe('news') AS unsubscribed;
SELECT ku9.unsubscribe('news') AS unsubscribed_again;
:as_service
SELECT ku9.publish('news', '{"n": 4}') AS n4 \gset
:as_a
SELECT ku9.subscribe('news') AS subscribed;
:as_service
SELECT ku9.publish('news', '{"n": 5}') AS n5 \gset

-- a: news 2, 3, 5 and the direct one, in id order; b: news 3, 4, 5 and theirs
:as_a
SELECT id = :n2 AS n2, id = :n3 AS n3, id = :d1 AS d1, id = :n5 AS n5, topic, payload, read
FROM ku9.inbox();
SELECT topic FROM ku9.list_subscriptions();
:as_b
SELECT topic, payload, read FROM ku9.inbox();
-- keyset pages
:as_a
SELECT payload FROM ku9.inbox(0, 2);
SELECT payload FROM ku9.inbox(:n3, 2);
SELECT payload FROM ku9.inbox(:n5, 2);
SELECT count(*) FROM ku9.inbox(:n1, 1000);

-- read state is per user and covers both kinds; others' ids are ignored
SELECT ku9.unread_count();
SELECT ku9.mark_read(ARRAY[:n1, :n2, :d1, :d2, :n4, 999999]::bigint[]) AS marked;
SELECT ku9.mark_read(ARRAY[:n2, :d1]::bigint[]) AS marked_again;
SELECT ku9.unread_count();
SELECT payload, read FROM ku9.inbox();
:as_b
SELECT ku9.unread_count();
SELECT payload, read FROM ku9.inbox();
SELECT ku9.mark_read(ARRAY[:n3]::bigint[]) AS marked;
:as_a
SELECT payload, read FROM ku9.inbox() WHERE payload = '{"n": 3}';

-- who may subscribe whom
:as_a
SELECT regexp_replace(f, '[0-9a-f-]{36}', 'B') AS f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    format('SELECT ku9.subscribe(%L, %L)', 'news', :'b'),
    format('SELECT ku9.unsubscribe(%L, %L)', 'news', :'b'),
    $$SELECT ku9.subscribe('staff')$$,
    $$SELECT ku9.subscribe('nope')$$,
    $$SELECT ku9._subscribe('staff', NULL, true, true)$$,
    $$SELECT ku9.publish('news', '{}')$$,
    format('SELECT ku9.notify_user(%L, %L)', :'b', '{}'),
    $$SELECT ku9.fanout_step()$$,
    $$SELECT * FROM ku9.notifications$$,
    $$SELECT * FROM ku9.subscriptions$$,
    $$SELECT * FROM ku9.notification_reads$$,
    $$SELECT * FROM ku9.devices$$]) AS f;
:as_service
SELECT ku9.subscribe('staff', :'c') AS service_subscribes_c;
SELECT pg_temp.sqlerr($$SELECT ku9.subscribe('staff')$$);
SELECT ku9.unsubscribe('staff', :'c') AS service_unsubscribes_c;
:as_anon
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.subscribe('news')$$,
    $$SELECT * FROM ku9.inbox()$$,
    $$SELECT ku9.unread_count()$$,
    $$SELECT ku9.register_device('fcm', 't')$$]) AS f;
:as_nobody
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.subscribe('news')$$,
    $$SELECT * FROM ku9.inbox()$$,
    $$SELECT ku9.unread_count()$$,
    $$SELECT ku9.mark_read('{1}')$$,
    $$SELECT ku9.register_device('fcm', 't')$$]) AS f;

-- bad input
:as_super
SET ku9.notification_max_payload = '1kB';
:as_service
SELECT regexp_replace(left(f, 70), '[0-9a-f]{8}-[0-9a-f-]{27}', 'U') AS f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.publish('nope', '{}')$$,
    $$SELECT ku9.publish('news', NULL)$$,
    format('SELECT ku9.publish(%L, %L)', 'news', json_build_object('big', repeat('x', 2000))),
    format('SELECT ku9.notify_user(%L, %L)', :'a', json_build_object('big', repeat('x', 2000))),
    $$SELECT ku9.notify_user('not-a-uuid', '{}')$$,
    $$SELECT ku9.notify_user(NULL, '{}')$$,
    $$SELECT ku9.notify_user('00000000-0000-4000-8000-000000000000', '{}')$$,
    $$SELECT ku9.subscribe('news', '00000000-0000-4000-8000-000000000000')$$,
    $$SELECT ku9.subscribe('news', NULL)$$]) AS f;
:as_super
RESET ku9.notification_max_payload;
:as_a
SELECT f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT * FROM ku9.inbox(0, 0)$$,
    $$SELECT * FROM ku9.inbox(0, 1001)$$,
    $$SELECT ku9.mark_read(NULL)$$,
    $$SELECT ku9.mark_read(array_fill(1::bigint, ARRAY[10001]))$$]) AS f;
SELECT count(*) FROM ku9.inbox(NULL);

-- devices: a token names one device, and moves to whoever registers it
:as_a
SELECT ku9.register_device('fcm', 'tok-1');
SELECT ku9.register_device('apns', 'tok-2');
SELECT ku9.register_device('fcm', 'tok-1');
SELECT platform, token FROM ku9.list_devices();
:as_b
SELECT ku9.register_device('webpush', 'tok-2');
SELECT ku9.unregister_device('tok-1') AS removed_others;
SELECT platform, token FROM ku9.list_devices();
:as_a
SELECT platform, token FROM ku9.list_devices();
SELECT regexp_replace(left(f, 70), '[0-9a-f]{8}-[0-9a-f-]{27}', 'U') AS f, pg_temp.sqlerr(f) FROM unnest(ARRAY[
    $$SELECT ku9.register_device('sms', 't')$$,
    $$SELECT ku9.register_device(NULL, 't')$$,
    $$SELECT ku9.register_device('fcm', '')$$,
    format('SELECT ku9.register_device(%L, %L)', 'fcm', repeat('t', 4097))]) AS f;
SELECT ku9.unregister_device('tok-1') AS removed;
SELECT count(*) FROM ku9.list_devices();

-- a deleted user takes their inbox, subscriptions and devices along
:as_super
SELECT ku9.admin_delete_user(:'b');
SELECT (SELECT count(*) FROM ku9.notifications WHERE user_id = :'b') AS direct,
       (SELECT count(*) FROM ku9.subscriptions WHERE user_id = :'b') AS subscriptions,
       (SELECT count(*) FROM ku9.notification_reads WHERE user_id = :'b') AS reads,
       (SELECT count(*) FROM ku9.devices WHERE user_id = :'b') AS devices;

-- dropping a topic drops its messages and subscriptions
:as_service
SELECT ku9.drop_topic('news') AS dropped, ku9.drop_topic('news') AS dropped_again;
:as_a
SELECT payload FROM ku9.inbox();
SELECT ku9.unread_count();

-- metrics
:as_super
SELECT name, labels - 'database' AS labels, value > 0 AS counted
FROM ku9.stats WHERE name IN ('ku9_notify_published_total', 'ku9_notify_direct_total', 'ku9_notify_delivered_total')
  AND labels->>'database' = current_database()
  AND coalesce(labels->>'topic', 'news') = 'news' AND coalesce(labels->>'via', 'inbox') = 'inbox'
ORDER BY name, labels::text;

SELECT ku9.drop_topic(name) FROM ku9.topics;
DELETE FROM ku9.users WHERE email LIKE 'notify-%@example.com';
DROP EXTENSION ku9;
