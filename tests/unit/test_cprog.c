/* Unit tests for snapshot/cprog.c: T size states and the save rate over
 * a sliding window, with an injected clock. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "snapshot/cprog.h"

#define S 1000000000ull

static struct cprog *p;

static void setup(void)
{
	cr_assert_eq(cprog_create(&p), 0);
}

static void teardown(void)
{
	cprog_free(p);
}

Test(cprog, tsize_unknown_until_done, .init = setup, .fini = teardown)
{
	uint64_t b = 1, f = 1;

	cr_assert_eq(cprog_tsize(p, &b, &f), CPROG_COMPUTING);
	cr_assert_eq(b, 0);
	cprog_set_tsize(p, CPROG_DONE, 12345, 7);
	cr_assert_eq(cprog_tsize(p, &b, &f), CPROG_DONE);
	cr_assert_eq(b, 12345);
	cr_assert_eq(f, 7);
	cprog_set_tsize(p, CPROG_FAILED, 1, 1);
	cr_assert_eq(cprog_tsize(p, &b, &f), CPROG_FAILED);
	cr_assert_eq(b, 0);
	cr_assert_str_eq(cprog_tsize_name(CPROG_COMPUTING), "computing");
}

Test(cprog, rate_unknown_without_reads, .init = setup, .fini = teardown)
{
	cr_assert_lt(cprog_rate(p, 100 * S, 0, 0), 0);
	cr_assert_lt(cprog_rate(p, 100 * S + S / 2, 0, 0), 0);
	cr_assert_lt(cprog_rate(p, 105 * S, 0, 0), 0, "a rate of nothing");
}

Test(cprog, rate_since_first_read, .init = setup, .fini = teardown)
{
	/* first byte at 100 s, 50 MB by 102 s: no older sample */
	cr_assert_float_eq(cprog_rate(p, 102 * S, 50000000, 100 * S),
			   25000000.0, 1.0);
}

Test(cprog, rate_over_last_window, .init = setup, .fini = teardown)
{
	double r = 0;

	/* 1 MB/s for 30 s, then 10 MB/s: the rate follows within 10 s */
	for (uint64_t s = 0; s <= 30; s++)
		r = cprog_rate(p, (100 + s) * S, s * 1000000, 100 * S);
	cr_assert_float_eq(r, 1000000.0, 1.0);
	for (uint64_t s = 1; s <= 10; s++)
		r = cprog_rate(p, (130 + s) * S, 30000000 + s * 10000000,
			       100 * S);
	cr_assert_float_eq(r, 10000000.0, 1.0, "rate %f", r);
	/* the reader stops: the rate falls to zero */
	for (uint64_t s = 1; s <= 10; s++)
		r = cprog_rate(p, (140 + s) * S, 130000000, 100 * S);
	cr_assert_float_eq(r, 0.0, 1e-9, "rate %f", r);
}
