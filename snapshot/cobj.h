/*
 * cobj.h - what one checkpoint knows about one object: its attributes,
 * extended attributes, symlink target and data blocks as they were at T.
 *
 * A checkpoint's table holds an entry only for objects that changed since T
 * or that a view opened; every other object is read live, because it is
 * still as it was at T.  The protocol that makes this safe:
 *
 *   1. Capture before change.  Every change to an object after T is
 *      preceded by a cobj_* capture call that records the pre-image and
 *      publishes it (a flag or a block state, stored with release order)
 *      before returning.  The change itself comes after.
 *   2. An entry's T attributes are recorded when it is created, and it is
 *      created (inserted) before the first change: so they are T's.
 *   3. Readers validate after reading live: a view reads the live object
 *      first, then checks (acquire) that no pre-image was published for
 *      what it read.  If one was, it uses the pre-image instead.  By 1,
 *      a read that saw post-T bytes always finds the pre-image.
 *   4. The first pre-image wins: a capture finds the block already
 *      captured and does nothing; concurrent captures of one object are
 *      serialised by the entry's mutex.
 *   5. A block the view has served and moved past is "saved": its
 *      pre-image is dropped and later writes to it cost nothing but mark it
 *      dirty; a view that reads a dirty saved block gets -EIO (G3).
 *   6. Layout goes with the bytes: a capture records the block's T holes
 *      (CB_HOLE, or CB_DATA with the extents the backing file reported)
 *      and, like a block turned dirty, adds it to the entry's set of
 *      blocks whose layout the live file no longer tells, before the
 *      change.  A seek asks the live file only across blocks outside that
 *      set, then validates (rule 3); a dirty block fails it with -EIO.
 *   7. A released object stays watched (a change marks it changed), so
 *      its unchanged live data is T's.  When its last name goes, the table
 *      keeps a descriptor of it (the only way left to reach it), within a
 *      budget shared by the daemon's tables (G8); past the budget it is
 *      marked lost and views get -EIO, never other bytes.
 */
#ifndef SWAFS_COBJ_H
#define SWAFS_COBJ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct pstore;
struct cobj_table;
struct cobj;
struct nsdir;

/* A live object as the capture calls see it. */
struct cobj_ref {
	dev_t dev;
	ino_t ino;
	int fd;		/* O_PATH descriptor of the live object, or -1 */
	/* An open for a capture met err: when it is EMFILE/ENFILE, close
	 * some of the caller's cached descriptors; true if it may retry.
	 * NULL: no room to make. */
	bool (*room)(void *arg, int err);
	void *room_arg;
};

/* Retry an open that failed with err, if r's owner made room. */
static inline bool cobj_ref_room(const struct cobj_ref *r, int err)
{
	return r->room && r->room(r->room_arg, err);
}

/* Per-block state, one byte each. */
enum cobj_block {
	CB_LIVE = 0,	/* unchanged since T: read the live file */
	CB_DATA,	/* pre-image in the store, and its T holes */
	CB_HOLE,	/* was a hole at T (reads as zeros, SEEK_HOLE) */
	CB_SAVED,	/* served and moved past; pre-image dropped */
	CB_DIRTY,	/* saved, then changed: cannot be served again */
	CB_HSAVED,	/* CB_HOLE, saved: still zeros and SEEK_HOLE, for
			 * a hole at T needs no pre-image to stay T's */
};

enum cobj_flags {
	COBJ_NEW = 1 << 0,	/* created after T: not part of the image */
	COBJ_XATTR = 1 << 1,	/* T extended attributes recorded */
	COBJ_DIR = 1 << 2,	/* T directory entries recorded */
	COBJ_DEAD = 1 << 3,	/* last name removed: whole T image captured */
	COBJ_RELEASED = 1 << 4,	/* fully saved: pre-images freed */
	COBJ_CHANGED = 1 << 5,	/* changed after release */
	COBJ_BROKEN = 1 << 6,	/* a capture failed: views get -EIO */
	COBJ_ANCESTOR = 1 << 7,	/* leads to a --path subtree, outside it:
				 * its T entries are those leading names */
	COBJ_KEPT = 1 << 8,	/* released, then its last name went: its
				 * live data is still T's, reached through
				 * cobj_kept_fd() */
	COBJ_LOST = 1 << 9,	/* the same, but past the budget of kept
				 * descriptors: also COBJ_CHANGED */
};

struct cobj_table_opts {
	struct pstore *store;
	unsigned block_size;	/* power of two */
	bool retain_all;	/* keep every pre-image until release */
	/*
	 * Descriptors kept for released objects whose last name went
	 * (COBJ_KEPT), counted in *kept, which every table of a daemon
	 * shares, and at most kept_max in all (G8).  kept NULL: none.
	 */
	atomic_uint *kept;
	unsigned kept_max;
};

int cobj_table_create(const struct cobj_table_opts *o, struct cobj_table **out);
/* Frees every entry and drops every pre-image it holds. */
void cobj_table_free(struct cobj_table *t);
/*
 * The checkpoint is gone (invalidated or released) but views may still
 * hold the table: drop every pre-image now and mark every entry broken, so
 * the store space comes back at once and views get -EIO.  Captures into
 * the table store nothing from here on, also in entries created later.
 * May run concurrently with captures, reads and itself.
 */
void cobj_table_purge(struct cobj_table *t);

/*
 * Find the entry for ref, or create it from the live object (recording its
 * T attributes).  Entries live as long as the table.  Returns 0 or -errno.
 */
int cobj_get(struct cobj_table *t, const struct cobj_ref *ref,
	     struct cobj **out);
/* The entry for (dev, ino) or NULL; never creates. */
struct cobj *cobj_find(struct cobj_table *t, dev_t dev, ino_t ino);

/* Mark an object created after T (no capture, not in the image). */
int cobj_mark_new(struct cobj_table *t, const struct cobj_ref *ref);

/*
 * Capture calls, made before the change.  Each returns 0, or -errno when
 * the pre-image could not be stored (the caller applies the store policy;
 * the entry is then marked broken so views fail instead of lying).
 */
int cobj_capture_range(struct cobj_table *t, struct cobj *c,
		       const struct cobj_ref *ref, uint64_t off, uint64_t len);
int cobj_capture_xattrs(struct cobj_table *t, struct cobj *c,
			const struct cobj_ref *ref);
/*
 * The last name goes: capture everything still live (data, xattrs, link),
 * so the entry alone holds the T image (COBJ_DEAD).  A released object has
 * no pre-images left to complete: an empty one is dead at once; for one
 * with data the table keeps a descriptor of ref's object (COBJ_KEPT), or
 * marks it lost (COBJ_LOST) when the budget is spent.
 */
int cobj_capture_all(struct cobj_table *t, struct cobj *c,
		     const struct cobj_ref *ref);

unsigned cobj_flags(const struct cobj *c);
const struct stat *cobj_stat(const struct cobj *c);	/* T attributes */
const char *cobj_link(const struct cobj *c);		/* T target or NULL */
/* O_PATH descriptor of a COBJ_KEPT object, owned by the table; else -1. */
int cobj_kept_fd(const struct cobj *c);
/* The T extended attributes as name\0 value-length(4, LE) value records. */
const char *cobj_xattrs(const struct cobj *c, size_t *len);

/*
 * Read the T extended attributes (COBJ_XATTR set) as getxattr (name) or
 * listxattr (name NULL) would: bytes copied, the size needed when size is
 * 0, or -ERANGE / -ENODATA.
 */
ssize_t cobj_xattr_read(const struct cobj *c, const char *name, char *buf,
			size_t size);

/* Directory entries (nscap.c owns their format); set once, under c's lock. */
struct nsdir *cobj_dir(const struct cobj *c);
void cobj_lock(struct cobj *c);
void cobj_unlock(struct cobj *c);
void cobj_set_dir_locked(struct cobj *c, struct nsdir *d);
/* c leads to --path subtrees; d (taken) holds just its leading entries.
 * Made at T, before any capture can look at c. */
void cobj_set_ancestor(struct cobj *c, struct nsdir *d);

/*
 * View side: read T bytes [off, off+len) of c into buf, using live_fd (a
 * readable descriptor of the live object, or -1 for a dead object).  The
 * caller holds a cobj_view_open() reference.  Revalidates after every live
 * read (rule 3).  Returns bytes read, or -errno: -EIO when T data cannot be
 * served (broken entry, saved block changed since, store integrity).
 */
ssize_t cobj_read(struct cobj_table *t, struct cobj *c, int live_fd,
		  void *buf, size_t len, uint64_t off);

/*
 * SEEK_DATA (want_data) or SEEK_HOLE from off in c's T image, as lseek(2)
 * answers it: the offset, or -ENXIO; -EIO where a read would fail (T's
 * layout is no longer known).  Holes inside captured blocks are T's, at
 * the granularity the backing file reported them.  Costs one live lseek
 * per extent plus one step per captured block met, whatever the size.
 * live_fd as for cobj_read().
 */
off_t cobj_seek(struct cobj_table *t, struct cobj *c, int live_fd,
		uint64_t off, bool want_data);

/*
 * The first T data in [off, end) of c, or end (at most the T size) if
 * [off, end) was all hole at T: SEEK_DATA that looks no further than end.
 */
uint64_t cobj_data_before(struct cobj_table *t, struct cobj *c, int live_fd,
			  uint64_t off, uint64_t end);

/* Mark blocks [first, last] of c saved (served and moved past). */
void cobj_mark_saved(struct cobj_table *t, struct cobj *c, uint64_t first,
		     uint64_t last);
/*
 * Block b of c was handed whole (up to the T size) to a view reader.  Its
 * T bytes count in saved_bytes the first time only: a bit per block, set
 * without a lock.  Counting is separate from cobj_mark_saved(), which
 * waits until the reader has moved past and is skipped by --retain all.
 */
void cobj_note_served(struct cobj_table *t, struct cobj *c, uint64_t b);
/* View handles: a released object is freed when saved and unopened. */
void cobj_view_open(struct cobj *c);
/* Returns true when this close released the object. */
bool cobj_view_close(struct cobj_table *t, struct cobj *c);

unsigned cobj_block_size(const struct cobj_table *t);

struct cobj_stats {
	uint64_t objects;	/* entries */
	uint64_t released;	/* entries of non-empty files released */
	uint64_t captured_blocks;
	uint64_t captured_bytes;	/* raw bytes of captured blocks */
	uint64_t saved_blocks;
	uint64_t saved_bytes;	/* T bytes handed to views, each once */
	uint64_t held_bytes;	/* raw bytes of pre-images held now */
	uint64_t peak_held_bytes;	/* the most held at once */
	uint64_t first_served_ns;	/* CLOCK_MONOTONIC of the first
					 * saved byte; 0: none yet */
};
void cobj_table_stats(struct cobj_table *t, struct cobj_stats *out);

#endif
