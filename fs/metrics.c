/*
 * metrics.c - the live tree's figures as a Prometheus textfile.
 *
 * node_exporter's textfile collector reads every *.prom file of a
 * directory; a file read while half written would export half the
 * figures, so each round writes a temporary file (a name the collector
 * ignores, made with O_EXCL so nothing placed there beforehand is
 * reused) and renames it over FILE.  The directory is opened once, at
 * start; every later step goes through that descriptor, never by path.
 *
 * Threading: one thread writes; metrics_stop() wakes it through the
 * condition and joins it.  The figures come from the engine's own status
 * and history calls, which take their own locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/ctx.h"
#include "fs/metrics.h"
#include "snapshot/hist.h"

#define METRICS_CKPT_MAX 256	/* checkpoints listed per round */

struct metrics {
	struct fs_ctx *ctx;		/* immutable */
	int dirfd;			/* immutable: FILE's directory */
	char base[NAME_MAX + 1];	/* immutable: FILE's name */
	char label[2 * PATH_MAX];	/* immutable: mount="MNT", escaped */
	int64_t interval_ns;		/* immutable */
	struct ckpt_status *st;		/* the thread's: METRICS_CKPT_MAX */
	bool failed;			/* the thread's: said the last error */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* lock: stop was set */
	bool stop;			/* lock */
};

/* The last history record, if any. */
struct last_save {
	bool found;
	struct hist_rec rec;
};

/* Split FILE into its directory and name; -EINVAL when it has no name. */
static int split(const char *file, char *dir, char *base)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (snprintf(a, sizeof(a), "%s", file) >= (int)sizeof(a))
		return -ENAMETOOLONG;
	memcpy(b, a, sizeof(b));
	snprintf(dir, PATH_MAX, "%s", dirname(a));
	if (snprintf(base, NAME_MAX + 1, "%s", basename(b)) > NAME_MAX)
		return -ENAMETOOLONG;
	if (!*base || !strcmp(base, "/") || !strcmp(base, ".") ||
	    !strcmp(base, ".."))
		return -EINVAL;
	return 0;
}

int metrics_check(const char *file, char *abs, char *why, size_t size)
{
	char dir[PATH_MAX], base[NAME_MAX + 1], real[PATH_MAX];
	struct stat st;
	int rc = split(file, dir, base), dfd;

	if (rc < 0) {
		snprintf(why, size, "'%s' names no file", file);
		return rc;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !realpath(dir, real) ||
	    faccessat(dfd, ".", W_OK, AT_EACCESS) < 0) {
		rc = -errno;
		snprintf(why, size, "its directory '%s': %s", dir,
			 strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return rc;
	}
	rc = 0;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISREG(st.st_mode)) {
		snprintf(why, size, "'%s' exists and is not a regular file",
			 file);
		rc = -EEXIST;
	}
	close(dfd);
	if (rc == 0 && snprintf(abs, PATH_MAX, "%s/%s", strcmp(real, "/") ?
				real : "", base) >= PATH_MAX) {
		snprintf(why, size, "'%s': path too long", file);
		rc = -ENAMETOOLONG;
	}
	return rc;
}

/* mount="MNT" with \, " and newline escaped as the text format wants. */
static void make_label(const char *mnt, char *out, size_t size)
{
	size_t o = 0;

	o += (size_t)snprintf(out, size, "mount=\"");
	for (const char *p = mnt; *p && o + 4 < size; p++) {
		if (*p == '\\' || *p == '"')
			out[o++] = '\\';
		if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
			continue;
		}
		out[o++] = *p;
	}
	snprintf(out + o, size - o, "\"");
}

static int keep_last(void *arg, const struct hist_rec *r)
{
	struct last_save *l = arg;

	l->found = true;
	l->rec = *r;
	return 0;
}

/* One metric: its HELP and TYPE, then value with the mount label. */
static void put(FILE *f, const struct metrics *m, const char *name,
		const char *type, const char *help, double value)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %.15g\n", name, help,
		name, type, name, m->label, value);
}

/* Per checkpoint: one sample per name="NAME" (names need no escape). */
static void put_each(FILE *f, const struct metrics *m, size_t n,
		     const char *name, const char *help,
		     double (*get)(const struct ckpt_status *))
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	for (size_t k = 0; k < n; k++)
		if (m->st[k].phase == CKPT_PHASE_NONE)
			fprintf(f, "%s{%s,name=\"%s\"} %.15g\n", name,
				m->label, m->st[k].info.name, get(&m->st[k]));
}

static double g_valid(const struct ckpt_status *s) { return s->info.valid; }
static double g_age(const struct ckpt_status *s) { return s->age_s; }
static double g_views(const struct ckpt_status *s) { return s->info.views; }
static double g_captured(const struct ckpt_status *s)
{
	return (double)s->info.objs.captured_bytes;
}
static double g_saved(const struct ckpt_status *s)
{
	return (double)s->info.objs.saved_bytes;
}
static double g_held(const struct ckpt_status *s)
{
	return (double)s->info.objs.held_bytes;
}
static double g_released(const struct ckpt_status *s)
{
	return (double)s->info.objs.released;
}

static void put_checkpoints(FILE *f, const struct metrics *m, size_t n)
{
	put_each(f, m, n, "swafs_checkpoint_valid",
		 "1 while the checkpoint's views serve T, 0 once invalidated",
		 g_valid);
	put_each(f, m, n, "swafs_checkpoint_age_seconds",
		 "seconds since the checkpoint's instant T", g_age);
	put_each(f, m, n, "swafs_checkpoint_views", "views mounted now",
		 g_views);
	put_each(f, m, n, "swafs_checkpoint_captured_bytes",
		 "bytes of pre-images taken since T", g_captured);
	put_each(f, m, n, "swafs_checkpoint_saved_bytes",
		 "bytes of T file data the save has read", g_saved);
	put_each(f, m, n, "swafs_checkpoint_held_bytes",
		 "bytes of pre-images the checkpoint holds now", g_held);
	put_each(f, m, n, "swafs_checkpoint_files_released",
		 "files saved whole and released", g_released);
}

static void put_store(FILE *f, const struct metrics *m)
{
	struct ckpt_store_info si;

	ckpt_store_info(m->ctx->ckpts, &si);
	put(f, m, "swafs_store_used_bytes", "gauge",
	    "bytes the live pre-images occupy (memory and disk)",
	    (double)si.used_bytes);
	put(f, m, "swafs_store_max_bytes", "gauge",
	    "the most the store may hold", (double)si.max_bytes);
	put(f, m, "swafs_store_peak_bytes", "gauge",
	    "the most the store has held since the mount",
	    (double)si.peak_bytes);
	put(f, m, "swafs_throttled_writers", "gauge",
	    "writers waiting for store space now", si.throttled);
	put(f, m, "swafs_throttle_waits_total", "counter",
	    "writes that waited for store space", (double)si.throttle_waits);
	put(f, m, "swafs_throttle_timeouts_total", "counter",
	    "checkpoints invalidated because a throttle wait ran out",
	    (double)si.throttle_timeouts);
}

static void put_last_save(FILE *f, const struct metrics *m)
{
	struct last_save l = { 0 };

	if (m->ctx->hist)
		hist_read(m->ctx->hist, time(NULL), keep_last, &l);
	if (!l.found)
		return;
	put(f, m, "swafs_last_save_success", "gauge",
	    "1 if the last checkpoint to end was released whole, else 0",
	    !strcmp(l.rec.outcome, "released"));
	put(f, m, "swafs_last_save_end_timestamp_seconds", "gauge",
	    "when the last checkpoint ended", (double)l.rec.ended);
	put(f, m, "swafs_last_save_duration_seconds", "gauge",
	    "the last checkpoint's life, T to its end", l.rec.duration_s);
	put(f, m, "swafs_last_save_captured_bytes", "gauge",
	    "bytes of pre-images the last checkpoint took",
	    (double)l.rec.captured_bytes);
}

static void put_all(FILE *f, struct metrics *m)
{
	size_t n = ckpt_status(m->ctx->ckpts, NULL, m->st, METRICS_CKPT_MAX);
	size_t active = 0, invalid = 0;

	if (n > METRICS_CKPT_MAX)
		n = METRICS_CKPT_MAX;
	for (size_t k = 0; k < n; k++)
		if (m->st[k].phase == CKPT_PHASE_NONE && m->st[k].info.valid)
			active++;
		else if (m->st[k].phase == CKPT_PHASE_NONE)
			invalid++;
	put(f, m, "swafs_up", "gauge", "1 while the daemon serves the tree", 1);
	put(f, m, "swafs_checkpoints_active", "gauge",
	    "checkpoints whose views serve T", (double)active);
	put(f, m, "swafs_checkpoints_invalid", "gauge",
	    "checkpoints invalidated but not yet released", (double)invalid);
	put(f, m, "swafs_checkpoint_being_taken", "gauge",
	    "1 while a checkpoint waits for its boundary, drain or commit",
	    n && m->st[n - 1].phase != CKPT_PHASE_NONE);
	put_checkpoints(f, m, n);
	put_store(f, m);
	put_last_save(f, m);
}

/* Open a fresh temporary file beside FILE; its name goes to tmp. */
static FILE *open_tmp(struct metrics *m, char *tmp, size_t size)
{
	for (int tries = 0; tries < 16; tries++) {
		int fd;

		snprintf(tmp, size, ".%.200s.%ld.%08lx", m->base, (long)getpid(),
			 (unsigned long)random());
		fd = openat(m->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0)
			return fdopen(fd, "w");
		if (errno != EEXIST)
			return NULL;
	}
	errno = EEXIST;
	return NULL;
}

static int write_round(struct metrics *m)
{
	char tmp[NAME_MAX + 1];
	FILE *f = open_tmp(m, tmp, sizeof(tmp));
	int rc = 0;

	if (!f)
		return -errno;
	put_all(f, m);
	if (ferror(f))
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(m->dirfd, tmp, m->dirfd, m->base) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(m->dirfd, tmp, 0);
	return rc;
}

/* Say a failure once, and again only after a round that worked. */
static void report(struct metrics *m, int rc)
{
	if (rc < 0 && !m->failed)
		fprintf(stderr, "swafs: warning: cannot write metrics file "
			"'%s': %s\n", m->base, strerror(-rc));
	m->failed = rc < 0;
}

static void *metrics_thread(void *arg)
{
	struct metrics *m = arg;
	struct timespec at;

	clock_gettime(CLOCK_MONOTONIC, &at);
	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		pthread_mutex_unlock(&m->lock);
		report(m, write_round(m));
		pthread_mutex_lock(&m->lock);
		at.tv_sec += m->interval_ns / 1000000000;
		at.tv_nsec += m->interval_ns % 1000000000;
		if (at.tv_nsec >= 1000000000) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000;
		}
		while (!m->stop &&
		       pthread_cond_timedwait(&m->wake, &m->lock, &at) == 0)
			;
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static int metrics_init(struct metrics *m, const char *file, const char *mnt)
{
	char dir[PATH_MAX];
	pthread_condattr_t ca;
	int rc = split(file, dir, m->base);

	if (rc < 0)
		return rc;
	m->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dirfd < 0)
		return -errno;
	make_label(mnt, m->label, sizeof(m->label));
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

int metrics_start(struct fs_ctx *ctx, const char *file, const char *mnt,
		  int64_t interval_ns, struct metrics **out)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int rc;

	if (!m)
		return -ENOMEM;
	m->ctx = ctx;
	m->interval_ns = interval_ns;
	m->st = calloc(METRICS_CKPT_MAX, sizeof(*m->st));
	rc = m->st ? metrics_init(m, file, mnt) : -ENOMEM;
	if (rc == 0) {
		rc = -pthread_create(&m->thread, NULL, metrics_thread, m);
		if (rc < 0) {
			close(m->dirfd);
			pthread_mutex_destroy(&m->lock);
			pthread_cond_destroy(&m->wake);
		}
	}
	if (rc < 0) {
		free(m->st);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	/* a stopped tree exports nothing rather than stale figures */
	unlinkat(m->dirfd, m->base, 0);
	close(m->dirfd);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	free(m->st);
	free(m);
}
