/*
 * core: schemas, roles and identity
 *
 * Roles are cluster-wide and shared by every database that installs ku9, so
 * they are created only when absent and are left in place by DROP
 * EXTENSION.  All four are NOLOGIN; the DBA gives ku9_authenticator LOGIN
 * and a password for PostgREST or the gateway.
 */

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['ku9_anon', 'ku9_user', 'ku9_service'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;

    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'ku9_authenticator') THEN
        CREATE ROLE ku9_authenticator NOLOGIN NOINHERIT;
    END IF;

    FOREACH r IN ARRAY ARRAY['ku9_anon', 'ku9_user', 'ku9_service'] LOOP
        IF NOT pg_catalog.pg_has_role('ku9_authenticator', r, 'MEMBER') THEN
            EXECUTE pg_catalog.format('GRANT %I TO ku9_authenticator', r);
        END IF;
    END LOOP;
END
$roles$;

-- the HTTP surface: PostgREST's db-schemas, filled by the http module
CREATE SCHEMA ku9_api;
COMMENT ON SCHEMA ku9_api IS 'ku9''s HTTP surface for PostgREST and the embedded gateway';

REVOKE ALL ON SCHEMA ku9 FROM PUBLIC;
REVOKE ALL ON SCHEMA ku9_api FROM PUBLIC;
GRANT USAGE ON SCHEMA ku9 TO ku9_anon, ku9_user, ku9_service;
GRANT USAGE ON SCHEMA ku9_api TO ku9_anon, ku9_user, ku9_service;

CREATE FUNCTION ku9.claims() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_claims'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.claims() IS
    'JWT claims of the current request (setting request.jwt.claims), or NULL when unset';

CREATE FUNCTION ku9.uid() RETURNS uuid
    AS 'MODULE_PATHNAME', 'ku9_uid'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.uid() IS
    'the sub claim of the current request as uuid, or NULL when absent';

CREATE FUNCTION ku9.role() RETURNS text
    AS 'MODULE_PATHNAME', 'ku9_role'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.role() IS
    'the role claim of the current request, or NULL when absent';

REVOKE ALL ON FUNCTION ku9.claims(), ku9.uid(), ku9.role() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.claims(), ku9.uid(), ku9.role()
    TO ku9_anon, ku9_user, ku9_service;

CREATE FUNCTION ku9._setting(name text) RETURNS text
    AS 'MODULE_PATHNAME', 'ku9_setting'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9._setting(text) IS
    'current_setting() that first loads ku9, so its settings exist without preloading; for ku9''s own use';
REVOKE ALL ON FUNCTION ku9._setting(text) FROM PUBLIC;
