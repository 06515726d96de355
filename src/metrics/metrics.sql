/*
 * metrics: shared-memory counters, Prometheus exposition, ku9.stats
 */

CREATE FUNCTION ku9.metrics() RETURNS text
    AS 'MODULE_PATHNAME', 'ku9_metrics'
    LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION ku9.metrics() IS
    'every ku9 metric in the Prometheus text exposition format';

CREATE FUNCTION ku9.metric_samples(
    OUT family text,
    OUT name text,
    OUT type text,
    OUT labels jsonb,
    OUT value double precision)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ku9_metric_samples'
    LANGUAGE C STRICT VOLATILE PARALLEL SAFE ROWS 100;
COMMENT ON FUNCTION ku9.metric_samples() IS
    'the samples of ku9.metrics(), one row each';

CREATE VIEW ku9.stats AS
    SELECT family, name, type, labels, value FROM ku9.metric_samples();
COMMENT ON VIEW ku9.stats IS
    'ku9 metrics as rows: the same samples as ku9.metrics()';

REVOKE ALL ON FUNCTION ku9.metrics(), ku9.metric_samples() FROM PUBLIC;
REVOKE ALL ON ku9.stats FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ku9.metrics(), ku9.metric_samples() TO ku9_service, pg_monitor;
GRANT SELECT ON ku9.stats TO ku9_service, pg_monitor;
-- monitoring roles (postgres_exporter and the like) read the metrics
GRANT USAGE ON SCHEMA ku9 TO pg_monitor;
