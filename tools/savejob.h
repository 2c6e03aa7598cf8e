/*
 * savejob.h - the archive-writing part of `swactl save --to`: plan the
 * streams of a tree (hard-linked names stay together, directories go to
 * stream 0, the rest balanced by bytes), check the targets, then write
 * every stream to its copies in parallel with the manifest beside them.
 */
#ifndef SWAFS_SAVEJOB_H
#define SWAFS_SAVEJOB_H

#include <stdbool.h>
#include <stdint.h>

#include "tools/balance.h"
#include "tools/manifest.h"
#include "tools/tree.h"

#define SJ_TARGETS_MAX 16

struct sj_opts {
	const char *name;		/* archive base name */
	char *targets[SJ_TARGETS_MAX];	/* directories */
	int ntargets;
	const char *compress;		/* "zstd", "lz4" or "none" */
	unsigned streams, copies;
	struct mf_set *collect;		/* not NULL: no archives, no manifest
					   files, the records added here */
};

struct sj_plan {
	size_t nobj;
	uint64_t bytes;			/* logical bytes of regular files,
					   each hard-linked inode once */
	unsigned *stream_of;		/* per object */
	long *next;			/* per object: next name of its
					   hard-link group, or -1 */
	long *first;			/* per object: its group's first name
					   when it is a later one, else -1 */
	bool *follower;			/* per object: not its group's first */
	bool *grouped;			/* per object: in a group of 2+ */
	uint64_t loads[BAL_STREAMS_MAX];	/* bytes per stream */
	size_t objs[BAL_STREAMS_MAX];	/* objects per stream */
};

/* Plan t over streams; 0 or -ENOMEM (reported). */
int sj_plan(const struct tree *t, unsigned streams, struct sj_plan *p);
void sj_plan_free(struct sj_plan *p);

/*
 * The targets are distinct writable directories, none holds this save's
 * archives or manifest yet, and (with plan) each has room for the bytes
 * its streams send it: short of room fails a dry run of an uncompressed
 * save, else warns.  Prints one line per problem; returns swactl's exit
 * code.
 */
int sj_check(const struct sj_opts *o, const struct sj_plan *plan,
	     bool dry_run);

/* Print the plan: per stream its objects, bytes and archive paths. */
void sj_print_plan(const struct sj_opts *o, const struct sj_plan *p);

/*
 * Write the archives and manifests of tree t read from view root.
 * Returns 0, EXIT_SKIPPED (objects skipped or a copy failed; each named
 * on stderr) or 1 (a stream lost every copy, the view went away, or a
 * stop signal: then nothing of this save is left in the targets).
 */
int sj_write(const struct sj_opts *o, const char *root, const struct tree *t,
	     const struct sj_plan *p);

#endif
