-- raw-SQL limit of ku9.send_batch: one row per element of a JSON array
INSERT INTO bench.@T@ (priority, vt, enqueued_at, headers, payload)
    SELECT 0, now(), now(), NULL, e FROM jsonb_array_elements(:batch) e RETURNING msg_id;
