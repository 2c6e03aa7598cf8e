/*
 * take.h - take one checkpoint of one or several live trees at one
 * common instant: every tree is prepared (drained and held) in parallel,
 * then all commit; if any fails to prepare, all abort and none keeps a
 * checkpoint (DESIGN.md 6).
 */
#ifndef SWAFS_TAKE_H
#define SWAFS_TAKE_H

#define TAKE_SCOPE_MAX 32	/* --path options; the daemon's CKPT_SCOPE_MAX */

struct take_req {
	const char *name;
	const char *retain;	/* "saved" or "all" */
	int keep;
	const char *keep_for;	/* NULL or milliseconds: --keep-for */
	const char *wait;	/* milliseconds or "nomax" */
	const char *boundary;	/* "off", milliseconds or "nomax" */
	const char *others;	/* NULL or milliseconds: --others-wait */
	const char *paths[TAKE_SCOPE_MAX];
	int npaths;
	int json;		/* say what was taken as one JSON object */
};

/* The trees of one take_all, every one drained and held. */
struct take_held;

/*
 * Keep every tree of h held a while longer.  A daemon gives up a hold
 * (and aborts) after 10 s without a word from us; each call renews that.
 * Returns 0, or 1 when a daemon has given up already (reported on stderr).
 */
int take_hold(struct take_held *h);

/*
 * A wait between "every tree ready" and "commit" (a sync group waiting for
 * its other jobs).  It must call take_hold() at least every few seconds
 * while it waits.  Returns 0 to commit, else the exit code to abort with.
 */
typedef int take_barrier_fn(void *arg, struct take_held *h);

/*
 * Take r on the trees mnts[0..n): flush their dirty shared-mmap pages,
 * wait for the transaction boundary if asked, drain, then, if barrier is
 * not NULL, call barrier(arg, ...) while they are held, then commit.
 * Prints one line per tree on success, one line per failure on stderr.
 * Returns swactl's exit code: 0, 1, 3 when a wait limit (boundary or
 * drain) was exceeded, or what barrier returned.
 */
int take_all(const struct take_req *r, char *const mnts[], int n,
	     take_barrier_fn *barrier, void *arg);

#endif
