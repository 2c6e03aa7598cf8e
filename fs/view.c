/*
 * view.c - read-only checkpoint views.
 *
 * Every answer a view gives is T's: attributes, names and bytes of an
 * object come from its checkpoint entry when one exists, and otherwise from
 * the live object, which is then still as it was at T.  Live answers are
 * validated after they are read (snapshot/cobj.h rule 3): if a pre-image
 * appeared meanwhile, the pre-image is used.  Views are mounted read-only,
 * so the kernel refuses every modifying call with EROFS (G6).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fs/fdcap.h"
#include "fs/live.h"
#include "fs/view.h"
#include "fs/vmount.h"
#include "snapshot/events.h"
#include "snapshot/nscap.h"
#include "snapshot/rcur.h"

#define VIEW_FD_CACHE 1024
#define VIEW_TIMEOUT 86400.0	/* a view never changes */
#define XATTR_MAX 65536
#define VIEW_WHY_MAX (NAME_MAX + 256)

struct view {
	struct view *next;		/* views->lock */
	struct views *vs;		/* immutable */
	struct fs_ctx *live;		/* immutable */
	struct ckpt *ck;		/* immutable; one reference */
	struct cobj_table *objs;	/* immutable: ck's */
	struct ino_table *itab;		/* the view's own inodes */
	struct fuse_session *se;
	pthread_t thread;
	char dir[PATH_MAX];		/* immutable: where it is mounted */
	uint64_t mnt_id;		/* immutable: its mount, 0 if fusermount3 made it */
	atomic_llong gone_said;		/* view_gone() last spoke, s */
};

struct views {
	pthread_mutex_t lock;
	pthread_cond_t gone;		/* a view or a T size walk ended */
	struct view *list;		/* lock */
	unsigned walks;			/* lock: T size walks running */
	unsigned retiring;		/* lock: views unlisted, not yet freed */
	atomic_bool stopping;		/* the walks must end */
};

/* An open file of a view: its reader cursor owns the saved rule. */
struct vfile {
	struct cobj *c;			/* immutable */
	struct rcur *cur;		/* immutable; reads c through fd */
	int fd;				/* readable live descriptor or -1 */
	uid_t uid;			/* immutable: charged for the open
					 * (fs/fdcap.h, the live tree's) */
	atomic_bool gone_said;		/* view_read() told of EIO */
};

struct vdir {
	struct nsdir *d;
	bool owned;			/* false: the checkpoint's image */
};

static struct view *view_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct ino *view_ino(struct view *v, fuse_ino_t ino)
{
	return fs_ino_in(v->itab, ino);
}

static void reply_rc(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static struct cobj *view_cobj(struct view *v, struct ino *i)
{
	dev_t dev;
	ino_t ino;

	ino_ident(i, &dev, &ino);
	return cobj_find(v->objs, dev, ino);
}

/* "PATH (inode N): why" for object i, its live path if it has one. */
static void view_describe(struct view *v, struct ino *i, const char *why,
			  char *what, size_t size)
{
	char link[LIVE_PROC_PATH_MAX], path[PATH_MAX] = "";
	ssize_t n = -1;
	dev_t dev;
	ino_t ino;
	int fd = ino_fd_get(v->itab, i);

	if (fd >= 0) {
		live_proc_path(fd, link, sizeof(link));
		n = readlink(link, path, sizeof(path) - 1);
		ino_fd_put(v->itab, i);
	}
	path[n > 0 ? n : 0] = '\0';
	ino_ident(i, &dev, &ino);
	snprintf(what, size, "%s (inode %lu): %s",
		 n > 0 ? path : "deleted file", (unsigned long)ino, why);
}

/* G3: name the object a view could not serve. */
static void view_integrity(struct view *v, struct ino *i, const char *why)
{
	char what[PATH_MAX + 256];

	view_describe(v, i, why, what, sizeof(what));
	ckpt_report_integrity(v->ck, what);
}

/*
 * G3: every EIO a view answers writes an integrity-error event naming the
 * object and why.  The code that finds the failure says why (view_eio);
 * the answer goes through view_reply_rc(), which writes the event, so an
 * EIO cannot leave without one, whatever returned it (a backing EIO
 * without a reason is named as such).  A request runs on one thread from
 * its handler to its answer: the reason is kept per thread until then.
 * While the checkpoint is gone, view_gone() speaks instead, rate-limited.
 */
static __thread char view_why[VIEW_WHY_MAX];

static int view_eio(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(view_why, sizeof(view_why), fmt, ap);
	va_end(ap);
	return -EIO;
}

/* Answer rc (0 or -errno) to a request about object i. */
static void view_reply_rc(fuse_req_t req, struct view *v, struct ino *i,
			  int rc)
{
	if (rc == -EIO && ckpt_usable(v->ck))
		view_integrity(v, i, view_why[0] ? view_why :
			       "the backing filesystem answered EIO");
	view_why[0] = '\0';
	reply_rc(req, rc);
}

/* One stderr line and event: i fails with EIO because the checkpoint
 * went. */
static void view_say_gone(struct view *v, struct ino *i)
{
	char what[PATH_MAX + 256];

	view_describe(v, i, "fails with EIO", what, sizeof(what));
	fprintf(stderr, "swafs: view '%s' of checkpoint '%s': %s: checkpoint "
		"%s\n", v->dir, ckpt_name(v->ck), what,
		ckpt_unusable_why(v->ck) ?: "released");
	view_integrity(v, i, ckpt_unusable_why(v->ck) ?: "checkpoint released");
}

/*
 * The checkpoint was invalidated or released: every call fails with EIO.
 * Said at most once a second per view here, since a tree walk fails on
 * every name; reads say it once per open file (view_read).
 */
static int view_gone(struct view *v, struct ino *i)
{
	long long now = time(NULL), last = atomic_load(&v->gone_said);

	if (now != last &&
	    atomic_compare_exchange_strong(&v->gone_said, &last, now))
		view_say_gone(v, i);
	return -EIO;
}

/*
 * G3: an object the live tree never captured but whose ctime is after T
 * was changed behind the mount's back; its live state is not T's.
 */
static bool changed_behind(struct view *v, const struct stat *st)
{
	const struct timespec *t = ckpt_time(v->ck);

	if (st->st_ctim.tv_sec < t->tv_sec ||
	    (st->st_ctim.tv_sec == t->tv_sec && st->st_ctim.tv_nsec <= t->tv_nsec))
		return false;
	view_eio("changed behind the mount's back since T");
	return true;
}

/* Why T data of entry c cannot be served (a read or open failed). */
static const char *view_why_unserved(const struct cobj *c)
{
	unsigned f = c ? cobj_flags(c) : 0;

	if (f & COBJ_LOST)
		return "released, then its last name went when no more "
		       "descriptors could be kept";
	if (f & COBJ_BROKEN)
		return "a capture of its T state failed";
	if (f & COBJ_CHANGED)
		return "changed after it was released";
	if (!c)
		return "cannot be reopened: no name, handle or checkpoint "
		       "entry reaches it";
	return "T data cannot be served (a saved block changed since, or "
	       "the store failed a check)";
}

/* T attributes of i, validated (rule 3). */
static int view_tstat(struct view *v, struct ino *i, struct stat *st)
{
	struct cobj *c = view_cobj(v, i);
	int fd, rc = 0;

	if (!ckpt_usable(v->ck))
		return view_gone(v, i);
	if (!c) {
		fd = ino_fd_get(v->itab, i);
		if (fd < 0)
			return view_eio("%s", view_why_unserved(view_cobj(v, i)));
		if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			rc = -errno;
		ino_fd_put(v->itab, i);
		c = view_cobj(v, i);
		if (!c && rc == 0 && changed_behind(v, st))
			rc = -EIO;
	}
	if (c)
		*st = *cobj_stat(c);
	return rc;
}

/* On failure the caller still holds i's lookup reference. */
static int view_entry(struct view *v, struct ino *i, struct fuse_entry_param *e)
{
	int rc;

	memset(e, 0, sizeof(*e));
	rc = view_tstat(v, i, &e->attr);
	if (rc < 0)
		return rc;
	e->ino = fs_nodeid_in(v->itab, i);
	e->attr_timeout = VIEW_TIMEOUT;
	e->entry_timeout = VIEW_TIMEOUT;
	return 0;
}

/* Insert the object open at O_PATH fd (consumed) into the view. */
static int view_insert_fd(struct view *v, int fd, struct ino **out)
{
	struct stat st;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return ino_insert(v->itab, fd, &st, out);
}

/* The object of a captured entry by its handle, or -1 if gone. */
static int open_entry(struct view *v, const struct nsent *e)
{
	int fd;

	if (!e->fh)
		return -1;
	do {
		fd = open_by_handle_at(ino_table_root_fd(v->itab),
				       (struct file_handle *)e->fh,
				       O_PATH | O_CLOEXEC);
	} while (fd < 0 && ino_fd_room(v->itab, errno));
	return fd;
}

/* name in a directory whose T entries were captured. */
static int resolve_captured(struct view *v, struct cobj *dir, dev_t dev,
			    const char *name, struct ino **out)
{
	struct nsdir *d = cobj_dir(dir);
	struct nsent e;
	struct cobj *c;
	long k = nsdir_find(d, name);
	int fd;

	if (k < 0)
		return -ENOENT;
	nsdir_entry(d, (size_t)k, &e);
	fd = open_entry(v, &e);
	if (fd >= 0)
		return view_insert_fd(v, fd, out);
	/* gone from the live tree: only its checkpoint entry remains, with
	 * the whole T image or a kept descriptor (cobj.h rule 7) */
	c = cobj_find(v->objs, dev, e.ino);
	if (c && (cobj_flags(c) & (COBJ_DEAD | COBJ_KEPT)))
		return ino_insert(v->itab, -1, cobj_stat(c), out);
	return view_eio("entry '%s' (inode %lu): %s", name,
			(unsigned long)e.ino, view_why_unserved(c));
}

static bool dir_captured(struct cobj *c)
{
	return c && (cobj_flags(c) & COBJ_DIR);
}

/*
 * name in directory p as at T.  A --path checkpoint needs nothing more:
 * the directories leading to its subtrees were captured at T holding
 * only the names that lead on (snapshot/scope.h), so they resolve and
 * list as they were, and nothing outside the subtrees shows.
 */
static int view_resolve(struct view *v, struct ino *p, const char *name,
			struct ino **out)
{
	struct cobj *cp = view_cobj(v, p);
	dev_t dev;
	ino_t ino;
	int pfd, fd, err;

	ino_ident(p, &dev, &ino);
	if (!dir_captured(cp)) {
		pfd = ino_fd_get(v->itab, p);
		if (pfd < 0)
			return view_eio("%s", view_why_unserved(cp));
		do {
			fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		} while (fd < 0 && ino_fd_room(v->itab, errno));
		err = errno;
		ino_fd_put(v->itab, p);
		cp = view_cobj(v, p);
		if (!dir_captured(cp)) {
			if (fd < 0)
				return -err;
			return view_insert_fd(v, fd, out);
		}
		if (fd >= 0)
			close(fd);
	}
	return resolve_captured(v, cp, dev, name, out);
}

static void view_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct view *v = view_of(req);
	struct fuse_entry_param e;
	struct ino *i;
	int rc;

	if (!ckpt_usable(v->ck))
		return reply_rc(req, view_gone(v, view_ino(v, parent)));
	if (!live_name_ok(name))
		return reply_rc(req, -EINVAL);
	rc = view_resolve(v, view_ino(v, parent), name, &i);
	if (rc < 0)
		return view_reply_rc(req, v, view_ino(v, parent), rc);
	rc = view_entry(v, i, &e);
	if (rc < 0) {
		view_reply_rc(req, v, i, rc);
		ino_forget(v->itab, i, 1);
	} else if (fuse_reply_entry(req, &e) < 0) {
		ino_forget(v->itab, i, 1);
	}
}

static void view_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	fs_forget(req, view_of(req)->itab, ino, n);
}

static void view_forget_multi(fuse_req_t req, size_t count,
			      struct fuse_forget_data *f)
{
	fs_forget_multi(req, view_of(req)->itab, count, f);
}

static void view_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct view *v = view_of(req);
	struct stat st;
	int rc = view_tstat(v, view_ino(v, ino), &st);

	if (rc < 0)
		return view_reply_rc(req, v, view_ino(v, ino), rc);
	fuse_reply_attr(req, &st, VIEW_TIMEOUT);
}

static void view_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct view *v = view_of(req);
	struct ino *i = view_ino(v, ino);
	struct cobj *c = view_cobj(v, i);
	char buf[PATH_MAX + 1];
	ssize_t n = -1;
	int fd;

	if (!c || !cobj_link(c)) {
		fd = ino_fd_get(v->itab, i);
		if (fd >= 0) {
			n = readlinkat(fd, "", buf, sizeof(buf) - 1);
			ino_fd_put(v->itab, i);
		}
		c = view_cobj(v, i);
	}
	/* a symlink's target never changes; only a dead one is captured */
	if (c && cobj_link(c))
		return (void)fuse_reply_readlink(req, cobj_link(c));
	if (n < 0)
		return view_reply_rc(req, v, i, view_eio("%s",
						view_why_unserved(c)));
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* A readable descriptor of the object open at pfd (O_PATH). */
static int open_readable(struct view *v, int pfd)
{
	char path[LIVE_PROC_PATH_MAX];
	int fd;

	live_proc_path(pfd, path, sizeof(path));
	do {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
		if (fd < 0 && errno == EPERM)
			fd = open(path, O_RDONLY | O_CLOEXEC);
	} while (fd < 0 && ino_fd_room(v->itab, errno));
	return fd < 0 ? -errno : fd;
}

/*
 * i no longer reaches its object (its last name went after T): its entry
 * holds the whole T image (dead), or the table kept a descriptor of a
 * released object whose live data is still T's (cobj.h rule 7).
 */
static int vfile_attach_gone(struct view *v, struct vfile *f)
{
	unsigned fl = f->c ? cobj_flags(f->c) : 0;

	if (fl & COBJ_DEAD)
		return 0;
	if ((fl & (COBJ_KEPT | COBJ_CHANGED)) == COBJ_KEPT) {
		f->fd = open_readable(v, cobj_kept_fd(f->c));
		return f->fd;
	}
	return view_eio("%s", view_why_unserved(f->c));
}

/* The checkpoint entry of i, created if needed, and a live descriptor. */
static int vfile_attach(struct view *v, struct ino *i, struct vfile *f)
{
	int pfd = ino_fd_get(v->itab, i), rc = 0;
	struct cobj_ref r;

	f->fd = -1;
	if (pfd < 0) {
		f->c = view_cobj(v, i);
		rc = vfile_attach_gone(v, f);
		return rc < 0 ? rc : 0;
	}
	r = fs_ref(v->itab, i, pfd);
	rc = cobj_get(v->objs, &r, &f->c);
	/* an entry records T attributes, unless made now from a live object
	 * someone changed behind the mount's back */
	if (rc == 0 && changed_behind(v, cobj_stat(f->c)))
		rc = -EIO;
	if (rc == 0 && !(cobj_flags(f->c) & COBJ_DEAD)) {
		f->fd = open_readable(v, pfd);
		rc = f->fd < 0 ? f->fd : 0;
	}
	ino_fd_put(v->itab, i);
	return rc;
}

static int view_do_open(struct view *v, struct ino *i, struct vfile **out)
{
	struct vfile *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	rc = vfile_attach(v, i, f);
	if (rc == 0)
		rc = rcur_open(v->ck, f->c, f->fd, &f->cur);
	if (rc < 0) {
		if (f->fd >= 0)
			close(f->fd);
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* An open file of a view may hold a live descriptor: charged like the
 * live tree's opens. */
static void view_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct view *v = view_of(req);
	uid_t uid = fuse_req_ctx(req)->uid;
	struct vfile *f;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return reply_rc(req, -EROFS);
	if (!ckpt_usable(v->ck))
		return reply_rc(req, view_gone(v, view_ino(v, ino)));
	rc = fdcap_take(v->live->fdcap, uid);
	if (rc < 0)
		return view_reply_rc(req, v, view_ino(v, ino), rc);
	rc = view_do_open(v, view_ino(v, ino), &f);
	if (rc < 0) {
		fdcap_give(v->live->fdcap, uid);
		return view_reply_rc(req, v, view_ino(v, ino), rc);
	}
	f->uid = uid;
	fi->fh = (uintptr_t)f;
	fi->keep_cache = 1;
	fi->noflush = 1;
	/* an interrupted open gets no release: undo it here */
	if (fuse_reply_open(req, fi) < 0) {
		rcur_close(f->cur);
		if (f->fd >= 0)
			close(f->fd);
		fdcap_give(v->live->fdcap, uid);
		free(f);
	}
}

/* Every open file whose read fails because the checkpoint went says so. */
static void view_read_gone(struct view *v, struct vfile *f, struct ino *i)
{
	if (!atomic_exchange(&f->gone_said, true))
		view_say_gone(v, i);
}

static void view_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct view *v = view_of(req);
	struct vfile *f = (struct vfile *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	if (!buf)
		return reply_rc(req, -ENOMEM);
	n = ckpt_usable(v->ck) ? rcur_read(f->cur, buf, size, (uint64_t)off)
			       : -EIO;
	if (n == -EIO && ckpt_usable(v->ck))
		view_eio("%s", view_why_unserved(f->c));
	else if (n == -EIO)
		view_read_gone(v, f, view_ino(v, ino));
	if (n >= 0)
		fuse_reply_buf(req, buf, (size_t)n);
	else
		view_reply_rc(req, v, view_ino(v, ino), (int)n);
	free(buf);
}

static void view_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	struct view *v = view_of(req);
	struct vfile *f = (struct vfile *)(uintptr_t)fi->fh;
	off_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return reply_rc(req, -EINVAL);
	if (!ckpt_usable(v->ck))
		return reply_rc(req, view_gone(v, view_ino(v, ino)));
	r = cobj_seek(v->objs, f->c, f->fd, (uint64_t)off, whence == SEEK_DATA);
	/* T's layout is gone where T's bytes are: fail as a read would */
	if (r == -EIO && ckpt_usable(v->ck))
		view_integrity(v, view_ino(v, ino), "T layout cannot be served");
	else if (r == -EIO)
		r = view_gone(v, view_ino(v, ino));
	/* a seek over a hole passes it (the cursor saves it) */
	if (whence == SEEK_DATA && (r >= 0 || r == -ENXIO))
		rcur_seek_data(f->cur, (uint64_t)off, r >= 0 ? (uint64_t)r
							     : UINT64_MAX);
	if (r < 0)
		return reply_rc(req, (int)r);
	fuse_reply_lseek(req, r);
}

static void view_release(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct view *v = view_of(req);
	struct vfile *f = (struct vfile *)(uintptr_t)fi->fh;

	if (rcur_close(f->cur))
		events_emit(v->live->events, "file-released",
			    "\"name\":\"%s\",\"inode\":%lu", ckpt_name(v->ck),
			    (unsigned long)cobj_stat(f->c)->st_ino);
	if (f->fd >= 0)
		close(f->fd);
	fdcap_give(v->live->fdcap, f->uid);
	free(f);
	fuse_reply_err(req, 0);
}

/* T entries of directory i: the captured image, or the live one. */
static int view_list(struct view *v, struct ino *i, struct vdir *vd)
{
	struct cobj *c = view_cobj(v, i);
	int fd, rc;

	if (!dir_captured(c)) {
		fd = ino_fd_get(v->itab, i);
		if (fd < 0)
			return view_eio("%s", view_why_unserved(c));
		rc = nsdir_read(fd, false, &vd->d);
		ino_fd_put(v->itab, i);
		if (rc < 0)
			return rc;
		c = view_cobj(v, i);
		if (!dir_captured(c)) {
			vd->owned = true;
			return 0;
		}
		nsdir_free(vd->d);
	}
	vd->d = cobj_dir(c);
	vd->owned = false;
	return 0;
}

static void view_opendir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct view *v = view_of(req);
	struct vdir *vd = calloc(1, sizeof(*vd));
	int rc = vd ? 0 : -ENOMEM;

	if (rc == 0 && !ckpt_usable(v->ck))
		rc = view_gone(v, view_ino(v, ino));
	if (rc == 0)
		rc = view_list(v, view_ino(v, ino), vd);
	if (rc < 0) {
		free(vd);
		return view_reply_rc(req, v, view_ino(v, ino), rc);
	}
	fi->fh = (uintptr_t)vd;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

/* Add entry k (0 ".", 1 "..", then the image) of directory dir. */
static size_t vdir_add(fuse_req_t req, struct vdir *vd, struct ino *dir,
		       size_t k, char *buf, size_t rem, bool plus)
{
	struct view *v = view_of(req);
	struct fuse_entry_param e = { .attr.st_mode = S_IFDIR };
	const char *name = k == 0 ? "." : "..";
	struct ino *i = NULL;
	struct nsent ent;
	size_t len;

	if (k >= 2) {
		nsdir_entry(vd->d, k - 2, &ent);
		name = ent.name;
		e.attr.st_ino = ent.ino;
		e.attr.st_mode = (mode_t)ent.type << 12;
	}
	if (!plus)
		return fuse_add_direntry(req, buf, rem, name, &e.attr,
					 (off_t)k + 1);
	/* an entry that cannot be resolved is listed without attributes
	 * (its lookup will fail and say why) */
	if (k >= 2 && view_resolve(v, dir, name, &i) == 0 &&
	    view_entry(v, i, &e) < 0) {
		ino_forget(v->itab, i, 1);
		i = NULL;
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = ent.ino;
		e.attr.st_mode = (mode_t)ent.type << 12;
	}
	len = fuse_add_direntry_plus(req, buf, rem, name, &e, (off_t)k + 1);
	if (len > rem && i)
		ino_forget(v->itab, i, 1);
	return len;
}

static void vdir_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi, bool plus)
{
	struct view *v = view_of(req);
	struct vdir *vd = (struct vdir *)(uintptr_t)fi->fh;
	size_t n = nsdir_count(vd->d) + 2, used = 0;
	char *buf = malloc(size);

	if (!buf)
		return reply_rc(req, -ENOMEM);
	for (size_t k = (size_t)off; k < n; k++) {
		size_t len = vdir_add(req, vd, view_ino(v, ino), k, buf + used,
				      size - used, plus);

		if (len > size - used)
			break;
		used += len;
	}
	/* entries that failed are listed without attributes: their
	 * reasons belong to their own lookups, not to a later answer */
	view_why[0] = '\0';
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void view_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			 off_t off, struct fuse_file_info *fi)
{
	vdir_read(req, ino, size, off, fi, false);
}

static void view_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			     off_t off, struct fuse_file_info *fi)
{
	vdir_read(req, ino, size, off, fi, true);
}

static void view_releasedir(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi)
{
	struct vdir *vd = (struct vdir *)(uintptr_t)fi->fh;

	if (vd->owned)
		nsdir_free(vd->d);
	free(vd);
	fuse_reply_err(req, 0);
}

static void view_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct view *v = view_of(req);
	struct statvfs sv;

	if (fstatvfs(ino_table_root_fd(v->itab), &sv) < 0)
		return reply_rc(req, -errno);
	fuse_reply_statfs(req, &sv);
}

/*
 * Extended attributes: from the entry's record if they were captured,
 * otherwise live and validated.
 */
static ssize_t view_xattr_live(struct view *v, struct ino *i, const char *name,
			       char *buf, size_t size)
{
	char path[LIVE_PROC_PATH_MAX];
	ssize_t n;
	int fd;

	if (ino_type(i) == S_IFLNK)
		return name ? -ENODATA : 0;
	fd = ino_fd_get(v->itab, i);
	if (fd < 0)
		return view_eio("%s", view_why_unserved(view_cobj(v, i)));
	live_proc_path(fd, path, sizeof(path));
	n = name ? getxattr(path, name, buf, size) : listxattr(path, buf, size);
	n = n < 0 ? -errno : n;
	ino_fd_put(v->itab, i);
	return n;
}

static ssize_t view_do_xattr(struct view *v, struct ino *i, const char *name,
			     char *buf, size_t size)
{
	struct cobj *c = view_cobj(v, i);
	ssize_t n = 0;

	if (!ckpt_usable(v->ck))
		return view_gone(v, i);
	if (!c || !(cobj_flags(c) & COBJ_XATTR)) {
		n = view_xattr_live(v, i, name, buf, size);
		c = view_cobj(v, i);
		if (!c || !(cobj_flags(c) & COBJ_XATTR))
			return n;
	}
	return cobj_xattr_read(c, name, buf, size);
}

static void view_xattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size)
{
	struct view *v = view_of(req);
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf)
		return reply_rc(req, -ENOMEM);
	n = view_do_xattr(v, view_ino(v, ino), name, buf, size);
	if (n == -EIO)
		view_reply_rc(req, v, view_ino(v, ino), (int)n);
	else
		live_reply_xattr(req, buf, n, size);
	free(buf);
}

static void view_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  size_t size)
{
	view_xattr(req, ino, name, size);
}

static void view_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	view_xattr(req, ino, NULL, size);
}

/*
 * Views are mounted read-only, so the kernel refuses changes itself; these
 * refuse them again should someone remount a view read-write (G6).
 */
static void erofs(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void view_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int valid, struct fuse_file_info *fi)
{
	erofs(req);
}

static void view_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, dev_t rdev)
{
	erofs(req);
}

static void view_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	erofs(req);
}

static void view_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	erofs(req);
}

static void view_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			 const char *name)
{
	erofs(req);
}

static void view_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned flags)
{
	erofs(req);
}

static void view_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent,
		      const char *name)
{
	erofs(req);
}

static void view_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	erofs(req);
}

static void view_write_buf(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_bufvec *bufv, off_t off,
			   struct fuse_file_info *fi)
{
	erofs(req);
}

static void view_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  const char *value, size_t size, int flags)
{
	erofs(req);
}

static void view_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	erofs(req);
}

static void view_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			   off_t len, struct fuse_file_info *fi)
{
	erofs(req);
}

static void view_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				 off_t off_in, struct fuse_file_info *fi_in,
				 fuse_ino_t ino_out, off_t off_out,
				 struct fuse_file_info *fi_out, size_t len,
				 int flags)
{
	erofs(req);
}

static void view_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= (FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_READDIRPLUS |
		       FUSE_CAP_READDIRPLUS_AUTO) & conn->capable;
	conn->max_readahead = conn->max_write;
}

static const struct fuse_lowlevel_ops view_ops = {
	.init = view_init,
	.lookup = view_lookup,
	.forget = view_forget,
	.forget_multi = view_forget_multi,
	.getattr = view_getattr,
	.readlink = view_readlink,
	.open = view_open,
	.read = view_read,
	.release = view_release,
	.lseek = view_lseek,
	.opendir = view_opendir,
	.readdir = view_readdir,
	.readdirplus = view_readdirplus,
	.releasedir = view_releasedir,
	.statfs = view_statfs,
	.getxattr = view_getxattr,
	.listxattr = view_listxattr,
	.setattr = view_setattr,
	.mknod = view_mknod,
	.mkdir = view_mkdir,
	.unlink = view_remove,
	.rmdir = view_remove,
	.symlink = view_symlink,
	.rename = view_rename,
	.link = view_link,
	.create = view_create,
	.write_buf = view_write_buf,
	.setxattr = view_setxattr,
	.removexattr = view_removexattr,
	.fallocate = view_fallocate,
	.copy_file_range = view_copy_file_range,
};

static void view_free(struct view *v)
{
	if (v->se)
		fuse_session_destroy(v->se);
	if (v->itab)
		ino_table_free(v->itab);
	ckpt_put(v->ck);
	free(v);
}

/*
 * Take v off the list and free it, and only then tell views_free(): what
 * v holds (its session, its reference to the checkpoint) must be gone
 * before the engine is torn down, or its last ckpt_put() frees pre-images
 * in a store that is being freed.
 */
static void view_retire(struct view *v)
{
	struct views *vs = v->vs;
	struct view **pp;

	pthread_mutex_lock(&vs->lock);
	for (pp = &vs->list; *pp && *pp != v; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = v->next;
	vs->retiring++;
	pthread_mutex_unlock(&vs->lock);
	view_free(v);
	pthread_mutex_lock(&vs->lock);
	vs->retiring--;
	pthread_cond_broadcast(&vs->gone);
	pthread_mutex_unlock(&vs->lock);
}

/* Serve until unmounted, then end the view. */
static void *view_thread(void *arg)
{
	struct view *v = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();

	if (cfg) {
		fuse_session_loop_mt(v->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(v->se);
	if (v->mnt_id)
		vmount_detach(v->dir, v->mnt_id);
	ckpt_view_detach(v->ck);
	view_retire(v);
	return NULL;
}

/*
 * Mount on exactly the directory dfd (fs/vmount.h); the session is served
 * on the descriptor handed to libfuse as /dev/fd/N, so libfuse neither
 * mounts nor unmounts by path.  A daemon without CAP_SYS_ADMIN cannot:
 * fusermount3 mounts for it, with its own checks of the user's directory.
 */
static int view_session(struct view *v, const char *name, int dfd)
{
	char opts[256], fsname[80], dev[32];
	char *argv[] = { "swafs-view", "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int fd;

	snprintf(fsname, sizeof(fsname), "swafs:%s", name);
	snprintf(opts, sizeof(opts), "ro,default_permissions,fsname=%s,"
		 "subtype=swafs-view%s", fsname,
		 v->live->allow_other ? ",allow_other" : "");
	v->se = fuse_session_new(&args, &view_ops, sizeof(view_ops), v);
	fuse_opt_free_args(&args);
	if (!v->se)
		return -EINVAL;
	if (geteuid() != 0)
		return fuse_session_mount(v->se, v->dir) ? -EIO : 0;
	fd = vmount_attach(dfd, fsname, v->live->allow_other, &v->mnt_id);
	if (fd < 0)
		return fd;
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fd);
	if (fuse_session_mount(v->se, dev) != 0) {
		vmount_detach(v->dir, v->mnt_id);
		close(fd);
		return -EIO;
	}
	return 0;
}

/* The view's own inode table over the live tree's root. */
static int view_table(struct fs_ctx *live, struct view *v, unsigned fds)
{
	int fd = fcntl(ino_table_root_fd(live->itab), F_DUPFD_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	rc = ino_table_create(fd, fds, &v->itab);
	if (rc < 0)
		close(fd);
	return rc;
}

static int view_setup(struct fs_ctx *live, struct view *v, const char *name,
		      int dfd)
{
	int rc = view_table(live, v, VIEW_FD_CACHE);

	return rc < 0 ? rc : view_session(v, name, dfd);
}

static bool view_busy_locked(struct views *vs, const char *dir)
{
	for (struct view *v = vs->list; v; v = v->next)
		if (!strcmp(v->dir, dir))
			return true;
	return false;
}

int view_mount(struct fs_ctx *live, const char *name, const char *dir,
	       uid_t uid)
{
	struct views *vs = live->views;
	struct stat st = { 0 };
	struct view *v;
	int rc, dfd;

	if (strlen(dir) >= PATH_MAX)
		return -ENAMETOOLONG;
	dfd = vmount_dir_open(dir, uid);
	if (dfd < 0)
		return dfd;
	/* a view inside the live tree would hide its directories */
	if (fstat(dfd, &st) < 0 || st.st_dev == live->dev) {
		rc = st.st_dev == live->dev ? -EXDEV : -errno;
		close(dfd);
		return rc;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		close(dfd);
		return -ENOMEM;
	}
	v->vs = vs;
	v->live = live;
	strcpy(v->dir, dir);
	v->ck = ckpt_get(live->ckpts, name);
	if (!v->ck || !ckpt_usable(v->ck)) {
		rc = v->ck ? -EIO : -ENOENT;
		close(dfd);
		view_free(v);
		return rc;
	}
	v->objs = ckpt_objects(v->ck);
	pthread_mutex_lock(&vs->lock);
	rc = view_busy_locked(vs, v->dir) ? -EBUSY
					  : view_setup(live, v, name, dfd);
	close(dfd);
	if (rc == 0) {
		ckpt_view_attach(v->ck);
		v->next = vs->list;
		vs->list = v;
		rc = -pthread_create(&v->thread, NULL, view_thread, v);
		if (rc == 0)
			pthread_detach(v->thread);
		else	/* a mount that failed must not cost the checkpoint */
			ckpt_view_cancel(v->ck);
	}
	pthread_mutex_unlock(&vs->lock);
	if (rc < 0) {
		if (v->se)
			fuse_session_unmount(v->se);
		if (v->mnt_id)
			vmount_detach(v->dir, v->mnt_id);
		view_retire(v);
	}
	return rc;
}

int views_create(struct views **out)
{
	struct views *vs = calloc(1, sizeof(*vs));

	if (!vs)
		return -ENOMEM;
	pthread_mutex_init(&vs->lock, NULL);
	pthread_cond_init(&vs->gone, NULL);
	*out = vs;
	return 0;
}

/*
 * The live tree is going away: unmount every view.  A view a process still
 * holds open stays lazily mounted (its reads then fail); after a grace
 * period the daemon stops waiting for it.
 */
bool views_free(struct views *vs)
{
	struct timespec deadline;

	if (!vs)
		return true;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	atomic_store(&vs->stopping, true);
	pthread_mutex_lock(&vs->lock);
	for (struct view *v = vs->list; v; v = v->next)
		if (v->mnt_id)
			vmount_detach(v->dir, v->mnt_id);
		else
			umount2(v->dir, MNT_DETACH);
	while ((vs->list || vs->walks || vs->retiring) &&
	       pthread_cond_timedwait(&vs->gone, &vs->lock, &deadline) !=
	       ETIMEDOUT)
		;
	if (vs->list || vs->walks || vs->retiring) {
		pthread_mutex_unlock(&vs->lock);
		return false;	/* view threads still use vs: leave it */
	}
	pthread_mutex_unlock(&vs->lock);
	pthread_cond_destroy(&vs->gone);
	pthread_mutex_destroy(&vs->lock);
	free(vs);
	return true;
}

/*
 * T size: a low-priority walk, started after T, of the T namespace exactly
 * as a view shows it (a view without a FUSE session, using the view's own
 * lookup, listing and validated attributes), adding up the T data of
 * non-empty regular files (what a save can read: the sizes, or for sparse
 * files the blocks holding data), each inode once.  Taking the checkpoint
 * walks nothing (G7).  The walk holds one descriptor per cached inode of
 * its own small table (TSIZE_FDS) plus the directory it reads and the file
 * whose holes it looks up; it ends early when the checkpoint is no longer
 * usable or the live tree goes away.  It starts a moment after T
 * (TSIZE_GRACE_MS): the writers the drain held all resume
 * at T and take their first captures then; the walk lets that burst pass.
 */
#define TSIZE_FDS 32
#define TSIZE_DEPTH_MAX 4096
#define TSIZE_GRACE_MS 1000

struct tlink {
	ino_t ino;
	uint64_t size;
};

struct tsize {
	struct view *v;			/* headless */
	uint64_t bytes, files;		/* files with one link */
	struct tlink *links;		/* files with several: counted once */
	size_t nlinks, cap;
};

static bool tsize_stopped(struct tsize *w)
{
	return atomic_load(&w->v->vs->stopping) || !ckpt_usable(w->v->ck);
}

/* The capture blocks of c (or of live fd, if c is NULL) that held data at
 * T, in bytes: each block with data counts whole, as rcur counts it saved. */
static uint64_t tsize_blocks(struct view *v, struct cobj *c, int fd,
			     uint64_t size)
{
	uint64_t bs = cobj_block_size(v->objs), n = 0, pos = 0;
	off_t d;

	while (pos < size) {
		d = c ? cobj_seek(v->objs, c, fd, pos, true)
		      : lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0 || (uint64_t)d >= size)
			break;
		pos = ((uint64_t)d / bs + 1) * bs;
		n += (pos < size ? pos : size) - (pos - bs);
	}
	return n;
}

/* Bytes of T data of regular file i (T attributes st): its size, or for a
 * sparse file the blocks that held data.  Live answers are validated
 * (rule 3): if an entry appeared meanwhile, it answers instead. */
static uint64_t tsize_data(struct view *v, struct ino *i,
			   const struct stat *st)
{
	uint64_t size = (uint64_t)st->st_size, n = size;
	struct cobj *c = view_cobj(v, i);
	int pfd, fd = -1;

	if ((uint64_t)st->st_blocks * 512 >= size)
		return size;
	pfd = ino_fd_get(v->itab, i);
	if (pfd >= 0) {
		fd = open_readable(v, pfd);
		ino_fd_put(v->itab, i);
	}
	if (fd >= 0 || c)
		n = tsize_blocks(v, c, fd, size);
	if (!c && fd >= 0 && (c = view_cobj(v, i)))
		n = tsize_blocks(v, c, fd, size);
	if (fd >= 0)
		close(fd);
	return n;
}

static int tsize_file(struct tsize *w, struct ino *i, const struct stat *st)
{
	uint64_t bytes;
	struct tlink *n;

	if (!st->st_size)	/* nothing to save: never opened by tar */
		return 0;
	bytes = tsize_data(w->v, i, st);
	if (st->st_nlink <= 1) {
		w->bytes += bytes;
		w->files++;
		return 0;
	}
	if (w->nlinks == w->cap) {
		n = realloc(w->links, (w->cap * 2 + 64) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->links = n;
		w->cap = w->cap * 2 + 64;
	}
	w->links[w->nlinks++] = (struct tlink){ st->st_ino, bytes };
	return 0;
}

static int tlink_cmp(const void *a, const void *b)
{
	ino_t x = ((const struct tlink *)a)->ino;
	ino_t y = ((const struct tlink *)b)->ino;

	return x < y ? -1 : x > y;
}

static void tsize_links(struct tsize *w)
{
	qsort(w->links, w->nlinks, sizeof(*w->links), tlink_cmp);
	for (size_t k = 0; k < w->nlinks; k++)
		if (k == 0 || w->links[k].ino != w->links[k - 1].ino) {
			w->bytes += w->links[k].size;
			w->files++;
		}
}

static int tsize_dir(struct tsize *w, struct ino *dir, unsigned depth);

static int tsize_entry(struct tsize *w, struct ino *dir,
		       const struct nsent *e, unsigned depth)
{
	struct view *v = w->v;
	struct stat st;
	struct ino *i;
	int rc;

	if (e->type != DT_UNKNOWN && e->type != DT_REG && e->type != DT_DIR)
		return 0;
	rc = view_resolve(v, dir, e->name, &i);
	if (rc < 0)
		return rc;
	rc = view_tstat(v, i, &st);
	if (rc == 0 && S_ISREG(st.st_mode))
		rc = tsize_file(w, i, &st);
	else if (rc == 0 && S_ISDIR(st.st_mode))
		rc = tsize_dir(w, i, depth + 1);
	ino_forget(v->itab, i, 1);
	return rc;
}

static int tsize_dir(struct tsize *w, struct ino *dir, unsigned depth)
{
	struct nsent e;
	struct vdir vd;
	int rc;

	if (depth > TSIZE_DEPTH_MAX)
		return -ELOOP;
	rc = view_list(w->v, dir, &vd);
	if (rc < 0)
		return rc;
	for (size_t k = 0; rc == 0 && k < nsdir_count(vd.d); k++) {
		nsdir_entry(vd.d, k, &e);
		rc = tsize_stopped(w) ? -ECANCELED
				      : tsize_entry(w, dir, &e, depth);
	}
	if (vd.owned)
		nsdir_free(vd.d);
	return rc;
}

/* A view of ck with no session: the walk's lookups and listings. */
static int view_headless(struct fs_ctx *live, struct ckpt *ck,
			 struct view **out)
{
	struct view *v = calloc(1, sizeof(*v));
	int rc;

	if (!v)
		return -ENOMEM;
	v->vs = live->views;
	v->live = live;
	v->ck = ck;
	v->objs = ckpt_objects(ck);
	rc = view_table(live, v, TSIZE_FDS);
	if (rc < 0) {
		v->ck = NULL;	/* the caller's reference: it drops it */
		view_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

static void tsize_walk(struct fs_ctx *live, struct ckpt *ck)
{
	struct cprog *p = ckpt_prog(ck);
	struct tsize w = { 0 };
	int rc;

	/* the save and the live tree come first */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, gettid(),
		3 << 13 /* IOPRIO_CLASS_IDLE */);
	rc = view_headless(live, ck, &w.v);
	for (int k = 0; rc == 0 && k < TSIZE_GRACE_MS / 50 &&
			!tsize_stopped(&w); k++)
		usleep(50000);
	if (rc < 0) {
		cprog_set_tsize(p, CPROG_FAILED, 0, 0);
		ckpt_put(ck);
		return;
	}
	rc = tsize_dir(&w, ino_root(w.v->itab), 0);
	tsize_links(&w);
	cprog_set_tsize(p, rc == 0 ? CPROG_DONE : rc == -ECANCELED ?
			CPROG_STOPPED : CPROG_FAILED, w.bytes, w.files);
	free(w.links);
	view_free(w.v);		/* drops the walk's reference to ck */
}

struct tsize_start {
	struct fs_ctx *live;
	struct ckpt *ck;
};

static void *tsize_thread(void *arg)
{
	struct tsize_start *a = arg;
	struct views *vs = a->live->views;

	tsize_walk(a->live, a->ck);
	free(a);
	pthread_mutex_lock(&vs->lock);
	vs->walks--;
	pthread_cond_broadcast(&vs->gone);
	pthread_mutex_unlock(&vs->lock);
	return NULL;
}

void views_on_reached(void *arg, struct ckpt *ck)
{
	struct tsize_start *a = malloc(sizeof(*a));
	struct fs_ctx *live = arg;
	pthread_t t;

	if (!a) {
		cprog_set_tsize(ckpt_prog(ck), CPROG_FAILED, 0, 0);
		return;
	}
	ckpt_hold(ck);
	*a = (struct tsize_start){ live, ck };
	pthread_mutex_lock(&live->views->lock);
	live->views->walks++;
	pthread_mutex_unlock(&live->views->lock);
	if (pthread_create(&t, NULL, tsize_thread, a) == 0) {
		pthread_detach(t);
		return;
	}
	pthread_mutex_lock(&live->views->lock);
	live->views->walks--;
	pthread_mutex_unlock(&live->views->lock);
	cprog_set_tsize(ckpt_prog(ck), CPROG_FAILED, 0, 0);
	ckpt_put(ck);
	free(a);
}
