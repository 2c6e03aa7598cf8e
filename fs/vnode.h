/*
 * vnode.h - the control directory MNT/.swafs of a live tree and its file
 * txn (DESIGN.md 6): served by the daemon alone, never in BACKING.
 *
 * Applications mark an open transaction by holding a shared flock on
 * MNT/.swafs/txn; a checkpoint's boundary wait waits for those locks
 * (snapshot/txn.h).  txn is an empty read-only file: anyone may open it
 * for reading; writing, changing or removing either node, and making
 * anything named .swafs in the root, fail with EPERM or EACCES.  Root
 * listings do not show .swafs (and hide a BACKING/.swafs, which the
 * control directory shadows).
 */
#ifndef SWAFS_VNODE_H
#define SWAFS_VNODE_H

#include "fs/ctx.h"

#define VNODE_DIR_NAME ".swafs"

/* name in parent is, or would be inside, the control directory. */
bool vnode_reserved(fuse_ino_t parent, const char *name);

/* Callbacks of the transaction table: answer parked lock requests. */
extern const struct txn_ops vnode_txn_ops;

/* Handlers for the control nodes (ino: FS_CTLDIR_ID or FS_TXN_ID;
 * lookup: a parent and name for which vnode_reserved() is true). */
void vnode_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void vnode_getattr(fuse_req_t req, fuse_ino_t ino);
void vnode_access(fuse_req_t req, fuse_ino_t ino, int mask);
void vnode_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vnode_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vnode_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   bool plus);
void vnode_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vnode_flock(fuse_req_t req, struct fuse_file_info *fi, int op);

#endif
