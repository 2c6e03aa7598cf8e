/*
 * pstore.c - the pre-image store.
 *
 * Invariants; ps->lock protects every field marked "lock":
 *  1. A ref is returned only once its slot is committed (PSTORE_MEM or
 *     PSTORE_DISK), and a record's bytes are complete before it is
 *     committed, so a get never sees a half-written record.  Spilling is
 *     two-phase: reserve a slot and segment space under the lock, write
 *     outside it, commit under it.
 *  2. A slot's gen changes whenever the slot is freed, so a stale ref never
 *     names a later record in the same slot.
 *  3. seg->live counts the records committed or being written in a segment,
 *     seg->readers lists the gets reading it.  A segment is unhooked when
 *     both are empty and only then closed and unlinked, so no fd is closed
 *     under a reader.  An in-memory record pinned by a get and then dropped
 *     is freed by its last reader (dead flag).
 *  4. No compression, checksum, allocation of data buffers or file I/O
 *     under ps->lock: whatever a locked step retires goes on a
 *     struct pstore_trash, emptied after unlocking.  (The hole tables, 8 or
 *     16 bytes per hole, do grow under the lock; when they cannot, that
 *     hole stays dead until its segment goes.)
 *  5. mem_bytes is the sum of the sizes of PSTORE_MEM records; disk_bytes
 *     the sum of seg->end over hooked segments (reservations and holes
 *     included): seg->end is the highest offset ever reserved, never
 *     lowered, so disk_bytes bounds the segment files' real size.
 *  6. freed_seq moves, and waiters are woken, under ps->lock wherever
 *     mem_bytes or disk_bytes fall or a hole becomes reusable
 *     (space_freed_locked), so a waiter that read freed_seq before its
 *     failed put cannot miss the free.
 *  7. Space of a dropped spilled record is reused only once no get can be
 *     reading it.  A get pins a disk record under the lock, while its slot
 *     is committed, and joins seg->readers with a ticket from ps->pin_seq;
 *     a drop frees the slot under the lock, so every get that may read the
 *     record holds a ticket below the pin_seq of the drop.  The extent goes
 *     to seg->free at once when seg->readers is empty, else to seg->pend
 *     stamped with that pin_seq, and moves to seg->free when the oldest
 *     reader left (seg->readers is in ticket order) holds a ticket at or
 *     above the stamp.  Reservations take space only from seg->free or past
 *     seg->end, so no put writes where a get may still read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lz4.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "snapshot/pstore.h"

#define PSTORE_REC_MAGIC	0x52505753u	/* "SWPR" little-endian */
#define PSTORE_SEG_MAGIC	"SWAFSSEG"
#define PSTORE_VERSION		1
#define PSTORE_F_RAW		(1u << 0)
#define PSTORE_F_LZ4		(1u << 1)

#define PSTORE_CHUNK_SHIFT	16
#define PSTORE_CHUNK_SLOTS	(1u << PSTORE_CHUNK_SHIFT)
#define PSTORE_NCHUNKS		(1u << 16)
#define PSTORE_SLOTS_MAX	UINT32_MAX	/* ref low half: idx + 1 */
#define PSTORE_NSEGS		(1u << 16)	/* segs[] index: 16 bits */
#define PSTORE_NIL		UINT64_MAX
#define PSTORE_STALE_PREFIX	"swafs-store."

enum pstore_state {
	PSTORE_FREE,		/* on the free list */
	PSTORE_RESERVED,	/* being filled by a put; not readable */
	PSTORE_MEM,		/* committed, in memory */
	PSTORE_DISK,		/* committed, in a segment file */
};

/* Decoded record header; converted only by rec_hdr_read/rec_hdr_write. */
struct pstore_rec_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint32_t raw_len;
	uint32_t stored_len;
	uint64_t xxh64;
};

/* An in-memory record; rec[] holds the bytes of the format in pstore.h.
 * A dead record's slot is gone; its last reader frees it. */
struct pstore_mrec {
	uint32_t users : 31;	/* gets reading rec; lock */
	uint32_t dead : 1;	/* dropped while read; lock */
	uint32_t size;		/* header + payload; immutable */
	uint8_t rec[];
};

struct pstore_slot {
	union {
		struct pstore_mrec *mem;	/* PSTORE_MEM */
		struct {
			uint64_t off : 27;	/* < PSTORE_SEG_LIMIT */
			uint64_t size : 21;	/* header + payload */
			uint64_t seg : 16;	/* index in ps->segs */
		} disk;				/* PSTORE_DISK */
		uint64_t next;			/* PSTORE_FREE: or PSTORE_NIL */
	} u;
	uint32_t gen;		/* changes when freed: high half of a ref */
	uint32_t state : 2;	/* enum pstore_state */
	uint32_t raw_len : 21;	/* committed records */
};
_Static_assert(sizeof(struct pstore_slot) == 16, "slot must stay 16 bytes");
_Static_assert(PSTORE_REC_HDR_SIZE + PSTORE_REC_MAX < (1u << 21),
	       "record size must fit the 21-bit size field");

/* A byte range of a segment file. */
struct pstore_ext {
	uint32_t off;
	uint32_t len;
};

/* The extent of a record dropped while gets were reading its segment. */
struct pstore_pend {
	struct pstore_ext ext;
	uint64_t stamp;		/* ps->pin_seq at the drop */
};

struct pstore_seg {
	int fd;			/* immutable until closed by trash_empty */
	uint32_t id;		/* file seg-<id>; immutable */
	uint32_t idx;		/* index in ps->segs while hooked */
	uint32_t live;		/* records committed or being written; lock */
	bool sealed;		/* a write failed: no more reservations; lock */
	uint64_t end;		/* highest offset reserved; lock */
	uint64_t dead;		/* bytes of its dropped records not reused;
				 * lock */
	struct pstore_pin *rd_head, *rd_tail;	/* readers, oldest first; lock */
	struct pstore_ext *free;	/* reusable, by offset, merged; lock */
	uint32_t nfree, free_cap;	/* lock */
	uint32_t max_free;	/* longest free extent; lock */
	struct pstore_pend *pend;	/* in stamp order; lock */
	uint32_t npend, pend_cap;	/* lock */
	struct pstore_seg *hprev, *hnext;	/* ps->holed, iff nfree; lock */
	struct pstore_seg *next;	/* trash list, once unhooked */
};

struct pstore {
	pthread_mutex_t lock;
	char *path;			/* private directory; immutable */
	int dirfd;			/* open on path; immutable */
	struct pstore_limits lim;	/* seg_max resolved; immutable */
	struct pstore_slot **chunks;	/* PSTORE_NCHUNKS; lock, never freed */
	uint32_t nslots;		/* slots ever handed out; lock */
	uint64_t free_head;		/* free slot list; lock */
	struct pstore_seg **segs;	/* PSTORE_NSEGS hooked segments; lock */
	struct pstore_seg *active;	/* appended to, or NULL; lock */
	struct pstore_seg *holed;	/* unsealed segments with free extents */
	uint64_t pin_seq;		/* tickets of disk gets; lock */
	uint32_t seg_cursor;		/* next segs[] to try; lock */
	uint32_t next_seg_id;		/* lock */
	struct pstore_stats st;		/* lock */
	pthread_cond_t freed;		/* space came back; with lock */
	atomic_ullong freed_seq;	/* written under lock, read without */
	bool warned;			/* lock: at or above warn_at */
	atomic_ullong warn_seq;		/* moves when warned is set */
	void (*read_hook)(void *);	/* test only; set with no get running */
	void *read_hook_arg;
};

/* What a locked step retired, to release once the lock is dropped. */
struct pstore_trash {
	struct pstore_seg *segs;	/* unhooked or never hooked */
	struct pstore_mrec *mrec;
};

/* A pinned record that a get reads outside the lock. */
struct pstore_pin {
	struct pstore_mrec *mrec;	/* PSTORE_MEM */
	struct pstore_seg *seg;		/* PSTORE_DISK */
	struct pstore_pin *prev, *next;	/* seg->readers; lock */
	uint64_t ticket;		/* from ps->pin_seq */
	uint64_t off;
	uint32_t size;
	uint32_t raw_len;
};

/* ---- format: the one read/write accessor pair, and little-endian ---- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void rec_hdr_write(uint8_t *p, const struct pstore_rec_hdr *h)
{
	put_le(p + 0, h->magic, 4);
	put_le(p + 4, h->version, 2);
	put_le(p + 6, h->flags, 2);
	put_le(p + 8, h->raw_len, 4);
	put_le(p + 12, h->stored_len, 4);
	put_le(p + 16, h->xxh64, 8);
}

static void rec_hdr_read(const uint8_t *p, struct pstore_rec_hdr *h)
{
	h->magic = (uint32_t)get_le(p + 0, 4);
	h->version = (uint16_t)get_le(p + 4, 2);
	h->flags = (uint16_t)get_le(p + 6, 2);
	h->raw_len = (uint32_t)get_le(p + 8, 4);
	h->stored_len = (uint32_t)get_le(p + 12, 4);
	h->xxh64 = get_le(p + 16, 8);
}

static void seg_hdr_write(uint8_t *p)
{
	memcpy(p, PSTORE_SEG_MAGIC, 8);
	put_le(p + 8, PSTORE_VERSION, 4);
	put_le(p + 12, 0, 4);
}

/* ---- codec: no lock held ---- */

/* Build the in-memory record for data; *out is the caller's to free. */
static int rec_encode(const void *data, size_t len, struct pstore_mrec **out)
{
	int bound = LZ4_compressBound((int)len);  /* >= len: raw fits too */
	struct pstore_rec_hdr h = { .magic = PSTORE_REC_MAGIC,
				    .version = PSTORE_VERSION };
	struct pstore_mrec *m, *shrunk;
	uint8_t *pay;
	int c = 0;

	m = malloc(sizeof(*m) + PSTORE_REC_HDR_SIZE + (size_t)bound);
	if (!m)
		return -ENOMEM;
	pay = m->rec + PSTORE_REC_HDR_SIZE;
	if (len)
		c = LZ4_compress_default(data, (char *)pay, (int)len, bound);
	h.raw_len = (uint32_t)len;
	h.flags = c > 0 && (size_t)c < len ? PSTORE_F_LZ4 : PSTORE_F_RAW;
	h.stored_len = h.flags == PSTORE_F_LZ4 ? (uint32_t)c : (uint32_t)len;
	if (h.flags == PSTORE_F_RAW && len)
		memcpy(pay, data, len);
	h.xxh64 = XXH64(pay, h.stored_len, 0);
	rec_hdr_write(m->rec, &h);
	m->users = 0;
	m->dead = 0;
	m->size = PSTORE_REC_HDR_SIZE + h.stored_len;
	shrunk = realloc(m, sizeof(*m) + m->size);
	*out = shrunk ? shrunk : m;
	return 0;
}

/* Does header h fit a record of size bytes holding raw_len bytes? */
static bool rec_hdr_ok(const struct pstore_rec_hdr *h, uint32_t size,
		       uint32_t raw_len)
{
	if (h->magic != PSTORE_REC_MAGIC || h->version != PSTORE_VERSION ||
	    h->raw_len != raw_len ||
	    h->stored_len != size - PSTORE_REC_HDR_SIZE)
		return false;
	if (h->flags == PSTORE_F_RAW)
		return h->stored_len == raw_len;
	return h->flags == PSTORE_F_LZ4 && h->stored_len < raw_len;
}

int pstore_rec_decode(const void *rec, size_t size, uint32_t raw_len,
		      void *buf)
{
	const uint8_t *pay = (const uint8_t *)rec + PSTORE_REC_HDR_SIZE;
	struct pstore_rec_hdr h;
	int n;

	if (size < PSTORE_REC_HDR_SIZE ||
	    size > PSTORE_REC_HDR_SIZE + PSTORE_REC_MAX ||
	    raw_len > PSTORE_REC_MAX)
		return -EIO;
	rec_hdr_read(rec, &h);
	if (!rec_hdr_ok(&h, (uint32_t)size, raw_len))
		return -EIO;
	if (XXH64(pay, h.stored_len, 0) != h.xxh64)
		return -EIO;
	if (h.flags == PSTORE_F_RAW) {
		if (raw_len)
			memcpy(buf, pay, raw_len);
		return 0;
	}
	n = LZ4_decompress_safe((const char *)pay, buf, (int)h.stored_len,
				(int)raw_len);
	return n == (int)raw_len ? 0 : -EIO;
}

/* ---- file I/O: no lock held ---- */

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Read exactly n bytes; a short read, like any read error, is -EIO. */
static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static void seg_name(uint32_t id, char name[static 16])
{
	snprintf(name, 16, "seg-%06u", id);
}

/* Create segment file id with its header; *out is unhooked. */
static int seg_create(struct pstore *ps, uint32_t id, struct pstore_seg **out)
{
	uint8_t hdr[PSTORE_SEG_HDR_SIZE];
	struct pstore_seg *seg;
	char name[16];
	int rc;

	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	seg_name(id, name);
	seg->id = id;
	seg->fd = openat(ps->dirfd, name,
			 O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (seg->fd < 0) {
		rc = -errno;
		goto fail;
	}
	seg_hdr_write(hdr);
	rc = pwrite_full(seg->fd, hdr, sizeof(hdr), 0);
	if (rc < 0)
		goto fail_unlink;
	seg->end = PSTORE_SEG_HDR_SIZE;
	*out = seg;
	return 0;
fail_unlink:
	unlinkat(ps->dirfd, name, 0);
	close(seg->fd);
fail:
	free(seg);
	return rc;
}

/* Release what locked steps retired.  Called without ps->lock. */
static void trash_empty(struct pstore *ps, struct pstore_trash *t)
{
	struct pstore_seg *seg;
	char name[16];

	while ((seg = t->segs)) {
		t->segs = seg->next;
		seg_name(seg->id, name);
		unlinkat(ps->dirfd, name, 0);
		close(seg->fd);
		free(seg->free);
		free(seg->pend);
		free(seg);
	}
	free(t->mrec);
	t->mrec = NULL;
}

/* ---- slots: ps->lock held ---- */

static struct pstore_slot *slot_at(struct pstore *ps, uint32_t idx)
{
	return &ps->chunks[idx >> PSTORE_CHUNK_SHIFT]
			  [idx & (PSTORE_CHUNK_SLOTS - 1)];
}

static uint64_t slot_ref(struct pstore *ps, uint32_t idx)
{
	return (uint64_t)slot_at(ps, idx)->gen << 32 | ((uint64_t)idx + 1);
}

/* The committed slot that ref names, or NULL. */
static struct pstore_slot *slot_find_locked(struct pstore *ps, uint64_t ref,
					    uint32_t *idx)
{
	uint64_t low = ref & UINT32_MAX;
	struct pstore_slot *s;

	if (low == 0 || low > ps->nslots)
		return NULL;
	*idx = (uint32_t)(low - 1);
	s = slot_at(ps, *idx);
	if (s->gen != (uint32_t)(ref >> 32) || s->state < PSTORE_MEM)
		return NULL;
	return s;
}

static void slot_free_locked(struct pstore *ps, uint32_t idx)
{
	struct pstore_slot *s = slot_at(ps, idx);

	s->state = PSTORE_FREE;
	s->gen++;
	s->u.next = ps->free_head;
	ps->free_head = idx;
}

/* Add the chunk for slot ps->nslots; drops ps->lock to allocate. */
static int slot_grow_locked(struct pstore *ps)
{
	uint32_t k = ps->nslots >> PSTORE_CHUNK_SHIFT;
	struct pstore_slot *c;

	pthread_mutex_unlock(&ps->lock);
	c = calloc(PSTORE_CHUNK_SLOTS, sizeof(*c));
	pthread_mutex_lock(&ps->lock);
	if (!c)
		return -ENOMEM;
	if (!ps->chunks[k]) {
		ps->chunks[k] = c;
		return 0;
	}
	/* Another put added it while the lock was dropped. */
	pthread_mutex_unlock(&ps->lock);
	free(c);
	pthread_mutex_lock(&ps->lock);
	return 0;
}

/* Take a slot and mark it PSTORE_RESERVED; may drop ps->lock. */
static int slot_alloc_locked(struct pstore *ps, uint32_t *idx)
{
	int rc;

	for (;;) {
		if (ps->free_head != PSTORE_NIL) {
			*idx = (uint32_t)ps->free_head;
			ps->free_head = slot_at(ps, *idx)->u.next;
			break;
		}
		if (ps->nslots == PSTORE_SLOTS_MAX)
			return -ENOSPC;
		if (ps->chunks[ps->nslots >> PSTORE_CHUNK_SHIFT]) {
			*idx = ps->nslots++;
			break;
		}
		rc = slot_grow_locked(ps);
		if (rc < 0)
			return rc;
	}
	slot_at(ps, *idx)->state = PSTORE_RESERVED;
	return 0;
}

/* ---- accounting and segments: ps->lock held ---- */

static void peak_note_locked(struct pstore *ps)
{
	uint64_t used = ps->st.mem_bytes + ps->st.disk_bytes;

	if (used > ps->st.peak_bytes)
		ps->st.peak_bytes = used;
	/* holes are free space for the warning: later puts fill them */
	used -= ps->st.dead_bytes;
	if (ps->lim.warn_at && !ps->warned && used >= ps->lim.warn_at) {
		ps->warned = true;
		atomic_fetch_add(&ps->warn_seq, 1);
	}
}

/* Bytes held went down or a hole became reusable (invariant 6). */
static void space_freed_locked(struct pstore *ps)
{
	if (ps->warned && ps->st.mem_bytes + ps->st.disk_bytes -
	    ps->st.dead_bytes < ps->lim.rearm_below)
		ps->warned = false;
	ps->freed_seq++;
	pthread_cond_broadcast(&ps->freed);
}

static void commit_note_locked(struct pstore *ps, struct pstore_slot *s,
			       uint32_t raw_len)
{
	s->raw_len = raw_len;
	ps->st.records++;
	ps->st.puts++;
	ps->st.raw_bytes += raw_len;
}

/* ---- holes: ps->lock held ---- */

/* Room for one more of n elements of sz bytes in *arr; false if none. */
static bool table_grow(void **arr, uint32_t *cap, uint32_t n, size_t sz)
{
	uint32_t c = *cap ? *cap * 2 : 16;
	void *p;

	if (n < *cap)
		return true;
	p = realloc(*arr, (size_t)c * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

static void holed_link(struct pstore *ps, struct pstore_seg *seg)
{
	seg->hprev = NULL;
	seg->hnext = ps->holed;
	if (ps->holed)
		ps->holed->hprev = seg;
	ps->holed = seg;
}

static void holed_unlink(struct pstore *ps, struct pstore_seg *seg)
{
	if (seg->hprev)
		seg->hprev->hnext = seg->hnext;
	else if (ps->holed == seg)
		ps->holed = seg->hnext;
	else
		return;		/* not linked */
	if (seg->hnext)
		seg->hnext->hprev = seg->hprev;
	seg->hprev = seg->hnext = NULL;
}

/* Insert e before free[i]; false when the table cannot grow. */
static bool free_add_at(struct pstore *ps, struct pstore_seg *seg,
			uint32_t i, struct pstore_ext e)
{
	if (!table_grow((void **)&seg->free, &seg->free_cap, seg->nfree,
			sizeof(*seg->free)))
		return false;
	memmove(&seg->free[i + 1], &seg->free[i],
		(seg->nfree - i) * sizeof(*seg->free));
	seg->free[i] = e;
	if (!seg->nfree++)
		holed_link(ps, seg);
	return true;
}

static void free_remove_at(struct pstore *ps, struct pstore_seg *seg,
			   uint32_t i)
{
	memmove(&seg->free[i], &seg->free[i + 1],
		(seg->nfree - i - 1) * sizeof(*seg->free));
	if (!--seg->nfree)
		holed_unlink(ps, seg);
}

/*
 * Make e reusable, merged with the free extents it touches.  Returns
 * false when it stays dead: a sealed segment, or no memory for the table.
 */
static bool free_insert(struct pstore *ps, struct pstore_seg *seg,
			struct pstore_ext e)
{
	uint32_t lo = 0, hi = seg->nfree, mid;
	struct pstore_ext *f = seg->free;
	bool left, right;

	if (seg->sealed)
		return false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (f[mid].off < e.off)
			lo = mid + 1;
		else
			hi = mid;
	}
	left = lo > 0 && f[lo - 1].off + f[lo - 1].len == e.off;
	right = lo < seg->nfree && e.off + e.len == f[lo].off;
	if (left) {
		lo--;
		f[lo].len += e.len;
		if (right) {
			f[lo].len += f[lo + 1].len;
			free_remove_at(ps, seg, lo + 1);
		}
	} else if (right) {
		f[lo].off = e.off;
		f[lo].len += e.len;
	} else if (!free_add_at(ps, seg, lo, e)) {
		return false;
	}
	if (seg->free[lo].len > seg->max_free)
		seg->max_free = seg->free[lo].len;
	return true;
}

/* Take size bytes from the start of free[i]; returns their offset. */
static uint32_t free_take(struct pstore *ps, struct pstore_seg *seg,
			  uint32_t i, uint32_t size)
{
	struct pstore_ext *e = &seg->free[i];
	uint32_t off = e->off, was = e->len;

	e->off += size;
	e->len -= size;
	seg->dead -= size;
	ps->st.dead_bytes -= size;
	if (!e->len)
		free_remove_at(ps, seg, i);
	if (was == seg->max_free) {
		seg->max_free = 0;
		for (i = 0; i < seg->nfree; i++)
			if (seg->free[i].len > seg->max_free)
				seg->max_free = seg->free[i].len;
	}
	return off;
}

/* The first segment with a hole of size bytes, or NULL. */
static struct pstore_seg *hole_find_locked(struct pstore *ps, uint32_t size)
{
	struct pstore_seg *seg;

	for (seg = ps->holed; seg; seg = seg->hnext)
		if (seg->max_free >= size)
			break;
	return seg;
}

/* Reserve size bytes in the smallest fitting hole of the first segment
 * that has one; no disk growth.  False when no hole fits. */
static bool hole_reserve_locked(struct pstore *ps, uint32_t size,
				struct pstore_seg **segp, uint64_t *off)
{
	struct pstore_seg *seg = hole_find_locked(ps, size);
	uint32_t best = 0;

	if (!seg)
		return false;
	for (uint32_t i = 0; i < seg->nfree; i++)
		if (seg->free[i].len >= size &&
		    (seg->free[best].len < size ||
		     seg->free[i].len < seg->free[best].len))
			best = i;
	*off = free_take(ps, seg, best, size);
	*segp = seg;
	seg->live++;
	return true;
}

/* Free the pending extents that no reader left on seg can be reading
 * (invariant 7). */
static void pend_release_locked(struct pstore *ps, struct pstore_seg *seg)
{
	uint64_t oldest = seg->rd_head ? seg->rd_head->ticket : UINT64_MAX;
	uint32_t n = 0;

	while (n < seg->npend && seg->pend[n].stamp <= oldest)
		free_insert(ps, seg, seg->pend[n++].ext);
	if (!n)
		return;
	seg->npend -= n;
	memmove(seg->pend, &seg->pend[n], seg->npend * sizeof(*seg->pend));
	space_freed_locked(ps);
}

/* The extent e of a record just dropped from seg (invariant 7). */
static void hole_dropped_locked(struct pstore *ps, struct pstore_seg *seg,
				struct pstore_ext e)
{
	if (!seg->rd_head) {
		if (free_insert(ps, seg, e))
			space_freed_locked(ps);
		return;
	}
	if (seg->sealed || !table_grow((void **)&seg->pend, &seg->pend_cap,
				       seg->npend, sizeof(*seg->pend)))
		return;		/* dead until the segment goes */
	seg->pend[seg->npend++] = (struct pstore_pend){ e, ps->pin_seq };
}

/* ---- segments: ps->lock held ---- */

/* Unhook seg onto the trash once nothing lives in it or reads it. */
static void seg_retire_locked(struct pstore *ps, struct pstore_seg *seg,
			      struct pstore_trash *t)
{
	if (seg->live || seg->rd_head)
		return;
	holed_unlink(ps, seg);
	ps->segs[seg->idx] = NULL;
	ps->st.disk_bytes -= seg->end;
	ps->st.dead_bytes -= seg->dead;
	if (ps->active == seg)
		ps->active = NULL;
	seg->next = t->segs;
	t->segs = seg;
	space_freed_locked(ps);
}

/* Bytes of the free extent that ends at seg->end, if any. */
static uint32_t seg_tail_free(const struct pstore_seg *seg)
{
	const struct pstore_ext *last;

	if (!seg->nfree)
		return 0;
	last = &seg->free[seg->nfree - 1];
	return last->off + last->len == seg->end ? last->len : 0;
}

/*
 * Reserve size bytes: in a hole if one fits, else at the end of the active
 * segment (taking in a free extent that ends there).  Returns 0 with *segp
 * and *off set, 1 when a new segment is needed and disk_max allows one, or
 * -ENOSPC.
 */
static int seg_reserve_locked(struct pstore *ps, uint32_t size,
			      struct pstore_seg **segp, uint64_t *off)
{
	struct pstore_seg *seg = ps->active;
	uint32_t tail, grow;

	if (hole_reserve_locked(ps, size, segp, off))
		return 0;
	tail = seg ? seg_tail_free(seg) : 0;
	grow = size - tail;	/* tail < size: no hole fits */
	if (!seg || seg->end + grow > ps->lim.seg_max) {
		if (ps->st.disk_bytes + PSTORE_SEG_HDR_SIZE + size >
		    ps->lim.disk_max)
			return -ENOSPC;
		return 1;
	}
	if (ps->st.disk_bytes + grow > ps->lim.disk_max)
		return -ENOSPC;
	if (tail)
		free_take(ps, seg, seg->nfree - 1, tail);
	*segp = seg;
	*off = seg->end - tail;
	seg->end += grow;
	seg->live++;
	ps->st.disk_bytes += grow;
	peak_note_locked(ps);
	return 0;
}

/*
 * Make the new segment seg active, unless a put installed one with room or
 * a hole that fits appeared while the lock was dropped, or disk_max no
 * longer allows it: then seg goes to the trash and the caller's next
 * reserve decides (so an installed segment always takes the record, and no
 * empty segment stays hooked).  -ENOSPC when every segs[] entry is taken.
 */
static int seg_install_locked(struct pstore *ps, struct pstore_seg *seg,
			      uint32_t size, struct pstore_trash *t)
{
	struct pstore_seg *old = ps->active;
	uint32_t i = 0, n;
	int rc = 0;

	if ((old && old->end + size <= ps->lim.seg_max) ||
	    hole_find_locked(ps, size) ||
	    ps->st.disk_bytes + seg->end + size > ps->lim.disk_max)
		goto discard;
	for (n = 0; n < PSTORE_NSEGS; n++) {
		i = (ps->seg_cursor + n) % PSTORE_NSEGS;
		if (!ps->segs[i])
			break;
	}
	rc = -ENOSPC;
	if (n == PSTORE_NSEGS)
		goto discard;
	ps->seg_cursor = i + 1;
	seg->idx = i;
	ps->segs[i] = seg;
	ps->active = seg;
	ps->st.disk_bytes += seg->end;
	peak_note_locked(ps);
	if (old)
		seg_retire_locked(ps, old, t);
	return 0;
discard:
	seg->next = t->segs;
	t->segs = seg;
	return rc;
}

/* ---- put ---- */

/*
 * Place record m of slot idx: commit it in memory (returns 0, m is owned
 * by the store), or reserve segment space (returns 1 with *segp, *off).
 * Creates segments with ps->lock dropped.
 */
static int put_place_locked(struct pstore *ps, struct pstore_mrec *m,
			    uint32_t idx, uint32_t raw_len,
			    struct pstore_seg **segp, uint64_t *off,
			    struct pstore_trash *t)
{
	struct pstore_seg *seg = NULL;
	uint32_t id;
	int rc;

	for (;;) {
		if (ps->st.mem_bytes + m->size <= ps->lim.mem_max) {
			slot_at(ps, idx)->u.mem = m;
			slot_at(ps, idx)->state = PSTORE_MEM;
			commit_note_locked(ps, slot_at(ps, idx), raw_len);
			ps->st.mem_bytes += m->size;
			peak_note_locked(ps);
			return 0;
		}
		rc = seg_reserve_locked(ps, m->size, segp, off);
		if (rc <= 0)
			return rc == 0 ? 1 : rc;
		id = ps->next_seg_id++;
		pthread_mutex_unlock(&ps->lock);
		rc = seg_create(ps, id, &seg);
		pthread_mutex_lock(&ps->lock);
		if (rc == 0)
			rc = seg_install_locked(ps, seg, m->size, t);
		if (rc < 0)
			return rc;
	}
}

/*
 * Second phase of a spill: publish slot idx after the write to seg at off
 * returned wrc, or undo the reservation.
 */
static void put_commit_locked(struct pstore *ps, uint32_t idx,
			      struct pstore_seg *seg, uint64_t off,
			      const struct pstore_mrec *m, uint32_t raw_len,
			      int wrc, struct pstore_trash *t)
{
	struct pstore_slot *s = slot_at(ps, idx);

	if (wrc < 0) {
		/* Seal it: a file that failed a write gets no more records,
		 * or every put could pick it and fail.  Its holes stay dead. */
		if (ps->active == seg)
			ps->active = NULL;
		seg->sealed = true;
		holed_unlink(ps, seg);
		seg->live--;
		seg_retire_locked(ps, seg, t);
		slot_free_locked(ps, idx);
		return;
	}
	s->u.disk.off = off;
	s->u.disk.size = m->size;
	s->u.disk.seg = seg->idx;
	s->state = PSTORE_DISK;
	commit_note_locked(ps, s, raw_len);
}

/* Phase two of a spill: write outside the lock, then commit or undo. */
static int put_spill(struct pstore *ps, struct pstore_mrec *m, uint32_t idx,
		     uint32_t raw_len, struct pstore_seg *seg, uint64_t off,
		     uint64_t *ref, struct pstore_trash *t)
{
	int rc = pwrite_full(seg->fd, m->rec, m->size, off);

	pthread_mutex_lock(&ps->lock);
	put_commit_locked(ps, idx, seg, off, m, raw_len, rc, t);
	if (rc == 0)
		*ref = slot_ref(ps, idx);
	pthread_mutex_unlock(&ps->lock);
	return rc;
}

int pstore_put(struct pstore *ps, const void *data, size_t len, uint64_t *ref)
{
	struct pstore_trash t = { NULL, NULL };
	struct pstore_seg *seg = NULL;
	struct pstore_mrec *m;
	uint64_t off = 0;
	uint32_t idx;
	int rc;

	if (len > PSTORE_REC_MAX || (!data && len))
		return -EINVAL;
	rc = rec_encode(data, len, &m);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&ps->lock);
	rc = slot_alloc_locked(ps, &idx);
	if (rc < 0)
		goto out_unlock;
	rc = put_place_locked(ps, m, idx, (uint32_t)len, &seg, &off, &t);
	if (rc < 0)
		slot_free_locked(ps, idx);
	else if (rc == 0)
		*ref = slot_ref(ps, idx);	/* m now belongs to the store */
out_unlock:
	pthread_mutex_unlock(&ps->lock);
	if (rc == 1)
		rc = put_spill(ps, m, idx, (uint32_t)len, seg, off, ref, &t);
	if (rc < 0 || seg)
		free(m);
	trash_empty(ps, &t);
	return rc;
}

/* ---- get and drop ---- */

/* Pin the record ref names; -ENOENT, or -ENOBUFS with *len set. */
static int get_pin(struct pstore *ps, uint64_t ref, size_t cap,
		   struct pstore_pin *p, size_t *len)
{
	struct pstore_slot *s;
	uint32_t idx;
	int rc = 0;

	pthread_mutex_lock(&ps->lock);
	s = slot_find_locked(ps, ref, &idx);
	if (!s) {
		rc = -ENOENT;
		goto out;
	}
	p->raw_len = s->raw_len;
	if (p->raw_len > cap) {
		*len = p->raw_len;
		rc = -ENOBUFS;
	} else if (s->state == PSTORE_MEM) {
		p->mrec = s->u.mem;
		p->seg = NULL;
		p->size = p->mrec->size;
		p->mrec->users++;
	} else {
		p->mrec = NULL;
		p->seg = ps->segs[s->u.disk.seg];
		p->off = s->u.disk.off;
		p->size = (uint32_t)s->u.disk.size;
		p->ticket = ps->pin_seq++;
		p->next = NULL;
		p->prev = p->seg->rd_tail;
		if (p->prev)
			p->prev->next = p;
		else
			p->seg->rd_head = p;
		p->seg->rd_tail = p;
	}
out:
	pthread_mutex_unlock(&ps->lock);
	return rc;
}

/* Read and decode a pinned record; no lock held. */
static int get_read(struct pstore *ps, const struct pstore_pin *p, void *buf)
{
	uint8_t *rec;
	int rc;

	if (p->mrec)
		return pstore_rec_decode(p->mrec->rec, p->size, p->raw_len,
					 buf);
	if (ps->read_hook)
		ps->read_hook(ps->read_hook_arg);
	rec = malloc(p->size);
	if (!rec)
		return -ENOMEM;
	rc = pread_full(p->seg->fd, rec, p->size, p->off);
	if (rc == 0)
		rc = pstore_rec_decode(rec, p->size, p->raw_len, buf);
	free(rec);
	return rc;
}

static void get_unpin(struct pstore *ps, struct pstore_pin *p, int rc)
{
	struct pstore_trash t = { NULL, NULL };

	pthread_mutex_lock(&ps->lock);
	if (p->mrec) {
		p->mrec->users--;
		if (p->mrec->dead && !p->mrec->users)
			t.mrec = p->mrec;
	} else {
		if (p->prev)
			p->prev->next = p->next;
		else
			p->seg->rd_head = p->next;
		if (p->next)
			p->next->prev = p->prev;
		else
			p->seg->rd_tail = p->prev;
		if (!p->seg->live && !p->seg->rd_head)
			seg_retire_locked(ps, p->seg, &t);
		else if (!p->prev)	/* the oldest reader left */
			pend_release_locked(ps, p->seg);
	}
	if (rc == -EIO)
		ps->st.integrity_errors++;
	pthread_mutex_unlock(&ps->lock);
	trash_empty(ps, &t);
}

int pstore_get(struct pstore *ps, uint64_t ref, void *buf, size_t cap,
	       size_t *len)
{
	struct pstore_pin p;
	int rc;

	rc = get_pin(ps, ref, cap, &p, len);
	if (rc < 0)
		return rc;
	rc = get_read(ps, &p, buf);
	get_unpin(ps, &p, rc);
	if (rc == 0)
		*len = p.raw_len;
	return rc;
}

void pstore_drop(struct pstore *ps, uint64_t ref)
{
	struct pstore_trash t = { NULL, NULL };
	struct pstore_slot *s;
	struct pstore_seg *seg;
	uint32_t idx;

	pthread_mutex_lock(&ps->lock);
	s = slot_find_locked(ps, ref, &idx);
	if (!s)
		goto out;
	if (s->state == PSTORE_MEM) {
		ps->st.mem_bytes -= s->u.mem->size;
		if (s->u.mem->users)
			s->u.mem->dead = 1;	/* its last reader frees it */
		else
			t.mrec = s->u.mem;
		space_freed_locked(ps);
	} else {
		seg = ps->segs[s->u.disk.seg];
		seg->live--;
		seg->dead += s->u.disk.size;
		ps->st.dead_bytes += s->u.disk.size;
		if (seg->live || seg->rd_head)
			hole_dropped_locked(ps, seg, (struct pstore_ext){
				s->u.disk.off, s->u.disk.size });
		seg_retire_locked(ps, seg, &t);
	}
	ps->st.records--;
	ps->st.drops++;
	ps->st.raw_bytes -= s->raw_len;
	slot_free_locked(ps, idx);
out:
	pthread_mutex_unlock(&ps->lock);
	trash_empty(ps, &t);
}

void pstore_stats(struct pstore *ps, struct pstore_stats *out)
{
	pthread_mutex_lock(&ps->lock);
	*out = ps->st;
	pthread_mutex_unlock(&ps->lock);
}

uint64_t pstore_freed_seq(struct pstore *ps)
{
	return atomic_load(&ps->freed_seq);
}

int pstore_wait_freed(struct pstore *ps, uint64_t seq,
		      const struct timespec *deadline)
{
	int rc = 0;

	pthread_mutex_lock(&ps->lock);
	while (ps->freed_seq == seq && rc == 0)
		rc = -pthread_cond_timedwait(&ps->freed, &ps->lock, deadline);
	if (ps->freed_seq != seq)
		rc = 0;
	pthread_mutex_unlock(&ps->lock);
	return rc;
}

void pstore_kick(struct pstore *ps)
{
	pthread_mutex_lock(&ps->lock);
	ps->freed_seq++;
	pthread_cond_broadcast(&ps->freed);
	pthread_mutex_unlock(&ps->lock);
}

uint64_t pstore_warn_seq(struct pstore *ps)
{
	return atomic_load_explicit(&ps->warn_seq, memory_order_relaxed);
}

const char *pstore_path(const struct pstore *ps)
{
	return ps->path;
}

/* ---- create and free ---- */

static int limits_resolve(const struct pstore_limits *lim,
			  struct pstore_limits *out)
{
	if (!lim)
		return -EINVAL;
	*out = *lim;
	if (!out->seg_max)
		out->seg_max = PSTORE_SEG_DEFAULT;
	if (out->seg_max < PSTORE_SEG_MIN || out->seg_max > PSTORE_SEG_LIMIT)
		return -EINVAL;
	if (out->warn_at && out->rearm_below > out->warn_at)
		return -EINVAL;
	return 0;
}

/* Deadlines of space waiters are CLOCK_MONOTONIC: immune to clock steps. */
static int freed_cond_init(struct pstore *ps)
{
	pthread_condattr_t ca;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = -pthread_cond_init(&ps->freed, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

/* Make DIR/swafs-store.<pid>.<random> (mkdtemp: mode 0700) and open it. */
static int store_dir_make(struct pstore *ps, const char *dir)
{
	char *path;
	int rc;

	if (asprintf(&path, "%s/" PSTORE_STALE_PREFIX "%ld.XXXXXX", dir,
		     (long)getpid()) < 0)
		return -ENOMEM;
	if (!mkdtemp(path)) {
		rc = -errno;
		free(path);
		return rc;
	}
	ps->path = path;	/* from here pstore_free() removes it */
	ps->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			 O_CLOEXEC);
	return ps->dirfd < 0 ? -errno : 0;
}

int pstore_create(const char *dir, const struct pstore_limits *lim,
		  struct pstore **out)
{
	struct pstore *ps;
	int rc;

	if (!dir)
		return -EINVAL;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->dirfd = -1;
	ps->free_head = PSTORE_NIL;
	ps->next_seg_id = 1;
	rc = -pthread_mutex_init(&ps->lock, NULL);
	if (rc < 0) {
		free(ps);
		return rc;
	}
	rc = freed_cond_init(ps);
	if (rc < 0) {
		pthread_mutex_destroy(&ps->lock);
		free(ps);
		return rc;
	}
	rc = limits_resolve(lim, &ps->lim);
	if (rc < 0)
		goto fail;
	/* Large callocs are mmap'd: untouched entries cost no memory. */
	ps->chunks = calloc(PSTORE_NCHUNKS, sizeof(*ps->chunks));
	ps->segs = calloc(PSTORE_NSEGS, sizeof(*ps->segs));
	rc = -ENOMEM;
	if (!ps->chunks || !ps->segs)
		goto fail;
	rc = store_dir_make(ps, dir);
	if (rc < 0)
		goto fail;
	*out = ps;
	return 0;
fail:
	pstore_free(ps);
	return rc;
}

static void free_records(struct pstore *ps)
{
	struct pstore_slot *s;

	for (uint32_t i = 0; i < ps->nslots; i++) {
		s = slot_at(ps, i);
		if (s->state == PSTORE_MEM)
			free(s->u.mem);
	}
	for (uint32_t k = 0; k < PSTORE_NCHUNKS; k++)
		free(ps->chunks[k]);
}

void pstore_free(struct pstore *ps)
{
	struct pstore_trash t = { NULL, NULL };

	if (!ps)
		return;
	if (ps->chunks)
		free_records(ps);
	for (uint32_t i = 0; ps->segs && i < PSTORE_NSEGS; i++) {
		if (ps->segs[i]) {
			ps->segs[i]->next = t.segs;
			t.segs = ps->segs[i];
		}
	}
	trash_empty(ps, &t);
	if (ps->dirfd >= 0)
		close(ps->dirfd);
	if (ps->path)
		rmdir(ps->path);
	free(ps->path);
	free(ps->segs);
	free(ps->chunks);
	pthread_cond_destroy(&ps->freed);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

/* ---- stale stores of dead processes ---- */

/* The pid in a name "swafs-store.<pid>.<suffix>", or 0 if not one. */
static pid_t stale_pid(const char *name)
{
	size_t n = strlen(PSTORE_STALE_PREFIX);
	const char *p = name + n;
	long long pid = 0;

	if (strncmp(name, PSTORE_STALE_PREFIX, n))
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		pid = pid * 10 + (*p - '0');
		if (pid > INT_MAX)
			return 0;
	}
	if (*p != '.' || p[1] == '\0')
		return 0;
	return (pid_t)pid;
}

static bool pid_alive(pid_t pid)
{
	/* EPERM: alive, another user's. */
	return kill(pid, 0) == 0 || errno != ESRCH;
}

static bool seg_name_ok(const char *name)
{
	if (strncmp(name, "seg-", 4) || name[4] == '\0')
		return false;
	for (name += 4; *name; name++)
		if (*name < '0' || *name > '9')
			return false;
	return true;
}

/* Remove the stale store name in dfd: 1 removed, 0 kept, or -errno. */
static int stale_remove(int dfd, const char *name)
{
	struct dirent *de;
	struct stat st;
	int fd, rc = 0;
	DIR *d;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((de = readdir(d)))
		if (seg_name_ok(de->d_name) && unlinkat(fd, de->d_name, 0) &&
		    errno != ENOENT && rc == 0)
			rc = -errno;
	closedir(d);
	if (rc < 0)
		return rc;
	if (unlinkat(dfd, name, AT_REMOVEDIR) == 0)
		return 1;
	/* Files not ours in it, or another cleaner came first: keep. */
	return errno == ENOTEMPTY || errno == ENOENT ? 0 : -errno;
}

int pstore_clean_stale(const char *dir, unsigned *removed)
{
	struct dirent *de;
	int fd, r, rc = 0;
	pid_t pid;
	DIR *d;

	*removed = 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((de = readdir(d))) {
		pid = stale_pid(de->d_name);
		if (pid <= 0 || pid_alive(pid))
			continue;
		r = stale_remove(fd, de->d_name);
		if (r > 0)
			(*removed)++;
		else if (r < 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	return rc;
}

/* ---- test hook ---- */

int pstore_test_corrupt(struct pstore *ps, uint64_t ref, size_t pos)
{
	struct pstore_slot *s;
	uint64_t off;
	uint32_t idx;
	uint8_t b;
	int fd, rc = -ENOENT;

	pthread_mutex_lock(&ps->lock);
	s = slot_find_locked(ps, ref, &idx);
	if (!s)
		goto out;
	rc = -EINVAL;
	if (s->state == PSTORE_MEM && pos < s->u.mem->size) {
		s->u.mem->rec[pos] ^= 0xff;
		rc = 0;
	} else if (s->state == PSTORE_DISK && pos < s->u.disk.size) {
		fd = ps->segs[s->u.disk.seg]->fd;
		off = s->u.disk.off + pos;
		rc = pread_full(fd, &b, 1, off);
		b ^= 0xff;
		if (rc == 0)
			rc = pwrite_full(fd, &b, 1, off);
	}
out:
	pthread_mutex_unlock(&ps->lock);
	return rc;
}

void pstore_test_read_hook(struct pstore *ps, void (*fn)(void *arg),
			   void *arg)
{
	ps->read_hook = fn;
	ps->read_hook_arg = arg;
}
