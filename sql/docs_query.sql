-- docs: the MongoDB query language — every operator over documents with
-- arrays, nested arrays, missing fields, nulls and mixed types; sort,
-- projection, skip, limit, keyset pages; bad filters
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT ku9.create_collection('q');
SELECT ku9.insert_many('q', $$[
  {"_id": 1,  "a": 1},
  {"_id": 2,  "a": 1.0},
  {"_id": 3,  "a": [1, 2]},
  {"_id": 4,  "a": [[1], 3]},
  {"_id": 5,  "a": null},
  {"_id": 6},
  {"_id": 7,  "a": "1"},
  {"_id": 8,  "a": {"b": 1}},
  {"_id": 9,  "a": [{"b": 1}, {"b": 2}]},
  {"_id": 10, "a": [{"b": [1, 3]}]},
  {"_id": 11, "a": [{"c": 1}, {"b": null}]},
  {"_id": 12, "a": true},
  {"_id": 13, "a": [], "b": "x"},
  {"_id": 14, "a": {"b": {"c": "hello"}}},
  {"_id": 15, "a": [{"0": 5}, 7]},
  {"_id": 16, "a": "Hello\nWorld"},
  {"_id": 17, "a": -2.5},
  {"_id": 18, "a": [null]},
  {"_id": 19, "a": {"b": null}},
  {"_id": 20, "a": [5, "x", {"b": 2}]}
]$$::jsonb);

-- the _ids a filter matches, in _id order; and count_documents must agree
CREATE FUNCTION pg_temp.ids(f jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(d->>'_id', ' ' ORDER BY (d->>'_id')::int), '-')
         || CASE WHEN count(*) = ku9.count_documents('q', f) THEN '' ELSE ' (count_documents differs!)' END
  FROM ku9.find('q', f) d
$$;
-- the _ids in the order find returns them
CREATE FUNCTION pg_temp.order(f jsonb, o jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT coalesce(string_agg(d->>'_id', ' ' ORDER BY n), '-') FROM ku9.find('q', f, o) WITH ORDINALITY AS t(d, n)
$$;

-- equality: numbers by value (1 == 1.0); an array field matches when it
-- equals the value or holds an element that does (one level only: [[1], 3]
-- does not hold 1); the string "1" is not the number 1
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"a": 1}'::jsonb),
  ('{"a": {"$eq": 1}}'),
  ('{"a": [1]}'),
  ('{"a": [1, 2]}'),
  ('{"a": [2, 1]}'),
  ('{"a": "1"}'),
  ('{"a": true}'),
  ('{"a": []}'),
  ('{"a": {"b": 1}}'),
  ('{"a": {"b": null}}'),
  ('{"a": -2.5}')
) v(f);

-- null matches null, missing fields, and arrays holding null; dotted paths
-- through arrays: an element without the field counts as missing, and so do
-- elements that are no documents (MongoDB 9.0, SERVER-36681: 20 has [5, "x",
-- {"b": 2}]; older MongoDB versions did not match such arrays)
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"a": null}'::jsonb),
  ('{"a": {"$ne": null}}'),
  ('{"a.b": null}'),
  ('{"a.b": {"$exists": true}}'),
  ('{"a.b": {"$exists": false}}'),
  ('{"a": {"$exists": false}}'),
  ('{"a": {"$exists": 1}}'),
  ('{"b": {"$exists": true}}')
) v(f);

-- dotted paths traverse arrays of documents (not nested arrays), and the
-- value reached may itself be an array; numeric components are positions
-- (and field names of documents in the array, as MongoDB does)
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"a.b": 1}'::jsonb),
  ('{"a.b": 2}'),
  ('{"a.b": 3}'),
  ('{"a.b": [1, 3]}'),
  ('{"a.b.c": "hello"}'),
  ('{"a.0": 1}'),
  ('{"a.1": 2}'),
  ('{"a.0": 5}'),
  ('{"a.1": 7}'),
  ('{"a.0.b": 1}'),
  ('{"a.0": [1]}'),
  ('{"a.2.b": 2}'),
  ('{"a.5": {"$exists": true}}')
) v(f);

-- ranges stay within a type (null < numbers < strings < objects < arrays <
-- booleans) and match any element of an array
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"a": {"$gt": 1}}'::jsonb),
  ('{"a": {"$gte": 1}}'),
  ('{"a": {"$lt": 1}}'),
  ('{"a": {"$lte": 1}}'),
  ('{"a": {"$gt": 0, "$lt": 2}}'),
  ('{"a": {"$gte": "1"}}'),
  ('{"a": {"$gt": "a"}}'),
  ('{"a": {"$gte": null}}'),
  ('{"a": {"$lt": null}}'),
  ('{"a": {"$gt": false}}'),
  ('{"a": {"$gte": {}}}'),
  ('{"a": {"$gt": []}}'),
  ('{"a": {"$lt": [2]}}'),
  ('{"a.b": {"$gte": 2}}')
) v(f);

-- $in, $nin, $ne: $ne and $nin also match documents without the field
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"a": {"$in": [1, "x"]}}'::jsonb),
  ('{"a": {"$in": [null]}}'),
  ('{"a": {"$in": []}}'),
  ('{"a": {"$in": [[1, 2], true]}}'),
  ('{"a": {"$nin": [1, null]}}'),
  ('{"a": {"$ne": 1}}'),
  ('{"a.b": {"$ne": 1}}'),
  ('{"a.b": {"$in": [2, 3]}}')
) v(f);

-- $and, $or, $nor, $not
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"$or": [{"a": 1}, {"a": "1"}]}'::jsonb),
  ('{"$and": [{"a": {"$gte": 1}}, {"a": {"$lte": 2}}]}'),
  ('{"$nor": [{"a": {"$type": "number"}}, {"a": {"$exists": false}}]}'),
  ('{"a": {"$not": {"$gt": 1}}}'),
  ('{"a": {"$not": {"$regex": "^h", "$options": "i"}}}'),
  ('{"$or": [{"b": "x"}, {"a.b.c": "hello"}], "a": {"$type": "object"}}'),
  ('{"$and": [{"$or": [{"a": 1}, {"a": 2}]}, {"$or": [{"a": 2}, {"a": 3}]}]}')
) v(f);

-- $type (names and numbers; "number" for any; arrays: the field itself or
-- an element), $size, $all, $elemMatch
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"a": {"$type": "array"}}'::jsonb),
  ('{"a": {"$type": "int"}}'),
  ('{"a": {"$type": "double"}}'),
  ('{"a": {"$type": 2}}'),
  ('{"a": {"$type": ["null", "bool"]}}'),
  ('{"a": {"$type": "object"}}'),
  ('{"a": {"$type": "objectId"}}'),
  ('{"a": {"$size": 0}}'),
  ('{"a": {"$size": 2}}'),
  ('{"a": {"$size": 3}}'),
  ('{"a": {"$all": [1, 2]}}'),
  ('{"a": {"$all": [1]}}'),
  ('{"a": {"$all": [[1]]}}'),
  ('{"a": {"$all": []}}'),
  ('{"a": {"$all": [null]}}'),
  ('{"a": {"$elemMatch": {"b": 1}}}'),
  ('{"a": {"$elemMatch": {"b": {"$gte": 2}}}}'),
  ('{"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}'),
  ('{"a": {"$elemMatch": {"$gte": 1}}}'),
  ('{"a": {"$elemMatch": {"$type": "array"}}}'),
  ('{"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"b": 2}}]}}'),
  ('{"a.b": {"$elemMatch": {"$gt": 2}}}'),
  -- an element that is an array is a document with fields "0", "1", ... to a query
  ('{"a": {"$elemMatch": {"0": 1}}}'),
  ('{"a": {"$elemMatch": {"b": null}}}')
) v(f);

-- $regex with $options; PostgreSQL's regular expressions (ARE), with i, m,
-- s, x mapped to PCRE's meaning
SELECT f::text AS filter, pg_temp.ids(f) FROM (VALUES
  ('{"a": {"$regex": "^h"}}'::jsonb),
  ('{"a": {"$regex": "^h", "$options": "i"}}'),
  ('{"a": {"$regex": "^World", "$options": "m"}}'),
  ('{"a": {"$regex": "^World"}}'),
  ('{"a": {"$regex": "o.W"}}'),
  ('{"a": {"$regex": "o.W", "$options": "s"}}'),
  ('{"a": {"$regex": "H e l # comment", "$options": "x"}}'),
  ('{"a": {"$regex": "x"}}'),
  ('{"a": {"$regex": "\\d"}}'),
  ('{"a.b.c": {"$regex": "l+o$"}}')
) v(f);

-- _id: any scalar kept as given; equality uses the primary key
SELECT ku9.insert_one('q', '{"_id": "s", "a": 0}');
SELECT ku9.insert_one('q', '{"_id": {"k": 1}, "a": 0}');
SELECT ku9.find('q', '{"_id": "s"}');
SELECT ku9.find('q', '{"_id": {"k": 1}}');
SELECT ku9.find('q', '{"_id": {"$in": [1.0, "s"]}}', '{"sort": {"_id": 1}}');
SELECT ku9.find_one('q', '{"_id": 999}') IS NULL AS none;
-- case-insensitive regular expressions fold all of Unicode, as PCRE's UTF mode
SELECT ku9.insert_one('q', '{"_id": "e", "a": "Épée"}');
SELECT ku9.find('q', '{"a": {"$regex": "^épée$", "$options": "i"}}');
SELECT ku9.find('q', '{"a": {"$regex": "^\\w+$"}}');
SELECT ku9.delete_one('q', '{"_id": "e"}');
SELECT ku9.delete_many('q', '{"a": 0}');

-- sort follows MongoDB's order across types; an array sorts by its
-- smallest element ascending and its largest descending; [] before null;
-- missing as null; ties by _id
SELECT pg_temp.order('{}', '{"sort": {"a": 1}}') AS ascending;
SELECT pg_temp.order('{}', '{"sort": {"a": -1}}') AS descending;
SELECT pg_temp.order('{"a": {"$type": "number"}}', '{"sort": {"a": 1}}') AS numbers;
SELECT pg_temp.order('{}', '{"sort": [{"b": -1}, {"_id": 1}], "limit": 3}') AS compound;
SELECT pg_temp.order('{}', '{"sort": {"a.b": 1}, "skip": 2, "limit": 4}') AS dotted_skip_limit;
SELECT pg_temp.order('{"a": {"$exists": true}}', '{"sort": {"_id": -1}, "skip": 17}') AS skip;
-- limit 0 is no limit, as in MongoDB
SELECT pg_temp.order('{}', '{"limit": 0, "sort": {"_id": 1}}') AS limit_zero;

-- projection: inclusion (with _id unless excluded), exclusion, dotted paths
-- through arrays of documents
SELECT ku9.find('q', '{"_id": {"$in": [9, 14, 20]}}', '{"projection": {"a.b": 1}, "sort": {"_id": 1}}');
SELECT ku9.find('q', '{"_id": {"$in": [9, 14, 20]}}', '{"projection": {"a.b": 1, "_id": 0}, "sort": {"_id": 1}}');
SELECT ku9.find('q', '{"_id": {"$in": [9, 13, 14]}}', '{"projection": {"a.b": 0}, "sort": {"_id": 1}}');
SELECT ku9.find('q', '{"_id": 13}', '{"projection": {"_id": 0}}');
SELECT ku9.find('q', '{"_id": 13}', '{"projection": {"_id": 1}}');
SELECT ku9.find_one('q', '{"_id": 13}', '{"projection": {"b": true}}');

-- keyset pages: each page continues after the last one, in sort order
CREATE FUNCTION pg_temp.pages(f jsonb, o jsonb) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  page jsonb;
  cur text := NULL;
BEGIN
  LOOP
    page := ku9.find_page('q', f, o || jsonb_build_object('cursor', cur));
    RETURN NEXT (SELECT coalesce(string_agg(d->>'_id', ' '), '-') FROM jsonb_array_elements(page->'documents') d);
    cur := page->>'next_cursor';
    EXIT WHEN cur IS NULL;
  END LOOP;
END
$$;
SELECT * FROM pg_temp.pages('{}', '{"sort": {"a": 1}, "limit": 6}');
SELECT * FROM pg_temp.pages('{"a": {"$exists": true}}', '{"sort": [{"b": 1}, {"a": -1}], "limit": 7}');
SELECT * FROM pg_temp.pages('{}', '{"limit": 8}');
-- a cursor belongs to its sort; a made-up one is refused
SELECT pg_temp.sqlerr($$SELECT ku9.find_page('q', '{}', jsonb_build_object('sort', '{"a": 1}'::jsonb, 'cursor',
  ku9.find_page('q', '{}', '{"sort": {"a": -1}, "limit": 2}')->>'next_cursor'))$$);
SELECT pg_temp.sqlerr($$SELECT ku9.find_page('q', '{}', '{"cursor": "bm9wZQ=="}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.find_page('q', '{}', '{"skip": 1}')$$);

-- bad filters and options: 22023 naming the path, nothing silently ignored
SELECT f AS filter, pg_temp.sqlerr(format('SELECT count(*) FROM ku9.find(%L, %L)', 'q', f)) FROM (VALUES
  ('{"a": {"$foo": 1}}'),
  ('{"$foo": [{"a": 1}]}'),
  ('{"$where": "1"}'),
  ('{"a": {"$gt": 1, "b": 2}}'),
  ('{"a": {"$in": 1}}'),
  ('{"a": {"$nin": {"x": 1}}}'),
  ('{"a": {"$in": [{"$gt": 1}]}}'),
  ('{"$or": []}'),
  ('{"$and": {"a": 1}}'),
  ('{"$or": [1]}'),
  ('{"a": {"$size": -1}}'),
  ('{"a": {"$size": 1.5}}'),
  ('{"a": {"$size": "1"}}'),
  ('{"a": {"$exists": "yes"}}'),
  ('{"a": {"$type": "float"}}'),
  ('{"a": {"$type": []}}'),
  ('{"a": {"$type": 99}}'),
  ('{"a": {"$regex": 1}}'),
  ('{"a": {"$regex": "("}}'),
  ('{"a": {"$regex": "x", "$options": "q"}}'),
  ('{"a": {"$options": "i"}}'),
  ('{"a": {"$not": 1}}'),
  ('{"a": {"$not": {}}}'),
  ('{"a": {"$not": {"b": 1}}}'),
  ('{"a": {"$all": 1}}'),
  ('{"a": {"$elemMatch": 1}}'),
  ('{"a": {"$elemMatch": {"$foo": 1}}}'),
  ('{"$or": [{"a": {"$bar": 1}}]}'),
  ('{"a..b": 1}'),
  ('{"a.$b": 1}'),
  ('{"": 1}'),
  ('[1]'),
  ('1')
) v(f);
SELECT o AS options, pg_temp.sqlerr(format('SELECT count(*) FROM ku9.find(%L, %L, %L)', 'q', '{}', o)) FROM (VALUES
  ('{"sort": {"a": 1, "b": 1}}'),
  ('{"sort": {"a": 2}}'),
  ('{"sort": [{"a": 1}, {"a": -1}]}'),
  ('{"sort": "a"}'),
  ('{"limit": -1}'),
  ('{"limit": 1.5}'),
  ('{"skip": "2"}'),
  ('{"projection": {"a": 1, "b": 0}}'),
  ('{"projection": {"a": 1, "a.b": 1}}'),
  ('{"projection": {"a": {"$slice": 1}}}'),
  ('{"projection": []}'),
  ('{"hint": "x"}')
) v(o);
SELECT pg_temp.sqlerr($$SELECT ku9.find('nope')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.find('Bad-Name')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.find(NULL)$$);
SELECT pg_temp.sqlerr($$SELECT ku9.count_documents('q', '[]')$$);

SELECT ku9.drop_collection('q');
DROP EXTENSION ku9;
