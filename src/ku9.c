/*-------------------------------------------------------------------------
 *
 * ku9.c
 *	  Library entry point: settings, shared memory and the hooks that wire
 *	  the modules together.
 *
 * _PG_init runs in every process that loads ku9.so.  It always defines the
 * settings a session may use.  When the library is being preloaded
 * (shared_preload_libraries) it also defines the postmaster-only settings,
 * reserves shared memory for the modules and chains the shmem hooks; without
 * preloading, every SQL function still works and the features that need
 * shared memory say so with a NOTICE (Ku9RequirePreloadNotice).
 *
 * Each module exposes Ku9<Module>ShmemSize() and Ku9<Module>ShmemInit();
 * this file only calls them.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/ku9.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "compat.h"
#include "ku9.h"
#include "docs/docs.h"
#include "http/gateway.h"
#include "notify/horizon.h"
#include "metrics/metrics.h"
#include "auth/throttle.h"
#include "queue/queue.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* settings */
char	   *ku9_database = NULL;
char	   *ku9_jwt_secret = NULL;
int			ku9_jwt_exp = 3600;
int			ku9_jwt_leeway = 10;
char	   *ku9_jwt_aud = NULL;
char	   *ku9_jwt_iss = NULL;
char	   *ku9_jwt_alg = NULL;
int			ku9_http_port = 3000;
char	   *ku9_http_listen_address = NULL;
int			ku9_http_workers = 1;
int			ku9_http_pool_size = 8;
char	   *ku9_http_conninfo = NULL;
char	   *ku9_http_cors_origins = NULL;
int			ku9_http_max_body = 1024 * 1024;
int			ku9_http_idle_timeout = 30;
int			ku9_http_request_timeout = 30000;
int			ku9_http_max_connections = 10000;
int			ku9_http_max_connections_per_address = 0;
int			ku9_http_heartbeat = 15;
int			ku9_metrics_max_series = 2048;
int			ku9_queue_max_wait = 60000;
int			ku9_auth_throttle_slots = 4096;
int			ku9_workers = 2;
int			ku9_maintenance_interval = 60;
int			ku9_push_batch_size = 500;

/* read by the notify and worker modules' SQL through current_setting() */
static int	notification_max_payload = 65536;
static int	notification_retention = 30 * 86400;
static int	session_retention = 7 * 86400;

/* read by the http module's SQL (ku9_api.pre_request) */
static int	rate_limit_per_user = 600;
static int	rate_limit_per_address = 1200;
static int	rate_limit_window = 60;

/* read by the auth module's SQL through current_setting() */
static int	bcrypt_cost = 10;
static int	password_min_length = 8;
static int	auth_max_failures = 5;
static int	auth_address_max_failures = 20;
static int	auth_failure_window = 900;
static int	auth_lockout = 900;
static bool auth_confirm_email = false;
static int	refresh_token_lifetime = 30 * 86400;
static int	refresh_reuse_interval = 10;
static int	auth_token_lifetime = 3600;

bool		ku9_preloaded = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;

/*
 * check_jwt_alg accepts the algorithms ku9 signs with.
 */
static bool
check_jwt_alg(char **newval, void **extra, GucSource source)
{
	if (strcmp(*newval, "HS256") == 0 || strcmp(*newval, "RS256") == 0 ||
		strcmp(*newval, "ES256") == 0)
		return true;
	GUC_check_errmsg("invalid value for parameter \"%s\": \"%s\"", "ku9.jwt_alg", *newval);
	GUC_check_errdetail("ku9 signs tokens with HS256, RS256 or ES256.");
	return false;
}
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Ku9DefineGucs defines ku9's settings.  Session-level settings are always
 * defined; postmaster-level ones only while preloading, since they cannot
 * take effect otherwise.
 */
void
Ku9DefineGucs(bool preloading)
{
	DefineCustomStringVariable("ku9.jwt_secret",
							   gettext_noop("Secret for HS256 JSON Web Tokens (at least 32 bytes)."),
							   gettext_noop("Readable only by superusers and members of pg_read_all_settings."),
							   &ku9_jwt_secret,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.jwt_exp",
							gettext_noop("Lifetime of the access tokens ku9 issues."),
							NULL,
							&ku9_jwt_exp,
							3600, 30, 30 * 24 * 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.jwt_leeway",
							gettext_noop("Clock skew allowed when checking a token's exp, nbf and iat."),
							NULL,
							&ku9_jwt_leeway,
							10, 0, 300,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ku9.jwt_aud",
							   gettext_noop("Audience ku9 puts in the tokens it issues and requires in those it verifies; empty: not checked."),
							   NULL,
							   &ku9_jwt_aud,
							   "authenticated",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("ku9.jwt_alg",
							   gettext_noop("Algorithm of the tokens ku9 issues: HS256 (ku9.jwt_secret), or RS256/ES256 (the newest key from ku9.rotate_signing_key)."),
							   NULL,
							   &ku9_jwt_alg,
							   "HS256",
							   PGC_SUSET,
							   0,
							   check_jwt_alg, NULL, NULL);

	DefineCustomStringVariable("ku9.jwt_iss",
							   gettext_noop("Issuer ku9 puts in the tokens it issues and requires in those it verifies; empty: not checked."),
							   NULL,
							   &ku9_jwt_iss,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.bcrypt_cost",
							gettext_noop("bcrypt cost of new password hashes."),
							NULL, &bcrypt_cost, 10, 4, 15,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.password_min_length",
							gettext_noop("Shortest password accepted, in characters."),
							gettext_noop("Passwords longer than 72 bytes are refused, since bcrypt would ignore the rest."),
							&password_min_length, 8, 6, 72,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.auth_max_failures",
							gettext_noop("Failed sign-ins for one email, within ku9.auth_failure_window, before it is locked."),
							NULL, &auth_max_failures, 5, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.auth_address_max_failures",
							gettext_noop("Failed sign-ins from one client address, within ku9.auth_failure_window, before it is locked."),
							NULL, &auth_address_max_failures, 20, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.auth_failure_window",
							gettext_noop("Window in which failed sign-ins are counted."),
							NULL, &auth_failure_window, 900, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.auth_lockout",
							gettext_noop("How long an email or address stays locked after too many failed sign-ins."),
							NULL, &auth_lockout, 900, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("ku9.auth_confirm_email",
							 gettext_noop("Whether users must confirm their email before they can sign in."),
							 NULL, &auth_confirm_email, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.refresh_token_lifetime",
							gettext_noop("How long a session lasts without a refresh."),
							NULL, &refresh_token_lifetime, 30 * 86400, 60, 365 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.refresh_reuse_interval",
							gettext_noop("How long after a refresh the same refresh token may be used again (concurrent refreshes) before reuse revokes the session."),
							NULL, &refresh_reuse_interval, 10, 0, 300,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.auth_token_lifetime",
							gettext_noop("How long a password-reset or email-confirmation token stays valid."),
							NULL, &auth_token_lifetime, 3600, 60, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.queue_max_wait",
							gettext_noop("Longest wait_ms a ku9.read call may ask for."),
							NULL,
							&ku9_queue_max_wait,
							60000, 0, 300 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.max_document_size",
							gettext_noop("Largest document a collection stores."),
							gettext_noop("Larger inserts and updates fail with SQLSTATE 54000."),
							&ku9_max_document_size,
							16 * 1024 * 1024, 1024, MaxAllocSize / 2,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.notification_max_payload",
							gettext_noop("Largest payload of a notification."),
							gettext_noop("Larger ones fail with SQLSTATE 54000."),
							&notification_max_payload, 65536, 128, 16 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.notification_retention",
							gettext_noop("How long notifications are kept, unless their topic says otherwise."),
							gettext_noop("ku9.run_maintenance deletes older ones."),
							&notification_retention, 30 * 86400, 60, 3650 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.session_retention",
							gettext_noop("How long ended sessions are kept before ku9.run_maintenance deletes them with their refresh tokens."),
							NULL,
							&session_retention, 7 * 86400, 0, 3650 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.rate_limit_per_user",
							gettext_noop("Requests one user may make through ku9_api.pre_request in ku9.rate_limit_window; 0 no limit."),
							NULL,
							&rate_limit_per_user, 600, 0, 100000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.rate_limit_per_address",
							gettext_noop("Requests one client address may make through ku9_api.pre_request in ku9.rate_limit_window; 0 no limit."),
							NULL,
							&rate_limit_per_address, 1200, 0, 100000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.rate_limit_window",
							gettext_noop("Window of the request rate limits, and how long a key over its limit is refused."),
							NULL,
							&rate_limit_window, 60, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	if (!preloading)
		return;

	DefineCustomIntVariable("ku9.workers",
							gettext_noop("Background workers that run queue handlers, fan-out and maintenance."),
							gettext_noop("They run in the database ku9.database; 0 starts none."),
							&ku9_workers, 2, 0, KU9_MAX_WORKERS,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.maintenance_interval",
							gettext_noop("How often a background worker runs ku9.run_maintenance; 0 never."),
							NULL,
							&ku9_maintenance_interval, 60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.push_batch_size",
							gettext_noop("Devices per message of the queue ku9_push, and users per realtime fan-out batch."),
							NULL,
							&ku9_push_batch_size, 500, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("ku9.database",
							   gettext_noop("Database in which ku9's background workers run."),
							   NULL,
							   &ku9_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.http_port",
							gettext_noop("TCP port of ku9's embedded HTTP gateway; 0 turns it off."),
							NULL,
							&ku9_http_port,
							3000, 0, 65535,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ku9.http_listen_address",
							   gettext_noop("Address the embedded HTTP gateway listens on; * for all."),
							   NULL, &ku9_http_listen_address, "127.0.0.1",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_workers",
							gettext_noop("Background workers that serve the embedded HTTP gateway."),
							gettext_noop("Each has its own listening socket (SO_REUSEPORT) and event loop."),
							&ku9_http_workers, 1, 0, KU9_MAX_HTTP_WORKERS,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_pool_size",
							gettext_noop("Database connections of each HTTP gateway worker."),
							NULL, &ku9_http_pool_size, 8, 1, 100,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("ku9.http_conninfo",
							   gettext_noop("libpq connection string of the HTTP gateway's database connections."),
							   gettext_noop("Empty: ku9_authenticator over the server's first Unix socket to ku9.database."),
							   &ku9_http_conninfo, "",
							   PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_idle_timeout",
							gettext_noop("Seconds the HTTP gateway keeps a connection that sends nothing."),
							NULL, &ku9_http_idle_timeout, 30, 1, 3600,
							PGC_POSTMASTER, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_request_timeout",
							gettext_noop("statement_timeout of the HTTP gateway's database work."),
							NULL, &ku9_http_request_timeout, 30000, 0, INT_MAX,
							PGC_POSTMASTER, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_max_connections",
							gettext_noop("HTTP connections each gateway worker accepts at once."),
							NULL, &ku9_http_max_connections, 10000, 16, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_max_connections_per_address",
							gettext_noop("HTTP connections each gateway worker accepts from one client address; 0: no limit."),
							NULL, &ku9_http_max_connections_per_address, 0, 0, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("ku9.http_cors_origins",
							   gettext_noop("Origins browsers may call the HTTP gateway from: *, a comma-separated list, or empty for none."),
							   NULL, &ku9_http_cors_origins, "*",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_max_body",
							gettext_noop("Largest request body the HTTP gateway accepts; larger ones get 413."),
							NULL, &ku9_http_max_body, 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("ku9.http_heartbeat",
							gettext_noop("Seconds between heartbeats (and re-reads) of the gateway's event streams."),
							NULL, &ku9_http_heartbeat, 15, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.auth_throttle_slots",
							gettext_noop("Emails and client addresses whose failed sign-ins are tracked in shared memory."),
							NULL, &ku9_auth_throttle_slots, 4096, 64, 1024 * 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("ku9.metrics_max_series",
							gettext_noop("Most metric series kept in shared memory."),
							gettext_noop("A series is one metric with one set of label values."),
							&ku9_metrics_max_series,
							2048, 64, 1024 * 1024,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

/*
 * Ku9RequirePreloadNotice tells the user that a feature needs ku9 in
 * shared_preload_libraries.  Only call it when ku9_preloaded is false.
 */
void
Ku9RequirePreloadNotice(const char *feature)
{
	ereport(NOTICE,
			errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			errmsg("ku9 %s are not available because ku9 is not preloaded", feature),
			errhint("Add ku9 to \"shared_preload_libraries\" and restart the server."));
}

/*
 * ku9_shmem_request reserves ku9's shared memory and locks.
 */
static void
ku9_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(Ku9MetricsShmemSize());
	RequestAddinShmemSpace(Ku9QueueShmemSize());
	RequestAddinShmemSpace(Ku9NotifyShmemSize());
	RequestAddinShmemSpace(Ku9ThrottleShmemSize());
	RequestAddinShmemSpace(Ku9WorkerShmemSize());
	RequestNamedLWLockTranche("ku9", KU9_LWLOCK_COUNT);
}

/*
 * ku9_shmem_startup creates or attaches to the modules' shared state.
 */
static void
ku9_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	Ku9MetricsShmemInit();
	Ku9QueueShmemInit();
	Ku9NotifyShmemInit();
	Ku9ThrottleShmemInit();
	Ku9WorkerShmemInit();
}

/*
 * _PG_init is called when the library is loaded.
 */
void
_PG_init(void)
{
	Ku9DefineGucs(process_shared_preload_libraries_in_progress);

	if (!process_shared_preload_libraries_in_progress)
		return;

	ku9_preloaded = true;
	MarkGUCPrefixReserved("ku9");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ku9_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ku9_shmem_startup;

	Ku9RegisterLauncher();
}
