/* Unit tests for snapshot/cobj.c: capture before change, validated view
 * reads, saved marking and release, xattrs, dead and new objects, and
 * concurrency stress runs through the real ckpt hooks (cobj.h rules 1-6). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/ckpt.h"
#include "snapshot/cobj.h"
#include "snapshot/pstore.h"

#define MIB (1024u * 1024u)
#define ANY UINT64_MAX

static char dir[64];
static struct pstore *ps;
static struct cobj_table *t;
static unsigned bs;
static bool retain;
static atomic_uint kept;	/* descriptors kept (cobj.h rule 6) */
static unsigned kept_max;	/* the budget of the next table */

/* A live file: its path, a writable fd and the O_PATH reference. */
struct obj {
	char path[128];
	int rw;
	struct cobj_ref ref;
};

static void setup(void)
{
	strcpy(dir, "/tmp/swafs-cobj-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	ps = NULL;
	t = NULL;
	atomic_store(&kept, 0);
	kept_max = 0;
}

static void teardown(void)
{
	char cmd[128];

	cobj_table_free(t);
	pstore_free(ps);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void make_store(uint64_t mem_max, uint64_t disk_max)
{
	struct pstore_limits lim = { .mem_max = mem_max,
				     .disk_max = disk_max };

	cr_assert_eq(pstore_create(dir, &lim, &ps), 0);
}

static void make_table(unsigned block_size, bool retain_all)
{
	struct cobj_table_opts o = { .block_size = block_size,
				     .retain_all = retain_all,
				     .kept = &kept, .kept_max = kept_max };

	if (!ps)
		make_store(64 * MIB, 256 * MIB);
	o.store = ps;
	bs = block_size;
	retain = retain_all;
	cr_assert_eq(cobj_table_create(&o, &t), 0);
}

/* Free the table: every pre-image it held goes with it.  The store goes
 * too, so the next table's counters start from zero. */
static void drop_table(void)
{
	struct pstore_stats st;

	cobj_table_free(t);
	t = NULL;
	pstore_stats(ps, &st);
	cr_assert_eq(st.records, 0, "table freed with %lu records left",
		     (unsigned long)st.records);
	pstore_free(ps);
	ps = NULL;
}

/* Byte off of content generation seed: noise, so lz4 cannot fake it. */
static uint8_t pat(uint64_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ull ^
		     (seed + 1) * 0xd1b54a32d192ed03ull;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)(x >> (8 * (off & 7)));
}

static void fill(uint8_t *buf, uint64_t off, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(seed, off + i);
}

static void ref_of(struct obj *o)
{
	struct stat st;

	o->ref = (struct cobj_ref){ .fd = -1 };
	o->ref.fd = open(o->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	cr_assert_geq(o->ref.fd, 0, "O_PATH open %s", o->path);
	cr_assert_eq(fstatat(o->ref.fd, "", &st,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW), 0);
	o->ref.dev = st.st_dev;
	o->ref.ino = st.st_ino;
}

/* A file of size bytes of generation seed. */
static void obj_make(struct obj *o, const char *name, uint64_t size,
		     uint64_t seed)
{
	uint8_t *buf = malloc(size ? size : 1);

	snprintf(o->path, sizeof(o->path), "%s/%s", dir, name);
	o->rw = open(o->path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(o->rw, 0);
	fill(buf, 0, size, seed);
	cr_assert_eq(pwrite(o->rw, buf, size, 0), (ssize_t)size);
	free(buf);
	ref_of(o);
}

static void obj_close(struct obj *o)
{
	if (o->rw >= 0)
		close(o->rw);
	if (o->ref.fd >= 0)
		close(o->ref.fd);
	o->rw = o->ref.fd = -1;
}

static struct cobj *get(struct obj *o)
{
	struct cobj *c;

	cr_assert_eq(cobj_get(t, &o->ref, &c), 0);
	return c;
}

/* The live tree's write: capture first, then change (rule 1). */
static void write_through(struct obj *o, uint64_t off, size_t len,
			  uint64_t seed)
{
	uint8_t *buf = malloc(len);

	cr_assert_eq(cobj_capture_range(t, get(o), &o->ref, off, len), 0);
	fill(buf, off, len, seed);
	cr_assert_eq(pwrite(o->rw, buf, len, (off_t)off), (ssize_t)len);
	free(buf);
}

static void truncate_through(struct obj *o, uint64_t size)
{
	cr_assert_eq(cobj_capture_range(t, get(o), &o->ref, size, UINT64_MAX),
		     0);
	cr_assert_eq(ftruncate(o->rw, (off_t)size), 0);
}

/* A readable descriptor of the live object, as a view opens it. */
static int live_fd(struct obj *o)
{
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	return fd;
}

/* Read [off, off+len) of c through the view API and compare with
 * generation seed, the T size being tsize. */
static void expect_t(struct cobj *c, int fd, uint64_t off, size_t len,
		     uint64_t seed, uint64_t tsize)
{
	uint8_t *buf = malloc(len + 1), *want = malloc(len + 1);
	size_t n = off >= tsize ? 0 : (size_t)(tsize - off < len ? tsize - off
								 : len);
	ssize_t got;

	cobj_view_open(c);
	got = cobj_read(t, c, fd, buf, len, off);
	cobj_view_close(t, c);
	cr_assert_eq(got, (ssize_t)n, "read [%lu, +%zu): %zd, want %zu",
		     (unsigned long)off, len, got, n);
	fill(want, off, n, seed);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(buf[i], want[i],
			     "byte %lu: %02x, T had %02x (bs %u)",
			     (unsigned long)(off + i), buf[i], want[i], bs);
	free(buf);
	free(want);
}

static ssize_t read_at(struct cobj *c, int fd, uint64_t off, size_t len,
		       uint8_t *buf)
{
	return cobj_read(t, c, fd, buf, len, off);
}

/* Invariants that hold after every step, whatever the test does. */
static void check_sane(uint64_t want_records, uint64_t want_captured)
{
	struct cobj_stats cs;
	struct pstore_stats st;

	cobj_table_stats(t, &cs);
	pstore_stats(ps, &st);
	cr_assert_eq(st.puts, cs.captured_blocks,
		     "every captured block is one store put: puts %lu "
		     "captured %lu", (unsigned long)st.puts,
		     (unsigned long)cs.captured_blocks);
	cr_assert_eq(st.records, st.puts - st.drops);
	cr_assert_leq(st.records, cs.captured_blocks);
	cr_assert_leq(st.raw_bytes, cs.captured_bytes);
	cr_assert_leq(cs.captured_bytes, cs.captured_blocks * bs);
	cr_assert_leq(cs.released, cs.objects);
	cr_assert_eq(st.integrity_errors, 0);
	if (retain) {
		cr_assert_eq(st.records, cs.captured_blocks);
		cr_assert_eq(st.raw_bytes, cs.captured_bytes);
		cr_assert_eq(cs.saved_blocks, 0);
		cr_assert_eq(cs.released, 0);
	}
	if (want_records != ANY)
		cr_assert_eq(st.records, want_records, "records %lu, want %lu",
			     (unsigned long)st.records,
			     (unsigned long)want_records);
	if (want_captured != ANY)
		cr_assert_eq(cs.captured_blocks, want_captured,
			     "captured %lu, want %lu",
			     (unsigned long)cs.captured_blocks,
			     (unsigned long)want_captured);
}

static uint64_t nblk(uint64_t size)
{
	return (size + bs - 1) / bs;
}

/* ---- capture and read back ---- */

Test(cobj, overwrite_reads_t_bytes, .init = setup, .fini = teardown)
{
	static const unsigned sizes[] = { 512, 4096, 65536 };

	for (unsigned k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		uint64_t size = 5ull * sizes[k] + 123, captured = 0;
		struct obj o;
		struct cobj *c;
		int fd;

		make_table(sizes[k], false);
		obj_make(&o, "f", size, 1);
		c = get(&o);
		cr_assert_eq(cobj_flags(c), 0);
		cr_assert_eq(cobj_stat(c)->st_size, (off_t)size);
		/* partial first and second block */
		write_through(&o, bs / 2, bs, 2);
		check_sane(2, captured += 2);
		/* the partial last block, past the T size too */
		write_through(&o, size - 7, 100, 3);
		check_sane(3, captured += 1);
		/* one byte inside a middle block */
		write_through(&o, 3 * bs + 1, 1, 4);
		check_sane(4, captured += 1);
		fd = live_fd(&o);
		expect_t(c, fd, 0, size, 1, size);
		expect_t(c, fd, 0, size + 4096, 1, size);
		for (uint64_t off = 0; off < size; off += bs / 3 + 1)
			expect_t(c, fd, off, bs + 5, 1, size);
		expect_t(c, fd, size - 1, 10, 1, size);
		expect_t(c, fd, size, 10, 1, size);
		/* the rest of the file */
		write_through(&o, 0, size, 5);
		check_sane(nblk(size), captured = nblk(size));
		expect_t(c, fd, 0, size, 1, size);
		close(fd);
		obj_close(&o);
		drop_table();
	}
}

Test(cobj, appends_cost_nothing, .init = setup, .fini = teardown)
{
	struct obj o;
	struct cobj *c;
	struct cobj_stats cs;
	int fd;

	make_table(4096, false);
	obj_make(&o, "f", 4 * 4096, 1);
	c = get(&o);
	write_through(&o, 4 * 4096, 3 * 4096, 2);
	write_through(&o, 9 * 4096 + 5, 10, 3);
	truncate_through(&o, 20 * 4096);
	check_sane(0, 0);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.captured_bytes, 0);
	fd = live_fd(&o);
	expect_t(c, fd, 0, 30 * 4096, 1, 4 * 4096);
	cr_assert_eq(cobj_read(t, c, fd, &cs, 1, 4 * 4096), 0);
	/* the T blocks are still captured on their first change */
	write_through(&o, 4096, 1, 4);
	check_sane(1, 1);
	expect_t(c, fd, 0, 4 * 4096, 1, 4 * 4096);
	close(fd);
	obj_close(&o);
}

Test(cobj, empty_file_has_nothing_to_capture, .init = setup,
     .fini = teardown)
{
	struct obj o;
	struct cobj *c;
	char b;

	make_table(4096, false);
	obj_make(&o, "f", 0, 1);
	c = get(&o);
	write_through(&o, 0, 5000, 2);
	check_sane(0, 0);
	cobj_view_open(c);
	cr_assert_eq(cobj_read(t, c, -1, &b, 1, 0), 0);
	cobj_mark_saved(t, c, 0, 10);
	cr_assert(cobj_view_close(t, c), "an empty file is saved at once");
	obj_close(&o);
}

Test(cobj, hole_at_t_is_recorded_as_hole, .init = setup, .fini = teardown)
{
	static const unsigned sizes[] = { 4096, 65536 };

	for (unsigned k = 0; k < 2; k++) {
		uint64_t size = 8ull * sizes[k];
		uint8_t *buf = malloc(size), *zero = calloc(1, size);
		struct obj o;
		struct cobj *c;
		int fd;

		make_table(sizes[k], false);
		snprintf(o.path, sizeof(o.path), "%s/sparse", dir);
		o.rw = open(o.path, O_CREAT | O_TRUNC | O_RDWR, 0644);
		cr_assert_geq(o.rw, 0);
		cr_assert_eq(ftruncate(o.rw, (off_t)size), 0);
		fill(buf, 0, bs, 1);
		cr_assert_eq(pwrite(o.rw, buf, bs, 0), bs);
		fill(buf, 7 * bs, bs, 1);
		cr_assert_eq(pwrite(o.rw, buf, bs, 7 * bs), bs);
		ref_of(&o);
		c = get(&o);
		fd = live_fd(&o);
		/* the live file reports the hole before the change */
		cr_assert_eq(lseek(fd, bs, SEEK_DATA), (off_t)(7 * bs));

		write_through(&o, 3 * bs + 10, 20, 2);
		write_through(&o, 4 * bs, bs, 2);
		check_sane(0, 0);
		cr_assert_eq(read_at(c, fd, 3 * bs, 2 * bs, buf),
			     (ssize_t)(2 * bs));
		cr_assert_eq(memcmp(buf, zero, 2 * bs), 0,
			     "a hole at T reads as zeros");
		/* SEEK_DATA/SEEK_HOLE as at T */
		cr_assert_eq(cobj_seek(t, c, fd, bs, true), (off_t)(7 * bs));
		cr_assert_eq(cobj_seek(t, c, fd, 0, false), (off_t)bs);
		cr_assert_eq(cobj_seek(t, c, fd, 3 * bs, false),
			     (off_t)(3 * bs));
		/* a data block next to it is captured as data */
		write_through(&o, 7 * bs, 1, 3);
		check_sane(1, 1);
		fill(zero + 7 * bs, 7 * bs, bs, 1);
		fill(zero, 0, bs, 1);
		cr_assert_eq(read_at(c, fd, 0, size, buf), (ssize_t)size);
		cr_assert_eq(memcmp(buf, zero, size), 0);
		close(fd);
		obj_close(&o);
		free(buf);
		free(zero);
		drop_table();
	}
}

Test(cobj, truncate_shrink_reads_t_bytes, .init = setup, .fini = teardown)
{
	uint64_t size = 5 * 4096 + 77;
	struct obj o;
	struct cobj *c;
	int fd;

	make_table(4096, false);
	obj_make(&o, "f", size, 1);
	c = get(&o);
	truncate_through(&o, 4096 + 10);
	check_sane(5, 5);	/* blocks 1..5 */
	fd = live_fd(&o);
	expect_t(c, fd, 0, size, 1, size);
	truncate_through(&o, 0);
	check_sane(6, 6);
	/* grown again with new bytes: the view still shows T */
	write_through(&o, 0, size + 9000, 7);
	check_sane(6, 6);
	expect_t(c, fd, 0, size, 1, size);
	expect_t(c, fd, 4000, 300, 1, size);
	cr_assert_eq(cobj_stat(c)->st_size, (off_t)size);
	close(fd);
	obj_close(&o);
}

Test(cobj, dead_object_reads_without_live_file, .init = setup,
     .fini = teardown)
{
	uint64_t size = 3 * 4096 + 5;
	struct obj o, l, h;
	struct cobj *c, *cl, *ch;

	make_table(4096, false);
	/* all objects exist at T: none may reuse the inode of another */
	obj_make(&o, "f", size, 1);
	obj_make(&h, "h", 0, 1);
	cr_assert_eq(ftruncate(h.rw, 3 * 4096), 0);
	snprintf(l.path, sizeof(l.path), "%s/ln", dir);
	cr_assert_eq(symlink("some/target", l.path), 0);
	l.rw = -1;
	ref_of(&l);
	ch = get(&h);
	cl = get(&l);
	cr_assert_eq(fsetxattr(o.rw, "user.k", "v1", 2, 0), 0);
	c = get(&o);
	write_through(&o, 4096, 10, 2);	/* one block already captured */
	cr_assert_eq(cobj_capture_all(t, c, &o.ref), 0);
	cr_assert(cobj_flags(c) & COBJ_DEAD);
	cr_assert(cobj_flags(c) & COBJ_XATTR);
	check_sane(4, 4);
	cr_assert_eq(unlink(o.path), 0);
	obj_close(&o);
	expect_t(c, -1, 0, size, 1, size);
	expect_t(c, -1, 4000, 200, 1, size);
	/* a second capture_all of a dead object does nothing */
	cr_assert_eq(cobj_capture_all(t, c, &o.ref), 0);
	check_sane(4, 4);

	/* a symlink's target and a hole-only file */
	cr_assert_null(cobj_link(cl));
	cr_assert_eq(cobj_capture_all(t, cl, &l.ref), 0);
	cr_assert_str_eq(cobj_link(cl), "some/target");
	cr_assert_eq(unlink(l.path), 0);
	obj_close(&l);
	cr_assert_str_eq(cobj_link(cl), "some/target");
	cr_assert_eq(cobj_read(t, cl, -1, &size, 1, 0), -EISDIR);

	cr_assert_eq(cobj_capture_all(t, ch, &h.ref), 0);
	check_sane(4, 4);	/* holes: no records */
	cr_assert_eq(unlink(h.path), 0);
	obj_close(&h);
	{
		uint8_t buf[3 * 4096], zero[3 * 4096] = { 0 };

		cr_assert_eq(read_at(ch, -1, 0, sizeof(buf), buf),
			     (ssize_t)sizeof(buf));
		cr_assert_eq(memcmp(buf, zero, sizeof(buf)), 0);
	}
}

/* An open-unlinked file may still be written: a block the view saved
 * before the last unlink must never be served from the live file again. */
Test(cobj, dead_object_saved_block_is_eio, .init = setup, .fini = teardown)
{
	uint64_t size = 3 * 4096;
	uint8_t buf[4096];
	struct obj o;
	struct cobj *c;
	int fd;

	make_table(4096, false);
	obj_make(&o, "f", size, 1);
	c = get(&o);
	fd = live_fd(&o);
	cobj_view_open(c);
	cr_assert_eq(read_at(c, fd, 0, 4096, buf), 4096);
	cobj_mark_saved(t, c, 0, 0);
	cr_assert_eq(cobj_capture_all(t, c, &o.ref), 0);
	check_sane(2, 2);
	cr_assert_eq(unlink(o.path), 0);
	/* the application still has it open and writes */
	write_through(&o, 0, 3 * 4096, 9);
	check_sane(2, 2);
	cr_assert_eq(read_at(c, fd, 0, 4096, buf), -EIO,
		     "post-T bytes of a dead object served");
	expect_t(c, fd, 4096, 2 * 4096, 1, size);
	cobj_view_close(t, c);
	close(fd);
	obj_close(&o);
}

/*
 * The inode number of a dead object is reused by a new file (ext4 does
 * this at once); the live tree marks the new file new and writes it.  The
 * dead object's T image must stay intact.  The reuse is simulated with a
 * ref naming the dead (dev, ino) and another file's descriptor.
 */
Test(cobj, dead_inode_number_reused, .init = setup, .fini = teardown)
{
	uint64_t size = 2 * 4096;
	struct obj o, n;
	struct cobj *c;
	struct cobj_ref r = { 0 };

	make_table(4096, false);
	obj_make(&o, "f", size, 1);
	obj_make(&n, "g", 4 * 4096, 3);
	c = get(&o);
	cr_assert_eq(cobj_capture_all(t, c, &o.ref), 0);
	r = (struct cobj_ref){ .dev = o.ref.dev, .ino = o.ref.ino,
			       .fd = n.ref.fd };
	cr_assert_eq(unlink(o.path), 0);
	obj_close(&o);
	cr_assert_eq(cobj_mark_new(t, &r), 0);
	cr_assert_eq(cobj_capture_range(t, get(&(struct obj){ .ref = r }), &r,
					0, UINT64_MAX), 0);
	cr_assert_eq(cobj_capture_xattrs(t, c, &r), 0);
	check_sane(2, 2);
	cr_assert(cobj_flags(c) & COBJ_DEAD);
	expect_t(c, -1, 0, size, 1, size);
	cr_assert_eq(cobj_stat(c)->st_size, (off_t)size);
	obj_close(&n);
}

Test(cobj, first_preimage_wins, .init = setup, .fini = teardown)
{
	struct obj o;
	struct cobj *c;
	int fd;

	make_table(4096, false);
	obj_make(&o, "f", 4 * 4096, 1);
	c = get(&o);
	write_through(&o, 2 * 4096, 4096, 2);
	check_sane(1, 1);
	write_through(&o, 2 * 4096 + 100, 50, 3);
	write_through(&o, 2 * 4096, 4096, 4);
	check_sane(1, 1);
	fd = live_fd(&o);
	expect_t(c, fd, 0, 4 * 4096, 1, 4 * 4096);
	/* cobj_get finds the same entry */
	cr_assert_eq(get(&o), c);
	cr_assert_eq(cobj_find(t, o.ref.dev, o.ref.ino), c);
	cr_assert_null(cobj_find(t, o.ref.dev, o.ref.ino + 1));
	close(fd);
	obj_close(&o);
}

/* ---- saved blocks, retain, release ---- */

Test(cobj, saved_block_is_not_captured_and_reads_eio, .init = setup,
     .fini = teardown)
{
	uint8_t buf[4 * 4096];
	struct cobj_stats cs;
	struct obj o;
	struct cobj *c;
	int fd;

	make_table(4096, false);
	obj_make(&o, "f", 4 * 4096, 1);
	c = get(&o);
	fd = live_fd(&o);
	cobj_view_open(c);
	/* block 1 served and saved while unchanged */
	cr_assert_eq(read_at(c, fd, 4096, 4096, buf), 4096);
	cobj_mark_saved(t, c, 1, 1);
	/* block 2 captured, then saved: its pre-image is dropped */
	write_through(&o, 2 * 4096, 10, 2);
	check_sane(1, 1);
	cobj_mark_saved(t, c, 2, 2);
	check_sane(0, 1);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.saved_blocks, 2);
	/* unchanged saved block: still T */
	expect_t(c, fd, 4096, 4096, 1, 4 * 4096);
	/* a write to a saved block costs nothing ... */
	write_through(&o, 4096, 4096, 3);
	check_sane(0, 1);
	/* ... and the view can never serve it again */
	cr_assert_eq(read_at(c, fd, 4096, 4096, buf), -EIO);
	cr_assert_eq(read_at(c, fd, 4096 + 100, 10, buf), -EIO);
	cr_assert_eq(read_at(c, fd, 2 * 4096, 4096, buf), -EIO);
	cr_assert_eq(read_at(c, fd, 0, sizeof(buf), buf), -EIO,
		     "a range over a dirty block fails as a whole");
	expect_t(c, fd, 0, 4096, 1, 4 * 4096);
	expect_t(c, fd, 3 * 4096, 4096, 1, 4 * 4096);
	/* marking twice counts once */
	cobj_mark_saved(t, c, 1, 2);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.saved_blocks, 2);
	cr_assert(!cobj_view_close(t, c), "blocks 0 and 3 are unsaved");
	close(fd);
	obj_close(&o);
}

Test(cobj, retain_all_keeps_preimages, .init = setup, .fini = teardown)
{
	struct cobj_stats cs;
	struct obj o;
	struct cobj *c;
	int fd;

	make_table(4096, true);
	obj_make(&o, "f", 4 * 4096, 1);
	c = get(&o);
	fd = live_fd(&o);
	cobj_view_open(c);
	write_through(&o, 0, 2 * 4096, 2);
	cobj_mark_saved(t, c, 0, 3);
	check_sane(2, 2);
	write_through(&o, 0, 4 * 4096, 3);
	check_sane(4, 4);
	cobj_mark_saved(t, c, 0, 3);
	expect_t(c, fd, 0, 4 * 4096, 1, 4 * 4096);
	expect_t(c, fd, 0, 4 * 4096, 1, 4 * 4096);
	cr_assert(!cobj_view_close(t, c), "retain all never releases a file");
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.released, 0);
	expect_t(c, fd, 0, 4 * 4096, 1, 4 * 4096);
	close(fd);
	obj_close(&o);
}

static void save_all(struct cobj *c, int fd, uint64_t size)
{
	uint8_t *buf = malloc(size);

	cr_assert_eq(read_at(c, fd, 0, size, buf), (ssize_t)size);
	cobj_mark_saved(t, c, 0, UINT64_MAX);
	free(buf);
}

Test(cobj, release_then_change_reads_eio, .init = setup, .fini = teardown)
{
	uint64_t size = 4 * 4096 + 100;
	uint8_t buf[64];
	struct cobj_stats cs;
	struct obj o;
	struct cobj *c;
	int fd;

	make_table(4096, false);
	obj_make(&o, "f", size, 1);
	c = get(&o);
	fd = live_fd(&o);
	cobj_view_open(c);
	cobj_view_open(c);
	save_all(c, fd, size);
	cr_assert(!cobj_view_close(t, c), "a handle is still open");
	cr_assert(!(cobj_flags(c) & COBJ_RELEASED));
	cr_assert(cobj_view_close(t, c), "last close of a saved file releases");
	cr_assert(cobj_flags(c) & COBJ_RELEASED);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.released, 1);
	cr_assert_eq(cs.saved_blocks, nblk(size));
	check_sane(0, 0);
	/* unchanged since T: still served */
	expect_t(c, fd, 0, size, 1, size);
	/* a later change costs nothing and marks it changed */
	write_through(&o, 3 * 4096, 1, 2);
	truncate_through(&o, 10);
	check_sane(0, 0);
	cr_assert(cobj_flags(c) & COBJ_CHANGED);
	cobj_view_open(c);
	cr_assert_eq(read_at(c, fd, 0, sizeof(buf), buf), -EIO);
	cr_assert_eq(read_at(c, fd, 3 * 4096, sizeof(buf), buf), -EIO);
	cr_assert(!cobj_view_close(t, c), "released once only");
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.released, 1);
	close(fd);
	obj_close(&o);
}

/* A file read whole and closed through a view: released. */
static struct cobj *released(struct obj *o, uint64_t size)
{
	struct cobj *c = get(o);
	int fd = live_fd(o);

	cobj_view_open(c);
	save_all(c, fd, size);
	cr_assert(cobj_view_close(t, c));
	close(fd);
	return c;
}

/*
 * Rule 6: the last name of a released file goes.  An empty one is dead
 * at once (no descriptor); one with data keeps a descriptor, through which
 * its T bytes still read, until the table goes; past the budget the next
 * one is lost and reads fail.  A kept file changed later fails too.
 */
Test(cobj, released_then_unlinked_kept_within_budget, .init = setup,
     .fini = teardown)
{
	uint64_t size = 3 * 4096 + 7;
	struct obj e, a, b;
	struct cobj *ce, *ca, *cb;
	struct cobj_ref gone = { .fd = -1 };
	uint8_t buf[64];
	int fd;

	kept_max = 1;
	make_table(4096, false);
	obj_make(&e, "e", 0, 1);
	obj_make(&a, "a", size, 2);
	obj_make(&b, "b", size, 3);
	cr_assert_eq(fsetxattr(e.rw, "user.k", "v", 1, 0), 0);
	ce = released(&e, 0);
	ca = released(&a, size);
	cb = released(&b, size);
	cr_assert_eq(cobj_capture_all(t, ce, &e.ref), 0);
	cr_assert_eq(cobj_flags(ce) & (COBJ_DEAD | COBJ_XATTR | COBJ_KEPT),
		     COBJ_DEAD | COBJ_XATTR);
	cr_assert_eq(cobj_kept_fd(ce), -1);
	cr_assert_eq(cobj_xattr_read(ce, "user.k", (char *)buf, sizeof(buf)),
		     1);
	cr_assert_eq(cobj_capture_all(t, ca, &a.ref), 0);
	cr_assert(cobj_flags(ca) & COBJ_KEPT);
	cr_assert_eq(atomic_load(&kept), 1);
	cr_assert_eq(cobj_capture_all(t, cb, &b.ref), 0);
	cr_assert_eq(cobj_flags(cb) & (COBJ_KEPT | COBJ_LOST | COBJ_CHANGED),
		     COBJ_LOST | COBJ_CHANGED);
	cr_assert_eq(atomic_load(&kept), 1, "past the budget: nothing kept");
	cr_assert_eq(unlink(a.path), 0);
	cr_assert_eq(unlink(b.path), 0);
	obj_close(&b);
	cr_assert_eq(read_at(cb, -1, 0, sizeof(buf), buf), -EIO);
	/* a's only reference left is the kept descriptor */
	close(a.rw);
	a.rw = -1;
	obj_close(&a);
	snprintf(a.path, sizeof(a.path), "/proc/self/fd/%d", cobj_kept_fd(ca));
	fd = live_fd(&a);
	expect_t(ca, fd, 0, size, 2, size);
	gone.dev = cobj_stat(ca)->st_dev;
	gone.ino = cobj_stat(ca)->st_ino;
	/* written after release through a descriptor still open */
	cr_assert_eq(cobj_capture_range(t, ca, &gone, 0, 1), 0);
	cr_assert(cobj_flags(ca) & COBJ_CHANGED);
	cr_assert_eq(read_at(ca, fd, 0, sizeof(buf), buf), -EIO);
	close(fd);
	obj_close(&e);
	cobj_table_free(t);
	t = NULL;
	cr_assert_eq(atomic_load(&kept), 0, "the table gave its descriptor back");
}

/*
 * A block changed after T (captured, or saved then changed) and then saved
 * has no pre-image left.  Releasing the file must not turn its live,
 * post-T bytes back into servable T data (G3).  The usual flow: the view
 * streams the file while the application writes it, the handle closes,
 * something reads the view file again.
 */
Test(cobj, release_after_change_never_serves_post_t, .init = setup,
     .fini = teardown)
{
	uint64_t size = 4 * 4096;
	uint8_t buf[4096], want[4096];
	struct obj o;
	struct cobj *c;
	ssize_t n;
	int fd;

	make_table(4096, false);
	obj_make(&o, "f", size, 1);
	c = get(&o);
	fd = live_fd(&o);
	cobj_view_open(c);
	write_through(&o, 4096, 4096, 2);	/* captured, pre-image kept */
	expect_t(c, fd, 0, size, 1, size);	/* the view serves T */
	cobj_mark_saved(t, c, 0, 0);
	write_through(&o, 0, 10, 3);		/* saved, then changed */
	cobj_mark_saved(t, c, 1, 3);		/* the view moved past */
	check_sane(0, 1);
	cr_assert_eq(read_at(c, fd, 4096, 4096, buf), -EIO);
	cr_assert_eq(read_at(c, fd, 0, 4096, buf), -EIO);
	cr_assert(cobj_view_close(t, c));
	/* reopened after release: blocks 0 and 1 changed since T */
	cobj_view_open(c);
	fill(want, 4096, 4096, 1);
	n = read_at(c, fd, 4096, 4096, buf);
	cr_assert(n < 0 || memcmp(buf, want, 4096) == 0,
		  "block 1 after release: %zd bytes, post-T data served as T",
		  n);
	cr_assert_eq(n, -EIO);
	fill(want, 0, 4096, 1);
	n = read_at(c, fd, 0, 4096, buf);
	cr_assert(n < 0 || memcmp(buf, want, 4096) == 0,
		  "block 0 after release: %zd bytes, post-T data served as T",
		  n);
	cr_assert_eq(n, -EIO);
	cobj_view_close(t, c);
	close(fd);
	obj_close(&o);
}

/* ---- xattrs, new objects, failures ---- */

static const char *xattr_find(const char *rec, size_t len, const char *name,
			      uint32_t *vlen)
{
	size_t o = 0;

	while (o < len) {
		const char *n = rec + o;
		size_t nl = strnlen(n, len - o);
		const unsigned char *l;

		cr_assert_leq(o + nl + 1 + 4, len, "record overruns");
		l = (const unsigned char *)n + nl + 1;
		*vlen = l[0] | l[1] << 8 | l[2] << 16 | (uint32_t)l[3] << 24;
		cr_assert_leq(o + nl + 1 + 4 + *vlen, len, "value overruns");
		if (!strcmp(n, name))
			return (const char *)l + 4;
		o += nl + 1 + 4 + *vlen;
	}
	return NULL;
}

Test(cobj, xattr_capture_round_trip, .init = setup, .fini = teardown)
{
	static const char bin[] = { 'a', 0, 'b', (char)0xff };
	char big[3000];
	const char *rec, *v;
	uint32_t vlen;
	size_t len;
	struct obj o;
	struct cobj *c;

	make_table(4096, false);
	obj_make(&o, "f", 100, 1);
	memset(big, 'z', sizeof(big));
	cr_assert_eq(setxattr(o.path, "user.a", "one", 3, 0), 0,
		     "user xattrs on %s: %s", dir, strerror(errno));
	cr_assert_eq(setxattr(o.path, "user.bin", bin, sizeof(bin), 0), 0);
	cr_assert_eq(setxattr(o.path, "user.big", big, sizeof(big), 0), 0);
	cr_assert_eq(setxattr(o.path, "user.empty", "", 0, 0), 0);
	c = get(&o);
	cr_assert(!(cobj_flags(c) & COBJ_XATTR));
	cr_assert_eq(cobj_capture_xattrs(t, c, &o.ref), 0);
	cr_assert(cobj_flags(c) & COBJ_XATTR);
	cr_assert_eq(setxattr(o.path, "user.a", "two", 3, 0), 0);
	cr_assert_eq(removexattr(o.path, "user.bin"), 0);
	cr_assert_eq(setxattr(o.path, "user.c", "new", 3, 0), 0);
	/* a second capture keeps the first image */
	cr_assert_eq(cobj_capture_xattrs(t, c, &o.ref), 0);
	rec = cobj_xattrs(c, &len);
	cr_assert_not_null(rec);
	v = xattr_find(rec, len, "user.a", &vlen);
	cr_assert(v && vlen == 3 && !memcmp(v, "one", 3));
	v = xattr_find(rec, len, "user.bin", &vlen);
	cr_assert(v && vlen == sizeof(bin) && !memcmp(v, bin, sizeof(bin)));
	v = xattr_find(rec, len, "user.big", &vlen);
	cr_assert(v && vlen == sizeof(big) && !memcmp(v, big, sizeof(big)));
	v = xattr_find(rec, len, "user.empty", &vlen);
	cr_assert(v && vlen == 0);
	cr_assert_null(xattr_find(rec, len, "user.c", &vlen));
	/* the reader views use answers as getxattr/listxattr would */
	{
		char out[8], names[256];
		ssize_t n = cobj_xattr_read(c, "user.a", out, sizeof(out));

		cr_assert(n == 3 && !memcmp(out, "one", 3));
		cr_assert_eq(cobj_xattr_read(c, "user.big", NULL, 0),
			     (ssize_t)sizeof(big));
		cr_assert_eq(cobj_xattr_read(c, "user.big", out, sizeof(out)),
			     -ERANGE);
		cr_assert_eq(cobj_xattr_read(c, "user.c", out, sizeof(out)),
			     -ENODATA);
		n = cobj_xattr_read(c, NULL, names, sizeof(names));
		cr_assert_eq(n, cobj_xattr_read(c, NULL, NULL, 0));
		cr_assert(memmem(names, (size_t)n, "user.bin", 9));
		cr_assert_null(memmem(names, (size_t)n, "user.c", 7));
	}
	check_sane(0, 0);	/* xattrs do not use the block store */
	obj_close(&o);
}

Test(cobj, attributes_are_t_attributes, .init = setup, .fini = teardown)
{
	struct obj o;
	struct cobj *c;

	make_table(4096, false);
	obj_make(&o, "f", 10, 1);
	cr_assert_eq(fchmod(o.rw, 0640), 0);
	c = get(&o);
	cr_assert_eq(fchmod(o.rw, 0600), 0);
	cr_assert_eq(ftruncate(o.rw, 5), 0);
	cr_assert_eq(cobj_stat(c)->st_mode & 07777, 0640);
	cr_assert_eq(cobj_stat(c)->st_size, 10);
	cr_assert_eq(cobj_stat(c)->st_ino, o.ref.ino);
	obj_close(&o);
}

Test(cobj, new_objects_are_never_captured, .init = setup, .fini = teardown)
{
	struct obj o;
	struct cobj *c;

	make_table(4096, false);
	obj_make(&o, "f", 4 * 4096, 1);
	cr_assert_eq(setxattr(o.path, "user.a", "one", 3, 0), 0);
	cr_assert_eq(cobj_mark_new(t, &o.ref), 0);
	c = get(&o);
	cr_assert(cobj_flags(c) & COBJ_NEW);
	write_through(&o, 0, 4 * 4096, 2);
	truncate_through(&o, 0);
	cr_assert_eq(cobj_capture_xattrs(t, c, &o.ref), 0);
	cr_assert_eq(cobj_capture_all(t, c, &o.ref), 0);
	check_sane(0, 0);
	cr_assert(!(cobj_flags(c) & (COBJ_XATTR | COBJ_DEAD)));
	cr_assert_null(cobj_xattrs(c, &(size_t){ 0 }));
	obj_close(&o);
}

/*
 * A full store is the caller's to handle: it refuses the change
 * (fail-writes) or invalidates the checkpoint.  The entry itself stays
 * sound: the block that fitted reads its pre-image, the others are still
 * live and unchanged, and a later capture of them works once there is room.
 */
Test(cobj, store_full_leaves_the_entry_sound, .init = setup, .fini = teardown)
{
	uint8_t buf[4096], want[4096];
	struct obj o, p;
	struct cobj *c;
	int fd;

	make_store(4096, 0);	/* one record in memory, no disk */
	make_table(4096, false);
	obj_make(&o, "f", 4 * 4096, 1);
	obj_make(&p, "g", 4096, 1);
	c = get(&o);
	fd = live_fd(&o);
	cr_assert_eq(cobj_capture_range(t, c, &o.ref, 0, 4 * 4096), -ENOSPC);
	cr_assert_not(cobj_flags(c) & COBJ_BROKEN);
	/* nothing was written: every block reads as at T */
	for (int b = 0; b < 4; b++) {
		fill(want, (uint64_t)b * 4096, 4096, 1);
		cr_assert_eq(read_at(c, fd, (uint64_t)b * 4096, 4096, buf), 4096);
		cr_assert_arr_eq(buf, want, 4096, "block %d after ENOSPC", b);
	}
	check_sane(ANY, ANY);
	cr_assert(!(cobj_flags(get(&p)) & COBJ_BROKEN));
	close(fd);
	obj_close(&o);
	obj_close(&p);
}

Test(cobj, bad_block_size, .init = setup, .fini = teardown)
{
	struct cobj_table_opts o = { .block_size = 3000 };
	struct cobj_table *x;

	cr_assert_eq(cobj_table_create(&o, &x), -EINVAL);
	o.block_size = 0;
	cr_assert_eq(cobj_table_create(&o, &x), -EINVAL);
}

/* ---- a deterministic interleaving: saved while a writer waits ---- */

struct racer {
	struct cobj *c;
	struct obj *o;
	atomic_int tid;
	bool write;
};

static void *racer_run(void *p)
{
	struct racer *r = p;

	atomic_store(&r->tid, (int)syscall(SYS_gettid));
	if (r->write)
		write_through(r->o, 4096, 4096, 5);
	else
		cobj_mark_saved(t, r->c, 1, 1);
	return NULL;
}

/* Wait until thread tid sleeps in futex (blocked on the entry's mutex). */
static void wait_in_futex(struct racer *r)
{
	char path[64], buf[64];

	while (!atomic_load(&r->tid))
		usleep(100);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall",
		 atomic_load(&r->tid));
	for (int k = 0; k < 20000; k++) {
		FILE *f = fopen(path, "r");
		bool in = f && fgets(buf, sizeof(buf), f) &&
			  !strncmp(buf, "202 ", 4);	/* x86-64 futex */

		if (f)
			fclose(f);
		if (in)
			return;
		usleep(100);
	}
	cr_assert_fail("thread %d never blocked on the entry lock",
		       atomic_load(&r->tid));
}

/*
 * A writer found block 1 live and waits for the entry lock; meanwhile the
 * view marks block 1 saved.  The writer must then leave it dirty, or the
 * view serves the writer's bytes as T bytes.
 */
Test(cobj, saved_while_writer_waits_is_dirty, .init = setup,
     .fini = teardown)
{
	for (int round = 0; round < 5; round++) {
		struct racer w = { .write = true }, m = { .write = false };
		uint8_t buf[4096], want[4096];
		pthread_t tw, tm;
		struct obj o;
		ssize_t n;
		int fd;

		make_table(4096, false);
		obj_make(&o, "f", 4 * 4096, 1);
		w.o = m.o = &o;
		w.c = m.c = get(&o);
		fd = live_fd(&o);
		cobj_view_open(w.c);
		cobj_lock(w.c);
		pthread_create(&tm, NULL, racer_run, &m);
		wait_in_futex(&m);
		pthread_create(&tw, NULL, racer_run, &w);
		wait_in_futex(&w);
		cobj_unlock(w.c);
		pthread_join(tm, NULL);
		pthread_join(tw, NULL);
		fill(want, 4096, 4096, 1);
		n = read_at(w.c, fd, 4096, 4096, buf);
		cr_assert(n < 0 || memcmp(buf, want, sizeof(buf)) == 0,
			  "round %d: post-T bytes served as T", round);
		cr_assert_eq(n, -EIO);
		check_sane(0, ANY);
		cobj_view_close(t, w.c);
		close(fd);
		obj_close(&o);
		drop_table();
	}
}

/* ---- a deterministic interleaving: a write inside a view's read ---- */

struct paused_read {
	struct cobj *c;
	int fd;
	uint8_t *page;
	ssize_t n;
};

static void *paused_read_run(void *p)
{
	struct paused_read *r = p;

	r->n = cobj_read(t, r->c, r->fd, r->page, 4096, 4096);
	return NULL;
}

/*
 * Rule 3: the view reads block 1 live; its pread is stopped (the
 * destination page is missing under userfaultfd) after the kernel found
 * the page cache page and before it copied it.  A writer captures block 1
 * and overwrites it; the copy then carries post-T bytes, which the
 * validation after the read must catch and replace by the pre-image.
 */
Test(cobj, view_read_racing_capture_revalidates, .init = setup,
     .fini = teardown)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct paused_read r = { 0 };
	struct uffd_msg msg;
	struct pollfd pfd;
	uint8_t want[4096];
	struct uffdio_register reg;
	struct uffdio_copy cp;
	struct obj o;
	pthread_t th;
	void *zero = calloc(1, 4096);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	cr_assert_geq(uffd, 0, "userfaultfd: %s", strerror(errno));
	cr_assert_eq(ioctl(uffd, UFFDIO_API, &api), 0);
	r.page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(r.page, MAP_FAILED);
	reg = (struct uffdio_register){
		.range = { (uintptr_t)r.page, 4096 },
		.mode = UFFDIO_REGISTER_MODE_MISSING };
	cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);

	make_table(4096, false);
	obj_make(&o, "f", 4 * 4096, 1);
	r.c = get(&o);
	r.fd = live_fd(&o);
	cobj_view_open(r.c);
	pthread_create(&th, NULL, paused_read_run, &r);
	pfd = (struct pollfd){ .fd = uffd, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 5000), 1, "the read never faulted");
	cr_assert_eq(read(uffd, &msg, sizeof(msg)), (ssize_t)sizeof(msg));
	cr_assert_eq(msg.event, UFFD_EVENT_PAGEFAULT);
	/* the view's pread is inside the kernel copy: change block 1 now */
	write_through(&o, 4096, 4096, 2);
	check_sane(1, 1);
	cp = (struct uffdio_copy){ .dst = (uintptr_t)r.page,
				   .src = (uintptr_t)zero, .len = 4096 };
	cr_assert_eq(ioctl(uffd, UFFDIO_COPY, &cp), 0);
	pthread_join(th, NULL);
	fill(want, 4096, 4096, 1);
	cr_assert_eq(r.n, 4096);
	cr_assert_eq(memcmp(r.page, want, 4096), 0,
		     "a read that saw the post-T write returned it as T");
	cobj_view_close(t, r.c);
	close(r.fd);
	obj_close(&o);
	munmap(r.page, 4096);
	close(uffd);
	free(zero);
}

/* ---- concurrency stress through the real ckpt hooks ---- */

#define SBLOCKS 64
#define SBS 4096u
#define SSIZE ((uint64_t)SBLOCKS * SBS)
#define WRITERS 3
#define READERS 3

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SWAFS_STRESS_MS (run length) and SWAFS_ROUND_MS (one checkpoint's
 * share of it) tune the stress runs. */
static int stress_ms(void)
{
	const char *e = getenv("SWAFS_STRESS_MS");

	return e ? atoi(e) : 2500;
}

struct stress {
	struct ckpt_set *s;
	struct obj o;
	uint8_t tb[SSIZE];		/* T content of this round */
	bool saved_mode;
	char name[32];			/* this round's checkpoint */
	int round;
	atomic_bool stop, quit;
	atomic_uchar changed[SBLOCKS];	/* a writer's hook ran on it */
	atomic_uchar saved[SBLOCKS];	/* a reader marked it saved */
	atomic_ulong reads, good, eios, writes, bad;
	pthread_mutex_t msg_lock;
	char msg[256];
	pthread_barrier_t go, done;
};

static void stress_fail(struct stress *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void stress_fail(struct stress *x, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&x->msg_lock);
	if (atomic_fetch_add(&x->bad, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&x->msg_lock);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct sthread {
	struct stress *x;
	uint64_t seed;
};

static void *stress_writer(void *p)
{
	struct sthread *st = p;
	struct stress *x = st->x;
	uint8_t *buf = malloc(3 * SBS);
	int fd = open(x->o.path, O_RDWR | O_CLOEXEC);

	for (;;) {
		pthread_barrier_wait(&x->go);
		if (atomic_load(&x->quit))
			break;
		while (!atomic_load(&x->stop)) {
			uint64_t off = rnd(&st->seed) % SSIZE;
			size_t len = 1 + rnd(&st->seed) % (3 * SBS);
			uint8_t k = (uint8_t)(1 + rnd(&st->seed) % 255);

			if (len > SSIZE - off)
				len = SSIZE - off;
			for (size_t i = 0; i < len; i++)
				buf[i] = x->tb[off + i] ^ k; /* never T */
			ckpt_op_begin(x->s);
			for (uint64_t b = off / SBS; b <= (off + len - 1) / SBS;
			     b++)
				atomic_store(&x->changed[b], 1);
			ckpt_before_data(x->s, &x->o.ref, off, len);
			if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
				stress_fail(x, "pwrite: %s", strerror(errno));
			ckpt_op_end(x->s);
			atomic_fetch_add(&x->writes, 1);
		}
		pthread_barrier_wait(&x->done);
	}
	close(fd);
	free(buf);
	return NULL;
}

/* -EIO is right only if some block of the range was saved, then changed. */
static bool eio_allowed(struct stress *x, uint64_t b0, uint64_t b1)
{
	for (uint64_t b = b0; b <= b1; b++)
		if (atomic_load(&x->saved[b]) && atomic_load(&x->changed[b]))
			return true;
	return false;
}

static void stress_read_round(struct sthread *st, uint8_t *buf)
{
	struct stress *x = st->x;
	struct ckpt *ck = ckpt_get(x->s, x->name);
	struct cobj_table *tab;
	struct cobj_ref ref = { 0 };
	struct cobj *c;
	struct stat sb;
	int fd;

	if (!ck) {
		stress_fail(x, "checkpoint %s not found", x->name);
		return;
	}
	tab = ckpt_objects(ck);
	/* each reader reaches the object through its own descriptors */
	ref.fd = open(x->o.path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	fd = open(x->o.path, O_RDONLY | O_CLOEXEC);
	fstat(fd, &sb);
	ref.dev = sb.st_dev;
	ref.ino = sb.st_ino;
	if (cobj_get(tab, &ref, &c) < 0) {
		stress_fail(x, "cobj_get failed");
		goto out;
	}
	cobj_view_open(c);
	while (!atomic_load(&x->stop)) {
		uint64_t off = rnd(&st->seed) % SSIZE, b0, b1;
		size_t len = 1 + rnd(&st->seed) % (3 * SBS);
		ssize_t n = cobj_read(tab, c, fd, buf, len, off);

		if (len > SSIZE - off)
			len = SSIZE - off;
		b0 = off / SBS;
		b1 = (off + len - 1) / SBS;
		atomic_fetch_add(&x->reads, 1);
		if (n == -EIO && x->saved_mode && eio_allowed(x, b0, b1)) {
			atomic_fetch_add(&x->eios, 1);
			continue;
		}
		if (n != (ssize_t)len) {
			stress_fail(x, "%s: read [%lu, +%zu): %zd", x->name,
				    (unsigned long)off, len, n);
			continue;
		}
		for (size_t i = 0; i < len; i++)
			if (buf[i] != x->tb[off + i]) {
				stress_fail(x, "%s: byte %lu is %02x, T had "
					    "%02x: post-T data served",
					    x->name, (unsigned long)(off + i),
					    buf[i], x->tb[off + i]);
				break;
			}
		atomic_fetch_add(&x->good, 1);
		/* odd rounds save slowly, so most reads race on unsaved
		 * blocks; even rounds save fast, so saves race captures */
		if (x->saved_mode &&
		    rnd(&st->seed) % (x->round % 2 ? 128 : 4) == 0) {
			for (uint64_t b = b0; b <= b1; b++)
				atomic_store(&x->saved[b], 1);
			cobj_mark_saved(tab, c, b0, b1);
		}
	}
	cobj_view_close(tab, c);
out:
	close(fd);
	close(ref.fd);
	ckpt_put(ck);
}

static void *stress_reader(void *p)
{
	struct sthread *st = p;
	uint8_t *buf = malloc(3 * SBS);

	for (;;) {
		pthread_barrier_wait(&st->x->go);
		if (atomic_load(&st->x->quit))
			break;
		stress_read_round(st, buf);
		pthread_barrier_wait(&st->x->done);
	}
	free(buf);
	return NULL;
}

static struct ckpt_info *find_info(struct ckpt_info *inf, size_t n,
				   const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (!strcmp(inf[k].name, name))
			return &inf[k];
	return NULL;
}

/*
 * After a saved-mode round, with no writer left: save the whole file,
 * close, reopen.  A block that changed after T must read -EIO, any other
 * block T bytes or -EIO, and never anything else.
 */
static void stress_after_round(struct stress *x)
{
	struct ckpt *ck = ckpt_get(x->s, x->name);
	struct cobj_table *tab = ckpt_objects(ck);
	struct cobj *c;
	uint8_t buf[SBS];
	int fd = open(x->o.path, O_RDONLY | O_CLOEXEC);

	cr_assert_eq(cobj_get(tab, &x->o.ref, &c), 0);
	cobj_view_open(c);
	cobj_mark_saved(tab, c, 0, SBLOCKS - 1);
	cobj_view_close(tab, c);
	cobj_view_open(c);
	for (uint64_t b = 0; b < SBLOCKS; b++) {
		ssize_t n = cobj_read(tab, c, fd, buf, SBS, b * SBS);

		if (n == -EIO)
			continue;
		cr_assert_eq(n, SBS);
		cr_assert(!atomic_load(&x->changed[b]),
			  "%s: block %lu changed after T, then served after "
			  "release", x->name, (unsigned long)b);
		cr_assert_eq(memcmp(buf, x->tb + b * SBS, SBS), 0,
			     "%s: block %lu: wrong bytes after release",
			     x->name, (unsigned long)b);
	}
	cobj_view_close(tab, c);
	close(fd);
	ckpt_put(ck);
}

static void stress_run(bool saved_mode)
{
	struct ckpt_set_opts so = { .block_size = SBS, .store_dir = dir,
				    .store_mem = 16 * MIB,
				    .store_max = 256 * MIB };
	struct sthread th[WRITERS + READERS];
	pthread_t tid[WRITERS + READERS];
	struct stress *x = calloc(1, sizeof(*x));
	int round_ms = getenv("SWAFS_ROUND_MS") ? atoi(getenv("SWAFS_ROUND_MS"))
						: 10;
	int64_t end = now_ms() + stress_ms();
	int rounds = 0;
	unsigned long writes_total = 0, reads_total = 0, eio_total = 0;

	x->saved_mode = saved_mode;
	pthread_mutex_init(&x->msg_lock, NULL);
	cr_assert_eq(ckpt_set_create(&so, &x->s), 0);
	obj_make(&x->o, "stress", SSIZE, 0);
	pthread_barrier_init(&x->go, NULL, WRITERS + READERS + 1);
	pthread_barrier_init(&x->done, NULL, WRITERS + READERS + 1);
	for (int k = 0; k < WRITERS + READERS; k++) {
		th[k].x = x;
		th[k].seed = 0x1234567ull * (uint64_t)(k + 1) +
			     (uint64_t)time(NULL);
		pthread_create(&tid[k], NULL,
			       k < WRITERS ? stress_writer : stress_reader,
			       &th[k]);
	}
	for (int r = 0; (r < 4 || now_ms() < end) && !atomic_load(&x->bad);
	     r++, rounds++) {
		struct ckpt_info inf[4], *i;
		unsigned long changed = 0;
		uint64_t pause;
		size_t n;

		/* between checkpoints: new T content, flags cleared */
		fill(x->tb, 0, SSIZE, (uint64_t)r + 1);
		cr_assert_eq(pwrite(x->o.rw, x->tb, SSIZE, 0), (ssize_t)SSIZE);
		for (int b = 0; b < SBLOCKS; b++) {
			atomic_store(&x->changed[b], 0);
			atomic_store(&x->saved[b], 0);
		}
		snprintf(x->name, sizeof(x->name), "round-%d", r);
		x->round = r;
		cr_assert_eq(ckpt_take(x->s, x->name,
				       saved_mode ? 0 : CKPT_RETAIN_ALL, -1,
				       &pause), 0);
		atomic_store(&x->stop, false);
		pthread_barrier_wait(&x->go);
		usleep((useconds_t)round_ms * 1000);
		atomic_store(&x->stop, true);
		pthread_barrier_wait(&x->done);

		for (int b = 0; b < SBLOCKS; b++)
			changed += atomic_load(&x->changed[b]);
		n = ckpt_list(x->s, inf, 4);
		cr_assert_eq(n, 1);
		i = find_info(inf, n, x->name);
		cr_assert_not_null(i);
		cr_assert(i->valid, "%s invalidated", x->name);
		cr_assert_eq(i->objs.objects, 1);
		if (saved_mode) {
			cr_assert_leq(i->objs.captured_blocks, changed);
			stress_after_round(x);
		} else {
			cr_assert_eq(i->objs.captured_blocks, changed,
				     "retain all: one capture per changed "
				     "block");
			cr_assert_eq(i->objs.saved_blocks, 0);
		}
		cr_assert_eq(ckpt_release(x->s, x->name), 0);
	}
	atomic_store(&x->quit, true);
	pthread_barrier_wait(&x->go);
	for (int k = 0; k < WRITERS + READERS; k++)
		pthread_join(tid[k], NULL);
	writes_total = atomic_load(&x->writes);
	reads_total = atomic_load(&x->reads);
	eio_total = atomic_load(&x->eios);
	cr_assert_eq(atomic_load(&x->bad), 0, "%lu failures, first: %s",
		     (unsigned long)atomic_load(&x->bad), x->msg);
	cr_assert_gt(writes_total, 100, "too few writes to mean anything");
	cr_assert_gt(atomic_load(&x->good), 1000,
		     "too few good reads to mean anything");
	cr_log_info("%s: %d rounds, %lu reads (%lu good, %lu EIO), %lu writes",
		    saved_mode ? "saved" : "retain all", rounds, reads_total,
		    (unsigned long)atomic_load(&x->good), eio_total,
		    writes_total);
	ckpt_set_free(x->s);
	obj_close(&x->o);
	pthread_barrier_destroy(&x->go);
	pthread_barrier_destroy(&x->done);
	pthread_mutex_destroy(&x->msg_lock);
	free(x);
}

Test(cobj_stress, reads_race_writes_retain_all, .init = setup,
     .fini = teardown, .timeout = 60)
{
	stress_run(false);
}

Test(cobj_stress, reads_race_writes_saved, .init = setup, .fini = teardown,
     .timeout = 60)
{
	stress_run(true);
}

/* ---- two writers, one uncaptured block: one capture ---- */

#define RACERS 6

struct once {
	struct obj *o;
	struct ckpt_set *s;		/* NULL: call cobj directly */
	pthread_barrier_t bar;
	atomic_uint block;
	atomic_bool quit;
	atomic_int errors;
};

static void *once_run(void *p)
{
	struct once *x = p;
	uint64_t seed = (uint64_t)(uintptr_t)&seed | 1;
	uint8_t buf[64];
	int fd = open(x->o->path, O_RDWR | O_CLOEXEC);

	for (;;) {
		uint64_t off, len;
		struct cobj *c;

		pthread_barrier_wait(&x->bar);
		if (atomic_load(&x->quit))
			break;
		off = atomic_load(&x->block) * 4096ull + rnd(&seed) % 4000;
		len = 1 + rnd(&seed) % 64;
		memset(buf, (int)(rnd(&seed) | 1), sizeof(buf));
		if (x->s) {
			ckpt_op_begin(x->s);
			ckpt_before_data(x->s, &x->o->ref, off, len);
		} else if (cobj_get(t, &x->o->ref, &c) < 0 ||
			   cobj_capture_range(t, c, &x->o->ref, off, len) < 0) {
			atomic_fetch_add(&x->errors, 1);
		}
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
			atomic_fetch_add(&x->errors, 1);
		if (x->s)
			ckpt_op_end(x->s);
		pthread_barrier_wait(&x->bar);
	}
	close(fd);
	return NULL;
}

static void once_start(struct once *x, pthread_t *tid)
{
	pthread_barrier_init(&x->bar, NULL, RACERS + 1);
	for (int k = 0; k < RACERS; k++)
		pthread_create(&tid[k], NULL, once_run, x);
}

static void once_stop(struct once *x, pthread_t *tid)
{
	atomic_store(&x->quit, true);
	pthread_barrier_wait(&x->bar);
	for (int k = 0; k < RACERS; k++)
		pthread_join(tid[k], NULL);
	pthread_barrier_destroy(&x->bar);
	cr_assert_eq(atomic_load(&x->errors), 0);
}

/* Every round: a fresh table, RACERS threads race to create the entry
 * and capture one fresh block. */
Test(cobj_stress, racing_writers_capture_once, .init = setup,
     .fini = teardown, .timeout = 60)
{
	struct once x = { 0 };
	pthread_t tid[RACERS];
	uint8_t tb[SBLOCKS * 4096];
	struct obj o;
	int64_t deadline;
	int rounds = 0;

	obj_make(&o, "f", sizeof(tb), 1);
	x.o = &o;
	once_start(&x, tid);
	deadline = now_ms() + stress_ms() / 2;
	do {
		struct cobj_stats cs;
		struct cobj *c;
		unsigned b = (unsigned)rounds % SBLOCKS;

		cr_assert_eq(pread(o.rw, tb, sizeof(tb), 0),
			     (ssize_t)sizeof(tb));
		make_table(4096, false);
		atomic_store(&x.block, b);
		pthread_barrier_wait(&x.bar);	/* go */
		pthread_barrier_wait(&x.bar);	/* all wrote */
		cobj_table_stats(t, &cs);
		cr_assert_eq(cs.objects, 1, "round %d: %lu entries", rounds,
			     (unsigned long)cs.objects);
		check_sane(1, 1);
		c = cobj_find(t, o.ref.dev, o.ref.ino);
		cr_assert_not_null(c);
		cobj_view_open(c);
		{
			uint8_t buf[4096];

			cr_assert_eq(read_at(c, -1, b * 4096ull, 4096, buf),
				     4096);
			cr_assert_eq(memcmp(buf, tb + b * 4096, 4096), 0,
				     "round %d: block %u is not T", rounds, b);
		}
		cobj_view_close(t, c);
		drop_table();
		rounds++;
	} while (now_ms() < deadline || rounds < 20);
	once_stop(&x, tid);
	obj_close(&o);
}

/* One checkpoint through the ckpt hooks: each round of the racers hits
 * the next fresh block. */
static void hooks_pass(struct once *x, struct obj *o, int pass)
{
	uint8_t tb[SBLOCKS * 4096];
	struct ckpt *ck;
	uint64_t pause;
	char name[16];

	cr_assert_eq(pread(o->rw, tb, sizeof(tb), 0), (ssize_t)sizeof(tb));
	snprintf(name, sizeof(name), "c%d", pass);
	cr_assert_eq(ckpt_take(x->s, name, 0, -1, &pause), 0);
	ck = ckpt_get(x->s, name);
	for (unsigned b = 0; b < SBLOCKS; b++) {
		struct ckpt_info inf;
		struct cobj *c;
		uint8_t buf[4096];

		atomic_store(&x->block, b);
		pthread_barrier_wait(&x->bar);
		pthread_barrier_wait(&x->bar);
		cr_assert_eq(ckpt_list(x->s, &inf, 1), 1);
		cr_assert_eq(inf.objs.objects, 1);
		cr_assert_eq(inf.objs.captured_blocks, b + 1,
			     "%s block %u: %lu captures", name, b,
			     (unsigned long)inf.objs.captured_blocks);
		cr_assert_eq(inf.objs.captured_bytes, (b + 1) * 4096ull);
		c = cobj_find(ckpt_objects(ck), o->ref.dev, o->ref.ino);
		cr_assert_not_null(c);
		cobj_view_open(c);
		cr_assert_eq(cobj_read(ckpt_objects(ck), c, -1, buf, 4096,
				       b * 4096ull), 4096);
		cr_assert_eq(memcmp(buf, tb + b * 4096, 4096), 0,
			     "%s block %u is not T", name, b);
		cobj_view_close(ckpt_objects(ck), c);
	}
	ckpt_put(ck);
	cr_assert_eq(ckpt_release(x->s, name), 0);
}

Test(cobj_stress, racing_hooks_capture_once, .init = setup,
     .fini = teardown, .timeout = 60)
{
	struct ckpt_set_opts so = { .block_size = 4096, .store_dir = dir,
				    .store_mem = 64 * MIB,
				    .store_max = 64 * MIB };
	struct once x = { 0 };
	pthread_t tid[RACERS];
	int64_t deadline;
	struct obj o;
	int pass = 0;

	cr_assert_eq(ckpt_set_create(&so, &x.s), 0);
	obj_make(&o, "f", SBLOCKS * 4096, 1);
	x.o = &o;
	once_start(&x, tid);
	deadline = now_ms() + stress_ms() / 3;
	do {
		hooks_pass(&x, &o, pass++);
	} while (now_ms() < deadline || pass < 3);
	once_stop(&x, tid);
	ckpt_set_free(x.s);
	obj_close(&o);
}

/* ---- progress accounting ---- */

static void *note_all(void *arg)
{
	struct cobj *c = arg;

	for (uint64_t b = 0; b < 64; b++)
		cobj_note_served(t, c, b);
	return NULL;
}

Test(cobj_progress, served_bytes_count_each_block_once, .init = setup,
     .fini = teardown)
{
	uint64_t size = 63 * 4096 + 100;	/* last block short */
	struct cobj_stats cs;
	pthread_t th[4];
	struct obj o, e;
	struct cobj *c;

	make_table(4096, true);
	obj_make(&o, "f", size, 1);
	obj_make(&e, "empty", 0, 1);
	c = get(&o);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.saved_bytes, 0);
	cr_assert_eq(cs.first_served_ns, 0);
	cobj_note_served(t, c, 0);
	cobj_note_served(t, c, 0);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.saved_bytes, 4096, "block 0 counted %lu",
		     (unsigned long)cs.saved_bytes);
	cr_assert_gt(cs.first_served_ns, 0);
	/* four readers of the same file race: every block still once */
	for (int k = 0; k < 4; k++)
		cr_assert_eq(pthread_create(&th[k], NULL, note_all, c), 0);
	for (int k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	cobj_note_served(t, c, 64);	/* past the T image: ignored */
	cobj_note_served(t, get(&e), 0);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.saved_bytes, size, "saved %lu of %lu",
		     (unsigned long)cs.saved_bytes, (unsigned long)size);
	obj_close(&o);
	obj_close(&e);
}

Test(cobj_progress, held_and_peak_follow_captures_and_saves, .init = setup,
     .fini = teardown)
{
	struct cobj_stats cs;
	struct obj o;
	struct cobj *c;

	make_table(4096, false);
	obj_make(&o, "f", 4 * 4096, 1);
	c = get(&o);
	write_through(&o, 0, 3 * 4096, 2);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.held_bytes, 3 * 4096);
	cr_assert_eq(cs.peak_held_bytes, 3 * 4096);
	cobj_mark_saved(t, c, 0, 1);
	cobj_table_stats(t, &cs);
	cr_assert_eq(cs.held_bytes, 4096);
	cr_assert_eq(cs.peak_held_bytes, 3 * 4096);
	cr_assert_eq(cs.saved_bytes, 0, "marking saved is not serving");
	check_sane(1, 3);
	obj_close(&o);
}

/* ---- T layout: SEEK_DATA/SEEK_HOLE and the hole maps of captured blocks */

#define MAXEXT 4096

/* The data extents of fd up to size as the file reports them now. */
static size_t live_extents(int fd, uint64_t size, uint64_t (*ext)[2])
{
	size_t n = 0;
	off_t d, h = 0;

	while ((uint64_t)h < size &&
	       (d = lseek(fd, h, SEEK_DATA)) >= 0 && (uint64_t)d < size) {
		h = lseek(fd, d, SEEK_HOLE);
		cr_assert_geq(h, d);
		cr_assert_lt(n, MAXEXT);
		ext[n][0] = (uint64_t)d;
		ext[n++][1] = (uint64_t)h < size ? (uint64_t)h : size;
	}
	return n;
}

/* lseek(2) over extents ext (the T layout) of a file of size bytes. */
static off_t ref_seek(uint64_t (*ext)[2], size_t n, uint64_t size,
		      uint64_t off, bool want_data)
{
	if (off >= size)
		return -ENXIO;
	for (size_t k = 0; k < n; k++) {
		if (ext[k][1] <= off)
			continue;
		if (want_data)
			return (off_t)(ext[k][0] > off ? ext[k][0] : off);
		return (off_t)(ext[k][0] > off ? off : ext[k][1]);
	}
	return want_data ? -ENXIO : (off_t)off;
}

/* The extents of c's T image as cobj_seek() walks them. */
static size_t view_extents(struct cobj *c, int fd, uint64_t size,
			   uint64_t (*ext)[2])
{
	size_t n = 0;
	off_t d, h = 0;

	while ((uint64_t)h < size && (d = cobj_seek(t, c, fd, (uint64_t)h,
						    true)) >= 0) {
		h = cobj_seek(t, c, fd, (uint64_t)d, false);
		cr_assert_gt(h, d, "SEEK_HOLE from data at %ld: %ld", (long)d,
			     (long)h);
		cr_assert_lt(n, MAXEXT);
		ext[n][0] = (uint64_t)d;
		ext[n++][1] = (uint64_t)h;
	}
	cr_assert(d == -ENXIO || (uint64_t)h >= size, "seek failed: %ld",
		  (long)d);
	return n;
}

/* c's T layout is tx[0..tn), through every offset class */
static void expect_layout(struct cobj *c, int fd, uint64_t size,
			  uint64_t (*tx)[2], size_t tn, uint64_t *rs)
{
	static uint64_t vx[MAXEXT][2];
	size_t n = view_extents(c, fd, size, vx);

	cr_assert_eq(n, tn, "%zu extents through the view, %zu at T (bs %u)",
		     n, tn, bs);
	for (size_t k = 0; k < n; k++)
		cr_assert(vx[k][0] == tx[k][0] && vx[k][1] == tx[k][1],
			  "extent %zu: [%lu, %lu), at T [%lu, %lu) (bs %u)", k,
			  (unsigned long)vx[k][0], (unsigned long)vx[k][1],
			  (unsigned long)tx[k][0], (unsigned long)tx[k][1], bs);
	for (int q = 0; q < 200; q++) {
		uint64_t off = *rs % (size + 100);
		bool data = (*rs >> 40) & 1;

		*rs = *rs * 6364136223846793005ull + 1442695040888963407ull;
		off_t got = cobj_seek(t, c, fd, off, data);
		off_t want = ref_seek(tx, tn, size, off, data);

		cr_assert_eq(got, want, "SEEK_%s from %lu: %ld, at T %ld "
			     "(bs %u, size %lu)", data ? "DATA" : "HOLE",
			     (unsigned long)off, (long)got, (long)want, bs,
			     (unsigned long)size);
	}
}

/* A sparse file of size bytes: n random runs of data, 4 KiB aligned. */
static void obj_sparse(struct obj *o, uint64_t size, unsigned n,
		       uint64_t *rs)
{
	uint8_t *buf = malloc(96 << 10);

	snprintf(o->path, sizeof(o->path), "%s/sparse", dir);
	o->rw = open(o->path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(o->rw, 0);
	cr_assert_eq(ftruncate(o->rw, (off_t)size), 0);
	for (unsigned k = 0; k < n; k++) {
		uint64_t len = 4096 * (1 + *rs % 24);
		uint64_t off = (*rs >> 8) % (size / 4096) * 4096;

		*rs = *rs * 6364136223846793005ull + 1442695040888963407ull;
		if (off + len > size)
			len = size - off;
		fill(buf, off, len, 1);
		cr_assert_eq(pwrite(o->rw, buf, len, (off_t)off), (ssize_t)len);
	}
	free(buf);
	ref_of(o);
}

/*
 * The model: random sparse files, random writes (into holes, across
 * extents, past the end) and a truncation after T; after each, every
 * SEEK_DATA/SEEK_HOLE of the view equals the T layout read from the file
 * before the changes, at the backing file's granularity: a captured block
 * that was partly a hole keeps its holes.
 */
Test(cobj, seeks_answer_t_layout_under_random_writes,
     .init = setup, .fini = teardown)
{
	static const unsigned sizes[] = { 4096, 65536, 1 << 20 };
	static uint64_t tx[MAXEXT][2];
	uint64_t rs = 0x5eed;

	for (unsigned k = 0; k < 3; k++) {
		for (int round = 0; round < 4; round++) {
			uint64_t size = (8ull << 20) + rs % 70000;
			struct obj o;
			struct cobj *c;
			size_t tn;
			int fd;

			make_table(sizes[k], false);
			obj_sparse(&o, size, 20, &rs);
			fd = live_fd(&o);
			tn = live_extents(fd, size, tx);
			c = get(&o);
			expect_layout(c, fd, size, tx, tn, &rs);
			for (int w = 0; w < 25; w++) {
				uint64_t off = rs % (size + 8192);

				rs = rs * 6364136223846793005ull + 1;
				write_through(&o, off, 1 + (rs >> 20) % 100000,
					      2);
				expect_layout(c, fd, size, tx, tn, &rs);
			}
			truncate_through(&o, size / 3);
			expect_layout(c, fd, size, tx, tn, &rs);
			close(fd);
			obj_close(&o);
			drop_table();
		}
	}
}

/* A partly-hole block, written after T, keeps its holes: the exact case. */
Test(cobj, captured_block_keeps_its_holes, .init = setup,
     .fini = teardown)
{
	uint64_t size = 4 * 65536;
	uint8_t buf[4096];
	struct obj o;
	struct cobj *c;
	int fd;

	make_table(65536, false);
	snprintf(o.path, sizeof(o.path), "%s/f", dir);
	o.rw = open(o.path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	cr_assert_eq(ftruncate(o.rw, (off_t)size), 0);
	fill(buf, 0, sizeof(buf), 1);
	cr_assert_eq(pwrite(o.rw, buf, 4096, 65536 + 8192), 4096);
	ref_of(&o);
	c = get(&o);
	fd = live_fd(&o);
	write_through(&o, 65536 + 32768, 100, 2);
	write_through(&o, 3 * 65536, 10, 2);
	check_sane(1, 1);
	cr_assert_eq(cobj_seek(t, c, fd, 0, true), 65536 + 8192);
	cr_assert_eq(cobj_seek(t, c, fd, 65536 + 8192, false), 65536 + 12288);
	cr_assert_eq(cobj_seek(t, c, fd, 65536 + 12288, true), -ENXIO,
		     "the write into the hole is post-T");
	cr_assert_eq(cobj_seek(t, c, fd, 65536, false), 65536);
	close(fd);
	obj_close(&o);
}

/*
 * Where T's layout is gone, a seek fails as a read does: a file released
 * and then written (into a hole), a captured block whose pre-image was
 * dropped, a saved block written since.  Before that, the released file's
 * layout is still T's.
 */
Test(cobj, lost_layout_fails_like_a_read, .init = setup,
     .fini = teardown)
{
	uint64_t size = 8 * 4096, rs = 7;
	static uint64_t tx[MAXEXT][2];
	uint8_t buf[16];
	struct obj o, p;
	struct cobj *c;
	size_t tn;
	int fd;

	make_table(4096, false);
	obj_sparse(&o, size, 2, &rs);
	fd = live_fd(&o);
	tn = live_extents(fd, size, tx);
	cr_assert_lt(tn, 3);
	c = get(&o);
	cobj_view_open(c);
	save_all(c, fd, size);
	cr_assert(cobj_view_close(t, c));
	expect_layout(c, fd, size, tx, tn, &rs);
	/* into a hole of T: 4096 * 7 is one unless both runs cover it */
	write_through(&o, tx[tn - 1][1] < size ? size - 1 : 0, 1, 2);
	cr_assert_eq(cobj_seek(t, c, fd, 0, true), -EIO);
	cr_assert_eq(cobj_seek(t, c, fd, 0, false), -EIO);
	cr_assert_eq(read_at(c, fd, 0, sizeof(buf), buf), -EIO);
	close(fd);

	/* per block: captured then saved, saved then changed */
	obj_make(&p, "p", size, 3);
	c = get(&p);
	fd = live_fd(&p);
	write_through(&p, 2 * 4096, 1, 4);
	cobj_mark_saved(t, c, 2, 2);
	cobj_mark_saved(t, c, 5, 5);
	write_through(&p, 5 * 4096, 1, 4);
	cr_assert_eq(cobj_seek(t, c, fd, 0, true), 0);
	cr_assert_eq(cobj_seek(t, c, fd, 0, false), -EIO);
	cr_assert_eq(cobj_seek(t, c, fd, 2 * 4096 + 5, true), -EIO);
	cr_assert_eq(cobj_seek(t, c, fd, 3 * 4096, true), 3 * 4096);
	cr_assert_eq(cobj_seek(t, c, fd, 3 * 4096, false), -EIO);
	cr_assert_eq(read_at(c, fd, 5 * 4096, sizeof(buf), buf), -EIO);
	cr_assert_eq(cobj_seek(t, c, fd, 6 * 4096, false), (off_t)size);
	close(fd);
	obj_close(&o);
	obj_close(&p);
}

/*
 * A 1 TiB sparse file (16 Mi blocks of 64 KiB), a few extents, some
 * captured: every seek costs a few live lseeks and block records, not a
 * walk over the blocks (which takes seconds per call).
 */
Test(cobj, huge_sparse_file_seeks_by_extents, .init = setup,
     .fini = teardown)
{
	uint64_t size = 1ull << 40, at[] = { 5ull << 30, 300ull << 30,
					     (1ull << 40) - 65536 };
	static uint64_t tx[MAXEXT][2];
	uint8_t buf[8192];
	struct timespec t0, t1;
	struct obj o;
	struct cobj *c;
	uint64_t rs = 11;
	size_t tn;
	int fd;

	make_table(65536, false);
	snprintf(o.path, sizeof(o.path), "%s/huge", dir);
	o.rw = open(o.path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	cr_assert_eq(ftruncate(o.rw, (off_t)size), 0);
	fill(buf, 0, sizeof(buf), 1);
	for (unsigned k = 0; k < 3; k++)
		cr_assert_eq(pwrite(o.rw, buf, 4096, (off_t)at[k] + 4096),
			     4096);
	ref_of(&o);
	fd = live_fd(&o);
	tn = live_extents(fd, size, tx);
	cr_assert_eq(tn, 3);
	c = get(&o);
	/* into holes at T: a block of its own, and next to T data */
	write_through(&o, 100ull << 30, 1, 2);
	write_through(&o, at[1] + 50000, 1, 2);
	write_through(&o, at[2], 8192, 2);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 10; i++)
		expect_layout(c, fd, size, tx, tn, &rs);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_lt((t1.tv_sec - t0.tv_sec) * 1000000000 +
		     (t1.tv_nsec - t0.tv_nsec), 1000000000,
		     "10 walks of 3 extents took over 1 s");
	close(fd);
	obj_close(&o);
}
