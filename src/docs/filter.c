/*-------------------------------------------------------------------------
 *
 * filter.c
 *	  MongoDB query filters: parsing, matching, and the index-friendly SQL
 *	  conditions the compiler puts in front of the exact match.
 *
 * A filter is parsed once per statement into a tree of Ku9Filter nodes.
 * Field conditions hold a dotted path; matching walks the path through
 * objects and arrays (Ku9DocWalkPath) and tests each value reached the
 * MongoDB way: the value itself, and when it is an array, each element.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/docs/filter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "docs/docs.h"
#include "docs/filter.h"
#include "miscadmin.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonpath.h"
#include "utils/numeric.h"

typedef enum FilterKind
{
	F_AND,
	F_OR,
	F_NOR,
	F_NOT,						/* field-level $not, and $ne/$nin */
	F_FALSE,					/* $all: [] */
	F_EQ,
	F_GT,
	F_GTE,
	F_LT,
	F_LTE,
	F_IN,
	F_EXISTS,
	F_TYPE,
	F_SIZE,
	F_REGEX,
	F_ELEMMATCH
} FilterKind;

/* $type bits */
#define T_NULL		(1 << 0)
#define T_BOOL		(1 << 1)
#define T_STRING	(1 << 2)
#define T_OBJECT	(1 << 3)
#define T_ARRAY		(1 << 4)
#define T_INT		(1 << 5)
#define T_LONG		(1 << 6)
#define T_DOUBLE	(1 << 7)
#define T_NUMBER	(T_INT | T_LONG | T_DOUBLE)

struct Ku9Filter
{
	FilterKind	kind;
	Ku9DocPath *path;			/* field conditions; NULL: the value itself */
	JsonbValue *value;			/* F_EQ and ranges */
	JsonbValue **values;		/* F_IN */
	int			nvalues;
	bool		in_null;		/* F_IN: a null among the values */
	bool		exists;			/* F_EXISTS */
	int			types;			/* F_TYPE */
	int			size;			/* F_SIZE */
	text	   *regex;			/* F_REGEX */
	int			cflags;
	bool		elem_doc;		/* F_ELEMMATCH: a query on element documents */
	bool		self;			/* F_ELEMMATCH: applies to the value, not its elements */
	bool		expand;			/* $pull's operators: as a field, into an array value */
	struct Ku9Filter **kids;	/* logical nodes, F_NOT, F_ELEMMATCH */
	int			nkids;
};

static Ku9Filter *parse_document(const JsonbValue *filter, const char *where);
static Ku9Filter *parse_field(Ku9DocPath *path, const JsonbValue *cond, const char *where);
static bool match_node(const Ku9Filter *f, const JsonbValue *doc);
static bool match_reached(const Ku9Filter *f, const JsonbValue *v);

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------
 */

static Ku9Filter *
new_node(FilterKind kind, Ku9DocPath *path)
{
	Ku9Filter  *f = palloc0(sizeof(Ku9Filter));

	f->kind = kind;
	f->path = path;
	return f;
}

static Ku9Filter *
new_logical(FilterKind kind, List *kids)
{
	Ku9Filter  *f = new_node(kind, NULL);
	ListCell   *lc;
	int			i = 0;

	f->nkids = list_length(kids);
	f->kids = palloc(sizeof(Ku9Filter *) * Max(f->nkids, 1));
	foreach(lc, kids)
		f->kids[i++] = lfirst(lc);
	return f;
}

pg_attribute_printf(2, 3)
static void
filter_error(const char *where, const char *fmt,...)
{
	char		buf[512];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid filter at \"%s\": %s", where, buf));
}

static bool
is_operator_object(const JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbIteratorToken t;

	if (!Ku9DocIsObject(v) || JsonContainerSize(v->val.binary.data) == 0)
		return false;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		if (t == WJB_KEY && k.val.string.len > 0 && k.val.string.val[0] == '$')
			return true;
	return false;
}

static JsonbValue *
copy_value(const JsonbValue *v)
{
	JsonbValue *c = palloc(sizeof(JsonbValue));

	*c = *v;
	return c;
}

static int
type_bits(const JsonbValue *t, const char *where)
{
	static const struct
	{
		const char *name;
		int			code;
		int			bits;
	}			types[] =
	{
		{"double", 1, T_DOUBLE},
		{"string", 2, T_STRING},
		{"object", 3, T_OBJECT},
		{"array", 4, T_ARRAY},
		{"binData", 5, 0},
		{"undefined", 6, 0},
		{"objectId", 7, 0},
		{"bool", 8, T_BOOL},
		{"date", 9, 0},
		{"null", 10, T_NULL},
		{"regex", 11, 0},
		{"dbPointer", 12, 0},
		{"javascript", 13, 0},
		{"symbol", 14, 0},
		{"javascriptWithScope", 15, 0},
		{"int", 16, T_INT},
		{"timestamp", 17, 0},
		{"long", 18, T_LONG},
		{"decimal", 19, 0},
		{"minKey", -1, 0},
		{"maxKey", 127, 0},
		{"number", -1000, T_NUMBER},
	};

	if (t->type == jbvString)
	{
		for (int i = 0; i < (int) lengthof(types); i++)
			if (strlen(types[i].name) == (size_t) t->val.string.len &&
				memcmp(types[i].name, t->val.string.val, t->val.string.len) == 0)
				return types[i].bits;
		filter_error(where, "unknown $type \"%s\"",
					 pnstrdup(t->val.string.val, t->val.string.len));
	}
	if (t->type == jbvNumeric)
	{
		bool		error = false;
		int32		code = numeric_int4_opt_error(t->val.numeric, &error);

		if (!error)
			for (int i = 0; i < (int) lengthof(types); i++)
				if (types[i].code == code && code != -1000)
					return types[i].bits;
		filter_error(where, "unknown $type code %s", Ku9DocValueText(t));
	}
	filter_error(where, "$type needs a type name, a type number or an array of them");
	pg_unreachable();
}

static Ku9Filter *
parse_type(Ku9DocPath *path, const JsonbValue *operand, const char *where)
{
	Ku9Filter  *f = new_node(F_TYPE, path);

	if (Ku9DocIsArray(operand))
	{
		int			n = Ku9DocArraySize(operand);

		if (n == 0)
			filter_error(where, "$type needs at least one type");
		for (int i = 0; i < n; i++)
			f->types |= type_bits(Ku9DocArrayElem(operand, i), where);
	}
	else
		f->types = type_bits(operand, where);
	return f;
}

/*
 * regex_collation: the ICU root collation "und-x-icu" when the server has
 * ICU, so that character classes and case-insensitive matching know all of
 * Unicode as PCRE's UTF mode does; else the database's.
 */
static Oid
regex_collation(void)
{
	static Oid	collation = InvalidOid;

	if (!OidIsValid(collation))
	{
		collation = get_collation_oid(list_make2(makeString("pg_catalog"),
												 makeString("und-x-icu")), true);
		if (!OidIsValid(collation))
			collation = DEFAULT_COLLATION_OID;
	}
	return collation;
}

static int
regex_flags(const JsonbValue *options, const char *where)
{
	bool		s = false,
				m = false;
	int			flags = REG_ADVANCED;

	if (options != NULL)
	{
		if (options->type != jbvString)
			filter_error(where, "$options needs a string");
		for (int i = 0; i < options->val.string.len; i++)
		{
			switch (options->val.string.val[i])
			{
				case 'i':
					flags |= REG_ICASE;
					break;
				case 'm':
					m = true;
					break;
				case 's':
					s = true;
					break;
				case 'x':
					flags |= REG_EXPANDED;
					break;
				case 'u':
					break;
				default:
					filter_error(where, "unknown $options flag \"%c\" (use i, m, s, x)",
								 options->val.string.val[i]);
			}
		}
	}
	/* PCRE: '.' stops at newlines unless s; ^ and $ match at lines with m */
	if (!s)
		flags |= REG_NLSTOP;
	if (m)
		flags |= REG_NLANCH;
	return flags;
}

static Ku9Filter *
parse_regex(Ku9DocPath *path, const JsonbValue *pattern, const JsonbValue *options,
			const char *where)
{
	Ku9Filter  *f = new_node(F_REGEX, path);

	if (pattern->type != jbvString)
		filter_error(where, "$regex needs a string");
	f->regex = cstring_to_text_with_len(pattern->val.string.val, pattern->val.string.len);
	f->cflags = regex_flags(options, where);
	/* compile now, so that a bad pattern is reported before any row is read */
	(void) RE_compile_and_cache(f->regex, f->cflags, regex_collation());
	return f;
}

/*
 * parse_elem_match: a query on element documents when any key is a field
 * name or a logical operator, else conditions on the element values.
 */
static Ku9Filter *
parse_elem_match(Ku9DocPath *path, const JsonbValue *operand, const char *where)
{
	Ku9Filter  *f = new_node(F_ELEMMATCH, path);
	JsonbIterator *it;
	JsonbValue	k;
	JsonbIteratorToken t;
	bool		doc = false;

	if (!Ku9DocIsObject(operand))
		filter_error(where, "$elemMatch needs an object");
	it = JsonbIteratorInit(operand->val.binary.data);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (t != WJB_KEY)
			continue;
		if (k.val.string.len == 0 || k.val.string.val[0] != '$' ||
			(k.val.string.len == 4 && (memcmp(k.val.string.val, "$and", 4) == 0 ||
									   memcmp(k.val.string.val, "$nor", 4) == 0)) ||
			(k.val.string.len == 3 && memcmp(k.val.string.val, "$or", 3) == 0))
			doc = true;
	}
	f->elem_doc = doc;
	f->nkids = 1;
	f->kids = palloc(sizeof(Ku9Filter *));
	f->kids[0] = doc ? parse_document(operand, where) : parse_field(NULL, operand, where);
	return f;
}

static Ku9Filter *
parse_in(Ku9DocPath *path, const JsonbValue *operand, const char *op, const char *where)
{
	Ku9Filter  *f = new_node(F_IN, path);

	if (!Ku9DocIsArray(operand))
		filter_error(where, "%s needs an array", op);
	f->nvalues = Ku9DocArraySize(operand);
	f->values = palloc(sizeof(JsonbValue *) * Max(f->nvalues, 1));
	for (int i = 0; i < f->nvalues; i++)
	{
		JsonbValue *v = Ku9DocArrayElem(operand, i);

		if (is_operator_object(v))
			filter_error(where, "%s takes values, not operators", op);
		f->values[i] = v;
		if (v->type == jbvNull)
			f->in_null = true;
	}
	return f;
}

static Ku9Filter *
negate(Ku9Filter *kid)
{
	Ku9Filter  *f = new_node(F_NOT, kid->path);

	f->nkids = 1;
	f->kids = palloc(sizeof(Ku9Filter *));
	f->kids[0] = kid;
	return f;
}

static bool
key_is(const JsonbValue *k, const char *s)
{
	return k->val.string.len == (int) strlen(s) && memcmp(k->val.string.val, s, k->val.string.len) == 0;
}

/*
 * parse_operator parses one operator of a field condition ({path: {op: operand}}).
 */
static Ku9Filter *
parse_operator(Ku9DocPath *path, const JsonbValue *op, const JsonbValue *operand,
			   const JsonbValue *cond, const char *where)
{
	static const struct
	{
		const char *name;
		FilterKind	kind;
	}			ranges[] =
	{
		{"$eq", F_EQ}, {"$gt", F_GT}, {"$gte", F_GTE}, {"$lt", F_LT}, {"$lte", F_LTE}
	};
	char	   *name = pnstrdup(op->val.string.val, op->val.string.len);

	for (int i = 0; i < (int) lengthof(ranges); i++)
		if (strcmp(name, ranges[i].name) == 0)
		{
			Ku9Filter  *f = new_node(ranges[i].kind, path);

			f->value = copy_value(operand);
			return f;
		}
	if (strcmp(name, "$ne") == 0)
	{
		Ku9Filter  *f = new_node(F_EQ, path);

		f->value = copy_value(operand);
		return negate(f);
	}
	if (strcmp(name, "$in") == 0)
		return parse_in(path, operand, name, where);
	if (strcmp(name, "$nin") == 0)
		return negate(parse_in(path, operand, name, where));
	if (strcmp(name, "$exists") == 0)
	{
		Ku9Filter  *f = new_node(F_EXISTS, path);

		if (operand->type == jbvBool)
			f->exists = operand->val.boolean;
		else if (operand->type == jbvNumeric)
			f->exists = !DatumGetBool(DirectFunctionCall2(numeric_eq,
														  NumericGetDatum(operand->val.numeric),
														  NumericGetDatum(int64_to_numeric(0))));
		else
			filter_error(where, "$exists needs true or false");
		/* false is "not true": any value reached makes the field exist */
		if (!f->exists)
		{
			f->exists = true;
			return negate(f);
		}
		return f;
	}
	if (strcmp(name, "$type") == 0)
		return parse_type(path, operand, where);
	if (strcmp(name, "$size") == 0)
	{
		Ku9Filter  *f = new_node(F_SIZE, path);
		bool		error = false;

		if (operand->type != jbvNumeric ||
			DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(operand->val.numeric))) > 0)
			filter_error(where, "$size needs a whole number");
		f->size = numeric_int4_opt_error(operand->val.numeric, &error);
		if (error || f->size < 0)
			filter_error(where, "$size needs a non-negative whole number");
		return f;
	}
	if (strcmp(name, "$regex") == 0)
		return parse_regex(path, operand, Ku9DocField(cond, "$options", 8), where);
	if (strcmp(name, "$options") == 0)
	{
		if (Ku9DocField(cond, "$regex", 6) == NULL)
			filter_error(where, "$options needs $regex");
		return NULL;			/* read with $regex */
	}
	if (strcmp(name, "$not") == 0)
	{
		if (!Ku9DocIsObject(operand) || JsonContainerSize(operand->val.binary.data) == 0)
			filter_error(where, "$not needs an object of operators");
		if (!is_operator_object(operand))
			filter_error(where, "$not needs operators, not a value");
		return negate(parse_field(path, operand, where));
	}
	if (strcmp(name, "$all") == 0)
	{
		List	   *kids = NIL;
		int			n;

		if (!Ku9DocIsArray(operand))
			filter_error(where, "$all needs an array");
		n = Ku9DocArraySize(operand);
		if (n == 0)
			return new_node(F_FALSE, path);
		for (int i = 0; i < n; i++)
		{
			JsonbValue *v = Ku9DocArrayElem(operand, i);
			JsonbValue *em = Ku9DocField(v, "$elemMatch", 10);

			if (em != NULL && JsonContainerSize(v->val.binary.data) == 1)
				kids = lappend(kids, parse_elem_match(path, em, where));
			else if (is_operator_object(v))
				filter_error(where, "$all takes values or {$elemMatch: ...}");
			else
			{
				Ku9Filter  *f = new_node(F_EQ, path);

				f->value = v;
				kids = lappend(kids, f);
			}
		}
		return new_logical(F_AND, kids);
	}
	if (strcmp(name, "$elemMatch") == 0)
		return parse_elem_match(path, operand, where);
	if (strcmp(name, "$text") == 0 || strcmp(name, "$where") == 0 ||
		strcmp(name, "$expr") == 0 || strcmp(name, "$near") == 0 ||
		strcmp(name, "$geoWithin") == 0 || strcmp(name, "$geoIntersects") == 0 ||
		strcmp(name, "$nearSphere") == 0 || strcmp(name, "$mod") == 0 ||
		strcmp(name, "$bitsAllSet") == 0 || strcmp(name, "$jsonSchema") == 0)
		filter_error(where, "%s is not supported", name);
	filter_error(where, "unknown operator \"%s\"", name);
	pg_unreachable();
}

/*
 * parse_field parses the condition on one path: an object of operators
 * (all of which must hold) or a value to equal.
 */
static Ku9Filter *
parse_field(Ku9DocPath *path, const JsonbValue *cond, const char *where)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken t;
	List	   *kids = NIL;

	check_stack_depth();
	if (!is_operator_object(cond))
	{
		Ku9Filter  *f;

		if (path == NULL)
			filter_error(where, "expected operators");
		f = new_node(F_EQ, path);
		f->value = copy_value(cond);
		return f;
	}
	it = JsonbIteratorInit(cond->val.binary.data);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		Ku9Filter  *f;

		if (t != WJB_KEY)
			continue;
		t = JsonbIteratorNext(&it, &v, true);
		if (k.val.string.len == 0 || k.val.string.val[0] != '$')
			filter_error(where, "\"%s\" is not an operator; an object of operators cannot also hold fields",
						 pnstrdup(k.val.string.val, k.val.string.len));
		f = parse_operator(path, &k, &v, cond, where);
		if (f != NULL)
			kids = lappend(kids, f);
	}
	if (list_length(kids) == 1)
		return linitial(kids);
	return new_logical(F_AND, kids);
}

static Ku9Filter *
parse_logical(FilterKind kind, const JsonbValue *op, const JsonbValue *operand,
			  const char *where)
{
	List	   *kids = NIL;
	int			n;
	char	   *name = pnstrdup(op->val.string.val, op->val.string.len);

	if (!Ku9DocIsArray(operand) || (n = Ku9DocArraySize(operand)) == 0)
		filter_error(where, "%s needs a non-empty array of filters", name);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = Ku9DocArrayElem(operand, i);

		if (!Ku9DocIsObject(e))
			filter_error(where, "%s needs a non-empty array of filters", name);
		kids = lappend(kids, parse_document(e, psprintf("%s.%d", where[0] ? where : name, i)));
	}
	return new_logical(kind, kids);
}

/*
 * parse_document parses a query document: field conditions and top-level
 * logical operators, all of which must hold.
 */
static Ku9Filter *
parse_document(const JsonbValue *filter, const char *where)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken t;
	List	   *kids = NIL;

	check_stack_depth();
	if (!Ku9DocIsObject(filter))
		filter_error(where[0] ? where : "(filter)", "a filter must be a JSON object");
	it = JsonbIteratorInit(filter->val.binary.data);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (t != WJB_KEY)
			continue;
		t = JsonbIteratorNext(&it, &v, true);
		if (k.val.string.len > 0 && k.val.string.val[0] == '$')
		{
			if (key_is(&k, "$and"))
				kids = lappend(kids, parse_logical(F_AND, &k, &v, where));
			else if (key_is(&k, "$or"))
				kids = lappend(kids, parse_logical(F_OR, &k, &v, where));
			else if (key_is(&k, "$nor"))
				kids = lappend(kids, parse_logical(F_NOR, &k, &v, where));
			else if (key_is(&k, "$comment"))
				continue;
			else
				filter_error(pnstrdup(k.val.string.val, k.val.string.len),
							 "unknown top-level operator");
		}
		else
		{
			Ku9DocPath *path = Ku9DocParsePath(k.val.string.val, k.val.string.len, "filter");
			char	   *pwhere = where[0] ? psprintf("%s.%s", where, path->text) : path->text;

			kids = lappend(kids, parse_field(path, &v, pwhere));
		}
	}
	if (list_length(kids) == 1)
		return linitial(kids);
	return new_logical(F_AND, kids);
}

/*
 * Ku9FilterParse validates and parses a query filter; errors are 22023
 * and name the offending path.
 */
Ku9Filter *
Ku9FilterParse(const JsonbValue *filter)
{
	return parse_document(filter, "");
}

/*
 * Ku9FilterParseElementCondition parses a condition on one value, as
 * $pull and $elemMatch take it: an object of operators applies to the value,
 * another object is a query on a document value, anything else is a value
 * to equal.
 */
Ku9Filter *
Ku9FilterParseElementCondition(const JsonbValue *cond, const char *path)
{
	Ku9Filter  *f;

	if (is_operator_object(cond))
	{
		f = parse_field(NULL, cond, path);
		f->expand = true;
		return f;
	}
	if (Ku9DocIsObject(cond))
	{
		f = new_node(F_ELEMMATCH, NULL);
		f->elem_doc = true;
		f->self = true;
		f->nkids = 1;
		f->kids = palloc(sizeof(Ku9Filter *));
		f->kids[0] = parse_document(cond, path);
		return f;
	}
	f = new_node(F_EQ, NULL);
	f->value = copy_value(cond);
	return f;
}

/* ------------------------------------------------------------------------
 * Matching
 * ------------------------------------------------------------------------
 */

static int
type_bit_of(const JsonbValue *v)
{
	const char *name = Ku9DocTypeName(v);

	switch (Ku9DocRankOf(v))
	{
		case KU9_RANK_NULL:
			return T_NULL;
		case KU9_RANK_BOOL:
			return T_BOOL;
		case KU9_RANK_STRING:
			return T_STRING;
		case KU9_RANK_OBJECT:
			return T_OBJECT;
		case KU9_RANK_ARRAY:
			return T_ARRAY;
		case KU9_RANK_NUMBER:
			return strcmp(name, "int") == 0 ? T_INT :
				strcmp(name, "long") == 0 ? T_LONG : T_DOUBLE;
	}
	return 0;
}

static bool
regex_matches(const Ku9Filter *f, const JsonbValue *v)
{
	if (v == NULL || v->type != jbvString)
		return false;
	return RE_compile_and_execute(f->regex, v->val.string.val, v->val.string.len,
								  f->cflags, regex_collation(), 0, NULL);
}

/*
 * match_element_document tests a query on an element of an array for
 * $elemMatch: a document, or an array taken as the document BSON makes of
 * it, whose fields are "0", "1", ...; other values never match.
 */
static bool
match_element_document(const Ku9Filter *query, const JsonbValue *e)
{
	JsonbParseState *state = NULL;
	JsonbValue	doc;
	JsonbValue	k;
	int			n;

	if (Ku9DocIsObject(e))
		return match_node(query, e);
	if (!Ku9DocIsArray(e))
		return false;
	n = Ku9DocArraySize(e);
	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < n; i++)
	{
		k.type = jbvString;
		k.val.string.val = psprintf("%d", i);
		k.val.string.len = strlen(k.val.string.val);
		(void) pushJsonbValue(&state, WJB_KEY, &k);
		(void) pushJsonbValue(&state, WJB_VALUE, Ku9DocArrayElem(e, i));
	}
	Ku9DocRootValue(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)), &doc);
	return match_node(query, &doc);
}

/*
 * match_single tests a condition on one value, without looking into it if
 * it is an array (v NULL: missing).
 */
static bool
match_single(const Ku9Filter *f, const JsonbValue *v)
{
	int			c;

	switch (f->kind)
	{
		case F_EQ:
			if (v == NULL)
				return f->value->type == jbvNull;
			return Ku9DocEqual(v, f->value);
		case F_GT:
		case F_GTE:
		case F_LT:
		case F_LTE:
			/* a range never crosses types; missing compares as null */
			if (Ku9DocRankOf(v) != Ku9DocRankOf(f->value))
				return false;
			c = Ku9DocCompare(v, f->value);
			switch (f->kind)
			{
				case F_GT:
					return c > 0;
				case F_GTE:
					return c >= 0;
				case F_LT:
					return c < 0;
				default:
					return c <= 0;
			}
		case F_IN:
			if (v == NULL)
				return f->in_null;
			for (int i = 0; i < f->nvalues; i++)
			{
				CHECK_FOR_INTERRUPTS();
				if (Ku9DocEqual(v, f->values[i]))
					return true;
			}
			return false;
		case F_EXISTS:
			return (v != NULL) == f->exists;
		case F_TYPE:
			return v != NULL && (type_bit_of(v) & f->types) != 0;
		case F_SIZE:
			return Ku9DocIsArray(v) && Ku9DocArraySize(v) == f->size;
		case F_REGEX:
			return regex_matches(f, v);
		case F_ELEMMATCH:
			if (f->self)
				return Ku9DocIsObject(v) && match_node(f->kids[0], v);
			if (!Ku9DocIsArray(v))
				return false;
			for (int i = 0, n = Ku9DocArraySize(v); i < n; i++)
			{
				JsonbValue *e = Ku9DocArrayElem(v, i);

				if (f->elem_doc ? match_element_document(f->kids[0], e)
					: match_single(f->kids[0], e))
					return true;
			}
			return false;
		case F_AND:
			for (int i = 0; i < f->nkids; i++)
				if (!match_single(f->kids[i], v))
					return false;
			return true;
		case F_NOT:
			return !match_single(f->kids[0], v);
		case F_FALSE:
			return false;
		case F_OR:
		case F_NOR:
			break;
	}
	elog(ERROR, "unexpected filter node %d on a value", (int) f->kind);
	pg_unreachable();
}

/*
 * match_reached tests a field condition on one value a path reached: the
 * value itself, or, for most conditions on an array, any of its elements.
 */
static bool
match_reached(const Ku9Filter *f, const JsonbValue *v)
{
	if (match_single(f, v))
		return true;
	if (!Ku9DocIsArray(v) || f->kind == F_SIZE || f->kind == F_ELEMMATCH ||
		f->kind == F_EXISTS)
		return false;
	for (int i = 0, n = Ku9DocArraySize(v); i < n; i++)
	{
		JsonbValue *e = Ku9DocArrayElem(v, i);

		CHECK_FOR_INTERRUPTS();
		/* the null in a $gte/$lte/$eq null stands for missing, not for an array element's absence */
		if (match_single(f, e))
			return true;
	}
	return false;
}

typedef struct VisitArg
{
	const Ku9Filter *f;
} VisitArg;

static bool
visit_match(const JsonbValue *value, void *arg)
{
	return match_reached(((VisitArg *) arg)->f, value);
}

static bool
match_path(const Ku9Filter *f, const JsonbValue *doc)
{
	VisitArg	arg = {f};

	return Ku9DocWalkPath(doc, f->path, visit_match, &arg);
}

static bool
match_node(const Ku9Filter *f, const JsonbValue *doc)
{
	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	switch (f->kind)
	{
		case F_AND:
			for (int i = 0; i < f->nkids; i++)
				if (!match_node(f->kids[i], doc))
					return false;
			return true;
		case F_OR:
			for (int i = 0; i < f->nkids; i++)
				if (match_node(f->kids[i], doc))
					return true;
			return false;
		case F_NOR:
			for (int i = 0; i < f->nkids; i++)
				if (match_node(f->kids[i], doc))
					return false;
			return true;
		case F_NOT:
			return !match_node(f->kids[0], doc);
		case F_FALSE:
			return false;
		default:
			return match_path(f, doc);
	}
}

/* Ku9FilterMatch says whether document doc (an object) matches f */
bool
Ku9FilterMatch(const Ku9Filter *f, const JsonbValue *doc)
{
	return match_node(f, doc);
}

/*
 * match_as_field tests operators on a value as if it were a field's: an
 * array value matches when it or one of its elements does.
 */
static bool
match_as_field(const Ku9Filter *f, const JsonbValue *v)
{
	switch (f->kind)
	{
		case F_AND:
			for (int i = 0; i < f->nkids; i++)
				if (!match_as_field(f->kids[i], v))
					return false;
			return true;
		case F_NOT:
			return !match_as_field(f->kids[0], v);
		default:
			return match_reached(f, v);
	}
}

/*
 * Ku9FilterMatchElement says whether one value (an array element) matches
 * a condition of Ku9FilterParseElementCondition.  $pull's operators look
 * into an element that is an array, as MongoDB's, which matches each
 * element as the field of a document {"": element}.
 */
bool
Ku9FilterMatchElement(const Ku9Filter *f, const JsonbValue *elem)
{
	if (f->expand)
		return match_as_field(f, elem);
	return match_single(f, elem);
}

/* ------------------------------------------------------------------------
 * SQL: conditions an index can answer
 * ------------------------------------------------------------------------
 */

static void
append_jsonpath_key(StringInfo buf, const char *name, int len)
{
	appendStringInfoChar(buf, '.');
	escape_json(buf, pnstrdup(name, len));
}

static bool
jsonpath_literal(StringInfo buf, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNumeric:
			appendStringInfoString(buf, DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(v->val.numeric))));
			return true;
		case jbvString:
			escape_json(buf, pnstrdup(v->val.string.val, v->val.string.len));
			return true;
		case jbvBool:
			appendStringInfoString(buf, v->val.boolean ? "true" : "false");
			return true;
		default:
			return false;
	}
}

/*
 * jsonpath_equality writes "$.a.b == v" for an equality a GIN jsonb_path_ops
 * index answers.  In lax mode jsonpath looks through one array level at each
 * step, as MongoDB does, so every document that matches also matches this
 * (the reverse need not hold: the exact match is checked after).  Paths with
 * array positions are left out: jsonpath would not look at the position.
 */
static bool
jsonpath_equality(StringInfo buf, const Ku9DocPath *path, const JsonbValue *v)
{
	StringInfoData lit;

	if (path == NULL)
		return false;
	for (int i = 0; i < path->n; i++)
		if (path->index[i] >= 0)
			return false;
	initStringInfo(&lit);
	if (!jsonpath_literal(&lit, v))
		return false;
	appendStringInfoChar(buf, '$');
	for (int i = 0; i < path->n; i++)
		append_jsonpath_key(buf, path->names[i], path->lens[i]);
	appendStringInfo(buf, " == %s", lit.data);
	return true;
}

/*
 * gin_condition builds a jsonpath predicate that every document matching f
 * satisfies, or returns false when there is none worth an index lookup.
 */
static bool
gin_condition(const Ku9Filter *f, StringInfo buf)
{
	switch (f->kind)
	{
		case F_EQ:
			return jsonpath_equality(buf, f->path, f->value);
		case F_IN:
			{
				StringInfoData part;

				if (f->nvalues == 0 || f->nvalues > 32 || f->in_null)
					return false;
				initStringInfo(&part);
				for (int i = 0; i < f->nvalues; i++)
				{
					resetStringInfo(&part);
					if (!jsonpath_equality(&part, f->path, f->values[i]))
						return false;
					appendStringInfo(buf, "%s(%s)", i > 0 ? " || " : "", part.data);
				}
				return true;
			}
		case F_AND:
			{
				bool		any = false;
				StringInfoData part;

				initStringInfo(&part);
				for (int i = 0; i < f->nkids; i++)
				{
					resetStringInfo(&part);
					if (!gin_condition(f->kids[i], &part))
						continue;
					appendStringInfo(buf, "%s(%s)", any ? " && " : "", part.data);
					any = true;
				}
				return any;
			}
		case F_OR:
			{
				StringInfoData part;

				initStringInfo(&part);
				for (int i = 0; i < f->nkids; i++)
				{
					resetStringInfo(&part);
					if (!gin_condition(f->kids[i], &part))
						return false;
					appendStringInfo(buf, "%s(%s)", i > 0 ? " || " : "", part.data);
				}
				return true;
			}
		default:
			return false;
	}
}

/* collect_conjuncts lists the conditions that must all hold, flattening $and */
static void
collect_conjuncts(const Ku9Filter *f, List **out)
{
	if (f->kind == F_AND && f->path == NULL)
	{
		for (int i = 0; i < f->nkids; i++)
			collect_conjuncts(f->kids[i], out);
		return;
	}
	*out = lappend(*out, (void *) f);
}

/*
 * Ku9FilterIdEquality returns the _id values f requires when f is exactly
 * {_id: v} or {_id: {$in: [...]}} with values that can be _ids (no arrays,
 * no operators): then "_id = ANY(...)" on the primary key is the whole match.
 */
static bool
id_values(const Ku9Filter *f, List **values)
{
	if (f->path == NULL || f->path->n != 1 || strcmp(f->path->names[0], "_id") != 0)
		return false;
	if (f->kind == F_EQ && !Ku9DocIsArray(f->value))
	{
		*values = list_make1(f->value);
		return true;
	}
	if (f->kind == F_IN)
	{
		*values = NIL;
		for (int i = 0; i < f->nvalues; i++)
		{
			if (Ku9DocIsArray(f->values[i]))
				return false;
			*values = lappend(*values, f->values[i]);
		}
		return true;
	}
	return false;
}

/*
 * Ku9FilterCompile appends SQL conditions on the columns _id and doc that
 * every matching document satisfies and that indexes can answer, with the
 * values as parameters; returns true when they are the whole match, so that
 * the exact match (ku9_docs.match) can be left out.
 */
bool
Ku9FilterCompile(const Ku9Filter *f, Ku9SqlBuilder *b, const Ku9IndexInfo *indexes)
{
	List	   *conjuncts = NIL;
	List	   *ids;
	ListCell   *lc;
	StringInfoData path;
	bool		exact = true;

	collect_conjuncts(f, &conjuncts);
	initStringInfo(&path);
	foreach(lc, conjuncts)
	{
		const Ku9Filter *c = lfirst(lc);

		if (id_values(c, &ids))
		{
			Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(ids), 1));
			ListCell   *lc2;
			int			k = 0;

			foreach(lc2, ids)
				elems[k++] = JsonbPGetDatum(JsonbValueToJsonb(lfirst(lc2)));
			appendStringInfo(b->sql, " AND _id = ANY (%s)",
							 Ku9SqlParam(b, PointerGetDatum(construct_array(elems, k, JSONBOID, -1, false, TYPALIGN_INT)),
										 "jsonb[]"));
			continue;
		}
		exact = false;
		if (Ku9IndexCondition(c, b, indexes))
			continue;
		resetStringInfo(&path);
		if (gin_condition(c, &path))
			appendStringInfo(b->sql, " AND doc @@ %s",
							 Ku9SqlParam(b, DirectFunctionCall1(jsonpath_in, CStringGetDatum(path.data)),
										 "jsonpath"));
	}
	return exact;
}

/*
 * Ku9FilterHasRangeOn says whether one of f's conjuncts is a comparison on
 * path (one that Ku9IndexCondition turns into a B-tree range).
 */
bool
Ku9FilterHasRangeOn(const Ku9Filter *f, const char *path)
{
	List	   *conjuncts = NIL;
	ListCell   *lc;

	collect_conjuncts(f, &conjuncts);
	foreach(lc, conjuncts)
	{
		const Ku9Filter *c = lfirst(lc);
		const Ku9DocPath *p;
		const char *op;
		const JsonbValue *v;
		List	   *ids;


		/* the primary key answers these; no B-tree range is made */
		if (id_values(c, &ids))
			continue;
		if (Ku9FilterRange(c, &p, &op, &v) && strcmp(p->text, path) == 0)
			return true;
	}
	return false;
}

/*
 * Ku9FilterRange exposes a conjunct that is a comparison on a path, for the
 * B-tree conditions of docs.c: op is one of "=", ">", ">=", "<", "<=".
 */
bool
Ku9FilterRange(const Ku9Filter *f, const Ku9DocPath **path, const char **op,
			   const JsonbValue **value)
{
	if (f->path == NULL)
		return false;
	switch (f->kind)
	{
		case F_EQ:
			*op = "=";
			break;
		case F_GT:
			*op = ">";
			break;
		case F_GTE:
			*op = ">=";
			break;
		case F_LT:
			*op = "<";
			break;
		case F_LTE:
			*op = "<=";
			break;
		default:
			return false;
	}
	*path = f->path;
	*value = f->value;
	return true;
}

/*
 * Ku9FilterSeed adds to state the fields an upsert's new document takes
 * from the filter: the paths of top-level equalities ({a: v}, {a: {$eq: v}},
 * and those inside $and), as MongoDB does.
 */
void
Ku9FilterSeed(const Ku9Filter *f, Ku9SeedFn fn, void *arg)
{
	if (f->kind == F_AND && f->path == NULL)
	{
		for (int i = 0; i < f->nkids; i++)
			Ku9FilterSeed(f->kids[i], fn, arg);
		return;
	}
	if (f->kind == F_EQ && f->path != NULL)
		fn(f->path, f->value, arg);
}
