/*
 * balance.h - spread the units of a save (a file with all its hard-linked
 * names, a directory, a special file) over K streams so that each stream
 * carries about as many bytes as the others (largest first, each to the
 * stream with the fewest bytes so far).  With n units the largest stream
 * ends at most one unit's bytes above the smallest.
 */
#ifndef SWAFS_BALANCE_H
#define SWAFS_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#define BAL_STREAMS_MAX 64

/*
 * Assign unit k (bytes[k]) to stream out[k] in [0, streams); loads (may
 * be NULL, streams entries) receives each stream's bytes.  Ties go to the
 * lowest stream, so the plan is the same for the same input.  Returns 0,
 * -EINVAL (streams not in 1..BAL_STREAMS_MAX) or -ENOMEM.
 */
int bal_assign(const uint64_t *bytes, size_t n, unsigned streams,
	       unsigned *out, uint64_t *loads);

#endif
