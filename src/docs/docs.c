/*-------------------------------------------------------------------------
 *
 * docs.c
 *	  Document collections: the SQL functions of the docs module.
 *
 * A collection is a table ku9_docs.<name> (see docs.sql for its columns),
 * made by ku9.create_collection and owned by the extension's owner, with
 * row-level security policies that implement its "access" option.  The
 * functions here are SECURITY INVOKER: every statement they run is subject
 * to the caller's privileges and to those policies, so a function can never
 * show or change more than the caller could through SQL on the table.
 *
 * Each call compiles its filter into one parameterised statement:
 *
 *		SELECT doc FROM ku9_docs."c"
 *		 WHERE true <conditions an index can answer> AND ku9_docs.match(doc, $f)
 *		 ORDER BY ku9_docs.sort_key(doc, 'a', false), _id LIMIT $n
 *
 * The conditions in front are necessary for a match (filter.c and
 * Ku9IndexCondition); ku9_docs.match then applies MongoDB's semantics exactly.
 * Values only ever travel as parameters; field paths, which are checked
 * names, are quoted as literals so that index expressions match.
 * Statements are prepared once per backend and shape of query.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/docs/docs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/base64.h"
#include "common/hashfn.h"
#include "core/util.h"
#include "docs/docs.h"
#include "docs/filter.h"
#include "metrics/metrics.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
#include "compat.h"

#define KU9_COLLECTION_NAME_MAX 48
#define PLAN_CACHE_MAX 256

int			ku9_max_document_size = 16 * 1024 * 1024;

/* a collection as this backend knows it */
typedef struct Collection
{
	char		name[NAMEDATALEN];	/* hash key */
	Oid			relid;
	bool		valid;
	bool		events;
	char	   *table;			/* quoted ku9_docs."name" */
	Ku9IndexInfo indexes;
	MemoryContext cxt;
} Collection;

typedef struct DocPlan
{
	uint32		hash;			/* hash key: of the SQL text */
	char	   *sql;
	SPIPlanPtr	plan;
	struct DocPlan *next;
} CachedPlanEntry;

static HTAB *collection_cache = NULL;
static HTAB *plan_cache = NULL;
static Oid	sort_key_oid = InvalidOid;

/* ------------------------------------------------------------------------
 * Names, privileges, SPI
 * ------------------------------------------------------------------------
 */

static char *
arg_name(FunctionCallInfo fcinfo, int argno)
{
	return Ku9ArgName(fcinfo, argno, "collection", KU9_COLLECTION_NAME_MAX);
}

/* arg_object returns argument argno, an object (NULL: dflt) */
static Jsonb *
arg_object(FunctionCallInfo fcinfo, int argno, const char *what, bool required)
{
	Jsonb	   *jb;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					errmsg("%s must not be null", what));
		return NULL;
	}
	jb = PG_GETARG_JSONB_P(argno);
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be a JSON object", what));
	return jb;
}

/* param_type: the OID of one of the types the generated SQL uses */
static Oid
param_type(const char *type)
{
	static const struct
	{
		const char *name;
		Oid			oid;
	}			types[] =
	{
		{"jsonb", JSONBOID}, {"jsonb[]", JSONBARRAYOID}, {"bytea", BYTEAOID},
		{"int8", INT8OID}, {"jsonpath", JSONPATHOID}
	};

	for (int i = 0; i < (int) lengthof(types); i++)
		if (strcmp(types[i].name, type) == 0)
			return types[i].oid;
	elog(ERROR, "unexpected parameter type %s", type);
	pg_unreachable();
}

char *
Ku9SqlParam(Ku9SqlBuilder *b, Datum value, const char *type)
{
	if (b->nparams >= KU9_SQL_MAX_PARAMS)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("query is too complex"),
				errdetail("A query may use at most %d parameters.", KU9_SQL_MAX_PARAMS));
	b->values[b->nparams] = value;
	b->types[b->nparams] = param_type(type);
	b->nparams++;
	return psprintf("$%d::%s", b->nparams, type);
}

static void
builder_init(Ku9SqlBuilder *b)
{
	memset(b, 0, sizeof(Ku9SqlBuilder));
	b->sql = makeStringInfo();
}

/*
 * prepared returns the kept plan for b's SQL, preparing it on first use.
 * Plans are cached per backend by SQL text; the cache is dropped whole when
 * it grows past PLAN_CACHE_MAX.
 */
static SPIPlanPtr
prepared(Ku9SqlBuilder *b)
{
	/*
	 * A range read in index order (the first arm of a split find) is the
	 * same plan whatever the values; PostgreSQL cannot price its generic
	 * plan with an unknown LIMIT and would plan it anew on every call.
	 */
	int			options = b->generic ? CURSOR_OPT_GENERIC_PLAN : 0;
	uint32		h = hash_bytes((unsigned char *) b->sql->data, b->sql->len);
	CachedPlanEntry *e;
	bool		found;
	SPIPlanPtr	plan;

	if (plan_cache == NULL || hash_get_num_entries(plan_cache) >= PLAN_CACHE_MAX)
	{
		HASHCTL		info;

		if (plan_cache != NULL)
		{
			HASH_SEQ_STATUS seq;

			hash_seq_init(&seq, plan_cache);
			while ((e = hash_seq_search(&seq)) != NULL)
			{
				CachedPlanEntry *x = e->next;

				SPI_freeplan(e->plan);
				pfree(e->sql);
				while (x != NULL)
				{
					CachedPlanEntry *next = x->next;

					SPI_freeplan(x->plan);
					pfree(x->sql);
					pfree(x);
					x = next;
				}
			}
			hash_destroy(plan_cache);
		}
		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(uint32);
		info.entrysize = sizeof(CachedPlanEntry);
		info.hcxt = TopMemoryContext;
		plan_cache = hash_create("ku9 docs plans", 64, &info, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(plan_cache, &h, HASH_ENTER, &found);
	if (!found)
	{
		e->sql = NULL;
		e->plan = NULL;
		e->next = NULL;
	}
	for (CachedPlanEntry *x = e; x != NULL; x = x->next)
		if (x->sql != NULL && strcmp(x->sql, b->sql->data) == 0)
			return x->plan;
	plan = SPI_prepare_cursor(b->sql->data, b->nparams, b->types, options);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", b->sql->data,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	if (e->sql != NULL)
	{
		CachedPlanEntry *x = MemoryContextAlloc(TopMemoryContext, sizeof(CachedPlanEntry));

		x->next = e->next;
		e->next = x;
		e = x;
	}
	e->sql = MemoryContextStrdup(TopMemoryContext, b->sql->data);
	e->plan = plan;
	return plan;
}

/*
 * execute runs b's statement under search_path pg_catalog, pg_temp, so that
 * names in the generated SQL (unnest, now, count, =, casts) can only be
 * PostgreSQL's, whatever the caller put on its search_path.
 */
static int
execute(Ku9SqlBuilder *b, bool read_only)
{
	int			level = Ku9RestrictSearchPath();
	int			ret = SPI_execute_plan(prepared(b), b->values, NULL, read_only, 0);

	if (ret < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	AtEOXact_GUC(true, level);
	return ret;
}

/* ------------------------------------------------------------------------
 * Collections as this backend knows them
 * ------------------------------------------------------------------------
 */

static void
invalidate_collections(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	Collection *c;

	if (collection_cache == NULL)
		return;
	hash_seq_init(&seq, collection_cache);
	while ((c = hash_seq_search(&seq)) != NULL)
		if (!OidIsValid(relid) || c->relid == relid)
			c->valid = false;
}

static Oid
get_sort_key_oid(void)
{
	if (!OidIsValid(sort_key_oid))
	{
		Oid			args[3] = {JSONBOID, TEXTOID, BOOLOID};

		sort_key_oid = LookupFuncName(list_make2(makeString("ku9_docs"), makeString("sort_key")),
									  3, args, false);
	}
	return sort_key_oid;
}

/*
 * load_indexes finds the collection's B-tree indexes made by create_index:
 * those whose first column is ku9_docs.sort_key(doc, '<path>', <desc>).
 */
static void
load_indexes(Collection *c, Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			fn = get_sort_key_oid();
	MemoryContext old = MemoryContextSwitchTo(c->cxt);
	int			max = list_length(indexes);

	c->indexes.n = 0;
	c->indexes.arm = 0;
	c->indexes.arm_path = NULL;
	c->indexes.keys = palloc0(sizeof(Ku9IndexKey) * Max(max, 1));
	MemoryContextSwitchTo(old);
	foreach(lc, indexes)
	{
		Relation	irel = index_open(lfirst_oid(lc), AccessShareLock);
		List	   *exprs = RelationGetIndexExpressions(irel);
		Node	   *first;

		if (irel->rd_index->indkey.values[0] == 0 && exprs != NIL &&
			RelationGetIndexPredicate(irel) == NIL)
		{
			first = linitial(exprs);
			if (IsA(first, FuncExpr) && ((FuncExpr *) first)->funcid == fn &&
				list_length(((FuncExpr *) first)->args) == 3)
			{
				Node	   *p = lsecond(((FuncExpr *) first)->args);
				Node	   *d = lthird(((FuncExpr *) first)->args);

				if (IsA(p, Const) && IsA(d, Const) && !((Const *) p)->constisnull &&
					!((Const *) d)->constisnull)
				{
					Ku9IndexKey *k = &c->indexes.keys[c->indexes.n++];

					k->path = MemoryContextStrdup(c->cxt, TextDatumGetCString(((Const *) p)->constvalue));
					k->desc = DatumGetBool(((Const *) d)->constvalue);
				}
			}
		}
		index_close(irel, AccessShareLock);
	}
	list_free(indexes);
}

/*
 * open_collection finds a collection and locks its table in lockmode,
 * after checking (before the lock) that the caller holds privilege mode on
 * it.  Errors 42P01 when it does not exist, 42501 without the privilege.
 * Caller is connected to SPI.
 */
static Collection *
open_collection(const char *name, LOCKMODE lockmode, AclMode mode)
{
	Oid			nsp = get_namespace_oid("ku9_docs", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
	Collection *c;
	char		key[NAMEDATALEN];
	bool		found;

	if (!OidIsValid(relid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("collection \"%s\" does not exist", name));
	if (pg_class_aclcheck(relid, GetUserId(), mode) != ACLCHECK_OK &&
		!(mode == ACL_UPDATE &&
		  pg_attribute_aclcheck_all(relid, GetUserId(), mode, ACLMASK_ANY) == ACLCHECK_OK))
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied to %s collection \"%s\"",
					   mode == ACL_SELECT ? "read" : "write to", name),
				errhint("The collection's access option decides who may read and write it."));
	LockRelationOid(relid, lockmode);
	/* it may have gone while we waited */
	if (get_relname_relid(name, nsp) != relid)
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("collection \"%s\" does not exist", name));

	if (collection_cache == NULL)
	{
		HASHCTL		info;

		memset(&info, 0, sizeof(info));
		info.keysize = NAMEDATALEN;
		info.entrysize = sizeof(Collection);
		info.hcxt = TopMemoryContext;
		collection_cache = hash_create("ku9 collections", 32, &info,
									   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(invalidate_collections, (Datum) 0);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	c = hash_search(collection_cache, key, HASH_ENTER, &found);
	if (!found)
	{
		c->cxt = AllocSetContextCreate(TopMemoryContext, "ku9 collection", ALLOCSET_SMALL_SIZES);
		c->valid = false;
		c->relid = InvalidOid;
	}
	if (!c->valid || c->relid != relid)
	{
		Relation	rel;
		Ku9SavedUser call;
		Datum		arg = CStringGetTextDatum(name);
		int			ret;
		int			guc_level;

		MemoryContextReset(c->cxt);
		c->relid = relid;
		c->table = MemoryContextStrdup(c->cxt, quote_qualified_identifier("ku9_docs", name));
		/* the registry row, read as its owner: the caller may not read it */
		Ku9BecomeUser(Ku9RelationOwner("ku9", "collections"), &call);
		guc_level = Ku9RestrictSearchPath();
		ret = SPI_execute_with_args("SELECT events FROM ku9.collections "
									"WHERE name OPERATOR(pg_catalog.=) $1",
									1, (Oid[]) {TEXTOID}, &arg, NULL, true, 1);
		AtEOXact_GUC(true, guc_level);
		Ku9RestoreUser(&call);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read the collection registry");
		c->events = true;
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			c->events = isnull ? true : DatumGetBool(d);
		}
		rel = relation_open(relid, NoLock);
		load_indexes(c, rel);
		relation_close(rel, NoLock);
		c->valid = true;
	}
	return c;
}

/* ------------------------------------------------------------------------
 * Change events
 * ------------------------------------------------------------------------
 */

/*
 * notify_change queues the change event of one document: NOTIFY on
 * ku9_docs_<collection> with {"op", "_id", "owner", "version", "seq"};
 * PostgreSQL delivers it at commit, and drops it on rollback.  seq counts
 * the session's events: PostgreSQL folds identical notifications of one
 * transaction, which would hide e.g. a re-insert after a delete.
 */
/* numbers this session's events, so that PostgreSQL never folds two into one */
static uint64 event_seq = 0;

static void
notify_change(Collection *c, const char *op, Datum id, bool owner_null, Datum owner, int64 version)
{
	StringInfoData payload;

	if (!c->events)
		return;
	initStringInfo(&payload);
	appendStringInfo(&payload, "{\"op\":\"%s\",\"_id\":", op);
	appendStringInfoString(&payload, JsonbToCString(NULL, &DatumGetJsonbP(id)->root, 64));
	if (owner_null)
		appendStringInfoString(&payload, ",\"owner\":null");
	else
		appendStringInfo(&payload, ",\"owner\":\"%s\"",
						 DatumGetCString(DirectFunctionCall1(uuid_out, owner)));
	appendStringInfo(&payload, ",\"version\":" INT64_FORMAT ",\"seq\":" UINT64_FORMAT "}",
					 version, ++event_seq);
	if (payload.len >= NAMEDATALEN * 100)
		return;					/* an _id too long for a notification: none */
	Async_Notify(psprintf("ku9_docs_%s", c->name), payload.data);
}

/* notify_rows sends the events of an SPI result with columns _id, owner, version from column first */
static void
notify_rows(Collection *c, const char *op, int first)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		idnull,
					ownernull,
					vnull;
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Datum		id = SPI_getbinval(t, d, first, &idnull);
		Datum		owner = SPI_getbinval(t, d, first + 1, &ownernull);
		Datum		version = SPI_getbinval(t, d, first + 2, &vnull);

		if (idnull)
			continue;
		notify_change(c, op, id, ownernull, owner, vnull ? 0 : DatumGetInt64(version));
	}
}

/* ------------------------------------------------------------------------
 * Documents in and out
 * ------------------------------------------------------------------------
 */

static uint32 objectid_counter = 0;
static uint8 objectid_random[5];
static bool objectid_ready = false;

/*
 * new_object_id returns a fresh _id: 24 hex digits like MongoDB's ObjectId
 * (4 bytes of seconds since 1970, 5 random bytes per backend, a 3-byte
 * counter that starts at a random value), so that ids sort by creation
 * time to the second.
 */
static JsonbValue
new_object_id(void)
{
	uint8		b[12];
	uint32		secs = (uint32) time(NULL);
	char	   *hex = palloc(25);
	JsonbValue	v;

	if (!objectid_ready)
	{
		uint8		r[3];

		if (!pg_strong_random(objectid_random, sizeof(objectid_random)) ||
			!pg_strong_random(r, sizeof(r)))
			elog(ERROR, "could not generate random bytes");
		objectid_counter = (r[0] << 16) | (r[1] << 8) | r[2];
		objectid_ready = true;
	}
	objectid_counter = (objectid_counter + 1) & 0xFFFFFF;
	b[0] = secs >> 24;
	b[1] = secs >> 16;
	b[2] = secs >> 8;
	b[3] = secs;
	memcpy(b + 4, objectid_random, 5);
	b[9] = objectid_counter >> 16;
	b[10] = objectid_counter >> 8;
	b[11] = objectid_counter;
	for (int i = 0; i < 12; i++)
		snprintf(hex + i * 2, 3, "%02x", b[i]);
	v.type = jbvString;
	v.val.string.val = hex;
	v.val.string.len = 24;
	return v;
}

/*
 * with_id returns doc with an _id (a new ObjectId-like one when it has
 * none) and that _id in *id, after the checks every stored document passes.
 */
static Jsonb *
with_id(Jsonb *doc, const char *what, Jsonb **id)
{
	JsonbValue	root;
	JsonbValue *idv;

	if (!JB_ROOT_IS_OBJECT(doc))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must be a JSON object", what));
	Ku9DocRootValue(doc, &root);
	idv = Ku9DocField(&root, "_id", 3);
	if (idv == NULL)
	{
		JsonbParseState *state = NULL;
		JsonbValue	k;
		JsonbValue	newid = new_object_id();
		JsonbIterator *it = JsonbIteratorInit(&doc->root);
		JsonbValue	v;
		JsonbIteratorToken t;
		JsonbValue *res = NULL;

		while ((t = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (t == WJB_END_OBJECT)
			{
				k.type = jbvString;
				k.val.string.val = "_id";
				k.val.string.len = 3;
				(void) pushJsonbValue(&state, WJB_KEY, &k);
				(void) pushJsonbValue(&state, WJB_VALUE, &newid);
			}
			res = pushJsonbValue(&state, t, (t == WJB_KEY || t == WJB_VALUE) ? &v : NULL);
		}
		doc = JsonbValueToJsonb(res);
		*id = JsonbValueToJsonb(&newid);
	}
	else
		*id = JsonbValueToJsonb(idv);
	if (VARSIZE(*id) > 1024 + VARHDRSZ + 64)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("_id is too large"),
				errdetail("An _id takes at most about 1 kB."));
	Ku9DocCheckStored(doc, what);
	return doc;
}

/* ------------------------------------------------------------------------
 * Management
 * ------------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(ku9_create_collection);
PG_FUNCTION_INFO_V1(ku9_drop_collection);

typedef struct CollectionOptions
{
	const char *access;
	bool		events;
} CollectionOptions;

static void
collection_options(Jsonb *options, CollectionOptions *o)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken t;

	if (options == NULL)
		return;
	it = JsonbIteratorInit(&options->root);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (t != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		(void) JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "access") == 0)
		{
			char	   *s = v.type == jbvString ? pnstrdup(v.val.string.val, v.val.string.len) : "";

			if (strcmp(s, "owner") != 0 && strcmp(s, "public_read") != 0 && strcmp(s, "service") != 0)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid option \"access\" for create_collection: expected \"owner\", \"public_read\" or \"service\""));
			o->access = s;
		}
		else if (strcmp(key, "events") == 0)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid option \"events\" for create_collection: expected true or false"));
			o->events = v.val.boolean;
		}
		else
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("unknown option \"%s\" for create_collection", key),
					errhint("The options are access and events."));
	}
}

/*
 * ku9_create_collection makes a collection: its registry row, its table,
 * indexes (the _id primary key, owner, and GIN jsonb_path_ops on doc), and
 * the row-level security policies of its access option.
 */
Datum
ku9_create_collection(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	CollectionOptions o = {"owner", true};
	Ku9SavedUser call;
	int			guc_level;
	char	   *t;
	Datum		args[3];
	int			ret;

	collection_options(arg_object(fcinfo, 1, "options", false), &o);
	Ku9RequireService("create a collection", "Only members of ku9_service manage collections and their indexes.");
	t = quote_qualified_identifier("ku9_docs", name);

	Ku9SpiConnect();
	Ku9BecomeUser(Ku9RelationOwner("ku9", "collections"), &call);
	guc_level = Ku9RestrictSearchPath();

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(o.access);
	args[2] = BoolGetDatum(o.events);
	ret = SPI_execute_with_args("INSERT INTO ku9.collections (name, access, events) VALUES ($1, $2, $3) "
								"ON CONFLICT (name) DO NOTHING",
								3, (Oid[]) {TEXTOID, TEXTOID, BOOLOID}, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not register collection");
	if (SPI_processed == 0 || OidIsValid(get_relname_relid(name, get_namespace_oid("ku9_docs", false))))
		ereport(ERROR,
				errcode(ERRCODE_DUPLICATE_TABLE),
				errmsg("collection \"%s\" already exists", name));

	Ku9SpiRun(psprintf("CREATE TABLE %s ("
					 "_id jsonb GENERATED ALWAYS AS (doc -> '_id') STORED, "
					 "owner uuid DEFAULT ku9.uid(), "
					 "version bigint NOT NULL DEFAULT 1, "
					 "created_at timestamptz NOT NULL DEFAULT now(), "
					 "updated_at timestamptz NOT NULL DEFAULT now(), "
					 "doc jsonb NOT NULL, "
					 "CONSTRAINT %s PRIMARY KEY (_id), "
					 "CONSTRAINT %s CHECK (jsonb_typeof(doc) = 'object'))",
					 t, quote_identifier(psprintf("%s$_id", name)),
					 quote_identifier(psprintf("%s$doc", name))));
	Ku9SpiRun(psprintf("CREATE INDEX %s ON %s (owner)",
					 quote_identifier(psprintf("%s$owner", name)), t));
	Ku9SpiRun(psprintf("CREATE INDEX %s ON %s USING gin (doc jsonb_path_ops)",
					 quote_identifier(psprintf("%s$gin", name)), t));
	Ku9SpiRun(psprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY", t));
	Ku9SpiRun(psprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO ku9_service", t));
	Ku9SpiRun(psprintf("CREATE POLICY service ON %s TO ku9_service USING (true) WITH CHECK (true)", t));
	if (strcmp(o.access, "service") != 0)
	{
		Ku9SpiRun(psprintf("GRANT SELECT, INSERT, DELETE, UPDATE (doc, version, updated_at) ON %s TO ku9_user", t));
		Ku9SpiRun(psprintf("CREATE POLICY owner_insert ON %s FOR INSERT TO ku9_user WITH CHECK (owner = ku9.uid())", t));
		Ku9SpiRun(psprintf("CREATE POLICY owner_update ON %s FOR UPDATE TO ku9_user USING (owner = ku9.uid()) WITH CHECK (owner = ku9.uid())", t));
		Ku9SpiRun(psprintf("CREATE POLICY owner_delete ON %s FOR DELETE TO ku9_user USING (owner = ku9.uid())", t));
	}
	if (strcmp(o.access, "owner") == 0)
		Ku9SpiRun(psprintf("CREATE POLICY owner_select ON %s FOR SELECT TO ku9_user USING (owner = ku9.uid())", t));
	else if (strcmp(o.access, "public_read") == 0)
	{
		Ku9SpiRun(psprintf("GRANT SELECT ON %s TO ku9_anon", t));
		Ku9SpiRun(psprintf("CREATE POLICY public_select ON %s FOR SELECT TO ku9_user, ku9_anon USING (true)", t));
	}

	AtEOXact_GUC(true, guc_level);
	Ku9RestoreUser(&call);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ku9_drop_collection drops a collection and its documents; false when there was none */
Datum
ku9_drop_collection(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	Ku9SavedUser call;
	int			guc_level;
	Datum		arg = CStringGetTextDatum(name);
	bool		existed;

	Ku9RequireService("drop a collection", "Only members of ku9_service manage collections and their indexes.");
	Ku9SpiConnect();
	Ku9BecomeUser(Ku9RelationOwner("ku9", "collections"), &call);
	guc_level = Ku9RestrictSearchPath();
	if (SPI_execute_with_args("DELETE FROM ku9.collections WHERE name = $1", 1,
							  (Oid[]) {TEXTOID}, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not unregister collection");
	existed = SPI_processed > 0;
	if (OidIsValid(get_relname_relid(name, get_namespace_oid("ku9_docs", false))))
	{
		Ku9SpiRun(psprintf("DROP TABLE %s", quote_qualified_identifier("ku9_docs", name)));
		existed = true;
	}
	AtEOXact_GUC(true, guc_level);
	Ku9RestoreUser(&call);
	SPI_finish();
	PG_RETURN_BOOL(existed);
}

/* ------------------------------------------------------------------------
 * Insert
 * ------------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(ku9_insert_one);
PG_FUNCTION_INFO_V1(ku9_insert_many);

static Jsonb *
result_object(const char *key, JsonbValue *value)
{
	JsonbParseState *state = NULL;
	JsonbValue	k;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	(void) pushJsonbValue(&state, WJB_KEY, &k);
	(void) pushJsonbValue(&state, WJB_VALUE, value);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

static void
jsonb_value_of(Jsonb *jb, JsonbValue *v)
{
	Ku9DocRootValue(jb, v);
}

Datum
ku9_insert_one(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *doc = arg_object(fcinfo, 1, "document", true);
	Jsonb	   *id;
	Collection *c;
	Ku9SqlBuilder b;
	JsonbValue	idv;

	doc = with_id(doc, "document", &id);
	Ku9SpiConnect();
	c = open_collection(name, RowExclusiveLock, ACL_INSERT);
	builder_init(&b);
	appendStringInfo(b.sql, "INSERT INTO %s (doc) VALUES (%s) RETURNING _id, owner, version",
					 c->table, Ku9SqlParam(&b, JsonbPGetDatum(doc), "jsonb"));
	if (execute(&b, false) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not insert");
	notify_rows(c, "insert", 1);
	Ku9MetricInc(KU9_M_DOCS_INSERTED, c->name);
	SPI_finish();
	jsonb_value_of(id, &idv);
	PG_RETURN_JSONB_P(result_object("inserted_id", &idv));
}

Datum
ku9_insert_many(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *docs;
	JsonbValue	arr;
	int			n;
	Datum	   *elems;
	JsonbParseState *state = NULL;
	JsonbValue *ids;
	Collection *c;
	Ku9SqlBuilder b;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("documents must not be null"));
	docs = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(docs) || JB_ROOT_IS_SCALAR(docs))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("documents must be a JSON array of objects"));
	Ku9DocRootValue(docs, &arr);
	n = Ku9DocArraySize(&arr);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = Ku9DocArrayElem(&arr, i);
		Jsonb	   *id;
		JsonbValue	idv;

		if (!Ku9DocIsObject(e))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("documents[%d] must be a JSON object", i));
		elems[i] = JsonbPGetDatum(with_id(JsonbValueToJsonb(e), psprintf("documents[%d]", i), &id));
		jsonb_value_of(id, &idv);
		(void) pushJsonbValue(&state, WJB_ELEM, &idv);
	}
	ids = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	if (n > 0)
	{
		Ku9SpiConnect();
		c = open_collection(name, RowExclusiveLock, ACL_INSERT);
		builder_init(&b);
		appendStringInfo(b.sql, "INSERT INTO %s (doc) SELECT unnest(%s) RETURNING _id, owner, version",
						 c->table,
						 Ku9SqlParam(&b, PointerGetDatum(construct_array(elems, n, JSONBOID, -1, false, TYPALIGN_INT)),
									 "jsonb[]"));
		if (execute(&b, false) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert");
		notify_rows(c, "insert", 1);
		Ku9MetricAdd(KU9_M_DOCS_INSERTED, c->name, SPI_processed);
		SPI_finish();
	}
	else
	{
		Ku9SpiConnect();
		(void) open_collection(name, RowExclusiveLock, ACL_INSERT);
		SPI_finish();
	}
	PG_RETURN_JSONB_P(result_object("inserted_ids", ids));
}

/* ------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------
 */

typedef struct SortKey
{
	char	   *path;
	bool		desc;
} SortKey;

typedef struct FindOptions
{
	int			nsort;
	SortKey    *sort;
	int64		limit;			/* 0: none */
	int64		skip;
	Jsonb	   *projection;
	char	   *cursor;
} FindOptions;

static int
sort_direction(const JsonbValue *v, const char *what, const char *path)
{
	if (v->type == jbvNumeric)
	{
		char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));

		if (strcmp(s, "1") == 0)
			return 1;
		if (strcmp(s, "-1") == 0)
			return -1;
	}
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid %s at \"%s\": expected 1 or -1", what, path));
	pg_unreachable();
}

/*
 * parse_keys reads a sort or index specification: an object with one field
 * ({"a": 1}), or an array of one-field objects for several
 * ([{"a": 1}, {"b": -1}]), since a jsonb object does not keep the order of
 * its fields.
 */
static SortKey *
parse_keys(const JsonbValue *spec, const char *what, int *n)
{
	SortKey    *keys;
	List	   *pairs = NIL;
	int			k = 0;

	if (Ku9DocIsObject(spec))
	{
		if (JsonContainerSize(spec->val.binary.data) == 0)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid %s: no keys", what));
		if (JsonContainerSize(spec->val.binary.data) > 1)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid %s: an object of several fields has no order in jsonb", what),
					errhint("Give several keys as an array: [{\"a\": 1}, {\"b\": -1}]."));
		pairs = lappend(pairs, (void *) spec);
	}
	else if (Ku9DocIsArray(spec))
	{
		for (int i = 0; i < Ku9DocArraySize(spec); i++)
		{
			JsonbValue *e = Ku9DocArrayElem(spec, i);

			if (!Ku9DocIsObject(e) || JsonContainerSize(e->val.binary.data) != 1)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid %s: expected objects of one field each, as [{\"a\": 1}, {\"b\": -1}]", what));
			pairs = lappend(pairs, e);
		}
	}
	else
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid %s: expected {\"field\": 1 or -1}", what));
	keys = palloc0(sizeof(SortKey) * Max(list_length(pairs), 1));
	for (int i = 0; i < list_length(pairs); i++)
	{
		JsonbValue *o = list_nth(pairs, i);
		JsonbIterator *it = JsonbIteratorInit(o->val.binary.data);
		JsonbValue	key,
					val;
		JsonbIteratorToken t;
		Ku9DocPath *path;

		while ((t = JsonbIteratorNext(&it, &key, true)) != WJB_KEY)
			Assert(t != WJB_DONE);
		(void) JsonbIteratorNext(&it, &val, true);
		path = Ku9DocParsePath(key.val.string.val, key.val.string.len, what);
		for (int j = 0; j < k; j++)
			if (strcmp(keys[j].path, path->text) == 0)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid %s: \"%s\" appears twice", what, path->text));
		keys[k].path = path->text;
		keys[k].desc = sort_direction(&val, what, path->text) < 0;
		k++;
	}
	*n = k;
	if (k == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid %s: no keys", what));
	return keys;
}

static int64
option_count(const JsonbValue *v, const char *name)
{
	bool		error = false;
	int64		n = 0;

	if (v->type == jbvNumeric &&
		DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(v->val.numeric))) == 0)
	{
		Datum		d;
		char	   *msg;

		if (Ku9TryCall(numeric_int8, NumericGetDatum(v->val.numeric), 0, 0, &d, &msg))
			n = DatumGetInt64(d);
		else
			error = true;
	}
	else
		error = true;
	if (error || n < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid option \"%s\": expected a non-negative whole number", name));
	return n;
}

static void
find_options(Jsonb *options, FindOptions *o, bool page)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken t;

	memset(o, 0, sizeof(FindOptions));
	if (page)
		o->limit = 100;
	if (options == NULL)
		return;
	it = JsonbIteratorInit(&options->root);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (t != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		(void) JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "sort") == 0)
			o->sort = parse_keys(&v, "sort", &o->nsort);
		else if (strcmp(key, "limit") == 0)
			o->limit = option_count(&v, key);
		else if (strcmp(key, "skip") == 0)
			o->skip = option_count(&v, key);
		else if (strcmp(key, "projection") == 0)
		{
			if (!Ku9DocIsObject(&v))
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid option \"projection\": expected an object"));
			o->projection = JsonbValueToJsonb(&v);
		}
		else if (strcmp(key, "cursor") == 0)
		{
			if (v.type == jbvNull)
				continue;
			if (v.type != jbvString)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid option \"cursor\": expected the next_cursor string of find_page"));
			o->cursor = pnstrdup(v.val.string.val, v.val.string.len);
		}
		else
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("unknown option \"%s\" for find", key),
					errhint("The options are sort, limit, skip, projection and cursor."));
	}
}

static char *
sort_key_sql_of(const char *doc, const char *path, bool desc)
{
	return psprintf("ku9_docs.sort_key(%s, %s, %s)", doc, quote_literal_cstr(path), desc ? "true" : "false");
}

static char *
sort_key_sql(const char *path, bool desc)
{
	return sort_key_sql_of("doc", path, desc);
}

/*
 * Ku9IndexCondition adds, for a comparison on a path that a B-tree index of
 * the collection leads with, a range on that index's key.  A document with
 * an array on the path may match through any element, which a single key
 * cannot show: such documents are let through by the second arm, which
 * the index's partial companion (ku9_docs.path_has_array) answers.
 */
bool
Ku9IndexCondition(const Ku9Filter *f, Ku9SqlBuilder *b, const Ku9IndexInfo *indexes)
{
	const Ku9DocPath *path;
	const char *op;
	const JsonbValue *value;
	const Ku9IndexKey *key = NULL;
	StringInfoData enc;
	StringInfoData bound;
	char	   *k;
	bytea	   *v,
			   *bnd;

	if (indexes == NULL || !Ku9FilterRange(f, &path, &op, &value))
		return false;
	for (int i = 0; i < indexes->n && key == NULL; i++)
		if (strcmp(indexes->keys[i].path, path->text) == 0)
			key = &indexes->keys[i];
	if (key == NULL)
		return false;
	initStringInfo(&enc);
	Ku9DocEncodeKey(&enc, value);
	/* the keys of one type all start with its byte: the type's range ends there */
	initStringInfo(&bound);
	appendStringInfoChar(&bound, enc.data[0]);
	if (op[0] == '>')
		bound.data[0]++;
	v = (bytea *) palloc(VARHDRSZ + enc.len);
	SET_VARSIZE(v, VARHDRSZ + enc.len);
	memcpy(VARDATA(v), enc.data, enc.len);
	bnd = (bytea *) palloc(VARHDRSZ + 1);
	SET_VARSIZE(bnd, VARHDRSZ + 1);
	memcpy(VARDATA(bnd), bound.data, 1);
	k = sort_key_sql(path->text, key->desc);
	if (indexes->arm != 0 && strcmp(indexes->arm_path, path->text) == 0)
	{
		if (indexes->arm == 2)
		{
			appendStringInfo(b->sql, " AND ku9_docs.path_has_array(doc, %s)", quote_literal_cstr(path->text));
			return true;
		}
		if (op[0] == '=')
			appendStringInfo(b->sql, " AND %s = %s", k, Ku9SqlParam(b, PointerGetDatum(v), "bytea"));
		else
			appendStringInfo(b->sql, " AND %s %s %s AND %s %s %s", k, op,
							 Ku9SqlParam(b, PointerGetDatum(v), "bytea"), k,
							 op[0] == '>' ? "<" : ">=", Ku9SqlParam(b, PointerGetDatum(bnd), "bytea"));
		appendStringInfo(b->sql, " AND NOT ku9_docs.path_has_array(doc, %s)", quote_literal_cstr(path->text));
		return true;
	}
	if (op[0] == '=')
		appendStringInfo(b->sql, " AND (%s = %s", k, Ku9SqlParam(b, PointerGetDatum(v), "bytea"));
	else
		appendStringInfo(b->sql, " AND (%s %s %s AND %s %s %s", k, op,
						 Ku9SqlParam(b, PointerGetDatum(v), "bytea"), k,
						 op[0] == '>' ? "<" : ">=", Ku9SqlParam(b, PointerGetDatum(bnd), "bytea"));
	appendStringInfo(b->sql, " OR ku9_docs.path_has_array(doc, %s))", quote_literal_cstr(path->text));
	return true;
}

/* the cursor of find_page: the sort keys and _id of the last document */
typedef struct Cursor
{
	int			nkeys;
	bytea	  **keys;
	Jsonb	   *id;
} Cursor;

static uint32
sort_signature(const FindOptions *o)
{
	uint32		h = 0x6b753900;

	for (int i = 0; i < o->nsort; i++)
	{
		h = hash_combine(h, hash_bytes((unsigned char *) o->sort[i].path, strlen(o->sort[i].path)));
		h = hash_combine(h, o->sort[i].desc ? 1 : 2);
	}
	return h;
}

static void
cursor_error(void)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid cursor"),
			errdetail("A cursor is the next_cursor of a find_page call with the same sort."));
}

/* cursor token: base64 of [signature 4][n 2]([len 4][key])*[_id as jsonb text] */
static char *
encode_cursor(const FindOptions *o, Datum *keys, Datum id)
{
	StringInfoData raw;
	uint32		sig = pg_hton32(sort_signature(o));
	uint16		n = pg_hton16((uint16) o->nsort);
	char	   *out;
	int			len;

	initStringInfo(&raw);
	appendBinaryStringInfo(&raw, (char *) &sig, 4);
	appendBinaryStringInfo(&raw, (char *) &n, 2);
	for (int i = 0; i < o->nsort; i++)
	{
		bytea	   *k = DatumGetByteaPP(keys[i]);
		uint32		kl = pg_hton32(VARSIZE_ANY_EXHDR(k));

		appendBinaryStringInfo(&raw, (char *) &kl, 4);
		appendBinaryStringInfo(&raw, VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k));
	}
	appendStringInfoString(&raw, JsonbToCString(NULL, &DatumGetJsonbP(id)->root, 64));
	out = palloc(pg_b64_enc_len(raw.len) + 1);
	len = pg_b64_encode(raw.data, raw.len, out, pg_b64_enc_len(raw.len));
	if (len < 0)
		elog(ERROR, "could not encode a cursor");
	out[len] = '\0';
	return out;
}

static Cursor *
decode_cursor(const FindOptions *o)
{
	int			inlen = strlen(o->cursor);
	char	   *raw = palloc(pg_b64_dec_len(inlen) + 1);
	int			len = pg_b64_decode(o->cursor, inlen, raw, pg_b64_dec_len(inlen));
	Cursor	   *cur = palloc0(sizeof(Cursor));
	uint32		sig;
	uint16		n;
	int			pos = 6;
	Datum		id;
	char	   *msg;

	if (len < 6)
		cursor_error();
	memcpy(&sig, raw, 4);
	memcpy(&n, raw + 4, 2);
	if (pg_ntoh32(sig) != sort_signature(o) || pg_ntoh16(n) != o->nsort)
		cursor_error();
	cur->nkeys = o->nsort;
	cur->keys = palloc(sizeof(bytea *) * Max(o->nsort, 1));
	for (int i = 0; i < o->nsort; i++)
	{
		uint32		kl;

		if (pos + 4 > len)
			cursor_error();
		memcpy(&kl, raw + pos, 4);
		kl = pg_ntoh32(kl);
		pos += 4;
		if (kl > (uint32) (len - pos))
			cursor_error();
		cur->keys[i] = palloc(VARHDRSZ + kl);
		SET_VARSIZE(cur->keys[i], VARHDRSZ + kl);
		memcpy(VARDATA(cur->keys[i]), raw + pos, kl);
		pos += kl;
	}
	raw[len] = '\0';
	if (!Ku9TryCall(jsonb_in, CStringGetDatum(raw + pos), 0, 0, &id, &msg))
		cursor_error();
	cur->id = DatumGetJsonbP(id);
	return cur;
}

/*
 * cursor_condition: the rows after the cursor in the order (keys..., _id),
 * where _id goes the way of the last key.  One direction throughout is a
 * row comparison an index can start from; mixed ones are spelled out.
 */
static void
cursor_condition(Ku9SqlBuilder *b, const FindOptions *o, Cursor *cur)
{
	int			n = o->nsort;
	char	  **exprs = palloc(sizeof(char *) * (n + 1));
	char	  **params = palloc(sizeof(char *) * (n + 1));
	bool	   *desc = palloc(sizeof(bool) * (n + 1));
	bool		uniform = true;

	for (int i = 0; i < n; i++)
	{
		exprs[i] = sort_key_sql(o->sort[i].path, o->sort[i].desc);
		params[i] = Ku9SqlParam(b, PointerGetDatum(cur->keys[i]), "bytea");
		desc[i] = o->sort[i].desc;
		if (desc[i] != desc[0])
			uniform = false;
	}
	exprs[n] = "_id";
	params[n] = Ku9SqlParam(b, JsonbPGetDatum(cur->id), "jsonb");
	desc[n] = n > 0 ? desc[n - 1] : false;
	if (uniform)
	{
		appendStringInfoString(b->sql, " AND (");
		for (int i = 0; i <= n; i++)
			appendStringInfo(b->sql, "%s%s", i ? ", " : "", exprs[i]);
		appendStringInfo(b->sql, ") %s (", desc[0] ? "<" : ">");
		for (int i = 0; i <= n; i++)
			appendStringInfo(b->sql, "%s%s", i ? ", " : "", params[i]);
		appendStringInfoString(b->sql, ")");
		return;
	}
	appendStringInfoString(b->sql, " AND (false");
	for (int i = 0; i <= n; i++)
	{
		appendStringInfoString(b->sql, " OR (true");
		for (int j = 0; j < i; j++)
			appendStringInfo(b->sql, " AND %s = %s", exprs[j], params[j]);
		appendStringInfo(b->sql, " AND %s %s %s)", exprs[i], desc[i] ? "<" : ">", params[i]);
	}
	appendStringInfoString(b->sql, ")");
}

/*
 * where_clause appends " WHERE ..." for filter (parsed: f) to b: index
 * conditions and, unless they are the whole match, ku9_docs.match.
 */
static void
where_clause(Ku9SqlBuilder *b, const Ku9IndexInfo *indexes, Jsonb *filter, Ku9Filter *f)
{
	appendStringInfoString(b->sql, " WHERE true");
	if (filter == NULL)
		return;
	if (!Ku9FilterCompile(f, b, indexes))
		appendStringInfo(b->sql, " AND ku9_docs.match(doc, %s)",
						 Ku9SqlParam(b, JsonbPGetDatum(filter), "jsonb"));
}

static Ku9Filter *
parse_filter(Jsonb *filter)
{
	JsonbValue	fv;

	if (filter == NULL)
		return NULL;
	Ku9DocRootValue(filter, &fv);
	return Ku9FilterParse(&fv);
}

/* where_filter: where_clause for a filter not yet parsed, with the collection's indexes */
static void
where_filter(Ku9SqlBuilder *b, Collection *c, Jsonb *filter)
{
	where_clause(b, &c->indexes, filter, parse_filter(filter));
}

/* init_jsonb_srf makes the tuplestore a SETOF <type> function returns in */
static void
init_jsonb_srf(FunctionCallInfo fcinfo, Oid type)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	TupleDesc	desc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("set-valued function called in context that cannot accept a set"));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTemplateTupleDesc(1);
	TupleDescInitEntry(desc, (AttrNumber) 1, "value", type, -1, 0);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = BlessTupleDesc(desc);
	MemoryContextSwitchTo(old);
}

/*
 * A find on a range of the path it sorts by, with an index on that path
 * (in that direction), runs in two arms merged here: the documents without
 * an array on the path, read in index order from the start of the range
 * (so that LIMIT stops early), and the (usually few) documents with one,
 * which the range cannot bound because MongoDB matches any element.
 */
static bool
split_find(Collection *c, Ku9Filter *f, FindOptions *o)
{
	if (o->nsort == 0 || f == NULL || !Ku9FilterHasRangeOn(f, o->sort[0].path))
		return false;
	for (int i = 0; i < c->indexes.n; i++)
		if (strcmp(c->indexes.keys[i].path, o->sort[0].path) == 0 &&
			c->indexes.keys[i].desc == o->sort[0].desc)
			return true;
	return false;
}

/*
 * build_find writes the statement of a find (arm 0), or of one arm of a
 * split find (1 or 2): column 1 the (projected) document; with keys (always
 * for arms), then the sort keys and _id.  Arms take skip + limit rows.
 */
static void
build_find(Ku9SqlBuilder *b, Collection *c, Jsonb *filter, Ku9Filter *f, Cursor *cur,
		   FindOptions *o, bool keys, int arm)
{
	bool		ordered = o->nsort > 0 || o->cursor != NULL || keys;
	Ku9IndexInfo indexes = c->indexes;
	int64		limit = o->limit;

	builder_init(b);
	if (arm != 0)
	{
		b->generic = (arm == 1);
		keys = true;
		indexes.arm = arm;
		indexes.arm_path = o->sort[0].path;
		if (limit > 0)
			limit = (o->skip > PG_INT64_MAX - limit) ? 0 : limit + o->skip;
	}
	if (o->projection != NULL)
		appendStringInfo(b->sql, "SELECT ku9_docs.project(doc, %s)",
						 Ku9SqlParam(b, JsonbPGetDatum(o->projection), "jsonb"));
	else
		appendStringInfoString(b->sql, "SELECT doc");
	if (keys)
	{
		for (int i = 0; i < o->nsort; i++)
			appendStringInfo(b->sql, ", %s", sort_key_sql(o->sort[i].path, o->sort[i].desc));
		appendStringInfoString(b->sql, ", _id");
	}
	appendStringInfo(b->sql, " FROM %s", c->table);
	where_clause(b, &indexes, filter, f);
	if (cur != NULL)
		cursor_condition(b, o, cur);
	/* the arm of arrays is sorted in find_rows: unordered, it is read from the partial index */
	if (arm == 2)
		return;
	if (ordered)
	{
		appendStringInfoString(b->sql, " ORDER BY ");
		for (int i = 0; i < o->nsort; i++)
			appendStringInfo(b->sql, "%s%s, ", sort_key_sql(o->sort[i].path, o->sort[i].desc),
							 o->sort[i].desc ? " DESC" : "");
		appendStringInfo(b->sql, "_id%s",
						 o->nsort > 0 && o->sort[o->nsort - 1].desc ? " DESC" : "");
	}
	if (limit > 0)
		appendStringInfo(b->sql, " LIMIT %s", Ku9SqlParam(b, Int64GetDatum(limit), "int8"));
	if (o->skip > 0 && arm == 0)
		appendStringInfo(b->sql, " OFFSET %s", Ku9SqlParam(b, Int64GetDatum(o->skip), "int8"));
}

/* a document a find returns, with its sort keys and _id when asked */
typedef struct FoundRow
{
	Datum		doc;
	bool		isnull;
	Datum	   *keys;
	Datum		id;
} FoundRow;

/* fetch_rows copies the rows of the last SPI query into out, as FoundRows */
static List *
fetch_rows(FindOptions *o, bool keys, MemoryContext out)
{
	List	   *rows = NIL;
	MemoryContext old = MemoryContextSwitchTo(out);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		FoundRow   *r = palloc0(sizeof(FoundRow));
		bool		isnull;

		r->doc = SPI_getbinval(t, d, 1, &r->isnull);
		if (!r->isnull)
			r->doc = datumCopy(r->doc, false, -1);
		if (keys)
		{
			r->keys = palloc(sizeof(Datum) * Max(o->nsort, 1));
			for (int k = 0; k < o->nsort; k++)
				r->keys[k] = datumCopy(SPI_getbinval(t, d, 2 + k, &isnull), false, -1);
			r->id = datumCopy(SPI_getbinval(t, d, 2 + o->nsort, &isnull), false, -1);
		}
		rows = lappend(rows, r);
	}
	MemoryContextSwitchTo(old);
	return rows;
}

/* compare_rows orders two rows of a split find as the ORDER BY does */
static int
compare_rows(FindOptions *o, FoundRow *a, FoundRow *b)
{
	int			c;

	for (int i = 0; i < o->nsort; i++)
	{
		bytea	   *ka = DatumGetByteaPP(a->keys[i]);
		bytea	   *kb = DatumGetByteaPP(b->keys[i]);
		int			la = VARSIZE_ANY_EXHDR(ka),
					lb = VARSIZE_ANY_EXHDR(kb);

		c = memcmp(VARDATA_ANY(ka), VARDATA_ANY(kb), Min(la, lb));
		if (c == 0)
			c = (la > lb) - (la < lb);
		if (c != 0)
			return o->sort[i].desc ? -c : c;
	}
	c = compareJsonbContainers(&DatumGetJsonbP(a->id)->root, &DatumGetJsonbP(b->id)->root);
	return o->sort[o->nsort - 1].desc ? -c : c;
}

static FindOptions *sort_options;

static int
compare_list_rows(const ListCell *a, const ListCell *b)
{
	return compare_rows(sort_options, lfirst(a), lfirst(b));
}

/*
 * find_rows runs a find and returns its rows (FoundRow, allocated in out).
 * Caller is connected to SPI.
 */
static List *
find_rows(Collection *c, Jsonb *filter, FindOptions *o, bool keys, MemoryContext out)
{
	Ku9Filter  *f = parse_filter(filter);
	Cursor	   *cur = o->cursor != NULL ? decode_cursor(o) : NULL;
	Ku9SqlBuilder b;
	List	   *arms[2];
	List	   *rows = NIL;
	ListCell   *la,
			   *lb;
	int64		n = 0;

	Ku9MetricInc(KU9_M_DOCS_QUERIES, c->name);
	if (!split_find(c, f, o))
	{
		build_find(&b, c, filter, f, cur, o, keys, 0);
		if (execute(&b, true) != SPI_OK_SELECT)
			elog(ERROR, "could not query collection");
		return fetch_rows(o, keys, out);
	}
	for (int arm = 1; arm <= 2; arm++)
	{
		build_find(&b, c, filter, f, cur, o, true, arm);
		if (execute(&b, true) != SPI_OK_SELECT)
			elog(ERROR, "could not query collection");
		arms[arm - 1] = fetch_rows(o, true, out);
	}
	sort_options = o;
	list_sort(arms[1], compare_list_rows);
	la = list_head(arms[0]);
	lb = list_head(arms[1]);
	while (la != NULL || lb != NULL)
	{
		FoundRow   *next;

		if (lb == NULL || (la != NULL && compare_rows(o, lfirst(la), lfirst(lb)) <= 0))
		{
			next = lfirst(la);
			la = lnext(arms[0], la);
		}
		else
		{
			next = lfirst(lb);
			lb = lnext(arms[1], lb);
		}
		if (n++ < o->skip)
			continue;
		if (o->limit > 0 && list_length(rows) >= o->limit)
			break;
		rows = lappend(rows, next);
	}
	return rows;
}

PG_FUNCTION_INFO_V1(ku9_explain_find);

/*
 * ku9_explain_find returns each statement a find runs and PostgreSQL's
 * plan for it (EXPLAIN, without costs), to see which indexes a query uses.
 */
Datum
ku9_explain_find(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *filter = arg_object(fcinfo, 1, "filter", false);
	FindOptions o;
	Collection *c;
	Ku9Filter  *f;
	Cursor	   *cur;
	bool		split;

	find_options(arg_object(fcinfo, 2, "options", false), &o, false);
	init_jsonb_srf(fcinfo, TEXTOID);
	Ku9SpiConnect();
	c = open_collection(name, AccessShareLock, ACL_SELECT);
	f = parse_filter(filter);
	cur = o.cursor != NULL ? decode_cursor(&o) : NULL;
	split = split_find(c, f, &o);
	for (int arm = split ? 1 : 0; arm <= (split ? 2 : 0); arm++)
	{
		Ku9SqlBuilder b;
		Datum		line;
		bool		isnull = false;
		int			level;

		build_find(&b, c, filter, f, cur, &o, false, arm);
		line = CStringGetTextDatum(b.sql->data);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &line, &isnull);
		level = Ku9RestrictSearchPath();
		if (SPI_execute_with_args(psprintf("EXPLAIN (COSTS OFF) %s", b.sql->data), b.nparams,
								  b.types, b.values, NULL, false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not explain the query");
		AtEOXact_GUC(true, level);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			line = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &line, &isnull);
		}
	}
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ku9_find);
PG_FUNCTION_INFO_V1(ku9_find_one);
PG_FUNCTION_INFO_V1(ku9_find_page);
PG_FUNCTION_INFO_V1(ku9_count_documents);

Datum
ku9_find(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *filter = arg_object(fcinfo, 1, "filter", false);
	FindOptions o;
	Collection *c;
	List	   *rows;
	ListCell   *lc;
	MemoryContext outer = CurrentMemoryContext;

	find_options(arg_object(fcinfo, 2, "options", false), &o, false);
	init_jsonb_srf(fcinfo, JSONBOID);
	Ku9SpiConnect();
	c = open_collection(name, AccessShareLock, ACL_SELECT);
	rows = find_rows(c, filter, &o, false, outer);
	SPI_finish();
	foreach(lc, rows)
	{
		FoundRow   *r = lfirst(lc);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &r->doc, &r->isnull);
	}
	return (Datum) 0;
}

Datum
ku9_find_one(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *filter = arg_object(fcinfo, 1, "filter", false);
	FindOptions o;
	Collection *c;
	List	   *rows;
	MemoryContext outer = CurrentMemoryContext;

	find_options(arg_object(fcinfo, 2, "options", false), &o, false);
	o.limit = 1;
	Ku9SpiConnect();
	c = open_collection(name, AccessShareLock, ACL_SELECT);
	rows = find_rows(c, filter, &o, false, outer);
	SPI_finish();
	if (rows == NIL || ((FoundRow *) linitial(rows))->isnull)
		PG_RETURN_NULL();
	return ((FoundRow *) linitial(rows))->doc;
}

/*
 * ku9_find_page returns {"documents": [...], "next_cursor": text or null}:
 * one page in (sort, _id) order; pass next_cursor as option "cursor" for
 * the next page.  Each page starts from an index position, so deep pages
 * cost what the first does.
 */
Datum
ku9_find_page(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *filter = arg_object(fcinfo, 1, "filter", false);
	FindOptions o;
	Collection *c;
	JsonbParseState *state = NULL;
	JsonbValue	k,
				v;
	char	   *next = NULL;
	List	   *rows;
	ListCell   *lc;
	MemoryContext outer = CurrentMemoryContext;

	find_options(arg_object(fcinfo, 2, "options", false), &o, true);
	if (o.skip > 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("find_page takes a cursor, not skip"));
	Ku9SpiConnect();
	c = open_collection(name, AccessShareLock, ACL_SELECT);
	rows = find_rows(c, filter, &o, true, outer);
	SPI_finish();

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "documents";
	k.val.string.len = 9;
	(void) pushJsonbValue(&state, WJB_KEY, &k);
	(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, rows)
	{
		FoundRow   *r = lfirst(lc);

		if (r->isnull)
			continue;
		Ku9DocRootValue(DatumGetJsonbP(r->doc), &v);
		(void) pushJsonbValue(&state, WJB_ELEM, &v);
	}
	(void) pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	if (o.limit > 0 && list_length(rows) == o.limit)
	{
		FoundRow   *last = llast(rows);

		next = encode_cursor(&o, last->keys, last->id);
	}
	k.val.string.val = "next_cursor";
	k.val.string.len = 11;
	(void) pushJsonbValue(&state, WJB_KEY, &k);
	if (next != NULL)
	{
		v.type = jbvString;
		v.val.string.val = next;
		v.val.string.len = strlen(next);
	}
	else
		v.type = jbvNull;
	(void) pushJsonbValue(&state, WJB_VALUE, &v);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)));
}

Datum
ku9_count_documents(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *filter = arg_object(fcinfo, 1, "filter", false);
	Collection *c;
	Ku9SqlBuilder b;
	bool		isnull;
	int64		n;

	Ku9SpiConnect();
	c = open_collection(name, AccessShareLock, ACL_SELECT);
	Ku9MetricInc(KU9_M_DOCS_QUERIES, c->name);
	builder_init(&b);
	appendStringInfo(b.sql, "SELECT count(*) FROM %s", c->table);
	where_filter(&b, c, filter);
	if (execute(&b, true) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count documents");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(n);
}

/* ------------------------------------------------------------------------
 * Updates and deletes
 * ------------------------------------------------------------------------
 */

typedef struct WriteOptions
{
	bool		upsert;
	bool		has_version;
	int64		version;
} WriteOptions;

static void
write_options(Jsonb *options, WriteOptions *o, const char *func)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken t;

	memset(o, 0, sizeof(WriteOptions));
	if (options == NULL)
		return;
	it = JsonbIteratorInit(&options->root);
	while ((t = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (t != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		(void) JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "upsert") == 0)
		{
			if (v.type != jbvBool)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid option \"upsert\" for %s: expected true or false", func));
			o->upsert = v.val.boolean;
		}
		else if (strcmp(key, "expected_version") == 0)
		{
			o->has_version = true;
			o->version = option_count(&v, key);
		}
		else
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("unknown option \"%s\" for %s", key, func),
					errhint("The options are upsert and expected_version."));
	}
}

static void
count_field(JsonbParseState **state, const char *key, int64 n)
{
	JsonbValue	k,
				v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	(void) pushJsonbValue(state, WJB_KEY, &k);
	(void) pushJsonbValue(state, WJB_VALUE, &v);
}

/* seed_set collects an upsert's {"$set": {path: value}} from the filter's equalities */
typedef struct Seed
{
	JsonbParseState *state;
	JsonbValue *id;
	int			n;
} Seed;

static void
seed_field(const Ku9DocPath *path, const JsonbValue *value, void *arg)
{
	Seed	   *s = arg;
	JsonbValue	k;

	if (path->n == 1 && strcmp(path->names[0], "_id") == 0)
	{
		s->id = (JsonbValue *) value;
		return;
	}
	k.type = jbvString;
	k.val.string.val = path->text;
	k.val.string.len = strlen(path->text);
	(void) pushJsonbValue(&s->state, WJB_KEY, &k);
	(void) pushJsonbValue(&s->state, WJB_VALUE, (JsonbValue *) value);
	s->n++;
}

/*
 * upsert_document builds the document an upsert inserts: the filter's
 * equality fields, then the update applied as an insert ($setOnInsert
 * too), or the replacement, with the filter's _id unless it has one.
 */
static Jsonb *
upsert_document(Jsonb *filter, Jsonb *update, bool replace)
{
	Seed		s = {NULL, NULL, 0};
	JsonbValue	fv,
				uv,
				k;
	Ku9Filter  *f;
	Jsonb	   *doc;
	JsonbParseState *state = NULL;
	bool		changed;

	if (filter != NULL)
	{
		Ku9DocRootValue(filter, &fv);
		f = Ku9FilterParse(&fv);
		(void) pushJsonbValue(&s.state, WJB_BEGIN_OBJECT, NULL);
		Ku9FilterSeed(f, seed_field, &s);
	}
	/* the base: {} or {"_id": <from the filter>} */
	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (s.id != NULL)
	{
		k.type = jbvString;
		k.val.string.val = "_id";
		k.val.string.len = 3;
		(void) pushJsonbValue(&state, WJB_KEY, &k);
		(void) pushJsonbValue(&state, WJB_VALUE, s.id);
	}
	doc = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
	if (replace)
	{
		JsonbValue	root;

		Ku9DocRootValue(update, &root);
		if (s.id != NULL && Ku9DocField(&root, "_id", 3) == NULL)
			return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(update),
													  JsonbPGetDatum(doc)));
		return update;
	}
	if (s.n > 0)
	{
		JsonbValue *fields = pushJsonbValue(&s.state, WJB_END_OBJECT, NULL);
		JsonbParseState *st = NULL;
		JsonbValue	setv;

		k.type = jbvString;
		k.val.string.val = "$set";
		k.val.string.len = 4;
		(void) pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		(void) pushJsonbValue(&st, WJB_KEY, &k);
		Ku9DocRootValue(JsonbValueToJsonb(fields), &setv);
		(void) pushJsonbValue(&st, WJB_VALUE, &setv);
		Ku9DocRootValue(JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)), &uv);
		doc = Ku9UpdateApply(Ku9UpdateParse(&uv), doc, true, &changed);
	}
	Ku9DocRootValue(update, &uv);
	return Ku9UpdateApply(Ku9UpdateParse(&uv), doc, true, &changed);
}

/*
 * version_conflict errors (40001) when a document matching filter exists
 * but not with the expected version.
 */
static void
check_version_conflict(Collection *c, Jsonb *filter, WriteOptions *o)
{
	Ku9SqlBuilder b;

	builder_init(&b);
	appendStringInfo(b.sql, "SELECT version FROM %s", c->table);
	where_filter(&b, c, filter);
	appendStringInfoString(b.sql, " LIMIT 1 FOR UPDATE");
	if (execute(&b, false) != SPI_OK_SELECT)
		elog(ERROR, "could not read versions");
	if (SPI_processed > 0)
	{
		bool		isnull;
		int64		found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		ereport(ERROR,
				errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				errmsg("version conflict: the document changed"),
				errdetail("Expected version " INT64_FORMAT ", found " INT64_FORMAT ".",
						  o->version, found),
				errhint("Read the document again and retry."));
	}
}

/*
 * write_documents runs update_one/update_many/replace_one: the new
 * documents are computed from the matching rows, locked FOR UPDATE (so a
 * concurrent change is seen and the update applies to the latest version),
 * and only the ones that change are written, with version + 1.
 */
static Datum
write_documents(FunctionCallInfo fcinfo, const char *func, bool many, bool replace)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *filter = arg_object(fcinfo, 1, "filter", false);
	Jsonb	   *update = arg_object(fcinfo, 2, replace ? "replacement" : "update", true);
	WriteOptions o;
	Collection *c;
	Ku9SqlBuilder b;
	int64		matched = 0,
				modified = 0;
	JsonbParseState *state = NULL;
	JsonbValue	uv;
	JsonbValue	k;
	JsonbValue *upserted = NULL;
	char	   *up;

	MemoryContext outer = CurrentMemoryContext;

	write_options(arg_object(fcinfo, 3, "options", false), &o, func);
	Ku9DocRootValue(update, &uv);
	if (replace)
	{
		JsonbIterator *it = JsonbIteratorInit(&update->root);
		JsonbValue	x;
		JsonbIteratorToken t;

		while ((t = JsonbIteratorNext(&it, &x, true)) != WJB_DONE)
			if (t == WJB_KEY && x.val.string.len > 0 && x.val.string.val[0] == '$')
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("a replacement document may not contain update operators"),
						errhint("Use update_one or update_many for \"%s\".",
								pnstrdup(x.val.string.val, x.val.string.len)));
		Ku9DocCheckStored(update, "replacement");
	}
	else
		(void) Ku9UpdateParse(&uv);	/* errors before anything is read */

	Ku9SpiConnect();
	c = open_collection(name, RowExclusiveLock, ACL_UPDATE);
	builder_init(&b);
	up = Ku9SqlParam(&b, JsonbPGetDatum(update), "jsonb");
	appendStringInfo(b.sql, "WITH m AS (SELECT _id AS row, doc AS old, %s(doc, %s) AS new FROM %s",
					 replace ? "ku9_docs.replace_doc" : "ku9_docs.apply_update", up, c->table);
	where_filter(&b, c, filter);
	if (o.has_version)
		appendStringInfo(b.sql, " AND version = %s", Ku9SqlParam(&b, Int64GetDatum(o.version), "int8"));
	appendStringInfo(b.sql, "%s FOR UPDATE), "
					 "u AS (UPDATE %s t SET doc = m.new, version = t.version + 1, updated_at = now() "
					 "FROM m WHERE t._id = m.row AND ku9_docs.changed(m.old, m.new) "
					 "RETURNING t._id, t.owner, t.version) "
					 "SELECT (SELECT count(*) FROM m), u._id, u.owner, u.version "
					 "FROM (SELECT 1) one LEFT JOIN u ON true",
					 many ? "" : " LIMIT 1", c->table);
	if (execute(&b, false) != SPI_OK_SELECT)
		elog(ERROR, "could not update documents");
	if (SPI_processed > 0)
	{
		bool		isnull;

		matched = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			(void) SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
			if (!isnull)
				modified++;
		}
		notify_rows(c, replace ? "replace" : "update", 2);
		Ku9MetricAdd(KU9_M_DOCS_UPDATED, c->name, modified);
	}
	if (matched == 0 && o.has_version)
		check_version_conflict(c, filter, &o);
	if (matched == 0 && o.upsert)
	{
		Jsonb	   *doc = upsert_document(filter, update, replace);
		Jsonb	   *id;
		Ku9SqlBuilder ib;

		doc = with_id(doc, "upserted document", &id);
		builder_init(&ib);
		appendStringInfo(ib.sql, "INSERT INTO %s (doc) VALUES (%s) RETURNING _id, owner, version",
						 c->table, Ku9SqlParam(&ib, JsonbPGetDatum(doc), "jsonb"));
		if (execute(&ib, false) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not insert");
		notify_rows(c, "insert", 1);
		Ku9MetricInc(KU9_M_DOCS_INSERTED, c->name);
		/* the result outlives SPI's memory */
		{
			Jsonb	   *copy = MemoryContextAlloc(outer, VARSIZE(id));

			memcpy(copy, id, VARSIZE(id));
			upserted = MemoryContextAlloc(outer, sizeof(JsonbValue));
			Ku9DocRootValue(copy, upserted);
		}
	}
	SPI_finish();

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	count_field(&state, "matched_count", matched);
	count_field(&state, "modified_count", modified);
	k.type = jbvString;
	k.val.string.val = "upserted_id";
	k.val.string.len = 11;
	(void) pushJsonbValue(&state, WJB_KEY, &k);
	if (upserted == NULL)
	{
		JsonbValue	null;

		null.type = jbvNull;
		(void) pushJsonbValue(&state, WJB_VALUE, &null);
	}
	else
		(void) pushJsonbValue(&state, WJB_VALUE, upserted);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)));
}

PG_FUNCTION_INFO_V1(ku9_update_one);
PG_FUNCTION_INFO_V1(ku9_update_many);
PG_FUNCTION_INFO_V1(ku9_replace_one);
PG_FUNCTION_INFO_V1(ku9_delete_one);
PG_FUNCTION_INFO_V1(ku9_delete_many);

Datum
ku9_update_one(PG_FUNCTION_ARGS)
{
	return write_documents(fcinfo, "update_one", false, false);
}

Datum
ku9_update_many(PG_FUNCTION_ARGS)
{
	return write_documents(fcinfo, "update_many", true, false);
}

Datum
ku9_replace_one(PG_FUNCTION_ARGS)
{
	return write_documents(fcinfo, "replace_one", false, true);
}

static Datum
delete_documents(FunctionCallInfo fcinfo, bool many)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *filter = arg_object(fcinfo, 1, "filter", false);
	Collection *c;
	Ku9SqlBuilder b;
	int64		n;
	JsonbParseState *state = NULL;

	Ku9SpiConnect();
	c = open_collection(name, RowExclusiveLock, ACL_DELETE);
	builder_init(&b);
	if (many)
	{
		appendStringInfo(b.sql, "DELETE FROM %s", c->table);
		where_filter(&b, c, filter);
	}
	else
	{
		appendStringInfo(b.sql, "WITH m AS (SELECT _id AS row FROM %s", c->table);
		where_filter(&b, c, filter);
		appendStringInfo(b.sql, " LIMIT 1 FOR UPDATE) DELETE FROM %s t USING m WHERE t._id = m.row",
						 c->table);
	}
	appendStringInfoString(b.sql, " RETURNING _id, owner, version");
	if (execute(&b, false) != SPI_OK_DELETE_RETURNING)
		elog(ERROR, "could not delete documents");
	n = SPI_processed;
	notify_rows(c, "delete", 1);
	Ku9MetricAdd(KU9_M_DOCS_DELETED, c->name, n);
	SPI_finish();
	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	count_field(&state, "deleted_count", n);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)));
}

Datum
ku9_delete_one(PG_FUNCTION_ARGS)
{
	return delete_documents(fcinfo, false);
}

Datum
ku9_delete_many(PG_FUNCTION_ARGS)
{
	return delete_documents(fcinfo, true);
}

/* ------------------------------------------------------------------------
 * Indexes
 * ------------------------------------------------------------------------
 */

/* the indexes create_collection makes: $_id (the key), $owner, $gin */
static bool
reserved_index_name(const char *iname)
{
	return strcmp(iname, "_id") == 0 || strcmp(iname, "owner") == 0 || strcmp(iname, "gin") == 0;
}

PG_FUNCTION_INFO_V1(ku9_create_index);
PG_FUNCTION_INFO_V1(ku9_drop_index);

/*
 * ku9_create_index makes a B-tree index on the MongoDB-ordered keys of the
 * given paths (then _id, unless unique), and a partial index of the
 * documents with an array on the first path, which range conditions need
 * (Ku9IndexCondition).  Returns the index name: options.name, or MongoDB's
 * style "a_1_b_-1".
 */
Datum
ku9_create_index(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	Jsonb	   *keys;
	Jsonb	   *options = arg_object(fcinfo, 2, "options", false);
	JsonbValue	kv;
	SortKey    *sk;
	int			n;
	bool		unique = false;
	char	   *iname = NULL;
	StringInfoData auto_name,
				cols;
	Ku9SavedUser call;
	int			guc_level;
	char	   *t;
	char	   *full;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("keys must not be null"));
	keys = PG_GETARG_JSONB_P(1);
	Ku9DocRootValue(keys, &kv);
	sk = parse_keys(&kv, "index keys", &n);
	if (options != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(&options->root);
		JsonbValue	k,
					v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			char	   *key;

			if (tok != WJB_KEY)
				continue;
			key = pnstrdup(k.val.string.val, k.val.string.len);
			(void) JsonbIteratorNext(&it, &v, true);
			if (strcmp(key, "unique") == 0 && v.type == jbvBool)
				unique = v.val.boolean;
			else if (strcmp(key, "name") == 0 && v.type == jbvString)
				iname = pnstrdup(v.val.string.val, v.val.string.len);
			else
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid option \"%s\" for create_index", key),
						errhint("The options are unique (true or false) and name (a string)."));
		}
	}
	initStringInfo(&auto_name);
	initStringInfo(&cols);
	for (int i = 0; i < n; i++)
	{
		appendStringInfo(&auto_name, "%s%s_%d", i ? "_" : "", sk[i].path, sk[i].desc ? -1 : 1);
		appendStringInfo(&cols, "%s%s%s", i ? ", " : "", sort_key_sql(sk[i].path, sk[i].desc),
						 sk[i].desc ? " DESC" : "");
	}
	if (!unique)
		appendStringInfo(&cols, ", _id%s", sk[n - 1].desc ? " DESC" : "");
	if (iname == NULL)
		iname = auto_name.data;
	if (strlen(iname) == 0 || strchr(iname, '$') != NULL || reserved_index_name(iname))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid index name \"%s\"", iname),
				errdetail("Index names may not contain \"$\"; _id, owner and gin are the built-in indexes."));
	full = psprintf("%s$%s", name, iname);
	if (strlen(full) >= NAMEDATALEN - 4)
		ereport(ERROR,
				errcode(ERRCODE_NAME_TOO_LONG),
				errmsg("index name \"%s\" is too long", iname),
				errhint("Give a shorter one with the option name."));

	Ku9RequireService("create an index", "Only members of ku9_service manage collections and their indexes.");
	Ku9SpiConnect();
	(void) open_collection(name, AccessShareLock, ACL_SELECT);
	t = quote_qualified_identifier("ku9_docs", name);
	Ku9BecomeUser(Ku9RelationOwner("ku9", "collections"), &call);
	guc_level = Ku9RestrictSearchPath();
	if (OidIsValid(get_relname_relid(full, get_namespace_oid("ku9_docs", false))))
		ereport(ERROR,
				errcode(ERRCODE_DUPLICATE_OBJECT),
				errmsg("index \"%s\" of collection \"%s\" already exists", iname, name));
	Ku9SpiRun(psprintf("CREATE %sINDEX %s ON %s (%s)", unique ? "UNIQUE " : "",
					 quote_identifier(full), t, cols.data));
	Ku9SpiRun(psprintf("CREATE INDEX %s ON %s (_id) WHERE ku9_docs.path_has_array(doc, %s)",
					 quote_identifier(psprintf("%s$%s$arrays", name, iname)), t,
					 quote_literal_cstr(sk[0].path)));
	AtEOXact_GUC(true, guc_level);
	Ku9RestoreUser(&call);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(iname));
}

/* ku9_drop_index drops an index made by create_index; false when there was none */
Datum
ku9_drop_index(PG_FUNCTION_ARGS)
{
	char	   *name = arg_name(fcinfo, 0);
	char	   *iname;
	Ku9SavedUser call;
	int			guc_level;
	bool		existed;
	Oid			nsp;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("index name must not be null"));
	iname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strchr(iname, '$') != NULL || strlen(iname) == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid index name \"%s\"", iname));
	if (reserved_index_name(iname))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("index \"%s\" is part of every collection and cannot be dropped", iname));
	Ku9RequireService("drop an index", "Only members of ku9_service manage collections and their indexes.");
	Ku9SpiConnect();
	(void) open_collection(name, AccessShareLock, ACL_SELECT);
	nsp = get_namespace_oid("ku9_docs", false);
	existed = OidIsValid(get_relname_relid(psprintf("%s$%s", name, iname), nsp));
	Ku9BecomeUser(Ku9RelationOwner("ku9", "collections"), &call);
	guc_level = Ku9RestrictSearchPath();
	if (existed)
	{
		Ku9SpiRun(psprintf("DROP INDEX %s",
						 quote_qualified_identifier("ku9_docs", psprintf("%s$%s", name, iname))));
		Ku9SpiRun(psprintf("DROP INDEX IF EXISTS %s",
						 quote_qualified_identifier("ku9_docs", psprintf("%s$%s$arrays", name, iname))));
	}
	AtEOXact_GUC(true, guc_level);
	Ku9RestoreUser(&call);
	SPI_finish();
	PG_RETURN_BOOL(existed);
}

/* ------------------------------------------------------------------------
 * Functions the generated SQL calls
 * ------------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(ku9_doc_match);
PG_FUNCTION_INFO_V1(ku9_doc_sort_key);
PG_FUNCTION_INFO_V1(ku9_doc_path_has_array);
PG_FUNCTION_INFO_V1(ku9_doc_replace);
PG_FUNCTION_INFO_V1(ku9_doc_changed);

/*
 * ku9_docs.changed(old jsonb, new jsonb): whether an update changed the
 * document as MongoDB counts it (Ku9DocIdentical): 1.0 for 1 is a change
 * (its $type is double), which jsonb's = would not see.
 */
Datum
ku9_doc_changed(PG_FUNCTION_ARGS)
{
	Jsonb	   *a = PG_GETARG_JSONB_P(0);
	Jsonb	   *b = PG_GETARG_JSONB_P(1);
	JsonbValue	va,
				vb;

	if (VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0)
		PG_RETURN_BOOL(false);
	Ku9DocRootValue(a, &va);
	Ku9DocRootValue(b, &vb);
	PG_RETURN_BOOL(!Ku9DocIdentical(&va, &vb));
}

/* a parsed argument kept for the rest of the statement, keyed by its bytes */
typedef struct ArgCache
{
	struct varlena    *arg;
	void	   *parsed;
} ArgCache;

static ArgCache *
arg_cache(FunctionCallInfo fcinfo, struct varlena *arg, bool *hit)
{
	ArgCache   *ac = fcinfo->flinfo->fn_extra;

	if (ac != NULL && ac->parsed != NULL && VARSIZE_ANY(ac->arg) == VARSIZE_ANY(arg) &&
		memcmp(ac->arg, arg, VARSIZE_ANY(arg)) == 0)
	{
		*hit = true;
		return ac;
	}
	if (ac == NULL)
		ac = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ArgCache));
	else if (ac->arg != NULL)
		pfree(ac->arg);
	/* parsed is set by the caller once the new argument parsed */
	ac->parsed = NULL;
	ac->arg = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARSIZE_ANY(arg));
	memcpy(ac->arg, arg, VARSIZE_ANY(arg));
	fcinfo->flinfo->fn_extra = ac;
	*hit = false;
	return ac;
}

/* ku9_docs.match(doc jsonb, filter jsonb): MongoDB's match of one document */
Datum
ku9_doc_match(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	Jsonb	   *filter = PG_GETARG_JSONB_P(1);
	bool		hit;
	ArgCache   *ac = arg_cache(fcinfo, (struct varlena *) filter, &hit);
	JsonbValue	root;

	if (!hit)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		JsonbValue	fv;

		/* parse the cached copy, so the tree's values stay valid */
		Ku9DocRootValue((Jsonb *) ac->arg, &fv);
		ac->parsed = Ku9FilterParse(&fv);
		MemoryContextSwitchTo(old);
	}
	Ku9DocRootValue(doc, &root);
	PG_RETURN_BOOL(Ku9FilterMatch(ac->parsed, &root));
}

typedef struct SortKeyState
{
	bool		desc;
	bool		have;
	StringInfoData best;
	StringInfoData cand;
} SortKeyState;

static void
sort_candidate(SortKeyState *s, const JsonbValue *v, bool empty_array)
{
	int			c;

	resetStringInfo(&s->cand);
	if (empty_array)
		appendStringInfoChar(&s->cand, 0x08);	/* [] sorts before null */
	else
		Ku9DocEncodeKey(&s->cand, v);
	if (s->have)
	{
		c = memcmp(s->cand.data, s->best.data, Min(s->cand.len, s->best.len));
		if (c == 0)
			c = (s->cand.len > s->best.len) - (s->cand.len < s->best.len);
		if (s->desc ? c <= 0 : c >= 0)
			return;
	}
	resetStringInfo(&s->best);
	appendBinaryStringInfo(&s->best, s->cand.data, s->cand.len);
	s->have = true;
}

static bool
visit_sort(const JsonbValue *v, void *arg)
{
	SortKeyState *s = arg;

	if (Ku9DocIsArray(v))
	{
		int			n = Ku9DocArraySize(v);

		if (n == 0)
			sort_candidate(s, NULL, true);
		for (int i = 0; i < n; i++)
			sort_candidate(s, Ku9DocArrayElem(v, i), false);
	}
	else
		sort_candidate(s, v, false);
	return false;
}

static Ku9DocPath *
cached_path(FunctionCallInfo fcinfo, text *path)
{
	bool		hit;
	ArgCache   *ac = arg_cache(fcinfo, (struct varlena *) path, &hit);

	if (!hit)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		/* NULL when invalid: these functions are leakproof and may not raise */
		ac->parsed = Ku9DocParsePathOrNull(VARDATA_ANY(path), VARSIZE_ANY_EXHDR(path));
		MemoryContextSwitchTo(old);
	}
	return ac->parsed;
}

/*
 * ku9_docs.sort_key(doc jsonb, path text, desc boolean) → bytea: the key that
 * sorts doc by path in MongoDB's order: of the values the path reaches (an
 * array's elements standing for it), the smallest, or with desc the
 * largest; missing sorts as null and an empty array before null.
 */
Datum
ku9_doc_sort_key(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	Ku9DocPath *path = cached_path(fcinfo, PG_GETARG_TEXT_PP(1));
	SortKeyState s;
	JsonbValue	root;
	bytea	   *result;

	s.desc = PG_GETARG_BOOL(2);
	s.have = false;
	initStringInfo(&s.best);
	initStringInfo(&s.cand);
	Ku9DocRootValue(doc, &root);
	if (path != NULL)
		(void) Ku9DocWalkSortPath(&root, path, visit_sort, &s);
	if (!s.have)
		sort_candidate(&s, NULL, false);
	result = palloc(VARHDRSZ + s.best.len);
	SET_VARSIZE(result, VARHDRSZ + s.best.len);
	memcpy(VARDATA(result), s.best.data, s.best.len);
	PG_RETURN_BYTEA_P(result);
}

/* ku9_docs.path_has_array(doc jsonb, path text) → whether an array lies on path */
Datum
ku9_doc_path_has_array(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	Ku9DocPath *path = cached_path(fcinfo, PG_GETARG_TEXT_PP(1));
	JsonbValue	root;

	Ku9DocRootValue(doc, &root);
	PG_RETURN_BOOL(path != NULL && Ku9DocPathHasArray(&root, path));
}

/*
 * ku9_docs.replace_doc(old jsonb, replacement jsonb) → the replacement with old's
 * _id; a replacement whose _id differs is an error (22023).
 */
Datum
ku9_doc_replace(PG_FUNCTION_ARGS)
{
	Jsonb	   *old = PG_GETARG_JSONB_P(0);
	Jsonb	   *rep = PG_GETARG_JSONB_P(1);
	JsonbValue	o,
				r;
	JsonbValue *oid,
			   *rid;
	JsonbParseState *state = NULL;
	JsonbValue	k;

	Ku9DocRootValue(old, &o);
	Ku9DocRootValue(rep, &r);
	oid = Ku9DocField(&o, "_id", 3);
	rid = Ku9DocField(&r, "_id", 3);
	if (rid != NULL)
	{
		if (oid == NULL || Ku9DocCompare(oid, rid) != 0 || oid->type != rid->type)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("_id is immutable"),
					errdetail("The replacement's _id %s differs from the document's %s.",
							  Ku9DocValueText(rid), Ku9DocValueText(oid)));
		PG_RETURN_JSONB_P(rep);
	}
	if (oid == NULL)
		PG_RETURN_JSONB_P(rep);
	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "_id";
	k.val.string.len = 3;
	(void) pushJsonbValue(&state, WJB_KEY, &k);
	(void) pushJsonbValue(&state, WJB_VALUE, oid);
	PG_RETURN_DATUM(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(rep),
										JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)))));
}
