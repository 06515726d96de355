/*-------------------------------------------------------------------------
 *
 * update.c
 *	  MongoDB's update operators over jsonb documents.
 *
 * Ku9UpdateParse checks an update document ({"$set": {...}, "$inc": {...}})
 * once: every key an operator, every operand of the right shape, and no
 * two paths in conflict (the same path twice, or one a prefix of another,
 * across all operators; both paths of a $rename count), as MongoDB does.
 * Since no two paths overlap, the order in which the operators run cannot
 * change the result; they run sorted by path.
 *
 * Ku9UpdateApply turns the stored document into a small mutable tree:
 * objects as lists of fields, arrays as lists of elements, and everything
 * else as a JsonbValue, where containers stay jbvBinary until a path goes
 * into them.  Only the containers along the updated paths are ever
 * expanded; the rest is copied as it is when the tree is written back with
 * pushJsonbValue (which also sorts each object's keys the jsonb way).
 *
 * Paths follow MongoDB's update rules, not its query rules: a component
 * names a field of an object, or a position in an array (digits only;
 * MongoDB accepts leading zeros here).  Operators that create ($set, $inc,
 * $push, ...) make missing objects on the way, pad an array with nulls up
 * to a position past its end, and fail where the path meets a scalar or an
 * array by name ("cannot create field").  $unset ignores such paths; $pop,
 * $pull, $pullAll and the source of $rename do nothing on a missing path
 * but fail on one that could never exist (MongoDB's "non-viable" paths).
 *
 * Numbers are jsonb numerics and the arithmetic of $inc and $mul is
 * numeric arithmetic.  A numeric's scale plays the part of MongoDB's
 * double: 1.5 + 1.5 is 3.0, 2 * 1.5 is 3.0, and $mul of a missing field
 * by 2.5 stores 0.0, as MongoDB keeps a double.
 *
 * $currentDate stores the start time of the current transaction as an
 * ISO-8601 string in UTC with microseconds, "2026-11-27T16:00:00.123456+00:00",
 * for {$type: "date"} and {$type: "timestamp"} alike: jsonb has neither
 * BSON type, and such strings sort by time.
 *
 * _id is immutable: after applying, a document that had an _id must still
 * have the same one, byte for byte, as MongoDB compares it, so $set of _id
 * to its own value is allowed and anything that would change, move or
 * remove it fails.  On an upsert insert the seed document has an _id only
 * when the filter gave one, and then the update may only write an equal
 * value (Ku9DocEqual) there, as in MongoDB.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/docs/update.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "docs/docs.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ku9_doc_apply_update);

/* MongoDB's limit on the nulls a $set past the end of an array may add */
#define MAX_ARRAY_PADDING 1500000

/* messages show at most this many bytes of a value */
#define MAX_VALUE_TEXT 80

typedef enum OpKind
{
	OP_SET,
	OP_SET_ON_INSERT,
	OP_UNSET,
	OP_INC,
	OP_MUL,
	OP_MIN,
	OP_MAX,
	OP_RENAME,
	OP_PUSH,
	OP_ADD_TO_SET,
	OP_PULL,
	OP_PULL_ALL,
	OP_POP,
	OP_CURRENT_DATE
} OpKind;

static const struct
{
	const char *name;
	OpKind		kind;
}			operators[] =
{
	{"$set", OP_SET},
	{"$setOnInsert", OP_SET_ON_INSERT},
	{"$unset", OP_UNSET},
	{"$inc", OP_INC},
	{"$mul", OP_MUL},
	{"$min", OP_MIN},
	{"$max", OP_MAX},
	{"$rename", OP_RENAME},
	{"$push", OP_PUSH},
	{"$addToSet", OP_ADD_TO_SET},
	{"$pull", OP_PULL},
	{"$pullAll", OP_PULL_ALL},
	{"$pop", OP_POP},
	{"$currentDate", OP_CURRENT_DATE},
};

/* no $sort, ascending or descending whole elements, or by fields */
#define SORT_NONE	0
#define SORT_WHOLE	1
#define SORT_FIELDS 2

typedef struct SortKey
{
	Ku9DocPath *path;
	int			dir;			/* 1 or -1 */
} SortKey;

/* one field of one operator */
typedef struct UpdateOp
{
	OpKind		kind;
	const char *name;			/* "$set", ... */
	Ku9DocPath *path;
	Ku9DocPath *to;				/* $rename: the new path */
	JsonbValue	value;			/* the operand (a private copy) */
	JsonbValue *each;			/* $push, $addToSet, $pullAll: the values */
	int			neach;
	bool		has_slice;		/* $push */
	int64		slice;
	int64		position;		/* $push: PG_INT64_MAX appends */
	int			sort;			/* $push: SORT_* */
	int			sortdir;		/* SORT_WHOLE: 1 or -1 */
	int			nsortkeys;		/* SORT_FIELDS */
	SortKey    *sortkeys;
	Ku9Filter  *filter;			/* $pull of an object: a condition */
	bool		pop_first;		/* $pop -1 */
} UpdateOp;

struct Ku9Update
{
	int			nops;
	UpdateOp   *ops;			/* sorted by path */
};

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------
 */

#define update_error(...) \
	ereport(ERROR, \
			errcode(ERRCODE_INVALID_PARAMETER_VALUE), \
			errmsg(__VA_ARGS__))

/* copy_value makes out a copy of v that owns its memory */
static void
copy_value(const JsonbValue *v, JsonbValue *out)
{
	Ku9DocRootValue(JsonbValueToJsonb((JsonbValue *) v), out);
}

/* a_type names v's type with an article, for messages */
static const char *
a_type(const JsonbValue *v)
{
	const char *t = Ku9DocTypeName(v);

	return psprintf("%s %s", strchr("aeiou", t[0]) != NULL ? "an" : "a", t);
}

static bool
key_is(const JsonbValue *k, const char *s)
{
	return k->val.string.len == (int) strlen(s) &&
		memcmp(k->val.string.val, s, k->val.string.len) == 0;
}

/* integral_value sets *out to v when v is a whole number within int64 */
static bool
integral_value(const JsonbValue *v, int64 *out)
{
	Numeric		n;
	Datum		whole;

	if (v->type != jbvNumeric)
		return false;
	n = v->val.numeric;
	whole = DirectFunctionCall1(numeric_floor, NumericGetDatum(n));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, whole, NumericGetDatum(n))) != 0)
		return false;
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) > 0)
		return false;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
	return true;
}

/*
 * parse_path parses an update path; positional operators ("a.$.b",
 * "a.$[].b", "a.$[x].b") get their own message, since ku9 has none.
 */
static Ku9DocPath *
parse_path(const char *op, const char *s, int len)
{
	int			start = 0;

	for (int i = 0; i <= len; i++)
	{
		if (i < len && s[i] != '.')
			continue;
		if (i > start && s[start] == '$' && (i - start == 1 || s[start + 1] == '['))
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("invalid update: %s uses a positional operator at \"%s\"",
						   op, pnstrdup(s, len)),
					errdetail("The positional operators $, $[] and $[<identifier>] are not supported; "
							  "name array positions by number, such as \"a.0.b\"."));
		start = i + 1;
	}
	return Ku9DocParsePath(s, len, "update");
}

static void
parse_sort(UpdateOp *op, const JsonbValue *v)
{
	const char *path = op->path->text;

	if (v->type == jbvNumeric)
	{
		int64		dir;

		if (!integral_value(v, &dir) || (dir != 1 && dir != -1))
			update_error("invalid update: $push $sort must be 1 or -1 at \"%s\"", path);
		op->sort = SORT_WHOLE;
		op->sortdir = (int) dir;
	}
	else if (Ku9DocIsObject(v))
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	k,
					x;
		JsonbIteratorToken t;
		int			n = JsonContainerSize(v->val.binary.data);

		if (n == 0)
			update_error("invalid update: $push $sort needs a field at \"%s\"", path);

		/*
		 * MongoDB sorts by the pattern's fields in the order written, which
		 * jsonb does not keep: a pattern of several fields is refused rather
		 * than applied in another order.
		 */
		if (n > 1)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("invalid update: $push $sort by more than one field is not supported at \"%s\"",
						   path),
					errdetail("jsonb does not keep the order of an object's fields, so the order of the sort keys is lost."),
					errhint("Sort by one field, such as {\"$sort\": {\"score\": -1}}."));
		op->sort = SORT_FIELDS;
		op->sortkeys = palloc(sizeof(SortKey) * n);
		while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			int64		dir;

			if (t != WJB_KEY)
				continue;
			t = JsonbIteratorNext(&it, &x, true);
			if (!integral_value(&x, &dir) || (dir != 1 && dir != -1))
				update_error("invalid update: $push $sort must give 1 or -1 for each field at \"%s\"", path);
			op->sortkeys[op->nsortkeys].path = Ku9DocParsePath(k.val.string.val, k.val.string.len,
															  "$push $sort");
			op->sortkeys[op->nsortkeys].dir = (int) dir;
			op->nsortkeys++;
		}
	}
	else
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid update: $push $sort must be 1, -1 or an object at \"%s\"", path),
				errdetail("Use 1 or -1 to sort whole elements, or {\"field\": 1 or -1, ...} to sort documents by their fields."));
}

/* each_values sets op->each/neach to the elements of the array arr */
static void
each_values(UpdateOp *op, const JsonbValue *arr)
{
	JsonbValue	copy;

	copy_value(arr, &copy);
	op->neach = Ku9DocArraySize(&copy);
	op->each = palloc(sizeof(JsonbValue) * Max(op->neach, 1));
	for (int i = 0; i < op->neach; i++)
		op->each[i] = *Ku9DocArrayElem(&copy, i);
}

static void
parse_push(UpdateOp *op, const JsonbValue *v)
{
	const char *path = op->path->text;
	JsonbIterator *it;
	JsonbValue	k,
				x;
	JsonbIteratorToken t;
	JsonbValue *each = Ku9DocField(v, "$each", 5);

	op->position = PG_INT64_MAX;
	if (each == NULL)
	{
		/* {$push: {a: v}} pushes v, whatever it is */
		op->each = palloc(sizeof(JsonbValue));
		copy_value(v, &op->each[0]);
		op->neach = 1;
		return;
	}
	if (!Ku9DocIsArray(each))
		update_error("invalid update: $push $each needs an array at \"%s\", not %s",
					 path, a_type(each));
	each_values(op, each);
	it = JsonbIteratorInit(v->val.binary.data);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (t != WJB_KEY)
			continue;
		t = JsonbIteratorNext(&it, &x, true);
		if (key_is(&k, "$each"))
			continue;
		if (key_is(&k, "$slice"))
		{
			if (!integral_value(&x, &op->slice))
				update_error("invalid update: $push $slice needs an integer at \"%s\", not %s",
							 path, a_type(&x));
			op->has_slice = true;
		}
		else if (key_is(&k, "$position"))
		{
			if (!integral_value(&x, &op->position))
				update_error("invalid update: $push $position needs an integer at \"%s\", not %s",
							 path, a_type(&x));
		}
		else if (key_is(&k, "$sort"))
			parse_sort(op, &x);
		else
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid update: $push has an unknown clause \"%s\" at \"%s\"",
						   pnstrdup(k.val.string.val, k.val.string.len), path),
					errdetail("With $each, $push takes only $slice, $sort and $position."));
	}
}

static void
parse_add_to_set(UpdateOp *op, const JsonbValue *v)
{
	JsonbValue *each = Ku9DocField(v, "$each", 5);

	if (each == NULL)
	{
		op->each = palloc(sizeof(JsonbValue));
		copy_value(v, &op->each[0]);
		op->neach = 1;
		return;
	}
	if (!Ku9DocIsArray(each))
		update_error("invalid update: $addToSet $each needs an array at \"%s\", not %s",
					 op->path->text, a_type(each));
	if (JsonContainerSize(v->val.binary.data) > 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid update: $addToSet takes only $each at \"%s\"", op->path->text),
				errdetail("$addToSet has no $slice, $sort or $position; use $push for those."));
	each_values(op, each);
}

static void
parse_current_date(UpdateOp *op, const JsonbValue *v)
{
	const char *path = op->path->text;

	/* MongoDB takes any boolean, false included, as "date" */
	if (v->type == jbvBool)
		return;
	if (Ku9DocIsObject(v))
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	k,
					x;
		JsonbIteratorToken t;
		bool		found = false;

		while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (t != WJB_KEY)
				continue;
			t = JsonbIteratorNext(&it, &x, true);
			if (!key_is(&k, "$type"))
				update_error("invalid update: $currentDate has an unknown option \"%s\" at \"%s\"",
							 pnstrdup(k.val.string.val, k.val.string.len), path);
			if (x.type == jbvString && (key_is(&x, "date") || key_is(&x, "timestamp")))
				found = true;
		}
		if (found)
			return;
		update_error("invalid update: $currentDate $type must be \"date\" or \"timestamp\" at \"%s\"",
					 path);
	}
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid update: $currentDate needs true or {\"$type\": \"date\"} at \"%s\", not %s",
				   path, a_type(v)),
			errdetail("The forms are true, {\"$type\": \"date\"} and {\"$type\": \"timestamp\"}."));
}

/* parse_operand checks the operand v of op (op->kind, op->path set) */
static void
parse_operand(UpdateOp *op, const JsonbValue *v)
{
	const char *path = op->path->text;

	switch (op->kind)
	{
		case OP_SET:
		case OP_SET_ON_INSERT:
		case OP_MIN:
		case OP_MAX:
			copy_value(v, &op->value);
			break;
		case OP_UNSET:
			/* the value is ignored */
			break;
		case OP_INC:
		case OP_MUL:
			if (v->type != jbvNumeric)
				update_error("invalid update: %s needs a number at \"%s\", not %s",
							 op->name, path, a_type(v));
			copy_value(v, &op->value);
			break;
		case OP_RENAME:
			if (v->type != jbvString)
				update_error("invalid update: $rename needs a string (the new path) at \"%s\", not %s",
							 path, a_type(v));
			op->to = parse_path(op->name, v->val.string.val, v->val.string.len);
			if (strcmp(op->to->text, path) == 0)
				update_error("invalid update: $rename source and target must differ at \"%s\"", path);
			{
				int			n = Min(op->path->n, op->to->n);
				bool		prefix = true;

				for (int i = 0; i < n && prefix; i++)
					prefix = strcmp(op->path->names[i], op->to->names[i]) == 0;
				if (prefix)
					update_error("invalid update: $rename source \"%s\" and target \"%s\" must not be on the same path",
								 path, op->to->text);
			}
			break;
		case OP_PUSH:
			parse_push(op, v);
			break;
		case OP_ADD_TO_SET:
			parse_add_to_set(op, v);
			break;
		case OP_PULL:
			copy_value(v, &op->value);
			/* an object is a condition (operators or a query); anything else a value to equal */
			if (Ku9DocIsObject(&op->value))
				op->filter = Ku9FilterParseElementCondition(&op->value, path);
			break;
		case OP_PULL_ALL:
			if (!Ku9DocIsArray(v))
				update_error("invalid update: $pullAll needs an array at \"%s\", not %s",
							 path, a_type(v));
			each_values(op, v);
			break;
		case OP_POP:
			{
				int64		n;

				if (!integral_value(v, &n) || (n != 1 && n != -1))
					ereport(ERROR,
							errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("invalid update: $pop needs 1 or -1 at \"%s\"", path),
							errdetail("1 removes the last element, -1 the first."));
				op->pop_first = (n == -1);
			}
			break;
		case OP_CURRENT_DATE:
			parse_current_date(op, v);
			break;
	}
}

/* compare_paths orders paths component by component, a prefix first */
static int
compare_paths(const Ku9DocPath *a, const Ku9DocPath *b)
{
	for (int i = 0; i < Min(a->n, b->n); i++)
	{
		int			c = memcmp(a->names[i], b->names[i], Min(a->lens[i], b->lens[i]));

		if (c == 0)
			c = (a->lens[i] > b->lens[i]) - (a->lens[i] < b->lens[i]);
		if (c != 0)
			return c;
	}
	return (a->n > b->n) - (a->n < b->n);
}

static int
compare_ops(const void *a, const void *b)
{
	return compare_paths(((const UpdateOp *) a)->path, ((const UpdateOp *) b)->path);
}

typedef struct Claim
{
	const Ku9DocPath *path;
	const char *op;
} Claim;

static int
compare_claims(const void *a, const void *b)
{
	return compare_paths(((const Claim *) a)->path, ((const Claim *) b)->path);
}

/*
 * check_conflicts errors when two paths of the update overlap.  Sorted,
 * a path is followed by the paths it is a prefix of, so comparing
 * neighbours finds every conflict.
 */
static void
check_conflicts(const Ku9Update *u)
{
	Claim	   *claims = palloc(sizeof(Claim) * Max(2 * u->nops, 1));
	int			n = 0;

	for (int i = 0; i < u->nops; i++)
	{
		claims[n].path = u->ops[i].path;
		claims[n++].op = u->ops[i].name;
		if (u->ops[i].to != NULL)
		{
			claims[n].path = u->ops[i].to;
			claims[n++].op = u->ops[i].name;
		}
	}
	qsort(claims, n, sizeof(Claim), compare_claims);
	for (int i = 1; i < n; i++)
	{
		const Ku9DocPath *a = claims[i - 1].path;
		const Ku9DocPath *b = claims[i].path;
		bool		prefix = a->n <= b->n;

		for (int k = 0; k < a->n && prefix; k++)
			prefix = a->lens[k] == b->lens[k] && memcmp(a->names[k], b->names[k], a->lens[k]) == 0;
		if (prefix)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid update: updating the path \"%s\" would create a conflict at \"%s\"",
						   b->text, a->text),
					errdetail("%s \"%s\" and %s \"%s\" overlap; an update may change each part of a document once.",
							  claims[i - 1].op, a->text, claims[i].op, b->text));
	}
	pfree(claims);
}

/*
 * Ku9UpdateParse checks an update document and returns its parsed form,
 * allocated in the current memory context (which must outlive it).
 * Errors are 22023 and name the operator and path (0A000 for what ku9 does
 * not support: positional operators, $sort by several fields).
 */
Ku9Update *
Ku9UpdateParse(const JsonbValue *update)
{
	Ku9Update  *u = palloc0(sizeof(Ku9Update));
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken t;
	int			cap = 8;

	if (!Ku9DocIsObject(update))
		update_error("invalid update: the update must be a JSON object, not %s", a_type(update));
	if (JsonContainerSize(update->val.binary.data) == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid update: update document is empty"),
				errdetail("Give update operators, such as {\"$set\": {\"field\": \"value\"}}."));
	u->ops = palloc(sizeof(UpdateOp) * cap);
	it = JsonbIteratorInit(update->val.binary.data);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		const char *name = NULL;
		OpKind		kind = OP_SET;
		JsonbIterator *fit;
		JsonbValue	fk,
					fv;

		if (t != WJB_KEY)
			continue;
		t = JsonbIteratorNext(&it, &v, true);
		if (k.val.string.len == 0 || k.val.string.val[0] != '$')
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid update: \"%s\" is not an update operator",
						   pnstrdup(k.val.string.val, k.val.string.len)),
					errdetail("An update holds only operators such as $set and $inc."),
					errhint("To replace a whole document, use replace_one."));
		for (int i = 0; i < (int) lengthof(operators); i++)
			if (key_is(&k, operators[i].name))
			{
				name = operators[i].name;
				kind = operators[i].kind;
			}
		if (name == NULL)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid update: unknown operator %s",
						   pnstrdup(k.val.string.val, k.val.string.len)),
					errdetail("The update operators are $set, $unset, $setOnInsert, $inc, $mul, $min, $max, "
							  "$rename, $push, $addToSet, $pull, $pullAll, $pop and $currentDate."));
		if (!Ku9DocIsObject(&v))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid update: %s needs an object of paths, not %s", name, a_type(&v)),
					errdetail("For example {\"%s\": {\"a.b\": ...}}.", name));
		/* an empty operator ({"$set": {}}) does nothing, as since MongoDB 5.0 */
		fit = JsonbIteratorInit(v.val.binary.data);
		while ((t = JsonbIteratorNext(&fit, &fk, true)) != WJB_DONE)
		{
			UpdateOp   *op;

			if (t != WJB_KEY)
				continue;
			t = JsonbIteratorNext(&fit, &fv, true);
			if (u->nops == cap)
			{
				cap *= 2;
				u->ops = repalloc(u->ops, sizeof(UpdateOp) * cap);
			}
			op = &u->ops[u->nops++];
			memset(op, 0, sizeof(UpdateOp));
			op->kind = kind;
			op->name = name;
			op->path = parse_path(name, fk.val.string.val, fk.val.string.len);
			parse_operand(op, &fv);
		}
	}
	qsort(u->ops, u->nops, sizeof(UpdateOp), compare_ops);
	check_conflicts(u);
	return u;
}

/* ------------------------------------------------------------------------
 * The document tree
 * ------------------------------------------------------------------------
 */

typedef enum NodeKind
{
	NODE_VALUE,					/* a scalar, or a container not yet expanded */
	NODE_OBJECT,
	NODE_ARRAY
} NodeKind;

typedef struct DocNode
{
	NodeKind	kind;
	JsonbValue	value;			/* NODE_VALUE */
	int			n;				/* NODE_OBJECT, NODE_ARRAY: fields or elements */
	int			cap;
	char	  **keys;			/* NODE_OBJECT */
	int		   *keylens;
	struct DocNode **kids;
} DocNode;

static DocNode *
node_new(NodeKind kind)
{
	DocNode	   *n = palloc0(sizeof(DocNode));

	n->kind = kind;
	if (kind != NODE_VALUE)
	{
		n->cap = 4;
		n->kids = palloc(sizeof(DocNode *) * n->cap);
		if (kind == NODE_OBJECT)
		{
			n->keys = palloc(sizeof(char *) * n->cap);
			n->keylens = palloc(sizeof(int) * n->cap);
		}
	}
	return n;
}

static DocNode *
node_value(const JsonbValue *v)
{
	DocNode	   *n = node_new(NODE_VALUE);

	n->value = *v;
	return n;
}

static DocNode *
node_null(void)
{
	JsonbValue	v;

	v.type = jbvNull;
	return node_value(&v);
}

static bool
node_is_object(const DocNode *n)
{
	return n->kind == NODE_OBJECT || (n->kind == NODE_VALUE && Ku9DocIsObject(&n->value));
}

static bool
node_is_array(const DocNode *n)
{
	return n->kind == NODE_ARRAY || (n->kind == NODE_VALUE && Ku9DocIsArray(&n->value));
}

static void
node_grow(DocNode *n, int need)
{
	if (need <= n->cap)
		return;
	if ((Size) need > MaxAllocSize / sizeof(DocNode *))
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("updated document is too large"));
	n->cap = Max(need, n->cap * 2);
	n->kids = repalloc(n->kids, sizeof(DocNode *) * n->cap);
	if (n->kind == NODE_OBJECT)
	{
		n->keys = repalloc(n->keys, sizeof(char *) * n->cap);
		n->keylens = repalloc(n->keylens, sizeof(int) * n->cap);
	}
}

/* node_add appends a field (objects) or an element (arrays, key NULL) */
static void
node_add(DocNode *n, const char *key, int keylen, DocNode *kid)
{
	node_grow(n, n->n + 1);
	if (n->kind == NODE_OBJECT)
	{
		n->keys[n->n] = (char *) key;
		n->keylens[n->n] = keylen;
	}
	n->kids[n->n++] = kid;
}

static void
node_remove(DocNode *n, int i)
{
	Assert(i >= 0 && i < n->n);
	memmove(&n->kids[i], &n->kids[i + 1], sizeof(DocNode *) * (n->n - i - 1));
	if (n->kind == NODE_OBJECT)
	{
		memmove(&n->keys[i], &n->keys[i + 1], sizeof(char *) * (n->n - i - 1));
		memmove(&n->keylens[i], &n->keylens[i + 1], sizeof(int) * (n->n - i - 1));
	}
	n->n--;
}

/* node_expand turns a container value into NODE_OBJECT or NODE_ARRAY */
static void
node_expand(DocNode *n)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken t;
	bool		object;

	if (n->kind != NODE_VALUE)
		return;
	Assert(n->value.type == jbvBinary);
	object = JsonContainerIsObject(n->value.val.binary.data);
	it = JsonbIteratorInit(n->value.val.binary.data);
	n->kind = object ? NODE_OBJECT : NODE_ARRAY;
	n->n = 0;
	n->cap = Max(JsonContainerSize(n->value.val.binary.data), 4);
	n->kids = palloc(sizeof(DocNode *) * n->cap);
	if (object)
	{
		n->keys = palloc(sizeof(char *) * n->cap);
		n->keylens = palloc(sizeof(int) * n->cap);
	}
	while ((t = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (t == WJB_KEY)
		{
			JsonbValue	x;

			t = JsonbIteratorNext(&it, &x, true);
			Assert(t == WJB_VALUE);
			node_add(n, v.val.string.val, v.val.string.len, node_value(&x));
		}
		else if (t == WJB_ELEM)
			node_add(n, NULL, 0, node_value(&v));
	}
}

static JsonbValue *
push_node(JsonbParseState **st, DocNode *n, JsonbIteratorToken tok)
{
	JsonbValue	k;

	check_stack_depth();
	switch (n->kind)
	{
		case NODE_VALUE:
			return pushJsonbValue(st, tok, &n->value);
		case NODE_OBJECT:
			(void) pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
			for (int i = 0; i < n->n; i++)
			{
				k.type = jbvString;
				k.val.string.val = n->keys[i];
				k.val.string.len = n->keylens[i];
				(void) pushJsonbValue(st, WJB_KEY, &k);
				(void) push_node(st, n->kids[i], WJB_VALUE);
			}
			return pushJsonbValue(st, WJB_END_OBJECT, NULL);
		case NODE_ARRAY:
			(void) pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
			for (int i = 0; i < n->n; i++)
				(void) push_node(st, n->kids[i], WJB_ELEM);
			return pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	pg_unreachable();
}

static Jsonb *
node_to_jsonb(DocNode *n)
{
	JsonbParseState *st = NULL;

	if (n->kind == NODE_VALUE)
		return JsonbValueToJsonb(&n->value);
	return JsonbValueToJsonb(push_node(&st, n, WJB_VALUE));
}

/* node_get_value sets *v to n's value (expanded nodes are written out) */
static void
node_get_value(DocNode *n, JsonbValue *v)
{
	if (n->kind == NODE_VALUE)
		*v = n->value;
	else
		Ku9DocRootValue(node_to_jsonb(n), v);
}

/* ------------------------------------------------------------------------
 * Paths in the tree
 * ------------------------------------------------------------------------
 */

typedef struct Apply
{
	DocNode	   *root;
	bool		inserting;
	bool		dirty;			/* the tree may differ from the document */
	const UpdateOp *op;
	JsonbValue	now;			/* $currentDate's value, once made */
	bool		have_now;
} Apply;

/*
 * path_index returns component i of path as an array position, or -1 when
 * it is not all digits (leading zeros are accepted, as MongoDB's updates
 * do); positions past int range come back as PG_INT32_MAX.
 */
static int
path_index(const Ku9DocPath *path, int i)
{
	const char *s = path->names[i];
	int64		v = 0;

	if (path->lens[i] == 0)
		return -1;
	for (int k = 0; k < path->lens[i]; k++)
	{
		if (s[k] < '0' || s[k] > '9')
			return -1;
		if (v < PG_INT32_MAX)
			v = v * 10 + (s[k] - '0');
	}
	return (int) Min(v, PG_INT32_MAX);
}

/* path_prefix returns the first n components of path, dotted */
static char *
path_prefix(const Ku9DocPath *path, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, '.');
		appendBinaryStringInfo(&buf, path->names[i], path->lens[i]);
	}
	return buf.data;
}

/*
 * element_text renders {"<name of component i-1>": value of n}, as MongoDB
 * names the element a path could not go through; long values are cut.
 */
static char *
element_text(const Ku9DocPath *path, int i, DocNode *n)
{
	JsonbValue	v;
	char	   *s;
	int			len;
	StringInfoData buf;

	node_get_value(n, &v);
	s = Ku9DocValueText(&v);
	len = strlen(s);
	if (len > MAX_VALUE_TEXT)
		s = psprintf("%.*s...", pg_mbcliplen(s, len, MAX_VALUE_TEXT - 3), s);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	escape_json(&buf, i > 0 ? path->names[i - 1] : "");
	appendStringInfo(&buf, ": %s}", s);
	return buf.data;
}

/* cannot_create errors: component i of the path cannot be made in n */
static void
cannot_create(Apply *a, const Ku9DocPath *path, int i, DocNode *n)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid update: %s cannot create field \"%s\" in element %s at \"%s\"",
				   a->op->name, path->names[i], element_text(path, i, n), path->text),
			node_is_array(n) ?
			errdetail("Array elements are named by their position, such as \"%s.0\".", path_prefix(path, i)) :
			errdetail("Only objects and arrays have fields."));
}

/* cannot_traverse errors: the path cannot go on below n at component i */
static void
cannot_traverse(Apply *a, const Ku9DocPath *path, int i, DocNode *n)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid update: %s cannot use the part \"%s\" to traverse the element %s at \"%s\"",
				   a->op->name, path->names[i], element_text(path, i, n), path->text),
			errdetail("The path could never exist in this document."));
}

static int
node_find(DocNode *obj, const char *key, int keylen)
{
	for (int i = 0; i < obj->n; i++)
		if (obj->keylens[i] == keylen && memcmp(obj->keys[i], key, keylen) == 0)
			return i;
	return -1;
}

/*
 * get_child returns the child of container n at component i of path, or
 * NULL when there is none (a missing field, a position past the end, or a
 * name in an array).
 */
static DocNode *
get_child(DocNode *n, const Ku9DocPath *path, int i)
{
	node_expand(n);
	if (n->kind == NODE_OBJECT)
	{
		int			k = node_find(n, path->names[i], path->lens[i]);

		return k >= 0 ? n->kids[k] : NULL;
	}
	else
	{
		int			k = path_index(path, i);

		return (k >= 0 && k < n->n) ? n->kids[k] : NULL;
	}
}

/*
 * put_child makes kid the child of container n at component i of path,
 * replacing what was there; past the end of an array it pads with nulls.
 */
static void
put_child(Apply *a, DocNode *n, const Ku9DocPath *path, int i, DocNode *kid)
{
	node_expand(n);
	a->dirty = true;
	if (n->kind == NODE_OBJECT)
	{
		int			k = node_find(n, path->names[i], path->lens[i]);

		if (k >= 0)
			n->kids[k] = kid;
		else
			node_add(n, path->names[i], path->lens[i], kid);
	}
	else
	{
		int			k = path_index(path, i);

		if (k < 0)
			cannot_create(a, path, i, n);
		if (k < n->n)
		{
			n->kids[k] = kid;
			return;
		}
		if (k - n->n > MAX_ARRAY_PADDING)
			ereport(ERROR,
					errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					errmsg("invalid update: %s cannot pad an array with more than %d nulls at \"%s\"",
						   a->op->name, MAX_ARRAY_PADDING, path->text));
		node_grow(n, k + 1);
		while (n->n < k)
			node_add(n, NULL, 0, node_null());
		node_add(n, NULL, 0, kid);
	}
}

/*
 * parent_for_write returns the container that holds (or will hold) the
 * last component of path, creating missing objects on the way, as the
 * operators that create values do; it errors where the path meets a
 * scalar or names a field of an array.
 */
static DocNode *
parent_for_write(Apply *a, const Ku9DocPath *path)
{
	DocNode	   *cur = a->root;

	for (int i = 0; i < path->n; i++)
	{
		DocNode	   *kid;

		if (!node_is_object(cur) && !(node_is_array(cur) && path_index(path, i) >= 0))
			cannot_create(a, path, i, cur);
		if (i == path->n - 1)
			break;
		kid = get_child(cur, path, i);
		if (kid == NULL)
		{
			kid = node_new(NODE_OBJECT);
			put_child(a, cur, path, i, kid);
		}
		cur = kid;
	}
	node_expand(cur);
	return cur;
}

/* what a path reaches in the document, without changing it */
typedef struct Lookup
{
	DocNode	   *parent;			/* the container of the last component, or NULL */
	DocNode	   *blocker;		/* NULL, or where the path cannot go on */
	int			at;				/* blocker: the component that cannot be followed */
	int			array_at;		/* components before the first array on the way, or -1 */
} Lookup;

static void
lookup(Apply *a, const Ku9DocPath *path, Lookup *lk)
{
	DocNode	   *cur = a->root;

	memset(lk, 0, sizeof(Lookup));
	lk->array_at = -1;
	for (int i = 0; i < path->n; i++)
	{
		bool		array = node_is_array(cur);

		if (!node_is_object(cur) && !(array && path_index(path, i) >= 0))
		{
			lk->blocker = cur;
			lk->at = i;
			return;
		}
		if (array && lk->array_at < 0)
			lk->array_at = i;
		if (i == path->n - 1)
			break;
		cur = get_child(cur, path, i);
		if (cur == NULL)
			return;
	}
	node_expand(cur);
	lk->parent = cur;
}

/*
 * existing_array returns the array at path for $pull, $pullAll and $pop, or
 * NULL when there is nothing there; errors on a path that could never
 * exist and on a value that is no array.
 */
static DocNode *
existing_array(Apply *a, const Ku9DocPath *path)
{
	Lookup		lk;
	DocNode	   *n;

	lookup(a, path, &lk);
	if (lk.blocker != NULL)
		cannot_traverse(a, path, lk.at, lk.blocker);
	if (lk.parent == NULL)
		return NULL;
	n = get_child(lk.parent, path, path->n - 1);
	if (n == NULL)
		return NULL;
	if (!node_is_array(n))
	{
		JsonbValue	v;

		node_get_value(n, &v);
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid update: %s cannot apply to %s at \"%s\"",
					   a->op->name, a_type(&v), path->text),
				errdetail("%s needs an array or a missing field.", a->op->name));
	}
	node_expand(n);
	return n;
}

static void
wrong_type(Apply *a, DocNode *n, const char *needs)
{
	JsonbValue	v;

	node_get_value(n, &v);
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid update: %s cannot apply to %s at \"%s\"",
				   a->op->name, a_type(&v), a->op->path->text),
			errdetail("%s needs %s or a missing field.", a->op->name, needs));
}

/* ------------------------------------------------------------------------
 * The operators
 * ------------------------------------------------------------------------
 */

static void
apply_set(Apply *a, const JsonbValue *value)
{
	const Ku9DocPath *path = a->op->path;
	DocNode	   *parent = parent_for_write(a, path);

	put_child(a, parent, path, path->n - 1, node_value(value));
}

static void
apply_unset(Apply *a)
{
	const Ku9DocPath *path = a->op->path;
	Lookup		lk;
	int			last = path->n - 1;

	lookup(a, path, &lk);
	if (lk.parent == NULL)
		return;
	if (lk.parent->kind == NODE_OBJECT)
	{
		int			k = node_find(lk.parent, path->names[last], path->lens[last]);

		if (k >= 0)
		{
			node_remove(lk.parent, k);
			a->dirty = true;
		}
	}
	else if (get_child(lk.parent, path, last) != NULL)
	{
		/* an array keeps its length: the element becomes null */
		put_child(a, lk.parent, path, last, node_null());
	}
}

static void
apply_arithmetic(Apply *a)
{
	const UpdateOp *op = a->op;
	const Ku9DocPath *path = op->path;
	DocNode	   *parent = parent_for_write(a, path);
	DocNode	   *old = get_child(parent, path, path->n - 1);
	Numeric		operand = op->value.val.numeric;
	JsonbValue	v;

	v.type = jbvNumeric;
	if (old == NULL)
	{
		/* $inc of nothing is the operand; $mul of nothing is 0, of the operand's kind */
		v.val.numeric = op->kind == OP_INC ? operand :
			numeric_mul_opt_error(operand, int64_to_numeric(0), NULL);
	}
	else
	{
		if (old->kind != NODE_VALUE || old->value.type != jbvNumeric)
			wrong_type(a, old, "a number");
		if (op->kind == OP_INC)
			v.val.numeric = numeric_add_opt_error(old->value.val.numeric, operand, NULL);
		else
			v.val.numeric = numeric_mul_opt_error(old->value.val.numeric, operand, NULL);
	}
	put_child(a, parent, path, path->n - 1, node_value(&v));
}

static void
apply_min_max(Apply *a)
{
	const UpdateOp *op = a->op;
	const Ku9DocPath *path = op->path;
	DocNode	   *parent = parent_for_write(a, path);
	DocNode	   *old = get_child(parent, path, path->n - 1);

	if (old != NULL)
	{
		JsonbValue	v;
		int			c;

		node_get_value(old, &v);
		c = Ku9DocCompare(&op->value, &v);
		if (op->kind == OP_MIN ? c >= 0 : c <= 0)
			return;
	}
	put_child(a, parent, path, path->n - 1, node_value(&op->value));
}

static void
apply_current_date(Apply *a)
{
	if (!a->have_now)
	{
		struct pg_tm tm;
		fsec_t		fsec;
		char	   *s;

		/* no time zone: tm is in UTC */
		if (timestamp2tm(GetCurrentTransactionStartTimestamp(), NULL, &tm, &fsec, NULL, NULL) != 0)
			ereport(ERROR,
					errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					errmsg("timestamp out of range"));
		s = psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00",
					 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					 (int) fsec);
		a->now.type = jbvString;
		a->now.val.string.val = s;
		a->now.val.string.len = strlen(s);
		a->have_now = true;
	}
	apply_set(a, &a->now);
}

static void
apply_rename(Apply *a)
{
	const UpdateOp *op = a->op;
	const Ku9DocPath *from = op->path;
	const Ku9DocPath *to = op->to;
	Lookup		lk;
	DocNode	   *moving;
	DocNode	   *cur;
	int			k;

	lookup(a, from, &lk);
	if (lk.blocker != NULL)
		cannot_traverse(a, from, lk.at, lk.blocker);
	if (lk.parent == NULL)
		return;
	moving = get_child(lk.parent, from, from->n - 1);
	if (moving == NULL)
		return;
	if (lk.array_at >= 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid update: $rename cannot move \"%s\" out of the array \"%s\"",
					   from->text, path_prefix(from, lk.array_at)),
				errdetail("$rename does not work on array elements or on fields inside them."));

	/* the target: objects only, made where missing */
	cur = a->root;
	for (int i = 0; i < to->n; i++)
	{
		DocNode	   *kid;

		if (node_is_array(cur))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid update: $rename cannot move \"%s\" into the array \"%s\"",
						   from->text, path_prefix(to, i)),
					errdetail("$rename does not work on array elements or on fields inside them."));
		if (!node_is_object(cur))
			cannot_create(a, to, i, cur);
		if (i == to->n - 1)
			break;
		kid = get_child(cur, to, i);
		if (kid == NULL)
		{
			kid = node_new(NODE_OBJECT);
			put_child(a, cur, to, i, kid);
		}
		cur = kid;
	}
	put_child(a, cur, to, to->n - 1, moving);

	/* and the source goes (the target never lies below it) */
	k = node_find(lk.parent, from->names[from->n - 1], from->lens[from->n - 1]);
	Assert(k >= 0);
	node_remove(lk.parent, k);
}

typedef struct SortItem
{
	DocNode	   *node;
	JsonbValue	value;
	int			index;
} SortItem;

/* sort_field returns the value of key in v as $push's $sort sees it (NULL: missing) */
static JsonbValue *
sort_field(const JsonbValue *v, const Ku9DocPath *key)
{
	JsonbValue *cur = (JsonbValue *) v;

	/* an element that is no document has no fields: it sorts as null */
	if (!Ku9DocIsObject(v))
		return NULL;
	for (int i = 0; i < key->n && cur != NULL; i++)
	{
		if (Ku9DocIsObject(cur))
			cur = Ku9DocField(cur, key->names[i], key->lens[i]);
		else if (Ku9DocIsArray(cur))
			cur = key->index[i] >= 0 ? Ku9DocArrayElem(cur, key->index[i]) : NULL;
		else
			cur = NULL;
	}
	return cur;
}

static int
compare_sort_items(const void *pa, const void *pb, void *arg)
{
	const SortItem *a = pa;
	const SortItem *b = pb;
	const UpdateOp *op = arg;
	int			c = 0;

	if (op->sort == SORT_WHOLE)
		c = op->sortdir * Ku9DocCompare(&a->value, &b->value);
	else
	{
		for (int i = 0; i < op->nsortkeys && c == 0; i++)
			c = op->sortkeys[i].dir * Ku9DocCompare(sort_field(&a->value, op->sortkeys[i].path),
													sort_field(&b->value, op->sortkeys[i].path));
	}
	if (c == 0)
		c = (a->index > b->index) - (a->index < b->index);
	return c;
}

static void
apply_push(Apply *a)
{
	const UpdateOp *op = a->op;
	const Ku9DocPath *path = op->path;
	DocNode	   *parent = parent_for_write(a, path);
	DocNode	   *arr = get_child(parent, path, path->n - 1);
	int64		size;
	int64		pos;

	if (arr == NULL)
	{
		arr = node_new(NODE_ARRAY);
		put_child(a, parent, path, path->n - 1, arr);
	}
	else if (!node_is_array(arr))
		wrong_type(a, arr, "an array");
	node_expand(arr);
	a->dirty = true;

	/* $position: from the start, or from the end when negative */
	size = arr->n;
	pos = op->position;
	if (pos > size)
		pos = size;
	else if (pos < 0)
		pos = (pos > -size) ? size + pos : 0;
	node_grow(arr, arr->n + op->neach);
	memmove(&arr->kids[pos + op->neach], &arr->kids[pos], sizeof(DocNode *) * (arr->n - pos));
	for (int i = 0; i < op->neach; i++)
		arr->kids[pos + i] = node_value(&op->each[i]);
	arr->n += op->neach;

	/* then $sort (stable), then $slice, as MongoDB orders them */
	if (op->sort != SORT_NONE && arr->n > 1)
	{
		SortItem   *items = palloc(sizeof(SortItem) * arr->n);

		for (int i = 0; i < arr->n; i++)
		{
			items[i].node = arr->kids[i];
			node_get_value(arr->kids[i], &items[i].value);
			items[i].index = i;
		}
		qsort_arg(items, arr->n, sizeof(SortItem), compare_sort_items, (void *) op);
		for (int i = 0; i < arr->n; i++)
			arr->kids[i] = items[i].node;
		pfree(items);
	}
	if (op->has_slice)
	{
		if (op->slice >= 0 && op->slice < arr->n)
			arr->n = (int) op->slice;
		else if (op->slice < 0 && op->slice > -(int64) arr->n)
		{
			int			drop = arr->n + (int) op->slice;

			memmove(&arr->kids[0], &arr->kids[drop], sizeof(DocNode *) * (arr->n - drop));
			arr->n -= drop;
		}
	}
}

static bool
array_contains(DocNode *arr, const JsonbValue *v)
{
	for (int i = 0; i < arr->n; i++)
	{
		JsonbValue	e;

		CHECK_FOR_INTERRUPTS();
		node_get_value(arr->kids[i], &e);
		if (Ku9DocEqual(&e, v))
			return true;
	}
	return false;
}

static void
apply_add_to_set(Apply *a)
{
	const UpdateOp *op = a->op;
	const Ku9DocPath *path = op->path;
	DocNode	   *parent = parent_for_write(a, path);
	DocNode	   *arr = get_child(parent, path, path->n - 1);

	if (arr == NULL)
	{
		arr = node_new(NODE_ARRAY);
		put_child(a, parent, path, path->n - 1, arr);
	}
	else if (!node_is_array(arr))
		wrong_type(a, arr, "an array");
	node_expand(arr);
	for (int i = 0; i < op->neach; i++)
	{
		if (array_contains(arr, &op->each[i]))
			continue;
		node_add(arr, NULL, 0, node_value(&op->each[i]));
		a->dirty = true;
	}
}

static void
apply_pull(Apply *a)
{
	const UpdateOp *op = a->op;
	DocNode	   *arr = existing_array(a, op->path);
	int			kept = 0;

	if (arr == NULL)
		return;
	for (int i = 0; i < arr->n; i++)
	{
		JsonbValue	e;
		bool		drop = false;

		CHECK_FOR_INTERRUPTS();
		node_get_value(arr->kids[i], &e);
		if (op->kind == OP_PULL_ALL)
		{
			for (int k = 0; k < op->neach && !drop; k++)
				drop = Ku9DocEqual(&e, &op->each[k]);
		}
		else if (op->filter != NULL)
			drop = Ku9FilterMatchElement(op->filter, &e);
		else
			drop = Ku9DocEqual(&e, &op->value);
		if (!drop)
			arr->kids[kept++] = arr->kids[i];
	}
	if (kept != arr->n)
	{
		arr->n = kept;
		a->dirty = true;
	}
}

static void
apply_pop(Apply *a)
{
	DocNode	   *arr = existing_array(a, a->op->path);

	if (arr == NULL || arr->n == 0)
		return;
	node_remove(arr, a->op->pop_first ? 0 : arr->n - 1);
	a->dirty = true;
}

/* same_bytes says whether a and b are the same jsonb value, byte for byte */
static bool
same_bytes(const JsonbValue *a, const JsonbValue *b)
{
	Jsonb	   *ja = JsonbValueToJsonb((JsonbValue *) a);
	Jsonb	   *jb = JsonbValueToJsonb((JsonbValue *) b);

	return VARSIZE(ja) == VARSIZE(jb) && memcmp(ja, jb, VARSIZE(ja)) == 0;
}

/* first_id_path names a path of u that touches _id, for messages */
static const char *
first_id_path(const Ku9Update *u)
{
	for (int i = 0; i < u->nops; i++)
	{
		if (strcmp(u->ops[i].path->names[0], "_id") == 0)
			return u->ops[i].path->text;
		if (u->ops[i].to != NULL && strcmp(u->ops[i].to->names[0], "_id") == 0)
			return u->ops[i].to->text;
	}
	return "_id";
}

/*
 * Ku9UpdateApply applies u to doc (a stored document, a jsonb object) and
 * returns the new document, or doc itself when nothing changed; *changed
 * says which.  inserting: this is the document an upsert inserts, the
 * only time $setOnInsert applies.
 */
Jsonb *
Ku9UpdateApply(const Ku9Update *u, Jsonb *doc, bool inserting, bool *changed)
{
	Apply		a;
	JsonbValue	root;
	JsonbParseState *st = NULL;
	Jsonb	   *result;
	JsonbValue	rv;
	JsonbValue *old_id;
	JsonbValue *new_id;

	*changed = false;
	if (!JB_ROOT_IS_OBJECT(doc))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("document to update must be a JSON object"));
	memset(&a, 0, sizeof(Apply));
	Ku9DocRootValue(doc, &root);
	a.root = node_value(&root);
	a.inserting = inserting;
	for (int i = 0; i < u->nops; i++)
	{
		a.op = &u->ops[i];
		CHECK_FOR_INTERRUPTS();
		switch (a.op->kind)
		{
			case OP_SET:
				apply_set(&a, &a.op->value);
				break;
			case OP_SET_ON_INSERT:
				if (inserting)
					apply_set(&a, &a.op->value);
				break;
			case OP_UNSET:
				apply_unset(&a);
				break;
			case OP_INC:
			case OP_MUL:
				apply_arithmetic(&a);
				break;
			case OP_MIN:
			case OP_MAX:
				apply_min_max(&a);
				break;
			case OP_RENAME:
				apply_rename(&a);
				break;
			case OP_PUSH:
				apply_push(&a);
				break;
			case OP_ADD_TO_SET:
				apply_add_to_set(&a);
				break;
			case OP_PULL:
			case OP_PULL_ALL:
				apply_pull(&a);
				break;
			case OP_POP:
				apply_pop(&a);
				break;
			case OP_CURRENT_DATE:
				apply_current_date(&a);
				break;
		}
	}
	if (!a.dirty)
		return doc;
	node_expand(a.root);
	result = JsonbValueToJsonb(push_node(&st, a.root, WJB_VALUE));
	if (VARSIZE(result) == VARSIZE(doc) &&
		memcmp(VARDATA(result), VARDATA(doc), VARSIZE(doc) - VARHDRSZ) == 0)
		return doc;

	/*
	 * _id may be rewritten, but not changed: an update must leave it as it
	 * was (MongoDB compares the bytes: $set of 1.0 over 1 is a change); the
	 * insert of an upsert may rewrite the filter's _id with an equal value.
	 */
	old_id = Ku9DocField(&root, "_id", 3);
	Ku9DocRootValue(result, &rv);
	new_id = Ku9DocField(&rv, "_id", 3);
	if (old_id != NULL &&
		(new_id == NULL ||
		 (inserting ? !Ku9DocEqual(old_id, new_id) : !same_bytes(old_id, new_id))))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid update: _id is immutable"),
				errdetail("Performing an update on the path \"%s\" would modify the immutable field \"_id\".",
						  first_id_path(u)));
	/* an unchanged document was checked when it was stored */
	Ku9DocCheckStored(result, "updated document");
	*changed = true;
	return result;
}

/* ------------------------------------------------------------------------
 * SQL
 * ------------------------------------------------------------------------
 */

/* the parsed update of the last call through this FmgrInfo */
typedef struct UpdateCache
{
	MemoryContext cxt;			/* holds key and update */
	Jsonb	   *key;
	Ku9Update  *update;
} UpdateCache;

/*
 * ku9_docs.apply_update(doc jsonb, update jsonb) RETURNS jsonb: doc with the
 * update operators applied (doc itself when they change nothing).  The
 * parsed update is kept in fn_extra while the update's bytes stay the same,
 * since the function is called for every row an update statement reads.
 */
Datum
ku9_doc_apply_update(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	Jsonb	   *upd = PG_GETARG_JSONB_P(1);
	UpdateCache *cache = fcinfo->flinfo->fn_extra;
	bool		changed;

	if (cache == NULL || VARSIZE(cache->key) != VARSIZE(upd) ||
		memcmp(cache->key, upd, VARSIZE(upd)) != 0)
	{
		/*
		 * Parse in a context of its own under the current one, so that a
		 * failed parse leaks nothing into fn_mcxt; keep it once it worked.
		 */
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
												  "ku9 update",
												  ALLOCSET_SMALL_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		Jsonb	   *key = palloc(VARSIZE(upd));
		JsonbValue	v;
		Ku9Update  *update;

		memcpy(key, upd, VARSIZE(upd));
		Ku9DocRootValue(key, &v);
		update = Ku9UpdateParse(&v);
		MemoryContextSwitchTo(old);
		MemoryContextSetParent(cxt, fcinfo->flinfo->fn_mcxt);
		if (cache == NULL)
			cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(UpdateCache));
		else
			MemoryContextDelete(cache->cxt);
		cache->cxt = cxt;
		cache->key = key;
		cache->update = update;
		fcinfo->flinfo->fn_extra = cache;
	}
	PG_RETURN_JSONB_P(Ku9UpdateApply(cache->update, doc, false, &changed));
}
