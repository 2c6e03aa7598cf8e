/*
 * cprog.h - progress of one checkpoint's save, for `swactl status`: the
 * size of its T image (counted by a background walk after T, never at T:
 * G7) and the rate at which views hand out its bytes.
 *
 * Nothing here is on a hot path: the T size is set once by the walk, the
 * rate is sampled by status requests (under the progress's own mutex).
 */
#ifndef SWAFS_CPROG_H
#define SWAFS_CPROG_H

#include <stdint.h>

struct cprog;

enum cprog_tsize {
	CPROG_COMPUTING,	/* the walk has not finished */
	CPROG_DONE,		/* bytes and files are T's */
	CPROG_STOPPED,		/* the checkpoint ended first */
	CPROG_FAILED,		/* some object could not be reached */
};

/* Seconds of saved-byte history the rate looks back over. */
#define CPROG_RATE_WINDOW_S 10

int cprog_create(struct cprog **out);
void cprog_free(struct cprog *p);

/* The walk's result (bytes and files are only meaningful with DONE). */
void cprog_set_tsize(struct cprog *p, enum cprog_tsize st, uint64_t bytes,
		     uint64_t files);
/* The state; bytes and files are set when it is CPROG_DONE. */
enum cprog_tsize cprog_tsize(struct cprog *p, uint64_t *bytes,
			     uint64_t *files);
/* "computing", "done", "stopped", "failed" */
const char *cprog_tsize_name(enum cprog_tsize st);

/*
 * Record saved (bytes handed to views so far) at now_ns (CLOCK_MONOTONIC)
 * and return the save rate in bytes per second: over the last
 * CPROG_RATE_WINDOW_S seconds of earlier samples when there are any at
 * least a second old, else since first_ns (the first byte served; 0:
 * none yet).  Returns -1 before the first byte was served and when
 * there is nothing to measure from.
 */
double cprog_rate(struct cprog *p, uint64_t now_ns, uint64_t saved,
		  uint64_t first_ns);

#endif
