-- PgQ queues of test/bench/queue.sh.  psql variables: k1 (batches of one
-- event), k100 (batches of 100 events), backlog (events behind them),
-- clients (end-to-end queues).
--
-- PgQ hands events out in batches: the events committed between two ticks.
-- There is no ticker daemon (pgqd) here, so the fill calls pgq.ticker()
-- itself, with ticker_max_count = 1 so that every call with new events
-- ticks.  Consumer c1 is registered first and meets k1 batches of one
-- event; c100, registered after those, meets k100 batches of 100; both
-- then have the standing backlog behind.
CREATE EXTENSION pgq;

-- fill_pgq(queue, batches, size): `batches` ticks of `size` events each
CREATE PROCEDURE bench.fill_pgq(q text, batches int, size int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. batches LOOP
        PERFORM pgq.insert_event(q, 'bench', bench.payload()::text) FROM generate_series(1, size);
        COMMIT;
        PERFORM pgq.ticker(q);
        COMMIT;
    END LOOP;
END $$;

SELECT pgq.create_queue('pgq_send');
SELECT pgq.create_queue('pgq_bench');
SELECT pgq.set_queue_config('pgq_bench', 'ticker_max_count', '1');
SELECT pgq.register_consumer('pgq_bench', 'c1');
CALL bench.fill_pgq('pgq_bench', :k1, 1);
SELECT pgq.register_consumer('pgq_bench', 'c100');
CALL bench.fill_pgq('pgq_bench', :k100, 100);
CALL bench.fill_pgq('pgq_bench', :backlog / 10000, 10000);

-- end to end: a queue and a consumer per client (pgq_e2e_0 ...)
SELECT pgq.create_queue('pgq_e2e_' || i), pgq.set_queue_config('pgq_e2e_' || i, 'ticker_max_count', '1'),
       pgq.register_consumer('pgq_e2e_' || i, 'c')
FROM generate_series(0, :clients - 1) i;
