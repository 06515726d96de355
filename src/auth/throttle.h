/*-------------------------------------------------------------------------
 *
 * throttle.h
 *	  Sign-in throttling in shared memory.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/auth/throttle.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_THROTTLE_H
#define KU9_THROTTLE_H

extern Size Ku9ThrottleShmemSize(void);
extern void Ku9ThrottleShmemInit(void);

#endif							/* KU9_THROTTLE_H */
