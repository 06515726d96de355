-- core: ku9.claims(), ku9.uid(), ku9.role() from request.jwt.claims
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

-- unset: all NULL
SELECT ku9.claims() IS NULL AS claims_null, ku9.uid() IS NULL AS uid_null, ku9.role() IS NULL AS role_null;

-- empty and blank: NULL
SET request.jwt.claims = '';
SELECT ku9.claims() IS NULL AS claims_null, ku9.uid() IS NULL AS uid_null, ku9.role() IS NULL AS role_null;
SET request.jwt.claims = '  ';
SELECT ku9.claims() IS NULL AS claims_null;

-- set as PostgREST sets it
SET request.jwt.claims = '{"sub": "8a4b1f0e-2d2c-4b9e-9f1a-0c5a6e7d8f90", "role": "ku9_user", "aud": "authenticated", "email": "ada@example.com"}';
SELECT ku9.claims();
SELECT ku9.uid(), ku9.role();
SELECT ku9.claims() ->> 'email' AS email;
SELECT pg_typeof(ku9.uid()) AS uid_type, pg_typeof(ku9.role()) AS role_type;

-- sub and role absent, or JSON null: NULL
SET request.jwt.claims = '{"role": "ku9_anon"}';
SELECT ku9.uid() IS NULL AS uid_null, ku9.role();
SET request.jwt.claims = '{"sub": null, "role": null}';
SELECT ku9.uid() IS NULL AS uid_null, ku9.role() IS NULL AS role_null;

-- a change of the setting is seen at once, also within one transaction
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-000000000001"}', true) IS NOT NULL AS set;
SELECT ku9.uid();
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-000000000002"}', true) IS NOT NULL AS set;
SELECT ku9.uid();
COMMIT;
-- SET LOCAL ended with the transaction: back to the session value
SELECT ku9.uid() IS NULL AS uid_null, ku9.role() IS NULL AS role_null;
RESET request.jwt.claims;
SELECT ku9.claims() IS NULL AS claims_null;

-- and after a rolled-back SET LOCAL
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000000a1"}';
BEGIN;
SET LOCAL request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000000b2"}';
SELECT ku9.uid();
ROLLBACK;
SELECT ku9.uid();

-- accepted uuid spellings are those of the uuid type
SET request.jwt.claims = '{"sub": "8A4B1F0E2D2C4B9E9F1A0C5A6E7D8F90"}';
SELECT ku9.uid();

-- malformed claims: clear errors with SQLSTATEs
SET request.jwt.claims = 'not json';
SELECT pg_temp.sqlerr('SELECT ku9.claims()');
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
SELECT pg_temp.sqlerr('SELECT ku9.role()');
SET request.jwt.claims = '{"sub": "8a4b1f0e-2d2c-4b9e-9f1a-0c5a6e7d8f90"';
SELECT pg_temp.sqlerr('SELECT ku9.claims()');
SET request.jwt.claims = '["sub"]';
SELECT pg_temp.sqlerr('SELECT ku9.claims()');
SET request.jwt.claims = '"8a4b1f0e-2d2c-4b9e-9f1a-0c5a6e7d8f90"';
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
SET request.jwt.claims = '{"sub": "alice"}';
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
SELECT ku9.claims() ->> 'sub' AS sub, ku9.role() IS NULL AS role_null;
SET request.jwt.claims = '{"sub": 42}';
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
SET request.jwt.claims = '{"sub": {"id": "8a4b1f0e-2d2c-4b9e-9f1a-0c5a6e7d8f90"}}';
SELECT pg_temp.sqlerr('SELECT ku9.uid()');
SET request.jwt.claims = '{"role": ["ku9_user"]}';
SELECT pg_temp.sqlerr('SELECT ku9.role()');
-- the error is raised on every call, not only the first
SELECT pg_temp.sqlerr('SELECT ku9.role()');

-- after an error, good claims work again
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000003", "role": "ku9_service"}';
SELECT ku9.uid(), ku9.role();

-- one value per row in a query, and usable in a policy
CREATE TABLE regress_notes (owner uuid, body text);
INSERT INTO regress_notes VALUES
    ('00000000-0000-4000-8000-000000000003', 'mine'),
    ('00000000-0000-4000-8000-000000000004', 'theirs');
ALTER TABLE regress_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON regress_notes USING (owner = (SELECT ku9.uid()));
GRANT SELECT ON regress_notes TO ku9_user;
SET ROLE ku9_user;
SELECT body FROM regress_notes;
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000004"}';
SELECT body FROM regress_notes;
SET request.jwt.claims = '{}';
SELECT count(*) AS anonymous_sees FROM regress_notes;
RESET ROLE;
DROP TABLE regress_notes;

-- unicode and escapes inside claims survive
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-000000000005", "name": "Zoë \"Z\" \\ Ω"}';
SELECT ku9.claims() ->> 'name' AS name;

RESET request.jwt.claims;
DROP EXTENSION ku9;
