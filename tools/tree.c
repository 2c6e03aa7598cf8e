/*
 * tree.c - walk a tree into a list of objects (tools/tree.h).
 *
 * Directories are read through descriptors (openat with O_NOFOLLOW from
 * their parent's), so a name swapped for a symlink is never followed;
 * their entries are sorted so the order does not depend on the
 * filesystem's, and a save's streams and its manifest come out the same
 * for the same tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/tree.h"

static int add(struct tree *t, const char *path, const struct stat *st)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct tree_obj *o = realloc(t->o, cap * sizeof(*o));

		if (!o)
			return -ENOMEM;
		t->o = o;
		t->cap = cap;
	}
	t->o[t->n].path = strdup(path);
	if (!t->o[t->n].path)
		return -ENOMEM;
	t->o[t->n++].st = *st;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in directory fd; NULL with errno set. */
static char **names_of(int fd, size_t *count)
{
	int dfd = dup(fd);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return NULL;
	}
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 64) *
					       sizeof(*v));

			if (!nv)
				goto fail;
			v = nv;
		}
		if (!(v[n] = strdup(e->d_name)))
			goto fail;
		n++;
		errno = 0;
	}
	if (errno)
		goto fail;
	closedir(d);
	qsort(v, n, sizeof(*v), by_name);
	*count = n;
	return v ? v : calloc(1, sizeof(*v));
fail:
	for (int err = errno; n--; errno = err)
		free(v[n]);
	free(v);
	closedir(d);
	return NULL;
}

/*
 * Name path on stderr as skipped; 0, or -ENOTCONN that ends the walk.  A
 * name gone meanwhile (a dry run walks the live tree) is no object.
 */
static int skip(struct tree *t, const char *path, int err)
{
	if (err == ENOTCONN || err == ENOMEM)
		return -err;
	if (err == ENOENT)
		return 0;
	fprintf(stderr, "swactl: skipped '%s': %s\n", path, strerror(err));
	t->skipped++;
	return 0;
}

/* Add one entry of directory dfd, and what it holds if a directory. */
static int walk_one(struct tree *t, int dfd, const char *name,
		    const char *path);

/* Add the entries of directory dfd (path; consumed). */
static int walk_dir(struct tree *t, int dfd, const char *path)
{
	size_t n = 0, k;
	char **names = names_of(dfd, &n), sub[8192];
	int rc = names ? 0 : skip(t, path, errno);

	for (k = 0; names && k < n && rc == 0; k++) {
		if (!strcmp(path, "."))
			snprintf(sub, sizeof(sub), "%s", names[k]);
		else
			snprintf(sub, sizeof(sub), "%s/%s", path, names[k]);
		rc = walk_one(t, dfd, names[k], sub);
	}
	while (names && n--)
		free(names[n]);
	free(names);
	close(dfd);
	return rc;
}

static int walk_one(struct tree *t, int dfd, const char *name,
		    const char *path)
{
	struct stat st;
	int rc, cfd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return skip(t, path, errno);
	rc = add(t, path, &st);
	if (rc || !S_ISDIR(st.st_mode))
		return rc;
	cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	return cfd < 0 ? skip(t, path, errno) : walk_dir(t, cfd, path);
}

int tree_walk(const char *root, struct tree *t)
{
	struct stat st;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		fprintf(stderr, "swactl: cannot read '%s': %s\n", root,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = add(t, ".", &st);
	if (rc)
		close(fd);
	else
		rc = walk_dir(t, fd, ".");
	if (rc == -ENOTCONN)
		fprintf(stderr, "swactl: the tree '%s' went away (its daemon "
			"is gone)\n", root);
	else if (rc == -ENOMEM)
		fprintf(stderr, "swactl: out of memory walking '%s'\n", root);
	if (rc)
		tree_free(t);
	return rc;
}

void tree_free(struct tree *t)
{
	for (size_t k = 0; k < t->n; k++)
		free(t->o[k].path);
	free(t->o);
	memset(t, 0, sizeof(*t));
}
