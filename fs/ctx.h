/*
 * ctx.h - the mount context shared by the daemon's FUSE modules.
 *
 * All mutable state of a mount lives here, reached from a request through
 * fs_ctx(); there are no file-scope mutable globals.
 */
#ifndef SWAFS_CTX_H
#define SWAFS_CTX_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/inode.h"
#include "snapshot/ckpt.h"
#include "snapshot/txn.h"

struct ckeep;
struct ctl;
struct fdcap;
struct hist;
struct views;
struct locks;

struct fs_ctx {
	struct ino_table *itab;	/* owns the backing root descriptor */
	struct ckpt_set *ckpts;	/* checkpoints of this live tree */
	struct ckeep *keep;	/* releases --keep-for checkpoints */
	struct events *events;
	struct hist *hist;	/* checkpoint history; NULL if unavailable */
	struct views *views;	/* mounted checkpoint views */
	uid_t owner;		/* the user who mounted: may change checkpoints */
	bool allow_other;	/* views are mounted alike */
	bool flush;		/* close() must reach BACKING (network fs) */
	double timeout;		/* kernel entry/attr cache, seconds */
	bool as_caller;		/* create objects as the requesting uid/gid */
	struct fuse_session *se;	/* the live session, once it runs */
	struct txn *txn;	/* holders of MNT/.swafs/txn; state for status */
	struct locks *locks;	/* flock requests waiting on live files */
	struct fdcap *fdcap;	/* live-tree opens charged per uid */
	int64_t boundary_report_ns;	/* -o boundary_report */
	struct timespec mounted;	/* times of the control nodes */
	dev_t dev;		/* the live tree's device, once mounted */
	_Atomic uint64_t txn_opens;	/* keys of opens of the txn file */
};

/*
 * The control directory MNT/.swafs and its file txn are served by the
 * daemon alone (fs/vnode.h).  Their node ids can never be struct ino
 * pointers (those are aligned), so every live-tree op tells them apart
 * by id before mapping one to a struct ino.
 */
#define FS_CTLDIR_ID ((fuse_ino_t)2)
#define FS_TXN_ID ((fuse_ino_t)3)

static inline bool fs_virtual(fuse_ino_t ino)
{
	return ino == FS_CTLDIR_ID || ino == FS_TXN_ID;
}

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uintptr_t),
	       "FUSE inode numbers carry struct ino pointers");

static inline struct fs_ctx *fs_ctx(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * FUSE inode numbers of a session are the addresses of its table's
 * entries, except the root, which is FUSE_ROOT_ID.  Live tree and views
 * both map them this way, each with its own table.
 */
static inline struct ino *fs_ino_in(struct ino_table *t, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return ino_root(t);
	return (struct ino *)(uintptr_t)ino;
}

static inline fuse_ino_t fs_nodeid_in(struct ino_table *t, struct ino *i)
{
	return i == ino_root(t) ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)i;
}

/* The kernel forgets lookups: shared by the live tree and views. */
static inline void fs_forget(fuse_req_t req, struct ino_table *t,
			     fuse_ino_t ino, uint64_t n)
{
	if (!fs_virtual(ino))
		ino_forget(t, fs_ino_in(t, ino), n);
	fuse_reply_none(req);
}

static inline void fs_forget_multi(fuse_req_t req, struct ino_table *t,
				   size_t count, struct fuse_forget_data *f)
{
	for (size_t k = 0; k < count; k++)
		if (!fs_virtual(f[k].ino))
			ino_forget(t, fs_ino_in(t, f[k].ino), f[k].nlookup);
	fuse_reply_none(req);
}

static inline struct ino *fs_ino(struct fs_ctx *ctx, fuse_ino_t ino)
{
	return fs_ino_in(ctx->itab, ino);
}

static inline bool fs_room(void *itab, int err)
{
	return ino_fd_room(itab, err);
}

/* The identity the checkpoint hooks need, for an entry of t pinned at fd;
 * captures that run out of descriptors make room in t's cache. */
static inline struct cobj_ref fs_ref(struct ino_table *t, struct ino *i,
				     int fd)
{
	struct cobj_ref r = { .fd = fd, .room = fs_room, .room_arg = t };

	ino_ident(i, &r.dev, &r.ino);
	return r;
}

static inline fuse_ino_t fs_nodeid(struct fs_ctx *ctx, struct ino *i)
{
	return fs_nodeid_in(ctx->itab, i);
}

#endif
