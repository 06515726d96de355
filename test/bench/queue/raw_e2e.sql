-- end to end, raw-SQL limit: INSERT, then DELETE ... SKIP LOCKED one message
INSERT INTO bench.@T@ (priority, vt, enqueued_at, headers, payload)
    VALUES (0, now(), now(), NULL, :payload) RETURNING msg_id;
DELETE FROM bench.@T@ WHERE msg_id IN (
    SELECT msg_id FROM bench.@T@ WHERE vt <= now()
    ORDER BY priority DESC, msg_id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING msg_id, attempts, enqueued_at, vt, payload, headers;
