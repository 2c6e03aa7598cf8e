/* Unit tests for snapshot/hist.c: format round trip, append, pruning by
 * age, broken lines, concurrent appends, refusal of foreign files, FIFOs
 * and symlinks (also for the events file of snapshot/events.c), no lock
 * on the shared store directory, and that the store's stale cleanup
 * leaves history alone. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/events.h"
#include "snapshot/hist.h"
#include "snapshot/pstore.h"

#define NOW 1700000000
#define DAY 86400

static char dir[64];
static struct hist *h;

static void setup(void)
{
	strcpy(dir, "/tmp/swafs-hist-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	h = NULL;
}

static void teardown(void)
{
	char cmd[128];

	hist_close(h);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static struct hist_rec rec(const char *name, int64_t ended)
{
	struct hist_rec r = { .t = ended - 10, .ended = ended,
			      .pause_us = 812, .duration_s = 10.25,
			      .captured_bytes = 65536, .peak_store_bytes = 4096,
			      .files = 3, .saved_bytes = 123456,
			      .t_size_bytes = 200000, .t_files = 7 };

	snprintf(r.name, sizeof(r.name), "%s", name);
	strcpy(r.outcome, "released");
	return r;
}

struct names {
	char list[64][65];
	int n;
};

static int collect(void *arg, const struct hist_rec *r)
{
	struct names *ns = arg;

	if (ns->n < 64)
		strcpy(ns->list[ns->n++], r->name);
	return 0;
}

static struct names read_all(int64_t now)
{
	struct names ns = { .n = 0 };

	cr_assert_eq(hist_read(h, now, collect, &ns), 0);
	return ns;
}

static void path_of(char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", dir, hist_file_name(h));
}

static void append_raw(const char *text)
{
	char p[256];
	FILE *f;

	path_of(p, sizeof(p));
	f = fopen(p, "a");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(hist, format_parse_round_trip)
{
	struct hist_rec a = rec("nightly", NOW), b;
	char line[2048];

	a.t_size_bytes = -1;
	strcpy(a.outcome, "failed");
	strcpy(a.reason, "drain \"wait\" exceeded\\\n");
	cr_assert_gt(hist_format(&a, line, sizeof(line)), 0);
	cr_assert_eq(hist_parse(line, &b), 0, "%s", line);
	cr_assert_str_eq(b.name, "nightly");
	cr_assert_str_eq(b.outcome, "failed");
	cr_assert_str_eq(b.reason, "drain \"wait\" exceeded\\ ");
	cr_assert_eq(b.t, NOW - 10);
	cr_assert_eq(b.ended, NOW);
	cr_assert_eq(b.pause_us, 812);
	cr_assert_float_eq(b.duration_s, 10.25, 1e-9);
	cr_assert_eq(b.captured_bytes, 65536);
	cr_assert_eq(b.peak_store_bytes, 4096);
	cr_assert_eq(b.files, 3);
	cr_assert_eq(b.saved_bytes, 123456);
	cr_assert_eq(b.t_size_bytes, -1);
	cr_assert_eq(b.t_files, 7);
}

Test(hist, parse_rejects_broken_lines)
{
	struct hist_rec r;

	cr_assert_neq(hist_parse("", &r), 0);
	cr_assert_neq(hist_parse("{\"name\":\"a\",\"ended\":1", &r), 0);
	cr_assert_neq(hist_parse("{\"name\":\"a\",\"outcome\":\"x\"}", &r), 0);
	cr_assert_neq(hist_parse("{\"name\":\"../a\",\"ended\":1,"
				 "\"outcome\":\"x\"}", &r), 0);
	cr_assert_neq(hist_parse("{\"name\":\"a\",\"ended\":1,"
				 "\"outcome\":\"x\"}junk", &r), 0);
	cr_assert_eq(hist_parse("{\"name\":\"a\",\"ended\":1,"
				"\"outcome\":\"x\",\"new_field\":5}\n", &r), 0);
}

Test(hist, append_then_read_survives_reopen, .init = setup, .fini = teardown)
{
	struct hist_rec a = rec("one", NOW), b = rec("two", NOW + 5);
	struct names ns;

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	cr_assert_eq(hist_append(h, &a, NOW), 0);
	cr_assert_eq(hist_append(h, &b, NOW + 5), 0);
	hist_close(h);
	/* the same tree again: the same file */
	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW + 6, &h), 0);
	ns = read_all(NOW + 6);
	cr_assert_eq(ns.n, 2);
	cr_assert_str_eq(ns.list[0], "one");
	cr_assert_str_eq(ns.list[1], "two");
	hist_close(h);
	/* another tree: its own history */
	cr_assert_eq(hist_open(dir, "/srv/other", 30, NOW + 6, &h), 0);
	cr_assert_eq(read_all(NOW + 6).n, 0);
}

Test(hist, prune_by_age_at_open_and_append, .init = setup, .fini = teardown)
{
	struct hist_rec old = rec("old", NOW - 31 * DAY);
	struct hist_rec edge = rec("edge", NOW - 30 * DAY);
	struct hist_rec fresh = rec("fresh", NOW);
	char line[2048], p[256];
	struct names ns;
	struct stat st;

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW - 31 * DAY, &h), 0);
	cr_assert_eq(hist_append(h, &old, NOW - 31 * DAY), 0);
	cr_assert_eq(hist_append(h, &edge, NOW - 30 * DAY), 0);
	hist_close(h);
	/* at open: "old" ended more than 30 days ago and goes */
	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	path_of(p, sizeof(p));
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq((size_t)st.st_size,
		     (size_t)hist_format(&edge, line, sizeof(line)));
	cr_assert_eq(hist_append(h, &fresh, NOW), 0);
	ns = read_all(NOW);
	cr_assert_eq(ns.n, 2);
	cr_assert_str_eq(ns.list[0], "edge");
	/* one second later "edge" is too old: the next append prunes it */
	fresh.ended = NOW + 1;
	cr_assert_eq(hist_append(h, &fresh, NOW + 1), 0);
	ns = read_all(NOW + 1);
	cr_assert_eq(ns.n, 2);
	cr_assert_str_eq(ns.list[0], "fresh");
	cr_assert_str_eq(ns.list[1], "fresh");
}

Test(hist, keep_days_zero_keeps_nothing, .init = setup, .fini = teardown)
{
	struct hist_rec a = rec("a", NOW);

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	cr_assert_eq(hist_append(h, &a, NOW), 0);
	hist_close(h);
	cr_assert_eq(hist_open(dir, "/srv/data", 0, NOW, &h), 0);
	cr_assert_eq(read_all(NOW).n, 0);
	cr_assert_eq(hist_append(h, &a, NOW), 0);
	cr_assert_eq(read_all(NOW).n, 0);
	hist_close(h);
	h = NULL;
	cr_assert_eq(hist_open(dir, "/srv/data", HIST_KEEP_DAYS_MAX + 1, NOW,
			       &h), -EINVAL);
}

Test(hist, broken_lines_skipped_then_dropped, .init = setup, .fini = teardown)
{
	struct hist_rec a = rec("a", NOW), b = rec("b", NOW);
	char line[2048], p[256];
	struct names ns;
	struct stat st;
	int n;

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	cr_assert_eq(hist_append(h, &a, NOW), 0);
	append_raw("garbage\n{\"name\":\"half\",\"ended\":");
	append_raw("\n");
	ns = read_all(NOW);
	cr_assert_eq(ns.n, 1);
	cr_assert_str_eq(ns.list[0], "a");
	cr_assert_eq(hist_append(h, &b, NOW), 0);
	ns = read_all(NOW);
	cr_assert_eq(ns.n, 2);
	/* the rewrite kept exactly the two good lines */
	path_of(p, sizeof(p));
	cr_assert_eq(stat(p, &st), 0);
	n = hist_format(&a, line, sizeof(line));
	cr_assert_eq(st.st_size, 2 * n);
}

struct appender {
	int id;
};

static void *append_many(void *arg)
{
	struct appender *a = arg;

	for (int k = 0; k < 50; k++) {
		struct hist_rec r;
		char name[32];

		snprintf(name, sizeof(name), "t%d-%d", a->id, k);
		r = rec(name, NOW);
		/* a broken line makes the next append rewrite the file */
		append_raw("junk\n");
		cr_assert_eq(hist_append(h, &r, NOW), 0);
	}
	return NULL;
}

Test(hist, concurrent_appends_all_kept, .init = setup, .fini = teardown)
{
	struct appender a[4];
	pthread_t t[4];
	struct names ns;
	int per[4] = { 0 };
	FILE *f;
	char p[256], *line = NULL;
	size_t cap = 0;
	int lines = 0;

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	/* an old record makes every append rewrite the file at first */
	append_raw("{\"name\":\"stale\",\"ended\":1,\"outcome\":\"released\"}\n");
	for (int k = 0; k < 4; k++) {
		a[k].id = k;
		cr_assert_eq(pthread_create(&t[k], NULL, append_many, &a[k]), 0);
	}
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
	ns = read_all(NOW);
	cr_assert_eq(ns.n, 64);	/* collect() stops storing at 64 */
	path_of(p, sizeof(p));
	f = fopen(p, "r");
	cr_assert_not_null(f);
	while (getline(&line, &cap, f) > 0) {
		struct hist_rec r;
		int id, k;

		if (!strcmp(line, "junk\n"))
			continue;
		cr_assert_eq(hist_parse(line, &r), 0, "torn line: %s", line);
		cr_assert_eq(sscanf(r.name, "t%d-%d", &id, &k), 2);
		per[id]++;
		lines++;
	}
	free(line);
	fclose(f);
	cr_assert_eq(lines, 200);
	for (int k = 0; k < 4; k++)
		cr_assert_eq(per[k], 50);
}

Test(hist, refuses_symlink_and_foreign_file, .init = setup, .fini = teardown)
{
	struct hist_rec a = rec("a", NOW);
	char p[256], target[128];

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	path_of(p, sizeof(p));
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	cr_assert_eq(symlink(target, p), 0);
	cr_assert_eq(hist_append(h, &a, NOW), -ELOOP);
	cr_assert_eq(access(target, F_OK), -1, "followed the symlink");
	cr_assert_eq(unlink(p), 0);
	if (geteuid() == 0) {
		int fd = open(p, O_WRONLY | O_CREAT, 0600);

		cr_assert_geq(fd, 0);
		cr_assert_eq(fchown(fd, 65534, 65534), 0);
		close(fd);
		cr_assert_eq(hist_append(h, &a, NOW), -EPERM);
	}
}

/* A name planted in the store before hist_open: refused at open, at once. */
static void planted(const char *suffix, mode_t fifo_or_file)
{
	char p[256];

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	snprintf(p, sizeof(p), "%s/%s", dir, hist_file_name(h));
	if (strcmp(suffix, "jsonl"))
		strcpy(strrchr(p, '.'), ".lock");
	hist_close(h);
	h = NULL;
	unlink(p);
	if (S_ISFIFO(fifo_or_file)) {
		cr_assert_eq(mkfifo(p, 0666), 0);
	} else {
		int fd = open(p, O_WRONLY | O_CREAT, 0666);

		cr_assert_geq(fd, 0);
		cr_assert_eq(fchown(fd, 65534, 65534), 0);
		close(fd);
	}
	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), -EPERM,
		     "planted %s %s accepted", suffix,
		     S_ISFIFO(fifo_or_file) ? "FIFO" : "file");
	cr_assert_null(h);
	unlink(p);
}

Test(hist, refuses_planted_names_at_open, .init = setup, .fini = teardown,
     .timeout = 10)
{
	planted("jsonl", S_IFIFO);
	planted("lock", S_IFIFO);
	if (geteuid() != 0)
		return;
	planted("jsonl", S_IFREG);
	planted("lock", S_IFREG);
}

/* Someone holding flock on the (shared) store directory delays nothing. */
Test(hist, ignores_flock_on_store_dir, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct hist_rec a = rec("a", NOW);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	cr_assert_geq(dfd, 0);
	cr_assert_eq(flock(dfd, LOCK_EX), 0);
	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	cr_assert_eq(hist_append(h, &a, NOW), 0);
	cr_assert_eq(hist_prune(h, NOW), 0);
	cr_assert_eq(read_all(NOW).n, 1);
	close(dfd);
}

Test(hist, events_file_refuses_fifo_symlink_foreign, .init = setup,
     .fini = teardown, .timeout = 10)
{
	struct events *ev = NULL;
	char p[128], q[128];

	snprintf(p, sizeof(p), "%s/fifo", dir);
	cr_assert_eq(mkfifo(p, 0666), 0);
	cr_assert_eq(events_open(p, &ev), -EPERM, "a FIFO without reader");
	cr_assert_eq(open(p, O_RDONLY | O_NONBLOCK) >= 0, 1);
	cr_assert_eq(events_open(p, &ev), -EPERM, "a FIFO with a reader");
	snprintf(q, sizeof(q), "%s/link", dir);
	cr_assert_eq(symlink("events", q), 0);
	cr_assert_eq(events_open(q, &ev), -ELOOP);
	snprintf(q, sizeof(q), "%s/events", dir);
	cr_assert_eq(access(q, F_OK), -1, "followed the symlink");
	cr_assert_eq(events_open(q, &ev), 0);
	events_close(ev);
	if (geteuid() == 0) {
		cr_assert_eq(chown(q, 65534, 65534), 0);
		cr_assert_eq(events_open(q, &ev), -EPERM, "someone else's file");
	}
}

Test(hist, stale_store_cleanup_keeps_history, .init = setup, .fini = teardown)
{
	struct hist_rec a = rec("a", NOW);
	unsigned removed = 0;

	cr_assert_eq(hist_open(dir, "/srv/data", 30, NOW, &h), 0);
	cr_assert_eq(hist_append(h, &a, NOW), 0);
	cr_assert_eq(pstore_clean_stale(dir, &removed), 0);
	cr_assert_eq(read_all(NOW).n, 1);
}
