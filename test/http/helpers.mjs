// Shared helpers for ku9's node tests.
//
// The server comes from the environment exactly as libpq and the `pg`
// library read it: PGHOST, PGPORT, PGUSER, PGDATABASE (and PGPASSWORD when
// set).  The database must already have the ku9 extension; the user must be
// able to SET ROLE to ku9's roles and to create a throwaway role (a
// superuser, as in CI).

import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import pg from 'pg';

export const CLAIMS_SETTING = 'request.jwt.claims';

// connectionConfig returns the connection settings taken from the
// environment.  Unset variables are left out so that pg's own defaults
// (which read the same variables) apply.
export function connectionConfig(env = process.env) {
  const config = {
    host: env.PGHOST,
    port: env.PGPORT ? Number(env.PGPORT) : undefined,
    user: env.PGUSER,
    database: env.PGDATABASE,
    password: env.PGPASSWORD,
    application_name: 'ku9-node-tests',
  };
  for (const key of Object.keys(config)) {
    if (config[key] === undefined || config[key] === '') delete config[key];
  }
  return config;
}

// makePool returns a pg.Pool on the configured server; options override.
export function makePool(options = {}) {
  const pool = new pg.Pool({ ...connectionConfig(), ...options });
  // an idle client dying (e.g. server restart) must fail the test, not crash
  // the process with an unhandled 'error' event
  pool.on('error', () => {});
  return pool;
}

// makeClient returns an unconnected pg.Client on the configured server.
export function makeClient(options = {}) {
  return new pg.Client({ ...connectionConfig(), ...options });
}

// withClient checks a client out of pool, runs fn(client) and releases it.
// When fn throws, an open transaction is rolled back; a client that cannot
// even roll back is destroyed rather than returned to the pool.
export async function withClient(pool, fn) {
  const client = await pool.connect();
  try {
    const result = await fn(client);
    client.release();
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
      client.release();
    } catch (rollbackErr) {
      client.release(rollbackErr);
    }
    throw err;
  }
}

// inTransaction runs fn(client) between BEGIN and COMMIT, rolling back if
// fn throws.
export async function inTransaction(client, fn) {
  await client.query('BEGIN');
  try {
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

// setClaims sets request.jwt.claims for the current transaction only, the
// way PostgREST does.  claims is an object (sent as JSON) or a raw string.
export async function setClaims(client, claims) {
  const text = typeof claims === 'string' ? claims : JSON.stringify(claims);
  const { rows } = await client.query(
    'SELECT pg_catalog.set_config($1, $2, true) AS value',
    [CLAIMS_SETTING, text],
  );
  assert.equal(rows[0].value, text, 'set_config returned another value');
  return text;
}

// identity returns { claims, uid, role } as ku9 reports them in one
// statement: claims parsed from jsonb, uid as text, role as text; NULLs
// become null.
export async function identity(client) {
  const { rows } = await client.query(
    'SELECT ku9.claims() AS claims, ku9.uid()::text AS uid, ku9.role() AS role',
  );
  return rows[0];
}

// scalar runs a one-column, one-row query and returns the value.
export async function scalar(client, sql, params = []) {
  const { rows, fields } = await client.query(sql, params);
  assert.equal(rows.length, 1, `expected one row from: ${sql}`);
  return rows[0][fields[0].name];
}

// backendPid returns the server process id behind client.
export function backendPid(client) {
  return scalar(client, 'SELECT pg_catalog.pg_backend_pid() AS pid');
}

// uniqueName returns an identifier unlikely to clash with anything left by
// another run or a parallel job: prefix plus random hex.
export function uniqueName(prefix) {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

// quoteIdent quotes an SQL identifier.
export function quoteIdent(name) {
  return '"' + String(name).replaceAll('"', '""') + '"';
}

// rejectsWith asserts that promise rejects with a PostgreSQL error whose
// SQLSTATE is code and whose message equals (string) or matches (RegExp)
// message; it returns the error for further checks.
export async function rejectsWith(promise, code, message, what = '') {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  }, `${what} did not fail`);
  assert.equal(caught.code, code,
    `${what}: SQLSTATE ${caught.code} (${caught.message}), want ${code}`);
  if (message instanceof RegExp) {
    assert.match(caught.message, message, `${what}: message`);
  } else if (message !== undefined) {
    assert.equal(caught.message, message, `${what}: message`);
  }
  return caught;
}

// GATEWAY_URL is the embedded gateway of the server under test (tools/test.sh
// sets KU9_HTTP_URL; the server must have ku9.http_port set and
// ku9_authenticator able to log in).
export const GATEWAY_URL = process.env.KU9_HTTP_URL || 'http://127.0.0.1:3000';

// waitForGateway waits until GET /health answers 200 and a function call
// works (the gateway has connected and read its catalog).
export async function waitForGateway(timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const h = await fetch(`${GATEWAY_URL}/health`);
      if (h.status === 200) {
        const r = await fetch(`${GATEWAY_URL}/rpc/jwks`, { method: 'POST' });
        if (r.status === 200) return;
        last = `jwks: ${r.status} ${await r.text()}`;
      } else {
        last = `health: ${h.status} ${await h.text()}`;
      }
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the gateway at ${GATEWAY_URL} did not come up: ${last}`);
}
