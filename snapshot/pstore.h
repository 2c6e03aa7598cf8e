/*
 * pstore.h - the pre-image store: opaque records of at most 1 MiB, each
 * lz4-compressed (or raw when that does not shrink it) and checked with
 * XXH64 on every read back.  Records live in memory up to mem_max bytes and
 * are then appended to spill segment files in a private directory, up to
 * disk_max bytes of segment files.
 *
 * Threading: pstore_put, pstore_get, pstore_drop, pstore_stats, the space
 * calls (pstore_freed_seq ... pstore_warn_seq) and pstore_test_corrupt may
 * be called concurrently from any number of
 * threads.  pstore_create and pstore_free must not race with anything on
 * the same store.  No compression, checksum or file I/O is done under the
 * lock the other calls need.
 *
 * Memory per record: a 16-byte slot in the ref table (allocated in chunks of
 * 65536 slots, never shrunk; slots of dropped records are reused).  A record
 * held in memory also costs one malloc block of 8 + 24 + stored bytes
 * (pin count and size, the record header of the format below, the payload)
 * plus malloc's own overhead.  A spilled record costs its slot, and a hole
 * in a segment 8 bytes (16 while a get that began before the drop may still
 * read it); a segment has at most one hole more than records.  Per store:
 * two 512 KiB pointer tables (chunks, segments), calloc'd, so only the
 * pages touched are resident.
 *
 * Record format, the same bytes in memory and in a segment file.  All
 * integers are little-endian.
 *
 *   offset  size        field
 *    0      4           magic       0x52505753 ("SWPR" as bytes)
 *    4      2           version     1
 *    6      2           flags       exactly one of: 1 = raw, 2 = lz4 block
 *    8      4           raw_len     original length, <= PSTORE_REC_MAX
 *   12      4           stored_len  payload length: == raw_len when raw,
 *                                   < raw_len when lz4
 *   16      8           xxh64       XXH64(payload, stored_len, seed 0)
 *   24      stored_len  payload
 *
 * Segment file DIR/swafs-store.<pid>.<random>/seg-<nnnnnn>: a header, then
 * records and holes.  The space of a dropped record becomes a hole, merged
 * with its neighbours, as soon as no get that began before the drop can
 * still be reading it; a put takes the smallest hole that fits in the first
 * segment having one, else appends.  A file never shrinks while it lives
 * (holes stay allocated and count in disk_bytes); it is unlinked once none
 * of its records is live.  A file that failed a write gets no more records
 * and its holes are not reused.  Segments are scratch space for one
 * process: never fsynced, never reopened after a restart
 * (pstore_clean_stale removes them).
 *
 *   offset  size  field
 *    0      8     magic    "SWAFSSEG"
 *    8      4     version  1
 *   12      4     flags    0
 *   16      ...   records
 */
#ifndef SWAFS_PSTORE_H
#define SWAFS_PSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PSTORE_REC_MAX		(1u << 20)	/* longest record, bytes */
#define PSTORE_REC_HDR_SIZE	24u
#define PSTORE_SEG_HDR_SIZE	16u
#define PSTORE_SEG_DEFAULT	(64u << 20)	/* seg_max when 0 is given */
#define PSTORE_SEG_MIN \
	(PSTORE_SEG_HDR_SIZE + PSTORE_REC_HDR_SIZE + PSTORE_REC_MAX)
#define PSTORE_SEG_LIMIT	(1u << 27)	/* offsets fit 27 bits */

struct pstore;

/*
 * Limits, in stored bytes (record header + payload).  mem_max bounds the
 * records held in memory; disk_max bounds the total size of live segment
 * files (headers and holes included).  seg_max is the largest size of
 * one segment file: 0 means PSTORE_SEG_DEFAULT, otherwise it must lie in
 * [PSTORE_SEG_MIN, PSTORE_SEG_LIMIT].
 */
struct pstore_limits {
	uint64_t mem_max;
	uint64_t disk_max;
	uint64_t seg_max;
	uint64_t warn_at;	/* 0, or see pstore_warn_seq() */
	uint64_t rearm_below;	/* < warn_at */
};

/*
 * Create a store whose spill files go to a new private directory
 * DIR/swafs-store.<pid>.<random> (mode 0700; DIR must exist).  *lim is
 * copied.  On success *out owns the store; release it with pstore_free().
 * Returns 0, -EINVAL (bad limits), -ENOMEM or the -errno of mkdir/open.
 */
int pstore_create(const char *dir, const struct pstore_limits *lim,
		  struct pstore **out);

/*
 * Free every record, unlink every segment file and remove the private
 * directory.  Refs and the pstore_path() string die with it.  NULL is a
 * no-op.
 */
void pstore_free(struct pstore *ps);

/*
 * Store a copy of data[0, len) (len <= PSTORE_REC_MAX; data may be NULL when
 * len is 0) and set *ref to a nonzero id for it; the caller keeps data.  The
 * record goes to memory if it fits under mem_max, else to a segment file.
 * Returns 0, -EINVAL (too long), -ENOSPC (fits neither in memory nor under
 * disk_max; also at 2^32 - 1 live records or 65536 live segments), -ENOMEM,
 * or the -errno of creating or writing a segment file (the store stays
 * consistent and usable; that record is simply not stored).
 */
int pstore_put(struct pstore *ps, const void *data, size_t len, uint64_t *ref);

/*
 * Copy the original bytes of record ref into buf[0, cap) and set *len to
 * their number.  buf may be NULL when cap is 0.  Returns 0; -ENOENT for an
 * unknown or dropped ref; -ENOBUFS when cap is too small (then *len is set
 * to the length needed and buf is untouched); -EIO when the record cannot be
 * read back intact (checksum mismatch, bad header, short read, read error,
 * decode error), counted in integrity_errors; -ENOMEM.  On any error buf may
 * hold garbage: it never holds wrong bytes presented as a success.
 */
int pstore_get(struct pstore *ps, uint64_t ref, void *buf, size_t cap,
	       size_t *len);

/*
 * Free record ref.  Its ref becomes unknown (-ENOENT) and stays so: refs
 * carry a 32-bit generation, so a stale ref is not confused with a later
 * record in the same slot until that slot has been reused 2^32 times.
 * Dropping an unknown or already dropped ref is a no-op.
 */
void pstore_drop(struct pstore *ps, uint64_t ref);

struct pstore_stats {
	uint64_t records;		/* live records == puts - drops */
	uint64_t raw_bytes;		/* original bytes of live records */
	uint64_t mem_bytes;		/* stored bytes in memory <= mem_max */
	uint64_t disk_bytes;		/* live segment files <= disk_max */
	uint64_t dead_bytes;		/* of disk_bytes: dropped records'
					 * space, reused by later puts */
	uint64_t peak_bytes;		/* highest mem_bytes + disk_bytes */
	uint64_t puts;			/* successful puts */
	uint64_t drops;			/* drops of live records */
	uint64_t integrity_errors;	/* gets that returned -EIO */
};

/* Copy a consistent snapshot of the counters into *out. */
void pstore_stats(struct pstore *ps, struct pstore_stats *out);

/*
 * Waiting for space, for writers that found the store full: a counter
 * that moves whenever stored bytes are freed (a drop, a segment file
 * removed), a hole becomes reusable, or pstore_kick() is called.  Read it before the put that may
 * fail, then wait on that value: a free in between is not missed.
 * Reading it takes no lock.
 */
uint64_t pstore_freed_seq(struct pstore *ps);
/*
 * Wait until the counter differs from seq or until deadline
 * (CLOCK_MONOTONIC) passes.  Returns 0, or -ETIMEDOUT.
 */
int pstore_wait_freed(struct pstore *ps, uint64_t seq,
		      const struct timespec *deadline);
/* Move the counter and wake every waiter (their reason to wait is gone). */
void pstore_kick(struct pstore *ps);

/*
 * Fill warning: a counter that moves each time the bytes held (memory
 * plus disk) rise to lim.warn_at or above; it moves again only after they
 * have fallen below lim.rearm_below.  Lock-free: one atomic load, cheap
 * enough for every write.  Never moves when warn_at is 0.
 */
uint64_t pstore_warn_seq(struct pstore *ps);

/*
 * Remove the swafs-store.<pid>.* directories in DIR whose pid is no longer
 * alive and that the caller's euid owns, with the seg-* files in them.
 * Symlinks and other names are left alone; a directory holding anything but
 * seg-* files is kept.  Sets *removed to the number of directories removed.
 * Returns 0, or the first -errno met (the scan goes on past it).
 */
int pstore_clean_stale(const char *dir, unsigned *removed);

/*
 * Check one stored record rec[0, size) (the format above) that should hold
 * raw_len original bytes and decode it into buf (room for raw_len): the
 * header checks, XXH64 and lz4 that every pstore_get runs.  Any size and
 * any bytes are safe to give.  Returns 0 or -EIO.
 */
int pstore_rec_decode(const void *rec, size_t size, uint32_t raw_len,
		      void *buf);

/* The private directory; owned by ps, valid until pstore_free(). */
const char *pstore_path(const struct pstore *ps);

/*
 * Test only: invert byte pos of stored record ref (pos 0 is the first byte
 * of its header, see the format above), in memory or in its segment file,
 * so tests can corrupt in-memory records too.  Holds the store lock across
 * its file I/O.  Returns 0, -ENOENT (unknown ref), -EINVAL (pos past the
 * record) or the -errno of the read or write.
 */
int pstore_test_corrupt(struct pstore *ps, uint64_t ref, size_t pos);

/*
 * Test only: make every get of a spilled record call fn(arg) once it has
 * pinned the record and before it reads the segment file, with no lock
 * held, so a test can hold a reader mid-read.  fn NULL turns it off.  Must
 * not race with gets.
 */
void pstore_test_read_hook(struct pstore *ps, void (*fn)(void *arg),
			   void *arg);

#endif
