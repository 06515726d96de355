-- PgQ has no batch insert: 100 insert_event calls in one statement
SELECT count(pgq.insert_event('@Q@', 'bench', e::text)) FROM jsonb_array_elements(:batch) e;
