/*
 * ckpt.c - checkpoint lifecycle and capture hooks.
 *
 * Ordering rules (see also cobj.h):
 *   1. A live block, attribute set or directory is never changed before
 *      its pre-image is in the store: every modifying call runs its hook
 *      first, inside the drain gate.
 *   2. T is recorded with the gate closed and drained, so every modifying
 *      call either returned before T (its effect is in the image) or had
 *      not begun (it will run its hook against the new checkpoint).
 *   3. Hooks walk the list of active checkpoints holding the list lock
 *      shared; taking and releasing change the list holding it exclusive,
 *      so a released checkpoint is never captured into after its release.
 *   4. A checkpoint's memory is freed on its last reference: the list
 *      holds one while active, every view holds one.
 *
 * States:
 *
 *      ckpt_take()            capture fails / store full
 *   (none) -------> ACTIVE ----------------------------> INVALID
 *                     |                                     |
 *                     | ckpt_release(), last view unmounted |
 *                     v                                     v
 *                  RELEASED <-------------------------------+
 *
 *   state      hooks capture   views serve   in list
 *   ACTIVE     yes             yes           yes
 *   INVALID    no              no (EIO)      yes
 *   RELEASED   no              no (EIO)      no
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/ckpt.h"
#include "snapshot/cprog.h"
#include "snapshot/events.h"
#include "snapshot/gate.h"
#include "snapshot/hist.h"
#include "snapshot/nscap.h"
#include "snapshot/parse.h"
#include "snapshot/pstore.h"
#include "snapshot/scope.h"

enum ckpt_state { CKPT_ACTIVE, CKPT_INVALID, CKPT_RELEASED };

struct ckpt {
	struct ckpt *next;		/* set->lock */
	struct ckpt_set *set;		/* immutable */
	char name[65];			/* immutable */
	unsigned flags;			/* immutable, enum ckpt_take_flags */
	struct timespec t;		/* immutable: T */
	uint64_t pause_us;		/* immutable */
	atomic_int state;		/* enum ckpt_state */
	atomic_int why;			/* set before state turns INVALID */
	atomic_int refs;
	atomic_uint views;
	struct cobj_table *objs;	/* immutable */
	char **scope;			/* immutable; NULL: whole tree */
	size_t nscope;
	struct cprog *prog;		/* immutable; for status */
};

struct ckpt_set {
	struct gate *gate;
	pthread_rwlock_t lock;		/* list; hooks hold it shared */
	pthread_mutex_t take_lock;	/* one take at a time */
	struct ckpt *list;		/* lock */
	atomic_uint nactive;		/* entries in list */
	struct pstore *store;		/* immutable */
	unsigned bs;			/* immutable */
	enum ckpt_on_full on_full;	/* immutable */
	int64_t throttle_ns;		/* immutable */
	uint64_t store_bytes;		/* immutable: store_mem + store_max */
	char *root;			/* immutable: BACKING's path */
	int root_fd;			/* immutable: BACKING, not owned */
	atomic_llong full_warned;	/* when store-full was last emitted, s */
	atomic_ullong warn_seen;	/* pstore_warn_seq() last reported */
	atomic_uint throttled;		/* calls waiting for space now */
	atomic_ullong throttle_waits, throttle_wait_us, throttle_timeouts;
	struct events *ev;		/* immutable, not owned */
	struct hist *hist;		/* immutable, not owned; may be NULL */
	void (*on_reached)(void *, struct ckpt *);	/* immutable */
	void *on_reached_arg;		/* immutable */
	struct txn *txn;		/* immutable, not owned; may be NULL */
	atomic_uint kept;		/* descriptors kept by all tables */
	unsigned kept_max;		/* immutable */
	/* the checkpoint being taken, for status (take_lock serialises
	 * the writers; pend_lock guards the readers) */
	pthread_mutex_t pend_lock;
	enum ckpt_phase pend_phase;
	char pend_name[65];
	struct timespec pend_since;	/* CLOCK_REALTIME */
};

/* One call's wait for store space under on_full=throttle. */
struct throttle {
	uint64_t seq;			/* pstore_freed_seq() before a pass */
	struct timespec t0, deadline;	/* CLOCK_MONOTONIC */
	bool waiting;			/* counted in set->throttled */
	bool expired;			/* deadline passed: invalidate */
};

static uint64_t elapsed_us(const struct timespec *a, const struct timespec *b)
{
	return (uint64_t)((b->tv_sec - a->tv_sec) * 1000000 +
			  (b->tv_nsec - a->tv_nsec) / 1000);
}

static bool ckpt_state_ok(const struct ckpt *c)
{
	int s = atomic_load(&c->state);

	return s >= CKPT_ACTIVE && s <= CKPT_RELEASED &&
	       atomic_load(&c->refs) >= (s == CKPT_RELEASED ? 0 : 1);
}

/*
 * Later pre-images reuse the space of dropped ones inside a spill segment,
 * and a segment file goes once none of its records is live.  Segments of
 * an eighth of store_max keep a store's disk space in several files, so
 * an emptied one goes back to the filesystem while the others stay.
 */
static uint64_t seg_size(uint64_t store_max)
{
	uint64_t n = store_max / 8;

	return n < PSTORE_SEG_MIN ? PSTORE_SEG_MIN
	       : n > PSTORE_SEG_DEFAULT ? PSTORE_SEG_DEFAULT : n;
}

int ckpt_set_create(const struct ckpt_set_opts *o, struct ckpt_set **out)
{
	uint64_t total = o->store_mem + o->store_max;
	struct pstore_limits lim = { .mem_max = o->store_mem,
				     .disk_max = o->store_max,
				     .seg_max = seg_size(o->store_max) };
	struct ckpt_set *s = calloc(1, sizeof(*s));
	pthread_rwlockattr_t ra;
	int rc;

	if (!s)
		return -ENOMEM;
	if (total < o->store_mem)
		total = UINT64_MAX;
	/* store-warn at 80%, again only after falling below 70% */
	lim.warn_at = total / 10 * 8;
	lim.rearm_below = total / 10 * 7;
	s->store_bytes = total;
	rc = gate_create(&s->gate);
	if (rc == 0)
		rc = pstore_create(o->store_dir, &lim, &s->store);
	if (rc < 0) {
		gate_free(s->gate);
		free(s);
		return rc;
	}
	/* Writers first: hooks hold the lock shared all the time under load,
	 * and a release must not starve behind them. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->take_lock, NULL);
	pthread_mutex_init(&s->pend_lock, NULL);
	s->bs = o->block_size;
	s->on_full = o->on_full;
	s->throttle_ns = o->throttle_ns;
	s->ev = o->events;
	s->hist = o->hist;
	s->on_reached = o->on_reached;
	s->on_reached_arg = o->on_reached_arg;
	s->txn = o->txn;
	s->root_fd = o->root_fd;
	s->kept_max = o->kept_max;
	s->root = strdup(o->root ? o->root : "/");
	if (!s->root) {
		ckpt_set_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static void ckpt_free(struct ckpt *c)
{
	for (size_t k = 0; k < c->nscope; k++)
		free(c->scope[k]);
	free(c->scope);
	cobj_table_free(c->objs);
	cprog_free(c->prog);
	free(c);
}

/* The history record of c, ending now with outcome (unless invalid). */
static void hist_fill(struct ckpt *c, struct hist_rec *r, const char *outcome)
{
	int why = atomic_load(&c->why);
	struct timespec now;
	struct cobj_stats st;
	uint64_t bytes, files;

	clock_gettime(CLOCK_REALTIME, &now);
	cobj_table_stats(c->objs, &st);
	memset(r, 0, sizeof(*r));
	strcpy(r->name, c->name);
	snprintf(r->outcome, sizeof(r->outcome), "%s",
		 why ? "invalidated" : outcome);
	snprintf(r->reason, sizeof(r->reason), "%s", why == -ENOSPC ? "store full"
		 : why ? "capture failed" : "");
	r->t = c->t.tv_sec;
	r->ended = now.tv_sec;
	r->pause_us = c->pause_us;
	r->duration_s = (double)(now.tv_sec - c->t.tv_sec) +
			(double)(now.tv_nsec - c->t.tv_nsec) / 1e9;
	r->captured_bytes = st.captured_bytes;
	r->peak_store_bytes = st.peak_held_bytes;
	r->files = st.released;
	r->saved_bytes = st.saved_bytes;
	r->t_size_bytes = r->t_files = -1;
	if (cprog_tsize(c->prog, &bytes, &files) == CPROG_DONE) {
		r->t_size_bytes = (int64_t)bytes;
		r->t_files = (int64_t)files;
	}
}

/* History is advice: a record that cannot be written is only missed. */
static void hist_put(struct ckpt_set *s, const struct hist_rec *r)
{
	if (s->hist)
		hist_append(s->hist, r, r->ended);
}

static void hist_ended(struct ckpt_set *s, struct ckpt *c, const char *outcome)
{
	struct hist_rec r;

	hist_fill(c, &r, outcome);
	hist_put(s, &r);
}

static void hist_failed(struct ckpt_set *s, const char *name, const char *why)
{
	struct hist_rec r = { .t_size_bytes = -1, .t_files = -1 };

	snprintf(r.name, sizeof(r.name), "%s", name);
	strcpy(r.outcome, "failed");
	snprintf(r.reason, sizeof(r.reason), "%s", why);
	r.t = r.ended = time(NULL);
	hist_put(s, &r);
}

/*
 * Was the object at r, which has no entry yet, inside c's scope at T?
 * Its path comes from the kernel (/proc/self/fd): covered by a scope
 * path, or moved out of one with a directory of the T subtree (scope.h
 * rule 2).  When in doubt (no path, a file with several names of which
 * another may be inside) the answer is yes: capturing too much costs
 * store space, capturing too little would break G1.
 */
static bool in_scope(const struct ckpt *c, const struct cobj_ref *r)
{
	char link[32], path[PATH_MAX];
	size_t rl = strlen(c->set->root);
	struct stat st;
	ssize_t n;

	if (!c->nscope)
		return true;
	if (fstatat(r->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ||
	    (!S_ISDIR(st.st_mode) && st.st_nlink > 1))
		return true;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", r->fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return true;
	path[n] = '\0';
	if (strncmp(path, c->set->root, rl))
		return true;
	if (rl == 1)
		rl = 0;		/* BACKING is "/" */
	/* BACKING itself has an entry from T (scope.h rule 1) */
	if (path[rl] != '/')
		return true;
	return scope_covers((const char *const *)c->scope, c->nscope,
			    path + rl + 1) ||
	       scope_holds(c->objs, c->set->root_fd, path + rl + 1);
}

void ckpt_put(struct ckpt *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		ckpt_free(c);
}

void ckpt_set_free(struct ckpt_set *s)
{
	struct ckpt *c, *next;

	if (!s)
		return;
	for (c = s->list; c; c = next) {
		next = c->next;
		hist_ended(s, c, "stopped");
		ckpt_put(c);
	}
	pstore_free(s->store);
	gate_free(s->gate);
	free(s->root);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->take_lock);
	pthread_mutex_destroy(&s->pend_lock);
	free(s);
}

bool ckpt_active(struct ckpt_set *s)
{
	return atomic_load(&s->nactive) != 0;
}

void ckpt_op_begin(struct ckpt_set *s)
{
	gate_enter(s->gate);
}

void ckpt_op_end(struct ckpt_set *s)
{
	gate_leave(s->gate);
}

const char *ckpt_name(const struct ckpt *c)
{
	return c->name;
}

unsigned ckpt_view_count(const struct ckpt *c)
{
	return atomic_load(&((struct ckpt *)c)->views);
}

const struct timespec *ckpt_time(const struct ckpt *c)
{
	return &c->t;
}

struct cobj_table *ckpt_objects(struct ckpt *c)
{
	return c->objs;
}

struct ckpt_set *ckpt_set_of(const struct ckpt *c)
{
	return c->set;
}

bool ckpt_usable(const struct ckpt *c)
{
	return atomic_load(&((struct ckpt *)c)->state) == CKPT_ACTIVE;
}

const char *ckpt_unusable_why(const struct ckpt *c)
{
	switch (atomic_load(&((struct ckpt *)c)->state)) {
	case CKPT_ACTIVE:
		return NULL;
	case CKPT_INVALID:
		return atomic_load(&((struct ckpt *)c)->why) == -ENOSPC
		       ? "invalidated: store full"
		       : "invalidated: capture failed";
	default:
		return "released";
	}
}

static void emit_full(struct ckpt *c, const struct throttle *th)
{
	struct timespec now;

	if (!th || !th->waiting) {
		events_emit(c->set->ev, "store-full", "\"name\":\"%s\","
			    "\"policy\":\"invalidate\",\"action\":\"checkpoint "
			    "invalidated, live writes go on\"", c->name);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	events_emit(c->set->ev, "store-full", "\"name\":\"%s\","
		    "\"policy\":\"throttle\",\"action\":\"invalidate\","
		    "\"waited_ms\":%lu", c->name,
		    (unsigned long)(elapsed_us(&th->t0, &now) / 1000));
}

/*
 * Views fail from here on, and the pre-images go now, not when the last
 * view lets go: live writes, and other checkpoints, get the space back.
 * th: the wait that ran out under on_full=throttle, or NULL.
 */
static void ckpt_invalidate(struct ckpt *c, int err, const struct throttle *th)
{
	char q[160];
	int was = CKPT_ACTIVE;

	int none = 0;

	atomic_compare_exchange_strong(&c->why, &none, err);
	if (!atomic_compare_exchange_strong(&c->state, &was, CKPT_INVALID))
		return;
	if (th && th->waiting)
		atomic_fetch_add(&c->set->throttle_timeouts, 1);
	if (err == -ENOSPC)
		emit_full(c, th);
	events_emit(c->set->ev, "failed",
		    "\"name\":\"%s\",\"reason\":\"%s\"", c->name,
		    events_quote(err == -ENOSPC ? "store full: checkpoint "
				 "invalidated, live writes go on"
				 : "capture failed: checkpoint invalidated",
				 q, sizeof(q)));
	cobj_table_purge(c->objs);
	pstore_kick(c->set->store);
}

void ckpt_report_integrity(struct ckpt *c, const char *what)
{
	char q[512];

	events_emit(c->set->ev, "integrity-error",
		    "\"name\":\"%s\",\"file\":\"%s\"", c->name,
		    events_quote(what, q, sizeof(q)));
}

enum hook { H_DATA, H_ATTR, H_XATTR, H_DIR, H_UNLINK_LAST, H_NEW };

/* The last name of r goes (r's entry co): capture it whole.  A released
 * object the table could not keep is lost to the views: said now (G3),
 * and again by each view that fails on it. */
static int capture_last(struct ckpt *c, struct cobj *co,
			const struct cobj_ref *r)
{
	bool lost = cobj_flags(co) & COBJ_LOST;
	char link[32], path[PATH_MAX] = "a file", what[PATH_MAX + 160];
	int rc = cobj_capture_all(c->objs, co, r);
	ssize_t n;

	if (lost || !(cobj_flags(co) & COBJ_LOST))
		return rc;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", r->fd);
	n = r->fd >= 0 ? readlink(link, path, sizeof(path) - 1) : -1;
	if (n > 0)
		path[n] = '\0';
	snprintf(what, sizeof(what), "%s (inode %lu): released, then its last "
		 "name went with %u descriptors kept already: views fail with "
		 "EIO", path, (unsigned long)r->ino, c->set->kept_max);
	ckpt_report_integrity(c, what);
	return rc;
}

static int hook_one(struct ckpt *c, const struct cobj_ref *r, enum hook h,
		    uint64_t off, uint64_t len)
{
	struct cobj *co;
	int rc;

	if (h == H_NEW)
		return cobj_mark_new(c->objs, r);
	/* first touch outside the scope: never capture this object */
	if (c->nscope && !cobj_find(c->objs, r->dev, r->ino) &&
	    !in_scope(c, r))
		return cobj_mark_new(c->objs, r);
	/* Creating the entry records the T attributes (cobj.h rule 2). */
	rc = cobj_get(c->objs, r, &co);
	if (rc < 0)
		return rc;
	switch (h) {
	case H_DATA:
		return cobj_capture_range(c->objs, co, r, off, len);
	case H_XATTR:
		return cobj_capture_xattrs(c->objs, co, r);
	case H_DIR:
		return nscap_capture(co, r);
	case H_UNLINK_LAST:
		/* a removed directory must still list (empty) in views */
		if (S_ISDIR(cobj_stat(co)->st_mode) &&
		    (rc = nscap_capture(co, r)) < 0)
			return rc;
		return capture_last(c, co, r);
	default:
		return 0;
	}
}

/* Say, at most once a second, that a write was refused for a full store. */
static void emit_refused(struct ckpt_set *s, struct ckpt *c)
{
	long long now = time(NULL), last = atomic_load(&s->full_warned);

	if (now != last && atomic_compare_exchange_strong(&s->full_warned,
							  &last, now))
		events_emit(s->ev, "store-full", "\"name\":\"%s\","
			    "\"policy\":\"fail-writes\",\"action\":\"writes "
			    "needing a capture fail with ENOSPC\"", c->name);
}

/* Say once per crossing that the store passed 80% (pstore_warn_seq). */
static void note_store_warn(struct ckpt_set *s, struct ckpt *c)
{
	uint64_t seq = pstore_warn_seq(s->store);
	uint64_t seen = atomic_load(&s->warn_seen);
	struct ckpt_store_info si;

	if (seq == seen ||
	    !atomic_compare_exchange_strong(&s->warn_seen, &seen, seq))
		return;
	ckpt_store_info(s, &si);
	events_emit(s->ev, "store-warn", "\"name\":\"%s\",\"used_bytes\":%lu,"
		    "\"max_bytes\":%lu", c->name, (unsigned long)si.used_bytes,
		    (unsigned long)si.max_bytes);
}

/*
 * The store policy for c, whose capture failed with rc: returns 0 (the
 * call goes on), -ENOSPC (it must fail) or 1 (wait for space, retry).
 */
static int on_capture_error(struct ckpt_set *s, struct ckpt *c, int rc,
			    const struct throttle *th)
{
	if (rc == -ENOSPC && s->on_full == CKPT_FULL_FAIL_WRITES) {
		emit_refused(s, c);
		return rc;
	}
	if (rc == -ENOSPC && s->on_full == CKPT_FULL_THROTTLE) {
		if (!th->expired)
			return 1;
	}
	ckpt_invalidate(c, rc, th);
	return 0;
}

/* Run the hook for every active checkpoint; -EAGAIN: wait and rerun.
 * Captures are idempotent, so a rerun redoes only what failed. */
static int hook_pass(struct ckpt_set *s, const struct cobj_ref *r,
		     enum hook h, uint64_t off, uint64_t len,
		     struct throttle *th)
{
	bool wait = false;
	struct ckpt *c;
	int err = 0;

	th->seq = pstore_freed_seq(s->store);
	pthread_rwlock_rdlock(&s->lock);
	for (c = s->list; c; c = c->next) {
		int rc;

		if (atomic_load(&c->state) != CKPT_ACTIVE)
			continue;
		rc = hook_one(c, r, h, off, len);
		if (rc == 0) {
			note_store_warn(s, c);
			continue;
		}
		rc = on_capture_error(s, c, rc, th);
		if (rc > 0)
			wait = true;
		else if (rc < 0)
			err = rc;
	}
	pthread_rwlock_unlock(&s->lock);
	return wait ? -EAGAIN : err;
}

/*
 * Wait for store space with no lock held (ckpt.h): the set's list lock
 * would block releases, an entry lock the views.  Frees and state
 * changes move pstore_freed_seq and wake us.
 */
static void throttle_wait(struct ckpt_set *s, struct throttle *th)
{
	struct timespec now;

	if (!th->waiting) {
		th->waiting = true;
		clock_gettime(CLOCK_MONOTONIC, &th->t0);
		th->deadline.tv_sec = th->t0.tv_sec +
				      s->throttle_ns / 1000000000;
		th->deadline.tv_nsec = th->t0.tv_nsec +
				       s->throttle_ns % 1000000000;
		if (th->deadline.tv_nsec >= 1000000000) {
			th->deadline.tv_sec++;
			th->deadline.tv_nsec -= 1000000000;
		}
		atomic_fetch_add(&s->throttled, 1);
		atomic_fetch_add(&s->throttle_waits, 1);
	}
	if (pstore_wait_freed(s->store, th->seq, &th->deadline) == -ETIMEDOUT)
		th->expired = true;
	/* space freed again and again, always taken by others: the wait
	 * still ends at its deadline (a drain waits for it) */
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > th->deadline.tv_sec ||
	    (now.tv_sec == th->deadline.tv_sec &&
	     now.tv_nsec >= th->deadline.tv_nsec))
		th->expired = true;
}

static void throttle_end(struct ckpt_set *s, const struct throttle *th)
{
	struct timespec now;

	if (!th->waiting)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	atomic_fetch_add(&s->throttle_wait_us, elapsed_us(&th->t0, &now));
	atomic_fetch_sub(&s->throttled, 1);
}

static int hook_all(struct ckpt_set *s, const struct cobj_ref *r,
		    enum hook h, uint64_t off, uint64_t len)
{
	struct throttle th = { .waiting = false };
	int rc;

	if (atomic_load(&s->nactive) == 0)
		return 0;
	while ((rc = hook_pass(s, r, h, off, len, &th)) == -EAGAIN)
		throttle_wait(s, &th);
	throttle_end(s, &th);
	return rc;
}

int ckpt_before_data(struct ckpt_set *s, const struct cobj_ref *r,
		     uint64_t off, uint64_t len)
{
	return hook_all(s, r, H_DATA, off, len);
}

int ckpt_before_attr(struct ckpt_set *s, const struct cobj_ref *r)
{
	return hook_all(s, r, H_ATTR, 0, 0);
}

int ckpt_before_xattr(struct ckpt_set *s, const struct cobj_ref *r)
{
	return hook_all(s, r, H_XATTR, 0, 0);
}

int ckpt_before_dir(struct ckpt_set *s, const struct cobj_ref *r)
{
	return hook_all(s, r, H_DIR, 0, 0);
}

int ckpt_before_unlink(struct ckpt_set *s, const struct cobj_ref *r,
		       bool last)
{
	return hook_all(s, r, last ? H_UNLINK_LAST : H_ATTR, 0, 0);
}

void ckpt_after_create(struct ckpt_set *s, const struct cobj_ref *r)
{
	hook_all(s, r, H_NEW, 0, 0);
}

static struct ckpt *find_locked(struct ckpt_set *s, const char *name)
{
	struct ckpt *c = s->list;

	while (c && strcmp(c->name, name))
		c = c->next;
	return c;
}

struct ckpt *ckpt_get(struct ckpt_set *s, const char *name)
{
	struct ckpt *c;

	pthread_rwlock_rdlock(&s->lock);
	c = find_locked(s, name);
	if (c)
		atomic_fetch_add(&c->refs, 1);
	pthread_rwlock_unlock(&s->lock);
	return c;
}

static int ckpt_set_paths(struct ckpt *c, const char *const *paths, size_t n)
{
	if (!n)
		return 0;
	c->scope = calloc(n, sizeof(*c->scope));
	if (!c->scope)
		return -ENOMEM;
	for (; c->nscope < n; c->nscope++) {
		c->scope[c->nscope] = strdup(paths[c->nscope]);
		if (!c->scope[c->nscope])
			return -ENOMEM;
	}
	return 0;
}

static int ckpt_new(struct ckpt_set *s, const char *name, unsigned flags,
		    struct ckpt **out)
{
	struct cobj_table_opts o = { .store = s->store, .block_size = s->bs,
				     .retain_all = flags & CKPT_RETAIN_ALL,
				     .kept = &s->kept,
				     .kept_max = s->kept_max };
	struct ckpt *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	rc = cprog_create(&c->prog);
	if (rc == 0)
		rc = cobj_table_create(&o, &c->objs);
	if (rc < 0) {
		cprog_free(c->prog);
		free(c);
		return rc;
	}
	c->set = s;
	strcpy(c->name, name);
	c->flags = flags;
	atomic_init(&c->refs, 1);
	*out = c;
	return 0;
}

/* The checkpoint being taken enters phase ph (NONE: it is done). */
static void set_phase(struct ckpt_set *s, const char *name,
		      enum ckpt_phase ph)
{
	pthread_mutex_lock(&s->pend_lock);
	s->pend_phase = ph;
	snprintf(s->pend_name, sizeof(s->pend_name), "%s", name);
	clock_gettime(CLOCK_REALTIME, &s->pend_since);
	pthread_mutex_unlock(&s->pend_lock);
}

/* A checkpoint being taken: bounded, then drained and held, waiting for
 * ckpt_commit/ckpt_abort. */
struct ckpt_prep {
	struct ckpt_set *s;
	struct ckpt *c;
	bool bounded;		/* the transaction gate is closed */
	bool drained;		/* the drain gate is closed */
	struct timespec t0;	/* the drain gate closed (CLOCK_MONOTONIC) */
	const struct txn_wait *w;	/* the caller's, during ckpt_bound */
};

/* With take_lock held and the gate closed and drained since t0: publish
 * T and the pause (readers of the list see both set). */
static void publish_locked(struct ckpt_set *s, struct ckpt *c,
			   const struct timespec *t0)
{
	struct timespec t1;

	pthread_rwlock_wrlock(&s->lock);
	clock_gettime(CLOCK_REALTIME, &c->t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	c->pause_us = elapsed_us(t0, &t1);
	c->next = s->list;
	s->list = c;
	atomic_fetch_add(&s->nactive, 1);
	pthread_rwlock_unlock(&s->lock);
}

/* A scope path: relative, normalised, each component a plain name. */
static bool scope_path_ok(const char *p)
{
	size_t n = strlen(p);

	if (!n || n >= PATH_MAX || p[0] == '/' || p[n - 1] == '/' ||
	    strstr(p, "//"))
		return false;
	for (const char *c = p; c; c = strchr(c, '/') ? strchr(c, '/') + 1
							  : NULL)
		if ((c[0] == '.' && (c[1] == '/' || !c[1])) ||
		    (c[0] == '.' && c[1] == '.' && (c[2] == '/' || !c[2])))
			return false;
	return true;
}

static void emit_failed(struct ckpt_set *s, const char *name, int rc,
			bool boundary)
{
	const char *why = rc == -ETIMEDOUT && boundary ? "boundary wait exceeded"
			  : rc == -ETIMEDOUT ? "drain wait exceeded"
			  : rc == -ECANCELED ? "aborted before the instant"
			  : rc == -ENOTSUP ? "no transaction lock table"
			  : rc == -ENOMEM ? "out of memory"
			  : "cannot resolve a --path at the instant";

	events_emit(s->ev, "failed", "\"name\":\"%s\",\"reason\":\"%s\"",
		    name, why);
	hist_failed(s, name, why);
}

/* Event boundary-wait: who delays checkpoint p, then the caller's report. */
static void boundary_report(void *arg, const struct txn_report *r)
{
	struct ckpt_prep *p = arg;
	char list[TXN_REPORT_MAX * 64 + 1] = "";
	size_t o = 0;

	for (size_t k = 0; k < r->n && o < sizeof(list); k++)
		o += (size_t)snprintf(list + o, sizeof(list) - o,
				      "%s{\"pid\":%d,\"uid\":%u}",
				      k ? "," : "", (int)r->holders[k].pid,
				      (unsigned)r->holders[k].uid);
	if (!r->final)
		events_emit(p->s->ev, "boundary-wait",
			    "\"name\":\"%s\",\"waited_s\":%lld,\"open\":%zu,"
			    "\"holders\":[%s]", p->c->name,
			    (long long)(r->waited_ns / 1000000000), r->count,
			    list);
	if (p->w->report)
		p->w->report(p->w->arg, r);
}

static bool boundary_cancelled(void *arg)
{
	struct ckpt_prep *p = arg;

	return p->w->cancelled && p->w->cancelled(p->w->arg);
}

/* Close the transaction gate and wait for the boundary (w given). */
static int bound_locked(struct ckpt_set *s, struct ckpt_prep *p,
			const struct txn_wait *w)
{
	struct txn_wait mine = *w;
	int rc;

	if (!s->txn)
		return -ENOTSUP;
	p->w = w;
	mine.report = boundary_report;
	mine.cancelled = boundary_cancelled;
	mine.arg = p;
	txn_close(s->txn);
	rc = txn_wait_empty(s->txn, &mine);
	if (rc < 0)
		txn_open(s->txn);
	else
		p->bounded = true;
	return rc;
}

static int bound_locked_all(struct ckpt_set *s, const char *name,
			    unsigned flags, const char *const *paths, size_t n,
			    const struct txn_wait *w, struct ckpt_prep *p)
{
	struct ckpt *old;
	int rc;

	events_emit(s->ev, "requested", "\"name\":\"%s\"", name);
	if ((old = ckpt_get(s, name))) {
		ckpt_put(old);
		return -EEXIST;
	}
	rc = ckpt_new(s, name, flags, &p->c);
	if (rc == 0)
		rc = ckpt_set_paths(p->c, paths, n);
	if (rc == 0 && w) {
		set_phase(s, name, CKPT_PHASE_BOUNDARY);
		rc = bound_locked(s, p, w);
	}
	if (rc < 0) {
		set_phase(s, name, CKPT_PHASE_NONE);
		if (p->c)
			ckpt_free(p->c);
		emit_failed(s, name, rc, true);
	}
	return rc;
}

int ckpt_bound(struct ckpt_set *s, const char *name, unsigned flags,
	       const char *const *paths, size_t n, const struct txn_wait *w,
	       struct ckpt_prep **out)
{
	struct ckpt_prep *p;
	int rc;

	if (!parse_name_ok(name) || n > CKPT_SCOPE_MAX)
		return -EINVAL;
	for (size_t k = 0; k < n; k++)
		if (!scope_path_ok(paths[k]))
			return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->s = s;
	/* held until commit or abort: one checkpoint is taken at a time */
	pthread_mutex_lock(&s->take_lock);
	rc = bound_locked_all(s, name, flags, paths, n, w, p);
	if (rc < 0) {
		pthread_mutex_unlock(&s->take_lock);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* Resume calls and transactions, drop p's checkpoint and p. */
static void abort_with(struct ckpt_prep *p, int rc)
{
	struct ckpt_set *s = p->s;

	if (p->drained)
		gate_open(s->gate);
	if (p->bounded)
		txn_open(s->txn);
	set_phase(s, p->c->name, CKPT_PHASE_NONE);
	emit_failed(s, p->c->name, rc, false);
	ckpt_free(p->c);
	pthread_mutex_unlock(&s->take_lock);
	free(p);
}

int ckpt_drain(struct ckpt_prep *p, int64_t wait_ns)
{
	int rc;

	set_phase(p->s, p->c->name, CKPT_PHASE_DRAIN);
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	rc = gate_close(p->s->gate, wait_ns);
	/* the tree holds still: what T's scope paths lead to */
	if (rc == 0) {
		p->drained = true;
		rc = scope_capture(p->c->objs, p->s->root_fd,
				   (const char *const *)p->c->scope,
				   p->c->nscope);
	}
	if (rc < 0) {
		abort_with(p, rc);
	} else {
		set_phase(p->s, p->c->name, CKPT_PHASE_HELD);
	}
	return rc;
}

int ckpt_prepare(struct ckpt_set *s, const char *name, unsigned flags,
		 int64_t wait_ns, const char *const *paths, size_t n,
		 struct ckpt_prep **out)
{
	int rc = ckpt_bound(s, name, flags, paths, n, NULL, out);

	return rc < 0 ? rc : ckpt_drain(*out, wait_ns);
}

/* T first, then the calls resume, then the transactions held at the
 * boundary: nothing they do can fall before T. */
uint64_t ckpt_commit(struct ckpt_prep *p)
{
	struct ckpt_set *s = p->s;
	struct ckpt *c = p->c;
	uint64_t pause;

	ckpt_hold(c);	/* a release may take it off the list at once */
	publish_locked(s, c, &p->t0);
	gate_open(s->gate);
	if (p->bounded)
		txn_open(s->txn);
	set_phase(s, c->name, CKPT_PHASE_NONE);
	assert(ckpt_state_ok(c));
	events_emit(s->ev, "reached", "\"name\":\"%s\",\"pause_us\":%lu",
		    c->name, (unsigned long)c->pause_us);
	if (s->on_reached)
		s->on_reached(s->on_reached_arg, c);
	pthread_mutex_unlock(&s->take_lock);
	free(p);
	pause = c->pause_us;
	ckpt_put(c);
	return pause;
}

void ckpt_abort(struct ckpt_prep *p)
{
	abort_with(p, -ECANCELED);
}

int ckpt_take_scoped(struct ckpt_set *s, const char *name, unsigned flags,
		     int64_t wait_ns, const char *const *paths, size_t n,
		     uint64_t *pause_us)
{
	struct ckpt_prep *p;
	int rc = ckpt_prepare(s, name, flags, wait_ns, paths, n, &p);

	if (rc == 0)
		*pause_us = ckpt_commit(p);
	return rc;
}

int ckpt_take(struct ckpt_set *s, const char *name, unsigned flags,
	      int64_t wait_ns, uint64_t *pause_us)
{
	return ckpt_take_scoped(s, name, flags, wait_ns, NULL, 0, pause_us);
}

static void emit_released(struct ckpt_set *s, struct ckpt *c)
{
	struct hist_rec r;
	struct cobj_stats st;
	struct pstore_stats ps;

	cobj_table_stats(c->objs, &st);
	pstore_stats(s->store, &ps);
	hist_fill(c, &r, "released");
	events_emit(s->ev, "released",
		    "\"name\":\"%s\",\"captured_bytes\":%lu,"
		    "\"captured_blocks\":%lu,\"files_released\":%lu,"
		    "\"peak_store_bytes\":%lu,\"store_peak_bytes\":%lu,"
		    "\"duration_s\":%.3f,\"saved_bytes\":%lu,\"outcome\":"
		    "\"%s\"", c->name,
		    (unsigned long)st.captured_bytes,
		    (unsigned long)st.captured_blocks,
		    (unsigned long)st.released,
		    (unsigned long)st.peak_held_bytes,
		    (unsigned long)ps.peak_bytes, r.duration_s,
		    (unsigned long)st.saved_bytes, r.outcome);
	hist_put(s, &r);
}

/* Take c (or, if c is NULL, the one called name) off the list. */
static int release_one(struct ckpt_set *s, struct ckpt *want, const char *name)
{
	struct ckpt **pp, *c = NULL;

	/* no take_lock: a take may wait long (boundary, drain, a sync
	 * group), and releasing must not wait for it */
	pthread_rwlock_wrlock(&s->lock);
	for (pp = &s->list; *pp; pp = &(*pp)->next) {
		if (want ? *pp == want : !strcmp((*pp)->name, name)) {
			c = *pp;
			*pp = c->next;
			atomic_fetch_sub(&s->nactive, 1);
			atomic_store(&c->state, CKPT_RELEASED);
			break;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	if (c) {
		emit_released(s, c);
		/* views may hold c for long: its space comes back now */
		cobj_table_purge(c->objs);
		pstore_kick(s->store);
		ckpt_put(c);
	}
	return c ? 0 : -ENOENT;
}

int ckpt_release(struct ckpt_set *s, const char *name)
{
	return release_one(s, NULL, name);
}

int ckpt_release_this(struct ckpt *c)
{
	return release_one(c->set, c, NULL);
}

void ckpt_view_attach(struct ckpt *c)
{
	atomic_fetch_add(&c->views, 1);
	events_emit(c->set->ev, "view-mounted", "\"name\":\"%s\"", c->name);
}

void ckpt_view_cancel(struct ckpt *c)
{
	events_emit(c->set->ev, "view-unmounted", "\"name\":\"%s\"", c->name);
	atomic_fetch_sub(&c->views, 1);
}

void ckpt_view_detach(struct ckpt *c)
{
	events_emit(c->set->ev, "view-unmounted", "\"name\":\"%s\"", c->name);
	/* by identity: a new checkpoint may have taken the name since */
	if (atomic_fetch_sub(&c->views, 1) == 1 && !(c->flags & CKPT_KEEP))
		release_one(c->set, c, NULL);
}

static void fill_info(struct ckpt *c, struct ckpt_info *i)
{
	strcpy(i->name, c->name);
	i->t_sec = c->t.tv_sec;
	i->t_ns = c->t.tv_sec * 1000000000ll + c->t.tv_nsec;
	i->pause_us = c->pause_us;
	i->flags = c->flags;
	i->valid = atomic_load(&c->state) == CKPT_ACTIVE;
	i->views = atomic_load(&c->views);
	cobj_table_stats(c->objs, &i->objs);
}

size_t ckpt_list(struct ckpt_set *s, struct ckpt_info *out, size_t max)
{
	size_t n = 0;

	pthread_rwlock_rdlock(&s->lock);
	for (struct ckpt *c = s->list; c; c = c->next, n++)
		if (n < max)
			fill_info(c, &out[n]);
	pthread_rwlock_unlock(&s->lock);
	return n;
}

void ckpt_hold(struct ckpt *c)
{
	atomic_fetch_add(&c->refs, 1);
}

struct cprog *ckpt_prog(struct ckpt *c)
{
	return c->prog;
}

/* What status shows as the state of a listed checkpoint. */
static const char *state_name(struct ckpt *c)
{
	switch (atomic_load(&c->state)) {
	case CKPT_ACTIVE:
		return "active";
	case CKPT_INVALID:
		return "invalid";
	default:
		return "released";
	}
}

static double ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void fill_status(struct ckpt *c, const struct timespec *now,
			uint64_t mono_ns, struct ckpt_status *st)
{
	uint64_t saved, left;

	fill_info(c, &st->info);
	snprintf(st->state, sizeof(st->state), "%s", state_name(c));
	st->reason = ckpt_unusable_why(c);
	st->age_s = ts_diff(&c->t, now);
	st->tsize = cprog_tsize(c->prog, &st->t_size_bytes, &st->t_files);
	saved = st->info.objs.saved_bytes;
	st->rate_bps = cprog_rate(c->prog, mono_ns, saved,
				  st->info.objs.first_served_ns);
	st->saved_pct = st->eta_s = -1;
	if (st->tsize != CPROG_DONE)
		return;
	left = saved < st->t_size_bytes ? st->t_size_bytes - saved : 0;
	st->saved_pct = st->t_size_bytes ? 100.0 * (double)(st->t_size_bytes -
					   left) / (double)st->t_size_bytes
					 : 100.0;
	if (!left)
		st->eta_s = 0;
	else if (st->rate_bps > 0)
		st->eta_s = (double)left / st->rate_bps;
}

static const char *phase_name(enum ckpt_phase ph)
{
	return ph == CKPT_PHASE_BOUNDARY ? "boundary-wait"
	       : ph == CKPT_PHASE_DRAIN ? "draining" : "held";
}

/* The checkpoint being taken, if any (and called name, if given). */
static bool fill_pending(struct ckpt_set *s, const char *name,
			 const struct timespec *now, struct ckpt_status *st)
{
	bool any;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->pend_lock);
	any = s->pend_phase != CKPT_PHASE_NONE &&
	      (!name || !strcmp(name, s->pend_name));
	if (any) {
		st->phase = s->pend_phase;
		strcpy(st->info.name, s->pend_name);
		snprintf(st->state, sizeof(st->state), "%s",
			 phase_name(s->pend_phase));
		st->age_s = ts_diff(&s->pend_since, now);
	}
	pthread_mutex_unlock(&s->pend_lock);
	return any;
}

size_t ckpt_status(struct ckpt_set *s, const char *name,
		   struct ckpt_status *out, size_t max)
{
	struct timespec now, mono;
	struct pstore_stats ps;
	size_t n = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	pstore_stats(s->store, &ps);
	pthread_rwlock_rdlock(&s->lock);
	for (struct ckpt *c = s->list; c; c = c->next) {
		if (name && strcmp(c->name, name))
			continue;
		if (n < max) {
			fill_status(c, &now, (uint64_t)mono.tv_sec * 1000000000u
				    + (uint64_t)mono.tv_nsec, &out[n]);
			out[n].store = ps;
		}
		n++;
	}
	pthread_rwlock_unlock(&s->lock);
	if (n < max && fill_pending(s, name, &now, &out[n]))
		n++;
	if (n && max)
		ckpt_store_info(s, &out[0].policy);
	for (size_t k = 1; k < n && k < max; k++)
		out[k].policy = out[0].policy;
	return n;
}

void ckpt_store_info(struct ckpt_set *s, struct ckpt_store_info *out)
{
	struct pstore_stats ps;

	pstore_stats(s->store, &ps);
	out->on_full = s->on_full;
	out->used_bytes = ps.mem_bytes + ps.disk_bytes - ps.dead_bytes;
	out->max_bytes = s->store_bytes;
	out->peak_bytes = ps.peak_bytes;
	out->throttled = atomic_load(&s->throttled);
	out->throttle_waits = atomic_load(&s->throttle_waits);
	out->throttle_wait_us = atomic_load(&s->throttle_wait_us);
	out->throttle_timeouts = atomic_load(&s->throttle_timeouts);
}
