/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  ku9's background workers: the launcher and the workers it starts.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/worker/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_WORKER_H
#define KU9_WORKER_H

/* the most workers ku9.workers may ask for */
#define KU9_MAX_WORKERS 32

extern Size Ku9WorkerShmemSize(void);
extern void Ku9WorkerShmemInit(void);
extern void Ku9RegisterLauncher(void);

extern PGDLLEXPORT void Ku9LauncherMain(Datum main_arg);
extern PGDLLEXPORT void Ku9WorkerMain(Datum main_arg);

#endif							/* KU9_WORKER_H */
