/*
 * locks.h - flock(2) on live files, passed to the backing file.
 *
 * Each FUSE open has its own backing descriptor, so a lock taken on it
 * has the per-open-file semantics of flock(2), and processes using
 * BACKING directly see it too.  A request that must wait holds no worker
 * thread: it is parked and retried by one thread (every few
 * milliseconds, and at once after an unlock through the mount) until it
 * is granted, fails or is interrupted (answered EINTR).
 */
#ifndef SWAFS_LOCKS_H
#define SWAFS_LOCKS_H

#include "fs/ctx.h"

/* Starts the retry thread.  Returns 0 or -errno. */
int locks_create(struct locks **out);

/* Answer every parked request EINTR and stop the thread.  Call before
 * the session is destroyed. */
void locks_free(struct locks *l);

/* The flock op on a live file open at backing descriptor fd. */
void locks_flock(struct locks *l, fuse_req_t req, int fd, int op);

/* Something was unlocked: retry the parked requests now. */
void locks_kick(struct locks *l);

#endif
