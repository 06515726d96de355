/*-------------------------------------------------------------------------
 *
 * gateway.c
 *	  ku9's embedded HTTP gateway: PostgREST's protocol for ku9_api, server-
 *	  sent events, /metrics and /health, in background workers.
 *
 * Processes.  The launcher (src/worker/worker.c) starts ku9.http_workers
 * gateway workers ("ku9 gateway N") when ku9.http_port is not 0, and starts
 * one again when it has exited.  Each worker binds its own listening socket
 * to ku9.http_listen_address:ku9.http_port with SO_REUSEPORT, so the kernel
 * spreads connections over the workers.
 *
 * A worker is one thread with one event loop: a WaitEventSet over its latch,
 * the epoll descriptor of libmicrohttpd (run in "external polling" mode: it
 * parses HTTP, ku9 never does) and the sockets of its libpq connections.
 * Nothing in the loop blocks: HTTP connections are read and written as they
 * become ready, and database work goes to a pool of ku9.http_pool_size libpq
 * connections to ku9.database, each with at most one request in flight, in
 * pipeline mode.  A request waiting for the database is a suspended
 * libmicrohttpd connection; requests beyond the pool wait in a queue.  So a
 * slow query delays only the requests behind it in that connection, never
 * the I/O of the others.
 *
 * A request is one transaction of one round trip, as PostgREST makes it:
 * ku9._gateway_begin(token, method, path, headers, cookies, read_only, kind)
 * (verify the bearer token with ku9's verifier, switch to its role, set the
 * request.* settings, ku9_api.pre_request()), then the ku9_api function,
 * then Sync.  The function is called by name with the JSON body's keys as
 * named arguments, through jsonb_to_record as PostgREST does; the functions
 * come from a catalog read at start and again on NOTIFY pgrst.
 *
 * Events.  GET /events is a stream of the user's notifications.  One more
 * libpq connection per worker LISTENs on ku9_user_<id> and ku9_topic_<name>
 * for the streams it has open (a background worker's own session cannot
 * receive notifications).  A notification marks the streams concerned;
 * each then reads ku9.events_after(cursor) through the pool, as its
 * user, and writes what it got.  The cursor is the last notification id
 * sent, which is also each event's id, so Last-Event-ID resumes where a
 * dropped stream stopped.  Every ku9.http_heartbeat seconds a stream gets a
 * comment line and reads again (picking up new subscriptions, and ending a
 * stream whose token expired or whose session ended).
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/http/gateway.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "libpq-fe.h"

#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "libpq/pqsignal.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ku9.h"
#include "http/gateway.h"
#include "metrics/metrics.h"

/* rows a stream reads per round trip */
#define EVENTS_PER_READ 100
/* streams one JOB_BATCH reads */
#define STREAMS_PER_BATCH 100
/* a stream whose client does not keep up is closed past this much unsent */
#define STREAM_MAX_BACKLOG (1024 * 1024)
/* how long a stopping worker lets requests in flight finish */
#define STOP_GRACE_MS 5000
/* a broken database connection is tried again after this */
#define RECONNECT_DELAY_MS 1000
/* the loop's longest sleep: timers (heartbeats, generation) run this often */
#define TICK_MS 1000
/* header names and values in request.headers are cut at this */
#define MAX_JSON_NESTING 512

typedef enum Route
{
	ROUTE_RPC,
	ROUTE_EVENTS,
	ROUTE_METRICS,
	ROUTE_HEALTH,
	ROUTE_OTHER
} Route;

static const char *const route_names[] = {"rpc", "events", "metrics", "health", "other"};

typedef enum JobKind
{
	JOB_RPC,
	JOB_EVENTS,					/* a stream's first read, or a later one */
	JOB_METRICS,
	JOB_HEALTH,
	JOB_CATALOG,
	JOB_BATCH					/* reads of many streams that a NOTIFY woke */
} JobKind;

struct Request;
struct Stream;

/* database work waiting for, or on, a pool connection */
typedef struct Job
{
	JobKind		kind;
	dlist_node	node;			/* in job_queue while waiting */
	bool		queued;
	bool		running;
	struct Request *req;		/* the HTTP request it answers, if any */
	struct Stream *stream;		/* the stream it reads for, if any */
	List	   *streams;		/* JOB_BATCH: the streams it reads for */
} Job;

/* a ku9_api function as the catalog describes it */
typedef struct FuncArg
{
	char	   *name;			/* as in the JSON body */
	char	   *quoted;			/* quote_ident(name) */
	char	   *type;			/* format_type() */
} FuncArg;

typedef struct Variant
{
	uint64		mask;			/* which arguments are passed */
	bool		get;			/* arguments are text from the query string */
	int			stmt;			/* prepared statement number */
	char	   *sql;
} Variant;

typedef struct Func
{
	char	   *name;
	char	   *quoted;
	char		volatility;		/* provolatile */
	bool		retset;
	bool		retvoid;
	int			nargs;
	int			nrequired;		/* arguments without a default */
	FuncArg    *args;
	List	   *variants;
} Func;

/* one HTTP request, from its headers to its response */
typedef struct Request
{
	MemoryContext cxt;
	struct MHD_Connection *mc;
	Route		route;
	const char *method;
	char	   *url;
	bool		get;			/* GET or HEAD */
	StringInfoData body;
	bool		body_too_large;
	bool		dispatched;
	bool		suspended;
	bool		orphaned;		/* libmicrohttpd is done with it; free when the job ends */
	TimestampTz started;
	Job			job;

	/* for the database */
	char	   *token;
	char	   *headers;		/* request.headers */
	char	   *cookies;		/* request.cookies */
	char	   *args;			/* JSON object of the arguments */
	char	   *fname;
	bool		want_object;	/* Accept: application/vnd.pgrst.object+json */
	bool		want_count;		/* Prefer: count=... */
	int			stmt;			/* chosen at dispatch */
	char	   *sql;
	int			nparams;		/* 1: the statement takes the arguments as $1 */
	bool		retset;
	bool		retvoid;
	char	   *last_event_id;
	char	   *collections;	/* ?collections=a,b as an array literal */

	/* the response */
	bool		responded;
	unsigned int status;
	char	   *resp_body;
	size_t		resp_len;
	const char *content_type;
	char	   *extra_header[2][2];
	struct Stream *stream;		/* GET /events once open */
} Request;

/* an open GET /events stream */
typedef struct Stream
{
	dlist_node	node;			/* in streams */
	MemoryContext cxt;
	struct MHD_Connection *mc;
	char	   *token;
	char	   *headers;
	char	   *cookies;
	char	   *collections;	/* asked for, as an array literal */
	List	   *follows;		/* "ku9_docs_<name>" channel + access letter, per collection followed */
	char		user_id[37];
	int64		cursor;
	List	   *channels;		/* names of the channels it is in */
	StringInfoData out;			/* unsent bytes from out_off */
	size_t		out_off;
	bool		suspended;		/* waiting in the reader callback */
	bool		dirty;			/* needs a read */
	bool		closing;		/* end the stream once out is sent */
	bool		gone;			/* libmicrohttpd has closed it */
	bool		batched;		/* in a JOB_BATCH, waiting or running */
	bool		want_solo;		/* the heartbeat's read with the token is due */
	TimestampTz last_read;
	TimestampTz last_write;
	Job			job;
} Stream;

/* a channel the listener connection listens on for the streams */
typedef struct Channel
{
	char		name[NAMEDATALEN];
	List	   *streams;
	bool		listening;
} Channel;

typedef enum ConnState
{
	CONN_DOWN,
	CONN_CONNECTING,
	CONN_READY
} ConnState;

/* a libpq connection of the pool, or the listener */
typedef struct Conn
{
	PGconn	   *pg;
	ConnState	state;
	bool		listener;
	bool		stale;			/* reconnect when idle: the catalog changed */
	bool		want_write;
	TimestampTz retry_at;
	Bitmapset  *prepared;		/* statement numbers prepared on it */
	Job		   *job;			/* in flight */
	int			commands;		/* commands sent before the Sync */
	int			cmd_pos;		/* the command whose results come now */
	int			cmd_key[8];		/* per command: the statement it prepares, or 0 */
	PGresult   *error;			/* the first error of the job */
	PGresult   *result;			/* the last rows of the job */
	bool		listen_busy;	/* listener: a LISTEN batch in flight */
	int			event_pos;		/* position in the wait set, or -1 */
} Conn;

/* ------------------------------------------------------------------------
 * State of this worker
 * ------------------------------------------------------------------------
 */

static int	gateway_index;
static uint32 gateway_generation;
static struct MHD_Daemon *daemon_mhd = NULL;
static MemoryContext gateway_cxt;	/* what lives as long as the worker */
static MemoryContext loop_cxt;	/* scratch, reset every pass of the loop */
static MemoryContext catalog_cxt = NULL;
static HTAB *catalog = NULL;	/* name -> List of Func */
static bool catalog_loaded = false;
static bool catalog_wanted = true;
static TimestampTz catalog_retry_at = 0;	/* after a failed read */
static int	next_stmt = 1;
static Conn *pool;
static int	pool_size;
static Conn listener;
static dlist_head job_queue = DLIST_STATIC_INIT(job_queue);
static Job	catalog_job = {JOB_CATALOG};
static dlist_head streams = DLIST_STATIC_INIT(streams);
static int	nstreams = 0;
static List *batch_pending = NIL;	/* streams a NOTIFY woke, for the next JOB_BATCH */
static HTAB *channels = NULL;
static bool channels_changed = false;
static int	in_flight = 0;		/* requests dispatched, not answered */
static bool stopping = false;
static bool wait_set_stale = true;
static bool listener_pgrst = false;	/* the listener listens on pgrst */
static List *just_listened = NIL;	/* channels of the LISTEN in flight */

static const char *const begin_sql =
"SELECT ku9._gateway_begin($1, $2, $3, $4, $5, $6, $7)";
static const char *const events_sql =
"SELECT user_id, cursor, n, stream, topics, follows, held FROM ku9.events_after($1, $2, $3)";
static const char *const batch_sql =
"SELECT i, cursor, n, stream, held FROM ku9._gateway_read($1::uuid[], $2::bigint[], $3)";
static const char *const catalog_sql =
"SELECT p.proname, quote_ident(p.proname), p.provolatile, p.proretset,"
"       p.prorettype = 'pg_catalog.void'::pg_catalog.regtype, p.pronargs, p.pronargdefaults,"
"       a.i, a.n, quote_ident(a.n), pg_catalog.format_type(a.t, NULL)"
"  FROM pg_catalog.pg_proc p"
"  LEFT JOIN LATERAL unnest(p.proargnames[1:p.pronargs], p.proargtypes::pg_catalog.oid[])"
"       WITH ORDINALITY AS a(n, t, i) ON true"
" WHERE p.pronamespace = 'ku9_api'::pg_catalog.regnamespace AND p.prokind = 'f'"
"   AND (p.proargmodes IS NULL OR NOT p.proargmodes[1:p.pronargs] && ARRAY['o', 'v', 't']::\"char\"[])"
" ORDER BY p.oid, a.i";

/* statement numbers of the fixed statements */
#define STMT_BEGIN 0
#define STMT_EVENTS (-1)
#define STMT_BATCH (-2)
#define STMT_FIRST STMT_BATCH	/* the lowest */

static void respond(Request *req, unsigned int status, const char *body, const char *content_type);
static void respond_error(Request *req, unsigned int status, const char *code,
						  const char *message, const char *details, const char *hint);
static void stream_wake(Stream *s);
static void stream_close(Stream *s);
static void enqueue(Job *job, bool first);

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------
 */

/*
 * json_str appends s as a JSON string, or null.
 */
static void
json_str(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, s);
}

/*
 * error_json is PostgREST's error object.
 */
static char *
error_json(const char *code, const char *message, const char *details, const char *hint)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"code\":");
	json_str(&buf, code);
	appendStringInfoString(&buf, ",\"details\":");
	json_str(&buf, details);
	appendStringInfoString(&buf, ",\"hint\":");
	json_str(&buf, hint);
	appendStringInfoString(&buf, ",\"message\":");
	json_str(&buf, message);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * status_for_sqlstate is PostgREST's mapping of SQLSTATEs to HTTP statuses;
 * PTxyz (a function's own) means status xyz.
 */
static unsigned int
status_for_sqlstate(const char *state, bool authenticated)
{
	if (state == NULL || strlen(state) != 5)
		return 500;
	if (state[0] == 'P' && state[1] == 'T' && isdigit((unsigned char) state[2]) &&
		isdigit((unsigned char) state[3]) && isdigit((unsigned char) state[4]))
	{
		int			s = atoi(state + 2);

		return (s >= 100 && s <= 599) ? s : 500;
	}
	if (strcmp(state, "42501") == 0)
		return authenticated ? 403 : 401;
	if (strcmp(state, "23503") == 0 || strcmp(state, "23505") == 0)
		return 409;
	if (strcmp(state, "25006") == 0)
		return 405;
	if (strcmp(state, "42883") == 0 || strcmp(state, "42P01") == 0)
		return 404;
	if (strcmp(state, "42P17") == 0)
		return 500;
	if (strcmp(state, "53400") == 0)
		return 500;
	if (strcmp(state, "P0001") == 0)
		return 400;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0)
		return 503;
	if (strncmp(state, "0L", 2) == 0 || strncmp(state, "0P", 2) == 0 ||
		strncmp(state, "28", 2) == 0)
		return 403;
	if (strncmp(state, "09", 2) == 0 || strncmp(state, "25", 2) == 0 ||
		strncmp(state, "2D", 2) == 0 || strncmp(state, "38", 2) == 0 ||
		strncmp(state, "39", 2) == 0 || strncmp(state, "3B", 2) == 0 ||
		strncmp(state, "40", 2) == 0 || strncmp(state, "54", 2) == 0 ||
		strncmp(state, "55", 2) == 0 || strncmp(state, "57", 2) == 0 ||
		strncmp(state, "58", 2) == 0 || strncmp(state, "F0", 2) == 0 ||
		strncmp(state, "HV", 2) == 0 || strncmp(state, "P0", 2) == 0 ||
		strncmp(state, "XX", 2) == 0)
		return 500;
	return 400;
}

/*
 * header_contains: whether a comma-separated header value has item
 * (case-insensitive, parameters after ';' ignored).
 */
static bool
header_contains(const char *value, const char *item)
{
	size_t		len = strlen(item);
	const char *p = value;

	while (p != NULL && *p)
	{
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (pg_strncasecmp(p, item, len) == 0 &&
			(p[len] == '\0' || p[len] == ',' || p[len] == ';' || p[len] == ' '))
			return true;
		p = strchr(p, ',');
	}
	return false;
}

/*
 * cors_origin returns the Access-Control-Allow-Origin value for a request's
 * Origin, or NULL: ku9.http_cors_origins is '*' (any origin), '' (none) or
 * a comma-separated list.
 */
static const char *
cors_origin(struct MHD_Connection *mc)
{
	const char *origin = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin");
	const char *list = ku9_http_cors_origins;
	size_t		len;

	if (origin == NULL || list == NULL || list[0] == '\0')
		return NULL;
	if (strcmp(list, "*") == 0)
		return "*";
	len = strlen(origin);
	for (const char *p = list; *p;)
	{
		const char *end;

		while (*p == ' ' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',' && *end != ' ')
			end++;
		if ((size_t) (end - p) == len && strncmp(p, origin, len) == 0)
			return origin;
		p = end;
	}
	return NULL;
}

static void
add_cors(struct MHD_Connection *mc, struct MHD_Response *resp)
{
	const char *origin = cors_origin(mc);

	if (origin == NULL)
		return;
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
	if (strcmp(origin, "*") != 0)
		MHD_add_response_header(resp, "Vary", "Origin");
	MHD_add_response_header(resp, "Access-Control-Expose-Headers",
							"Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit");
}

/* ------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------
 */

/*
 * respond records a request's response; it goes out when libmicrohttpd
 * calls the handler again (at once, or after a resume).
 */
static void
respond(Request *req, unsigned int status, const char *body, const char *content_type)
{
	MemoryContext old = MemoryContextSwitchTo(req->cxt);

	req->responded = true;
	req->status = status;
	req->resp_body = body ? pstrdup(body) : NULL;
	req->resp_len = body ? strlen(body) : 0;
	req->content_type = content_type;
	MemoryContextSwitchTo(old);
	if (req->suspended && !req->orphaned)
	{
		req->suspended = false;
		MHD_resume_connection(req->mc);
	}
}

static void
respond_error(Request *req, unsigned int status, const char *code,
			  const char *message, const char *details, const char *hint)
{
	respond(req, status, error_json(code, message, details, hint),
			"application/json; charset=utf-8");
}

/*
 * count_response records an answered request in ku9.metrics().
 */
static void
count_response(Request *req, unsigned int status)
{
	char		label[8];

	snprintf(label, sizeof(label), "%u", status);
	Ku9MetricInc(KU9_M_HTTP_REQUESTS, label);
	Ku9MetricObserve(KU9_M_HTTP_DURATION, route_names[req->route],
					 (double) (GetCurrentTimestamp() - req->started) / 1000000.0);
}

/*
 * queue_response hands a recorded response to libmicrohttpd.
 */
static enum MHD_Result
queue_response(Request *req)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(req->resp_len, req->resp_body ? req->resp_body : "",
										   MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (req->content_type)
		MHD_add_response_header(resp, "Content-Type", req->content_type);
	for (int i = 0; i < 2; i++)
		if (req->extra_header[i][0])
			MHD_add_response_header(resp, req->extra_header[i][0], req->extra_header[i][1]);
	add_cors(req->mc, resp);
	ret = MHD_queue_response(req->mc, req->status, resp);
	MHD_destroy_response(resp);

	count_response(req, req->status);
	return ret;
}

/* ------------------------------------------------------------------------
 * The catalog of ku9_api functions
 * ------------------------------------------------------------------------
 */

typedef struct CatalogEntry
{
	char		name[NAMEDATALEN];
	List	   *funcs;
} CatalogEntry;

/*
 * load_catalog builds the catalog from the rows of catalog_sql.
 */
static void
load_catalog(PGresult *res)
{
	HASHCTL		ctl;
	MemoryContext old;
	Func	   *f = NULL;
	char	   *last_oid_row = NULL;

	if (catalog_cxt)
		MemoryContextDelete(catalog_cxt);
	catalog_cxt = AllocSetContextCreate(gateway_cxt, "ku9 gateway catalog", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(catalog_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(CatalogEntry);
	ctl.hcxt = catalog_cxt;
	catalog = hash_create("ku9 gateway catalog", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	for (int row = 0; row < PQntuples(res); row++)
	{
		const char *name = PQgetvalue(res, row, 0);
		bool		first_arg = PQgetisnull(res, row, 7) || strcmp(PQgetvalue(res, row, 7), "1") == 0;

		/* rows come per function in argument order; a function starts anew at argument 1 */
		if (f == NULL || first_arg || last_oid_row == NULL || strcmp(last_oid_row, name) != 0)
		{
			CatalogEntry *e;
			bool		found;

			if (strlen(name) >= NAMEDATALEN)
				continue;
			f = palloc0(sizeof(Func));
			f->name = pstrdup(name);
			f->quoted = pstrdup(PQgetvalue(res, row, 1));
			f->volatility = PQgetvalue(res, row, 2)[0];
			f->retset = PQgetvalue(res, row, 3)[0] == 't';
			f->retvoid = PQgetvalue(res, row, 4)[0] == 't';
			f->nargs = atoi(PQgetvalue(res, row, 5));
			f->nrequired = f->nargs - atoi(PQgetvalue(res, row, 6));
			f->args = palloc0(sizeof(FuncArg) * Max(f->nargs, 1));
			e = hash_search(catalog, name, HASH_ENTER, &found);
			if (!found)
				e->funcs = NIL;
			e->funcs = lappend(e->funcs, f);
			last_oid_row = f->name;
		}
		if (!PQgetisnull(res, row, 7))
		{
			int			i = atoi(PQgetvalue(res, row, 7)) - 1;

			if (i >= 0 && i < f->nargs && !PQgetisnull(res, row, 8))
			{
				f->args[i].name = pstrdup(PQgetvalue(res, row, 8));
				f->args[i].quoted = pstrdup(PQgetvalue(res, row, 9));
				f->args[i].type = pstrdup(PQgetvalue(res, row, 10));
			}
		}
	}
	MemoryContextSwitchTo(old);
	catalog_loaded = true;
	/* statements of the old catalog stay prepared on the connections: start them afresh */
	for (int i = 0; i < pool_size; i++)
		pool[i].stale = true;
}

/*
 * func_usable: every argument has a name (PostgREST cannot call others with
 * named arguments either), and there are at most 64.
 */
static bool
func_usable(Func *f)
{
	if (f->nargs > 64)
		return false;
	for (int i = 0; i < f->nargs; i++)
		if (f->args[i].name == NULL)
			return false;
	return true;
}

/*
 * build_call writes the SQL that calls f with the arguments of mask, from
 * the JSON object $1: jsonb_to_record gives each argument its type (for
 * GET, every argument comes as text and is cast).
 */
static char *
build_call(Func *f, uint64 mask, bool get)
{
	StringInfoData call;
	StringInfoData cols;
	StringInfoData sql;
	bool		any = false;

	initStringInfo(&call);
	initStringInfo(&cols);
	appendStringInfo(&call, "ku9_api.%s(", f->quoted);
	for (int i = 0; i < f->nargs; i++)
	{
		if (!(mask & (UINT64CONST(1) << i)))
			continue;
		if (any)
		{
			appendStringInfoString(&call, ", ");
			appendStringInfoString(&cols, ", ");
		}
		any = true;
		if (get)
		{
			appendStringInfo(&call, "%s := _a.%s::%s", f->args[i].quoted, f->args[i].quoted, f->args[i].type);
			appendStringInfo(&cols, "%s text", f->args[i].quoted);
		}
		else
		{
			appendStringInfo(&call, "%s := _a.%s", f->args[i].quoted, f->args[i].quoted);
			appendStringInfo(&cols, "%s %s", f->args[i].quoted, f->args[i].type);
		}
	}
	appendStringInfoChar(&call, ')');

	initStringInfo(&sql);
	if (f->retset)
		appendStringInfo(&sql, "SELECT coalesce(pg_catalog.json_agg(_r), '[]')::text, pg_catalog.count(*) FROM %s%s%s%s AS _r",
						 any ? "pg_catalog.jsonb_to_record($1::jsonb) AS _a(" : "",
						 any ? cols.data : "",
						 any ? ") CROSS JOIN LATERAL " : "",
						 call.data);
	else if (f->retvoid)
		appendStringInfo(&sql, "SELECT NULL::text, 0 FROM %s%s%sLATERAL (SELECT %s) _r",
						 any ? "pg_catalog.jsonb_to_record($1::jsonb) AS _a(" : "",
						 any ? cols.data : "",
						 any ? "), " : "",
						 call.data);
	else
		appendStringInfo(&sql, "SELECT pg_catalog.to_jsonb(%s)::text, 1%s%s%s",
						 call.data,
						 any ? " FROM pg_catalog.jsonb_to_record($1::jsonb) AS _a(" : "",
						 any ? cols.data : "",
						 any ? ")" : "");
	pfree(call.data);
	pfree(cols.data);
	return sql.data;
}

/*
 * keys_of parses a JSON object and returns its top-level keys, or NULL
 * with *error set.  PostgreSQL's parser throws; the error is caught here,
 * inside libmicrohttpd's callback.
 */
static List *
keys_of(const char *json, const char **error)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *volatile keys = NIL;
	volatile bool failed = false;

	*error = NULL;
	PG_TRY();
	{
		Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		int			depth = 0;

		if (!JB_ROOT_IS_OBJECT(jb))
			failed = true;
		else
		{
			it = JsonbIteratorInit(&jb->root);
			while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
			{
				if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
					depth++;
				else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
					depth--;
				else if (tok == WJB_KEY && depth == 1)
					keys = lappend(keys, pnstrdup(v.val.string.val, v.val.string.len));
			}
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		failed = true;
		*error = "not valid JSON";
	}
	PG_END_TRY();
	if (failed)
	{
		if (*error == NULL)
			*error = "not a JSON object";
		return NULL;
	}
	return keys;
}

/*
 * resolve picks the function of req->fname whose arguments match the keys
 * given, and the statement calling it with them.  False: it answered 404
 * (or 405 for GET of a volatile function).
 */
static bool
resolve(Request *req, List *keys)
{
	CatalogEntry *e = NULL;
	ListCell   *lc;

	if (strlen(req->fname) < NAMEDATALEN)
		e = hash_search(catalog, req->fname, HASH_FIND, NULL);
	if (e != NULL)
	{
		foreach(lc, e->funcs)
		{
			Func	   *f = lfirst(lc);
			uint64		mask = 0;
			bool		ok = func_usable(f);
			ListCell   *kc;
			MemoryContext old;
			Variant    *v = NULL;

			foreach(kc, keys)
			{
				int			i;

				if (!ok)
					break;
				for (i = 0; i < f->nargs; i++)
					if (strcmp(f->args[i].name, lfirst(kc)) == 0)
						break;
				if (i == f->nargs)
					ok = false;
				else
					mask |= UINT64CONST(1) << i;
			}
			for (int i = 0; ok && i < f->nrequired; i++)
				if (!(mask & (UINT64CONST(1) << i)))
					ok = false;
			if (!ok)
				continue;

			if (req->get && f->volatility == 'v')
			{
				respond_error(req, 405, "PGRST101",
							  psprintf("Cannot use the GET method on RPC ku9_api.%s: it is not stable", f->name),
							  NULL, "Call it with POST.");
				return false;
			}
			foreach(kc, f->variants)
			{
				Variant    *c = lfirst(kc);

				if (c->mask == mask && c->get == req->get)
					v = c;
			}
			if (v == NULL)
			{
				old = MemoryContextSwitchTo(catalog_cxt);
				v = palloc(sizeof(Variant));
				v->mask = mask;
				v->get = req->get;
				v->stmt = next_stmt++;
				v->sql = build_call(f, mask, req->get);
				f->variants = lappend(f->variants, v);
				MemoryContextSwitchTo(old);
			}
			req->stmt = v->stmt;
			req->sql = MemoryContextStrdup(req->cxt, v->sql);
			req->nparams = mask != 0 ? 1 : 0;
			req->retset = f->retset;
			req->retvoid = f->retvoid;
			return true;
		}
	}

	{
		StringInfoData sig;

		initStringInfo(&sig);
		foreach(lc, keys)
		{
			if (sig.len > 0)
				appendStringInfoString(&sig, ", ");
			appendStringInfoString(&sig, lfirst(lc));
		}
		respond_error(req, 404, "PGRST202",
					  psprintf("Could not find the function ku9_api.%s(%s) in the schema cache",
							   req->fname, sig.data),
					  e ? "A function of this name exists, with other arguments." : NULL,
					  "The functions reachable over HTTP are those of the schema ku9_api; arguments are passed by name.");
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Database connections
 * ------------------------------------------------------------------------
 */

/*
 * conn_start starts connecting.  The default connection string reaches this
 * server over its first Unix socket as ku9_authenticator; ku9.http_conninfo
 * replaces it.
 */
static void
conn_start(Conn *c)
{
	char		appname[64];
	char		options[128];
	char		port[16];
	char	   *socketdir = NULL;

	snprintf(appname, sizeof(appname), "ku9 gateway %d%s", gateway_index + 1, c->listener ? " listener" : "");
	/* event reads need a snapshot per statement (the notification horizon) */
	snprintf(options, sizeof(options), "-c statement_timeout=%d -c default_transaction_isolation=read\\ committed",
			 ku9_http_request_timeout);
	snprintf(port, sizeof(port), "%d", PostPortNumber);
	if (Unix_socket_directories && Unix_socket_directories[0])
	{
		char	   *dirs = pstrdup(Unix_socket_directories);
		char	   *comma = strchr(dirs, ',');

		if (comma)
			*comma = '\0';
		socketdir = dirs;
		while (*socketdir == ' ')
			socketdir++;
	}

	if (ku9_http_conninfo && ku9_http_conninfo[0])
	{
		const char *keys[] = {"dbname", "application_name", "options", NULL};
		const char *vals[] = {ku9_http_conninfo, appname, options, NULL};

		c->pg = PQconnectStartParams(keys, vals, 1);
	}
	else
	{
		const char *keys[] = {"host", "port", "dbname", "user", "application_name", "options", NULL};
		const char *vals[] = {socketdir ? socketdir : "127.0.0.1", port, ku9_database,
		"ku9_authenticator", appname, options, NULL};

		c->pg = PQconnectStartParams(keys, vals, 0);
	}
	c->state = CONN_CONNECTING;
	c->want_write = true;
	wait_set_stale = true;
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD)
	{
		ereport(LOG, errmsg("ku9 gateway could not connect to the database: %s",
							c->pg ? PQerrorMessage(c->pg) : "out of memory"));
		if (c->pg)
			PQfinish(c->pg);
		c->pg = NULL;
		c->state = CONN_DOWN;
		c->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RECONNECT_DELAY_MS);
	}
}

static void job_failed(Job *job, unsigned int status, const char *code, const char *message);
static void batch_end(Job *job, PGresult *res);
static void job_done(Conn *c);

/*
 * conn_broken closes a connection; its job fails with 503 and it is tried
 * again later.
 */
static void
conn_broken(Conn *c, const char *why)
{
	static TimestampTz last_log = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (now - last_log > 10 * USECS_PER_SEC)
	{
		ereport(LOG, errmsg("ku9 gateway lost a database connection: %s", why));
		last_log = now;
	}
	Ku9MetricInc(KU9_M_HTTP_DB_ERRORS, NULL);
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->state = CONN_DOWN;
	c->retry_at = TimestampTzPlusMilliseconds(now, RECONNECT_DELAY_MS);
	bms_free(c->prepared);
	c->prepared = NULL;
	if (c->error)
		PQclear(c->error);
	if (c->result)
		PQclear(c->result);
	c->error = c->result = NULL;
	c->listen_busy = false;
	wait_set_stale = true;
	if (c->job)
	{
		Job		   *job = c->job;

		c->job = NULL;
		job->running = false;
		job_failed(job, 503, "PGRST000", "the database connection was lost");
	}
	if (c->listener)
	{
		HASH_SEQ_STATUS seq;
		Channel    *ch;

		/* LISTENs are gone with the session: listen again, and read every stream */
		listener_pgrst = false;
		list_free_deep(just_listened);
		just_listened = NIL;
		if (channels)
		{
			hash_seq_init(&seq, channels);
			while ((ch = hash_seq_search(&seq)) != NULL)
				ch->listening = false;
		}
		channels_changed = true;
	}
}

/*
 * conn_ready: a new connection is up.
 */
static void
conn_ready(Conn *c)
{
	c->state = CONN_READY;
	c->want_write = false;
	wait_set_stale = true;
	if (PQsetnonblocking(c->pg, 1) != 0)
	{
		conn_broken(c, "could not make the connection non-blocking");
		return;
	}
	if (!c->listener && PQenterPipelineMode(c->pg) != 1)
	{
		conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	if (c->listener)
	{
		dlist_iter	it;

		channels_changed = true;
		catalog_wanted = true;
		/* notifications may have been missed while it was down */
		dlist_foreach(it, &streams)
			stream_wake(dlist_container(Stream, node, it.cur));
	}
}

/*
 * send_prepared sends one prepared statement (preparing it first if this
 * connection has not yet).
 */
static bool
send_prepared(Conn *c, int stmt, const char *sql, int nparams, const char *const *values)
{
	char		name[16];
	int			key = stmt - STMT_FIRST + 1;	/* > 0: cmd_key uses 0 for "not a PREPARE" */

	snprintf(name, sizeof(name), "k%d", key);
	if (!bms_is_member(key, c->prepared))
	{
		MemoryContext old;

		if (!PQsendPrepare(c->pg, name, sql, nparams, NULL))
			return false;
		old = MemoryContextSwitchTo(gateway_cxt);
		c->prepared = bms_add_member(c->prepared, key);
		MemoryContextSwitchTo(old);
		c->cmd_key[c->commands++] = key;
	}
	if (!PQsendQueryPrepared(c->pg, name, nparams, values, NULL, NULL, 0))
		return false;
	c->cmd_key[c->commands++] = 0;
	return true;
}

/*
 * send_begin sends ku9._gateway_begin for a request or a stream.
 */
static bool
send_begin(Conn *c, const char *token, const char *method, const char *path,
		   const char *headers, const char *cookies, bool read_only, const char *kind)
{
	const char *values[7] = {token, method, path, headers, cookies, read_only ? "t" : "f", kind};

	return send_prepared(c, STMT_BEGIN, begin_sql, 7, values);
}

/*
 * job_start sends a job's pipeline on an idle connection.
 */
static void
job_start(Conn *c, Job *job)
{
	bool		ok = true;

	c->job = job;
	job->running = true;
	c->commands = 0;
	c->cmd_pos = 0;
	memset(c->cmd_key, 0, sizeof(c->cmd_key));
	switch (job->kind)
	{
		case JOB_CATALOG:
			ok = PQsendQueryParams(c->pg, catalog_sql, 0, NULL, NULL, NULL, NULL, 0);
			c->commands = 1;
			break;
		case JOB_METRICS:
			ok = PQsendQueryParams(c->pg, "SELECT ku9.metrics()", 0, NULL, NULL, NULL, NULL, 0);
			c->commands = 1;
			break;
		case JOB_HEALTH:
			ok = PQsendQueryParams(c->pg, "SELECT body, healthy FROM ku9._gateway_health()", 0, NULL, NULL, NULL, NULL, 0);
			c->commands = 1;
			break;
		case JOB_BATCH:
			{
				StringInfoData users;
				StringInfoData cursors;
				char		lim[16];
				const char *values[3];
				ListCell   *lc;

				initStringInfo(&users);
				initStringInfo(&cursors);
				appendStringInfoChar(&users, '{');
				appendStringInfoChar(&cursors, '{');
				foreach(lc, job->streams)
				{
					Stream	   *st = lfirst(lc);

					if (users.len > 1)
					{
						appendStringInfoChar(&users, ',');
						appendStringInfoChar(&cursors, ',');
					}
					appendStringInfoString(&users, st->user_id);
					appendStringInfo(&cursors, INT64_FORMAT, st->cursor);
				}
				appendStringInfoChar(&users, '}');
				appendStringInfoChar(&cursors, '}');
				snprintf(lim, sizeof(lim), "%d", EVENTS_PER_READ);
				values[0] = users.data;
				values[1] = cursors.data;
				values[2] = lim;
				ok = send_prepared(c, STMT_BATCH, batch_sql, 3, values);
				pfree(users.data);
				pfree(cursors.data);
				break;
			}
		case JOB_RPC:
			{
				Request    *req = job->req;
				const char *args[1] = {req->args};

				ok = send_begin(c, req->token, req->method, req->url, req->headers, req->cookies,
								req->get, "rpc") &&
					send_prepared(c, req->stmt, req->sql, req->nparams, args);
				break;
			}
		case JOB_EVENTS:
			{
				Stream	   *s = job->stream;
				Request    *req = job->req;
				char		cursor[32];
				char		lim[16];
				const char *values[3] = {NULL, lim, s ? s->collections : req->collections};

				snprintf(lim, sizeof(lim), "%d", EVENTS_PER_READ);
				if (s)
				{
					snprintf(cursor, sizeof(cursor), INT64_FORMAT, s->cursor);
					values[0] = cursor;
					ok = send_begin(c, s->token, "GET", "/events", s->headers, s->cookies, true, "events");
				}
				else
				{
					values[0] = req->last_event_id;
					ok = send_begin(c, req->token, "GET", "/events", req->headers, req->cookies, true, "events");
				}
				ok = ok && send_prepared(c, STMT_EVENTS, events_sql, 3, values);
				break;
			}
	}
	if (ok)
		ok = PQpipelineSync(c->pg);
	if (ok)
	{
		int			r = PQflush(c->pg);

		ok = r >= 0;
		if (r == 1 && !c->want_write)
		{
			c->want_write = true;
			wait_set_stale = true;
		}
	}
	if (!ok)
		conn_broken(c, PQerrorMessage(c->pg));
}

/*
 * job_failed answers a job that could not run.
 */
static void
job_failed(Job *job, unsigned int status, const char *code, const char *message)
{
	if (job->kind == JOB_CATALOG)
	{
		catalog_wanted = true;
		return;
	}
	if (job->kind == JOB_BATCH)
	{
		batch_end(job, NULL);
		return;
	}
	if (job->stream && !job->req)
	{
		if (job->stream->gone)
			MemoryContextDelete(job->stream->cxt);
		else
			job->stream->last_read = 0;	/* read again at the next tick */
		return;
	}
	if (job->req)
	{
		in_flight--;
		if (job->req->orphaned)
			MemoryContextDelete(job->req->cxt);
		else
			respond_error(job->req, status, code, message, NULL, NULL);
	}
}

/* ------------------------------------------------------------------------
 * Event streams
 * ------------------------------------------------------------------------
 */

static Channel *
channel_get(const char *name, bool create)
{
	bool		found;
	Channel    *ch;

	if (strlen(name) >= NAMEDATALEN)
		return NULL;
	ch = hash_search(channels, name, create ? HASH_ENTER : HASH_FIND, &found);
	if (ch && !found)
	{
		ch->streams = NIL;
		ch->listening = false;
		channels_changed = true;
	}
	return ch;
}

/*
 * stream_set_channels puts a stream in the channels of its user and topics.
 */
static void
stream_set_channels(Stream *s, const char *topics, const char *follows)
{
	ListCell   *lc;
	List	   *wanted = NIL;
	MemoryContext old = MemoryContextSwitchTo(s->cxt);

	wanted = lappend(wanted, psprintf("ku9_user_%s", s->user_id));
	/* "name<TAB>access" lines: the channel, and the access's first letter */
	list_free_deep(s->follows);
	s->follows = NIL;
	for (const char *p = follows; p && *p;)
	{
		const char *nl = strchr(p, '\n');
		const char *tab = strchr(p, '\t');
		int			len = nl ? (int) (nl - p) : (int) strlen(p);

		if (tab && tab < p + len)
		{
			char	   *ch = psprintf("ku9_docs_%.*s", (int) (tab - p), p);

			wanted = lappend(wanted, ch);
			s->follows = lappend(s->follows, psprintf("%c%s", tab[1], ch));
		}
		p = nl ? nl + 1 : p + len;
	}
	for (const char *p = topics; p && *p;)
	{
		const char *nl = strchr(p, '\n');
		int			len = nl ? (int) (nl - p) : (int) strlen(p);

		if (len > 0)
			wanted = lappend(wanted, psprintf("ku9_topic_%.*s", len, p));
		p = nl ? nl + 1 : p + len;
	}
	MemoryContextSwitchTo(old);

	/* leave the channels no longer wanted */
	foreach(lc, s->channels)
	{
		char	   *name = lfirst(lc);
		bool		keep = false;
		ListCell   *wc;

		foreach(wc, wanted)
			keep |= strcmp(name, lfirst(wc)) == 0;
		if (!keep)
		{
			Channel    *ch = channel_get(name, false);

			if (ch)
			{
				ch->streams = list_delete_ptr(ch->streams, s);
				if (ch->streams == NIL)
					channels_changed = true;
			}
		}
	}
	/* join the new ones */
	foreach(lc, wanted)
	{
		char	   *name = lfirst(lc);
		bool		had = false;
		ListCell   *oc;

		foreach(oc, s->channels)
			had |= strcmp(name, lfirst(oc)) == 0;
		if (!had)
		{
			Channel    *ch = channel_get(name, true);

			if (ch)
			{
				old = MemoryContextSwitchTo(gateway_cxt);
				ch->streams = lappend(ch->streams, s);
				MemoryContextSwitchTo(old);
			}
		}
	}
	list_free_deep(s->channels);
	s->channels = wanted;
}

/*
 * stream_write appends bytes for the client and wakes its connection.
 */
static void
stream_write(Stream *s, const char *data, size_t len)
{
	if (s->gone || len == 0)
		return;
	/* drop what was sent before growing */
	if (s->out_off > 0 && s->out_off == (size_t) s->out.len)
	{
		resetStringInfo(&s->out);
		s->out_off = 0;
	}
	if ((size_t) s->out.len > s->out_off &&
		(size_t) s->out.len - s->out_off + len > STREAM_MAX_BACKLOG)
	{
		/* the client does not keep up: it reconnects with Last-Event-ID */
		s->closing = true;
	}
	else
		appendBinaryStringInfo(&s->out, data, len);
	s->last_write = GetCurrentTimestamp();
	if (s->suspended)
	{
		s->suspended = false;
		MHD_resume_connection(s->mc);
	}
}

/*
 * stream_wake asks for a read of a stream's events.
 */
static void
stream_wake(Stream *s)
{
	if (s->gone || s->closing)
		return;
	s->dirty = true;
	if (!s->job.queued && !s->job.running && !s->batched)
	{
		s->want_solo = false;
		s->dirty = false;
		enqueue(&s->job, false);
	}
}

/*
 * stream_notify asks for a read of a stream that a NOTIFY concerns: with
 * the others woken at about the same time, in one JOB_BATCH.  A stream
 * already being read reads again when that read ends.
 */
static void
stream_notify(Stream *s)
{
	if (s->gone || s->closing)
		return;
	if (s->job.queued || s->job.running || s->batched)
	{
		s->dirty = true;
		return;
	}
	s->batched = true;
	{
		MemoryContext old = MemoryContextSwitchTo(gateway_cxt);

		batch_pending = lappend(batch_pending, s);
		MemoryContextSwitchTo(old);
	}
}

/*
 * stream_end ends a stream with an "end" event carrying the error (the
 * token expired, the session ended): the client signs in again and
 * reconnects.
 */
static void
stream_end(Stream *s, const char *error)
{
	StringInfoData buf;

	initStringInfo(&buf);
	/* not "error": EventSource gives that name to its own connection errors */
	appendStringInfo(&buf, "event: end\ndata: %s\n\n", error);
	s->closing = true;
	stream_write(s, buf.data, buf.len);	/* wakes the connection, which then ends */
	pfree(buf.data);
}

/*
 * stream_close forgets a stream libmicrohttpd has closed.
 */
static void
stream_close(Stream *s)
{
	ListCell   *lc;

	s->gone = true;
	foreach(lc, s->channels)
	{
		Channel    *ch = channel_get(lfirst(lc), false);

		if (ch)
		{
			ch->streams = list_delete_ptr(ch->streams, s);
			if (ch->streams == NIL)
				channels_changed = true;
		}
	}
	dlist_delete(&s->node);
	nstreams--;
	Ku9MetricSet(KU9_M_HTTP_SSE_CLIENTS, NULL, nstreams);
	if (s->job.queued)
	{
		dlist_delete(&s->job.node);
		s->job.queued = false;
	}
	if (s->batched && list_member_ptr(batch_pending, s))
	{
		batch_pending = list_delete_ptr(batch_pending, s);
		s->batched = false;
	}
	if (!s->job.running && !s->batched)
		MemoryContextDelete(s->cxt);
	/* else the job's end frees it */
}

/*
 * stream_reader is libmicrohttpd's content reader of a stream: it copies
 * what is pending, or suspends the connection until there is more.
 */
static ssize_t
stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	Stream	   *s = cls;
	size_t		n = (size_t) s->out.len - s->out_off;

	if (n == 0)
	{
		if (s->closing || stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		s->suspended = true;
		MHD_suspend_connection(s->mc);
		return 0;
	}
	n = Min(n, max);
	memcpy(buf, s->out.data + s->out_off, n);
	s->out_off += n;
	return n;
}

static void
stream_free(void *cls)
{
	stream_close((Stream *) cls);
}

/*
 * stream_read_done applies a read of a stream, its own or a batch's: the
 * events after its cursor (ku9._gateway_read's row).
 */
static void
stream_read_done(Stream *s, int64 cursor, int n, const char *text, bool held)
{
	/* newer rows wait for an older id still in flight: read again at the next tick */
	if (held)
		s->last_read = 0;
	if (cursor <= s->cursor)
		return;
	s->cursor = cursor;
	if (n > 0)
	{
		stream_write(s, text, strlen(text));
		Ku9MetricAdd(KU9_M_HTTP_SSE_EVENTS, NULL, n);
	}
	/* a full read may have left more */
	if (n >= EVENTS_PER_READ)
		s->dirty = true;
}

/*
 * events_result handles a stream's read: the first opens the stream.
 */
static void
events_result(Job *job, PGresult *res)
{
	Stream	   *s = job->stream;
	const char *uid = PQgetvalue(res, 0, 0);
	int64		cursor = strtoi64(PQgetvalue(res, 0, 1), NULL, 10);
	int			n = atoi(PQgetvalue(res, 0, 2));
	const char *text = PQgetvalue(res, 0, 3);
	const char *topics = PQgetvalue(res, 0, 4);
	const char *follows = PQgetvalue(res, 0, 5);

	if (s == NULL)
	{
		Request    *req = job->req;
		MemoryContext cxt;
		MemoryContext old;

		/* the first read: open the stream */
		cxt = AllocSetContextCreate(gateway_cxt, "ku9 gateway stream", ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(cxt);
		s = palloc0(sizeof(Stream));
		s->cxt = cxt;
		s->mc = req->mc;
		s->token = req->token ? pstrdup(req->token) : NULL;
		s->headers = pstrdup(req->headers);
		s->cookies = pstrdup(req->cookies);
		s->collections = pstrdup(req->collections);
		initStringInfo(&s->out);
		s->job.kind = JOB_EVENTS;
		s->job.stream = s;
		MemoryContextSwitchTo(old);
		strlcpy(s->user_id, uid, sizeof(s->user_id));
		dlist_push_tail(&streams, &s->node);
		nstreams++;
		Ku9MetricSet(KU9_M_HTTP_SSE_CLIENTS, NULL, nstreams);
		s->last_write = GetCurrentTimestamp();
		appendStringInfo(&s->out, "retry: 2000\n\n");
		req->stream = s;
		in_flight--;
		respond(req, 200, NULL, "text/event-stream");
	}
	s->last_read = GetCurrentTimestamp();
	stream_set_channels(s, topics, follows);
	stream_read_done(s, cursor, n, text, PQgetvalue(res, 0, 6)[0] == 't');
}

/*
 * batch_end hands a JOB_BATCH's rows to its streams (res NULL: it failed;
 * the streams read again at the next tick) and frees the job.
 */
static void
batch_end(Job *job, PGresult *res)
{
	ListCell   *lc;
	int			i = 0;
	Stream	  **byindex = palloc(sizeof(Stream *) * list_length(job->streams));

	foreach(lc, job->streams)
		byindex[i++] = lfirst(lc);
	for (int row = 0; res && row < PQntuples(res); row++)
	{
		int			k = atoi(PQgetvalue(res, row, 0)) - 1;
		Stream	   *s;
		int64		cursor = strtoi64(PQgetvalue(res, row, 1), NULL, 10);
		int			n = atoi(PQgetvalue(res, row, 2));

		if (k < 0 || k >= i)
			continue;
		s = byindex[k];
		if (!s->gone)
			stream_read_done(s, cursor, n, PQgetvalue(res, row, 3), PQgetvalue(res, row, 4)[0] == 't');
	}
	for (int k = 0; k < i; k++)
	{
		Stream	   *s = byindex[k];

		s->batched = false;
		if (s->gone)
		{
			if (!s->job.running)
				MemoryContextDelete(s->cxt);
			continue;
		}
		if (res == NULL)
			s->last_read = 0;
		else if (s->want_solo)
			stream_wake(s);		/* the heartbeat's read, with the token, goes first */
		else if (s->dirty)
		{
			s->dirty = false;
			stream_notify(s);
		}
	}
	pfree(byindex);
	list_free(job->streams);
	pfree(job);
}

/* ------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------
 */

/*
 * error_response answers a request from a PostgreSQL error.
 */
static void
error_response(Request *req, PGresult *err)
{
	const char *state = PQresultErrorField(err, PG_DIAG_SQLSTATE);
	const char *message = PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(err, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(err, PG_DIAG_MESSAGE_HINT);
	unsigned int status;
	const char *code = state;

	if (message == NULL)
		message = PQresultErrorMessage(err);
	status = status_for_sqlstate(state, req->token != NULL);

	/* ku9's verifier refuses the token: PostgREST's JWT errors */
	if (state && strcmp(state, "28000") == 0 && strncmp(message, "invalid token", 13) == 0)
	{
		bool		expired = strstr(message, "expired") != NULL;

		status = 401;
		code = expired ? "PGRST303" : "PGRST301";
		req->extra_header[0][0] = "WWW-Authenticate";
		req->extra_header[0][1] = psprintf("Bearer error=\"invalid_token\", error_description=\"%s\"",
										   expired ? "JWT expired" : "JWT invalid");
	}
	else if (status == 401 && req->token == NULL && state && strcmp(state, "42501") == 0)
	{
		req->extra_header[0][0] = "WWW-Authenticate";
		req->extra_header[0][1] = "Bearer";
	}
	if (state && strcmp(state, "PT429") == 0)
	{
		req->extra_header[1][0] = "Retry-After";
		req->extra_header[1][1] = pstrdup(GetConfigOption("ku9.rate_limit_window", true, false) ?
										  GetConfigOption("ku9.rate_limit_window", true, false) : "60");
	}
	respond_error(req, status, code, message, detail, hint);
}

/*
 * job_done ends a connection's job after its Sync.
 */
static void
job_done(Conn *c)
{
	Job		   *job = c->job;
	PGresult   *err = c->error;
	PGresult   *res = c->result;

	c->job = NULL;
	c->error = c->result = NULL;
	job->running = false;

	switch (job->kind)
	{
		case JOB_CATALOG:
			if (err == NULL && res != NULL)
				load_catalog(res);
			else
			{
				ereport(LOG, errmsg("ku9 gateway could not read the ku9_api functions: %s",
									err ? PQresultErrorMessage(err) : "no result"));
				catalog_wanted = true;
				catalog_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RECONNECT_DELAY_MS);
			}
			break;
		case JOB_METRICS:
		case JOB_HEALTH:
			{
				Request    *req = job->req;

				in_flight--;
				if (req->orphaned)
					MemoryContextDelete(req->cxt);
				else if (err)
					respond_error(req, 503, PQresultErrorField(err, PG_DIAG_SQLSTATE),
								  PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY), NULL, NULL);
				else if (res && PQntuples(res) == 1)
					respond(req,
							job->kind == JOB_HEALTH && PQgetvalue(res, 0, 1)[0] != 't' ? 503 : 200,
							PQgetvalue(res, 0, 0),
							job->kind == JOB_METRICS ? "text/plain; version=0.0.4; charset=utf-8"
							: "application/json; charset=utf-8");
				else
					respond_error(req, 500, "PGRST000", "no result", NULL, NULL);
				break;
			}
		case JOB_RPC:
			{
				Request    *req = job->req;

				in_flight--;
				if (req->orphaned)
					MemoryContextDelete(req->cxt);
				else if (err)
					error_response(req, err);
				else if (res == NULL || PQntuples(res) != 1)
					respond_error(req, 500, "PGRST000", "the function returned no result", NULL, NULL);
				else if (req->retvoid)
					respond(req, 204, NULL, NULL);
				else
				{
					const char *body = PQgetisnull(res, 0, 0) ? "null" : PQgetvalue(res, 0, 0);
					long		n = atol(PQgetvalue(res, 0, 1));

					if (req->retset && req->want_object)
					{
						if (n != 1)
						{
							respond_error(req, 406, "PGRST116",
										  "JSON object requested, multiple (or no) rows returned",
										  psprintf("The result contains %ld rows", n), NULL);
							break;
						}
						/* json_agg of one row: [row] */
						body = pnstrdup(body + 1, strlen(body) - 2);
					}
					if (req->retset)
					{
						req->extra_header[0][0] = "Content-Range";
						req->extra_header[0][1] = n == 0 ? (req->want_count ? "*/0" : "*/*")
							: psprintf("0-%ld/%s", n - 1, req->want_count ? psprintf("%ld", n) : "*");
					}
					respond(req, 200, body, "application/json; charset=utf-8");
				}
				break;
			}
		case JOB_BATCH:
			if (err)
				ereport(LOG, errmsg("ku9 gateway could not read event streams: %s",
									PQresultErrorMessage(err)));
			batch_end(job, err ? NULL : res);
			break;
		case JOB_EVENTS:
			{
				Stream	   *s = job->stream;
				Request    *req = job->req;

				if (s && s->gone)
				{
					MemoryContextDelete(s->cxt);
					break;
				}
				if (s == NULL && req->orphaned)
				{
					in_flight--;
					MemoryContextDelete(req->cxt);
					break;
				}
				if (err)
				{
					if (s == NULL)
					{
						in_flight--;
						error_response(req, err);
					}
					else
					{
						const char *state = PQresultErrorField(err, PG_DIAG_SQLSTATE);
						const char *msg = PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY);

						/* refused: the stream ends; anything else: try again later */
						if (state && (strncmp(state, "28", 2) == 0 || strncmp(state, "PT", 2) == 0 ||
									  strcmp(state, "42501") == 0))
							stream_end(s, error_json(state, msg, NULL, NULL));
					}
				}
				else if (res && PQntuples(res) == 1)
				{
					events_result(job, res);
					if (s == NULL)
						s = req->stream;
				}
				else if (s == NULL)
				{
					in_flight--;
					respond_error(req, 500, "PGRST000", "the event stream could not be read", NULL, NULL);
				}
				if (s && s->dirty && !s->closing)
					stream_wake(s);
				break;
			}
	}
	if (err)
		PQclear(err);
	if (res)
		PQclear(res);
}

/*
 * conn_results reads what has arrived on a pool connection.
 */
static void
conn_results(Conn *c)
{
	while (c->job != NULL && !PQisBusy(c->pg))
	{
		PGresult   *res = PQgetResult(c->pg);

		if (res == NULL)
		{
			/* the end of one command's results */
			c->cmd_pos++;
			continue;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_PIPELINE_SYNC:
				PQclear(res);
				job_done(c);
				break;
			case PGRES_FATAL_ERROR:
			case PGRES_PIPELINE_ABORTED:
				/* a PREPARE that failed or was skipped left no statement */
				if (c->cmd_pos < (int) lengthof(c->cmd_key) && c->cmd_key[c->cmd_pos] != 0)
					c->prepared = bms_del_member(c->prepared, c->cmd_key[c->cmd_pos]);
				if (c->error == NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
					c->error = res;
				else
					PQclear(res);
				break;
			case PGRES_TUPLES_OK:
				if (c->result)
					PQclear(c->result);
				c->result = res;
				break;
			default:
				PQclear(res);
				break;
		}
	}
}

/* ------------------------------------------------------------------------
 * The listener
 * ------------------------------------------------------------------------
 */

/*
 * listener_sync sends the LISTENs and UNLISTENs the open streams need.
 */
static void
listener_sync(void)
{
	HASH_SEQ_STATUS seq;
	Channel    *ch;
	StringInfoData sql;
	List	   *drop = NIL;
	ListCell   *lc;

	if (listener.state != CONN_READY || listener.listen_busy || (!channels_changed && listener_pgrst))
		return;
	channels_changed = false;
	initStringInfo(&sql);
	hash_seq_init(&seq, channels);
	while ((ch = hash_seq_search(&seq)) != NULL)
	{
		if (ch->streams != NIL && !ch->listening)
		{
			MemoryContext old = MemoryContextSwitchTo(gateway_cxt);

			appendStringInfo(&sql, "LISTEN %s;", quote_identifier(ch->name));
			ch->listening = true;
			just_listened = lappend(just_listened, pstrdup(ch->name));
			MemoryContextSwitchTo(old);
		}
		else if (ch->streams == NIL)
		{
			if (ch->listening)
				appendStringInfo(&sql, "UNLISTEN %s;", quote_identifier(ch->name));
			drop = lappend(drop, pstrdup(ch->name));
		}
	}
	foreach(lc, drop)
		hash_search(channels, lfirst(lc), HASH_REMOVE, NULL);
	list_free_deep(drop);
	if (!listener_pgrst)
	{
		/* PostgREST's channel: NOTIFY pgrst reloads the catalog */
		appendStringInfoString(&sql, "LISTEN pgrst;");
		listener_pgrst = true;
	}
	if (sql.len > 0)
	{
		if (!PQsendQuery(listener.pg, sql.data))
			conn_broken(&listener, PQerrorMessage(listener.pg));
		else
		{
			listener.listen_busy = true;
			if (PQflush(listener.pg) == 1)
			{
				listener.want_write = true;
				wait_set_stale = true;
			}
		}
	}
	pfree(sql.data);
}

/*
 * document_event passes a collection's change event ({"op", "_id",
 * "owner", "version", "seq"}, from src/docs/docs.c) to the streams that
 * follow the collection and may see the document: its owner for an
 * owner-access collection, everyone following a public_read one, and
 * ku9_service (the only one who can follow them) for a service one.  It
 * has no event id: Last-Event-ID stays the last notification's.
 */
static void
document_event(Channel *ch, const char *channel, const char *payload)
{
	const char *owner = strstr(payload, "\"owner\":\"");
	char	   *data = NULL;
	ListCell   *lc;

	if (payload[0] != '{')
		return;
	foreach(lc, ch->streams)
	{
		Stream	   *s = lfirst(lc);
		char		access = 0;
		ListCell   *fc;

		foreach(fc, s->follows)
		{
			const char *f = lfirst(fc);

			if (strcmp(f + 1, channel) == 0)
				access = f[0];
		}
		if (access == 'o' && !(owner && strncmp(owner + 9, s->user_id, 36) == 0))
			continue;
		if (access != 'o' && access != 'p' && access != 's')
			continue;
		if (data == NULL)
		{
			StringInfoData buf;

			initStringInfo(&buf);
			appendStringInfoString(&buf, "event: document\ndata: {\"collection\":");
			escape_json(&buf, channel + 9);
			appendStringInfo(&buf, ",%s\n\n", payload + 1);
			data = buf.data;
		}
		stream_write(s, data, strlen(data));
		Ku9MetricInc(KU9_M_HTTP_SSE_EVENTS, NULL);
	}
	if (data)
		pfree(data);
}

/*
 * listener_io reads the listener's results and notifications.
 */
static void
listener_io(void)
{
	PGnotify   *n;

	if (PQconsumeInput(listener.pg) == 0)
	{
		conn_broken(&listener, PQerrorMessage(listener.pg));
		return;
	}
	while (listener.listen_busy && !PQisBusy(listener.pg))
	{
		PGresult   *res = PQgetResult(listener.pg);

		if (res == NULL)
		{
			ListCell   *lc;

			listener.listen_busy = false;
			/* what was notified before the LISTEN took effect: read those streams now */
			foreach(lc, just_listened)
			{
				Channel    *ch = channel_get(lfirst(lc), false);
				ListCell   *sc;

				if (ch && strncmp(ch->name, "ku9_docs_", 9) != 0)
					foreach(sc, ch->streams)
						stream_notify(lfirst(sc));
			}
			list_free_deep(just_listened);
			just_listened = NIL;
			break;
		}
		if (PQresultStatus(res) == PGRES_FATAL_ERROR)
			ereport(LOG, errmsg("ku9 gateway could not listen: %s", PQresultErrorMessage(res)));
		PQclear(res);
	}
	while ((n = PQnotifies(listener.pg)) != NULL)
	{
		if (strcmp(n->relname, "pgrst") == 0)
			catalog_wanted = true;
		else
		{
			Channel    *ch = channel_get(n->relname, false);

			if (ch && strncmp(n->relname, "ku9_docs_", 9) == 0)
				document_event(ch, n->relname, n->extra);
			else if (ch)
			{
				ListCell   *lc;

				foreach(lc, ch->streams)
					stream_notify(lfirst(lc));
			}
		}
		PQfreemem(n);
	}
}

/*
 * conn_io advances a connection whose socket is ready.
 */
static void
conn_io(Conn *c)
{
	if (c->pg == NULL)
		return;
	if (c->state == CONN_CONNECTING)
	{
		bool		want_write = c->want_write;

		switch (PQconnectPoll(c->pg))
		{
			case PGRES_POLLING_OK:
				conn_ready(c);
				return;
			case PGRES_POLLING_FAILED:
				conn_broken(c, PQerrorMessage(c->pg));
				return;
			case PGRES_POLLING_WRITING:
				c->want_write = true;
				break;
			default:
				c->want_write = false;
				break;
		}
		/* the socket may change while connecting (another address) */
		(void) want_write;
		wait_set_stale = true;
		return;
	}
	if (c->want_write)
	{
		int			r = PQflush(c->pg);

		if (r < 0)
		{
			conn_broken(c, PQerrorMessage(c->pg));
			return;
		}
		if (r == 0)
		{
			c->want_write = false;
			wait_set_stale = true;
		}
	}
	if (c->listener)
	{
		listener_io();
		return;
	}
	if (PQconsumeInput(c->pg) == 0)
	{
		conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	conn_results(c);
}

/* ------------------------------------------------------------------------
 * The job queue
 * ------------------------------------------------------------------------
 */

static void
enqueue(Job *job, bool first)
{
	if (first)
		dlist_push_head(&job_queue, &job->node);
	else
		dlist_push_tail(&job_queue, &job->node);
	job->queued = true;
}

/*
 * dispatch_jobs gives waiting jobs to idle connections.
 */
static void
dispatch_jobs(void)
{
	if (catalog_wanted && !catalog_job.queued && !catalog_job.running &&
		GetCurrentTimestamp() >= catalog_retry_at)
	{
		catalog_wanted = false;
		enqueue(&catalog_job, true);
	}
	while (batch_pending != NIL)
	{
		Job		   *job = MemoryContextAllocZero(gateway_cxt, sizeof(Job));
		int			n = Min(list_length(batch_pending), STREAMS_PER_BATCH);
		MemoryContext old = MemoryContextSwitchTo(gateway_cxt);

		job->kind = JOB_BATCH;
		job->streams = list_copy_head(batch_pending, n);
		batch_pending = list_delete_first_n(batch_pending, n);
		MemoryContextSwitchTo(old);
		enqueue(job, false);
	}
	for (int i = 0; i < pool_size && !dlist_is_empty(&job_queue); i++)
	{
		Conn	   *c = &pool[i];

		while (c->state == CONN_READY && c->job == NULL && !c->stale && !dlist_is_empty(&job_queue))
		{
			Job		   *job = dlist_head_element(Job, node, &job_queue);

			if (job->kind == JOB_RPC && !catalog_loaded)
				return;
			dlist_pop_head_node(&job_queue);
			job->queued = false;
			if (job->kind == JOB_RPC && job->req->stmt == 0)
			{
				Request    *req = job->req;
				MemoryContext old = MemoryContextSwitchTo(req->cxt);
				List	   *keys = NIL;
				const char *error = NULL;

				if (req->args[0] != '\0')
					keys = keys_of(req->args, &error);
				MemoryContextSwitchTo(old);
				if (error)
				{
					in_flight--;
					respond_error(req, 400, "PGRST102",
								  req->get ? "the query string is not valid" : "Empty or invalid json",
								  psprintf("The request body is %s.", error),
								  "Send a JSON object of the function's arguments.");
					continue;
				}
				if (!resolve(req, keys))
				{
					in_flight--;
					continue;
				}
			}
			job_start(c, job);
		}
	}
}

/* ------------------------------------------------------------------------
 * HTTP requests
 * ------------------------------------------------------------------------
 */

typedef struct JsonCollect
{
	StringInfo	buf;
	bool		lower;
	const char *skip;
} JsonCollect;

static enum MHD_Result
collect_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	JsonCollect *jc = cls;
	char	   *k = pstrdup(key);

	if (jc->lower)
		for (char *p = k; *p; p++)
			*p = pg_tolower((unsigned char) *p);
	if (jc->skip && strcmp(k, jc->skip) == 0)
		return MHD_YES;
	if (jc->buf->len > 1)
		appendStringInfoChar(jc->buf, ',');
	escape_json(jc->buf, k);
	appendStringInfoChar(jc->buf, ':');
	escape_json(jc->buf, value ? value : "");
	return MHD_YES;
}

/*
 * values_json is a JSON object of the request's values of one kind.
 */
static char *
values_json(struct MHD_Connection *mc, enum MHD_ValueKind kind, bool lower, const char *skip,
			const char *extra_key, const char *extra_value)
{
	StringInfoData buf;
	JsonCollect jc = {&buf, lower, skip};

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	MHD_get_connection_values(mc, kind, collect_value, &jc);
	if (extra_key)
	{
		if (buf.len > 1)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, extra_key);
		appendStringInfoChar(&buf, ':');
		escape_json(&buf, extra_value);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * peer_address is the client's address as text.
 */
static char *
peer_address(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char		host[NI_MAXHOST];

	if (ci == NULL || ci->client_addr == NULL)
		return pstrdup("");
	if (getnameinfo(ci->client_addr,
					ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
					host, sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		return pstrdup("");
	return pstrdup(host);
}

/*
 * dispatch routes a request whose body has arrived: it answers at once, or
 * queues database work and suspends the connection.
 */
static void
dispatch(Request *req)
{
	struct MHD_Connection *mc = req->mc;
	const char *auth = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
	const char *accept = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Accept");
	const char *prefer = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Prefer");
	const char *ctype = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Type");
	const char *profile;
	const char *xff = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Forwarded-For");
	char	   *peer;
	JobKind		kind;

	req->dispatched = true;

	if (strcmp(req->method, "OPTIONS") == 0)
	{
		const char *origin = cors_origin(mc);

		respond(req, origin ? 200 : 204, NULL, NULL);
		if (origin)
		{
			const char *hdrs = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Access-Control-Request-Headers");

			req->extra_header[0][0] = "Access-Control-Allow-Methods";
			req->extra_header[0][1] = "GET, POST, HEAD, OPTIONS";
			req->extra_header[1][0] = "Access-Control-Allow-Headers";
			req->extra_header[1][1] = pstrdup(hdrs ? hdrs : "Authorization, Content-Type, Accept, Prefer, Last-Event-ID");
		}
		return;
	}
	if (req->body_too_large)
	{
		respond_error(req, 413, "PGRST413", "request body too large",
					  psprintf("The limit is %d bytes (ku9.http_max_body).", ku9_http_max_body), NULL);
		return;
	}

	/* the route */
	if (strncmp(req->url, "/rpc/", 5) == 0 && req->url[5] != '\0' && strchr(req->url + 5, '/') == NULL)
	{
		req->route = ROUTE_RPC;
		req->fname = req->url + 5;
		kind = JOB_RPC;
	}
	else if (strcmp(req->url, "/events") == 0)
	{
		req->route = ROUTE_EVENTS;
		kind = JOB_EVENTS;
	}
	else if (strcmp(req->url, "/metrics") == 0)
	{
		req->route = ROUTE_METRICS;
		kind = JOB_METRICS;
	}
	else if (strcmp(req->url, "/health") == 0)
	{
		req->route = ROUTE_HEALTH;
		kind = JOB_HEALTH;
	}
	else
	{
		respond_error(req, 404, "PGRST205",
					  psprintf("Could not find %s in the schema cache", req->url),
					  NULL, "The gateway serves /rpc/<function> of ku9_api, /events, /metrics and /health.");
		return;
	}
	if (!(req->get || (kind == JOB_RPC && strcmp(req->method, "POST") == 0)))
	{
		respond_error(req, 405, "PGRST117", psprintf("Unsupported HTTP method: %s", req->method), NULL,
					  kind == JOB_RPC ? "Call functions with POST, or GET for stable ones." : "Use GET.");
		return;
	}
	if (stopping)
	{
		respond_error(req, 503, "PGRST000", "the gateway is stopping", NULL, "Try again.");
		return;
	}

	/* the token */
	if (auth != NULL)
	{
		if (pg_strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0')
		{
			respond_error(req, 401, "PGRST301", "Authorization header is not \"Bearer <token>\"", NULL, NULL);
			req->extra_header[0][0] = "WWW-Authenticate";
			req->extra_header[0][1] = "Bearer";
			return;
		}
		req->token = pstrdup(auth + 7);
	}
	else if (kind == JOB_EVENTS)
	{
		/* browsers' EventSource cannot send headers */
		const char *t = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "access_token");

		if (t && t[0])
			req->token = pstrdup(t);
	}

	profile = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, req->get ? "Accept-Profile" : "Content-Profile");
	if (profile && strcmp(profile, "ku9_api") != 0)
	{
		respond_error(req, 406, "PGRST106", "The schema must be one of the following: ku9_api", NULL, NULL);
		return;
	}

	/* request.headers, with the client's address added as a proxy would */
	peer = peer_address(mc);
	req->headers = values_json(mc, MHD_HEADER_KIND, true, "x-forwarded-for", "x-forwarded-for",
							   xff ? psprintf("%s, %s", xff, peer) : peer);
	req->cookies = values_json(mc, MHD_COOKIE_KIND, false, NULL, NULL, NULL);
	req->want_object = accept && header_contains(accept, "application/vnd.pgrst.object+json");
	req->want_count = prefer && (strstr(prefer, "count=exact") || strstr(prefer, "count=planned") ||
								 strstr(prefer, "count=estimated"));

	if (kind == JOB_RPC)
	{
		if (req->get)
			req->args = values_json(mc, MHD_GET_ARGUMENT_KIND, false, NULL, NULL, NULL);
		else
		{
			if (ctype && !header_contains(ctype, "application/json"))
			{
				respond_error(req, 415, "PGRST107",
							  psprintf("The request's Content-Type \"%s\" is not supported", ctype),
							  NULL, "Send application/json.");
				return;
			}
			if (memchr(req->body.data, '\0', req->body.len) != NULL)
			{
				respond_error(req, 400, "PGRST102", "Empty or invalid json",
							  "The request body holds a NUL byte.", NULL);
				return;
			}
			req->args = req->body.len > 0 ? req->body.data : "{}";
		}
	}
	else if (kind == JOB_EVENTS)
	{
		const char *last = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Last-Event-ID");
		const char *colls = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "collections");
		StringInfoData arr;

		/* ?collections=a,b: the collections whose change events to follow */
		initStringInfo(&arr);
		appendStringInfoChar(&arr, '{');
		for (const char *p = colls; p && *p;)
		{
			const char *comma = strchr(p, ',');
			int			len = comma ? (int) (comma - p) : (int) strlen(p);

			if (len > 0)
			{
				if (arr.len > 1)
					appendStringInfoChar(&arr, ',');
				appendStringInfoChar(&arr, '"');
				for (int i = 0; i < len; i++)
				{
					if (p[i] == '"' || p[i] == '\\')
						appendStringInfoChar(&arr, '\\');
					appendStringInfoChar(&arr, p[i]);
				}
				appendStringInfoChar(&arr, '"');
			}
			p = comma ? comma + 1 : p + len;
		}
		appendStringInfoChar(&arr, '}');
		req->collections = arr.data;

		if (last == NULL)
			last = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "last_event_id");
		if (last && last[0])
		{
			char	   *end;
			long long	v = strtoll(last, &end, 10);

			if (*end != '\0' || v < 0)
			{
				respond_error(req, 400, "22023", "Last-Event-ID must be an event id", NULL, NULL);
				return;
			}
			req->last_event_id = pstrdup(last);
		}
	}

	req->job.kind = kind;
	req->job.req = req;
	in_flight++;
	enqueue(&req->job, false);
	req->suspended = true;
	MHD_suspend_connection(mc);
}

/*
 * access_handler is libmicrohttpd's request callback: called with the
 * headers, for each piece of the body, and once more at its end (and again
 * after a resume).
 */
static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
			   const char *version, const char *upload_data, size_t *upload_data_size,
			   void **con_cls)
{
	Request    *req = *con_cls;

	if (req == NULL)
	{
		MemoryContext cxt = AllocSetContextCreate(gateway_cxt, "ku9 gateway request", ALLOCSET_SMALL_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		const char *length = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");

		req = palloc0(sizeof(Request));
		req->cxt = cxt;
		req->mc = mc;
		req->method = pstrdup(method);
		req->url = pstrdup(url);
		req->get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
		req->route = ROUTE_OTHER;
		req->started = GetCurrentTimestamp();
		initStringInfo(&req->body);
		MemoryContextSwitchTo(old);
		*con_cls = req;
		if (length && strtoll(length, NULL, 10) > (long long) ku9_http_max_body * 16)
		{
			/*
			 * Far too large: refused before the body is read (libmicrohttpd
			 * then closes the connection).  A body just over the limit is
			 * read and dropped instead, so that clients that send it whole
			 * before reading see the 413.
			 */
			req->body_too_large = true;
			old = MemoryContextSwitchTo(req->cxt);
			dispatch(req);
			MemoryContextSwitchTo(old);
			return queue_response(req);
		}
		return MHD_YES;
	}

	if (*upload_data_size > 0)
	{
		if (!req->body_too_large)
		{
			if ((size_t) req->body.len + *upload_data_size > (size_t) ku9_http_max_body)
			{
				/* dropped from here on; answered 413 at the end */
				req->body_too_large = true;
				pfree(req->body.data);
				req->body.data = NULL;
			}
			else
			{
				MemoryContext old = MemoryContextSwitchTo(req->cxt);

				appendBinaryStringInfo(&req->body, upload_data, *upload_data_size);
				MemoryContextSwitchTo(old);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (!req->dispatched)
	{
		MemoryContext old = MemoryContextSwitchTo(req->cxt);

		dispatch(req);
		MemoryContextSwitchTo(old);
	}
	if (!req->responded)
		return MHD_YES;			/* suspended until the database answers */

	if (req->stream != NULL)
	{
		Stream	   *s = req->stream;
		struct MHD_Response *resp;
		enum MHD_Result ret;

		req->stream = NULL;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, s, stream_free);
		if (resp == NULL)
		{
			stream_close(s);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
		add_cors(mc, resp);
		ret = MHD_queue_response(mc, 200, resp);
		MHD_destroy_response(resp);
		count_response(req, 200);
		return ret;
	}
	return queue_response(req);
}

/*
 * completed is libmicrohttpd's end of a request: free it, or leave that to
 * its job if the database still works on it.
 */
static void
completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	Request    *req = *con_cls;

	if (req == NULL)
		return;
	*con_cls = NULL;
	if (req->job.running)
	{
		req->orphaned = true;
		return;
	}
	if (req->job.queued)
	{
		dlist_delete(&req->job.node);
		req->job.queued = false;
		in_flight--;
	}
	if (req->stream)
		stream_close(req->stream);
	MemoryContextDelete(req->cxt);
}

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	ereport(DEBUG1, errmsg_internal("ku9 gateway: %s", buf));
}

/* ------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------
 */

/*
 * start_daemon listens on ku9.http_listen_address:ku9.http_port.
 */
static void
start_daemon(void)
{
	struct addrinfo hints;
	struct addrinfo *ai = NULL;
	char		port[16];
	const char *host = ku9_http_listen_address;
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	int			rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", ku9_http_port);
	if (host == NULL || host[0] == '\0' || strcmp(host, "*") == 0)
		host = NULL;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0 || ai == NULL)
		ereport(ERROR,
				errcode(ERRCODE_CONFIG_FILE_ERROR),
				errmsg("ku9 gateway cannot use listen address \"%s\": %s",
					   ku9_http_listen_address, gai_strerror(rc)));
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	daemon_mhd = MHD_start_daemon(flags, (uint16_t) ku9_http_port, NULL, NULL,
								  access_handler, NULL,
								  MHD_OPTION_SOCK_ADDR, ai->ai_addr,
								  MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
								  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) ku9_http_idle_timeout,
								  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) ku9_http_max_connections,
								  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) ku9_http_max_connections_per_address,
								  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 16 * 1024,
								  MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
								  MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
								  MHD_OPTION_END);
	freeaddrinfo(ai);
	if (daemon_mhd == NULL)
		ereport(ERROR,
				errmsg("ku9 gateway could not listen on %s:%d: %m",
					   ku9_http_listen_address, ku9_http_port),
				errhint("Another program may use the port; set \"ku9.http_port\" (0 turns the gateway off)."));
}

/*
 * raise_fd_limit lets the worker hold as many connections as the hard limit
 * on open files allows.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * build_wait_set makes the set of what the loop waits for.
 */
static WaitEventSet *
build_wait_set(WaitEventSet *old)
{
	WaitEventSet *set;
	const union MHD_DaemonInfo *info;

	if (old)
		FreeWaitEventSet(old);
	set = CreateWaitEventSet(gateway_cxt, pool_size + 4);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	info = MHD_get_daemon_info(daemon_mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info != NULL)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, info->epoll_fd, NULL, NULL);
	for (int i = -1; i < pool_size; i++)
	{
		Conn	   *c = i < 0 ? &listener : &pool[i];

		if (c->pg != NULL && PQsocket(c->pg) >= 0)
			AddWaitEventToSet(set, WL_SOCKET_READABLE | (c->want_write ? WL_SOCKET_WRITEABLE : 0),
							  PQsocket(c->pg), NULL, c);
	}
	wait_set_stale = false;
	return set;
}

/*
 * tick runs once a second: heartbeats and re-reads of the streams.
 */
static void
tick(TimestampTz now)
{
	dlist_mutable_iter it;
	long		beat = (long) ku9_http_heartbeat * 1000;

	dlist_foreach_modify(it, &streams)
	{
		Stream	   *s = dlist_container(Stream, node, it.cur);

		if (TimestampDifferenceExceeds(s->last_read, now, beat))
		{
			s->last_read = now;
			s->want_solo = true;
			stream_wake(s);
		}
		if (TimestampDifferenceExceeds(s->last_write, now, beat))
			stream_write(s, ": heartbeat\n\n", 13);
	}
}

/*
 * begin_stop stops accepting and ends the streams; requests in flight get
 * STOP_GRACE_MS to finish.
 */
static void
begin_stop(void)
{
	dlist_iter	it;
	MHD_socket	fd;

	stopping = true;
	fd = MHD_quiesce_daemon(daemon_mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	dlist_foreach(it, &streams)
	{
		Stream	   *s = dlist_container(Stream, node, it.cur);

		s->closing = true;
		if (s->suspended)
		{
			s->suspended = false;
			MHD_resume_connection(s->mc);
		}
	}
}

static void
conn_upkeep(Conn *c, TimestampTz now)
{
	if (c->state == CONN_DOWN && now >= c->retry_at && !stopping)
		conn_start(c);
	else if (c->state == CONN_READY && c->stale && c->job == NULL)
	{
		PQfinish(c->pg);
		c->pg = NULL;
		c->state = CONN_DOWN;
		c->stale = false;
		bms_free(c->prepared);
		c->prepared = NULL;
		wait_set_stale = true;
		conn_start(c);
	}
}

void
Ku9GatewayMain(Datum main_arg)
{
	WaitEventSet *set = NULL;
	WaitEvent	events[64];
	TimestampTz next_tick = 0;
	TimestampTz stop_deadline = 0;
	HASHCTL		ctl;
	char		name[64];

	gateway_index = DatumGetInt32(main_arg);
	memcpy(&gateway_generation, MyBgworkerEntry->bgw_extra, sizeof(gateway_generation));

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGPIPE, SIG_IGN);
	BackgroundWorkerUnblockSignals();
	/* no database: this only makes the worker visible in pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	snprintf(name, sizeof(name), "ku9 gateway %d", gateway_index + 1);
	SetConfigOption("application_name", name, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(name);

	/* no database, so no encoding: parse request bodies (\u escapes) as UTF-8 */
	SetDatabaseEncoding(PG_UTF8);
	gateway_cxt = AllocSetContextCreate(TopMemoryContext, "ku9 gateway", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(gateway_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(Channel);
	ctl.hcxt = gateway_cxt;
	channels = hash_create("ku9 gateway channels", 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	pool_size = ku9_http_pool_size;
	pool = palloc0(sizeof(Conn) * pool_size);
	memset(&listener, 0, sizeof(listener));
	listener.listener = true;

	raise_fd_limit();
	start_daemon();
	ereport(LOG, errmsg("ku9 gateway %d listening on %s:%d", gateway_index + 1,
						ku9_http_listen_address, ku9_http_port));

	loop_cxt = AllocSetContextCreate(gateway_cxt, "ku9 gateway loop", ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		TimestampTz now;
		long		timeout = TICK_MS;
		MHD_UNSIGNED_LONG_LONG mhd_timeout;
		int			n;

		/* what outlives a pass is allocated in its own context explicitly */
		MemoryContextSwitchTo(loop_cxt);
		MemoryContextReset(loop_cxt);
		now = GetCurrentTimestamp();

		/* barriers (DROP DATABASE waits for every process to absorb them) */
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!stopping && (ShutdownRequestPending ||
						  Ku9LauncherGeneration() != gateway_generation))
		{
			begin_stop();
			stop_deadline = TimestampTzPlusMilliseconds(now, STOP_GRACE_MS);
		}
		if (stopping && ((in_flight == 0 && nstreams == 0) || now >= stop_deadline))
			break;

		for (int i = 0; i < pool_size; i++)
			conn_upkeep(&pool[i], now);
		conn_upkeep(&listener, now);
		dispatch_jobs();
		listener_sync();
		if (now >= next_tick)
		{
			tick(now);
			next_tick = TimestampTzPlusMilliseconds(now, TICK_MS);
		}
		/* what the upkeep changed goes out now */
		MHD_run(daemon_mhd);

		if (wait_set_stale || set == NULL)
			set = build_wait_set(set);
		if (MHD_get_timeout(daemon_mhd, &mhd_timeout) == MHD_YES)
			timeout = Min(timeout, (long) mhd_timeout);
		for (int i = 0; i < pool_size; i++)
			if (pool[i].state == CONN_DOWN && !stopping)
				timeout = Min(timeout, Max(0, (long) TimestampDifferenceMilliseconds(now, pool[i].retry_at)));
		if (stopping)
			timeout = Min(timeout, 100);

		n = WaitEventSetWait(set, timeout, events, lengthof(events), KU9_WAIT_EVENT_EXTENSION);
		for (int i = 0; i < n; i++)
		{
			WaitEvent  *e = &events[i];

			if (e->events & WL_LATCH_SET)
				ResetLatch(MyLatch);
			else if (e->user_data != NULL)
				conn_io((Conn *) e->user_data);
		}
		MHD_run(daemon_mhd);
	}

	ereport(LOG, errmsg("ku9 gateway %d stopped", gateway_index + 1));
	for (int i = 0; i < pool_size; i++)
		if (pool[i].pg)
			PQfinish(pool[i].pg);
	if (listener.pg)
		PQfinish(listener.pg);
	proc_exit(0);
}
