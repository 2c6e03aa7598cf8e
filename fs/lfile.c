/*
 * lfile.c - live tree: open files and directories.
 *
 * Read and write use the open file's own backing descriptor and take no
 * lock of the daemon's: requests on different files, and on one file, run
 * in parallel and the backing filesystem orders them as it would without
 * the mount.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/cred.h"
#include "fs/fdcap.h"
#include "fs/lfile.h"
#include "fs/live.h"
#include "fs/locks.h"
#include "fs/vnode.h"

/* Each holds one descriptor, charged to uid (fs/fdcap.h) until freed. */
struct lfile {
	int fd;			/* backing descriptor, immutable */
	uid_t uid;		/* immutable: who opened it */
	struct cobj_ref ref;	/* identity for the checkpoint hooks, at fd */
};

struct ldir {
	uid_t uid;		/* immutable: who opened it */
	pthread_mutex_t lock;	/* serialises the fields below */
	DIR *dp;
	off_t off;		/* offset the stream is positioned at */
	struct dirent *ent;	/* read but not yet returned, or NULL */
};

static void reply_rc(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static struct lfile *lfile_of(const struct fuse_file_info *fi)
{
	return (struct lfile *)(uintptr_t)fi->fh;
}

int lfile_fd(const struct fuse_file_info *fi)
{
	return lfile_of(fi)->fd;
}

/*
 * Flags for the backing open.  O_DIRECT is not passed on: FUSE request
 * buffers are not aligned for it.  The kernel still bypasses its page cache
 * for the file (direct_io), which is what the caller asked for.
 */
static int lfile_backing_flags(int flags)
{
	return (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_DIRECT)) |
	       O_CLOEXEC;
}

static void lfile_set_fi(struct fs_ctx *ctx, struct fuse_file_info *fi,
			 struct lfile *f)
{
	fi->fh = (uintptr_t)f;
	fi->direct_io = !!(fi->flags & O_DIRECT);
	/* Every change goes through this mount, so cached pages stay true. */
	fi->keep_cache = 1;
	/* A local filesystem reports nothing at close that pwrite() did not
	 * already: spare the round trip. */
	fi->noflush = !ctx->flush || (fi->flags & O_ACCMODE) == O_RDONLY;
}

/* Wrap backing fd for ino.  Consumes fd. */
static int lfile_new(struct fs_ctx *ctx, struct ino *i, int fd,
		     struct lfile **out)
{
	struct lfile *f = malloc(sizeof(*f));

	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->ref = fs_ref(ctx->itab, i, fd);
	*out = f;
	return 0;
}

static void lfile_free(struct fs_ctx *ctx, struct lfile *f)
{
	close(f->fd);
	fdcap_give(ctx->fdcap, f->uid);
	free(f);
}

/* open(2), making room in the inode table's cache on EMFILE. */
static int open_room(struct fs_ctx *ctx, const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd < 0 && ino_fd_room(ctx->itab, errno))
		fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

static int lfile_do_open(struct fs_ctx *ctx, fuse_ino_t ino, int flags,
			 struct lfile **out)
{
	struct ino *i = fs_ino(ctx, ino);
	char path[LIVE_PROC_PATH_MAX];
	int pfd, fd, rc;

	pfd = ino_fd_get(ctx->itab, i);
	if (pfd < 0)
		return pfd;
	live_proc_path(pfd, path, sizeof(path));
	if (flags & O_TRUNC) {	/* the truncation changes data: capture it */
		struct cobj_ref r = fs_ref(ctx->itab, i, pfd);

		ckpt_op_begin(ctx->ckpts);
		rc = ckpt_before_data(ctx->ckpts, &r, 0, UINT64_MAX);
		fd = rc < 0 ? rc : open_room(ctx, path,
					     lfile_backing_flags(flags));
		ckpt_op_end(ctx->ckpts);
	} else {
		fd = open_room(ctx, path, lfile_backing_flags(flags));
	}
	ino_fd_put(ctx->itab, i);
	if (fd < 0)
		return fd;
	return lfile_new(ctx, i, fd, out);
}

void lfile_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = fs_ctx(req);
	uid_t uid = fuse_req_ctx(req)->uid;
	struct lfile *f;
	int rc;

	if (fs_virtual(ino))
		return vnode_open(req, ino, fi);
	rc = fdcap_take(ctx->fdcap, uid);
	if (rc < 0)
		return reply_rc(req, rc);
	rc = lfile_do_open(ctx, ino, fi->flags, &f);
	if (rc < 0) {
		fdcap_give(ctx->fdcap, uid);
		return reply_rc(req, rc);
	}
	f->uid = uid;
	lfile_set_fi(ctx, fi, f);
	if (fuse_reply_open(req, fi) < 0)
		lfile_free(ctx, f);
}

/*
 * Create name exclusively, as the caller.  The kernel sends create only for
 * names it believes absent; if one exists after all and the caller did not
 * ask for O_EXCL, returns -EEXIST for lfile_do_create to open it instead.
 */
static int lfile_make(fuse_req_t req, struct ino *p, int pfd, const char *name,
		      mode_t mode, int flags, struct stat *st, struct ino **out)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct cred_saved cs;
	int fd, rc;

	live_before_dir(ctx, p, pfd);
	fd = cred_enter(req, &cs);
	if (fd == 0) {
		fd = openat(pfd, name, lfile_backing_flags(flags) | O_CREAT |
			    O_EXCL | O_NOFOLLOW, mode);
		if (fd < 0 && ino_fd_room(ctx->itab, errno))
			fd = openat(pfd, name, lfile_backing_flags(flags) |
				    O_CREAT | O_EXCL | O_NOFOLLOW, mode);
		fd = fd < 0 ? -errno : fd;
		cred_leave(&cs);
	}
	if (fd < 0)
		return fd;
	rc = live_lookup_new(ctx, p, name, st, out);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

static int lfile_do_create(fuse_req_t req, fuse_ino_t parent,
			   const char *name, mode_t mode, int flags,
			   struct fuse_entry_param *e, struct lfile **out)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct ino *p = fs_ino(ctx, parent), *i;
	struct stat st;
	int pfd, fd, rc;

	if (!live_name_ok(name))
		return -EINVAL;
	pfd = ino_fd_get(ctx->itab, p);
	if (pfd < 0)
		return pfd;
	ckpt_op_begin(ctx->ckpts);
	fd = lfile_make(req, p, pfd, name, mode, flags, &st, &i);
	ckpt_op_end(ctx->ckpts);
	if (fd == -EEXIST && !(flags & O_EXCL)) {
		rc = ino_lookup(ctx->itab, p, name, &st, &i);
		ino_fd_put(ctx->itab, p);
		if (rc < 0)
			return rc;
		live_fill_entry(ctx, i, &st, e);
		rc = lfile_do_open(ctx, e->ino, flags, out);
		if (rc < 0)
			ino_forget(ctx->itab, i, 1);
		return rc;
	}
	ino_fd_put(ctx->itab, p);
	if (fd < 0)
		return fd;
	live_fill_entry(ctx, i, &st, e);
	rc = lfile_new(ctx, i, fd, out);
	if (rc < 0)
		ino_forget(ctx->itab, i, 1);
	return rc;
}

void lfile_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = fs_ctx(req);
	uid_t uid = fuse_req_ctx(req)->uid;
	struct fuse_entry_param e;
	struct lfile *f;
	int rc;

	if (vnode_reserved(parent, name))
		return reply_rc(req, -EPERM);
	rc = fdcap_take(ctx->fdcap, uid);
	if (rc < 0)
		return reply_rc(req, rc);
	rc = lfile_do_create(req, parent, name, mode, fi->flags, &e, &f);
	if (rc < 0) {
		fdcap_give(ctx->fdcap, uid);
		return reply_rc(req, rc);
	}
	f->uid = uid;
	lfile_set_fi(ctx, fi, f);
	if (fuse_reply_create(req, &e, fi) < 0) {
		lfile_free(ctx, f);
		ino_forget(ctx->itab, fs_ino(ctx, e.ino), 1);
	}
}

void lfile_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (fs_virtual(ino))	/* txn is empty */
		return (void)fuse_reply_buf(req, NULL, 0);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = lfile_fd(fi);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void lfile_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		     off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(bufv));
	struct ckpt_set *ckpts = fs_ctx(req)->ckpts;
	ssize_t n;

	if (fs_virtual(ino))
		return reply_rc(req, -EBADF);
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = lfile_fd(fi);
	out.buf[0].pos = off;
	ckpt_op_begin(ckpts);
	n = ckpt_before_data(ckpts, &lfile_of(fi)->ref, (uint64_t)off,
			     fuse_buf_size(bufv));
	if (n == 0)
		n = fuse_buf_copy(&out, bufv, 0);
	ckpt_op_end(ckpts);
	if (n < 0)
		return reply_rc(req, (int)n);
	fuse_reply_write(req, (size_t)n);
}

void lfile_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* Closing a duplicate reports the backing filesystem's close-time
	 * errors (NFS, quota) to the application's close(). */
	int fd;

	if (fs_virtual(ino))
		return reply_rc(req, 0);
	fd = dup(lfile_fd(fi));
	if (fd < 0)
		return reply_rc(req, -errno);
	reply_rc(req, close(fd) < 0 ? -errno : 0);
}

/* Closing the backing descriptor drops its flock: a waiter may go on. */
void lfile_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fs_virtual(ino))
		return vnode_release(req, ino, fi);
	lfile_free(fs_ctx(req), lfile_of(fi));
	if (fi->flock_release)
		locks_kick(fs_ctx(req)->locks);
	fuse_reply_err(req, 0);
}

void lfile_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		 int op)
{
	if (ino == FS_TXN_ID)
		return vnode_flock(req, fi, op);
	locks_flock(fs_ctx(req)->locks, req, lfile_fd(fi), op);
}

void lfile_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	int rc;

	if (fs_virtual(ino))
		return reply_rc(req, 0);
	rc = datasync ? fdatasync(lfile_fd(fi)) : fsync(lfile_fd(fi));
	reply_rc(req, rc < 0 ? -errno : 0);
}

void lfile_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		     off_t len, struct fuse_file_info *fi)
{
	struct ckpt_set *ckpts = fs_ctx(req)->ckpts;
	/* collapse and insert shift every byte after off */
	uint64_t span = mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)
			? UINT64_MAX : (uint64_t)len;
	int rc;

	if (fs_virtual(ino))
		return reply_rc(req, -EBADF);
	ckpt_op_begin(ckpts);
	rc = ckpt_before_data(ckpts, &lfile_of(fi)->ref, (uint64_t)off, span);
	if (rc == 0)
		rc = fallocate(lfile_fd(fi), mode, off, len) < 0 ? -errno : 0;
	ckpt_op_end(ckpts);
	reply_rc(req, rc);
}

void lfile_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi)
{
	off_t res;

	if (fs_virtual(ino))	/* empty: no data, no hole */
		return reply_rc(req, -ENXIO);
	res = lseek(lfile_fd(fi), off, whence);
	if (res < 0)
		return reply_rc(req, -errno);
	fuse_reply_lseek(req, res);
}

void lfile_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			   off_t off_out, struct fuse_file_info *fi_out,
			   size_t len, int flags)
{
	struct ckpt_set *ckpts = fs_ctx(req)->ckpts;
	ssize_t n;

	if (fs_virtual(ino_in) || fs_virtual(ino_out))
		return reply_rc(req, -EXDEV);
	ckpt_op_begin(ckpts);
	n = ckpt_before_data(ckpts, &lfile_of(fi_out)->ref, (uint64_t)off_out,
			     len);
	if (n == 0) {
		n = copy_file_range(lfile_fd(fi_in), &off_in, lfile_fd(fi_out),
				    &off_out, len, (unsigned)flags);
		n = n < 0 ? -errno : n;
	}
	ckpt_op_end(ckpts);
	if (n < 0)
		return reply_rc(req, (int)n);
	fuse_reply_write(req, (size_t)n);
}

void lfile_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		 struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		 size_t in_bufsz, size_t out_bufsz)
{
	/* Backing ioctls could change data behind the checkpoint engine. */
	fuse_reply_err(req, ENOTTY);
}

static struct ldir *ldir_of(const struct fuse_file_info *fi)
{
	return (struct ldir *)(uintptr_t)fi->fh;
}

static int lfile_do_opendir(struct fs_ctx *ctx, fuse_ino_t ino,
			    struct ldir **out)
{
	struct ino *i = fs_ino(ctx, ino);
	struct ldir *d;
	int pfd, fd, rc = 0;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	pfd = ino_fd_get(ctx->itab, i);
	if (pfd < 0) {
		free(d);
		return pfd;
	}
	fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && ino_fd_room(ctx->itab, errno))
		fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ino_fd_put(ctx->itab, i);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		free(d);
		return rc;
	}
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

static void ldir_free(struct fs_ctx *ctx, struct ldir *d)
{
	closedir(d->dp);
	pthread_mutex_destroy(&d->lock);
	fdcap_give(ctx->fdcap, d->uid);
	free(d);
}

void lfile_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_ctx *ctx = fs_ctx(req);
	uid_t uid = fuse_req_ctx(req)->uid;
	struct ldir *d = NULL;
	int rc;

	if (fs_virtual(ino))
		return vnode_opendir(req, ino, fi);
	rc = fdcap_take(ctx->fdcap, uid);
	if (rc < 0)
		return reply_rc(req, rc);
	rc = lfile_do_opendir(ctx, ino, &d);
	if (rc < 0) {
		fdcap_give(ctx->fdcap, uid);
		return reply_rc(req, rc);
	}
	d->uid = uid;
	fi->fh = (uintptr_t)d;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	if (fuse_reply_open(req, fi) < 0)
		ldir_free(ctx, d);
}

static bool is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/*
 * Add one entry to a readdirplus reply, looking it up first.  Returns the
 * bytes used, 0 when it did not fit (its lookup undone), or -errno.
 */
static ssize_t ldir_add_plus(fuse_req_t req, struct ino *dir, char *p,
			     size_t rem, const struct dirent *de)
{
	struct fs_ctx *ctx = fs_ctx(req);
	struct fuse_entry_param e;
	struct ino *i = NULL;
	struct stat st;
	size_t n;
	int rc;

	memset(&e, 0, sizeof(e));
	if (is_dot(de->d_name)) {
		e.attr.st_ino = de->d_ino;
		e.attr.st_mode = (mode_t)de->d_type << 12;
	} else {
		rc = ino_lookup(ctx->itab, dir, de->d_name, &st, &i);
		if (rc < 0)
			return rc;
		live_fill_entry(ctx, i, &st, &e);
	}
	n = fuse_add_direntry_plus(req, p, rem, de->d_name, &e, de->d_off);
	if (n <= rem)
		return (ssize_t)n;
	if (i)
		ino_forget(ctx->itab, i, 1);
	return 0;
}

static ssize_t ldir_add(fuse_req_t req, char *p, size_t rem,
			const struct dirent *de)
{
	struct stat st = { .st_ino = de->d_ino,
			   .st_mode = (mode_t)de->d_type << 12 };
	size_t n = fuse_add_direntry(req, p, rem, de->d_name, &st, de->d_off);

	return n <= rem ? (ssize_t)n : 0;
}

/* Fill buf with entries from offset off; returns bytes used or -errno. */
static ssize_t ldir_fill_locked(fuse_req_t req, struct ldir *d, struct ino *dir,
				char *buf, size_t size, off_t off, bool plus)
{
	size_t rem = size;
	ssize_t n;

	if (off != d->off) {
		seekdir(d->dp, off);
		d->ent = NULL;
		d->off = off;
	}
	for (;;) {
		if (!d->ent) {
			errno = 0;
			d->ent = readdir(d->dp);
			if (!d->ent) {
				if (errno && rem == size)
					return -errno;
				break;
			}
		}
		if (dir == ino_root(fs_ctx(req)->itab) &&
		    !strcmp(d->ent->d_name, VNODE_DIR_NAME))
			n = -ENOENT;	/* shadowed by the control directory */
		else if (plus)
			n = ldir_add_plus(req, dir, buf + (size - rem), rem,
					  d->ent);
		else
			n = ldir_add(req, buf + (size - rem), rem, d->ent);
		if (n == 0)
			break;
		/* -ENOENT: removed since readdir saw it, so skip it */
		if (n < 0 && n != -ENOENT) {
			if (rem == size)
				return n;
			break;
		}
		if (n > 0)
			rem -= (size_t)n;
		d->off = d->ent->d_off;
		d->ent = NULL;
	}
	return (ssize_t)(size - rem);
}

static void ldir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi, bool plus)
{
	struct ldir *d = ldir_of(fi);
	char *buf;
	ssize_t n;

	if (fs_virtual(ino))
		return vnode_readdir(req, ino, size, off, plus);
	buf = malloc(size);
	if (!buf)
		return reply_rc(req, -ENOMEM);
	pthread_mutex_lock(&d->lock);
	n = ldir_fill_locked(req, d, fs_ino(fs_ctx(req), ino), buf, size, off,
			     plus);
	pthread_mutex_unlock(&d->lock);
	if (n < 0)
		reply_rc(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void lfile_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ldir_read(req, ino, size, off, fi, false);
}

void lfile_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	ldir_read(req, ino, size, off, fi, true);
}

void lfile_releasedir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi)
{
	struct ldir *d = ldir_of(fi);

	if (fs_virtual(ino))
		return reply_rc(req, 0);
	ldir_free(fs_ctx(req), d);
	fuse_reply_err(req, 0);
}

void lfile_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi)
{
	int fd, rc;

	if (fs_virtual(ino))
		return reply_rc(req, 0);
	fd = dirfd(ldir_of(fi)->dp);
	rc = datasync ? fdatasync(fd) : fsync(fd);
	reply_rc(req, rc < 0 ? -errno : 0);
}
