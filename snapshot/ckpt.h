/*
 * ckpt.h - checkpoints of one live tree: taking them, the capture hooks
 * the live tree calls before every change, and their release.
 *
 * The live tree brackets every modifying call with ckpt_op_begin/end and
 * calls the matching ckpt_before_*() hook after resolving its objects and
 * before changing anything.  With no checkpoint active a hook costs one
 * atomic load.
 */
#ifndef SWAFS_CKPT_H
#define SWAFS_CKPT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "snapshot/cobj.h"
#include "snapshot/cprog.h"
#include "snapshot/pstore.h"
#include "snapshot/txn.h"

struct ckpt_set;
struct ckpt;
struct events;
struct hist;

/* What a full store does (DESIGN.md 8). */
enum ckpt_on_full {
	CKPT_FULL_INVALIDATE,	/* the checkpoint is invalidated; writes go on */
	CKPT_FULL_FAIL_WRITES,	/* changes needing a capture fail: ENOSPC */
	CKPT_FULL_THROTTLE,	/* they wait for the save to free space, at
				 * most throttle_ns, then invalidate */
};

struct ckpt_set_opts {
	unsigned block_size;	/* capture unit, power of two */
	enum ckpt_on_full on_full;
	const char *store_dir;	/* where the store spills */
	uint64_t store_mem;	/* memory budget of the store */
	uint64_t store_max;	/* disk budget of the store */
	int64_t throttle_ns;	/* on_full=throttle: longest wait of a call */
	struct events *events;	/* not owned */
	const char *root;	/* canonical path of BACKING (for --path) */
	int root_fd;		/* BACKING, open (for --path); not owned,
				 * outlives the set */
	struct hist *hist;	/* not owned; NULL: no history */
	/* Called once each checkpoint reaches T, after the writers resumed
	 * and while it is still listed (take it with ckpt_hold()); it must
	 * not block, nor take or release checkpoints. */
	void (*on_reached)(void *arg, struct ckpt *c);
	void *on_reached_arg;
	struct txn *txn;	/* open transactions, not owned; may be NULL */
	/* descriptors all checkpoints may keep for released objects whose
	 * last name went (cobj.h rule 7); 0: none */
	unsigned kept_max;
};

int ckpt_set_create(const struct ckpt_set_opts *o, struct ckpt_set **out);
/* Frees every checkpoint; no view or call may be using them. */
void ckpt_set_free(struct ckpt_set *s);

/* True while some checkpoint needs capture (hooks would do work). */
bool ckpt_active(struct ckpt_set *s);

void ckpt_op_begin(struct ckpt_set *s);
void ckpt_op_end(struct ckpt_set *s);

/*
 * Hooks, called between ckpt_op_begin() and the change.  They return 0,
 * or -ENOSPC when the store is full and the policy is fail-writes: the
 * caller must then not make the change and fail with ENOSPC.  Any other
 * capture failure, and a full store under the invalidate policy,
 * invalidates the checkpoint (views then fail with EIO, its pre-images
 * are freed) and never fails the live call.
 *
 * Under the throttle policy a hook that finds the store full waits until
 * space is freed (a view saved blocks, a checkpoint went) and retries,
 * for at most throttle_ns in all; then it invalidates the checkpoints
 * still full and returns 0.  While it waits it holds no lock: views,
 * saves and releases go on.  It stays inside the drain gate, because the
 * call's earlier hooks cannot be redone against a new checkpoint: a
 * checkpoint taken meanwhile drains after at most throttle_ns.  Callers
 * must hold no lock of their own across a hook.
 */
int ckpt_before_data(struct ckpt_set *s, const struct cobj_ref *r,
		     uint64_t off, uint64_t len);
/* attributes (mode, owner, times, size, link count) are about to change */
int ckpt_before_attr(struct ckpt_set *s, const struct cobj_ref *r);
int ckpt_before_xattr(struct ckpt_set *s, const struct cobj_ref *r);
/* a directory's entries are about to change */
int ckpt_before_dir(struct ckpt_set *s, const struct cobj_ref *r);
/* r loses a name; last: it was its only one (data goes with it) */
int ckpt_before_unlink(struct ckpt_set *s, const struct cobj_ref *r,
		       bool last);
/* r was created after every active checkpoint: never capture it */
void ckpt_after_create(struct ckpt_set *s, const struct cobj_ref *r);

enum ckpt_take_flags {
	CKPT_RETAIN_ALL = 1 << 0,	/* keep pre-images until release */
	CKPT_KEEP = 1 << 1,		/* survive the last view's unmount */
};

/*
 * Take checkpoint name: drain modifying calls (at most wait_ns, < 0 no
 * limit), record T, resume.  Returns 0 and the pause in microseconds,
 * -EEXIST (name in use), -ETIMEDOUT (drain did not finish; nothing
 * changed), -EINVAL (bad name) or -ENOMEM.
 */
int ckpt_take(struct ckpt_set *s, const char *name, unsigned flags,
	      int64_t wait_ns, uint64_t *pause_us);

#define CKPT_SCOPE_MAX 32

/*
 * Like ckpt_take(), limiting capture to the subtrees paths[0..n) (relative
 * to BACKING, normalised: no ".", "..", empty or trailing components).
 * Objects outside them are never captured and views do not show them.
 * The subtrees and the directories leading to them are identified at T
 * (scope.h): later renames and deletes of them change no view.  Also
 * fails with the -errno of a path that could not be resolved at T (out
 * of descriptors, say); nothing changed then.
 */
int ckpt_take_scoped(struct ckpt_set *s, const char *name, unsigned flags,
		     int64_t wait_ns, const char *const *paths, size_t n,
		     uint64_t *pause_us);

/*
 * Two phases, for one instant across several trees: ckpt_prepare() does
 * everything ckpt_take_scoped() does up to the instant — the modifying
 * calls are drained and held — and returns a handle; ckpt_commit() then
 * records T, resumes the calls and returns the pause in microseconds;
 * ckpt_abort() resumes them and leaves no checkpoint.  Both free the
 * handle and must be called by the thread that prepared, soon: writers
 * wait meanwhile.  Errors of ckpt_prepare are those of ckpt_take().
 */
struct ckpt_prep;
int ckpt_prepare(struct ckpt_set *s, const char *name, unsigned flags,
		 int64_t wait_ns, const char *const *paths, size_t n,
		 struct ckpt_prep **out);

/*
 * The same in steps, for a boundary wait (DESIGN.md 6, step 1) before the
 * drain.  ckpt_bound() checks the name, then, if w is not NULL, closes the
 * transaction gate (new shared locks on MNT/.swafs/txn wait) and waits
 * until no transaction is open; every w->report_ns it emits event
 * "boundary-wait" and calls w->report.  Returns 0 and a handle with the
 * gate closed, or -ETIMEDOUT (the wait ran out), -ECANCELED (w->cancelled
 * said so), -ENOTSUP (no transaction table) and the errors of
 * ckpt_prepare(); then the gate is open again and nothing was made.
 * ckpt_drain() is the drain of ckpt_prepare(); on an error (-ETIMEDOUT)
 * it has aborted and freed p.  commit or abort reopen the transaction
 * gate after the calls resume.
 */
int ckpt_bound(struct ckpt_set *s, const char *name, unsigned flags,
	       const char *const *paths, size_t n, const struct txn_wait *w,
	       struct ckpt_prep **out);
int ckpt_drain(struct ckpt_prep *p, int64_t wait_ns);
uint64_t ckpt_commit(struct ckpt_prep *p);
void ckpt_abort(struct ckpt_prep *p);

/* Release name now (its views get EIO from here on).  -ENOENT if none. */
int ckpt_release(struct ckpt_set *s, const char *name);
/* Release c itself, not whatever has its name now.  -ENOENT if gone. */
int ckpt_release_this(struct ckpt *c);

/* Reference a checkpoint by name (NULL if none); drop with ckpt_put(). */
struct ckpt *ckpt_get(struct ckpt_set *s, const char *name);
void ckpt_put(struct ckpt *c);

/* A view was mounted / unmounted.  The last unmount releases the
 * checkpoint unless it was taken with CKPT_KEEP. */
void ckpt_view_attach(struct ckpt *c);
void ckpt_view_detach(struct ckpt *c);
/* Undo an attach whose view never served: never releases c. */
void ckpt_view_cancel(struct ckpt *c);

const char *ckpt_name(const struct ckpt *c);
/* Views mounted now. */
unsigned ckpt_view_count(const struct ckpt *c);
/* The instant T (CLOCK_REALTIME). */
const struct timespec *ckpt_time(const struct ckpt *c);
struct cobj_table *ckpt_objects(struct ckpt *c);
/* false once released or invalidated: views must fail with EIO */
bool ckpt_usable(const struct ckpt *c);
/* Why views of c fail, for messages: "released", "invalidated: store
 * full", "invalidated: capture failed"; NULL while c is usable. */
const char *ckpt_unusable_why(const struct ckpt *c);
struct ckpt_set *ckpt_set_of(const struct ckpt *c);
void ckpt_report_integrity(struct ckpt *c, const char *what);

struct ckpt_info {
	char name[65];
	int64_t t_sec;		/* T, seconds since the epoch */
	int64_t t_ns;		/* T, nanoseconds since the epoch */
	uint64_t pause_us;
	unsigned flags;		/* enum ckpt_take_flags */
	bool valid;
	unsigned views;
	struct cobj_stats objs;
};
/* Fill up to max infos of active checkpoints; returns how many exist. */
size_t ckpt_list(struct ckpt_set *s, struct ckpt_info *out, size_t max);

/* One more reference to c (drop it with ckpt_put()). */
void ckpt_hold(struct ckpt *c);
/* c's progress: its T size is set by the daemon's walk (cprog.h). */
struct cprog *ckpt_prog(struct ckpt *c);

/* The store shared by every checkpoint of the set, and its policy. */
struct ckpt_store_info {
	enum ckpt_on_full on_full;
	uint64_t used_bytes;	/* pre-images held, memory and disk */
	uint64_t max_bytes;	/* store_mem + store_max */
	uint64_t peak_bytes;
	unsigned throttled;	/* calls waiting for store space now */
	uint64_t throttle_waits;	/* calls that have waited, ever */
	uint64_t throttle_wait_us;	/* the time they waited, in all */
	uint64_t throttle_timeouts;	/* checkpoints invalidated by it */
};
void ckpt_store_info(struct ckpt_set *s, struct ckpt_store_info *out);

/* Where the checkpoint being taken is (DESIGN.md 6). */
enum ckpt_phase {
	CKPT_PHASE_NONE,	/* none is being taken */
	CKPT_PHASE_BOUNDARY,	/* waiting for open transactions */
	CKPT_PHASE_DRAIN,	/* waiting for modifying calls in flight */
	CKPT_PHASE_HELD,	/* drained, waiting for its commit */
};

/*
 * Status of a listed checkpoint.  saved bytes are T bytes handed to views,
 * each once (cobj_note_served), in info.objs.saved_bytes; the store
 * figures are the tree's store, shared by all its checkpoints.
 */
struct ckpt_status {
	struct ckpt_info info;
	/* "active", "invalid"; for the one being taken (phase set, no T
	 * yet, only name, state and age_s meaningful): "boundary-wait",
	 * "draining", "held" */
	char state[16];
	enum ckpt_phase phase;	/* NONE: a checkpoint that has its T */
	const char *reason;	/* why views fail (invalid), or NULL */
	double age_s;		/* since T (being taken: in this state) */
	enum cprog_tsize tsize;
	uint64_t t_size_bytes;	/* regular-file bytes of T (tsize DONE) */
	uint64_t t_files;	/* regular files of T, each inode once */
	double saved_pct;	/* < 0: T size not known */
	double rate_bps;	/* saved bytes per second; < 0: unknown */
	double eta_s;		/* < 0: unknown (no T size or no rate) */
	struct pstore_stats store;
	struct ckpt_store_info policy;	/* the store's limits and waits */
};
/*
 * Fill up to max statuses of the listed checkpoints called name (all if
 * NULL), sampling their rates now, then the one being taken (phase set);
 * returns how many matched.
 */
size_t ckpt_status(struct ckpt_set *s, const char *name,
		   struct ckpt_status *out, size_t max);


#endif
