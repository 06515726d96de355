-- docs: create_index/drop_index, and the plans the filter compiler gets:
-- B-tree ranges and sorts, GIN equality, the _id primary key
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT ku9.create_collection('ix');
SELECT ku9.insert_many('ix', (SELECT jsonb_agg(jsonb_build_object(
         '_id', g, 'n', g % 1000, 'name', 'user' || g, 'grp', g % 7,
         'tags', jsonb_build_array('t' || (g % 50)), 'info', jsonb_build_object('age', g % 90)))
       FROM generate_series(1, 5000) g)) IS NOT NULL AS loaded;
-- documents that hold arrays where the indexed fields are
SELECT ku9.insert_many('ix', '[{"_id": "arr1", "name": "a1", "n": [3, 999]},
                               {"_id": "arr2", "name": "a2", "info": [{"age": 1}, {"age": 89}]},
                               {"_id": "str", "name": "s", "n": "999"}, {"_id": "none"}]');

-- the indexes a find's plans use (the statements' plans, one per line)
CREATE FUNCTION pg_temp.uses(f jsonb, o jsonb DEFAULT '{}') RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(DISTINCT m[1], ', '), 'no index')
  FROM ku9.explain_find('ix', f, o) AS e(line), regexp_matches(line, '(?:Index Scan using|Index Scan on|Index Only Scan using) "?([^" ]+)"?', 'g') AS m
$$;
-- the _ids found, in order
CREATE FUNCTION pg_temp.found(f jsonb, o jsonb DEFAULT '{}') RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(d->>'_id', ' ' ORDER BY k), '-') FROM ku9.find('ix', f, o) WITH ORDINALITY AS t(d, k)
$$;

SELECT ku9.create_index('ix', '{"n": 1}');
SELECT ku9.create_index('ix', '{"info.age": -1}');
SELECT ku9.create_index('ix', '[{"grp": 1}, {"n": -1}]', '{"name": "grp_n"}');
SELECT ku9.create_index('ix', '{"name": 1}', '{"unique": true}');
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'ku9_docs' AND tablename = 'ix' ORDER BY 1;
VACUUM ANALYZE ku9_docs.ix;

-- _id equality is the primary key, and nothing else is needed
SELECT pg_temp.uses('{"_id": 42}'), pg_temp.found('{"_id": 42}');
SELECT pg_temp.uses('{"_id": {"$in": [1, 2, "arr1"]}}'), pg_temp.found('{"_id": {"$in": [1, 2, "arr1"]}}', '{"sort": {"_id": 1}}');
-- equality on a field: the GIN index, or a B-tree on the field
SELECT pg_temp.uses('{"tags": "t7", "grp": 3}');
SELECT pg_temp.uses('{"name": "user77"}'), pg_temp.found('{"name": "user77"}');
-- ranges use the B-tree key of the path, plus the partial index of
-- documents with an array there, which a range cannot bound
SELECT pg_temp.uses('{"n": {"$gte": 998}}'), pg_temp.found('{"n": {"$gte": 998}}', '{"sort": {"_id": 1}, "limit": 3}');
SELECT pg_temp.uses('{"n": {"$gt": 5, "$lt": 7}}'), pg_temp.found('{"n": {"$gt": 5, "$lt": 7}}', '{"sort": {"_id": 1}}');
SELECT pg_temp.found('{"n": {"$gte": "9"}}');
-- a range with a sort and a limit on the same path reads the index in
-- order from the start of the range; array documents are merged in
SELECT pg_temp.uses('{"n": {"$gt": 990}}', '{"sort": {"n": 1}, "limit": 5}');
SELECT pg_temp.found('{"n": {"$gt": 990}}', '{"sort": {"n": 1}, "limit": 5}');
SELECT pg_temp.found('{"n": {"$gt": 990}}', '{"sort": {"n": 1}, "limit": 3, "skip": 1}');
SELECT pg_temp.found('{"n": {"$lt": 4}}', '{"sort": {"n": 1}, "limit": 4}');
SELECT pg_temp.found('{"n": {"$gt": 997}}', '{"sort": {"n": -1}, "limit": 4}');
SELECT pg_temp.uses('{"info.age": {"$gte": 89}}', '{"sort": {"info.age": -1}, "limit": 3}');
SELECT pg_temp.found('{"info.age": {"$gte": 89}}', '{"sort": {"info.age": -1}, "limit": 3}');
-- a sort alone reads the index in order
SELECT pg_temp.uses('{}', '{"sort": {"n": 1}, "limit": 3}'), pg_temp.found('{}', '{"sort": {"n": 1}, "limit": 3}');
SELECT pg_temp.uses('{"grp": 2}', '{"sort": [{"grp": 1}, {"n": -1}], "limit": 3}');
SELECT pg_temp.found('{"grp": 2}', '{"sort": [{"grp": 1}, {"n": -1}], "limit": 3}');
-- the same answers without the indexes
SELECT ku9.drop_index('ix', 'n_1'), ku9.drop_index('ix', 'info.age_-1'), ku9.drop_index('ix', 'grp_n');
SELECT ku9.drop_index('ix', 'n_1');
SELECT pg_temp.uses('{"n": {"$gt": 990}}', '{"sort": {"n": 1}, "limit": 5}');
SELECT pg_temp.found('{"n": {"$gt": 990}}', '{"sort": {"n": 1}, "limit": 5}');
SELECT pg_temp.found('{"n": {"$gt": 997}}', '{"sort": {"n": -1}, "limit": 4}');
SELECT pg_temp.found('{"info.age": {"$gte": 89}}', '{"sort": {"info.age": -1}, "limit": 3}');
SELECT pg_temp.found('{"grp": 2}', '{"sort": [{"grp": 1}, {"n": -1}], "limit": 3}');

-- unique: a second document with the value, or a second one without the
-- field, is a duplicate (23505), as in MongoDB
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('ix', '{"name": "user5"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('ix', '{"_id": "none2"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"grp": 1}', '{"unique": true}')$$);

-- an index on _id: equality on _id stays with the primary key, once
SELECT ku9.create_index('ix', '{"_id": 1}');
SELECT pg_temp.found('{"_id": 2}', '{"sort": {"_id": 1}}'), pg_temp.found('{"_id": {"$in": [2, 3]}}', '{"sort": {"_id": -1}}');
SELECT ku9.find_page('ix', '{"_id": 2}', '{"sort": {"_id": 1}}')->'documents' AS page;
SELECT ku9.drop_index('ix', '_id_1');

-- bad index requests
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"name": 1}', '{"unique": true}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"a": 1, "b": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"a": "text"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"a..b": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"a": 1}', '{"sparse": true}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"a": 1}', '{"name": "x$y"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"a": 1}', jsonb_build_object('name', repeat('y', 70)))$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('nope', '{"a": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.drop_index('ix', NULL)$$);
-- the built-in indexes are not create_index's to make or drop
SELECT pg_temp.sqlerr($$SELECT ku9.drop_index('ix', 'gin')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.drop_index('ix', 'owner')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_index('ix', '{"a": 1}', '{"name": "owner"}')$$);
SELECT count(*) AS built_in FROM pg_indexes WHERE schemaname = 'ku9_docs' AND tablename = 'ix'
  AND indexname IN ('ix$_id', 'ix$gin', 'ix$owner');

SELECT ku9.drop_collection('ix');
DROP EXTENSION ku9;
