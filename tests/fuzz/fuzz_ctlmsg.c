/*
 * fuzz_ctlmsg.c - libFuzzer harness for what a control request meets
 * before dispatch: the line framing of the bytes received
 * (ctlmsg_frame), the split and %-decode (ctlmsg_parse), and the strict
 * value parsers the verbs apply to their arguments (snapshot/parse.h).
 *
 * Beyond "no crash" it checks two properties: an argument list that
 * parsed survives ctlmsg_add + ctlmsg_parse unchanged, and no parser
 * accepts a value outside the range it was given.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "snapshot/ctlmsg.h"
#include "snapshot/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_values(const char *s)
{
	uint64_t v;
	double d;

	if (parse_u64(s, 3, 1000000, &v) == 0)
		assert(v >= 3 && v <= 1000000);
	if (parse_u64(s, 0, UINT64_MAX, &v) == 0)
		assert(s[0] >= '0' && s[0] <= '9');
	if (parse_size(s, 1 << 20, UINT64_MAX, &v) == 0)
		assert(v >= 1 << 20);
	if (parse_secs(s, 365.0 * 86400, &d) == 0)
		assert(d >= 0 && d <= 365.0 * 86400);
	if (parse_name_ok(s))
		assert(strlen(s) <= 64 && !strchr(s, '/') && !strchr(s, ' '));
}

/* Encode argv again and parse it back: the same arguments must come out. */
static void check_round_trip(int argc, char *argv[])
{
	static char line[CTLMSG_MAX + 1];
	char *again[CTLMSG_ARGS];
	int n;

	line[0] = '\0';
	for (int k = 0; k < argc; k++)
		if (ctlmsg_add(line, sizeof(line), argv[k]) < 0)
			return;	/* encoding may grow past CTLMSG_MAX */
	if (strlen(line) >= CTLMSG_MAX)
		return;
	n = ctlmsg_parse(line, again);
	assert(n == argc);
	for (int k = 0; k < n; k++)
		assert(!strcmp(again[k], argv[k]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[CTLMSG_MAX];
	char *argv[CTLMSG_ARGS];
	ssize_t len;
	int argc;

	if (size > sizeof(buf) - 1)
		size = sizeof(buf) - 1;	/* the daemon reads at most this */
	memcpy(buf, data, size);
	len = ctlmsg_frame(buf, size);
	if (len == -EAGAIN) {
		/* no newline: also try the bytes as one NUL-free line */
		buf[size] = '\0';
		len = (ssize_t)strlen(buf);
	}
	if (len < 0)
		return 0;
	assert((size_t)len == strlen(buf));
	argc = ctlmsg_parse(buf, argv);
	if (argc < 0)
		return 0;
	assert(argc >= 1 && argc <= CTLMSG_ARGS);
	for (int k = 0; k < argc; k++)
		check_values(argv[k]);
	check_round_trip(argc, argv);
	return 0;
}
