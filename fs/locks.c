/*
 * locks.c - flock(2) on live files without holding a thread per waiter.
 *
 * A parked request's interrupt callback is registered before it is
 * parked, and whether it was interrupted is checked under l->lock while
 * parking, so an interrupt is never lost: either the check sees it, or
 * the callback finds the request parked and answers it.  The callback
 * replies only to a request it finds parked; libfuse keeps a request
 * alive while its interrupt callback runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>

#include "fs/locks.h"

#define LOCKS_RETRY_NS 5000000	/* a lock freed outside the mount */

struct lreq {
	struct lreq *next;
	fuse_req_t req;
	int fd;
	int op;			/* LOCK_SH or LOCK_EX */
	int rc;			/* answer once done */
};

struct locks {
	pthread_mutex_t lock;
	pthread_cond_t kick;	/* monotonic clock */
	struct lreq *parked;	/* lock */
	bool stop;		/* lock */
	bool kicked;		/* lock: retry at once */
	pthread_t thread;
};

/* Try a parked request once: true when it is done (l->lock held). */
static bool try_locked(struct lreq *r)
{
	if (flock(r->fd, r->op | LOCK_NB) == 0)
		r->rc = 0;
	else if (errno == EWOULDBLOCK || errno == EINTR)
		return false;
	else
		r->rc = errno;
	return true;
}

static void answer_all(struct lreq *done)
{
	while (done) {
		struct lreq *next = done->next;

		fuse_reply_err(done->req, done->rc);
		free(done);
		done = next;
	}
}

/* Take the finished requests off the parked list. */
static struct lreq *retry_locked(struct locks *l)
{
	struct lreq **pp = &l->parked, *done = NULL, *r;

	while ((r = *pp)) {
		if (l->stop)
			r->rc = EINTR;
		if (!l->stop && !try_locked(r)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		r->next = done;
		done = r;
	}
	return done;
}

static void *retry_thread(void *arg)
{
	struct locks *l = arg;
	struct timespec ts;
	bool stop;

	pthread_mutex_lock(&l->lock);
	do {
		struct lreq *done;

		if (!l->parked && !l->stop) {
			pthread_cond_wait(&l->kick, &l->lock);
		} else if (!l->kicked && !l->stop) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += LOCKS_RETRY_NS;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&l->kick, &l->lock, &ts);
		}
		l->kicked = false;
		stop = l->stop;
		done = retry_locked(l);
		pthread_mutex_unlock(&l->lock);
		answer_all(done);
		pthread_mutex_lock(&l->lock);
	} while (!stop);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int locks_create(struct locks **out)
{
	struct locks *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int rc;

	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->kick, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&l->thread, NULL, retry_thread, l);
	if (rc) {
		pthread_cond_destroy(&l->kick);
		pthread_mutex_destroy(&l->lock);
		free(l);
		return -rc;
	}
	*out = l;
	return 0;
}

void locks_free(struct locks *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_signal(&l->kick);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->kick);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

void locks_kick(struct locks *l)
{
	pthread_mutex_lock(&l->lock);
	if (l->parked) {
		l->kicked = true;
		pthread_cond_signal(&l->kick);
	}
	pthread_mutex_unlock(&l->lock);
}

static void interrupted(fuse_req_t req, void *arg)
{
	struct locks *l = arg;
	struct lreq **pp, *r = NULL;

	pthread_mutex_lock(&l->lock);
	for (pp = &l->parked; *pp; pp = &(*pp)->next) {
		if ((*pp)->req == req) {
			r = *pp;
			*pp = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	if (r) {
		fuse_reply_err(req, EINTR);
		free(r);
	}
}

/* Park a request that must wait; answers it if that is not possible. */
static void park(struct locks *l, fuse_req_t req, int fd, int op)
{
	struct lreq *r = malloc(sizeof(*r));
	int rc = 0;

	if (!r)
		return (void)fuse_reply_err(req, ENOLCK);
	*r = (struct lreq){ .req = req, .fd = fd, .op = op };
	fuse_req_interrupt_func(req, interrupted, l);
	pthread_mutex_lock(&l->lock);
	if (fuse_req_interrupted(req) || l->stop) {
		rc = EINTR;
	} else {
		r->next = l->parked;
		l->parked = r;
		pthread_cond_signal(&l->kick);
	}
	pthread_mutex_unlock(&l->lock);
	if (rc) {
		free(r);
		fuse_reply_err(req, rc);
	}
}

void locks_flock(struct locks *l, fuse_req_t req, int fd, int op)
{
	int how = op & (LOCK_SH | LOCK_EX | LOCK_UN);

	if (how == LOCK_UN) {
		int rc = flock(fd, LOCK_UN) < 0 ? errno : 0;

		locks_kick(l);
		return (void)fuse_reply_err(req, rc);
	}
	if (flock(fd, how | LOCK_NB) == 0)
		return (void)fuse_reply_err(req, 0);
	if (errno != EWOULDBLOCK || (op & LOCK_NB))
		return (void)fuse_reply_err(req, errno);
	park(l, req, fd, how);
}
