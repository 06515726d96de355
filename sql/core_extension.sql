-- core: CREATE / DROP EXTENSION, in one database and in a second one
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;

SELECT e.extname, e.extversion, e.extrelocatable, n.nspname AS schema
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'ku9';

-- requires pgcrypto
SELECT pg_describe_object(refclassid, refobjid, 0) AS requires
FROM pg_depend
WHERE classid = 'pg_extension'::regclass
  AND objid = (SELECT oid FROM pg_extension WHERE extname = 'ku9')
  AND refclassid = 'pg_extension'::regclass;

-- everything the extension owns
SELECT pg_describe_object(classid, objid, 0) AS member
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ku9')
  AND deptype = 'e'
ORDER BY 1;

-- every function is commented and spells out its volatility and parallel safety
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
FROM pg_proc p
WHERE p.pronamespace IN ('ku9'::regnamespace, 'ku9_api'::regnamespace)
ORDER BY p.oid::regprocedure::text;

-- DROP removes everything it made except the cluster-wide roles, and the
-- ku9 schema itself: PostgreSQL creates the control file's schema for
-- CREATE EXTENSION but never makes it a member, so it stays, empty
DROP EXTENSION ku9;
SELECT n.nspname,
       (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid) +
       (SELECT count(*) FROM pg_proc WHERE pronamespace = n.oid) +
       (SELECT count(*) FROM pg_type WHERE typnamespace = n.oid) AS objects
FROM pg_namespace n WHERE n.nspname LIKE 'ku9%';
SELECT count(*) AS functions_left FROM pg_proc WHERE proname IN ('claims', 'uid', 'metrics', 'metric_samples');
SELECT rolname FROM pg_roles WHERE rolname LIKE 'ku9\_%' ORDER BY 1;

-- creating it again, with the roles already there, is quiet
CREATE EXTENSION ku9;

-- a second database in the same cluster
SELECT current_database() AS first_db \gset
CREATE DATABASE regress_ku9_second;
\c regress_ku9_second
SET client_min_messages = warning;
CREATE EXTENSION ku9 CASCADE;
RESET client_min_messages;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-000000000002"}', false) IS NOT NULL AS set;
SELECT ku9.uid();
SELECT extname FROM pg_extension WHERE extname IN ('ku9', 'pgcrypto') ORDER BY 1;
DROP EXTENSION ku9;
\c :first_db
DROP DATABASE regress_ku9_second;

-- the first database was not disturbed
SELECT count(*) AS ku9_functions FROM pg_proc WHERE pronamespace = 'ku9'::regnamespace;
DROP EXTENSION ku9;
