/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Asymmetric signing keys: generating RS256/ES256 key pairs and their
 *	  public JWKs.
 *
 * Keys are generated with OpenSSL (RSA 2048 bits, or EC P-256) and handed
 * to SQL as PEM text plus the public key as a JWK object (RFC 7517/7518);
 * ku9.rotate_signing_key() stores them in ku9.signing_keys.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/auth/keys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "auth/jwt.h"

PG_FUNCTION_INFO_V1(ku9_generate_signing_key);

static char *
bio_text(BIO *bio)
{
	char	   *data;
	long		len = BIO_get_mem_data(bio, &data);

	return pnstrdup(data, len);
}

/*
 * bn_b64url appends a BIGNUM parameter of the key as base64url, left-padded
 * with zeros to pad bytes (0: no padding).
 */
static void
bn_b64url(StringInfo buf, EVP_PKEY *pkey, const char *param, int pad)
{
	BIGNUM	   *bn = NULL;
	unsigned char *bytes;
	int			len;
	bool		ok;

	if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
		elog(ERROR, "could not read key parameter %s", param);
	len = pad > 0 ? pad : BN_num_bytes(bn);
	bytes = palloc(len);
	ok = BN_bn2binpad(bn, bytes, len) == len;
	BN_free(bn);
	if (!ok)
		elog(ERROR, "could not encode key parameter %s", param);
	Ku9B64UrlEncode(buf, bytes, len);
	pfree(bytes);
}

/*
 * ku9_generate_signing_key makes a key pair for alg ('RS256' or 'ES256')
 * and returns (private_pem, public_pem, jwk) — the JWK without kid.
 */
Datum
ku9_generate_signing_key(PG_FUNCTION_ARGS)
{
	char	   *alg = text_to_cstring(PG_GETARG_TEXT_PP(0));
	EVP_PKEY   *volatile pkey;
	BIO		   *volatile priv;
	BIO		   *volatile pub;
	StringInfoData jwk;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (strcmp(alg, "RS256") == 0)
		pkey = EVP_RSA_gen(2048);
	else if (strcmp(alg, "ES256") == 0)
		pkey = EVP_EC_gen("P-256");
	else
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("unsupported signing algorithm \"%s\"", alg),
				errhint("Signing keys are RS256 or ES256."));
	if (pkey == NULL)
		elog(ERROR, "OpenSSL could not generate a %s key", alg);

	priv = BIO_new(BIO_s_mem());
	pub = BIO_new(BIO_s_mem());
	/* the key and the BIOs (which hold the private key) are freed on every path */
	PG_TRY();
	{
		if (priv == NULL || pub == NULL ||
			!PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) ||
			!PEM_write_bio_PUBKEY(pub, pkey))
			elog(ERROR, "OpenSSL could not write a %s key", alg);

		initStringInfo(&jwk);
		if (strcmp(alg, "RS256") == 0)
		{
			appendStringInfoString(&jwk, "{\"kty\": \"RSA\", \"alg\": \"RS256\", \"use\": \"sig\", \"n\": \"");
			bn_b64url(&jwk, pkey, OSSL_PKEY_PARAM_RSA_N, 0);
			appendStringInfoString(&jwk, "\", \"e\": \"");
			bn_b64url(&jwk, pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		}
		else
		{
			appendStringInfoString(&jwk, "{\"kty\": \"EC\", \"alg\": \"ES256\", \"use\": \"sig\", \"crv\": \"P-256\", \"x\": \"");
			bn_b64url(&jwk, pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
			appendStringInfoString(&jwk, "\", \"y\": \"");
			bn_b64url(&jwk, pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
		}
		appendStringInfoString(&jwk, "\"}");

		values[0] = CStringGetTextDatum(bio_text(priv));
		values[1] = CStringGetTextDatum(bio_text(pub));
		values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(jwk.data));
	}
	PG_FINALLY();
	{
		BIO_free(priv);
		BIO_free(pub);
		EVP_PKEY_free(pkey);
	}
	PG_END_TRY();

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
