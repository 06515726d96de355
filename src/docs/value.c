/*-------------------------------------------------------------------------
 *
 * value.c
 *	  MongoDB's value order over jsonb, order-preserving sort keys, dotted
 *	  paths, and the checks every stored document passes.
 *
 * MongoDB orders values first by a canonical type (null < numbers <
 * strings < objects < arrays < booleans; the others have no JSON form),
 * then within a type: numbers by value (1 == 1.0), strings by their UTF-8
 * bytes (MongoDB's default "simple" collation), false < true, and objects
 * and arrays element by element (for objects: the value's type, then the
 * field name, then the value).  jsonb keeps an object's fields sorted by
 * length and then bytes, not in the order they were written, so objects
 * compare in that order.
 *
 * Ku9DocEncodeKey writes a byte string whose memcmp order is this order;
 * the sort keys of find() and the B-tree indexes of create_index() are such
 * byte strings (bytea), so PostgreSQL sorts documents as MongoDB does
 * without any collation or per-type operator.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/docs/value.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "docs/docs.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

/* ------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------
 */

bool
Ku9DocIsObject(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

bool
Ku9DocIsArray(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data);
}

Ku9DocRank
Ku9DocRankOf(const JsonbValue *v)
{
	if (v == NULL)
		return KU9_RANK_NULL;
	switch (v->type)
	{
		case jbvNull:
			return KU9_RANK_NULL;
		case jbvNumeric:
			return KU9_RANK_NUMBER;
		case jbvString:
			return KU9_RANK_STRING;
		case jbvBool:
			return KU9_RANK_BOOL;
		case jbvBinary:
			return JsonContainerIsObject(v->val.binary.data) ? KU9_RANK_OBJECT : KU9_RANK_ARRAY;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	pg_unreachable();
}

/*
 * Ku9DocRootValue makes v refer to the whole of jb: a container as
 * jbvBinary, or the scalar of a scalar jsonb.
 */
void
Ku9DocRootValue(Jsonb *jb, JsonbValue *v)
{
	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, v))
			elog(ERROR, "could not extract a jsonb scalar");
		return;
	}
	v->type = jbvBinary;
	v->val.binary.data = &jb->root;
	v->val.binary.len = VARSIZE(jb) - VARHDRSZ;
}

/* Ku9DocField returns obj's field key, or NULL when obj is no object or lacks it */
JsonbValue *
Ku9DocField(const JsonbValue *obj, const char *key, int keylen)
{
	if (!Ku9DocIsObject(obj))
		return NULL;
	return getKeyJsonValueFromContainer(obj->val.binary.data, key, keylen, NULL);
}

int
Ku9DocArraySize(const JsonbValue *arr)
{
	Assert(Ku9DocIsArray(arr));
	return JsonContainerSize(arr->val.binary.data);
}

/* Ku9DocArrayElem returns element i of arr, or NULL when out of range */
JsonbValue *
Ku9DocArrayElem(const JsonbValue *arr, int i)
{
	Assert(Ku9DocIsArray(arr));
	if (i < 0)
		return NULL;
	return getIthJsonbValueFromContainer(arr->val.binary.data, (uint32) i);
}

static int
compare_strings(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c < 0 ? -1 : 1;
	return (alen > blen) - (alen < blen);
}

static int
compare_numbers(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

/*
 * compare_containers compares two objects or two arrays element by element:
 * for each pair, the values' types, then (objects) the field names, then
 * the values; a container that ends first is the smaller.
 */
static int
compare_containers(const JsonbValue *a, const JsonbValue *b)
{
	JsonbIterator *ia = JsonbIteratorInit(a->val.binary.data);
	JsonbIterator *ib = JsonbIteratorInit(b->val.binary.data);
	JsonbValue	va,
				vb,
				ka,
				kb;
	JsonbIteratorToken ta,
				tb;
	bool		object = JsonContainerIsObject(a->val.binary.data);

	check_stack_depth();
	ta = JsonbIteratorNext(&ia, &va, true);	/* BEGIN */
	tb = JsonbIteratorNext(&ib, &vb, true);
	for (;;)
	{
		int			c;

		ta = JsonbIteratorNext(&ia, &va, true);
		tb = JsonbIteratorNext(&ib, &vb, true);
		if (ta == WJB_END_OBJECT || ta == WJB_END_ARRAY)
			return (tb == WJB_END_OBJECT || tb == WJB_END_ARRAY) ? 0 : -1;
		if (tb == WJB_END_OBJECT || tb == WJB_END_ARRAY)
			return 1;
		if (object)
		{
			/* va/vb are keys; the values follow */
			ka = va;
			kb = vb;
			ta = JsonbIteratorNext(&ia, &va, true);
			tb = JsonbIteratorNext(&ib, &vb, true);
			Assert(ta == WJB_VALUE && tb == WJB_VALUE);
			c = (int) Ku9DocRankOf(&va) - (int) Ku9DocRankOf(&vb);
			if (c != 0)
				return c < 0 ? -1 : 1;
			c = compare_strings(ka.val.string.val, ka.val.string.len,
								kb.val.string.val, kb.val.string.len);
			if (c != 0)
				return c;
		}
		c = Ku9DocCompare(&va, &vb);
		if (c != 0)
			return c;
	}
}

/*
 * Ku9DocCompare returns <0, 0 or >0 as a sorts before, with or after b in
 * MongoDB's order.  NULL (missing) compares as null.
 */
int
Ku9DocCompare(const JsonbValue *a, const JsonbValue *b)
{
	Ku9DocRank ra = Ku9DocRankOf(a);
	Ku9DocRank rb = Ku9DocRankOf(b);

	if (ra != rb)
		return ra < rb ? -1 : 1;
	switch (ra)
	{
		case KU9_RANK_NULL:
			return 0;
		case KU9_RANK_NUMBER:
			return compare_numbers(a->val.numeric, b->val.numeric);
		case KU9_RANK_STRING:
			return compare_strings(a->val.string.val, a->val.string.len,
								   b->val.string.val, b->val.string.len);
		case KU9_RANK_BOOL:
			return (int) a->val.boolean - (int) b->val.boolean;
		case KU9_RANK_OBJECT:
		case KU9_RANK_ARRAY:
			return compare_containers(a, b);
	}
	pg_unreachable();
}

bool
Ku9DocEqual(const JsonbValue *a, const JsonbValue *b)
{
	return Ku9DocCompare(a, b) == 0;
}

/*
 * Ku9DocIdentical says whether a and b are the same value of the same types
 * throughout, as MongoDB decides whether an update changed a document: equal
 * values, and numbers of the same kind ($type int, long or double), so 1.0
 * for 1 is a change but 0.00 for 0.0 is not.
 */
bool
Ku9DocIdentical(const JsonbValue *a, const JsonbValue *b)
{
	Ku9DocRank r = Ku9DocRankOf(a);

	check_stack_depth();
	if (r != Ku9DocRankOf(b))
		return false;
	if (r == KU9_RANK_NUMBER)
		return compare_numbers(a->val.numeric, b->val.numeric) == 0 &&
			strcmp(Ku9DocTypeName(a), Ku9DocTypeName(b)) == 0;
	if (r == KU9_RANK_OBJECT || r == KU9_RANK_ARRAY)
	{
		JsonbIterator *ia,
				   *ib;
		JsonbValue	va,
					vb;
		JsonbIteratorToken ta,
					tb;

		if (JsonContainerSize(a->val.binary.data) != JsonContainerSize(b->val.binary.data))
			return false;
		ia = JsonbIteratorInit(a->val.binary.data);
		ib = JsonbIteratorInit(b->val.binary.data);
		for (;;)
		{
			ta = JsonbIteratorNext(&ia, &va, true);
			tb = JsonbIteratorNext(&ib, &vb, true);
			if (ta != tb)
				return false;
			if (ta == WJB_DONE)
				return true;
			if (ta == WJB_KEY)
			{
				if (va.val.string.len != vb.val.string.len ||
					memcmp(va.val.string.val, vb.val.string.val, va.val.string.len) != 0)
					return false;
			}
			else if (ta == WJB_VALUE || ta == WJB_ELEM)
			{
				if (!Ku9DocIdentical(&va, &vb))
					return false;
			}
		}
	}
	return Ku9DocCompare(a, b) == 0;
}

/*
 * Ku9DocTypeName names v's type as MongoDB's $type does: "null", "bool",
 * "string", "object", "array", and for numbers "int" (an integer that fits
 * in 32 bits), "long" (64 bits) or "double".
 */
const char *
Ku9DocTypeName(const JsonbValue *v)
{
	switch (Ku9DocRankOf(v))
	{
		case KU9_RANK_NULL:
			return "null";
		case KU9_RANK_STRING:
			return "string";
		case KU9_RANK_BOOL:
			return "bool";
		case KU9_RANK_OBJECT:
			return "object";
		case KU9_RANK_ARRAY:
			return "array";
		case KU9_RANK_NUMBER:
			{
				Numeric		n = v->val.numeric;
				bool		error = false;

				if (DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(n))) > 0)
					return "double";
				(void) numeric_int4_opt_error(n, &error);
				if (!error)
					return "int";
				if (compare_numbers(n, int64_to_numeric(PG_INT64_MIN)) >= 0 &&
					compare_numbers(n, int64_to_numeric(PG_INT64_MAX)) <= 0)
					return "long";
				return "double";
			}
	}
	pg_unreachable();
}

/* Ku9DocValueText renders v as JSON text, for messages */
char *
Ku9DocValueText(const JsonbValue *v)
{
	if (v == NULL)
		return pstrdup("(missing)");
	return JsonbToCString(NULL, &JsonbValueToJsonb((JsonbValue *) v)->root, 64);
}

/* ------------------------------------------------------------------------
 * Order-preserving keys
 * ------------------------------------------------------------------------
 */

#define KEY_NULL	0x10
#define KEY_NUMBER	0x20
#define KEY_STRING	0x30
#define KEY_OBJECT	0x40
#define KEY_ARRAY	0x50
#define KEY_BOOL	0x60

static const uint8 rank_byte[] = {0, KEY_NULL, KEY_NUMBER, KEY_STRING, KEY_OBJECT, KEY_ARRAY, KEY_BOOL};

/*
 * encode_number appends a byte string whose memcmp order is numeric order:
 * a sign byte (negative 0x01, zero 0x02, positive 0x03), then for non-zero
 * numbers the decimal exponent (4 bytes, offset) and the significant digits
 * (each digit + 1) ending in 0x00; negative numbers have those bytes
 * inverted so that larger magnitudes sort first.
 */
static void
encode_number(StringInfo buf, Numeric n)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));
	bool		neg = (s[0] == '-');
	char	   *p = s + (neg ? 1 : 0);
	char	   *digits = palloc(strlen(p) + 1);
	int			ndigits = 0;
	int			intlen = -1;
	int			lead = 0;
	int			first;
	int32		exponent;
	uint32		e;
	uint8		bytes[4];
	uint8		invert;

	for (; *p; p++)
	{
		if (*p == '.')
			intlen = ndigits;
		else
			digits[ndigits++] = *p;
	}
	if (intlen < 0)
		intlen = ndigits;
	while (lead < ndigits && digits[lead] == '0')
		lead++;
	while (ndigits > lead && digits[ndigits - 1] == '0')
		ndigits--;
	if (lead == ndigits)
	{
		appendStringInfoChar(buf, 0x02);
		pfree(s);
		pfree(digits);
		return;
	}
	first = lead;
	exponent = intlen - lead;
	invert = neg ? 0xFF : 0x00;
	appendStringInfoChar(buf, neg ? 0x01 : 0x03);
	e = (uint32) exponent + 0x80000000u;
	bytes[0] = (uint8) (e >> 24) ^ invert;
	bytes[1] = (uint8) (e >> 16) ^ invert;
	bytes[2] = (uint8) (e >> 8) ^ invert;
	bytes[3] = (uint8) e ^ invert;
	appendBinaryStringInfo(buf, (char *) bytes, 4);
	for (int i = first; i < ndigits; i++)
		appendStringInfoChar(buf, (char) ((uint8) (digits[i] - '0' + 1) ^ invert));
	appendStringInfoChar(buf, (char) invert);
	pfree(s);
	pfree(digits);
}

static void encode_body(StringInfo buf, const JsonbValue *v);

static void
encode_container(StringInfo buf, const JsonbValue *v)
{
	JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
	JsonbValue	x;
	JsonbIteratorToken t;

	check_stack_depth();
	while ((t = JsonbIteratorNext(&it, &x, true)) != WJB_DONE)
	{
		if (t == WJB_KEY)
		{
			JsonbValue	key = x;

			t = JsonbIteratorNext(&it, &x, true);
			Assert(t == WJB_VALUE);
			appendStringInfoChar(buf, rank_byte[Ku9DocRankOf(&x)]);
			appendBinaryStringInfo(buf, key.val.string.val, key.val.string.len);
			appendStringInfoChar(buf, 0x00);
			encode_body(buf, &x);
		}
		else if (t == WJB_ELEM)
		{
			appendStringInfoChar(buf, rank_byte[Ku9DocRankOf(&x)]);
			encode_body(buf, &x);
		}
	}
	appendStringInfoChar(buf, 0x00);
}

static void
encode_body(StringInfo buf, const JsonbValue *v)
{
	switch (Ku9DocRankOf(v))
	{
		case KU9_RANK_NULL:
			break;
		case KU9_RANK_NUMBER:
			encode_number(buf, v->val.numeric);
			break;
		case KU9_RANK_STRING:
			/* jsonb strings never hold a NUL byte */
			appendBinaryStringInfo(buf, v->val.string.val, v->val.string.len);
			appendStringInfoChar(buf, 0x00);
			break;
		case KU9_RANK_BOOL:
			appendStringInfoChar(buf, v->val.boolean ? 0x01 : 0x00);
			break;
		case KU9_RANK_OBJECT:
		case KU9_RANK_ARRAY:
			encode_container(buf, v);
			break;
	}
}

/* Ku9DocEncodeKey appends v's order-preserving key (NULL: as null) */
void
Ku9DocEncodeKey(StringInfo buf, const JsonbValue *v)
{
	appendStringInfoChar(buf, rank_byte[Ku9DocRankOf(v)]);
	encode_body(buf, v);
}

/* ------------------------------------------------------------------------
 * Paths
 * ------------------------------------------------------------------------
 */

static Ku9DocPath *parse_path(const char *s, int len, const char *context);

/*
 * Ku9DocParsePath splits a dotted path ("a.b.0.c") into its components;
 * an empty component or one that starts with '$' is an error (22023) that
 * names the path and where it was found (context).
 */
Ku9DocPath *
Ku9DocParsePath(const char *s, int len, const char *context)
{
	return parse_path(s, len, context);
}

/*
 * Ku9DocParsePathOrNull is Ku9DocParsePath without errors: NULL for an
 * invalid path (for the leakproof functions of index expressions).
 */
Ku9DocPath *
Ku9DocParsePathOrNull(const char *s, int len)
{
	return parse_path(s, len, NULL);
}

/* parse_path: with context NULL, returns NULL instead of raising an error */
static Ku9DocPath *
parse_path(const char *s, int len, const char *context)
{
	Ku9DocPath *path = palloc0(sizeof(Ku9DocPath));
	int			n = 1;
	int			start = 0;
	int			k = 0;

	path->text = pnstrdup(s, len);
	for (int i = 0; i < len; i++)
		if (s[i] == '.')
			n++;
	path->n = n;
	path->names = palloc(sizeof(char *) * n);
	path->lens = palloc(sizeof(int) * n);
	path->index = palloc(sizeof(int) * n);
	for (int i = 0; i <= len; i++)
	{
		if (i < len && s[i] != '.')
			continue;
		if (i == start && context == NULL)
			return NULL;
		if (i == start)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid field path \"%s\" in %s", path->text, context),
					errdetail("A path is field names joined by dots; none may be empty."));
		if (s[start] == '$' && context == NULL)
			return NULL;
		if (s[start] == '$')
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid field path \"%s\" in %s", path->text, context),
					errdetail("A field name in a path may not start with \"$\"."));
		path->names[k] = pnstrdup(s + start, i - start);
		path->lens[k] = i - start;
		path->index[k] = -1;
		if (i - start <= 9 && (s[start] != '0' || i - start == 1))
		{
			bool		digits = true;

			for (int j = start; j < i; j++)
				digits = digits && s[j] >= '0' && s[j] <= '9';
			if (digits)
				path->index[k] = atoi(path->names[k]);
		}
		k++;
		start = i + 1;
	}
	return path;
}

typedef struct WalkState
{
	bool		sorting;		/* sort keys: elements that are no objects yield nothing */
	const Ku9DocPath *path;
	Ku9DocPathVisitor visit;
	void	   *arg;
} WalkState;

/*
 * walk follows path from component i below v, MongoDB's way: through an
 * object by field name; through an array both by position (when the
 * component is a number) and into each element that is an object (nested
 * arrays are not entered).  A value without the field yields "missing"
 * (NULL): a scalar where the path goes on, an object without the field,
 * and in an array any element that is no object or lacks the field, or
 * the empty array.  This is MongoDB 9.0's rule for {"a.b": null}
 * (SERVER-36681): {"a": [5, {"b": 5}]} matches it; a numeric component
 * that finds its position does not count the other elements as missing.
 */
static bool
walk(WalkState *ws, const JsonbValue *v, int i)
{
	const Ku9DocPath *path = ws->path;

	check_stack_depth();
	if (i == path->n)
		return ws->visit(v, ws->arg);
	if (Ku9DocIsObject(v))
	{
		JsonbValue *child = Ku9DocField(v, path->names[i], path->lens[i]);

		if (child == NULL)
			return ws->visit(NULL, ws->arg);
		return walk(ws, child, i + 1);
	}
	if (Ku9DocIsArray(v))
	{
		int			size = Ku9DocArraySize(v);
		bool		found = false;
		bool		missing = false;

		if (path->index[i] >= 0 && path->index[i] < size)
		{
			found = true;
			if (walk(ws, Ku9DocArrayElem(v, path->index[i]), i + 1))
				return true;
		}
		for (int k = 0; k < size; k++)
		{
			JsonbValue *e = Ku9DocArrayElem(v, k);
			JsonbValue *child;

			if (!Ku9DocIsObject(e))
			{
				/* a value without the field, as MongoDB 9.0 has it for queries */
				if (!ws->sorting)
					missing = true;
				continue;
			}
			child = Ku9DocField(e, path->names[i], path->lens[i]);
			if (child == NULL)
			{
				missing = true;
				continue;
			}
			found = true;
			if (walk(ws, child, i + 1))
				return true;
		}
		/* a positional match hides elements that lack a field named by the number */
		if (!found || (missing && path->index[i] < 0))
			return ws->visit(NULL, ws->arg);
		return false;
	}
	/* a scalar, or nothing, where the path goes on */
	return ws->visit(NULL, ws->arg);
}

/*
 * Ku9DocWalkPath calls visit for each value path reaches in doc (see walk);
 * returns true as soon as visit does.
 */
bool
Ku9DocWalkPath(const JsonbValue *doc, const Ku9DocPath *path,
			   Ku9DocPathVisitor visit, void *arg)
{
	WalkState	ws = {false, path, visit, arg};

	return walk(&ws, doc, 0);
}

/*
 * Ku9DocWalkSortPath is Ku9DocWalkPath for sort keys, where an array's
 * elements that are no documents stand for nothing (MongoDB's sort key of
 * {"a": [5, {"b": 1}]} by "a.b" is 1): only an object without the field,
 * or an array where nothing was found, is missing.
 */
bool
Ku9DocWalkSortPath(const JsonbValue *doc, const Ku9DocPath *path,
				   Ku9DocPathVisitor visit, void *arg)
{
	WalkState	ws = {true, path, visit, arg};

	return walk(&ws, doc, 0);
}

/*
 * Ku9DocPathHasArray says whether an array lies on path in doc (at the end
 * or on the way).  Such documents are the ones the B-tree key of a path
 * cannot answer range queries for, because MongoDB matches any element.
 */
bool
Ku9DocPathHasArray(const JsonbValue *doc, const Ku9DocPath *path)
{
	const JsonbValue *v = doc;

	for (int i = 0; i < path->n; i++)
	{
		v = Ku9DocField(v, path->names[i], path->lens[i]);
		if (v == NULL)
			return false;
		if (Ku9DocIsArray(v))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Stored documents
 * ------------------------------------------------------------------------
 */

/*
 * Ku9DocCheckStored errors unless doc may be stored: an object within
 * ku9.max_document_size bytes and KU9_DOC_MAX_DEPTH levels (54000), whose
 * field names neither start with '$' nor contain '.', with an _id that is
 * no array (22023).
 */
void
Ku9DocCheckStored(Jsonb *doc, const char *what)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken t;
	int			depth = 0;
	JsonbValue	root;
	JsonbValue *id;

	if (!JB_ROOT_IS_OBJECT(doc))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be a JSON object", what));
	if (VARSIZE(doc) > (Size) ku9_max_document_size)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("%s is too large: %zu bytes", what, (Size) VARSIZE(doc)),
				errdetail("The limit is %d bytes (ku9.max_document_size).", ku9_max_document_size));
	it = JsonbIteratorInit(&doc->root);
	while ((t = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (t == WJB_BEGIN_OBJECT || t == WJB_BEGIN_ARRAY)
		{
			if (++depth > KU9_DOC_MAX_DEPTH)
				ereport(ERROR,
						errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("%s is nested too deeply", what),
						errdetail("Documents may nest objects and arrays %d levels deep.",
								  KU9_DOC_MAX_DEPTH));
		}
		else if (t == WJB_END_OBJECT || t == WJB_END_ARRAY)
			depth--;
		else if (t == WJB_KEY)
		{
			if ((v.val.string.len > 0 && v.val.string.val[0] == '$') ||
				memchr(v.val.string.val, '.', v.val.string.len) != NULL)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid field name \"%s\" in %s",
							   pnstrdup(v.val.string.val, v.val.string.len), what),
						errdetail("Field names may not start with \"$\" or contain \".\"."));
		}
	}
	Ku9DocRootValue(doc, &root);
	id = Ku9DocField(&root, "_id", 3);
	if (id != NULL && Ku9DocIsArray(id))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("_id must not be an array"),
				errdetail("An _id is a string, number, boolean, null or object."));
}
