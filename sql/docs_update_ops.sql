-- docs: MongoDB update operators, through ku9_docs.apply_update(doc, update):
-- every operator and option, dotted paths, array positions, missing fields,
-- nulls, mixed types, and every error.  Expected results are MongoDB's
-- (jsonb prints an object's keys by length, then bytes; numbers keep their
-- scale, which stands for MongoDB's double: 3.0 is a double, 3 an int).
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

CREATE FUNCTION pg_temp.upd(doc text, upd text) RETURNS jsonb LANGUAGE sql AS
$$ SELECT ku9_docs.apply_update(doc::jsonb, upd::jsonb) $$;

-- $set: new and existing fields, any value
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$set": {"b": 2}}');
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$set": {"a": {"x": [1, "two", null, true]}}}');
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$set": {"a": null, "b": false, "c": "s", "d": []}}');
-- dotted paths make the objects they go through
SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a.b.c": 1}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": 1}}', '{"$set": {"a.c": 2, "a.d.e": 3}}');
-- a number names a field of an object ...
SELECT pg_temp.upd('{"_id": 1, "a": {}}', '{"$set": {"a.0": "x"}}');
-- ... and a position in an array
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$set": {"a.1": 9}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"b": 1}, {"b": 2}]}', '{"$set": {"a.1.b": 5, "a.0.c": 6}}');
-- MongoDB reads update positions with leading zeros as numbers
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$set": {"a.02": 9}}');
-- past the end, MongoDB pads the array with nulls
SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$set": {"a.3": 4}}');
SELECT pg_temp.upd('{"_id": 1, "a": []}', '{"$set": {"a.2.b": 1}}');
SELECT pg_temp.upd('{"_id": 1, "a": [[1], [2]]}', '{"$set": {"a.1.2": 7}}');
-- the same value is no change: the document comes back as it was
SELECT pg_temp.upd('{"_id": 1, "a": {"b": [1, 2]}}', '{"$set": {"a.b": [1, 2]}}')
       = '{"_id": 1, "a": {"b": [1, 2]}}' AS unchanged;
-- but 1.0 is not 1 byte for byte (MongoDB: a double replaces the int)
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$set": {"a": 1.0}}');
-- errors: a field inside a scalar, null, or an array by name (MongoDB:
-- "Cannot create field 'b' in element {a: 5}")
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 5}', '{"$set": {"a.b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": null}', '{"$set": {"a.b.c": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "x": {"a": "s"}}', '{"$set": {"x.a.b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [{"b": 1}]}', '{"$set": {"a.b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [5]}', '{"$set": {"a.0.b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}', '{"$set": {"a.b": 1}}')$$);
-- MongoDB pads at most 1500000 nulls
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": []}', '{"$set": {"a.1500001": 1}}')$$);
-- the result must be storable: no "$" field names, not too deep
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a": {"$x": 1}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a": {"b.c": 1}}}')$$);
SELECT pg_temp.sqlerr(format($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {%s: 1}}')$$,
                             to_json(string_agg('x', '.') || '')) ) FROM generate_series(1, 101);

-- $unset: the value is ignored; missing paths are no change
SELECT pg_temp.upd('{"_id": 1, "a": 1, "b": 2}', '{"$unset": {"a": ""}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": 1, "c": 2}}', '{"$unset": {"a.b": 1, "a.x": 1, "y.z": 1}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": {"c": 1}}}', '{"$unset": {"a": true}}');
-- through a scalar or an array by name, $unset does nothing (no error)
SELECT pg_temp.upd('{"_id": 1, "a": 5, "b": [{"c": 1}]}', '{"$unset": {"a.b": 1, "b.c": 1, "b.5": 1}}')
       = '{"_id": 1, "a": 5, "b": [{"c": 1}]}' AS unchanged;
-- in an array, MongoDB sets the element to null and keeps the length
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$unset": {"a.1": 1}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"b": 1, "c": 2}]}', '{"$unset": {"a.0.b": 1}}');

-- $setOnInsert applies only when an upsert inserts; here nothing is inserted
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$setOnInsert": {"b": 2}}') = '{"_id": 1, "a": 1}' AS unchanged;
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$setOnInsert": {"b": 2}, "$set": {"c": 3}}');

-- $inc: numbers only; a missing field becomes the operand
SELECT pg_temp.upd('{"_id": 1, "n": 1}', '{"$inc": {"n": 2, "m": 5, "o.p": -1}}');
SELECT pg_temp.upd('{"_id": 1, "n": 1.5, "i": 10}', '{"$inc": {"n": 1.5, "i": -0.25}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2]}', '{"$inc": {"a.1": 10, "a.3": 1}}');
SELECT pg_temp.upd('{"_id": 1, "n": 12345678901234567890}', '{"$inc": {"n": 1}}');
SELECT pg_temp.upd('{"_id": 1, "n": 7}', '{"$inc": {"n": 0}}') = '{"_id": 1, "n": 7}' AS unchanged;
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": 1}', '{"$inc": {"n": "1"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": 1}', '{"$inc": {"a.b": null}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": "1"}', '{"$inc": {"n": 1}}')$$);
-- null is no number either
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": null}', '{"$inc": {"n": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": [1]}', '{"$inc": {"n": 1}}')$$);

-- $mul: a missing field becomes 0, of the operand's kind (MongoDB)
SELECT pg_temp.upd('{"_id": 1, "n": 3}', '{"$mul": {"n": 4, "m": 5, "d": 2.5}}');
SELECT pg_temp.upd('{"_id": 1, "n": 1.5, "i": -2}', '{"$mul": {"n": 2, "i": -3}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": [2]}}', '{"$mul": {"a.b.0": 0.5}}');
SELECT pg_temp.upd('{"_id": 1, "n": 7}', '{"$mul": {"n": 1}}') = '{"_id": 1, "n": 7}' AS unchanged;
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": 1}', '{"$mul": {"n": true}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": {"x": 1}}', '{"$mul": {"n": 2}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "n": 5}', '{"$mul": {"n.x": 2}}')$$);

-- $min and $max: MongoDB's order of values (null < numbers < strings <
-- objects < arrays < booleans); a missing field is set
SELECT pg_temp.upd('{"_id": 1, "n": 5}', '{"$min": {"n": 3, "m": 8}}');
SELECT pg_temp.upd('{"_id": 1, "n": 5}', '{"$max": {"n": 7, "m": 8}}');
SELECT pg_temp.upd('{"_id": 1, "n": 5, "m": 5}', '{"$min": {"n": 7}, "$max": {"m": 3}}')
       = '{"_id": 1, "n": 5, "m": 5}' AS unchanged;
-- equal values (5 and 5.0) are no change
SELECT pg_temp.upd('{"_id": 1, "n": 5}', '{"$min": {"n": 5.0}}') = '{"_id": 1, "n": 5}' AS unchanged;
SELECT pg_temp.upd('{"_id": 1, "n": 5, "m": 5, "s": "b", "t": "b"}',
                   '{"$min": {"n": null, "s": "a"}, "$max": {"m": "a", "t": true}}');
SELECT pg_temp.upd('{"_id": 1, "s": "2026-01-02", "o": {"a": 1}, "a": [1, 2]}',
                   '{"$max": {"s": "2026-01-10", "o": {"a": 2}, "a": [1, 3]}}');
SELECT pg_temp.upd('{"_id": 1, "a": [10, 20]}', '{"$min": {"a.0": 1, "b.c": 2}}');
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": true}', '{"$max": {"a.b": 1}}')$$);

-- $rename: moves a value, replacing the target
SELECT pg_temp.upd('{"_id": 1, "a": 1, "b": 2}', '{"$rename": {"a": "c"}}');
SELECT pg_temp.upd('{"_id": 1, "a": 1, "b": 2}', '{"$rename": {"a": "b"}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": 1, "x": 0}}', '{"$rename": {"a.b": "c.d"}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": 1}, "c": {"e": 2}}', '{"$rename": {"a.b": "c.d"}}');
-- the value moved may be an array
SELECT pg_temp.upd('{"_id": 1, "a": [1, {"b": 2}]}', '{"$rename": {"a": "z"}}');
-- a missing source is no change
SELECT pg_temp.upd('{"_id": 1, "a": {"x": 1}, "b": [1]}', '{"$rename": {"a.b": "c", "q": "b.0"}}')
       = '{"_id": 1, "a": {"x": 1}, "b": [1]}' AS unchanged;
-- errors: a source through a scalar or an array, a target through an
-- array ("$rename does not work on embedded documents in arrays") or a scalar
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 5}', '{"$rename": {"a.b": "c"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [{"b": 1}]}', '{"$rename": {"a.b": "c"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [{"b": 1}]}', '{"$rename": {"a.0.b": "c"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1, "b": [1]}', '{"$rename": {"a": "b.0"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1, "b": [{"c": 1}]}', '{"$rename": {"a": "b.c"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1, "b": 5}', '{"$rename": {"a": "b.c"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$rename": {"a": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$rename": {"a": "a"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$rename": {"a": "a.b"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": {"b": 1}}', '{"$rename": {"a.b": "a"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$rename": {"a": "b..c"}}')$$);

-- $push: one value, or $each with $position, $sort and $slice
SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$push": {"a": 2, "b": {"x": 1}, "c.d": null}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$push": {"a": [2, 3]}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$push": {"a": {"$each": [2, 3]}}}');
SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": []}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [[1]]}', '{"$push": {"a.0": 2}}');
-- $position counts from the start, or from the end when negative
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [8, 9], "$position": 0}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [8, 9], "$position": 2}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [8, 9], "$position": 10}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [8, 9], "$position": -1}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [8, 9], "$position": -3}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [8, 9], "$position": -10}}}');
-- $slice keeps the first n, or the last n when negative; 2.0 is an integer
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [4], "$slice": 2}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [4], "$slice": -2.0}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [4], "$slice": 0}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [4], "$slice": 10}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3]}', '{"$push": {"a": {"$each": [], "$slice": -1}}}');
-- $sort: whole elements in MongoDB's order, or documents by fields;
-- MongoDB inserts, then sorts, then slices
SELECT pg_temp.upd('{"_id": 1, "a": [5, 1, 4]}', '{"$push": {"a": {"$each": [3, 2], "$sort": 1, "$slice": 3}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [5, 1, 4]}', '{"$push": {"a": {"$each": [3, 2], "$sort": -1}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [true, "b", [1], 2, {"x": 1}, null, "a", 1.5]}',
                   '{"$push": {"a": {"$each": [], "$sort": 1}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"n": 2, "s": "b"}, {"n": 1, "s": "c"}, {"n": 4, "s": "a"}]}',
                   '{"$push": {"a": {"$each": [{"n": 3, "s": "d"}], "$sort": {"n": -1}}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"n": 2, "s": "b"}, {"n": 1, "s": "c"}, {"n": 4, "s": "a"}]}',
                   '{"$push": {"a": {"$each": [{"n": 3, "s": "d"}], "$sort": {"s": 1}, "$slice": -2}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"p": {"q": 2}}, {"p": {"q": 1}}, {"p": [5, 0]}]}',
                   '{"$push": {"a": {"$each": [], "$sort": {"p.q": 1}}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"p": [3, 9]}, {"p": [5, 0]}]}',
                   '{"$push": {"a": {"$each": [], "$sort": {"p.1": 1}}}}');
-- with a field pattern, documents without the field and elements that are
-- no documents sort as null
SELECT pg_temp.upd('{"_id": 1, "a": [{"n": 1}, {"m": 1}, {"n": 0}]}',
                   '{"$push": {"a": {"$each": [], "$sort": {"n": 1}}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"n": 1}, 7, {"n": 0}]}',
                   '{"$push": {"a": {"$each": [], "$sort": {"n": -1}}}}');
SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [3, 1, 2], "$sort": 1, "$slice": -2, "$position": 0}}}');
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$push": {"a": 2}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": {"b": 1}}', '{"$push": {"a": 2}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$push": {"a.b": 2}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": 1}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$slice": 1.5}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$slice": "1"}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$position": null}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$sort": 2}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$sort": "x"}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$sort": {}}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$sort": {"n": 0}}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$sort": {"n..m": 1}}}}')$$);
-- MongoDB sorts by several fields in the order written; jsonb does not keep
-- that order, so ku9 refuses such a pattern rather than sort differently
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$sort": {"n": 1, "s": -1}}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$each": [1], "$foo": 1}}}')$$);
-- without $each, an object is the value pushed, and "$slice" is no field name
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a": {"$slice": 1}}}')$$);

-- $addToSet: adds what is not there yet (MongoDB's equality: 1 = 1.0)
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2]}', '{"$addToSet": {"a": 3, "b": "x"}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2]}', '{"$addToSet": {"a": 2.0}}') = '{"_id": 1, "a": [1, 2]}' AS unchanged;
SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$addToSet": {"a": {"$each": [1, 2, 2, 3, 2.0]}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [[1, 2]]}', '{"$addToSet": {"a": [1, 2], "b": [1, 2]}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"x": 1, "y": 2}]}', '{"$addToSet": {"a": {"$each": [{"x": 1, "y": 2}, {"x": 1}]}}}');
SELECT pg_temp.upd('{"_id": 1}', '{"$addToSet": {"a.b": {"$each": []}}}');
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": "x"}', '{"$addToSet": {"a": "y"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$addToSet": {"a": {"$each": {"x": 1}}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$addToSet": {"a": {"$each": [1], "$slice": 1}}}')$$);

-- $pull: a value removes every equal element ...
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 1, 3, 1.0, "1"]}', '{"$pull": {"a": 1}}');
SELECT pg_temp.upd('{"_id": 1, "a": [[1, 2], [1], 1, 2]}', '{"$pull": {"a": [1, 2]}}');
SELECT pg_temp.upd('{"_id": 1, "a": [null, 0, false]}', '{"$pull": {"a": null}}');
-- ... an object of operators is a condition on each element ...
SELECT pg_temp.upd('{"_id": 1, "a": [1, 5, 6, 7, "8"]}', '{"$pull": {"a": {"$gte": 6}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1, 5, 6, 7]}', '{"$pull": {"a": {"$in": [1, 7]}, "b": {"$lt": 0}}}');
SELECT pg_temp.upd('{"_id": 1, "a": ["apple", "kiwi", 3]}', '{"$pull": {"a": {"$type": "string", "$ne": "kiwi"}}}');
-- ... and look into elements that are arrays, as a field would ({"": element}
-- in MongoDB's PullNode): [1] and [0, 5] go, [0] stays
SELECT pg_temp.upd('{"_id": 1, "t": [1, [1], [0, 5], [0]]}', '{"$pull": {"t": {"$gte": 1}}}');
SELECT pg_temp.upd('{"_id": 1, "t": [[1, 2], [3]]}', '{"$pull": {"t": {"$in": [2]}}}');
SELECT pg_temp.upd('{"_id": 1, "t": [[1, 2], [3], 4]}', '{"$pull": {"t": {"$not": {"$in": [2]}}}}');
-- ... and another object a query on elements that are documents
SELECT pg_temp.upd('{"_id": 1, "a": [{"x": 1, "y": 1}, {"x": 2}, 1, {"y": 1}]}', '{"$pull": {"a": {"x": 1}}}');
SELECT pg_temp.upd('{"_id": 1, "a": [{"x": 1}, {"x": 5}, {"x": 9}]}', '{"$pull": {"a": {"x": {"$gt": 1, "$lt": 9}}}}');
SELECT pg_temp.upd('{"_id": 1, "r": [{"s": [{"q": 1}]}, {"s": [{"q": 2}]}]}', '{"$pull": {"r": {"s.q": 2}}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": [1, 2, 3]}}', '{"$pull": {"a.b": 2}}');
SELECT pg_temp.upd('{"_id": 1, "a": [[1, 2], [2, 3]]}', '{"$pull": {"a.1": 2}}');
-- missing paths, and positions past the end, are no change
SELECT pg_temp.upd('{"_id": 1, "a": [1], "b": {}}', '{"$pull": {"x": 1, "b.c": 1, "a.5": 1}}')
       = '{"_id": 1, "a": [1], "b": {}}' AS unchanged;
-- errors: not an array, or a path that could never exist (MongoDB: "Cannot
-- use the part (b) of (a.b) to traverse the element ({a: 5})")
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 5}', '{"$pull": {"a": 5}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 5}', '{"$pull": {"a.b": 5}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [{"b": [1]}]}', '{"$pull": {"a.b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$pull": {"a": {"$bad": 1}}}')$$);

-- $pullAll: removes every element equal to one of the values
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3, 1, [1], {"x": 1}]}', '{"$pullAll": {"a": [1, [1], {"x": 1}]}}');
SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$pullAll": {"a": [], "b": [1]}}') = '{"_id": 1, "a": [1]}' AS unchanged;
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$pullAll": {"a": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": {"x": 1}}', '{"$pullAll": {"a": [1]}}')$$);

-- $pop: 1 removes the last element, -1 the first
SELECT pg_temp.upd('{"_id": 1, "a": [1, 2, 3], "b": [1, 2, 3]}', '{"$pop": {"a": 1, "b": -1}}');
SELECT pg_temp.upd('{"_id": 1, "a": {"b": [1]}}', '{"$pop": {"a.b": 1.0}}');
SELECT pg_temp.upd('{"_id": 1, "a": [], "b": {}}', '{"$pop": {"a": 1, "b.c": 1, "x": -1}}')
       = '{"_id": 1, "a": [], "b": {}}' AS unchanged;
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$pop": {"a": 2}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$pop": {"a": "1"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$pop": {"a": 0}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": "x"}', '{"$pop": {"a": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": null}', '{"$pop": {"a.b": 1}}')$$);

-- $currentDate: the transaction's start time as an ISO-8601 string in UTC
-- (jsonb has no date type); MongoDB takes any boolean as "date"
SELECT d ->> 'a' = d ->> 'b' AND d ->> 'b' = d ->> 'c' AND d ->> 'c' = d #>> '{e,f}' AND d ->> 'g' = d ->> 'a' AS same_time,
       d ->> 'a' = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS is_now,
       d ->> 'a' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$' AS iso_8601,
       d ->> 'x' AS untouched
FROM pg_temp.upd('{"_id": 1, "a": 1, "x": 2}',
                 '{"$currentDate": {"a": true, "b": {"$type": "date"}, "c": {"$type": "timestamp"}, "e.f": true, "g": false}}') d;
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$currentDate": {"a": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$currentDate": {"a": {"$type": "time"}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$currentDate": {"a": {}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$currentDate": {"a": {"$type": "date", "x": 1}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$currentDate": {"a.b": true}}')$$);

-- several operators at once
SELECT pg_temp.upd('{"_id": 1, "n": 1, "tags": ["a"], "old": 0, "gone": true, "q": [3, 4]}',
                   '{"$set": {"s.t": 1}, "$inc": {"n": 1}, "$addToSet": {"tags": "b"}, "$rename": {"old": "new"},
                     "$unset": {"gone": 1}, "$pop": {"q": -1}, "$max": {"m": 0}, "$mul": {"z": 2}}');
-- an empty operator does nothing (MongoDB 5.0 and later)
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$set": {}, "$inc": {}}') = '{"_id": 1, "a": 1}' AS unchanged;

-- _id is immutable: rewriting the same value is no change, anything else fails
SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$set": {"_id": 1, "a": 2}}');
SELECT pg_temp.upd('{"_id": {"k": 1}, "a": 1}', '{"$set": {"_id.k": 1}, "$inc": {"a": 1}}');
SELECT pg_temp.upd('{"_id": 7}', '{"$inc": {"_id": 0}}') = '{"_id": 7}' AS unchanged;
SELECT pg_temp.upd('{"_id": 7}', '{"$max": {"_id": 7.0}}') = '{"_id": 7}' AS unchanged;
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"_id": 2}}')$$);
-- MongoDB compares _id byte for byte: 1.0 would turn the int into a double
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"_id": 1.0}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$unset": {"_id": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$inc": {"_id": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": {"k": 1}}', '{"$set": {"_id.j": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 2}', '{"$rename": {"_id": "b"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 2}', '{"$rename": {"a": "_id"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"_id": 1}}')$$);

-- invalid update documents
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '[{"$set": {"a": 1}}]')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"a": 1}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a": 1}, "b": 2}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$bit": {"a": {"and": 1}}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": 5}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$unset": ["a"]}')$$);
-- paths: empty parts, "$" names, positional operators
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a..b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$inc": {"a.$x": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$set": {"a.$": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$set": {"a.$[].b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": [1]}', '{"$rename": {"b": "a.$[x]"}}')$$);
-- conflicts (MongoDB: "Updating the path 'a.b' would create a conflict at 'a'"),
-- across operators, $setOnInsert and both paths of $rename included
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a": 1}, "$inc": {"a.b": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a": 1}, "$unset": {"a": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"x.y.z": 1, "x.y": 2}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a": 1}, "$setOnInsert": {"a": 2}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$rename": {"a": "b"}, "$set": {"b.c": 1}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$rename": {"a": "b", "b": "c"}}')$$);
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1}', '{"$push": {"a.0": 1}, "$pop": {"a": 1}}')$$);
-- neighbours that share a prefix of characters, not of fields, do not conflict
SELECT pg_temp.upd('{"_id": 1}', '{"$set": {"a": 1, "ab": 2, "a0": 3}, "$inc": {"b.a": 1, "b.ab": 2}}');
-- an operand is checked even when the document would not need it
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('{"_id": 1, "a": 1}', '{"$set": {"a": 1}, "$inc": {"b": "x"}}')$$);
-- the document must be an object
SELECT pg_temp.sqlerr($$SELECT pg_temp.upd('[1]', '{"$set": {"a": 1}}')$$);

-- one call per row: the parsed update is kept while the update stays the same
CREATE TEMP TABLE upd_rows (i int, doc jsonb);
INSERT INTO upd_rows VALUES (1, '{"_id": 1, "n": 1}'), (2, '{"_id": 2}'), (3, '{"_id": 3, "n": 10}'), (4, '{"_id": 4, "n": 0.5}');
SELECT i, ku9_docs.apply_update(doc, '{"$inc": {"n": 1}}') FROM upd_rows ORDER BY i;
SELECT i, ku9_docs.apply_update(doc, CASE WHEN i % 2 = 0 THEN '{"$inc": {"n": 1}}' ELSE '{"$set": {"n": "s"}}' END::jsonb)
FROM upd_rows ORDER BY i;
SELECT i, ku9_docs.apply_update(doc, u)
FROM upd_rows, (VALUES ('{"$mul": {"n": 2}}'::jsonb), ('{"$unset": {"n": 1}}')) v(u) ORDER BY i, u::text;
-- NULL in, NULL out
SELECT ku9_docs.apply_update(NULL, '{"$set": {"a": 1}}') IS NULL AS null_doc,
       ku9_docs.apply_update('{}', NULL) IS NULL AS null_update;
DROP EXTENSION ku9;
