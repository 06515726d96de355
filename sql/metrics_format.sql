-- metrics: counters, histograms, the exposition format and ku9.stats
CREATE EXTENSION IF NOT EXISTS ku9 CASCADE;

-- pg_temp.sample(name, labels): one sample's value from ku9.stats (0 when absent)
CREATE FUNCTION pg_temp.sample(sample_name text, sample_labels jsonb DEFAULT '{}')
RETURNS double precision LANGUAGE sql AS $f$
    SELECT coalesce(sum(value), 0) FROM ku9.stats
    WHERE name = sample_name AND labels @> sample_labels AND sample_labels @> labels
$f$;

-- the registry's own series exist from server start
SELECT name, labels, value FROM ku9.stats
WHERE family IN ('ku9_build_info', 'ku9_metrics_dropped_total')
ORDER BY name;
SELECT value > 0 AS has_series FROM ku9.stats WHERE name = 'ku9_metrics_series';
SELECT value >= 2048 AS capacity FROM ku9.stats WHERE name = 'ku9_metrics_series_max';

-- counters count exactly: 25 distinct claims values are 25 parses, and
-- calling again with the same claims is served from the cache
SELECT jsonb_build_object('database', current_database()) AS db \gset
SELECT pg_temp.sample('ku9_claims_parsed_total', :'db') AS parsed0,
       pg_temp.sample('ku9_claims_size_bytes_count', :'db') AS count0,
       pg_temp.sample('ku9_claims_size_bytes_sum', :'db') AS sum0,
       pg_temp.sample('ku9_claims_size_bytes_bucket', :'db'::jsonb || '{"le": "64"}') AS le64_0,
       pg_temp.sample('ku9_claims_size_bytes_bucket', :'db'::jsonb || '{"le": "128"}') AS le128_0,
       pg_temp.sample('ku9_claims_size_bytes_bucket', :'db'::jsonb || '{"le": "+Inf"}') AS inf0 \gset
DO $$
BEGIN
    FOR i IN 1..25 LOOP
        -- 92 bytes each, so all fall in the le="128" bucket
        PERFORM set_config('request.jwt.claims',
                           format('{"sub":"00000000-0000-4000-8000-%s","n":"%s"}',
                                  lpad(i::text, 12, '0'), repeat('x', 39)),
                           true);
        PERFORM ku9.claims(), ku9.uid(), ku9.role(), ku9.claims();
    END LOOP;
END
$$;
SELECT octet_length(format('{"sub":"00000000-0000-4000-8000-%s","n":"%s"}', lpad('1', 12, '0'), repeat('x', 39))) AS claims_bytes;
SELECT pg_temp.sample('ku9_claims_parsed_total', :'db') - :parsed0 AS parsed,
       pg_temp.sample('ku9_claims_size_bytes_count', :'db') - :count0 AS observed,
       pg_temp.sample('ku9_claims_size_bytes_sum', :'db') - :sum0 AS bytes,
       pg_temp.sample('ku9_claims_size_bytes_bucket', :'db'::jsonb || '{"le": "64"}') - :le64_0 AS le64,
       pg_temp.sample('ku9_claims_size_bytes_bucket', :'db'::jsonb || '{"le": "128"}') - :le128_0 AS le128,
       pg_temp.sample('ku9_claims_size_bytes_bucket', :'db'::jsonb || '{"le": "+Inf"}') - :inf0 AS inf;

-- an invalid claims value is counted
SELECT pg_temp.sample('ku9_claims_invalid_total', :'db') AS invalid0 \gset
SET request.jwt.claims = '{"sub": "not-a-uuid"}';
SELECT ku9.uid();
SET request.jwt.claims = '[]';
SELECT ku9.claims();
RESET request.jwt.claims;
SELECT pg_temp.sample('ku9_claims_invalid_total', :'db') - :invalid0 AS invalid;

-- histogram buckets are cumulative and end with +Inf = _count
SELECT bool_and(b.value <= n.value) AS cumulative
FROM (SELECT labels, value, (labels->>'le') AS le,
             lead(value) OVER (ORDER BY CASE WHEN labels->>'le' = '+Inf' THEN 'Infinity'::float8 ELSE (labels->>'le')::float8 END) AS nxt
      FROM ku9.stats WHERE name = 'ku9_claims_size_bytes_bucket' AND labels->>'database' = current_database()) b,
     LATERAL (SELECT coalesce(b.nxt, b.value) AS value) n;
SELECT pg_temp.sample('ku9_claims_size_bytes_bucket', :'db'::jsonb || '{"le": "+Inf"}')
     = pg_temp.sample('ku9_claims_size_bytes_count', :'db') AS inf_is_count;

-- the exposition format: HELP and TYPE once per family, before its samples;
-- every other line a sample in the text format
SELECT ku9.metrics() AS text \gset
CREATE TEMP TABLE lines AS
    SELECT n, line FROM unnest(string_to_array(rtrim(:'text', E'\n'), E'\n')) WITH ORDINALITY AS t(line, n);
SELECT right(:'text', 1) = E'\n' AS ends_with_newline;
SELECT count(*) AS malformed_lines FROM lines
WHERE line !~ '^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$'
  AND line !~ '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? ([-+]?[0-9.eE+-]+|NaN|[-+]Inf)$';
-- (the families of the core and the registry; other modules have their own tests)
SELECT substring(line from '^# TYPE (\S+) ') AS family, substring(line from ' (\S+)$') AS type
FROM lines WHERE line ~ '^# TYPE ku9_(build|metrics|claims)_' ORDER BY n;
SELECT family, count(*) AS help_lines FROM (SELECT substring(line from '^# HELP (\S+) ') AS family FROM lines WHERE line LIKE '# HELP %') h
GROUP BY family HAVING count(*) <> 1;
-- a family's samples all follow its TYPE line, without other families between
SELECT count(*) AS misplaced_samples
FROM lines s
WHERE s.line NOT LIKE '#%'
  AND NOT EXISTS (
      SELECT 1 FROM lines t
      WHERE t.line LIKE '# TYPE %' AND t.n < s.n
        AND s.line LIKE substring(t.line from '^# TYPE (\S+) ') || '%'
        AND NOT EXISTS (SELECT 1 FROM lines u WHERE u.line LIKE '# TYPE %' AND u.n > t.n AND u.n < s.n));

-- ku9.stats holds the same samples as the text
SELECT (SELECT count(*) FROM lines WHERE line NOT LIKE '#%') = (SELECT count(*) FROM ku9.stats) AS same_count;
SELECT count(*) AS differing
FROM ku9.stats s
WHERE NOT EXISTS (
    SELECT 1 FROM lines l
    WHERE l.line NOT LIKE '#%'
      AND substring(l.line from '^([^{ ]+)') = s.name
      AND CASE WHEN l.line LIKE '#%' THEN NULL ELSE substring(l.line from ' (\S+)$')::float8 END = s.value
      AND (SELECT bool_and(strpos(l.line, k || '="' || replace(replace(v, '\', '\\'), '"', '\"') || '"') > 0)
           FROM jsonb_each_text(s.labels) AS j(k, v)) IS NOT FALSE);

-- label values are escaped: a database named with a quote and a backslash
SELECT current_database() AS first_db \gset
CREATE DATABASE "regress_ku9 ""quoted"" \ db";
\c "regress_ku9 ""quoted"" \ db"
SET client_min_messages = warning;
CREATE EXTENSION ku9 CASCADE;
RESET client_min_messages;
SELECT current_database();
SET request.jwt.claims = '{"sub": "00000000-0000-4000-8000-0000000000ee"}';
SELECT ku9.uid();
SELECT line FROM unnest(string_to_array(ku9.metrics(), E'\n')) AS line
WHERE line LIKE 'ku9_claims_parsed_total{database="regress_ku9 %';
SELECT labels, value FROM ku9.stats WHERE name = 'ku9_claims_parsed_total' AND labels->>'database' LIKE 'regress_ku9 %';
\c :first_db
DROP DATABASE "regress_ku9 ""quoted"" \ db";
-- a dropped database's series are no longer exported
SELECT count(*) AS dropped_db_lines FROM unnest(string_to_array(ku9.metrics(), E'\n')) AS line
WHERE line LIKE '%regress_ku9 %';

DROP EXTENSION ku9;
