/*
 * nscap.h - directory entries as they were at T.
 *
 * A directory's entries are recorded before its first change after T
 * (create, mkdir, mknod, symlink, link, unlink, rmdir, rename in or out),
 * each with the file handle of its object, so a view can still reach an
 * object that was later renamed elsewhere.  Objects whose last name went
 * are reached through their checkpoint entry instead (cobj.h, COBJ_DEAD).
 * Entries are kept sorted by name: lookups are a binary search.
 */
#ifndef SWAFS_NSCAP_H
#define SWAFS_NSCAP_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct nsdir;
struct cobj;
struct cobj_table;
struct cobj_ref;

struct nsent {
	const char *name;
	ino_t ino;
	unsigned char type;		/* DT_* */
	const struct file_handle *fh;	/* NULL if not recorded */
};

/*
 * Read the entries of the directory open at fd (any descriptor of it,
 * O_PATH included), without "." and "..".  With handles, record each
 * entry's file handle too.  Returns 0 or -errno; *out is owned by the
 * caller (nsdir_free).
 */
int nsdir_read(int fd, bool handles, struct nsdir **out);
/*
 * The entries of the directory open at fd for just these names (those
 * that exist; a name given twice is listed once), with their handles.
 * For the directories leading to --path subtrees (scope.h).
 */
int nsdir_pick(int fd, const char *const *names, size_t n,
	       struct nsdir **out);
void nsdir_free(struct nsdir *d);

size_t nsdir_count(const struct nsdir *d);
/* Entry k (0 <= k < count), in name order; pointers live as long as d. */
void nsdir_entry(const struct nsdir *d, size_t k, struct nsent *out);
/* Returns the index of name, or -ENOENT. */
long nsdir_find(const struct nsdir *d, const char *name);

/* Record c's T entries before its first change; no-op once recorded. */
int nscap_capture(struct cobj *c, const struct cobj_ref *ref);

#endif
