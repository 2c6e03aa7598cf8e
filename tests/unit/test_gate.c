/* Unit tests for snapshot/gate.c: the drain in front of modifying calls. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/gate.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

Test(gate, close_waits_for_inflight_call)
{
	struct gate *g;

	cr_assert_eq(gate_create(&g), 0);
	gate_enter(g);
	cr_assert_eq(gate_inflight(g), 1);
	cr_assert_eq(gate_close(g, 50 * 1000000ll), -ETIMEDOUT);
	/* a failed close reopens: a new call passes at once */
	gate_enter(g);
	gate_leave(g);
	gate_leave(g);
	cr_assert_eq(gate_close(g, 0), 0);
	gate_open(g);
	gate_free(g);
}

struct holder {
	struct gate *g;
	atomic_bool inside;
	atomic_bool done;
};

static void *hold_then_leave(void *p)
{
	struct holder *h = p;

	gate_enter(h->g);
	atomic_store(&h->inside, true);
	usleep(100 * 1000);
	atomic_store(&h->done, true);
	gate_leave(h->g);
	return NULL;
}

Test(gate, close_returns_after_drain)
{
	struct holder h = { 0 };
	pthread_t t;

	cr_assert_eq(gate_create(&h.g), 0);
	pthread_create(&t, NULL, hold_then_leave, &h);
	while (!atomic_load(&h.inside))
		usleep(1000);
	cr_assert_eq(gate_close(h.g, -1), 0);
	cr_assert(atomic_load(&h.done), "close returned before the drain");
	gate_open(h.g);
	pthread_join(t, NULL);
	gate_free(h.g);
}

static void *enter_leave(void *p)
{
	struct holder *h = p;

	gate_enter(h->g);
	atomic_store(&h->inside, true);
	gate_leave(h->g);
	return NULL;
}

Test(gate, closed_gate_holds_new_calls)
{
	struct holder h = { 0 };
	pthread_t t;

	cr_assert_eq(gate_create(&h.g), 0);
	cr_assert_eq(gate_close(h.g, -1), 0);
	pthread_create(&t, NULL, enter_leave, &h);
	usleep(50 * 1000);
	cr_assert_not(atomic_load(&h.inside), "a call passed a closed gate");
	gate_open(h.g);
	pthread_join(t, NULL);
	cr_assert(atomic_load(&h.inside));
	gate_free(h.g);
}

/*
 * Stress: writers increment a counter inside the gate; a checkpointer
 * closes the gate, reads the counter twice with a pause between, and the
 * two reads must agree (nothing changes while closed).
 */
struct stress {
	struct gate *g;
	atomic_long counter;
	atomic_bool stop;
	atomic_long inside;
};

static void *stress_writer(void *p)
{
	struct stress *s = p;

	while (!atomic_load(&s->stop)) {
		gate_enter(s->g);
		atomic_fetch_add(&s->inside, 1);
		atomic_fetch_add(&s->counter, 1);
		atomic_fetch_sub(&s->inside, 1);
		gate_leave(s->g);
	}
	return NULL;
}

Test(gate, stress_nothing_changes_while_closed, .timeout = 60)
{
	enum { W = 6 };
	struct stress s = { 0 };
	pthread_t t[W];
	int64_t end = now_ns() + 2000000000ll;
	int rounds = 0;

	cr_assert_eq(gate_create(&s.g), 0);
	for (int k = 0; k < W; k++)
		pthread_create(&t[k], NULL, stress_writer, &s);
	while (now_ns() < end) {
		long a, b;

		cr_assert_eq(gate_close(s.g, -1), 0);
		cr_assert_eq(atomic_load(&s.inside), 0);
		a = atomic_load(&s.counter);
		usleep(200);
		b = atomic_load(&s.counter);
		gate_open(s.g);
		cr_assert_eq(a, b, "a call ran while the gate was closed");
		rounds++;
	}
	atomic_store(&s.stop, true);
	for (int k = 0; k < W; k++)
		pthread_join(t[k], NULL);
	cr_assert_gt(rounds, 10);
	cr_assert_gt(atomic_load(&s.counter), 1000);
	gate_free(s.g);
}
