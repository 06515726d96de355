/*-------------------------------------------------------------------------
 *
 * jwt.h
 *	  JSON Web Tokens: HS256 signing and verification.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/auth/jwt.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_JWT_H
#define KU9_JWT_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

extern char *Ku9JwtSign(Jsonb *claims);
extern Jsonb *Ku9JwtVerify(const char *token, int len);
extern void Ku9B64UrlEncode(StringInfo buf, const unsigned char *src, size_t len);

/* libjwt.c: RS256/ES256 through libjwt, loaded in its own scope */
extern char *Ku9LibjwtSign(const char *claims_json, const char *alg, const char *kid,
						   const char *private_pem);
extern char *Ku9LibjwtVerify(const char *token, const char *alg, const char *public_pem);

#endif							/* KU9_JWT_H */
