-- docs: collections (create, list, drop, options), inserts, _id, limits
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT ku9.create_collection('notes');
SELECT ku9.create_collection('posts', '{"access": "public_read", "events": false}');
SELECT ku9.create_collection('audit', '{"access": "service"}');
SELECT name, access, events, created_at <= now() AS created FROM ku9.list_collections();
-- the table of a collection: its columns, indexes and policies
SELECT attname, format_type(atttypid, atttypmod), attnotnull, attgenerated
FROM pg_attribute WHERE attrelid = 'ku9_docs.notes'::regclass AND attnum > 0 ORDER BY attnum;
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'ku9_docs' AND tablename = 'notes' ORDER BY 1;
SELECT tablename, policyname, roles, cmd FROM pg_policies WHERE schemaname = 'ku9_docs' ORDER BY 1, 2;
SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = 'ku9_docs'::regnamespace AND relkind = 'r' ORDER BY 1;
-- the tables are not extension members; the registry is, and is dumped
SELECT count(*) AS member_tables FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ku9')
  AND d.classid = 'pg_class'::regclass
  AND d.objid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ku9_docs'::regnamespace);
SELECT extconfig::regclass[] @> ARRAY['ku9.collections'::regclass] AS registry_dumped FROM pg_extension WHERE extname = 'ku9';

-- bad names and options
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection('notes')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection('Notes')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection('1x')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection(repeat('x', 49))$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection(NULL)$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection('c2', '{"access": "everyone"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection('c2', '{"events": "yes"}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection('c2', '{"capped": true}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.create_collection('c2', '[]')$$);
SELECT count(*) AS collections FROM ku9.collections;

-- insert_one keeps a given _id of any JSON scalar (or object) and makes an
-- ObjectId-like one (24 hex digits) otherwise
SELECT ku9.insert_one('notes', '{"_id": 1, "text": "one"}');
SELECT ku9.insert_one('notes', '{"_id": "two", "text": "two"}');
SELECT ku9.insert_one('notes', '{"_id": true}');
SELECT ku9.insert_one('notes', '{"_id": null}');
SELECT ku9.insert_one('notes', '{"_id": 2.5}');
SELECT ku9.insert_one('notes', '{"_id": {"a": 1}}');
SELECT (ku9.insert_one('notes', '{"text": "generated"}')->>'inserted_id') ~ '^[0-9a-f]{24}$' AS object_id;
SELECT doc->>'_id' = _id #>> '{}' AS id_in_doc, version, owner IS NULL AS no_owner,
       created_at = updated_at AS fresh
FROM ku9_docs.notes WHERE doc->>'text' = 'generated';
-- two generated ids differ, and sort by time of creation
SELECT a < b AS increasing FROM (SELECT ku9.insert_one('notes', '{}')->>'inserted_id' AS a) x,
       LATERAL (SELECT ku9.insert_one('notes', '{}')->>'inserted_id' AS b) y;
-- duplicate _id: 23505, and 1 and 1.0 are the same _id as in MongoDB
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '{"_id": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '{"_id": 1.0}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '{"_id": "two"}')$$);
-- insert_many is all or nothing
SELECT ku9.insert_many('notes', '[{"_id": 10}, {"_id": 11, "x": [1, {"y": 2}]}]');
SELECT pg_temp.sqlerr($$SELECT ku9.insert_many('notes', '[{"_id": 12}, {"_id": 10}]')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_many('notes', '[{"_id": 13}, 5]')$$);
SELECT ku9.count_documents('notes', '{"_id": {"$in": [12, 13]}}') AS none_stored;
SELECT ku9.insert_many('notes', '[]');
SELECT (ku9.insert_many('notes', '[{}, {}, {"_id": "m"}]')->'inserted_ids') -> 2 AS third;

-- bad documents: 22023 for shapes and names, 54000 for size and depth
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '[1]')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '"x"')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', NULL)$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '{"_id": [1]}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '{"$set": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '{"a": {"b.c": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', '{"a": [{"$x": 1}]}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_many('notes', '{"a": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_many('notes', NULL)$$);
SELECT pg_temp.sqlerr(format('SELECT ku9.insert_one(%L, %L)', 'notes',
  repeat('{"a":', 101) || '1' || repeat('}', 101)));
-- 100 levels are allowed: the document and 99 arrays
SELECT ku9.insert_one('notes', ('{"_id": "deep", "a": ' || repeat('[', 99) || '1' || repeat(']', 99) || '}')::jsonb);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', jsonb_build_object('_id', repeat('x', 2000)))$$);
SET ku9.max_document_size = '1kB';
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('notes', jsonb_build_object('big', repeat('x', 2000)))$$);
RESET ku9.max_document_size;
SELECT ku9.insert_one('notes', jsonb_build_object('_id', 'big', 'big', repeat('x', 2000)));
-- nothing of the refused documents was stored
SELECT count(*) AS documents FROM ku9_docs.notes;
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('nope', '{}')$$);

-- the generated statements and the registry lookup do not use the caller's
-- search_path: a hostile = operator and unnest() earlier on it never run
CREATE SCHEMA hostile;
CREATE FUNCTION hostile.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'hostile texteq ran'; END$$;
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.texteq);
CREATE FUNCTION hostile.unnest(a jsonb[]) RETURNS SETOF jsonb LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'hostile unnest ran'; END$$;
\c
SET search_path = hostile, pg_catalog;
SELECT ku9.count_documents('notes', '{"text": "one"}');
SELECT ku9.insert_many('notes', '[{"_id": "h1"}, {"_id": "h2"}]');
SELECT ku9.delete_many('notes', '{"_id": {"$in": ["h1", "h2"]}}');
RESET search_path;
DROP SCHEMA hostile CASCADE;
\i sql/include/sqlerr.psql
-- the functions of index expressions are leakproof: they never raise, even
-- on a path that is no path (it reaches nothing)
SELECT ku9_docs.sort_key('{"a": 1}', '', false) AS empty_path_key,
       ku9_docs.sort_key('{"a": 1}', 'a..b', true) AS bad_path_key,
       ku9_docs.path_has_array('{"a": [1]}', '$a') AS dollar_path;

-- drop_collection removes table and registry row; false when there was none
SELECT ku9.drop_collection('audit');
SELECT ku9.drop_collection('audit');
SELECT to_regclass('ku9_docs.audit') IS NULL AS gone, count(*) AS registered
FROM ku9.collections WHERE name = 'audit';
-- a re-created collection is empty and works at once in this session
SELECT ku9.insert_one('posts', '{"_id": 1}');
SELECT ku9.drop_collection('posts');
SELECT ku9.create_collection('posts');
SELECT ku9.count_documents('posts', '{}');
SELECT ku9.insert_one('posts', '{"_id": 1}');
SELECT ku9.find('posts');

SELECT ku9.drop_collection('notes'), ku9.drop_collection('posts');
SELECT count(*) AS collections FROM ku9.collections;
DROP EXTENSION ku9;
