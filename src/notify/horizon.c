/*-------------------------------------------------------------------------
 *
 * horizon.c
 *	  Notification ids that are safe to read past.
 *
 * Notification ids come from a sequence, so a transaction can take id 7,
 * another id 8 and commit first: a reader that has seen 8 and keeps "after
 * 8" as its cursor (an inbox page, an event stream's Last-Event-ID) would
 * never see 7.  So each backend notes, in shared memory, the lowest id its
 * open transaction may still commit: ku9._notification_id() marks the
 * backend's slot "pending" before nextval and then stores the id; the slot
 * is cleared when the transaction ends (after it became visible, or rolled
 * back).  ku9._notification_horizon(last) is the highest id below which
 * every id is either visible to a snapshot taken afterwards or will never
 * be: the sequence's last value read before the call, lowered below every
 * slot in use.
 *
 * Why the order works: a writer whose slot the reader finds cleared had
 * committed (visible to the later snapshot) or not yet marked it, and then
 * its nextval comes after the reader read the sequence, so its id is above
 * "last".  A slot found pending is waited for (it turns into an id within
 * microseconds); if it does not, the horizon is 0 and the reader tries later.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/notify/horizon.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/lsyscache.h"

#include "ku9.h"
#include "notify/horizon.h"

PG_FUNCTION_INFO_V1(ku9_notification_id);
PG_FUNCTION_INFO_V1(ku9_notification_horizon);

#define SLOT_FREE	UINT64CONST(0)
#define SLOT_PENDING PG_UINT64_MAX
/* how long a reader waits for a pending slot: spins of about a microsecond */
#define PENDING_SPINS 100000

static pg_atomic_uint64 *slots = NULL;
static int	nslots = 0;
static bool holding = false;
static bool callback_registered = false;

static int
slot_count(void)
{
	/* indexed by pgprocno; prepared transactions' procs never hold one */
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

Size
Ku9NotifyShmemSize(void)
{
	return mul_size(slot_count(), sizeof(pg_atomic_uint64));
}

void
Ku9NotifyShmemInit(void)
{
	bool		found;

	nslots = slot_count();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = ShmemInitStruct("ku9 notification ids", Ku9NotifyShmemSize(), &found);
	if (!found)
		for (int i = 0; i < nslots; i++)
			pg_atomic_init_u64(&slots[i], SLOT_FREE);
	LWLockRelease(AddinShmemInitLock);
}

/* the transaction ended: its ids are visible, or gone */
static void
release_slot(XactEvent event, void *arg)
{
	if (!holding)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			/* its ids would become visible at COMMIT PREPARED, after readers passed them */
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("cannot PREPARE a transaction that has published ku9 notifications"));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pg_atomic_write_u64(&slots[MyProc->pgprocno], SLOT_FREE);
			holding = false;
			break;
		default:
			break;
	}
}

static Oid
sequence_oid(void)
{
	Oid			nsp = get_namespace_oid("ku9", false);
	Oid			seq = get_relname_relid("notification_seq", nsp);

	if (!OidIsValid(seq))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("sequence ku9.notification_seq does not exist"));
	return seq;
}

/*
 * ku9._notification_id() → bigint: the next notification id, noted as in
 * flight until this transaction ends.
 */
Datum
ku9_notification_id(PG_FUNCTION_ARGS)
{
	int64		id;
	bool		mark = slots != NULL && !holding && MyProc != NULL && MyProc->pgprocno < nslots;

	if (mark)
	{
		if (!callback_registered)
		{
			RegisterXactCallback(release_slot, NULL);
			callback_registered = true;
		}
		pg_atomic_write_u64(&slots[MyProc->pgprocno], SLOT_PENDING);
		holding = true;
		pg_memory_barrier();
	}
	id = nextval_internal(sequence_oid(), true);
	/* the first id of the transaction is its lowest */
	if (mark)
		pg_atomic_write_u64(&slots[MyProc->pgprocno], (uint64) id);
	PG_RETURN_INT64(id);
}

/*
 * ku9._notification_horizon(last bigint) → bigint: given the sequence's
 * last value read just before, the highest id a snapshot taken afterwards
 * may read up to without skipping one that commits later.
 */
Datum
ku9_notification_horizon(PG_FUNCTION_ARGS)
{
	int64		horizon = PG_GETARG_INT64(0);

	if (slots == NULL)
		PG_RETURN_INT64(horizon);
	pg_memory_barrier();
	for (int i = 0; i < nslots; i++)
	{
		uint64		v = pg_atomic_read_u64(&slots[i]);

		for (int spins = 0; v == SLOT_PENDING && spins < PENDING_SPINS; spins++)
		{
			pg_spin_delay();
			v = pg_atomic_read_u64(&slots[i]);
		}
		if (v == SLOT_PENDING)
			PG_RETURN_INT64(0);
		if (v != SLOT_FREE && (int64) v - 1 < horizon)
			horizon = (int64) v - 1;
	}
	PG_RETURN_INT64(horizon);
}
