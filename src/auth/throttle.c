/*-------------------------------------------------------------------------
 *
 * throttle.c
 *	  Sign-in throttling: failed attempts per key (an email, a client
 *	  address) counted in shared memory.
 *
 * A failed sign-in raises an error, which rolls back everything its
 * transaction wrote, so the failure count cannot live in a table.  It lives
 * in shared memory instead, where a rollback does not undo it: a fixed
 * table of ku9.auth_throttle_slots slots, each holding a key's 64-bit hash
 * (with its database), the failures in the current window and, once the
 * key reached its limit, the end of its cooldown.  Counts survive until the
 * server restarts.  A key is found by open addressing over a few slots;
 * when all of them are taken, an unlocked one whose window began longest
 * ago is reused, and a locked one only when all are locked.  One LWLock (KU9_LWLOCK_THROTTLE) guards the table; every
 * operation holds it briefly, in exclusive mode.
 *
 * Failures are counted for keys whatever they name, existing or not, so a
 * cooldown tells nothing about whether an email has an account.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/auth/throttle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ku9.h"
#include "auth/throttle.h"

#define PROBES 8

typedef struct Ku9ThrottleSlot
{
	uint64		key;			/* hash of the key; 0 = free */
	Oid			dbid;
	int32		failures;
	TimestampTz window_start;
	TimestampTz locked_until;
} Ku9ThrottleSlot;

typedef struct Ku9ThrottleState
{
	LWLock	   *lock;
	uint64		seed;			/* random per server start: slots can't be predicted */
	int			nslots;
	Ku9ThrottleSlot slots[FLEXIBLE_ARRAY_MEMBER];
} Ku9ThrottleState;

static Ku9ThrottleState *throttle = NULL;
static bool warned_not_preloaded = false;

PG_FUNCTION_INFO_V1(ku9_throttle_check);
PG_FUNCTION_INFO_V1(ku9_throttle_failure);
PG_FUNCTION_INFO_V1(ku9_throttle_reset);

/*
 * Ku9ThrottleShmemSize returns the shared memory of the throttle table.
 */
Size
Ku9ThrottleShmemSize(void)
{
	return add_size(offsetof(Ku9ThrottleState, slots),
					mul_size(ku9_auth_throttle_slots, sizeof(Ku9ThrottleSlot)));
}

/*
 * Ku9ThrottleShmemInit creates or attaches to the throttle table.  Called
 * from the shmem_startup_hook; takes AddinShmemInitLock.
 */
void
Ku9ThrottleShmemInit(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	throttle = ShmemInitStruct("ku9 auth throttle", Ku9ThrottleShmemSize(), &found);
	if (!found)
	{
		throttle->lock = &(GetNamedLWLockTranche("ku9"))[KU9_LWLOCK_THROTTLE].lock;
		throttle->nslots = ku9_auth_throttle_slots;
		if (!pg_strong_random(&throttle->seed, sizeof(throttle->seed)))
			throttle->seed = (uint64) GetCurrentTimestamp();
		memset(throttle->slots, 0, sizeof(Ku9ThrottleSlot) * throttle->nslots);
	}
	LWLockRelease(AddinShmemInitLock);
}

static bool
available(void)
{
	if (throttle != NULL)
		return true;
	if (!warned_not_preloaded)
	{
		warned_not_preloaded = true;
		Ku9RequirePreloadNotice("sign-in throttling");
	}
	return false;
}

static uint64
key_hash(text *key)
{
	uint64		h = hash_bytes_extended((unsigned char *) VARDATA_ANY(key),
										VARSIZE_ANY_EXHDR(key),
										throttle->seed ^ MyDatabaseId);

	return h == 0 ? 1 : h;
}

/*
 * better_victim tells whether slot a is a better one to reuse than b: a free
 * slot first, then an unlocked one whose window began longest ago, and only
 * then the locked one whose lock ends first, so that filling the table does
 * not lift the locks of others.
 */
static bool
better_victim(Ku9ThrottleSlot *a, Ku9ThrottleSlot *b, TimestampTz now)
{
	bool		a_locked = a->locked_until > now;
	bool		b_locked = b->locked_until > now;

	if (a->key == 0 || b->key == 0)
		return a->key == 0 && b->key != 0;
	if (a_locked != b_locked)
		return !a_locked;
	if (a_locked)
		return a->locked_until < b->locked_until;
	return a->window_start < b->window_start;
}

/*
 * find_slot returns the key's slot, or with create a free or reused one
 * (reset to zero failures).  Caller holds the lock exclusively.
 */
static Ku9ThrottleSlot *
find_slot(uint64 key, bool create)
{
	int			start = (int) (key % (uint64) throttle->nslots);
	Ku9ThrottleSlot *victim = NULL;

	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < PROBES; i++)
	{
		Ku9ThrottleSlot *s = &throttle->slots[(start + i) % throttle->nslots];

		if (s->key == key && s->dbid == MyDatabaseId)
			return s;
		if (victim == NULL || better_victim(s, victim, now))
			victim = s;
	}
	if (!create)
		return NULL;
	victim->key = key;
	victim->dbid = MyDatabaseId;
	victim->failures = 0;
	victim->window_start = 0;
	victim->locked_until = 0;
	return victim;
}

/*
 * ku9_throttle_check raises PT429 (HTTP 429 under PostgREST), "too many
 * <what>", when one of the keys is in its cooldown.
 */
Datum
ku9_throttle_check(PG_FUNCTION_ARGS)
{
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(0);
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until = 0;

	if (!available())
		PG_RETURN_VOID();
	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);

	LWLockAcquire(throttle->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		Ku9ThrottleSlot *s;

		if (nulls[i])
			continue;
		s = find_slot(key_hash(DatumGetTextPP(elems[i])), false);
		if (s != NULL && s->locked_until > now)
			until = Max(until, s->locked_until);
	}
	LWLockRelease(throttle->lock);

	if (until > now)
		ereport(ERROR,
				errcode(MAKE_SQLSTATE('P', 'T', '4', '2', '9')),
				errmsg("too many %s", what),
				errdetail("Try again in %ld seconds.",
						  (long) ((until - now + USECS_PER_SEC - 1) / USECS_PER_SEC)));
	PG_RETURN_VOID();
}

/*
 * ku9_throttle_failure counts a failed attempt for key; once it has had
 * max_failures within window seconds it is locked for lockout seconds.
 * Returns the failures counted in the current window.
 */
Datum
ku9_throttle_failure(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);
	int32		max_failures = PG_GETARG_INT32(1);
	int32		window = PG_GETARG_INT32(2);
	int32		lockout = PG_GETARG_INT32(3);
	TimestampTz now = GetCurrentTimestamp();
	Ku9ThrottleSlot *s;
	int32		failures;

	if (!available())
		PG_RETURN_INT32(0);

	LWLockAcquire(throttle->lock, LW_EXCLUSIVE);
	s = find_slot(key_hash(key), true);
	if (s->window_start == 0 || now - s->window_start > (int64) window * USECS_PER_SEC)
	{
		s->window_start = now;
		s->failures = 0;
	}
	failures = ++s->failures;
	if (failures >= max_failures)
		s->locked_until = now + (int64) lockout * USECS_PER_SEC;
	LWLockRelease(throttle->lock);

	PG_RETURN_INT32(failures);
}

/*
 * ku9_throttle_reset forgets the failures of key (after a sign-in that
 * succeeded).
 */
Datum
ku9_throttle_reset(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);
	Ku9ThrottleSlot *s;

	if (!available())
		PG_RETURN_VOID();

	LWLockAcquire(throttle->lock, LW_EXCLUSIVE);
	s = find_slot(key_hash(key), false);
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	LWLockRelease(throttle->lock);
	PG_RETURN_VOID();
}
