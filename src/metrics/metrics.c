/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  Shared-memory metrics registry and its Prometheus exposition.
 *
 * Metric families are declared at compile time in metric_list.h.  A series
 * is one family plus its label values: the database (for DATABASE-scoped
 * families) and the one caller-supplied label (e.g. a queue name).  Series
 * live in a fixed-size shared hash table created at server start, sized by
 * ku9.metrics_max_series; they are never removed before a restart, so a
 * pointer to one stays valid for the life of the process.
 *
 * Locking protocol: the named LWLock KU9_LWLOCK_METRICS guards the hash
 * table's structure only.  Finding a series takes it shared, creating one
 * takes it exclusive; the exposition takes it shared while it copies the
 * values.  Values themselves are 64-bit atomics and are updated without any
 * lock.  Each backend remembers the series it has touched (a local hash in
 * TopMemoryContext), so after the first update of a series a backend never
 * takes the lock for it again: the hot path is one atomic add.
 *
 * Value layout in a series (v[]):
 *	counter		v[0] = count
 *	gauge		v[0] = the bits of a double
 *	histogram	v[i] = observations in (le[i-1], le[i]] for i < nbuckets,
 *				v[nbuckets] = observations above the last bound,
 *				v[nbuckets + 1] = the bits of the double sum
 *
 * When the table is full, updates to new series are dropped and counted in
 * ku9_metrics_dropped_total; series made at start-up are always present.
 *
 * Without shared_preload_libraries there is no shared state: every update
 * is a no-op and the SQL functions say so with a NOTICE.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/metrics/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "commands/dbcommands.h"
#include "common/shortest_dec.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "compat.h"
#include "ku9.h"
#include "metrics/metrics.h"

typedef enum Ku9MetricType
{
	COUNTER,
	GAUGE,
	HISTOGRAM
} Ku9MetricType;

typedef enum Ku9MetricScope
{
	CLUSTER,
	DATABASE
} Ku9MetricScope;

typedef struct Ku9MetricDef
{
	const char *name;
	Ku9MetricType type;
	Ku9MetricScope scope;
	const char *label;
	const double *buckets;
	int			nbuckets;
	const char *help;
} Ku9MetricDef;

/* bucket bounds used by the histograms in metric_list.h */
static const double ku9_buckets_bytes[] = {
	64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384
};
static const double ku9_buckets_seconds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5
};

#define KU9_BUCKETS(arr) (arr), lengthof(arr)
#define KU9_NO_BUCKETS NULL, 0

static const Ku9MetricDef metric_defs[KU9_METRIC_COUNT] = {
#define KU9_METRIC(id, name, type, scope, label, buckets, help) \
	{name, type, scope, label, buckets, help},
#include "metrics/metric_list.h"
#undef KU9_METRIC
};

typedef struct Ku9MetricKey
{
	int32		metric;
	Oid			dbid;
	char		label[KU9_METRICS_LABEL_LEN];
} Ku9MetricKey;

typedef struct Ku9MetricSeries
{
	Ku9MetricKey key;			/* hash key; must be first */
	pg_atomic_uint64 v[KU9_METRICS_MAX_BUCKETS + 2];
} Ku9MetricSeries;

typedef struct Ku9MetricsState
{
	LWLock	   *lock;
	int			max_entries;
	Ku9MetricSeries *series_gauge;	/* ku9_metrics_series, set under lock */
} Ku9MetricsState;

/* a backend's memo of the series it has touched */
typedef struct Ku9MetricLocal
{
	Ku9MetricKey key;
	Ku9MetricSeries *series;
} Ku9MetricLocal;

/* one exported sample, as shown by ku9.metrics() and ku9.stats */
typedef struct Ku9Sample
{
	const Ku9MetricDef *def;
	const char *suffix;			/* "", "_bucket", "_sum" or "_count" */
	const char *dbname;			/* NULL for CLUSTER families */
	const char *label;			/* NULL when the family has no label */
	const char *le;				/* bucket bound, or NULL */
	bool		is_int;
	uint64		ival;
	double		dval;
} Ku9Sample;

static inline uint64 double_bits(double d);
static inline double bits_double(uint64 bits);

static Ku9MetricsState *metrics_state = NULL;
static HTAB *metrics_hash = NULL;
static HTAB *local_hash = NULL;
static Ku9MetricSeries *unlabeled_cache[KU9_METRIC_COUNT];
static bool warned_full = false;

PG_FUNCTION_INFO_V1(ku9_metrics);
PG_FUNCTION_INFO_V1(ku9_metric_samples);

StaticAssertDecl(lengthof(ku9_buckets_bytes) <= KU9_METRICS_MAX_BUCKETS,
				 "too many histogram buckets");
StaticAssertDecl(lengthof(ku9_buckets_seconds) <= KU9_METRICS_MAX_BUCKETS,
				 "too many histogram buckets");

/*
 * Ku9MetricsShmemSize returns the shared memory the registry needs.
 */
Size
Ku9MetricsShmemSize(void)
{
	Size		size;

	size = MAXALIGN(sizeof(Ku9MetricsState));
	size = add_size(size, hash_estimate_size(ku9_metrics_max_series + KU9_METRIC_COUNT,
											 sizeof(Ku9MetricSeries)));
	return size;
}

/*
 * init_series_values zeroes a new series' atomics.
 */
static void
init_series_values(Ku9MetricSeries *series)
{
	for (int i = 0; i < (int) lengthof(series->v); i++)
		pg_atomic_init_u64(&series->v[i], 0);
}

/*
 * make_key fills a zero-padded hash key, cutting an over-long label at a
 * character boundary.
 */
static void
make_key(Ku9MetricKey *key, Ku9MetricId id, const char *label)
{
	const Ku9MetricDef *def = &metric_defs[id];

	memset(key, 0, sizeof(*key));
	key->metric = id;
	key->dbid = (def->scope == DATABASE) ? MyDatabaseId : InvalidOid;
	if (label != NULL)
	{
		int			len = strlen(label);

		len = pg_mbcliplen(label, len, KU9_METRICS_LABEL_LEN - 1);
		memcpy(key->label, label, len);
	}
}

/*
 * Ku9MetricsShmemInit attaches to (and on first call creates) the registry.
 * Called from the shmem_startup_hook with no locks held; takes
 * AddinShmemInitLock.
 */
void
Ku9MetricsShmemInit(void)
{
	HASHCTL		info;
	bool		found;
	int			max_entries = ku9_metrics_max_series + KU9_METRIC_COUNT;
	Ku9MetricKey key0;
	Ku9MetricSeries *series0;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	metrics_state = ShmemInitStruct("ku9 metrics", sizeof(Ku9MetricsState), &found);

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(Ku9MetricKey);
	info.entrysize = sizeof(Ku9MetricSeries);
	metrics_hash = ShmemInitHash("ku9 metrics series", max_entries, max_entries,
								 &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);

	if (!found)
	{
		metrics_state->lock = &(GetNamedLWLockTranche("ku9"))[KU9_LWLOCK_METRICS].lock;
		metrics_state->max_entries = max_entries;

		/* series that must exist even when the table fills up */
		for (int id = 0; id < KU9_METRIC_COUNT; id++)
		{
			const Ku9MetricDef *def = &metric_defs[id];
			const char *label = NULL;
			Ku9MetricKey key;
			Ku9MetricSeries *series;

			if (def->scope != CLUSTER)
				continue;
			if (id == KU9_M_BUILD_INFO)
				label = KU9_VERSION;
			else if (def->label != NULL)
				continue;

			make_key(&key, id, label);
			series = hash_search(metrics_hash, &key, HASH_ENTER, &found);
			init_series_values(series);
			if (id == KU9_M_BUILD_INFO)
				pg_atomic_write_u64(&series->v[0], double_bits(1.0));
			else if (id == KU9_M_METRICS_SERIES_MAX)
				pg_atomic_write_u64(&series->v[0], double_bits((double) max_entries));
		}

		/* what the start-up series above occupy */
		make_key(&key0, KU9_M_METRICS_SERIES, NULL);
		series0 = hash_search(metrics_hash, &key0, HASH_FIND, NULL);
		metrics_state->series_gauge = series0;
		pg_atomic_write_u64(&series0->v[0],
							double_bits((double) hash_get_num_entries(metrics_hash)));
	}

	LWLockRelease(AddinShmemInitLock);
}

/*
 * get_series returns the series for a family and label, creating it when
 * new; NULL when ku9 is not preloaded or the table is full.  Caller holds
 * no ku9 lock.
 */
static Ku9MetricSeries *
get_series(Ku9MetricId id, const char *label)
{
	const Ku9MetricDef *def;
	Ku9MetricKey key;
	Ku9MetricLocal *local;
	Ku9MetricSeries *series;
	bool		found;
	bool		cacheable;

	if (metrics_state == NULL)
		return NULL;

	Assert(id >= 0 && id < KU9_METRIC_COUNT);
	def = &metric_defs[id];
	Assert((def->label == NULL) == (label == NULL));

	/* a DATABASE series is only known once the backend has connected */
	cacheable = (def->scope == CLUSTER || OidIsValid(MyDatabaseId));

	if (label == NULL && cacheable && unlabeled_cache[id] != NULL)
		return unlabeled_cache[id];

	make_key(&key, id, label);

	if (local_hash == NULL)
	{
		HASHCTL		info;

		memset(&info, 0, sizeof(info));
		info.keysize = sizeof(Ku9MetricKey);
		info.entrysize = sizeof(Ku9MetricLocal);
		info.hcxt = TopMemoryContext;
		local_hash = hash_create("ku9 metrics local", 64, &info,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	local = hash_search(local_hash, &key, HASH_FIND, NULL);
	if (local != NULL)
		return local->series;

	LWLockAcquire(metrics_state->lock, LW_SHARED);
	series = hash_search(metrics_hash, &key, HASH_FIND, NULL);
	LWLockRelease(metrics_state->lock);

	if (series == NULL)
	{
		LWLockAcquire(metrics_state->lock, LW_EXCLUSIVE);
		series = hash_search(metrics_hash, &key, HASH_FIND, NULL);
		if (series == NULL &&
			hash_get_num_entries(metrics_hash) < metrics_state->max_entries)
		{
			series = hash_search(metrics_hash, &key, HASH_ENTER_NULL, &found);
			if (series != NULL && !found)
				init_series_values(series);
			/* under the lock, so concurrent creations set it in order */
			pg_atomic_write_u64(&metrics_state->series_gauge->v[0],
								double_bits((double) hash_get_num_entries(metrics_hash)));
		}
		LWLockRelease(metrics_state->lock);

		if (series == NULL)
		{
			if (!warned_full)
			{
				warned_full = true;
				ereport(LOG,
						errmsg("ku9 metrics series table is full; updates to new series are dropped"),
						errhint("Consider increasing the configuration parameter \"%s\".",
								"ku9.metrics_max_series"));
			}
			Ku9MetricInc(KU9_M_METRICS_DROPPED, NULL);
			return NULL;
		}
	}

	if (!cacheable)
		return series;
	if (label == NULL)
		unlabeled_cache[id] = series;
	else
	{
		local = hash_search(local_hash, &key, HASH_ENTER, &found);
		local->series = series;
	}
	return series;
}

static inline uint64
double_bits(double d)
{
	uint64		bits;

	memcpy(&bits, &d, sizeof(bits));
	return bits;
}

static inline double
bits_double(uint64 bits)
{
	double		d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

/*
 * atomic_add_double adds to a double kept as bits in an atomic, lock-free.
 */
static void
atomic_add_double(pg_atomic_uint64 *p, double delta)
{
	uint64		old = pg_atomic_read_u64(p);

	while (!pg_atomic_compare_exchange_u64(p, &old,
										   double_bits(bits_double(old) + delta)))
		;
}

/*
 * Ku9MetricAdd adds n to a counter.  label is the value of the family's
 * label, or NULL for a family without one.  Takes no lock after the first
 * update of the series in this backend.
 */
void
Ku9MetricAdd(Ku9MetricId id, const char *label, uint64 n)
{
	Ku9MetricSeries *series;

	Assert(metric_defs[id].type == COUNTER);
	series = get_series(id, label);
	if (series != NULL)
		pg_atomic_fetch_add_u64(&series->v[0], n);
}

/*
 * Ku9MetricSet sets a gauge.
 */
void
Ku9MetricSet(Ku9MetricId id, const char *label, double value)
{
	Ku9MetricSeries *series;

	Assert(metric_defs[id].type == GAUGE);
	series = get_series(id, label);
	if (series != NULL)
		pg_atomic_write_u64(&series->v[0], double_bits(value));
}

/*
 * Ku9MetricGaugeAdd adds delta (which may be negative) to a gauge.
 */
void
Ku9MetricGaugeAdd(Ku9MetricId id, const char *label, double delta)
{
	Ku9MetricSeries *series;

	Assert(metric_defs[id].type == GAUGE);
	series = get_series(id, label);
	if (series != NULL)
		atomic_add_double(&series->v[0], delta);
}

/*
 * Ku9MetricObserve records one observation in a histogram.
 */
void
Ku9MetricObserve(Ku9MetricId id, const char *label, double value)
{
	const Ku9MetricDef *def = &metric_defs[id];
	Ku9MetricSeries *series;
	int			i;

	Assert(def->type == HISTOGRAM);
	series = get_series(id, label);
	if (series == NULL)
		return;
	for (i = 0; i < def->nbuckets; i++)
		if (value <= def->buckets[i])
			break;
	pg_atomic_fetch_add_u64(&series->v[i], 1);
	atomic_add_double(&series->v[def->nbuckets + 1], value);
}

/*
 * Ku9MetricGet reads a counter of this database (or of the cluster) without
 * creating its series; false when the series does not exist or ku9 is not
 * preloaded.  Takes the registry lock shared.
 */
bool
Ku9MetricGet(Ku9MetricId id, const char *label, uint64 *value)
{
	Ku9MetricKey key;
	Ku9MetricSeries *series;

	Assert(metric_defs[id].type == COUNTER);
	*value = 0;
	if (metrics_state == NULL)
		return false;
	make_key(&key, id, label);
	LWLockAcquire(metrics_state->lock, LW_SHARED);
	series = hash_search(metrics_hash, &key, HASH_FIND, NULL);
	if (series != NULL)
		*value = pg_atomic_read_u64(&series->v[0]);
	LWLockRelease(metrics_state->lock);
	return true;
}

/*
 * format_double appends a double in the form Prometheus parses: the
 * shortest exact decimal, or +Inf, -Inf, NaN.
 */
static void
format_double(StringInfo buf, double d)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN];

	if (isnan(d))
		appendStringInfoString(buf, "NaN");
	else if (isinf(d))
		appendStringInfoString(buf, d > 0 ? "+Inf" : "-Inf");
	else
	{
		double_to_shortest_decimal_buf(d, tmp);
		appendStringInfoString(buf, tmp);
	}
}

typedef struct SeriesCopy
{
	Ku9MetricKey key;
	const char *dbname;
	uint64		v[KU9_METRICS_MAX_BUCKETS + 2];
} SeriesCopy;

static int
series_copy_cmp(const void *a, const void *b)
{
	const SeriesCopy *x = a;
	const SeriesCopy *y = b;
	int			c;

	if (x->key.metric != y->key.metric)
		return x->key.metric < y->key.metric ? -1 : 1;
	c = strcmp(x->dbname ? x->dbname : "", y->dbname ? y->dbname : "");
	if (c != 0)
		return c;
	return strcmp(x->key.label, y->key.label);
}

static Ku9Sample *
new_sample(const Ku9MetricDef *def, const SeriesCopy *s, const char *suffix)
{
	Ku9Sample  *sample = palloc0(sizeof(Ku9Sample));

	sample->def = def;
	sample->suffix = suffix;
	sample->dbname = s->dbname;
	sample->label = def->label ? s->key.label : NULL;
	return sample;
}

/*
 * collect_samples snapshots every series and returns the samples to export,
 * as a List of Ku9Sample in exposition order, allocated in the current
 * memory context.  Series of databases that no longer exist are left out.
 * Takes the registry lock shared while copying.
 */
static List *
collect_samples(void)
{
	SeriesCopy *copies;
	int			ncopies = 0;
	int			capacity;
	HASH_SEQ_STATUS status;
	Ku9MetricSeries *series;
	List	   *samples = NIL;

	capacity = metrics_state->max_entries;
	copies = palloc(sizeof(SeriesCopy) * capacity);

	LWLockAcquire(metrics_state->lock, LW_SHARED);
	hash_seq_init(&status, metrics_hash);
	while ((series = hash_seq_search(&status)) != NULL)
	{
		SeriesCopy *c = &copies[ncopies++];

		c->key = series->key;
		for (int i = 0; i < (int) lengthof(c->v); i++)
			c->v[i] = pg_atomic_read_u64(&series->v[i]);
	}
	LWLockRelease(metrics_state->lock);

	/* name databases outside the lock: it does catalog lookups */
	for (int i = 0; i < ncopies; i++)
		copies[i].dbname = OidIsValid(copies[i].key.dbid) ?
			get_database_name(copies[i].key.dbid) : NULL;

	qsort(copies, ncopies, sizeof(SeriesCopy), series_copy_cmp);

	for (int i = 0; i < ncopies; i++)
	{
		SeriesCopy *c = &copies[i];
		const Ku9MetricDef *def = &metric_defs[c->key.metric];
		Ku9Sample  *sample;

		if (OidIsValid(c->key.dbid) && c->dbname == NULL)
			continue;

		switch (def->type)
		{
			case COUNTER:
				sample = new_sample(def, c, "");
				sample->is_int = true;
				sample->ival = c->v[0];
				samples = lappend(samples, sample);
				break;
			case GAUGE:
				sample = new_sample(def, c, "");
				sample->dval = bits_double(c->v[0]);
				samples = lappend(samples, sample);
				break;
			case HISTOGRAM:
				{
					uint64		cumulative = 0;

					for (int b = 0; b <= def->nbuckets; b++)
					{
						StringInfoData le;

						cumulative += c->v[b];
						initStringInfo(&le);
						if (b < def->nbuckets)
							format_double(&le, def->buckets[b]);
						else
							appendStringInfoString(&le, "+Inf");
						sample = new_sample(def, c, "_bucket");
						sample->le = le.data;
						sample->is_int = true;
						sample->ival = cumulative;
						samples = lappend(samples, sample);
					}
					sample = new_sample(def, c, "_sum");
					sample->dval = bits_double(c->v[def->nbuckets + 1]);
					samples = lappend(samples, sample);
					sample = new_sample(def, c, "_count");
					sample->is_int = true;
					sample->ival = cumulative;
					samples = lappend(samples, sample);
				}
				break;
		}
	}
	return samples;
}

/*
 * append_escaped appends s escaped for the exposition format: backslash and
 * newline always, and the double quote when quote is true (label values).
 */
static void
append_escaped(StringInfo buf, const char *s, bool quote)
{
	for (; *s; s++)
	{
		if (*s == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (*s == '\n')
			appendStringInfoString(buf, "\\n");
		else if (*s == '"' && quote)
			appendStringInfoString(buf, "\\\"");
		else
			appendStringInfoChar(buf, *s);
	}
}

static void
append_label(StringInfo buf, bool *first, const char *name, const char *value)
{
	appendStringInfoString(buf, *first ? "{" : ",");
	*first = false;
	appendStringInfo(buf, "%s=\"", name);
	append_escaped(buf, value, true);
	appendStringInfoChar(buf, '"');
}

static const char *
type_name(Ku9MetricType type)
{
	switch (type)
	{
		case COUNTER:
			return "counter";
		case GAUGE:
			return "gauge";
		case HISTOGRAM:
			return "histogram";
	}
	return "untyped";
}

/*
 * no_shared_state raises the NOTICE given when ku9 was not preloaded.
 */
static bool
no_shared_state(void)
{
	if (metrics_state != NULL)
		return false;
	Ku9RequirePreloadNotice("metrics");
	return true;
}

/*
 * ku9_metrics returns every series in the Prometheus text exposition format
 * (version 0.0.4).
 */
Datum
ku9_metrics(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	const Ku9MetricDef *current = NULL;
	ListCell   *lc;

	initStringInfo(&buf);
	if (no_shared_state())
	{
		appendStringInfoString(&buf,
							   "# ku9 is not in shared_preload_libraries: no metrics are collected\n");
		PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
	}

	foreach(lc, collect_samples())
	{
		Ku9Sample  *s = lfirst(lc);
		bool		first = true;

		if (s->def != current)
		{
			current = s->def;
			appendStringInfo(&buf, "# HELP %s ", s->def->name);
			append_escaped(&buf, s->def->help, false);
			appendStringInfo(&buf, "\n# TYPE %s %s\n", s->def->name,
							 type_name(s->def->type));
		}
		appendStringInfo(&buf, "%s%s", s->def->name, s->suffix);
		if (s->dbname)
			append_label(&buf, &first, "database", s->dbname);
		if (s->label)
			append_label(&buf, &first, s->def->label, s->label);
		if (s->le)
			append_label(&buf, &first, "le", s->le);
		if (!first)
			appendStringInfoChar(&buf, '}');
		appendStringInfoChar(&buf, ' ');
		if (s->is_int)
			appendStringInfo(&buf, UINT64_FORMAT, s->ival);
		else
			format_double(&buf, s->dval);
		appendStringInfoChar(&buf, '\n');
	}

	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/*
 * ku9_metric_samples returns the same samples as ku9_metrics, one row each:
 * (family, name, type, labels jsonb, value double precision).  It backs the
 * ku9.stats view.
 */
Datum
ku9_metric_samples(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	Ku9InitMaterializedSRF(fcinfo, 0);
	if (no_shared_state())
		PG_RETURN_VOID();

	foreach(lc, collect_samples())
	{
		Ku9Sample  *s = lfirst(lc);
		Datum		values[5];
		bool		nulls[5] = {false};
		StringInfoData name;
		StringInfoData labels;
		bool		first = true;

		initStringInfo(&name);
		appendStringInfo(&name, "%s%s", s->def->name, s->suffix);

		initStringInfo(&labels);
		appendStringInfoChar(&labels, '{');
		if (s->dbname)
		{
			appendStringInfoString(&labels, "\"database\":");
			escape_json(&labels, s->dbname);
			first = false;
		}
		if (s->label)
		{
			if (!first)
				appendStringInfoChar(&labels, ',');
			escape_json(&labels, s->def->label);
			appendStringInfoChar(&labels, ':');
			escape_json(&labels, s->label);
			first = false;
		}
		if (s->le)
		{
			if (!first)
				appendStringInfoChar(&labels, ',');
			appendStringInfoString(&labels, "\"le\":");
			escape_json(&labels, s->le);
		}
		appendStringInfoChar(&labels, '}');

		values[0] = CStringGetTextDatum(s->def->name);
		values[1] = CStringGetTextDatum(name.data);
		values[2] = CStringGetTextDatum(type_name(s->def->type));
		values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(labels.data));
		values[4] = Float8GetDatum(s->is_int ? (double) s->ival : s->dval);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
