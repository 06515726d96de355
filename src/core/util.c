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

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

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

/*
 * Ku9RelationOwner returns the owner of a relation (of the extension, so it
 * must exist).
 */
Oid
Ku9RelationOwner(const char *nspname, const char *relname)
{
	Oid			relid = get_relname_relid(relname, get_namespace_oid(nspname, false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("relation \"%s.%s\" does not exist", nspname, relname),
				errhint("Is the extension ku9 installed in this database?"));
	return Ku9RelationOwnerById(relid);
}

/*
 * Ku9RelationOwnerById returns the owner of a relation that exists.
 */
Oid
Ku9RelationOwnerById(Oid relid)
{
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Ku9BecomeUser runs what follows as another role (an object's owner), in a
 * security-restricted operation, saving the caller's identity in *saved.
 * An error restores the caller's identity by itself (transaction or
 * subtransaction abort); otherwise call Ku9RestoreUser.
 */
void
Ku9BecomeUser(Oid owner, Ku9SavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(owner, saved->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * Ku9RestoreUser undoes Ku9BecomeUser.
 */
void
Ku9RestoreUser(Ku9SavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * Ku9CheckName errors (22023) unless name is a valid name of a kind of
 * object (queue, collection): 1 to max lower-case letters, digits and
 * underscores, starting with a letter — always a valid, unquoted-safe part
 * of an identifier.
 */
void
Ku9CheckName(const char *name, const char *kind, int max)
{
	int			len = strlen(name);
	bool		ok = (len >= 1 && len <= max && name[0] >= 'a' && name[0] <= 'z');

	for (int i = 1; ok && i < len; i++)
		ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
			name[i] == '_';
	if (!ok)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid %s name \"%s\"", kind, name),
				errdetail("A %s name is 1 to %d characters: lower-case letters, digits and underscores, starting with a letter.",
						  kind, max));
}

/*
 * Ku9ArgName returns argument argno, the name of an object of a kind,
 * after Ku9CheckName; NULL is an error (22004).
 */
char *
Ku9ArgName(FunctionCallInfo fcinfo, int argno, const char *kind, int max)
{
	char	   *name;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("%s name must not be null", kind));
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	Ku9CheckName(name, kind, max);
	return name;
}

/*
 * Ku9IsService tells whether the current user is a superuser or has the
 * privileges of ku9_service; Ku9RequireService errors (42501) unless so.
 */
bool
Ku9IsService(void)
{
	Oid			service = get_role_oid("ku9_service", true);

	return superuser() || (OidIsValid(service) && has_privs_of_role(GetUserId(), service));
}

void
Ku9RequireService(const char *action, const char *hint)
{
	if (Ku9IsService())
		return;
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("permission denied to %s", action),
			errhint("%s", hint));
}

/*
 * Ku9RestrictSearchPath sets search_path to pg_catalog, pg_temp until
 * AtEOXact_GUC(true, level) with the returned level.  Management functions
 * run DDL as an owner under it, so that nothing the caller put on its
 * search_path can be picked up.
 */
int
Ku9RestrictSearchPath(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
Ku9SpiConnect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Ku9SpiRun runs one statement of ku9's own (DDL, maintenance) through SPI */
void
Ku9SpiRun(const char *sql)
{
	int			ret = SPI_execute(sql, false, 0);

	if (ret < 0)
		elog(ERROR, "SPI_execute failed for \"%s\": %s", sql, SPI_result_code_string(ret));
}

/* ------------------------------------------------------------------------
 * Options objects (the jsonb options argument of ku9's functions)
 * ------------------------------------------------------------------------
 */

/*
 * Ku9OptionError raises 22023 for option key of function func.
 */
void
Ku9OptionError(const char *func, const char *key, const char *what)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid option \"%s\" for %s: %s", key, func, what));
}

double
Ku9OptionNumber(const char *func, const char *key, JsonbValue *v)
{
	Datum		d;
	char	   *message;

	if (v->type != jbvNumeric)
		Ku9OptionError(func, key, "expected a number");
	if (!Ku9TryCall(numeric_float8, NumericGetDatum(v->val.numeric), 0, 0, &d, &message))
		Ku9OptionError(func, key, "the number is out of range");
	return DatumGetFloat8(d);
}

int
Ku9OptionInt(const char *func, const char *key, JsonbValue *v, int min, int max)
{
	double		d = Ku9OptionNumber(func, key, v);

	if (d != floor(d) || d < min || d > max)
		Ku9OptionError(func, key, psprintf("expected an integer from %d to %d", min, max));
	return (int) d;
}

char *
Ku9OptionString(const char *func, const char *key, JsonbValue *v)
{
	if (v->type != jbvString)
		Ku9OptionError(func, key, "expected a string");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Ku9OptionsIterate calls fn for each top-level key of an options object;
 * a non-object is an error.
 */
void
Ku9OptionsIterate(const char *func, Jsonb *options, Ku9OptionFn fn, void *state)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("options for %s must be a JSON object", func));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			fn(key, &v, state);
	}
}
