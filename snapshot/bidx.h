/*
 * bidx.h - a set of block numbers that only grows, with "the next member
 * at or after b" in a few word operations whatever the number of blocks:
 * a bitmap with one summary level above it per factor of 64.
 *
 * Invariants:
 *   1. Bits are only ever set, never cleared.
 *   2. bidx_add() sets the bit of every level from the bottom up (release):
 *      a reader that sees a summary bit (acquire) sees the bits below it,
 *      so a search never descends into an empty word.
 *   3. bidx_add() and bidx_next() take no lock and may run concurrently;
 *      once bidx_add(x, b) has returned, every later bidx_next(x, a <= b)
 *      returns at most b.
 */
#ifndef SWAFS_BIDX_H
#define SWAFS_BIDX_H

#include <stdint.h>

struct bidx;

/* An empty set for blocks [0, n); n may be 0. */
int bidx_create(uint64_t n, struct bidx **out);
void bidx_free(struct bidx *x);
void bidx_add(struct bidx *x, uint64_t b);
/* The smallest member >= b, or n (the size) when there is none. */
uint64_t bidx_next(const struct bidx *x, uint64_t b);

#endif
