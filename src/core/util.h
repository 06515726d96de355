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
#include "utils/jsonb.h"

#include "compat.h"

extern bool Ku9TryCall(PGFunction fn, Datum arg1, Datum arg2, Datum arg3,
					   Datum *result, char **message);

/* the caller's identity while a function runs as an object's owner */
typedef struct Ku9SavedUser
{
	Oid			userid;
	int			sec_context;
} Ku9SavedUser;

extern Oid	Ku9RelationOwner(const char *nspname, const char *relname);
extern Oid	Ku9RelationOwnerById(Oid relid);
extern void Ku9BecomeUser(Oid owner, Ku9SavedUser *saved);
extern void Ku9RestoreUser(Ku9SavedUser *saved);

extern void Ku9CheckName(const char *name, const char *kind, int max);
extern char *Ku9ArgName(FunctionCallInfo fcinfo, int argno, const char *kind, int max);
extern bool Ku9IsService(void);
extern void Ku9RequireService(const char *action, const char *hint);
extern int	Ku9RestrictSearchPath(void);
extern void Ku9SpiConnect(void);
extern void Ku9SpiRun(const char *sql);

/* options objects: fn is called for each key; the value helpers raise 22023 */
typedef void (*Ku9OptionFn) (const char *key, JsonbValue *value, void *state);

extern void Ku9OptionsIterate(const char *func, Jsonb *options, Ku9OptionFn fn, void *state);
extern void Ku9OptionError(const char *func, const char *key, const char *what) KU9_NORETURN;
extern double Ku9OptionNumber(const char *func, const char *key, JsonbValue *v);
extern int	Ku9OptionInt(const char *func, const char *key, JsonbValue *v, int min, int max);
extern char *Ku9OptionString(const char *func, const char *key, JsonbValue *v);

#endif							/* KU9_UTIL_H */
