/*
 * auth: JSON Web Tokens
 */

CREATE FUNCTION ku9.jwt_sign(claims jsonb) RETURNS text
    AS 'MODULE_PATHNAME', 'ku9_jwt_sign'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.jwt_sign(jsonb) IS
    'sign claims as an HS256 token with ku9.jwt_secret';

CREATE FUNCTION ku9.jwt_verify(token text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ku9_jwt_verify'
    LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.jwt_verify(text) IS
    'check an HS256 token (signature, exp, nbf, iat, aud, iss) and return its claims';

-- minting tokens is for trusted backends; checking them is for anyone
REVOKE ALL ON FUNCTION ku9.jwt_sign(jsonb), ku9.jwt_verify(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.jwt_sign(jsonb) TO ku9_service;
GRANT EXECUTE ON FUNCTION ku9.jwt_verify(text) TO ku9_anon, ku9_user, ku9_service;
