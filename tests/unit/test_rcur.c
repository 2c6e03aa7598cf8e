/* Unit tests for snapshot/rcur.c, the reader cursor: the saved rule of
 * DESIGN.md 4 for every read pattern (sizes 1 byte to 1 MiB, unaligned,
 * split and shuffled blocks, backwards), sparse files, files that shrank
 * or grew after T, concurrent handles and several views, through real
 * checkpoints (ckpt hooks, cobj, pstore) of real files. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/ckpt.h"
#include "snapshot/cobj.h"
#include "snapshot/rcur.h"

#define BS 65536u
#define KIB 1024u
#define MIB (1024u * 1024u)

static char dir[64];
static struct ckpt_set *set;
static unsigned ckpts;

/* A live file, its T bytes (read at each take) and its references. */
struct file {
	char path[128];
	int rw, rd;
	struct cobj_ref ref;
	uint64_t size;		/* at T */
	uint8_t *t;		/* T image */
};

/* A checkpoint of one file: the entry a view would open. */
struct snap {
	struct ckpt *ck;
	struct cobj_table *tab;
	struct cobj *c;
	char name[32];
};

static void setup(void)
{
	struct ckpt_set_opts so = { .block_size = BS, .store_mem = 64 * MIB,
				    .store_max = 1024ull * MIB };

	strcpy(dir, "/tmp/swafs-rcur-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	so.store_dir = dir;
	cr_assert_eq(ckpt_set_create(&so, &set), 0);
}

static void teardown(void)
{
	char cmd[128];

	ckpt_set_free(set);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Noise, so the store's compression cannot fake a block. */
static uint8_t pat(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ull ^
		     (seed + 1) * 0xd1b54a32d192ed03ull;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(x >> (8 * (off & 7)));
}

static void put(struct file *f, uint64_t off, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);

	for (size_t i = 0; i < len; i++)
		buf[i] = pat(seed, off + i);
	cr_assert_eq(pwrite(f->rw, buf, len, (off_t)off), (ssize_t)len);
	free(buf);
}

/* A file of size bytes: all data, or the data extents ext[0..n) (off, len
 * pairs) in a sparse file. */
static void file_new(struct file *f, const char *name, uint64_t size,
		     const uint64_t *ext, size_t n)
{
	struct stat st;

	snprintf(f->path, sizeof(f->path), "%s/%s", dir, name);
	f->rw = open(f->path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(f->rw, 0);
	cr_assert_eq(ftruncate(f->rw, (off_t)size), 0);
	if (!ext && size)
		put(f, 0, size, 1);
	for (size_t k = 0; k < n; k++)
		put(f, ext[2 * k], ext[2 * k + 1], 2);
	f->rd = open(f->path, O_RDONLY | O_CLOEXEC);
	f->ref = (struct cobj_ref){ .fd = open(f->path, O_PATH | O_CLOEXEC) };
	cr_assert(f->rd >= 0 && f->ref.fd >= 0);
	cr_assert_eq(fstat(f->rw, &st), 0);
	f->ref.dev = st.st_dev;
	f->ref.ino = st.st_ino;
	f->t = NULL;
}

static void file_free(struct file *f)
{
	close(f->rw);
	close(f->rd);
	close(f->ref.fd);
	free(f->t);
}

/* The live tree's write: hook first (capture), then change. */
static void live_write(struct file *f, uint64_t off, size_t len, uint64_t seed)
{
	ckpt_op_begin(set);
	cr_assert_eq(ckpt_before_data(set, &f->ref, off, len), 0);
	put(f, off, len, seed);
	ckpt_op_end(set);
}

static void live_truncate(struct file *f, uint64_t size)
{
	ckpt_op_begin(set);
	cr_assert_eq(ckpt_before_data(set, &f->ref, size, UINT64_MAX), 0);
	cr_assert_eq(ftruncate(f->rw, (off_t)size), 0);
	ckpt_op_end(set);
}

/* Take a checkpoint of f's current state; flags as ckpt_take(). */
static void take(struct snap *s, struct file *f, unsigned flags)
{
	struct stat st;
	uint64_t pause;

	cr_assert_eq(fstat(f->rw, &st), 0);
	f->size = (uint64_t)st.st_size;
	free(f->t);
	f->t = NULL;	/* huge files: their bytes are not compared */
	if (f->size <= 256 * MIB) {
		f->t = malloc(f->size ? f->size : 1);
		cr_assert_eq(pread(f->rw, f->t, f->size, 0),
			     (ssize_t)f->size);
	}
	snprintf(s->name, sizeof(s->name), "c%u", ckpts++);
	cr_assert_eq(ckpt_take(set, s->name, flags, -1, &pause), 0);
	s->ck = ckpt_get(set, s->name);
	s->tab = ckpt_objects(s->ck);
	cr_assert_eq(cobj_get(s->tab, &f->ref, &s->c), 0);
}

static void drop(struct snap *s)
{
	ckpt_put(s->ck);
	cr_assert_eq(ckpt_release(set, s->name), 0);
}

static struct cobj_stats stats(struct snap *s)
{
	struct cobj_stats st;

	cobj_table_stats(s->tab, &st);
	return st;
}

static bool released(struct snap *s)
{
	return cobj_flags(s->c) & COBJ_RELEASED;
}

static struct rcur *open_cur(struct snap *s, struct file *f)
{
	struct rcur *r;

	cr_assert_eq(rcur_open(s->ck, s->c, f->rd, &r), 0);
	return r;
}

/* Read [off, off+len) through r; it must be T's.  Returns the count. */
static ssize_t rd(struct rcur *r, struct file *f, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	ssize_t n = rcur_read(r, buf, len, off);
	uint64_t want = off >= f->size ? 0 : f->size - off < len ? f->size - off
							      : len;

	cr_assert_eq(n, (ssize_t)want, "read %zu at %lu: %zd, want %lu", len,
		     (unsigned long)off, n, (unsigned long)want);
	cr_assert(n == 0 || !f->t || !memcmp(buf, f->t + off, (size_t)n),
		  "read %zu at %lu: not T's bytes", len, (unsigned long)off);
	free(buf);
	return n;
}

/* A live write to block b of f now: does it need a capture? */
static bool write_captures(struct snap *s, struct file *f, uint64_t b)
{
	uint64_t before = stats(s).captured_blocks;

	live_write(f, b * BS, 512, 77);
	return stats(s).captured_blocks != before;
}

/* A live write to block b of f now: is its T image still kept (a view
 * reads it), or was the block saved (it reads as EIO)?  Holes at T are
 * captured as such without counting, so this is how to tell for them. */
static bool write_kept(struct snap *s, struct file *f, uint64_t b)
{
	uint8_t buf[512];

	live_write(f, b * BS, sizeof(buf), 78);
	if (cobj_read(s->tab, s->c, f->rd, buf, sizeof(buf), b * BS) !=
	    (ssize_t)sizeof(buf))
		return false;
	cr_assert(!memcmp(buf, f->t + b * BS, sizeof(buf)));
	return true;
}

static void read_forward(struct rcur *r, struct file *f, uint64_t from,
			 uint64_t to, size_t step)
{
	for (uint64_t off = from; off < to; off += step)
		rd(r, f, off, to - off < step ? (size_t)(to - off) : step);
}

/* ---- read sizes ------------------------------------------------------ */

/* One checkpoint read front to back with reads of k bytes. */
static void one_size(struct file *f, size_t k)
{
	struct snap s;
	struct rcur *r;
	size_t ranges;

	take(&s, f, 0);
	live_write(f, BS + 100, 5000, k);	/* a captured block, too */
	r = open_cur(&s, f);
	read_forward(r, f, 0, f->size, k);
	cr_assert_eq(rd(r, f, f->size, k), 0);
	cr_assert_eq(rcur_covered(r, &ranges), f->size, "size %zu", k);
	cr_assert_eq(ranges, 1, "size %zu: %zu ranges", k, ranges);
	cr_assert(rcur_close(r), "size %zu: file not released", k);
	cr_assert_eq(stats(&s).saved_bytes, f->size, "size %zu", k);
	cr_assert_eq(stats(&s).held_bytes, 0, "size %zu", k);
	cr_assert_not(write_captures(&s, f, 3), "size %zu", k);
	drop(&s);
}

Test(rcur, every_read_size_1_byte_to_1_mib, .init = setup,
     .fini = teardown, .timeout = 300)
{
	struct file f;
	size_t k;

	file_new(&f, "f", 3 * BS + 1234, NULL, 0);
	for (k = 1; k <= 1024; k++)
		one_size(&f, k);
	for (; k <= MIB; k += 509)	/* a prime stride: every alignment */
		one_size(&f, k);
	for (k = BS - 2; k <= BS + 2; k++)
		one_size(&f, k);
	one_size(&f, MIB);
	file_free(&f);
}

/* ---- the window, order, split blocks --------------------------------- */

Test(rcur, window_saves_behind_the_reader, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	file_new(&f, "f", 24 * MIB, NULL, 0);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, 20 * MIB, 10 * KIB);	/* tar's reads */
	cr_assert_geq(stats(&s).saved_blocks, 12 * MIB / BS - 1);
	cr_assert_not(write_captures(&s, &f, 0), "block behind the window");
	cr_assert(write_captures(&s, &f, 22 * MIB / BS), "block ahead");
	cr_assert(write_captures(&s, &f, 19 * MIB / BS), "block in the window");
	read_forward(r, &f, 20 * MIB, f.size, 10 * KIB);
	cr_assert(rcur_close(r));
	cr_assert_eq(stats(&s).held_bytes, 0);
	drop(&s);
	file_free(&f);
}

Test(rcur, backwards_in_4k_steps, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;
	uint64_t off;

	file_new(&f, "f", 20 * MIB + 777, NULL, 0);
	take(&s, &f, 0);
	live_write(&f, 5 * MIB, 3 * BS, 9);
	r = open_cur(&s, &f);
	for (off = f.size - f.size % (4 * KIB); ; off -= 4 * KIB) {
		rd(r, &f, off, 4 * KIB);
		if (!off)
			break;
	}
	/* behind the window from the first read: saved as covered */
	cr_assert_geq(stats(&s).saved_blocks, (f.size - 8 * MIB) / BS - 1);
	cr_assert_not(write_captures(&s, &f, 1));
	cr_assert(rcur_close(r));
	cr_assert_eq(stats(&s).held_bytes, 0);
	drop(&s);
	file_free(&f);
}

/* Chunks of 1..200,000 bytes at unaligned offsets, in random order. */
static size_t chunks(uint64_t size, uint64_t *cut, size_t max, unsigned seed)
{
	size_t n = 0;

	srand(seed);
	for (uint64_t off = 0; off < size && n < max; n++) {
		cut[n] = off;
		off += 1 + (uint64_t)rand() % 200000;
	}
	for (size_t k = n; k > 1; k--) {
		size_t j = (size_t)rand() % k;
		uint64_t x = cut[k - 1];

		cut[k - 1] = cut[j];
		cut[j] = x;
	}
	return n;
}

/* The end of the chunk starting at cut (the next cut above it). */
static uint64_t chunk_end(const uint64_t *cut, size_t n, uint64_t at,
			  uint64_t size)
{
	uint64_t end = size;

	for (size_t k = 0; k < n; k++)
		if (cut[k] > at && cut[k] < end)
			end = cut[k];
	return end;
}

static void shuffled(bool skip_one)
{
	static uint64_t cut[512];
	struct file f;
	struct snap s;
	struct rcur *r;
	uint64_t skipped = 0;
	size_t n, ranges;

	file_new(&f, "f", 5 * MIB + 333, NULL, 0);
	take(&s, &f, 0);
	live_write(&f, 2 * MIB - 10, 20, 5);	/* straddles two blocks */
	n = chunks(f.size, cut, 512, 42);
	r = open_cur(&s, &f);
	for (size_t k = 0; k < n; k++) {
		uint64_t end = chunk_end(cut, n, cut[k], f.size);

		if (skip_one && k == n / 2 && end - cut[k] > 1) {
			skipped = cut[k] + 1;	/* one byte left out */
			rd(r, &f, cut[k], 1);
			rd(r, &f, cut[k] + 2, end - cut[k] - 2);
			continue;
		}
		rd(r, &f, cut[k], end - cut[k]);
	}
	rcur_covered(r, &ranges);
	cr_assert_eq(ranges, skip_one ? 2 : 1);
	cr_assert_eq(rcur_close(r), !skip_one);
	if (skip_one) {
		cr_assert(write_captures(&s, &f, skipped / BS),
			  "a block with a byte unread was saved");
		cr_assert_not(write_captures(&s, &f, (skipped / BS + 3) %
						      (f.size / BS)));
	} else {
		cr_assert_eq(stats(&s).held_bytes, 0);
	}
	drop(&s);
	file_free(&f);
}

Test(rcur, shuffled_unaligned_reads, .init = setup, .fini = teardown)
{
	shuffled(false);
}

Test(rcur, a_byte_unread_keeps_its_block, .init = setup, .fini = teardown)
{
	shuffled(true);
}

Test(rcur, split_block_counts_once, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	file_new(&f, "f", 4 * BS, NULL, 0);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	rd(r, &f, BS + BS / 2 + 3, BS / 2 - 3);
	cr_assert_eq(stats(&s).saved_bytes, 0);
	rd(r, &f, BS, BS / 2 + 3);
	cr_assert_eq(stats(&s).saved_bytes, BS, "the second half completes it");
	rd(r, &f, BS, BS);
	cr_assert_eq(stats(&s).saved_bytes, BS, "a re-read counts nothing");
	cr_assert_not(rcur_close(r), "blocks 0, 2 and 3 were never read");
	cr_assert_not(write_captures(&s, &f, 1));
	cr_assert(write_captures(&s, &f, 0));
	drop(&s);
	file_free(&f);
}

Test(rcur, rereads_and_reads_past_eof, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	file_new(&f, "f", 2 * BS + 5, NULL, 0);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, f.size, 4 * KIB);
	read_forward(r, &f, 0, f.size, 3000);
	cr_assert_eq(rd(r, &f, f.size + 100 * MIB, 4096), 0);
	cr_assert(rcur_close(r));
	r = open_cur(&s, &f);	/* released: served live, as at T */
	read_forward(r, &f, 0, f.size, 7000);
	cr_assert_not(rcur_close(r), "released only once");
	drop(&s);
	file_free(&f);
}

/* ---- sparse files ---------------------------------------------------- */

/* data, hole, data, hole, data in a block with a hole, hole to the end */
static const uint64_t sparse_ext[] = {
	0, 10000, 3 * MIB + 5000, 200000, 12 * MIB, 4096,
};
#define SPARSE_SIZE (20ull * MIB)

static void sparse_file(struct file *f)
{
	file_new(f, "sparse", SPARSE_SIZE, sparse_ext, 3);
}

/* As view_lseek: SEEK_DATA / SEEK_HOLE from T's layout, the cursor told. */
static uint64_t seek(struct snap *s, struct file *f, struct rcur *r,
		     uint64_t off, bool data)
{
	off_t x = cobj_seek(s->tab, s->c, f->rd, off, data);

	if (data)
		rcur_seek_data(r, off, x >= 0 ? (uint64_t)x : UINT64_MAX);
	return x >= 0 ? (uint64_t)x : f->size;
}

/* tar --sparse, cp: map the extents with SEEK_DATA/HOLE, read the data. */
static void read_extents(struct snap *s, struct file *f, struct rcur *r)
{
	uint64_t pos = 0;

	while (pos < f->size) {
		uint64_t d = seek(s, f, r, pos, true), h;

		if (d >= f->size)
			break;
		h = seek(s, f, r, d, false);
		read_forward(r, f, d, h, 10 * KIB);
		pos = h;
	}
}

Test(rcur, sparse_read_through, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	sparse_file(&f);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, f.size, 10 * KIB);
	cr_assert(rcur_close(r));
	drop(&s);
	file_free(&f);
}

Test(rcur, sparse_seek_data_over_holes, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;
	size_t ranges;

	sparse_file(&f);
	take(&s, &f, 0);
	live_write(&f, 3 * MIB, 100, 3);	/* a captured data block */
	r = open_cur(&s, &f);
	read_extents(&s, &f, r);
	cr_assert_eq(rcur_covered(r, &ranges), f.size);
	cr_assert_eq(ranges, 1);
	cr_assert(rcur_close(r));
	cr_assert_not(write_kept(&s, &f, 200), "a hole at T, seeked over");
	drop(&s);
	file_free(&f);
}

/*
 * A hole at T that was captured (written after T) and then saved is still
 * T's: zeros, and a hole to SEEK_DATA, for a second pass of any reader.
 */
Test(rcur, captured_hole_stays_a_hole_once_saved, .init = setup,
     .fini = teardown)
{
	uint64_t hb = 8 * MIB / BS;	/* a hole at T */
	struct file f;
	struct snap s;
	struct rcur *r, *other;
	uint8_t buf[512], zero[512] = { 0 };

	sparse_file(&f);
	take(&s, &f, 0);
	live_write(&f, hb * BS, 100, 9);	/* captured as a hole */
	other = open_cur(&s, &f);	/* the file stays unreleased */
	r = open_cur(&s, &f);
	read_extents(&s, &f, r);
	cr_assert_not(rcur_close(r));
	cr_assert_not(write_captures(&s, &f, hb), "a saved hole captured");
	cr_assert_eq(cobj_read(s.tab, s.c, f.rd, buf, sizeof(buf), hb * BS),
		     (ssize_t)sizeof(buf), "the saved hole fails a read");
	cr_assert(!memcmp(buf, zero, sizeof(buf)));
	cr_assert_eq(cobj_seek(s.tab, s.c, f.rd, hb * BS, true),
		     (off_t)sparse_ext[4], "SEEK_DATA does not pass the hole");
	rcur_close(other);
	drop(&s);
	file_free(&f);
}

/* Progress counts a sparse file's data: blocks that held data at T. */
Test(rcur, sparse_counts_its_data, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	sparse_file(&f);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, 5 * MIB, 10 * KIB);	/* holes read */
	read_extents(&s, &f, r);			/* holes seeked over */
	cr_assert(rcur_close(r));
	cr_assert_eq(stats(&s).saved_bytes, 6 * BS, "saved %lu",
		     (unsigned long)stats(&s).saved_bytes);
	drop(&s);
	file_free(&f);
}

Test(rcur, sparse_holes_passed, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	sparse_file(&f);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	for (size_t k = 0; k < 3; k++)	/* data only, by offsets: no seek */
		read_forward(r, &f, sparse_ext[2 * k] / 4096 * 4096,
			     (sparse_ext[2 * k] + sparse_ext[2 * k + 1] +
			      4095) / 4096 * 4096, 10 * KIB);
	cr_assert_not(write_kept(&s, &f, 2 * MIB / BS),
		      "a hole the window passed");
	cr_assert(write_kept(&s, &f, 16 * MIB / BS),
		  "the tail hole was not passed yet");
	rd(r, &f, f.size, 4096);	/* a read at EOF passes it */
	cr_assert(rcur_close(r));
	drop(&s);
	file_free(&f);
}

/* The end first, then the data by offsets: the holes between the data are
 * passed once read on both sides, though the window went past them first. */
Test(rcur, sparse_end_first_then_data, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	sparse_file(&f);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	rd(r, &f, f.size - 4096, 4096);
	for (size_t k = 0; k < 3; k++)
		read_forward(r, &f, sparse_ext[2 * k] / 4096 * 4096,
			     (sparse_ext[2 * k] + sparse_ext[2 * k + 1] +
			      4095) / 4096 * 4096, 10 * KIB);
	cr_assert(rcur_close(r));
	drop(&s);
	file_free(&f);
}

Test(rcur, sparse_tail_never_passed, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	sparse_file(&f);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, 12 * MIB + 4096, 64 * KIB);
	cr_assert_not(rcur_close(r), "the tail hole was neither read, "
		      "seeked over nor passed");
	cr_assert(write_kept(&s, &f, 18 * MIB / BS));
	cr_assert_not(write_kept(&s, &f, 5 * MIB / BS));
	drop(&s);
	file_free(&f);
}

/* A hole ahead of a backwards reader is not passed: written after T, it
 * still reads as T's hole when the reader gets there. */
Test(rcur, sparse_backwards_keeps_holes_ahead, .init = setup,
     .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;
	uint64_t off;

	file_new(&f, "sparse", SPARSE_SIZE, sparse_ext + 2, 2);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	for (off = f.size - 4096; off >= 18 * MIB; off -= 4096)
		rd(r, &f, off, 4096);
	cr_assert(write_kept(&s, &f, 1), "a hole ahead was saved");
	for (; ; off -= 4096) {
		rd(r, &f, off, 4096);
		if (!off)
			break;
	}
	cr_assert(rcur_close(r));
	drop(&s);
	file_free(&f);
}

/* Memory follows the ranges read, not the size: an 8 GiB sparse file. */
Test(rcur, huge_sparse_file_keeps_few_ranges, .init = setup,
     .fini = teardown)
{
	const uint64_t ext[] = { 0, 100000, 5ull << 30, 1 * MIB };
	struct file f;
	struct snap s;
	struct rcur *r;
	size_t ranges;

	file_new(&f, "huge", 8ull << 30, ext, 2);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	for (uint64_t k = 0; k < 1000; k++)	/* one range per read */
		rcur_read(r, (char[1]){ 0 }, 1, k * 4096 + 1);
	rcur_covered(r, &ranges);
	cr_assert_eq(ranges, 1000);
	/* past the window the holes between them are passed: they merge,
	 * and each gap is looked up only as far as it goes */
	for (uint64_t k = 0; k < 1000; k++)
		rcur_read(r, (char[1]){ 0 }, 1, 7 * MIB + k * 3 * BS);
	rcur_covered(r, &ranges);
	cr_assert_leq(ranges, 200);
	read_extents(&s, &f, r);
	cr_assert_eq(rcur_covered(r, &ranges), f.size);
	cr_assert_eq(ranges, 1);
	cr_assert(rcur_close(r));
	drop(&s);
	file_free(&f);
}

/* ---- files changed in size after T ----------------------------------- */

Test(rcur, shrank_after_t, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	file_new(&f, "f", 2 * MIB + 100, NULL, 0);
	take(&s, &f, 0);
	live_truncate(&f, MIB - 7);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, f.size + 4096, 4096);
	cr_assert(rcur_close(r));
	cr_assert_eq(stats(&s).held_bytes, 0);
	drop(&s);
	file_free(&f);
}

Test(rcur, grew_after_t, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	file_new(&f, "f", MIB + 100, NULL, 0);
	take(&s, &f, 0);
	live_write(&f, f.size - 50, 3 * MIB, 4);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, f.size + 2 * MIB, 128 * KIB);
	cr_assert(rcur_close(r));
	cr_assert_eq(stats(&s).held_bytes, 0);
	drop(&s);
	file_free(&f);
}

Test(rcur, empty_file_released_uncounted, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	file_new(&f, "empty", 0, NULL, 0);
	take(&s, &f, 0);
	r = open_cur(&s, &f);
	cr_assert_eq(rd(r, &f, 0, 4096), 0);
	cr_assert(rcur_close(r));
	/* nothing to save: the T size walk does not count it either */
	cr_assert_eq(stats(&s).released, 0);
	drop(&s);
	file_free(&f);
}

/* ---- several handles, several views ---------------------------------- */

struct reader {
	struct snap *s;
	struct file *f;
	int pattern;
	unsigned eio;
};

/* One handle; EIO is the G3 answer for a block another handle saved and
 * a writer changed since; every byte served is T's. */
static void *reader_main(void *arg)
{
	struct reader *x = arg;
	struct rcur *r = open_cur(x->s, x->f);
	size_t step = x->pattern == 0 ? 10 * KIB : x->pattern == 1 ? MIB
								 : 4 * KIB;
	uint64_t size = x->f->size;
	uint8_t *buf = malloc(step);

	for (uint64_t k = 0; k * step < size; k++) {
		uint64_t off = x->pattern == 2 ? (size - 1) / step * step -
						 k * step : k * step;
		ssize_t n = rcur_read(r, buf, step, off);

		if (n == -EIO) {
			x->eio++;
			continue;
		}
		cr_assert_geq(n, 0);
		cr_assert(!memcmp(buf, x->f->t + off, (size_t)n));
	}
	free(buf);
	rcur_close(r);
	return NULL;
}

struct writer {
	struct file *f;
	atomic_bool stop;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned seed = 7;

	while (!atomic_load(&w->stop))
		live_write(w->f, (uint64_t)rand_r(&seed) % (w->f->size - 4096),
			   4096, seed);
	return NULL;
}

Test(rcur, concurrent_handles, .init = setup, .fini = teardown,
     .timeout = 120)
{
	struct reader rs[3];
	struct writer w;
	pthread_t rt[3], wt;
	struct file f;
	struct snap s;

	file_new(&f, "f", 16 * MIB + 4321, NULL, 0);
	take(&s, &f, 0);
	w = (struct writer){ .f = &f };
	pthread_create(&wt, NULL, writer_main, &w);
	for (int k = 0; k < 3; k++) {
		rs[k] = (struct reader){ &s, &f, k, 0 };
		pthread_create(&rt[k], NULL, reader_main, &rs[k]);
	}
	for (int k = 0; k < 3; k++)
		pthread_join(rt[k], NULL);
	atomic_store(&w.stop, true);
	pthread_join(wt, NULL);
	/* every block was saved by some handle: EIO only after a save */
	cr_assert(released(&s), "eio %u %u %u", rs[0].eio, rs[1].eio,
		  rs[2].eio);
	cr_assert_eq(stats(&s).held_bytes, 0);
	cr_assert_eq(stats(&s).saved_bytes, f.size);
	drop(&s);
	file_free(&f);
}

Test(rcur, several_views_save_nothing, .init = setup, .fini = teardown)
{
	struct file f;
	struct snap s;
	struct rcur *r;

	file_new(&f, "f", 20 * MIB, NULL, 0);
	take(&s, &f, CKPT_KEEP);
	ckpt_view_attach(s.ck);
	ckpt_view_attach(s.ck);
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, f.size, 64 * KIB);
	cr_assert_not(rcur_close(r), "released while two views are mounted");
	cr_assert_eq(stats(&s).saved_blocks, 0);
	cr_assert(write_captures(&s, &f, 0));
	r = open_cur(&s, &f);
	read_forward(r, &f, 0, 16 * MIB, 64 * KIB);
	cr_assert_eq(stats(&s).saved_blocks, 0);
	ckpt_view_detach(s.ck);	/* one view left: the window catches up */
	read_forward(r, &f, 16 * MIB, 17 * MIB, 64 * KIB);
	cr_assert_geq(stats(&s).saved_blocks, 9 * MIB / BS - 1);
	read_forward(r, &f, 17 * MIB, f.size, 64 * KIB);
	cr_assert(rcur_close(r));
	ckpt_view_detach(s.ck);
	drop(&s);
	file_free(&f);
}
