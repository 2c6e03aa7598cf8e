/*
 * ckeep.c - release checkpoints whose --keep-for age has passed.
 *
 * Entries sit in a list sorted by deadline (CLOCK_MONOTONIC); one thread
 * sleeps until the first is due.  An entry names its checkpoint by name
 * and T and holds nothing of it: a checkpoint released earlier (swactl
 * release, its last view) frees everything at once, and its entry then
 * finds nothing, or a later checkpoint of that name with another T, which
 * it leaves alone; no event is written then.
 *
 * Lock: k->lock guards the list and stop; the release itself runs
 * without it (it takes the checkpoint set's locks).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "snapshot/ckeep.h"
#include "snapshot/ckpt.h"
#include "snapshot/events.h"

struct keep {
	struct keep *next;
	char name[65];
	struct timespec t;	/* its T */
	int64_t due;		/* CLOCK_MONOTONIC ns */
	int64_t age_ns;		/* as asked, for the event */
};

struct ckeep {
	struct ckpt_set *set;	/* immutable */
	struct events *ev;	/* immutable */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* lock: the list's head or stop changed */
	struct keep *list;	/* lock: by due, earliest first */
	bool stop;		/* lock */
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void expire(struct ckeep *k, struct keep *e)
{
	struct ckpt *c = ckpt_get(k->set, e->name);
	const struct timespec *t = c ? ckpt_time(c) : NULL;

	if (t && t->tv_sec == e->t.tv_sec && t->tv_nsec == e->t.tv_nsec &&
	    ckpt_release_this(c) == 0)
		events_emit(k->ev, "keep-expired", "\"name\":\"%s\","
			    "\"keep_for_s\":%.3f", e->name, e->age_ns / 1e9);
	ckpt_put(c);
	free(e);
}

static void *ckeep_thread(void *arg)
{
	struct ckeep *k = arg;
	struct keep *e;

	pthread_mutex_lock(&k->lock);
	while (!k->stop) {
		int64_t now = mono_ns();

		if (k->list && k->list->due <= now) {
			e = k->list;
			k->list = e->next;
			pthread_mutex_unlock(&k->lock);
			expire(k, e);
			pthread_mutex_lock(&k->lock);
		} else if (k->list) {
			struct timespec at = {
				.tv_sec = k->list->due / 1000000000,
				.tv_nsec = k->list->due % 1000000000 };

			pthread_cond_timedwait(&k->wake, &k->lock, &at);
		} else {
			pthread_cond_wait(&k->wake, &k->lock);
		}
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

int ckeep_create(struct ckpt_set *s, struct events *ev, struct ckeep **out)
{
	struct ckeep *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;
	int rc;

	if (!k)
		return -ENOMEM;
	k->set = s;
	k->ev = ev;
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->wake, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&k->thread, NULL, ckeep_thread, k);
	if (rc < 0) {
		pthread_cond_destroy(&k->wake);
		pthread_mutex_destroy(&k->lock);
		free(k);
		return rc;
	}
	*out = k;
	return 0;
}

void ckeep_free(struct ckeep *k)
{
	struct keep *e;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	while ((e = k->list)) {
		k->list = e->next;
		free(e);
	}
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int ckeep_add(struct ckeep *k, struct ckpt *c, int64_t age_ns)
{
	struct keep *e = calloc(1, sizeof(*e)), **pp;

	if (!e)
		return -ENOMEM;
	snprintf(e->name, sizeof(e->name), "%s", ckpt_name(c));
	e->t = *ckpt_time(c);
	e->age_ns = age_ns;
	e->due = mono_ns() + age_ns;
	pthread_mutex_lock(&k->lock);
	for (pp = &k->list; *pp && (*pp)->due <= e->due; pp = &(*pp)->next)
		;
	e->next = *pp;
	*pp = e;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
	return 0;
}
