-- end to end, the same work as ku9 in hand-written SQL: INSERT; UPDATE
-- ... SKIP LOCKED (hide for 30 s, count an attempt); DELETE
INSERT INTO bench.@T@ (priority, vt, enqueued_at, headers, payload)
    VALUES (0, now(), now(), NULL, :payload) RETURNING msg_id;
WITH r AS (
    UPDATE bench.@T@ SET vt = now() + interval '30 seconds', attempts = attempts + 1
    WHERE msg_id IN (
        SELECT msg_id FROM bench.@T@ WHERE vt <= now()
        ORDER BY priority DESC, msg_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING msg_id, attempts, enqueued_at, vt, payload, headers)
SELECT coalesce(array_agg(msg_id), '{}') AS ids, array_agg(payload) AS payloads FROM r \gset
DELETE FROM bench.@T@ WHERE msg_id = ANY (:ids);
