/*
 * live.c - live tree: lookup, attributes, namespace changes, xattrs.
 *
 * Handlers reply exactly once; the work is in live_do_*() helpers that
 * return 0 or -errno.  The daemon reaches backing objects only through
 * descriptors from the inode table and single-component names, never
 * through paths that could follow a symlink it did not mean to: objects are
 * opened O_PATH|O_NOFOLLOW, and the /proc/self/fd magic links used for
 * calls without an fd variant resolve to the object itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/cred.h"
#include "fs/lfile.h"
#include "fs/live.h"
#include "fs/vnode.h"

bool live_name_ok(const char *name)
{
	return name[0] && !strchr(name, '/') && strcmp(name, ".") &&
	       strcmp(name, "..");
}

int live_proc_path(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
	return 0;
}

int live_fill_entry(struct fs_ctx *ctx, struct ino *i, const struct stat *st,
		    struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = fs_nodeid(ctx, i);
	e->attr = *st;
	e->attr_timeout = ctx->timeout;
	e->entry_timeout = ctx->timeout;
	return 0;
}

/* Reply with an entry holding one lookup reference; drop it if refused. */
void live_reply_entry(fuse_req_t req, struct fs_ctx *ctx,
		      const struct fuse_entry_param *e)
{
	if (fuse_reply_entry(req, e) < 0 && e->ino)
		ino_forget(ctx->itab, fs_ino(ctx, e->ino), 1);
}

static void reply_rc(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

void live_before_dir(struct fs_ctx *ctx, struct ino *dir, int fd)
{
	struct cobj_ref r = fs_ref(ctx->itab, dir, fd);

	ckpt_before_dir(ctx->ckpts, &r);
}

typedef int live_hook_fn(struct fs_ctx *ctx, const struct cobj_ref *r,
			 const struct stat *st);

/* Run fn on the checkpoint hooks for the object open at fd. */
static int live_hook_fd(struct fs_ctx *ctx, int fd, const struct stat *st,
			live_hook_fn *fn)
{
	struct cobj_ref r = { .dev = st->st_dev, .ino = st->st_ino, .fd = fd,
			      .room = fs_room, .room_arg = ctx->itab };

	return fn(ctx, &r, st);
}

static int hook_new(struct fs_ctx *ctx, const struct cobj_ref *r,
		    const struct stat *st)
{
	ckpt_after_create(ctx->ckpts, r);
	return 0;
}

/*
 * Look up an object this call just created (inside the drain gate) and
 * tell the checkpoints it is not theirs.
 */
int live_lookup_new(struct fs_ctx *ctx, struct ino *parent, const char *name,
		    struct stat *st, struct ino **out)
{
	int rc = ino_lookup(ctx->itab, parent, name, st, out);
	int fd;

	if (rc < 0 || !ckpt_active(ctx->ckpts))
		return rc;
	fd = ino_fd_get(ctx->itab, *out);
	if (fd >= 0) {
		live_hook_fd(ctx, fd, st, hook_new);
		ino_fd_put(ctx->itab, *out);
	}
	return 0;
}

static int hook_unlink(struct fs_ctx *ctx, const struct cobj_ref *r,
		       const struct stat *st)
{
	return ckpt_before_unlink(ctx->ckpts, r, S_ISDIR(st->st_mode) ||
					      st->st_nlink <= 1);
}

static int hook_attr(struct fs_ctx *ctx, const struct cobj_ref *r,
		     const struct stat *st)
{
	return ckpt_before_attr(ctx->ckpts, r);
}

/*
 * Run a hook on the object at name in the directory open at pfd, if any.
 * Returns the hook's answer (-ENOSPC: refuse the change), or the error
 * that kept the object from being opened: a change the checkpoints could
 * not capture first must not happen.
 */
static int live_hook_name(struct fs_ctx *ctx, int pfd, const char *name,
			  live_hook_fn *fn)
{
	struct stat st;
	int fd, rc = 0;

	if (!ckpt_active(ctx->ckpts))
		return 0;
	fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && ino_fd_room(ctx->itab, errno))
		fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;	/* none: nothing to keep */
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
		rc = live_hook_fd(ctx, fd, &st, fn);
	close(fd);
	return rc;
}

static int live_do_lookup(struct fs_ctx *ctx, fuse_ino_t parent,
			  const char *name, struct fuse_entry_param *e)
{
	struct ino *i;
	struct stat st;
	int rc;

	if (!live_name_ok(name))
		return -EINVAL;
	rc = ino_lookup(ctx->itab, fs_ino(ctx, parent), name, &st, &i);
	if (rc < 0)
		return rc;
	return live_fill_entry(ctx, i, &st, e);
}

static void live_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct fuse_entry_param e;
	int rc;

	if (vnode_reserved(parent, name))
		return vnode_lookup(req, parent, name);
	rc = live_do_lookup(ctx, parent, name, &e);
	if (rc == -ENOENT) {
		/* A negative entry the kernel may cache: every create goes
		 * through this mount, which turns the entry positive. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = ctx->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0)
		return reply_rc(req, rc);
	live_reply_entry(req, ctx, &e);
}

static void live_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_forget(req, fs_ctx(req)->itab, ino, nlookup);
}

static void live_forget_multi(fuse_req_t req, size_t count,
			      struct fuse_forget_data *forgets)
{
	fs_forget_multi(req, fs_ctx(req)->itab, count, forgets);
}

static int live_do_stat(struct fs_ctx *ctx, fuse_ino_t ino,
			struct fuse_file_info *fi, struct stat *st)
{
	struct ino *i = fs_ino(ctx, ino);
	int fd, rc = 0;

	if (fi && ino_type(i) == S_IFREG)
		return fstat(lfile_fd(fi), st) < 0 ? -errno : 0;
	fd = ino_fd_get(ctx->itab, i);
	if (fd < 0)
		return fd;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	ino_fd_put(ctx->itab, i);
	return rc;
}

static void live_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct stat st;
	int rc;

	if (fs_virtual(ino))
		return vnode_getattr(req, ino);
	rc = live_do_stat(ctx, ino, fi, &st);
	if (rc < 0)
		return reply_rc(req, rc);
	fuse_reply_attr(req, &st, ctx->timeout);
}

/* Truncate through an open file if the kernel gave one, else reopen. */
static int live_truncate(int pathfd, struct fuse_file_info *fi, off_t size)
{
	char path[LIVE_PROC_PATH_MAX];
	int fd, rc = 0;

	if (fi)
		return ftruncate(lfile_fd(fi), size) < 0 ? -errno : 0;
	live_proc_path(pathfd, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static void live_times(const struct stat *attr, int valid,
		       struct timespec ts[2])
{
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_OMIT;
	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
}

/*
 * Apply one setattr.  Order matters: the size change comes before the
 * times so an explicit mtime survives it; mode after owner because chown
 * clears set-id bits the caller may be setting in the same call.
 */
static int live_do_setattr(int fd, struct fuse_file_info *fi,
			   const struct stat *attr, int valid)
{
	char path[LIVE_PROC_PATH_MAX];
	struct timespec ts[2];
	uid_t uid = valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
	gid_t gid = valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;
	int rc;

	if ((valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (valid & FUSE_SET_ATTR_MODE) {
		live_proc_path(fd, path, sizeof(path));
		if (chmod(path, attr->st_mode & 07777) < 0)
			return -errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		rc = live_truncate(fd, fi, attr->st_size);
		if (rc < 0)
			return rc;
	}
	live_times(attr, valid, ts);
	if ((ts[0].tv_nsec != UTIME_OMIT || ts[1].tv_nsec != UTIME_OMIT) &&
	    utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static void live_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int valid, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *i;
	struct cobj_ref r;
	struct stat st;
	int fd, rc;

	if (fs_virtual(ino))
		return reply_rc(req, -EPERM);
	i = fs_ino(ctx, ino);
	fd = ino_fd_get(ctx->itab, i);
	if (fd < 0)
		return reply_rc(req, fd);
	r = fs_ref(ctx->itab, i, fd);
	ckpt_op_begin(ctx->ckpts);
	rc = valid & FUSE_SET_ATTR_SIZE ?
	     ckpt_before_data(ctx->ckpts, &r, (uint64_t)attr->st_size,
			      UINT64_MAX) : 0;
	if (rc == 0)
		rc = ckpt_before_attr(ctx->ckpts, &r);
	if (rc == 0)
		rc = live_do_setattr(fd, fi, attr, valid);
	ckpt_op_end(ctx->ckpts);
	if (rc == 0 && fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		rc = -errno;
	ino_fd_put(ctx->itab, i);
	if (rc < 0)
		return reply_rc(req, rc);
	fuse_reply_attr(req, &st, ctx->timeout);
}

static void live_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *i;
	char buf[PATH_MAX + 1];
	ssize_t n;
	int fd;

	if (fs_virtual(ino))
		return reply_rc(req, -EINVAL);
	i = fs_ino(ctx, ino);
	fd = ino_fd_get(ctx->itab, i);
	if (fd < 0)
		return reply_rc(req, fd);
	n = readlinkat(fd, "", buf, sizeof(buf));
	n = n < 0 ? -errno : n;
	ino_fd_put(ctx->itab, i);
	if (n < 0)
		return reply_rc(req, (int)n);
	if ((size_t)n >= sizeof(buf))
		return reply_rc(req, -ENAMETOOLONG);
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* What a creating call makes: a directory, a symlink or a node. */
struct live_new {
	mode_t mode;
	dev_t rdev;
	const char *link;	/* symlink target, or NULL */
};

static int live_make(int pfd, const char *name, const struct live_new *n)
{
	int rc;

	if (n->link)
		rc = symlinkat(n->link, pfd, name);
	else if (S_ISDIR(n->mode))
		rc = mkdirat(pfd, name, n->mode & 07777);
	else
		rc = mknodat(pfd, name, n->mode, n->rdev);
	return rc < 0 ? -errno : 0;
}

static int live_do_create_node(fuse_req_t req, fuse_ino_t parent,
			       const char *name, const struct live_new *n,
			       struct fuse_entry_param *e)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *p, *i;
	struct cred_saved cs;
	struct stat st;
	int pfd, rc;

	if (vnode_reserved(parent, name))
		return -EPERM;
	if (!live_name_ok(name))
		return -EINVAL;
	p = fs_ino(ctx, parent);
	pfd = ino_fd_get(ctx->itab, p);
	if (pfd < 0)
		return pfd;
	ckpt_op_begin(ctx->ckpts);
	live_before_dir(ctx, p, pfd);
	rc = cred_enter(req, &cs);
	if (rc == 0) {
		rc = live_make(pfd, name, n);
		cred_leave(&cs);
	}
	if (rc == 0)
		rc = live_lookup_new(ctx, p, name, &st, &i);
	ckpt_op_end(ctx->ckpts);
	ino_fd_put(ctx->itab, p);
	if (rc < 0)
		return rc;
	return live_fill_entry(ctx, i, &st, e);
}

static void live_reply_new(fuse_req_t req, fuse_ino_t parent,
			   const char *name, const struct live_new *n)
{
	struct fuse_entry_param e;
	int rc = live_do_create_node(req, parent, name, n, &e);

	if (rc < 0)
		return reply_rc(req, rc);
	live_reply_entry(req, fs_ctx(req), &e);
}

static void live_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, dev_t rdev)
{
	struct live_new n = { .mode = mode, .rdev = rdev };

	live_reply_new(req, parent, name, &n);
}

static void live_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	struct live_new n = { .mode = S_IFDIR | mode };

	live_reply_new(req, parent, name, &n);
}

static void live_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			 const char *name)
{
	struct live_new n = { .mode = S_IFLNK | 0777, .link = link };

	live_reply_new(req, parent, name, &n);
}

static int live_do_link(struct fs_ctx *ctx, fuse_ino_t ino, fuse_ino_t parent,
			const char *name, struct fuse_entry_param *e)
{
	struct ino *i, *p, *got;
	char path[LIVE_PROC_PATH_MAX];
	struct cobj_ref r;
	struct stat st;
	int fd, pfd, rc = 0;

	if (fs_virtual(ino) || vnode_reserved(parent, name))
		return -EPERM;
	if (!live_name_ok(name))
		return -EINVAL;
	i = fs_ino(ctx, ino);
	p = fs_ino(ctx, parent);
	fd = ino_fd_get(ctx->itab, i);
	if (fd < 0)
		return fd;
	pfd = ino_fd_get(ctx->itab, p);
	if (pfd < 0) {
		ino_fd_put(ctx->itab, i);
		return pfd;
	}
	live_proc_path(fd, path, sizeof(path));
	ckpt_op_begin(ctx->ckpts);
	live_before_dir(ctx, p, pfd);
	r = fs_ref(ctx->itab, i, fd);
	ckpt_before_attr(ctx->ckpts, &r);
	if (linkat(AT_FDCWD, path, pfd, name, AT_SYMLINK_FOLLOW) < 0)
		rc = -errno;
	ckpt_op_end(ctx->ckpts);
	ino_fd_put(ctx->itab, p);
	ino_fd_put(ctx->itab, i);
	if (rc < 0)
		return rc;
	rc = ino_lookup(ctx->itab, p, name, &st, &got);
	if (rc < 0)
		return rc;
	return live_fill_entry(ctx, got, &st, e);
}

static void live_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent,
		      const char *name)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct fuse_entry_param e;
	int rc = live_do_link(ctx, ino, parent, name, &e);

	if (rc < 0)
		return reply_rc(req, rc);
	live_reply_entry(req, ctx, &e);
}

static int live_do_remove(struct fs_ctx *ctx, fuse_ino_t parent,
			  const char *name, int flags)
{
	struct ino *p;
	int pfd, rc = 0;

	if (vnode_reserved(parent, name))
		return -EPERM;
	if (!live_name_ok(name))
		return -EINVAL;
	p = fs_ino(ctx, parent);
	pfd = ino_fd_get(ctx->itab, p);
	if (pfd < 0)
		return pfd;
	ckpt_op_begin(ctx->ckpts);
	live_before_dir(ctx, p, pfd);
	rc = live_hook_name(ctx, pfd, name, hook_unlink);
	if (rc == 0 && unlinkat(pfd, name, flags) < 0)
		rc = -errno;
	ckpt_op_end(ctx->ckpts);
	ino_fd_put(ctx->itab, p);
	return rc;
}

static void live_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_rc(req, live_do_remove(fs_ctx(req), parent, name, 0));
}

static void live_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_rc(req, live_do_remove(fs_ctx(req), parent, name, AT_REMOVEDIR));
}

/* renameat2; a whiteout it leaves is a new object: made as the caller */
static int live_renameat(fuse_req_t req, int pfd, const char *name, int npfd,
			 const char *newname, unsigned flags)
{
	struct cred_saved cs = { .switched = false };
	int rc = flags & RENAME_WHITEOUT ? cred_enter(req, &cs) : 0;

	if (rc == 0) {
		rc = renameat2(pfd, name, npfd, newname, flags) < 0 ? -errno : 0;
		cred_leave(&cs);
	}
	return rc;
}

static int live_do_rename(fuse_req_t req, fuse_ino_t parent,
			  const char *name, fuse_ino_t newparent,
			  const char *newname, unsigned flags)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *p, *np;
	int pfd, npfd, rc = 0;

	if (vnode_reserved(parent, name) || vnode_reserved(newparent, newname))
		return -EPERM;
	if (!live_name_ok(name) || !live_name_ok(newname))
		return -EINVAL;
	p = fs_ino(ctx, parent);
	np = fs_ino(ctx, newparent);
	pfd = ino_fd_get(ctx->itab, p);
	if (pfd < 0)
		return pfd;
	npfd = ino_fd_get(ctx->itab, np);
	if (npfd < 0) {
		ino_fd_put(ctx->itab, p);
		return npfd;
	}
	ckpt_op_begin(ctx->ckpts);
	live_before_dir(ctx, p, pfd);
	live_before_dir(ctx, np, npfd);
	rc = live_hook_name(ctx, pfd, name, hook_attr);
	if (rc == 0)
		rc = live_hook_name(ctx, npfd, newname, flags & RENAME_EXCHANGE ?
				    hook_attr : hook_unlink);
	if (rc == 0)
		rc = live_renameat(req, pfd, name, npfd, newname, flags);
	ckpt_op_end(ctx->ckpts);
	ino_fd_put(ctx->itab, np);
	ino_fd_put(ctx->itab, p);
	return rc;
}

static void live_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned flags)
{
	reply_rc(req, live_do_rename(req, parent, name, newparent, newname,
				     flags));
}

static void live_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *root = ino_root(ctx->itab);
	struct statvfs sv;
	int fd = ino_fd_get(ctx->itab, root), rc = 0;

	if (fstatvfs(fd, &sv) < 0)
		rc = -errno;
	ino_fd_put(ctx->itab, root);
	if (rc < 0)
		return reply_rc(req, rc);
	fuse_reply_statfs(req, &sv);
}

static void live_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *i;
	char path[LIVE_PROC_PATH_MAX];
	int fd, rc = 0;

	if (fs_virtual(ino))
		return vnode_access(req, ino, mask);
	i = fs_ino(ctx, ino);
	fd = ino_fd_get(ctx->itab, i);
	if (fd < 0)
		return reply_rc(req, fd);
	live_proc_path(fd, path, sizeof(path));
	if (ino_type(i) != S_IFLNK && faccessat(AT_FDCWD, path, mask,
						AT_EACCESS) < 0)
		rc = -errno;
	ino_fd_put(ctx->itab, i);
	reply_rc(req, rc);
}

/*
 * Extended attributes go through the /proc magic link, since the f*xattr
 * calls refuse O_PATH descriptors.  That link cannot name a symlink itself,
 * so symlinks report no attributes and refuse changes (Linux allows only
 * trusted.* and security.* there, which swafs does not pass through).
 */
static int live_xattr_path(struct fs_ctx *ctx, struct ino *i, char *path,
			   size_t size)
{
	int fd;

	if (ino_type(i) == S_IFLNK)
		return -EPERM;
	fd = ino_fd_get(ctx->itab, i);
	if (fd >= 0)
		live_proc_path(fd, path, size);
	return fd;
}

/* Enter the gate and capture the xattrs of i, pinned at fd. */
static void live_before_xattr(struct fs_ctx *ctx, struct ino *i, int fd)
{
	struct cobj_ref r = fs_ref(ctx->itab, i, fd);

	ckpt_op_begin(ctx->ckpts);
	ckpt_before_xattr(ctx->ckpts, &r);
}

static void live_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  const char *value, size_t size, int flags)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *i;
	char path[LIVE_PROC_PATH_MAX];
	int rc, fd;

	if (fs_virtual(ino))
		return reply_rc(req, -EPERM);
	i = fs_ino(ctx, ino);
	fd = live_xattr_path(ctx, i, path, sizeof(path));
	if (fd < 0)
		return reply_rc(req, fd);
	live_before_xattr(ctx, i, fd);
	rc = setxattr(path, name, value, size, flags) < 0 ? -errno : 0;
	ckpt_op_end(ctx->ckpts);
	ino_fd_put(ctx->itab, i);
	reply_rc(req, rc);
}

static void live_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *i;
	char path[LIVE_PROC_PATH_MAX];
	int rc, fd;

	if (fs_virtual(ino))
		return reply_rc(req, -EPERM);
	i = fs_ino(ctx, ino);
	fd = live_xattr_path(ctx, i, path, sizeof(path));
	if (fd < 0)
		return reply_rc(req, fd);
	live_before_xattr(ctx, i, fd);
	rc = removexattr(path, name) < 0 ? -errno : 0;
	ckpt_op_end(ctx->ckpts);
	ino_fd_put(ctx->itab, i);
	reply_rc(req, rc);
}

/* Reply to a get/list xattr call: the size when asked, else the bytes. */
void live_reply_xattr(fuse_req_t req, const char *buf, ssize_t n,
			     size_t size)
{
	if (n < 0)
		return reply_rc(req, (int)n);
	if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static ssize_t live_do_xattr_read(struct fs_ctx *ctx, fuse_ino_t ino,
				  const char *name, char *buf, size_t size)
{
	struct ino *i;
	char path[LIVE_PROC_PATH_MAX];
	ssize_t n;
	int rc;

	if (fs_virtual(ino))
		return name ? -ENODATA : 0;
	i = fs_ino(ctx, ino);
	if (ino_type(i) == S_IFLNK)
		return name ? -ENODATA : 0;
	rc = live_xattr_path(ctx, i, path, sizeof(path));
	if (rc < 0)
		return rc;
	n = name ? getxattr(path, name, buf, size) : listxattr(path, buf, size);
	if (n < 0)
		n = -errno;
	ino_fd_put(ctx->itab, i);
	return n;
}

static void live_xattr_read(fuse_req_t req, fuse_ino_t ino, const char *name,
			    size_t size)
{
	char *buf = NULL;
	ssize_t n;

	if (size && !(buf = malloc(size)))
		return reply_rc(req, -ENOMEM);
	n = live_do_xattr_read(fs_ctx(req), ino, name, buf, size);
	live_reply_xattr(req, buf, n, size);
	free(buf);
}

static void live_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  size_t size)
{
	live_xattr_read(req, ino, name, size);
}

static void live_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	live_xattr_read(req, ino, NULL, size);
}

static void live_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Write-through only: every write that returns is in BACKING. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_ATOMIC_O_TRUNC |
		       FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_CACHE_SYMLINKS |
		       FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO |
		       FUSE_CAP_FLOCK_LOCKS) &
		      conn->capable;
	conn->max_readahead = conn->max_write;
	conn->time_gran = 1;
}

static const struct fuse_lowlevel_ops live_table = {
	.init = live_init,
	.lookup = live_lookup,
	.forget = live_forget,
	.forget_multi = live_forget_multi,
	.getattr = live_getattr,
	.setattr = live_setattr,
	.readlink = live_readlink,
	.mknod = live_mknod,
	.mkdir = live_mkdir,
	.symlink = live_symlink,
	.link = live_link,
	.unlink = live_unlink,
	.rmdir = live_rmdir,
	.rename = live_rename,
	.statfs = live_statfs,
	.access = live_access,
	.setxattr = live_setxattr,
	.getxattr = live_getxattr,
	.listxattr = live_listxattr,
	.removexattr = live_removexattr,
	.create = lfile_create,
	.open = lfile_open,
	.read = lfile_read,
	.write_buf = lfile_write_buf,
	.flush = lfile_flush,
	.release = lfile_release,
	.fsync = lfile_fsync,
	.opendir = lfile_opendir,
	.readdir = lfile_readdir,
	.readdirplus = lfile_readdirplus,
	.releasedir = lfile_releasedir,
	.fsyncdir = lfile_fsyncdir,
	.fallocate = lfile_fallocate,
	.lseek = lfile_lseek,
	.copy_file_range = lfile_copy_file_range,
	.ioctl = lfile_ioctl,
	.flock = lfile_flock,
};

const struct fuse_lowlevel_ops *live_ops(void)
{
	return &live_table;
}
