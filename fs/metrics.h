/*
 * metrics.h - a Prometheus textfile of the live tree's figures, for
 * node_exporter's textfile collector (-o metrics=FILE).
 */
#ifndef SWAFS_METRICS_H
#define SWAFS_METRICS_H

#include <stdint.h>

struct fs_ctx;
struct metrics;

/*
 * Check where FILE would go, before the mount: its directory must exist
 * and be writable, and FILE, if present, must be a regular file (not a
 * symlink).  abs (PATH_MAX) gets FILE with its directory made canonical,
 * for use after the daemon left its working directory.  Returns 0 or
 * -errno with why (one line) filled in.
 */
int metrics_check(const char *file, char *abs, char *why, size_t size);

/*
 * Write FILE now and then every interval_ns, each time whole (a temporary
 * file renamed over it), labelled mount="MNT", until metrics_stop(), which
 * removes FILE.  Returns 0 or -errno.
 */
int metrics_start(struct fs_ctx *ctx, const char *file, const char *mnt,
		  int64_t interval_ns, struct metrics **out);
void metrics_stop(struct metrics *m);

#endif
