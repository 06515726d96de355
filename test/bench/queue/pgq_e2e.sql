-- end to end in PgQ: insert an event, tick (PgQ hands out events only in
-- batches between ticks; pgqd would tick once a second or every 500
-- events), then consume the batch.  Each client has a queue of its own:
-- a PgQ consumer cannot share its batches with other clients.
SELECT pgq.insert_event('@Q@' || :client_id, 'bench', :payload);
SELECT pgq.ticker('@Q@' || :client_id);
BEGIN;
SELECT pgq.next_batch('@Q@' || :client_id, 'c') AS batch_id \gset
SELECT count(*), array_agg(ev_data) FROM pgq.get_batch_events(:batch_id);
SELECT pgq.finish_batch(:batch_id);
COMMIT;
