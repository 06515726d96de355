/*-------------------------------------------------------------------------
 *
 * ku9.h
 *	  Declarations shared by all ku9 modules: settings and module entry
 *	  points.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/ku9.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_H
#define KU9_H

#define KU9_VERSION "0.1"

/* locks in the "ku9" named LWLock tranche */
#define KU9_LWLOCK_METRICS 0
#define KU9_LWLOCK_THROTTLE 1
#define KU9_LWLOCK_COUNT 2

/* settings (src/ku9.c) */
extern PGDLLIMPORT char *ku9_database;
extern PGDLLIMPORT char *ku9_jwt_secret;
extern PGDLLIMPORT int ku9_jwt_exp;
extern PGDLLIMPORT int ku9_jwt_leeway;
extern PGDLLIMPORT char *ku9_jwt_aud;
extern PGDLLIMPORT char *ku9_jwt_iss;
extern PGDLLIMPORT char *ku9_jwt_alg;
extern PGDLLIMPORT int ku9_http_port;
extern PGDLLIMPORT int ku9_metrics_max_series;
extern PGDLLIMPORT int ku9_queue_max_wait;
extern PGDLLIMPORT int ku9_auth_throttle_slots;
extern PGDLLIMPORT int ku9_workers;
extern PGDLLIMPORT int ku9_maintenance_interval;
extern PGDLLIMPORT int ku9_push_batch_size;

/* true in every process when ku9 was loaded by shared_preload_libraries */
extern PGDLLIMPORT bool ku9_preloaded;

extern void Ku9DefineGucs(bool preloading);
extern void Ku9RequirePreloadNotice(const char *feature);

#endif							/* KU9_H */
