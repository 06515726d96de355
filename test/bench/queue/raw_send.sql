-- raw-SQL limit of ku9.send: the same row into a table shaped like q_<name>
INSERT INTO bench.@T@ (priority, vt, enqueued_at, headers, payload)
    VALUES (0, now(), now(), NULL, :payload) RETURNING msg_id;
