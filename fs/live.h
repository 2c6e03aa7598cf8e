/*
 * live.h - the live tree: FUSE operations passed through to BACKING.
 *
 * Every operation that changes backing state is a separate helper that
 * first resolves its objects, then makes exactly one change, so the
 * checkpoint engine can be called between the two (DESIGN.md 4-5).
 */
#ifndef SWAFS_LIVE_H
#define SWAFS_LIVE_H

#include "fs/ctx.h"

/* The operation table of a live mount; userdata is a struct fs_ctx. */
const struct fuse_lowlevel_ops *live_ops(void);

/* Shared by live.c and lfile.c. */
int live_fill_entry(struct fs_ctx *ctx, struct ino *i, const struct stat *st,
		    struct fuse_entry_param *e);
void live_reply_entry(fuse_req_t req, struct fs_ctx *ctx,
		      const struct fuse_entry_param *e);
bool live_name_ok(const char *name);
/* Reply to get/listxattr: n bytes of buf, the size when size is 0, or
 * the error n < 0.  Shared with views. */
void live_reply_xattr(fuse_req_t req, const char *buf, ssize_t n,
		      size_t size);
/* Capture a directory's entries before a change (inside the gate). */
void live_before_dir(struct fs_ctx *ctx, struct ino *dir, int fd);
int live_lookup_new(struct fs_ctx *ctx, struct ino *parent, const char *name,
		    struct stat *st, struct ino **out);
int live_proc_path(int fd, char *buf, size_t size);

#define LIVE_PROC_PATH_MAX 32

#endif
