/*
 * swactl - take checkpoints of a swafs live tree, mount their views, list
 * and release them, run sync groups.  One cmd_<verb>() per subcommand;
 * exit codes: 0 done, 1 failed, 2 usage, 3 wait time exceeded, 5-7 sync
 * group errors (tools/sync.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snapshot/parse.h"
#include "tools/ctlclient.h"
#include "tools/report.h"
#include "tools/swactl.h"
#include "tools/sync.h"
#include "tools/take.h"

#define SWACTL_VERSION "0.1.0"

static const char usage_text[] =
"usage: swactl COMMAND [ARGS]\n"
"\n"
"  checkpoint MNT... --name NAME [--retain saved|all] [--keep]\n"
"             [--boundary-wait SECS] [--others-wait SECS] [--wait SECS]\n"
"             [--path SUBDIR]...\n"
"             [--pre CMD] [--post CMD]\n"
"             [--sync ID]\n"
"      take checkpoint NAME of the live tree at MNT; returns once the\n"
"      instant is reached and prints the pause writers saw.  Several\n"
"      MNTs get one common instant: all are drained and held, then all\n"
"      commit; if any fails, none keeps a checkpoint.\n"
"      --pre CMD runs first (a failure aborts), --post CMD runs after the\n"
"        instant, also when the checkpoint failed (sh -c CMD).\n"
"      --path SUBDIR (repeatable, up to 32): capture only these subtrees;\n"
"        views show only them (and the directories leading to them).\n"
"      --retain saved (default): a block's pre-image is dropped once the\n"
"        view has served it; all: keep every pre-image until release.\n"
"      --keep: keep the checkpoint after its last view is unmounted.\n"
"      --boundary-wait SECS: first wait until no application holds a\n"
"        shared flock on MNT/.swafs/txn (an open transaction), at most\n"
"        SECS ('nomax' for no limit; default: no boundary wait).  New\n"
"        lock requests wait meanwhile; the holders are named on stderr\n"
"        every 30 s (the daemon's boundary_report).  Exceeding it exits 3\n"
"        and changes nothing; the waiting lock requests go on.\n"
"      --others-wait SECS: with --boundary-wait, holders of users other\n"
"        than root and the mount's owner delay the checkpoint at most\n"
"        SECS; after that it waits only for root's and the owner's.\n"
"      --wait SECS: bound the drain of in-flight calls (default 120,\n"
"        'nomax' for none); exceeding it exits 3 and changes nothing.\n"
"      --sync ID: a job of sync group ID: wait until all its jobs have\n"
"        joined, then all reach one common instant (or none keeps a\n"
"        checkpoint); --pre runs once all have joined.\n"
"  mount MNT NAME DIR\n"
"      mount a read-only view of checkpoint NAME on DIR; `umount DIR`\n"
"      ends it and, unless --keep, releases the checkpoint.\n"
"  release MNT NAME      release checkpoint NAME now\n"
"  list MNT [--json]     list the checkpoints of MNT\n"
"  events MNT [--follow] print the mount's events (JSON Lines)\n"
"  status MNT [NAME] [--json|--watch]\n"
"      progress of the checkpoints (or of NAME): state, age, T size,\n"
"      bytes saved so far, files released, store use, rate and ETA.\n"
"      --watch (a terminal only) redraws a progress bar every second\n"
"      until the checkpoint ends or ^C; --json prints a JSON array.\n"
"      An unknown NAME exits 1.\n"
"  history MNT [--json]  checkpoints that ended or failed, kept for the\n"
"      mount's keep_days (outcome, duration, bytes captured, peak store)\n"
"\n"
"  sync start ID --count N [--wait SECS]\n"
"      start sync group ID for N jobs (1-64); it waits SECS (default\n"
"      120, 'nomax' for none) from now until all have joined and are\n"
"      held, else every job exits 3 and none keeps a checkpoint.\n"
"  sync end ID           end group ID: each job not past its instant\n"
"                        fails (exit 1) and keeps no checkpoint\n"
"  sync list [--json]    the active sync groups\n"
"\n"
"Names and sync group IDs match [A-Za-z0-9._-]{1,64}.  Exit status:\n"
"0 done, 1 failed, 2 usage error, 3 wait time exceeded, 5 sync group\n"
"already started, 6 sync group not started, 7 sync group in use (all\n"
"its jobs have joined).\n"
"\n"
"SWACTL_TIMEOUT=SECS: how long the daemon may take to answer (default 10,\n"
"beyond a checkpoint's --wait; 0: no limit); a daemon that does not\n"
"answer in time is a failure (exit 1).\n";

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("swactl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; see swactl --help\n", stderr);
	return EXIT_USAGE;
}

/* s for an error line: control characters shown as '?' (one line only). */
static const char *printable(const char *s)
{
	static char buf[128];
	size_t k;

	for (k = 0; s[k] && k < sizeof(buf) - 1; k++)
		buf[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
	buf[k] = '\0';
	return buf;
}

/* Send a request to MNT's daemon; the reply stream or NULL (reported). */
static FILE *request(const char *mnt, int argc, char *const argv[])
{
	char why[512];
	FILE *f;
	int fd = ctl_connect(mnt, why, sizeof(why));

	if (fd < 0) {
		fprintf(stderr, "swactl: %s\n", why);
		return NULL;
	}
	f = ctl_request(fd, argc, argv);
	if (!f) {
		fprintf(stderr, "swactl: cannot talk to the daemon of '%s': %s\n",
			mnt, strerror(errno));
		close(fd);
	}
	return f;
}

/* Run one request and print nothing but errors; returns the exit code. */
static int simple(const char *mnt, int argc, char *const argv[], char *rest,
		  size_t size)
{
	FILE *f = request(mnt, argc, argv);
	int rc;

	if (!f)
		return 1;
	rc = ctl_status(f, NULL, rest, size);
	fclose(f);
	return rc;
}

static int parse_wait(const char *s, char *out, size_t size)
{
	double secs;

	if (!strcmp(s, "nomax")) {
		snprintf(out, size, "nomax");
		return 0;
	}
	if (parse_secs(s, 365.0 * 86400, &secs))
		return -1;
	snprintf(out, size, "%llu", (unsigned long long)(secs * 1000 + 0.5));
	return 0;
}

/* Run a --pre or --post command; report how it ended.  Returns its status. */
static int run_hook(const char *what, const char *cmd)
{
	int st;

	fflush(stdout);
	st = system(cmd);
	if (st == -1) {
		fprintf(stderr, "swactl: cannot run %s command: %s\n", what,
			strerror(errno));
		return 1;
	}
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "swactl: %s command killed by signal %d\n",
			what, WTERMSIG(st));
		return 1;
	}
	if (WEXITSTATUS(st))
		fprintf(stderr, "swactl: %s command exited %d\n", what,
			WEXITSTATUS(st));
	else
		printf("%s command exited 0\n", what);
	return WEXITSTATUS(st);
}

/* Parse checkpoint options into r; returns 0 or swactl's usage exit. */
static int parse_checkpoint(int argc, char **argv, struct take_req *r,
			    const char **pre, const char **post,
			    const char **sync)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "retain", required_argument, NULL, 'r' },
		{ "keep", no_argument, NULL, 'k' },
		{ "wait", required_argument, NULL, 'w' },
		{ "boundary-wait", required_argument, NULL, 't' },
		{ "others-wait", required_argument, NULL, 'o' },
		{ "path", required_argument, NULL, 'p' },
		{ "pre", required_argument, NULL, 'b' },
		{ "post", required_argument, NULL, 'a' },
		{ "sync", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	static char wait[32] = "120000", boundary[32] = "off", others[32];
	int c;

	r->retain = "saved";
	r->wait = wait;
	r->boundary = boundary;
	opterr = 0;	/* one line per error: ours */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			r->name = optarg;
		else if (c == 'r')
			r->retain = optarg;
		else if (c == 'k')
			r->keep = 1;
		else if (c == 'b')
			*pre = optarg;
		else if (c == 'a')
			*post = optarg;
		else if (c == 's' && !parse_name_ok(optarg))
			return usage_error("invalid sync group ID '%s': want "
					   "[A-Za-z0-9._-]{1,64}",
					   printable(optarg));
		else if (c == 's')
			*sync = optarg;
		else if (c == 'p' && r->npaths == TAKE_SCOPE_MAX)
			return usage_error("at most %d --path", TAKE_SCOPE_MAX);
		else if (c == 'p')
			r->paths[r->npaths++] = optarg;
		else if (c == 'w' && parse_wait(optarg, wait, sizeof(wait)))
			return usage_error("invalid --wait '%s': want seconds "
					   "or 'nomax'", printable(optarg));
		else if (c == 't' && parse_wait(optarg, boundary,
						sizeof(boundary)))
			return usage_error("invalid --boundary-wait '%s': want "
					   "seconds or 'nomax'",
					   printable(optarg));
		else if (c == 'o' && (parse_wait(optarg, others,
						 sizeof(others)) ||
				      !strcmp(others, "nomax")))
			return usage_error("invalid --others-wait '%s': want "
					   "seconds", printable(optarg));
		else if (c == 'o')
			r->others = others;
		else if (c == '?' && optopt)
			return usage_error("option '%s' wants a value",
					   printable(argv[optind - 1]));
		else if (c == '?')
			return usage_error("unknown checkpoint option '%s'",
					   printable(argv[optind - 1]));
	}
	if (optind >= argc)
		return usage_error("checkpoint wants at least one mount point");
	if (!r->name || !parse_name_ok(r->name))
		return usage_error("invalid checkpoint name '%s': want "
				   "[A-Za-z0-9._-]{1,64}",
				   printable(r->name ? r->name : ""));
	if (strcmp(r->retain, "saved") && strcmp(r->retain, "all"))
		return usage_error("invalid --retain '%s': want saved or all",
				   printable(r->retain));
	if (r->others && !strcmp(r->boundary, "off"))
		return usage_error("--others-wait wants --boundary-wait");
	return 0;
}

struct pre_hook {
	const char *cmd;	/* or NULL */
	const char *name;
};

/* Run --pre if given; 0, or 1 when it failed (reported). */
static int run_pre(void *arg)
{
	const struct pre_hook *h = arg;

	if (!h->cmd || !run_hook("--pre", h->cmd))
		return 0;
	fprintf(stderr, "swactl: checkpoint %s not taken: the --pre command "
		"failed\n", h->name);
	return 1;
}

/*
 * --pre runs right before the drain (a failing one aborts: no
 * checkpoint): at once, or in a sync group once all its jobs have joined,
 * so applications are not quiesced while the group waits.  Then every
 * tree is taken at one instant, then --post runs, also when the
 * checkpoint failed, so applications quiesced by --pre always resume.
 */
static int cmd_checkpoint(int argc, char **argv)
{
	struct take_req r = { 0 };
	const char *pre = NULL, *post = NULL, *sync = NULL;
	int rc = parse_checkpoint(argc, argv, &r, &pre, &post, &sync);
	struct pre_hook hook = { .cmd = pre, .name = r.name };

	if (rc)
		return rc;
	if (sync)
		rc = sync_join(sync, &r, argv + optind, argc - optind,
			       run_pre, &hook);
	else if (!(rc = run_pre(&hook)))
		rc = take_all(&r, argv + optind, argc - optind, NULL, NULL);
	if (post && run_hook("--post", post) && rc == 0)
		rc = 1;
	return rc;
}

static int cmd_mount(int argc, char **argv)
{
	char dir[4096], rest[256];
	int rc;

	if (argc != 4)
		return usage_error("mount wants MNT NAME DIR");
	if (!parse_name_ok(argv[2]))
		return usage_error("invalid checkpoint name '%s'", printable(argv[2]));
	if (!realpath(argv[3], dir)) {
		fprintf(stderr, "swactl: cannot use '%s' as view directory: "
			"%s\n", argv[3], strerror(errno));
		return 1;
	}
	rc = simple(argv[1], 3, (char *[]){ "mount", argv[2], dir }, rest,
		    sizeof(rest));
	if (rc == 0)
		printf("view of %s mounted on %s\n", argv[2], dir);
	return rc;
}

static int cmd_release(int argc, char **argv)
{
	char rest[256];

	if (argc != 3)
		return usage_error("release wants MNT NAME");
	if (!parse_name_ok(argv[2]))
		return usage_error("invalid checkpoint name '%s'", printable(argv[2]));
	return simple(argv[1], 2, (char *[]){ "release", argv[2] }, rest,
		      sizeof(rest));
}

/* Print one "k=v k=v" record as a JSON object (values are plain). */
static void print_json_record(char *line, bool first)
{
	char *save = NULL;

	printf("%s{", first ? "" : ",");
	for (char *kv = strtok_r(line, " \n", &save); kv;
	     kv = strtok_r(NULL, " \n", &save)) {
		char *eq = strchr(kv, '=');
		bool num;

		if (!eq)
			continue;
		*eq = '\0';
		num = eq[1] && strspn(eq + 1, "0123456789") == strlen(eq + 1);
		printf("%s\"%s\":%s%s%s", kv == line ? "" : ",", kv,
		       num ? "" : "\"", eq + 1, num ? "" : "\"");
	}
	printf("}");
}

static void print_human_record(char *line)
{
	char name[80] = "", retain[16] = "";
	long t = 0;
	unsigned long pause = 0, bytes = 0, views = 0;
	int valid = 0;
	char when[32];
	struct tm tm;

	sscanf(line, "name=%79s t=%ld pause_us=%lu valid=%d views=%lu "
	       "retain=%15s", name, &t, &pause, &valid, &views, retain);
	if (strstr(line, "captured_bytes="))
		sscanf(strstr(line, "captured_bytes="), "captured_bytes=%lu",
		       &bytes);
	localtime_r(&(time_t){ t }, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%-20s %s  %-7s views=%lu retain=%s pause=%luus captured=%lu\n",
	       name, when, valid ? "active" : "INVALID", views, retain, pause,
	       bytes);
}

static int cmd_list(int argc, char **argv)
{
	bool json = argc == 3 && !strcmp(argv[2], "--json");
	char rest[256], line[1024];
	bool first = true;
	FILE *f;
	int rc;

	if (argc != 2 && !json)
		return usage_error("list wants MNT [--json]");
	f = request(argv[1], 1, (char *[]){ "list" });
	if (!f)
		return 1;
	rc = ctl_status(f, NULL, rest, sizeof(rest));
	if (json && rc == 0)
		printf("[");
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		if (json)
			print_json_record(line, first);
		else
			print_human_record(line);
		first = false;
	}
	if (json && rc == 0)
		printf("]\n");
	fclose(f);
	return rc;
}

static int cmd_events(int argc, char **argv)
{
	bool follow = argc == 3 && !strcmp(argv[2], "--follow");
	char rest[256], line[4096];
	FILE *f;
	int rc;

	if (argc != 2 && !follow)
		return usage_error("events wants MNT [--follow]");
	f = request(argv[1], 3, (char *[]){ "events", "0", follow ? "1" : "0" });
	if (!f)
		return 1;
	rc = ctl_status(f, NULL, rest, sizeof(rest));
	if (follow)
		ctl_set_timeout(fileno(f), -1);	/* events come when they come */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (rc == 0 && fgets(line, sizeof(line), f))
		fputs(line, stdout);
	fclose(f);
	return rc;
}

/* sync start ID --count N [--wait SECS] (argv[0] is "start") */
static int cmd_sync_start(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	char wait[32] = "120000";
	uint64_t count = 0, ms = 0;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c' && parse_u64(optarg, 1, SYNC_COUNT_MAX, &count))
			return usage_error("invalid --count '%s': want 1 to %d",
					   printable(optarg), SYNC_COUNT_MAX);
		else if (c == 'w' && parse_wait(optarg, wait, sizeof(wait)))
			return usage_error("invalid --wait '%s': want seconds "
					   "or 'nomax'", printable(optarg));
		else if (c == '?')
			return usage_error("unknown or incomplete sync start "
					   "option '%s'",
					   printable(argv[optind - 1]));
	}
	if (optind != argc - 1 || !parse_name_ok(argv[optind]))
		return usage_error("sync start wants one ID matching "
				   "[A-Za-z0-9._-]{1,64}");
	if (!count)
		return usage_error("sync start wants --count N");
	if (strcmp(wait, "nomax"))
		parse_u64(wait, 0, UINT64_MAX, &ms);
	return sync_start(argv[optind], (unsigned)count,
			  strcmp(wait, "nomax") ? (int64_t)ms : -1);
}

struct group_list {
	bool json, first;
};

static void print_group(char *record, void *arg)
{
	struct group_list *l = arg;
	char id[80] = "", left[24] = "";
	unsigned count = 0, joined = 0;
	long long age = 0;
	int pid = 0;

	if (l->json) {
		print_json_record(record, l->first);
	} else {
		sscanf(record, "id=%79s count=%u joined=%u age=%lld "
		       "wait_left=%23s pid=%d", id, &count, &joined, &age,
		       left, &pid);
		printf("%-20s %u of %u jobs joined  age %llds  wait left %s%s"
		       "  coordinator pid %d\n", id, joined, count, age, left,
		       strcmp(left, "nomax") ? "s" : "", pid);
	}
	l->first = false;
}

static int cmd_sync(int argc, char **argv)
{
	struct group_list l = { .first = true };
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "start"))
		return cmd_sync_start(argc - 1, argv + 1);
	if (!strcmp(sub, "end") && argc == 3 && parse_name_ok(argv[2]))
		return sync_end(argv[2]);
	if (!strcmp(sub, "end"))
		return usage_error("sync end wants one ID matching "
				   "[A-Za-z0-9._-]{1,64}");
	l.json = argc == 3 && !strcmp(argv[2], "--json");
	if (strcmp(sub, "list") || (argc != 2 && !l.json))
		return usage_error("sync wants start ID --count N [--wait "
				   "SECS], end ID or list [--json]");
	if (l.json)
		printf("[");
	sync_each(print_group, &l);
	if (l.json)
		printf("]\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "checkpoint", cmd_checkpoint }, { "mount", cmd_mount },
		{ "release", cmd_release }, { "list", cmd_list },
		{ "events", cmd_events }, { "status", report_status },
		{ "history", report_history },
		{ "sync", cmd_sync },
	};

	if (argc < 2)
		return usage_error("no command given");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("swactl %s\n", SWACTL_VERSION);
		return 0;
	}
	if (ctl_timeout_load() < 0)
		return usage_error("invalid SWACTL_TIMEOUT '%s': want seconds",
				   printable(getenv("SWACTL_TIMEOUT")));
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (!strcmp(argv[1], cmds[k].name))
			return cmds[k].fn(argc - 1, argv + 1);
	return usage_error("unknown command '%s'", printable(argv[1]));
}
