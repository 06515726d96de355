-- auth C code under valgrind (single-user backend): HS256, RS256/ES256
-- through libjwt, key generation, authenticate, throttling
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION ku9;
SET ku9.jwt_secret = 'valgrind-secret-0123456789abcdefghijklmnop';
SET ku9.bcrypt_cost = 4;
SELECT ku9.jwt_verify(ku9.jwt_sign(jsonb_build_object('sub', 'x', 'aud', 'authenticated', 'exp', 4102444800)));
SELECT ku9.jwt_verify('not.a.token');
SELECT ku9.jwt_verify('eyJhbGciOiJub25lIn0.e30.');
SELECT ku9.jwt_verify(repeat('a', 20000));
SELECT ku9.rotate_signing_key('RS256');
SELECT ku9.rotate_signing_key('ES256');
SELECT ku9.jwks() IS NOT NULL;
SET ku9.jwt_alg = 'RS256';
SELECT ku9.jwt_verify(ku9.jwt_sign(jsonb_build_object('sub', 'y', 'aud', 'authenticated', 'exp', 4102444800)));
SET ku9.jwt_alg = 'ES256';
SELECT ku9.jwt_verify(ku9.jwt_sign(jsonb_build_object('sub', 'z', 'aud', 'authenticated', 'exp', 4102444800)));
SELECT ku9.jwt_sign('{"n": 100000000000000000000000000000}');
SET ku9.jwt_alg = 'HS256';
SELECT ku9.sign_up('val@example.com', 'correct horse battery') IS NOT NULL;
SELECT ku9.sign_in('val@example.com', 'wrong password');
SELECT ku9.authenticate(ku9.sign_in('val@example.com', 'correct horse battery') ->> 'access_token') ->> 'email';
SELECT ku9.authenticate(NULL);
SELECT ku9.uid() IS NOT NULL;
DROP EXTENSION ku9;
