/*
 * inode.h - the daemon's inode table: one entry per backing object.
 *
 * An entry is identified by (st_dev, st_ino) of the backing object and,
 * where the backing filesystem supports it, remembers the object by a file
 * handle (name_to_handle_at) instead of an open descriptor.  Open O_PATH
 * descriptors live in a bounded cache; an entry whose descriptor was evicted
 * is reopened by handle (open_by_handle_at) when next needed.  Entries that
 * cannot be reopened by handle (no handle support, another mount below the
 * backing root, a daemon without CAP_DAC_READ_SEARCH) keep their descriptor
 * for life, so correctness never depends on handles.
 *
 * This module has no FUSE dependency so it can be unit-tested alone.
 */
#ifndef SWAFS_INODE_H
#define SWAFS_INODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct ino_table;
struct ino;

/*
 * Create a table whose root is the directory open at root_fd, which should
 * not be an O_PATH descriptor (open_by_handle_at needs a real one; with an
 * O_PATH root the table works without handles).  Takes ownership of
 * root_fd.  fd_limit bounds the cached descriptors of
 * evictable entries (pinned descriptors are not counted against it).
 * Returns 0 or -errno.
 */
int ino_table_create(int root_fd, unsigned fd_limit, struct ino_table **out);

/* Free the table, every entry and every cached descriptor. */
void ino_table_free(struct ino_table *t);

/* The backing root descriptor (not O_PATH; owned by the table). */
int ino_table_root_fd(struct ino_table *t);

/* The root entry; never freed before the table. */
struct ino *ino_root(struct ino_table *t);

/* True when entries are remembered by file handle (descriptors evictable). */
bool ino_table_uses_handles(const struct ino_table *t);

/*
 * Look up NAME (one path component, never followed if a symlink) in the
 * directory PARENT.  On success fills *st, stores the entry in *out and adds
 * one lookup reference, which the caller must hand to the kernel or drop
 * with ino_forget().  Returns 0 or -errno.
 */
int ino_lookup(struct ino_table *t, struct ino *parent, const char *name,
	       struct stat *st, struct ino **out);

/*
 * Like ino_lookup() for an object already open at fd (any open mode), e.g.
 * one just created with O_CREAT.  Does not consume fd.
 */
int ino_lookup_fd(struct ino_table *t, int fd, struct stat *st,
		  struct ino **out);

/* Drop n lookup references; the entry is freed when none remain. */
void ino_forget(struct ino_table *t, struct ino *i, uint64_t n);

/*
 * Pin and return the entry's O_PATH descriptor, reopening it by handle if it
 * was evicted.  Returns fd >= 0 or -errno.  Every successful call must be
 * paired with ino_fd_put(); the descriptor stays valid until then.
 */
int ino_fd_get(struct ino_table *t, struct ino *i);
void ino_fd_put(struct ino_table *t, struct ino *i);

/*
 * Close up to n cached descriptors nobody pins, least recently used
 * first, for a caller that ran out of descriptors (EMFILE).  Returns how
 * many were closed.
 */
unsigned ino_fd_shrink(struct ino_table *t, unsigned n);

/*
 * A call that opens a descriptor failed with err (an errno): when it is
 * EMFILE or ENFILE, close some cached ones; true if the call may retry.
 */
bool ino_fd_room(struct ino_table *t, int err);

/* S_IFMT bits of the object; immutable. */
mode_t ino_type(const struct ino *i);

/* Backing (st_dev, st_ino) of the object; immutable. */
void ino_ident(const struct ino *i, dev_t *dev, ino_t *ino);

/*
 * Find or create the entry for the object open at the O_PATH descriptor
 * fd, adding one lookup reference; consumes fd.  fd may be -1 for an
 * object that no longer exists live (a checkpoint view's dead objects):
 * the entry then has no descriptor and ino_fd_get() fails with -ESTALE.
 */
int ino_insert(struct ino_table *t, int fd, const struct stat *st,
	       struct ino **out);

/* Counters for tests and status. */
struct ino_stats {
	uint64_t entries;	/* live entries, root included */
	uint64_t fds;		/* descriptors currently open by the table */
	uint64_t reopens;	/* descriptors reopened by handle */
};
void ino_table_stats(struct ino_table *t, struct ino_stats *out);

#endif
