-- docs: who sees and changes which documents.  Two users A and B (ku9_user,
-- each with their own sub), ku9_anon, ku9_service, and a ku9_user without
-- claims, on a collection of each access kind.  Through every function and
-- through SQL on the tables: no user reads, counts, changes or deletes
-- another's documents; public_read lets everyone read and only owners
-- write; service is for ku9_service alone; only ku9_service manages
-- collections and indexes.
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- who is calling, as PostgREST sets it: the claims, then the role
\set as_a 'RESET ROLE; SET request.jwt.claims = ''{"sub": "00000000-0000-4000-8000-00000000000a", "role": "ku9_user"}''; SET ROLE ku9_user;'
\set as_b 'RESET ROLE; SET request.jwt.claims = ''{"sub": "00000000-0000-4000-8000-00000000000b", "role": "ku9_user"}''; SET ROLE ku9_user;'
\set as_anon 'RESET ROLE; SET request.jwt.claims = ''{"role": "ku9_anon"}''; SET ROLE ku9_anon;'
\set as_service 'RESET ROLE; SET request.jwt.claims = ''{"role": "ku9_service"}''; SET ROLE ku9_service;'
\set as_nobody 'RESET ROLE; RESET request.jwt.claims; SET ROLE ku9_user;'
\set as_super 'RESET ROLE; RESET request.jwt.claims;'

-- pg_temp.try(q): the first column of q's first row as text ('NULL' for
-- none), or 'SQLSTATE: message' of its error
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    r text;
BEGIN
    EXECUTE q INTO r;
    RETURN coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$f$;

-- A, B or what else an owner is
CREATE FUNCTION pg_temp.who(u uuid) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
    SELECT CASE u WHEN '00000000-0000-4000-8000-00000000000a' THEN 'A'
                  WHEN '00000000-0000-4000-8000-00000000000b' THEN 'B'
                  ELSE coalesce(u::text, 'null') END
$f$;

-- the rows of a collection's table as the caller sees them with plain SQL
-- (as superuser: all of them)
CREATE FUNCTION pg_temp.rows(c text) RETURNS TABLE (_id text, owner text, version bigint, doc jsonb)
LANGUAGE plpgsql AS $f$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT _id::text, pg_temp.who(owner), version, doc FROM ku9_docs.%I ORDER BY _id::text', c);
END
$f$;

-- every page of find_page, one document a page, sorted by n: the _ids
CREATE FUNCTION pg_temp.walk(c text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    p jsonb;
    cur jsonb := 'null';
    ids text[] := '{}';
BEGIN
    FOR i IN 1..20 LOOP
        p := ku9.find_page(c, '{}', jsonb_build_object('sort', jsonb_build_object('n', 1), 'limit', 1, 'cursor', cur));
        ids := ids || ARRAY(SELECT d ->> '_id' FROM jsonb_array_elements(p -> 'documents') d);
        cur := p -> 'next_cursor';
        IF cur = 'null' THEN
            RETURN coalesce(nullif(array_to_string(ids, ' '), ''), '-');
        END IF;
    END LOOP;
    RAISE 'find_page does not end';
END
$f$;

-- every way to read collection c: the _ids each one shows, or its error
CREATE FUNCTION pg_temp.reads(c text) RETURNS TABLE (probe text, result text) LANGUAGE sql AS $f$
    SELECT p, pg_temp.try(format(q, c)) FROM (VALUES
        (1, 'find', $$SELECT coalesce(string_agg(d ->> '_id', ' ' ORDER BY d ->> '_id'), '-') FROM ku9.find(%L) d$$),
        (2, 'find who=a', $$SELECT coalesce(string_agg(d ->> '_id', ' ' ORDER BY d ->> '_id'), '-') FROM ku9.find(%L, '{"who": "a"}') d$$),
        (3, 'find _id in', $$SELECT coalesce(string_agg(d ->> '_id', ' ' ORDER BY d ->> '_id'), '-') FROM ku9.find(%L, '{"_id": {"$in": ["a1", "b1", "s1"]}}', '{"sort": {"n": -1}}') d$$),
        (4, 'find_one a1', $$SELECT ku9.find_one(%L, '{"_id": "a1"}') ->> '_id'$$),
        (5, 'find_one b1', $$SELECT ku9.find_one(%L, '{"_id": "b1"}') ->> '_id'$$),
        (6, 'find_one s1', $$SELECT ku9.find_one(%L, '{"_id": "s1"}') ->> '_id'$$),
        (7, 'find_page', $$SELECT coalesce(string_agg(d ->> '_id', ' ' ORDER BY d ->> '_id'), '-') FROM jsonb_array_elements(ku9.find_page(%L) -> 'documents') d$$),
        (8, 'find_page by 1', $$SELECT pg_temp.walk(%L)$$),
        (9, 'count_documents', $$SELECT ku9.count_documents(%L)$$),
        (10, 'count_documents who=a', $$SELECT ku9.count_documents(%L, '{"who": "a"}')$$),
        (11, 'SELECT', $$SELECT coalesce(string_agg(doc ->> '_id', ' ' ORDER BY doc ->> '_id'), '-') FROM ku9_docs.%I$$),
        (12, 'SELECT who=a', $$SELECT coalesce(string_agg(doc ->> '_id', ' ' ORDER BY doc ->> '_id'), '-') FROM ku9_docs.%I WHERE doc ->> 'who' = 'a'$$),
        (13, 'SELECT count(*)', $$SELECT count(*) FROM ku9_docs.%I$$)
    ) AS v(n, p, q) ORDER BY n
$f$;

SELECT ku9.create_collection('rls_owner');
SELECT ku9.create_collection('rls_public', '{"access": "public_read"}');
SELECT ku9.create_collection('rls_service', '{"access": "service"}');
SELECT name, access, events FROM ku9.list_collections() WHERE name LIKE 'rls%';

-- each user inserts two documents in the owner and public_read
-- collections; the service one with no owner (s1) in each
:as_a
SELECT current_user, pg_temp.who(ku9.uid());
SELECT ku9.insert_one('rls_owner', '{"_id": "a1", "who": "a", "n": 1}');
SELECT ku9.insert_many('rls_owner', '[{"_id": "a2", "who": "a", "n": 3}]');
SELECT ku9.insert_many('rls_public', '[{"_id": "a1", "who": "a", "n": 1}, {"_id": "a2", "who": "a", "n": 3}]');
:as_b
SELECT current_user, pg_temp.who(ku9.uid());
SELECT ku9.insert_one('rls_owner', '{"_id": "b1", "who": "b", "n": 2}');
SELECT ku9.insert_one('rls_owner', '{"_id": "b2", "who": "b", "n": 4}');
SELECT ku9.insert_many('rls_public', '[{"_id": "b1", "who": "b", "n": 2}, {"_id": "b2", "who": "b", "n": 4}]');
:as_service
SELECT current_user, pg_temp.who(ku9.uid());
SELECT ku9.insert_one('rls_owner', '{"_id": "s1", "who": "service", "n": 5}');
SELECT ku9.insert_one('rls_public', '{"_id": "s1", "who": "service", "n": 5}');
SELECT ku9.insert_many('rls_service', '[{"_id": "s1", "who": "service", "n": 5}, {"_id": "s2", "who": "service", "n": 6}]');
:as_super
SELECT * FROM pg_temp.rows('rls_owner');

--
-- owner: each user sees only their own documents
--
-- the superuser sees all (it bypasses row-level security); the statements
-- are prepared once per backend, and a plan made for the superuser must
-- not show more to the users after it
SELECT * FROM pg_temp.reads('rls_owner');
:as_a
SELECT * FROM pg_temp.reads('rls_owner');
:as_b
SELECT * FROM pg_temp.reads('rls_owner');
-- the role claim plays no part, only the database role: B claiming
-- ku9_service, as ku9_user, is still just B
RESET ROLE;
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-00000000000b", "role": "ku9_service"}';
SET ROLE ku9_user;
SELECT * FROM pg_temp.reads('rls_owner') WHERE probe IN ('find', 'count_documents', 'SELECT');
-- ku9_service sees all, s1 with no owner too
:as_service
SELECT * FROM pg_temp.reads('rls_owner');
-- a ku9_user without claims (ku9.uid() is NULL) sees nothing, not even
-- the documents without owner
:as_nobody
SELECT ku9.uid() IS NULL AS uid_null;
SELECT * FROM pg_temp.reads('rls_owner');
-- ku9_anon may not read an owner collection at all
:as_anon
SELECT * FROM pg_temp.reads('rls_owner');
-- B again, after the service's and the superuser's plans
:as_b
SELECT * FROM pg_temp.reads('rls_owner');

-- B tries to change and delete A's documents: every function matches
-- nothing, SQL on the table changes no row, and changing an owner is
-- refused
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.update_one('rls_owner', '{"_id": "a1"}', '{"$set": {"by": "b"}}')$$,
    $$SELECT ku9.update_one('rls_owner', '{"who": "a"}', '{"$inc": {"n": 100}}')$$,
    $$SELECT ku9.update_many('rls_owner', '{"who": "a"}', '{"$set": {"by": "b"}}')$$,
    $$SELECT ku9.update_one('rls_owner', '{"_id": "a1"}', '{"$set": {"by": "b"}}', '{"expected_version": 1}')$$,
    $$SELECT ku9.replace_one('rls_owner', '{"_id": "a1"}', '{"by": "b"}')$$,
    $$SELECT ku9.replace_one('rls_owner', '{"who": "a"}', '{"by": "b"}')$$,
    $$SELECT ku9.replace_one('rls_owner', '{"_id": "a1"}', '{"by": "b"}', '{"expected_version": 1}')$$,
    $$SELECT ku9.replace_one('rls_owner', '{"_id": "a1"}', '{"by": "b"}', '{"expected_version": 7}')$$,
    $$SELECT ku9.delete_one('rls_owner', '{"_id": "a1"}')$$,
    $$SELECT ku9.delete_one('rls_owner', '{"who": "a"}')$$,
    $$SELECT ku9.delete_many('rls_owner', '{"who": "a"}')$$,
    $$WITH u AS (UPDATE ku9_docs.rls_owner SET doc = doc || '{"by": "b"}' WHERE doc ->> 'who' = 'a' RETURNING 1) SELECT count(*) FROM u$$,
    $$WITH u AS (UPDATE ku9_docs.rls_owner SET doc = doc || '{"by": "b"}' RETURNING _id) SELECT string_agg(_id::text, ' ' ORDER BY _id::text) FROM u$$,
    $$WITH d AS (DELETE FROM ku9_docs.rls_owner WHERE doc ->> 'who' = 'a' RETURNING 1) SELECT count(*) FROM d$$,
    $$UPDATE ku9_docs.rls_owner SET owner = '00000000-0000-4000-8000-00000000000b' WHERE doc ->> 'who' = 'a'$$,
    $$UPDATE ku9_docs.rls_owner SET owner = '00000000-0000-4000-8000-00000000000a' WHERE doc ->> 'who' = 'b'$$,
    $$UPDATE ku9_docs.rls_owner SET owner = NULL$$,
    $$INSERT INTO ku9_docs.rls_owner (doc, owner) VALUES ('{"_id": "forged"}', '00000000-0000-4000-8000-00000000000a')$$,
    $$INSERT INTO ku9_docs.rls_owner (doc, owner) VALUES ('{"_id": "forged"}', NULL)$$,
    $$INSERT INTO ku9_docs.rls_owner (doc) VALUES ('{"_id": "a1", "by": "b"}') ON CONFLICT (_id) DO UPDATE SET doc = EXCLUDED.doc$$,
    $$WITH i AS (INSERT INTO ku9_docs.rls_owner (doc) VALUES ('{"_id": "a1", "by": "b"}') ON CONFLICT (_id) DO NOTHING RETURNING 1) SELECT count(*) FROM i$$]) AS f;
-- an upsert of A's _id inserts for B, which fails on the _id A holds;
-- A's document is untouched (the error does tell B the _id is taken:
-- _ids are unique across the owners of a collection)
SELECT pg_temp.sqlerr($$SELECT ku9.replace_one('rls_owner', '{"_id": "a1"}', '{"by": "b"}', '{"upsert": true}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.update_one('rls_owner', '{"_id": "a1"}', '{"$set": {"by": "b"}}', '{"upsert": true}')$$);
SELECT pg_temp.sqlerr($$SELECT ku9.insert_one('rls_owner', '{"_id": "a1", "by": "b"}')$$);
-- a document naming another owner in its body is still B's
SELECT ku9.insert_one('rls_owner', '{"_id": "b3", "owner": "00000000-0000-4000-8000-00000000000a"}');
-- B's own writes work: the function writes only what B may
SELECT ku9.replace_one('rls_owner', '{"_id": "b3"}', '{"who": "b", "n": 6}');
SELECT ku9.update_one('rls_owner', '{"_id": "b3"}', '{"$inc": {"n": 1}}');
SELECT ku9.update_many('rls_owner', '{}', '{"$set": {"seen_by": "b"}}');
:as_super
-- A's documents as they were; B's changed by B's SQL (which leaves version
-- alone) and functions
SELECT * FROM pg_temp.rows('rls_owner');
:as_b
SELECT ku9.delete_many('rls_owner', '{}');
:as_a
SELECT ku9.update_many('rls_owner', '{}', '{"$set": {"seen_by": "a"}}');
SELECT ku9.delete_one('rls_owner', '{"_id": "b3"}');
:as_super
-- B's are gone, A's and the service's document stay
SELECT * FROM pg_temp.rows('rls_owner');

-- without claims a ku9_user cannot insert: the owner would be NULL
:as_nobody
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.insert_one('rls_owner', '{"_id": "n1"}')$$,
    $$SELECT ku9.insert_many('rls_owner', '[{"_id": "n1"}]')$$,
    $$SELECT ku9.insert_one('rls_public', '{"_id": "n1"}')$$,
    $$SELECT ku9.replace_one('rls_owner', '{"_id": "n1"}', '{}', '{"upsert": true}')$$,
    $$INSERT INTO ku9_docs.rls_owner (doc) VALUES ('{"_id": "n1"}')$$,
    $$INSERT INTO ku9_docs.rls_owner (doc, owner) VALUES ('{"_id": "n1"}', NULL)$$,
    $$SELECT ku9.update_many('rls_owner', '{}', '{"$set": {"by": "nobody"}}')$$,
    $$SELECT ku9.delete_many('rls_owner', '{}')$$]) AS f;
-- nor can ku9_anon write to it
:as_anon
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.insert_one('rls_owner', '{"_id": "n1"}')$$,
    $$SELECT ku9.insert_many('rls_owner', '[{"_id": "n1"}]')$$,
    $$SELECT ku9.update_one('rls_owner', '{}', '{"$set": {"by": "anon"}}')$$,
    $$SELECT ku9.update_many('rls_owner', '{}', '{"$set": {"by": "anon"}}')$$,
    $$SELECT ku9.replace_one('rls_owner', '{}', '{}')$$,
    $$SELECT ku9.delete_one('rls_owner', '{}')$$,
    $$SELECT ku9.delete_many('rls_owner', '{}')$$,
    $$INSERT INTO ku9_docs.rls_owner (doc) VALUES ('{"_id": "n1"}')$$,
    $$UPDATE ku9_docs.rls_owner SET doc = '{}'$$,
    $$DELETE FROM ku9_docs.rls_owner$$]) AS f;
:as_super
SELECT * FROM pg_temp.rows('rls_owner');

--
-- public_read: everyone reads everything, each user writes their own
--
:as_a
SELECT * FROM pg_temp.reads('rls_public');
:as_b
SELECT * FROM pg_temp.reads('rls_public');
:as_anon
SELECT * FROM pg_temp.reads('rls_public');
:as_nobody
SELECT * FROM pg_temp.reads('rls_public');
:as_service
SELECT * FROM pg_temp.reads('rls_public');
-- B, who can read A's documents, still cannot change them: the functions
-- match nothing (with A's current version too: that is no version
-- conflict, B's write just has nothing to apply to)
:as_b
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.update_one('rls_public', '{"_id": "a1"}', '{"$set": {"by": "b"}}')$$,
    $$SELECT ku9.update_many('rls_public', '{"who": "a"}', '{"$set": {"by": "b"}}')$$,
    $$SELECT ku9.replace_one('rls_public', '{"_id": "a1"}', '{"by": "b"}')$$,
    $$SELECT ku9.replace_one('rls_public', '{"_id": "a1"}', '{"by": "b"}', '{"expected_version": 1}')$$,
    $$SELECT ku9.delete_one('rls_public', '{"_id": "a1"}')$$,
    $$SELECT ku9.delete_many('rls_public', '{"who": "a"}')$$,
    $$WITH u AS (UPDATE ku9_docs.rls_public SET doc = doc || '{"by": "b"}' WHERE doc ->> 'who' = 'a' RETURNING 1) SELECT count(*) FROM u$$,
    $$WITH d AS (DELETE FROM ku9_docs.rls_public WHERE doc ->> 'who' = 'a' RETURNING 1) SELECT count(*) FROM d$$,
    $$UPDATE ku9_docs.rls_public SET owner = '00000000-0000-4000-8000-00000000000b' WHERE doc ->> 'who' = 'a'$$,
    $$INSERT INTO ku9_docs.rls_public (doc, owner) VALUES ('{"_id": "forged"}', '00000000-0000-4000-8000-00000000000a')$$,
    $$INSERT INTO ku9_docs.rls_public (doc) VALUES ('{"_id": "a1", "by": "b"}') ON CONFLICT (_id) DO UPDATE SET doc = EXCLUDED.doc$$]) AS f;
-- but B's own
SELECT ku9.replace_one('rls_public', '{"_id": "b1"}', '{"who": "b", "n": 2, "by": "b"}');
SELECT ku9.update_many('rls_public', '{}', '{"$set": {"seen_by": "b"}}');
SELECT ku9.delete_one('rls_public', '{"_id": "b2"}');
SELECT ku9.insert_one('rls_public', '{"_id": "b3", "who": "b", "n": 7}');
-- ku9_anon reads but writes nothing
:as_anon
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.insert_one('rls_public', '{"_id": "n1"}')$$,
    $$SELECT ku9.insert_many('rls_public', '[{"_id": "n1"}]')$$,
    $$SELECT ku9.update_one('rls_public', '{}', '{"$set": {"by": "anon"}}')$$,
    $$SELECT ku9.update_many('rls_public', '{}', '{"$set": {"by": "anon"}}')$$,
    $$SELECT ku9.replace_one('rls_public', '{}', '{}')$$,
    $$SELECT ku9.delete_one('rls_public', '{}')$$,
    $$SELECT ku9.delete_many('rls_public', '{}')$$,
    $$INSERT INTO ku9_docs.rls_public (doc) VALUES ('{"_id": "n1"}')$$,
    $$UPDATE ku9_docs.rls_public SET doc = '{}'$$,
    $$DELETE FROM ku9_docs.rls_public$$]) AS f;
:as_super
SELECT * FROM pg_temp.rows('rls_public');

--
-- service: only ku9_service, and 42501 for everyone else
--
:as_a
SELECT * FROM pg_temp.reads('rls_service');
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.insert_one('rls_service', '{"_id": "u1"}')$$,
    $$SELECT ku9.insert_many('rls_service', '[{"_id": "u1"}]')$$,
    $$SELECT ku9.update_one('rls_service', '{}', '{"$set": {"by": "a"}}')$$,
    $$SELECT ku9.update_many('rls_service', '{}', '{"$set": {"by": "a"}}')$$,
    $$SELECT ku9.replace_one('rls_service', '{}', '{}')$$,
    $$SELECT ku9.delete_one('rls_service', '{}')$$,
    $$SELECT ku9.delete_many('rls_service', '{}')$$,
    $$SELECT ku9.explain_find('rls_service')$$,
    $$INSERT INTO ku9_docs.rls_service (doc) VALUES ('{"_id": "u1"}')$$,
    $$UPDATE ku9_docs.rls_service SET doc = '{}'$$,
    $$DELETE FROM ku9_docs.rls_service$$]) AS f;
:as_anon
SELECT * FROM pg_temp.reads('rls_service');
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.insert_one('rls_service', '{"_id": "u1"}')$$,
    $$SELECT ku9.update_one('rls_service', '{}', '{"$set": {"by": "anon"}}')$$,
    $$SELECT ku9.replace_one('rls_service', '{}', '{}')$$,
    $$SELECT ku9.delete_many('rls_service', '{}')$$,
    $$INSERT INTO ku9_docs.rls_service (doc) VALUES ('{"_id": "u1"}')$$]) AS f;
:as_service
SELECT * FROM pg_temp.reads('rls_service');
SELECT ku9.replace_one('rls_service', '{"_id": "s2"}', '{"who": "service", "n": 6, "by": "service"}');
SELECT ku9.update_one('rls_service', '{"_id": "s2"}', '{"$inc": {"n": 1}}');
-- ku9_service may also give a document an owner
UPDATE ku9_docs.rls_owner SET owner = '00000000-0000-4000-8000-00000000000b' WHERE _id = '"s1"';
:as_b
SELECT * FROM ku9.find('rls_owner');
:as_super
SELECT * FROM pg_temp.rows('rls_service');

--
-- managing collections and indexes is for ku9_service
--
CREATE FUNCTION pg_temp.manage() RETURNS TABLE (f text, result text) LANGUAGE sql AS $f$
    SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
        $$SELECT ku9.create_collection('rls_mine')$$,
        $$SELECT ku9.drop_collection('rls_owner')$$,
        $$SELECT ku9.create_index('rls_owner', '{"n": 1}')$$,
        $$SELECT ku9.drop_index('rls_owner', 'n_1')$$,
        $$CREATE TABLE ku9_docs.rls_mine (doc jsonb)$$,
        $$DROP TABLE ku9_docs.rls_owner$$,
        $$TRUNCATE ku9_docs.rls_owner$$,
        $$CREATE INDEX ON ku9_docs.rls_owner ((doc ->> 'who'))$$,
        $$DROP INDEX ku9_docs."rls_owner$n_1"$$,
        $$ALTER TABLE ku9_docs.rls_owner DISABLE ROW LEVEL SECURITY$$,
        $$DROP POLICY owner_select ON ku9_docs.rls_owner$$,
        $$CREATE POLICY mine ON ku9_docs.rls_owner FOR SELECT USING (true)$$,
        $$INSERT INTO ku9.collections (name) VALUES ('rls_mine')$$,
        $$UPDATE ku9.collections SET access = 'public_read'$$,
        $$DELETE FROM ku9.collections$$]) AS f
$f$;
:as_service
SELECT ku9.create_index('rls_owner', '{"n": 1}');
:as_a
SELECT * FROM pg_temp.manage();
:as_anon
SELECT * FROM pg_temp.manage();
:as_nobody
SELECT * FROM pg_temp.manage();
-- the functions check for ku9_service again: EXECUTE alone is not enough
:as_super
CREATE ROLE regress_ku9_docs_exec IN ROLE ku9_user;
GRANT EXECUTE ON FUNCTION ku9.create_collection(text, jsonb), ku9.drop_collection(text),
    ku9.create_index(text, jsonb, jsonb), ku9.drop_index(text, text) TO regress_ku9_docs_exec;
SET ROLE regress_ku9_docs_exec;
SELECT f, pg_temp.try(f) FROM unnest(ARRAY[
    $$SELECT ku9.create_collection('rls_mine')$$,
    $$SELECT ku9.drop_collection('rls_owner')$$,
    $$SELECT ku9.create_index('rls_owner', '{"who": 1}')$$,
    $$SELECT ku9.drop_index('rls_owner', 'n_1')$$]) AS f;
:as_super
REVOKE EXECUTE ON FUNCTION ku9.create_collection(text, jsonb), ku9.drop_collection(text),
    ku9.create_index(text, jsonb, jsonb), ku9.drop_index(text, text) FROM regress_ku9_docs_exec;
DROP ROLE regress_ku9_docs_exec;
-- nothing changed: the collections, their indexes and policies
SELECT name, access, events FROM ku9.list_collections() WHERE name LIKE 'rls%';
SELECT tablename, policyname, cmd, roles::text, qual, with_check FROM pg_policies
WHERE schemaname = 'ku9_docs' ORDER BY 1, 2;
SELECT indexrelid::regclass AS index FROM pg_index
WHERE indrelid = 'ku9_docs.rls_owner'::regclass ORDER BY indexrelid::regclass::text;
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
WHERE relnamespace = 'ku9_docs'::regnamespace AND relkind = 'r' ORDER BY 1;
SELECT c.relname, r AS role,
       array_to_string(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
                             WHERE has_table_privilege(r, c.oid, p)), ' ') AS table_privileges,
       array_to_string(ARRAY(SELECT a.attname FROM pg_attribute a
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                               AND has_column_privilege(r, c.oid, a.attnum, 'UPDATE') ORDER BY a.attnum), ' ') AS updatable_columns
FROM pg_class c, unnest(ARRAY['ku9_anon', 'ku9_user', 'ku9_service']) r
WHERE c.relnamespace = 'ku9_docs'::regnamespace AND c.relkind = 'r'
ORDER BY 1, 2;
-- ku9_service manages them
:as_service
SELECT ku9.drop_index('rls_owner', 'n_1');
SELECT ku9.create_collection('rls_mine');
SELECT ku9.drop_collection('rls_mine');

:as_super
SELECT ku9.drop_collection(name) FROM ku9.list_collections() WHERE name LIKE 'rls%';
DROP EXTENSION ku9;
