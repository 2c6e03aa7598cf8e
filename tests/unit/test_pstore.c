/* Unit tests for snapshot/pstore.c: round trips, memory then disk, limits,
 * integrity, stale stores, and a concurrent stress run. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "snapshot/pstore.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define HDR PSTORE_REC_HDR_SIZE

static char dir[64];
static struct pstore *ps;
static struct pstore_limits lim;
static bool files_exact = true;	/* false while a failed write's hole lives */

static void setup(void)
{
	strcpy(dir, "/tmp/swafs-pstore-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	ps = NULL;
}

static void teardown(void)
{
	char cmd[128];

	pstore_free(ps);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void make_store(uint64_t mem_max, uint64_t disk_max, uint64_t seg_max)
{
	lim = (struct pstore_limits){ .mem_max = mem_max, .disk_max = disk_max,
				      .seg_max = seg_max };
	cr_assert_eq(pstore_create(dir, &lim, &ps), 0);
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Content of record key: runs of equal bytes (compressible) for odd keys,
 * noise for even keys. */
static void fill(void *buf, size_t len, uint64_t key)
{
	uint64_t x = key * 0x9e3779b97f4a7c15ull | 1, r = 0;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		if (key & 1) {
			p[i] = (uint8_t)(key + i / 61);
			continue;
		}
		if (i % 8 == 0)
			r = xorshift(&x);
		p[i] = (uint8_t)(r >> (8 * (i % 8)));
	}
}

/* Count the segment files, check their names and modes, sum their sizes. */
static void seg_files(unsigned *n, uint64_t *bytes)
{
	char p[512];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(pstore_path(ps));

	cr_assert_not_null(d);
	*n = 0;
	*bytes = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		cr_assert_eq(strncmp(de->d_name, "seg-", 4), 0, "%s",
			     de->d_name);
		snprintf(p, sizeof(p), "%s/%s", pstore_path(ps), de->d_name);
		cr_assert_eq(lstat(p, &st), 0);
		cr_assert(S_ISREG(st.st_mode));
		cr_assert_eq(st.st_mode & 07777, 0600, "%s mode %o", p,
			     st.st_mode & 07777);
		(*n)++;
		*bytes += (uint64_t)st.st_size;
	}
	closedir(d);
}

static bool seg_exists(unsigned id)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/seg-%06u", pstore_path(ps), id);
	return access(p, F_OK) == 0;
}

/* Invariant: counters agree with each other and with the limits. */
static struct pstore_stats assert_sane_stats(void)
{
	struct pstore_stats s;

	pstore_stats(ps, &s);
	cr_assert_eq(s.records, s.puts - s.drops,
		     "records %lu puts %lu drops %lu", (unsigned long)s.records,
		     (unsigned long)s.puts, (unsigned long)s.drops);
	cr_assert_leq(s.mem_bytes, lim.mem_max);
	cr_assert_leq(s.disk_bytes, lim.disk_max);
	cr_assert_geq(s.peak_bytes, s.mem_bytes + s.disk_bytes);
	if (!s.records)
		cr_assert(!s.raw_bytes && !s.mem_bytes && !s.disk_bytes);
	return s;
}

/* Invariant, when no write has failed: disk_bytes is what the segment files
 * really hold, and the private directory is 0700. */
static struct pstore_stats assert_sane(void)
{
	struct pstore_stats s = assert_sane_stats();
	struct stat st;
	uint64_t bytes;
	unsigned n;

	seg_files(&n, &bytes);
	if (files_exact)
		cr_assert_eq(bytes, s.disk_bytes, "files %lu disk_bytes %lu",
			     (unsigned long)bytes, (unsigned long)s.disk_bytes);
	cr_assert_eq(stat(pstore_path(ps), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	return s;
}

static uint64_t put_key(uint64_t key, size_t len)
{
	void *buf = malloc(len + 1);
	uint64_t ref = 0;

	fill(buf, len, key);
	cr_assert_eq(pstore_put(ps, buf, len, &ref), 0, "put %zu", len);
	cr_assert_neq(ref, 0);
	free(buf);
	assert_sane();
	return ref;
}

static void assert_get_key(uint64_t ref, uint64_t key, size_t len)
{
	void *want = malloc(len + 1), *got = malloc(PSTORE_REC_MAX);
	size_t n = 0;

	fill(want, len, key);
	cr_assert_eq(pstore_get(ps, ref, got, PSTORE_REC_MAX, &n), 0);
	cr_assert_eq(n, len);
	cr_assert_eq(memcmp(want, got, len), 0, "content of ref %lx",
		     (unsigned long)ref);
	free(want);
	free(got);
}

static int get_rc(uint64_t ref)
{
	static uint8_t buf[PSTORE_REC_MAX];
	size_t n;

	return pstore_get(ps, ref, buf, sizeof(buf), &n);
}

static void drop(uint64_t ref)
{
	pstore_drop(ps, ref);
	assert_sane();
}

/* ---- round trips ---- */

static const struct {
	uint64_t key;
	size_t len;
} kinds[] = {
	{ 1, 64 * KIB },	/* compressible */
	{ 2, 64 * KIB },	/* incompressible */
	{ 3, 0 },		/* empty */
	{ 4, 1 },
	{ 5, PSTORE_REC_MAX },
	{ 6, PSTORE_REC_MAX },
	{ 7, 100 },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static void round_trip_all(void)
{
	uint64_t ref[NKINDS];
	struct pstore_stats before, after;
	uint64_t stored;

	for (size_t i = 0; i < NKINDS; i++) {
		before = assert_sane();
		ref[i] = put_key(kinds[i].key, kinds[i].len);
		after = assert_sane();
		stored = after.mem_bytes + after.disk_bytes -
			 before.mem_bytes - before.disk_bytes;
		if (kinds[i].key & 1 && kinds[i].len >= 64 * KIB)
			cr_assert_lt(stored, kinds[i].len / 8, "stored raw");
		if (!(kinds[i].key & 1))
			cr_assert_geq(stored, HDR + kinds[i].len);
		cr_assert_eq(after.raw_bytes - before.raw_bytes, kinds[i].len);
	}
	for (size_t i = 0; i < NKINDS; i++)
		assert_get_key(ref[i], kinds[i].key, kinds[i].len);
	for (size_t i = 0; i < NKINDS; i++)
		drop(ref[i]);
	cr_assert_eq(assert_sane().records, 0);
}

Test(pstore, round_trip_in_memory, .init = setup, .fini = teardown)
{
	struct pstore_stats s;
	uint64_t bytes;
	unsigned n;

	make_store(64 * MIB, 64 * MIB, 0);
	round_trip_all();
	s = assert_sane();
	cr_assert_gt(s.peak_bytes, PSTORE_REC_MAX);
	cr_assert_eq(s.disk_bytes, 0);
	seg_files(&n, &bytes);
	cr_assert_eq(n, 0, "memory-only store made %u segment files", n);
}

Test(pstore, round_trip_on_disk, .init = setup, .fini = teardown)
{
	make_store(0, 64 * MIB, 0);
	round_trip_all();
	cr_assert_eq(assert_sane().mem_bytes, 0);
}

Test(pstore, put_rejects_bad_input, .init = setup, .fini = teardown)
{
	static uint8_t big[PSTORE_REC_MAX + 1];
	uint64_t ref = 0;

	make_store(64 * MIB, 64 * MIB, 0);
	cr_assert_eq(pstore_put(ps, big, sizeof(big), &ref), -EINVAL);
	cr_assert_eq(pstore_put(ps, NULL, 1, &ref), -EINVAL);
	cr_assert_eq(pstore_put(ps, NULL, 0, &ref), 0);
	cr_assert_eq(assert_sane().records, 1);
}

/* ---- lookups ---- */

Test(pstore, get_enobufs_and_enoent, .init = setup, .fini = teardown)
{
	uint8_t small[100];
	uint64_t a, b;
	size_t n = 0;

	make_store(64 * MIB, 64 * MIB, 0);
	a = put_key(2, 1000);
	memset(small, 0xa5, sizeof(small));
	cr_assert_eq(pstore_get(ps, a, small, sizeof(small), &n), -ENOBUFS);
	cr_assert_eq(n, 1000, "ENOBUFS must say the length needed");
	cr_assert_eq(small[0], 0xa5, "ENOBUFS must leave buf alone");
	cr_assert_eq(pstore_get(ps, a, NULL, 0, &n), -ENOBUFS);
	cr_assert_eq(get_rc(0), -ENOENT);
	cr_assert_eq(get_rc(a + 1), -ENOENT);
	cr_assert_eq(get_rc(a ^ (1ull << 40)), -ENOENT);
	drop(a);
	cr_assert_eq(get_rc(a), -ENOENT);
	drop(a);			/* twice: no-op */
	drop(12345);			/* unknown: no-op */
	cr_assert_eq(assert_sane().drops, 1);
	/* The slot is reused: the stale ref must not reach the new record. */
	b = put_key(4, 500);
	cr_assert_eq(b & UINT32_MAX, a & UINT32_MAX, "slot not reused");
	cr_assert_eq(get_rc(a), -ENOENT);
	drop(a);
	assert_get_key(b, 4, 500);
	cr_assert_eq(assert_sane().records, 1);
}

/* ---- memory, then disk ---- */

Test(pstore, spill_segments_appear_and_go, .init = setup, .fini = teardown)
{
	enum { N = 40, LEN = 100 * KIB };
	const unsigned per = (PSTORE_SEG_MIN - PSTORE_SEG_HDR_SIZE) /
			     (HDR + LEN);
	uint64_t ref[N], bytes;
	char magic[9] = "";
	char p[512];
	unsigned n;
	int fd;

	make_store(200 * KIB, 64 * MIB, PSTORE_SEG_MIN);
	for (unsigned i = 0; i < N; i++)
		ref[i] = put_key(2 * i, LEN);	/* incompressible */
	cr_assert_eq(assert_sane().mem_bytes, HDR + LEN, "memory first");
	seg_files(&n, &bytes);
	cr_assert_eq(n, (N - 1 + per - 1) / per, "%u segments", n);
	snprintf(p, sizeof(p), "%s/seg-000001", pstore_path(ps));
	fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, magic, 8, 0), 8);
	close(fd);
	cr_assert_str_eq(magic, "SWAFSSEG");
	/* ref[0] is in memory; ref[1 .. per] fill seg-000001. */
	for (unsigned i = 1; i <= per; i++) {
		cr_assert(seg_exists(1), "seg-000001 gone before its record %u",
			  i);
		drop(ref[i]);
	}
	cr_assert(!seg_exists(1), "seg-000001 kept after its last drop");
	cr_assert(seg_exists(2));
	for (unsigned i = per + 1; i < N; i++)
		assert_get_key(ref[i], 2 * i, LEN);
	assert_get_key(ref[0], 0, LEN);
	drop(ref[0]);
	for (unsigned i = per + 1; i < N; i++)
		drop(ref[i]);
	seg_files(&n, &bytes);
	cr_assert_eq(n, 0);
	cr_assert_eq(assert_sane().disk_bytes, 0);
}

/*
 * Segments hold 3 records of LEN; disk_max leaves room for 2 in the second
 * one, so ENOSPC comes first from a full disk_max with segment room left,
 * then from a segment that would not fit.
 */
Test(pstore, disk_full_is_enospc_until_drops, .init = setup,
     .fini = teardown)
{
	enum { LEN = 300 * KIB, N = 5, REC = HDR + LEN };
	static uint8_t buf[LEN];
	uint64_t ref[N], extra;
	struct pstore_stats s;

	make_store(0, 2 * PSTORE_SEG_HDR_SIZE + 5 * REC + REC / 2,
		   PSTORE_SEG_MIN);
	fill(buf, LEN, 98);		/* incompressible */
	for (unsigned i = 0; i < N; i++)
		ref[i] = put_key(2 * i, LEN);
	s = assert_sane();
	cr_assert_eq(pstore_put(ps, buf, LEN, &extra), -ENOSPC);
	cr_assert_eq(pstore_put(ps, buf, 100 * KIB, &extra), 0, "room left");
	drop(extra);
	cr_assert_eq(pstore_put(ps, buf, LEN, &extra), -ENOSPC);
	cr_assert_eq(assert_sane().puts, s.puts + 1);
	drop(ref[3]);		/* its hole takes the next record */
	s = assert_sane();
	ref[3] = put_key(2 * 7, LEN);
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes, "segment grew");
	cr_assert_eq(pstore_put(ps, buf, LEN, &extra), -ENOSPC);
	assert_get_key(ref[3], 2 * 7, LEN);
	drop(ref[0]);
	drop(ref[1]);
	drop(ref[2]);		/* seg-000001 is now empty and deleted */
	cr_assert(!seg_exists(1));
	extra = put_key(99 * 2, LEN);
	assert_get_key(ref[4], 8, LEN);
	assert_get_key(extra, 99 * 2, LEN);
}

Test(pstore, memory_full_without_disk_is_enospc, .init = setup,
     .fini = teardown)
{
	uint64_t a, b;
	static uint8_t buf[10 * KIB];

	make_store(HDR + 10 * KIB, 0, 0);
	a = put_key(2, 10 * KIB);
	cr_assert_eq(pstore_put(ps, buf, 1, &b), -ENOSPC);
	drop(a);
	b = put_key(4, 10 * KIB);
	assert_get_key(b, 4, 10 * KIB);
}

/* ---- holes: the space of dropped records is reused ---- */

#define REC64 (HDR + 64 * KIB)	/* a stored incompressible 64 KiB record */

/* Put an incompressible record stored in exactly size bytes. */
static uint64_t put_sized(uint64_t key, size_t size)
{
	return put_key(2 * key, size - HDR);
}

/* A put of a size that fits a hole lands there: the store does not grow. */
Test(pstore, hole_is_reused_without_growth, .init = setup, .fini = teardown)
{
	enum { N = 6, LEN = 100 * KIB, REC = HDR + LEN };
	uint64_t ref[N], a, b, bytes;
	struct pstore_stats s;
	unsigned n;

	make_store(0, 64 * MIB, PSTORE_SEG_MIN);
	for (unsigned i = 0; i < N; i++)
		ref[i] = put_key(2 * i, LEN);
	drop(ref[2]);
	s = assert_sane();
	cr_assert_eq(s.dead_bytes, REC, "the hole is not counted free");
	a = put_sized(100, REC - 40 * KIB);
	b = put_sized(101, 40 * KIB);	/* the rest of the hole, exactly */
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes, "store grew");
	cr_assert_eq(assert_sane().dead_bytes, 0, "a filled hole still free");
	seg_files(&n, &bytes);
	cr_assert_eq(n, 1);
	assert_get_key(a, 200, REC - 40 * KIB - HDR);
	assert_get_key(b, 202, 40 * KIB - HDR);
	for (unsigned i = 0; i < N; i++)
		if (i != 2)
			assert_get_key(ref[i], 2 * i, LEN);
	put_sized(102, 24 * KIB);	/* no hole left: appended */
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes + 24 * KIB);
}

/* Holes merge with free neighbours on the left, the right and both sides;
 * a record as large as the merged hole fits it exactly. */
Test(pstore, holes_merge, .init = setup, .fini = teardown)
{
	enum { N = 10 };
	uint64_t ref[N], big3, big2a, big2b;
	static const unsigned order[] = { 2, 4, 3, 7, 6, 0, 1 };
	struct pstore_stats s;

	make_store(0, 64 * MIB, PSTORE_SEG_MIN);
	for (unsigned i = 0; i < N; i++)
		ref[i] = put_key(2 * i, 64 * KIB);
	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		drop(ref[order[i]]);
	s = assert_sane();
	big3 = put_sized(30, 3 * REC64);	/* 2 3 4: both sides */
	big2a = put_sized(31, 2 * REC64);	/* 6 7 or 0 1 */
	big2b = put_sized(32, 2 * REC64);
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes, "store grew");
	assert_get_key(big3, 60, 3 * REC64 - HDR);
	assert_get_key(big2a, 62, 2 * REC64 - HDR);
	assert_get_key(big2b, 64, 2 * REC64 - HDR);
	assert_get_key(ref[5], 10, 64 * KIB);
	assert_get_key(ref[8], 16, 64 * KIB);
}

/* A free extent at the end of the active segment is taken in by a longer
 * record: the segment grows by the difference only. */
Test(pstore, tail_hole_is_taken_in, .init = setup, .fini = teardown)
{
	uint64_t a, b, c;
	struct pstore_stats s;

	make_store(0, 64 * MIB, PSTORE_SEG_MIN);
	a = put_key(2, 64 * KIB);
	b = put_key(4, 64 * KIB);
	drop(b);
	s = assert_sane();
	c = put_sized(5, REC64 + 10 * KIB);
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes + 10 * KIB);
	assert_get_key(a, 2, 64 * KIB);
	assert_get_key(c, 10, REC64 + 10 * KIB - HDR);
}

static void shuffle(unsigned *v, unsigned n, uint64_t *rng)
{
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)(xorshift(rng) % i), x = v[i - 1];

		v[i - 1] = v[j];
		v[j] = x;
	}
}

/*
 * Fill the store, then drop half of its records in random order and put as
 * many again, round after round: every segment keeps live records, so
 * only reuse makes room.  Capacity stays what the live records need.
 */
Test(pstore, random_drops_keep_capacity, .init = setup, .fini = teardown)
{
	enum { MAX = 256, ROUNDS = 20, LEN = 64 * KIB };
	static uint64_t ref[MAX], key[MAX];
	static unsigned idx[MAX];
	static uint8_t buf[LEN];
	uint64_t rng = 0x5eed, next = 1, bytes;
	struct pstore_stats segs;
	unsigned n = 0, k, nseg;
	int rc = 0;

	make_store(0, 8 * MIB, PSTORE_SEG_MIN);
	while (n < MAX - 1) {
		key[n] = next++;
		fill(buf, LEN, 2 * key[n]);
		rc = pstore_put(ps, buf, LEN, &ref[n]);
		if (rc < 0)
			break;
		n++;
	}
	cr_assert_eq(rc, -ENOSPC);
	cr_assert_geq(n * REC64, 8 * MIB - 8 * (PSTORE_SEG_HDR_SIZE + REC64));
	for (unsigned r = 0; r < ROUNDS; r++) {
		for (unsigned i = 0; i < n; i++)
			idx[i] = i;
		shuffle(idx, n, &rng);
		for (unsigned i = 0; i < n / 2; i++)
			drop(ref[idx[i]]);
		segs = assert_sane();
		seg_files(&nseg, &bytes);
		cr_assert_eq(segs.disk_bytes - segs.dead_bytes,
			     (uint64_t)(n - n / 2) * REC64 +
			     nseg * PSTORE_SEG_HDR_SIZE, "round %u: the live "
			     "bytes are not disk minus dead", r);
		for (unsigned i = 0; i < n / 2; i++) {
			k = idx[i];
			key[k] = next++;
			ref[k] = put_key(2 * key[k], LEN);
		}
		cr_assert_eq(pstore_put(ps, buf, LEN, &ref[MAX - 1]), -ENOSPC,
			     "round %u: more room than before", r);
	}
	for (unsigned i = 0; i < n; i++)
		assert_get_key(ref[i], 2 * key[i], LEN);
}

/* ---- integrity ---- */

Test(pstore, corrupt_spilled_record_is_eio, .init = setup, .fini = teardown)
{
	uint64_t a, b, c, d;
	char p[512];
	uint8_t x;
	int fd;

	make_store(0, 64 * MIB, 0);
	a = put_key(2, 4 * KIB);	/* raw: at 16 */
	b = put_key(4, 4 * KIB);	/* raw: at 16 + HDR + 4 KiB */
	c = put_key(1, 64 * KIB);	/* lz4 */
	d = put_key(6, 4 * KIB);
	snprintf(p, sizeof(p), "%s/seg-000001", pstore_path(ps));
	fd = open(p, O_RDWR);
	cr_assert_geq(fd, 0);
	/* A payload byte of b. */
	cr_assert_eq(pread(fd, &x, 1, 16 + 2 * HDR + 4 * KIB + 100), 1);
	x ^= 0x01;
	cr_assert_eq(pwrite(fd, &x, 1, 16 + 2 * HDR + 4 * KIB + 100), 1);
	cr_assert_eq(get_rc(b), -EIO);
	cr_assert_eq(assert_sane().integrity_errors, 1);
	/* raw_len in the header of a: bad header, not ENOBUFS or bytes. */
	x = 0x7f;
	cr_assert_eq(pwrite(fd, &x, 1, 16 + 8 + 2), 1);
	cr_assert_eq(get_rc(a), -EIO);
	assert_get_key(c, 1, 64 * KIB);
	/* Cut the file inside d: a short read. */
	cr_assert_eq(ftruncate(fd, lseek(fd, 0, SEEK_END) - 10), 0);
	close(fd);
	cr_assert_eq(get_rc(d), -EIO);
	cr_assert_eq(assert_sane_stats().integrity_errors, 3);
	assert_get_key(c, 1, 64 * KIB);
}

/* Invert every byte of record ref in turn: each must give -EIO. */
static void corrupt_each_byte(uint64_t ref, uint64_t key, size_t len,
			      size_t size)
{
	struct pstore_stats s = assert_sane_stats();

	for (size_t pos = 0; pos < size; pos++) {
		cr_assert_eq(pstore_test_corrupt(ps, ref, pos), 0);
		cr_assert_eq(get_rc(ref), -EIO, "byte %zu", pos);
		cr_assert_eq(pstore_test_corrupt(ps, ref, pos), 0);
	}
	cr_assert_eq(pstore_test_corrupt(ps, ref, size), -EINVAL);
	cr_assert_eq(assert_sane_stats().integrity_errors,
		     s.integrity_errors + size);
	assert_get_key(ref, key, len);
}

Test(pstore, corrupt_memory_record_is_eio, .init = setup, .fini = teardown)
{
	uint64_t a, b, c;

	make_store(64 * MIB, 64 * MIB, 0);
	a = put_key(2, 300);
	b = put_key(1, 4 * KIB);	/* lz4 */
	c = put_key(3, 0);
	corrupt_each_byte(a, 2, 300, HDR + 300);
	corrupt_each_byte(c, 3, 0, HDR);
	cr_assert_eq(pstore_test_corrupt(ps, b, HDR + 5), 0);
	cr_assert_eq(get_rc(b), -EIO);
	assert_get_key(a, 2, 300);
	cr_assert_eq(pstore_test_corrupt(ps, 0, 0), -ENOENT);
	cr_assert_eq(assert_sane().disk_bytes, 0);
}

Test(pstore, corrupt_every_byte_on_disk, .init = setup, .fini = teardown)
{
	struct pstore_stats s;
	uint64_t a, b;

	make_store(0, 64 * MIB, 0);
	a = put_key(2, 200);
	b = put_key(1, 8 * KIB);	/* lz4 */
	s = assert_sane();
	corrupt_each_byte(a, 2, 200, HDR + 200);
	corrupt_each_byte(b, 1, 8 * KIB,
			  s.disk_bytes - PSTORE_SEG_HDR_SIZE - HDR - 200);
}

/* A payload that passes its checksum but is not a valid lz4 block (made
 * here by rewriting both) must still be -EIO, never bytes. */
Test(pstore, forged_checksum_bad_lz4_is_eio, .init = setup, .fini = teardown)
{
	uint8_t *pay, le[8];
	uint64_t a, h;
	size_t len;
	char p[512];
	int fd;

	make_store(0, 64 * MIB, 0);
	a = put_key(1, 64 * KIB);	/* lz4, at 16 */
	snprintf(p, sizeof(p), "%s/seg-000001", pstore_path(ps));
	fd = open(p, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, le, 4, 16 + 12), 4);
	len = le[0] | (size_t)le[1] << 8 | (size_t)le[2] << 16;
	pay = malloc(len);
	memset(pay, 0xff, len);		/* a literal run past the input */
	h = XXH64(pay, len, 0);
	for (unsigned i = 0; i < 8; i++)
		le[i] = (uint8_t)(h >> (8 * i));
	cr_assert_eq(pwrite(fd, pay, len, 16 + HDR), (ssize_t)len);
	cr_assert_eq(pwrite(fd, le, 8, 16 + 16), 8);
	close(fd);
	free(pay);
	cr_assert_eq(get_rc(a), -EIO);
	cr_assert_eq(assert_sane().integrity_errors, 1);
}

/* The decoder alone (also fuzzed): any size and bytes give 0 or -EIO. */
Test(pstore, rec_decode_rejects_short_and_forged_records)
{
	uint8_t rec[HDR + 8] = { 0x53, 0x57, 0x50, 0x52, 1, 0, 1, 0, 8, 0, 0,
				 0, 8, 0, 0, 0 }, out[8];
	uint64_t h;

	memcpy(rec + HDR, "abcdefgh", 8);
	h = XXH64(rec + HDR, 8, 0);
	for (unsigned i = 0; i < 8; i++)
		rec[16 + i] = (uint8_t)(h >> (8 * i));
	cr_assert_eq(pstore_rec_decode(rec, sizeof(rec), 8, out), 0);
	cr_assert_eq(memcmp(out, "abcdefgh", 8), 0);
	cr_assert_eq(pstore_rec_decode(rec, sizeof(rec), 7, out), -EIO);
	cr_assert_eq(pstore_rec_decode(rec, HDR - 1, 0, out), -EIO);
	cr_assert_eq(pstore_rec_decode(rec, 0, 0, out), -EIO);
	cr_assert_eq(pstore_rec_decode(rec, sizeof(rec), PSTORE_REC_MAX + 1,
				       out), -EIO);
	rec[6] = 3;	/* raw and lz4 at once */
	cr_assert_eq(pstore_rec_decode(rec, sizeof(rec), 8, out), -EIO);
}

struct hammer {
	uint64_t ref;
	atomic_bool stop;
	atomic_ulong bad, seen;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	uint8_t *buf = malloc(PSTORE_REC_MAX);
	size_t n;
	int rc;

	while (!h->stop) {
		rc = pstore_get(ps, h->ref, buf, PSTORE_REC_MAX, &n);
		if (rc == 0)
			h->seen++;
		else if (rc != -ENOENT)
			h->bad++;
	}
	free(buf);
	return NULL;
}

/*
 * Invariant 1: a record is readable only once committed.  A dropped slot is
 * reused next (LIFO) with gen + 1, so the ref of the next put is known in
 * advance; a thread reads it while a 1 MiB spill is being written.
 */
Test(pstore, get_never_sees_uncommitted, .init = setup, .fini = teardown)
{
	static struct hammer h;
	static uint8_t buf[PSTORE_REC_MAX];
	uint64_t a, b;
	pthread_t t;

	make_store(0, 1024ull * MIB, 0);
	fill(buf, sizeof(buf), 2);
	a = put_key(4, 10);
	for (unsigned i = 0; i < 40; i++) {
		pstore_drop(ps, a);
		h.ref = a + (1ull << 32);
		h.stop = false;
		cr_assert_eq(pthread_create(&t, NULL, hammer_main, &h), 0);
		cr_assert_eq(pstore_put(ps, buf, sizeof(buf), &b), 0);
		h.stop = true;
		pthread_join(t, NULL);
		cr_assert_eq(b, h.ref, "slot reuse is not LIFO");
		cr_assert_eq(h.bad, 0, "uncommitted record read");
		a = b;
	}
	assert_sane();
}

/* A segment write that fails returns its errno and loses nothing else. */
Test(pstore, write_error_leaves_store_consistent, .init = setup,
     .fini = teardown)
{
	struct rlimit rl, small = { 200 * KIB, RLIM_INFINITY };
	uint64_t ref[8], extra;
	static uint8_t buf[64 * KIB];
	unsigned n = 0;
	int rc;

	make_store(0, 64 * MIB, 0);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	small.rlim_max = rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	while (n < 8) {
		fill(buf, sizeof(buf), 2 * n);
		rc = pstore_put(ps, buf, sizeof(buf), &ref[n]);
		if (rc < 0)
			break;
		n++;
	}
	cr_assert_eq(rc, -EFBIG);
	cr_assert_eq(n, 3);
	files_exact = false;
	cr_assert_eq(assert_sane_stats().records, 3);
	for (unsigned i = 0; i < n; i++)
		assert_get_key(ref[i], 2 * i, sizeof(buf));
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	extra = put_key(42, sizeof(buf));	/* a new segment */
	cr_assert(seg_exists(2));
	for (unsigned i = 0; i < n; i++)
		pstore_drop(ps, ref[i]);
	cr_assert(!seg_exists(1), "failed segment kept after its drops");
	files_exact = true;
	assert_get_key(extra, 42, sizeof(buf));
	drop(extra);
}

Test(pstore, failed_segment_creation_leaves_no_file, .init = setup,
     .fini = teardown)
{
	struct rlimit rl, none = { 0, RLIM_INFINITY };
	uint64_t ref;
	uint64_t bytes;
	unsigned n;

	make_store(0, 64 * MIB, 0);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	none.rlim_max = rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &none), 0);
	cr_assert_eq(pstore_put(ps, "x", 1, &ref), -EFBIG);
	seg_files(&n, &bytes);
	cr_assert_eq(n, 0);
	cr_assert_eq(assert_sane().records, 0);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	ref = put_key(2, 10);
	assert_get_key(ref, 2, 10);
}

/* ---- lifecycle ---- */

Test(pstore, create_rejects_bad_args, .init = setup, .fini = teardown)
{
	struct pstore_limits bad = { .mem_max = 1, .disk_max = 1,
				     .seg_max = PSTORE_SEG_MIN - 1 };
	struct pstore *p = NULL;
	char missing[128];
	unsigned n;
	uint64_t bytes;

	snprintf(missing, sizeof(missing), "%s/missing", dir);
	lim = (struct pstore_limits){ .mem_max = 1, .disk_max = 1 };
	cr_assert_eq(pstore_create(missing, &lim, &p), -ENOENT);
	cr_assert_eq(pstore_create(dir, NULL, &p), -EINVAL);
	cr_assert_eq(pstore_create(dir, &bad, &p), -EINVAL);
	bad.seg_max = PSTORE_SEG_LIMIT + 1;
	cr_assert_eq(pstore_create(dir, &bad, &p), -EINVAL);
	cr_assert_null(p);
	make_store(1, 1, PSTORE_SEG_LIMIT);
	seg_files(&n, &bytes);
	cr_assert_eq(n, 0);
}

Test(pstore, free_removes_directory, .init = setup, .fini = teardown)
{
	char path[512];
	struct stat st;

	make_store(10 * KIB, 64 * MIB, 0);
	for (unsigned i = 0; i < 5; i++)
		put_key(2 * i, 4 * KIB);
	cr_assert(seg_exists(1));
	snprintf(path, sizeof(path), "%s", pstore_path(ps));
	cr_assert_eq(strncmp(path + strlen(dir), "/swafs-store.", 13), 0);
	pstore_free(ps);
	ps = NULL;
	cr_assert_eq(stat(path, &st), -1);
	cr_assert_eq(errno, ENOENT);
}

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void make_at(const char *name, const char *file)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	cr_assert_eq(mkdir(p, 0700), 0, "mkdir %s", p);
	if (!file)
		return;
	snprintf(p, sizeof(p), "%s/%s/%s", dir, name, file);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
}

static bool exists_at(const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

Test(pstore, clean_stale_removes_only_dead, .init = setup, .fini = teardown)
{
	char stale[64], kept[64], link[64], target[512];
	pid_t dead = dead_pid();
	unsigned removed = 99;

	make_store(0, 64 * MIB, 0);
	put_key(2, 100);
	snprintf(stale, sizeof(stale), "swafs-store.%d.abc123", (int)dead);
	snprintf(kept, sizeof(kept), "swafs-store.%d.foreign", (int)dead);
	snprintf(link, sizeof(link), "swafs-store.%d.link", (int)dead);
	make_at(stale, "seg-000001");
	make_at(kept, "notes");		/* not ours to delete */
	make_at("other", "seg-000001");
	make_at("swafs-store.0.zero", NULL);
	snprintf(target, sizeof(target), "%s/%s", dir, link);
	cr_assert_eq(symlink(pstore_path(ps), target), 0);
	cr_assert_eq(pstore_clean_stale(dir, &removed), 0);
	cr_assert_eq(removed, 1);
	cr_assert(!exists_at(stale));
	cr_assert(exists_at(kept));
	cr_assert(exists_at(link));
	cr_assert(exists_at("other/seg-000001"));
	cr_assert(exists_at("swafs-store.0.zero"));
	cr_assert(seg_exists(1), "live store emptied");
	cr_assert_eq(pstore_clean_stale(dir, &removed), 0);
	cr_assert_eq(removed, 0);
	cr_assert_eq(pstore_clean_stale("/nonexistent-swafs", &removed),
		     -ENOENT);
}

/* ---- gets held mid-read (pstore_test_read_hook) ---- */

/* A get running in its own thread, stopped by the hook once pinned. */
struct held {
	uint64_t ref, key;
	size_t len;
	sem_t in, go;		/* the hook was reached; it may go on */
	pthread_t tid;
	int rc;
	bool same;		/* rc 0 and exactly the bytes put */
};

static __thread struct held *held_self;

static void held_hook(void *arg)
{
	struct held *h = held_self;

	(void)arg;
	if (!h)
		return;
	sem_post(&h->in);
	sem_wait(&h->go);
}

static void *held_main(void *arg)
{
	struct held *h = arg;
	uint8_t *buf = malloc(PSTORE_REC_MAX), *want = malloc(h->len + 1);
	size_t n = 0;

	held_self = h;
	h->rc = pstore_get(ps, h->ref, buf, PSTORE_REC_MAX, &n);
	fill(want, h->len, h->key);
	h->same = h->rc == 0 && n == h->len && !memcmp(buf, want, h->len);
	free(buf);
	free(want);
	return NULL;
}

/* Start a get of ref and wait until it has pinned the record. */
static void held_start(struct held *h, uint64_t ref, uint64_t key,
		       size_t len)
{
	*h = (struct held){ .ref = ref, .key = key, .len = len };
	sem_init(&h->in, 0, 0);
	sem_init(&h->go, 0, 0);
	cr_assert_eq(pthread_create(&h->tid, NULL, held_main, h), 0);
	sem_wait(&h->in);
}

static void held_finish(struct held *h)
{
	sem_post(&h->go);
	pthread_join(h->tid, NULL);
	sem_destroy(&h->in);
	sem_destroy(&h->go);
	cr_assert(h->same, "held get of %lx: rc %d, not the bytes put",
		  (unsigned long)h->ref, h->rc);
}

/*
 * Invariant 7: a record dropped while a get reads it keeps its bytes until
 * that get is done; a put meanwhile goes elsewhere, and the hole is
 * reusable (and waiters woken) once the get has left.
 */
Test(pstore, get_pinned_before_drop_keeps_its_bytes, .init = setup,
     .fini = teardown)
{
	struct held h;
	struct pstore_stats s;
	uint64_t a, b, c, d, seq;

	make_store(0, 64 * MIB, PSTORE_SEG_MIN);
	pstore_test_read_hook(ps, held_hook, NULL);
	a = put_key(2, 64 * KIB);
	b = put_key(4, 64 * KIB);
	held_start(&h, a, 2, 64 * KIB);
	drop(a);
	s = assert_sane();
	c = put_key(6, 64 * KIB);
	seq = pstore_freed_seq(ps);
	held_finish(&h);
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes + REC64,
		     "a hole reused under its reader");
	cr_assert_neq(pstore_freed_seq(ps), seq, "no wake-up for the hole");
	s = assert_sane();
	d = put_key(8, 64 * KIB);
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes, "hole not reused");
	assert_get_key(b, 4, 64 * KIB);
	assert_get_key(c, 6, 64 * KIB);
	assert_get_key(d, 8, 64 * KIB);
}

/* Only gets that began before a drop hold its hole back: one that began
 * after it and reads on does not. */
Test(pstore, later_reader_does_not_hold_a_hole, .init = setup,
     .fini = teardown)
{
	struct held h1, h2;
	struct pstore_stats s;
	uint64_t a, b, x, y;

	make_store(0, 64 * MIB, PSTORE_SEG_MIN);
	pstore_test_read_hook(ps, held_hook, NULL);
	a = put_key(2, 64 * KIB);
	x = put_key(4, 64 * KIB);
	b = put_key(6, 64 * KIB);
	held_start(&h1, a, 2, 64 * KIB);
	drop(x);
	held_start(&h2, b, 6, 64 * KIB);
	held_finish(&h1);
	s = assert_sane();
	y = put_key(8, 64 * KIB);
	cr_assert_eq(assert_sane().disk_bytes, s.disk_bytes,
		     "hole held back by a get that began after the drop");
	held_finish(&h2);
	assert_get_key(a, 2, 64 * KIB);
	assert_get_key(y, 8, 64 * KIB);
}

/* ---- concurrency ---- */

#define ST_THREADS	8
#define ST_CELLS	128
#define ST_MAX_LEN	(96 * KIB)
#define ST_MIN_OPS	3000		/* per thread */
#define ST_SECONDS	2

/* A published record: cells are how threads share refs. */
struct st_cell {
	pthread_mutex_t lock;
	uint64_t ref;		/* 0: empty */
	uint64_t key;
	size_t len;
};

struct st_run {
	struct st_cell cell[ST_CELLS];
	struct timespec end;
	atomic_uint running;
	atomic_ulong ops, gets, bad;
	char why[160];		/* first failure, under why_lock */
	pthread_mutex_t why_lock;
};

struct st_worker {
	struct st_run *run;
	pthread_t tid;
	uint64_t rng, next_key;
	uint8_t *buf, *want;
};

static void st_fail(struct st_run *run, const char *what, uint64_t ref,
		    int rc)
{
	pthread_mutex_lock(&run->why_lock);
	if (!run->bad++)
		snprintf(run->why, sizeof(run->why), "%s: ref %lx rc %d",
			 what, (unsigned long)ref, rc);
	pthread_mutex_unlock(&run->why_lock);
}

/* A dropped ref must stay unknown, whatever reuses its slot. */
static void st_check_gone(struct st_worker *w, uint64_t ref)
{
	size_t n;
	int rc = pstore_get(ps, ref, w->buf, ST_MAX_LEN, &n);

	if (rc != -ENOENT)
		st_fail(w->run, "dropped ref readable", ref, rc);
}

static void st_put(struct st_worker *w, struct st_cell *c, uint64_t r)
{
	uint64_t key = w->next_key++, ref = 0, old;
	size_t len = (r >> 20) % 16 ? (r >> 24) % (ST_MAX_LEN + 1) : 0;
	int rc;

	fill(w->buf, len, key);
	rc = pstore_put(ps, w->buf, len, &ref);
	if (rc < 0 || !ref)
		return st_fail(w->run, "put", ref, rc);
	pthread_mutex_lock(&c->lock);
	old = c->ref;
	c->ref = ref;
	c->key = key;
	c->len = len;
	pthread_mutex_unlock(&c->lock);
	if (!old)
		return;
	pstore_drop(ps, old);
	st_check_gone(w, old);
}

static void st_get(struct st_worker *w, struct st_cell *c)
{
	uint64_t ref, key;
	size_t len, n = 0;
	bool still;
	int rc;

	pthread_mutex_lock(&c->lock);
	ref = c->ref;
	key = c->key;
	len = c->len;
	pthread_mutex_unlock(&c->lock);
	if (!ref)
		return;
	rc = pstore_get(ps, ref, w->buf, ST_MAX_LEN, &n);
	if (rc == -ENOENT) {
		/* Fine only if another thread unpublished and dropped it. */
		pthread_mutex_lock(&c->lock);
		still = c->ref == ref;
		pthread_mutex_unlock(&c->lock);
		if (still)
			st_fail(w->run, "live ref ENOENT", ref, rc);
		return;
	}
	fill(w->want, len, key);
	if (rc < 0 || n != len || memcmp(w->buf, w->want, len))
		return st_fail(w->run, "get wrong bytes", ref, rc);
	w->run->gets++;
}

static void st_drop(struct st_worker *w, struct st_cell *c)
{
	uint64_t old;

	pthread_mutex_lock(&c->lock);
	old = c->ref;
	c->ref = 0;
	pthread_mutex_unlock(&c->lock);
	if (!old)
		return;
	pstore_drop(ps, old);
	pstore_drop(ps, old);		/* twice: no-op */
	st_check_gone(w, old);
}

static bool st_past(const struct timespec *end)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > end->tv_sec ||
	       (now.tv_sec == end->tv_sec && now.tv_nsec >= end->tv_nsec);
}

static void *st_main(void *arg)
{
	struct st_worker *w = arg;
	uint64_t ops, r;

	for (ops = 0; ops < ST_MIN_OPS || !st_past(&w->run->end); ops++) {
		r = xorshift(&w->rng);
		struct st_cell *c = &w->run->cell[r % ST_CELLS];

		switch ((r >> 8) % 8) {
		case 0: case 1: case 2:
			st_put(w, c, r);
			break;
		case 3: case 4: case 5:
			st_get(w, c);
			break;
		default:
			st_drop(w, c);
		}
	}
	w->run->ops += ops;
	w->run->running--;
	return NULL;
}

/* Check the counters while the workers run; then empty the cells. */
static void st_watch_and_drain(struct st_run *run)
{
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	struct pstore_stats s;

	while (run->running) {
		assert_sane_stats();
		nanosleep(&tick, NULL);
	}
	for (unsigned i = 0; i < ST_CELLS; i++)
		pstore_drop(ps, run->cell[i].ref);
	s = assert_sane();
	cr_assert_eq(s.records, 0);
	cr_assert_eq(s.integrity_errors, 0);
	cr_assert_eq(s.disk_bytes, 0, "segments left: %lu bytes",
		     (unsigned long)s.disk_bytes);
}

/* Stretch some reads of spilled records, so drops land while gets read. */
static void st_slow_hook(void *arg)
{
	static __thread uint64_t rng;
	struct timespec t = { 0, 0 };

	(void)arg;
	if (!rng)
		rng = (uint64_t)pthread_self() | 1;
	t.tv_nsec = (long)(xorshift(&rng) % 4 ? 0 : 20000 + rng % 200000);
	if (t.tv_nsec)
		nanosleep(&t, NULL);
	else
		sched_yield();
}

static void stress(uint64_t mem_max, uint64_t disk_max, uint64_t seg_max,
		   bool slow)
{
	static struct st_run run;
	struct st_worker w[ST_THREADS];
	struct pstore_stats s;

	make_store(mem_max, disk_max, seg_max);
	if (slow)
		pstore_test_read_hook(ps, st_slow_hook, NULL);
	pthread_mutex_init(&run.why_lock, NULL);
	for (unsigned i = 0; i < ST_CELLS; i++)
		pthread_mutex_init(&run.cell[i].lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &run.end);
	run.end.tv_sec += ST_SECONDS;
	run.running = ST_THREADS;
	for (unsigned i = 0; i < ST_THREADS; i++) {
		w[i] = (struct st_worker){
			.run = &run,
			.rng = 0x1234567ull * (i + 1),
			.next_key = (uint64_t)(i + 1) << 40,
			.buf = malloc(ST_MAX_LEN),
			.want = malloc(ST_MAX_LEN),
		};
		cr_assert_eq(pthread_create(&w[i].tid, NULL, st_main, &w[i]),
			     0);
	}
	st_watch_and_drain(&run);
	for (unsigned i = 0; i < ST_THREADS; i++) {
		pthread_join(w[i].tid, NULL);
		free(w[i].buf);
		free(w[i].want);
	}
	cr_assert_eq(run.bad, 0, "%lu failures, first: %s",
		     (unsigned long)run.bad, run.why);
	cr_assert_geq(run.ops, ST_THREADS * ST_MIN_OPS);
	cr_assert_gt(run.gets, run.ops / 10, "too few verified gets");
	pstore_stats(ps, &s);
	cr_log_info("%lu ops, %lu verified gets, %lu puts, peak %lu",
		    (unsigned long)run.ops, (unsigned long)run.gets,
		    (unsigned long)s.puts, (unsigned long)s.peak_bytes);
}

Test(pstore, stress_memory_only, .init = setup, .fini = teardown,
     .timeout = 120)
{
	stress(1024ull * MIB, 1024ull * MIB, 0, false);
	cr_assert_leq(assert_sane().peak_bytes, lim.mem_max);
}

Test(pstore, stress_spilling, .init = setup, .fini = teardown,
     .timeout = 120)
{
	stress(1 * MIB, 1024ull * MIB, PSTORE_SEG_MIN, false);
	cr_assert_gt(assert_sane().peak_bytes, 2 * lim.mem_max, "no spill");
}

/*
 * Everything on disk, holes reused all the time (the live records take
 * about 4 MiB, the puts write a hundred times disk_max), and gets slowed
 * down mid-read so that drops and reuse race with them: every get returns
 * exactly the bytes put, never -EIO, and no put fails.
 */
Test(pstore, stress_reuse_with_slow_readers, .init = setup, .fini = teardown,
     .timeout = 120)
{
	struct pstore_stats s;

	stress(0, 12 * MIB, PSTORE_SEG_MIN, true);
	s = assert_sane();
	cr_assert_gt(s.peak_bytes, 2 * MIB, "little spilled");
	cr_assert_gt(s.puts * 40 * KIB, 10 * lim.disk_max, "too few puts");
}
