-- core: roles, and the least privileges that work
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT rolname, rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls
FROM pg_roles WHERE rolname LIKE 'ku9\_%' ORDER BY 1;

-- ku9_authenticator is granted the three request roles, and nothing else is
SELECT r.rolname AS granted, m.rolname AS to_role
FROM pg_auth_members a
JOIN pg_roles r ON r.oid = a.roleid
JOIN pg_roles m ON m.oid = a.member
WHERE m.rolname LIKE 'ku9\_%' OR r.rolname LIKE 'ku9\_%'
ORDER BY 1, 2;

-- what each role may execute in ku9 and ku9_api
SELECT r AS role, p.oid::regprocedure::text AS function
FROM unnest(ARRAY['ku9_anon', 'ku9_user', 'ku9_service', 'ku9_authenticator']) r,
     pg_proc p
WHERE p.pronamespace IN ('ku9'::regnamespace, 'ku9_api'::regnamespace)
  AND has_function_privilege(r, p.oid, 'EXECUTE')
ORDER BY 1, 2;

-- what each role may read or write in ku9 and ku9_api
SELECT r AS role, c.oid::regclass::text AS relation
FROM unnest(ARRAY['ku9_anon', 'ku9_user', 'ku9_service', 'ku9_authenticator', 'pg_monitor']) r,
     pg_class c
WHERE c.relnamespace IN ('ku9'::regnamespace, 'ku9_api'::regnamespace)
  AND has_table_privilege(r, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
ORDER BY 1, 2;

-- schema usage
SELECT r AS role, s AS schema, has_schema_privilege(r, s, 'USAGE') AS usage,
       has_schema_privilege(r, s, 'CREATE') AS create
FROM unnest(ARRAY['ku9_anon', 'ku9_user', 'ku9_service', 'ku9_authenticator']) r,
     unnest(ARRAY['ku9', 'ku9_api']) s
ORDER BY 1, 2;

-- an anonymous request session
SET ROLE ku9_anon;
SELECT pg_temp.sqlerr('SELECT ku9.metrics()');
SELECT pg_temp.sqlerr('SELECT * FROM ku9.stats');
SELECT pg_temp.sqlerr('SELECT * FROM ku9.metric_samples()');
SELECT pg_temp.sqlerr('CREATE TABLE ku9.intruder (id int)');
SELECT pg_temp.sqlerr('CREATE FUNCTION ku9_api.intruder() RETURNS int LANGUAGE sql AS ''SELECT 1''');
SELECT ku9.uid() IS NULL AS anonymous;
RESET ROLE;

-- a signed-in user session may call the identity functions only
SET ROLE ku9_user;
SELECT pg_temp.sqlerr('SELECT ku9.metrics()');
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000000aa", "role": "ku9_user"}';
SELECT ku9.uid(), ku9.role();
RESET ROLE;

-- the authenticator itself (NOINHERIT) holds only the gateway's helpers (ku9._gateway_*,
-- ku9.metrics) until it switches role
SET ROLE ku9_authenticator;
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
SET ROLE ku9_service;
SELECT ku9.metrics() LIKE '%# TYPE ku9_build_info gauge%' AS service_reads_metrics;
RESET ROLE;

-- a role with no ku9 grants gets nothing, not even the schema
CREATE ROLE regress_ku9_plain;
SET ROLE regress_ku9_plain;
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
SELECT pg_temp.sqlerr('SELECT ku9.metrics()');
RESET ROLE;

-- monitoring roles read the metrics, and nothing else
GRANT pg_monitor TO regress_ku9_plain;
SET ROLE regress_ku9_plain;
SELECT count(*) > 0 AS monitor_reads_stats FROM ku9.stats;
SELECT ku9.metrics() LIKE '%ku9_build_info%' AS monitor_reads_metrics;
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
RESET ROLE;
DROP ROLE regress_ku9_plain;

DROP EXTENSION ku9;
