/*-------------------------------------------------------------------------
 *
 * metric_list.h
 *	  The metric families ku9 exports, one line each.
 *
 * This file is included several times with different definitions of
 * KU9_METRIC(id, name, type, scope, label, buckets, help):
 *
 *	id		enum constant used by callers of Ku9Metric*()
 *	name	Prometheus family name (counters end in _total)
 *	type	COUNTER, GAUGE or HISTOGRAM
 *	scope	CLUSTER (one series for the server) or DATABASE (a series per
 *			database, exported with a "database" label)
 *	label	name of the one caller-supplied label, or NULL
 *	buckets	KU9_BUCKETS(array) for histograms, KU9_NO_BUCKETS otherwise;
 *			the arrays live in metrics.c
 *	help	HELP text
 *
 * Adding a metric is adding a line here; recording it is one call, e.g.
 * Ku9MetricInc(KU9_M_QUEUE_SENT, queue_name).
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/metrics/metric_list.h
 *
 *-------------------------------------------------------------------------
 */

/* metrics about the metrics registry itself */
KU9_METRIC(KU9_M_BUILD_INFO, "ku9_build_info", GAUGE, CLUSTER, "version",
		   KU9_NO_BUCKETS,
		   "Version of the ku9 library loaded by the server; always 1.")
KU9_METRIC(KU9_M_METRICS_SERIES, "ku9_metrics_series", GAUGE, CLUSTER, NULL,
		   KU9_NO_BUCKETS,
		   "Metric series in use in shared memory.")
KU9_METRIC(KU9_M_METRICS_SERIES_MAX, "ku9_metrics_series_max", GAUGE, CLUSTER,
		   NULL, KU9_NO_BUCKETS,
		   "Capacity of the series table: ku9.metrics_max_series plus one start-up slot per metric family.")
KU9_METRIC(KU9_M_METRICS_DROPPED, "ku9_metrics_dropped_total", COUNTER,
		   CLUSTER, NULL, KU9_NO_BUCKETS,
		   "Updates dropped because the series table was full.")

/* core: identity */
KU9_METRIC(KU9_M_CLAIMS_PARSED, "ku9_claims_parsed_total", COUNTER, DATABASE,
		   NULL, KU9_NO_BUCKETS,
		   "Times request.jwt.claims was parsed (a backend's claims cache missed).")
KU9_METRIC(KU9_M_CLAIMS_INVALID, "ku9_claims_invalid_total", COUNTER, DATABASE,
		   NULL, KU9_NO_BUCKETS,
		   "Claims rejected: request.jwt.claims not a JSON object, or a bad sub or role claim.")
KU9_METRIC(KU9_M_CLAIMS_SIZE, "ku9_claims_size_bytes", HISTOGRAM, DATABASE,
		   NULL, KU9_BUCKETS(ku9_buckets_bytes),
		   "Size of the request.jwt.claims values parsed.")

/* docs: per collection (label "collection"), counted when the call runs */
KU9_METRIC(KU9_M_DOCS_INSERTED, "ku9_docs_inserted_total", COUNTER, DATABASE,
		   "collection", KU9_NO_BUCKETS,
		   "Documents stored by insert_one, insert_many and upserts.")
KU9_METRIC(KU9_M_DOCS_UPDATED, "ku9_docs_updated_total", COUNTER, DATABASE,
		   "collection", KU9_NO_BUCKETS,
		   "Documents changed by update_one, update_many and replace_one.")
KU9_METRIC(KU9_M_DOCS_DELETED, "ku9_docs_deleted_total", COUNTER, DATABASE,
		   "collection", KU9_NO_BUCKETS,
		   "Documents removed by delete_one and delete_many.")
KU9_METRIC(KU9_M_DOCS_QUERIES, "ku9_docs_queries_total", COUNTER, DATABASE,
		   "collection", KU9_NO_BUCKETS,
		   "Calls of find, find_one, find_page and count_documents.")

/* queue: per queue (label "queue"), counted when the call runs */
KU9_METRIC(KU9_M_QUEUE_SENT, "ku9_queue_sent_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Messages stored by ku9.send and ku9.send_batch.")
KU9_METRIC(KU9_M_QUEUE_READ, "ku9_queue_read_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Messages handed out by ku9.read and ku9.pop.")
KU9_METRIC(KU9_M_QUEUE_ACKED, "ku9_queue_acked_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Messages acknowledged by ku9.ack or taken by ku9.pop.")
KU9_METRIC(KU9_M_QUEUE_FAILED, "ku9_queue_failed_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Failed attempts recorded by ku9.fail.")
KU9_METRIC(KU9_M_QUEUE_DEAD, "ku9_queue_dead_lettered_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Messages moved to the dead letters after their last attempt.")
KU9_METRIC(KU9_M_QUEUE_WAITS, "ku9_queue_waits_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Calls of ku9.read that found the queue empty and slept on their latch.")
KU9_METRIC(KU9_M_QUEUE_WAKEUPS, "ku9_queue_wakeups_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Sleeping ku9.read calls woken by a committed send that then got messages.")

/* notify: counted when the call or the fan-out batch runs */
KU9_METRIC(KU9_M_NOTIFY_PUBLISHED, "ku9_notify_published_total", COUNTER, DATABASE,
		   "topic", KU9_NO_BUCKETS,
		   "Topic messages stored by ku9.publish.")
KU9_METRIC(KU9_M_NOTIFY_DIRECT, "ku9_notify_direct_total", COUNTER, DATABASE,
		   NULL, KU9_NO_BUCKETS,
		   "Direct notifications stored by ku9.notify_user.")
KU9_METRIC(KU9_M_NOTIFY_DELIVERED, "ku9_notify_delivered_total", COUNTER, DATABASE,
		   "via", KU9_NO_BUCKETS,
		   "Notifications handed to users: \"inbox\" (rows returned by ku9.inbox), \"realtime\" (NOTIFYs on users' channels by the fan-out).")
KU9_METRIC(KU9_M_PUSH_JOBS, "ku9_push_jobs_total", COUNTER, DATABASE,
		   NULL, KU9_NO_BUCKETS,
		   "Messages put into the queue ku9_push by the push fan-out (one per batch of devices).")
KU9_METRIC(KU9_M_PUSH_DEVICES, "ku9_push_devices_total", COUNTER, DATABASE,
		   NULL, KU9_NO_BUCKETS,
		   "Devices in the messages put into ku9_push.")

/* worker */
KU9_METRIC(KU9_M_HANDLER_OK, "ku9_handler_succeeded_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Queue messages whose handler returned, and that were acknowledged.")
KU9_METRIC(KU9_M_HANDLER_FAILED, "ku9_handler_failed_total", COUNTER, DATABASE,
		   "queue", KU9_NO_BUCKETS,
		   "Queue messages whose handler raised an error, recorded with ku9.fail.")
KU9_METRIC(KU9_M_WORKER_STARTS, "ku9_worker_starts_total", COUNTER, CLUSTER,
		   NULL, KU9_NO_BUCKETS,
		   "Background workers started by the ku9 launcher.")
KU9_METRIC(KU9_M_WORKER_RESTARTS, "ku9_worker_restarts_total", COUNTER, CLUSTER,
		   NULL, KU9_NO_BUCKETS,
		   "Background workers the ku9 launcher started again after they exited.")
KU9_METRIC(KU9_M_WORKERS_RUNNING, "ku9_workers_running", GAUGE, CLUSTER,
		   NULL, KU9_NO_BUCKETS,
		   "ku9 background workers running, as last seen by the launcher.")
KU9_METRIC(KU9_M_MAINTENANCE_RUNS, "ku9_maintenance_runs_total", COUNTER, DATABASE,
		   NULL, KU9_NO_BUCKETS,
		   "Runs of ku9.run_maintenance.")
KU9_METRIC(KU9_M_MAINTENANCE_DELETED, "ku9_maintenance_deleted_total", COUNTER, DATABASE,
		   "what", KU9_NO_BUCKETS,
		   "Rows deleted by ku9.run_maintenance, by kind.")

/* http: the embedded gateway (cluster-wide: it serves one database) */
KU9_METRIC(KU9_M_HTTP_REQUESTS, "ku9_http_requests_total", COUNTER, CLUSTER,
		   "status", KU9_NO_BUCKETS,
		   "HTTP requests the gateway answered, by status code.")
KU9_METRIC(KU9_M_HTTP_DURATION, "ku9_http_request_duration_seconds", HISTOGRAM, CLUSTER,
		   "route", KU9_BUCKETS(ku9_buckets_seconds),
		   "Time from a request's last byte to its response, by route (rpc, events, metrics, health, other).")
KU9_METRIC(KU9_M_HTTP_SSE_CLIENTS, "ku9_http_sse_clients", GAUGE, CLUSTER,
		   NULL, KU9_NO_BUCKETS,
		   "Event streams (GET /events) open on the gateway.")
KU9_METRIC(KU9_M_HTTP_SSE_EVENTS, "ku9_http_sse_events_total", COUNTER, CLUSTER,
		   NULL, KU9_NO_BUCKETS,
		   "Events sent on the gateway's event streams.")
KU9_METRIC(KU9_M_HTTP_DB_ERRORS, "ku9_http_db_connection_failures_total", COUNTER, CLUSTER,
		   NULL, KU9_NO_BUCKETS,
		   "Connections of the gateway to the database that failed or broke.")
