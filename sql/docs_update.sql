-- docs: update_one, update_many, replace_one, delete_one, delete_many:
-- counts as MongoDB returns them, versions, upserts, expected versions,
-- and bad updates that change nothing
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- the collection's counters in ku9.stats, to compare before and after
CREATE FUNCTION pg_temp.counters(OUT inserted bigint, OUT updated bigint, OUT deleted bigint, OUT queries bigint)
LANGUAGE sql AS $f$
    SELECT sum(value) FILTER (WHERE name = 'ku9_docs_inserted_total'),
           sum(value) FILTER (WHERE name = 'ku9_docs_updated_total'),
           sum(value) FILTER (WHERE name = 'ku9_docs_deleted_total'),
           sum(value) FILTER (WHERE name = 'ku9_docs_queries_total')
    FROM ku9.stats WHERE labels = jsonb_build_object('database', current_database(), 'collection', 'u')
$f$;
CREATE TEMP TABLE counters0 AS SELECT * FROM pg_temp.counters();
SELECT ku9.create_collection('u');
SELECT ku9.insert_many('u', '[
  {"_id": 1, "n": 1, "tags": ["a"], "o": {"x": 1}},
  {"_id": 2, "n": 2, "tags": []},
  {"_id": 3, "n": 3},
  {"_id": 4, "s": "x"}
]');
CREATE FUNCTION pg_temp.state() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT format('%s v%s %s', _id, version, doc) FROM ku9_docs.u ORDER BY _id
$$;

-- update_one changes the first match only; update_many all; counts
SELECT ku9.update_one('u', '{"n": {"$gte": 2}}', '{"$inc": {"n": 10}}');
SELECT ku9.update_many('u', '{"n": {"$exists": true}}', '{"$set": {"seen": true}, "$push": {"tags": "z"}}');
SELECT ku9.update_many('u', '{"n": {"$gt": 100}}', '{"$set": {"big": true}}');
SELECT * FROM pg_temp.state();
-- a write that changes nothing matches but modifies nothing, and keeps the version
SELECT ku9.update_one('u', '{"_id": 1}', '{"$set": {"n": 1}}');
SELECT ku9.update_many('u', '{}', '{"$max": {"n": 0}}');
SELECT _id, version FROM ku9_docs.u ORDER BY _id;
-- 1.0 for 1 is a change: the number's $type goes from int to double
SELECT ku9.update_one('u', '{"_id": 3}', '{"$set": {"n": 3.0}}');
SELECT ku9.count_documents('u', '{"_id": 3, "n": {"$type": "double"}}') AS now_double;
-- a number that changes type is modified (0 * 0.5 is the double 0.0), one
-- that keeps its type and value is not (0.0 * 1.5 is 0.0), as MongoDB counts
SELECT ku9.insert_one('u', '{"_id": 5, "z": 0, "w": 0.0}');
SELECT ku9.update_one('u', '{"_id": 5}', '{"$mul": {"z": 0.5}}') -> 'modified_count' AS int_to_double;
SELECT ku9.update_one('u', '{"_id": 5}', '{"$mul": {"w": 1.5}}') -> 'modified_count' AS double_stays;
SELECT ku9.delete_one('u', '{"_id": 5}');
-- updated_at moves, created_at stays
SELECT updated_at >= created_at AS moved FROM ku9_docs.u WHERE _id = '1';
-- every operator reaches the stored documents (operator details: docs_update_ops)
SELECT ku9.update_one('u', '{"_id": 4}', $${"$set": {"a.b": 1}, "$unset": {"s": ""}, "$inc": {"c": 2},
  "$mul": {"d": 3}, "$min": {"e": 5}, "$max": {"f": 1}, "$push": {"g": {"$each": [3, 1, 2], "$slice": 2}},
  "$addToSet": {"h": {"$each": [1, 1, 2]}}, "$currentDate": {"t": true}}$$);
SELECT ku9.update_one('u', '{"_id": 4}', '{"$rename": {"a": "aa"}, "$pull": {"h": 1}, "$pop": {"g": -1}}');
SELECT doc - 't' AS doc, doc->>'t' ~ '^\d{4}-\d\d-\d\dT' AS dated FROM ku9_docs.u WHERE _id = '4';

-- replace_one keeps the _id; a different _id is refused
SELECT ku9.replace_one('u', '{"_id": 3}', '{"fresh": 1}');
SELECT ku9.replace_one('u', '{"_id": 3}', '{"_id": 3, "fresh": 2}');
SELECT pg_temp.sqlerr($$SELECT ku9.replace_one('u', '{"_id": 3}', '{"_id": 4}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.replace_one('u', '{"_id": 3}', '{"$set": {"a": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.replace_one('u', '{"_id": 3}', '{"a": {"$b": 1}}')$$);
SELECT ku9.replace_one('u', '{"_id": 99}', '{"x": 1}');
SELECT format('%s v%s %s', _id, version, doc) FROM ku9_docs.u WHERE _id = '3';

-- _id is immutable through updates
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{"_id": 1}', '{"$set": {"_id": 5}}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{"_id": 1}', '{"$unset": {"_id": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{"_id": 1}', '{"$rename": {"o": "_id"}}')$$);
SELECT ku9.update_one('u', '{"_id": 1}', '{"$set": {"_id": 1}}');

-- upsert: the filter's equalities and the update make the new document
SELECT ku9.update_one('u', '{"_id": 10, "kind": "new", "n": {"$gt": 5}}',
  '{"$set": {"m": 1}, "$setOnInsert": {"created": true}, "$inc": {"count": 1}}', '{"upsert": true}');
SELECT ku9.update_one('u', '{"_id": 10, "kind": "new"}',
  '{"$set": {"m": 2}, "$setOnInsert": {"created": false}, "$inc": {"count": 1}}', '{"upsert": true}');
SELECT format('%s v%s %s', _id, version, doc) FROM ku9_docs.u WHERE _id = '10';
SELECT (r->>'upserted_id') ~ '^[0-9a-f]{24}$' AS generated, r->'matched_count' AS matched
FROM ku9.update_many('u', '{"$and": [{"k.x": "deep"}, {"k.y": 2}]}', '{"$set": {"z": 1}}', '{"upsert": true}') r;
SELECT doc - '_id' FROM ku9_docs.u WHERE doc->'k'->>'x' = 'deep';
SELECT ku9.replace_one('u', '{"_id": 11}', '{"r": 1}', '{"upsert": true}');
SELECT doc FROM ku9_docs.u WHERE _id = '11';
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{"_id": 12}', '{"$set": {"_id": 13}}', '{"upsert": true}')$$);

-- expected_version: the write applies only to that version; otherwise 40001
SELECT ku9.update_one('u', '{"_id": 2}', '{"$set": {"v": 1}}', jsonb_build_object('expected_version', version))
FROM ku9_docs.u WHERE _id = '2';
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{"_id": 2}', '{"$set": {"v": 2}}', '{"expected_version": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.replace_one('u', '{"_id": 2}', '{"v": 3}', '{"expected_version": 1}')$$);
-- no document at all is no conflict: nothing matched
SELECT ku9.update_one('u', '{"_id": 77}', '{"$set": {"v": 2}}', '{"expected_version": 1}');
SELECT doc->'v' AS v, version FROM ku9_docs.u WHERE _id = '2';

-- bad updates and options: clear errors, nothing changed
SELECT u AS "update", pg_temp.sqlerr(format('SELECT ku9.update_many(%L, %L, %L)', 'u', '{}', u)) FROM (VALUES
  ('{}'),
  ('{"n": 1}'),
  ('{"$foo": {"n": 1}}'),
  ('{"$inc": {"n": "x"}}'),
  ('{"$inc": {"tags": 1}}'),
  ('{"$set": {"n": 1}, "$inc": {"n": 1}}'),
  ('{"$set": {"o": 1}, "$unset": {"o.x": 1}}'),
  ('{"$push": {"n": 1}}'),
  ('{"$set": {"a..b": 1}}'),
  ('{"$set": {"$x": 1}}'),
  ('[]')
) v(u);
SELECT o AS options, pg_temp.sqlerr(format('SELECT ku9.update_one(%L, %L, %L, %L)', 'u', '{}', '{"$set": {"q": 1}}', o)) FROM (VALUES
  ('{"upsert": "yes"}'),
  ('{"expected_version": -1}'),
  ('{"multi": true}')
) v(o);
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{"n": {"$bad": 1}}', '{"$set": {"q": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{}', NULL)$$);
SET ku9.max_document_size = '1kB';
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('u', '{"_id": 1}', jsonb_build_object('$set', jsonb_build_object('big', repeat('x', 2000))))$$);
RESET ku9.max_document_size;
SELECT count(*) FILTER (WHERE doc ? 'q' OR doc ? 'big') AS changed_by_errors FROM ku9_docs.u;

-- delete_one, delete_many
SELECT ku9.delete_one('u', '{"n": {"$exists": true}}');
SELECT ku9.delete_many('u', '{"_id": {"$in": [10, 11]}}');
SELECT ku9.delete_many('u', '{"nothing": 1}');
SELECT pg_temp.sqlerr($$SELECT ku9.delete_many('u', '{"$x": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.delete_one('nope', '{}')$$);
SELECT CASE WHEN jsonb_typeof(_id) = 'string' THEN 'generated' ELSE _id::text END AS _id FROM ku9_docs.u ORDER BY _id;
SELECT ku9.delete_many('u', '{}');
SELECT count(*) FROM ku9_docs.u;

SELECT ku9.count_documents('u', '{}') AS left;
-- the counters moved by what this test did (documents, not calls)
SELECT c.inserted - coalesce(z.inserted, 0) AS inserted, c.updated - coalesce(z.updated, 0) AS updated,
       c.deleted - coalesce(z.deleted, 0) AS deleted, c.queries - coalesce(z.queries, 0) > 0 AS queried
FROM pg_temp.counters() c, counters0 z;
SELECT ku9.drop_collection('u');
DROP EXTENSION ku9;
