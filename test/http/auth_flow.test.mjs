// ku9's auth flow seen from real clients, the way an app that talks SQL
// directly uses it: sign up → sign in → ku9.authenticate(access token) in a
// transaction, then act as the user → refresh (rotation; a second refresh
// with the same token within ku9.refresh_reuse_interval gets the same next
// token) → sign out → the old tokens fail.  Also: a wrong password and an
// unknown email fail alike, and reuse of a rotated refresh token after the
// interval revokes the session.
//
// Needs PGHOST/PGPORT/PGUSER/PGDATABASE for a database with ku9 installed,
// as a superuser (each connection SETs ku9.jwt_secret and ku9.bcrypt_cost).
// Every user it makes has a unique email and is deleted at the end.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  makeClient,
  inTransaction,
  scalar,
  uniqueName,
  rejectsWith,
} from './helpers.mjs';

const SECRET = 'ku9-node-auth-flow-secret-0123456789abcd';
const PASSWORD = 'correct horse battery staple';
const BAD_LOGIN = 'invalid email or password';
const SESSION_ENDED = 'invalid token: session has ended';

const clients = [];
const userIds = new Set();

// authClient returns a connected client with the settings the tests need:
// the HS256 secret (the server may have none) and a cheap bcrypt cost.
async function authClient(settings = {}) {
  const client = makeClient();
  await client.connect();
  clients.push(client);
  await client.query(`SET ku9.jwt_secret = '${SECRET}'`);
  await client.query('SET ku9.bcrypt_cost = 4');
  for (const [name, value] of Object.entries(settings)) {
    await client.query(`SET ${name} = ${value}`);
  }
  return client;
}

function uniqueEmail(what) {
  return `${uniqueName(what)}@example.com`;
}

// decode returns the JSON of a base64url token segment
function decode(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

async function signUp(client, email) {
  const id = await scalar(client, 'SELECT ku9.sign_up($1, $2)::text AS id', [email, PASSWORD]);
  userIds.add(id);
  return id;
}

function signIn(client, email, password = PASSWORD) {
  return scalar(client, 'SELECT ku9.sign_in($1, $2) AS s', [email, password]);
}

function refresh(client, refreshToken) {
  return scalar(client, 'SELECT ku9.refresh_session($1) AS s', [refreshToken]);
}

// asUser authenticates with token in a transaction, switches to ku9_user
// and runs fn(client, claims); the transaction is committed.
function asUser(client, token, fn) {
  return inTransaction(client, async () => {
    const claims = await scalar(client, 'SELECT ku9.authenticate($1) AS c', [token]);
    await client.query('SET LOCAL ROLE ku9_user');
    return fn(client, claims);
  });
}

// authenticateFails checks that ku9.authenticate refuses token with 28000
// and message, and that nothing of the claims is left set.
async function authenticateFails(client, token, message, what) {
  await inTransaction(client, async () => {
    await client.query('SAVEPOINT a');
    await rejectsWith(client.query('SELECT ku9.authenticate($1)', [token]), '28000', message, what);
    await client.query('ROLLBACK TO SAVEPOINT a');
    assert.equal(await scalar(client, 'SELECT ku9.uid()::text AS u'), null,
      `${what}: no claims are set`);
  });
}

let svc; // sign-up, sign-in, refresh: a service connection
let app; // the app's connection: authenticate, then act as the user

before(async () => {
  svc = await authClient();
  app = await authClient();
  const version = await scalar(svc,
    "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'ku9') AS v");
  assert.ok(version, 'the ku9 extension is not installed in this database');
  assert.equal(await scalar(svc, 'SHOW ku9.jwt_alg'), 'HS256',
    'precondition: ku9 issues HS256 tokens');
});

after(async () => {
  try {
    if (svc && userIds.size > 0) {
      const ids = [...userIds];
      const deleted = await scalar(svc,
        'SELECT count(*) FILTER (WHERE ku9.admin_delete_user(id))::int AS n FROM unnest($1::uuid[]) id',
        [ids]);
      assert.equal(deleted, ids.length, 'every user made by the tests was deleted');
      assert.equal(await scalar(svc,
        'SELECT count(*)::int AS n FROM ku9.sessions WHERE user_id = ANY($1::uuid[])', [ids]),
      0, 'their sessions went with them');
    }
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
});

describe('auth flow: sign up, sign in, act as the user, refresh, sign out', () => {
  const email = uniqueEmail('flow');
  let otherId;
  let userId;
  let first; // the sign-in response
  let second; // the first refresh
  let again; // the same refresh token presented again

  test('sign up returns the user id', async () => {
    userId = await signUp(svc, email);
    assert.match(userId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // someone else, so that "sees only their own row" means something
    otherId = await signUp(svc, uniqueEmail('other'));
    assert.notEqual(otherId, userId);
  });

  test('sign in returns an HS256 access token for the user and a refresh token', async () => {
    const before = Math.floor(Date.now() / 1000);
    first = await signIn(svc, email.toUpperCase());
    assert.equal(first.token_type, 'bearer');
    assert.equal(first.expires_in, 3600);
    assert.equal(first.user.id, userId);
    assert.equal(first.user.email, email);
    assert.equal(first.user.role, 'ku9_user');
    assert.equal(typeof first.refresh_token, 'string');
    assert.ok(first.refresh_token.length >= 43, 'a refresh token of 32 random bytes');

    const [h, p] = first.access_token.split('.');
    assert.deepEqual(decode(h), { alg: 'HS256', typ: 'JWT' });
    const claims = decode(p);
    assert.equal(claims.sub, userId);
    assert.equal(claims.role, 'ku9_user');
    assert.equal(claims.aud, 'authenticated');
    assert.equal(claims.email, email);
    assert.match(claims.session_id, /^[0-9a-f-]{36}$/);
    assert.ok(claims.iat >= before - 1 && claims.iat <= Math.floor(Date.now() / 1000) + 1,
      `iat ${claims.iat} is now`);
    assert.equal(claims.exp, claims.iat + 3600);
    assert.equal(first.expires_at, claims.exp);
    assert.deepEqual(await scalar(app, 'SELECT ku9.jwt_verify($1) AS c', [first.access_token]), claims,
      'jwt_verify returns the claims');
  });

  test('authenticate sets the claims for the transaction; the user sees only their own row', async () => {
    const claims = await asUser(app, first.access_token, async (c, claims) => {
      assert.equal(await scalar(c, 'SELECT current_user AS u'), 'ku9_user');
      assert.equal(await scalar(c, 'SELECT ku9.uid()::text AS u'), userId);
      assert.equal(await scalar(c, 'SELECT ku9.role() AS r'), 'ku9_user');
      const { rows } = await c.query('SELECT id::text, email, role FROM ku9.users');
      assert.deepEqual(rows, [{ id: userId, email, role: 'ku9_user' }],
        'exactly one row, the user\'s own');
      // the user changes their own metadata, and only theirs
      const { rowCount } = await c.query(
        'UPDATE ku9.users SET user_metadata = $1', [{ theme: 'dark' }]);
      assert.equal(rowCount, 1);
      // the password hash is not theirs to read
      await c.query('SAVEPOINT s');
      await rejectsWith(c.query('SELECT * FROM ku9.users'), '42501',
        /permission denied for table users/, 'SELECT * as ku9_user');
      await c.query('ROLLBACK TO SAVEPOINT s');
      return claims;
    });
    assert.equal(claims.sub, userId);
    // SET LOCAL semantics: nothing is left after the commit
    assert.equal(await scalar(app, 'SELECT ku9.uid()::text AS u'), null);
    assert.equal(await scalar(app, 'SELECT current_user AS u'), await scalar(svc, 'SELECT current_user AS u'));
    assert.deepEqual(await scalar(svc, 'SELECT user_metadata AS m FROM ku9.users WHERE id = $1', [userId]),
      { theme: 'dark' });
    assert.deepEqual(await scalar(svc, 'SELECT user_metadata AS m FROM ku9.users WHERE id = $1', [otherId]),
      {}, 'the other user is untouched');
  });

  test('refresh rotates the refresh token; the same token within the reuse interval gets the same next one', async () => {
    second = await refresh(svc, first.refresh_token);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.notEqual(second.access_token, first.access_token);
    assert.equal(second.user.id, userId);
    const c1 = decode(first.access_token.split('.')[1]);
    const c2 = decode(second.access_token.split('.')[1]);
    assert.equal(c2.session_id, c1.session_id, 'the same session');
    assert.equal(c2.sub, userId);
    assert.deepEqual(c2.user_metadata, { theme: 'dark' }, 'the new token has the new metadata');

    again = await refresh(svc, first.refresh_token);
    assert.equal(again.error, undefined, `no error: ${JSON.stringify(again)}`);
    assert.equal(again.refresh_token, second.refresh_token,
      'within ku9.refresh_reuse_interval the old token gets the same next token');
    assert.equal(decode(again.access_token.split('.')[1]).session_id, c1.session_id);

    // the new access token works, and so, until sign-out, does the first
    for (const token of [second.access_token, again.access_token, first.access_token]) {
      assert.equal(await asUser(app, token, (c) => scalar(c, 'SELECT ku9.uid()::text AS u')), userId);
    }
  });

  test('sign out in a transaction after authenticate ends the session', async () => {
    const n = await asUser(app, second.access_token,
      (c) => scalar(c, "SELECT ku9.sign_out('session') AS n"));
    assert.equal(n, 1, 'one session revoked');
    assert.deepEqual(await scalar(svc,
      'SELECT jsonb_build_object(\'revoked\', revoked_at IS NOT NULL, \'reason\', revoked_reason) AS s'
      + ' FROM ku9.sessions WHERE id = $1', [decode(second.access_token.split('.')[1]).session_id]),
    { revoked: true, reason: 'sign out (session)' });
  });

  test('after sign-out every access token of the session fails in authenticate', async () => {
    for (const [what, token] of [['sign-in token', first.access_token],
      ['refreshed token', second.access_token], ['token of the second refresh', again.access_token]]) {
      await authenticateFails(app, token, SESSION_ENDED, what);
      // the signature is still good: only the session check catches it
      assert.equal((await scalar(app, 'SELECT ku9.jwt_verify($1) AS c', [token])).sub, userId);
    }
  });

  test('after sign-out the refresh tokens fail', async () => {
    await rejectsWith(refresh(svc, second.refresh_token), '28000', 'session has ended',
      'the current refresh token');
    await rejectsWith(refresh(svc, first.refresh_token), '28000', 'session has ended',
      'the rotated refresh token');
  });

  test('signing in again starts a new session that works', async () => {
    const s = await signIn(svc, email);
    const sid = decode(s.access_token.split('.')[1]).session_id;
    assert.notEqual(sid, decode(first.access_token.split('.')[1]).session_id);
    assert.equal(await asUser(app, s.access_token, (c) => scalar(c, 'SELECT ku9.uid()::text AS u')), userId);
  });
});

describe('sign-in failures', () => {
  test('a wrong password and an unknown email fail with the same SQLSTATE and message', async () => {
    const email = uniqueEmail('wrongpw');
    await signUp(svc, email);
    const wrong = await rejectsWith(signIn(svc, email, 'not the password at all'),
      '28P01', BAD_LOGIN, 'wrong password');
    const unknown = await rejectsWith(signIn(svc, uniqueEmail('nobody'), PASSWORD),
      '28P01', BAD_LOGIN, 'unknown email');
    for (const field of ['code', 'message', 'detail', 'hint', 'severity']) {
      assert.equal(wrong[field], unknown[field], `the errors differ in ${field}`);
    }
    // the right password still works (one failure is far from a lockout)
    assert.ok((await signIn(svc, email)).access_token);
  });

  test('a token with a tampered signature fails in authenticate', async () => {
    const email = uniqueEmail('tamper');
    await signUp(svc, email);
    const [h, p, s] = (await signIn(svc, email)).access_token.split('.');
    const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    await authenticateFails(app, `${h}.${p}.${flipped}`, 'invalid token: bad signature', 'bad signature');
  });
});

describe('refresh token reuse after the interval', () => {
  test('returns the error object and revokes the whole session', async () => {
    const email = uniqueEmail('reuse');
    const userId = await signUp(svc, email);
    const reuser = await authClient({ 'ku9.refresh_reuse_interval': 0 });
    const s1 = await signIn(reuser, email);
    const s2 = await refresh(reuser, s1.refresh_token);
    assert.notEqual(s2.refresh_token, s1.refresh_token);
    assert.equal(await asUser(app, s2.access_token, (c) => scalar(c, 'SELECT ku9.uid()::text AS u')), userId);

    // a rotated token comes back: not an error (the revocation must commit)
    const reused = await inTransaction(reuser, async (c) => {
      const r = await refresh(c, s1.refresh_token);
      assert.equal(await scalar(c, "SELECT current_setting('response.status', true) AS s"), '401',
        'response.status is 401 for PostgREST');
      return r;
    });
    assert.deepEqual(reused, {
      error: 'refresh_token_reused',
      message: 'refresh token was already used; the session has been revoked',
    });
    assert.equal(reused.access_token, undefined, 'no tokens are handed out');

    // the session is over: the legitimate client's tokens die with it
    await rejectsWith(refresh(reuser, s2.refresh_token), '28000', 'session has ended',
      'the current refresh token of the revoked session');
    await authenticateFails(app, s2.access_token, SESSION_ENDED, 'access token of the revoked session');
    await authenticateFails(app, s1.access_token, SESSION_ENDED, 'first access token of the revoked session');
    assert.equal(await scalar(svc,
      'SELECT revoked_reason AS r FROM ku9.sessions WHERE id = $1',
      [decode(s1.access_token.split('.')[1]).session_id]), 'refresh token reused');
  });
});
