/*
 * nscap.c - directory entry capture.
 *
 * One allocation per directory image: the entry array, then the names and
 * handles packed behind it, so an image is freed with one free().
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/cobj.h"
#include "snapshot/nscap.h"

#define NS_HANDLE_MAX 128

struct nsrec {
	size_t name;		/* offset of the name in the blob */
	size_t fh;		/* offset of the handle in the blob, or 0 */
	ino_t ino;
	unsigned char type;
};

struct nsdir {
	size_t n;
	struct nsrec *recs;	/* n records, sorted by name */
	char *blob;		/* names and handles */
	size_t blob_len, blob_cap;
};

size_t nsdir_count(const struct nsdir *d)
{
	return d->n;
}

void nsdir_entry(const struct nsdir *d, size_t k, struct nsent *out)
{
	const struct nsrec *r = &d->recs[k];

	out->name = d->blob + r->name;
	out->ino = r->ino;
	out->type = r->type;
	out->fh = r->fh ? (const struct file_handle *)(d->blob + r->fh) : NULL;
}

void nsdir_free(struct nsdir *d)
{
	if (!d)
		return;
	free(d->recs);
	free(d->blob);
	free(d);
}

/* Append len bytes aligned to 8; returns the offset or 0 on ENOMEM. */
static size_t blob_add(struct nsdir *d, const void *p, size_t len)
{
	size_t off = (d->blob_len + 7) & ~(size_t)7;

	if (off + len > d->blob_cap) {
		size_t cap = d->blob_cap ? d->blob_cap * 2 : 4096;
		char *nb;

		while (cap < off + len)
			cap *= 2;
		nb = realloc(d->blob, cap);
		if (!nb)
			return 0;
		d->blob = nb;
		d->blob_cap = cap;
	}
	memcpy(d->blob + off, p, len);
	d->blob_len = off + len;
	return off;
}

static int add_handle(struct nsdir *d, int dfd, const char *name,
		      struct nsrec *r)
{
	char buf[sizeof(struct file_handle) + NS_HANDLE_MAX];
	struct file_handle *fh = (struct file_handle *)buf;
	int mnt;

	fh->handle_bytes = NS_HANDLE_MAX;
	if (name_to_handle_at(dfd, name, fh, &mnt, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	r->fh = blob_add(d, fh, sizeof(*fh) + fh->handle_bytes);
	return r->fh ? 0 : -ENOMEM;
}

static int add_entry(struct nsdir *d, int dfd, const struct dirent *de,
		     bool handles, size_t *cap)
{
	struct nsrec *r;

	if (d->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct nsrec *nr = realloc(d->recs, nc * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		d->recs = nr;
		*cap = nc;
	}
	r = &d->recs[d->n];
	memset(r, 0, sizeof(*r));
	r->ino = de->d_ino;
	r->type = de->d_type;
	r->name = blob_add(d, de->d_name, strlen(de->d_name) + 1);
	if (!r->name)
		return -ENOMEM;
	if (handles) {
		int rc = add_handle(d, dfd, de->d_name, r);

		if (rc < 0)
			return rc;
	}
	d->n++;
	return 0;
}

static int rec_cmp(const void *a, const void *b, void *arg)
{
	const struct nsdir *d = arg;

	return strcmp(d->blob + ((const struct nsrec *)a)->name,
		      d->blob + ((const struct nsrec *)b)->name);
}

static int read_entries(struct nsdir *d, DIR *dp, bool handles)
{
	size_t cap = 0;
	struct dirent *de;
	int rc = 0;

	errno = 0;
	while (rc == 0 && (de = readdir(dp))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] ||
		    (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		rc = add_entry(d, dirfd(dp), de, handles, &cap);
		errno = 0;
	}
	if (rc == 0 && errno)
		rc = -errno;
	return rc;
}

/* An empty image: a pad byte first, so offset 0 never names an entry. */
static struct nsdir *nsdir_new(void)
{
	struct nsdir *d = calloc(1, sizeof(*d));

	if (d)
		blob_add(d, "", 1);
	if (d && !d->blob) {
		free(d);
		d = NULL;
	}
	return d;
}

/* The entries are in: sort them and hand d out, or free it on rc < 0. */
static int nsdir_done(struct nsdir *d, int rc, struct nsdir **out)
{
	if (rc < 0) {
		nsdir_free(d);
		return rc;
	}
	if (d->n)
		qsort_r(d->recs, d->n, sizeof(*d->recs), rec_cmp, d);
	*out = d;
	return 0;
}

int nsdir_read(int fd, bool handles, struct nsdir **out)
{
	struct nsdir *d = nsdir_new();
	DIR *dp = NULL;
	int dfd, rc;

	if (!d)
		return -ENOMEM;
	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !(dp = fdopendir(dfd))) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		nsdir_free(d);
		return rc;
	}
	rc = read_entries(d, dp, handles);
	closedir(dp);
	return nsdir_done(d, rc, out);
}

/* A few names, unsorted yet: a linear search. */
static bool picked(const struct nsdir *d, const char *name)
{
	for (size_t k = 0; k < d->n; k++)
		if (!strcmp(d->blob + d->recs[k].name, name))
			return true;
	return false;
}

/* name as an entry of the directory open at dfd, if it is there. */
static int pick_one(struct nsdir *d, int dfd, const char *name, size_t *cap)
{
	struct dirent de = { 0 };
	struct stat st;

	if (strlen(name) >= sizeof(de.d_name))
		return -ENAMETOOLONG;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	de.d_ino = st.st_ino;
	de.d_type = (unsigned char)IFTODT(st.st_mode);
	strcpy(de.d_name, name);
	return add_entry(d, dfd, &de, true, cap);
}

int nsdir_pick(int fd, const char *const *names, size_t n,
	       struct nsdir **out)
{
	struct nsdir *d = nsdir_new();
	size_t cap = 0;
	int rc = 0;

	if (!d)
		return -ENOMEM;
	for (size_t k = 0; rc == 0 && k < n; k++)
		if (!picked(d, names[k]))
			rc = pick_one(d, fd, names[k], &cap);
	return nsdir_done(d, rc, out);
}

long nsdir_find(const struct nsdir *d, const char *name)
{
	size_t lo = 0, hi = d->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, d->blob + d->recs[mid].name);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -ENOENT;
}

int nscap_capture(struct cobj *c, const struct cobj_ref *ref)
{
	struct nsdir *d;
	int rc = 0;

	if (cobj_flags(c) & (COBJ_DIR | COBJ_NEW))
		return 0;
	cobj_lock(c);
	if (!(cobj_flags(c) & COBJ_DIR)) {
		rc = nsdir_read(ref->fd, true, &d);
		if (rc < 0 && cobj_ref_room(ref, -rc))
			rc = nsdir_read(ref->fd, true, &d);
		if (rc == 0)
			cobj_set_dir_locked(c, d);
	}
	cobj_unlock(c);
	return rc;
}
