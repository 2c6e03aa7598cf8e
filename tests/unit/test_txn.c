/* Unit tests for snapshot/txn.c: transaction holders and the boundary gate. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/txn.h"

#define MS 1000000ll

/* What the callbacks saw. */
struct seen {
	pthread_mutex_t lock;
	void *granted[64];
	int ngranted;
	void *interrupted;	/* this cookie counts as interrupted */
	int reports, finals;
	size_t last_count;
	struct txn_holder last[TXN_REPORT_MAX];
	atomic_bool cancel;
};

static void on_grant(void *cookie, void *arg)
{
	struct seen *s = arg;

	pthread_mutex_lock(&s->lock);
	if (s->ngranted < 64)
		s->granted[s->ngranted++] = cookie;
	pthread_mutex_unlock(&s->lock);
}

static bool on_interrupted(void *cookie, void *arg)
{
	return cookie == ((struct seen *)arg)->interrupted;
}

static void on_report(void *arg, const struct txn_report *r)
{
	struct seen *s = arg;

	s->reports++;
	s->finals += r->final;
	s->last_count = r->count;
	memcpy(s->last, r->holders, r->n * sizeof(*r->holders));
}

static bool on_cancelled(void *arg)
{
	return atomic_load(&((struct seen *)arg)->cancel);
}

static const struct txn_ops ops = { on_grant, on_interrupted };
static struct seen seen;
static struct txn *t;

static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	pthread_mutex_init(&seen.lock, NULL);
	cr_assert_eq(txn_create(&ops, &seen, &t), 0);
}

static void teardown(void)
{
	txn_free(t);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static struct txn_wait waiting(int64_t timeout_ns, int64_t report_ns)
{
	return (struct txn_wait){ .timeout_ns = timeout_ns,
				  .report_ns = report_ns, .report = on_report,
				  .cancelled = on_cancelled, .arg = &seen };
}

/* Invariant: no key is listed twice and the count matches. */
static void assert_sane(void)
{
	struct txn_holder h[64];
	struct txn_state st;
	size_t n = txn_holders(t, h, 64);

	txn_state(t, &st);
	cr_assert_eq(st.holders, n);
	for (size_t a = 0; a < n && a < 64; a++)
		for (size_t b = a + 1; b < n && b < 64; b++)
			cr_assert_neq(h[a].key, h[b].key);
	if (!st.closed)
		cr_assert_eq(st.parked, 0);
}

Test(txn, holders_named_and_counted_once, .init = setup, .fini = teardown)
{
	struct txn_holder h[4];

	cr_assert_eq(txn_lock(t, 7, 100, 1000, 0, NULL), 0);
	cr_assert_eq(txn_lock(t, 7, 100, 1000, 0, NULL), 0);
	cr_assert_eq(txn_lock(t, 8, 200, 65534, 0, NULL), 0);
	assert_sane();
	cr_assert_eq(txn_holders(t, h, 4), 2);
	cr_assert(h[0].pid == 200 || h[1].pid == 200);
	txn_unlock(t, 7);
	txn_unlock(t, 7);	/* not held: nothing */
	cr_assert_eq(txn_holders(t, h, 4), 1);
	cr_assert_eq(h[0].pid, 200);
	cr_assert_eq(h[0].uid, 65534);
	txn_unlock(t, 8);
	assert_sane();
}

Test(txn, closed_gate_parks_and_open_grants_in_order, .init = setup,
     .fini = teardown)
{
	int a, b, c;
	struct txn_state st;

	txn_close(t);
	cr_assert_eq(txn_lock(t, 1, 1, 1000, TXN_NONBLOCK, &a), -EWOULDBLOCK);
	cr_assert_eq(txn_lock(t, 1, 1, 1000, 0, &a), TXN_PARKED);
	cr_assert_eq(txn_lock(t, 2, 2, 1000, 0, &b), TXN_PARKED);
	cr_assert_eq(txn_lock(t, 3, 3, 1000, 0, &c), TXN_PARKED);
	cr_assert(txn_cancel(t, &b));
	cr_assert_not(txn_cancel(t, &b));
	txn_state(t, &st);
	cr_assert(st.closed);
	cr_assert_eq(st.parked, 2);
	cr_assert_eq(st.holders, 0);
	cr_assert_eq(seen.ngranted, 0);
	txn_open(t);
	cr_assert_eq(seen.ngranted, 2);
	cr_assert_eq(seen.granted[0], &a);
	cr_assert_eq(seen.granted[1], &c);
	cr_assert_not(txn_cancel(t, &a));	/* granted already */
	assert_sane();
	txn_state(t, &st);
	cr_assert_eq(st.holders, 2);
	/* an open gate grants at once */
	cr_assert_eq(txn_lock(t, 4, 4, 1000, TXN_NONBLOCK, NULL), 0);
}

Test(txn, holder_asking_again_is_not_parked, .init = setup, .fini = teardown)
{
	cr_assert_eq(txn_lock(t, 1, 1, 1000, 0, NULL), 0);
	txn_close(t);
	cr_assert_eq(txn_lock(t, 1, 1, 1000, 0, NULL), 0);
	txn_unlock(t, 1);
	txn_open(t);
}

Test(txn, interrupted_request_is_not_parked, .init = setup, .fini = teardown)
{
	int a;

	seen.interrupted = &a;
	txn_close(t);
	cr_assert_eq(txn_lock(t, 1, 1, 1000, 0, &a), -EINTR);
	txn_open(t);
	cr_assert_eq(seen.ngranted, 0);
	assert_sane();
}

Test(txn, two_parked_through_one_file_give_one_holder, .init = setup,
     .fini = teardown)
{
	int a, b;
	struct txn_state st;

	txn_close(t);
	cr_assert_eq(txn_lock(t, 1, 1, 1000, 0, &a), TXN_PARKED);
	cr_assert_eq(txn_lock(t, 1, 1, 1000, 0, &b), TXN_PARKED);
	txn_open(t);
	cr_assert_eq(seen.ngranted, 2);
	txn_state(t, &st);
	cr_assert_eq(st.holders, 1);
	assert_sane();
}

Test(txn, wait_runs_out_with_a_final_report, .init = setup, .fini = teardown)
{
	struct txn_wait w = waiting(300 * MS, 100 * MS);
	struct txn_state st;
	int64_t t0;

	cr_assert_eq(txn_lock(t, 9, 1234, 4242, 0, NULL), 0);
	txn_close(t);
	t0 = now_ns();
	cr_assert_eq(txn_wait_empty(t, &w), -ETIMEDOUT);
	cr_assert_geq(now_ns() - t0, 300 * MS);
	cr_assert_lt(now_ns() - t0, 2000 * MS);
	cr_assert_eq(seen.finals, 1);
	cr_assert_geq(seen.reports, 2);	/* at 100 and 200 ms, then final */
	cr_assert_eq(seen.last_count, 1);
	cr_assert_eq(seen.last[0].pid, 1234);
	cr_assert_eq(seen.last[0].uid, 4242);
	txn_state(t, &st);
	cr_assert(st.closed);	/* the caller opens */
	txn_open(t);
}

Test(txn, wait_with_no_holder_returns_at_once, .init = setup, .fini = teardown)
{
	struct txn_wait w = waiting(0, 100 * MS);

	txn_close(t);
	cr_assert_eq(txn_wait_empty(t, &w), 0);
	cr_assert_eq(seen.reports, 0);
	txn_open(t);
}

Test(txn, cancelled_wait_ends, .init = setup, .fini = teardown)
{
	struct txn_wait w = waiting(-1, 10000 * MS);

	cr_assert_eq(txn_lock(t, 9, 1, 1000, 0, NULL), 0);
	atomic_store(&seen.cancel, true);
	txn_close(t);
	cr_assert_eq(txn_wait_empty(t, &w), -ECANCELED);
	txn_open(t);
}

static void *unlock_later(void *p)
{
	usleep(150 * 1000);
	txn_unlock(t, (uint64_t)(uintptr_t)p);
	return NULL;
}

Test(txn, wait_ends_when_last_holder_unlocks, .init = setup, .fini = teardown)
{
	struct txn_wait w = waiting(-1, 10000 * MS);
	pthread_t th;
	int64_t t0;

	cr_assert_eq(txn_lock(t, 5, 1, 1000, 0, NULL), 0);
	txn_close(t);
	pthread_create(&th, NULL, unlock_later, (void *)(uintptr_t)5);
	t0 = now_ns();
	cr_assert_eq(txn_wait_empty(t, &w), 0);
	cr_assert_geq(now_ns() - t0, 100 * MS);
	pthread_join(th, NULL);
	txn_open(t);
}

/*
 * Stress: writers take and drop the lock in a loop while a closer runs
 * boundary waits.  At each boundary no writer may be inside a
 * transaction, and every parked request is granted exactly once.
 */
#define WRITERS 8

struct wslot {
	atomic_bool granted;
	atomic_int inside_at_boundary;
	atomic_int rounds;
};

static struct wslot slots[WRITERS];
static atomic_bool at_boundary, stop;
static atomic_int grants_seen;

static void stress_grant(void *cookie, void *arg)
{
	atomic_store(&((struct wslot *)cookie)->granted, true);
	atomic_fetch_add(&grants_seen, 1);
}

static void *writer(void *p)
{
	struct wslot *s = p;
	uint64_t key = (uint64_t)(s - slots) + 1;
	int parked = 0;

	while (!atomic_load(&stop)) {
		int rc = txn_lock(t, key, 1, 1000, 0, s);

		if (rc == TXN_PARKED) {
			parked++;
			while (!atomic_load(&s->granted))
				usleep(50);
			atomic_store(&s->granted, false);
		} else {
			cr_assert_eq(rc, 0);
		}
		if (atomic_load(&at_boundary))
			atomic_fetch_add(&s->inside_at_boundary, 1);
		usleep(100);
		if (atomic_load(&at_boundary))
			atomic_fetch_add(&s->inside_at_boundary, 1);
		txn_unlock(t, key);
		atomic_fetch_add(&s->rounds, 1);
	}
	return (void *)(intptr_t)parked;
}

Test(txn, stress_boundaries_under_writers)
{
	static const struct txn_ops sops = { stress_grant, NULL };
	struct txn_wait w = { .timeout_ns = -1, .report_ns = 1000 * MS };
	pthread_t th[WRITERS];
	long parked = 0;
	int boundaries = 0;

	cr_assert_eq(txn_create(&sops, NULL, &t), 0);
	for (int k = 0; k < WRITERS; k++)
		pthread_create(&th[k], NULL, writer, &slots[k]);
	for (int round = 0; round < 300; round++) {
		txn_close(t);
		cr_assert_eq(txn_wait_empty(t, &w), 0);
		cr_assert_eq(txn_holders(t, NULL, 0), 0);
		atomic_store(&at_boundary, true);
		usleep(200);
		atomic_store(&at_boundary, false);
		boundaries++;
		txn_open(t);
		usleep(300);
	}
	atomic_store(&stop, true);
	for (int k = 0; k < WRITERS; k++) {
		void *r;

		pthread_join(th[k], &r);
		parked += (long)(intptr_t)r;
		cr_assert_eq(atomic_load(&slots[k].inside_at_boundary), 0,
			     "writer %d was inside a transaction at a boundary", k);
		cr_assert_gt(atomic_load(&slots[k].rounds), 0);
	}
	cr_assert_eq(boundaries, 300);
	cr_assert_eq(atomic_load(&grants_seen), parked);
	cr_assert_gt(parked, 0);
	cr_assert_eq(txn_holders(t, NULL, 0), 0);
	txn_free(t);
}

/* A checkpoint of root or the owner bounds how long others delay it. */
Test(txn, others_bound_ends_the_wait_for_their_holders, .init = setup,
     .fini = teardown)
{
	struct txn_wait w = waiting(3000 * MS, 10000 * MS);
	int64_t t0;

	w.bound_others = true;
	w.others_ns = 200 * MS;
	w.owner = 1000;
	cr_assert_eq(txn_lock(t, 1, 11, 4242, 0, NULL), 0);
	txn_close(t);
	t0 = now_ns();
	cr_assert_eq(txn_wait_empty(t, &w), 0);
	cr_assert_geq(now_ns() - t0, 200 * MS);
	cr_assert_lt(now_ns() - t0, 1500 * MS);
	/* the owner's holder still delays it, up to the whole limit */
	cr_assert_eq(txn_lock(t, 2, 12, 1000, TXN_NONBLOCK, NULL), -EWOULDBLOCK);
	txn_open(t);
	cr_assert_eq(txn_lock(t, 2, 12, 1000, 0, NULL), 0);
	txn_close(t);
	w.timeout_ns = 500 * MS;
	cr_assert_eq(txn_wait_empty(t, &w), -ETIMEDOUT);
	txn_open(t);
	txn_unlock(t, 1);
	txn_unlock(t, 2);
}
