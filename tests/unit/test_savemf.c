/*
 * Unit tests for tools/manifest.c (save manifests: encoding, strict
 * decoding, comparison, loading) and tools/balance.c (stream balancing).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/balance.h"
#include "tools/manifest.h"

static char *encode(const struct mf_rec *r)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	cr_assert_not_null(f);
	cr_assert_eq(mf_write(f, r), 0);
	fclose(f);
	return buf;
}

Test(manifest, every_field_survives_a_round_trip)
{
	struct mf_rec r = {
		.path = strdup("dir with space/f%1\tx\n,=\\\xc3\xa9"),
		.type = 'f', .mode = 04755, .uid = 4242, .gid = 4294967295u,
		.size = 1ull << 40, .mtime_s = -5, .mtime_ns = 7,
		.has_hash = true, .hash = 0xfedcba9876543210ull,
		.link = strdup("a b"), .has_acl = true, .acl = 1,
	}, back;
	char *line, diff[256];

	cr_assert_eq(mf_xattr_add(&r, "user.z", 3), 0);
	cr_assert_eq(mf_xattr_add(&r, "user.a=b,c", 1), 0);
	cr_assert_eq(mf_xattr_add(&r, "user.m", 2), 0);
	cr_assert_eq(mf_xattr_add(&r, "user.m", 9), 0);
	r.error = strdup("EIO");
	line = encode(&r);
	cr_assert_eq(strchr(line, '\n') - line, (long)strlen(line) - 1,
		     "one line: %s", line);
	cr_assert_eq(strchr(line, '\t'), strrchr(line, '\t'));
	cr_assert_eq(mf_parse(line, &back), 0, "%s", line);
	cr_assert_str_eq(back.path, r.path);
	cr_assert_str_eq(back.link, "a b");
	cr_assert_str_eq(back.error, "EIO");
	free(r.error);
	free(back.error);
	r.error = back.error = NULL;	/* an error record differs from all */
	cr_assert_eq(mf_diff(&r, &back, diff, sizeof(diff)), 0, "%s", diff);
	cr_assert(strstr(back.xattr, "user.a%3db%2cc=") == back.xattr,
		  "sorted and encoded: %s", back.xattr);
	cr_assert(strstr(back.xattr, "user.m=") < strstr(back.xattr, "user.z="));
	cr_assert(strstr(back.xattr, "user.m=0000000000000002"),
		  "a name added twice keeps its first value: %s", back.xattr);
	free(line);
	mf_rec_free(&back);
	mf_rec_free(&r);
}

Test(manifest, symlinks_and_devices_round_trip)
{
	struct mf_rec l = { .path = strdup("sym"), .type = 'l', .mode = 0777,
			    .size = 9, .target = strdup("../a b\001") };
	struct mf_rec d = { .path = strdup("dev"), .type = 'c', .mode = 0600,
			    .rmajor = 1, .rminor = 3 };
	struct mf_rec back;
	char *line, diff[128];

	line = encode(&l);
	cr_assert_eq(mf_parse(line, &back), 0, "%s", line);
	cr_assert_str_eq(back.target, "../a b\001");
	cr_assert_eq(mf_diff(&l, &back, diff, sizeof(diff)), 0, "%s", diff);
	free(line);
	mf_rec_free(&back);
	line = encode(&d);
	cr_assert_eq(mf_parse(line, &back), 0, "%s", line);
	cr_assert_eq(back.rmajor, 1);
	cr_assert_eq(back.rminor, 3);
	free(line);
	mf_rec_free(&back);
	mf_rec_free(&l);
	mf_rec_free(&d);
}

Test(manifest, malformed_lines_are_refused)
{
	static const char *const bad[] = {
		"",
		"\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000",
		"nofields",
		"p\tmode=0644 uid=0 gid=0 mtime=0.000000000",
		"p\ttype=x mode=0644 uid=0 gid=0 mtime=0.000000000",
		"p\ttype=f mode=0844 uid=0 gid=0 mtime=0.000000000",
		"p\ttype=f mode=0644 uid=-1 gid=0 mtime=0.000000000",
		"p\ttype=f mode=0644 uid=4294967296 gid=0 mtime=0.000000000",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=0.5",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=x.000000000",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000 xxh3=12",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000 size=1x",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000 what=1",
		"p%zz\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000",
		"p%00\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000",
		"p%4\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000",
		"p\ttype=l mode=0777 uid=0 gid=0 mtime=0.000000000 target=a=b",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000 xattr=a=1",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000 "
		"xattr=a=0000000000000001,",
		"p\ttype=c mode=0644 uid=0 gid=0 mtime=0.000000000 rdev=1",
		"p\ttype=f mode=0644 uid=0 gid=0 mtime=0.000000000\nq",
	};
	struct mf_rec r;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		cr_assert_eq(mf_parse(bad[k], &r), -EINVAL, "accepted: %s",
			     bad[k]);
		cr_assert_null(r.path);
	}
}

Test(manifest, copies_are_deep)
{
	struct mf_rec a = { .path = strdup("p"), .type = 'l', .target = strdup("t"),
			    .link = strdup("l"), .xattr = strdup("a=0000000000000001"),
			    .error = strdup("EIO") }, b;
	char out[128];

	cr_assert_eq(mf_rec_copy(&a, &b), 0);
	cr_assert_neq(a.path, b.path);
	cr_assert_neq(a.target, b.target);
	cr_assert_eq(mf_diff(&a, &b, out, sizeof(out)), 1, "%s", out);
	cr_assert(strstr(out, "not saved (EIO"), "%s", out);
	mf_rec_free(&a);
	cr_assert_str_eq(b.xattr, "a=0000000000000001");
	mf_rec_free(&b);
}

Test(manifest, diff_names_each_field)
{
	struct mf_rec a = { .path = "x", .type = 'f', .mode = 0644,
			    .has_hash = true, .hash = 1, .size = 5 };
	struct mf_rec b = a;
	char out[256];

	b.mode = 0600;
	b.hash = 2;
	b.mtime_ns = 1;
	cr_assert_eq(mf_diff(&a, &b, out, sizeof(out)), 3);
	cr_assert(strstr(out, "mode 0644 != 0600"), "%s", out);
	cr_assert(strstr(out, "contents"), "%s", out);
	cr_assert(strstr(out, "mtime"), "%s", out);
	b = a;
	b.type = 'd';
	cr_assert_eq(mf_diff(&a, &b, out, sizeof(out)), 1);
	cr_assert(strstr(out, "type f != d"), "%s", out);
}

Test(manifest, load_sorts_and_finds_and_refuses_duplicates)
{
	char path[] = "/tmp/test_savemf.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	struct mf_set *s = NULL;
	char why[256];

	fprintf(f, MF_HEADER "\n");
	fprintf(f, "b\ttype=f mode=0644 uid=0 gid=0 size=0 "
		"mtime=1.000000000 xxh3=0000000000000001\n");
	fprintf(f, ".\ttype=d mode=0755 uid=0 gid=0 mtime=1.000000000\n");
	fflush(f);
	cr_assert_eq(mf_load(path, &s, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(mf_count(s), 2);
	cr_assert_str_eq(mf_at(s, 0)->path, ".");
	cr_assert_not_null(mf_find(s, "b"));
	cr_assert_null(mf_find(s, "c"));
	mf_set_free(s);
	fprintf(f, "b\ttype=d mode=0755 uid=0 gid=0 mtime=1.000000000\n");
	fflush(f);
	cr_assert_eq(mf_load(path, &s, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "two records"), "%s", why);
	fprintf(f, "c\ttype=d mode=0755\tuid=0\n");
	fflush(f);
	cr_assert_eq(mf_load(path, &s, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "line 5"), "%s", why);
	fclose(f);
	unlink(path);
}

Test(balance, every_unit_lands_and_the_spread_is_below_the_largest)
{
	uint64_t bytes[200], loads[7], sum = 0, sum_loads = 0, max = 0;
	unsigned out[200];

	srand(5);
	for (size_t k = 0; k < 200; k++) {
		bytes[k] = (uint64_t)rand() % 1000000;
		sum += bytes[k];
		max = bytes[k] > max ? bytes[k] : max;
	}
	cr_assert_eq(bal_assign(bytes, 200, 7, out, loads), 0);
	for (unsigned s = 0; s < 7; s++) {
		uint64_t mine = 0;

		for (size_t k = 0; k < 200; k++)
			if (out[k] == s)
				mine += bytes[k];
		cr_assert_eq(mine, loads[s]);
		sum_loads += loads[s];
	}
	cr_assert_eq(sum_loads, sum);
	for (unsigned s = 0; s < 7; s++)
		for (unsigned t = 0; t < 7; t++)
			cr_assert_leq(loads[s], loads[t] + max,
				      "stream %u: %lu, %u: %lu", s,
				      (unsigned long)loads[s], t,
				      (unsigned long)loads[t]);
}

Test(balance, one_big_file_and_many_small_ones)
{
	uint64_t bytes[11] = { 1000 }, loads[2];
	unsigned out[11];

	for (int k = 1; k < 11; k++)
		bytes[k] = 100;
	cr_assert_eq(bal_assign(bytes, 11, 2, out, loads), 0);
	cr_assert_eq(loads[0], 1000);
	cr_assert_eq(loads[1], 1000);
	for (int k = 1; k < 11; k++)
		cr_assert_eq(out[k], 1u, "small unit %d on the big stream", k);
}

Test(balance, one_stream_and_bad_counts)
{
	uint64_t bytes[3] = { 5, 0, 9 };
	unsigned out[3] = { 9, 9, 9 };

	cr_assert_eq(bal_assign(bytes, 3, 1, out, NULL), 0);
	cr_assert(out[0] == 0 && out[1] == 0 && out[2] == 0);
	cr_assert_eq(bal_assign(bytes, 3, 0, out, NULL), -EINVAL);
	cr_assert_eq(bal_assign(bytes, 3, BAL_STREAMS_MAX + 1, out, NULL),
		     -EINVAL);
	cr_assert_eq(bal_assign(bytes, 0, 4, out, NULL), 0);
}
