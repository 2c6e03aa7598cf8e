/*
 * txn.c - open application transactions and the boundary gate.
 *
 * Invariants (under t->lock):
 *   1. A key appears at most once among the holders.
 *   2. Requests are parked only while the gate is closed; opening the
 *      gate empties the parked list, so a request never waits for a gate
 *      that is already open.
 *   3. The closer's wait ends only with no holder, or by its own limit.
 * Entries are allocated before the lock is taken and freed after it is
 * dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/txn.h"

struct txn_entry {
	struct txn_entry *next;
	struct txn_holder h;
	void *cookie;		/* parked request; NULL for a holder */
};

struct txn {
	struct txn_ops ops;		/* immutable */
	void *arg;			/* immutable */
	pthread_mutex_t lock;
	pthread_cond_t empty;		/* holders became 0 (monotonic clock) */
	struct txn_entry *holders;	/* lock */
	size_t nholders;		/* lock */
	struct txn_entry *parked;	/* lock; FIFO */
	struct txn_entry **parked_tail;	/* lock */
	size_t nparked;			/* lock */
	bool closed;			/* lock */
	struct timespec since;		/* lock; when closed */
};

int txn_create(const struct txn_ops *ops, void *arg, struct txn **out)
{
	struct txn *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;

	if (!t)
		return -ENOMEM;
	t->ops = *ops;
	t->arg = arg;
	t->parked_tail = &t->parked;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->empty, &ca);
	pthread_condattr_destroy(&ca);
	*out = t;
	return 0;
}

static void free_list(struct txn_entry *e)
{
	while (e) {
		struct txn_entry *next = e->next;

		free(e);
		e = next;
	}
}

void txn_free(struct txn *t)
{
	if (!t)
		return;
	free_list(t->holders);
	free_list(t->parked);
	pthread_cond_destroy(&t->empty);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct txn_entry **find_holder_locked(struct txn *t, uint64_t key)
{
	struct txn_entry **pp;

	for (pp = &t->holders; *pp; pp = &(*pp)->next)
		if ((*pp)->h.key == key)
			return pp;
	return NULL;
}

static void add_holder_locked(struct txn *t, struct txn_entry *e)
{
	e->cookie = NULL;
	e->next = t->holders;
	t->holders = e;
	t->nholders++;
}

/* Returns the entry the caller must free (not kept), or NULL. */
static struct txn_entry *lock_locked(struct txn *t, struct txn_entry *e,
				     unsigned flags, int *rc)
{
	*rc = 0;
	if (find_holder_locked(t, e->h.key))
		return e;
	if (!t->closed) {
		add_holder_locked(t, e);
		return NULL;
	}
	if (flags & TXN_NONBLOCK) {
		*rc = -EWOULDBLOCK;
		return e;
	}
	if (t->ops.interrupted && t->ops.interrupted(e->cookie, t->arg)) {
		*rc = -EINTR;
		return e;
	}
	e->next = NULL;
	*t->parked_tail = e;
	t->parked_tail = &e->next;
	t->nparked++;
	*rc = TXN_PARKED;
	return NULL;
}

int txn_lock(struct txn *t, uint64_t key, pid_t pid, uid_t uid,
	     unsigned flags, void *cookie)
{
	struct txn_entry *e = calloc(1, sizeof(*e)), *unused;
	int rc;

	if (!e)
		return -ENOMEM;
	e->h.key = key;
	e->h.pid = pid;
	e->h.uid = uid;
	e->cookie = cookie;
	pthread_mutex_lock(&t->lock);
	unused = lock_locked(t, e, flags, &rc);
	pthread_mutex_unlock(&t->lock);
	free(unused);
	return rc;
}

void txn_unlock(struct txn *t, uint64_t key)
{
	struct txn_entry **pp, *e = NULL;

	pthread_mutex_lock(&t->lock);
	pp = find_holder_locked(t, key);
	if (pp) {
		e = *pp;
		*pp = e->next;
		if (--t->nholders == 0)
			pthread_cond_broadcast(&t->empty);
	}
	pthread_mutex_unlock(&t->lock);
	free(e);
}

bool txn_cancel(struct txn *t, void *cookie)
{
	struct txn_entry **pp, *e = NULL;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->parked; *pp; pp = &(*pp)->next) {
		if ((*pp)->cookie == cookie) {
			e = *pp;
			*pp = e->next;
			if (t->parked_tail == &e->next)
				t->parked_tail = pp;
			t->nparked--;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	free(e);
	return e != NULL;
}

void txn_close(struct txn *t)
{
	pthread_mutex_lock(&t->lock);
	t->closed = true;
	clock_gettime(CLOCK_REALTIME, &t->since);
	pthread_mutex_unlock(&t->lock);
}

#define TXN_GRANT_BATCH 64

/* Make up to TXN_GRANT_BATCH parked requests holders; their cookies. */
static size_t unpark_locked(struct txn *t, void **cookies,
			    struct txn_entry **dup)
{
	struct txn_entry *e;
	size_t n = 0;

	while (n < TXN_GRANT_BATCH && (e = t->parked)) {
		t->parked = e->next;
		t->nparked--;
		cookies[n++] = e->cookie;
		/* two requests through one open file: one holder */
		if (find_holder_locked(t, e->h.key)) {
			e->next = *dup;
			*dup = e;
		} else {
			add_holder_locked(t, e);
		}
	}
	if (!t->parked)
		t->parked_tail = &t->parked;
	return n;
}

void txn_open(struct txn *t)
{
	void *cookies[TXN_GRANT_BATCH];
	size_t n;

	do {
		struct txn_entry *dup = NULL;

		pthread_mutex_lock(&t->lock);
		t->closed = false;
		n = unpark_locked(t, cookies, &dup);
		pthread_mutex_unlock(&t->lock);
		/* holders first, then granted: an unlock finds its entry */
		for (size_t k = 0; k < n; k++)
			t->ops.grant(cookies[k], t->arg);
		free_list(dup);
	} while (n == TXN_GRANT_BATCH);
}

/* Copy up to max holders; the count of all of them. */
static size_t holders_locked(struct txn *t, struct txn_holder *out,
			     size_t max)
{
	size_t n = 0;

	for (struct txn_entry *e = t->holders; e && n < max; e = e->next)
		out[n++] = e->h;
	return t->nholders;
}

size_t txn_holders(struct txn *t, struct txn_holder *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = holders_locked(t, out, max);
	pthread_mutex_unlock(&t->lock);
	return n;
}

void txn_state(struct txn *t, struct txn_state *out)
{
	pthread_mutex_lock(&t->lock);
	out->closed = t->closed;
	out->since = t->since;
	out->holders = t->nholders;
	out->parked = t->nparked;
	pthread_mutex_unlock(&t->lock);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static struct timespec ts_of(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000,
				  .tv_nsec = ns % 1000000000 };
}

/* Report the holders now; drops the lock around the callback. */
static void report_locked(struct txn *t, const struct txn_wait *w,
			  int64_t waited, bool final)
{
	struct txn_holder h[TXN_REPORT_MAX];
	struct txn_report r = { .waited_ns = waited, .holders = h,
				.final = final };

	r.count = holders_locked(t, h, TXN_REPORT_MAX);
	r.n = r.count < TXN_REPORT_MAX ? r.count : TXN_REPORT_MAX;
	if (!w->report)
		return;
	pthread_mutex_unlock(&t->lock);
	w->report(w->arg, &r);
	pthread_mutex_lock(&t->lock);
}

#define TXN_POLL_NS 100000000ll

/*
 * Holders that still delay w after waited ns: all of them, or once
 * others_ns has passed only those of root and the owner.  Lock held.
 */
static bool delayed_locked(struct txn *t, const struct txn_wait *w,
			   int64_t waited)
{
	if (!w->bound_others || waited < w->others_ns)
		return t->nholders > 0;
	for (struct txn_entry *e = t->holders; e; e = e->next)
		if (e->h.uid == 0 || e->h.uid == w->owner)
			return true;
	return false;
}

int txn_wait_empty(struct txn *t, const struct txn_wait *w)
{
	int64_t start = mono_ns(), now = start;
	int64_t deadline = w->timeout_ns < 0 ? INT64_MAX : start + w->timeout_ns;
	int64_t others = w->bound_others ? start + w->others_ns : INT64_MAX;
	int64_t next_report = start + w->report_ns;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	while (delayed_locked(t, w, now - start)) {
		int64_t wake = now + TXN_POLL_NS;
		struct timespec ts;

		wake = wake < deadline ? wake : deadline;
		wake = wake < next_report ? wake : next_report;
		wake = wake < others || now >= others ? wake : others;
		ts = ts_of(wake);
		pthread_cond_timedwait(&t->empty, &t->lock, &ts);
		now = mono_ns();
		if (!delayed_locked(t, w, now - start))
			break;
		if (now >= deadline) {
			report_locked(t, w, now - start, true);
			rc = -ETIMEDOUT;
			break;
		}
		if (now >= next_report) {
			report_locked(t, w, now - start, false);
			next_report += w->report_ns;
		}
		if (w->cancelled) {
			bool stop;

			pthread_mutex_unlock(&t->lock);
			stop = w->cancelled(w->arg);
			pthread_mutex_lock(&t->lock);
			if (stop && delayed_locked(t, w, now - start)) {
				rc = -ECANCELED;
				break;
			}
		}
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}
