/*-------------------------------------------------------------------------
 *
 * filter.h
 *	  The filter compiler's side of docs.c: building parameterised SQL.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/docs/filter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_DOCS_FILTER_H
#define KU9_DOCS_FILTER_H

#include "docs/docs.h"

#define KU9_SQL_MAX_PARAMS 100

/* SQL text and its parameters; values never go into the text */
typedef struct Ku9SqlBuilder
{
	StringInfo	sql;
	int			nparams;
	Oid			types[KU9_SQL_MAX_PARAMS];
	Datum		values[KU9_SQL_MAX_PARAMS];
	bool		generic;		/* prepare for a generic plan */
} Ku9SqlBuilder;

/* the leading key of a collection's B-tree index (create_index) */
typedef struct Ku9IndexKey
{
	char	   *path;			/* dotted */
	bool		desc;			/* made with -1: keys of arrays are their largest element */
} Ku9IndexKey;

typedef struct Ku9IndexInfo
{
	int			n;
	Ku9IndexKey *keys;
	/* for a sorted range split in two (see build_find): which arm, on which path */
	const char *arm_path;
	int			arm;			/* 0: none; 1: documents without an array on arm_path; 2: with */
} Ku9IndexInfo;

typedef void (*Ku9SeedFn) (const Ku9DocPath *path, const JsonbValue *value, void *arg);

/* docs.c */
extern char *Ku9SqlParam(Ku9SqlBuilder *b, Datum value, const char *type);
extern bool Ku9IndexCondition(const Ku9Filter *f, Ku9SqlBuilder *b, const Ku9IndexInfo *indexes);

/* filter.c */
extern bool Ku9FilterCompile(const Ku9Filter *f, Ku9SqlBuilder *b, const Ku9IndexInfo *indexes);
extern bool Ku9FilterRange(const Ku9Filter *f, const Ku9DocPath **path, const char **op,
						   const JsonbValue **value);
extern bool Ku9FilterHasRangeOn(const Ku9Filter *f, const char *path);
extern void Ku9FilterSeed(const Ku9Filter *f, Ku9SeedFn fn, void *arg);

#endif							/* KU9_DOCS_FILTER_H */
