/*-------------------------------------------------------------------------
 *
 * docs.h
 *	  Document collections: MongoDB's value order, paths, filters and
 *	  update operators over jsonb.
 *
 * Values are JsonbValues: scalars (jbvNull, jbvString, jbvNumeric,
 * jbvBool) or containers as jbvBinary.  A missing value is a NULL pointer.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/docs/docs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_DOCS_H
#define KU9_DOCS_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

/* MongoDB's canonical type order (a missing value sorts as null) */
typedef enum Ku9DocRank
{
	KU9_RANK_NULL = 1,
	KU9_RANK_NUMBER = 2,
	KU9_RANK_STRING = 3,
	KU9_RANK_OBJECT = 4,
	KU9_RANK_ARRAY = 5,
	KU9_RANK_BOOL = 6
} Ku9DocRank;

/* nesting limit of stored documents, as MongoDB's */
#define KU9_DOC_MAX_DEPTH 100

extern PGDLLIMPORT int ku9_max_document_size;

/* value.c: values and their order */
extern Ku9DocRank Ku9DocRankOf(const JsonbValue *v);
extern bool Ku9DocIsArray(const JsonbValue *v);
extern bool Ku9DocIsObject(const JsonbValue *v);
extern int	Ku9DocCompare(const JsonbValue *a, const JsonbValue *b);
extern bool Ku9DocEqual(const JsonbValue *a, const JsonbValue *b);
extern bool Ku9DocIdentical(const JsonbValue *a, const JsonbValue *b);
extern JsonbValue *Ku9DocField(const JsonbValue *obj, const char *key, int keylen);
extern int	Ku9DocArraySize(const JsonbValue *arr);
extern JsonbValue *Ku9DocArrayElem(const JsonbValue *arr, int i);
extern void Ku9DocRootValue(Jsonb *jb, JsonbValue *v);
extern void Ku9DocEncodeKey(StringInfo buf, const JsonbValue *v);
extern const char *Ku9DocTypeName(const JsonbValue *v);
extern void Ku9DocCheckStored(Jsonb *doc, const char *what);
extern char *Ku9DocValueText(const JsonbValue *v);

/* value.c: dotted paths */
typedef struct Ku9DocPath
{
	int			n;				/* components */
	char	  **names;			/* each NUL-terminated */
	int		   *lens;
	int		   *index;			/* array position, or -1 when not a number */
	char	   *text;			/* the dotted path as given */
} Ku9DocPath;

extern Ku9DocPath *Ku9DocParsePath(const char *s, int len, const char *context);
extern Ku9DocPath *Ku9DocParsePathOrNull(const char *s, int len);

/*
 * Ku9DocPathVisitor is called for each value a path reaches in a document
 * (value NULL: the path is missing along that branch).  Returning true stops
 * the walk.
 */
typedef bool (*Ku9DocPathVisitor) (const JsonbValue *value, void *arg);
extern bool Ku9DocWalkPath(const JsonbValue *doc, const Ku9DocPath *path,
						   Ku9DocPathVisitor visit, void *arg);
extern bool Ku9DocWalkSortPath(const JsonbValue *doc, const Ku9DocPath *path,
							   Ku9DocPathVisitor visit, void *arg);
extern bool Ku9DocPathHasArray(const JsonbValue *doc, const Ku9DocPath *path);

/* filter.c: query filters */
typedef struct Ku9Filter Ku9Filter;

extern Ku9Filter *Ku9FilterParse(const JsonbValue *filter);
extern bool Ku9FilterMatch(const Ku9Filter *f, const JsonbValue *doc);
extern Ku9Filter *Ku9FilterParseElementCondition(const JsonbValue *cond, const char *path);
extern bool Ku9FilterMatchElement(const Ku9Filter *f, const JsonbValue *elem);

/* update.c: update operators */
typedef struct Ku9Update Ku9Update;

extern Ku9Update *Ku9UpdateParse(const JsonbValue *update);
extern Jsonb *Ku9UpdateApply(const Ku9Update *u, Jsonb *doc, bool inserting, bool *changed);

#endif							/* KU9_DOCS_H */
