/* Unit tests for fs/vmount.c's resolution of a view directory: one
 * spelling, no symlink anywhere, the owners of the directories above and
 * of the directory itself (as root: owners are set with chown). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/vmount.h"

#define OTHER 4242
#define ME 4343

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/swafs-vmount-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0755), 0);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static const char *at(const char *rel)
{
	static char p[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s%s%s", dir, *rel ? "/" : "", rel);
	return p[k];
}

static void mk(const char *rel, mode_t mode, uid_t uid)
{
	cr_assert_eq(mkdir(at(rel), mode), 0);
	cr_assert_eq(chmod(at(rel), mode), 0);
	if (uid != geteuid())
		cr_assert_eq(chown(at(rel), uid, uid), 0);
}

/* vmount_dir_open's result: 0 for a descriptor of exactly path's dir. */
static int try(const char *path, uid_t uid)
{
	struct stat a, b;
	int fd = vmount_dir_open(path, uid);

	if (fd < 0)
		return fd;
	cr_assert_eq(fstat(fd, &a), 0);
	cr_assert_eq(lstat(path, &b), 0);
	cr_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	close(fd);
	return 0;
}

Test(vmount, spelling, .init = setup, .fini = teardown)
{
	char p[300];

	mk("v", 0755, 0);
	cr_assert_eq(try(at("v"), 0), 0);
	snprintf(p, sizeof(p), "%s/./v", dir);
	cr_assert_eq(try(p, 0), -EINVAL);
	snprintf(p, sizeof(p), "%s//v", dir);
	cr_assert_eq(try(p, 0), -EINVAL);
	snprintf(p, sizeof(p), "%s/v/", dir);
	cr_assert_eq(try(p, 0), -EINVAL);
	snprintf(p, sizeof(p), "%s/v/..", dir);
	cr_assert_eq(try(p, 0), -EINVAL);
	cr_assert_eq(try("relative/v", 0), -EINVAL);
}

Test(vmount, no_symlink_anywhere, .init = setup, .fini = teardown)
{
	mk("real", 0755, 0);
	mk("real/v", 0755, 0);
	cr_assert_eq(symlink("real", at("link")), 0);
	cr_assert_eq(symlink("real/v", at("lv")), 0);
	cr_assert_eq(try(at("link/v"), 0), -ELOOP);
	cr_assert_eq(try(at("lv"), 0), -ELOOP);
	cr_assert_eq(try(at("real/v"), 0), 0);
	cr_assert_eq(try(at("nope"), 0), -ENOENT);
}

Test(vmount, owners_above_and_of_dir, .init = setup, .fini = teardown)
{
	if (geteuid() != 0)	/* owners are set with chown */
		return;
	mk("theirs", 0755, OTHER);
	mk("theirs/v", 0755, 0);
	mk("mine", 0755, ME);
	mk("mine/v", 0755, ME);
	mk("mine/rootv", 0755, 0);
	mk("gw", 0775, 0);
	mk("gw/v", 0755, 0);
	mk("sticky", 01777, 0);
	mk("sticky/v", 0755, ME);
	/* a directory above that another user owns, or others may write */
	cr_assert_eq(try(at("theirs/v"), 0), -EPERM);
	cr_assert_eq(try(at("theirs/v"), ME), -EPERM);
	cr_assert_eq(try(at("gw/v"), 0), -EPERM);
	/* the asker's own directories, and sticky ones like /tmp */
	cr_assert_eq(try(at("mine/v"), ME), 0);
	cr_assert_eq(try(at("sticky/v"), ME), 0);
	cr_assert_eq(try(at("mine/v"), 0), -EPERM, "root below a user's dir");
	/* DIR itself: the asker's unless root asks */
	cr_assert_eq(try(at("mine/rootv"), ME), -EPERM);
	cr_assert_eq(try(at("sticky/v"), 0), 0);
}
