-- core: settings; the JWT secret is hidden from non-superusers
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;
\i sql/include/sqlerr.psql

SELECT name, unit, context, vartype, min_val, max_val, boot_val
FROM pg_settings WHERE name LIKE 'ku9.%' AND name <> 'ku9.jwt_secret'
ORDER BY name;
SELECT name, context, boot_val FROM pg_settings WHERE name = 'ku9.jwt_secret';

-- a superuser sets and reads the secret
SET ku9.jwt_secret = 'regress-secret-0123456789abcdefghijklmnop';
SHOW ku9.jwt_secret;

-- a non-superuser can neither read nor set it
CREATE ROLE regress_ku9_plain;
SET ROLE regress_ku9_plain;
SELECT pg_temp.sqlerr('SHOW ku9.jwt_secret');
SELECT pg_temp.sqlerr('SELECT current_setting(''ku9.jwt_secret'')');
SELECT pg_temp.sqlerr('SELECT current_setting(''ku9.jwt_secret'', true)');
SELECT count(*) AS rows_in_pg_settings FROM pg_settings WHERE name = 'ku9.jwt_secret';
SELECT count(*) AS rows_with_secret FROM pg_settings WHERE setting LIKE '%regress-secret%';
SELECT pg_temp.sqlerr('SET ku9.jwt_secret = ''attacker-secret-0123456789abcdefghijk''');
SELECT pg_temp.sqlerr('SELECT set_config(''ku9.jwt_secret'', ''x'', false)');
-- nor lengthen the tokens it would be issued
SELECT pg_temp.sqlerr('SET ku9.jwt_exp = 31536000');
SHOW ku9.jwt_exp;
RESET ROLE;
DROP ROLE regress_ku9_plain;

-- pg_read_all_settings members may read it, as for every superuser-only setting
CREATE ROLE regress_ku9_reader IN ROLE pg_read_all_settings;
SET ROLE regress_ku9_reader;
SHOW ku9.jwt_secret;
RESET ROLE;
DROP ROLE regress_ku9_reader;
RESET ku9.jwt_secret;

-- jwt_exp is in seconds, with bounds
SET ku9.jwt_exp = '2h';
SHOW ku9.jwt_exp;
SELECT pg_temp.sqlerr('SET ku9.jwt_exp = 5');
SELECT pg_temp.sqlerr('SET ku9.jwt_exp = ''forever''');
RESET ku9.jwt_exp;

-- postmaster settings cannot change at run time
SELECT pg_temp.sqlerr('SET ku9.http_port = 8080');
SELECT pg_temp.sqlerr('SET ku9.database = ''other''');

-- the ku9 prefix is reserved: a misspelt setting is an error, not a new custom setting
SELECT pg_temp.sqlerr('SET ku9.jwt_secrte = ''x''');

DROP EXTENSION ku9;
