/*
 * cobj.c - per-checkpoint object state: capture before change, validated
 * reads for views.  The ordering rules are numbered in cobj.h.
 *
 * Locking:
 *   - shard mutexes protect the hash chains only;
 *   - each entry's mutex serialises its captures and saved-marking, and
 *     protects bref[], xattr, link and dir;
 *   - bstate[] and flags are atomics: writers whose block needs no capture
 *     and views validating a read take no lock at all.
 *   No system call is made under a shard mutex.  Captures read the live
 *   object and write the store under the entry's mutex: only writers of
 *   that same object wait for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/bidx.h"
#include "snapshot/cobj.h"
#include "snapshot/nscap.h"
#include "snapshot/pstore.h"

#define COBJ_SHARDS 64
#define XATTR_LIST_MAX 65536

struct cobj {
	struct cobj *hnext;		/* shard lock */
	struct cobj *anext;		/* immutable once in t->all */
	dev_t dev;			/* immutable */
	ino_t ino;			/* immutable */
	struct stat st;			/* immutable: T attributes (rule 2) */
	uint64_t nblocks;		/* immutable: blocks of the T image */
	atomic_uint flags;		/* enum cobj_flags */
	atomic_uint view_opens;
	atomic_uchar *bstate;		/* nblocks entries; never freed early */
	atomic_uchar *served;		/* bit per block: handed to a view */
	/* blocks whose T layout the live file no longer tells: CB_DATA,
	 * CB_HOLE, CB_DIRTY; added after the state is stored, before the
	 * change (rule 1), never removed */
	struct bidx *unlive;
	pthread_mutex_t lock;
	uint64_t *bref;			/* lock: store refs of CB_DATA blocks */
	void *hmaps;			/* lock: tsearch tree of struct hmap */
	uint64_t unsaved;		/* lock: blocks not yet saved */
	char *xattr;			/* lock: set once with COBJ_XATTR */
	size_t xattr_len;
	char *link;			/* lock: T target of a dead symlink */
	int kept_fd;			/* set once with COBJ_KEPT; or -1 */
	struct nsdir *dir;		/* lock: set once with COBJ_DIR */
};

/*
 * The T layout of a CB_DATA block that was partly a hole at T, as the
 * backing file reported it (SEEK_DATA/SEEK_HOLE) when the block was
 * captured: its data extents [from, to), in bytes from the block's start,
 * in order.  A CB_DATA block without one was all data.  Dropped with the
 * pre-image (the block is then CB_DIRTY and its layout is not served).
 */
struct hmap {
	uint64_t b;
	unsigned n;
	uint32_t ext[][2];
};

struct cobj_shard {
	pthread_mutex_t lock;
	struct cobj **buckets;		/* lock */
	size_t nbuckets;		/* lock; power of two */
	size_t count;			/* lock */
};

struct cobj_table {
	struct cobj_shard shards[COBJ_SHARDS];
	struct pstore *store;		/* immutable */
	unsigned bs;			/* immutable block size */
	bool retain_all;		/* immutable */
	atomic_uint *kept;		/* immutable pointer: shared count */
	unsigned kept_max;		/* immutable */
	/* every entry, newest first; entries are only pushed, never
	 * unlinked, so a walk needs no lock */
	_Atomic(struct cobj *) all;
	atomic_bool purged;		/* captures store nothing */
	atomic_ullong objects, released, captured, captured_bytes, saved;
	atomic_ullong saved_bytes, held_bytes, peak_held, first_served_ns;
};

static uint64_t cobj_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull;

	return h ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4full) ^ (h >> 31);
}

unsigned cobj_flags(const struct cobj *c)
{
	return atomic_load_explicit(&((struct cobj *)c)->flags,
				    memory_order_acquire);
}

const struct stat *cobj_stat(const struct cobj *c)
{
	return &c->st;
}

const char *cobj_link(const struct cobj *c)
{
	return c->link;
}

int cobj_kept_fd(const struct cobj *c)
{
	return cobj_flags(c) & COBJ_KEPT ? c->kept_fd : -1;
}

const char *cobj_xattrs(const struct cobj *c, size_t *len)
{
	*len = c->xattr_len;
	return c->xattr;
}

struct nsdir *cobj_dir(const struct cobj *c)
{
	return c->dir;
}

void cobj_lock(struct cobj *c)
{
	pthread_mutex_lock(&c->lock);
}

void cobj_unlock(struct cobj *c)
{
	pthread_mutex_unlock(&c->lock);
}

void cobj_set_dir_locked(struct cobj *c, struct nsdir *d)
{
	c->dir = d;
	atomic_fetch_or_explicit(&c->flags, COBJ_DIR, memory_order_release);
}

void cobj_set_ancestor(struct cobj *c, struct nsdir *d)
{
	pthread_mutex_lock(&c->lock);
	nsdir_free(c->dir);
	c->dir = d;
	atomic_fetch_or_explicit(&c->flags, COBJ_DIR | COBJ_ANCESTOR,
				 memory_order_release);
	pthread_mutex_unlock(&c->lock);
}

unsigned cobj_block_size(const struct cobj_table *t)
{
	return t->bs;
}

static void set_flag(struct cobj *c, unsigned f)
{
	atomic_fetch_or_explicit(&c->flags, f, memory_order_release);
}

/* Build an entry from the live object; it is not yet visible. */
static int cobj_new(struct cobj_table *t, const struct cobj_ref *ref,
		    struct cobj **out)
{
	struct cobj *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->dev = ref->dev;
	c->ino = ref->ino;
	if (fstatat(ref->fd, "", &c->st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) {
		rc = -errno;
		free(c);
		return rc;
	}
	if (S_ISREG(c->st.st_mode) && c->st.st_size > 0) {
		c->nblocks = ((uint64_t)c->st.st_size + t->bs - 1) / t->bs;
		c->bstate = calloc(c->nblocks, 1);
		c->served = calloc((c->nblocks + 7) / 8, 1);
		c->bref = calloc(c->nblocks, sizeof(*c->bref));
		if (!c->bstate || !c->served || !c->bref ||
		    bidx_create(c->nblocks, &c->unlive) < 0) {
			free(c->bstate);
			free(c->served);
			free(c->bref);
			free(c);
			return -ENOMEM;
		}
	}
	c->unsaved = c->nblocks;
	c->kept_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void cobj_free(struct cobj_table *t, struct cobj *c)
{
	for (uint64_t b = 0; c->bref && b < c->nblocks; b++)
		if (c->bref[b])
			pstore_drop(t->store, c->bref[b]);
	free(c->bstate);
	free(c->served);
	bidx_free(c->unlive);
	tdestroy(c->hmaps, free);
	free(c->bref);
	free(c->xattr);
	free(c->link);
	nsdir_free(c->dir);
	if (c->kept_fd >= 0) {
		close(c->kept_fd);
		atomic_fetch_sub(t->kept, 1);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct cobj **cobj_bucket(struct cobj_shard *s, uint64_t h)
{
	return &s->buckets[(h / COBJ_SHARDS) & (s->nbuckets - 1)];
}

static struct cobj *shard_find_locked(struct cobj_shard *s, uint64_t h,
				      dev_t dev, ino_t ino)
{
	struct cobj *c = *cobj_bucket(s, h);

	while (c && (c->ino != ino || c->dev != dev))
		c = c->hnext;
	return c;
}

static void shard_grow_locked(struct cobj_shard *s)
{
	size_t n = s->nbuckets * 2;
	struct cobj **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;		/* chains get longer; still correct */
	for (size_t b = 0; b < s->nbuckets; b++) {
		struct cobj *c = s->buckets[b], *next;

		for (; c; c = next) {
			uint64_t h = cobj_hash(c->dev, c->ino);

			next = c->hnext;
			c->hnext = nb[(h / COBJ_SHARDS) & (n - 1)];
			nb[(h / COBJ_SHARDS) & (n - 1)] = c;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

struct cobj *cobj_find(struct cobj_table *t, dev_t dev, ino_t ino)
{
	uint64_t h = cobj_hash(dev, ino);
	struct cobj_shard *s = &t->shards[h % COBJ_SHARDS];
	struct cobj *c;

	pthread_mutex_lock(&s->lock);
	c = shard_find_locked(s, h, dev, ino);
	pthread_mutex_unlock(&s->lock);
	return c;
}

/* Insert n unless an entry exists; returns the entry that is in the table. */
static struct cobj *cobj_insert(struct cobj_table *t, struct cobj *n)
{
	uint64_t h = cobj_hash(n->dev, n->ino);
	struct cobj_shard *s = &t->shards[h % COBJ_SHARDS];
	struct cobj *c;

	pthread_mutex_lock(&s->lock);
	c = shard_find_locked(s, h, n->dev, n->ino);
	if (!c) {
		if (s->count >= s->nbuckets)
			shard_grow_locked(s);
		n->hnext = *cobj_bucket(s, h);
		*cobj_bucket(s, h) = n;
		s->count++;
		c = n;
		/* on the all-list before anyone can find it: a purge that
		 * walks the list must not miss an entry others capture into */
		atomic_fetch_add(&t->objects, 1);
		n->anext = atomic_load(&t->all);
		while (!atomic_compare_exchange_weak(&t->all, &n->anext, n))
			;
	}
	pthread_mutex_unlock(&s->lock);
	return c;
}

int cobj_get(struct cobj_table *t, const struct cobj_ref *ref,
	     struct cobj **out)
{
	struct cobj *c = cobj_find(t, ref->dev, ref->ino), *n = NULL;
	int rc;

	if (c) {
		*out = c;
		return 0;
	}
	/* Rule 2: stat before insertion, so it predates any change. */
	rc = cobj_new(t, ref, &n);
	if (rc < 0)
		return rc;
	c = cobj_insert(t, n);
	if (c != n)
		cobj_free(t, n);
	*out = c;
	return 0;
}

int cobj_mark_new(struct cobj_table *t, const struct cobj_ref *ref)
{
	struct cobj *c;
	int rc = cobj_get(t, ref, &c);

	if (rc == 0)
		set_flag(c, COBJ_NEW);
	return rc;
}

/* A readable descriptor of the live object for capture. */
static int open_live(const struct cobj_ref *ref, int flags)
{
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", ref->fd);
	fd = open(path, flags | O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)	/* O_NOATIME needs ownership */
		fd = open(path, flags | O_RDONLY | O_CLOEXEC);
	if (fd < 0 && cobj_ref_room(ref, errno))
		return open_live(ref, flags);
	return fd < 0 ? -errno : fd;
}

static int hmap_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct hmap *)a)->b;
	uint64_t y = ((const struct hmap *)b)->b;

	return x < y ? -1 : x > y;
}

/* Append data extent [from, to) to *m (grown as needed). */
static int hmap_append(struct hmap **m, unsigned *cap, uint32_t from,
		       uint32_t to)
{
	struct hmap *n = *m;

	if (!n || n->n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		n = realloc(*m, sizeof(*n) + *cap * sizeof(n->ext[0]));
		if (!n)
			return -ENOMEM;
		if (!*m)
			n->n = 0;
		*m = n;
	}
	n->ext[n->n][0] = from;
	n->ext[n->n][1] = to;
	n->n++;
	return 0;
}

/*
 * The data extents of [start, start+len) in fd as SEEK_DATA/SEEK_HOLE
 * report them: *m NULL with 0 when all of it is a hole, NULL with 1 when
 * all of it is data, else the extents.  A backing file that cannot tell
 * holes counts as data.  Returns the number of extents or -ENOMEM.
 */
static int block_layout(int fd, uint64_t start, uint64_t len,
			struct hmap **m)
{
	uint64_t pos = start, end = start + len;
	unsigned cap = 0;
	int rc = 0;

	*m = NULL;
	while (pos < end && rc == 0) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

		if ((d < 0 && errno == ENXIO) || (d >= 0 && (uint64_t)d >= end))
			break;
		d = d < 0 ? (off_t)pos : d;
		h = lseek(fd, d, SEEK_HOLE);
		h = h < 0 || (uint64_t)h > end ? (off_t)end : h;
		rc = hmap_append(m, &cap, (uint32_t)((uint64_t)d - start),
				 (uint32_t)((uint64_t)h - start));
		pos = (uint64_t)h;
	}
	if (rc < 0) {
		free(*m);
		*m = NULL;
		return rc;
	}
	rc = *m ? (int)(*m)->n : 0;
	if (rc == 1 && (*m)->ext[0][0] == 0 && (*m)->ext[0][1] == len) {
		free(*m);
		*m = NULL;
	}
	return rc;
}

/* Publish state s (CB_DATA, CB_HOLE or CB_DIRTY) of block b. */
static void set_unlive(struct cobj *c, uint64_t b, unsigned char s)
{
	atomic_store_explicit(&c->bstate[b], s, memory_order_release);
	bidx_add(c->unlive, b);
}

/* CB_SAVED block b is about to change: it can never be served again. */
static void saved_to_dirty(struct cobj *c, uint64_t b, unsigned char s)
{
	if (atomic_compare_exchange_strong(&c->bstate[b], &s, CB_DIRTY))
		bidx_add(c->unlive, b);
}

/* Block b has no pre-image any more: its hole map goes with it. */
static void hmap_drop_locked(struct cobj *c, uint64_t b)
{
	struct hmap key = { .b = b }, **m = tfind(&key, &c->hmaps, hmap_cmp);
	struct hmap *found;

	if (!m)
		return;
	found = *m;
	tdelete(&key, &c->hmaps, hmap_cmp);
	free(found);
}

static uint64_t block_len(const struct cobj_table *t, const struct cobj *c,
			  uint64_t b)
{
	uint64_t start = b * t->bs, size = (uint64_t)c->st.st_size;

	return size - start < t->bs ? size - start : t->bs;
}

/* Pre-image bytes held now, and the most held at once. */
static void held_add(struct cobj_table *t, uint64_t len)
{
	uint64_t now = atomic_fetch_add(&t->held_bytes, len) + len;
	uint64_t peak = atomic_load(&t->peak_held);

	while (now > peak &&
	       !atomic_compare_exchange_weak(&t->peak_held, &peak, now))
		;
}

/* Capture block b (entry locked, block CB_LIVE), with its T layout. */
static int capture_block_locked(struct cobj_table *t, struct cobj *c,
				int fd, uint64_t b, void *buf)
{
	uint64_t len = block_len(t, c, b), ref = 0;
	struct hmap *m;
	ssize_t n;
	int rc = block_layout(fd, b * t->bs, len, &m);

	if (rc <= 0) {
		if (rc == 0)
			set_unlive(c, b, CB_HOLE);
		return rc;
	}
	n = pread(fd, buf, len, (off_t)(b * t->bs));
	rc = n < 0 ? -errno : (uint64_t)n < len ? -EIO /* changed behind
							 * the mount's back */
		: pstore_put(t->store, buf, len, &ref);
	if (rc == 0 && m) {
		m->b = b;
		if (!tsearch(m, &c->hmaps, hmap_cmp)) {
			pstore_drop(t->store, ref);
			rc = -ENOMEM;
		}
	}
	if (rc < 0) {
		free(m);
		return rc;
	}
	c->bref[b] = ref;
	atomic_fetch_add(&t->captured, 1);
	atomic_fetch_add(&t->captured_bytes, len);
	held_add(t, len);
	set_unlive(c, b, CB_DATA);
	return 0;
}

/* Dirty saved blocks in [b0, b1]; returns true if any block needs capture. */
static bool scan_range(struct cobj *c, uint64_t b0, uint64_t b1)
{
	bool need = false;

	for (uint64_t b = b0; b <= b1; b++) {
		unsigned char s = atomic_load_explicit(&c->bstate[b],
						       memory_order_acquire);

		if (s == CB_LIVE)
			need = true;
		else if (s == CB_SAVED)
			saved_to_dirty(c, b, s);
	}
	return need;
}

static int capture_blocks_locked(struct cobj_table *t, struct cobj *c,
				 const struct cobj_ref *ref, uint64_t b0,
				 uint64_t b1)
{
	void *buf = NULL;
	int fd = -1, rc = 0;

	/* The checkpoint is gone: keep nothing.  Broken before the change,
	 * so a view that reads the changed bytes live sees it (rule 3). */
	if (atomic_load(&t->purged)) {
		set_flag(c, COBJ_BROKEN);
		return 0;
	}
	for (uint64_t b = b0; b <= b1 && rc == 0; b++) {
		unsigned char s = atomic_load(&c->bstate[b]);

		/* saved while we waited for the lock: the change we are
		 * about to make means it can never be served again */
		if (s == CB_SAVED)
			saved_to_dirty(c, b, s);
		if (s != CB_LIVE)
			continue;
		if (fd < 0 && (fd = open_live(ref, 0)) < 0)
			return fd;
		if (!buf && !(buf = malloc(t->bs))) {
			rc = -ENOMEM;
			break;
		}
		rc = capture_block_locked(t, c, fd, b, buf);
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A change hit a released object: views must no longer trust it. */
static bool released_changed(struct cobj *c)
{
	unsigned f = cobj_flags(c);

	if (f & COBJ_RELEASED) {
		if (!(f & COBJ_CHANGED))
			set_flag(c, COBJ_CHANGED);
		return true;
	}
	return (f & (COBJ_NEW | COBJ_DEAD)) != 0;
}

int cobj_capture_range(struct cobj_table *t, struct cobj *c,
		       const struct cobj_ref *ref, uint64_t off, uint64_t len)
{
	uint64_t b0, b1;
	int rc;

	if (released_changed(c) || len == 0 || off >= c->nblocks * t->bs)
		return 0;
	b0 = off / t->bs;
	b1 = len > c->nblocks * t->bs - off ? c->nblocks - 1
					   : (off + len - 1) / t->bs;
	if (!scan_range(c, b0, b1))
		return 0;	/* the fast path: nothing left to capture */
	pthread_mutex_lock(&c->lock);
	rc = capture_blocks_locked(t, c, ref, b0, b1);
	pthread_mutex_unlock(&c->lock);
	/* a full store is the caller's to handle (it may refuse the change,
	 * and then nothing here is broken) */
	if (rc < 0 && rc != -ENOSPC)
		set_flag(c, COBJ_BROKEN);
	return rc;
}

/* Append one name\0 len(4, LE) value record. */
static int xattr_append(char **buf, size_t *len, const char *name,
			const char *val, uint32_t vlen)
{
	size_t nlen = strlen(name) + 1;
	char *nb = realloc(*buf, *len + nlen + 4 + vlen);

	if (!nb)
		return -ENOMEM;
	memcpy(nb + *len, name, nlen);
	for (int k = 0; k < 4; k++)
		nb[*len + nlen + k] = (char)(vlen >> (8 * k));
	memcpy(nb + *len + nlen + 4, val, vlen);
	*buf = nb;
	*len += nlen + 4 + vlen;
	return 0;
}

ssize_t cobj_xattr_read(const struct cobj *c, const char *name, char *buf,
			size_t size)
{
	const char *rec = c->xattr;
	size_t len = c->xattr_len;
	size_t o = 0, out = 0;

	while (o < len) {
		const char *n = rec + o;
		size_t nl = strlen(n) + 1;
		uint32_t vl = 0;

		for (int k = 0; k < 4; k++)
			vl |= (uint32_t)(unsigned char)rec[o + nl + k] << (8 * k);
		if (name && !strcmp(name, n)) {
			if (size && vl > size)
				return -ERANGE;
			if (size)
				memcpy(buf, rec + o + nl + 4, vl);
			return vl;
		}
		if (!name) {
			if (size && out + nl > size)
				return -ERANGE;
			if (size)
				memcpy(buf + out, n, nl);
			out += nl;
		}
		o += nl + 4 + vl;
	}
	return name ? -ENODATA : (ssize_t)out;
}

static int read_xattrs(const char *path, char **out, size_t *outlen)
{
	char *names = malloc(XATTR_LIST_MAX), *val = malloc(XATTR_LIST_MAX);
	ssize_t n, v;
	int rc = 0;

	*out = NULL;
	*outlen = 0;
	if (!names || !val) {
		rc = -ENOMEM;
		goto out;
	}
	n = listxattr(path, names, XATTR_LIST_MAX);
	if (n < 0) {
		rc = errno == ENOTSUP ? 0 : -errno;
		goto out;
	}
	for (char *p = names; p < names + n && rc == 0; p += strlen(p) + 1) {
		v = getxattr(path, p, val, XATTR_LIST_MAX);
		if (v < 0 && errno == ENODATA)
			continue;
		if (v < 0)
			rc = -errno;
		else
			rc = xattr_append(out, outlen, p, val, (uint32_t)v);
	}
out:
	free(names);
	free(val);
	return rc;
}

static int capture_xattrs_locked(struct cobj *c, const struct cobj_ref *ref)
{
	char path[32];
	int rc;

	if (cobj_flags(c) & COBJ_XATTR)
		return 0;
	if (S_ISLNK(c->st.st_mode)) {
		/* the live tree passes no xattrs on symlinks */
		set_flag(c, COBJ_XATTR);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ref->fd);
	rc = read_xattrs(path, &c->xattr, &c->xattr_len);
	if (rc == 0)
		set_flag(c, COBJ_XATTR);
	return rc;
}

int cobj_capture_xattrs(struct cobj_table *t, struct cobj *c,
			const struct cobj_ref *ref)
{
	int rc;

	/* metadata is captured even after release: it costs little, and the
	 * release concerns data only */
	if (cobj_flags(c) & (COBJ_XATTR | COBJ_NEW | COBJ_DEAD))
		return 0;
	pthread_mutex_lock(&c->lock);
	rc = capture_xattrs_locked(c, ref);
	pthread_mutex_unlock(&c->lock);
	/* a full store is the caller's to handle (it may refuse the change,
	 * and then nothing here is broken) */
	if (rc < 0 && rc != -ENOSPC)
		set_flag(c, COBJ_BROKEN);
	return rc;
}

static int capture_link_locked(struct cobj *c, const struct cobj_ref *ref)
{
	char buf[PATH_MAX + 1];
	ssize_t n;

	if (!S_ISLNK(c->st.st_mode) || c->link)
		return 0;
	n = readlinkat(ref->fd, "", buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	c->link = strdup(buf);
	return c->link ? 0 : -ENOMEM;
}

/* Entry locked, not released: the whole T image goes to the entry. */
static int capture_dead_locked(struct cobj_table *t, struct cobj *c,
			       const struct cobj_ref *ref)
{
	int rc = capture_xattrs_locked(c, ref);

	if (rc == 0)
		rc = capture_link_locked(c, ref);
	/* Dead objects are no longer watched (an open-unlinked file may
	 * still be written): the capture also turns every saved block dirty,
	 * as it can never be served again. */
	if (rc == 0 && c->nblocks)
		rc = capture_blocks_locked(t, c, ref, 0, c->nblocks - 1);
	if (rc == 0)
		set_flag(c, COBJ_DEAD);
	return rc;
}

/* One more kept descriptor, if the budget allows. */
static bool kept_reserve(struct cobj_table *t)
{
	if (!t->kept)
		return false;
	if (atomic_fetch_add(t->kept, 1) < t->kept_max)
		return true;
	atomic_fetch_sub(t->kept, 1);
	return false;
}

/*
 * Entry locked, released: its pre-images are gone, but a released object
 * is still watched (any change marks it changed), so while unchanged its
 * live data is T's.  Once its last name goes only a descriptor reaches
 * it: keep one.  An empty file needs none: its attributes and xattrs are
 * its whole image.  Past the budget the object is lost: views fail with
 * EIO rather than serve anything else.
 */
static int keep_released_locked(struct cobj_table *t, struct cobj *c,
				const struct cobj_ref *ref)
{
	int rc, fd = -1;

	if (cobj_flags(c) & (COBJ_CHANGED | COBJ_DEAD | COBJ_KEPT))
		return 0;
	rc = capture_xattrs_locked(c, ref);
	if (rc < 0)
		return rc;
	if (!c->nblocks) {
		set_flag(c, COBJ_DEAD);
		return 0;
	}
	if (ref->fd >= 0 && kept_reserve(t)) {
		fd = fcntl(ref->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0 && cobj_ref_room(ref, errno))
			fd = fcntl(ref->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			atomic_fetch_sub(t->kept, 1);
	}
	if (fd < 0) {
		set_flag(c, COBJ_LOST | COBJ_CHANGED);
		return 0;
	}
	c->kept_fd = fd;
	set_flag(c, COBJ_KEPT);
	return 0;
}

int cobj_capture_all(struct cobj_table *t, struct cobj *c,
		     const struct cobj_ref *ref)
{
	int rc;

	if (cobj_flags(c) & (COBJ_NEW | COBJ_DEAD))
		return 0;
	pthread_mutex_lock(&c->lock);
	if (cobj_flags(c) & COBJ_RELEASED)
		rc = keep_released_locked(t, c, ref);
	else
		rc = capture_dead_locked(t, c, ref);
	pthread_mutex_unlock(&c->lock);
	/* a full store is the caller's to handle (it may refuse the change,
	 * and then nothing here is broken) */
	if (rc < 0 && rc != -ENOSPC)
		set_flag(c, COBJ_BROKEN);
	return rc;
}

/* Read part of block b live, then validate it (rule 3).  Returns 0, 1 to
 * retry (a pre-image appeared meanwhile) or -errno. */
static int read_live_part(struct cobj *c, int fd, uint64_t b, char *buf,
			  size_t n, uint64_t off)
{
	ssize_t got;
	unsigned char s;

	if (fd < 0)
		return -EIO;
	got = pread(fd, buf, n, (off_t)off);
	if (got < 0)
		return -errno;
	/* a released object is no longer captured: any change since
	 * release is only known by the flag */
	if (cobj_flags(c) & (COBJ_BROKEN | COBJ_CHANGED))
		return -EIO;
	s = atomic_load_explicit(&c->bstate[b], memory_order_acquire);
	if (s == CB_DATA || s == CB_HOLE || s == CB_HSAVED)
		return 1;
	if (s == CB_DIRTY || (size_t)got < n)
		return -EIO;
	return 0;
}

/*
 * Refs carry a generation in the store, so a ref dropped by a concurrent
 * cobj_mark_saved() reads as -ENOENT, never as another block's pre-image:
 * the entry lock is only needed to read bref[b] itself.
 */
static int read_stored_part(struct cobj_table *t, struct cobj *c, uint64_t b,
			    char *buf, size_t n, size_t boff)
{
	uint64_t ref = 0;
	size_t got;
	char *blk;
	int rc;

	pthread_mutex_lock(&c->lock);
	if (c->bref)
		ref = c->bref[b];
	pthread_mutex_unlock(&c->lock);
	if (!ref)
		return 1;	/* saved meanwhile: the state says what now */
	blk = malloc(t->bs);
	if (!blk)
		return -ENOMEM;
	rc = pstore_get(t->store, ref, blk, t->bs, &got);
	if (rc == -ENOENT)
		rc = 1;
	else if (rc == 0 && got < boff + n)
		rc = -EIO;
	else if (rc == 0)
		memcpy(buf, blk + boff, n);
	free(blk);
	return rc;
}

/* Serve n bytes of block b from offset off (inside the T size). */
static int read_part(struct cobj_table *t, struct cobj *c, int fd, char *buf,
		     size_t n, uint64_t off)
{
	uint64_t b = off / t->bs;
	int rc = 1;

	while (rc == 1) {
		unsigned char s;

		if (cobj_flags(c) & (COBJ_BROKEN | COBJ_CHANGED))
			return -EIO;
		s = atomic_load_explicit(&c->bstate[b], memory_order_acquire);
		if (s == CB_DATA)
			rc = read_stored_part(t, c, b, buf, n, off % t->bs);
		else if (s == CB_HOLE || s == CB_HSAVED)
			rc = (memset(buf, 0, n), 0);
		else if (s == CB_DIRTY)
			rc = -EIO;
		else
			rc = read_live_part(c, fd, b, buf, n, off);
	}
	return rc;
}

ssize_t cobj_read(struct cobj_table *t, struct cobj *c, int live_fd,
		  void *buf, size_t len, uint64_t off)
{
	uint64_t size = (uint64_t)c->st.st_size;
	size_t done = 0;

	if (!S_ISREG(c->st.st_mode))
		return -EISDIR;
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	while (done < len) {
		uint64_t pos = off + done;
		size_t n = t->bs - pos % t->bs;
		int rc;

		if (n > len - done)
			n = len - done;
		rc = read_part(t, c, live_fd, (char *)buf + done, n, pos);
		if (rc < 0)
			return rc;
		done += n;
	}
	return (ssize_t)done;
}

/* Data (want_data) or hole at or after pos in block [start, end) with
 * hole map m; end if there is none in the block. */
static uint64_t hmap_seek(const struct hmap *m, uint64_t start, uint64_t pos,
			  uint64_t end, bool want_data)
{
	uint64_t rel = pos - start;

	for (unsigned k = 0; k < m->n; k++) {
		uint64_t from = m->ext[k][0], to = m->ext[k][1];

		if (to <= rel)
			continue;
		if (want_data)
			return start + (from > rel ? from : rel);
		return from > rel ? pos : start + to;
	}
	return want_data ? end : pos;
}

/*
 * Seek from pos in block b, whose T layout is recorded (b is in
 * c->unlive): the answer, end (the block's end) if there is none in it,
 * or -EIO when its layout is gone (saved, then changed: a read fails too).
 */
static int64_t seek_recorded(struct cobj_table *t, struct cobj *c,
			     uint64_t b, uint64_t pos, uint64_t end,
			     bool want_data)
{
	struct hmap key = { .b = b }, **m;
	unsigned char s;
	int64_t r;

	pthread_mutex_lock(&c->lock);	/* against cobj_mark_saved() */
	s = atomic_load_explicit(&c->bstate[b], memory_order_acquire);
	m = s == CB_DATA ? tfind(&key, &c->hmaps, hmap_cmp) : NULL;
	if (s == CB_HOLE || s == CB_HSAVED)
		r = (int64_t)(want_data ? end : pos);
	else if (s != CB_DATA)
		r = -EIO;
	else if (m)
		r = (int64_t)hmap_seek(*m, b * t->bs, pos, end, want_data);
	else
		r = (int64_t)(want_data ? pos : end);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/*
 * Seek from pos in the live file, whose layout is T's up to lim: the
 * answer, lim if there is none before it, or -errno.  A live end before
 * lim with nothing captured there was truncated behind the mount's back.
 */
static int64_t seek_live(int fd, uint64_t pos, uint64_t lim, bool want_data)
{
	struct stat st;
	off_t r;

	if (fd < 0)
		return -EIO;
	r = lseek(fd, (off_t)pos, want_data ? SEEK_DATA : SEEK_HOLE);
	if (r < 0 && errno == ENXIO && !want_data)
		return -EIO;
	if (r < 0 && errno != ENXIO)
		return -errno;
	/* no data up to the live end, or a hole found at it: T's only if
	 * the live file still reaches lim (reads fail there too) */
	if (r < 0 || !want_data) {
		if (fstat(fd, &st) < 0)
			return -errno;
		if ((uint64_t)st.st_size < lim &&
		    (r < 0 || (uint64_t)r >= (uint64_t)st.st_size))
			return -EIO;
	}
	if (r < 0)
		return (int64_t)lim;
	return (uint64_t)r < lim ? r : (int64_t)lim;
}

/*
 * Ask the live file across every stretch of blocks that still has T's
 * layout, and the records for the blocks that do not (c->unlive), so the
 * cost follows the extents and the captured blocks, not the size.  Live
 * answers are validated (rule 3): a block captured meanwhile means again.
 * Looks no further than lim (at most the T size): lim if nothing was found.
 */
static int64_t seek_upto(struct cobj_table *t, struct cobj *c, int live_fd,
			 uint64_t off, uint64_t lim, bool want_data)
{
	uint64_t pos = off;

	while (pos < lim) {
		uint64_t b = pos / t->bs, nb, end;
		int64_t r;

		if (cobj_flags(c) & (COBJ_BROKEN | COBJ_CHANGED))
			return -EIO;
		nb = bidx_next(c->unlive, b);
		end = nb == b ? b + 1 : nb;
		end = end > lim / t->bs ? lim : end * t->bs;
		if (nb == b) {
			r = seek_recorded(t, c, b, pos, end, want_data);
		} else {
			r = seek_live(live_fd, pos, end, want_data);
			if (bidx_next(c->unlive, b) != nb ||
			    (cobj_flags(c) & (COBJ_BROKEN | COBJ_CHANGED)))
				continue;
		}
		if (r < 0 || (uint64_t)r < end)
			return r;
		pos = end;
	}
	return (int64_t)lim;
}

off_t cobj_seek(struct cobj_table *t, struct cobj *c, int live_fd,
		uint64_t off, bool want_data)
{
	uint64_t size = (uint64_t)c->st.st_size;
	int64_t r;

	if (!S_ISREG(c->st.st_mode))
		return -EINVAL;
	if (off >= size)
		return -ENXIO;
	r = seek_upto(t, c, live_fd, off, size, want_data);
	if (r == (int64_t)size && want_data)
		return -ENXIO;
	return (off_t)r;
}

uint64_t cobj_data_before(struct cobj_table *t, struct cobj *c, int live_fd,
			  uint64_t off, uint64_t end)
{
	int64_t r;

	if (end > (uint64_t)c->st.st_size)
		end = (uint64_t)c->st.st_size;
	if (!S_ISREG(c->st.st_mode) || off >= end)
		return end > off ? end : off;
	r = seek_upto(t, c, live_fd, off, end, true);
	/* a layout that cannot be told is no hole: it is not passed */
	return r < 0 ? off : (uint64_t)r;
}

/* Entry locked: free what a released object no longer needs. */
static bool try_release_locked(struct cobj_table *t, struct cobj *c)
{
	if (!S_ISREG(c->st.st_mode) || c->unsaved || atomic_load(&c->view_opens)
	    || (cobj_flags(c) & COBJ_RELEASED))
		return false;
	free(c->bref);
	c->bref = NULL;
	set_flag(c, COBJ_RELEASED);
	/* an empty file had nothing to save: the T size walk skips it too */
	if (c->nblocks)
		atomic_fetch_add(&t->released, 1);
	return true;
}

void cobj_mark_saved(struct cobj_table *t, struct cobj *c, uint64_t first,
		     uint64_t last)
{
	if (t->retain_all || !c->nblocks || first >= c->nblocks)
		return;
	if (last >= c->nblocks)
		last = c->nblocks - 1;
	pthread_mutex_lock(&c->lock);
	for (uint64_t b = first; b <= last && c->bref; b++) {
		unsigned char s = atomic_load(&c->bstate[b]);

		if (s == CB_SAVED || s == CB_DIRTY || s == CB_HSAVED)
			continue;
		/* A captured block's live bytes are post-T: once its
		 * pre-image is dropped it can never be served again.  A
		 * captured hole has none to drop and stays T's. */
		atomic_store_explicit(&c->bstate[b],
				      s == CB_LIVE ? CB_SAVED :
				      s == CB_HOLE ? CB_HSAVED : CB_DIRTY,
				      memory_order_release);
		if (c->bref[b]) {
			pstore_drop(t->store, c->bref[b]);
			c->bref[b] = 0;
			atomic_fetch_sub(&t->held_bytes, block_len(t, c, b));
			hmap_drop_locked(c, b);
		}
		c->unsaved--;
		atomic_fetch_add(&t->saved, 1);
	}
	try_release_locked(t, c);
	pthread_mutex_unlock(&c->lock);
}

void cobj_note_served(struct cobj_table *t, struct cobj *c, uint64_t b)
{
	unsigned char bit = (unsigned char)(1u << (b % 8));
	struct timespec ts;
	uint64_t zero = 0;

	if (b >= c->nblocks ||
	    (atomic_fetch_or(&c->served[b / 8], bit) & bit))
		return;
	if (atomic_fetch_add(&t->saved_bytes, block_len(t, c, b)) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		atomic_compare_exchange_strong(&t->first_served_ns, &zero,
			(uint64_t)ts.tv_sec * 1000000000u +
			(uint64_t)ts.tv_nsec);
	}
}

void cobj_view_open(struct cobj *c)
{
	atomic_fetch_add(&c->view_opens, 1);
}

bool cobj_view_close(struct cobj_table *t, struct cobj *c)
{
	bool released;

	if (atomic_fetch_sub(&c->view_opens, 1) != 1)
		return false;
	pthread_mutex_lock(&c->lock);
	released = try_release_locked(t, c);
	pthread_mutex_unlock(&c->lock);
	return released;
}

int cobj_table_create(const struct cobj_table_opts *o, struct cobj_table **out)
{
	struct cobj_table *t;
	int k;

	if (!o->block_size || (o->block_size & (o->block_size - 1)))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->store = o->store;
	t->bs = o->block_size;
	t->retain_all = o->retain_all;
	t->kept = o->kept;
	t->kept_max = o->kept_max;
	for (k = 0; k < COBJ_SHARDS; k++) {
		struct cobj_shard *s = &t->shards[k];

		pthread_mutex_init(&s->lock, NULL);
		s->nbuckets = 16;
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		if (!s->buckets)
			goto fail;
	}
	*out = t;
	return 0;
fail:
	while (k-- > 0)
		free(t->shards[k].buckets);
	free(t);
	return -ENOMEM;
}

void cobj_table_free(struct cobj_table *t)
{
	if (!t)
		return;
	for (int k = 0; k < COBJ_SHARDS; k++) {
		struct cobj_shard *s = &t->shards[k];

		for (size_t b = 0; b < s->nbuckets; b++) {
			struct cobj *c = s->buckets[b], *next;

			for (; c; c = next) {
				next = c->hnext;
				cobj_free(t, c);
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(t);
}

/*
 * A capture racing with the purge is safe: it checks purged under the
 * entry lock, after the entry is in t->all.  If the walk below missed the
 * entry, it was pushed after the walk read t->all, so after purged was
 * set, and the capture sees purged.  Otherwise the walk takes the entry
 * lock after the capture and drops what it stored.
 */
void cobj_table_purge(struct cobj_table *t)
{
	atomic_store(&t->purged, true);
	for (struct cobj *c = atomic_load(&t->all); c; c = c->anext) {
		pthread_mutex_lock(&c->lock);
		/* broken first: a reader that finds a ref gone retries, and
		 * the retry must end in -EIO, not in a live read */
		set_flag(c, COBJ_BROKEN);
		for (uint64_t b = 0; c->bref && b < c->nblocks; b++) {
			if (!c->bref[b])
				continue;
			pstore_drop(t->store, c->bref[b]);
			c->bref[b] = 0;
			atomic_fetch_sub(&t->held_bytes, block_len(t, c, b));
		}
		pthread_mutex_unlock(&c->lock);
	}
}

void cobj_table_stats(struct cobj_table *t, struct cobj_stats *out)
{
	out->objects = atomic_load(&t->objects);
	out->released = atomic_load(&t->released);
	out->captured_blocks = atomic_load(&t->captured);
	out->captured_bytes = atomic_load(&t->captured_bytes);
	out->saved_blocks = atomic_load(&t->saved);
	out->saved_bytes = atomic_load(&t->saved_bytes);
	out->held_bytes = atomic_load(&t->held_bytes);
	out->peak_held_bytes = atomic_load(&t->peak_held);
	out->first_served_ns = atomic_load(&t->first_served_ns);
}
