-- read @N@ (hidden for 30 s), then ack them in a second transaction
SELECT coalesce(array_agg(msg_id), '{}') AS ids, array_agg(payload) AS payloads
    FROM ku9.read('@Q@', @N@, 30) \gset
SELECT ku9.ack('@Q@', :ids);
