/*
 * docs: MongoDB-style collections of JSONB documents
 *
 * Each collection is a table ku9_docs.<name>, made at run time by
 * ku9.create_collection() and owned by the extension's owner:
 *
 *   _id         jsonb, the document's _id (generated from doc), primary key
 *   owner       uuid, the inserting user (ku9.uid())
 *   version     bigint, 1 on insert, + 1 on every change
 *   created_at, updated_at
 *   doc         jsonb, the document, _id included
 *
 * with a GIN (jsonb_path_ops) index on doc, an index on owner, and
 * row-level security policies for its access option.  The tables are not
 * extension members; the registry ku9.collections is, and is dumped, so
 * pg_dump/pg_restore carries collections and their documents.
 *
 * The functions are C and SECURITY INVOKER: the caller's privileges and
 * the row-level security policies decide what they see and change.
 */

CREATE SCHEMA ku9_docs;
COMMENT ON SCHEMA ku9_docs IS 'ku9 document collections, one table per collection';
REVOKE ALL ON SCHEMA ku9_docs FROM PUBLIC;
GRANT USAGE ON SCHEMA ku9_docs TO ku9_anon, ku9_user, ku9_service;

CREATE TABLE ku9.collections (
    name        text PRIMARY KEY,
    access      text NOT NULL DEFAULT 'owner'
                CHECK (access IN ('owner', 'public_read', 'service')),
    events      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT collections_name_check CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$')
);
COMMENT ON TABLE ku9.collections IS 'ku9 document collections and their options; the documents live in ku9_docs';
SELECT pg_catalog.pg_extension_config_dump('ku9.collections', '');
REVOKE ALL ON ku9.collections FROM PUBLIC;
GRANT SELECT ON ku9.collections TO ku9_anon, ku9_user, ku9_service;

-- what the generated SQL calls: pure functions of their arguments, in ku9_docs
-- (not ku9) because the statements run as the caller, who must execute them
CREATE FUNCTION ku9_docs.match(doc jsonb, filter jsonb)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_doc_match'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ku9_docs.match(jsonb, jsonb) IS
    'internal: whether a document matches a MongoDB filter';

CREATE FUNCTION ku9_docs.sort_key(doc jsonb, path text, descending boolean)
    RETURNS bytea
    AS 'MODULE_PATHNAME', 'ku9_doc_sort_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION ku9_docs.sort_key(jsonb, text, boolean) IS
    'internal: the key that sorts a document by a path in MongoDB''s order (bytes compare as the values do)';

CREATE FUNCTION ku9_docs.path_has_array(doc jsonb, path text)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_doc_path_has_array'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION ku9_docs.path_has_array(jsonb, text) IS
    'internal: whether an array lies on a path of a document';

CREATE FUNCTION ku9_docs.apply_update(doc jsonb, update jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_doc_apply_update'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ku9_docs.apply_update(jsonb, jsonb) IS
    'internal: a document after MongoDB update operators ($currentDate reads the transaction time)';

CREATE FUNCTION ku9_docs.replace_doc(doc jsonb, replacement jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_doc_replace'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ku9_docs.replace_doc(jsonb, jsonb) IS
    'internal: a replacement document keeping the _id of the one it replaces';

CREATE FUNCTION ku9_docs.changed(old jsonb, new jsonb)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_doc_changed'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ku9_docs.changed(jsonb, jsonb) IS
    'internal: whether an update changed a document, as MongoDB counts it (1.0 for 1 is a change)';

CREATE FUNCTION ku9_docs.project(doc jsonb, projection jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_doc_project'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ku9_docs.project(jsonb, jsonb) IS
    'internal: a document after a MongoDB projection';

-- collections
CREATE FUNCTION ku9.create_collection(name text, options jsonb DEFAULT '{}')
    RETURNS void
    AS 'MODULE_PATHNAME', 'ku9_create_collection'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.create_collection(text, jsonb) IS
    'create a collection; options: access (owner, public_read or service), events (true or false)';

CREATE FUNCTION ku9.drop_collection(name text)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_drop_collection'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.drop_collection(text) IS
    'drop a collection and its documents; false when there was none';

CREATE FUNCTION ku9.list_collections()
    RETURNS TABLE (name text, access text, events boolean, created_at timestamptz)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    BEGIN ATOMIC
        SELECT c.name, c.access, c.events, c.created_at FROM ku9.collections c ORDER BY c.name;
    END;
COMMENT ON FUNCTION ku9.list_collections() IS 'the collections and their options';

-- documents
CREATE FUNCTION ku9.insert_one(collection text, document jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_insert_one'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.insert_one(text, jsonb) IS
    'insert a document; returns {"inserted_id": ...}';

CREATE FUNCTION ku9.insert_many(collection text, documents jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_insert_many'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.insert_many(text, jsonb) IS
    'insert an array of documents in one statement; returns {"inserted_ids": [...]}';

CREATE FUNCTION ku9.find(collection text, filter jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
    RETURNS SETOF jsonb
    AS 'MODULE_PATHNAME', 'ku9_find'
    LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.find(text, jsonb, jsonb) IS
    'the documents matching a MongoDB filter; options: sort, limit, skip, projection, cursor';

CREATE FUNCTION ku9.find_one(collection text, filter jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_find_one'
    LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.find_one(text, jsonb, jsonb) IS
    'the first document matching a filter, or NULL';

CREATE FUNCTION ku9.find_page(collection text, filter jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_find_page'
    LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.find_page(text, jsonb, jsonb) IS
    'one page of documents in sort order: {"documents": [...], "next_cursor": ...}; pass next_cursor as option cursor';

CREATE FUNCTION ku9.explain_find(collection text, filter jsonb DEFAULT '{}', options jsonb DEFAULT '{}')
    RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'ku9_explain_find'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.explain_find(text, jsonb, jsonb) IS
    'the statement a find runs, then PostgreSQL''s plan for it (EXPLAIN without costs)';

CREATE FUNCTION ku9.count_documents(collection text, filter jsonb DEFAULT '{}')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'ku9_count_documents'
    LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.count_documents(text, jsonb) IS
    'the number of documents matching a filter';

CREATE FUNCTION ku9.update_one(collection text, filter jsonb, update jsonb, options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_update_one'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.update_one(text, jsonb, jsonb, jsonb) IS
    'apply update operators to the first matching document; options: upsert, expected_version';

CREATE FUNCTION ku9.update_many(collection text, filter jsonb, update jsonb, options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_update_many'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.update_many(text, jsonb, jsonb, jsonb) IS
    'apply update operators to every matching document; options: upsert, expected_version';

CREATE FUNCTION ku9.replace_one(collection text, filter jsonb, replacement jsonb, options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_replace_one'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.replace_one(text, jsonb, jsonb, jsonb) IS
    'replace the first matching document (keeping its _id); options: upsert, expected_version';

CREATE FUNCTION ku9.delete_one(collection text, filter jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_delete_one'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.delete_one(text, jsonb) IS
    'delete the first matching document; returns {"deleted_count": 0 or 1}';

CREATE FUNCTION ku9.delete_many(collection text, filter jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_delete_many'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.delete_many(text, jsonb) IS
    'delete every matching document; returns {"deleted_count": n}';

-- indexes
CREATE FUNCTION ku9.create_index(collection text, keys jsonb, options jsonb DEFAULT '{}')
    RETURNS text
    AS 'MODULE_PATHNAME', 'ku9_create_index'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.create_index(text, jsonb, jsonb) IS
    'create a B-tree index on {"path": 1 or -1} (several as an array); options: unique, name; returns the name';

CREATE FUNCTION ku9.drop_index(collection text, name text)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'ku9_drop_index'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ku9.drop_index(text, text) IS
    'drop an index made by create_index; false when there was none';

REVOKE ALL ON FUNCTION
    ku9.create_collection(text, jsonb), ku9.drop_collection(text), ku9.list_collections(),
    ku9.insert_one(text, jsonb), ku9.insert_many(text, jsonb),
    ku9.find(text, jsonb, jsonb), ku9.find_one(text, jsonb, jsonb), ku9.find_page(text, jsonb, jsonb),
    ku9.explain_find(text, jsonb, jsonb), ku9.count_documents(text, jsonb),
    ku9.update_one(text, jsonb, jsonb, jsonb), ku9.update_many(text, jsonb, jsonb, jsonb),
    ku9.replace_one(text, jsonb, jsonb, jsonb),
    ku9.delete_one(text, jsonb), ku9.delete_many(text, jsonb),
    ku9.create_index(text, jsonb, jsonb), ku9.drop_index(text, text)
    FROM PUBLIC;
-- managing collections is for ku9_service (checked again in C)
GRANT EXECUTE ON FUNCTION
    ku9.create_collection(text, jsonb), ku9.drop_collection(text),
    ku9.create_index(text, jsonb, jsonb), ku9.drop_index(text, text)
    TO ku9_service;
-- documents: the table privileges and row-level security of each collection decide
GRANT EXECUTE ON FUNCTION
    ku9.list_collections(),
    ku9.insert_one(text, jsonb), ku9.insert_many(text, jsonb),
    ku9.find(text, jsonb, jsonb), ku9.find_one(text, jsonb, jsonb), ku9.find_page(text, jsonb, jsonb),
    ku9.explain_find(text, jsonb, jsonb), ku9.count_documents(text, jsonb),
    ku9.update_one(text, jsonb, jsonb, jsonb), ku9.update_many(text, jsonb, jsonb, jsonb),
    ku9.replace_one(text, jsonb, jsonb, jsonb),
    ku9.delete_one(text, jsonb), ku9.delete_many(text, jsonb)
    TO ku9_anon, ku9_user, ku9_service;
