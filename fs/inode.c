/*
 * inode.c - inode table and bounded descriptor cache.
 *
 * Locking:
 *   - The table is split into shards, each with its own mutex protecting its
 *     hash chains and the nlookup/hashed fields of its entries.
 *   - One cache mutex (fdc_lock) protects every entry's fd/pins fields and
 *     the LRU list of unpinned, evictable descriptors.  Only namespace
 *     operations take it; reads and writes use their own open descriptors.
 *   - The two are never held together.
 *   - No system call is made under either lock except close() of a handful
 *     of evicted descriptors, which is done after unlocking.
 *
 * Lifetime: an entry lives while the kernel holds lookup references on it
 * (nlookup > 0).  The kernel sends no request for an inode after forgetting
 * it, so freeing at nlookup == 0 cannot race with a request on that entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/inode.h"

#define INO_SHARDS 64
#define INO_INIT_BUCKETS 64
#define HANDLE_MAX 128
#define INO_SHRINK 256	/* descriptors freed per EMFILE */

struct ino {
	struct ino *hnext;	/* shard chain; shard lock */
	struct ino *lru_prev;	/* fdc_lock */
	struct ino *lru_next;	/* fdc_lock */
	dev_t dev;		/* immutable */
	ino_t ino;		/* immutable */
	mode_t type;		/* immutable, S_IFMT bits */
	uint64_t nlookup;	/* shard lock */
	bool hashed;		/* shard lock: reachable through the hash */
	int fd;			/* fdc_lock; -1 while evicted */
	unsigned pins;		/* fdc_lock; > 0 keeps fd open and off the LRU */
	struct file_handle *fh;	/* immutable; NULL: fd is never evicted */
};

struct ino_shard {
	pthread_mutex_t lock;
	struct ino *orphans;	/* shard lock; alive, unhashed (ino reused) */
	struct ino **buckets;	/* shard lock */
	size_t nbuckets;	/* shard lock; power of two */
	size_t count;		/* shard lock */
};

struct ino_table {
	struct ino_shard shards[INO_SHARDS];
	struct ino root;
	int mount_id;		/* of the backing root; handles only there */
	bool handles;		/* immutable after create */
	unsigned fd_limit;	/* immutable */

	pthread_mutex_t fdc_lock;
	struct ino lru;		/* fdc_lock; sentinel, head = least recent */
	unsigned nfds;		/* fdc_lock; evictable fds open (cached) */
	uint64_t reopens;	/* fdc_lock */
};

static uint64_t ino_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull;

	return h ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4full) ^ (h >> 29);
}

static struct ino_shard *ino_shard_of(struct ino_table *t, uint64_t h)
{
	return &t->shards[h % INO_SHARDS];
}

static struct ino **ino_bucket(struct ino_shard *s, uint64_t h)
{
	return &s->buckets[(h / INO_SHARDS) & (s->nbuckets - 1)];
}

mode_t ino_type(const struct ino *i)
{
	return i->type;
}

void ino_ident(const struct ino *i, dev_t *dev, ino_t *ino)
{
	*dev = i->dev;
	*ino = i->ino;
}

int ino_table_root_fd(struct ino_table *t)
{
	return t->root.fd;
}

struct ino *ino_root(struct ino_table *t)
{
	return &t->root;
}

bool ino_table_uses_handles(const struct ino_table *t)
{
	return t->handles;
}

/*
 * Get a handle for the object open at fd.  Returns NULL (and the entry then
 * keeps its descriptor for life) when handles are off, unsupported, or the
 * object lives on another mount than the backing root.
 */
static struct file_handle *ino_handle_of(struct ino_table *t, int fd)
{
	struct file_handle *fh;
	int mount_id;

	if (!t->handles)
		return NULL;
	fh = malloc(sizeof(*fh) + HANDLE_MAX);
	if (!fh)
		return NULL;
	fh->handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) < 0 ||
	    mount_id != t->mount_id) {
		free(fh);
		return NULL;
	}
	return fh;
}

static bool ino_handle_eq(const struct file_handle *a,
			  const struct file_handle *b)
{
	if (!a || !b)
		return a == b;
	return a->handle_type == b->handle_type &&
	       a->handle_bytes == b->handle_bytes &&
	       !memcmp(a->f_handle, b->f_handle, a->handle_bytes);
}

static void lru_unlink_locked(struct ino *i)
{
	i->lru_prev->lru_next = i->lru_next;
	i->lru_next->lru_prev = i->lru_prev;
	i->lru_prev = i->lru_next = NULL;
}

static void lru_append_locked(struct ino_table *t, struct ino *i)
{
	i->lru_prev = t->lru.lru_prev;
	i->lru_next = &t->lru;
	t->lru.lru_prev->lru_next = i;
	t->lru.lru_prev = i;
}

/*
 * Evict least recently used descriptors until the cache is within its
 * limit.  Descriptors to close are returned in victims[] (at most n) so the
 * caller closes them after dropping the lock.
 */
static unsigned fdc_evict_locked(struct ino_table *t, int *victims, unsigned n)
{
	unsigned k = 0;

	while (t->nfds > t->fd_limit && k < n && t->lru.lru_next != &t->lru) {
		struct ino *v = t->lru.lru_next;

		lru_unlink_locked(v);
		victims[k++] = v->fd;
		v->fd = -1;
		t->nfds--;
	}
	return k;
}

static void close_all(const int *fds, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		close(fds[k]);
}

unsigned ino_fd_shrink(struct ino_table *t, unsigned n)
{
	int victims[64];
	unsigned done = 0, k;

	while (done < n) {
		pthread_mutex_lock(&t->fdc_lock);
		for (k = 0; k < 64 && done + k < n && t->lru.lru_next != &t->lru;
		     k++) {
			struct ino *v = t->lru.lru_next;

			lru_unlink_locked(v);
			victims[k] = v->fd;
			v->fd = -1;
			t->nfds--;
		}
		pthread_mutex_unlock(&t->fdc_lock);
		close_all(victims, k);
		if (k == 0)
			break;
		done += k;
	}
	return done;
}

bool ino_fd_room(struct ino_table *t, int err)
{
	return (err == EMFILE || err == ENFILE) && ino_fd_shrink(t, INO_SHRINK);
}

/* open_by_handle_at, making room in the cache when out of descriptors. */
static int reopen(struct ino_table *t, struct ino *i)
{
	int fd = open_by_handle_at(t->root.fd, i->fh, O_PATH | O_CLOEXEC);

	if (fd < 0 && ino_fd_room(t, errno))
		fd = open_by_handle_at(t->root.fd, i->fh, O_PATH | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Caller holds fdc_lock and one more pin; undo the pin. */
static void fdc_unpin_locked(struct ino_table *t, struct ino *i)
{
	if (--i->pins == 0 && i->fh && i->fd >= 0)
		lru_append_locked(t, i);
}

int ino_fd_get(struct ino_table *t, struct ino *i)
{
	int victims[4], fd, spare = -1;
	unsigned nv;

	pthread_mutex_lock(&t->fdc_lock);
	if (i->fd >= 0) {
		if (i->pins++ == 0 && i->fh)
			lru_unlink_locked(i);
		fd = i->fd;
		pthread_mutex_unlock(&t->fdc_lock);
		return fd;
	}
	pthread_mutex_unlock(&t->fdc_lock);

	/* Only entries with a handle are ever evicted; none: a dead object */
	if (!i->fh)
		return -ESTALE;
	fd = reopen(t, i);
	if (fd < 0)
		return fd;

	pthread_mutex_lock(&t->fdc_lock);
	t->reopens++;
	if (i->fd >= 0) {
		/* Another thread reopened it meanwhile: use theirs. */
		spare = fd;
		if (i->pins++ == 0)
			lru_unlink_locked(i);
		fd = i->fd;
		nv = 0;
	} else {
		i->fd = fd;
		i->pins++;
		t->nfds++;
		nv = fdc_evict_locked(t, victims, 4);
	}
	pthread_mutex_unlock(&t->fdc_lock);
	if (spare >= 0)
		close(spare);
	close_all(victims, nv);
	return fd;
}

void ino_fd_put(struct ino_table *t, struct ino *i)
{
	pthread_mutex_lock(&t->fdc_lock);
	fdc_unpin_locked(t, i);
	pthread_mutex_unlock(&t->fdc_lock);
}

/*
 * Give a freshly opened O_PATH descriptor to an entry that has none;
 * otherwise close it.  Consumes fd.
 */
static void fdc_offer(struct ino_table *t, struct ino *i, int fd)
{
	int victims[4];
	unsigned nv = 0;

	pthread_mutex_lock(&t->fdc_lock);
	if (i->fd < 0) {
		i->fd = fd;
		fd = -1;
		if (i->fh) {
			t->nfds++;
			if (i->pins == 0)
				lru_append_locked(t, i);
			nv = fdc_evict_locked(t, victims, 4);
		}
	}
	pthread_mutex_unlock(&t->fdc_lock);
	if (fd >= 0)
		close(fd);
	close_all(victims, nv);
}

static int shard_grow_locked(struct ino_shard *s)
{
	size_t n = s->nbuckets * 2;
	struct ino **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t b = 0; b < s->nbuckets; b++) {
		struct ino *i = s->buckets[b], *next;

		for (; i; i = next) {
			uint64_t h = ino_hash(i->dev, i->ino);

			next = i->hnext;
			i->hnext = nb[(h / INO_SHARDS) & (n - 1)];
			nb[(h / INO_SHARDS) & (n - 1)] = i;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
	return 0;
}

static void chain_remove(struct ino **pp, struct ino *i)
{
	while (*pp != i)
		pp = &(*pp)->hnext;
	*pp = i->hnext;
	i->hnext = NULL;
}

static void shard_unhash_locked(struct ino_shard *s, struct ino *i)
{
	chain_remove(ino_bucket(s, ino_hash(i->dev, i->ino)), i);
	i->hashed = false;
	s->count--;
}

/* Move an entry whose inode number was reused to the orphan list. */
static void shard_orphan_locked(struct ino_shard *s, struct ino *i)
{
	shard_unhash_locked(s, i);
	i->hnext = s->orphans;
	s->orphans = i;
}

static struct ino *shard_find_locked(struct ino_shard *s, uint64_t h,
				     const struct stat *st)
{
	struct ino *i = *ino_bucket(s, h);

	while (i && (i->ino != st->st_ino || i->dev != st->st_dev))
		i = i->hnext;
	return i;
}

/*
 * Find or insert the entry for the object with stat *st and handle fh,
 * adding one lookup reference.  Consumes fh (stored or freed).
 */
static int ino_get(struct ino_table *t, const struct stat *st,
		   struct file_handle *fh, struct ino **out)
{
	uint64_t h = ino_hash(st->st_dev, st->st_ino);
	struct ino_shard *s = ino_shard_of(t, h);
	struct ino *i, *n;

	n = calloc(1, sizeof(*n));
	if (!n) {
		free(fh);
		return -ENOMEM;
	}
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->type = st->st_mode & S_IFMT;
	n->fd = -1;
	n->fh = fh;
	n->nlookup = 1;
	n->hashed = true;

	pthread_mutex_lock(&s->lock);
	i = shard_find_locked(s, h, st);
	if (i && ino_handle_eq(i->fh, fh) && i->type == n->type) {
		i->nlookup++;
		pthread_mutex_unlock(&s->lock);
		free(n->fh);
		free(n);
		*out = i;
		return 0;
	}
	/*
	 * Not there, or the inode number was reused by a new object while the
	 * kernel still remembers the old one: the old entry stays alive for
	 * its remaining lookups but is no longer found by (dev, ino).
	 */
	if (i)
		shard_orphan_locked(s, i);
	if (s->count >= s->nbuckets)
		shard_grow_locked(s);	/* on ENOMEM, chains just get longer */
	n->hnext = *ino_bucket(s, h);
	*ino_bucket(s, h) = n;
	s->count++;
	pthread_mutex_unlock(&s->lock);
	*out = n;
	return 0;
}

int ino_insert(struct ino_table *t, int fd, const struct stat *st,
	       struct ino **out)
{
	int rc;

	rc = ino_get(t, st, fd >= 0 ? ino_handle_of(t, fd) : NULL, out);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (fd >= 0)
		fdc_offer(t, *out, fd);
	return 0;
}

/* Find or create the entry for the O_PATH descriptor fd; consumes fd. */
static int ino_insert_path_fd(struct ino_table *t, int fd, struct stat *st,
			      struct ino **out)
{
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return ino_insert(t, fd, st, out);
}

int ino_lookup(struct ino_table *t, struct ino *parent, const char *name,
	       struct stat *st, struct ino **out)
{
	int pfd, fd;

	pfd = ino_fd_get(t, parent);
	if (pfd < 0)
		return pfd;
	fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && ino_fd_room(t, errno))
		fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	ino_fd_put(t, parent);
	if (fd < 0)
		return fd;
	return ino_insert_path_fd(t, fd, st, out);
}

int ino_lookup_fd(struct ino_table *t, int fd, struct stat *st,
		  struct ino **out)
{
	char path[64];
	int pfd;

	/* Reopening through /proc gives an O_PATH descriptor of the same
	 * object without a name, so a concurrent rename cannot redirect it. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	return ino_insert_path_fd(t, pfd, st, out);
}

void ino_forget(struct ino_table *t, struct ino *i, uint64_t n)
{
	uint64_t h;
	struct ino_shard *s;
	bool dead;

	if (i == &t->root)
		return;
	h = ino_hash(i->dev, i->ino);
	s = ino_shard_of(t, h);
	pthread_mutex_lock(&s->lock);
	i->nlookup = n >= i->nlookup ? 0 : i->nlookup - n;
	dead = i->nlookup == 0;
	if (dead && i->hashed)
		shard_unhash_locked(s, i);
	else if (dead)
		chain_remove(&s->orphans, i);
	pthread_mutex_unlock(&s->lock);
	if (!dead)
		return;

	pthread_mutex_lock(&t->fdc_lock);
	if (i->fd >= 0 && i->fh) {
		t->nfds--;
		if (i->pins == 0)
			lru_unlink_locked(i);
	}
	pthread_mutex_unlock(&t->fdc_lock);
	if (i->fd >= 0)
		close(i->fd);
	free(i->fh);
	free(i);
}

/* Decide whether handles work here: the daemon may lack the capability. */
static bool ino_probe_handles(struct ino_table *t)
{
	struct file_handle *fh;
	int fd;

	t->handles = true;
	fh = malloc(sizeof(*fh) + HANDLE_MAX);
	if (!fh)
		return false;
	fh->handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(t->root.fd, "", fh, &t->mount_id,
			      AT_EMPTY_PATH) < 0) {
		free(fh);
		return false;
	}
	fd = open_by_handle_at(t->root.fd, fh, O_PATH | O_CLOEXEC);
	free(fh);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int ino_table_create(int root_fd, unsigned fd_limit, struct ino_table **out)
{
	struct ino_table *t;
	struct stat st;
	int k;

	if (fstat(root_fd, &st) < 0)
		return -errno;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (k = 0; k < INO_SHARDS; k++) {
		struct ino_shard *s = &t->shards[k];

		pthread_mutex_init(&s->lock, NULL);
		s->nbuckets = INO_INIT_BUCKETS;
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		if (!s->buckets)
			goto fail;
	}
	pthread_mutex_init(&t->fdc_lock, NULL);
	t->lru.lru_next = t->lru.lru_prev = &t->lru;
	t->fd_limit = fd_limit;
	t->root.dev = st.st_dev;
	t->root.ino = st.st_ino;
	t->root.type = S_IFDIR;
	t->root.nlookup = 1;
	t->root.fd = root_fd;
	t->root.pins = 1;	/* the root descriptor is never evicted */
	t->handles = ino_probe_handles(t);
	*out = t;
	return 0;
fail:
	while (k-- > 0)
		free(t->shards[k].buckets);
	free(t);
	return -ENOMEM;
}

static void chain_free(struct ino *i)
{
	struct ino *next;

	for (; i; i = next) {
		next = i->hnext;
		if (i->fd >= 0)
			close(i->fd);
		free(i->fh);
		free(i);
	}
}

void ino_table_free(struct ino_table *t)
{
	for (int k = 0; k < INO_SHARDS; k++) {
		struct ino_shard *s = &t->shards[k];

		for (size_t b = 0; b < s->nbuckets; b++)
			chain_free(s->buckets[b]);
		chain_free(s->orphans);
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	pthread_mutex_destroy(&t->fdc_lock);
	close(t->root.fd);
	free(t);
}

void ino_table_stats(struct ino_table *t, struct ino_stats *out)
{
	uint64_t n = 1;

	for (int k = 0; k < INO_SHARDS; k++) {
		pthread_mutex_lock(&t->shards[k].lock);
		n += t->shards[k].count;
		pthread_mutex_unlock(&t->shards[k].lock);
	}
	pthread_mutex_lock(&t->fdc_lock);
	out->entries = n;
	out->fds = t->nfds;
	out->reopens = t->reopens;
	pthread_mutex_unlock(&t->fdc_lock);
}
