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

#include "utils/jsonb.h"

extern char *Ku9JwtSign(Jsonb *claims);
extern Jsonb *Ku9JwtVerify(const char *token, int len);

#endif							/* KU9_JWT_H */
