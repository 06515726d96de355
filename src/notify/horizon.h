/*-------------------------------------------------------------------------
 *
 * horizon.h
 *	  Notification ids that are safe to read past (src/notify/horizon.c).
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/notify/horizon.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_HORIZON_H
#define KU9_HORIZON_H

extern Size Ku9NotifyShmemSize(void);
extern void Ku9NotifyShmemInit(void);

#endif							/* KU9_HORIZON_H */
