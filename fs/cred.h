/*
 * cred.h - run a backing call as the requesting user.
 *
 * Objects are created with the fsuid, fsgid and supplementary groups of the
 * caller, so ownership, setgid-directory inheritance and the backing
 * filesystem's own permission rules apply exactly as without the mount.
 * The switch is per thread (raw syscalls: glibc's setgroups() would change
 * every thread).  Only a daemon running as root switches at all.
 */
#ifndef SWAFS_CRED_H
#define SWAFS_CRED_H

#include "fs/ctx.h"

struct cred_saved {
	bool switched;
};

/* Take on the caller's identity if ctx->as_caller and it is not root. */
int cred_enter(fuse_req_t req, struct cred_saved *sv);

/* Return to the daemon's identity; preserves errno. */
void cred_leave(struct cred_saved *sv);

#endif
