/*
 * ctl.h - the control socket of a live tree.
 */
#ifndef SWAFS_CTL_H
#define SWAFS_CTL_H

#include "fs/ctx.h"

/*
 * Listen for swactl on the socket for the mount with device number dev
 * (ctlmsg_socket_path) and serve requests on threads of its own.  Start
 * it after daemonizing: threads do not survive fork().
 */
int ctl_start(struct fs_ctx *ctx, dev_t dev, struct ctl **out);
/* Stop listening and remove the socket. */
void ctl_stop(struct ctl *ctl);

#endif
