/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  ku9's background workers: a launcher, and workers that run queue
 *	  handlers, the notification fan-out and maintenance.
 *
 * Processes.  When ku9 is preloaded, _PG_init registers the launcher ("ku9
 * launcher"), a static background worker that the postmaster restarts if
 * it exits.  The launcher starts ku9.workers dynamic workers ("ku9 worker")
 * in the database ku9.database, with itself as their notify process, and
 * starts a worker again when it has exited (at most once per
 * RESTART_DELAY_MS per slot, so a worker that cannot start does not spin).
 * The postmaster stops them all on shutdown.  A worker that crashes (say
 * SIGKILL) makes the postmaster restart the whole server; the launcher then
 * comes back and starts its workers again.
 *
 * Each launcher start takes a new generation number in shared memory, and
 * its workers carry it; a worker whose generation is no longer current
 * exits, so a launcher that was itself restarted never ends up with two
 * sets of workers.
 *
 * A worker loops: it runs a batch of every queue handler, a few batches of
 * fan-out (ku9.fanout_step), and (worker 1 only) ku9.run_maintenance when
 * it is due.  When a round found nothing to do it sleeps on its latch
 * until a commit makes a queue message visible or queues fan-out (the
 * queue module's wake-ups, Ku9QueueWaitAny), the next delayed or hidden
 * message of a handled queue is due, or maintenance is due.
 *
 * Handlers.  A batch is taken with ku9.read in a transaction of its own,
 * so the attempts count even if a handler kills the process; then each
 * message is handed to the handler in a subtransaction, as the handler's
 * role with SECURITY_LOCAL_USERID_CHANGE (as a SECURITY DEFINER function
 * would run, so it cannot SET ROLE back) and inside a GUC nest level (its
 * SETs end with the call).  The handlers' work, the ack of those that
 * returned and the ku9.fail of those that raised commit together.  If the
 * process dies instead, nothing of the batch commits, and the messages come
 * back when their visibility timeout ends.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/worker/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <unistd.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ku9.h"
#include "core/util.h"
#include "http/gateway.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "worker/worker.h"

PG_FUNCTION_INFO_V1(ku9_set_queue_handler);

/* a slot is started again no sooner than this after its last start */
#define RESTART_DELAY_MS 5000
/* how long a worker sleeps after an error, and without ku9 installed */
#define ERROR_DELAY_MS 1000
#define NO_EXTENSION_DELAY_MS 10000
/* how often the launcher looks for a missing ku9.database */
#define DATABASE_POLL_MS 2000
/* longest idle sleep; wake-ups usually end it sooner */
#define MAX_IDLE_MS 60000
/* fan-out batches a worker does per round before it looks at handlers again */
#define FANOUT_STEPS_PER_ROUND 20

typedef struct Ku9WorkerShmem
{
	pg_atomic_uint32 generation;	/* of the running launcher */
	int			procno[KU9_MAX_WORKERS];	/* pgprocno of each running worker, or -1 */
} Ku9WorkerShmem;

static Ku9WorkerShmem *worker_shmem = NULL;

/* a queue handler as the workers read it from ku9.queue_handlers */
typedef struct Handler
{
	char	   *queue;
	char	   *handler;
	char	   *run_as;
	int			batch;
	int			vt;				/* the handler's, or its queue's */
	Oid			fn;				/* InvalidOid: the function is gone */
	Oid			role;			/* InvalidOid: the role is gone */
} Handler;

/* ------------------------------------------------------------------------
 * Shared memory and registration
 * ------------------------------------------------------------------------
 */

Size
Ku9WorkerShmemSize(void)
{
	return sizeof(Ku9WorkerShmem);
}

void
Ku9WorkerShmemInit(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_shmem = ShmemInitStruct("ku9 workers", sizeof(Ku9WorkerShmem), &found);
	if (!found)
	{
		pg_atomic_init_u32(&worker_shmem->generation, 0);
		for (int i = 0; i < KU9_MAX_WORKERS; i++)
			worker_shmem->procno[i] = -1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Ku9LauncherGeneration is the generation of the running launcher.
 */
uint32
Ku9LauncherGeneration(void)
{
	return pg_atomic_read_u32(&worker_shmem->generation);
}

/*
 * Ku9GatewayEnabled: the launcher starts gateway workers.
 */
bool
Ku9GatewayEnabled(void)
{
	return ku9_http_port > 0 && ku9_http_workers > 0;
}

/*
 * Ku9RegisterLauncher registers the launcher; called by _PG_init while
 * preloading.
 */
void
Ku9RegisterLauncher(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = RESTART_DELAY_MS / 1000;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "ku9");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "Ku9LauncherMain");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "ku9 launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "ku9 launcher");
	RegisterBackgroundWorker(&bgw);
}

/*
 * slot_name names the process of a launcher slot: the first n_jobs slots
 * are workers, the rest gateway workers (src/http/gateway.c).
 */
static void
slot_name(int slot, int n_jobs, char *buf, size_t len)
{
	if (slot < n_jobs)
		snprintf(buf, len, "ku9 worker %d", slot + 1);
	else
		snprintf(buf, len, "ku9 gateway %d", slot - n_jobs + 1);
}

static BackgroundWorkerHandle *
start_worker(int slot, int n_jobs, uint32 generation)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	bool		gateway = slot >= n_jobs;
	int			index = gateway ? slot - n_jobs : slot;

	memset(&bgw, 0, sizeof(bgw));
	/* a gateway worker has no database session: it reaches ku9.database through libpq */
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "ku9");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, gateway ? "Ku9GatewayMain" : "Ku9WorkerMain");
	slot_name(slot, n_jobs, bgw.bgw_name, BGW_MAXLEN);
	snprintf(bgw.bgw_type, BGW_MAXLEN, gateway ? "ku9 gateway" : "ku9 worker");
	bgw.bgw_main_arg = Int32GetDatum(index);
	memcpy(bgw.bgw_extra, &generation, sizeof(generation));
	bgw.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		return NULL;
	return handle;
}

/* ------------------------------------------------------------------------
 * The launcher
 * ------------------------------------------------------------------------
 */

/*
 * database_exists looks name up in the shared catalog pg_database, by a
 * heap scan as the autovacuum launcher does: without a database, the
 * catalog's indexes cannot be opened before the relcache init file exists
 * (after initdb, after a crash).
 */
static bool
database_exists(const char *name)
{
	bool		found = false;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!found && HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
		found = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tup))->datname), name) == 0;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return found;
}

void
Ku9LauncherMain(Datum main_arg)
{
	BackgroundWorkerHandle *handles[KU9_MAX_WORKERS + KU9_MAX_HTTP_WORKERS] = {0};
	TimestampTz started[KU9_MAX_WORKERS + KU9_MAX_HTTP_WORKERS] = {0};
	bool		ever_started[KU9_MAX_WORKERS + KU9_MAX_HTTP_WORKERS] = {0};
	bool		warned_slots = false;
	bool		warned_database = false;
	int			n_wait;
	uint32		generation;
	int			n_jobs = Min(ku9_workers, KU9_MAX_WORKERS);
	int			n_http = Ku9GatewayEnabled() ? Min(ku9_http_workers, KU9_MAX_HTTP_WORKERS) : 0;
	int			n = n_jobs + n_http;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	/* no database: this only makes the launcher visible in pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	/* a new generation: workers of an earlier launcher see it and exit */
	generation = pg_atomic_add_fetch_u32(&worker_shmem->generation, 1);
	for (int i = 0; i < KU9_MAX_WORKERS; i++)
	{
		int			procno = worker_shmem->procno[i];

		if (procno >= 0)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
	if (n > 0)
		ereport(LOG,
				errmsg("ku9 launcher started: %d workers and %d gateway workers in database \"%s\"",
					   n_jobs, n_http, ku9_database));

	for (;;)
	{
		long		timeout = MAX_IDLE_MS;
		int			running = 0;
		TimestampTz now = GetCurrentTimestamp();

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* workers wait for their database rather than fail to connect */
		if (n > 0 && !database_exists(ku9_database))
		{
			if (!warned_database)
				ereport(LOG,
						errmsg("ku9 workers wait for database \"%s\", which does not exist", ku9_database),
						errhint("Create it, or set \"ku9.database\" to the database where ku9 is installed."));
			warned_database = true;
			n_wait = n;
		}
		else
			n_wait = 0;

		for (int i = 0; i < n - n_wait; i++)
		{
			pid_t		pid;
			long		since;

			if (handles[i] != NULL &&
				GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			{
				running++;
				continue;
			}
			since = TimestampDifferenceMilliseconds(started[i], now);
			if (ever_started[i] && since < RESTART_DELAY_MS)
			{
				timeout = Min(timeout, RESTART_DELAY_MS - since);
				continue;
			}
			if (handles[i] != NULL)
			{
				char		name[BGW_MAXLEN];

				pfree(handles[i]);
				handles[i] = NULL;
				slot_name(i, n_jobs, name, sizeof(name));
				ereport(LOG, errmsg("%s exited; starting it again", name));
				Ku9MetricInc(KU9_M_WORKER_RESTARTS, NULL);
			}
			handles[i] = start_worker(i, n_jobs, generation);
			started[i] = now;
			ever_started[i] = true;
			if (handles[i] == NULL)
			{
				if (!warned_slots)
				{
					char		name[BGW_MAXLEN];

					slot_name(i, n_jobs, name, sizeof(name));
					ereport(WARNING,
							errmsg("could not start %s: no background worker slot is free", name),
							errhint("Raise \"max_worker_processes\"; ku9 needs ku9.workers plus ku9.http_workers plus one."));
				}
				warned_slots = true;
				timeout = Min(timeout, RESTART_DELAY_MS);
				continue;
			}
			Ku9MetricInc(KU9_M_WORKER_STARTS, NULL);
			running++;
		}
		Ku9MetricSet(KU9_M_WORKERS_RUNNING, NULL, running);
		if (n_wait > 0)
			timeout = Min(timeout, DATABASE_POLL_MS);

		/* a worker starting or stopping sets the latch (bgw_notify_pid) */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, KU9_WAIT_EVENT_EXTENSION);
		ResetLatch(MyLatch);
	}

	/* asked to stop without the server stopping: take the workers along */
	for (int i = 0; i < n; i++)
		if (handles[i] != NULL)
			TerminateBackgroundWorker(handles[i]);
	Ku9MetricSet(KU9_M_WORKERS_RUNNING, NULL, 0);
	/* exit code 1: the postmaster starts the launcher again unless it is stopping */
	proc_exit(1);
}

/* ------------------------------------------------------------------------
 * Worker helpers
 * ------------------------------------------------------------------------
 */

static int	worker_index;
static uint32 worker_generation;
static MemoryContext round_cxt;

static void
clear_procno(int code, Datum arg)
{
	if (worker_shmem != NULL && worker_shmem->procno[worker_index] == MyProc->pgprocno)
		worker_shmem->procno[worker_index] = -1;
}

/* begin a transaction with a snapshot, connected to SPI */
static void
begin_spi(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	Ku9SpiConnect();
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_spi(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(round_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* the worker's statements, prepared once per process */
static SPIPlanPtr plan_handlers;
static SPIPlanPtr plan_read;
static SPIPlanPtr plan_ack;
static SPIPlanPtr plan_fail;
static SPIPlanPtr plan_fanout;
static SPIPlanPtr plan_maintenance;

/*
 * kept_plan returns *slot, preparing sql into it on first use.  The plan
 * cache re-plans it when what it uses changes (ku9 re-created, say).
 */
static SPIPlanPtr
kept_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

		if (plan == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep the plan of \"%s\"", sql);
		*slot = plan;
	}
	return *slot;
}

static char *
spi_text(HeapTuple tuple, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tuple, desc, col);

	return v ? MemoryContextStrdup(round_cxt, v) : NULL;
}

/*
 * load_handlers returns the enabled handlers; NIL and *installed false when
 * ku9 is not installed in this database.  Caller is in a transaction with
 * SPI.
 */
static List *
load_handlers(bool *installed)
{
	List	   *result = NIL;

	/* an extension of another build may lack the table: wait as if absent */
	*installed = OidIsValid(get_extension_oid("ku9", true)) &&
		OidIsValid(get_relname_relid("queue_handlers", get_namespace_oid("ku9", true)));
	if (!*installed)
		return NIL;
	if (SPI_execute_plan(kept_plan(&plan_handlers, "SELECT h.queue, h.handler, h.run_as, h.batch, "
					"  COALESCE(h.vt, (SELECT q.vt FROM ku9.queues q WHERE q.name OPERATOR(pg_catalog.=) h.queue), 30), "
					"  COALESCE(pg_catalog.to_regprocedure(h.handler)::pg_catalog.oid, 0), "
					"  COALESCE((SELECT r.oid FROM pg_catalog.pg_roles r "
					"                       WHERE r.rolname OPERATOR(pg_catalog.=) h.run_as), 0) "
					"FROM ku9.queue_handlers h WHERE h.enabled ORDER BY h.queue", 0, NULL),
						 NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read ku9.queue_handlers");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Handler    *h = MemoryContextAllocZero(round_cxt, sizeof(Handler));
		MemoryContext old;

		h->queue = spi_text(t, d, 1);
		h->handler = spi_text(t, d, 2);
		h->run_as = spi_text(t, d, 3);
		h->batch = pg_strtoint32(SPI_getvalue(t, d, 4));
		h->vt = pg_strtoint32(SPI_getvalue(t, d, 5));
		h->fn = (Oid) strtoul(SPI_getvalue(t, d, 6), NULL, 10);
		h->role = (Oid) strtoul(SPI_getvalue(t, d, 7), NULL, 10);
		old = MemoryContextSwitchTo(round_cxt);
		result = lappend(result, h);
		MemoryContextSwitchTo(old);
	}
	return result;
}

/*
 * call_handler calls fn(message) as role in a subtransaction; true when it
 * returned, false with *error set when it raised.
 */
static bool
call_handler(Handler *h, Datum message, long timeout_ms, char **error)
{
	Oid			fn = h->fn;
	Oid			role = h->role;
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		Oid			save_user;
		int			save_sec;
		int			nest;
		FmgrInfo	flinfo;

		LOCAL_FCINFO(fcinfo, 1);

		if (!OidIsValid(fn))
			ereport(ERROR,
					errcode(ERRCODE_UNDEFINED_FUNCTION),
					errmsg("handler function %s does not exist", h->handler));
		if (!OidIsValid(role))
			ereport(ERROR,
					errcode(ERRCODE_UNDEFINED_OBJECT),
					errmsg("role \"%s\" of the handler does not exist", h->run_as));
		if (superuser_arg(role))
			ereport(ERROR,
					errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("handler role \"%s\" is a superuser; ku9 does not run handlers as one", h->run_as));
		GetUserIdAndSecContext(&save_user, &save_sec);
		SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		nest = NewGUCNestLevel();
		if (Ku9ProcAclCheck(fn, role, ACL_EXECUTE) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(fn));
		PushActiveSnapshot(GetTransactionSnapshot());
		fmgr_info(fn, &flinfo);
		InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = message;
		fcinfo->args[0].isnull = false;
		enable_timeout_after(STATEMENT_TIMEOUT, (int) Max(timeout_ms, 1));
		(void) FunctionCallInvoke(fcinfo);
		disable_timeout(STATEMENT_TIMEOUT, false);
		PopActiveSnapshot();
		/* false: every setting the handler changed, even with SET, goes back */
		AtEOXact_GUC(false, nest);
		SetUserIdAndSecContext(save_user, save_sec);

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* the subtransaction's abort restores the user, GUCs and snapshots */
		disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		*error = edata->message ? edata->message : pstrdup("unknown error");
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * run_handler_batch takes up to h->batch messages of h's queue and hands
 * each to the handler; returns how many it took.
 */
static int
run_handler_batch(Handler *h)
{
	Oid			types[3] = {TEXTOID, INT4OID, INT4OID};
	Datum		values[3];
	char	   *activity = psprintf("ku9 handler of queue %s", h->queue);
	int			taken;
	int64	   *ids;
	Datum	   *messages;
	Datum	   *acked;
	int			nacked = 0;
	int			nfailed = 0;
	TimestampTz deadline;

	/* 1: take the batch, committed on its own so the attempts count */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), h->vt * 1000L);
	begin_spi(activity);
	values[0] = CStringGetTextDatum(h->queue);
	values[1] = Int32GetDatum(h->batch);
	values[2] = Int32GetDatum(h->vt);
	if (SPI_execute_plan(kept_plan(&plan_read, "SELECT m.msg_id, m FROM ku9.read($1, $2, $3) AS m", 3, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read queue \"%s\"", h->queue);
	taken = (int) SPI_processed;
	ids = MemoryContextAlloc(round_cxt, sizeof(int64) * Max(taken, 1));
	messages = MemoryContextAlloc(round_cxt, sizeof(Datum) * Max(taken, 1));
	for (int i = 0; i < taken; i++)
	{
		bool		isnull;
		HeapTuple	t = SPI_tuptable->vals[i];
		MemoryContext old;

		ids[i] = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull));
		old = MemoryContextSwitchTo(round_cxt);
		messages[i] = PointerGetDatum(PG_DETOAST_DATUM_COPY(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull)));
		MemoryContextSwitchTo(old);
	}
	end_spi();
	if (taken == 0)
		return 0;

	/* 2: call the handler for each, then ack and fail in the same transaction */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, activity);
	acked = palloc(sizeof(Datum) * taken);
	for (int i = 0; i < taken; i++)
	{
		char	   *error = NULL;
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		CHECK_FOR_INTERRUPTS();
		/* past the batch's vt the rest may be another worker's: leave them */
		if (left <= 0)
			break;
		if (call_handler(h, messages[i], left, &error))
		{
			acked[nacked++] = Int64GetDatum(ids[i]);
			continue;
		}
		ereport(LOG,
				errmsg("ku9 handler %s failed on message %lld of queue \"%s\": %s",
					   h->handler, (long long) ids[i], h->queue, error));
		PushActiveSnapshot(GetTransactionSnapshot());
		Ku9SpiConnect();
		{
			Oid			ftypes[3] = {TEXTOID, INT8OID, TEXTOID};
			Datum		fvalues[3] = {CStringGetTextDatum(h->queue), Int64GetDatum(ids[i]),
			CStringGetTextDatum(error)};

			if (SPI_execute_plan(kept_plan(&plan_fail, "SELECT ku9.fail($1, $2, $3)", 3, ftypes),
								 fvalues, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not record the failure of message %lld", (long long) ids[i]);
		}
		SPI_finish();
		PopActiveSnapshot();
		nfailed++;
	}
	if (nacked > 0)
	{
		Oid			atypes[2] = {TEXTOID, INT8ARRAYOID};
		Datum		avalues[2];

		avalues[0] = CStringGetTextDatum(h->queue);
		avalues[1] = PointerGetDatum(construct_array(acked, nacked, INT8OID, sizeof(int64),
													 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		PushActiveSnapshot(GetTransactionSnapshot());
		Ku9SpiConnect();
		if (SPI_execute_plan(kept_plan(&plan_ack, "SELECT ku9.ack($1, $2)", 2, atypes),
							 avalues, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not acknowledge the messages of queue \"%s\"", h->queue);
		SPI_finish();
		PopActiveSnapshot();
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(round_cxt);
	/* session advisory locks a handler took end with its batch */
	LockReleaseSession(USER_LOCKMETHOD);
	pgstat_report_activity(STATE_IDLE, NULL);
	if (nacked > 0)
		Ku9MetricAdd(KU9_M_HANDLER_OK, h->queue, nacked);
	if (nfailed > 0)
		Ku9MetricAdd(KU9_M_HANDLER_FAILED, h->queue, nfailed);
	return taken;
}

/* fanout_round does fan-out batches while there are some; true if it did any */
static bool
fanout_round(void)
{
	bool		did = false;

	for (int i = 0; i < FANOUT_STEPS_PER_ROUND; i++)
	{
		Oid			types[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(ku9_push_batch_size)};
		bool		isnull;
		int			done;

		begin_spi("ku9 fan-out");
		if (SPI_execute_plan(kept_plan(&plan_fanout, "SELECT ku9.fanout_step($1)", 1, types),
							 values, NULL, false, 0) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not run ku9.fanout_step");
		done = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		end_spi();
		if (done <= 0)
			break;
		did = true;
	}
	return did;
}

static void
run_maintenance(void)
{
	begin_spi("ku9 maintenance");
	if (SPI_execute_plan(kept_plan(&plan_maintenance, "SELECT ku9.run_maintenance()", 0, NULL),
						 NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run ku9.run_maintenance");
	end_spi();
}

/*
 * next_due_ms returns how long until the next hidden or delayed message of
 * a handled queue becomes visible (capped at MAX_IDLE_MS).
 */
static long
next_due_ms(List *handlers)
{
	ListCell   *lc;
	long		ms = MAX_IDLE_MS;

	if (handlers == NIL)
		return ms;
	begin_spi("ku9 worker");
	foreach(lc, handlers)
	{
		Handler    *h = lfirst(lc);
		char	   *sql;
		bool		isnull;
		Datum		d;

		sql = psprintf("SELECT pg_catalog.min(vt) FROM ku9_queue.%s WHERE vt OPERATOR(pg_catalog.>) pg_catalog.now()",
					   quote_identifier(psprintf("q_%s", h->queue)));
		if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			continue;
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			ms = Min(ms, Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
															 DatumGetTimestampTz(d)), 1));
	}
	end_spi();
	return ms;
}

/* ------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------
 */

static bool unit_failed = false;

typedef bool (*unit_fn) (void *arg);

/*
 * run_unit runs one unit of a round (a handler batch, the fan-out,
 * maintenance) and, when it raises an error, reports it, rolls back and
 * returns false, so that the units after it still run.  Returns what the
 * unit returns: whether it did something.
 */
static bool
run_unit(unit_fn fn, void *arg, const char *what)
{
	volatile bool did = false;
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		did = fn(arg);
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		ereport(LOG, errmsg("ku9 worker %d: %s failed; the round goes on", worker_index + 1, what));
		unit_failed = true;
		did = false;
	}
	PG_END_TRY();
	return did;
}

static bool
handler_unit(void *arg)
{
	return run_handler_batch((Handler *) arg) > 0;
}

static bool
fanout_unit(void *arg)
{
	return fanout_round();
}

static bool
maintenance_unit(void *arg)
{
	run_maintenance();
	return false;
}

void
Ku9WorkerMain(Datum main_arg)
{
	char		appname[NAMEDATALEN];
	volatile TimestampTz next_maintenance = 0;

	worker_index = DatumGetInt32(main_arg);
	memcpy(&worker_generation, MyBgworkerEntry->bgw_extra, sizeof(worker_generation));

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(ku9_database, NULL, 0);

	snprintf(appname, sizeof(appname), "ku9 worker %d", worker_index + 1);
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_appname(appname);

	worker_shmem->procno[worker_index] = MyProc->pgprocno;
	before_shmem_exit(clear_procno, (Datum) 0);
	round_cxt = AllocSetContextCreate(TopMemoryContext, "ku9 worker round", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		volatile long sleep_ms = 0;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (pg_atomic_read_u32(&worker_shmem->generation) != worker_generation)
			proc_exit(0);
		(void) Ku9QueueWaitAny();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextSwitchTo(round_cxt);
		PG_TRY();
		{
			List	   *handlers;
			ListCell   *lc;
			bool		installed;
			bool		busy = false;

			begin_spi("ku9 worker");
			handlers = load_handlers(&installed);
			end_spi();
			if (!installed)
				sleep_ms = NO_EXTENSION_DELAY_MS;
			else
			{
				/* each unit fails on its own: the others still run */
				foreach(lc, handlers)
					busy |= run_unit(handler_unit, lfirst(lc), "a queue handler batch");
				busy |= run_unit(fanout_unit, NULL, "the fan-out");
				if (worker_index == 0 && ku9_maintenance_interval > 0 &&
					GetCurrentTimestamp() >= next_maintenance)
				{
					(void) run_unit(maintenance_unit, NULL, "maintenance");
					next_maintenance = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																   ku9_maintenance_interval * 1000L);
				}
				if (unit_failed)
				{
					unit_failed = false;
					sleep_ms = ERROR_DELAY_MS;
				}
				else if (!busy)
				{
					sleep_ms = next_due_ms(handlers);
					if (worker_index == 0 && ku9_maintenance_interval > 0)
						sleep_ms = Min(sleep_ms,
									   Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																		   next_maintenance), 1));
				}
			}
		}
		PG_CATCH();
		{
			HOLD_INTERRUPTS();
			EmitErrorReport();
			AbortOutOfAnyTransaction();
			FlushErrorState();
			MemoryContextSwitchTo(TopMemoryContext);
			pgstat_report_activity(STATE_IDLE, NULL);
			RESUME_INTERRUPTS();
			sleep_ms = ERROR_DELAY_MS;
		}
		PG_END_TRY();
		MemoryContextReset(round_cxt);

		if (sleep_ms > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, KU9_WAIT_EVENT_EXTENSION);
	}
}

/* ------------------------------------------------------------------------
 * ku9.set_queue_handler
 * ------------------------------------------------------------------------
 */

typedef struct HandlerOptions
{
	char	   *role;
	int			batch;
	int			vt;
	bool		enabled;
} HandlerOptions;

static void
handler_option(const char *key, JsonbValue *v, void *state)
{
	HandlerOptions *o = state;
	const char *func = "set_queue_handler";

	if (strcmp(key, "role") == 0)
		o->role = Ku9OptionString(func, key, v);
	else if (strcmp(key, "batch") == 0)
		o->batch = Ku9OptionInt(func, key, v, 1, 1000);
	else if (strcmp(key, "vt") == 0)
		o->vt = Ku9OptionInt(func, key, v, 1, 43200);
	else if (strcmp(key, "enabled") == 0)
	{
		if (v->type != jbvBool)
			Ku9OptionError(func, key, "expected true or false");
		o->enabled = v->val.boolean;
	}
	else
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("unknown option \"%s\" for set_queue_handler", key),
				errhint("The options are role, batch, vt and enabled."));
}

/*
 * ku9_set_queue_handler records (or replaces) the handler of a queue.  It
 * is SECURITY INVOKER: it checks that the caller manages queues, may act
 * as the handler's role, and that the role may execute the function; then
 * it writes ku9.queue_handlers as the table's owner.
 */
Datum
ku9_set_queue_handler(PG_FUNCTION_ARGS)
{
	char	   *queue = Ku9ArgName(fcinfo, 0, "queue", 48);
	Oid			fn;
	Jsonb	   *options;
	HandlerOptions opts = {NULL, 10, 0, true};
	char	   *role_name;
	Oid			role;
	int			batch;
	int			vt;
	bool		enabled;
	HeapTuple	proctup;
	Form_pg_proc proc;
	Oid			message_type;
	char	   *signature;
	Ku9SavedUser call;
	int			guc_level;
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("handler must not be null"));
	fn = PG_GETARG_OID(1);
	options = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	Ku9RequireService("set a queue handler", "Only members of ku9_service manage queue handlers.");

	Ku9OptionsIterate("set_queue_handler", options, handler_option, &opts);
	role_name = opts.role;
	batch = opts.batch;
	vt = opts.vt;
	enabled = opts.enabled;

	/* the role: named, or the caller; never silently a superuser */
	role = role_name ? get_role_oid(role_name, false) : GetUserId();
	if (role_name == NULL)
		role_name = GetUserNameFromId(role, false);
	if (superuser_arg(role))
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("queue handlers do not run as a superuser, and \"%s\" is one", role_name),
				errhint("Name a role without superuser in the option \"role\": the handler runs with its privileges."));
	if (!is_member_of_role(GetUserId(), role))
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied to run handlers as role \"%s\"", role_name),
				errhint("Only members of a role may choose it as a handler's role."));

	/* the function: fn(ku9.message), a plain function the role may execute */
	message_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("message"),
								   ObjectIdGetDatum(get_namespace_oid("ku9", false)));
	proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(proctup))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_FUNCTION),
				errmsg("function with OID %u does not exist", fn));
	proc = (Form_pg_proc) GETSTRUCT(proctup);
	if (proc->prokind != PROKIND_FUNCTION || proc->proretset || proc->pronargs != 1 ||
		proc->proargtypes.values[0] != message_type)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				errmsg("a queue handler must be a function of one ku9.message argument that returns one value, not %s",
					   format_procedure(fn)),
				errhint("For example: CREATE FUNCTION app.handle(m ku9.message) RETURNS void ..."));
	ReleaseSysCache(proctup);
	if (Ku9ProcAclCheck(fn, role, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("role \"%s\" may not execute %s", role_name, format_procedure(fn)),
				errhint("GRANT EXECUTE ON FUNCTION %s TO %s;", format_procedure_qualified(fn),
						quote_identifier(role_name)));
	signature = format_procedure_qualified(fn);

	guc_level = Ku9RestrictSearchPath();
	Ku9SpiConnect();
	Ku9BecomeUser(Ku9RelationOwner("ku9", "queue_handlers"), &call);
	values[0] = CStringGetTextDatum(queue);
	if (SPI_execute_with_args("SELECT 1 FROM ku9.queues WHERE name OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not look up queue \"%s\"", queue);
	if (SPI_processed == 0)
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("queue \"%s\" does not exist", queue));
	values[1] = CStringGetTextDatum(signature);
	values[2] = CStringGetTextDatum(role_name);
	values[3] = Int32GetDatum(batch);
	values[4] = Int32GetDatum(vt);
	if (vt == 0)
		nulls[4] = 'n';
	values[5] = BoolGetDatum(enabled);
	if (SPI_execute_with_args("INSERT INTO ku9.queue_handlers (queue, handler, run_as, batch, vt, enabled) "
							  "VALUES ($1, $2, $3, $4, $5, $6) "
							  "ON CONFLICT (queue) DO UPDATE SET handler = excluded.handler, "
							  "run_as = excluded.run_as, batch = excluded.batch, vt = excluded.vt, "
							  "enabled = excluded.enabled, updated_at = pg_catalog.now()",
							  6, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the handler of queue \"%s\"", queue);
	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);

	/* say when no worker will run it */
	if (!ku9_preloaded)
		ereport(NOTICE,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("no ku9 worker will run this handler because ku9 is not preloaded"),
				errhint("Add ku9 to \"shared_preload_libraries\" and restart the server."));
	else if (strcmp(ku9_database, get_database_name(MyDatabaseId)) != 0)
		ereport(NOTICE,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("no ku9 worker will run this handler: ku9's workers run in database \"%s\"",
					   ku9_database),
				errhint("Set \"ku9.database\" to this database and restart the server."));
	else if (ku9_workers == 0)
		ereport(NOTICE,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("no ku9 worker will run this handler because \"ku9.workers\" is 0"));
	else
		(void) Ku9QueueWakeWorkersAtCommit();
	PG_RETURN_VOID();
}
