/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  Durable queues: shared state for wake-ups.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/queue/queue.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_QUEUE_H
#define KU9_QUEUE_H

extern Size Ku9QueueShmemSize(void);
extern void Ku9QueueShmemInit(void);

/* qids start at 1: key 0 of a database means "any queue" */
#define KU9_WAIT_ANY_QUEUE 0

extern bool Ku9QueueWaitAny(void);
extern bool Ku9QueueWakeWorkersAtCommit(void);

#endif							/* KU9_QUEUE_H */
