/*
 * syncdir.c - the directories and sockets of sync group coordinators
 * (syncdir.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tools/syncdir.h"

#define ROOT_PARENT "/run"
#define USER_PARENT "/tmp"
#define USER_PREFIX "swafs-sync-"

/* fd is a directory of owner that grants others none of deny. */
static int check(int fd, uid_t owner, mode_t deny, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode) && st.st_uid == owner && !(st.st_mode & deny))
		return 0;
	fprintf(stderr, "swactl: sync group directory '%s' is not safe to "
		"use: owner uid %u, mode %04o (want uid %u, no %s access for "
		"others)\n", path, (unsigned)st.st_uid,
		(unsigned)(st.st_mode & 07777), (unsigned)owner,
		deny == 077 ? "" : "write ");
	return -EPERM;
}

/*
 * name under parent: made with mode if create and missing (mode set
 * exactly, whatever the umask), opened without following a symlink,
 * checked.  Consumes parent.
 */
static int step(int parent, const char *name, uid_t owner, mode_t deny,
		bool create, mode_t mode, const char *path)
{
	bool made = create && mkdirat(parent, name, mode) == 0;
	int fd, rc;

	if (create && !made && errno != EEXIST) {
		rc = -errno;
		fprintf(stderr, "swactl: cannot create sync group directory "
			"'%s': %s\n", path, strerror(errno));
		close(parent);
		return rc;
	}
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	rc = fd < 0 ? -errno : 0;
	close(parent);
	if (rc == -ELOOP || rc == -ENOTDIR)
		fprintf(stderr, "swactl: sync group directory '%s' is a "
			"symlink or not a directory: not using it\n", path);
	else if (rc < 0 && (create || (rc != -ENOENT && rc != -EACCES)))
		fprintf(stderr, "swactl: cannot open sync group directory "
			"'%s': %s\n", path, strerror(-rc));
	if (rc == 0 && made && fchmod(fd, mode) < 0)
		rc = -errno;
	if (rc == 0)
		rc = check(fd, owner, deny, path);
	if (rc < 0 && fd >= 0)
		close(fd);
	return rc < 0 ? rc : fd;
}

int syncdir_open(uid_t owner, bool create)
{
	char name[32], path[64];
	const char *top = owner == 0 ? ROOT_PARENT : USER_PARENT;
	int fd = open(top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0 ||
	    ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))) {
		fprintf(stderr, "swactl: '%s' is not a directory of root's "
			"fit for sync groups\n", top);
		if (fd >= 0)
			close(fd);
		return -EPERM;
	}
	if (owner == 0) {
		fd = step(fd, "swafs", 0, 022, create, 0755, "/run/swafs");
		return fd < 0 ? fd : step(fd, "sync", 0, 022, create, 0755,
					  "/run/swafs/sync");
	}
	snprintf(name, sizeof(name), USER_PREFIX "%u", (unsigned)owner);
	snprintf(path, sizeof(path), USER_PARENT "/%s", name);
	return step(fd, name, owner, 077, create, 0700, path);
}

/* The address of ID.sock in dfd, reached through the descriptor. */
static socklen_t sock_addr(int dfd, const char *id, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s.sock",
		 dfd, id);
	return (socklen_t)sizeof(*sa);
}

int syncdir_connect(int dfd, uid_t owner, const char *id)
{
	struct sockaddr_un sa;
	socklen_t len = sock_addr(dfd, id, &sa);
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (cred.uid == owner)
		return fd;
	fprintf(stderr, "swactl: sync group %s: its coordinator runs as uid "
		"%u, not as its directory's owner (uid %u): not talking to it\n",
		id, (unsigned)cred.uid, (unsigned)owner);
	close(fd);
	return -EPERM;
}

/* Bind ID.sock, replacing a socket nobody listens on (a dead coordinator's). */
static int bind_fresh(int lfd, int dfd, const char *id)
{
	struct sockaddr_un sa;
	socklen_t len = sock_addr(dfd, id, &sa);
	char name[80];
	int probe;

	if (bind(lfd, (struct sockaddr *)&sa, len) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return -errno;
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -errno;
	if (connect(probe, (struct sockaddr *)&sa, len) == 0 ||
	    errno != ECONNREFUSED) {
		close(probe);
		return -EADDRINUSE;
	}
	close(probe);
	snprintf(name, sizeof(name), "%s.sock", id);
	if (unlinkat(dfd, name, 0) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, len) < 0)
		return -errno;
	return 0;
}

/*
 * Starts of one directory are serialised by a lock file of the owner's
 * (never a flock on the directory, which others may open): a start that
 * finds a socket between another start's bind and listen must not take
 * it for a dead coordinator's.
 */
static int lock_dir(int dfd, uid_t owner)
{
	struct stat st;
	int fd = openat(dfd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW |
			O_NONBLOCK | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != owner ||
	    flock(fd, LOCK_EX) < 0) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int syncdir_listen(int dfd, uid_t owner, const char *id)
{
	int lock = lock_dir(dfd, owner), lfd, rc;
	mode_t old;

	if (lock < 0)
		return lock;
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = lfd < 0 ? -errno : 0;
	/* root's sockets may be listed by anyone; a user's directory is
	 * closed to others anyway */
	old = umask(owner == 0 ? 0111 : 0177);
	if (rc == 0)
		rc = bind_fresh(lfd, dfd, id);
	umask(old);
	if (rc == 0 && listen(lfd, 64) < 0)
		rc = -errno;
	close(lock);
	if (rc < 0 && lfd >= 0)
		close(lfd);
	return rc < 0 ? rc : lfd;
}

ino_t syncdir_ino(int dfd, const char *id)
{
	char name[80];
	struct stat st;

	snprintf(name, sizeof(name), "%s.sock", id);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return st.st_ino;
}

void syncdir_unlink(int dfd, const char *id, ino_t ino)
{
	char name[80];

	snprintf(name, sizeof(name), "%s.sock", id);
	if (ino && syncdir_ino(dfd, id) == ino)
		unlinkat(dfd, name, 0);
}

/* fn on owner's directory if it exists and is safe; true: stop. */
static bool visit(uid_t owner, bool (*fn)(int, uid_t, void *), void *arg)
{
	int fd = syncdir_open(owner, false);
	bool stop;

	if (fd < 0)
		return false;
	stop = fn(fd, owner, arg);
	close(fd);
	return stop;
}

/* Root visiting every user's directory under /tmp. */
static void visit_users(bool (*fn)(int, uid_t, void *), void *arg)
{
	DIR *d = opendir(USER_PARENT);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char *end;
		unsigned long uid;

		if (strncmp(e->d_name, USER_PREFIX, strlen(USER_PREFIX)))
			continue;
		uid = strtoul(e->d_name + strlen(USER_PREFIX), &end, 10);
		if (*end || uid == 0 || uid > (uid_t)-2 ||
		    end == e->d_name + strlen(USER_PREFIX))
			continue;
		if (visit((uid_t)uid, fn, arg))
			break;
	}
	if (d)
		closedir(d);
}

void syncdir_each(bool users, bool (*fn)(int dfd, uid_t owner, void *arg),
		  void *arg)
{
	uid_t me = geteuid();

	if (me != 0 && visit(me, fn, arg))
		return;
	if (visit(0, fn, arg))
		return;
	if (me == 0 && users)
		visit_users(fn, arg);
}
