-- raw-SQL limit of a dequeue: the hand-written DELETE ... SKIP LOCKED,
-- taking the @N@ first visible messages in ku9's order (same index)
DELETE FROM bench.@T@ WHERE msg_id IN (
    SELECT msg_id FROM bench.@T@ WHERE vt <= now()
    ORDER BY priority DESC, msg_id LIMIT @N@ FOR UPDATE SKIP LOCKED)
RETURNING msg_id, attempts, enqueued_at, vt, payload, headers;
