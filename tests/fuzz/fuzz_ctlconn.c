/*
 * fuzz_ctlconn.c - libFuzzer harness for the control server's path from
 * bytes to a worker (fs/ctl.c): a request line arriving in pieces of any
 * size (ctlconn_take + ctlmsg_frame, as the event loop reads), its split
 * (ctlmsg_parse), its kind (ctlconn_classify) and the caps a worker must
 * pass (ctlconn_admit/release), plus the events others see
 * (ctlconn_redact_events).
 *
 * Input: byte 0 picks the piece size, byte 1 the uid, the rest is what
 * the client sends.  Checked beyond "no crash": the line assembled from
 * pieces is the line framed from the whole; no piece takes a byte past
 * the '\n'; the caps are never exceeded and every use comes back; a
 * redacted line is only {"time":"...","event":"..."}, and redacting
 * twice changes nothing.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "snapshot/ctlconn.h"
#include "snapshot/ctlmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* As conn_read: pieces of step bytes, taken up to the '\n'. */
static ssize_t assemble(const char *in, size_t n, size_t step, char *line,
			size_t *used)
{
	size_t len = 0, at = 0;
	ssize_t r = -EAGAIN;

	while (at < n && len < CTLMSG_MAX - 1 && r == -EAGAIN) {
		size_t peek = n - at < step ? n - at : step, take;

		if (peek > CTLMSG_MAX - 1 - len)
			peek = CTLMSG_MAX - 1 - len;
		memcpy(line + len, in + at, peek);
		take = ctlconn_take(line + len, peek);
		assert(take >= 1 && take <= peek);
		assert(!memchr(line + len, '\n', take - 1));
		len += take;
		at += take;
		r = ctlmsg_frame(line, len);
	}
	*used = at;
	return r;
}

static void check_caps(uid_t uid, int argc, char *argv[])
{
	struct ctlconn_caps caps;
	struct ctlconn_table *t;
	struct ctlconn_kind kind;
	unsigned got = 0;
	bool priv = uid == 0 || uid == 1000;

	ctlconn_classify(argc, argv, &kind);
	assert(kind.use == CTLCONN_WORK || kind.use == CTLCONN_FOLLOW);
	ctlconn_default_caps(16, 8, &caps);
	if (ctlconn_create(&caps, &t) < 0)
		return;
	while (got < 4000 && ctlconn_admit(t, uid, priv, kind.use) == 0)
		got++;
	assert(got == (priv ? caps.total[kind.use] + caps.reserve[kind.use]
			    : caps.per_uid[kind.use]));
	assert(ctlconn_count_uid(t, uid, kind.use) == got);
	while (got--)
		ctlconn_release(t, uid, kind.use);
	assert(ctlconn_count(t, kind.use) == 0);
	ctlconn_free(t);
}

static void check_redact(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *again;
	size_t n;

	if (!buf)
		return;
	memcpy(buf, data, size);
	n = ctlconn_redact_events(buf, size);
	assert(n <= size + 1);
	for (size_t at = 0; at < n;) {
		char *nl = memchr(buf + at, '\n', n - at);

		assert(nl && nl - (buf + at) >= 2 && nl[-1] == '}' &&
		       nl[-2] == '"' && !strncmp(buf + at, "{\"time\":\"", 9));
		at = (size_t)(nl - buf) + 1;
	}
	again = malloc(n + 1);
	if (again) {
		memcpy(again, buf, n);
		assert(ctlconn_redact_events(again, n) == n &&
		       !memcmp(again, buf, n));
		free(again);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[CTLMSG_MAX], whole[CTLMSG_MAX];
	char *argv[CTLMSG_ARGS];
	size_t step, used, n;
	ssize_t len, want;
	uid_t uid;
	int argc;

	if (size < 2)
		return 0;
	check_redact(data + 2, size - 2);
	step = data[0] % 64 + 1;
	uid = data[1] % 4 == 0 ? 0 : 999 + data[1] % 4;
	data += 2;
	size -= 2;
	len = assemble((const char *)data, size, step, line, &used);
	n = size < CTLMSG_MAX - 1 ? size : CTLMSG_MAX - 1;
	memcpy(whole, data, n);
	want = ctlmsg_frame(whole, n);
	assert(len == want);
	if (len < 0)
		return 0;
	assert(used == (size_t)len + 1 && !strcmp(line, whole));
	argc = ctlmsg_parse(line, argv);
	if (argc > 0)
		check_caps(uid, argc, argv);
	return 0;
}
