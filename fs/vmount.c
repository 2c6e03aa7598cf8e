/*
 * vmount.c - resolve and mount a view's directory (vmount.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/vmount.h"

/* One component below fd, never through a symlink or a magic link. */
static int open_below(int fd, const char *name)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int r = (int)syscall(SYS_openat2, fd, name, &how, sizeof(how));

	return r < 0 ? -errno : r;
}

/* Nobody but root and uid may change what an ancestor's names lead to. */
static bool ancestor_ok(const struct stat *st, uid_t uid)
{
	if (st->st_uid != 0 && st->st_uid != uid)
		return false;
	return !(st->st_mode & (S_IWGRP | S_IWOTH)) || (st->st_mode & S_ISVTX);
}

/* Walk path (canonical, writable copy) from /; check each ancestor for
 * uid if check. */
static int walk(char *path, bool check, uid_t uid)
{
	char *save = NULL, *name;
	struct stat st;
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), next;

	if (fd < 0)
		return -errno;
	for (name = strtok_r(path, "/", &save); name;
	     name = strtok_r(NULL, "/", &save)) {
		next = 0;
		if (check && (fstat(fd, &st) < 0 || !ancestor_ok(&st, uid)))
			next = -EPERM;
		if (next == 0)
			next = open_below(fd, name);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	return fd;
}

/* One spelling per directory: views are told apart by their paths. */
static bool canonical(const char *dir)
{
	size_t n = strlen(dir);

	return dir[0] == '/' && !strstr(dir, "//") && !strstr(dir, "/./") &&
	       !strstr(dir, "/../") && (n == 1 || dir[n - 1] != '/') &&
	       (n < 2 || strcmp(dir + n - 2, "/.")) &&
	       (n < 3 || strcmp(dir + n - 3, "/.."));
}

int vmount_dir_open(const char *dir, uid_t uid)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	if (!canonical(dir) || strlen(dir) >= sizeof(path))
		return -EINVAL;
	strcpy(path, dir);
	fd = walk(path, true, uid);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || (uid != 0 && st.st_uid != uid)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int set_str(int fs, const char *key, const char *val)
{
	return fsconfig(fs, FSCONFIG_SET_STRING, key, val, 0) < 0 ? -errno : 0;
}

/* The fs context of a FUSE filesystem served on fuse_fd. */
static int configure(int fs, int fuse_fd, const char *fsname,
		     bool allow_other)
{
	char num[3][24];
	int rc;

	snprintf(num[0], sizeof(num[0]), "%d", fuse_fd);
	snprintf(num[1], sizeof(num[1]), "%u", (unsigned)getuid());
	snprintf(num[2], sizeof(num[2]), "%u", (unsigned)getgid());
	rc = set_str(fs, "fd", num[0]);
	if (rc == 0)
		rc = set_str(fs, "rootmode", "40000");
	if (rc == 0)
		rc = set_str(fs, "user_id", num[1]);
	if (rc == 0)
		rc = set_str(fs, "group_id", num[2]);
	if (rc == 0)
		rc = set_str(fs, "subtype", "swafs-view");
	if (rc == 0)
		rc = set_str(fs, "source", fsname);
	if (rc == 0 && (fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
			fsconfig(fs, FSCONFIG_SET_FLAG, "default_permissions",
				 NULL, 0) < 0 ||
			(allow_other && fsconfig(fs, FSCONFIG_SET_FLAG,
						 "allow_other", NULL, 0) < 0) ||
			fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0))
		rc = -errno;
	return rc;
}

/* The id of the mount fd is on; no request reaches a FUSE server. */
static int mount_id(int fd, uint64_t *id)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID,
		  &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID))
		return -ENOTSUP;
	*id = stx.stx_mnt_id;
	return 0;
}

int vmount_attach(int dfd, const char *fsname, bool allow_other,
		  uint64_t *mnt_id)
{
	int fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC), fs = -1, mfd = -1;
	uint64_t id = 0;
	int rc;

	if (fuse_fd < 0)
		return -errno;
	fs = fsopen("fuse", FSOPEN_CLOEXEC);
	rc = fs < 0 ? -errno : configure(fs, fuse_fd, fsname, allow_other);
	if (rc == 0) {
		mfd = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY |
			      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
		rc = mfd < 0 ? -errno : mount_id(mfd, &id);
	}
	if (rc == 0 && move_mount(mfd, "", dfd, "", MOVE_MOUNT_F_EMPTY_PATH |
				  MOVE_MOUNT_T_EMPTY_PATH) < 0)
		rc = -errno;
	if (fs >= 0)
		close(fs);
	if (mfd >= 0)	/* not kept: an open mount root would make umount busy */
		close(mfd);
	if (rc < 0) {
		close(fuse_fd);
		return rc;
	}
	*mnt_id = id;
	return fuse_fd;
}

void vmount_detach(const char *dir, uint64_t mnt_id)
{
	char path[PATH_MAX], proc[40];
	uint64_t id;
	int fd;

	if (!canonical(dir) || strlen(dir) >= sizeof(path))
		return;
	strcpy(path, dir);
	/* the mount id, not the owners, decides */
	fd = walk(path, false, 0);
	if (fd < 0)
		return;
	if (mount_id(fd, &id) == 0 && id == mnt_id) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		umount2(proc, MNT_DETACH);
	}
	close(fd);
}
