/* Unit tests for snapshot/parse.c: strict parsing of outside values. */
#include <criterion/criterion.h>
#include <errno.h>

#include "snapshot/parse.h"

Test(parse, u64_accepts_plain_decimal)
{
	uint64_t v = 0;

	cr_assert_eq(parse_u64("0", 0, 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
}

Test(parse, u64_rejects_garbage_and_overflow)
{
	uint64_t v = 7;

	cr_assert_eq(parse_u64("", 0, 10, &v), -EINVAL);
	cr_assert_eq(parse_u64(" 1", 0, 10, &v), -EINVAL);
	cr_assert_eq(parse_u64("-1", 0, 10, &v), -EINVAL);
	cr_assert_eq(parse_u64("+1", 0, 10, &v), -EINVAL);
	cr_assert_eq(parse_u64("1x", 0, 10, &v), -EINVAL);
	cr_assert_eq(parse_u64("0x10", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_u64("18446744073709551616", 0, UINT64_MAX, &v),
		     -ERANGE);
	cr_assert_eq(parse_u64("11", 0, 10, &v), -ERANGE);
	cr_assert_eq(parse_u64("3", 4, 10, &v), -ERANGE);
	cr_assert_eq(v, 7, "a failed parse must not write the result");
}

Test(parse, size_suffixes_are_powers_of_1024)
{
	uint64_t v;

	cr_assert_eq(parse_size("4096", 0, UINT64_MAX, &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(parse_size("4k", 0, UINT64_MAX, &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(parse_size("2M", 0, UINT64_MAX, &v), 0);
	cr_assert_eq(v, 2ull << 20);
	cr_assert_eq(parse_size("3GiB", 0, UINT64_MAX, &v), 0);
	cr_assert_eq(v, 3ull << 30);
	cr_assert_eq(parse_size("1TB", 0, UINT64_MAX, &v), 0);
	cr_assert_eq(v, 1ull << 40);
}

Test(parse, size_rejects_bad_suffix_and_overflow)
{
	uint64_t v;

	cr_assert_eq(parse_size("1X", 0, UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(parse_size("1 K", 0, UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(parse_size("1KK", 0, UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(parse_size("K", 0, UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(parse_size("1.5G", 0, UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(parse_size("16777216T", 0, UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(parse_size("2G", 0, 1ull << 30, &v), -ERANGE);
}

Test(parse, secs_with_fraction)
{
	double v;

	cr_assert_eq(parse_secs("0", 10, &v), 0);
	cr_assert_float_eq(v, 0.0, 1e-9);
	cr_assert_eq(parse_secs("2.25", 10, &v), 0);
	cr_assert_float_eq(v, 2.25, 1e-9);
	cr_assert_eq(parse_secs("2.", 10, &v), -EINVAL);
	cr_assert_eq(parse_secs(".5", 10, &v), -EINVAL);
	cr_assert_eq(parse_secs("1e3", 10000, &v), -EINVAL);
	cr_assert_eq(parse_secs("nan", 10, &v), -EINVAL);
	cr_assert_eq(parse_secs("11", 10, &v), -ERANGE);
}

Test(parse, names)
{
	char long_name[66];

	cr_assert(parse_name_ok("nightly"));
	cr_assert(parse_name_ok("a.b_c-D9"));
	cr_assert_not(parse_name_ok(""));
	cr_assert_not(parse_name_ok("."));
	cr_assert_not(parse_name_ok(".."));
	cr_assert_not(parse_name_ok("a/b"));
	cr_assert_not(parse_name_ok("a b"));
	cr_assert_not(parse_name_ok("caf\xc3\xa9"));
	memset(long_name, 'x', 64);
	long_name[64] = '\0';
	cr_assert(parse_name_ok(long_name));
	long_name[64] = 'x';
	long_name[65] = '\0';
	cr_assert_not(parse_name_ok(long_name));
}

Test(parse, age_units_and_limits)
{
	double v;

	cr_assert_eq(parse_age("90", 1e9, &v), 0);
	cr_assert_float_eq(v, 90, 1e-9);
	cr_assert_eq(parse_age("30s", 1e9, &v), 0);
	cr_assert_float_eq(v, 30, 1e-9);
	cr_assert_eq(parse_age("10m", 1e9, &v), 0);
	cr_assert_float_eq(v, 600, 1e-9);
	cr_assert_eq(parse_age("1.5h", 1e9, &v), 0);
	cr_assert_float_eq(v, 5400, 1e-9);
	cr_assert_eq(parse_age("7d", 1e9, &v), 0);
	cr_assert_float_eq(v, 7 * 86400, 1e-9);
	cr_assert_eq(parse_age("2d", 86400, &v), -ERANGE);
	cr_assert_eq(parse_age("", 1e9, &v), -EINVAL);
	cr_assert_eq(parse_age("d", 1e9, &v), -EINVAL);
	cr_assert_eq(parse_age("5w", 1e9, &v), -EINVAL);
	cr_assert_eq(parse_age("5dd", 1e9, &v), -EINVAL);
	cr_assert_eq(parse_age("-5m", 1e9, &v), -EINVAL);
}
