/*
 * ctlclient.h - talk to the daemon serving a live tree: used by swactl and
 * by the integration tests.
 */
#ifndef SWAFS_CTLCLIENT_H
#define SWAFS_CTLCLIENT_H

#include <stdbool.h>
#include <stdio.h>

#define CTL_TIMEOUT_DEFAULT 10.0	/* seconds */

/*
 * Read the reply timeout from SWACTL_TIMEOUT: seconds the daemon may take
 * to answer (default CTL_TIMEOUT_DEFAULT; 0: no limit), on top of any
 * drain wait the request grants it.  Returns 0, or -EINVAL when the
 * variable is malformed (the default stays).
 */
int ctl_timeout_load(void);

/* The reply timeout in seconds (0: none). */
double ctl_timeout(void);

/*
 * Bound every read of a reply on fd to the timeout plus extra seconds;
 * extra < 0 lifts the bound (events --follow, --wait nomax).
 */
void ctl_set_timeout(int fd, double extra);

/*
 * Connect to the daemon serving mount point mnt, with the reply timeout
 * set.  Never waits for the mount's own daemon (a stopped or hung daemon
 * must not hang swactl): the path is looked up from cached attributes.
 * Returns a connected socket, or -errno with a one-line reason in why
 * (size >= 256): -ENOTDIR/-ENOENT (bad path), -ENOTCONN (not a swafs live
 * tree or its daemon is gone).
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

/*
 * Read one reply line into line (newline stripped): 0, or 1 after saying
 * on stderr why there is none (the daemon closed the connection, or did
 * not answer within the timeout).
 */
int ctl_read_line(FILE *f, const char *who, char *line, size_t size);

/* Read and parse the status line of a reply (see ctl_parse_status). */
int ctl_status(FILE *f, const char *who, char *rest, size_t size);

/*
 * One request to MNT's daemon: connect, send argv, read the status line.
 * Returns swactl's exit code, each failure said on stderr; with reply and
 * 0, *reply is the stream after the status line (the caller closes it).
 * -ENOTCONN, unsaid, when quiet_gone and no daemon serves MNT any more.
 */
int ctl_ask(const char *mnt, int argc, char *const argv[], bool quiet_gone,
	    FILE **reply);

/*
 * Print a daemon's holder list "PID:COMM,..." (COMM quoted) of count open
 * transactions as ": pid P (COMM), ... and N more".  Consumes list.
 */
void ctl_print_holders(FILE *out, char *list, unsigned long count);

#endif
