/*
 * hist.c - checkpoint history file (format and locking: hist.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "snapshot/events.h"
#include "snapshot/hist.h"
#include "snapshot/parse.h"

#define HIST_LINE 2048

struct hist {
	pthread_mutex_t lock;	/* one append or rewrite at a time */
	int dfd;		/* immutable: the store directory */
	int lfd;		/* immutable: our lock file, flocked by writers */
	unsigned keep_days;	/* immutable */
	char name[64];		/* immutable: swafs-history.<hash>.jsonl */
	char tmp[80];		/* immutable: its rewrite's temporary name */
	char lck[80];		/* immutable: the lock file's name */
};

const char *hist_file_name(const struct hist *h)
{
	return h->name;
}

static void num_or_null(char *buf, size_t size, int64_t v)
{
	if (v < 0)
		snprintf(buf, size, "null");
	else
		snprintf(buf, size, "%" PRId64, v);
}

int hist_format(const struct hist_rec *r, char *buf, size_t size)
{
	char reason[600], tsize[24], tfiles[24];
	int n;

	num_or_null(tsize, sizeof(tsize), r->t_size_bytes);
	num_or_null(tfiles, sizeof(tfiles), r->t_files);
	n = snprintf(buf, size, "{\"name\":\"%s\",\"t\":%" PRId64 ",\"ended\":"
		     "%" PRId64 ",\"pause_us\":%" PRIu64 ",\"duration_s\":%.3f,"
		     "\"captured_bytes\":%" PRIu64 ",\"peak_store_bytes\":%"
		     PRIu64 ",\"files\":%" PRIu64 ",\"saved_bytes\":%" PRIu64
		     ",\"t_size_bytes\":%s,\"t_files\":%s,\"outcome\":\"%s\","
		     "\"reason\":\"%s\"}\n", r->name, r->t, r->ended,
		     r->pause_us, r->duration_s, r->captured_bytes,
		     r->peak_store_bytes, r->files, r->saved_bytes, tsize,
		     tfiles, r->outcome,
		     events_quote(r->reason, reason, sizeof(reason)));
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

/* A JSON string body at *p (after the quote) into out; ASCII escapes. */
static int parse_str(const char **p, char *out, size_t size)
{
	const char *s = *p;
	size_t o = 0;

	for (; *s != '"'; s++) {
		char c = *s;
		unsigned u;

		if (c == '\0' || (unsigned char)c < 0x20 || o + 1 >= size)
			return -EINVAL;
		if (c == '\\') {
			s++;
			if (*s == 'u' && sscanf(s + 1, "%4x", &u) == 1 &&
			    u >= 0x20 && u < 0x7f) {
				c = (char)u;
				s += 4;
			} else if (*s == 'u' && sscanf(s + 1, "%4x", &u) == 1 &&
				   u < 0x20) {
				c = ' ';	/* a control byte: shown blank */
				s += 4;
			} else if (*s == '"' || *s == '\\' || *s == '/') {
				c = *s;
			} else {
				return -EINVAL;
			}
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*p = s + 1;
	return 0;
}

/* A number or null at *p; null gives -1. */
static int parse_num(const char **p, double *out)
{
	char *end;

	if (!strncmp(*p, "null", 4)) {
		*out = -1;
		*p += 4;
		return 0;
	}
	if (**p != '-' && (**p < '0' || **p > '9'))
		return -EINVAL;
	*out = strtod(*p, &end);
	if (end == *p)
		return -EINVAL;
	*p = end;
	return 0;
}

static void set_field(struct hist_rec *r, const char *key, double v,
		      unsigned *seen)
{
	static const char *const ikeys[] = { "t", "ended", "pause_us",
		"captured_bytes", "peak_store_bytes", "files", "saved_bytes",
		"t_size_bytes", "t_files" };
	int64_t *i64[] = { &r->t, &r->ended, NULL, NULL, NULL, NULL, NULL,
			   &r->t_size_bytes, &r->t_files };
	uint64_t *u64[] = { NULL, NULL, &r->pause_us, &r->captured_bytes,
			    &r->peak_store_bytes, &r->files, &r->saved_bytes,
			    NULL, NULL };

	if (!strcmp(key, "duration_s")) {
		r->duration_s = v;
		return;
	}
	for (size_t k = 0; k < sizeof(ikeys) / sizeof(ikeys[0]); k++) {
		if (strcmp(key, ikeys[k]))
			continue;
		if (i64[k])
			*i64[k] = (int64_t)v;
		else
			*u64[k] = v < 0 ? 0 : (uint64_t)v;
		if (k == 1)
			*seen |= 1;
	}
}

static int parse_member(const char **p, struct hist_rec *r, unsigned *seen)
{
	char key[32], val[300];
	double num;
	int rc;

	if (*(*p)++ != '"' || parse_str(p, key, sizeof(key)) ||
	    *(*p)++ != ':')
		return -EINVAL;
	if (**p != '"') {
		rc = parse_num(p, &num);
		if (rc == 0)
			set_field(r, key, num, seen);
		return rc;
	}
	(*p)++;
	if (parse_str(p, val, sizeof(val)))
		return -EINVAL;
	if (!strcmp(key, "name") && strlen(val) < sizeof(r->name)) {
		strcpy(r->name, val);
		*seen |= 2;
	} else if (!strcmp(key, "outcome") && strlen(val) < sizeof(r->outcome)) {
		strcpy(r->outcome, val);
		*seen |= 4;
	} else if (!strcmp(key, "reason") && strlen(val) < sizeof(r->reason)) {
		strcpy(r->reason, val);
	}
	return 0;
}

int hist_parse(const char *line, struct hist_rec *r)
{
	const char *p = line;
	unsigned seen = 0;

	memset(r, 0, sizeof(*r));
	r->t_size_bytes = r->t_files = -1;
	if (*p++ != '{')
		return -EINVAL;
	while (*p != '}') {
		if (parse_member(&p, r, &seen))
			return -EINVAL;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return -EINVAL;
	}
	p++;
	if (*p == '\n')
		p++;
	if (*p || seen != 7 || !parse_name_ok(r->name))
		return -EINVAL;
	return 0;
}

/*
 * Open name under the store directory; refuse anything but our own regular
 * file.  O_NONBLOCK: a FIFO planted under the name must not block us.
 */
static int open_ours(struct hist *h, const char *name, int flags)
{
	struct stat st;
	int fd = openat(h->dfd, name, flags | O_NOFOLLOW | O_NONBLOCK |
			O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || st.st_nlink != 1) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

static int open_file(struct hist *h, int flags)
{
	return open_ours(h, h->name, flags);
}

/*
 * Exclusive against other threads and other daemons of this tree.  The
 * flock is on our own 0600 lock file, never on the store directory: a
 * shared directory like /tmp can be flocked by anyone.
 */
static void hist_lock(struct hist *h)
{
	pthread_mutex_lock(&h->lock);
	while (flock(h->lfd, LOCK_EX) < 0 && errno == EINTR)
		;
}

static void hist_unlock(struct hist *h)
{
	flock(h->lfd, LOCK_UN);
	pthread_mutex_unlock(&h->lock);
}

static bool kept(const struct hist *h, const struct hist_rec *r, int64_t now)
{
	return h->keep_days && r->ended >= now - (int64_t)h->keep_days * 86400;
}

/* Copy the lines to keep from in to out; returns how many were dropped. */
static long copy_kept(struct hist *h, FILE *in, FILE *out, int64_t now)
{
	struct hist_rec r;
	char *line = NULL;
	size_t cap = 0;
	long dropped = 0;

	while (getline(&line, &cap, in) > 0) {
		if (hist_parse(line, &r) == 0 && kept(h, &r, now))
			fputs(line, out);
		else
			dropped++;
	}
	free(line);
	return dropped;
}

/* hist_lock held: rewrite the file without old or broken lines. */
static int prune_locked(struct hist *h, int64_t now)
{
	FILE *in = NULL, *out = NULL;
	int ifd = open_file(h, O_RDONLY), ofd = -1, rc = 0;
	long dropped;

	if (ifd < 0)
		return ifd == -ENOENT ? 0 : ifd;
	unlinkat(h->dfd, h->tmp, 0);	/* left by a daemon that died */
	ofd = openat(h->dfd, h->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, 0600);
	if (ofd < 0 || !(in = fdopen(ifd, "r")) || !(out = fdopen(ofd, "w"))) {
		rc = -errno;
		goto out;
	}
	ifd = ofd = -1;
	dropped = copy_kept(h, in, out, now);
	if (fflush(out) || ferror(in))
		rc = -EIO;
	if (rc == 0 && dropped &&
	    renameat(h->dfd, h->tmp, h->dfd, h->name) < 0)
		rc = -errno;
out:
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	if (ifd >= 0)
		close(ifd);
	if (ofd >= 0)
		close(ofd);
	unlinkat(h->dfd, h->tmp, 0);
	return rc;
}

int hist_prune(struct hist *h, int64_t now)
{
	int rc;

	hist_lock(h);
	rc = prune_locked(h, now);
	hist_unlock(h);
	return rc;
}

int hist_append(struct hist *h, const struct hist_rec *r, int64_t now)
{
	char line[HIST_LINE];
	int n = hist_format(r, line, sizeof(line)), fd, rc, prune;

	if (n < 0)
		return n;
	hist_lock(h);
	/* a prune that fails leaves old records; the new one still goes in */
	prune = prune_locked(h, now);
	rc = 0;
	if (kept(h, r, now)) {
		fd = open_file(h, O_WRONLY | O_APPEND | O_CREAT);
		rc = fd;
		/* one write of a whole line: readers never see half of it */
		if (fd >= 0) {
			rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
			close(fd);
		}
	}
	hist_unlock(h);
	return rc < 0 ? rc : prune;
}

int hist_read(struct hist *h, int64_t now,
	      int (*fn)(void *arg, const struct hist_rec *r), void *arg)
{
	int fd = open_file(h, O_RDONLY), rc = 0;
	struct hist_rec r;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (rc == 0 && getline(&line, &cap, f) > 0)
		if (hist_parse(line, &r) == 0 && kept(h, &r, now))
			rc = fn(arg, &r);
	free(line);
	fclose(f);
	return rc;
}

int hist_open(const char *dir, const char *backing, unsigned keep_days,
	      int64_t now, struct hist **out)
{
	unsigned long long hash = XXH64(backing, strlen(backing), 0);
	struct hist *h;
	int rc;

	if (keep_days > HIST_KEEP_DAYS_MAX)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->lfd = -1;
	pthread_mutex_init(&h->lock, NULL);
	h->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h->dfd < 0) {
		rc = -errno;
		goto fail;
	}
	h->keep_days = keep_days;
	snprintf(h->name, sizeof(h->name), "swafs-history.%016llx.jsonl", hash);
	snprintf(h->tmp, sizeof(h->tmp), "%s.tmp", h->name);
	snprintf(h->lck, sizeof(h->lck), "swafs-history.%016llx.lock", hash);
	h->lfd = open_ours(h, h->lck, O_RDWR | O_CREAT);
	rc = h->lfd < 0 ? h->lfd : hist_prune(h, now);
	if (rc < 0)
		goto fail;
	*out = h;
	return 0;
fail:
	hist_close(h);
	return rc;
}

void hist_close(struct hist *h)
{
	if (!h)
		return;
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->dfd >= 0)
		close(h->dfd);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
