/*
 * ahead.c - the opener that runs ahead of a stream (tools/ahead.h).
 *
 * Invariants (under lock):
 * 1. taken <= ready <= taken + AHEAD_OBJS: the helper fills slot p %
 *    AHEAD_OBJS only after the writer took position p - AHEAD_OBJS.
 * 2. Slots [taken, ready) hold descriptors nobody else owns; ahead_stop
 *    closes them.
 * Readahead here is no earlier read than the kernel's own readahead for
 * any reader: a --retain saved checkpoint counts the blocks as saved
 * when the view serves them, and they sit in the page cache until the
 * writer reads them a few files later.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tools/ahead.h"

struct ahead {
	const char *root;
	const struct tree *t;
	const size_t *list;
	size_t n;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t taken, ready;
	bool stop;
	int fd[AHEAD_OBJS];
};

static int open_one(const struct ahead *a, const struct tree_obj *o)
{
	char path[8192];
	int fd;

	if (!S_ISREG(o->st.st_mode) && !S_ISDIR(o->st.st_mode))
		return -EBADF;
	snprintf(path, sizeof(path), "%s/%s", a->root, o->path);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		  (S_ISDIR(o->st.st_mode) ? O_DIRECTORY : 0));
	if (fd < 0)
		return -errno;
	if (S_ISREG(o->st.st_mode) && o->st.st_size > 0)
		readahead(fd, 0, o->st.st_size < AHEAD_BYTES ?
				 (size_t)o->st.st_size : AHEAD_BYTES);
	return fd;
}

static void *ahead_main(void *arg)
{
	struct ahead *a = arg;

	for (size_t p = 0; p < a->n; p++) {
		int fd;

		pthread_mutex_lock(&a->lock);
		while (!a->stop && p >= a->taken + AHEAD_OBJS)
			pthread_cond_wait(&a->cond, &a->lock);
		pthread_mutex_unlock(&a->lock);
		if (a->stop)
			break;
		fd = open_one(a, &a->t->o[a->list[p]]);
		pthread_mutex_lock(&a->lock);
		a->fd[p % AHEAD_OBJS] = fd;
		a->ready = p + 1;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
	}
	return NULL;
}

int ahead_start(struct ahead **out, const char *root, const struct tree *t,
		const size_t *list, size_t n)
{
	struct ahead *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	*a = (struct ahead){ .root = root, .t = t, .list = list, .n = n };
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	rc = pthread_create(&a->thread, NULL, ahead_main, a);
	if (rc) {
		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->cond);
		free(a);
		return -rc;
	}
	*out = a;
	return 0;
}

int ahead_take(struct ahead *a, size_t p)
{
	int fd;

	pthread_mutex_lock(&a->lock);
	while (a->ready <= p)
		pthread_cond_wait(&a->cond, &a->lock);
	fd = a->fd[p % AHEAD_OBJS];
	a->taken = p + 1;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return fd;
}

void ahead_stop(struct ahead *a)
{
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	for (size_t p = a->taken; p < a->ready; p++)
		if (a->fd[p % AHEAD_OBJS] >= 0)
			close(a->fd[p % AHEAD_OBJS]);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a);
}
