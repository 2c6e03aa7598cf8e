/*
 * parse.c - strict parsers for values from outside.
 */
#include <errno.h>
#include <string.h>

#include "snapshot/parse.h"

#define PARSE_NAME_MAX 64

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Parse leading digits into *v; returns chars consumed, or -errno. */
static int parse_digits(const char *s, uint64_t *v)
{
	int k = 0;

	*v = 0;
	for (; is_digit(s[k]); k++) {
		unsigned d = (unsigned)(s[k] - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		*v = *v * 10 + d;
	}
	return k;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int k = parse_digits(s, &v);

	if (k < 0)
		return k;
	if (k == 0 || s[k] != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int size_shift(const char *suffix)
{
	static const char units[] = "KMGT";
	char c = (char)(suffix[0] & ~0x20);	/* upper case */
	const char *u;

	if (*suffix == '\0')
		return 0;
	if (c == '\0' || !(u = strchr(units, c)))
		return -EINVAL;
	suffix++;
	if (*suffix == 'i')
		suffix++;
	if (*suffix == 'B' || *suffix == 'b')
		suffix++;
	if (*suffix != '\0')
		return -EINVAL;
	return 10 * (int)(u - units + 1);
}

int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int k = parse_digits(s, &v), shift;

	if (k < 0)
		return k;
	if (k == 0)
		return -EINVAL;
	shift = size_shift(s + k);
	if (shift < 0)
		return shift;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	v <<= shift;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_secs(const char *s, double max, double *out)
{
	uint64_t whole;
	double v, scale = 0.1;
	int k = parse_digits(s, &whole);

	if (k <= 0)
		return k < 0 ? k : -EINVAL;
	v = (double)whole;
	if (s[k] == '.') {
		k++;
		if (!is_digit(s[k]))
			return -EINVAL;
		for (; is_digit(s[k]); k++, scale /= 10)
			v += (s[k] - '0') * scale;
	}
	if (s[k] != '\0')
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_age(const char *s, double max, double *out)
{
	static const struct { char unit; double secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	char num[32];
	size_t n = strlen(s);
	double v, scale = 1;
	int rc;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++)
		if (num[n - 1] == units[k].unit) {
			scale = units[k].secs;
			num[n - 1] = '\0';
		}
	rc = parse_secs(num, max / scale, &v);
	if (rc < 0)
		return rc;
	*out = v * scale;
	return 0;
}

bool parse_name_ok(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n >= 1 && n <= PARSE_NAME_MAX && s[n] == '\0' &&
	       strcmp(s, ".") && strcmp(s, "..");
}
