-- the same work as ku9.read + ku9.ack in hand-written SQL: hide @N@
-- messages for 30 s and count an attempt (one transaction), then delete
-- them (a second transaction)
WITH r AS (
    UPDATE bench.@T@ SET vt = now() + interval '30 seconds', attempts = attempts + 1
    WHERE msg_id IN (
        SELECT msg_id FROM bench.@T@ WHERE vt <= now()
        ORDER BY priority DESC, msg_id LIMIT @N@ FOR UPDATE SKIP LOCKED)
    RETURNING msg_id, attempts, enqueued_at, vt, payload, headers)
SELECT coalesce(array_agg(msg_id), '{}') AS ids, array_agg(payload) AS payloads FROM r \gset
DELETE FROM bench.@T@ WHERE msg_id = ANY (:ids);
