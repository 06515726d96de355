/*-------------------------------------------------------------------------
 *
 * jwt.c
 *	  JSON Web Tokens: HS256 signing and verification, and the checks every
 *	  token must pass.
 *
 * HS256 tokens, the ones ku9 issues and checks on every request, take a
 * direct path: OpenSSL's HMAC-SHA256 with one MAC context per backend, kept
 * keyed with ku9.jwt_secret and reset for each token; base64url coding
 * written here; PostgreSQL's jsonb parser for the claims; CRYPTO_memcmp for
 * the signature.  A token ku9 signs has the header {"alg":"HS256",
 * "typ":"JWT"}, which verification recognises byte for byte without
 * parsing it; any other header is parsed.
 *
 * RS256 and ES256 tokens are signed with the keys in ku9.signing_keys
 * (made by ku9.rotate_signing_key()) through libjwt (libjwt.c), and name
 * their key with kid.  ku9.jwt_alg chooses which kind ku9 issues; it
 * accepts all three.  Keys are read with SPI as the owner of
 * ku9.signing_keys, which no other role can read.  A retired key (replaced
 * by a rotation) still verifies tokens for ku9.jwt_exp plus the leeway after
 * it was retired, the longest its tokens can live.
 *
 * Verification rejects (SQLSTATE 28000, "invalid token: ..."): more than
 * KU9_JWT_MAX_LENGTH bytes; not three base64url segments; a header that is
 * not a JSON object or names no algorithm; alg "none" or any algorithm but
 * HS256, RS256 and ES256; an RS256/ES256 token without a kid, with an
 * unknown or expired kid, or whose alg is not its key's (so a public key is
 * never used as an HMAC secret: HS256 always means ku9.jwt_secret); a bad
 * signature; claims that are not a JSON object; a missing or past exp; nbf
 * or iat in the future; an aud other than ku9.jwt_aud; an iss other than
 * ku9.jwt_iss when that is set.  Times allow ku9.jwt_leeway.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/auth/jwt.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "ku9.h"
#include "auth/jwt.h"
#include "core/util.h"

static Jsonb *check_claims(Jsonb *claims);

#define KU9_JWT_MAX_LENGTH 16384
#define KU9_JWT_MIN_SECRET 32
#define HS256_LEN 32

/* base64url of the header ku9 writes, {"alg":"HS256","typ":"JWT"} */
static const char ku9_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/* per-backend HMAC state, keyed with the secret in mac_key */
static EVP_MAC *mac = NULL;
static EVP_MAC_CTX *mac_ctx = NULL;
static char *mac_key = NULL;

PG_FUNCTION_INFO_V1(ku9_jwt_sign);
PG_FUNCTION_INFO_V1(ku9_jwt_verify);

/* ------------------------------------------------------------------------
 * base64url (RFC 4648 section 5, without padding)
 * ------------------------------------------------------------------------
 */

static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Ku9B64UrlEncode appends the base64url form of len bytes to buf.
 */
void
Ku9B64UrlEncode(StringInfo buf, const unsigned char *src, size_t len)
{
	size_t		i;

	enlargeStringInfo(buf, (len + 2) / 3 * 4 + 1);
	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];

		buf->data[buf->len++] = b64url[(v >> 18) & 63];
		buf->data[buf->len++] = b64url[(v >> 12) & 63];
		buf->data[buf->len++] = b64url[(v >> 6) & 63];
		buf->data[buf->len++] = b64url[v & 63];
	}
	if (i < len)
	{
		uint32		v = src[i] << 16;

		if (i + 1 < len)
			v |= src[i + 1] << 8;
		buf->data[buf->len++] = b64url[(v >> 18) & 63];
		buf->data[buf->len++] = b64url[(v >> 12) & 63];
		if (i + 1 < len)
			buf->data[buf->len++] = b64url[(v >> 6) & 63];
	}
	buf->data[buf->len] = '\0';
}

static int8
b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * b64url_decode decodes len base64url characters into dst (room for
 * len * 3 / 4 + 1 bytes) and returns the decoded length, or -1 when the
 * input is not canonical unpadded base64url.  dst is NUL-terminated.
 */
static int
b64url_decode(const char *src, int len, unsigned char *dst)
{
	int			out = 0;
	uint32		acc = 0;
	int			bits = 0;

	if (len % 4 == 1)
		return -1;
	for (int i = 0; i < len; i++)
	{
		int8		v = b64url_value(src[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			dst[out++] = (acc >> bits) & 0xFF;
		}
	}
	/* the unused low bits of the last character must be zero */
	if (bits > 0 && (acc & ((1 << bits) - 1)) != 0)
		return -1;
	dst[out] = '\0';
	return out;
}

/* ------------------------------------------------------------------------
 * HMAC-SHA256 with ku9.jwt_secret
 * ------------------------------------------------------------------------
 */

/*
 * hmac_ready keys the backend's MAC context with ku9.jwt_secret, unless it
 * already is.  Errors (55000) when the secret is unset or too short.
 */
static void
hmac_ready(void)
{
	const char *secret = ku9_jwt_secret ? ku9_jwt_secret : "";
	size_t		len = strlen(secret);

	if (len < KU9_JWT_MIN_SECRET)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("ku9.jwt_secret is %s", len == 0 ? "not set" : "too short"),
				errdetail("HS256 tokens need a secret of at least %d bytes.", KU9_JWT_MIN_SECRET),
				errhint("Set \"%s\" in postgresql.conf (or with ALTER SYSTEM) and reload.",
						"ku9.jwt_secret"));

	if (mac_ctx != NULL && mac_key != NULL && strcmp(mac_key, secret) == 0)
		return;

	if (mac == NULL)
	{
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		if (mac == NULL)
			elog(ERROR, "OpenSSL has no HMAC");
	}
	if (mac_ctx == NULL)
	{
		mac_ctx = EVP_MAC_CTX_new(mac);
		if (mac_ctx == NULL)
			ereport(ERROR, errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"));
	}
	if (mac_key != NULL)
	{
		explicit_bzero(mac_key, strlen(mac_key));
		pfree(mac_key);
		mac_key = NULL;
	}
	{
		OSSL_PARAM params[2];

		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!EVP_MAC_init(mac_ctx, (const unsigned char *) secret, len, params))
			elog(ERROR, "could not set up HMAC-SHA256");
	}
	mac_key = MemoryContextStrdup(TopMemoryContext, secret);
}

/*
 * hs256 computes the HMAC-SHA256 of data into out (32 bytes).  Call
 * hmac_ready first.
 */
static void
hs256(const char *data, size_t len, unsigned char *out)
{
	size_t		outlen = 0;

	/* a NULL key reuses the key the context was initialised with */
	if (!EVP_MAC_init(mac_ctx, NULL, 0, NULL) ||
		!EVP_MAC_update(mac_ctx, (const unsigned char *) data, len) ||
		!EVP_MAC_final(mac_ctx, out, &outlen, HS256_LEN) ||
		outlen != HS256_LEN)
		elog(ERROR, "HMAC-SHA256 failed");
}

/* ------------------------------------------------------------------------
 * Signing
 * ------------------------------------------------------------------------
 */

/*
 * key_lookup runs a one-row query on ku9.signing_keys as its owner and
 * returns its two text columns, palloc'd in the caller's context; false when
 * there is no row.
 */
static bool
key_lookup(const char *sql, int nargs, Oid *types, Datum *values,
		   char **col1, char **col2)
{
	MemoryContext caller = CurrentMemoryContext;
	Ku9SavedUser saved;
	bool		found;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	Ku9BecomeUser(Ku9RelationOwner("ku9", "signing_keys"), &saved);
	ret = SPI_execute_with_args(sql, nargs, types, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	found = SPI_processed == 1;
	if (found)
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);

		*col1 = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		*col2 = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		MemoryContextSwitchTo(spi);
	}
	Ku9RestoreUser(&saved);
	SPI_finish();
	return found;
}

/*
 * check_length errors (54000) when a token ku9 made is longer than any it
 * would accept.
 */
static void
check_length(size_t len)
{
	if (len > KU9_JWT_MAX_LENGTH)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("token of %zu bytes is longer than the %d bytes ku9 accepts", len, KU9_JWT_MAX_LENGTH),
				errhint("Put less in the claims."));
}

/*
 * Ku9JwtSign returns a token for the claims (a JSON object), palloc'd in
 * the current context: HS256 with ku9.jwt_secret, or, when ku9.jwt_alg
 * says RS256 or ES256, with the newest key of that algorithm.
 */
char *
Ku9JwtSign(Jsonb *claims)
{
	StringInfoData buf;
	char	   *json;
	unsigned char sig[HS256_LEN];

	if (!JB_ROOT_IS_OBJECT(claims))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("token claims must be a JSON object"));
	json = JsonbToCString(NULL, &claims->root, VARSIZE(claims));

	if (ku9_jwt_alg != NULL && strcmp(ku9_jwt_alg, "HS256") != 0)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(ku9_jwt_alg)};
		char	   *kid;
		char	   *pem;

		if (!key_lookup("SELECT kid, private_key FROM ku9.signing_keys "
						"WHERE alg OPERATOR(pg_catalog.=) $1 AND retired_at IS NULL "
						"ORDER BY created_at DESC LIMIT 1",
						1, types, values, &kid, &pem))
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("there is no %s signing key", ku9_jwt_alg),
					errhint("Make one with ku9.rotate_signing_key('%s').", ku9_jwt_alg));
		{
			char	   *token = Ku9LibjwtSign(json, ku9_jwt_alg, kid, pem);

			check_length(strlen(token));
			return token;
		}
	}

	hmac_ready();
	initStringInfo(&buf);
	appendStringInfoString(&buf, ku9_header_b64);
	appendStringInfoChar(&buf, '.');
	Ku9B64UrlEncode(&buf, (unsigned char *) json, strlen(json));
	hs256(buf.data, buf.len, sig);
	appendStringInfoChar(&buf, '.');
	Ku9B64UrlEncode(&buf, sig, HS256_LEN);
	pfree(json);
	check_length(buf.len);
	return buf.data;
}

/*
 * ku9_jwt_sign signs claims as an HS256 token.
 */
Datum
ku9_jwt_sign(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(Ku9JwtSign(PG_GETARG_JSONB_P(0))));
}

/* ------------------------------------------------------------------------
 * Verification
 * ------------------------------------------------------------------------
 */

static void reject(const char *why, const char *detail) KU9_NORETURN;

static void
reject(const char *why, const char *detail)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			errmsg("invalid token: %s", why),
			detail ? errdetail_internal("%s", detail) : 0);
}

/*
 * parse_object parses decoded JSON, which must be an object; NULL otherwise.
 */
static Jsonb *
parse_object(const char *json, int len)
{
	Datum		d;
	char	   *message;
	Jsonb	   *jb;

	if ((int) strlen(json) != len)
		return NULL;			/* a NUL inside */
	if (!pg_verifymbstr(json, len, true))
		return NULL;			/* not valid in the database encoding */
	if (!Ku9TryCall(jsonb_in, CStringGetDatum(json), 0, 0, &d, &message))
		return NULL;
	jb = DatumGetJsonbP(d);
	return JB_ROOT_IS_OBJECT(jb) ? jb : NULL;
}

/*
 * numeric_claim returns a numeric claim as seconds; false when absent.
 * A present claim that is not a number rejects the token.
 */
static bool
numeric_claim(Jsonb *claims, const char *name, double *out)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&claims->root, name, strlen(name), NULL);

	if (v == NULL)
		return false;
	if (v->type != jbvNumeric)
		reject(psprintf("claim \"%s\" is not a number", name), NULL);
	*out = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											  NumericGetDatum(v->val.numeric)));
	if (isinf(*out) || isnan(*out))
		reject(psprintf("claim \"%s\" is out of range", name), NULL);
	return true;
}

/*
 * audience_matches tells whether the aud claim (a string, or an array of
 * strings) names aud.
 */
static bool
audience_matches(Jsonb *claims, const char *aud)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&claims->root, "aud", 3, NULL);
	size_t		len = strlen(aud);

	if (v == NULL)
		return false;
	if (v->type == jbvString)
		return v->val.string.len == (int) len && memcmp(v->val.string.val, aud, len) == 0;
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
	{
		JsonbValue	want;

		want.type = jbvString;
		want.val.string.val = (char *) aud;
		want.val.string.len = len;
		return findJsonbValueFromContainer(v->val.binary.data, JB_FARRAY, &want) != NULL;
	}
	return false;
}

/*
 * check_claims applies the time, audience and issuer checks to a token's
 * claims, and returns them.
 */
static Jsonb *
check_claims(Jsonb *claims)
{
	double		now,
				t;

	now = (double) (GetCurrentTimestamp() - SetEpochTimestamp()) / USECS_PER_SEC;
	if (!numeric_claim(claims, "exp", &t))
		reject("no expiry", "The token has no \"exp\" claim.");
	if (now > t + ku9_jwt_leeway)
		reject("expired", NULL);
	if (numeric_claim(claims, "nbf", &t) && now + ku9_jwt_leeway < t)
		reject("not valid yet", "Its \"nbf\" claim is in the future.");
	if (numeric_claim(claims, "iat", &t) && now + ku9_jwt_leeway < t)
		reject("issued in the future", "Its \"iat\" claim is in the future.");
	if (ku9_jwt_aud && ku9_jwt_aud[0] != '\0' && !audience_matches(claims, ku9_jwt_aud))
		reject("wrong audience", psprintf("The \"aud\" claim must name \"%s\".", ku9_jwt_aud));
	if (ku9_jwt_iss && ku9_jwt_iss[0] != '\0')
	{
		JsonbValue *iss = getKeyJsonValueFromContainer(&claims->root, "iss", 3, NULL);

		if (iss == NULL || iss->type != jbvString ||
			iss->val.string.len != (int) strlen(ku9_jwt_iss) ||
			memcmp(iss->val.string.val, ku9_jwt_iss, iss->val.string.len) != 0)
			reject("wrong issuer", psprintf("The \"iss\" claim must be \"%s\".", ku9_jwt_iss));
	}
	return claims;
}

/*
 * Ku9JwtVerify checks a token as described at the top of this file and
 * returns its claims, palloc'd in the current context.  Errors 28000 for
 * any invalid token.
 */
Jsonb *
Ku9JwtVerify(const char *token, int len)
{
	const char *dot1;
	const char *dot2;
	int			hlen,
				plen,
				slen;
	unsigned char *buf;
	unsigned char sig[HS256_LEN];
	unsigned char given[HS256_LEN + 3];
	Jsonb	   *claims;
	char	   *alg = "HS256";
	char	   *kid = NULL;
	int			n;

	if (len > KU9_JWT_MAX_LENGTH)
		reject("too long", psprintf("A token may have at most %d bytes.", KU9_JWT_MAX_LENGTH));
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (dot1 + 1 - token)) : NULL;
	if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', len - (dot2 + 1 - token)) != NULL)
		reject("malformed", "A token has three dot-separated parts.");
	hlen = dot1 - token;
	plen = dot2 - dot1 - 1;
	slen = len - (dot2 + 1 - token);
	buf = palloc(Max(hlen, plen) + 4);

	/* the header: ku9's own HS256 one, or one naming HS256, RS256 or ES256 */
	if (!(hlen == (int) sizeof(ku9_header_b64) - 1 &&
		  memcmp(token, ku9_header_b64, hlen) == 0))
	{
		Jsonb	   *header;
		JsonbValue *v;

		n = b64url_decode(token, hlen, buf);
		if (n < 0 || (header = parse_object((char *) buf, n)) == NULL)
			reject("malformed header", "The header is not a base64url-encoded JSON object.");
		v = getKeyJsonValueFromContainer(&header->root, "alg", 3, NULL);
		if (v == NULL || v->type != jbvString)
			reject("malformed header", "The header names no algorithm.");
		alg = pnstrdup(v->val.string.val, v->val.string.len);
		if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0)
		{
			v = getKeyJsonValueFromContainer(&header->root, "kid", 3, NULL);
			if (v == NULL || v->type != jbvString)
				reject("no key id", "RS256 and ES256 tokens name their key with \"kid\".");
			kid = pnstrdup(v->val.string.val, v->val.string.len);
		}
		else if (strcmp(alg, "HS256") != 0)
			reject(psprintf("algorithm \"%s\" is not accepted",
							pnstrdup(alg, pg_mbcliplen(alg, strlen(alg), 32))),
				   "Tokens are signed with HS256, RS256 or ES256.");
		if (getKeyJsonValueFromContainer(&header->root, "crit", 4, NULL) != NULL)
			reject("unsupported critical header", "ku9 understands no \"crit\" extension.");
	}

	if (kid != NULL)
	{
		/* an asymmetric token: its key decides, and libjwt checks */
		Oid			types[2] = {TEXTOID, INT4OID};
		Datum		values[2];
		char	   *key_alg;
		char	   *pem;
		char	   *json;

		values[0] = CStringGetTextDatum(kid);
		values[1] = Int32GetDatum(ku9_jwt_exp + ku9_jwt_leeway);
		if (!key_lookup("SELECT alg, public_key FROM ku9.signing_keys "
						"WHERE kid OPERATOR(pg_catalog.=) $1 AND (retired_at IS NULL OR "
						"retired_at OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $2) "
						"OPERATOR(pg_catalog.>) pg_catalog.now())",
						2, types, values, &key_alg, &pem))
			reject("unknown key", psprintf("No current signing key has kid \"%s\".", kid));
		if (strcmp(key_alg, alg) != 0)
			reject(psprintf("algorithm \"%s\" does not match the key", alg),
				   psprintf("Key \"%s\" is an %s key.", kid, key_alg));
		json = Ku9LibjwtVerify(pnstrdup(token, len), alg, pem);
		if (json == NULL)
			reject("bad signature", NULL);
		if ((claims = parse_object(json, strlen(json))) == NULL)
			reject("malformed claims", "The claims are not a JSON object.");
		pfree(buf);
		return check_claims(claims);
	}

	/* an HS256 token: the signature, over "header.payload" */
	hmac_ready();
	if (slen != 43 || b64url_decode(dot2 + 1, slen, given) != HS256_LEN)
		reject("bad signature", NULL);
	hs256(token, dot2 - token, sig);
	if (CRYPTO_memcmp(sig, given, HS256_LEN) != 0)
		reject("bad signature", NULL);

	/* the claims */
	n = b64url_decode(dot1 + 1, plen, buf);
	if (n < 0 || (claims = parse_object((char *) buf, n)) == NULL)
		reject("malformed claims", "The claims are not a base64url-encoded JSON object.");
	pfree(buf);
	return check_claims(claims);
}

/*
 * ku9_jwt_verify checks a token and returns its claims.
 */
Datum
ku9_jwt_verify(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);

	PG_RETURN_JSONB_P(Ku9JwtVerify(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token)));
}
