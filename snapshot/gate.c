/*
 * gate.c - drain gate.
 *
 * inflight and closed are sequentially consistent atomics used as a
 * Dekker pair: an entering call increments inflight then reads closed; the
 * closer sets closed then reads inflight.  At least one of them sees the
 * other's write, so a call either sees the gate closed (and backs out) or
 * is counted before the closer decides the drain is complete.
 * The mutex and condition variables only carry wake-ups.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "snapshot/gate.h"

struct gate {
	atomic_uint inflight;
	atomic_bool closed;
	pthread_mutex_t lock;
	pthread_cond_t drained;	/* inflight reached 0 while closed */
	pthread_cond_t opened;	/* closed went false */
};

int gate_create(struct gate **out)
{
	struct gate *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;

	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->drained, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&g->opened, NULL);
	*out = g;
	return 0;
}

void gate_free(struct gate *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->opened);
	pthread_cond_destroy(&g->drained);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static void gate_dec(struct gate *g)
{
	if (atomic_fetch_sub(&g->inflight, 1) == 1 && atomic_load(&g->closed)) {
		pthread_mutex_lock(&g->lock);
		pthread_cond_broadcast(&g->drained);
		pthread_mutex_unlock(&g->lock);
	}
}

void gate_enter(struct gate *g)
{
	for (;;) {
		atomic_fetch_add(&g->inflight, 1);
		if (!atomic_load(&g->closed))
			return;
		gate_dec(g);
		pthread_mutex_lock(&g->lock);
		while (atomic_load(&g->closed))
			pthread_cond_wait(&g->opened, &g->lock);
		pthread_mutex_unlock(&g->lock);
	}
}

void gate_leave(struct gate *g)
{
	gate_dec(g);
}

static void deadline_after(struct timespec *ts, int64_t ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ns / 1000000000;
	ts->tv_nsec += ns % 1000000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int gate_close(struct gate *g, int64_t timeout_ns)
{
	struct timespec deadline;
	int rc = 0;

	if (timeout_ns >= 0)
		deadline_after(&deadline, timeout_ns);
	pthread_mutex_lock(&g->lock);
	atomic_store(&g->closed, true);
	while (atomic_load(&g->inflight) > 0 && rc == 0) {
		if (timeout_ns < 0)
			pthread_cond_wait(&g->drained, &g->lock);
		else if (pthread_cond_timedwait(&g->drained, &g->lock,
						&deadline) == ETIMEDOUT)
			rc = atomic_load(&g->inflight) > 0 ? -ETIMEDOUT : 0;
	}
	pthread_mutex_unlock(&g->lock);
	if (rc < 0)
		gate_open(g);
	return rc;
}

void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	atomic_store(&g->closed, false);
	pthread_cond_broadcast(&g->opened);
	pthread_mutex_unlock(&g->lock);
}

unsigned gate_inflight(struct gate *g)
{
	return atomic_load(&g->inflight);
}
