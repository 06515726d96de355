-- one PgQ batch (its size is set by the ticks made when the queue was
-- filled), handled the way a PgQ consumer does: in one transaction
BEGIN;
SELECT pgq.next_batch('@Q@', '@C@') AS batch_id \gset
SELECT count(*), array_agg(ev_data) FROM pgq.get_batch_events(:batch_id);
SELECT pgq.finish_batch(:batch_id);
COMMIT;
