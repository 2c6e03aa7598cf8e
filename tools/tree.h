/*
 * tree.h - the objects of a directory tree (a checkpoint's view, or the
 * live tree for a dry run), found without following symlinks, each
 * directory before what it holds, names in byte order.
 */
#ifndef SWAFS_TREE_H
#define SWAFS_TREE_H

#include <stddef.h>
#include <sys/stat.h>

struct tree_obj {
	char *path;		/* relative to the root, "." for the root */
	struct stat st;
};

struct tree {
	struct tree_obj *o;
	size_t n, cap;
	size_t skipped;		/* objects that could not be listed */
};

/*
 * Walk root into t (zeroed first).  An object that cannot be read
 * (lstat or opendir fails) is named on stderr and counted in
 * t->skipped; ENOTCONN (the daemon is gone) ends the walk.  Returns 0 or
 * -errno (-ENOTCONN, -ENOMEM, or the root itself unreadable: reported;
 * t is then empty).
 */
int tree_walk(const char *root, struct tree *t);

void tree_free(struct tree *t);

#endif
