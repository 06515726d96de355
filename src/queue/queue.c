/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  Durable queues: send, read with visibility timeout, ack/nack/fail,
 *	  dead letters, archive, and wake-ups for waiting readers.
 *
 * Storage.  A queue <name> is a row in ku9.queues and three tables in the
 * schema ku9_queue, all owned by the owner of ku9.queues (the extension's
 * owner): q_<name> holds pending and in-flight messages, a_<name> acked
 * messages when the queue archives, d_<name> dead letters.  A message is
 * visible when vt <= now; reading it sets vt = now + visibility timeout and
 * counts an attempt.  Dequeue order is priority DESC, msg_id (FIFO within a
 * priority), served by the index (priority DESC, msg_id) with FOR UPDATE
 * SKIP LOCKED, so concurrent readers never take the same message.
 *
 * Access.  The SQL functions are SECURITY INVOKER.  Each one first checks
 * the caller: queue management needs ku9_service (or superuser); send needs
 * INSERT and the read side (read, pop, ack, nack, fail, extend) UPDATE on
 * q_<name> — which is what ku9.grant_queue() grants — then runs its
 * statement as the tables' owner, in a SECURITY_RESTRICTED_OPERATION.  All
 * statements qualify every table, function and operator, so the caller's
 * search_path cannot change what they do.
 *
 * Plans.  Each backend keeps, per queue, the queue's options and its
 * statements prepared once (SPI_prepare + SPI_keepplan) in a hash in
 * TopMemoryContext.  An entry is valid while q_<name> has the OID it was
 * built for; every call looks the table up (taking RowExclusiveLock, which
 * the statement needs anyway, via RangeVarGetRelidExtended so a concurrent
 * drop is seen), and a dropped or re-created queue rebuilds the entry.
 *
 * Wake-ups.  Shared memory holds one 64-bit slot per PGPROC.  A backend
 * waiting in ku9.read(..., wait_ms) stores the key (database OID, queue
 * qid) in its slot, then resets its latch, tries to dequeue, and sleeps on
 * its latch only if it found nothing.  A send of a message visible at once
 * remembers the queue in the transaction; the XACT_EVENT_COMMIT callback,
 * which runs after the commit is visible to other snapshots, sets the latch
 * of every backend whose slot holds that key.  Since the waiter publishes
 * its key before it looks, and the sender looks at the slots only after its
 * commit is visible, a wake-up cannot be lost.  The same send also issues
 * NOTIFY on the channel ku9_queue_<name> (payload: the queue name), which
 * PostgreSQL delivers at commit, for clients that LISTEN.  A transaction
 * that read messages and aborts wakes waiters too (the messages are back),
 * and a waiter sleeps no longer than until the next delayed or in-flight
 * message is due.  A send committed by COMMIT PREPARED wakes no one.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/queue/queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "access/htup_details.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "ku9.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "queue/queue.h"

#define KU9_QUEUE_NAME_MAX 48
#define KU9_QUEUE_MAX_QTY 10000
#define KU9_QUEUE_MAX_VT 43200
#define KU9_QUEUE_DEDUP_MAX 512

#define OP(op) "OPERATOR(pg_catalog." op ")"

typedef enum QueuePlan
{
	PLAN_SEND,
	PLAN_SEND_DEDUP,
	PLAN_DEDUP_FIND,
	PLAN_SEND_BATCH,
	PLAN_READ,
	PLAN_POP,
	PLAN_ACK,
	PLAN_FAIL_LOCK,
	PLAN_FAIL_RETRY,
	PLAN_FAIL_DEAD,
	PLAN_SET_VT,
	PLAN_NEXT_DUE,
	PLAN_COUNT
} QueuePlan;

typedef struct Ku9Queue
{
	char		name[NAMEDATALEN];	/* hash key */
	Oid			relid;			/* q_<name>, or InvalidOid if not loaded */
	Oid			owner;
	int32		qid;
	int			vt;
	int			max_attempts;
	double		backoff_base;
	double		backoff_max;
	bool		archive;
	int			max_payload;
	SPIPlanPtr	plans[PLAN_COUNT];
} Ku9Queue;

static HTAB *queue_cache = NULL;

/* wake-ups: one slot per PGPROC */
typedef struct Ku9WaitSlot
{
	pg_atomic_uint64 key;		/* (database, qid) waited on, or 0 */
	pg_atomic_uint32 woken;		/* set by a sender before it sets the latch */
} Ku9WaitSlot;

static Ku9WaitSlot *wait_slots = NULL;
static int	wait_nslots = 0;
static List *pending_wakeups = NIL;	/* qids sent this transaction */
static List *taken_wakeups = NIL;	/* qids read from this transaction */
static bool xact_callback_registered = false;
static bool exit_callback_registered = false;

PG_FUNCTION_INFO_V1(ku9_create_queue);
PG_FUNCTION_INFO_V1(ku9_drop_queue);
PG_FUNCTION_INFO_V1(ku9_purge_queue);
PG_FUNCTION_INFO_V1(ku9_prune_archive);
PG_FUNCTION_INFO_V1(ku9_send);
PG_FUNCTION_INFO_V1(ku9_send_batch);
PG_FUNCTION_INFO_V1(ku9_read);
PG_FUNCTION_INFO_V1(ku9_pop);
PG_FUNCTION_INFO_V1(ku9_ack);
PG_FUNCTION_INFO_V1(ku9_nack);
PG_FUNCTION_INFO_V1(ku9_fail);
PG_FUNCTION_INFO_V1(ku9_extend);
PG_FUNCTION_INFO_V1(ku9_queue_stats);
PG_FUNCTION_INFO_V1(ku9_grant_queue);
PG_FUNCTION_INFO_V1(ku9_revoke_queue);

/* ------------------------------------------------------------------------
 * Shared memory and wake-ups
 * ------------------------------------------------------------------------
 */

static int
total_procs(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

/*
 * Ku9QueueShmemSize returns the shared memory of the wake-up slots.
 */
Size
Ku9QueueShmemSize(void)
{
	return mul_size(total_procs(), sizeof(Ku9WaitSlot));
}

/*
 * Ku9QueueShmemInit creates or attaches to the wake-up slots.  Called from
 * the shmem_startup_hook; takes AddinShmemInitLock.
 */
void
Ku9QueueShmemInit(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wait_nslots = total_procs();
	wait_slots = ShmemInitStruct("ku9 queue wakeups", Ku9QueueShmemSize(), &found);
	if (!found)
	{
		for (int i = 0; i < wait_nslots; i++)
		{
			pg_atomic_init_u64(&wait_slots[i].key, 0);
			pg_atomic_init_u32(&wait_slots[i].woken, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static inline uint64
wait_key(int32 qid)
{
	return ((uint64) MyDatabaseId << 32) | (uint32) qid;
}

static void
clear_wait_slot(int code, Datum arg)
{
	if (wait_slots != NULL && MyProc != NULL)
		pg_atomic_write_u64(&wait_slots[MyProc->pgprocno].key, 0);
}

/*
 * queue_xact_callback wakes, at commit, the readers waiting on queues this
 * transaction sent to.  The list lives in TopTransactionContext, so it is
 * simply forgotten at the end of every transaction.
 */
static void
wake_waiters(List *qids)
{
	ListCell   *lc;

	foreach(lc, qids)
	{
		uint64		key = wait_key(lfirst_int(lc));
		uint64		any = wait_key(KU9_WAIT_ANY_QUEUE);

		pg_memory_barrier();
		for (int i = 0; i < wait_nslots; i++)
		{
			uint64		waited = pg_atomic_read_u64(&wait_slots[i].key);

			if (waited == key || waited == any)
			{
				pg_atomic_write_u32(&wait_slots[i].woken, 1);
				SetLatch(&ProcGlobal->allProcs[i].procLatch);
			}
		}
	}
}

static void
queue_xact_callback(XactEvent event, void *arg)
{
	if (wait_slots != NULL)
	{
		/* a commit makes sent messages visible; an abort gives taken ones back */
		if (event == XACT_EVENT_COMMIT)
			wake_waiters(pending_wakeups);
		else if (event == XACT_EVENT_ABORT)
			wake_waiters(taken_wakeups);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		pending_wakeups = NIL;
		taken_wakeups = NIL;
	}
}

/*
 * remember_qid adds a queue to one of the transaction's wake-up lists (in
 * TopTransactionContext), registering the callback on first use.
 */
static void
remember_qid(List **list, int32 qid)
{
	MemoryContext oldcxt;

	if (wait_slots == NULL || list_member_int(*list, qid))
		return;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(queue_xact_callback, NULL);
		xact_callback_registered = true;
	}
	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	*list = lappend_int(*list, qid);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * note_send records that this transaction made a message of q visible: it
 * queues the NOTIFY and the commit-time wake-up.
 */
static void
note_send(Ku9Queue *q)
{
	char		channel[NAMEDATALEN];

	snprintf(channel, sizeof(channel), "ku9_queue_%s", q->name);
	Async_Notify(channel, q->name);
	remember_qid(&pending_wakeups, q->qid);
}

/*
 * Ku9QueueWaitAny makes this backend's latch be set by every commit that
 * makes a message of any queue of this database visible, and by
 * Ku9QueueWakeWorkersAtCommit; the background workers wait so.  It stays
 * in force until the process exits.  False without preloading.
 */
bool
Ku9QueueWaitAny(void)
{
	if (wait_slots == NULL || MyProc == NULL)
		return false;
	if (!exit_callback_registered)
	{
		before_shmem_exit(clear_wait_slot, (Datum) 0);
		exit_callback_registered = true;
	}
	pg_atomic_write_u64(&wait_slots[MyProc->pgprocno].key, wait_key(KU9_WAIT_ANY_QUEUE));
	pg_memory_barrier();
	return true;
}

/*
 * Ku9QueueWakeWorkersAtCommit wakes, when this transaction commits, the
 * backends in Ku9QueueWaitAny (work other than a queue message is waiting
 * for them).  False without preloading: no one would be woken.
 */
bool
Ku9QueueWakeWorkersAtCommit(void)
{
	if (wait_slots == NULL)
		return false;
	remember_qid(&pending_wakeups, KU9_WAIT_ANY_QUEUE);
	return true;
}

/* ------------------------------------------------------------------------
 * Arguments, names and privileges
 * ------------------------------------------------------------------------
 */

static char *
arg_queue_name(FunctionCallInfo fcinfo, int argno)
{
	return Ku9ArgName(fcinfo, argno, "queue", KU9_QUEUE_NAME_MAX);
}

static void
require_not_null(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("%s must not be null", what));
}

static char *
table_name(const char *prefix, const char *queue)
{
	return quote_qualified_identifier("ku9_queue", psprintf("%s_%s", prefix, queue));
}

/*
 * require_queue_privilege errors (42501) unless userid may send to
 * (ACL_INSERT) or read from (ACL_UPDATE) the queue.
 */
static void
require_queue_privilege(const char *name, Oid relid, Oid userid, AclMode mode)
{
	if (pg_class_aclcheck(relid, userid, mode) == ACLCHECK_OK)
		return;
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("permission denied to %s queue \"%s\"",
				   mode == ACL_INSERT ? "send to" : "read from", name),
			errhint("A member of ku9_service can grant it with ku9.grant_queue('%s', <role>, '%s').",
					name, mode == ACL_INSERT ? "send" : "read"));
}

static Oid
registry_owner(void)
{
	return Ku9RelationOwner("ku9", "queues");
}

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------
 */

typedef struct CreateOptions
{
	int			vt;
	int			max_attempts;
	double		backoff_base;
	double		backoff_max;
	bool		archive;
	char	   *retention;
	int			max_payload;
} CreateOptions;

static void
create_option(const char *key, JsonbValue *v, void *state)
{
	CreateOptions *o = state;
	const char *f = "ku9.create_queue";

	if (strcmp(key, "vt") == 0)
		o->vt = Ku9OptionInt(f, key, v, 0, KU9_QUEUE_MAX_VT);
	else if (strcmp(key, "max_attempts") == 0)
		o->max_attempts = Ku9OptionInt(f, key, v, 1, 1000000);
	else if (strcmp(key, "backoff_base") == 0)
	{
		o->backoff_base = Ku9OptionNumber(f, key, v);
		if (!(o->backoff_base > 0 && o->backoff_base <= 86400))
			Ku9OptionError(f, key, "expected seconds, more than 0 and at most 86400");
	}
	else if (strcmp(key, "backoff_max") == 0)
	{
		o->backoff_max = Ku9OptionNumber(f, key, v);
		if (!(o->backoff_max > 0 && o->backoff_max <= 7 * 86400))
			Ku9OptionError(f, key, "expected seconds, more than 0 and at most 604800");
	}
	else if (strcmp(key, "archive") == 0)
	{
		if (v->type != jbvBool)
			Ku9OptionError(f, key, "expected true or false");
		o->archive = v->val.boolean;
	}
	else if (strcmp(key, "retention") == 0)
	{
		Datum		interval;
		char	   *message;
		Interval	zero = {0};

		o->retention = Ku9OptionString(f, key, v);
		if (!Ku9TryCall(interval_in, CStringGetDatum(o->retention),
						ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1), &interval, &message))
			Ku9OptionError(f, key, psprintf("expected an interval such as '7 days' (%s)", message));
		if (DatumGetBool(DirectFunctionCall2(interval_lt, interval, IntervalPGetDatum(&zero))) ||
			DatumGetBool(DirectFunctionCall2(interval_gt, interval,
											 DirectFunctionCall3(interval_in, CStringGetDatum("100 years"),
																 ObjectIdGetDatum(InvalidOid),
																 Int32GetDatum(-1)))))
			Ku9OptionError(f, key, "expected an interval from zero to 100 years");
	}
	else if (strcmp(key, "max_payload") == 0)
		o->max_payload = Ku9OptionInt(f, key, v, 1, 256 * 1024 * 1024);
	else
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("unknown option \"%s\" for %s", key, f),
				errhint("Valid options are vt, max_attempts, backoff_base, backoff_max, archive, retention and max_payload."));
}

typedef struct SendOptions
{
	bool		batch;
	double		delay_s;		/* from a number */
	bool		has_at;
	TimestampTz at;				/* from a timestamp */
	int			priority;
	char	   *dedup_key;
	Jsonb	   *headers;
} SendOptions;

static void
send_option(const char *key, JsonbValue *v, void *state)
{
	SendOptions *o = state;
	const char *f = o->batch ? "ku9.send_batch" : "ku9.send";

	if (strcmp(key, "delay") == 0)
	{
		if (v->type == jbvString)
		{
			char	   *s = Ku9OptionString(f, key, v);
			Datum		at;
			char	   *message;

			if (!Ku9TryCall(timestamptz_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
							Int32GetDatum(-1), &at, &message))
				Ku9OptionError(f, key, psprintf("expected seconds or a timestamp (%s)", message));
			o->at = DatumGetTimestampTz(at);
			if (TIMESTAMP_NOT_FINITE(o->at) ||
				o->at > GetCurrentTimestamp() + (int64) 365 * USECS_PER_DAY)
				Ku9OptionError(f, key, "expected a timestamp at most one year ahead");
			o->has_at = true;
		}
		else
		{
			o->delay_s = Ku9OptionNumber(f, key, v);
			if (!(o->delay_s >= 0 && o->delay_s <= 365.0 * 86400))
				Ku9OptionError(f, key, "expected seconds from 0 to 31536000, or a timestamp");
		}
	}
	else if (strcmp(key, "priority") == 0)
		o->priority = Ku9OptionInt(f, key, v, -32768, 32767);
	else if (strcmp(key, "dedup_key") == 0 && !o->batch)
	{
		o->dedup_key = Ku9OptionString(f, key, v);
		if (o->dedup_key[0] == '\0' || strlen(o->dedup_key) > KU9_QUEUE_DEDUP_MAX)
			Ku9OptionError(f, key, psprintf("expected 1 to %d bytes", KU9_QUEUE_DEDUP_MAX));
	}
	else if (strcmp(key, "headers") == 0)
	{
		if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
			Ku9OptionError(f, key, "expected a JSON object");
		o->headers = JsonbValueToJsonb(v);
	}
	else
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("unknown option \"%s\" for %s", key, f),
				errhint(o->batch ? "Valid options are delay, priority and headers."
						: "Valid options are delay, priority, dedup_key and headers."));
}

/* ------------------------------------------------------------------------
 * The per-backend queue cache and prepared statements
 * ------------------------------------------------------------------------
 */

/* parameter types of each prepared statement */
static const struct
{
	int			nargs;
	Oid			types[6];
}			plan_args[PLAN_COUNT] = {
	[PLAN_SEND] = {5, {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID, JSONBOID}},
	[PLAN_SEND_DEDUP] = {6, {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID, JSONBOID, TEXTOID}},
	[PLAN_DEDUP_FIND] = {1, {TEXTOID}},
	[PLAN_SEND_BATCH] = {5, {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID, JSONBOID}},
	[PLAN_READ] = {4, {INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}},
	[PLAN_POP] = {4, {INT4OID, TIMESTAMPTZOID, BOOLOID, INT4OID}},
	[PLAN_ACK] = {3, {INT8ARRAYOID, TIMESTAMPTZOID, BOOLOID}},
	[PLAN_FAIL_LOCK] = {1, {INT8OID}},
	[PLAN_FAIL_RETRY] = {3, {INT8OID, TIMESTAMPTZOID, TEXTOID}},
	[PLAN_FAIL_DEAD] = {3, {INT8OID, TIMESTAMPTZOID, TEXTOID}},
	[PLAN_SET_VT] = {2, {INT8OID, TIMESTAMPTZOID}},
	[PLAN_NEXT_DUE] = {1, {TIMESTAMPTZOID}},
};

/*
 * plan_sql returns the text of a queue's prepared statement, palloc'd; its
 * parameters are plan_args[plan].
 */
static const char *
plan_sql(QueuePlan plan, Ku9Queue *q)
{
	char	   *qt = table_name("q", q->name);
	char	   *at = table_name("a", q->name);
	char	   *dt = table_name("d", q->name);
	const char *taken;

	/*
	 * read and pop start alike: c takes up to $1 visible messages (as of $2)
	 * in order, skipping locked ones; those that already had $4 attempts go
	 * to the dead letters (dead, buried), the others are handed out.  The
	 * statements address c's rows by msg_id = ANY (ARRAY(...)) rather than
	 * by joining c, so that one generic plan (index scans) serves every
	 * call.
	 */
	taken = psprintf("WITH c AS (SELECT msg_id, attempts FROM %s WHERE vt " OP("<=") " $2 "
					 "  ORDER BY priority DESC, msg_id LIMIT $1 FOR UPDATE SKIP LOCKED), "
					 "dead AS (DELETE FROM %s "
					 "  WHERE msg_id " OP("=") " ANY (ARRAY(SELECT msg_id FROM c WHERE attempts " OP(">=") " $4)) "
					 "  RETURNING *), "
					 "buried AS (INSERT INTO %s (msg_id, priority, enqueued_at, dead_at, attempts, dedup_key, headers, payload, last_error) "
					 "  SELECT msg_id, priority, enqueued_at, $2, attempts, dedup_key, headers, payload, "
					 "         COALESCE(last_error, 'visibility timeout expired after the last attempt') FROM dead "
					 "  RETURNING 1)",
					 qt, qt, dt);

	switch (plan)
	{
		case PLAN_SEND:
			return psprintf("INSERT INTO %s (priority, vt, enqueued_at, headers, payload) "
							"VALUES ($1, $2, $3, $4, $5) RETURNING msg_id", qt);
		case PLAN_SEND_DEDUP:
			return psprintf("INSERT INTO %s (priority, vt, enqueued_at, headers, payload, dedup_key) "
							"VALUES ($1, $2, $3, $4, $5, $6) "
							"ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING "
							"RETURNING msg_id", qt);
		case PLAN_DEDUP_FIND:
			return psprintf("SELECT msg_id FROM %s WHERE dedup_key " OP("=") " $1", qt);
		case PLAN_SEND_BATCH:
			return psprintf("INSERT INTO %s (priority, vt, enqueued_at, headers, payload) "
							"SELECT $1, $2, $3, $4, e "
							"FROM pg_catalog.jsonb_array_elements($5) WITH ORDINALITY AS t(e, n) "
							"ORDER BY n RETURNING msg_id", qt);
		case PLAN_READ:
			/* $1 qty, $2 now, $3 new vt, $4 max_attempts */
			return psprintf("%s, "
							"r AS (UPDATE %s SET vt = $3, attempts = attempts " OP("+") " 1 "
							"  WHERE msg_id " OP("=") " ANY (ARRAY(SELECT msg_id FROM c WHERE attempts " OP("<") " $4)) "
							"  RETURNING msg_id, attempts, enqueued_at, vt, payload, headers, priority) "
							"SELECT r.msg_id, r.attempts, r.enqueued_at, r.vt, r.payload, r.headers, b.buried "
							"FROM (SELECT pg_catalog.count(*) AS buried FROM buried) b LEFT JOIN r ON true "
							"ORDER BY r.priority DESC, r.msg_id",
							taken, qt);
		case PLAN_POP:
			/* $1 qty, $2 now, $3 archive?, $4 max_attempts */
			return psprintf("%s, "
							"m AS (DELETE FROM %s "
							"  WHERE msg_id " OP("=") " ANY (ARRAY(SELECT msg_id FROM c WHERE attempts " OP("<") " $4)) "
							"  RETURNING *), "
							"a AS (INSERT INTO %s (msg_id, priority, enqueued_at, acked_at, attempts, dedup_key, headers, payload) "
							"  SELECT msg_id, priority, enqueued_at, $2, attempts " OP("+") " 1, dedup_key, headers, payload "
							"  FROM m WHERE $3) "
							"SELECT m.msg_id, m.attempts " OP("+") " 1, m.enqueued_at, m.vt, m.payload, m.headers, b.buried "
							"FROM (SELECT pg_catalog.count(*) AS buried FROM buried) b LEFT JOIN m ON true "
							"ORDER BY m.priority DESC, m.msg_id",
							taken, qt, at);
		case PLAN_ACK:
			/* $1 ids, $2 now, $3 archive? */
			return psprintf("WITH m AS (DELETE FROM %s WHERE msg_id " OP("=") " ANY ($1) RETURNING *), "
							"a AS (INSERT INTO %s (msg_id, priority, enqueued_at, acked_at, attempts, dedup_key, headers, payload) "
							"  SELECT msg_id, priority, enqueued_at, $2, attempts, dedup_key, headers, payload "
							"  FROM m WHERE $3) "
							"SELECT pg_catalog.count(*) FROM m", qt, at);
		case PLAN_FAIL_LOCK:
			return psprintf("SELECT attempts FROM %s WHERE msg_id " OP("=") " $1 FOR UPDATE", qt);
		case PLAN_FAIL_RETRY:
			/* $1 id, $2 new vt, $3 error */
			return psprintf("UPDATE %s SET vt = $2, last_error = $3 WHERE msg_id " OP("=") " $1", qt);
		case PLAN_FAIL_DEAD:
			/* $1 id, $2 now, $3 error */
			return psprintf("WITH m AS (DELETE FROM %s WHERE msg_id " OP("=") " $1 RETURNING *) "
							"INSERT INTO %s (msg_id, priority, enqueued_at, dead_at, attempts, dedup_key, headers, payload, last_error) "
							"SELECT msg_id, priority, enqueued_at, $2, attempts, dedup_key, headers, payload, $3 FROM m",
							qt, dt);
		case PLAN_SET_VT:
			/* $1 id, $2 new vt */
			return psprintf("UPDATE %s SET vt = $2 WHERE msg_id " OP("=") " $1 RETURNING vt", qt);
		case PLAN_NEXT_DUE:
			/* $1 now: when the next hidden message becomes visible */
			return psprintf("SELECT pg_catalog.min(vt) FROM %s WHERE vt " OP(">") " $1", qt);
		case PLAN_COUNT:
			break;
	}
	elog(ERROR, "unknown queue plan %d", plan);
	return NULL;
}

/*
 * get_plan returns the prepared statement, preparing it on first use.
 * Caller is connected to SPI and runs as the queue's owner.
 */
static SPIPlanPtr
get_plan(Ku9Queue *q, QueuePlan which)
{
	if (q->plans[which] == NULL)
	{
		const char *sql = plan_sql(which, q);

		/*
		 * A generic plan: custom plans would be re-planned on every call, and
		 * LIMIT $1 and = ANY ($1) are planned well without their values.
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, plan_args[which].nargs,
											  (Oid *) plan_args[which].types,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		q->plans[which] = plan;
	}
	return q->plans[which];
}

static void
forget_plans(Ku9Queue *q)
{
	for (int i = 0; i < PLAN_COUNT; i++)
	{
		if (q->plans[i] != NULL)
			SPI_freeplan(q->plans[i]);
		q->plans[i] = NULL;
	}
}

/*
 * load_options reads the queue's row of ku9.queues into q.  Caller is
 * connected to SPI.
 */
static void
load_options(Ku9Queue *q)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int			ret;

	values[0] = CStringGetTextDatum(q->name);
	ret = SPI_execute_with_args("SELECT qid, vt, max_attempts, backoff_base, backoff_max, archive, max_payload "
								"FROM ku9.queues WHERE name " OP("=") " $1",
								1, types, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("queue \"%s\" does not exist", q->name),
				errdetail("Its table exists but ku9.queues has no row for it."));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	q->qid = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	q->vt = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	q->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	q->backoff_base = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
	q->backoff_max = DatumGetFloat8(SPI_getbinval(tup, desc, 5, &isnull));
	q->archive = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
	q->max_payload = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
}

typedef struct QueueCheck
{
	Oid			userid;
	AclMode		mode;
	const char *name;
} QueueCheck;

/*
 * check_before_lock is open_queue's RangeVarGetRelidExtended callback: it
 * checks the caller's privilege on the queue before its table is locked, so
 * that a caller without one cannot even queue for the lock.
 */
static void
check_before_lock(const RangeVar *relation, Oid relid, Oid oldrelid, void *arg)
{
	QueueCheck *check = arg;

	if (OidIsValid(relid) && check->mode != 0)
		require_queue_privilege(check->name, relid, check->userid, check->mode);
}

/*
 * open_queue finds a queue by name and returns its cache entry, (re)loaded
 * when the queue is new to this backend or was re-created.  It switches to
 * the queue tables' owner (recording the caller in *call; the caller
 * restores it with Ku9RestoreUser), locks the message table in
 * RowExclusiveLock, and, when mode is not 0, checks (before the lock) that
 * the caller holds that privilege on the queue (ACL_INSERT to send,
 * ACL_UPDATE to read).
 * Errors 42704 when the queue does not exist and 42501 without the
 * privilege.  Caller is connected to SPI.
 */
static Ku9Queue *
open_queue(const char *name, AclMode mode, Ku9SavedUser *call)
{
	RangeVar   *rv;
	Oid			relid;
	Ku9Queue   *q;
	bool		found;
	char		key[NAMEDATALEN];
	Oid			owner;
	QueueCheck	check;

	if (queue_cache == NULL)
	{
		HASHCTL		info;

		memset(&info, 0, sizeof(info));
		info.keysize = NAMEDATALEN;
		info.entrysize = sizeof(Ku9Queue);
		info.hcxt = TopMemoryContext;
		queue_cache = hash_create("ku9 queue cache", 32, &info,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	q = hash_search(queue_cache, key, HASH_FIND, NULL);

	/* the caller may not even see the schema ku9_queue: look as the owner */
	Ku9BecomeUser(q != NULL ? q->owner : registry_owner(), call);

	rv = makeRangeVar("ku9_queue", psprintf("q_%s", name), -1);
	check.userid = call->userid;
	check.mode = mode;
	check.name = name;
	relid = RangeVarGetRelidExtended(rv, RowExclusiveLock, RVR_MISSING_OK,
									 check_before_lock, &check);
	if (!OidIsValid(relid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("queue \"%s\" does not exist", name));

	/* only queues that exist get an entry */
	if (q == NULL)
	{
		q = hash_search(queue_cache, key, HASH_ENTER, &found);
		q->relid = InvalidOid;
		q->owner = InvalidOid;
		memset(q->plans, 0, sizeof(q->plans));
	}
	if (q->relid != relid)
	{
		forget_plans(q);
		q->relid = InvalidOid;
		load_options(q);
		q->relid = relid;
	}

	/* the tables may have changed hands (ALTER TABLE ... OWNER) */
	owner = Ku9RelationOwnerById(relid);
	if (owner != q->owner)
	{
		q->owner = owner;
		Ku9RestoreUser(call);
		Ku9BecomeUser(owner, call);
	}

	return q;
}

static void
spi_exec(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int			ret = SPI_execute_plan(plan, values, nulls, false, 0);

	if (ret != expected)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
}

/* ------------------------------------------------------------------------
 * Management
 * ------------------------------------------------------------------------
 */

/*
 * ku9_create_queue creates a queue: its registry row and its tables.
 */
Datum
ku9_create_queue(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	Jsonb	   *options = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	CreateOptions o = {30, 5, 1.0, 3600.0, false, "7 days", 1048576};
	Ku9SavedUser call;
	int			guc_level;
	Oid			types[8] = {TEXTOID, INT4OID, INT4OID, FLOAT8OID, FLOAT8OID, BOOLOID, TEXTOID, INT4OID};
	Datum		values[8];
	char	   *qt = table_name("q", name);
	char	   *at = table_name("a", name);
	char	   *dt = table_name("d", name);
	int			ret;

	Ku9RequireService("create a queue", "Only members of ku9_service manage queues.");
	guc_level = Ku9RestrictSearchPath();
	Ku9OptionsIterate("ku9.create_queue", options, create_option, &o);
	if (o.backoff_max < o.backoff_base)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("option \"backoff_max\" (%g) must not be less than \"backoff_base\" (%g)",
					   o.backoff_max, o.backoff_base));

	Ku9SpiConnect();
	Ku9BecomeUser(registry_owner(), &call);

	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(o.vt);
	values[2] = Int32GetDatum(o.max_attempts);
	values[3] = Float8GetDatum(o.backoff_base);
	values[4] = Float8GetDatum(o.backoff_max);
	values[5] = BoolGetDatum(o.archive);
	values[6] = CStringGetTextDatum(o.retention);
	values[7] = Int32GetDatum(o.max_payload);
	ret = SPI_execute_with_args("INSERT INTO ku9.queues (name, vt, max_attempts, backoff_base, backoff_max, archive, retention, max_payload) "
								"VALUES ($1, $2, $3, $4, $5, $6, $7::pg_catalog.interval, $8) "
								"ON CONFLICT (name) DO NOTHING",
								8, types, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				errcode(ERRCODE_DUPLICATE_OBJECT),
				errmsg("queue \"%s\" already exists", name));

	/*
	 * Types are qualified, and index, constraint and sequence names carry a
	 * '$', which queue names cannot, so no queue's objects clash with
	 * another's.
	 */
	Ku9SpiRun(psprintf("CREATE TABLE %s ("
					 "msg_id pg_catalog.int8 GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME %s), "
					 "priority pg_catalog.int4 NOT NULL DEFAULT 0, "
					 "vt pg_catalog.timestamptz NOT NULL, "
					 "enqueued_at pg_catalog.timestamptz NOT NULL, "
					 "attempts pg_catalog.int4 NOT NULL DEFAULT 0, "
					 "dedup_key pg_catalog.text, "
					 "headers pg_catalog.jsonb, "
					 "payload pg_catalog.jsonb NOT NULL, "
					 "last_error pg_catalog.text, "
					 "CONSTRAINT %s PRIMARY KEY (msg_id))",
					 qt, table_name("q", psprintf("%s$msg_id_seq", name)),
					 quote_identifier(psprintf("q_%s$pkey", name))));
	Ku9SpiRun(psprintf("CREATE INDEX %s ON %s (priority DESC, msg_id)",
					 quote_identifier(psprintf("q_%s$dequeue", name)), qt));
	Ku9SpiRun(psprintf("CREATE UNIQUE INDEX %s ON %s (dedup_key) WHERE dedup_key IS NOT NULL",
					 quote_identifier(psprintf("q_%s$dedup", name)), qt));
	Ku9SpiRun(psprintf("CREATE TABLE %s ("
					 "msg_id pg_catalog.int8, "
					 "priority pg_catalog.int4 NOT NULL, "
					 "enqueued_at pg_catalog.timestamptz NOT NULL, "
					 "acked_at pg_catalog.timestamptz NOT NULL, "
					 "attempts pg_catalog.int4 NOT NULL, "
					 "dedup_key pg_catalog.text, "
					 "headers pg_catalog.jsonb, "
					 "payload pg_catalog.jsonb NOT NULL, "
					 "CONSTRAINT %s PRIMARY KEY (msg_id))",
					 at, quote_identifier(psprintf("a_%s$pkey", name))));
	Ku9SpiRun(psprintf("CREATE INDEX %s ON %s (acked_at)",
					 quote_identifier(psprintf("a_%s$acked_at", name)), at));
	Ku9SpiRun(psprintf("CREATE TABLE %s ("
					 "msg_id pg_catalog.int8, "
					 "priority pg_catalog.int4 NOT NULL, "
					 "enqueued_at pg_catalog.timestamptz NOT NULL, "
					 "dead_at pg_catalog.timestamptz NOT NULL, "
					 "attempts pg_catalog.int4 NOT NULL, "
					 "dedup_key pg_catalog.text, "
					 "headers pg_catalog.jsonb, "
					 "payload pg_catalog.jsonb NOT NULL, "
					 "last_error pg_catalog.text, "
					 "CONSTRAINT %s PRIMARY KEY (msg_id))",
					 dt, quote_identifier(psprintf("d_%s$pkey", name))));
	Ku9SpiRun(psprintf("GRANT SELECT, INSERT, UPDATE ON %s TO ku9_service", qt));
	Ku9SpiRun(psprintf("GRANT SELECT ON %s, %s TO ku9_service", at, dt));

	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_VOID();
}

/*
 * ku9_drop_queue drops a queue and its tables; false when it does not exist.
 */
Datum
ku9_drop_queue(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	Ku9SavedUser call;
	int			guc_level;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			ret;
	bool		existed;

	Ku9RequireService("drop a queue", "Only members of ku9_service manage queues.");
	guc_level = Ku9RestrictSearchPath();
	Ku9SpiConnect();
	Ku9BecomeUser(registry_owner(), &call);

	/* queues the extension made (ku9_mail) go only with the extension */
	{
		Oid			nsp = get_namespace_oid("ku9_queue", true);
		Oid			relid = OidIsValid(nsp) ? get_relname_relid(psprintf("q_%s", name), nsp) : InvalidOid;

		if (OidIsValid(relid) && OidIsValid(getExtensionOfObject(RelationRelationId, relid)))
			ereport(ERROR,
					errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					errmsg("queue \"%s\" belongs to the extension ku9 and cannot be dropped", name),
					errhint("Use ku9.purge_queue() to empty it."));
	}

	values[0] = CStringGetTextDatum(name);
	ret = SPI_execute_with_args("DELETE FROM ku9.queues WHERE name " OP("=") " $1",
								1, types, values, NULL, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	existed = SPI_processed > 0;
	if (existed)
		Ku9SpiRun(psprintf("DROP TABLE IF EXISTS %s, %s, %s",
						 table_name("q", name), table_name("a", name), table_name("d", name)));

	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_BOOL(existed);
}

/*
 * ku9_purge_queue deletes every message of a queue and returns how many.
 */
Datum
ku9_purge_queue(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	Ku9SavedUser call;
	int			guc_level;
	uint64		n;

	Ku9RequireService("purge a queue", "Only members of ku9_service manage queues.");
	guc_level = Ku9RestrictSearchPath();
	Ku9SpiConnect();
	(void) open_queue(name, 0, &call);
	Ku9SpiRun(psprintf("DELETE FROM %s", table_name("q", name)));
	n = SPI_processed;
	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_INT64((int64) n);
}

/*
 * ku9_prune_archive deletes archived messages older than their queue's
 * retention, in one queue or (NULL) in all, and returns how many.
 */
Datum
ku9_prune_archive(PG_FUNCTION_ARGS)
{
	char	   *name = PG_ARGISNULL(0) ? NULL : arg_queue_name(fcinfo, 0);
	Ku9SavedUser call;
	int			guc_level;
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2];
	char		nulls[2] = {name ? ' ' : 'n', ' '};
	SPITupleTable *queues;
	uint64		nqueues;
	int64		total = 0;
	int			ret;

	Ku9RequireService("prune queue archives", "Only members of ku9_service manage queues.");
	guc_level = Ku9RestrictSearchPath();
	Ku9SpiConnect();
	Ku9BecomeUser(registry_owner(), &call);

	values[0] = name ? CStringGetTextDatum(name) : (Datum) 0;
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	ret = SPI_execute_with_args("SELECT name, $2 " OP("-") " retention FROM ku9.queues "
								"WHERE $1 IS NULL OR name " OP("=") " $1 ORDER BY name",
								2, types, values, nulls, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (name != NULL && SPI_processed == 0)
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("queue \"%s\" does not exist", name));
	queues = SPI_tuptable;
	nqueues = SPI_processed;

	for (uint64 i = 0; i < nqueues; i++)
	{
		char	   *qname = SPI_getvalue(queues->vals[i], queues->tupdesc, 1);
		bool		isnull;
		Datum		cutoff[1];
		Oid			cutoff_type[1] = {TIMESTAMPTZOID};

		cutoff[0] = SPI_getbinval(queues->vals[i], queues->tupdesc, 2, &isnull);
		ret = SPI_execute_with_args(psprintf("DELETE FROM %s WHERE acked_at " OP("<") " $1",
											 table_name("a", qname)),
									1, cutoff_type, cutoff, NULL, false, 0);
		if (ret != SPI_OK_DELETE)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
		total += SPI_processed;
	}

	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_INT64(total);
}

static void
grant_or_revoke(FunctionCallInfo fcinfo, bool grant)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	Oid			role;
	char	   *privilege;
	const char *acl;
	Ku9SavedUser call;
	int			guc_level;

	require_not_null(fcinfo, 1, "role");
	require_not_null(fcinfo, 2, "privilege");
	role = PG_GETARG_OID(1);
	privilege = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (strcmp(privilege, "send") == 0)
		acl = "INSERT";
	else if (strcmp(privilege, "read") == 0)
		acl = "UPDATE";
	else
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid queue privilege \"%s\"", privilege),
				errhint("The queue privileges are 'send' and 'read'."));

	Ku9RequireService(grant ? "grant queue privileges" : "revoke queue privileges", "Only members of ku9_service manage queues.");
	guc_level = Ku9RestrictSearchPath();
	Ku9SpiConnect();
	(void) open_queue(name, 0, &call);
	Ku9SpiRun(psprintf(grant ? "GRANT %s ON %s TO %s" : "REVOKE %s ON %s FROM %s",
					 acl, table_name("q", name),
					 quote_identifier(GetUserNameFromId(role, false))));
	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);

	if (grant && pg_namespace_aclcheck(get_namespace_oid("ku9", false), role, ACL_USAGE) != ACLCHECK_OK)
		ereport(NOTICE,
				errmsg("role \"%s\" cannot call ku9's functions yet", GetUserNameFromId(role, false)),
				errhint("Grant it one of ku9_anon, ku9_user or ku9_service, which have USAGE on schema ku9."));
}

/*
 * ku9_grant_queue lets a role send to or read from a queue.
 */
Datum
ku9_grant_queue(PG_FUNCTION_ARGS)
{
	grant_or_revoke(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * ku9_revoke_queue takes back a privilege given by ku9_grant_queue.
 */
Datum
ku9_revoke_queue(PG_FUNCTION_ARGS)
{
	grant_or_revoke(fcinfo, false);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------
 */

static void
check_payload(Ku9Queue *q, Jsonb *payload)
{
	if (JB_ROOT_IS_SCALAR(payload))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("message payload must be a JSON object or array"));
	if ((int) VARSIZE(payload) > q->max_payload)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("message payload of %d bytes is larger than the %d bytes queue \"%s\" accepts",
					   (int) VARSIZE(payload), q->max_payload, q->name),
				errhint("Raise the queue's max_payload option, or store large data elsewhere."));
}

/*
 * send_params fills the first five parameters of the send statements
 * (priority, vt, enqueued_at, headers, payload or payloads) and returns
 * true when the messages are visible at once.
 */
static bool
send_params(SendOptions *o, Jsonb *payload, Datum *values, char *nulls)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz vt;

	if (o->has_at)
		vt = Max(o->at, now);
	else
		vt = now + (int64) (o->delay_s * USECS_PER_SEC);

	values[0] = Int32GetDatum(o->priority);
	values[1] = TimestampTzGetDatum(vt);
	values[2] = TimestampTzGetDatum(now);
	values[3] = o->headers ? JsonbPGetDatum(o->headers) : (Datum) 0;
	nulls[3] = o->headers ? ' ' : 'n';
	values[4] = JsonbPGetDatum(payload);
	return vt <= now;
}

/*
 * ku9_send stores one message and returns its id; with a dedup key that a
 * pending message already has, it returns that message's id instead.
 */
Datum
ku9_send(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	Jsonb	   *payload;
	SendOptions o = {0};
	Ku9Queue   *q;
	Ku9SavedUser call;
	bool		visible;
	Datum		values[6];
	char		nulls[6] = "      ";
	int64		msg_id = 0;
	bool		isnull;
	bool		stored = false;

	require_not_null(fcinfo, 1, "message payload");
	payload = PG_GETARG_JSONB_P(1);
	Ku9OptionsIterate("ku9.send", PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2), send_option, &o);

	Ku9SpiConnect();
	q = open_queue(name, ACL_INSERT, &call);
	check_payload(q, payload);
	visible = send_params(&o, payload, values, nulls);

	if (o.dedup_key == NULL)
	{
		spi_exec(get_plan(q, PLAN_SEND), values, nulls, SPI_OK_INSERT_RETURNING);
		msg_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		stored = true;
	}
	else
	{
		Datum		key[1];

		values[5] = CStringGetTextDatum(o.dedup_key);
		key[0] = values[5];
		/* the pending message may be acked meanwhile: then insert again */
		for (;;)
		{
			spi_exec(get_plan(q, PLAN_SEND_DEDUP), values, nulls, SPI_OK_INSERT_RETURNING);
			if (SPI_processed == 1)
			{
				msg_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
				stored = true;
				break;
			}
			spi_exec(get_plan(q, PLAN_DEDUP_FIND), key, NULL, SPI_OK_SELECT);
			if (SPI_processed == 1)
			{
				msg_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
				break;
			}
			CHECK_FOR_INTERRUPTS();
		}
	}
	Ku9RestoreUser(&call);
	SPI_finish();

	if (stored)
	{
		Ku9MetricInc(KU9_M_QUEUE_SENT, q->name);
		if (visible)
			note_send(q);
	}
	PG_RETURN_INT64(msg_id);
}

/*
 * ku9_send_batch stores each element of a JSON array as a message and
 * returns their ids in order.
 */
Datum
ku9_send_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = arg_queue_name(fcinfo, 0);
	Jsonb	   *payloads;
	SendOptions o = {0};
	Ku9Queue   *q;
	Ku9SavedUser call;
	bool		visible;
	Datum		values[5];
	char		nulls[5] = "     ";
	int			count;

	require_not_null(fcinfo, 1, "payloads");
	payloads = PG_GETARG_JSONB_P(1);
	o.batch = true;
	Ku9OptionsIterate("ku9.send_batch", PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2), send_option, &o);
	if (!JB_ROOT_IS_ARRAY(payloads) || JB_ROOT_IS_SCALAR(payloads))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("payloads must be a JSON array of message payloads"));
	count = JB_ROOT_COUNT(payloads);
	if (count > KU9_QUEUE_MAX_QTY)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("a batch of %d messages is more than the %d allowed", count, KU9_QUEUE_MAX_QTY));

	Ku9InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	Ku9SpiConnect();
	q = open_queue(name, ACL_INSERT, &call);
	for (int i = 0; i < count; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(&payloads->root, i);
		Jsonb	   *element;

		if (v->type != jbvBinary)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("message payload must be a JSON object or array"),
					errdetail("Element %d of the batch is a scalar.", i + 1));
		element = JsonbValueToJsonb(v);
		check_payload(q, element);
		pfree(element);
	}
	if (count == 0)
	{
		Ku9RestoreUser(&call);
		SPI_finish();
		PG_RETURN_VOID();
	}
	visible = send_params(&o, payloads, values, nulls);
	spi_exec(get_plan(q, PLAN_SEND_BATCH), values, nulls, SPI_OK_INSERT_RETURNING);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		id = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, &isnull);
	}
	Ku9RestoreUser(&call);
	SPI_finish();

	Ku9MetricAdd(KU9_M_QUEUE_SENT, q->name, count);
	if (visible)
		note_send(q);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------
 */

static int
arg_qty(FunctionCallInfo fcinfo, int argno)
{
	int			qty;

	require_not_null(fcinfo, argno, "qty");
	qty = PG_GETARG_INT32(argno);
	if (qty < 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("qty must be at least 1, not %d", qty));
	if (qty > KU9_QUEUE_MAX_QTY)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("qty of %d is more than the %d allowed", qty, KU9_QUEUE_MAX_QTY));
	return qty;
}

static int
check_vt(int vt)
{
	if (vt < 0 || vt > KU9_QUEUE_MAX_VT)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("vt must be from 0 to %d seconds, not %d", KU9_QUEUE_MAX_VT, vt));
	return vt;
}

/*
 * dequeue hands out up to qty visible messages into the tuplestore and
 * returns how many: it runs the read statement (or, for pop, the pop
 * statement) and, when that dead-lettered messages whose attempts were used
 * up instead of handing them out, runs it again for the rest.  Caller is
 * connected to SPI and runs as the owner.
 */
static uint64
dequeue(Ku9Queue *q, int qty, int vt, ReturnSetInfo *rsinfo, bool pop)
{
	uint64		total = 0;

	for (;;)
	{
		Datum		values[4];
		TimestampTz now = GetCurrentTimestamp();
		int64		buried = 0;

		values[0] = Int32GetDatum(qty - (int) total);
		values[1] = TimestampTzGetDatum(now);
		if (pop)
			values[2] = BoolGetDatum(q->archive);
		else
			values[2] = TimestampTzGetDatum(now + (int64) vt * USECS_PER_SEC);
		values[3] = Int32GetDatum(q->max_attempts);
		spi_exec(get_plan(q, pop ? PLAN_POP : PLAN_READ), values, NULL, SPI_OK_SELECT);

		/* every row carries the dead-letter count; no message: a NULL id */
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			Datum		cols[7];
			bool		nulls[7];

			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, cols, nulls);
			buried = DatumGetInt64(cols[6]);
			if (nulls[0])
				continue;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, cols, nulls);
			total++;
		}
		SPI_freetuptable(SPI_tuptable);
		if (total > 0)
			remember_qid(&taken_wakeups, q->qid);
		if (buried > 0)
			Ku9MetricAdd(KU9_M_QUEUE_DEAD, q->name, buried);
		if (buried == 0 || total >= (uint64) qty)
			break;
	}
	if (total > 0)
	{
		Ku9MetricAdd(KU9_M_QUEUE_READ, q->name, total);
		if (pop)
			Ku9MetricAdd(KU9_M_QUEUE_ACKED, q->name, total);
	}
	return total;
}

/*
 * until_next_due returns the milliseconds until the queue's next hidden
 * message (delayed, or in flight) becomes visible, at least 1; LONG_MAX
 * when there is none.  Caller is connected to SPI as the owner.
 */
static long
until_next_due(Ku9Queue *q)
{
	Datum		now = TimestampTzGetDatum(GetCurrentTimestamp());
	bool		isnull;
	Datum		due;
	long		ms = LONG_MAX;

	spi_exec(get_plan(q, PLAN_NEXT_DUE), &now, NULL, SPI_OK_SELECT);
	due = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		ms = Max(1, TimestampDifferenceMilliseconds(DatumGetTimestampTz(now),
													 DatumGetTimestampTz(due)) + 1);
	SPI_freetuptable(SPI_tuptable);
	return ms;
}

/*
 * ku9_read hands out up to qty visible messages, hidden for vt seconds.
 * With wait_ms > 0 and nothing to hand out it sleeps on its latch until a
 * send to this queue commits, or wait_ms passes.
 */
Datum
ku9_read(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = arg_queue_name(fcinfo, 0);
	int			qty = arg_qty(fcinfo, 1);
	int			wait_ms;
	int			vt;
	Ku9Queue   *q;
	Ku9SavedUser call;
	TimestampTz deadline;
	bool		waited = false;

	require_not_null(fcinfo, 3, "wait_ms");
	wait_ms = PG_GETARG_INT32(3);
	if (wait_ms < 0 || wait_ms > ku9_queue_max_wait)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("wait_ms must be from 0 to %d, not %d", ku9_queue_max_wait, wait_ms),
				errhint("The upper bound is the setting \"%s\".", "ku9.queue_max_wait"));
	if (wait_ms > 0 && IsolationUsesXactSnapshot())
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("ku9.read with wait_ms needs the READ COMMITTED isolation level"),
				errdetail("A transaction snapshot would never see messages sent while it waits."));
	if (wait_ms > 0 && wait_slots == NULL)
	{
		Ku9RequirePreloadNotice("queue wake-ups");
		wait_ms = 0;
	}

	Ku9InitMaterializedSRF(fcinfo, 0);
	Ku9SpiConnect();
	q = open_queue(name, ACL_UPDATE, &call);
	vt = PG_ARGISNULL(2) ? q->vt : check_vt(PG_GETARG_INT32(2));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);

	if (wait_ms == 0)
		(void) dequeue(q, qty, vt, rsinfo, false);
	else
	{
		Ku9WaitSlot *slot = &wait_slots[MyProc->pgprocno];
		uint64		standing_key = pg_atomic_read_u64(&slot->key);

		if (!exit_callback_registered)
		{
			before_shmem_exit(clear_wait_slot, (Datum) 0);
			exit_callback_registered = true;
		}
		PG_TRY();
		{
			pg_atomic_write_u32(&slot->woken, 0);
			pg_atomic_write_u64(&slot->key, wait_key(q->qid));
			pg_memory_barrier();
			for (;;)
			{
				long		remaining;

				ResetLatch(MyLatch);
				if (dequeue(q, qty, vt, rsinfo, false) > 0)
				{
					if (pg_atomic_read_u32(&slot->woken) != 0)
						Ku9MetricInc(KU9_M_QUEUE_WAKEUPS, q->name);
					break;
				}
				remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
				if (remaining <= 0)
					break;
				/* delayed and in-flight messages wake no one: sleep until the next is due */
				remaining = Min(remaining, until_next_due(q));
				if (!waited)
				{
					waited = true;
					Ku9MetricInc(KU9_M_QUEUE_WAITS, q->name);
				}
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 remaining, KU9_WAIT_EVENT_EXTENSION);
				CHECK_FOR_INTERRUPTS();
			}
		}
		PG_FINALLY();
		{
			/* a background worker's standing "any queue" wait goes on */
			pg_atomic_write_u64(&wait_slots[MyProc->pgprocno].key, standing_key);
		}
		PG_END_TRY();
	}
	Ku9RestoreUser(&call);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * ku9_pop hands out and deletes up to qty visible messages (archiving them
 * when the queue archives).
 */
Datum
ku9_pop(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = arg_queue_name(fcinfo, 0);
	int			qty = arg_qty(fcinfo, 1);
	Ku9Queue   *q;
	Ku9SavedUser call;

	Ku9InitMaterializedSRF(fcinfo, 0);
	Ku9SpiConnect();
	q = open_queue(name, ACL_UPDATE, &call);
	(void) dequeue(q, qty, 0, rsinfo, true);
	Ku9RestoreUser(&call);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * ku9_ack deletes (or archives) messages and returns how many it found.
 */
Datum
ku9_ack(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	ArrayType  *ids;
	Ku9Queue   *q;
	Ku9SavedUser call;
	Datum		values[3];
	bool		isnull;
	int64		n;

	require_not_null(fcinfo, 1, "ids");
	ids = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(ids) > 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("ids must be a one-dimensional array"));

	Ku9SpiConnect();
	q = open_queue(name, ACL_UPDATE, &call);

	values[0] = PointerGetDatum(ids);
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[2] = BoolGetDatum(q->archive);
	spi_exec(get_plan(q, PLAN_ACK), values, NULL, SPI_OK_SELECT);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	Ku9RestoreUser(&call);
	SPI_finish();

	if (n > 0)
		Ku9MetricAdd(KU9_M_QUEUE_ACKED, q->name, n);
	PG_RETURN_INT32((int32) n);
}

/*
 * set_vt sets a message's vt; returns false when it does not exist.
 */
static bool
set_vt(const char *name, int64 id, int seconds, TimestampTz *newvt)
{
	Ku9Queue   *q;
	Ku9SavedUser call;
	Datum		values[2];
	bool		found;

	Ku9SpiConnect();
	q = open_queue(name, ACL_UPDATE, &call);

	values[0] = Int64GetDatum(id);
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp() + (int64) seconds * USECS_PER_SEC);
	spi_exec(get_plan(q, PLAN_SET_VT), values, NULL, SPI_OK_UPDATE_RETURNING);
	found = SPI_processed > 0;
	if (found && newvt)
	{
		bool		isnull;

		*newvt = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (found && seconds == 0)
		note_send(q);
	Ku9RestoreUser(&call);
	SPI_finish();
	return found;
}

/*
 * ku9_nack makes a message visible again after delay seconds.
 */
Datum
ku9_nack(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	int			delay;

	require_not_null(fcinfo, 1, "id");
	require_not_null(fcinfo, 2, "delay");
	delay = PG_GETARG_INT32(2);
	if (delay < 0 || delay > KU9_QUEUE_MAX_VT)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("delay must be from 0 to %d seconds, not %d", KU9_QUEUE_MAX_VT, delay));
	PG_RETURN_BOOL(set_vt(name, PG_GETARG_INT64(1), delay, NULL));
}

/*
 * ku9_extend hides a message for vt more seconds from now; returns its new
 * vt, or NULL when it does not exist.
 */
Datum
ku9_extend(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	TimestampTz newvt;
	int			vt;

	require_not_null(fcinfo, 1, "id");
	require_not_null(fcinfo, 2, "vt");
	vt = check_vt(PG_GETARG_INT32(2));
	if (!set_vt(name, PG_GETARG_INT64(1), vt, &newvt))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(newvt);
}

/*
 * backoff_delay returns the retry delay after the given attempt, in
 * microseconds: base * 2^(attempts - 1), capped at max, with equal jitter
 * (between half and all of it).
 */
static int64
backoff_delay(Ku9Queue *q, int attempts)
{
	double		delay = q->backoff_base * pow(2.0, Max(attempts, 1) - 1);

	delay = Min(delay, q->backoff_max);
	delay = delay / 2 + pg_prng_double(&pg_global_prng_state) * delay / 2;
	return (int64) (delay * USECS_PER_SEC);
}

/*
 * ku9_fail records a failed attempt: the message is retried after a
 * backoff ('retry'), or moved to the dead letters once it has had
 * max_attempts ('dead').  NULL when the message does not exist.
 */
Datum
ku9_fail(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	int64		id;
	text	   *error;
	Ku9Queue   *q;
	Ku9SavedUser call;
	Datum		values[3];
	bool		isnull;
	int			attempts;
	TimestampTz now = GetCurrentTimestamp();
	const char *result;

	require_not_null(fcinfo, 1, "id");
	id = PG_GETARG_INT64(1);
	error = PG_ARGISNULL(2) ? cstring_to_text("(no error given)") : PG_GETARG_TEXT_PP(2);

	Ku9SpiConnect();
	q = open_queue(name, ACL_UPDATE, &call);

	values[0] = Int64GetDatum(id);
	spi_exec(get_plan(q, PLAN_FAIL_LOCK), values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		Ku9RestoreUser(&call);
		SPI_finish();
		PG_RETURN_NULL();
	}
	attempts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	values[2] = PointerGetDatum(error);
	if (attempts >= q->max_attempts)
	{
		values[1] = TimestampTzGetDatum(now);
		spi_exec(get_plan(q, PLAN_FAIL_DEAD), values, NULL, SPI_OK_INSERT);
		result = "dead";
	}
	else
	{
		values[1] = TimestampTzGetDatum(now + backoff_delay(q, attempts));
		spi_exec(get_plan(q, PLAN_FAIL_RETRY), values, NULL, SPI_OK_UPDATE);
		result = "retry";
	}
	Ku9RestoreUser(&call);
	SPI_finish();

	Ku9MetricInc(KU9_M_QUEUE_FAILED, q->name);
	if (strcmp(result, "dead") == 0)
		Ku9MetricInc(KU9_M_QUEUE_DEAD, q->name);
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------
 */

/*
 * ku9_queue_stats counts a queue's messages by state, with the totals since
 * server start from the metrics.
 */
Datum
ku9_queue_stats(PG_FUNCTION_ARGS)
{
	char	   *name = arg_queue_name(fcinfo, 0);
	TupleDesc	desc;
	Ku9Queue   *q;
	Ku9SavedUser call;
	int			guc_level;
	Datum		values[13];
	bool		nulls[13] = {false};
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		args[1];
	HeapTuple	tup;
	int			ret;
	static const Ku9MetricId totals[] = {
		KU9_M_QUEUE_SENT, KU9_M_QUEUE_READ, KU9_M_QUEUE_ACKED,
		KU9_M_QUEUE_FAILED, KU9_M_QUEUE_DEAD
	};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	Ku9RequireService("read queue statistics", "Only members of ku9_service manage queues.");
	guc_level = Ku9RestrictSearchPath();
	Ku9SpiConnect();
	q = open_queue(name, 0, &call);
	args[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	ret = SPI_execute_with_args(psprintf("SELECT pg_catalog.count(*), "
										 "pg_catalog.count(*) FILTER (WHERE vt " OP("<=") " $1), "
										 "pg_catalog.count(*) FILTER (WHERE vt " OP(">") " $1 AND attempts " OP(">") " 0), "
										 "pg_catalog.count(*) FILTER (WHERE vt " OP(">") " $1 AND attempts " OP("=") " 0), "
										 "(SELECT pg_catalog.count(*) FROM %s), "
										 "(SELECT pg_catalog.count(*) FROM %s), "
										 "$1 " OP("-") " pg_catalog.min(enqueued_at) "
										 "FROM %s",
										 table_name("d", name), table_name("a", name),
										 table_name("q", name)),
								1, types, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));

	values[0] = CStringGetTextDatum(name);
	for (int i = 0; i < 7; i++)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									  i + 1, &nulls[i + 1]);

		/* counts are by value; the interval (oldest age) is copied out */
		values[i + 1] = (i == 6 && !nulls[i + 1]) ? SPI_datumTransfer(d, false, sizeof(Interval)) : d;
	}
	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);

	for (int i = 0; i < (int) lengthof(totals); i++)
	{
		uint64		v = 0;

		nulls[8 + i] = !Ku9MetricGet(totals[i], q->name, &v);
		values[8 + i] = Int64GetDatum((int64) v);
	}
	tup = heap_form_tuple(BlessTupleDesc(desc), values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(tup));
}
