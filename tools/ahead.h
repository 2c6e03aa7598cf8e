/*
 * ahead.h - open a stream's next objects ahead of its writer: a helper
 * thread opens the next AHEAD_OBJS regular files and directories of the
 * list and starts the kernel's readahead of each file's first
 * AHEAD_BYTES, so the view's round trips for them overlap the writer's
 * work on the current one (a save of small files is bound by them).
 */
#ifndef SWAFS_AHEAD_H
#define SWAFS_AHEAD_H

#include <stddef.h>

#include "tools/tree.h"

#define AHEAD_OBJS 16
#define AHEAD_BYTES (1024 * 1024)

struct ahead;

/*
 * Start opening t->o[list[0]], t->o[list[1]], ... under root (list stays
 * the caller's until ahead_stop).  Returns 0 or -errno.
 */
int ahead_start(struct ahead **out, const char *root, const struct tree *t,
		const size_t *list, size_t n);

/*
 * The descriptor of list[p], p taken in order 0, 1, ...: the caller's to
 * close; -EBADF for an object that is not opened (not a file or
 * directory), or -errno of the open that failed.
 */
int ahead_take(struct ahead *a, size_t p);

/* Stop the helper, close what was opened and not taken, free a. */
void ahead_stop(struct ahead *a);

#endif
