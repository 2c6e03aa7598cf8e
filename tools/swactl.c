/*
 * swactl - take checkpoints of a swafs live tree, mount their views, list
 * and release them, run sync groups, save, verify and restore.  One
 * cmd_<verb>() (or module) per subcommand; exit codes: 0 done, 1 failed,
 * 2 usage, 3 wait time exceeded, 4 done with objects skipped, 5-7 sync
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
#include "tools/evlog.h"
#include "tools/report.h"
#include "tools/restore.h"
#include "tools/save.h"
#include "tools/swactl.h"
#include "tools/sync.h"
#include "tools/take.h"
#include "tools/verify.h"

#define SWACTL_VERSION "0.1.0"

static const char help_checkpoint[] =
"  checkpoint MNT... --name NAME [--retain saved|all] [--keep]\n"
"             [--keep-for AGE]\n"
"             [--boundary-wait SECS] [--others-wait SECS] [--wait SECS]\n"
"             [--path SUBDIR]...\n"
"             [--pre CMD] [--post CMD]\n"
"             [--sync ID] [--json]\n"
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
"      --keep-for AGE (90s, 30m, 12h, 7d): --keep, but release it AGE\n"
"        after its instant at the latest (a keep-expired event says so).\n"
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
"      --json: print what was taken as one JSON object: name, and per\n"
"        tree its mount, pause_us and T (t_ns, ns since the epoch).\n";

static const char help_mount[] =
"  mount MNT NAME DIR [--json]\n"
"      mount a read-only view of checkpoint NAME on DIR; `umount DIR`\n"
"      ends it and, unless --keep, releases the checkpoint.  DIR may hold\n"
"      no symlink; the directories above it must belong to root or to\n"
"      you (writable by others only if sticky, like /tmp), and DIR must\n"
"      be yours unless you are root.  --json prints name, mount and\n"
"      view as one JSON object.\n";

static const char help_release[] =
"  release MNT NAME      release checkpoint NAME now\n";

static const char help_list[] =
"  list MNT [--json]     list the checkpoints of MNT\n";

static const char help_events[] =
"  events MNT [--follow] [--since WHEN] [--name NAME] [-n N]\n"
"      print the mount's events (JSON Lines): those kept in memory (the\n"
"      last 1024), or the last N; --follow then waits for new ones.\n"
"      --since: only those at or after WHEN, an age (30s, 10m, 2h, 1d)\n"
"      or a UTC time YYYY-MM-DDTHH:MM[:SS]; --name: only checkpoint\n"
"      NAME's.\n";

static const char help_status[] =
"  status MNT [NAME] [--json|--watch]\n"
"      progress of the checkpoints (or of NAME): state, age, T size,\n"
"      bytes saved so far, files released, store use, rate and ETA.\n"
"      --watch (a terminal only) redraws a progress bar every second\n"
"      until the checkpoint ends or ^C; --json prints a JSON array.\n"
"      An unknown NAME exits 1.\n";

static const char help_history[] =
"  history MNT [--json]  checkpoints that ended or failed, kept for the\n"
"      mount's keep_days (outcome, duration, bytes captured, peak store)\n";

static const char help_sync[] =
"  sync start ID --count N [--wait SECS]\n"
"      start sync group ID for N jobs (1-64); it waits SECS (default\n"
"      120, 'nomax' for none) from now until all have joined and are\n"
"      held, else every job exits 3 and none keeps a checkpoint.\n"
"  sync end ID           end group ID: each job not past its instant\n"
"                        fails (exit 1) and keeps no checkpoint\n"
"  sync list [--json]    the active sync groups\n";

static const char help_save[] =
"  save MNT --name NAME [checkpoint options] -- CMD ARGS...\n"
"  save MNT --name NAME [checkpoint options] --to DIR... [--compress\n"
"       zstd|lz4|none] [--streams K] [--copies 2] [--dry-run]\n"
"      take checkpoint NAME (--retain, --keep, --keep-for, --wait,\n"
"      --boundary-wait, --others-wait, --path as for checkpoint), mount\n"
"      its view on a private directory, then either run CMD with each\n"
"      {} replaced by the view's path (and SWAFS_VIEW set) and exit with\n"
"      its status, or write pax archives\n"
"      DIR/NAME.S.pax[.zst|.lz4] of the view with a manifest\n"
"      DIR/NAME.manifest beside them; then unmount and release, also on\n"
"      failure, ^C or SIGTERM.  --streams K (1-64, default 1): K archives\n"
"      written in parallel, balanced by bytes; --copies 2: each stream\n"
"      to two targets at once, a failing copy ends in exit 4 and leaves\n"
"      the other; --compress (default zstd).  --dry-run takes no\n"
"      checkpoint: checks the targets and their room, prints the plan\n"
"      and an estimate.  Exit 4: objects skipped (each named).\n";

static const char help_verify[] =
"  verify ARCHIVE... (--manifest FILE | --against MNT NAME)\n"
"      compare an archive set with its manifest, or with checkpoint NAME\n"
"      of MNT while it lives (taken with --retain all); exit 1 lists\n"
"      every difference.\n";

static const char help_restore[] =
"  restore ARCHIVE... --to DIR [PATH...] [--dry-run]\n"
"      restore all of an archive set, or the PATHs (and what they hold),\n"
"      under DIR (made if missing): contents, holes, modes, owners,\n"
"      times, xattrs, ACLs, hard links.  --dry-run lists what would be\n"
"      restored.\n";

static const char help_footer[] =
"Names and sync group IDs match [A-Za-z0-9._-]{1,64}.  Exit status:\n"
"0 done, 1 failed, 2 usage error, 3 wait time exceeded, 4 done with\n"
"objects skipped or a copy failed (save, restore), 5 sync group\n"
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

const char *printable(const char *s)
{
	static _Thread_local char buf[128];	/* save's streams print too */
	size_t k;

	for (k = 0; s[k] && k < sizeof(buf) - 1; k++)
		buf[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
	buf[k] = '\0';
	return buf;
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

/*
 * Run a --pre or --post command.  Returns its exit status (1 when it could
 * not run or died of a signal); on failure why says how, for the caller's
 * one line.
 */
static int run_hook(const char *cmd, char *why, size_t size)
{
	int st;

	fflush(stdout);
	st = system(cmd);
	if (st == -1) {
		snprintf(why, size, "cannot be run: %s", strerror(errno));
		return 1;
	}
	if (WIFSIGNALED(st)) {
		snprintf(why, size, "killed by signal %d", WTERMSIG(st));
		return 1;
	}
	snprintf(why, size, "exited %d", WEXITSTATUS(st));
	return WEXITSTATUS(st);
}

static char take_wait[32] = "120000", take_boundary[32] = "off",
	    take_others[32];

/* --keep-for AGE: --keep, released AGE after T at the latest. */
static int parse_keep_for(const char *arg, struct take_req *r)
{
	static char ms[32];
	double secs;

	if (parse_age(arg, 365.0 * 86400, &secs) < 0 || secs < 0.001)
		return -1;
	snprintf(ms, sizeof(ms), "%.0f", secs * 1000);
	r->keep = 1;
	r->keep_for = ms;
	return 0;
}

static void take_defaults(struct take_req *r)
{
	if (!r->wait) {
		r->retain = "saved";
		r->wait = take_wait;
		r->boundary = take_boundary;
	}
}

int take_option(int c, char *arg, struct take_req *r)
{
	take_defaults(r);
	if (c == 'n')
		r->name = arg;
	else if (c == 'r')
		r->retain = arg;
	else if (c == 'k')
		r->keep = 1;
	else if (c == 'K' && parse_keep_for(arg, r) < 0)
		return usage_error("invalid --keep-for '%s': want an age "
				   "(90s, 30m, 12h, 7d) up to 365d",
				   printable(arg));
	else if (c == 'p' && r->npaths == TAKE_SCOPE_MAX)
		return usage_error("at most %d --path", TAKE_SCOPE_MAX);
	else if (c == 'p')
		r->paths[r->npaths++] = arg;
	else if (c == 'w' && parse_wait(arg, take_wait, sizeof(take_wait)))
		return usage_error("invalid --wait '%s': want seconds "
				   "or 'nomax'", printable(arg));
	else if (c == 't' && parse_wait(arg, take_boundary,
					sizeof(take_boundary)))
		return usage_error("invalid --boundary-wait '%s': want "
				   "seconds or 'nomax'", printable(arg));
	else if (c == 'o' && (parse_wait(arg, take_others,
					 sizeof(take_others)) ||
			      !strcmp(take_others, "nomax")))
		return usage_error("invalid --others-wait '%s': want seconds",
				   printable(arg));
	else if (c == 'o')
		r->others = take_others;
	else if (!strchr("nrkKpwt", c))
		return -1;
	return 0;
}

int take_check(const char *verb, struct take_req *r)
{
	take_defaults(r);
	if (!r->name)
		return usage_error("%s wants --name NAME", verb);
	if (!parse_name_ok(r->name))
		return usage_error("invalid checkpoint name '%s': want "
				   "[A-Za-z0-9._-]{1,64}",
				   printable(r->name));
	if (strcmp(r->retain, "saved") && strcmp(r->retain, "all"))
		return usage_error("invalid --retain '%s': want saved or all",
				   printable(r->retain));
	if (r->others && !strcmp(r->boundary, "off"))
		return usage_error("--others-wait wants --boundary-wait");
	return 0;
}

/* Parse checkpoint options into r; returns 0 or swactl's usage exit. */
static int parse_checkpoint(int argc, char **argv, struct take_req *r,
			    const char **pre, const char **post,
			    const char **sync)
{
	static const struct option opts[] = {
		TAKE_OPTIONS,
		{ "pre", required_argument, NULL, 'b' },
		{ "post", required_argument, NULL, 'a' },
		{ "sync", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	int c, rc;

	opterr = 0;	/* one line per error: ours; ':' tells a missing value */
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if ((rc = take_option(c, optarg, r)) >= 0) {
			if (rc)
				return rc;
		} else if (c == 'b')
			*pre = optarg;
		else if (c == 'a')
			*post = optarg;
		else if (c == 's' && !parse_name_ok(optarg))
			return usage_error("invalid sync group ID '%s': want "
					   "[A-Za-z0-9._-]{1,64}",
					   printable(optarg));
		else if (c == 's')
			*sync = optarg;
		else if (c == 'j')
			r->json = 1;
		else if (c == ':')
			return usage_error("option '%s' wants a value",
					   printable(argv[optind - 1]));
		else if (c == '?')
			return usage_error("unknown checkpoint option '%s'",
					   printable(argv[optind - 1]));
	}
	if (optind >= argc)
		return usage_error("checkpoint wants at least one mount point");
	return take_check("checkpoint", r);
}

struct pre_hook {
	const char *cmd;	/* or NULL */
	const char *name;
	bool quiet;		/* stdout is for --json alone */
};

/* Run --pre if given; 0, or 1 when it failed (reported). */
static int run_pre(void *arg)
{
	const struct pre_hook *h = arg;
	char why[128];

	if (!h->cmd)
		return 0;
	if (!run_hook(h->cmd, why, sizeof(why))) {
		if (!h->quiet)
			printf("--pre command exited 0\n");
		return 0;
	}
	fprintf(stderr, "swactl: checkpoint %s not taken: the --pre command "
		"%s\n", h->name, why);
	return 1;
}

/* Run --post; 0, or 1 when it failed (reported). */
static int run_post(const char *cmd, bool quiet)
{
	char why[128];

	if (run_hook(cmd, why, sizeof(why))) {
		fprintf(stderr, "swactl: the --post command %s\n", why);
		return 1;
	}
	if (!quiet)
		printf("--post command exited 0\n");
	return 0;
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
	struct pre_hook hook = { .cmd = pre, .name = r.name, .quiet = r.json };

	if (rc)
		return rc;
	if (sync)
		rc = sync_join(sync, &r, argv + optind, argc - optind,
			       run_pre, &hook);
	else if (!(rc = run_pre(&hook)))
		rc = take_all(&r, argv + optind, argc - optind, NULL, NULL);
	if (post && run_post(post, r.json) && rc == 0)
		rc = 1;
	return rc;
}

/*
 * DIR as an absolute path with "." and ".." folded away by name, without
 * resolving anything: symlinks are not followed here but refused by the
 * daemon, which resolves DIR itself (fs/vmount.h).  Returns 0 or -1.
 */
static int view_dir_path(const char *in, char *out, size_t size)
{
	char buf[4096], *save = NULL, *name;
	size_t n = 0;

	if (in[0] == '/')
		snprintf(buf, sizeof(buf), "%s", in);
	else if (!getcwd(buf, sizeof(buf)) ||
		 strlen(buf) + strlen(in) + 2 > sizeof(buf))
		return -1;
	else
		strcat(strcat(buf, "/"), in);
	for (name = strtok_r(buf, "/", &save); name;
	     name = strtok_r(NULL, "/", &save)) {
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			while (n > 0 && out[--n] != '/')
				;
			continue;
		}
		if (n + strlen(name) + 2 > size)
			return -1;
		n += (size_t)sprintf(out + n, "/%s", name);
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

static int cmd_mount(int argc, char **argv)
{
	bool json = argc == 5 && !strcmp(argv[4], "--json");
	char dir[4096];
	int rc;

	if (argc != 4 && !json)
		return usage_error("mount wants MNT NAME DIR [--json]");
	if (!parse_name_ok(argv[2]))
		return usage_error("invalid checkpoint name '%s'", printable(argv[2]));
	if (view_dir_path(argv[3], dir, sizeof(dir)) < 0) {
		fprintf(stderr, "swactl: cannot use '%s' as view directory: "
			"path too long\n", printable(argv[3]));
		return 1;
	}
	rc = ctl_ask(argv[1], 3, (char *[]){ "mount", argv[2], dir }, false,
		     NULL);
	if (rc == 0 && json) {
		printf("{\"name\":\"%s\",\"mount\":", argv[2]);
		report_json_str(argv[1]);
		printf(",\"view\":");
		report_json_str(dir);
		printf("}\n");
	} else if (rc == 0) {
		printf("view of %s mounted on %s\n", argv[2], dir);
	}
	return rc;
}

static int cmd_release(int argc, char **argv)
{
	if (argc != 3)
		return usage_error("release wants MNT NAME");
	if (!parse_name_ok(argv[2]))
		return usage_error("invalid checkpoint name '%s'", printable(argv[2]));
	return ctl_ask(argv[1], 2, (char *[]){ "release", argv[2] }, false,
		       NULL);
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
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'c' && parse_u64(optarg, 1, SYNC_COUNT_MAX, &count))
			return usage_error("invalid --count '%s': want 1 to %d",
					   printable(optarg), SYNC_COUNT_MAX);
		else if (c == 'w' && parse_wait(optarg, wait, sizeof(wait)))
			return usage_error("invalid --wait '%s': want seconds "
					   "or 'nomax'", printable(optarg));
		else if (c == ':')
			return usage_error("option '%s' wants a value",
					   printable(argv[optind - 1]));
		else if (c == '?')
			return usage_error("unknown sync start option '%s'",
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
		report_json_line(record, l->first);
	} else {
		sscanf(record, "id=%79s count=%u joined=%u age_s=%lld "
		       "wait_left_s=%23s pid=%d", id, &count, &joined, &age,
		       left, &pid);
		printf("%-20s %u of %u jobs joined  age %llds  wait left %s%s"
		       "  coordinator pid %d\n", id, joined, count, age,
		       strcmp(left, "null") ? left : "nomax",
		       strcmp(left, "null") ? "s" : "", pid);
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

static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{ "checkpoint", cmd_checkpoint, help_checkpoint },
	{ "mount", cmd_mount, help_mount },
	{ "release", cmd_release, help_release },
	{ "list", report_list, help_list },
	{ "events", evlog_run, help_events },
	{ "status", report_status, help_status },
	{ "history", report_history, help_history },
	{ "sync", cmd_sync, help_sync },
	{ "save", save_main, help_save },
	{ "verify", verify_main, help_verify },
	{ "restore", restore_main, help_restore },
};

static const struct command *command_named(const char *name)
{
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(name, commands[k].name))
			return &commands[k];
	return NULL;
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/*
 * swactl --help, swactl help [CMD], swactl CMD ... --help.  Each help text
 * starts with two spaces and the command's own usage line.
 */
static int help(const struct command *c)
{
	if (c) {
		printf("usage: swactl %s", c->help + 2);
		return 0;
	}
	fputs("usage: swactl COMMAND [ARGS]\n\n", stdout);
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		fputs(commands[k].help, stdout);
	printf("  help [COMMAND]        this text, or COMMAND's part of it\n\n%s",
	       help_footer);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c = argc == 2 ? command_named(argv[1]) : NULL;

	if (argc > 2 || (argc == 2 && !c))
		return usage_error("help wants no argument or one of checkpoint, "
				   "mount, release, list, events, status, "
				   "history, sync, save, verify, restore");
	return help(c);
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2)
		return usage_error("no command given");
	if (is_help(argv[1]))
		return help(NULL);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("swactl %s\n", SWACTL_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help"))
		return cmd_help(argc - 1, argv + 1);
	c = command_named(argv[1]);
	if (!c)
		return usage_error("unknown command '%s'", printable(argv[1]));
	for (int k = 2; k < argc; k++)
		if (is_help(argv[k]))
			return help(c);
	if (ctl_timeout_load() < 0)
		return usage_error("invalid SWACTL_TIMEOUT '%s': want seconds",
				   printable(getenv("SWACTL_TIMEOUT")));
	return c->fn(argc - 1, argv + 1);
}
