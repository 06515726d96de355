-- The Markdown tables of test/bench/queue.sh, from bench.results: the
-- median of each (figure, system).  psql variables: reps, dur, backlog.
CREATE TEMP TABLE m AS
    SELECT figure, system, percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS v, count(*) AS runs,
           min(note) AS note
    FROM bench.results GROUP BY figure, system;

CREATE FUNCTION pg_temp.v(f text, s text) RETURNS float8 LANGUAGE sql STABLE
    AS $$ SELECT v FROM m WHERE figure = f AND system = s $$;
-- a rate: whole numbers with thousands separators, a dash when missing
CREATE FUNCTION pg_temp.n(x float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(to_char(round(x), 'FM999,999,999,990'), '–') $$;
CREATE FUNCTION pg_temp.ms(x float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(to_char(x, 'FM999,990.00'), '–') $$;
-- a ratio a / b
CREATE FUNCTION pg_temp.r(a float8, b float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(to_char(a / nullif(b, 0), 'FM999,990.00') || '×', '–') $$;

\pset format unaligned
\pset tuples_only on

SELECT format('Medians of %s runs of %s s each (pgbench, prepared statements, one client unless stated); '
              'read figures start from a standing backlog of %s messages.', :'reps', :'dur', :'backlog');
SELECT '';
SELECT '### ku9 against the raw-SQL limit (msgs/s)';
SELECT '';
SELECT '| figure | raw SQL limit | raw SQL, same work as ku9 | ku9 | limit ÷ ku9 | same work ÷ ku9 |';
SELECT '|---|---:|---:|---:|---:|---:|';
WITH rows (ord, label, lim, same, ku9) AS (VALUES
    (1, 'send 1 (INSERT … RETURNING)', pg_temp.v('send 1', 'raw'), pg_temp.v('send 1', 'raw'), pg_temp.v('send 1', 'ku9')),
    (2, 'send batch 100 (INSERT … SELECT)', pg_temp.v('send batch 100', 'raw'), pg_temp.v('send batch 100', 'raw'), pg_temp.v('send batch 100', 'ku9')),
    (3, 'read+ack 1', pg_temp.v('read+ack 1', 'raw'), pg_temp.v('read+ack 1', 'raw same'), pg_temp.v('read+ack 1', 'ku9')),
    (4, 'read+ack 100', pg_temp.v('read+ack 100', 'raw'), pg_temp.v('read+ack 100', 'raw same'), pg_temp.v('read+ack 100', 'ku9')),
    (5, 'pop 1 (read and delete)', pg_temp.v('read+ack 1', 'raw'), pg_temp.v('read+ack 1', 'raw'), pg_temp.v('pop 1', 'ku9')),
    (6, 'pop 100', pg_temp.v('read+ack 100', 'raw'), pg_temp.v('read+ack 100', 'raw'), pg_temp.v('pop 100', 'ku9')),
    (7, 'end to end, 1 client', pg_temp.v('e2e 1', 'raw'), pg_temp.v('e2e 1', 'raw same'), pg_temp.v('e2e 1', 'ku9')),
    (8, 'end to end, 4 clients', pg_temp.v('e2e 4', 'raw'), pg_temp.v('e2e 4', 'raw same'), pg_temp.v('e2e 4', 'ku9')),
    (9, 'end to end, 16 clients', pg_temp.v('e2e 16', 'raw'), pg_temp.v('e2e 16', 'raw same'), pg_temp.v('e2e 16', 'ku9')))
SELECT format('| %s | %s | %s | %s | %s | %s |', label, pg_temp.n(lim), pg_temp.n(same), pg_temp.n(ku9),
              pg_temp.r(lim, ku9), pg_temp.r(same, ku9))
FROM rows ORDER BY ord;
SELECT format('| round trip (SELECT 1) | %s | | | | |', pg_temp.n(pg_temp.v('select 1', 'raw')));

SELECT '';
SELECT '### ku9 against the peers (msgs/s)';
SELECT '';
SELECT '| figure | ku9 | PgQ | ku9 ÷ PgQ | ku9 (node) | pg-boss | ku9 ÷ pg-boss | graphile-worker | ku9 ÷ graphile-worker |';
SELECT '|---|---:|---:|---:|---:|---:|---:|---:|---:|';
WITH f (ord, figure) AS (VALUES (1, 'send 1'), (2, 'send batch 100'), (3, 'read+ack 1'), (4, 'read+ack 100'),
                                (5, 'e2e 1'), (6, 'e2e 4'), (7, 'e2e 16'))
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | %s |',
              replace(figure, 'e2e', 'end to end'),
              pg_temp.n(pg_temp.v(figure, 'ku9')), pg_temp.n(pg_temp.v(figure, 'PgQ')),
              pg_temp.r(pg_temp.v(figure, 'ku9'), pg_temp.v(figure, 'PgQ')),
              pg_temp.n(pg_temp.v(figure, 'ku9 (node)')), pg_temp.n(pg_temp.v(figure, 'pg-boss')),
              pg_temp.r(pg_temp.v(figure, 'ku9 (node)'), pg_temp.v(figure, 'pg-boss')),
              pg_temp.n(pg_temp.v(figure, 'graphile-worker')),
              pg_temp.r(pg_temp.v(figure, 'ku9 (node)'), pg_temp.v(figure, 'graphile-worker')))
FROM f ORDER BY ord;

SELECT '';
SELECT '### Wake-up latency (ms, from the send to the waiting consumer)';
SELECT '';
SELECT '| system | p50 | p99 | how |';
SELECT '|---|---:|---:|---|';
WITH s (ord, system, how) AS (VALUES
    (1, 'ku9 (server)', 'ku9.read(q, 1, 30, 5000) waiting; clock_timestamp() in the sending statement → after the read returns'),
    (2, 'ku9 (node)', 'the same, timed in Node: send issued → read result received'),
    (3, 'graphile-worker', 'runner (LISTEN/NOTIFY): addJob issued → task starts'),
    (4, 'pg-boss', 'work() polling: send issued → handler starts'))
SELECT format('| %s | %s | %s | %s%s |', system, pg_temp.ms(pg_temp.v('wake p50', system)),
              pg_temp.ms(pg_temp.v('wake p99', system)), how,
              coalesce('; ' || (SELECT note FROM m WHERE figure = 'wake p50' AND m.system = s.system), ''))
FROM s ORDER BY ord;
SELECT '| PgQ | – | – | no wake-up: events are handed out per tick (pgqd ticks every second or 500 events by default) and consumers poll next_batch |';
