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
	const char *wait;	/* milliseconds or "nomax" */
	const char *boundary;	/* "off", milliseconds or "nomax" */
	const char *paths[TAKE_SCOPE_MAX];
	int npaths;
};

/*
 * Take r on the trees mnts[0..n): flush their dirty shared-mmap pages,
 * wait for the transaction boundary if asked, drain, commit.  Prints one line per tree on success, one line per
 * failure on stderr.  Returns swactl's exit code: 0, 1, or 3 when a wait
 * limit (boundary or drain) was exceeded.
 */
int take_all(const struct take_req *r, char *const mnts[], int n);

#endif
