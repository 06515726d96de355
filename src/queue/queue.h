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

#endif							/* KU9_QUEUE_H */
