/*-------------------------------------------------------------------------
 *
 * libjwt.c
 *	  The one place ku9 calls libjwt: RS256/ES256 signing and verification.
 *
 * libjwt must never be linked into ku9.so: it calls jansson's json_object(),
 * and the postgres executable exports a json_object of its own (the SQL
 * function), so with ordinary linking libjwt's call binds to PostgreSQL's
 * and the backend crashes.  libjwt is therefore loaded at run time with
 * dlopen(RTLD_LOCAL | RTLD_DEEPBIND), which makes it and jansson resolve
 * their symbols among themselves first, and the few functions ku9 uses are
 * looked up with dlsym.  The build only needs jwt.h (libjwt-dev) for the
 * types.  libjwt 1.x and 3.x differ; this file is what would change.
 *
 * Strings libjwt returns are malloc'd; they are copied into palloc'd memory
 * and freed at once.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/auth/libjwt.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>
#include <jwt.h>

#include "auth/jwt.h"

#define LIBJWT_SONAME "libjwt.so.0"

static void *libjwt = NULL;
static int	(*p_jwt_new) (jwt_t **jwt);
static void (*p_jwt_free) (jwt_t *jwt);
static int	(*p_jwt_decode) (jwt_t **jwt, const char *token, const unsigned char *key, int key_len);
static char *(*p_jwt_get_grants_json) (jwt_t *jwt, const char *grant);
static int	(*p_jwt_add_grants_json) (jwt_t *jwt, const char *json);
static int	(*p_jwt_add_header) (jwt_t *jwt, const char *header, const char *val);
static char *(*p_jwt_encode_str) (jwt_t *jwt);
static int	(*p_jwt_set_alg) (jwt_t *jwt, jwt_alg_t alg, const unsigned char *key, int len);
static jwt_alg_t (*p_jwt_get_alg) (jwt_t *jwt);

static void *
symbol(void *handle, const char *name)
{
	void	   *p = dlsym(handle, name);

	if (p == NULL)
	{
		dlclose(handle);
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("could not find %s in %s", name, LIBJWT_SONAME));
	}
	return p;
}

/*
 * load_libjwt loads libjwt in its own symbol scope, once per backend.  The
 * handle is kept only once every function was found, so a failed load
 * leaves nothing half set up.
 */
static void
load_libjwt(void)
{
	void	   *handle;

	if (libjwt != NULL)
		return;
	handle = dlopen(LIBJWT_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	if (handle == NULL)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("could not load %s: %s", LIBJWT_SONAME, dlerror()),
				errhint("RS256 and ES256 tokens need libjwt (Debian package libjwt0)."));
	p_jwt_new = symbol(handle, "jwt_new");
	p_jwt_free = symbol(handle, "jwt_free");
	p_jwt_decode = symbol(handle, "jwt_decode");
	p_jwt_get_grants_json = symbol(handle, "jwt_get_grants_json");
	p_jwt_add_grants_json = symbol(handle, "jwt_add_grants_json");
	p_jwt_add_header = symbol(handle, "jwt_add_header");
	p_jwt_encode_str = symbol(handle, "jwt_encode_str");
	p_jwt_set_alg = symbol(handle, "jwt_set_alg");
	p_jwt_get_alg = symbol(handle, "jwt_get_alg");
	libjwt = handle;
}

static jwt_alg_t
alg_of(const char *alg)
{
	if (strcmp(alg, "RS256") == 0)
		return JWT_ALG_RS256;
	if (strcmp(alg, "ES256") == 0)
		return JWT_ALG_ES256;
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("unsupported signing algorithm \"%s\"", alg),
			errhint("Signing keys are RS256 or ES256."));
	return JWT_ALG_INVAL;
}

/*
 * take_string copies a string libjwt malloc'd into palloc'd memory and
 * frees it, also when the copy fails.
 */
static char *
take_string(char *s)
{
	char	   *copy;

	if (s == NULL)
		return NULL;
	copy = palloc_extended(strlen(s) + 1, MCXT_ALLOC_NO_OOM);
	if (copy != NULL)
		strcpy(copy, s);
	free(s);
	if (copy == NULL)
		ereport(ERROR, errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"));
	return copy;
}

/*
 * Ku9LibjwtSign signs the claims (a JSON object as text) with a PEM private
 * key of alg, naming kid in the header; returns the token, palloc'd.
 */
char *
Ku9LibjwtSign(const char *claims_json, const char *alg, const char *kid,
			  const char *private_pem)
{
	jwt_t	   *jwt = NULL;
	char	   *token;
	jwt_alg_t	a = alg_of(alg);

	load_libjwt();
	if (p_jwt_new(&jwt) != 0)
		ereport(ERROR, errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"));
	if (p_jwt_add_grants_json(jwt, claims_json) != 0 ||
		p_jwt_add_header(jwt, "kid", kid) != 0 ||
		p_jwt_set_alg(jwt, a, (const unsigned char *) private_pem, strlen(private_pem)) != 0)
	{
		p_jwt_free(jwt);
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("could not sign the claims as an %s token", alg),
				errdetail("libjwt refused them; numbers must fit in 64-bit integers or doubles."));
	}
	{
		char	   *s = p_jwt_encode_str(jwt);

		p_jwt_free(jwt);
		token = take_string(s);
	}
	if (token == NULL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("could not sign the claims as an %s token", alg));
	return token;
}

/*
 * Ku9LibjwtVerify checks the signature of a token with a PEM public key of
 * alg and returns its claims as JSON text (palloc'd), or NULL when the
 * signature or the algorithm is wrong.  It checks nothing else: the caller
 * checks the claims.
 */
char *
Ku9LibjwtVerify(const char *token, const char *alg, const char *public_pem)
{
	jwt_t	   *jwt = NULL;
	char	   *claims;
	jwt_alg_t	a = alg_of(alg);

	load_libjwt();
	if (p_jwt_decode(&jwt, token, (const unsigned char *) public_pem, strlen(public_pem)) != 0 ||
		jwt == NULL)
		return NULL;
	if (p_jwt_get_alg(jwt) != a)
	{
		p_jwt_free(jwt);
		return NULL;
	}
	{
		char	   *s = p_jwt_get_grants_json(jwt, NULL);

		p_jwt_free(jwt);
		claims = take_string(s);
	}
	return claims;
}
