// ku9 queues seen from a real client: consumers that LISTEN on a queue's
// channel and read until it is empty, a producer streaming messages in
// transactions, and a long-polling ku9.read(..., wait_ms) woken by a commit.
//
// Needs PGHOST/PGPORT/PGUSER/PGDATABASE for a database with ku9 installed,
// as a user that may manage queues (ku9_service or a superuser).  Each test
// creates its own queue (a unique name) and drops it at the end.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

import {
  makePool,
  makeClient,
  withClient,
  inTransaction,
  scalar,
  backendPid,
  uniqueName,
  quoteIdent,
} from './helpers.mjs';

let pool;
const queues = new Set();

before(async () => {
  pool = makePool({ max: 4 });
  const version = await withClient(pool, (c) => scalar(c,
    "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'ku9') AS v"));
  assert.ok(version, 'the ku9 extension is not installed in this database');
  const hasQueues = await withClient(pool, (c) => scalar(c,
    "SELECT pg_catalog.to_regprocedure('ku9.read(text, integer, integer, integer)') IS NOT NULL AS ok"));
  assert.ok(hasQueues, 'this ku9 has no queue functions: re-create the extension');
});

after(async () => {
  if (pool) {
    await withClient(pool, async (c) => {
      for (const q of queues) await c.query('SELECT ku9.drop_queue($1)', [q]);
    }).catch(() => {});
    await pool.end();
  }
});

// createQueue makes a queue with a unique name, dropped after the tests.
async function createQueue(prefix) {
  const name = uniqueName(prefix);
  await withClient(pool, (c) => c.query('SELECT ku9.create_queue($1)', [name]));
  queues.add(name);
  return name;
}

async function dropQueue(name) {
  await withClient(pool, (c) => c.query('SELECT ku9.drop_queue($1)', [name]));
  queues.delete(name);
}

async function queueStats(name) {
  return withClient(pool, async (c) => {
    const { rows } = await c.query(
      'SELECT depth::int, visible::int, in_flight::int, delayed::int, dead::int FROM ku9.queue_stats($1)',
      [name]);
    return rows[0];
  });
}

// waitFor polls cond() until it is true; throws after ms, or as soon as
// check() throws (a consumer's error).
async function waitFor(cond, ms, what, check = () => {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    check();
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

// startConsumer connects a client that LISTENs on ku9_queue_<queue> and, at
// start and on each notification, reads up to 10 messages at a time until
// the queue has none visible, "processes" each one (records it, sometimes
// yields to the event loop) and acks it on its own.  Notifications arriving
// while it drains make it drain once more, so none is lost.
async function startConsumer(queue, label) {
  const client = makeClient({ application_name: `ku9-node-consumer-${label}` });
  await client.connect();
  const channel = `ku9_queue_${queue}`;
  const c = {
    label,
    client,
    processed: [], // { id, seq, attempts }
    acks: [], // ack() results, one per processed message
    notifications: 0,
    foreignPayloads: [],
    drains: 0,
    error: null,
    draining: null,
    again: false,
  };

  async function drainLoop() {
    do {
      c.again = false;
      c.drains++;
      for (;;) {
        const { rows } = await client.query(
          'SELECT msg_id, attempts, payload FROM ku9.read($1, 10, 30)', [queue]);
        if (rows.length === 0) break;
        for (const r of rows) {
          // the work: record it; now and then let other callbacks run
          c.processed.push({ id: String(r.msg_id), seq: r.payload.seq, attempts: r.attempts });
          if (Math.random() < 0.1) await sleep(0);
          const acked = await scalar(client,
            'SELECT ku9.ack($1, ARRAY[$2]::bigint[]) AS n', [queue, r.msg_id]);
          c.acks.push(acked);
        }
      }
    } while (c.again);
  }

  c.drain = () => {
    if (c.draining) {
      c.again = true;
      return c.draining;
    }
    c.draining = drainLoop()
      .catch((err) => { c.error ??= err; })
      .finally(() => {
        c.draining = null;
        // a notification that came in after the last look: look again
        if (c.again && !c.error) c.drain();
      });
    return c.draining;
  };
  c.check = () => {
    if (c.error) throw c.error;
  };
  c.stop = async () => {
    while (c.draining) await c.draining;
    await client.end();
  };

  client.on('error', (err) => { c.error ??= err; });
  client.on('notification', (msg) => {
    if (msg.channel !== channel) return;
    c.notifications++;
    if (msg.payload !== queue) c.foreignPayloads.push(msg.payload);
    c.drain();
  });
  await client.query(`LISTEN ${quoteIdent(channel)}`);
  c.drain(); // whatever is there already
  return c;
}

// produce sends messages with payload { seq } for seq 0..n-1 in
// transactions of 1 to 20 messages, alternately one send() per message and
// one send_batch(), with random pauses of up to 5 ms.  Every seventh
// transaction also sends a message with seq >= 1e6 and rolls back.
// Returns the ids sent, by seq.
async function produce(queue, n) {
  const client = makeClient({ application_name: 'ku9-node-producer' });
  await client.connect();
  const sent = new Map(); // seq -> id
  let transactions = 0;
  let rolledBack = 0;
  try {
    let seq = 0;
    while (seq < n) {
      const size = Math.min(n - seq, 1 + Math.floor(Math.random() * 20));
      const seqs = Array.from({ length: size }, (_, i) => seq + i);
      if (transactions % 7 === 6) {
        await client.query('BEGIN');
        await client.query('SELECT ku9.send($1, $2::jsonb)', [queue, JSON.stringify({ seq: 1e6 + transactions })]);
        await client.query('ROLLBACK');
        rolledBack++;
      }
      const batch = transactions % 2 === 0;
      await inTransaction(client, async () => {
        if (batch) {
          const { rows } = await client.query(
            'SELECT id FROM ku9.send_batch($1, $2::jsonb) AS id',
            [queue, JSON.stringify(seqs.map((s) => ({ seq: s })))]);
          assert.equal(rows.length, size, 'send_batch returns one id per message');
          rows.forEach((r, i) => sent.set(seqs[i], String(r.id)));
        } else {
          for (const s of seqs) {
            const id = await scalar(client, 'SELECT ku9.send($1, $2::jsonb) AS id',
              [queue, JSON.stringify({ seq: s })]);
            sent.set(s, String(id));
          }
        }
      });
      transactions++;
      seq += size;
      await sleep(Math.random() * 5);
    }
  } finally {
    await client.end();
  }
  return { sent, transactions, rolledBack };
}

// checkExactlyOnce asserts that the consumers together processed each sent
// message exactly once, under the id it was sent with, and acked each one
// successfully.
function checkExactlyOnce(consumers, sent) {
  const all = consumers.flatMap((c) => c.processed);
  const byId = new Map();
  for (const p of all) {
    assert.ok(!byId.has(p.id),
      `message ${p.id} (seq ${p.seq}) processed twice: ${JSON.stringify([byId.get(p.id), p])}`);
    byId.set(p.id, p);
  }
  for (const p of all) {
    assert.ok(p.seq < 1e6, `processed message ${p.id} of a rolled-back transaction (seq ${p.seq})`);
  }
  const missing = [...sent.keys()].filter((s) => !byId.has(sent.get(s)));
  assert.deepEqual(missing, [], 'sent messages never processed');
  assert.equal(all.length, sent.size, 'processed exactly the messages sent');
  for (const p of all) {
    assert.equal(sent.get(p.seq), p.id, `message ${p.id} carries seq ${p.seq}, sent with another id`);
    assert.equal(p.attempts, 1, `message ${p.id} delivered ${p.attempts} times`);
  }
  for (const c of consumers) {
    assert.ok(c.acks.every((n) => n === 1),
      `consumer ${c.label}: an ack did not remove exactly one message: ${c.acks.filter((n) => n !== 1)}`);
    assert.deepEqual(c.foreignPayloads, [], `consumer ${c.label}: notification payloads are the queue name`);
  }
}

describe('LISTEN + read consumers', () => {
  test('one consumer processes a stream of 500 messages exactly once', { timeout: 120000 }, async (t) => {
    const queue = await createQueue('node_q_one');
    const N = 500;
    const consumer = await startConsumer(queue, 'a');
    try {
      const t0 = performance.now();
      const { sent, transactions, rolledBack } = await produce(queue, N);
      assert.equal(sent.size, N);
      await waitFor(() => consumer.processed.length >= N, 60000,
        `${N} messages processed (have ${consumer.processed.length})`, consumer.check);
      const elapsed = performance.now() - t0;
      // anything left over (a duplicate) would show up now
      await sleep(200);
      while (consumer.draining) await consumer.draining;
      consumer.check();

      t.diagnostic(`${N} messages in ${transactions} transactions (+${rolledBack} rolled back), `
        + `processed in ${elapsed.toFixed(0)} ms; ${consumer.notifications} notifications, `
        + `${consumer.drains} drains`);
      checkExactlyOnce([consumer], sent);
      assert.ok(consumer.notifications > 0, 'the consumer was notified');

      const stats = await queueStats(queue);
      assert.deepEqual(stats, { depth: 0, visible: 0, in_flight: 0, delayed: 0, dead: 0 },
        'the queue is empty after all acks');
    } finally {
      await consumer.stop();
      await dropQueue(queue);
    }
  });

  test('two competing consumers: the union is exactly the sent set, nothing processed twice', { timeout: 120000 }, async (t) => {
    const queue = await createQueue('node_q_two');
    const N = 500;
    const consumers = [await startConsumer(queue, 'a'), await startConsumer(queue, 'b')];
    const check = () => consumers.forEach((c) => c.check());
    const total = () => consumers.reduce((n, c) => n + c.processed.length, 0);
    try {
      assert.notEqual(await backendPid(consumers[0].client), await backendPid(consumers[1].client));
      const t0 = performance.now();
      const { sent, transactions } = await produce(queue, N);
      await waitFor(() => total() >= N, 60000, `${N} messages processed (have ${total()})`, check);
      const elapsed = performance.now() - t0;
      await sleep(200);
      for (const c of consumers) while (c.draining) await c.draining;
      check();

      t.diagnostic(`${N} messages in ${transactions} transactions, processed in ${elapsed.toFixed(0)} ms: `
        + consumers.map((c) => `${c.label} ${c.processed.length} (${c.notifications} notifications)`).join(', '));
      checkExactlyOnce(consumers, sent);
      const ids = consumers.map((c) => new Set(c.processed.map((p) => p.id)));
      const both = [...ids[0]].filter((id) => ids[1].has(id));
      assert.deepEqual(both, [], 'messages processed by both consumers');

      const stats = await queueStats(queue);
      assert.equal(stats.depth, 0, 'the queue is empty after all acks');
    } finally {
      for (const c of consumers) await c.stop();
      await dropQueue(queue);
    }
  });
});

describe('long poll', () => {
  test('a read waiting with wait_ms returns promptly when another client commits a send', { timeout: 120000 }, async (t) => {
    const queue = await createQueue('node_q_wait');
    const reader = makeClient({ application_name: 'ku9-node-waiter' });
    const sender = makeClient({ application_name: 'ku9-node-sender' });
    await reader.connect();
    await sender.connect();
    try {
      const readerPid = await backendPid(reader);
      const latencies = [];
      for (let round = 1; round <= 5; round++) {
        let settledAt = null;
        const read = reader.query('SELECT msg_id, payload FROM ku9.read($1, 1, 30, 5000)', [queue])
          .then((res) => { settledAt = performance.now(); return res; });
        read.catch(() => {}); // rejection is handled below

        // wait until the reader sleeps in ku9.read
        await withClient(pool, (c) => waitFor(async () => {
          const { rows } = await c.query(
            'SELECT wait_event_type, wait_event FROM pg_catalog.pg_stat_activity WHERE pid = $1',
            [readerPid]);
          return rows[0]?.wait_event_type === 'Extension' && rows[0]?.wait_event === 'Extension';
        }, 4000, 'the reader to sleep in ku9.read'));

        await sender.query('BEGIN');
        const id = await scalar(sender, 'SELECT ku9.send($1, $2::jsonb) AS id',
          [queue, JSON.stringify({ round })]);
        await sleep(100);
        assert.equal(settledAt, null, `round ${round}: the read returned before the send committed`);
        const committing = performance.now();
        await sender.query('COMMIT');
        const res = await read;
        const latency = settledAt - committing;
        latencies.push(latency);

        assert.equal(res.rows.length, 1, `round ${round}: the read got the message`);
        assert.equal(String(res.rows[0].msg_id), String(id));
        assert.deepEqual(res.rows[0].payload, { round });
        assert.ok(latency < 2000, `round ${round}: woke after ${latency.toFixed(1)} ms`);
        assert.equal(await scalar(reader, 'SELECT ku9.ack($1, ARRAY[$2]::bigint[]) AS n', [queue, id]), 1);
      }
      const sorted = [...latencies].sort((a, b) => a - b);
      t.diagnostic(`wake-up latency, COMMIT sent to read returned (ms): `
        + `${latencies.map((l) => l.toFixed(2)).join(', ')}; median ${sorted[2].toFixed(2)}, max ${sorted[4].toFixed(2)}`);
    } finally {
      await reader.end().catch(() => {});
      await sender.end().catch(() => {});
      await dropQueue(queue);
    }
  });
});
