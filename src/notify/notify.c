/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  The C helpers of the notify module: metrics, and handing fan-out
 *	  work to the background workers.
 *
 * Topics, subscriptions, inboxes and the fan-out itself are SQL
 * (src/notify/notify.sql); they call these two functions.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/notify/notify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/uuid.h"

#include "ku9.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "queue/queue.h"

PG_FUNCTION_INFO_V1(ku9_count);
PG_FUNCTION_INFO_V1(ku9_fanout_queued);
PG_FUNCTION_INFO_V1(ku9_subscribe);
PG_FUNCTION_INFO_V1(ku9_unsubscribe);

/* the metrics ku9._count() may add to, by the name the SQL uses */
static const struct
{
	const char *name;
	Ku9MetricId id;
	const char *fixed_label;	/* used instead of the caller's label */
}			countable[] =
{
	{"published", KU9_M_NOTIFY_PUBLISHED, NULL},
	{"direct", KU9_M_NOTIFY_DIRECT, NULL},
	{"inbox", KU9_M_NOTIFY_DELIVERED, "inbox"},
	{"realtime", KU9_M_NOTIFY_DELIVERED, "realtime"},
	{"push_jobs", KU9_M_PUSH_JOBS, NULL},
	{"push_devices", KU9_M_PUSH_DEVICES, NULL},
	{"maintenance", KU9_M_MAINTENANCE_RUNS, NULL},
	{"deleted", KU9_M_MAINTENANCE_DELETED, NULL},
};

/*
 * ku9_count adds n to one of the notify and maintenance metrics:
 * ku9._count(metric text, label text, n bigint).
 */
Datum
ku9_count(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *label = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64		n = PG_ARGISNULL(2) ? 1 : PG_GETARG_INT64(2);

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	for (size_t i = 0; i < lengthof(countable); i++)
	{
		if (strcmp(countable[i].name, name) == 0)
		{
			if (n > 0)
				Ku9MetricAdd(countable[i].id,
							 countable[i].fixed_label ? countable[i].fixed_label : label,
							 (uint64) n);
			PG_RETURN_VOID();
		}
	}
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("unknown ku9 metric \"%s\"", name));
	PG_RETURN_VOID();
}

/*
 * ku9_fanout_queued is called by publish and notify_user after they queued
 * fan-out work: the workers are woken when the transaction commits, or,
 * without preloading, a notice says that no worker will do it.
 */
Datum
ku9_fanout_queued(PG_FUNCTION_ARGS)
{
	if (!PG_GETARG_BOOL(0))
		PG_RETURN_VOID();
	if (!Ku9QueueWakeWorkersAtCommit())
		ereport(NOTICE,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("no ku9 worker will fan this message out because ku9 is not preloaded"),
				errdetail("Push jobs and realtime notifications of subscribers are made by ku9's background workers."),
				errhint("Add ku9 to \"shared_preload_libraries\" and restart the server, or call ku9.fanout_step() yourself."));
	PG_RETURN_VOID();
}

/*
 * subscribe_common opens or closes a subscription window.  The function is
 * SECURITY INVOKER so that it sees its caller: members of ku9_service (and
 * superusers) act for any user, others only for ku9.uid() and, to
 * subscribe, only on topics that allow it.  ku9._subscribe, which only the
 * extension's owner may execute, does the work and the checks.
 */
static Datum
subscribe_common(FunctionCallInfo fcinfo, bool subscribe)
{
	bool		is_service = Ku9IsService();
	Oid			types[4] = {TEXTOID, UUIDOID, BOOLOID, BOOLOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Ku9SavedUser call;
	int			guc_level;
	bool		isnull;
	bool		changed;

	if (PG_ARGISNULL(0))
		values[0] = (Datum) 0, nulls[0] = 'n';
	else
		values[0] = PG_GETARG_DATUM(0);
	if (PG_ARGISNULL(1))
		values[1] = (Datum) 0, nulls[1] = 'n';
	else
		values[1] = PG_GETARG_DATUM(1);
	values[2] = BoolGetDatum(subscribe);
	values[3] = BoolGetDatum(is_service);

	guc_level = Ku9RestrictSearchPath();
	Ku9SpiConnect();
	Ku9BecomeUser(Ku9RelationOwner("ku9", "subscriptions"), &call);
	if (SPI_execute_with_args("SELECT ku9._subscribe($1, $2, $3, $4)", 4, types, values, nulls,
							  false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ku9._subscribe failed");
	changed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	Ku9RestoreUser(&call);
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
	PG_RETURN_BOOL(!isnull && changed);
}

Datum
ku9_subscribe(PG_FUNCTION_ARGS)
{
	return subscribe_common(fcinfo, true);
}

Datum
ku9_unsubscribe(PG_FUNCTION_ARGS)
{
	return subscribe_common(fcinfo, false);
}
