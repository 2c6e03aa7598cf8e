/*
 * scope.h - the subtrees of a checkpoint taken with --path, known by
 * identity rather than by their current paths.
 *
 * A scoped checkpoint shows its subtrees (the roots and everything under
 * them at T) and the directories leading to them (the ancestors), nothing
 * else.  Paths say where an object is now, not where it was at T: after
 * `mv sub1 x; mkdir sub1`, the path sub1 names a post-T directory and the
 * T subtree lives on under x.  So:
 *
 *   1. At T (writers drained) each ancestor gets a checkpoint entry
 *      flagged COBJ_ANCESTOR whose T directory image holds only the names
 *      leading on (nsdir_pick, with their file handles), and each root
 *      gets an entry (its T attributes).  A handful of paths are resolved,
 *      nothing is walked (G7).  Views list and resolve an ancestor from
 *      that image only, so renames, deletes and replacements of roots and
 *      ancestors after T change nothing they show, and siblings outside
 *      the scope never appear.
 *   2. Every entry other than NEW, ANCESTOR or DEAD ones is an object
 *      that was in scope at T.  An object first touched after T is in
 *      scope if its current path is covered by a scope path, or if one of
 *      the directories on that path has such an entry: the T root or a T
 *      directory under it, wherever it moved since.  Over-capture (an
 *      object moved into the scope after T) costs store space only.
 */
#ifndef SWAFS_SCOPE_H
#define SWAFS_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

struct cobj_table;

/*
 * Record in t, at T, the ancestors and roots of the scope paths (relative,
 * normalised) under the directory open at root_fd.  A path covered by
 * another adds nothing; a path that does not exist at T, or reaches
 * through a symlink or a non-directory, ends where the tree ends (the
 * view shows what was there).  Returns 0 or -errno.
 */
int scope_capture(struct cobj_table *t, int root_fd,
		  const char *const *paths, size_t n);

/*
 * Rule 2, the identity half: does a directory on rel (an object's path
 * relative to root_fd, the object itself excluded) have an in-scope
 * entry in t?  True when in doubt (the path changed meanwhile).
 */
bool scope_holds(struct cobj_table *t, int root_fd, const char *rel);

/* Is rel one of paths, or under one of them? */
bool scope_covers(const char *const *paths, size_t n, const char *rel);

#endif
