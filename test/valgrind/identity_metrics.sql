-- identity and metrics under valgrind (single-user backend)
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION ku9;
SET request.jwt.claims = '{"sub": "8a4b1f0e-2d2c-4b9e-9f1a-0c5a6e7d8f90", "role": "ku9_user"}';
SELECT ku9.uid(), ku9.role(), ku9.claims();
SELECT ku9.uid(), ku9.role(), ku9.claims();
SET request.jwt.claims = 'bad';
SELECT ku9.uid();
SET request.jwt.claims = '{"sub": "nope"}';
SELECT ku9.uid();
SET request.jwt.claims = '{"sub": 1, "role": 2}';
SELECT ku9.role();
SET request.jwt.claims = '{"sub": "8a4b1f0e-2d2c-4b9e-9f1a-0c5a6e7d8f91"}';
SELECT ku9.uid(), ku9.role();
SELECT length(ku9.metrics()) > 0;
SELECT count(*) FROM ku9.stats;
DROP EXTENSION ku9;
