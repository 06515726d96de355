// GET /events of ku9's gateway seen from an EventSource client (npm
// eventsource): a signed-in user's direct notifications and topic messages
// arrive within a second of the commit, with their notification id as the
// event id; after the gateway drops the stream (its worker is stopped and
// the launcher starts it again) the client reconnects by itself with
// Last-Event-ID and gets every event published meanwhile, in order, once.
//
// Needs KU9_HTTP_URL and a superuser at PGHOST/PGPORT/PGDATABASE; run with
// --test-concurrency=1 (it stops the gateway worker).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';

import { makePool, withClient, scalar, uniqueName, GATEWAY_URL, waitForGateway } from './helpers.mjs';

let pool;
const cleanup = [];
const sources = [];

async function sql(text, params = []) {
  return withClient(pool, (c) => c.query(text, params));
}

async function rpc(fn, args, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(`${GATEWAY_URL}/rpc/${fn}`, { method: 'POST', headers, body: JSON.stringify(args) });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

async function user() {
  const email = `${uniqueName('sse')}@example.com`;
  const { user_id: id } = await rpc('sign_up', { email, password: 'correct horse battery' });
  const { access_token: token } = await rpc('sign_in', { email, password: 'correct horse battery' });
  return { id, token };
}

// open returns an EventSource for token and a queue of its notification events
function open(token) {
  const events = [];
  const waiters = [];
  const es = new EventSource(`${GATEWAY_URL}/events`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } }),
  });
  sources.push(es);
  es.addEventListener('notification', (e) => {
    events.push({ id: e.lastEventId, data: JSON.parse(e.data), at: Date.now() });
    for (const w of waiters.splice(0)) w();
  });
  const opened = new Promise((resolve, reject) => {
    es.addEventListener('open', resolve, { once: true });
    setTimeout(() => reject(new Error('the stream did not open')), 10000);
  });
  // next(n, ms): resolves once n events have arrived in all
  const next = (n, ms = 5000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${events.length} of ${n} events arrived`)), ms);
    const check = () => {
      if (events.length >= n) { clearTimeout(timer); resolve(events.slice(0, n)); } else waiters.push(check);
    };
    check();
  });
  return { es, events, opened, next };
}

before(async () => {
  pool = makePool({ max: 4 });
  await waitForGateway();
});

after(async () => {
  for (const es of sources) es.close();
  if (pool) {
    for (const s of cleanup.reverse()) await sql(s).catch(() => {});
    await pool.end();
  }
});

test('a direct notification and a topic message arrive within a second', async () => {
  const u = await user();
  const topic = uniqueName('sse_topic');
  await sql('SELECT ku9.create_topic($1)', [topic]);
  cleanup.push(`SELECT ku9.drop_topic('${topic}')`);
  await sql('SELECT ku9.subscribe($1, $2::uuid)', [topic, u.id]);

  const s = open(u.token);
  await s.opened;
  const t0 = Date.now();
  const id1 = await withClient(pool, (c) => scalar(c, "SELECT ku9.notify_user($1::uuid, '{\"n\": 1}') AS v", [u.id]));
  const [e1] = await s.next(1);
  assert.ok(e1.at - t0 < 1000, `delivered after ${e1.at - t0} ms`);
  assert.equal(e1.id, String(id1));
  assert.deepEqual(e1.data.payload, { n: 1 });
  assert.equal(e1.data.topic, null);

  const t1 = Date.now();
  const id2 = await withClient(pool, (c) => scalar(c, "SELECT ku9.publish($1, '{\"n\": 2}') AS v", [topic]));
  const [, e2] = await s.next(2);
  assert.ok(e2.at - t1 < 1000, `delivered after ${e2.at - t1} ms`);
  assert.equal(e2.id, String(id2));
  assert.equal(e2.data.topic, topic);

  // another user's notification never reaches this stream
  const other = await user();
  await sql("SELECT ku9.notify_user($1::uuid, '{\"secret\": true}')", [other.id]);
  const id3 = await withClient(pool, (c) => scalar(c, "SELECT ku9.notify_user($1::uuid, '{\"n\": 3}') AS v", [u.id]));
  const [, , e3] = await s.next(3);
  assert.equal(e3.id, String(id3));
  assert.equal(s.events.length, 3);
  s.es.close();
});

test('a topic subscribed to while the stream is open is picked up', async () => {
  const u = await user();
  const topic = uniqueName('sse_late');
  await sql("SELECT ku9.create_topic($1, '{\"self_subscribe\": true}')", [topic]);
  cleanup.push(`SELECT ku9.drop_topic('${topic}')`);
  const s = open(u.token);
  await s.opened;
  await rpc('subscribe', { topic }, u.token);
  const id = await withClient(pool, (c) => scalar(c, "SELECT ku9.publish($1, '{\"late\": true}') AS v", [topic]));
  // at the latest with the next re-read (ku9.http_heartbeat)
  const [e] = await s.next(1, 20000);
  assert.equal(e.id, String(id));
  s.es.close();
});

test('without a token: 401', async () => {
  const r = await fetch(`${GATEWAY_URL}/events`);
  assert.equal(r.status, 401);
  assert.equal((await r.json()).code, 'PT401');
});

test('after the gateway drops the stream, Last-Event-ID resumes it without loss', async () => {
  const u = await user();
  const s = open(u.token);
  await s.opened;
  const first = await withClient(pool, (c) => scalar(c, "SELECT ku9.notify_user($1::uuid, '{\"k\": 0}') AS v", [u.id]));
  await s.next(1);

  // stop the gateway worker: it ends its streams; the launcher starts it again
  const pids = (await sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'ku9 gateway'")).rows.map((r) => r.pid);
  assert.ok(pids.length >= 1, 'no gateway worker in pg_stat_activity');
  await sql('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
  const ids = [];
  for (let k = 1; k <= 5; k++) {
    ids.push(String(await withClient(pool, (c) => scalar(c, 'SELECT ku9.notify_user($1::uuid, $2::jsonb) AS v',
      [u.id, JSON.stringify({ k })]))));
  }
  const got = await s.next(6, 30000);
  assert.deepEqual(got.map((e) => e.id), [String(first), ...ids]);
  assert.deepEqual(got.map((e) => e.data.payload.k), [0, 1, 2, 3, 4, 5]);
  // nothing twice
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(s.events.length, 6);
  s.es.close();
  await waitForGateway();
});

test('document change events: of the collections followed, those the user may see', async () => {
  const own = uniqueName('sse_own');
  const pub = uniqueName('sse_pub');
  await sql('SELECT ku9.create_collection($1)', [own]);
  await sql(`SELECT ku9.create_collection($1, '{"access": "public_read"}')`, [pub]);
  cleanup.push(`SELECT ku9.drop_collection('${own}')`, `SELECT ku9.drop_collection('${pub}')`);
  const a = await user();
  const b = await user();

  const docs = [];
  let wake;
  const es = new EventSource(`${GATEWAY_URL}/events?collections=${own},${pub},no_such_collection`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${a.token}` } }),
  });
  sources.push(es);
  const lastIds = [];
  es.addEventListener('document', (e) => { docs.push(JSON.parse(e.data)); lastIds.push(e.lastEventId); if (wake) wake(); });
  await new Promise((resolve) => es.addEventListener('open', resolve, { once: true }));

  await rpc('insert_one', { collection: own, document: { who: 'b' } }, b.token);   // not a's: not seen
  const mine = await rpc('insert_one', { collection: own, document: { who: 'a' } }, a.token);
  await rpc('insert_one', { collection: pub, document: { who: 'b' } }, b.token);   // public: seen
  await rpc('update_one', { collection: own, filter: { who: 'a' }, update: { $set: { n: 1 } } }, a.token);
  const deadline = Date.now() + 5000;
  while (docs.length < 3 && Date.now() < deadline) await new Promise((r) => { wake = r; setTimeout(r, 200); });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(docs.map((d) => [d.collection, d.op, d.owner]),
    [[own, 'insert', a.id], [pub, 'insert', b.id], [own, 'update', a.id]]);
  assert.deepEqual(docs[0]._id, mine.inserted_id);
  assert.deepEqual(lastIds, ['', '', ''], 'document events carry no id: Last-Event-ID stays a notification id');
  es.close();
});

test('a stream whose session ends gets "end" at the next heartbeat re-read and closes', async () => {
  const u = await user();
  const r = await fetch(`${GATEWAY_URL}/events`, { headers: { Authorization: `Bearer ${u.token}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/event-stream/);
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  // sign out: the token stays valid by signature and exp, its session is over
  await rpc('sign_out', {}, u.token);
  const deadline = Date.now() + 20000;
  let done = false;
  let pending = reader.read();
  while (!done && Date.now() < deadline) {
    const chunk = await Promise.race([pending, new Promise((res) => setTimeout(() => res({ timeout: true }), 1000))]);
    if (chunk.timeout) continue;
    pending = reader.read();
    if (chunk.done) done = true;
    else text += decoder.decode(chunk.value);
  }
  assert.match(text, /event: end\ndata: \{"code":"PT401"[^\n]*session has ended/);
  assert.ok(done, 'the gateway closed the stream');
});
