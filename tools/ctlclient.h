/*
 * ctlclient.h - talk to the daemon serving a live tree: used by swactl and
 * by the integration tests.
 */
#ifndef SWAFS_CTLCLIENT_H
#define SWAFS_CTLCLIENT_H

#include <stdio.h>

/*
 * Connect to the daemon serving mount point mnt.  Returns a connected
 * socket, or -errno with a one-line reason in why (size >= 256):
 * -ENOTDIR/-ENOENT (bad path), -ENOTCONN (not a swafs live tree or its
 * daemon is gone).
 */
int ctl_connect(const char *mnt, char *why, size_t size);

/*
 * Send one request (argv encoded per snapshot/ctlmsg.h) on fd and return
 * a stream for the reply.  Returns NULL with errno set on failure.
 */
FILE *ctl_request(int fd, int argc, char *const argv[]);

/*
 * Parse a reply's status line (newline stripped).  "ok REST" copies REST
 * and returns 0; "err CODE MESSAGE" prints "swactl: [WHO: ]MESSAGE" on
 * stderr and returns CODE (1-4); anything else is reported and gives 1.
 * who may be NULL.
 */
int ctl_parse_status(const char *line, const char *who, char *rest,
		     size_t size);

/* Read and parse the status line of a reply (see ctl_parse_status). */
int ctl_status(FILE *f, const char *who, char *rest, size_t size);

#endif
