/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  Who is calling: ku9.claims(), ku9.uid() and ku9.role().
 *
 * Identity comes from the JWT claims in the setting request.jwt.claims,
 * exactly as PostgREST (and ku9's gateway, and ku9.authenticate()) set it.
 * These functions run inside every row-level security policy, so they must
 * be cheap.  Each backend keeps the last claims text it parsed together with
 * the parsed jsonb and the decoded sub and role; a call compares the current
 * setting with that text (a strcmp) and only parses when it changed.  The
 * cache is keyed by content, not by transaction, so it can never return the
 * claims of another setting: SET LOCAL, set_config() and RESET all change
 * the text and so invalidate it.
 *
 * The cache lives in a child of TopMemoryContext and holds one entry.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/core/identity.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "ku9.h"
#include "core/util.h"
#include "metrics/metrics.h"

#define CLAIMS_SETTING "request.jwt.claims"

typedef struct ClaimsCache
{
	char	   *text;			/* setting text parsed, NULL if none */
	Jsonb	   *claims;			/* parsed claims, a JSON object */
	bool		uid_done;		/* uid/uid_null computed */
	bool		uid_null;
	pg_uuid_t	uid;
	bool		role_done;		/* role computed */
	char	   *role;			/* NULL when the claim is absent */
} ClaimsCache;

static MemoryContext claims_cxt = NULL;
static ClaimsCache cache;

PG_FUNCTION_INFO_V1(ku9_setting);
PG_FUNCTION_INFO_V1(ku9_claims);
PG_FUNCTION_INFO_V1(ku9_uid);
PG_FUNCTION_INFO_V1(ku9_role);

/*
 * claims_error reports a malformed identity with errcode and message, and
 * the offending detail; it counts the rejection first.
 */
static void
claims_error(int sqlerrcode, const char *msg, const char *detail)
{
	Ku9MetricInc(KU9_M_CLAIMS_INVALID, NULL);
	ereport(ERROR,
			errcode(sqlerrcode),
			errmsg("%s", msg),
			detail ? errdetail_internal("%s", detail) : 0,
			errhint("The setting \"%s\" must hold the JSON object of a verified token's claims.",
					CLAIMS_SETTING));
}

/*
 * input_or_error calls a type input function on str.  Bad input becomes a
 * claims error with our own message, keeping the original message as
 * detail.
 */
static Datum
input_or_error(PGFunction infunc, const char *str, const char *msg)
{
	Datum		result;
	char	   *detail;

	if (!Ku9TryCall(infunc, CStringGetDatum(str), ObjectIdGetDatum(InvalidOid),
					Int32GetDatum(-1), &result, &detail))
		claims_error(ERRCODE_INVALID_TEXT_REPRESENTATION, msg, detail);
	return result;
}

/*
 * current_claims returns the parsed claims of the current setting, or NULL
 * when it is unset or blank.  The result points into the backend cache:
 * callers copy it before handing it out.
 */
static Jsonb *
current_claims(void)
{
	const char *text = GetConfigOption(CLAIMS_SETTING, true, false);
	const char *p;
	Jsonb	   *parsed;
	MemoryContext oldcxt;

	if (text == NULL)
		return NULL;
	for (p = text; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
		;
	if (*p == '\0')
		return NULL;

	if (cache.text != NULL && strcmp(cache.text, text) == 0)
		return cache.claims;

	if (claims_cxt == NULL)
		claims_cxt = AllocSetContextCreate(TopMemoryContext, "ku9 claims",
										   ALLOCSET_SMALL_SIZES);

	/* forget the old entry first, so an error leaves no stale cache */
	MemoryContextReset(claims_cxt);
	memset(&cache, 0, sizeof(cache));

	Ku9MetricInc(KU9_M_CLAIMS_PARSED, NULL);
	Ku9MetricObserve(KU9_M_CLAIMS_SIZE, NULL, (double) strlen(text));

	parsed = DatumGetJsonbP(input_or_error(jsonb_in, text,
										   "setting \"" CLAIMS_SETTING "\" is not valid JSON"));
	if (!JB_ROOT_IS_OBJECT(parsed))
		claims_error(ERRCODE_INVALID_PARAMETER_VALUE,
					 "setting \"" CLAIMS_SETTING "\" is not a JSON object", NULL);

	oldcxt = MemoryContextSwitchTo(claims_cxt);
	cache.claims = palloc(VARSIZE(parsed));
	memcpy(cache.claims, parsed, VARSIZE(parsed));
	cache.text = pstrdup(text);
	MemoryContextSwitchTo(oldcxt);
	pfree(parsed);

	return cache.claims;
}

/*
 * string_claim looks up a top-level claim.  Returns false when it is absent
 * or JSON null; errors when it is present but not a string.  *out is
 * palloc'd in the current context.
 */
static bool
string_claim(Jsonb *claims, const char *name, char **out)
{
	JsonbValue *v;

	v = getKeyJsonValueFromContainer(&claims->root, name, strlen(name), NULL);
	if (v == NULL || v->type == jbvNull)
		return false;
	if (v->type != jbvString)
		claims_error(ERRCODE_INVALID_TEXT_REPRESENTATION,
					 psprintf("claim \"%s\" is not a string", name), NULL);
	*out = pnstrdup(v->val.string.val, v->val.string.len);
	return true;
}

/*
 * ku9_claims returns request.jwt.claims as jsonb, or NULL when unset or
 * empty.
 */
Datum
ku9_claims(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = current_claims();
	Jsonb	   *copy;

	if (claims == NULL)
		PG_RETURN_NULL();
	copy = palloc(VARSIZE(claims));
	memcpy(copy, claims, VARSIZE(claims));
	PG_RETURN_JSONB_P(copy);
}

/*
 * ku9_uid returns the sub claim as uuid, or NULL when there are no claims
 * or no sub.
 */
Datum
ku9_uid(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = current_claims();
	pg_uuid_t  *result;

	if (claims == NULL)
		PG_RETURN_NULL();

	if (!cache.uid_done)
	{
		char	   *sub;

		if (string_claim(claims, "sub", &sub))
		{
			pg_uuid_t  *uuid;

			uuid = DatumGetUUIDP(input_or_error(uuid_in, sub,
												"claim \"sub\" is not a valid uuid"));
			cache.uid = *uuid;
			cache.uid_null = false;
		}
		else
			cache.uid_null = true;
		cache.uid_done = true;
	}

	if (cache.uid_null)
		PG_RETURN_NULL();
	result = palloc(sizeof(pg_uuid_t));
	*result = cache.uid;
	PG_RETURN_UUID_P(result);
}

/*
 * ku9_role returns the role claim, or NULL when there are no claims or no
 * role.
 */
Datum
ku9_role(PG_FUNCTION_ARGS)
{
	Jsonb	   *claims = current_claims();

	if (claims == NULL)
		PG_RETURN_NULL();

	if (!cache.role_done)
	{
		char	   *role;

		if (string_claim(claims, "role", &role))
			cache.role = MemoryContextStrdup(claims_cxt, role);
		cache.role_done = true;
	}

	if (cache.role == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(cache.role));
}

/*
 * ku9_setting is current_setting() for ku9's SQL: being in ku9.so, calling
 * it loads the library, whose _PG_init defines the ku9.* settings, so a
 * fresh session of a server that does not preload ku9 finds them.
 */
Datum
ku9_setting(PG_FUNCTION_ARGS)
{
	return show_config_by_name(fcinfo);
}
