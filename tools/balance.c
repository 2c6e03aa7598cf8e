/*
 * balance.c - byte-balanced assignment of save units to streams
 * (longest-processing-time first: sorting by bytes, descending, then
 * giving each unit to the lightest stream keeps the spread below the
 * largest unit and the makespan within 4/3 of the best).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/balance.h"

struct item {
	uint64_t bytes;
	size_t k;
};

/* Descending bytes, then ascending index: deterministic for equal sizes. */
static int heavier_first(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return x->k < y->k ? -1 : x->k > y->k;
}

int bal_assign(const uint64_t *bytes, size_t n, unsigned streams,
	       unsigned *out, uint64_t *loads)
{
	uint64_t load[BAL_STREAMS_MAX] = { 0 };
	struct item *it;

	if (streams < 1 || streams > BAL_STREAMS_MAX)
		return -EINVAL;
	it = malloc((n ? n : 1) * sizeof(*it));
	if (!it)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		it[k] = (struct item){ bytes[k], k };
	qsort(it, n, sizeof(*it), heavier_first);
	for (size_t k = 0; k < n; k++) {
		unsigned best = 0;

		for (unsigned s = 1; s < streams; s++)
			if (load[s] < load[best])
				best = s;
		out[it[k].k] = best;
		load[best] += it[k].bytes;
	}
	free(it);
	if (loads)
		memcpy(loads, load, streams * sizeof(*loads));
	return 0;
}
