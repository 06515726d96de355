// The Node.js half of test/bench/queue.sh: pg-boss and graphile-worker
// through their own APIs, and ku9 through the same driver (pg) and the same
// loops, so that the three are compared like for like.  Figures go into
// bench.results in the database of the PG* environment.
//
//   node peers.mjs [ku9] [pgboss] [graphile] [wakeup]
//
// Environment: DUR (seconds per measurement), BACKLOG (messages waiting
// before a read measurement), PAYLOAD (the message, JSON), WAKE_SAMPLES.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { run, makeWorkerUtils, Logger } from 'graphile-worker';

const DUR = Number(process.env.DUR || 3) * 1000;
const BACKLOG = Number(process.env.BACKLOG || 1000000);
// pg-boss and graphile-worker fill slowly through their APIs (pg-boss at
// ~30k jobs/s); a smaller backlog can only flatter them (pg-boss sorts its
// whole backlog on every fetch)
const PEER_BACKLOG = Number(process.env.PEER_BACKLOG || 100000);
const PAYLOAD = JSON.parse(process.env.PAYLOAD || '{"kind": "welcome_email", "user_id": 123456, "to": "ada@example.com", "locale": "en"}');
const PAYLOAD_TEXT = JSON.stringify(PAYLOAD);
const BATCH = Array.from({ length: 100 }, () => PAYLOAD);
const BATCH_TEXT = JSON.stringify(BATCH);
const WAKE_SAMPLES = Number(process.env.WAKE_SAMPLES || 300);
const CLIENTS = [1, 4, 16];
const FILL_CHUNK = 10000;

const silent = new Logger(() => () => {});
const what = new Set(process.argv.slice(2).length ? process.argv.slice(2) : ['ku9', 'pgboss', 'graphile', 'wakeup']);

const db = new pg.Client();
await db.connect();

async function record(figure, system, value, unit = 'msgs/s', note = null) {
    await db.query('INSERT INTO bench.results (figure, system, value, unit, note) VALUES ($1, $2, $3, $4, $5)',
        [figure, system, value, unit, note]);
    console.error(`  ${system.padEnd(16)} ${figure.padEnd(16)} ${value.toFixed(1)} ${unit}${note ? ` (${note})` : ''}`);
}

async function connect() {
    const c = new pg.Client();
    await c.connect();
    return c;
}

// timed(clients, body): run body(i) in `clients` concurrent loops for DUR
// ms; body returns how many messages it handled; returns messages/s
async function timed(clients, body) {
    let n = 0;
    const t0 = performance.now();
    const end = t0 + DUR;
    await Promise.all(Array.from({ length: clients }, async (_, i) => {
        while (performance.now() < end) {
            const k = await body(i);    // not n += await ...: that reads n before the await
            n += k;
        }
    }));
    return n / ((performance.now() - t0) / 1000);
}

async function vacuum(...tables) {
    for (const t of tables)
        await db.query(`VACUUM ANALYZE ${t}`);
}

function percentile(xs, p) {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

// ------------------------------------------------------------------------
// ku9 through pg, with the loops used for the peers
// ------------------------------------------------------------------------
async function ku9() {
    console.error('ku9 (node pg)');
    const sys = 'ku9 (node)';
    const c = await connect();
    await record('send 1', sys, await timed(1, async () => {
        await c.query("SELECT ku9.send('node_send', $1)", [PAYLOAD_TEXT]);
        return 1;
    }));
    await record('send batch 100', sys, await timed(1, async () => {
        const r = await c.query("SELECT ku9.send_batch('node_send', $1)", [BATCH_TEXT]);
        return r.rowCount;
    }));
    for (const n of [1, 100]) {
        await db.query(`CALL bench.fill_ku9('bench', ${BACKLOG})`);
        await vacuum('ku9_queue.q_bench');
        await record(`read+ack ${n}`, sys, await timed(1, async () => {
            const r = await c.query("SELECT * FROM ku9.read('bench', $1, 30)", [n]);
            if (r.rowCount > 0)
                await c.query("SELECT ku9.ack('bench', $1)", [r.rows.map((m) => m.msg_id)]);
            return r.rowCount;
        }));
    }
    await c.end();
    for (const clients of CLIENTS) {
        const q = `node_e2e_${clients}`;
        await vacuum(`ku9_queue.q_${q}`);
        const cs = await Promise.all(Array.from({ length: clients }, connect));
        await record(`e2e ${clients}`, sys, await timed(clients, async (i) => {
            await cs[i].query('SELECT ku9.send($1, $2)', [q, PAYLOAD_TEXT]);
            const r = await cs[i].query('SELECT * FROM ku9.read($1, 1, 30)', [q]);
            if (r.rowCount > 0)
                await cs[i].query('SELECT ku9.ack($1, $2)', [q, r.rows.map((m) => m.msg_id)]);
            return r.rowCount;
        }));
        await Promise.all(cs.map((x) => x.end()));
    }
}

// ------------------------------------------------------------------------
// pg-boss: send / insert / fetch + complete
// ------------------------------------------------------------------------
async function pgboss() {
    console.error('pg-boss');
    const sys = 'pg-boss';
    // no supervisor (maintenance, monitoring) and no cron: nothing runs in
    // the background while we measure
    const boss = new PgBoss({ schema: 'pgboss', max: 20, supervise: false, schedule: false });
    boss.on('error', (e) => console.error('pg-boss error:', e));
    await boss.start();
    for (const q of ['boss_send', 'boss_bench', 'boss_wake', ...CLIENTS.map((c) => `boss_e2e_${c}`)])
        await boss.createQueue(q);

    await record('send 1', sys, await timed(1, async () => {
        await boss.send('boss_send', PAYLOAD);
        return 1;
    }));
    const jobs100 = BATCH.map((data) => ({ name: 'boss_send', data }));
    await record('send batch 100', sys, await timed(1, async () => {
        await boss.insert(jobs100);
        return 100;
    }));

    const chunk = Array.from({ length: FILL_CHUNK }, () => ({ name: 'boss_bench', data: PAYLOAD }));
    for (const n of [1, 100]) {
        let have = await boss.getQueueSize('boss_bench');
        const t0 = performance.now();
        for (; have < PEER_BACKLOG; have += FILL_CHUNK)
            await boss.insert(chunk);
        console.error(`  (backlog ${have}, filled in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        await vacuum('pgboss.job');
        await record(`read+ack ${n}`, sys, await timed(1, async () => {
            const jobs = await boss.fetch('boss_bench', { batchSize: n });
            if (jobs.length > 0)
                await boss.complete('boss_bench', jobs.map((j) => j.id));
            return jobs.length;
        }), 'msgs/s', `backlog ${have}`);
    }

    for (const clients of CLIENTS) {
        const q = `boss_e2e_${clients}`;
        await record(`e2e ${clients}`, sys, await timed(clients, async () => {
            await boss.send(q, PAYLOAD);
            const jobs = await boss.fetch(q, { batchSize: 1 });
            if (jobs.length > 0)
                await boss.complete(q, jobs.map((j) => j.id));
            return jobs.length;
        }));
    }

    if (what.has('wakeup')) {
        // work() polls; 0.5 s is the shortest interval pg-boss accepts
        const samples = [];
        let resolve;
        await boss.work('boss_wake', { pollingIntervalSeconds: 0.5, batchSize: 1 }, async () => {
            resolve(performance.now());
        });
        await sleep(200);
        for (let i = 0; i < 20; i++) {
            await sleep(Math.random() * 500);
            const got = new Promise((r) => { resolve = r; });
            const t0 = performance.now();
            await boss.send('boss_wake', PAYLOAD);
            samples.push((await got) - t0);
        }
        await boss.offWork('boss_wake');
        await record('wake p50', sys, percentile(samples, 50), 'ms', `${samples.length} samples, polling every 0.5 s`);
        await record('wake p99', sys, percentile(samples, 99), 'ms', `${samples.length} samples, polling every 0.5 s`);
    }
    await boss.stop({ graceful: false, wait: true });
}

// ------------------------------------------------------------------------
// graphile-worker: addJob / addJobs / a runner working the backlog
// ------------------------------------------------------------------------
async function graphile() {
    console.error('graphile-worker');
    const sys = 'graphile-worker';
    const pgPool = new pg.Pool({ max: 20 });
    pgPool.on('error', (e) => console.error('graphile-worker pool error:', e));
    pgPool.on('connect', (client) => client.on('error', (e) => console.error('graphile-worker client error:', e)));
    const utils = await makeWorkerUtils({ pgPool, logger: silent });
    await utils.migrate();
    // graphile-worker keeps every task's jobs in one table, and its runner
    // walks the (priority, run_at) index past other tasks' jobs: leave only
    // the jobs of the task being measured, as ku9, PgQ and pg-boss have a
    // table (partition) per queue
    const onlyTask = async (task) => {
        await db.query('DELETE FROM graphile_worker._private_jobs j USING graphile_worker._private_tasks t ' +
                       'WHERE j.task_id = t.id AND t.identifier <> $1', [task]);
        await vacuum('graphile_worker._private_jobs');
    };

    await record('send 1', sys, await timed(1, async () => {
        await utils.addJob('bench_send', PAYLOAD);
        return 1;
    }));
    const specs100 = BATCH.map((payload) => ({ identifier: 'bench_send', payload }));
    await record('send batch 100', sys, await timed(1, async () => {
        await utils.addJobs(specs100);
        return 100;
    }));

    // read+ack: a runner takes jobs off the backlog and completes them.
    // 1: the defaults (one get_job and one complete per job).  100: the
    // batching the documentation recommends for throughput: a local queue
    // of 100 jobs fetched at once, completions batched.
    const chunk = Array.from({ length: FILL_CHUNK }, () => ({ identifier: 'bench', payload: PAYLOAD }));
    const configs = {
        1: { concurrency: 1 },
        100: { concurrency: 1, preset: { worker: { localQueue: { size: 100 }, completeJobBatchDelay: 0 } } },
    };
    for (const n of [1, 100]) {
        let { rows: [{ have }] } = await db.query("SELECT count(*)::int AS have FROM graphile_worker.jobs WHERE task_identifier = 'bench'");
        const t0 = performance.now();
        for (; have < PEER_BACKLOG; have += FILL_CHUNK)
            await utils.addJobs(chunk);
        console.error(`  (backlog ${have}, filled in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        await onlyTask('bench');
        let done = 0;
        let first;
        const started = new Promise((r) => { first = r; });
        const runner = await run({
            pgPool, logger: silent, noHandleSignals: true, pollInterval: 1000,
            ...configs[n],
            taskList: { bench: async () => { if (done++ === 0) first(); } },
        });
        await started;
        const t1 = performance.now();
        const d1 = done;
        await sleep(DUR);
        const rate = (done - d1) / ((performance.now() - t1) / 1000);
        await runner.stop();
        await record(`read+ack ${n}`, sys, rate, 'msgs/s',
            `backlog ${have}, ${n === 1 ? 'runner defaults' : 'runner with localQueue 100 and batched completion'}`);
    }

    // end to end: N producers each add a job and wait until a runner with
    // concurrency N has run it (the completion follows asynchronously)
    for (const clients of CLIENTS) {
        await onlyTask('e2e');
        const waiting = new Map();
        const runner = await run({
            pgPool, logger: silent, noHandleSignals: true, pollInterval: 1000, concurrency: clients,
            taskList: { e2e: async (payload) => { waiting.get(payload.k)?.(); } },
        });
        let seq = 0;
        await record(`e2e ${clients}`, sys, await timed(clients, async () => {
            const k = seq++;
            const done = new Promise((r) => waiting.set(k, r));
            await utils.addJob('e2e', { ...PAYLOAD, k });
            await done;
            waiting.delete(k);
            return 1;
        }));
        await runner.stop();
    }

    if (what.has('wakeup')) {
        // a runner is woken by LISTEN/NOTIFY when a job is added
        await onlyTask('wake');
        let resolve;
        const runner = await run({
            pgPool, logger: silent, noHandleSignals: true, pollInterval: 2000, concurrency: 1,
            taskList: { wake: async () => { resolve(performance.now()); } },
        });
        await sleep(300);
        const samples = [];
        for (let i = 0; i < WAKE_SAMPLES; i++) {
            await sleep(3 + Math.random() * 5);
            const got = new Promise((r) => { resolve = r; });
            const t0 = performance.now();
            await utils.addJob('wake', PAYLOAD);
            samples.push((await got) - t0);
        }
        await runner.stop();
        await record('wake p50', sys, percentile(samples, 50), 'ms', `${samples.length} samples, LISTEN/NOTIFY`);
        await record('wake p99', sys, percentile(samples, 99), 'ms', `${samples.length} samples, LISTEN/NOTIFY`);
    }
    await utils.release();
    await pgPool.end();
}

// ------------------------------------------------------------------------
// ku9 wake-up: one session waits in ku9.read(q, 1, 30, 5000), another
// sends.  Client side: from just before the send is issued to the moment
// the waiter's read returns.  Server side: clock_timestamp() taken in the
// sending statement (before its commit) against clock_timestamp() after
// the waiting read returned.
// ------------------------------------------------------------------------
async function wakeup() {
    console.error('ku9 wake-up');
    const waiter = await connect();
    const sender = await connect();
    const { rows: [{ pid }] } = await waiter.query('SELECT pg_backend_pid() AS pid');
    const client = [];
    const server = [];
    let resolve = null;
    let stop = false;
    let spurious = 0;
    const loop = (async () => {
        while (!stop) {
            const r = await waiter.query(
                "SELECT msg_id, 1000 * extract(epoch FROM clock_timestamp() - (payload->>'t')::timestamptz) AS ms " +
                "FROM ku9.read('wake', 1, 30, 5000)");
            const t1 = performance.now();
            if (r.rowCount === 0)
                continue;
            await waiter.query("SELECT ku9.ack('wake', $1)", [[r.rows[0].msg_id]]);
            if (resolve)
                resolve({ t1, ms: Number(r.rows[0].ms) });
            else if (!stop)
                spurious++;
        }
    })();
    for (let i = 0; i < WAKE_SAMPLES; i++) {
        // wait until the waiter sleeps in its read
        for (;;) {
            await sleep(2 + Math.random() * 4);
            const { rows: [{ w }] } = await sender.query(
                "SELECT wait_event_type = 'Extension' AS w FROM pg_stat_activity WHERE pid = $1", [pid]);
            if (w)
                break;
        }
        const got = new Promise((r) => { resolve = r; });
        const t0 = performance.now();
        await sender.query("SELECT ku9.send('wake', jsonb_build_object('t', clock_timestamp()))");
        const { t1, ms } = await got;
        resolve = null;
        client.push(t1 - t0);
        server.push(ms);
    }
    stop = true;
    await sender.query("SELECT ku9.send('wake', jsonb_build_object('t', clock_timestamp()))");
    await loop;
    if (spurious > 0)
        throw new Error(`${spurious} unexpected messages in the wake-up queue`);
    const note = `${client.length} samples`;
    await record('wake p50', 'ku9 (node)', percentile(client, 50), 'ms', note);
    await record('wake p99', 'ku9 (node)', percentile(client, 99), 'ms', note);
    await record('wake p50', 'ku9 (server)', percentile(server, 50), 'ms', note);
    await record('wake p99', 'ku9 (server)', percentile(server, 99), 'ms', note);
    await waiter.end();
    await sender.end();
}

try {
    if (what.has('wakeup'))
        await wakeup();
    if (what.has('ku9'))
        await ku9();
    if (what.has('pgboss'))
        await pgboss();
    if (what.has('graphile'))
        await graphile();
} finally {
    await db.end();
}
