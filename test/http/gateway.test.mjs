// ku9's embedded gateway seen from PostgREST's own client library,
// @supabase/postgrest-js, and from plain fetch: the whole app flow over
// POST/GET /rpc/<function> of ku9_api (sign up, sign in, documents, a queue
// as a granted role, notifications), PostgREST's error JSON and statuses
// for bad input, an expired token, a revoked session and the rate limit,
// the body limit, CORS, /metrics and /health.
//
// Needs KU9_HTTP_URL (the gateway of the server at PGHOST/PGPORT, serving
// PGDATABASE) and a superuser in PGUSER for the set-up SQL.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PostgrestClient } from '@supabase/postgrest-js';

import { makePool, withClient, scalar, uniqueName, GATEWAY_URL, waitForGateway } from './helpers.mjs';

let pool;
const cleanup = [];
const anon = new PostgrestClient(GATEWAY_URL);
const asUser = (token) => new PostgrestClient(GATEWAY_URL, { headers: { Authorization: `Bearer ${token}` } });

async function sql(text, params = []) {
  return withClient(pool, (c) => c.query(text, params));
}

async function signUpAndIn() {
  const email = `${uniqueName('gw')}@example.com`;
  const password = 'correct horse battery';
  const up = await anon.rpc('sign_up', { email, password });
  assert.equal(up.error, null, JSON.stringify(up.error));
  assert.equal(up.status, 200);
  const inn = await anon.rpc('sign_in', { email, password });
  assert.equal(inn.error, null, JSON.stringify(inn.error));
  return { email, password, userId: up.data.user_id, token: inn.data.access_token, session: inn.data };
}

before(async () => {
  pool = makePool({ max: 4 });
  await waitForGateway();
});

after(async () => {
  if (pool) {
    for (const s of cleanup.reverse()) await sql(s).catch(() => {});
    await pool.end();
  }
});

test('sign up, sign in, and the token works on the next call', async () => {
  const u = await signUpAndIn();
  assert.match(u.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const me = asUser(u.token);
  const count = await me.rpc('unread_count');
  assert.equal(count.error, null);
  assert.equal(count.data, 0);
  // GET for a stable function, arguments in the query string
  const inbox = await me.rpc('inbox', { after_id: 0, lim: 5 }, { get: true });
  assert.equal(inbox.error, null, JSON.stringify(inbox.error));
  assert.deepEqual(inbox.data, []);
});

test('documents: insert and query through postgrest-js, only the owner sees them', async () => {
  const coll = uniqueName('gw_notes');
  await sql('SELECT ku9.create_collection($1)', [coll]);
  cleanup.push(`SELECT ku9.drop_collection('${coll}')`);
  const a = asUser((await signUpAndIn()).token);
  const b = asUser((await signUpAndIn()).token);

  const ins = await a.rpc('insert_one', { collection: coll, document: { title: 'first', n: 1, tags: ['x'] } });
  assert.equal(ins.error, null, JSON.stringify(ins.error));
  assert.ok(ins.data.inserted_id, JSON.stringify(ins.data));
  const many = await a.rpc('insert_many', { collection: coll, documents: [{ title: 'second', n: 2 }, { title: 'third', n: 3 }] });
  assert.equal(many.error, null, JSON.stringify(many.error));

  const found = await a.rpc('find', { collection: coll, filter: { n: { $gte: 2 } }, options: { sort: { n: -1 } } });
  assert.equal(found.error, null, JSON.stringify(found.error));
  assert.deepEqual(found.data.map((d) => d.title), ['third', 'second']);

  const one = await a.rpc('find_one', { collection: coll, filter: { _id: ins.data.inserted_id } });
  assert.equal(one.data.title, 'first');
  assert.deepEqual(one.data.tags, ['x']);

  const upd = await a.rpc('update_one', { collection: coll, filter: { n: 1 }, update: { $inc: { n: 10 } } });
  assert.equal(upd.error, null, JSON.stringify(upd.error));
  assert.equal((await a.rpc('count_documents', { collection: coll, filter: { n: 11 } })).data, 1);

  // another user sees none of them
  const other = await b.rpc('find', { collection: coll, filter: {} });
  assert.equal(other.error, null);
  assert.deepEqual(other.data, []);
  // anon may not call find at all: 401 as PostgREST answers 42501 without a token
  const denied = await anon.rpc('find', { collection: coll });
  assert.equal(denied.status, 401);
  assert.equal(denied.error.code, '42501');
});

test('a queue: send and read as a role granted it, ack', async () => {
  const q = uniqueName('gw_q');
  await sql('SELECT ku9.create_queue($1)', [q]);
  cleanup.push(`SELECT ku9.drop_queue('${q}')`);
  const me = asUser((await signUpAndIn()).token);

  // not granted yet: 403 (authenticated)
  const refused = await me.rpc('send', { queue: q, payload: { job: 1 } });
  assert.equal(refused.status, 403, JSON.stringify(refused));
  assert.equal(refused.error.code, '42501');

  await sql("SELECT ku9.grant_queue($1, 'ku9_user', 'send'), ku9.grant_queue($1, 'ku9_user', 'read')", [q]);
  const sent = await me.rpc('send', { queue: q, payload: { job: 1 } });
  assert.equal(sent.error, null, JSON.stringify(sent.error));
  const read = await me.rpc('read', { queue: q, qty: 5, vt: 30 });
  assert.equal(read.error, null, JSON.stringify(read.error));
  assert.equal(read.data.length, 1);
  assert.equal(read.data[0].msg_id, sent.data.msg_id);
  assert.deepEqual(read.data[0].payload, { job: 1 });
  const acked = await me.rpc('ack', { queue: q, ids: [read.data[0].msg_id] });
  assert.equal(acked.error, null, JSON.stringify(acked.error));
  assert.equal((await me.rpc('read', { queue: q })).data.length, 0);
});

test('notifications: subscribe, publish, inbox, mark_read, single object', async () => {
  const topic = uniqueName('gw_topic');
  await sql("SELECT ku9.create_topic($1, '{\"self_subscribe\": true}')", [topic]);
  cleanup.push(`SELECT ku9.drop_topic('${topic}')`);
  const u = await signUpAndIn();
  const me = asUser(u.token);
  const sub = await me.rpc('subscribe', { topic });
  assert.equal(sub.error, null, JSON.stringify(sub.error));
  const id = await withClient(pool, (c) => scalar(c, "SELECT ku9.publish($1, '{\"hello\": \"world\"}') AS v", [topic]));

  const inbox = await me.rpc('inbox', { after_id: 0 });
  assert.equal(inbox.error, null);
  assert.equal(inbox.data.length, 1);
  assert.equal(String(inbox.data[0].id), String(id));
  assert.equal(inbox.data[0].topic, topic);
  assert.deepEqual(inbox.data[0].payload, { hello: 'world' });

  // .single(): Accept: application/vnd.pgrst.object+json
  const single = await me.rpc('inbox', { after_id: 0 }).single();
  assert.equal(single.error, null);
  assert.equal(single.data.topic, topic);
  const none = await me.rpc('inbox', { after_id: Number(id) }).single();
  assert.equal(none.status, 406);
  assert.equal(none.error.code, 'PGRST116');

  assert.equal((await me.rpc('unread_count')).data, 1);
  const marked = await me.rpc('mark_read', { ids: [Number(id)] });
  assert.equal(marked.error, null, JSON.stringify(marked.error));
  assert.equal((await me.rpc('unread_count')).data, 0);
});

test('errors: PostgREST JSON and statuses', async () => {
  const u = await signUpAndIn();
  const me = asUser(u.token);

  const unknown = await me.rpc('no_such_function', {});
  assert.equal(unknown.status, 404);
  assert.equal(unknown.error.code, 'PGRST202');
  const badArg = await me.rpc('unread_count', { nope: 1 });
  assert.equal(badArg.status, 404);
  assert.equal(badArg.error.code, 'PGRST202');

  // wrong password: the function's own error (28P01 → 403 as PostgREST maps 28*)
  const wrong = await anon.rpc('sign_in', { email: u.email, password: 'not the password' });
  assert.equal(wrong.status, 403, JSON.stringify(wrong));
  assert.equal(wrong.error.code, '28P01');
  for (const k of ['code', 'message', 'details', 'hint']) assert.ok(k in wrong.error, k);

  // bad input inside a function: 22023 → 400
  const lim = await me.rpc('inbox', { lim: 0 });
  assert.equal(lim.status, 400);
  assert.equal(lim.error.code, '22023');

  // malformed JSON, a JSON array, NUL bytes
  for (const body of ['{"email":', '[1,2]', '{"a":"\u0000"}']) {
    const r = await fetch(`${GATEWAY_URL}/rpc/sign_in`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    const j = await r.json();
    assert.equal(r.status, 400, body);
    assert.ok(['PGRST102', '22P02'].includes(j.code), `${body}: ${JSON.stringify(j)}`);
  }

  // \u escapes in a body are JSON: not a parse error (the gateway parses as UTF-8)
  const esc = await fetch(`${GATEWAY_URL}/rpc/sign_in`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: '{"email": "caf\\u00e9@example.com", "password": "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"}' });
  const escBody = await esc.json();
  assert.notEqual(escBody.code, 'PGRST102', JSON.stringify(escBody));
  assert.equal(esc.status, 403, JSON.stringify(escBody));

  // GET of a volatile function
  const get = await fetch(`${GATEWAY_URL}/rpc/sign_out`, { headers: { Authorization: `Bearer ${u.token}` } });
  assert.equal(get.status, 405);

  // a bad token, a token of a role not granted to ku9_authenticator, an expired token
  const bad = await asUser(u.token.slice(0, -3) + 'abc').rpc('unread_count');
  assert.equal(bad.status, 401);
  assert.equal(bad.error.code, 'PGRST301');
  const rogue = await withClient(pool, (c) => scalar(c,
    "SELECT ku9.jwt_sign(jsonb_build_object('sub', $1::text, 'role', 'postgres', 'aud', 'authenticated', 'exp', extract(epoch from now())::int + 60)) AS v", [u.userId]));
  const r2 = await asUser(rogue).rpc('unread_count');
  assert.equal(r2.status, 403, JSON.stringify(r2));
  assert.equal(r2.error.code, '42501');
  const expired = await withClient(pool, (c) => scalar(c,
    "SELECT ku9.jwt_sign(jsonb_build_object('sub', $1::text, 'role', 'ku9_user', 'aud', 'authenticated', 'exp', extract(epoch from now())::int - 3600)) AS v", [u.userId]));
  const r3 = await asUser(expired).rpc('unread_count');
  assert.equal(r3.status, 401);
  assert.equal(r3.error.code, 'PGRST303');
  const raw = await fetch(`${GATEWAY_URL}/rpc/unread_count`, { method: 'POST', headers: { Authorization: `Bearer ${expired}` } });
  assert.match(raw.headers.get('www-authenticate') || '', /invalid_token/);

  // unknown paths and methods
  assert.equal((await fetch(`${GATEWAY_URL}/users`)).status, 404);
  assert.equal((await fetch(`${GATEWAY_URL}/rpc/jwks`, { method: 'DELETE' })).status, 405);
  const wrongSchema = await fetch(`${GATEWAY_URL}/rpc/jwks`, { method: 'POST', headers: { 'Content-Profile': 'public' } });
  assert.equal(wrongSchema.status, 406);
});

test('a revoked session is refused although its token is still good (PT401)', async () => {
  const u = await signUpAndIn();
  const me = asUser(u.token);
  assert.equal((await me.rpc('unread_count')).status, 200);
  const out = await me.rpc('sign_out');
  assert.equal(out.error, null, JSON.stringify(out.error));
  const after = await me.rpc('unread_count');
  assert.equal(after.status, 401);
  assert.equal(after.error.code, 'PT401');
  assert.match(after.error.message, /session has ended/);
});

test('request body limit: 413', async () => {
  const big = JSON.stringify({ email: 'x'.repeat(2 * 1024 * 1024), password: 'y' });
  const r = await fetch(`${GATEWAY_URL}/rpc/sign_in`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: big });
  assert.equal(r.status, 413);
  assert.equal((await r.json()).code, 'PGRST413');
  // the gateway still serves
  assert.equal((await fetch(`${GATEWAY_URL}/rpc/jwks`, { method: 'POST' })).status, 200);
});

test('CORS: preflight and the allowed origin on responses', async () => {
  const pre = await fetch(`${GATEWAY_URL}/rpc/sign_in`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
  });
  assert.equal(pre.status, 200);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
  const r = await fetch(`${GATEWAY_URL}/rpc/jwks`, { method: 'POST', headers: { Origin: 'https://app.example.com' } });
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
});

test('request GUCs are set as PostgREST sets them', async () => {
  // a function of ku9_api made for this test reads them back
  const fn = uniqueName('gw_echo');
  await sql(`CREATE FUNCTION ku9_api.${fn}(x text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('role', current_user, 'method', current_setting('request.method'),
      'path', current_setting('request.path'), 'headers', current_setting('request.headers')::jsonb,
      'claims', current_setting('request.jwt.claims')::jsonb, 'x', x) $$`);
  await sql(`GRANT EXECUTE ON FUNCTION ku9_api.${fn}(text) TO ku9_anon, ku9_user`);
  cleanup.push(`DROP FUNCTION ku9_api.${fn}(text)`);
  await sql('NOTIFY pgrst');
  const u = await signUpAndIn();
  let r;
  for (let i = 0; i < 50; i++) {
    r = await asUser(u.token).rpc(fn, { x: 'hi' });
    if (r.status !== 404) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.data.role, 'ku9_user');
  assert.equal(r.data.method, 'POST');
  assert.equal(r.data.path, `/rpc/${fn}`);
  assert.equal(r.data.claims.sub, u.userId);
  assert.equal(r.data.headers['content-type'], 'application/json');
  assert.match(r.data.headers['x-forwarded-for'], /127\.0\.0\.1$/);
  assert.equal(r.data.x, 'hi');
  // a void function with arguments: 204 No Content
  const vfn = uniqueName('gw_void');
  await sql(`CREATE FUNCTION ku9_api.${vfn}(x text) RETURNS void LANGUAGE sql AS $$ SELECT $$`);
  await sql(`GRANT EXECUTE ON FUNCTION ku9_api.${vfn}(text) TO ku9_anon`);
  cleanup.push(`DROP FUNCTION ku9_api.${vfn}(text)`);
  await sql('NOTIFY pgrst');
  let v;
  for (let i = 0; i < 50; i++) {
    v = await fetch(`${GATEWAY_URL}/rpc/${vfn}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"x": "y"}' });
    if (v.status !== 404) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(v.status, 204, await v.text());
  const a = await anon.rpc(fn, { x: 'there' }, { get: true });
  assert.equal(a.data.role, 'ku9_anon');
  assert.equal(a.data.method, 'GET');
  assert.equal(a.data.x, 'there');
});

test('rate limit per user: 429 with Retry-After, then the limit is lifted', async () => {
  await sql('ALTER DATABASE ' + (await withClient(pool, (c) => scalar(c, 'SELECT quote_ident(current_database()) AS v'))) +
    ' SET ku9.rate_limit_per_user = 5');
  // NOTIFY pgrst makes the gateway reconnect, so its sessions see the setting
  await sql('NOTIFY pgrst');
  try {
    const u = await signUpAndIn();
    const me = asUser(u.token);
    let limited;
    for (let i = 0; i < 40 && !limited; i++) {
      const r = await me.rpc('unread_count');
      if (r.status === 429) limited = r;
      else assert.equal(r.status, 200, JSON.stringify(r));
      if (i < 10) await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(limited, 'no 429 after 40 requests with a limit of 5');
    assert.equal(limited.error.code, 'PT429');
    const raw = await fetch(`${GATEWAY_URL}/rpc/unread_count`, { method: 'POST', headers: { Authorization: `Bearer ${u.token}` } });
    assert.equal(raw.status, 429);
    assert.ok(Number(raw.headers.get('retry-after')) > 0);
  } finally {
    await sql('ALTER DATABASE ' + (await withClient(pool, (c) => scalar(c, 'SELECT quote_ident(current_database()) AS v'))) +
      ' RESET ku9.rate_limit_per_user');
    await sql('NOTIFY pgrst');
  }
});

test('/metrics and /health', async () => {
  const m = await fetch(`${GATEWAY_URL}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.headers.get('content-type'), /text\/plain/);
  const text = await m.text();
  assert.match(text, /^ku9_http_requests_total\{status="200"\} \d+/m);
  assert.match(text, /^ku9_http_request_duration_seconds_bucket\{route="rpc",le="[^"]+"\} \d+/m);
  const h = await fetch(`${GATEWAY_URL}/health`);
  assert.equal(h.status, 200);
  const body = await h.json();
  assert.equal(body.status, 'ok');
  assert.ok(body.workers >= 1);
  assert.equal(body.workers, body.workers_expected);
  assert.ok(body.gateways >= 1);
});
