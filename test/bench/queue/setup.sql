-- Tables, queues and fill procedures of test/bench/queue.sh.  psql
-- variables: payload (one message, JSON).
CREATE SCHEMA bench;

-- every figure of one run, medians taken in report.sql
CREATE TABLE bench.results (
    id      serial,
    figure  text NOT NULL,      -- 'send 1', 'read+ack 100', 'e2e 4', 'wake p99', ...
    system  text NOT NULL,      -- 'raw', 'raw same', 'ku9', 'PgQ', 'ku9 (node)', ...
    value   float8 NOT NULL,
    unit    text NOT NULL DEFAULT 'msgs/s',
    note    text
);

-- the message every benchmark sends
CREATE TABLE bench.config AS SELECT (:'payload')::jsonb AS payload;
CREATE FUNCTION bench.payload() RETURNS jsonb LANGUAGE sql STABLE
    AS $$ SELECT payload FROM bench.config $$;

-- fill_ku9(queue, n): send_batch chunks of 10,000 until the queue holds n
CREATE PROCEDURE bench.fill_ku9(q text, n bigint) LANGUAGE plpgsql AS $$
DECLARE
    chunk jsonb := (SELECT jsonb_agg(bench.payload()) FROM generate_series(1, 10000));
    have bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ku9_queue.%I', 'q_' || q) INTO have;
    WHILE have < n LOOP
        PERFORM count(*) FROM ku9.send_batch(q, chunk);
        COMMIT;
        have := have + 10000;
    END LOOP;
END $$;

-- fill_raw(table, n): INSERT chunks of 10,000 until bench.<table> holds n
CREATE PROCEDURE bench.fill_raw(t text, n bigint) LANGUAGE plpgsql AS $$
DECLARE
    have bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM bench.%I', t) INTO have;
    WHILE have < n LOOP
        EXECUTE format('INSERT INTO bench.%I (priority, vt, enqueued_at, headers, payload) '
                       'SELECT 0, now(), now(), NULL, bench.payload() FROM generate_series(1, 10000)', t);
        COMMIT;
        have := have + 10000;
    END LOOP;
END $$;

SELECT ku9.create_queue(q)
FROM unnest(ARRAY['bench', 'bench_send', 'e2e_1', 'e2e_4', 'e2e_16',
                  'node_send', 'node_e2e_1', 'node_e2e_4', 'node_e2e_16', 'wake']) q;

-- the raw-SQL tables: the shape of ku9's q_<name>, with the same three
-- indexes (primary key on msg_id, (priority DESC, msg_id) for dequeueing,
-- unique dedup_key WHERE dedup_key IS NOT NULL)
CREATE TABLE bench.raw_send (LIKE ku9_queue.q_bench INCLUDING ALL);
CREATE TABLE bench.raw_q (LIKE ku9_queue.q_bench INCLUDING ALL);
CREATE TABLE bench.raw_e2e_1 (LIKE ku9_queue.q_bench INCLUDING ALL);
CREATE TABLE bench.raw_e2e_4 (LIKE ku9_queue.q_bench INCLUDING ALL);
CREATE TABLE bench.raw_e2e_16 (LIKE ku9_queue.q_bench INCLUDING ALL);
CREATE TABLE bench.raw_same_1 (LIKE ku9_queue.q_bench INCLUDING ALL);
CREATE TABLE bench.raw_same_4 (LIKE ku9_queue.q_bench INCLUDING ALL);
CREATE TABLE bench.raw_same_16 (LIKE ku9_queue.q_bench INCLUDING ALL);
