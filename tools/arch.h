/*
 * arch.h - libarchive for swactl's save, verify and restore: pax entries
 * of a view's objects (holes as sparse maps, xattrs, ACLs, owners,
 * times, devices), archives written to one or two copies at once, and
 * what an archive entry says as a manifest record.
 */
#ifndef SWAFS_ARCH_H
#define SWAFS_ARCH_H

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stdint.h>

#include "tools/manifest.h"
#include "tools/tree.h"

#define ARCH_COPIES_MAX 2

/* Archives of one stream, written in step: one per copy. */
struct arch_out;

/*
 * Create paths[0..n) (n <= ARCH_COPIES_MAX, none may exist) as pax
 * archives compressed with compress ("zstd", "lz4" or "none").  Returns
 * 0, or -errno with a one-line reason in why; nothing is left behind.
 */
int arch_out_open(struct arch_out **out, char *const paths[], int n,
		  const char *compress, char *why, size_t size);

/*
 * Write e's header, then its data (the whole logical contents, holes as
 * zeros: the pax writer skips them), then end the entry, on every copy
 * still alive.  A copy that fails is dropped: closed, its file removed,
 * the reason kept for arch_out_failure.  Each returns the number of
 * copies still alive.
 */
int arch_out_header(struct arch_out *o, struct archive_entry *e);
int arch_out_data(struct arch_out *o, const void *buf, size_t len);
int arch_out_end_entry(struct arch_out *o);

/* Copy k's failure ("PATH: why"), or NULL while it is fine. */
const char *arch_out_failure(const struct arch_out *o, int k);

/*
 * Finish every live copy (trailer, flush, fsync, close) and free o.
 * Returns the number of copies that ended complete.  failures[k] receives
 * a copy of copy k's failure, or "" (size bytes each).
 */
int arch_out_close(struct arch_out *o, char failures[][512]);

/*
 * Fill e (cleared first) for view object obj under root: stat, symlink
 * target, xattrs, ACLs via libarchive's disk reader ard, named obj->path;
 * a regular file's data map from SEEK_DATA/SEEK_HOLE on fd (its open
 * descriptor; -1 for other types; directories may pass theirs).  Returns
 * 0 or -errno.
 */
int arch_entry_of(struct archive *ard, const char *root,
		  const struct tree_obj *obj, int fd, struct archive_entry *e);

/* Called with each run of a regular file's logical contents. */
typedef int arch_sink_fn(void *arg, const void *buf, size_t len);

/*
 * Read regular file fd's logical contents as e's data map says (pread on
 * data runs, zeros for holes), passing each run to sink and hashing it
 * into *hash.  Returns 0, or -errno of the read that failed (-EIO when the
 * file ends early), or what sink returned when it was negative.
 */
int arch_read_file(int fd, struct archive_entry *e, arch_sink_fn *sink,
		   void *arg, uint64_t *hash);

/*
 * r (zeroed first) as entry e describes it: path (a leading "./" and
 * trailing "/" dropped), type, mode, owner, size, mtime, target, rdev,
 * xattrs, ACL; not the contents' hash nor the hard-link label.  Returns 0
 * or -ENOMEM / -EINVAL (an entry type a manifest has no letter for).
 */
int arch_rec_of(struct archive_entry *e, struct mf_rec *r);

/*
 * Open archive path for reading (pax or any tar, any compression
 * libarchive knows).  NULL with a one-line reason in why.
 */
struct archive *arch_in_open(const char *path, char *why, size_t size);

/*
 * Hash the data of the current entry of a as its logical contents of
 * size bytes (holes as zeros).  Returns 0 or -EIO (why says it).
 */
int arch_in_hash(struct archive *a, uint64_t size, uint64_t *hash,
		 char *why, size_t wsize);

/* The relative path an entry stands for, "./x/" as "x" ("." for root). */
const char *arch_rel(const char *pathname, char *buf, size_t size);

#endif
