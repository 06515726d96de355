/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every PostgreSQL version difference ku9 depends on, and nothing else.
 *
 * ku9 targets PostgreSQL 15.  Code elsewhere uses the newest spelling of an
 * API; this header maps it onto older servers.  No other file may test
 * PG_VERSION_NUM.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_COMPAT_H
#define KU9_COMPAT_H

#include "funcapi.h"

#if PG_VERSION_NUM < 150000
#error "ku9 requires PostgreSQL 15 or later"
#endif

/*
 * InitMaterializedSRF is the PostgreSQL 16 name; early 15.x minors only
 * have SetSingleFuncCall, with the same signature and flags.
 */
#if PG_VERSION_NUM < 160000
#define Ku9InitMaterializedSRF(fcinfo, flags) SetSingleFuncCall(fcinfo, flags)
#else
#define Ku9InitMaterializedSRF(fcinfo, flags) InitMaterializedSRF(fcinfo, flags)
#endif

/* early 15.x minors name the SRF flags SRF_SINGLE_* */
#ifndef MAT_SRF_USE_EXPECTED_DESC
#define MAT_SRF_USE_EXPECTED_DESC SRF_SINGLE_USE_EXPECTED
#endif

/* pg_noreturn replaces pg_attribute_noreturn() in 18 */
#if PG_VERSION_NUM < 180000
#define KU9_NORETURN pg_attribute_noreturn()
#else
#define KU9_NORETURN
#endif

/* object_aclcheck replaces the per-kind aclcheck functions in 16 */
#if PG_VERSION_NUM < 160000
#define Ku9ProcAclCheck(fn, role, mode) pg_proc_aclcheck((fn), (role), (mode))
#else
#define Ku9ProcAclCheck(fn, role, mode) object_aclcheck(ProcedureRelationId, (fn), (role), (mode))
#endif

/* wait events: custom ones (WaitEventExtensionNew) arrive in 17 */
#define KU9_WAIT_EVENT_EXTENSION PG_WAIT_EXTENSION

#endif							/* KU9_COMPAT_H */
