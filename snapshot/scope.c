/*
 * scope.c - --path subtrees by identity (the rules are in scope.h).
 *
 * scope_capture() runs with the writers drained, so the tree holds still
 * while it resolves the paths; it opens at most one ancestor or root at a
 * time.  scope_holds() runs in capture hooks, racing with renames: an
 * answer it cannot be sure of is yes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "snapshot/cobj.h"
#include "snapshot/nscap.h"
#include "snapshot/scope.h"

/* One step on the way to a root: ancestor directory anc, name leading on
 * (the root itself when last). */
struct lead {
	char *anc;
	char *name;
	bool last;
};

struct leads {
	struct lead *v;
	size_t n, cap;
};

bool scope_covers(const char *const *paths, size_t n, const char *rel)
{
	for (size_t k = 0; k < n; k++) {
		size_t len = strlen(paths[k]);

		if (!strncmp(rel, paths[k], len) &&
		    (rel[len] == '\0' || rel[len] == '/'))
			return true;
	}
	return false;
}

/* paths[k] adds nothing: another path covers it (the first of equals
 * stays). */
static bool covered_by_other(const char *const *paths, size_t n, size_t k)
{
	for (size_t j = 0; j < n; j++)
		if (j != k && scope_covers(&paths[j], 1, paths[k]) &&
		    (strcmp(paths[j], paths[k]) || j < k))
			return true;
	return false;
}

static int leads_add(struct leads *l, const char *p, size_t alen,
		     const char *name, size_t nlen)
{
	struct lead *nv;

	if (l->n == l->cap) {
		nv = realloc(l->v, (l->cap * 2 + 16) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = l->cap * 2 + 16;
	}
	l->v[l->n].anc = strndup(p, alen);
	l->v[l->n].name = strndup(name, nlen);
	l->v[l->n].last = name[nlen] == '\0';
	l->n++;
	return l->v[l->n - 1].anc && l->v[l->n - 1].name ? 0 : -ENOMEM;
}

/* Every (ancestor, name) step of path p. */
static int leads_of(struct leads *l, const char *p)
{
	const char *c = p, *slash;
	int rc = 0;

	while (rc == 0 && c) {
		slash = strchr(c, '/');
		rc = leads_add(l, p, c == p ? 0 : (size_t)(c - p - 1), c,
			       slash ? (size_t)(slash - c) : strlen(c));
		c = slash ? slash + 1 : NULL;
	}
	return rc;
}

static void leads_free(struct leads *l)
{
	for (size_t k = 0; k < l->n; k++) {
		free(l->v[k].anc);
		free(l->v[k].name);
	}
	free(l->v);
}

static int lead_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lead *)a)->anc,
		      ((const struct lead *)b)->anc);
}

/*
 * rel beneath root_fd, never through a symlink: O_PATH descriptor, or
 * -ENOENT when the tree does not reach there (gone, a symlink or a
 * non-directory on the way), or -errno.
 */
static int open_beneath(int root_fd, const char *rel, int flags)
{
	struct open_how how = { .flags = (uint64_t)(O_PATH | O_NOFOLLOW |
						    O_CLOEXEC | flags),
				.resolve = RESOLVE_BENEATH |
					   RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how,
			  sizeof(how));

	if (fd >= 0)
		return (int)fd;
	return errno == ENOTDIR || errno == ELOOP || errno == EXDEV ? -ENOENT
								    : -errno;
}

/* The entry of the object at rel, T attributes recorded; *fd stays open
 * for the caller (or -1 when rel is not there). */
static int entry_of(struct cobj_table *t, int root_fd, const char *rel,
		    int flags, struct cobj **out, int *fd)
{
	struct cobj_ref r = { .fd = -1 };
	struct stat st;

	*fd = open_beneath(root_fd, rel, flags);
	if (*fd < 0)
		return *fd == -ENOENT ? 0 : *fd;
	r.fd = *fd;
	if (fstatat(*fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	return cobj_get(t, &r, out);
}

/* A name leads on if it is the root or a directory: a path through
 * anything else ends there, and so does the view. */
static bool leads_on(int fd, const struct lead *l)
{
	struct stat st;

	if (l->last)
		return true;
	return fstatat(fd, l->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* Ancestor v[0].anc, whose leading names are v[0..n). */
static int capture_ancestor(struct cobj_table *t, int root_fd,
			    const struct lead *v, size_t n)
{
	const char **names = calloc(n, sizeof(*names));
	struct nsdir *d = NULL;
	struct cobj *c;
	size_t m = 0;
	int fd, rc;

	if (!names)
		return -ENOMEM;
	rc = entry_of(t, root_fd, v[0].anc, O_DIRECTORY, &c, &fd);
	for (size_t k = 0; rc == 0 && fd >= 0 && k < n; k++)
		if (leads_on(fd, &v[k]))
			names[m++] = v[k].name;
	if (rc == 0 && fd >= 0)
		rc = nsdir_pick(fd, names, m, &d);
	if (rc == 0 && fd >= 0)
		cobj_set_ancestor(c, d);
	if (fd >= 0)
		close(fd);
	free(names);
	return rc;
}

static int capture_root(struct cobj_table *t, int root_fd, const char *rel)
{
	struct cobj *c;
	int fd, rc = entry_of(t, root_fd, rel, 0, &c, &fd);

	if (fd >= 0)
		close(fd);
	return rc;
}

int scope_capture(struct cobj_table *t, int root_fd,
		  const char *const *paths, size_t n)
{
	struct leads l = { 0 };
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < n; k++)
		if (!covered_by_other(paths, n, k))
			rc = leads_of(&l, paths[k]);
	if (rc == 0 && l.n)
		qsort(l.v, l.n, sizeof(*l.v), lead_cmp);
	for (size_t k = 0, e; rc == 0 && k < l.n; k = e) {
		for (e = k + 1; e < l.n && !strcmp(l.v[e].anc, l.v[k].anc); e++)
			;
		rc = capture_ancestor(t, root_fd, &l.v[k], e - k);
	}
	for (size_t k = 0; rc == 0 && k < n; k++)
		if (!covered_by_other(paths, n, k))
			rc = capture_root(t, root_fd, paths[k]);
	leads_free(&l);
	return rc;
}

/* The directory at fd has an entry of an object in scope at T. */
static bool dir_in_scope(struct cobj_table *t, int fd)
{
	struct stat st;
	struct cobj *c;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		return true;
	c = cobj_find(t, st.st_dev, st.st_ino);
	return c && !(cobj_flags(c) &
		      (COBJ_NEW | COBJ_ANCESTOR | COBJ_DEAD));
}

bool scope_holds(struct cobj_table *t, int root_fd, const char *rel)
{
	char name[NAME_MAX + 1];
	const char *c = rel, *slash;
	int dfd = root_fd, fd;
	bool in = false;

	while (!in && (slash = strchr(c, '/'))) {
		if ((size_t)(slash - c) > NAME_MAX) {
			in = true;
			break;
		}
		memcpy(name, c, (size_t)(slash - c));
		name[slash - c] = '\0';
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY |
			    O_CLOEXEC);
		in = fd < 0 || dir_in_scope(t, fd);
		if (dfd != root_fd)
			close(dfd);
		dfd = fd;
		c = slash + 1;
	}
	if (dfd >= 0 && dfd != root_fd)
		close(dfd);
	return in;
}
