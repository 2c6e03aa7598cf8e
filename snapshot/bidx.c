/*
 * bidx.c - the growing block set of bidx.h.  Level 0 has a bit per block;
 * level k+1 has a bit per word of level k, set when that word is not zero.
 * The top level is a single word.  Memory is about n/8 bytes, allocated
 * zeroed (untouched pages of a big set cost no memory).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "snapshot/bidx.h"

#define BIDX_LEVELS 11		/* 64^11 > 2^64 */

struct bidx {
	uint64_t n;			/* immutable: blocks */
	unsigned levels;		/* immutable */
	uint64_t bits[BIDX_LEVELS];	/* immutable: bits of each level */
	atomic_ullong *w[BIDX_LEVELS];	/* the words of each level */
};

int bidx_create(uint64_t n, struct bidx **out)
{
	struct bidx *x = calloc(1, sizeof(*x));
	uint64_t bits = n ? n : 1;

	if (!x)
		return -ENOMEM;
	x->n = n;
	for (;;) {
		uint64_t words = (bits + 63) / 64;

		x->bits[x->levels] = bits;
		x->w[x->levels] = calloc(words, sizeof(atomic_ullong));
		if (!x->w[x->levels++]) {
			bidx_free(x);
			return -ENOMEM;
		}
		if (words == 1)
			break;
		bits = words;
	}
	*out = x;
	return 0;
}

void bidx_free(struct bidx *x)
{
	if (!x)
		return;
	for (unsigned l = 0; l < x->levels; l++)
		free(x->w[l]);
	free(x);
}

void bidx_add(struct bidx *x, uint64_t b)
{
	if (b >= x->n)
		return;
	/* bottom up (invariant 2); a level already set above stays set */
	for (unsigned l = 0; l < x->levels; l++, b /= 64)
		atomic_fetch_or_explicit(&x->w[l][b / 64], 1ull << (b % 64),
					 memory_order_release);
}

static uint64_t word(const struct bidx *x, unsigned l, uint64_t k)
{
	return atomic_load_explicit(&x->w[l][k], memory_order_acquire);
}

uint64_t bidx_next(const struct bidx *x, uint64_t b)
{
	unsigned l = 0;
	uint64_t pos = b, m;

	if (b >= x->n)
		return x->n;
	/* up: the first level whose word at pos has a bit at or after it */
	for (;;) {
		if (pos >= x->bits[l])
			return x->n;
		m = word(x, l, pos / 64) & (~0ull << (pos % 64));
		if (m)
			break;
		if (l + 1 == x->levels)
			return x->n;
		pos = pos / 64 + 1;
		l++;
	}
	pos = pos / 64 * 64 + (uint64_t)__builtin_ctzll(m);
	/* down: the first bit of each word below (invariant 2) */
	while (l-- > 0) {
		m = word(x, l, pos);
		if (!m)		/* not by invariant 2; never ctz(0) */
			return x->n;
		pos = pos * 64 + (uint64_t)__builtin_ctzll(m);
	}
	return pos;
}
