/*
 * fdcap.c - per-uid shares of the daemon's descriptors (fdcap.h).
 *
 * Invariants, under lock:
 *  1. slots[k].held is the number of opens charged to slots[k].uid that
 *     were not given back; a slot, once used, keeps its uid (held may
 *     drop to 0), so lookups never meet a hole in a probe chain.
 *  2. total is the sum of every slot's held, and total <= pool.
 *  3. used < cap * 3 / 4: the open-addressed table never fills.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "fs/fdcap.h"

struct fdcap_slot {
	uid_t uid;
	unsigned held;
	bool used;
};

struct fdcap {
	pthread_mutex_t lock;	/* guards everything below */
	unsigned per_user;	/* immutable */
	unsigned pool;		/* immutable */
	uid_t owner;		/* immutable */
	unsigned total;
	size_t cap, used;	/* slots, slots in use (a power of two) */
	struct fdcap_slot *slots;
};

int fdcap_create(unsigned per_user, unsigned pool, uid_t owner,
		 struct fdcap **out)
{
	struct fdcap *c;

	if (per_user == 0 || per_user > pool)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cap = 64;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return -ENOMEM;
	}
	c->per_user = per_user;
	c->pool = pool;
	c->owner = owner;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void fdcap_free(struct fdcap *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->slots);
	free(c);
}

static bool exempt(const struct fdcap *c, uid_t uid)
{
	return uid == 0 || uid == c->owner;
}

static size_t probe(const struct fdcap_slot *slots, size_t cap, uid_t uid)
{
	size_t k = ((size_t)uid * 2654435761u) & (cap - 1);

	while (slots[k].used && slots[k].uid != uid)
		k = (k + 1) & (cap - 1);
	return k;
}

/* lock held: double the table (invariant 3). */
static int grow(struct fdcap *c)
{
	size_t cap = c->cap * 2;
	struct fdcap_slot *s = calloc(cap, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t k = 0; k < c->cap; k++)
		if (c->slots[k].used)
			s[probe(s, cap, c->slots[k].uid)] = c->slots[k];
	free(c->slots);
	c->slots = s;
	c->cap = cap;
	return 0;
}

/* lock held: uid's slot, made if new; NULL without memory. */
static struct fdcap_slot *slot_of(struct fdcap *c, uid_t uid)
{
	size_t k = probe(c->slots, c->cap, uid);

	if (c->slots[k].used)
		return &c->slots[k];
	if ((c->used + 1) * 4 >= c->cap * 3) {
		if (grow(c) < 0)
			return NULL;
		k = probe(c->slots, c->cap, uid);
	}
	c->slots[k] = (struct fdcap_slot){ .uid = uid, .used = true };
	c->used++;
	return &c->slots[k];
}

int fdcap_take(struct fdcap *c, uid_t uid)
{
	struct fdcap_slot *s;
	int rc = -EMFILE;

	if (exempt(c, uid))
		return 0;
	pthread_mutex_lock(&c->lock);
	s = slot_of(c, uid);
	if (!s) {
		rc = -ENOMEM;
	} else if (s->held < c->per_user && c->total < c->pool) {
		s->held++;
		c->total++;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void fdcap_give(struct fdcap *c, uid_t uid)
{
	struct fdcap_slot *s;

	if (exempt(c, uid))
		return;
	pthread_mutex_lock(&c->lock);
	s = &c->slots[probe(c->slots, c->cap, uid)];
	if (s->used && s->held) {
		s->held--;
		c->total--;
	}
	pthread_mutex_unlock(&c->lock);
}
