/*
 * savejob.c - write a save's streams (tools/savejob.h).
 *
 * One thread per stream, each with its own disk reader and its own
 * arch_out (one archive per copy); the manifests (one per target that
 * receives an archive) are shared under man_lock.  A stream visits the
 * objects in walk order, so a directory (stream 0) comes before what it
 * holds, and a hard-link group's first name (which carries the data)
 * before the others (each at its own place: a name written before its
 * directory's entry would make the restore create that directory early
 * and lose its times).
 *
 * Invariants:
 * 1. Every object read once: its manifest record is made from the very
 *    entry and bytes that went into the archives.
 * 2. A fatal end (a stream without any copy left, the view gone, a stop
 *    signal) removes every archive and manifest this save made; a
 *    failed copy alone removes only that copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "tools/ahead.h"
#include "tools/arch.h"
#include "tools/manifest.h"
#include "tools/saveview.h"
#include "tools/savejob.h"
#include "tools/swactl.h"

#define UNIT_OVERHEAD 512	/* a header's bytes, so empty files count */

struct job {
	const struct sj_opts *o;
	const char *root;
	const struct tree *t;
	const struct sj_plan *p;
	FILE *man[SJ_TARGETS_MAX];	/* NULL: no archive on that target */
	char man_fail[SJ_TARGETS_MAX][PATH_MAX + 128];
	struct mf_rec *lead;		/* per object: a group's first name's
					   record, for its later names (each
					   touched by its stream only) */
	pthread_mutex_t man_lock;
	atomic_uint_fast64_t done_bytes;
	atomic_size_t done_objs;
	atomic_size_t skipped;
	atomic_int fatal;		/* 1: stop every stream */
	atomic_int finished;		/* streams that ended */
};

struct stream {
	struct job *j;
	unsigned k;
	struct arch_out *out;
	struct archive *ard;
	struct archive_entry *e;
	char failures[ARCH_COPIES_MAX][512];
	int complete;			/* copies that ended complete */
};

static int target_of(const struct sj_opts *o, unsigned s, unsigned c)
{
	return (int)((s * o->copies + c) % (unsigned)o->ntargets);
}

static void archive_path(const struct sj_opts *o, unsigned s, unsigned c,
			 char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.%u.pax%s", o->targets[target_of(o, s, c)],
		 o->name, s, !strcmp(o->compress, "zstd") ? ".zst" :
			     !strcmp(o->compress, "lz4") ? ".lz4" : "");
}

static void manifest_path(const struct sj_opts *o, int tgt, bool part,
			  char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.manifest%s", o->targets[tgt], o->name,
		 part ? ".part" : "");
}

static uint64_t unit_bytes(const struct stat *st)
{
	return (S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0) +
	       UNIT_OVERHEAD;
}

/* (ino, dev, index) order, to find the names of one inode. */
static const struct tree *sort_tree;

static int by_inode(const void *a, const void *b)
{
	const struct stat *x = &sort_tree->o[*(const size_t *)a].st;
	const struct stat *y = &sort_tree->o[*(const size_t *)b].st;

	if (x->st_ino != y->st_ino)
		return x->st_ino < y->st_ino ? -1 : 1;
	if (x->st_dev != y->st_dev)
		return x->st_dev < y->st_dev ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 :
	       *(const size_t *)a > *(const size_t *)b;
}

/* Link the names of each hard-linked inode: next, first, follower,
 * grouped.  Sorted by (inode, index), a group's first name is the one
 * the walk meets first. */
static int group_links(const struct tree *t, struct sj_plan *p)
{
	size_t *idx = malloc((t->n ? t->n : 1) * sizeof(*idx)), m = 0;

	if (!idx)
		return -ENOMEM;
	for (size_t k = 0; k < t->n; k++)
		if (!S_ISDIR(t->o[k].st.st_mode) && t->o[k].st.st_nlink > 1)
			idx[m++] = k;
	sort_tree = t;
	qsort(idx, m, sizeof(*idx), by_inode);
	for (size_t k = 1; k < m; k++) {
		const struct stat *a = &t->o[idx[k - 1]].st;
		const struct stat *b = &t->o[idx[k]].st;

		if (a->st_ino != b->st_ino || a->st_dev != b->st_dev)
			continue;
		p->next[idx[k - 1]] = (long)idx[k];
		p->first[idx[k]] = p->follower[idx[k - 1]] ?
				   p->first[idx[k - 1]] : (long)idx[k - 1];
		p->follower[idx[k]] = true;
		p->grouped[idx[k - 1]] = p->grouped[idx[k]] = true;
	}
	free(idx);
	return 0;
}

int sj_plan(const struct tree *t, unsigned streams, struct sj_plan *p)
{
	uint64_t *bytes = NULL;
	size_t *unit_obj = NULL, nu = 0;
	unsigned *unit_stream = NULL;
	int rc = -ENOMEM;

	memset(p, 0, sizeof(*p));
	p->nobj = t->n;
	p->stream_of = calloc(t->n + 1, sizeof(*p->stream_of));
	p->next = malloc((t->n + 1) * sizeof(*p->next));
	p->first = malloc((t->n + 1) * sizeof(*p->first));
	p->follower = calloc(t->n + 1, sizeof(*p->follower));
	p->grouped = calloc(t->n + 1, sizeof(*p->grouped));
	bytes = malloc((t->n + 1) * sizeof(*bytes));
	unit_obj = malloc((t->n + 1) * sizeof(*unit_obj));
	unit_stream = malloc((t->n + 1) * sizeof(*unit_stream));
	if (!p->stream_of || !p->next || !p->first || !p->follower ||
	    !p->grouped ||
	    !bytes || !unit_obj || !unit_stream)
		goto out;
	for (size_t k = 0; k < t->n; k++)
		p->next[k] = p->first[k] = -1;
	if (group_links(t, p))
		goto out;
	for (size_t k = 0; k < t->n; k++) {
		if (p->follower[k] || S_ISDIR(t->o[k].st.st_mode))
			continue;	/* a later name's data is its first's */
		if (S_ISREG(t->o[k].st.st_mode))
			p->bytes += (uint64_t)t->o[k].st.st_size;
		unit_obj[nu] = k;
		bytes[nu++] = unit_bytes(&t->o[k].st);
	}
	rc = bal_assign(bytes, nu, streams, unit_stream, p->loads);
	for (size_t u = 0; u < nu && rc == 0; u++)
		for (long k = (long)unit_obj[u]; k >= 0; k = p->next[k])
			p->stream_of[k] = unit_stream[u];
	for (size_t k = 0; k < t->n && rc == 0; k++)
		p->objs[p->stream_of[k]]++;
out:
	free(bytes);
	free(unit_obj);
	free(unit_stream);
	if (rc) {
		fprintf(stderr, "swactl: out of memory planning the save\n");
		sj_plan_free(p);
	}
	return rc;
}

void sj_plan_free(struct sj_plan *p)
{
	free(p->stream_of);
	free(p->next);
	free(p->first);
	free(p->follower);
	free(p->grouped);
	memset(p, 0, sizeof(*p));
}

static const char *human(double b, char *buf, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
	return buf;
}

void sj_print_plan(const struct sj_opts *o, const struct sj_plan *p)
{
	char path[PATH_MAX + 64], h[32];

	for (unsigned s = 0; s < o->streams; s++) {
		printf("  stream %u: %zu objects, %s ->", s, p->objs[s],
		       human((double)p->loads[s], h, sizeof(h)));
		for (unsigned c = 0; c < o->copies; c++) {
			archive_path(o, s, c, path, sizeof(path));
			printf(" %s", path);
		}
		putchar('\n');
	}
}

/* One target: a writable directory without this save's files. */
static int check_target(const struct sj_opts *o, int tgt)
{
	char path[PATH_MAX + 64];
	struct stat st;

	if (stat(o->targets[tgt], &st) < 0 || !S_ISDIR(st.st_mode) ||
	    access(o->targets[tgt], W_OK | X_OK) < 0) {
		fprintf(stderr, "swactl: target '%s' is not a writable "
			"directory: %s\n", printable(o->targets[tgt]),
			strerror(errno ? errno : ENOTDIR));
		return 1;
	}
	for (unsigned s = 0; s < o->streams; s++)
		for (unsigned c = 0; c < o->copies; c++) {
			archive_path(o, s, c, path, sizeof(path));
			if (target_of(o, s, c) == tgt && !lstat(path, &st)) {
				fprintf(stderr, "swactl: '%s' exists already: "
					"choose another --name or target\n",
					printable(path));
				return 1;
			}
		}
	manifest_path(o, tgt, false, path, sizeof(path));
	if (!lstat(path, &st)) {
		fprintf(stderr, "swactl: '%s' exists already: choose another "
			"--name or target\n", printable(path));
		return 1;
	}
	return 0;
}

/*
 * Free space of each target against what its streams send it: short of
 * room is an error for a dry run of an uncompressed save, else a warning
 * (a real save goes on: a copy that runs out fails alone).
 */
static int check_space(const struct sj_opts *o, const struct sj_plan *p,
		       bool dry_run)
{
	uint64_t need[SJ_TARGETS_MAX] = { 0 };
	bool plain = dry_run && !strcmp(o->compress, "none");
	char a[32], b[32];
	int rc = 0;

	for (unsigned s = 0; s < o->streams; s++)
		for (unsigned c = 0; c < o->copies; c++)
			need[target_of(o, s, c)] += p->loads[s];
	for (int t = 0; t < o->ntargets; t++) {
		struct statvfs v;
		uint64_t avail;

		if (statvfs(o->targets[t], &v) < 0)
			continue;
		avail = (uint64_t)v.f_bavail * v.f_frsize;
		if (need[t] <= avail)
			continue;
		fprintf(stderr, "swactl: %s: target '%s' has %s free, the save "
			"sends it %s%s\n", plain ? "error" : "warning",
			printable(o->targets[t]), human((double)avail, a,
							sizeof(a)),
			human((double)need[t], b, sizeof(b)),
			strcmp(o->compress, "none") ? " before compression"
						    : "");
		rc |= plain;
	}
	return rc;
}

int sj_check(const struct sj_opts *o, const struct sj_plan *plan,
	     bool dry_run)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	if ((unsigned)o->ntargets < o->copies)
		return usage_error("--copies %u wants at least %u targets",
				   o->copies, o->copies);
	for (int t = 0; t < o->ntargets; t++) {
		if (check_target(o, t))
			return 1;
		for (int u = 0; u < t; u++)
			if (realpath(o->targets[t], ra) &&
			    realpath(o->targets[u], rb) && !strcmp(ra, rb))
				return usage_error("target '%s' given twice",
						   printable(o->targets[t]));
	}
	return plan ? check_space(o, plan, dry_run) : 0;
}

static bool stopping(struct job *j)
{
	if (sv_stop_signal())
		atomic_store(&j->fatal, 1);
	return atomic_load(&j->fatal);
}

/* End the save; the first reason only is printed (the rest follow it). */
static void fatal(struct job *j, const char *why)
{
	if (atomic_exchange(&j->fatal, 1) == 0)
		fprintf(stderr, "swactl: %s\n", why);
}

/*
 * Append r to every manifest (a target whose manifest fails drops it), or
 * a copy of it to the collecting set.
 */
static void manifest_put(struct job *j, const struct mf_rec *r)
{
	struct mf_rec c;

	pthread_mutex_lock(&j->man_lock);
	if (j->o->collect && (mf_rec_copy(r, &c) || mf_add(j->o->collect, &c)))
		fatal(j, "out of memory");
	for (int t = 0; t < j->o->ntargets; t++)
		if (j->man[t] && mf_write(j->man[t], r) < 0) {
			snprintf(j->man_fail[t], sizeof(j->man_fail[t]),
				 "manifest in '%s': %s", j->o->targets[t],
				 strerror(errno));
			fclose(j->man[t]);
			j->man[t] = NULL;
		}
	pthread_mutex_unlock(&j->man_lock);
}

/* Name path as skipped: 1, or -ENOTCONN (the view is gone: fatal). */
static int skipped(struct stream *s, const char *path, int err)
{
	char why[8192 + 64];

	if (err == ENOTCONN) {
		snprintf(why, sizeof(why), "the view went away (its daemon is "
			 "gone) at '%s'", printable(path));
		fatal(s->j, why);
		return -ENOTCONN;
	}
	fprintf(stderr, "swactl: skipped '%s': %s\n", printable(path),
		strerror(err));
	atomic_fetch_add(&s->j->skipped, 1);
	return 1;
}

/* The arch_out calls, for a job that writes no archive (collect) too. */
static int out_header(struct stream *s)
{
	return s->out ? arch_out_header(s->out, s->e) : 1;
}

static int out_end(struct stream *s)
{
	return s->out ? arch_out_end_entry(s->out) : 1;
}

static int sink(void *arg, const void *buf, size_t len)
{
	struct stream *s = arg;

	if (s->out && !arch_out_data(s->out, buf, len))
		return -ECANCELED;
	atomic_fetch_add(&s->j->done_bytes, len);
	return 0;
}

/* Write the data of regular file fd; 0, or the errno that cut it short. */
static int save_data(struct stream *s, int fd, struct mf_rec *r,
		     const char *path)
{
	int rc = arch_read_file(fd, s->e, sink, s, &r->hash);

	r->has_hash = rc == 0;
	if (rc == -ECANCELED || rc == 0 || (rc = skipped(s, path, -rc)) < 0)
		return rc;
	r->error = strdup(strerrorname_np(-rc) ? strerrorname_np(-rc) : "EIO");
	return r->error ? 0 : -ENOMEM;
}

/*
 * Save object k with its data from fd (ahead_take's answer, closed here);
 * r receives its record.  Returns 0, 1 when
 * it was skipped (named), or -errno that ends the save (-ECANCELED: no
 * copy left).
 */
static int save_obj(struct stream *s, size_t k, int fd, struct mf_rec *r)
{
	const struct tree_obj *obj = &s->j->t->o[k];
	int rc = fd < 0 && fd != -EBADF ? fd : 0;
	uint64_t hash = 0;
	char *error = NULL;

	if (rc == 0)
		rc = arch_entry_of(s->ard, s->j->root, obj, fd < 0 ? -1 : fd,
				   s->e);
	if (rc) {
		rc = skipped(s, obj->path, -rc);
		goto out;
	}
	if (!out_header(s)) {
		rc = -ECANCELED;
		goto out;
	}
	memset(r, 0, sizeof(*r));
	if (S_ISREG(obj->st.st_mode))
		rc = save_data(s, fd, r, obj->path);
	hash = r->hash;
	error = r->error;
	if (rc == 0 && !out_end(s))
		rc = -ECANCELED;
	if (rc == 0 && arch_rec_of(s->e, r) == 0) {
		r->has_hash = S_ISREG(obj->st.st_mode) && !error;
		r->hash = r->has_hash ? hash : 0;
		r->error = error;
		error = NULL;
	} else if (rc == 0)
		rc = -ENOMEM;
out:
	free(error);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A later name of a hard-linked inode: a link to the first name. */
static int save_link(struct stream *s, size_t k, const struct mf_rec *first)
{
	struct mf_rec r = *first;

	archive_entry_clear(s->e);
	archive_entry_copy_pathname(s->e, s->j->t->o[k].path);
	archive_entry_copy_stat(s->e, &s->j->t->o[k].st);
	archive_entry_set_nlink(s->e, 1);
	archive_entry_copy_hardlink(s->e, first->link);
	archive_entry_set_size(s->e, 0);
	if (!out_header(s) || !out_end(s))
		return -ECANCELED;
	r.path = s->j->t->o[k].path;
	manifest_put(s->j, &r);
	return 0;
}

/* Object k; a hard-link group's first name keeps its record for the
 * later names, which come after it in the same stream. */
static int save_unit(struct stream *s, size_t k, int fd)
{
	const struct sj_plan *p = s->j->p;
	struct mf_rec r = { 0 };
	int rc = save_obj(s, k, fd, &r);

	if (rc == 0 && p->grouped[k] && !(r.link = strdup(r.path)))
		rc = -ENOMEM;
	if (rc == 0)
		manifest_put(s->j, &r);
	if (rc == 0 && p->grouped[k])
		s->j->lead[k] = r;
	else
		mf_rec_free(&r);
	atomic_fetch_add(&s->j->done_objs, 1);
	return rc < 0 ? rc : 0;
}

/* A later name of a hard-link group. */
static int save_follower(struct stream *s, size_t k)
{
	const struct mf_rec *first = &s->j->lead[s->j->p->first[k]];

	atomic_fetch_add(&s->j->done_objs, 1);
	if (first->path)
		return save_link(s, k, first);
	fprintf(stderr, "swactl: skipped '%s': its first hard-linked name was "
		"skipped\n", printable(s->j->t->o[k].path));
	atomic_fetch_add(&s->j->skipped, 1);
	return 0;
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	const struct sj_plan *p = s->j->p;
	size_t *list = calloc(p->objs[s->k] + 1, sizeof(*list)), n = 0;
	struct ahead *a = NULL;
	char why[2 * 512 + 64];
	int rc = list ? 0 : -ENOMEM;

	for (size_t k = 0; list && k < p->nobj; k++)
		if (p->stream_of[k] == s->k)
			list[n++] = k;
	if (rc == 0)
		rc = ahead_start(&a, s->j->root, s->j->t, list, n);
	for (size_t i = 0; rc == 0 && i < n && !stopping(s->j); i++) {
		int fd = ahead_take(a, i);

		if (p->follower[list[i]] && fd >= 0)
			close(fd);
		rc = p->follower[list[i]] ? save_follower(s, list[i])
					  : save_unit(s, list[i], fd);
	}
	if (a)
		ahead_stop(a);
	free(list);
	if (rc == -ECANCELED) {
		snprintf(why, sizeof(why), "stream %u lost every copy: %s%s%s",
			 s->k, arch_out_failure(s->out, 0),
			 s->j->o->copies > 1 ? "; " : "",
			 s->j->o->copies > 1 ? arch_out_failure(s->out, 1) : "");
		fatal(s->j, why);
	} else if (rc && rc != -ENOTCONN) {
		snprintf(why, sizeof(why), "stream %u failed: %s", s->k,
			 strerror(-rc));
		fatal(s->j, why);
	}
	atomic_fetch_add(&s->j->finished, 1);
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One progress line on a terminal, like `status --watch`. */
static void progress(struct job *j, double t0, bool last)
{
	double done = (double)atomic_load(&j->done_bytes), secs = now() - t0;
	double total = (double)j->p->bytes, rate = secs > 0 ? done / secs : 0;
	char a[32], b[32], r[32];
	int pct = total > 0 ? (int)(done * 100 / total) : 100;

	fprintf(stderr, "\r%s %s: %3d%% %s of %s, %zu of %zu objects, "
		"%s/s, ETA %.0fs\033[K%s", j->o->collect ? "verify" : "save",
		j->o->name, pct > 100 ? 100 : pct,
		human(done, a, sizeof(a)), human(total, b, sizeof(b)),
		atomic_load(&j->done_objs), j->p->nobj,
		human(rate, r, sizeof(r)),
		rate > 0 && total > done ? (total - done) / rate : 0,
		last ? "\n" : "");
}

static int open_manifests(struct job *j)
{
	char path[PATH_MAX + 64];
	int fd;

	for (unsigned s = 0; s < j->o->streams; s++)
		for (unsigned c = 0; c < j->o->copies; c++) {
			int t = target_of(j->o, s, c);

			if (j->man[t])
				continue;
			manifest_path(j->o, t, true, path, sizeof(path));
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				  0600);	/* as private as the archives */
			j->man[t] = fd < 0 ? NULL : fdopen(fd, "w");
			if (fd >= 0 && !j->man[t])
				close(fd);
			if (!j->man[t] || fputs(MF_HEADER "\n", j->man[t]) < 0) {
				fprintf(stderr, "swactl: cannot create '%s': "
					"%s\n", printable(path),
					strerror(errno));
				return 1;
			}
		}
	return 0;
}

/* Flush, sync and name each manifest, or remove them all (fatal). */
static void close_manifests(struct job *j, bool keep)
{
	char part[PATH_MAX + 64], path[PATH_MAX + 64];

	for (int t = 0; t < j->o->ntargets; t++) {
		if (!j->man[t] && !j->man_fail[t][0])
			continue;
		manifest_path(j->o, t, true, part, sizeof(part));
		manifest_path(j->o, t, false, path, sizeof(path));
		if (j->man[t] && keep && (fflush(j->man[t]) ||
		    fsync(fileno(j->man[t])) || rename(part, path)))
			snprintf(j->man_fail[t], sizeof(j->man_fail[t]),
				 "manifest '%s': %s", path, strerror(errno));
		if (j->man[t])
			fclose(j->man[t]);
		j->man[t] = NULL;
		if (!keep || j->man_fail[t][0])
			unlink(part);
	}
}

static int open_streams(struct job *j, struct stream *ss)
{
	char paths[ARCH_COPIES_MAX][PATH_MAX + 64], why[PATH_MAX + 128];
	char *pv[ARCH_COPIES_MAX] = { paths[0], paths[1] };

	for (unsigned s = 0; s < j->o->streams; s++) {
		ss[s] = (struct stream){ .j = j, .k = s };
		for (unsigned c = 0; c < j->o->copies; c++)
			archive_path(j->o, s, c, paths[c], sizeof(paths[c]));
		ss[s].ard = archive_read_disk_new();
		ss[s].e = archive_entry_new();
		if (!ss[s].ard || !ss[s].e) {
			fprintf(stderr, "swactl: out of memory\n");
			return 1;
		}
		archive_read_disk_set_symlink_physical(ss[s].ard);
		if (j->o->collect)
			continue;
		if (arch_out_open(&ss[s].out, pv, (int)j->o->copies,
				  j->o->compress, why, sizeof(why))) {
			fprintf(stderr, "swactl: %s\n", why);
			return 1;
		}
	}
	return 0;
}

/* Close every stream; remove everything when the save failed. */
static int close_streams(struct job *j, struct stream *ss, bool fatal_end)
{
	char path[PATH_MAX + 64];
	int rc = 0;

	bool opened[BAL_STREAMS_MAX] = { false };

	for (unsigned s = 0; s < j->o->streams; s++) {
		opened[s] = ss[s].out != NULL;
		if (ss[s].out)
			ss[s].complete = arch_out_close(ss[s].out, ss[s].failures);
		if (ss[s].out && ss[s].complete == 0)
			fatal_end = true;
		ss[s].out = NULL;
		archive_read_free(ss[s].ard);
		archive_entry_free(ss[s].e);
	}
	for (unsigned s = 0; s < j->o->streams; s++)
		for (unsigned c = 0; c < j->o->copies && opened[s]; c++) {
			archive_path(j->o, s, c, path, sizeof(path));
			if (fatal_end)
				unlink(path);	/* ours: created O_EXCL */
			else if (ss[s].failures[c][0]) {
				fprintf(stderr, "swactl: copy %u of stream %u "
					"failed (removed): %s\n", c + 1, s,
					ss[s].failures[c]);
				rc = EXIT_SKIPPED;
			}
		}
	close_manifests(j, !fatal_end);
	for (int t = 0; t < j->o->ntargets && !fatal_end; t++)
		if (j->man_fail[t][0]) {
			fprintf(stderr, "swactl: %s\n", j->man_fail[t]);
			rc = EXIT_SKIPPED;
		}
	return fatal_end ? 1 : rc;
}

static void summary(struct job *j, double secs)
{
	double bytes = (double)atomic_load(&j->done_bytes);
	char a[32], r[32];

	printf("saved %s: %zu objects, %s in %u stream%s x %u cop%s, %.1f s, "
	       "%s/s\n", j->o->name, atomic_load(&j->done_objs),
	       human(bytes, a, sizeof(a)), j->o->streams,
	       j->o->streams == 1 ? "" : "s", j->o->copies,
	       j->o->copies == 1 ? "y" : "ies", secs,
	       human(secs > 0 ? bytes / secs : 0, r, sizeof(r)));
}

static void run_streams(struct job *j, struct stream *ss)
{
	pthread_t th[BAL_STREAMS_MAX];
	unsigned started = 0;
	bool tty = isatty(STDERR_FILENO);
	double t0 = now(), drawn = t0;
	struct timespec tick = { 0, 100 * 1000 * 1000 };

	for (; started < j->o->streams; started++)
		if (pthread_create(&th[started], NULL, stream_main,
				   &ss[started])) {
			fatal(j, "cannot start a stream thread");
			break;
		}
	while ((unsigned)atomic_load(&j->finished) < started) {
		nanosleep(&tick, NULL);
		stopping(j);
		if (tty && now() - drawn >= 1) {
			progress(j, t0, false);
			drawn = now();
		}
	}
	for (unsigned s = 0; s < started; s++)
		pthread_join(th[s], NULL);
	if (tty)
		progress(j, t0, true);
}

int sj_write(const struct sj_opts *o, const char *root, const struct tree *t,
	     const struct sj_plan *p)
{
	struct job j = { .o = o, .root = root, .t = t, .p = p };
	struct stream ss[BAL_STREAMS_MAX] = { 0 };
	double t0 = now();
	int rc;

	j.lead = calloc(p->nobj + 1, sizeof(*j.lead));
	if (!j.lead)
		return fprintf(stderr, "swactl: out of memory\n"), 1;
	pthread_mutex_init(&j.man_lock, NULL);
	rc = o->collect ? 0 : open_manifests(&j);
	if (rc == 0)
		rc = open_streams(&j, ss);
	if (rc == 0)
		run_streams(&j, ss);
	if (sv_stop_signal() && rc == 0)
		fprintf(stderr, "swactl: save %s stopped by signal %d: "
			"nothing kept\n", o->name, sv_stop_signal());
	rc = close_streams(&j, ss, rc || atomic_load(&j.fatal));
	if (rc != 1 && !o->collect)
		summary(&j, now() - t0);
	if (rc != 1 && atomic_load(&j.skipped)) {
		fprintf(stderr, "swactl: %zu object%s skipped (named above)\n",
			atomic_load(&j.skipped),
			atomic_load(&j.skipped) == 1 ? "" : "s");
		rc = EXIT_SKIPPED;
	}
	pthread_mutex_destroy(&j.man_lock);
	for (size_t k = 0; k < p->nobj; k++)
		mf_rec_free(&j.lead[k]);
	free(j.lead);
	return rc;
}
