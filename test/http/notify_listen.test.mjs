// ku9 notifications seen from a real client: a `pg` client LISTENs on a
// user's channel (ku9_user_<uuid>) and receives the ids, never the bodies,
// of a direct notification (NOTIFY at commit) and of a topic message the
// user is subscribed to (told by ku9's background workers, which must run
// in this database: ku9.database); it then reads them with ku9.inbox as
// that user.  A subscriber of the topic's own channel (ku9_topic_<name>)
// hears the publish too; a user who is not subscribed hears nothing.
//
// Needs PGHOST/PGPORT/PGUSER/PGDATABASE for a database with ku9 installed,
// as a superuser, with ku9 preloaded and ku9.database set to it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { makePool, makeClient, withClient, scalar, uniqueName, CLAIMS_SETTING } from './helpers.mjs';

let pool;
const cleanup = [];

before(async () => {
  pool = makePool({ max: 4 });
  const db = await withClient(pool, (c) => scalar(c, 'SELECT current_database() AS v'));
  const workerDb = await withClient(pool, (c) => scalar(c, "SELECT current_setting('ku9.database', true) AS v"));
  assert.equal(workerDb, db, 'ku9.database must name this database so that workers run here');
  // the workers may have started before the extension existed
  for (let i = 0; i < 100; i++) {
    const n = await withClient(pool, (c) => scalar(c,
      "SELECT count(*)::int AS v FROM pg_stat_activity WHERE backend_type = 'ku9 worker' AND datname = current_database()"));
    if (n > 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('no ku9 worker runs in this database');
});

after(async () => {
  if (pool) {
    await withClient(pool, async (c) => {
      for (const sql of cleanup.reverse()) await c.query(sql);
    }).catch(() => {});
    await pool.end();
  }
});

// listen connects a client LISTENing on channel; notifications() returns
// what it has heard, and next() waits (up to 10 s) for the next one.
async function listen(channel) {
  const client = makeClient();
  await client.connect();
  const heard = [];
  const waiters = [];
  client.on('notification', (msg) => {
    heard.push(msg);
    while (waiters.length) waiters.shift()();
  });
  await client.query(`LISTEN "${channel}"`);
  return {
    heard,
    async next(count) {
      const deadline = Date.now() + 10000;
      while (heard.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`heard ${heard.length} of ${count} notifications on ${channel}`);
        await new Promise((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => { clearTimeout(t); resolve(); });
        });
      }
      return heard;
    },
    end: () => client.end(),
  };
}

test('a user\'s channel carries the ids of direct and topic notifications, then inbox reads them', async () => {
  const topic = uniqueName('news');
  const [alice, bob] = await withClient(pool, async (c) => {
    const a = await scalar(c, 'SELECT ku9.admin_create_user($1) AS v', [`${topic}-alice@example.com`]);
    const b = await scalar(c, 'SELECT ku9.admin_create_user($1) AS v', [`${topic}-bob@example.com`]);
    await c.query('SELECT ku9.create_topic($1)', [topic]);
    await c.query('SELECT ku9.subscribe($1, $2)', [topic, a]);
    return [a, b];
  });
  cleanup.push(`SELECT ku9.drop_topic('${topic}')`);
  cleanup.push(`DELETE FROM ku9.users WHERE id IN ('${alice}', '${bob}')`);

  const aliceChannel = await listen(`ku9_user_${alice}`);
  const bobChannel = await listen(`ku9_user_${bob}`);
  const topicChannel = await listen(`ku9_topic_${topic}`);
  try {
    const [direct, published] = await withClient(pool, async (c) => {
      const d = await scalar(c, 'SELECT ku9.notify_user($1, $2) AS v', [alice, { secret: 'direct body' }]);
      const p = await scalar(c, 'SELECT ku9.publish($1, $2) AS v', [topic, { secret: 'topic body' }]);
      return [d, p];
    });

    const heard = await aliceChannel.next(2);
    const payloads = heard.map((m) => JSON.parse(m.payload));
    assert.deepEqual(payloads.map((p) => String(p.id)).sort(), [String(direct), String(published)].sort());
    // the user's channel does not name topics (who follows what is private)
    assert.ok(payloads.every((p) => p.topic === null));
    for (const m of heard) {
      assert.ok(!m.payload.includes('body'), 'a notification carries ids, not bodies');
    }
    const topicHeard = await topicChannel.next(1);
    assert.equal(String(JSON.parse(topicHeard[0].payload).id), String(published));
    assert.equal(JSON.parse(topicHeard[0].payload).topic, topic);

    // the listener fetches what it may see
    const rows = await withClient(pool, async (c) => {
      await c.query('SELECT set_config($1, $2, false)', [CLAIMS_SETTING, JSON.stringify({ sub: alice, role: 'ku9_user' })]);
      await c.query('SET ROLE ku9_user');
      try {
        const ids = payloads.map((p) => p.id);
        const r = await c.query('SELECT id, topic, payload, read FROM ku9.inbox($1)', [Math.min(...ids) - 1]);
        return r.rows;
      } finally {
        await c.query('RESET ROLE');
        await c.query('RESET request.jwt.claims');
      }
    });
    assert.deepEqual(rows.map((r) => [String(r.id), r.topic, r.payload, r.read]), [
      [String(direct), null, { secret: 'direct body' }, false],
      [String(published), topic, { secret: 'topic body' }, false],
    ]);

    // bob is not subscribed: nothing for him
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bobChannel.heard.length, 0, 'a user who is not subscribed hears nothing');
  } finally {
    await aliceChannel.end();
    await bobChannel.end();
    await topicChannel.end();
  }
});
