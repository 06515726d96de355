/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers shared by ku9's modules.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/core/util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/elog.h"
#include "utils/memutils.h"

#include "core/util.h"

/*
 * Ku9TryCall calls a type input or conversion function with three
 * arguments (unused ones are ignored by the callee) and returns true with
 * its result, or false when it raised a data exception (SQLSTATE class 22:
 * bad syntax, out of range), with the error's detail or message in
 * *message, palloc'd in the caller's context.  Other errors propagate.
 *
 * Only call functions that take no locks, pins or other resources (input
 * functions and numeric conversions): the error is caught without a
 * subtransaction, as PostgreSQL 16's soft errors would report it.
 */
bool
Ku9TryCall(PGFunction fn, Datum arg1, Datum arg2, Datum arg3,
		   Datum *result, char **message)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		*result = DirectFunctionCall3(fn, arg1, arg2, arg3);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		*message = edata->detail ? edata->detail : edata->message;
		ok = false;
	}
	PG_END_TRY();

	return ok;
}
