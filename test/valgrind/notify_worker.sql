-- notify and worker C code under valgrind (single-user backend):
-- subscribe/unsubscribe as owner, metrics counting, settings, the fan-out,
-- set_queue_handler and its checks
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION ku9;
SELECT ku9.create_topic('vg', '{"self_subscribe": true}');
SELECT ku9.subscribe('vg', ku9.admin_create_user('vg1@example.com'));
SELECT ku9.subscribe('vg', ku9.admin_create_user('vg2@example.com'));
SELECT ku9.subscribe('vg', NULL);
SELECT ku9.subscribe('nope', '00000000-0000-4000-8000-000000000000');
INSERT INTO ku9.devices (user_id, platform, token) SELECT id, 'fcm', email FROM ku9.users;
SELECT ku9.publish('vg', '{"n": 1}', true);
SELECT ku9.fanout_step(1);
SELECT ku9.fanout_step(1);
SELECT ku9.fanout_step(10);
SELECT ku9.fanout_step(10);
SELECT ku9.unsubscribe('vg', id) FROM ku9.users;
SELECT ku9._count('published', 'vg', 3);
SELECT ku9._count('nope', NULL);
SELECT ku9._setting('ku9.notification_max_payload');
SELECT ku9.run_maintenance();
CREATE ROLE vg_runner;
CREATE FUNCTION public.vg_handle(m ku9.message) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT ku9.create_queue('vgq');
SELECT ku9.set_queue_handler('vgq', 'public.vg_handle(ku9.message)', '{"role": "vg_runner", "batch": 3, "vt": 5, "enabled": false}');
SELECT ku9.set_queue_handler('vgq', 'public.vg_handle(ku9.message)', '{"role": "vg_runner", "batch": 1.5}');
SELECT ku9.set_queue_handler('vgq', 'public.vg_handle(ku9.message)', '{"bogus": 1}');
SELECT ku9.set_queue_handler('vgq', 'public.vg_handle(ku9.message)');
SELECT ku9.set_queue_handler('vgq', 'ku9.uid()', '{"role": "vg_runner"}');
SELECT ku9.drop_queue('vgq');
DROP FUNCTION public.vg_handle(ku9.message);
DROP ROLE vg_runner;
DROP EXTENSION ku9;
