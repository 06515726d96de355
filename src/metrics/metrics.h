/*-------------------------------------------------------------------------
 *
 * metrics.h
 *	  Shared-memory metrics registry: counters, gauges and histograms.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/metrics/metrics.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_METRICS_H
#define KU9_METRICS_H

typedef enum Ku9MetricId
{
#define KU9_METRIC(id, name, type, scope, label, buckets, help) id,
#include "metrics/metric_list.h"
#undef KU9_METRIC
	KU9_METRIC_COUNT
} Ku9MetricId;

/* longest label value kept; longer values are cut at a character boundary */
#define KU9_METRICS_LABEL_LEN 64
/* most buckets a histogram may declare (not counting +Inf) */
#define KU9_METRICS_MAX_BUCKETS 14

extern Size Ku9MetricsShmemSize(void);
extern void Ku9MetricsShmemRequest(void);
extern void Ku9MetricsShmemInit(void);

extern void Ku9MetricAdd(Ku9MetricId id, const char *label, uint64 n);
extern void Ku9MetricSet(Ku9MetricId id, const char *label, double value);
extern void Ku9MetricGaugeAdd(Ku9MetricId id, const char *label, double delta);
extern void Ku9MetricObserve(Ku9MetricId id, const char *label, double value);
extern bool Ku9MetricGet(Ku9MetricId id, const char *label, uint64 *value);

#define Ku9MetricInc(id, label) Ku9MetricAdd((id), (label), 1)

#endif							/* KU9_METRICS_H */
