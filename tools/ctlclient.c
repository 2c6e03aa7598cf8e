/*
 * ctlclient.c - control socket client.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "snapshot/ctlmsg.h"
#include "tools/ctlclient.h"

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

int ctl_connect(const char *mnt, char *why, size_t size)
{
	char path[128];
	struct stat st;
	int fd;

	if (stat(mnt, &st) < 0) {
		snprintf(why, size, "cannot access '%s': %s", mnt,
			 strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, size, "'%s' is not a directory", mnt);
		return -ENOTDIR;
	}
	/* a root daemon listens under /run, a user's under /tmp */
	ctlmsg_socket_path(st.st_dev, 0, path, sizeof(path));
	fd = try_connect(path);
	if (fd < 0) {
		ctlmsg_socket_path(st.st_dev, getuid(), path, sizeof(path));
		fd = try_connect(path);
	}
	if (fd < 0) {
		snprintf(why, size, "'%s' is not a swafs live tree (no daemon "
			 "answers for it)", mnt);
		return -ENOTCONN;
	}
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

int ctl_status(FILE *f, const char *who, char *rest, size_t size)
{
	char line[1024];

	if (!fgets(line, sizeof(line), f)) {
		fprintf(stderr, "swactl: %s%sthe daemon closed the connection "
			"without an answer\n", who ? who : "", who ? ": " : "");
		return 1;
	}
	line[strcspn(line, "\n")] = '\0';
	return ctl_parse_status(line, who, rest, size);
}
