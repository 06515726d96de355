/*-------------------------------------------------------------------------
 *
 * session.c
 *	  ku9.authenticate(): verify an access token, check its session, and
 *	  set request.jwt.claims for the transaction.
 *
 * This runs on every request of a direct-SQL app, so it is C: the token
 * check of jwt.c, then one index lookup in ku9.sessions through a statement
 * prepared once per backend (SPI_keepplan), run as the owner of
 * ku9.sessions (no request role can read it), then set_config with
 * SET LOCAL semantics.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/auth/session.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "compat.h"
#include "ku9.h"
#include "auth/jwt.h"
#include "core/util.h"

static SPIPlanPtr session_plan = NULL;

PG_FUNCTION_INFO_V1(ku9_authenticate);

static void reject(const char *why) KU9_NORETURN;

static void
reject(const char *why)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			errmsg("invalid token: %s", why));
}

/*
 * session_active tells whether the session exists, is not revoked and has
 * not expired.
 */
static bool
session_active(Datum session_id)
{
	Ku9SavedUser saved;
	bool		active;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	Ku9BecomeUser(Ku9RelationOwner("ku9", "sessions"), &saved);
	if (session_plan == NULL)
	{
		Oid			types[1] = {UUIDOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare("SELECT 1 FROM ku9.sessions WHERE id OPERATOR(pg_catalog.=) $1 "
						   "AND revoked_at IS NULL "
						   "AND expires_at OPERATOR(pg_catalog.>) pg_catalog.now()",
						   1, types);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the session check: %s",
				 SPI_result_code_string(SPI_result));
		session_plan = plan;
	}
	/* not read-only: see sessions made earlier in this statement, too */
	ret = SPI_execute_plan(session_plan, &session_id, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	active = SPI_processed == 1;
	Ku9RestoreUser(&saved);
	SPI_finish();
	return active;
}

/*
 * ku9_authenticate verifies a token, checks that its session (if it names
 * one) is active, sets request.jwt.claims until the end of the transaction,
 * and returns the claims.
 */
Datum
ku9_authenticate(PG_FUNCTION_ARGS)
{
	text	   *token;
	Jsonb	   *claims;
	JsonbValue *sid;

	if (PG_ARGISNULL(0))
		reject("no token");
	token = PG_GETARG_TEXT_PP(0);
	claims = Ku9JwtVerify(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token));
	sid = getKeyJsonValueFromContainer(&claims->root, "session_id", 10, NULL);

	if (sid != NULL)
	{
		Datum		uuid;
		char	   *message;

		if (sid->type != jbvString ||
			!Ku9TryCall(uuid_in, CStringGetDatum(pnstrdup(sid->val.string.val, sid->val.string.len)),
						0, 0, &uuid, &message))
			reject("bad session_id");
		if (!session_active(uuid))
			reject("session has ended");
	}

	(void) set_config_option("request.jwt.claims",
							 JsonbToCString(NULL, &claims->root, VARSIZE(claims)),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	PG_RETURN_JSONB_P(claims);
}
