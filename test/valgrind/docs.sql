-- docs functions under valgrind (single-user backend): filters, sort keys,
-- projections, updates, pages, indexes, errors
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION ku9;
SELECT ku9.create_collection('vd');
SELECT ku9.insert_many('vd', '[{"_id": 1, "a": [1, 2.5, "x", {"b": [1, {"c": null}]}], "s": "Hello\nWorld"},
  {"_id": 2, "a": {"b": 2}, "t": true}, {"_id": 3}, {"a": [[1], []], "n": -1e-5}]');
SELECT ku9.create_index('vd', '{"a.b": 1}');
SELECT ku9.create_index('vd', '[{"n": -1}, {"s": 1}]', '{"unique": false}');
SELECT count(*) FROM ku9.find('vd', '{"$or": [{"a.b": {"$gte": 1}}, {"a": {"$elemMatch": {"$type": "array"}}}],
  "s": {"$not": {"$regex": "^w", "$options": "im"}}, "a.0": {"$exists": true}}', '{"sort": {"a.b": -1}}');
SELECT count(*) FROM ku9.find('vd', '{"a.b": {"$gt": 0}}', '{"sort": {"a.b": 1}, "limit": 2, "skip": 1, "projection": {"a.b": 1}}');
SELECT count(*) FROM ku9.find('vd', '{"a": {"$all": [1, {"$elemMatch": {"$gt": 2}}]}, "x": {"$nin": [1, null]}}');
SELECT ku9.find_page('vd', '{}', '{"sort": [{"n": -1}, {"s": 1}], "limit": 2}') IS NOT NULL;
SELECT ku9.find_page('vd', '{}', jsonb_build_object('sort', '[{"n": -1}, {"s": 1}]'::jsonb, 'limit', 2, 'cursor',
  ku9.find_page('vd', '{}', '{"sort": [{"n": -1}, {"s": 1}], "limit": 2}')->>'next_cursor')) IS NOT NULL;
SELECT ku9.update_many('vd', '{"_id": {"$in": [1, 2]}}', '{"$set": {"p.q": [1]}, "$inc": {"k": 2}, "$push": {"l": {"$each": [3, 1, 2], "$sort": 1, "$slice": -2}},
  "$addToSet": {"m": {"$each": [1, 1]}}, "$pull": {"a": {"$gte": 2}}, "$currentDate": {"d": true}}');
SELECT ku9.update_one('vd', '{"_id": 9}', '{"$setOnInsert": {"z": 1}, "$max": {"w": 3}}', '{"upsert": true}');
SELECT ku9.replace_one('vd', '{"_id": 3}', '{"r": 1}', '{"expected_version": 1}');
SELECT count(*) FROM ku9.find('vd', '{"a": {"$foo": 1}}');
SELECT ku9.update_one('vd', '{}', '{"$set": {"a": 1}, "$unset": {"a.b": 1}}');
SELECT ku9.count_documents('vd', '{"_id": {"$in": [1, 2, 3, 9]}}');
SELECT ku9.delete_many('vd', '{"t": true}');
SELECT ku9.drop_collection('vd');
