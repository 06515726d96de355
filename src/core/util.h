/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Small helpers shared by ku9's modules.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/core/util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_UTIL_H
#define KU9_UTIL_H

#include "fmgr.h"

extern bool Ku9TryCall(PGFunction fn, Datum arg1, Datum arg2, Datum arg3,
					   Datum *result, char **message);

#endif							/* KU9_UTIL_H */
