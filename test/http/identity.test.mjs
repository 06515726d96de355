// ku9.claims(), ku9.uid() and ku9.role() seen from a real client, the way
// PostgREST and ku9's gateway use them: the claims are set per transaction
// with set_config('request.jwt.claims', ..., true) on pooled connections.
//
// Needs PGHOST/PGPORT/PGUSER/PGDATABASE for a database with ku9 installed,
// as a user that may SET ROLE to ku9's roles and create roles.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import {
  CLAIMS_SETTING,
  makePool,
  makeClient,
  withClient,
  inTransaction,
  setClaims,
  identity,
  scalar,
  backendPid,
  uniqueName,
  quoteIdent,
  rejectsWith,
} from './helpers.mjs';

const NOT_JSON = 'setting "request.jwt.claims" is not valid JSON';
const NOT_OBJECT = 'setting "request.jwt.claims" is not a JSON object';
const SUB_NOT_UUID = 'claim "sub" is not a valid uuid';
const SUB_NOT_STRING = 'claim "sub" is not a string';
const ROLE_NOT_STRING = 'claim "role" is not a string';

const NULL_IDENTITY = { claims: null, uid: null, role: null };
const KU9_ROLES = ['ku9_anon', 'ku9_user', 'ku9_service'];

let pool;

before(async () => {
  pool = makePool({ max: 4 });
  const version = await withClient(pool, (c) => scalar(c,
    "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'ku9') AS v"));
  assert.ok(version, 'the ku9 extension is not installed in this database');
});

after(async () => {
  await pool?.end();
});

describe('claims from set_config(..., true)', () => {
  test('a new session without the setting gets NULL from claims(), uid() and role()', async () => {
    const client = makeClient();
    await client.connect();
    try {
      assert.equal(await scalar(client,
        'SELECT pg_catalog.current_setting($1, true) AS v', [CLAIMS_SETTING]), null,
      'precondition: the setting is undefined in a fresh session');
      assert.deepEqual(await identity(client), NULL_IDENTITY);
    } finally {
      await client.end();
    }
  });

  test('uid(), role() and claims() return the claims of the transaction', async () => {
    const sub = randomUUID();
    const claims = {
      sub,
      role: 'ku9_user',
      aud: 'authenticated',
      exp: 4102444800,
      app_metadata: { provider: 'email', groups: ['a', 'b'] },
      email: 'ü@example.org',
    };
    await withClient(pool, (c) => inTransaction(c, async () => {
      await setClaims(c, claims);
      assert.deepEqual(await identity(c), { claims, uid: sub, role: 'ku9_user' });

      // the SQL types are the documented ones
      const { rows } = await c.query(
        'SELECT pg_catalog.pg_typeof(ku9.claims())::text AS c,'
        + ' pg_catalog.pg_typeof(ku9.uid())::text AS u,'
        + ' pg_catalog.pg_typeof(ku9.role())::text AS r,'
        + ' ku9.uid() = $1::uuid AS same_uid,'
        + " ku9.claims() -> 'app_metadata' ->> 'provider' AS provider",
        [sub]);
      assert.deepEqual(rows[0], { c: 'jsonb', u: 'uuid', r: 'text', same_uid: true, provider: 'email' });

      // and stay the same for later statements of the transaction
      assert.deepEqual(await identity(c), { claims, uid: sub, role: 'ku9_user' });
    }));
  });

  test('after COMMIT (and after ROLLBACK) the identity is NULL again', async () => {
    await withClient(pool, async (c) => {
      const sub = randomUUID();
      await inTransaction(c, async () => {
        await setClaims(c, { sub, role: 'ku9_user' });
        assert.equal((await identity(c)).uid, sub);
      });
      assert.deepEqual(await identity(c), NULL_IDENTITY, 'after COMMIT');
      assert.equal(await scalar(c,
        'SELECT pg_catalog.current_setting($1, true) AS v', [CLAIMS_SETTING]), '',
      'set_config(..., true) leaves the setting empty after COMMIT');

      const sub2 = randomUUID();
      await c.query('BEGIN');
      await setClaims(c, { sub: sub2, role: 'ku9_service' });
      assert.deepEqual(await identity(c),
        { claims: { sub: sub2, role: 'ku9_service' }, uid: sub2, role: 'ku9_service' });
      await c.query('ROLLBACK');
      assert.deepEqual(await identity(c), NULL_IDENTITY, 'after ROLLBACK');
    });
  });

  test('a claim that is absent or JSON null gives NULL', async () => {
    await withClient(pool, async (c) => {
      await inTransaction(c, async () => {
        await setClaims(c, { role: 'ku9_anon' });
        assert.deepEqual(await identity(c),
          { claims: { role: 'ku9_anon' }, uid: null, role: 'ku9_anon' });
      });
      const sub = randomUUID();
      await inTransaction(c, async () => {
        await setClaims(c, { sub, role: null });
        assert.deepEqual(await identity(c), { claims: { sub, role: null }, uid: sub, role: null });
      });
      await inTransaction(c, async () => {
        await setClaims(c, { sub: null, role: 'ku9_user' });
        assert.deepEqual(await identity(c),
          { claims: { sub: null, role: 'ku9_user' }, uid: null, role: 'ku9_user' });
      });
      await inTransaction(c, async () => {
        await setClaims(c, {});
        assert.deepEqual(await identity(c), { claims: {}, uid: null, role: null });
      });
    });
  });

  for (const [name, text] of [
    ['empty', ''],
    ['spaces', '   '],
    ['whitespace of every JSON kind', ' \t\r\n \n'],
  ]) {
    test(`blank claims (${name}) give NULL, not an error`, async () => {
      await withClient(pool, (c) => inTransaction(c, async () => {
        // a real identity first, so that a blank setting cannot pass by
        // returning nothing at all
        const sub = randomUUID();
        await setClaims(c, { sub, role: 'ku9_user' });
        assert.equal((await identity(c)).uid, sub);

        await setClaims(c, text);
        assert.deepEqual(await identity(c), NULL_IDENTITY);
      }));
    });
  }

  test('claims changed within a transaction are seen at once (no stale cache)', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    await withClient(pool, (c) => inTransaction(c, async () => {
      await setClaims(c, { sub: a, role: 'ku9_user' });
      assert.deepEqual(await identity(c), { claims: { sub: a, role: 'ku9_user' }, uid: a, role: 'ku9_user' });

      await setClaims(c, { sub: b, role: 'ku9_service' });
      assert.deepEqual(await identity(c), { claims: { sub: b, role: 'ku9_service' }, uid: b, role: 'ku9_service' });

      // a claim disappearing must not leave its old value behind
      await setClaims(c, { sub: a });
      assert.deepEqual(await identity(c), { claims: { sub: a }, uid: a, role: null });
      await setClaims(c, { role: 'ku9_anon' });
      assert.deepEqual(await identity(c), { claims: { role: 'ku9_anon' }, uid: null, role: 'ku9_anon' });

      // same sub, other claims: claims() and role() must follow
      await setClaims(c, { sub: a, role: 'ku9_user', n: 1 });
      assert.deepEqual(await identity(c), { claims: { sub: a, role: 'ku9_user', n: 1 }, uid: a, role: 'ku9_user' });
      await setClaims(c, { sub: a, role: 'ku9_user', n: 2 });
      assert.deepEqual((await identity(c)).claims, { sub: a, role: 'ku9_user', n: 2 });

      // blank and back
      await setClaims(c, '');
      assert.deepEqual(await identity(c), NULL_IDENTITY);
      await setClaims(c, { sub: a });
      assert.equal((await identity(c)).uid, a);

      // SET LOCAL, a rolled back savepoint and RESET change it as well
      await c.query(`SET LOCAL request.jwt.claims = '${JSON.stringify({ sub: b })}'`);
      assert.equal((await identity(c)).uid, b);
      await c.query('SAVEPOINT s');
      await setClaims(c, { sub: a });
      assert.equal((await identity(c)).uid, a);
      await c.query('ROLLBACK TO SAVEPOINT s');
      assert.equal((await identity(c)).uid, b, 'after ROLLBACK TO SAVEPOINT');
      await c.query('RESET request.jwt.claims');
      assert.deepEqual(await identity(c), NULL_IDENTITY, 'after RESET');
    }));
  });

  test('the same claims in a later transaction on the same connection are read again', async () => {
    const sub = randomUUID();
    await withClient(pool, async (c) => {
      for (let i = 0; i < 3; i++) {
        await inTransaction(c, async () => {
          assert.deepEqual(await identity(c), NULL_IDENTITY, `transaction ${i} before set_config`);
          await setClaims(c, { sub, role: 'ku9_user' });
          assert.equal((await identity(c)).uid, sub, `transaction ${i}`);
        });
      }
    });
  });
});

describe('isolation between connections', () => {
  test('two pool clients with interleaved open transactions each see only their own claims', async () => {
    const c1 = await pool.connect();
    const c2 = await pool.connect();
    let ok = false;
    try {
      assert.notEqual(await backendPid(c1), await backendPid(c2), 'precondition: two backends');
      const [s1, s2] = [randomUUID(), randomUUID()];
      const id1 = { claims: { sub: s1, role: 'ku9_user' }, uid: s1, role: 'ku9_user' };
      const id2 = { claims: { sub: s2, role: 'ku9_service' }, uid: s2, role: 'ku9_service' };

      await c1.query('BEGIN');
      await c2.query('BEGIN');
      await setClaims(c1, id1.claims);
      assert.deepEqual(await identity(c2), NULL_IDENTITY, 'c2 before its own set_config');
      await setClaims(c2, id2.claims);
      assert.deepEqual(await identity(c1), id1);
      assert.deepEqual(await identity(c2), id2);
      assert.deepEqual(await identity(c1), id1);

      // both at once on the wire
      const [r1, r2] = await Promise.all([identity(c1), identity(c2)]);
      assert.deepEqual(r1, id1);
      assert.deepEqual(r2, id2);

      await c2.query('COMMIT');
      assert.deepEqual(await identity(c2), NULL_IDENTITY, 'c2 after its COMMIT');
      assert.deepEqual(await identity(c1), id1, 'c1 still in its transaction');

      // c2 takes c1's claims while c1 is still open: still per connection
      await c2.query('BEGIN');
      const s3 = randomUUID();
      await setClaims(c2, { sub: s3 });
      assert.equal((await identity(c2)).uid, s3);
      assert.deepEqual(await identity(c1), id1);
      await c1.query('COMMIT');
      assert.deepEqual(await identity(c1), NULL_IDENTITY, 'c1 after its COMMIT');
      assert.equal((await identity(c2)).uid, s3);
      await c2.query('COMMIT');
      ok = true;
    } finally {
      for (const c of [c1, c2]) {
        if (ok) {
          c.release();
        } else {
          await c.query('ROLLBACK').catch(() => {});
          c.release(true);
        }
      }
    }
  });

  test('200 transactions over a pool of 4 each see exactly their own uid', async () => {
    const busy = makePool({ max: 4 });
    try {
      const N = 200;
      const subs = Array.from({ length: N }, () => randomUUID());
      assert.equal(new Set(subs).size, N);
      const pids = new Set();

      const results = await Promise.all(subs.map((sub, i) => withClient(busy, async (c) => {
        pids.add(await backendPid(c));
        const role = KU9_ROLES[i % KU9_ROLES.length];
        // every 10th transaction has no claims: it must not see its
        // connection's previous ones
        const anonymous = i % 10 === 9;
        const seen = await inTransaction(c, async () => {
          const before = await identity(c);
          if (!anonymous) await setClaims(c, { sub, role, i });
          // give the other transactions a chance to run in between
          await c.query('SELECT pg_catalog.pg_sleep($1)', [Math.random() * 0.002]);
          const first = await identity(c);
          const second = await scalar(c, 'SELECT ku9.uid()::text AS uid');
          return { before, first, second };
        });
        const afterCommit = await identity(c);
        return { i, sub, role, anonymous, afterCommit, ...seen };
      })));

      assert.ok(pids.size > 1 && pids.size <= 4,
        `expected the work spread over 2..4 backends, got ${pids.size}`);
      for (const r of results) {
        const want = r.anonymous
          ? NULL_IDENTITY
          : { claims: { sub: r.sub, role: r.role, i: r.i }, uid: r.sub, role: r.role };
        assert.deepEqual(r.before, NULL_IDENTITY, `transaction ${r.i} at BEGIN`);
        assert.deepEqual(r.first, want, `transaction ${r.i}`);
        assert.equal(r.second, want.uid, `transaction ${r.i}, second read`);
        assert.deepEqual(r.afterCommit, NULL_IDENTITY, `transaction ${r.i} after COMMIT`);
      }
    } finally {
      await busy.end();
    }
  });
});

describe('roles', () => {
  for (const role of KU9_ROLES) {
    test(`SET LOCAL ROLE ${role} can call claims(), uid() and role()`, async () => {
      await withClient(pool, async (c) => {
        const sessionUser = await scalar(c, 'SELECT current_user AS u');
        const sub = randomUUID();
        await inTransaction(c, async () => {
          // as PostgREST does: claims and role for the transaction
          await setClaims(c, { sub, role });
          await c.query(`SET LOCAL ROLE ${quoteIdent(role)}`);
          assert.equal(await scalar(c, 'SELECT current_user AS u'), role);
          assert.deepEqual(await identity(c), { claims: { sub, role }, uid: sub, role });

          // the role may also change the claims itself
          const sub2 = randomUUID();
          await setClaims(c, { sub: sub2, role });
          assert.equal(await scalar(c, 'SELECT current_user AS u'), role);
          assert.deepEqual(await identity(c), { claims: { sub: sub2, role }, uid: sub2, role });
        });
        assert.equal(await scalar(c, 'SELECT current_user AS u'), sessionUser, 'role reverts at COMMIT');
        assert.deepEqual(await identity(c), NULL_IDENTITY);
      });
    });
  }

  describe('a role without grants', () => {
    let bare; // no privileges at all
    let schemaOnly; // USAGE on schema ku9, but no EXECUTE on the functions

    before(async () => {
      bare = uniqueName('ku9_node_bare');
      schemaOnly = uniqueName('ku9_node_noexec');
      await withClient(pool, async (c) => {
        await c.query(`CREATE ROLE ${quoteIdent(bare)} NOLOGIN`);
        await c.query(`CREATE ROLE ${quoteIdent(schemaOnly)} NOLOGIN`);
        await c.query(`GRANT USAGE ON SCHEMA ku9 TO ${quoteIdent(schemaOnly)}`);
      });
    });

    after(async () => {
      await withClient(pool, async (c) => {
        for (const r of [bare, schemaOnly]) {
          if (!r) continue;
          const exists = await scalar(c,
            'SELECT count(*)::int AS n FROM pg_catalog.pg_roles WHERE rolname = $1', [r]);
          if (exists) {
            await c.query(`DROP OWNED BY ${quoteIdent(r)}`);
            await c.query(`DROP ROLE ${quoteIdent(r)}`);
          }
        }
      });
    });

    test('gets SQLSTATE 42501 calling ku9.uid()', async () => {
      await withClient(pool, async (c) => {
        await c.query('BEGIN');
        await setClaims(c, { sub: randomUUID(), role: 'ku9_user' });
        await c.query(`SET LOCAL ROLE ${quoteIdent(bare)}`);
        await rejectsWith(c.query('SELECT ku9.uid()'), '42501', /permission denied/, 'ku9.uid()');
        await c.query('ROLLBACK');
      });
    });

    for (const fn of ['uid', 'role', 'claims']) {
      test(`with USAGE on schema ku9 only, still gets 42501 for ku9.${fn}() (not granted to PUBLIC)`, async () => {
        const sub = randomUUID();
        await withClient(pool, async (c) => {
          await c.query('BEGIN');
          await setClaims(c, { sub, role: 'ku9_user' });
          await c.query(`SET LOCAL ROLE ${quoteIdent(schemaOnly)}`);
          assert.equal(await scalar(c, 'SELECT current_user AS u'), schemaOnly);
          await rejectsWith(c.query(`SELECT ku9.${fn}()`), '42501',
            `permission denied for function ${fn}`, `ku9.${fn}()`);
          await c.query('ROLLBACK');

          // control: with EXECUTE granted (rolled back) the same role gets the
          // value, so the error above really is the missing grant
          await c.query('BEGIN');
          await c.query(`GRANT EXECUTE ON FUNCTION ku9.${fn}() TO ${quoteIdent(schemaOnly)}`);
          await setClaims(c, { sub, role: 'ku9_user' });
          await c.query(`SET LOCAL ROLE ${quoteIdent(schemaOnly)}`);
          const got = await scalar(c, `SELECT ku9.${fn}()${fn === 'uid' ? '::text' : ''} AS v`);
          const want = { uid: sub, role: 'ku9_user', claims: { sub, role: 'ku9_user' } }[fn];
          assert.deepEqual(got, want);
          await c.query('ROLLBACK');
        });
      });
    }
  });
});

describe('malformed claims', () => {
  // expect[fn] is [SQLSTATE, message] for an error, or the value returned
  const cases = [
    {
      name: 'not JSON',
      text: 'not json',
      expect: { claims: ['22P02', NOT_JSON], uid: ['22P02', NOT_JSON], role: ['22P02', NOT_JSON] },
    },
    {
      name: 'truncated JSON object',
      text: '{"sub": "7c9e6679-7425-40de-944b-e07fc1f90ae7"',
      expect: { claims: ['22P02', NOT_JSON], uid: ['22P02', NOT_JSON], role: ['22P02', NOT_JSON] },
    },
    {
      name: 'a JSON array',
      text: '[{"sub": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}]',
      expect: { claims: ['22023', NOT_OBJECT], uid: ['22023', NOT_OBJECT], role: ['22023', NOT_OBJECT] },
    },
    {
      name: 'a JSON string',
      text: '"7c9e6679-7425-40de-944b-e07fc1f90ae7"',
      expect: { claims: ['22023', NOT_OBJECT], uid: ['22023', NOT_OBJECT], role: ['22023', NOT_OBJECT] },
    },
    {
      name: 'a JSON number',
      text: '42',
      expect: { claims: ['22023', NOT_OBJECT], uid: ['22023', NOT_OBJECT], role: ['22023', NOT_OBJECT] },
    },
    {
      name: 'JSON null',
      text: 'null',
      expect: { claims: ['22023', NOT_OBJECT], uid: ['22023', NOT_OBJECT], role: ['22023', NOT_OBJECT] },
    },
    {
      name: 'a sub that is not a uuid',
      text: '{"sub": "not-a-uuid", "role": "ku9_user"}',
      expect: {
        claims: { sub: 'not-a-uuid', role: 'ku9_user' },
        uid: ['22P02', SUB_NOT_UUID],
        role: 'ku9_user',
      },
    },
    {
      name: 'an empty sub',
      text: '{"sub": ""}',
      expect: { claims: { sub: '' }, uid: ['22P02', SUB_NOT_UUID], role: null },
    },
    {
      name: 'a numeric sub',
      text: '{"sub": 42, "role": "ku9_user"}',
      expect: { claims: { sub: 42, role: 'ku9_user' }, uid: ['22P02', SUB_NOT_STRING], role: 'ku9_user' },
    },
    {
      name: 'an object sub',
      text: '{"sub": {"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}}',
      expect: {
        claims: { sub: { id: '7c9e6679-7425-40de-944b-e07fc1f90ae7' } },
        uid: ['22P02', SUB_NOT_STRING],
        role: null,
      },
    },
    {
      name: 'a numeric role',
      text: '{"sub": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "role": 7}',
      expect: {
        claims: { sub: '7c9e6679-7425-40de-944b-e07fc1f90ae7', role: 7 },
        uid: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
        role: ['22P02', ROLE_NOT_STRING],
      },
    },
  ];

  for (const { name, text, expect } of cases) {
    test(`${name} gives the documented result from each function`, async () => {
      await withClient(pool, async (c) => {
        for (const fn of ['claims', 'uid', 'role']) {
          const sql = `SELECT ku9.${fn}()${fn === 'uid' ? '::text' : ''} AS v`;
          // twice: a failed parse must not be remembered as a success
          for (let round = 1; round <= 2; round++) {
            const what = `ku9.${fn}() with ${JSON.stringify(text)}, round ${round}`;
            await c.query('BEGIN');
            await setClaims(c, text);
            if (Array.isArray(expect[fn])) {
              const [code, message] = expect[fn];
              const err = await rejectsWith(c.query(sql), code, message, what);
              assert.match(err.message, /request\.jwt\.claims|claim "(sub|role)"/, `${what}: names the setting or claim`);
            } else {
              assert.deepEqual(await scalar(c, sql), expect[fn], what);
            }
            await c.query('ROLLBACK');
          }
        }

        // the connection is not poisoned: valid claims work right after
        const sub = randomUUID();
        await inTransaction(c, async () => {
          await setClaims(c, { sub, role: 'ku9_user' });
          assert.deepEqual(await identity(c), { claims: { sub, role: 'ku9_user' }, uid: sub, role: 'ku9_user' });
        });
      });
    });
  }

  test('malformed claims replacing valid ones in the same transaction are not masked by the earlier parse', async () => {
    const sub = randomUUID();
    await withClient(pool, async (c) => {
      for (const [bad, code, message] of [
        ['not json', '22P02', NOT_JSON],
        ['[]', '22023', NOT_OBJECT],
        ['{"sub": "nope"}', '22P02', SUB_NOT_UUID],
        ['{"sub": 1}', '22P02', SUB_NOT_STRING],
      ]) {
        await c.query('BEGIN');
        await setClaims(c, { sub });
        assert.equal((await identity(c)).uid, sub);
        await setClaims(c, bad);
        await rejectsWith(c.query('SELECT ku9.uid()'), code, message, `uid() after switching to ${bad}`);
        await c.query('ROLLBACK');
      }
    });
  });

  test('a syntax error keeps the parser\'s message as detail and names the setting in the hint', async () => {
    await withClient(pool, async (c) => {
      await c.query('BEGIN');
      await setClaims(c, '{"sub": ');
      const err = await rejectsWith(c.query('SELECT ku9.claims()'), '22P02', NOT_JSON, 'ku9.claims()');
      assert.ok(err.detail, 'has a detail');
      assert.match(err.hint ?? '', /request\.jwt\.claims/);
      await c.query('ROLLBACK');

      await c.query('BEGIN');
      await setClaims(c, '{"sub": "xyz"}');
      const err2 = await rejectsWith(c.query('SELECT ku9.uid()'), '22P02', SUB_NOT_UUID, 'ku9.uid()');
      assert.match(err2.detail ?? '', /xyz/, 'detail quotes the bad value');
      await c.query('ROLLBACK');
    });
  });
});
