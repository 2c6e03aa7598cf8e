/*
 * vnode.c - the control directory MNT/.swafs and its file txn.
 *
 * The nodes have no struct ino and no lookup count (forget ignores them).
 * An open of txn is keyed by a number unique for the mount's life, kept
 * in fi->fh; the transaction table holds one entry per key that holds
 * the shared lock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs/vnode.h"

#define VNODE_DIR_INO 0xfffffffeu	/* st_ino; unlikely in BACKING */
#define VNODE_TXN_INO 0xfffffffdu

bool vnode_reserved(fuse_ino_t parent, const char *name)
{
	return fs_virtual(parent) ||
	       (parent == FUSE_ROOT_ID && !strcmp(name, VNODE_DIR_NAME));
}

static void vnode_stat(struct fs_ctx *ctx, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino == FS_TXN_ID ? VNODE_TXN_INO : VNODE_DIR_INO;
	st->st_mode = ino == FS_TXN_ID ? S_IFREG | 0444 : S_IFDIR | 0555;
	st->st_nlink = ino == FS_TXN_ID ? 1 : 2;
	st->st_uid = ctx->owner;
	st->st_gid = getgid();
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = ctx->mounted;
}

static void vnode_entry(struct fs_ctx *ctx, fuse_ino_t ino,
			struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	vnode_stat(ctx, ino, &e->attr);
	e->attr_timeout = ctx->timeout;
	e->entry_timeout = ctx->timeout;
}

void vnode_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent == FUSE_ROOT_ID)
		vnode_entry(fs_ctx(req), FS_CTLDIR_ID, &e);
	else if (parent == FS_CTLDIR_ID && !strcmp(name, "txn"))
		vnode_entry(fs_ctx(req), FS_TXN_ID, &e);
	else
		return (void)fuse_reply_err(req, parent == FS_TXN_ID ? ENOTDIR
								     : ENOENT);
	fuse_reply_entry(req, &e);
}

void vnode_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct stat st;

	vnode_stat(ctx, ino, &st);
	fuse_reply_attr(req, &st, ctx->timeout);
}

void vnode_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	/* as the modes say: .swafs 0555, txn 0444 */
	fuse_reply_err(req, mask & W_OK || (ino == FS_TXN_ID && mask & X_OK)
			    ? EACCES : 0);
}

void vnode_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = fs_ctx(req);

	if (ino != FS_TXN_ID)
		return (void)fuse_reply_err(req, EISDIR);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return (void)fuse_reply_err(req, EACCES);
	fi->fh = atomic_fetch_add(&ctx->txn_opens, 1) + 1;
	fi->direct_io = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

void vnode_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FS_CTLDIR_ID)
		return (void)fuse_reply_err(req, ENOTDIR);
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

/* Entries ".", ".." and "txn" at offsets 1, 2 and 3. */
void vnode_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   bool plus)
{
	static const char *const names[] = { ".", "..", "txn" };
	struct fs_ctx *ctx = fs_ctx(req);
	char buf[512];
	size_t used = 0, max = size < sizeof(buf) ? size : sizeof(buf);

	for (off_t k = off; k >= 0 && k < 3; k++) {
		struct fuse_entry_param e;
		size_t n;

		vnode_entry(ctx, k == 2 ? FS_TXN_ID : FS_CTLDIR_ID, &e);
		if (k < 2)
			e.ino = 0;	/* no lookup for the dots */
		n = plus ? fuse_add_direntry_plus(req, buf + used, max - used,
						  names[k], &e, k + 1)
			 : fuse_add_direntry(req, buf + used, max - used,
					     names[k], &e.attr, k + 1);
		if (n > max - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

void vnode_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == FS_TXN_ID)
		txn_unlock(fs_ctx(req)->txn, fi->fh);
	fuse_reply_err(req, 0);
}

/* The caller's process id (the request carries a thread id). */
static pid_t caller(fuse_req_t req)
{
	pid_t pid = fuse_req_ctx(req)->pid, tgid = 0;
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid > 0 ? tgid : pid;
}

/* Interrupt of a parked request: take it back and answer it. */
static void txn_interrupt(fuse_req_t req, void *arg)
{
	struct fs_ctx *ctx = arg;

	if (txn_cancel(ctx->txn, req))
		fuse_reply_err(req, EINTR);
}

/*
 * Only shared locks: an exclusive one would hold off every transaction
 * and is no part of the protocol.  The interrupt callback goes in before
 * the request can be parked (see fs/locks.c for why that order).
 */
void vnode_flock(fuse_req_t req, struct fuse_file_info *fi, int op)
{
	struct fs_ctx *ctx = fs_ctx(req);
	int how = op & (LOCK_SH | LOCK_EX | LOCK_UN), rc;
	pid_t pid;

	if (how == LOCK_UN) {
		txn_unlock(ctx->txn, fi->fh);
		return (void)fuse_reply_err(req, 0);
	}
	if (how != LOCK_SH)
		return (void)fuse_reply_err(req, EINVAL);
	pid = caller(req);
	fuse_req_interrupt_func(req, txn_interrupt, ctx);
	rc = txn_lock(ctx->txn, fi->fh, pid, fuse_req_ctx(req)->uid,
		      op & LOCK_NB ? TXN_NONBLOCK : 0, req);
	if (rc != TXN_PARKED)
		fuse_reply_err(req, -rc);
}

static void grant(void *cookie, void *arg)
{
	fuse_reply_err(cookie, 0);
}

static bool interrupted(void *cookie, void *arg)
{
	return fuse_req_interrupted(cookie);
}

const struct txn_ops vnode_txn_ops = { grant, interrupted };
