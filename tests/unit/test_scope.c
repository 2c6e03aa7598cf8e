/* Unit tests for snapshot/scope.c: what a --path checkpoint records at T
 * (ancestors with only their leading names, roots by identity, covered
 * and missing paths), and which objects first touched after T belong to
 * the scope after the roots and their ancestors were renamed (scope.h). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/cobj.h"
#include "snapshot/nscap.h"
#include "snapshot/pstore.h"
#include "snapshot/scope.h"

static char dir[64];
static int root = -1;
static struct pstore *ps;
static struct cobj_table *t;

static void mk(const char *rel, bool is_dir)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	if (is_dir) {
		cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s", p);
		return;
	}
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	cr_assert_geq(fd, 0, "create %s", p);
	close(fd);
}

static void mv(const char *from, const char *to)
{
	cr_assert_eq(renameat(root, from, root, to), 0, "mv %s %s", from, to);
}

/* The entry of the object at rel, or NULL. */
static struct cobj *entry(const char *rel)
{
	struct stat st;

	cr_assert_eq(fstatat(root, rel[0] ? rel : ".", &st,
			     AT_SYMLINK_NOFOLLOW), 0, "stat %s", rel);
	return cobj_find(t, st.st_dev, st.st_ino);
}

/* sub1/{f,d/g}, sub2/{x/y/h,other/o}, sib/s, top */
static void setup(void)
{
	struct pstore_limits lim = { .mem_max = 1 << 20,
				     .disk_max = 1 << 24 };
	struct cobj_table_opts o = { .block_size = 4096 };

	strcpy(dir, "/tmp/swafs-scope-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(root, 0);
	cr_assert_eq(pstore_create(dir, &lim, &ps), 0);
	o.store = ps;
	cr_assert_eq(cobj_table_create(&o, &t), 0);
	mk("sub1", true);
	mk("sub1/f", false);
	mk("sub1/d", true);
	mk("sub1/d/g", false);
	mk("sub2", true);
	mk("sub2/x", true);
	mk("sub2/x/y", true);
	mk("sub2/x/y/h", false);
	mk("sub2/other", true);
	mk("sub2/other/o", false);
	mk("sib", true);
	mk("sib/s", false);
	mk("top", false);
}

static void teardown(void)
{
	char cmd[128];

	cobj_table_free(t);
	pstore_free(ps);
	close(root);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void take(const char *const *paths, size_t n)
{
	cr_assert_eq(scope_capture(t, root, paths, n), 0);
}

/* The names an ancestor's T image holds, comma-separated. */
static void names_of(const char *rel, char *out, size_t size)
{
	struct cobj *c = entry(rel);
	struct nsent e;

	out[0] = '\0';
	cr_assert_not_null(c, "%s has no entry", rel);
	cr_assert_eq(cobj_flags(c) & (COBJ_ANCESTOR | COBJ_DIR),
		     COBJ_ANCESTOR | COBJ_DIR, "%s: not an ancestor", rel);
	for (size_t k = 0; k < nsdir_count(cobj_dir(c)); k++) {
		nsdir_entry(cobj_dir(c), k, &e);
		cr_assert_not_null(e.fh, "%s/%s: no handle", rel, e.name);
		snprintf(out + strlen(out), size - strlen(out), "%s%s",
			 k ? "," : "", e.name);
	}
}

Test(scope, ancestors_hold_only_the_leading_names, .init = setup,
     .fini = teardown)
{
	const char *paths[] = { "sub2/x", "sub1", "top" };
	char names[256];

	take(paths, 3);
	names_of("", names, sizeof(names));
	cr_assert_str_eq(names, "sub1,sub2,top");
	names_of("sub2", names, sizeof(names));
	cr_assert_str_eq(names, "x");
	/* roots: T attributes recorded, in scope, not ancestors */
	cr_assert_not_null(entry("sub1"));
	cr_assert_eq(cobj_flags(entry("sub1")), 0);
	cr_assert_eq(cobj_flags(entry("sub2/x")), 0);
	cr_assert(S_ISDIR(cobj_stat(entry("sub2/x"))->st_mode));
	/* nothing else: siblings, subtrees and files are not touched */
	cr_assert_null(entry("sib"));
	cr_assert_null(entry("sub2/other"));
	cr_assert_null(entry("sub1/d"));
	cr_assert_null(entry("sub1/f"));
	/* a file can be a root */
	cr_assert_eq(cobj_flags(entry("top")), 0);
}

Test(scope, covered_and_repeated_paths_add_nothing, .init = setup,
     .fini = teardown)
{
	const char *paths[] = { "sub2/x/y", "sub2", "sub2/x", "sub2" };
	char names[256];

	take(paths, 4);
	names_of("", names, sizeof(names));
	cr_assert_str_eq(names, "sub2");
	/* sub2 is a root: in scope, and no ancestor below it */
	cr_assert_eq(cobj_flags(entry("sub2")), 0);
	cr_assert_null(entry("sub2/x"));
	cr_assert_null(entry("sub2/x/y"));
}

Test(scope, missing_paths_end_where_the_tree_ends, .init = setup,
     .fini = teardown)
{
	const char *paths[] = { "gone/a/b", "top/z", "sub1/none" };
	char names[256];

	take(paths, 3);
	/* "gone" is not there and "top" is a file: neither leads on, so
	 * neither is listed; sub1 leads to a missing name */
	names_of("", names, sizeof(names));
	cr_assert_str_eq(names, "sub1");
	names_of("sub1", names, sizeof(names));
	cr_assert_str_eq(names, "");
	cr_assert_null(entry("top"));
}

Test(scope, holds_follows_moved_roots_and_subtrees, .init = setup,
     .fini = teardown)
{
	const char *paths[] = { "sub1", "sub2/x" };

	take(paths, 2);
	/* by path alone these would be outside: the roots moved */
	mv("sub1", "renamed");
	mv("sub2", "zzz");
	cr_assert(scope_holds(t, root, "renamed/f"));
	cr_assert(scope_holds(t, root, "renamed/d/g"));
	cr_assert(scope_holds(t, root, "zzz/x/y/h"));
	/* a root moved below a sibling */
	mv("zzz/x", "sib/x");
	cr_assert(scope_holds(t, root, "sib/x/y/h"));
	/* outside: siblings and ancestors' other children */
	cr_assert_not(scope_holds(t, root, "sib/s"));
	cr_assert_not(scope_holds(t, root, "zzz/other/o"));
	cr_assert_not(scope_holds(t, root, "top"));
	/* the directory itself is not on its own path */
	cr_assert_not(scope_holds(t, root, "renamed"));
}

Test(scope, holds_follows_a_t_directory_moved_out, .init = setup,
     .fini = teardown)
{
	const char *paths[] = { "sub1" };
	struct cobj *c;
	struct cobj_ref r = { .fd = -1 };
	struct stat st;

	take(paths, 1);
	/* a capture hook gave sub1/d an entry before it moved out */
	r.fd = openat(root, "sub1/d", O_PATH | O_CLOEXEC);
	cr_assert_geq(r.fd, 0);
	cr_assert_eq(fstat(r.fd, &st), 0);
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	cr_assert_eq(cobj_get(t, &r, &c), 0);
	close(r.fd);
	mv("sub1/d", "sib/d");
	cr_assert(scope_holds(t, root, "sib/d/g"));
}

Test(scope, new_and_dead_entries_do_not_count, .init = setup,
     .fini = teardown)
{
	const char *paths[] = { "sub2/x" };
	struct cobj_ref r = { .fd = -1 };
	struct stat st;

	take(paths, 1);
	/* sib marked new (post-T, or out of scope): its files stay out */
	r.fd = openat(root, "sib", O_PATH | O_CLOEXEC);
	cr_assert_eq(fstat(r.fd, &st), 0);
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	cr_assert_eq(cobj_mark_new(t, &r), 0);
	close(r.fd);
	cr_assert_not(scope_holds(t, root, "sib/s"));
	/* an ancestor moved: what is under it stays out */
	mv("sub2", "moved");
	cr_assert_not(scope_holds(t, root, "moved/other/o"));
	/* a path that changed meanwhile: in doubt, in */
	cr_assert(scope_holds(t, root, "nowhere/at/all"));
}

Test(scope, covers)
{
	const char *paths[] = { "a/b", "c" };

	cr_assert(scope_covers(paths, 2, "a/b"));
	cr_assert(scope_covers(paths, 2, "a/b/z"));
	cr_assert(scope_covers(paths, 2, "c/d"));
	cr_assert_not(scope_covers(paths, 2, "a"));
	cr_assert_not(scope_covers(paths, 2, "a/bc"));
	cr_assert_not(scope_covers(paths, 2, "cd"));
	cr_assert_not(scope_covers(paths, 0, "c"));
}

Test(scope, pick_lists_existing_names_once_sorted, .init = setup,
     .fini = teardown)
{
	const char *names[] = { "top", "sub2", "nothere", "sub1", "top" };
	struct nsdir *d;
	struct nsent e;
	struct stat st;

	cr_assert_eq(nsdir_pick(root, names, 5, &d), 0);
	cr_assert_eq(nsdir_count(d), 3);
	nsdir_entry(d, 0, &e);
	cr_assert_str_eq(e.name, "sub1");
	cr_assert_eq(e.type, DT_DIR);
	cr_assert_eq(fstatat(root, "sub1", &st, 0), 0);
	cr_assert_eq(e.ino, st.st_ino);
	cr_assert_not_null(e.fh);
	nsdir_entry(d, 2, &e);
	cr_assert_str_eq(e.name, "top");
	cr_assert_eq(e.type, DT_REG);
	cr_assert_eq(nsdir_find(d, "nothere"), -ENOENT);
	cr_assert_geq(nsdir_find(d, "sub2"), 0);
	nsdir_free(d);
}
