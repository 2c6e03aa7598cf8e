/*
 * hist.h - the history of a live tree's checkpoints: one record per
 * checkpoint that ended (released, invalidated, the daemon stopped) or
 * could not be taken, kept for keep_days after it ended.
 *
 * File: DIR/swafs-history.<hash>.jsonl beside the store, where <hash> is
 * the XXH64 (16 hex digits) of BACKING's canonical path: the mount's
 * device number changes at every mount, the path does not, so the history
 * survives remounts of the same tree.  One JSON object per line:
 *
 *   {"name":"nightly","t":1700000000,"ended":1700000600,"pause_us":812,
 *    "duration_s":600.123,"captured_bytes":0,"peak_store_bytes":0,
 *    "files":0,"saved_bytes":0,"t_size_bytes":null,"t_files":null,
 *    "outcome":"released","reason":""}
 *
 * Lines are appended whole with O_APPEND (no fsync: history is advice,
 * not data); pruning rewrites the file through a temporary file and a
 * rename.  Both hold a mutex (threads) and an exclusive flock on the lock
 * file DIR/swafs-history.<hash>.lock (other daemons of the tree; held for
 * one short step), so no append is lost to a concurrent rewrite.  DIR
 * itself is never flocked: in a shared directory such as /tmp anyone could
 * hold that lock.  Lines that do not parse are skipped by readers and
 * dropped by the next rewrite.  Names under DIR are opened with
 * O_NOFOLLOW|O_NONBLOCK, and a history or lock file that is not a regular
 * file owned by the daemon's user is refused, at hist_open already.
 */
#ifndef SWAFS_HIST_H
#define SWAFS_HIST_H

#include <stddef.h>
#include <stdint.h>

struct hist;

#define HIST_KEEP_DAYS_DEFAULT 30
#define HIST_KEEP_DAYS_MAX 36500

struct hist_rec {
	char name[65];
	char outcome[16];	/* released|invalidated|stopped|failed */
	char reason[256];	/* why it failed or was invalidated, or "" */
	int64_t t;		/* T, or when the take was tried; epoch s */
	int64_t ended;		/* epoch s; pruning counts from here */
	uint64_t pause_us;
	double duration_s;	/* T to the end */
	uint64_t captured_bytes;	/* raw bytes of pre-images taken */
	uint64_t peak_store_bytes;	/* most raw pre-image bytes held */
	uint64_t files;		/* files saved whole (released) */
	uint64_t saved_bytes;	/* T bytes the save read (see ckpt.h) */
	int64_t t_size_bytes;	/* -1: not known */
	int64_t t_files;	/* -1: not known */
};

/*
 * Open the history of the tree whose canonical path is backing, in the
 * directory dir, and prune it as of now (epoch s).  keep_days 0 keeps
 * nothing: the file is emptied and appends are dropped.  Returns 0 or
 * -errno (-EPERM: the history or lock file is not ours or not a regular
 * file; -ELOOP: one is a symlink).
 * *out is freed with hist_close().
 */
int hist_open(const char *dir, const char *backing, unsigned keep_days,
	      int64_t now, struct hist **out);
void hist_close(struct hist *h);

/* Prune records that ended more than keep_days before now, then append r.
 * Returns 0 or -errno. */
int hist_append(struct hist *h, const struct hist_rec *r, int64_t now);

/* Drop records that ended before now - keep_days.  Returns 0 or -errno. */
int hist_prune(struct hist *h, int64_t now);

/*
 * Call fn for each record that parses and is still kept as of now, in
 * file order (oldest first); fn returns 0 to go on.  Returns 0, what fn
 * returned, or -errno.  No history file yet is no records.
 */
int hist_read(struct hist *h, int64_t now,
	      int (*fn)(void *arg, const struct hist_rec *r), void *arg);

/* The file name (no directory); owned by h. */
const char *hist_file_name(const struct hist *h);

/* One record as its JSON line with "\n"; returns the length or -ENOSPC. */
int hist_format(const struct hist_rec *r, char *buf, size_t size);
/* Parse one line (newline optional).  Returns 0 or -EINVAL. */
int hist_parse(const char *line, struct hist_rec *r);

#endif
