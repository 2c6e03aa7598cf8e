/*
 * ctl.h - the control socket of a live tree.
 */
#ifndef SWAFS_CTL_H
#define SWAFS_CTL_H

#include "fs/ctx.h"

/* Caps of the control server (-o ctl_conns, ctl_follow, ctl_deadline). */
struct ctl_limits {
	unsigned conns;		/* connections of users other than root
				   and the owner, together */
	unsigned follow;	/* their events --follow connections */
	int64_t deadline_ns;	/* to send a whole request line */
};

/*
 * Make the socket for the mount with device number dev in its checked
 * directory (ctlmsg_socket_dirs) and listen; before daemonizing, so that
 * a mount whose socket cannot be made fails instead of reporting success.
 * On failure *why says what, which and why.
 */
int ctl_open(struct fs_ctx *ctx, dev_t dev, const struct ctl_limits *lim,
	     struct ctl **out, char *why, size_t size);
/* Serve requests on threads of its own: after daemonizing (no fork). */
int ctl_run(struct ctl *ctl);
/* Stop serving and remove the socket. */
void ctl_stop(struct ctl *ctl);

#endif
