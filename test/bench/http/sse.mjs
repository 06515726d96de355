// SSE load for test/bench/http.sh: CLIENTS users each hold a GET /events
// stream on the gateway; all are subscribed to one topic.  Measures
//   idle: the gateway workers' RSS before and after the streams open (per
//         connection), and
//   fan-out: MESSAGES topic publishes, one every INTERVAL ms; each client
//         notes when each event arrives: events/s delivered (all clients)
//         and publish-to-receive latency p50 / p99 / max.
// Users and tokens are made in SQL (ku9.users rows, ku9.jwt_sign).
// Prints Markdown table rows.
import http from 'node:http';
import fs from 'node:fs';
import pg from 'pg';

const URL_ = new URL(process.env.KU9_HTTP_URL);
const CLIENTS = Number(process.env.SSE_CLIENTS || 1000);
const MESSAGES = Number(process.env.SSE_MESSAGES || 50);
const INTERVAL = Number(process.env.SSE_INTERVAL || 100);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

const db = new pg.Client();
await db.connect();
const topic = `bench_sse_${process.pid}`;
await db.query("SELECT ku9.create_topic($1, '{\"user_channels\": false}')", [topic]);
const { rows: users } = await db.query(`
  WITH u AS (
    INSERT INTO ku9.users (email, email_confirmed_at)
    SELECT 'sse' || g || '_' || $2 || '@example.com', now() FROM generate_series(1, $1) g RETURNING id)
  SELECT id, ku9.jwt_sign(jsonb_build_object('sub', id::text, 'role', 'ku9_user', 'aud', 'authenticated',
                                             'exp', extract(epoch from now())::int + 3600)) AS token FROM u`,
[CLIENTS, process.pid]);
await db.query('SELECT ku9.subscribe($1, id) FROM unnest($2::uuid[]) AS id', [topic, users.map((u) => u.id)]);

function gatewayRss() {
  return db.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'ku9 gateway'").then(({ rows }) =>
    rows.reduce((sum, r) => {
      const m = fs.readFileSync(`/proc/${r.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
      return sum + (m ? Number(m[1]) : 0);
    }, 0));
}

const publishedAt = new Map();
const arrivals = [];
let received = 0;
function open(token) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: URL_.hostname, port: URL_.port, path: '/events', agent,
      headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`status ${res.statusCode}`)); return; }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const m = ev.match(/^id: (\d+)$/m);
          // matched with the publish times at the end: an event may arrive before its publish returns
          if (m) { arrivals.push([m[1], Date.now()]); received++; }
          if (ev.startsWith('retry:')) resolve(req);
        }
      });
    });
    req.on('error', reject);
  });
}

const rss0 = await gatewayRss();
const t0 = Date.now();
const reqs = [];
for (let i = 0; i < users.length; i += 100) {
  reqs.push(...await Promise.all(users.slice(i, i + 100).map((u) => open(u.token))));
}
const openMs = Date.now() - t0;
await new Promise((r) => setTimeout(r, 1000));
const rss1 = await gatewayRss();

const start = Date.now();
for (let k = 0; k < MESSAGES; k++) {
  const sent = Date.now();
  const { rows } = await db.query("SELECT ku9.publish($1, '{\"k\": 1}') AS id", [topic]);
  publishedAt.set(String(rows[0].id), sent);
  await new Promise((r) => setTimeout(r, INTERVAL));
}
const deadline = Date.now() + 30000;
while (received < CLIENTS * MESSAGES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
const elapsed = (Date.now() - start) / 1000;
const latencies = arrivals.filter(([id]) => publishedAt.has(id)).map(([id, at]) => at - publishedAt.get(id));
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];

console.log(`| streams open | ${reqs.length} (in ${openMs} ms) |`);
console.log(`| gateway RSS idle → with streams | ${(rss0 / 1024).toFixed(1)} MB → ${(rss1 / 1024).toFixed(1)} MB: ${((rss1 - rss0) / reqs.length).toFixed(1)} kB per stream |`);
console.log(`| events delivered | ${received} of ${CLIENTS * MESSAGES} (${MESSAGES} publishes, one per ${INTERVAL} ms) |`);
console.log(`| delivery rate | ${Math.round(received / elapsed)} events/s over ${elapsed.toFixed(1)} s |`);
console.log(`| publish → receive latency | p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${latencies[latencies.length - 1]} ms |`);

for (const r of reqs) r.destroy();
await db.query('SELECT ku9.drop_topic($1)', [topic]);
await db.query("DELETE FROM ku9.users WHERE email LIKE 'sse%\\_' || $1 || '@example.com'", [String(process.pid)]);
await db.end();
process.exit(0);
