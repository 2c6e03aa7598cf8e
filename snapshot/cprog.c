/*
 * cprog.c - T size and save rate of one checkpoint (see cprog.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "snapshot/cprog.h"

#define NS 1000000000ull
#define CPROG_SAMPLES 32

struct cprog {
	atomic_int tsize_state;		/* enum cprog_tsize; release-stored
					 * after the two below */
	uint64_t t_bytes, t_files;
	pthread_mutex_t lock;		/* the samples */
	uint64_t at[CPROG_SAMPLES];	/* CLOCK_MONOTONIC ns */
	uint64_t saved[CPROG_SAMPLES];
	unsigned n;			/* samples held, newest at n - 1 */
};

int cprog_create(struct cprog **out)
{
	struct cprog *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void cprog_free(struct cprog *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void cprog_set_tsize(struct cprog *p, enum cprog_tsize st, uint64_t bytes,
		     uint64_t files)
{
	p->t_bytes = bytes;
	p->t_files = files;
	atomic_store_explicit(&p->tsize_state, st, memory_order_release);
}

enum cprog_tsize cprog_tsize(struct cprog *p, uint64_t *bytes,
			     uint64_t *files)
{
	int st = atomic_load_explicit(&p->tsize_state, memory_order_acquire);

	*bytes = st == CPROG_DONE ? p->t_bytes : 0;
	*files = st == CPROG_DONE ? p->t_files : 0;
	return st;
}

const char *cprog_tsize_name(enum cprog_tsize st)
{
	static const char *const names[] = { "computing", "done", "stopped",
					     "failed" };

	return names[st];
}

/* The sample to measure from: the youngest at least the window old, else
 * the oldest at least a second old; -1 if none. */
static int base_locked(const struct cprog *p, uint64_t now_ns)
{
	int best = -1;

	for (int k = (int)p->n - 1; k >= 0; k--) {
		uint64_t age = now_ns - p->at[k];

		if (age < NS)
			continue;
		best = k;
		if (age >= CPROG_RATE_WINDOW_S * NS)
			break;
	}
	return best;
}

static void push_locked(struct cprog *p, uint64_t now_ns, uint64_t saved)
{
	/* keep one sample per second at most: the window stays covered */
	if (p->n && now_ns - p->at[p->n - 1] < NS)
		return;
	if (p->n == CPROG_SAMPLES) {
		for (unsigned k = 1; k < p->n; k++) {
			p->at[k - 1] = p->at[k];
			p->saved[k - 1] = p->saved[k];
		}
		p->n--;
	}
	p->at[p->n] = now_ns;
	p->saved[p->n++] = saved;
}

double cprog_rate(struct cprog *p, uint64_t now_ns, uint64_t saved,
		  uint64_t first_ns)
{
	double rate = -1;
	int b;

	pthread_mutex_lock(&p->lock);
	b = base_locked(p, now_ns);
	if (!first_ns)
		rate = -1;	/* the save has not begun */
	else if (b >= 0 && saved >= p->saved[b])
		rate = (double)(saved - p->saved[b]) * NS /
		       (double)(now_ns - p->at[b]);
	else if (now_ns > first_ns)
		rate = (double)saved * NS / (double)(now_ns - first_ns);
	push_locked(p, now_ns, saved);
	pthread_mutex_unlock(&p->lock);
	return rate;
}
