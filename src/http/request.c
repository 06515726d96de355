/*-------------------------------------------------------------------------
 *
 * request.c
 *	  ku9._gateway_begin: the start of each request of the embedded
 *	  gateway, in the backend that serves it.
 *
 * The gateway (gateway.c) sends this first in every request's pipeline,
 * over its connection as ku9_authenticator.  It does what PostgREST does
 * before it calls a function: verify the bearer token (ku9's verifier,
 * Ku9JwtVerify), switch to the token's role (only a role granted to
 * ku9_authenticator; ku9_anon without a token), set request.jwt.claims,
 * request.method, request.path, request.headers, request.cookies and
 * search_path for the transaction, make GET and HEAD read-only, and call
 * ku9_api.pre_request() (kind 'rpc').  In C because it runs once per
 * request: the same in PL/pgSQL took most of a trivial call's time.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/http/request.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "auth/jwt.h"

PG_FUNCTION_INFO_V1(ku9_gateway_begin);

static SPIPlanPtr pre_request_plan = NULL;

static void
set_local(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

static char *
arg_cstring(FunctionCallInfo fcinfo, int n, const char *dflt)
{
	return PG_ARGISNULL(n) ? (char *) dflt : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * ku9._gateway_begin(token, method, path, headers, cookies, read_only, kind)
 */
Datum
ku9_gateway_begin(PG_FUNCTION_ARGS)
{
	char	   *role = "ku9_anon";
	char	   *claims;
	Oid			roleid;
	Oid			authenticator = get_role_oid("ku9_authenticator", false);
	char	   *kind = arg_cstring(fcinfo, 6, "rpc");

	if (!PG_ARGISNULL(0))
	{
		text	   *token = PG_GETARG_TEXT_PP(0);
		Jsonb	   *jb = Ku9JwtVerify(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token));
		JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, "role", 4, NULL);

		if (v != NULL && v->type == jbvString)
			role = pnstrdup(v->val.string.val, v->val.string.len);
		claims = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	}
	else
		claims = "{\"role\": \"ku9_anon\"}";

	roleid = get_role_oid(role, true);
	if (!OidIsValid(roleid) || roleid == authenticator || !is_member_of_role(authenticator, roleid))
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied to set role \"%s\"", role),
				errhint("A token's role must be granted to ku9_authenticator."));

	set_local("role", role);
	set_local("request.jwt.claims", claims);
	set_local("request.method", arg_cstring(fcinfo, 1, ""));
	set_local("request.path", arg_cstring(fcinfo, 2, ""));
	set_local("request.headers", arg_cstring(fcinfo, 3, "{}"));
	set_local("request.cookies", arg_cstring(fcinfo, 4, "{}"));
	set_local("search_path", "ku9_api");
	if (!PG_ARGISNULL(5) && PG_GETARG_BOOL(5))
		set_local("transaction_read_only", "on");

	if (strcmp(kind, "rpc") == 0)
	{
		/* as the request's role, with its privileges checked, as PostgREST calls it */
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (pre_request_plan == NULL)
		{
			SPIPlanPtr	plan = SPI_prepare("SELECT ku9_api.pre_request()", 0, NULL);

			if (plan == NULL)
				elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
			SPI_keepplan(plan);
			pre_request_plan = plan;
		}
		if (SPI_execute_plan(pre_request_plan, NULL, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "ku9_api.pre_request() failed");
		SPI_finish();
	}
	PG_RETURN_VOID();
}
