/* Unit tests for fs/inode.c: dedup by (dev, ino), forget, bounded fds. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/inode.h"

static char dir[64];
static struct ino_table *t;

static void count_fds(unsigned *n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	*n = 0;
	while ((de = readdir(d)))
		*n += de->d_name[0] != '.';
	closedir(d);
}

static void make_file(const char *name)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	cr_assert_geq(fd, 0, "create %s", p);
	close(fd);
}

static void setup_limit(unsigned limit)
{
	int fd;

	strcpy(dir, "/tmp/swafs-ut-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ino_table_create(fd, limit, &t), 0);
}

static void setup(void)
{
	setup_limit(16);
}

static void teardown(void)
{
	char cmd[128];

	ino_table_free(t);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* Invariant: the table never holds more evictable fds than its limit
 * plus those pinned by callers. */
static void assert_sane(unsigned limit, unsigned pinned)
{
	struct ino_stats s;

	ino_table_stats(t, &s);
	cr_assert_leq(s.fds, limit + pinned, "fds %lu > limit %u + pins %u",
		      (unsigned long)s.fds, limit, pinned);
}

Test(inode, hard_links_share_one_entry, .init = setup, .fini = teardown)
{
	struct ino *a, *b;
	struct stat sa, sb;
	char p1[128], p2[128];

	make_file("a");
	snprintf(p1, sizeof(p1), "%s/a", dir);
	snprintf(p2, sizeof(p2), "%s/b", dir);
	cr_assert_eq(link(p1, p2), 0);
	cr_assert_eq(ino_lookup(t, ino_root(t), "a", &sa, &a), 0);
	cr_assert_eq(ino_lookup(t, ino_root(t), "b", &sb, &b), 0);
	cr_assert_eq(a, b);
	cr_assert_eq(sa.st_ino, sb.st_ino);
	cr_assert_eq(sb.st_nlink, 2);
	ino_forget(t, a, 2);
}

Test(inode, lookup_never_follows_symlinks, .init = setup, .fini = teardown)
{
	struct ino *i;
	struct stat st;
	char p[128];

	snprintf(p, sizeof(p), "%s/l", dir);
	cr_assert_eq(symlink("/etc", p), 0);
	cr_assert_eq(ino_lookup(t, ino_root(t), "l", &st, &i), 0);
	cr_assert(S_ISLNK(st.st_mode));
	cr_assert_eq(ino_type(i), S_IFLNK);
	ino_forget(t, i, 1);
}

Test(inode, missing_name_is_enoent, .init = setup, .fini = teardown)
{
	struct ino *i;
	struct stat st;

	cr_assert_eq(ino_lookup(t, ino_root(t), "nope", &st, &i), -ENOENT);
}

Test(inode, forget_frees_entries, .init = setup, .fini = teardown)
{
	struct ino_stats s;
	struct ino *i;
	struct stat st;

	make_file("f");
	cr_assert_eq(ino_lookup(t, ino_root(t), "f", &st, &i), 0);
	cr_assert_eq(ino_lookup(t, ino_root(t), "f", &st, &i), 0);
	ino_table_stats(t, &s);
	cr_assert_eq(s.entries, 2);
	ino_forget(t, i, 1);
	ino_table_stats(t, &s);
	cr_assert_eq(s.entries, 2, "one lookup reference is still held");
	ino_forget(t, i, 1);
	ino_table_stats(t, &s);
	cr_assert_eq(s.entries, 1, "only the root remains");
}

Test(inode, descriptors_stay_bounded, .init = setup, .fini = teardown)
{
	enum { N = 500 };
	static struct ino *is[N];
	unsigned before, after;
	struct stat st;
	char name[32];

	cr_assert(ino_table_uses_handles(t), "tests run as root on ext4/tmpfs");
	for (int k = 0; k < N; k++) {
		snprintf(name, sizeof(name), "f%d", k);
		make_file(name);
	}
	count_fds(&before);
	for (int k = 0; k < N; k++) {
		snprintf(name, sizeof(name), "f%d", k);
		cr_assert_eq(ino_lookup(t, ino_root(t), name, &st, &is[k]), 0);
		assert_sane(16, 0);
	}
	count_fds(&after);
	cr_assert_leq(after, before + 16 + 4);
	/* Every entry is still usable: evicted ones are reopened by handle. */
	for (int k = 0; k < N; k++) {
		struct stat s2;
		int fd = ino_fd_get(t, is[k]);

		cr_assert_geq(fd, 0);
		cr_assert_eq(fstatat(fd, "", &s2, AT_EMPTY_PATH), 0);
		ino_fd_put(t, is[k]);
		assert_sane(16, 0);
	}
	for (int k = 0; k < N; k++)
		ino_forget(t, is[k], 1);
}

Test(inode, pinned_fd_survives_eviction, .init = setup, .fini = teardown)
{
	struct ino *keep, *other;
	struct stat st, s2;
	char name[32];
	int fd;

	make_file("keep");
	cr_assert_eq(ino_lookup(t, ino_root(t), "keep", &st, &keep), 0);
	fd = ino_fd_get(t, keep);
	cr_assert_geq(fd, 0);
	for (int k = 0; k < 100; k++) {
		snprintf(name, sizeof(name), "o%d", k);
		make_file(name);
		cr_assert_eq(ino_lookup(t, ino_root(t), name, &s2, &other), 0);
		ino_forget(t, other, 1);
	}
	cr_assert_eq(fstatat(fd, "", &s2, AT_EMPTY_PATH), 0);
	cr_assert_eq(s2.st_ino, st.st_ino, "a pinned fd is never closed");
	ino_fd_put(t, keep);
	ino_forget(t, keep, 1);
}

Test(inode, reused_inode_number_gets_new_entry, .init = setup,
     .fini = teardown)
{
	struct ino *old, *neu;
	struct stat st;
	char p[128];
	int tries;

	/* Unlink and recreate until the filesystem hands the number out
	 * again (ext4 and tmpfs usually do at once). */
	make_file("x");
	cr_assert_eq(ino_lookup(t, ino_root(t), "x", &st, &old), 0);
	snprintf(p, sizeof(p), "%s/x", dir);
	for (tries = 0; tries < 50; tries++) {
		struct stat s2;

		cr_assert_eq(unlink(p), 0);
		make_file("x");
		cr_assert_eq(lstat(p, &s2), 0);
		if (s2.st_ino == st.st_ino)
			break;
	}
	cr_assert_eq(ino_lookup(t, ino_root(t), "x", &st, &neu), 0);
	if (tries < 50)
		cr_assert_neq(old, neu, "a new object must not reuse the "
			      "entry of a deleted one");
	ino_forget(t, old, 1);
	ino_forget(t, neu, 1);
}

struct race_arg {
	int seed;
	int errors;
};

/* Lookups, pins and forgets from many threads over few names. */
static void *race_thread(void *p)
{
	struct race_arg *a = p;
	unsigned r = (unsigned)a->seed;

	for (int k = 0; k < 4000; k++) {
		char name[16];
		struct ino *i;
		struct stat st;
		int fd;

		snprintf(name, sizeof(name), "r%u", rand_r(&r) % 64);
		if (ino_lookup(t, ino_root(t), name, &st, &i) < 0) {
			a->errors++;
			continue;
		}
		fd = ino_fd_get(t, i);
		if (fd < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
			a->errors++;
		if (fd >= 0)
			ino_fd_put(t, i);
		ino_forget(t, i, 1);
	}
	return NULL;
}

Test(inode, concurrent_lookup_pin_forget, .init = setup, .fini = teardown)
{
	enum { T = 8 };
	pthread_t th[T];
	struct race_arg args[T];
	struct ino_stats s;
	char name[16];

	for (int k = 0; k < 64; k++) {
		snprintf(name, sizeof(name), "r%d", k);
		make_file(name);
	}
	for (int k = 0; k < T; k++) {
		args[k] = (struct race_arg){ .seed = k + 1 };
		pthread_create(&th[k], NULL, race_thread, &args[k]);
	}
	for (int k = 0; k < T; k++) {
		pthread_join(th[k], NULL);
		cr_assert_eq(args[k].errors, 0);
	}
	ino_table_stats(t, &s);
	cr_assert_eq(s.entries, 1, "every entry forgotten");
	cr_assert_eq(s.fds, 0);
}
