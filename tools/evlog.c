/*
 * evlog.c - swactl events: the daemon sends its ring of events (all, or
 * the last N), then with --follow every new one; --since and --name are
 * applied here, line by line, to what it sends.
 *
 * Every event line starts {"time":"YYYY-MM-DDTHH:MM:SS.ffffffZ", (UTC),
 * so "at or after WHEN" is a comparison of that text with WHEN written the
 * same way; a checkpoint's events carry "name":"NAME".
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/parse.h"
#include "tools/ctlclient.h"
#include "tools/evlog.h"
#include "tools/swactl.h"

#define EVLOG_TAIL_MAX 100000

struct evlog_filter {
	char since[32];		/* "" or "YYYY-MM-DDTHH:MM:SS" (UTC) */
	char name[80];		/* "" or "\"name\":\"NAME\"" */
};

/*
 * WHEN as the events write time: an age (30s, 10m, 2h, 1d: that long
 * ago) or a UTC time YYYY-MM-DDTHH:MM[:SS].  Returns 0 or -1.
 */
static int parse_when(const char *s, char *out, size_t size)
{
	struct tm tm = { 0 };
	const char *end;
	double secs;
	time_t t;

	end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
	if (end && (!*end || (end[0] == ':' && strptime(end + 1, "%S", &tm) &&
			      strlen(end) == 3))) {
		strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
		return 0;
	}
	if (parse_age(s, 3650.0 * 86400, &secs) < 0)
		return -1;
	t = time(NULL) - (time_t)secs;
	strftime(out, size, "%Y-%m-%dT%H:%M:%S", gmtime_r(&t, &tm));
	return 0;
}

static bool wanted(const struct evlog_filter *f, const char *line)
{
	const char *t = strstr(line, "\"time\":\"");

	if (f->since[0] && (!t || strncmp(t + 8, f->since,
					  strlen(f->since)) < 0))
		return false;
	return !f->name[0] || strstr(line, f->name);
}

static int parse_args(int argc, char **argv, struct evlog_filter *f,
		      bool *follow, char *after, size_t size)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "since", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 }
	};
	uint64_t n;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:", opts, NULL)) != -1) {
		if (c == 'f')
			*follow = true;
		else if (c == 's' && parse_when(optarg, f->since,
						sizeof(f->since)) < 0)
			return usage_error("invalid --since '%s': want an age "
					   "(30s, 10m, 2h, 1d) or a UTC time "
					   "YYYY-MM-DDTHH:MM[:SS]",
					   printable(optarg));
		else if (c == 'N' && !parse_name_ok(optarg))
			return usage_error("invalid --name '%s': want "
					   "[A-Za-z0-9._-]{1,64}",
					   printable(optarg));
		else if (c == 'N')
			snprintf(f->name, sizeof(f->name), "\"name\":\"%s\"",
				 optarg);
		else if (c == 'n' && parse_u64(optarg, 0, EVLOG_TAIL_MAX, &n))
			return usage_error("invalid -n '%s': want 0 to %d",
					   printable(optarg), EVLOG_TAIL_MAX);
		else if (c == 'n')
			snprintf(after, size, "-%llu", (unsigned long long)n);
		else if (c == ':')
			return usage_error("option '%s' wants a value",
					   printable(argv[optind - 1]));
		else if (c == '?')
			return usage_error("unknown events option '%s'",
					   printable(argv[optind - 1]));
	}
	if (optind != argc - 1)
		return usage_error("events wants MNT [--follow] [--since WHEN] "
				   "[--name NAME] [-n N]");
	return 0;
}

int evlog_run(int argc, char **argv)
{
	struct evlog_filter f = { "", "" };
	char line[4096], after[32] = "0";
	bool follow = false;
	int rc = parse_args(argc, argv, &f, &follow, after, sizeof(after));
	FILE *s;

	if (rc)
		return rc;
	rc = ctl_ask(argv[optind], 3,
		     (char *[]){ "events", after, follow ? "1" : "0" }, false, &s);
	if (rc)
		return rc;
	if (follow)
		ctl_set_timeout(fileno(s), -1);	/* events come when they come */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), s))
		if (wanted(&f, line))
			fputs(line, stdout);
	fclose(s);
	return rc;
}
