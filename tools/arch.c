/*
 * arch.c - libarchive glue for save, verify and restore (tools/arch.h).
 *
 * Holes: libarchive's pax writer takes a file's whole logical contents
 * and skips the runs its sparse map marks as holes, so the map comes
 * from SEEK_DATA/SEEK_HOLE on the view (which answers as at T) and the
 * holes are fed as zeros that never reach the archive.  Every byte of
 * data is read from the view exactly once and handed to the hash and to
 * every copy: a --retain saved checkpoint drops a block's pre-image once
 * it has been read, so a second read could fail.
 *
 * Copies: each copy is its own archive on its own descriptor, written in
 * step; a copy whose write fails is closed and removed at once and the
 * others go on (TWOCOPIES).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/limits.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "tools/arch.h"

#define ARCH_BLOCK (64 * 1024)	/* bytes per archive write */
#define ARCH_READ (1024 * 1024)	/* bytes per view read */

static const char zeros[ARCH_BLOCK];

struct copy {
	struct archive *a;	/* NULL once closed or failed */
	char path[4096];
	char failure[512];	/* "" while fine */
};

struct arch_out {
	struct copy c[ARCH_COPIES_MAX];
	int n;
};

static int set_filter(struct archive *a, const char *compress)
{
	if (!strcmp(compress, "zstd"))
		return archive_write_add_filter_zstd(a);
	if (!strcmp(compress, "lz4"))
		return archive_write_add_filter_lz4(a);
	return archive_write_add_filter_none(a);
}

static void drop_copy(struct copy *c, const char *why)
{
	snprintf(c->failure, sizeof(c->failure), "%s: %s", c->path, why);
	archive_write_free(c->a);	/* closes the descriptor */
	c->a = NULL;
	unlink(c->path);
}

static int open_copy(struct copy *c, const char *path, const char *compress,
		     char *why, size_t size)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s", path);
	c->a = archive_write_new();
	if (!c->a)
		return snprintf(why, size, "out of memory"), -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = errno;

		snprintf(why, size, "cannot create archive '%s': %s", path,
			 strerror(err));
		archive_write_free(c->a);
		c->a = NULL;
		return -err;
	}
	if (archive_write_set_format_pax(c->a) || set_filter(c->a, compress) ||
	    archive_write_set_bytes_per_block(c->a, ARCH_BLOCK) ||
	    archive_write_open_fd(c->a, fd)) {
		snprintf(why, size, "cannot start archive '%s': %s", path,
			 archive_error_string(c->a));
		archive_write_free(c->a);
		c->a = NULL;
		close(fd);
		unlink(path);
		return -EIO;
	}
	return 0;
}

int arch_out_open(struct arch_out **out, char *const paths[], int n,
		  const char *compress, char *why, size_t size)
{
	struct arch_out *o = calloc(1, sizeof(*o));
	int rc = 0;

	if (!o)
		return snprintf(why, size, "out of memory"), -ENOMEM;
	for (o->n = 0; o->n < n && rc == 0; o->n++)
		rc = open_copy(&o->c[o->n], paths[o->n], compress, why, size);
	if (rc) {
		for (int k = 0; k < o->n; k++)
			if (o->c[k].a)
				drop_copy(&o->c[k], "");
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

static int alive(const struct arch_out *o)
{
	int n = 0;

	for (int k = 0; k < o->n; k++)
		n += o->c[k].a != NULL;
	return n;
}

int arch_out_header(struct arch_out *o, struct archive_entry *e)
{
	for (int k = 0; k < o->n; k++)
		if (o->c[k].a && archive_write_header(o->c[k].a, e) <
				 ARCHIVE_WARN)
			drop_copy(&o->c[k], archive_error_string(o->c[k].a));
	return alive(o);
}

int arch_out_data(struct arch_out *o, const void *buf, size_t len)
{
	for (int k = 0; k < o->n; k++)
		if (o->c[k].a && archive_write_data(o->c[k].a, buf, len) < 0)
			drop_copy(&o->c[k], archive_error_string(o->c[k].a));
	return alive(o);
}

int arch_out_end_entry(struct arch_out *o)
{
	for (int k = 0; k < o->n; k++)
		if (o->c[k].a && archive_write_finish_entry(o->c[k].a) <
				 ARCHIVE_WARN)
			drop_copy(&o->c[k], archive_error_string(o->c[k].a));
	return alive(o);
}

const char *arch_out_failure(const struct arch_out *o, int k)
{
	return o->c[k].failure[0] ? o->c[k].failure : NULL;
}

int arch_out_close(struct arch_out *o, char failures[][512])
{
	int done = 0;

	for (int k = 0; k < o->n; k++) {
		struct copy *c = &o->c[k];
		int fd = c->a ? open(c->path, O_WRONLY | O_CLOEXEC) : -1;

		if (c->a && archive_write_close(c->a) != ARCHIVE_OK)
			drop_copy(c, archive_error_string(c->a));
		else if (c->a && fd >= 0 && fsync(fd) < 0 && errno != EINVAL)
			drop_copy(c, strerror(errno));
		if (fd >= 0)
			close(fd);
		if (c->a) {
			archive_write_free(c->a);
			done++;
		}
		snprintf(failures[k], 512, "%s", c->failure);
	}
	free(o);
	return done;
}

/*
 * e's data runs from SEEK_DATA/SEEK_HOLE; no map when there is no hole.
 * A file with as many bytes allocated as its size has none worth asking
 * the view about (two round trips per file otherwise; GNU tar's test).
 */
static int data_map(int fd, const struct stat *st, struct archive_entry *e)
{
	off_t size = archive_entry_size(e), at = 0, data, hole;

	archive_entry_sparse_clear(e);
	if ((off_t)st->st_blocks * 512 >= size)
		return 0;
	while (at < size) {
		data = lseek(fd, at, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (data < 0 || hole < 0)
			return errno == EINVAL ? 0 : -errno;
		if (data == 0 && hole >= size)
			return 0;	/* no hole: no map */
		archive_entry_sparse_add_entry(e, data, (hole < size ? hole
							  : size) - data);
		at = hole;
	}
	if (archive_entry_sparse_count(e) == 0 && size > 0)
		archive_entry_sparse_add_entry(e, size, 0);	/* all hole */
	return 0;
}

/*
 * The xattrs of fd (or, -1, of src itself) into e, with one list call
 * (libarchive would ask for the ACLs too, one more round trip to the view
 * per object, though few objects have one); *acl tells whether the list
 * names a POSIX ACL.  Returns 0 or -errno.
 */
static int xattrs_of(int fd, const char *src, struct archive_entry *e,
		     bool *acl)
{
	char names[XATTR_LIST_MAX], value[XATTR_SIZE_MAX];
	ssize_t n = fd >= 0 ? flistxattr(fd, names, sizeof(names))
			    : llistxattr(src, names, sizeof(names)), len;

	*acl = false;
	if (n < 0)
		return errno == ENOTSUP || errno == ENODATA ? 0 : -errno;
	for (char *p = names; p < names + n; p += strlen(p) + 1) {
		if (!strcmp(p, "system.posix_acl_access") ||
		    !strcmp(p, "system.posix_acl_default")) {
			*acl = true;
			continue;
		}
		len = fd >= 0 ? fgetxattr(fd, p, value, sizeof(value))
			      : lgetxattr(src, p, value, sizeof(value));
		if (len < 0 && errno == ENODATA)
			continue;	/* gone: a race on a live tree */
		if (len < 0)
			return -errno;
		archive_entry_xattr_add_entry(e, p, value, (size_t)len);
	}
	return 0;
}

int arch_entry_of(struct archive *ard, const char *root,
		  const struct tree_obj *obj, int fd, struct archive_entry *e)
{
	char src[8192];
	bool acl;
	int rc;

	archive_entry_clear(e);
	snprintf(src, sizeof(src), "%s/%s", root, obj->path);
	archive_entry_copy_sourcepath(e, src);
	archive_entry_copy_pathname(e, obj->path);
	/* holes come from data_map; file flags are not saved */
	rc = xattrs_of(fd, src, e, &acl);
	if (rc)
		return rc;
	archive_read_disk_set_behavior(ard, ARCHIVE_READDISK_NO_SPARSE |
				       ARCHIVE_READDISK_NO_FFLAGS |
				       ARCHIVE_READDISK_NO_XATTR |
				       (acl ? 0 : ARCHIVE_READDISK_NO_ACL));
	if (archive_read_disk_entry_from_file(ard, e, fd, &obj->st) <
	    ARCHIVE_WARN)
		return archive_errno(ard) > 0 ? -archive_errno(ard) : -EIO;
	archive_entry_copy_pathname(e, obj->path);
	archive_entry_set_nlink(e, 1);
	archive_entry_set_uname(e, NULL);
	archive_entry_set_gname(e, NULL);
	return S_ISREG(obj->st.st_mode) ? data_map(fd, &obj->st, e) : 0;
}

/* Pass len zeros to sink (a hole), hashing them. */
static int zero_run(uint64_t len, arch_sink_fn *sink, void *arg,
		    XXH3_state_t *h)
{
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		int rc = sink ? sink(arg, zeros, n) : 0;

		if (rc < 0)
			return rc;
		XXH3_64bits_update(h, zeros, n);
		len -= n;
	}
	return 0;
}

static int data_run(int fd, char *buf, off_t at, uint64_t len,
		    arch_sink_fn *sink, void *arg, XXH3_state_t *h)
{
	while (len) {
		size_t want = len < ARCH_READ ? (size_t)len : ARCH_READ;
		ssize_t got = pread(fd, buf, want, at);
		int rc;

		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		rc = sink ? sink(arg, buf, (size_t)got) : 0;
		if (rc < 0)
			return rc;
		XXH3_64bits_update(h, buf, (size_t)got);
		at += got;
		len -= (uint64_t)got;
	}
	return 0;
}

int arch_read_file(int fd, struct archive_entry *e, arch_sink_fn *sink,
		   void *arg, uint64_t *hash)
{
	uint64_t size = (uint64_t)archive_entry_size(e), at = 0;
	XXH3_state_t *h = XXH3_createState();
	char *buf = malloc(size < ARCH_READ ? size + 1 : ARCH_READ);
	int64_t off, len;
	int rc = h && buf ? 0 : -ENOMEM;

	if (rc == 0)
		XXH3_64bits_reset(h);
	if (archive_entry_sparse_reset(e) == 0 && rc == 0)
		rc = data_run(fd, buf, 0, size, sink, arg, h);
	else
		at = 0;
	while (rc == 0 && at < size &&
	       archive_entry_sparse_next(e, &off, &len) == ARCHIVE_OK) {
		rc = zero_run((uint64_t)off - at, sink, arg, h);
		if (rc == 0)
			rc = data_run(fd, buf, off, (uint64_t)len, sink, arg,
				      h);
		at = (uint64_t)(off + len);
	}
	if (rc == 0 && archive_entry_sparse_count(e) && at < size)
		rc = zero_run(size - at, sink, arg, h);
	if (rc == 0)
		*hash = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	free(buf);
	return rc;
}

const char *arch_rel(const char *p, char *buf, size_t size)
{
	size_t n;

	while (p[0] == '.' && p[1] == '/')
		p += 2;
	while (p[0] == '/')
		p++;
	snprintf(buf, size, "%s", *p ? p : ".");
	for (n = strlen(buf); n > 1 && buf[n - 1] == '/'; n--)
		buf[n - 1] = '\0';
	return buf;
}

static char type_letter(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFIFO: return 'p';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	case S_IFSOCK: return 's';
	}
	return 0;
}

static int rec_xattrs(struct archive_entry *e, struct mf_rec *r)
{
	const char *name;
	const void *value;
	size_t size;
	int rc = 0;

	archive_entry_xattr_reset(e);
	while (rc == 0 && archive_entry_xattr_next(e, &name, &value, &size) ==
			  ARCHIVE_OK)
		rc = mf_xattr_add(r, name, XXH3_64bits(value, size));
	return rc;
}

int arch_rec_of(struct archive_entry *e, struct mf_rec *r)
{
	char rel[8192];
	const char *target = archive_entry_symlink(e);
	int flags = ARCHIVE_ENTRY_ACL_TYPE_ACCESS |
		    ARCHIVE_ENTRY_ACL_TYPE_DEFAULT;

	memset(r, 0, sizeof(*r));
	r->type = type_letter(archive_entry_filetype(e));
	if (!r->type && archive_entry_hardlink(e))
		r->type = 'f';	/* a link entry: its name's type comes later */
	if (!r->type)
		return -EINVAL;
	r->path = strdup(arch_rel(archive_entry_pathname(e), rel,
				  sizeof(rel)));
	r->mode = archive_entry_perm(e) & 07777;
	r->uid = (uint32_t)archive_entry_uid(e);
	r->gid = (uint32_t)archive_entry_gid(e);
	r->mtime_s = archive_entry_mtime(e);
	r->mtime_ns = archive_entry_mtime_nsec(e);
	if (r->type == 'f')
		r->size = (uint64_t)archive_entry_size(e);
	if (r->type == 'l' && target) {
		r->size = strlen(target);
		r->target = strdup(target);
	}
	if (r->type == 'c' || r->type == 'b') {
		r->rmajor = archive_entry_rdevmajor(e);
		r->rminor = archive_entry_rdevminor(e);
	}
	if (archive_entry_acl_count(e, flags) > 0) {
		char *text = archive_entry_acl_to_text(e, NULL, flags);

		r->has_acl = text != NULL;
		r->acl = text ? XXH3_64bits(text, strlen(text)) : 0;
		free(text);
	}
	if (!r->path || (r->type == 'l' && target && !r->target) ||
	    rec_xattrs(e, r)) {
		mf_rec_free(r);
		return -ENOMEM;
	}
	return 0;
}

struct archive *arch_in_open(const char *path, char *why, size_t size)
{
	struct archive *a = archive_read_new();

	if (!a) {
		snprintf(why, size, "out of memory");
		return NULL;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, ARCH_READ) != ARCHIVE_OK) {
		snprintf(why, size, "cannot read archive '%s': %s", path,
			 archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int arch_in_hash(struct archive *a, uint64_t size, uint64_t *hash,
		 char *why, size_t wsize)
{
	XXH3_state_t *h = XXH3_createState();
	const void *buf;
	size_t len;
	int64_t off;
	uint64_t at = 0;
	int rc;

	if (!h)
		return snprintf(why, wsize, "out of memory"), -ENOMEM;
	XXH3_64bits_reset(h);
	while ((rc = archive_read_data_block(a, &buf, &len, &off)) ==
	       ARCHIVE_OK) {
		if ((uint64_t)off < at) {
			rc = ARCHIVE_FATAL;
			archive_set_error(a, EINVAL, "data blocks out of order");
			break;
		}
		zero_run((uint64_t)off - at, NULL, NULL, h);
		XXH3_64bits_update(h, buf, len);
		at = (uint64_t)off + len;
	}
	if (rc == ARCHIVE_EOF) {
		if (at < size)
			zero_run(size - at, NULL, NULL, h);
		*hash = XXH3_64bits_digest(h);
		rc = 0;
	} else {
		snprintf(why, wsize, "%s", archive_error_string(a));
		rc = -EIO;
	}
	XXH3_freeState(h);
	return rc;
}
