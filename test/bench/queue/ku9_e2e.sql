-- end to end: send, read one (hidden for 30 s), ack it
SELECT ku9.send('@Q@', :payload);
SELECT coalesce(array_agg(msg_id), '{}') AS ids, array_agg(payload) AS payloads
    FROM ku9.read('@Q@', 1, 30) \gset
SELECT ku9.ack('@Q@', :ids);
