/*-------------------------------------------------------------------------
 *
 * project.c
 *	  MongoDB projections: which fields of a document a query returns.
 *
 * A projection either includes paths ({"a": 1, "b.c": 1}) or excludes them
 * ({"a": 0}); only _id may go against the mode, and _id is included unless
 * {"_id": 0}.  Through arrays a projection applies to each element that is
 * a document; an inclusion drops the other elements, as MongoDB does.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/docs/project.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "docs/docs.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

typedef struct ProjNode
{
	char	   *name;
	int			len;
	bool		leaf;
	List	   *children;
} ProjNode;

typedef struct Projection
{
	bool		include;		/* inclusion mode */
	bool		id;				/* _id in the result */
	ProjNode   *root;
} Projection;

static ProjNode *
child_of(ProjNode *node, const char *name, int len, bool create)
{
	ListCell   *lc;
	ProjNode   *c;

	foreach(lc, node->children)
	{
		c = lfirst(lc);
		if (c->len == len && memcmp(c->name, name, len) == 0)
			return c;
	}
	if (!create)
		return NULL;
	c = palloc0(sizeof(ProjNode));
	c->name = pnstrdup(name, len);
	c->len = len;
	node->children = lappend(node->children, c);
	return c;
}

static void
projection_error(const char *path, const char *what)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid projection at \"%s\": %s", path, what));
}

static Projection *
parse_projection(Jsonb *spec)
{
	Projection *p = palloc0(sizeof(Projection));
	JsonbIterator *it = JsonbIteratorInit(&spec->root);
	JsonbValue	k,
				v;
	JsonbIteratorToken t;
	int			mode = -1;		/* -1 unknown, 0 exclude, 1 include */
	int			id = -1;

	p->root = palloc0(sizeof(ProjNode));
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		Ku9DocPath *path;
		bool		inc;
		ProjNode   *node;

		if (t != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		path = Ku9DocParsePath(k.val.string.val, k.val.string.len, "projection");
		if (v.type == jbvBool)
			inc = v.val.boolean;
		else if (v.type == jbvNumeric)
			inc = !DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(v.val.numeric),
													NumericGetDatum(int64_to_numeric(0))));
		else
		{
			projection_error(path->text, "expected 1, 0, true or false (projection operators and expressions are not supported)");
			inc = false;
		}
		if (path->n == 1 && strcmp(path->names[0], "_id") == 0)
		{
			id = inc;
			continue;
		}
		if (mode >= 0 && mode != (int) inc)
			projection_error(path->text, "cannot mix inclusion and exclusion (only _id may differ)");
		mode = inc;
		node = p->root;
		for (int i = 0; i < path->n; i++)
		{
			if (node->leaf)
				projection_error(path->text, "path collision with a shorter path");
			node = child_of(node, path->names[i], path->lens[i], true);
		}
		if (node->leaf || node->children != NIL)
			projection_error(path->text, "path collision with another path");
		node->leaf = true;
	}
	if (mode < 0)
	{
		/* only _id, or nothing: {_id: 0} excludes it, {_id: 1} keeps only it */
		p->include = (id == 1);
		p->id = (id != 0);
	}
	else
	{
		p->include = (mode == 1);
		p->id = (id != 0);
	}
	return p;
}

static JsonbValue *project_object(JsonbParseState **state, const JsonbValue *obj, ProjNode *node,
								  bool include, bool top, bool id);

static void
project_array(JsonbParseState **state, const JsonbValue *arr, ProjNode *node, bool include)
{
	int			n = Ku9DocArraySize(arr);

	check_stack_depth();
	(void) pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = Ku9DocArrayElem(arr, i);

		if (Ku9DocIsObject(e))
			(void) project_object(state, e, node, include, false, false);
		else if (Ku9DocIsArray(e))
			project_array(state, e, node, include);
		else if (!include)
			(void) pushJsonbValue(state, WJB_ELEM, e);
	}
	(void) pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

static JsonbValue *
project_object(JsonbParseState **state, const JsonbValue *obj, ProjNode *node,
			   bool include, bool top, bool id)
{
	JsonbIterator *it = JsonbIteratorInit(obj->val.binary.data);
	JsonbValue	k,
				v;
	JsonbIteratorToken t;

	check_stack_depth();
	(void) pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		ProjNode   *c;

		if (t != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &v, true);
		if (top && k.val.string.len == 3 && memcmp(k.val.string.val, "_id", 3) == 0)
		{
			if (id)
			{
				(void) pushJsonbValue(state, WJB_KEY, &k);
				(void) pushJsonbValue(state, WJB_VALUE, &v);
			}
			continue;
		}
		c = child_of(node, k.val.string.val, k.val.string.len, false);
		if (c == NULL)
		{
			if (!include)
			{
				(void) pushJsonbValue(state, WJB_KEY, &k);
				(void) pushJsonbValue(state, WJB_VALUE, &v);
			}
			continue;
		}
		if (c->leaf)
		{
			if (include)
			{
				(void) pushJsonbValue(state, WJB_KEY, &k);
				(void) pushJsonbValue(state, WJB_VALUE, &v);
			}
			continue;
		}
		if (Ku9DocIsObject(&v))
		{
			(void) pushJsonbValue(state, WJB_KEY, &k);
			(void) project_object(state, &v, c, include, false, false);
		}
		else if (Ku9DocIsArray(&v))
		{
			(void) pushJsonbValue(state, WJB_KEY, &k);
			project_array(state, &v, c, include);
		}
		else if (!include)
		{
			(void) pushJsonbValue(state, WJB_KEY, &k);
			(void) pushJsonbValue(state, WJB_VALUE, &v);
		}
	}
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

typedef struct ProjCache
{
	Jsonb	   *spec;
	Projection *p;
} ProjCache;

PG_FUNCTION_INFO_V1(ku9_doc_project);

/* ku9_docs.project(doc jsonb, projection jsonb) → the projected document */
Datum
ku9_doc_project(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	Jsonb	   *spec = PG_GETARG_JSONB_P(1);
	ProjCache  *pc = fcinfo->flinfo->fn_extra;
	JsonbParseState *state = NULL;
	JsonbValue	root;

	/* parse once per statement (the projection is normally a parameter) */
	if (pc == NULL || VARSIZE(pc->spec) != VARSIZE(spec) ||
		memcmp(pc->spec, spec, VARSIZE(spec)) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (!JB_ROOT_IS_OBJECT(spec))
			projection_error("", "expected an object");
		pc = palloc(sizeof(ProjCache));
		pc->spec = palloc(VARSIZE(spec));
		memcpy(pc->spec, spec, VARSIZE(spec));
		pc->p = parse_projection(pc->spec);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = pc;
	}
	if (!JB_ROOT_IS_OBJECT(doc))
		PG_RETURN_JSONB_P(doc);
	Ku9DocRootValue(doc, &root);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(project_object(&state, &root, pc->p->root, pc->p->include,
													   true, pc->p->id)));
}
