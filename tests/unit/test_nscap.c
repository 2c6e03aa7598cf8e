/* Unit tests for snapshot/nscap.c: directory images (every entry type,
 * sorted, handles, no "." or ".."), lookups, large directories, and the
 * capture before the first change. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "snapshot/cobj.h"
#include "snapshot/nscap.h"

static char dir[64];
static int mnt = -1;	/* a real (not O_PATH) descriptor on the fs */

static void setup(void)
{
	strcpy(dir, "/tmp/swafs-nscap-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	mnt = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(mnt, 0);
}

static void teardown(void)
{
	char cmd[128];

	close(mnt);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void path_of(char *p, size_t n, const char *sub, const char *name)
{
	snprintf(p, n, "%s%s%s/%s", dir, sub ? "/" : "", sub ? sub : "", name);
}

static void touch(const char *sub, const char *name)
{
	char p[512];
	int fd;

	path_of(p, sizeof(p), sub, name);
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0)
		cr_assert_fail("create %s: %s", p, strerror(errno));
	close(fd);
}

static int opath(const char *sub)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
	fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	cr_assert_geq(fd, 0, "O_PATH %s", p);
	return fd;
}

/*
 * Invariants of every image: strictly sorted by name, no "." or "..",
 * every name found at its own index, handles present iff asked for and
 * of a sane size.
 */
static void check_image(const struct nsdir *d, bool handles)
{
	size_t n = nsdir_count(d);
	struct nsent prev = { 0 }, e;

	/* plain tests in the loop: criterion asserts are slow by the 10,000 */
	for (size_t k = 0; k < n; k++) {
		nsdir_entry(d, k, &e);
		if (!e.name || !e.name[0] || !strcmp(e.name, ".") ||
		    !strcmp(e.name, ".."))
			cr_assert_fail("entry %zu: bad name '%s'", k,
				       e.name ? e.name : "(null)");
		if (k && strcmp(prev.name, e.name) >= 0)
			cr_assert_fail("'%s' before '%s'", prev.name, e.name);
		if (nsdir_find(d, e.name) != (long)k)
			cr_assert_fail("find '%s': %ld, want %zu", e.name,
				       nsdir_find(d, e.name), k);
		if (!e.ino)
			cr_assert_fail("'%s': inode 0", e.name);
		if (handles && (!e.fh || !e.fh->handle_bytes ||
				e.fh->handle_bytes > MAX_HANDLE_SZ))
			cr_assert_fail("'%s': bad handle", e.name);
		if (!handles && e.fh)
			cr_assert_fail("'%s': handle not asked for", e.name);
		prev = e;
	}
	cr_assert_eq(nsdir_find(d, "."), -ENOENT);
	cr_assert_eq(nsdir_find(d, ".."), -ENOENT);
	cr_assert_eq(nsdir_find(d, ""), -ENOENT);
}

/* The handle of entry name opens the object it named. */
static void check_handle(const struct nsdir *d, const char *name, ino_t ino)
{
	struct nsent e;
	struct stat st;
	long k = nsdir_find(d, name);
	int fd;

	cr_assert_geq(k, 0, "'%s' missing", name);
	nsdir_entry(d, (size_t)k, &e);
	cr_assert_not_null(e.fh);
	fd = open_by_handle_at(mnt, (struct file_handle *)e.fh,
			       O_PATH | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open_by_handle_at '%s': %s", name,
		      strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_ino, ino, "handle of '%s' opens inode %lu", name,
		     (unsigned long)st.st_ino);
	close(fd);
}

static ino_t ino_of(const char *sub, const char *name)
{
	char p[512];
	struct stat st;

	path_of(p, sizeof(p), sub, name);
	cr_assert_eq(lstat(p, &st), 0, "lstat %s", p);
	return st.st_ino;
}

Test(nscap, every_type_sorted_with_handles, .init = setup, .fini = teardown)
{
	static const struct { const char *name; unsigned char type; } want[] = {
		{ "-dash", DT_REG }, { "..x", DT_REG }, { ".hidden", DT_REG },
		{ "a b", DT_REG }, { "blk", DT_BLK }, { "chr", DT_CHR },
		{ "f", DT_REG }, { "f2", DT_REG }, { "fifo", DT_FIFO },
		{ "ln", DT_LNK }, { "sock", DT_SOCK }, { "sub", DT_DIR },
		{ "\xc3\xa9t\xc3\xa9", DT_REG },
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct nsdir *d, *dn;
	char p[512];
	int fd, s;

	cr_assert_eq(mkdir(strcat(strcpy(p, dir), "/d"), 0755), 0);
	touch("d", "f");
	touch("d", "-dash");
	touch("d", "..x");
	touch("d", ".hidden");
	touch("d", "a b");
	touch("d", "\xc3\xa9t\xc3\xa9");
	path_of(p, sizeof(p), "d", "sub");
	cr_assert_eq(mkdir(p, 0700), 0);
	path_of(p, sizeof(p), "d", "ln");
	cr_assert_eq(symlink("f", p), 0);
	path_of(p, sizeof(p), "d", "f2");
	{
		char f[512];

		path_of(f, sizeof(f), "d", "f");
		cr_assert_eq(link(f, p), 0);
	}
	path_of(p, sizeof(p), "d", "fifo");
	cr_assert_eq(mkfifo(p, 0600), 0);
	path_of(p, sizeof(p), "d", "chr");
	cr_assert_eq(mknod(p, S_IFCHR | 0600, makedev(1, 3)), 0, "mknod: %s",
		     strerror(errno));
	path_of(p, sizeof(p), "d", "blk");
	cr_assert_eq(mknod(p, S_IFBLK | 0600, makedev(7, 0)), 0);
	path_of(sa.sun_path, sizeof(sa.sun_path), "d", "sock");
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);

	fd = opath("d");	/* O_PATH, as the live tree holds it */
	cr_assert_eq(nsdir_read(fd, true, &d), 0);
	cr_assert_eq(nsdir_read(fd, false, &dn), 0);
	check_image(d, true);
	check_image(dn, false);
	cr_assert_eq(nsdir_count(d), sizeof(want) / sizeof(*want));
	cr_assert_eq(nsdir_count(dn), nsdir_count(d));
	for (size_t k = 0; k < sizeof(want) / sizeof(*want); k++) {
		struct nsent e;

		nsdir_entry(d, k, &e);
		cr_assert_str_eq(e.name, want[k].name);
		cr_assert_eq(e.type, want[k].type, "'%s' type %u", e.name,
			     e.type);
		cr_assert_eq(e.ino, ino_of("d", e.name));
		check_handle(d, e.name, e.ino);
	}
	/* hard links: one inode, two names */
	cr_assert_eq(ino_of("d", "f"), ino_of("d", "f2"));
	nsdir_free(d);
	nsdir_free(dn);
	close(fd);
}

Test(nscap, find_hits_and_misses, .init = setup, .fini = teardown)
{
	static const char *names[] = { "b", "bb", "ba", "a", "c", "B", "b.c" };
	static const char *misses[] = { "", "bbb", "aa", "0", "~", "b/",
					"C", "b.", "bc", "A" };
	struct nsdir *d;
	int fd;

	for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++)
		touch(NULL, names[k]);
	fd = opath(NULL);
	cr_assert_eq(nsdir_read(fd, false, &d), 0);
	check_image(d, false);
	cr_assert_eq(nsdir_count(d), sizeof(names) / sizeof(*names));
	for (size_t k = 0; k < sizeof(names) / sizeof(*names); k++) {
		struct nsent e;
		long i = nsdir_find(d, names[k]);

		cr_assert_geq(i, 0, "'%s' not found", names[k]);
		nsdir_entry(d, (size_t)i, &e);
		cr_assert_str_eq(e.name, names[k]);
	}
	for (size_t k = 0; k < sizeof(misses) / sizeof(*misses); k++)
		cr_assert_eq(nsdir_find(d, misses[k]), -ENOENT, "'%s' found",
			     misses[k]);
	nsdir_free(d);
	close(fd);
}

/* rmdir captures the (empty) directory first: the most common image. */
Test(nscap, empty_directory, .init = setup, .fini = teardown)
{
	struct nsdir *d;
	int fd = opath(NULL);

	cr_assert_eq(nsdir_read(fd, true, &d), 0);
	cr_assert_eq(nsdir_count(d), 0);
	cr_assert_eq(nsdir_find(d, "x"), -ENOENT);
	check_image(d, true);
	nsdir_free(d);
	close(fd);
}

Test(nscap, not_a_directory, .init = setup, .fini = teardown)
{
	struct nsdir *d = NULL;
	int fd;

	touch(NULL, "f");
	fd = opath("f");
	cr_assert_eq(nsdir_read(fd, true, &d), -ENOTDIR);
	cr_assert_null(d);
	close(fd);
	nsdir_free(NULL);
}

/* Names of varied length and prefix. */
static void entry_name(char *buf, size_t size, unsigned v)
{
	static const char x[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

	snprintf(buf, size, "%c%u-%.*s", 'a' + v % 26, v, (int)(v % 40), x);
}

Test(nscap, ten_thousand_entries, .init = setup, .fini = teardown,
     .timeout = 60)
{
	enum { N = 10000 };
	struct nsdir *d;
	char name[64], base[512], p[512];
	int fd;

	/* hard links: ten times faster to make than files here */
	touch(NULL, "base");
	path_of(base, sizeof(base), NULL, "base");
	for (unsigned k = 0; k < N - 1; k++) {
		/* names of varied length and prefix, made out of order */
		unsigned v = (k * 7919u) % (N - 1);

		entry_name(name, sizeof(name), v);
		path_of(p, sizeof(p), NULL, name);
		if (link(base, p) < 0)
			cr_assert_fail("link %s: %s", p, strerror(errno));
	}
	fd = opath(NULL);
	cr_assert_eq(nsdir_read(fd, true, &d), 0);
	cr_assert_eq(nsdir_count(d), N);
	check_image(d, true);
	cr_assert_geq(nsdir_find(d, "base"), 0);
	for (unsigned v = 0; v < N - 1; v++) {
		entry_name(name, sizeof(name), v);
		if (nsdir_find(d, name) < 0)
			cr_assert_fail("'%s' missing", name);
		name[strlen(name) - 1] = '\0';
		if (v % 40 > 0 && nsdir_find(d, name) != -ENOENT)
			cr_assert_fail("'%s' found", name);
	}
	{
		struct nsent e;

		nsdir_entry(d, N / 2, &e);
		check_handle(d, e.name, e.ino);
		nsdir_entry(d, N - 1, &e);
		check_handle(d, e.name, e.ino);
	}
	nsdir_free(d);
	close(fd);
}

/* Names as a sorted, newline-joined string, for comparisons. */
static char *names_of(const struct nsdir *d)
{
	size_t cap = 1;
	char *s;

	for (size_t k = 0; k < nsdir_count(d); k++) {
		struct nsent e;

		nsdir_entry(d, k, &e);
		cap += strlen(e.name) + 1;
	}
	s = calloc(1, cap);
	for (size_t k = 0; k < nsdir_count(d); k++) {
		struct nsent e;

		nsdir_entry(d, k, &e);
		strcat(strcat(s, e.name), "\n");
	}
	return s;
}

Test(nscap, capture_is_not_affected_by_later_changes, .init = setup,
     .fini = teardown)
{
	struct cobj_table_opts o = { .block_size = 4096 };
	struct cobj_table *t;
	struct cobj_ref r = { 0 };
	struct nsdir *img, *live;
	struct cobj *c;
	struct stat st;
	char a[512], b[512], *before, *now;
	ino_t moved;

	cr_assert_eq(cobj_table_create(&o, &t), 0);
	cr_assert_eq(mkdir(strcat(strcpy(a, dir), "/d"), 0755), 0);
	cr_assert_eq(mkdir(strcat(strcpy(a, dir), "/e"), 0755), 0);
	touch("d", "keep");
	touch("d", "gone");
	touch("d", "moved");
	moved = ino_of("d", "moved");
	r.fd = opath("d");
	cr_assert_eq(fstat(r.fd, &st), 0);
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	cr_assert_eq(cobj_get(t, &r, &c), 0);
	cr_assert_null(cobj_dir(c));
	cr_assert_eq(nscap_capture(c, &r), 0);
	cr_assert(cobj_flags(c) & COBJ_DIR);
	img = cobj_dir(c);
	cr_assert_not_null(img);
	check_image(img, true);
	before = names_of(img);
	cr_assert_str_eq(before, "gone\nkeep\nmoved\n");

	/* the first change after T happened; now more changes */
	touch("d", "new");
	path_of(a, sizeof(a), "d", "gone");
	cr_assert_eq(unlink(a), 0);
	path_of(a, sizeof(a), "d", "moved");
	path_of(b, sizeof(b), "e", "moved-here");
	cr_assert_eq(rename(a, b), 0);
	path_of(a, sizeof(a), "d", "sub");
	cr_assert_eq(mkdir(a, 0755), 0);
	/* a second capture keeps the first image */
	cr_assert_eq(nscap_capture(c, &r), 0);
	cr_assert_eq(cobj_dir(c), img);
	now = names_of(cobj_dir(c));
	cr_assert_str_eq(now, before);
	free(now);
	/* while the live directory did change */
	cr_assert_eq(nsdir_read(r.fd, false, &live), 0);
	now = names_of(live);
	cr_assert_str_eq(now, "keep\nnew\nsub\n");
	free(now);
	nsdir_free(live);
	/* a renamed-away entry is still reached through its handle */
	check_handle(img, "moved", moved);
	cr_assert_eq(ino_of("e", "moved-here"), moved);
	free(before);
	close(r.fd);
	cobj_table_free(t);	/* frees the image with the entry */
}

Test(nscap, new_directory_is_not_captured, .init = setup, .fini = teardown)
{
	struct cobj_table_opts o = { .block_size = 4096 };
	struct cobj_table *t;
	struct cobj_ref r = { 0 };
	struct cobj *c;
	struct stat st;

	cr_assert_eq(cobj_table_create(&o, &t), 0);
	touch(NULL, "f");
	r.fd = opath(NULL);
	cr_assert_eq(fstat(r.fd, &st), 0);
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	cr_assert_eq(cobj_mark_new(t, &r), 0);
	cr_assert_eq(cobj_get(t, &r, &c), 0);
	cr_assert_eq(nscap_capture(c, &r), 0);
	cr_assert_null(cobj_dir(c));
	cr_assert(!(cobj_flags(c) & COBJ_DIR));
	close(r.fd);
	cobj_table_free(t);
}

struct capper {
	struct cobj *c;
	struct cobj_ref *r;
	pthread_barrier_t *bar;
	int rc;
};

static void *cap_run(void *p)
{
	struct capper *k = p;

	pthread_barrier_wait(k->bar);
	k->rc = nscap_capture(k->c, k->r);
	return NULL;
}

/* Racing first changes to one directory record one image. */
Test(nscap, racing_captures_record_one_image, .init = setup,
     .fini = teardown)
{
	enum { N = 8 };
	struct cobj_table_opts o = { .block_size = 4096 };
	struct capper k[N];
	pthread_t th[N];
	pthread_barrier_t bar;
	struct cobj_table *t;
	struct cobj_ref r = { 0 };
	struct cobj *c;
	struct stat st;
	char name[16];

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		touch(NULL, name);
	}
	cr_assert_eq(cobj_table_create(&o, &t), 0);
	r.fd = opath(NULL);
	cr_assert_eq(fstat(r.fd, &st), 0);
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	for (int round = 0; round < 20; round++) {
		cr_assert_eq(cobj_get(t, &(struct cobj_ref){ .dev = r.dev,
			     .ino = r.ino + 1000000 + (ino_t)round, .fd = r.fd },
			     &c), 0);
		pthread_barrier_init(&bar, NULL, N);
		for (int i = 0; i < N; i++) {
			k[i] = (struct capper){ .c = c, .r = &r, .bar = &bar };
			pthread_create(&th[i], NULL, cap_run, &k[i]);
		}
		for (int i = 0; i < N; i++) {
			pthread_join(th[i], NULL);
			cr_assert_eq(k[i].rc, 0);
		}
		pthread_barrier_destroy(&bar);
		cr_assert(cobj_flags(c) & COBJ_DIR);
		cr_assert_eq(nsdir_count(cobj_dir(c)), 300);
		check_image(cobj_dir(c), true);
	}
	close(r.fd);
	cobj_table_free(t);	/* ASan: one image per entry, none leaked */
}
