/* Unit tests for snapshot/ctlmsg.c: request framing, split and decode,
 * encoding round trips. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "snapshot/ctlmsg.h"

Test(ctlmsg, frame_finds_the_line)
{
	char buf[] = "list\nrest";

	cr_assert_eq(ctlmsg_frame(buf, strlen(buf)), 4);
	cr_assert_str_eq(buf, "list");
}

Test(ctlmsg, frame_waits_for_the_newline)
{
	char buf[] = "list";

	cr_assert_eq(ctlmsg_frame(buf, 4), -EAGAIN);
	cr_assert_eq(ctlmsg_frame(buf, 0), -EAGAIN);
}

/* Regression: a NUL before the newline made the daemon's control thread
 * dereference NULL (strchr stopped at the NUL the memchr had passed). */
Test(ctlmsg, frame_rejects_nul_before_newline)
{
	char buf[] = "li\0st\n";

	cr_assert_eq(ctlmsg_frame(buf, sizeof(buf) - 1), -EINVAL);
	char nul_only[] = "\0\n";

	cr_assert_eq(ctlmsg_frame(nul_only, 2), -EINVAL);
	char after[] = "list\n\0";

	cr_assert_eq(ctlmsg_frame(after, sizeof(after) - 1), 4);
}

Test(ctlmsg, parse_splits_and_decodes)
{
	char line[] = "mount c%2F1 /a%20b";
	char *argv[CTLMSG_ARGS];

	cr_assert_eq(ctlmsg_parse(line, argv), 3);
	cr_assert_str_eq(argv[0], "mount");
	cr_assert_str_eq(argv[1], "c/1");
	cr_assert_str_eq(argv[2], "/a b");
}

Test(ctlmsg, parse_rejects_malformed)
{
	static const char *bad[] = {
		"", " ", "list ", " list", "a  b", "a%", "a%4", "a%zz",
		"a%00b", "a\tb", "a\rb", "a b\x01", "caf\xc3\xa9",
	};
	char *argv[CTLMSG_ARGS], line[64];

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		strcpy(line, bad[k]);
		cr_assert_eq(ctlmsg_parse(line, argv), -EINVAL, "'%s'", bad[k]);
	}
}

/* line = "a a ... a", n arguments */
static void args_line(char *line, int n)
{
	size_t o = 0;

	for (int k = 0; k < n; k++)
		o += (size_t)sprintf(line + o, "%sa", k ? " " : "");
}

Test(ctlmsg, parse_bounds_arguments_and_length)
{
	static char line[CTLMSG_MAX + 2];
	char *argv[CTLMSG_ARGS];

	args_line(line, CTLMSG_ARGS);
	cr_assert_eq(ctlmsg_parse(line, argv), CTLMSG_ARGS);
	args_line(line, CTLMSG_ARGS + 1);
	cr_assert_eq(ctlmsg_parse(line, argv), -EINVAL, "too many arguments");
	memset(line, 'x', CTLMSG_MAX);
	line[CTLMSG_MAX] = '\0';
	cr_assert_eq(ctlmsg_parse(line, argv), -EINVAL, "too long");
	line[CTLMSG_MAX - 1] = '\0';
	cr_assert_eq(ctlmsg_parse(line, argv), 1);
}

Test(ctlmsg, add_then_parse_round_trips_every_byte)
{
	char arg[256], line[1024] = "";
	char *argv[CTLMSG_ARGS];

	for (int c = 1; c < 256; c++)
		arg[c - 1] = (char)c;
	arg[255] = '\0';
	cr_assert_eq(ctlmsg_add(line, sizeof(line), "verb"), 0);
	cr_assert_eq(ctlmsg_add(line, sizeof(line), arg), 0);
	cr_assert_eq(ctlmsg_parse(line, argv), 2);
	cr_assert_str_eq(argv[1], arg);
	cr_assert_eq(ctlmsg_add(line, 16, arg), -ENAMETOOLONG);
}

/* Root's daemons listen only under /run/swafs; a user's in its own dirs. */
Test(ctlmsg, socket_dirs_in_the_order_swactl_tries)
{
	char dirs[CTLMSG_DIRS_MAX][CTLMSG_PATH_MAX], name[32];

	cr_assert_eq(ctlmsg_socket_dirs(0, "/run/user/0", dirs,
					CTLMSG_DIRS_MAX), 1);
	cr_assert_str_eq(dirs[0], "/run/swafs");
	cr_assert_eq(ctlmsg_socket_dirs(1000, "/run/user/1000", dirs,
					CTLMSG_DIRS_MAX), 4);
	cr_assert_str_eq(dirs[1], "/run/user/1000/swafs");
	cr_assert_str_eq(dirs[2], "/run/user/1000/swafs");
	cr_assert_str_eq(dirs[3], "/tmp/swafs-1000");
	/* a relative $XDG_RUNTIME_DIR is ignored */
	cr_assert_eq(ctlmsg_socket_dirs(1000, "run", dirs, CTLMSG_DIRS_MAX), 3);
	cr_assert_str_eq(dirs[1], "/run/user/1000/swafs");
	ctlmsg_socket_name(makedev(0, 45), name, sizeof(name));
	cr_assert_str_eq(name, "0:45.sock");
}
