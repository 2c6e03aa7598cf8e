/*
 * save.c - `swactl save` (tools/save.h): options, the command form, the
 * dry run, and the archive form around tools/savejob.c.
 *
 * A dry run takes no checkpoint: it walks the live tree as it is now,
 * plans the streams, checks the targets and their room, and estimates
 * the time from a read of the largest file (at most SAMPLE_BYTES).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/parse.h"
#include "tools/save.h"
#include "tools/savejob.h"
#include "tools/saveview.h"
#include "tools/swactl.h"

#define SAMPLE_BYTES (64ull << 20)

struct save {
	struct take_req r;
	const char *mnt;
	struct sj_opts o;
	bool dry_run;
	char **cmd;		/* after "--", or NULL */
};

static int parse_number(const char *opt, const char *arg, uint64_t max,
			unsigned *out)
{
	uint64_t v;

	if (parse_u64(arg, 1, max, &v))
		return usage_error("invalid %s '%s': want 1 to %llu", opt,
				   printable(arg), (unsigned long long)max);
	*out = (unsigned)v;
	return 0;
}

static int add_target(struct save *s, char *dir)
{
	if (s->o.ntargets == SJ_TARGETS_MAX)
		return usage_error("at most %d targets", SJ_TARGETS_MAX);
	s->o.targets[s->o.ntargets++] = dir;
	return 0;
}

static int save_option(struct save *s, int c, char *arg, char **argv)
{
	int rc = take_option(c, arg, &s->r);

	if (rc >= 0)
		return rc;
	if (c == 'T')
		return add_target(s, arg);
	if (c == 'z' && strcmp(arg, "zstd") && strcmp(arg, "lz4") &&
	    strcmp(arg, "none"))
		return usage_error("invalid --compress '%s': want zstd, lz4 "
				   "or none", printable(arg));
	if (c == 'z')
		s->o.compress = arg;
	else if (c == 'S')
		return parse_number("--streams", arg, BAL_STREAMS_MAX,
				    &s->o.streams);
	else if (c == 'C')
		return parse_number("--copies", arg, 2, &s->o.copies);
	else if (c == 'd')
		s->dry_run = true;
	else if (c == ':')
		return usage_error("option '%s' wants a value",
				   printable(argv[optind - 1]));
	else
		return usage_error("unknown save option '%s'",
				   printable(argv[optind - 1]));
	return 0;
}

/* Options before "--"; the rest is the command.  0 or a usage exit. */
static int parse_save(int argc, char **argv, struct save *s)
{
	static const struct option opts[] = {
		TAKE_OPTIONS,
		{ "to", required_argument, NULL, 'T' },
		{ "compress", required_argument, NULL, 'z' },
		{ "streams", required_argument, NULL, 'S' },
		{ "copies", required_argument, NULL, 'C' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	int c, rc, end = 1;

	while (end < argc && strcmp(argv[end], "--"))
		end++;
	if (end < argc)
		s->cmd = argv + end + 1;
	s->o.compress = "zstd";
	s->o.streams = s->o.copies = 1;
	opterr = 0;
	while ((c = getopt_long(end, argv, ":", opts, NULL)) != -1)
		if ((rc = save_option(s, c, optarg, argv)))
			return rc;
	if (optind >= end)
		return usage_error("save wants a mount point");
	s->mnt = argv[optind++];
	for (; optind < end; optind++)	/* --to DIR1 DIR2 ... */
		if (!s->o.ntargets)
			return usage_error("unexpected argument '%s'",
					   printable(argv[optind]));
		else if ((rc = add_target(s, argv[optind])))
			return rc;
	rc = take_check("save", &s->r);
	s->o.name = s->r.name;
	if (rc)
		return rc;
	if (!s->cmd == !s->o.ntargets)
		return usage_error("save wants either --to DIR... or -- CMD "
				   "ARGS...");
	if (s->cmd && !s->cmd[0])
		return usage_error("save wants a command after '--'");
	if (s->cmd && s->dry_run)
		return usage_error("--dry-run goes with --to");
	return 0;
}

/* arg with every "{}" replaced by dir; NULL when out of memory. */
static char *substitute(const char *arg, const char *dir)
{
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);
	const char *at;

	if (!f)
		return NULL;
	while ((at = strstr(arg, "{}"))) {
		fprintf(f, "%.*s%s", (int)(at - arg), arg, dir);
		arg = at + 2;
	}
	fputs(arg, f);
	if (fclose(f))
		return NULL;
	return out;
}

/* In the child: signals back to normal, {} and SWAFS_VIEW, exec. */
static void exec_cmd(char **cmd, const char *dir)
{
	sigset_t none;
	size_t n = 0;
	char **argv;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	while (cmd[n])
		n++;
	argv = calloc(n + 1, sizeof(*argv));
	for (size_t k = 0; argv && k < n; k++)
		if (!(argv[k] = substitute(cmd[k], dir)))
			_exit(127);
	if (!argv || setenv("SWAFS_VIEW", dir, 1))
		_exit(127);
	execvp(argv[0], argv);
	fprintf(stderr, "swactl: cannot run '%s': %s\n", printable(argv[0]),
		strerror(errno));
	_exit(127);
}

/* Run cmd on the view; its exit status (128 + signal when killed). */
static int run_cmd(char **cmd, const char *dir)
{
	int st;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "swactl: cannot start '%s': %s\n",
			printable(cmd[0]), strerror(errno));
		return 1;
	}
	if (pid == 0)
		exec_cmd(cmd, dir);
	sv_forward_to(pid);
	if (sv_stop_signal())
		kill(pid, sv_stop_signal());
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	sv_forward_to(0);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

static int save_cmd(struct save *s)
{
	struct sv_view *v = NULL;
	int rc = sv_take(&s->r, s->mnt, &v), end;

	if (rc)
		return rc;
	if (!sv_stop_signal())
		rc = run_cmd(s->cmd, sv_dir(v));
	if (sv_stop_signal())
		fprintf(stderr, "swactl: save %s stopped by signal %d\n",
			s->r.name, sv_stop_signal());
	end = sv_end(v);
	if (sv_stop_signal() && rc == 0)
		rc = 128 + sv_stop_signal();
	return rc ? rc : end;
}

/* Bytes per second reading the largest file of t under root. */
static double sample_rate(const char *root, const struct tree *t)
{
	size_t big = 0;
	char path[8192], *buf = malloc(1 << 20);
	struct timespec a, b;
	uint64_t got = 0;
	ssize_t n = 1;
	int fd;

	for (size_t k = 1; k < t->n; k++)
		if (S_ISREG(t->o[k].st.st_mode) &&
		    t->o[k].st.st_size > t->o[big].st.st_size)
			big = k;
	snprintf(path, sizeof(path), "%s/%s", root, t->o[big].path);
	fd = buf && S_ISREG(t->o[big].st.st_mode) ?
	     open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (fd >= 0 && n > 0 && got < SAMPLE_BYTES &&
	       (n = read(fd, buf, 1 << 20)) > 0)
		got += (uint64_t)n;
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (fd >= 0)
		close(fd);
	free(buf);
	return got ? (double)got / ((double)(b.tv_sec - a.tv_sec) +
				    (b.tv_nsec - a.tv_nsec) / 1e9 + 1e-9) : 0;
}

/* --dry-run: the plan of the live tree as it is; no checkpoint. */
static int save_dry(struct save *s)
{
	struct tree t;
	struct sj_plan p;
	uint64_t most = 0;
	double rate;
	int rc = sj_check(&s->o, NULL, true);

	if (rc || (rc = tree_walk(s->mnt, &t) ? 1 : 0))
		return rc;
	rc = sj_plan(&t, s->o.streams, &p) ? 1 : 0;
	if (rc == 0) {
		for (unsigned k = 0; k < s->o.streams; k++)
			most = p.loads[k] > most ? p.loads[k] : most;
		rate = sample_rate(s->mnt, &t);
		printf("dry run of save %s (no checkpoint taken): %zu objects, "
		       "%llu bytes, %u stream%s x %u cop%s, %s\n", s->r.name,
		       p.nobj, (unsigned long long)p.bytes, s->o.streams,
		       s->o.streams == 1 ? "" : "s", s->o.copies,
		       s->o.copies == 1 ? "y" : "ies", s->o.compress);
		sj_print_plan(&s->o, &p);
		if (rate > 0)
			printf("estimate: %.0f s (the busiest stream's bytes at "
			       "%.0f MiB/s, a read of the live tree)\n",
			       (double)most / rate, rate / 1048576);
		rc = sj_check(&s->o, &p, true);
		if (t.skipped) {
			fprintf(stderr, "swactl: %zu object%s would be skipped "
				"(named above)\n", t.skipped,
				t.skipped == 1 ? "" : "s");
			rc = rc ? rc : EXIT_SKIPPED;
		}
		sj_plan_free(&p);
	}
	tree_free(&t);
	return rc;
}

/* Walk the view, plan, write; the exit code of the archive form. */
static int save_view(struct save *s, const char *root)
{
	struct tree t;
	struct sj_plan p;
	int rc = tree_walk(root, &t) ? 1 : 0;

	if (rc == 0 && !sv_stop_signal() && sj_plan(&t, s->o.streams, &p))
		rc = 1;
	else if (rc == 0 && !sv_stop_signal()) {
		rc = sj_check(&s->o, &p, false);
		if (rc == 0)
			rc = sj_write(&s->o, root, &t, &p);
		sj_plan_free(&p);
	}
	if (rc == 0 && t.skipped) {
		fprintf(stderr, "swactl: %zu object%s could not be listed "
			"(named above)\n", t.skipped, t.skipped == 1 ? "" : "s");
		rc = EXIT_SKIPPED;
	}
	tree_free(&t);
	return rc;
}

static int save_to(struct save *s)
{
	struct sv_view *v = NULL;
	int rc = sj_check(&s->o, NULL, false), end;

	if (rc || (rc = sv_take(&s->r, s->mnt, &v)))
		return rc;
	rc = save_view(s, sv_dir(v));
	if (sv_stop_signal() && rc == 0)
		rc = 1;
	end = sv_end(v);
	return rc ? rc : end;
}

int save_main(int argc, char **argv)
{
	struct save s = { 0 };
	int rc = parse_save(argc, argv, &s);

	if (rc)
		return rc;
	if (s.dry_run)
		return save_dry(&s);
	if (sv_signals_catch()) {
		fprintf(stderr, "swactl: cannot set up signal handling\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);	/* a target that goes away is an error */
	return s.cmd ? save_cmd(&s) : save_to(&s);
}
