/*
 * txn.h - open application transactions, for the boundary wait of a
 * checkpoint (DESIGN.md 6, step 1).
 *
 * Applications mark an open transaction by holding a shared lock on the
 * control file MNT/.swafs/txn; the daemon keeps the holders here, keyed
 * by the open file that holds the lock.  A boundary wait closes the
 * table's gate — new requests are parked instead of granted — and waits
 * until no holder remains.  Opening the gate grants every parked request.
 *
 * Parked requests hold no thread: they are opaque cookies handed back to
 * the grant callback when the gate opens.  This module has no FUSE
 * dependency.
 */
#ifndef SWAFS_TXN_H
#define SWAFS_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct txn;

#define TXN_REPORT_MAX 16	/* holders named in one report */

/*
 * Who holds a lock: the pid and uid of the request that took it, both
 * from the kernel (never the command name, which the holder chooses).
 */
struct txn_holder {
	uint64_t key;			/* the open file holding the lock */
	pid_t pid;
	uid_t uid;
};

struct txn_ops {
	/* A parked request was granted (called without the table lock). */
	void (*grant)(void *cookie, void *arg);
	/*
	 * True when the request behind cookie was interrupted: it is then
	 * not parked.  Called with the table lock held; must not call back
	 * into the table.
	 */
	bool (*interrupted)(void *cookie, void *arg);
};

/* ops is copied; arg is passed to every callback.  Returns 0 or -ENOMEM. */
int txn_create(const struct txn_ops *ops, void *arg, struct txn **out);
/* No request may be parked (open the gate first). */
void txn_free(struct txn *t);

enum txn_lock_flags {
	TXN_NONBLOCK = 1 << 0,	/* LOCK_NB: never park */
};

#define TXN_PARKED 1

/*
 * Take the shared lock for key (pid and uid say who).
 * Returns 0 when granted (also when key holds it already), TXN_PARKED
 * when the gate is closed: the cookie then comes back through ops->grant
 * once the gate opens, unless txn_cancel() takes it back first;
 * -EWOULDBLOCK with TXN_NONBLOCK and the gate closed; -EINTR when
 * ops->interrupted says so; -ENOMEM.
 */
int txn_lock(struct txn *t, uint64_t key, pid_t pid, uid_t uid,
	     unsigned flags, void *cookie);

/* Drop key's lock, if it holds one. */
void txn_unlock(struct txn *t, uint64_t key);

/*
 * Take a parked request back (it was interrupted).  Returns true when it
 * was parked: the caller answers it; false when it was never parked or
 * was granted already.
 */
bool txn_cancel(struct txn *t, void *cookie);

/* Close the gate: new requests park from now on.  One closer at a time. */
void txn_close(struct txn *t);

/* Open the gate; every parked request becomes a holder and is granted
 * through ops->grant, in the order it arrived. */
void txn_open(struct txn *t);

/* What a waiting closer reports. */
struct txn_report {
	int64_t waited_ns;
	size_t count;				/* holders now */
	const struct txn_holder *holders;	/* the first n of them */
	size_t n;				/* <= TXN_REPORT_MAX */
	bool final;				/* the wait ran out */
};

struct txn_wait {
	int64_t timeout_ns;	/* < 0: no limit */
	int64_t report_ns;	/* > 0: report this often */
	/* called without the table lock; may be NULL */
	void (*report)(void *arg, const struct txn_report *r);
	/* polled every 100 ms; true ends the wait; may be NULL */
	bool (*cancelled)(void *arg);
	void *arg;
	/*
	 * bound_others: after others_ns, holders whose uid is neither 0 nor
	 * owner no longer delay the wait (a checkpoint by root or the
	 * owner bounds how long other users may hold it back).
	 */
	bool bound_others;
	int64_t others_ns;
	uid_t owner;
};

/*
 * With the gate closed, wait until no holder remains (none of root or the
 * owner, once others_ns has passed).  Returns 0, or
 * -ETIMEDOUT after a last report with final set, or -ECANCELED.  The gate
 * stays closed either way: the caller opens it.
 */
int txn_wait_empty(struct txn *t, const struct txn_wait *w);

/* State for status. */
struct txn_state {
	bool closed;		/* a boundary wait holds new requests */
	struct timespec since;	/* when it closed (CLOCK_REALTIME) */
	size_t holders;
	size_t parked;
};
void txn_state(struct txn *t, struct txn_state *out);

/* Copy up to max holders; returns how many there are. */
size_t txn_holders(struct txn *t, struct txn_holder *out, size_t max);

#endif
