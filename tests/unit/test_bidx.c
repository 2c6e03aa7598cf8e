/* Unit tests for snapshot/bidx.c: the growing block set behind the view's
 * SEEK_DATA/SEEK_HOLE (next member at or after b), against a plain
 * reference, at every level boundary, for sets of 2^32 blocks, and while
 * members are added concurrently (bidx.h invariants 1-3). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "snapshot/bidx.h"

/* The reference: the smallest member >= b of sorted set s[0..n). */
static uint64_t ref_next(const uint64_t *s, size_t n, uint64_t b,
			 uint64_t size)
{
	for (size_t k = 0; k < n; k++)
		if (s[k] >= b)
			return s[k];
	return size;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t rnd(uint64_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 7;
	*st ^= *st << 17;
	return *st;
}

Test(bidx, empty_sets_have_no_member)
{
	static const uint64_t sizes[] = { 0, 1, 64, 65, 4097, 1u << 20 };

	for (unsigned k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		struct bidx *x;

		cr_assert_eq(bidx_create(sizes[k], &x), 0);
		cr_assert_eq(bidx_next(x, 0), sizes[k]);
		cr_assert_eq(bidx_next(x, sizes[k] / 2), sizes[k]);
		cr_assert_eq(bidx_next(x, sizes[k] + 5), sizes[k]);
		bidx_add(x, sizes[k]);	/* out of range: ignored */
		cr_assert_eq(bidx_next(x, 0), sizes[k]);
		bidx_free(x);
	}
}

/* Members at and around every word and summary boundary. */
Test(bidx, level_boundaries)
{
	static const uint64_t sizes[] = { 64, 4096, 4097, 262144, 262145 + 64 };

	for (unsigned k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		uint64_t n = sizes[k], s[64];
		size_t m = 0;
		struct bidx *x;

		cr_assert_eq(bidx_create(n, &x), 0);
		for (uint64_t p = 63; p < n && m < 60; p = p * 64 + 63) {
			s[m++] = p;
			if (p + 1 < n)
				s[m++] = p + 1;
		}
		s[m++] = n - 1;
		qsort(s, m, sizeof(*s), u64_cmp);
		for (size_t i = 0; i < m; i++)
			bidx_add(x, s[i]);
		for (size_t i = 0; i < m; i++) {
			for (int64_t d = -2; d <= 2; d++) {
				uint64_t b = (uint64_t)((int64_t)s[i] + d);

				if ((int64_t)s[i] + d < 0)
					continue;
				cr_assert_eq(bidx_next(x, b), ref_next(s, m, b, n),
					     "n %lu next(%lu): %lu, want %lu",
					     (unsigned long)n, (unsigned long)b,
					     (unsigned long)bidx_next(x, b),
					     (unsigned long)ref_next(s, m, b, n));
			}
		}
		bidx_free(x);
	}
}

Test(bidx, random_sets_match_the_reference)
{
	uint64_t st = 88172645463325252ull;

	for (int round = 0; round < 40; round++) {
		uint64_t n = 1 + rnd(&st) % (round < 20 ? 5000 : 3000000);
		size_t m = (size_t)(rnd(&st) % 200);
		uint64_t *s = malloc((m + 1) * sizeof(*s));
		struct bidx *x;

		cr_assert_eq(bidx_create(n, &x), 0);
		for (size_t i = 0; i < m; i++) {
			s[i] = rnd(&st) % n;
			bidx_add(x, s[i]);
			bidx_add(x, s[i]);	/* twice: still one member */
		}
		qsort(s, m, sizeof(*s), u64_cmp);
		for (int q = 0; q < 2000; q++) {
			uint64_t b = rnd(&st) % (n + 2);

			cr_assert_eq(bidx_next(x, b), ref_next(s, m, b, n));
		}
		for (size_t i = 0; i < m; i++)
			cr_assert_eq(bidx_next(x, s[i]), s[i]);
		free(s);
		bidx_free(x);
	}
}

/* The set of a 256 TiB file of 64 KiB blocks: a few members, found in a
 * few word reads (a scan of its bitmap would take a second). */
Test(bidx, huge_sets_answer_at_once)
{
	uint64_t n = 1ull << 32, s[] = { 7, 1ull << 31, n - 1 };
	struct timespec t0, t1;
	struct bidx *x;
	int i;

	cr_assert_eq(bidx_create(n, &x), 0);
	for (unsigned k = 0; k < 3; k++)
		bidx_add(x, s[k]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 100000; i++) {
		cr_assert_eq(bidx_next(x, 8), s[1]);
		cr_assert_eq(bidx_next(x, s[1] + 1), s[2]);
		cr_assert_eq(bidx_next(x, 0), s[0]);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 2)
			break;
	}
	cr_assert_eq(i, 100000, "only %d rounds of 3 searches in 2 s", i);
	bidx_free(x);
}

struct adder {
	struct bidx *x;
	uint64_t n;
	atomic_uint_fast64_t done;	/* members 0..done-1 of the order */
	uint64_t *order;
};

static void *add_all(void *arg)
{
	struct adder *a = arg;

	for (uint64_t i = 0; i < a->n; i++) {
		bidx_add(a->x, a->order[i]);
		atomic_store(&a->done, i + 1);
	}
	return NULL;
}

/* Invariant 3 while another thread adds: a member added before the
 * search began is never missed. */
Test(bidx, concurrent_adds_are_never_missed)
{
	struct adder a = { .n = 20000 };
	uint64_t st = 99, size = 1u << 22;
	pthread_t th;

	cr_assert_eq(bidx_create(size, &a.x), 0);
	a.order = malloc(a.n * sizeof(*a.order));
	for (uint64_t i = 0; i < a.n; i++)
		a.order[i] = rnd(&st) % size;
	cr_assert_eq(pthread_create(&th, NULL, add_all, &a), 0);
	while (atomic_load(&a.done) < a.n) {
		uint64_t k = atomic_load(&a.done), b;

		if (!k)
			continue;
		b = a.order[rnd(&st) % k];
		cr_assert_leq(bidx_next(a.x, b - b % 50), b);
		cr_assert_eq(bidx_next(a.x, b), b);
	}
	pthread_join(th, NULL);
	free(a.order);
	bidx_free(a.x);
}
