/*
 * report.c - swactl status and history: the daemon answers one record per
 * line of encoded KEY=VALUE words (snapshot/ctlmsg.h); this prints them
 * for people, as a JSON array for scripts, or as a live progress display.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/ctlmsg.h"
#include "snapshot/parse.h"
#include "tools/ctlclient.h"
#include "tools/report.h"
#include "tools/swactl.h"

#define REPORT_MAX 256		/* records shown */

/* One record: its words, split at the first '='. */
struct rec {
	char *line;			/* owns the decoded words */
	int n;
	char *key[CTLMSG_ARGS];
	char *val[CTLMSG_ARGS];
};

struct recs {
	struct rec r[REPORT_MAX];
	int n;
};

static const char *get(const struct rec *r, const char *key)
{
	for (int k = 0; k < r->n; k++)
		if (!strcmp(r->key[k], key))
			return r->val[k];
	return "null";
}

static double num(const struct rec *r, const char *key)
{
	const char *v = get(r, key);

	return strcmp(v, "null") ? strtod(v, NULL) : -1;
}

static int rec_parse(char *line, struct rec *r)
{
	char *argv[CTLMSG_ARGS];
	int n;

	line[strcspn(line, "\n")] = '\0';
	n = ctlmsg_parse(line, argv);
	if (n <= 0)
		return -EINVAL;
	r->line = line;
	r->n = 0;
	for (int k = 0; k < n; k++) {
		char *eq = strchr(argv[k], '=');

		if (!eq)
			continue;
		*eq = '\0';
		r->key[r->n] = argv[k];
		r->val[r->n++] = eq + 1;
	}
	return 0;
}

static void recs_free(struct recs *rs)
{
	for (int k = 0; k < rs->n; k++)
		free(rs->r[k].line);
	rs->n = 0;
}

/* Ask MNT's daemon; fill rs.  Returns swactl's exit code. */
static int fetch(const char *mnt, int argc, char *const argv[],
		 struct recs *rs)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int rc = ctl_ask(mnt, argc, argv, false, &f);

	rs->n = 0;
	if (rc)
		return rc;
	while (rs->n < REPORT_MAX && getline(&line, &cap, f) > 0) {
		if (rec_parse(line, &rs->r[rs->n]) == 0) {
			rs->n++;
			line = NULL;
			cap = 0;
		}
	}
	free(line);
	fclose(f);
	return 0;
}

/* ---- JSON ---- */

static bool is_number(const char *s)
{
	size_t n = strspn(s, "0123456789");

	if (!n)
		return false;
	if (s[n] == '.')
		return s[n + 1] && strspn(s + n + 1, "0123456789") ==
				   strlen(s + n + 1);
	return s[n] == '\0';
}

void report_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* Keys whose 0 or 1 on the wire is a yes or no. */
static bool is_flag(const char *key)
{
	static const char *const flags[] = { "valid", "keep" };

	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
		if (!strcmp(key, flags[k]))
			return true;
	return false;
}

/* One record as a JSON object: numbers as numbers, "null" as null, flags
 * as booleans, the rest as strings. */
static void print_json_rec(const struct rec *r)
{
	putchar('{');
	for (int i = 0; i < r->n; i++) {
		const char *v = r->val[i];

		printf("%s", i ? "," : "");
		report_json_str(r->key[i]);
		putchar(':');
		if (is_flag(r->key[i]) && (!strcmp(v, "0") || !strcmp(v, "1")))
			fputs(*v == '1' ? "true" : "false", stdout);
		else if (is_number(v) || !strcmp(v, "null"))
			fputs(v, stdout);
		else
			report_json_str(v);
	}
	putchar('}');
}

static void print_json(const struct recs *rs)
{
	putchar('[');
	for (int k = 0; k < rs->n; k++) {
		printf("%s", k ? "," : "");
		print_json_rec(&rs->r[k]);
	}
	puts("]");
}

void report_json_line(char *line, bool first)
{
	struct rec r;

	if (rec_parse(line, &r) < 0)
		return;
	printf("%s", first ? "" : ",");
	print_json_rec(&r);
}

/* ---- people ---- */

static const char *bytes(double b, char *buf, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB" };
	int u = 0;

	if (b < 0)
		return "?";
	while (b >= 1024 && u < 5) {
		b /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
	return buf;
}

static const char *duration(double s, char *buf, size_t size)
{
	long t = (long)(s + 0.5);

	if (s < 0)
		return "?";
	if (t >= 3600)
		snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
	return buf;
}

static const char *when(double t, char *buf, size_t size)
{
	struct tm tm;

	localtime_r(&(time_t){ (time_t)t }, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

/* A record of the checkpoint being taken: it has no T yet. */
static bool pending(const struct rec *r)
{
	return !strcmp(get(r, "t"), "null");
}

/* "boundary-wait for 12 s: 2 open transaction(s): pid 1 (a), ..." */
static void print_pending(const struct rec *r)
{
	char a[32];

	printf("%s: being taken, %s for %s", get(r, "name"), get(r, "state"),
	       duration(num(r, "age_s"), a, sizeof(a)));
	if (!strcmp(get(r, "state"), "boundary-wait")) {
		char list[640];

		printf(", %.0f open transaction(s)", num(r, "open"));
		snprintf(list, sizeof(list), "%s", get(r, "holders"));
		ctl_print_holders(stdout, list, (unsigned long)num(r, "open"));
	}
	putchar('\n');
}

/* The store's limit and policy, and writers it holds now. */
static void print_policy(const struct rec *r)
{
	char a[32], b[32];

	printf("  policy    on_full=%s, store %s of %s", get(r, "on_full"),
	       bytes(num(r, "store_used_bytes"), a, sizeof(a)),
	       bytes(num(r, "store_max_bytes"), b, sizeof(b)));
	if (!strcmp(get(r, "on_full"), "throttle"))
		printf(", %.0f writer(s) waiting now, %.0f waits (%.1f s)",
		       num(r, "throttled"), num(r, "throttle_waits"),
		       num(r, "throttle_wait_s"));
	putchar('\n');
}

static void print_status(const struct rec *r)
{
	char a[32], b[32], c[32], d[32];
	bool known = num(r, "t_size_bytes") >= 0;

	if (pending(r))
		return print_pending(r);
	printf("%s: %s%s%s%s, T %s (%s ago), pause %.0f us, %.0f view(s)\n",
	       get(r, "name"), get(r, "state"),
	       strcmp(get(r, "reason"), "null") ? " (" : "",
	       strcmp(get(r, "reason"), "null") ? get(r, "reason") : "",
	       strcmp(get(r, "reason"), "null") ? ")" : "",
	       when(num(r, "t"), a, sizeof(a)),
	       duration(num(r, "age_s"), b, sizeof(b)), num(r, "pause_us"),
	       num(r, "views"));
	if (known)
		printf("  T image   %s in %.0f files\n",
		       bytes(num(r, "t_size_bytes"), a, sizeof(a)),
		       num(r, "t_files"));
	else
		printf("  T image   size %s\n", get(r, "t_size_state"));
	printf("  saved     %s", bytes(num(r, "saved_bytes"), a, sizeof(a)));
	if (known)
		printf(" (%.1f%%), %.0f of %.0f files released\n",
		       num(r, "saved_pct"), num(r, "files_released"),
		       num(r, "t_files"));
	else
		printf(", %.0f files released\n", num(r, "files_released"));
	if (num(r, "rate_bps") >= 0)
		printf("  rate      %s/s, ETA %s\n",
		       bytes(num(r, "rate_bps"), a, sizeof(a)),
		       num(r, "eta_s") >= 0 ? duration(num(r, "eta_s"), b,
						       sizeof(b)) : "unknown");
	else
		printf("  rate      unknown (nothing read yet)\n");
	printf("  captures  %.0f blocks, %s; held now %s (peak %s)\n",
	       num(r, "captures"), bytes(num(r, "captured_bytes"), a, sizeof(a)),
	       bytes(num(r, "held_bytes"), b, sizeof(b)),
	       bytes(num(r, "peak_held_bytes"), c, sizeof(c)));
	printf("  store     %s (memory %s, disk %s) for %s raw\n",
	       bytes(num(r, "store_stored_bytes"), a, sizeof(a)),
	       bytes(num(r, "store_mem_bytes"), b, sizeof(b)),
	       bytes(num(r, "store_disk_bytes"), c, sizeof(c)),
	       bytes(num(r, "store_raw_bytes"), d, sizeof(d)));
	print_policy(r);
}

/* One line: name [#####.....] 42% 1.2 GiB/2.9 GiB  85 MiB/s  ETA 0:21 ... */
static void print_bar(const struct rec *r)
{
	char bar[21], a[32], b[32], c[32], d[32], e[32];
	double pct = num(r, "saved_pct");
	int fill = pct < 0 ? 0 : (int)(pct / 5);

	if (pending(r)) {
		printf("\033[2K");
		return print_pending(r);
	}
	for (int k = 0; k < 20; k++)
		bar[k] = k < fill ? '#' : '.';
	bar[20] = '\0';
	printf("\033[2K%-16s [%s] ", get(r, "name"), bar);
	if (pct >= 0)
		printf("%3.0f%% ", pct);
	else
		printf("  ?%% ");
	printf("%s/%s  %s/s  ETA %s  store %s\n",
	       bytes(num(r, "saved_bytes"), a, sizeof(a)),
	       pct >= 0 ? bytes(num(r, "t_size_bytes"), b, sizeof(b))
			: get(r, "t_size_state"),
	       num(r, "rate_bps") >= 0 ? bytes(num(r, "rate_bps"), c, sizeof(c))
				       : "?",
	       num(r, "eta_s") >= 0 ? duration(num(r, "eta_s"), d, sizeof(d))
				    : "?",
	       bytes(num(r, "store_stored_bytes"), e, sizeof(e)));
}

/* ---- status --watch ---- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

/* Keep only the records of checkpoint name (all if NULL). */
static void keep_named(struct recs *rs, const char *name)
{
	int o = 0;

	for (int k = 0; k < rs->n; k++) {
		if (!name || !strcmp(get(&rs->r[k], "name"), name))
			rs->r[o++] = rs->r[k];
		else
			free(rs->r[k].line);
	}
	rs->n = o;
}

/* Redraw every second until the checkpoints are gone or ^C. */
static int watch(const char *mnt, const char *name)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct recs *rs = calloc(1, sizeof(*rs));
	int drawn = 0, rc = 0;

	if (!rs)
		return 1;
	sigaction(SIGINT, &sa, NULL);	/* no SA_RESTART: sleep ends */
	sigaction(SIGTERM, &sa, NULL);
	fputs("\033[?25l", stdout);
	while (!interrupted) {
		rc = fetch(mnt, 1, (char *[]){ "status" }, rs);
		keep_named(rs, name);
		if (rc || !rs->n)
			break;
		if (drawn)
			printf("\033[%dA", drawn);
		for (int k = 0; k < rs->n; k++)
			print_bar(&rs->r[k]);
		for (int k = rs->n; k < drawn; k++)
			puts("\033[2K");
		drawn = rs->n > drawn ? rs->n : drawn;
		fflush(stdout);
		recs_free(rs);
		sleep(1);
	}
	fputs("\033[?25h", stdout);
	if (!interrupted && rc == 0 && name)
		printf("checkpoint %s: %s\n", name, drawn ? "ended" : "none");
	else if (!interrupted && rc == 0)
		printf("no checkpoints%s\n", drawn ? " left" : "");
	fflush(stdout);
	recs_free(rs);
	free(rs);
	return rc == 0 && name && !drawn ? 1 : rc;
}

int report_status(int argc, char **argv)
{
	bool json = false, follow = false;
	char *req[2] = { "status", NULL };
	const char *mnt = NULL;
	struct recs *rs;
	int rc;

	for (int k = 1; k < argc; k++) {
		if (!strcmp(argv[k], "--json"))
			json = true;
		else if (!strcmp(argv[k], "--watch"))
			follow = true;
		else if (argv[k][0] == '-')
			return usage_error("unknown status option '%s'", argv[k]);
		else if (!mnt)
			mnt = argv[k];
		else if (!req[1])
			req[1] = argv[k];
		else
			return usage_error("status wants MNT [NAME]");
	}
	if (!mnt)
		return usage_error("status wants MNT [NAME] [--json|--watch]");
	if (req[1] && !parse_name_ok(req[1]))
		return usage_error("invalid checkpoint name; want "
			     "[A-Za-z0-9._-]{1,64}");
	if (json && follow)
		return usage_error("--json and --watch exclude each other");
	if (follow && !isatty(STDOUT_FILENO))
		return usage_error("--watch needs a terminal; scripts use --json");
	if (follow)
		return watch(mnt, req[1]);
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return 1;
	rc = fetch(mnt, req[1] ? 2 : 1, req, rs);
	if (rc == 0 && json)
		print_json(rs);
	else if (rc == 0 && !rs->n)
		printf("no checkpoints\n");
	for (int k = 0; rc == 0 && !json && k < rs->n; k++)
		print_status(&rs->r[k]);
	recs_free(rs);
	free(rs);
	return rc;
}

static void print_history(const struct rec *r)
{
	char a[32], b[32], c[32], d[32];

	printf("%-20s %s  %-9s %-11s", get(r, "name"),
	       when(num(r, "t"), a, sizeof(a)),
	       duration(num(r, "duration_s"), b, sizeof(b)),
	       get(r, "outcome"));
	if (!strcmp(get(r, "outcome"), "failed")) {
		printf(" %s\n", get(r, "reason"));
		return;
	}
	printf(" captured %s, peak %s, saved %s, %.0f files released%s%s\n",
	       bytes(num(r, "captured_bytes"), a, sizeof(a)),
	       bytes(num(r, "peak_store_bytes"), c, sizeof(c)),
	       bytes(num(r, "saved_bytes"), d, sizeof(d)), num(r, "files"),
	       *get(r, "reason") ? ": " : "", get(r, "reason"));
}

int report_history(int argc, char **argv)
{
	bool json = argc == 3 && !strcmp(argv[2], "--json");
	struct recs *rs;
	int rc;

	if (argc != 2 && !json)
		return usage_error("history wants MNT [--json]");
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return 1;
	rc = fetch(argv[1], 1, (char *[]){ "history" }, rs);
	if (rc == 0 && json)
		print_json(rs);
	else if (rc == 0 && !rs->n)
		printf("no history\n");
	else if (rc == 0)
		printf("%-20s %-19s  %-9s %-11s %s\n", "NAME", "T", "DURATION",
		       "OUTCOME", "FIGURES");
	for (int k = 0; rc == 0 && !json && k < rs->n; k++)
		print_history(&rs->r[k]);
	recs_free(rs);
	free(rs);
	return rc;
}

static void print_list(const struct rec *r)
{
	char a[32], b[32];

	printf("%-20s %s  %-7s views=%s retain=%s%s pause=%sus captured=%s\n",
	       get(r, "name"), when(num(r, "t"), a, sizeof(a)),
	       strcmp(get(r, "valid"), "1") ? "INVALID" : "active",
	       get(r, "views"), get(r, "retain"),
	       strcmp(get(r, "keep"), "1") ? "" : " keep", get(r, "pause_us"),
	       bytes(num(r, "captured_bytes"), b, sizeof(b)));
}

int report_list(int argc, char **argv)
{
	bool json = argc == 3 && !strcmp(argv[2], "--json");
	struct recs *rs;
	int rc;

	if (argc != 2 && !json)
		return usage_error("list wants MNT [--json]");
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return 1;
	rc = fetch(argv[1], 1, (char *[]){ "list" }, rs);
	if (rc == 0 && json)
		print_json(rs);
	for (int k = 0; rc == 0 && !json && k < rs->n; k++)
		print_list(&rs->r[k]);
	recs_free(rs);
	free(rs);
	return rc;
}
