/*
 * ctlclient.c - control socket client.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "snapshot/ctlmsg.h"
#include "snapshot/parse.h"
#include "tools/ctlclient.h"

#define CTL_TIMEOUT_MAX (365.0 * 86400)

static double reply_timeout = CTL_TIMEOUT_DEFAULT;
static double last_bound;	/* named in a timeout message */
static char last_mnt[256];

int ctl_timeout_load(void)
{
	const char *s = getenv("SWACTL_TIMEOUT");
	double v;

	if (!s)
		return 0;
	if (parse_secs(s, CTL_TIMEOUT_MAX, &v) < 0)
		return -EINVAL;
	reply_timeout = v;
	return 0;
}

double ctl_timeout(void)
{
	return reply_timeout;
}

void ctl_set_timeout(int fd, double extra)
{
	double t = extra < 0 || reply_timeout == 0 ? 0 : reply_timeout + extra;
	struct timeval tv = { .tv_sec = (time_t)t,
			      .tv_usec = (suseconds_t)((t - (time_t)t) * 1e6) };

	if (t > 0 && !tv.tv_sec && !tv.tv_usec)
		tv.tv_usec = 1;	/* zero would mean no bound */
	last_bound = t;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/*
 * The owner of the swafs mount with device number dev: user_id= of its
 * line in mountinfo (the kernel's, from whoever mounted it), read from
 * the last field, the super options: the source before it is the
 * mounter's text (fsname=, BACKING) and may hold anything but spaces.
 */
static int mount_owner(dev_t dev, uid_t *owner)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	unsigned maj, min, uid;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (rc && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - fuse.swafs "), *u;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 || !sep ||
		    makedev(maj, min) != dev)
			continue;
		u = strstr(strrchr(line, ' '), ",user_id=");
		if (u && sscanf(u, ",user_id=%u", &uid) == 1) {
			*owner = uid;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

/*
 * No socket of the mount answers.  Ask the kernel (not its cache) whether
 * the daemon is still there: once it died, every request on its mount
 * fails at once with ENOTCONN.  A live daemon without a socket answers.
 */
static void say_gone(const char *mnt, char *why, size_t size)
{
	snprintf(why, size, "the daemon of '%s' is gone and left its mount "
		 "behind; 'umount -l %s', then mount the tree again", mnt, mnt);
}

static void gone_or_silent(const char *mnt, char *why, size_t size)
{
	struct statx stx;

	if (statx(AT_FDCWD, mnt, AT_STATX_FORCE_SYNC, STATX_TYPE, &stx) < 0 &&
	    errno == ENOTCONN)
		say_gone(mnt, why, size);
	else
		snprintf(why, size, "the daemon of the swafs live tree '%s' "
			 "has no control socket where swactl looks (see "
			 "swafs(8), FILES)", mnt);
}

/*
 * Connect to the first socket of the mount that answers
 * (ctlmsg_socket_dirs) and trust it only when root or the mount's owner
 * serves it: anyone else answering there is impersonating the daemon.
 */
static int connect_daemon(const char *mnt, dev_t dev, uid_t owner, char *why,
			  size_t size)
{
	char dirs[CTLMSG_DIRS_MAX][CTLMSG_PATH_MAX], name[32];
	char path[CTLMSG_PATH_MAX + sizeof(name)];
	struct ucred cred;
	socklen_t len = sizeof(cred);
	size_t n = ctlmsg_socket_dirs(owner, getuid() == owner ?
				      getenv("XDG_RUNTIME_DIR") : NULL, dirs,
				      CTLMSG_DIRS_MAX);
	bool denied = false;
	int fd = -ENOENT;

	ctlmsg_socket_name(dev, name, sizeof(name));
	for (size_t k = 0; k < n && fd < 0; k++) {
		snprintf(path, sizeof(path), "%.*s/%s", CTLMSG_PATH_MAX - 1,
			 dirs[k], name);
		fd = try_connect(path);
		denied |= fd == -EACCES;
	}
	if (fd < 0 && denied) {
		snprintf(why, size, "the control socket of '%s' is private to "
			 "its owner (uid %u) and root", mnt, (unsigned)owner);
		return -EACCES;
	}
	if (fd < 0) {
		gone_or_silent(mnt, why, size);
		return -ENOTCONN;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != owner)) {
		snprintf(why, size, "'%s' is served by uid %d, neither root "
			 "nor the mount's owner (uid %u): not trusting it",
			 path, len == sizeof(cred) ? (int)cred.uid : -1,
			 (unsigned)owner);
		close(fd);
		return -EPERM;
	}
	return fd;
}

int ctl_connect(const char *mnt, char *why, size_t size)
{
	struct statx stx;
	uid_t owner;
	dev_t dev;
	int fd;

	/* cached attributes: no request to a daemon that may not answer */
	if (statx(AT_FDCWD, mnt, AT_STATX_DONT_SYNC, STATX_TYPE, &stx) < 0) {
		if (errno == ENOTCONN)
			say_gone(mnt, why, size);
		else
			snprintf(why, size, "cannot access '%s': %s", mnt,
				 strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(stx.stx_mode)) {
		snprintf(why, size, "'%s' is not a directory", mnt);
		return -ENOTDIR;
	}
	dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	if (mount_owner(dev, &owner) < 0) {
		snprintf(why, size, "'%s' is not a swafs live tree (not a "
			 "swafs mount)", mnt);
		return -ENOTCONN;
	}
	/* a directory inside the tree would take the whole tree */
	if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		snprintf(why, size, "'%s' is inside a swafs live tree, not its "
			 "mount point; give the mount point (a checkpoint "
			 "covers subtrees with --path)", mnt);
		return -EINVAL;
	}
	fd = connect_daemon(mnt, dev, owner, why, size);
	if (fd < 0)
		return fd;
	snprintf(last_mnt, sizeof(last_mnt), "%s", mnt);
	ctl_set_timeout(fd, 0);
	return fd;
}

FILE *ctl_request(int fd, int argc, char *const argv[])
{
	char line[CTLMSG_MAX] = "";
	size_t n;

	for (int k = 0; k < argc; k++) {
		if (ctlmsg_add(line, sizeof(line) - 1, argv[k]) < 0) {
			errno = ENAMETOOLONG;
			return NULL;
		}
	}
	n = strlen(line);
	line[n++] = '\n';
	if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t)n)
		return NULL;
	return fdopen(fd, "r");
}

int ctl_parse_status(const char *line, const char *who, char *rest,
		     size_t size)
{
	const char *msg;
	int code;

	if (!strncmp(line, "ok", 2) && (!line[2] || line[2] == ' ')) {
		size_t n = line[2] ? strlen(line + 3) : 0;

		n = n < size ? n : size - 1;
		if (n)
			memcpy(rest, line + 3, n);
		rest[n] = '\0';
		return 0;
	}
	if (sscanf(line, "err %d", &code) == 1 &&
	    (msg = strchr(line + 4, ' '))) {
		fprintf(stderr, "swactl: %s%s%s\n", who ? who : "",
			who ? ": " : "", msg + 1);
		return code >= 1 && code <= 4 ? code : 1;
	}
	fprintf(stderr, "swactl: %s%sunexpected answer from the daemon\n",
		who ? who : "", who ? ": " : "");
	return 1;
}

int ctl_read_line(FILE *f, const char *who, char *line, size_t size)
{
	if (fgets(line, (int)size, f)) {
		line[strcspn(line, "\n")] = '\0';
		return 0;
	}
	if (ferror(f) && (errno == EAGAIN || errno == EWOULDBLOCK))
		fprintf(stderr, "swactl: no answer from the daemon of '%s' "
			"within %g s (SWACTL_TIMEOUT)\n", who ? who : last_mnt,
			last_bound);
	else
		fprintf(stderr, "swactl: %s%sthe daemon closed the connection "
			"without an answer\n", who ? who : "", who ? ": " : "");
	return 1;
}

int ctl_status(FILE *f, const char *who, char *rest, size_t size)
{
	char line[1024];

	if (ctl_read_line(f, who, line, sizeof(line)))
		return 1;
	return ctl_parse_status(line, who, rest, size);
}

void ctl_print_holders(FILE *out, char *list, unsigned long count)
{
	char *save = NULL, *h;
	unsigned long k = 0;

	for (h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		unsigned pid, uid;

		if (sscanf(h, "%u:%u", &pid, &uid) != 2)
			continue;
		fprintf(out, "%s pid %u (uid %u)", k++ ? "," : ":", pid, uid);
	}
	if (count > k)
		fprintf(out, "%s%lu more", k ? " and " : ": ", count - k);
}

int ctl_ask(const char *mnt, int argc, char *const argv[], bool quiet_gone,
	    FILE **reply)
{
	char why[512], rest[256];
	int fd = ctl_connect(mnt, why, sizeof(why)), rc;
	FILE *f;

	if (fd == -ENOTCONN && quiet_gone)
		return -ENOTCONN;
	if (fd < 0) {
		fprintf(stderr, "swactl: %s\n", why);
		return 1;
	}
	f = ctl_request(fd, argc, argv);
	if (!f) {
		fprintf(stderr, "swactl: cannot talk to the daemon of '%s': "
			"%s\n", mnt, strerror(errno));
		close(fd);
		return 1;
	}
	rc = ctl_status(f, NULL, rest, sizeof(rest));
	if (rc == 0 && reply)
		*reply = f;
	else
		fclose(f);
	return rc;
}
