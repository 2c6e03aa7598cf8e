/*
 * take.c - one checkpoint instant across one or several live trees.
 *
 * A single tree is one "checkpoint" request.  Several use the daemons'
 * phased protocol: "prepare" sent to every tree at once (each daemon
 * waits for its transaction boundary if asked, keeps new transactions
 * waiting and answers "bounded"); once all are bounded, "drain" to all
 * (each drains and holds its modifying calls, then answers "ready"), then
 * "commit" to all.  A tree held in its drain never waits for another
 * tree's boundary.  While the last tree drains, the first ones are
 * already held, so no tree changes between the first and the last
 * commit: one common instant.  A tree that fails makes the others abort;
 * a daemon aborts by itself if we go away, or after 10 s without a word
 * from us.  While a daemon waits for the boundary it sends "wait
 * boundary ..." lines, printed on stderr.  A barrier (sync group,
 * tools/sync.c) may wait between "ready" and "commit" for longer, sending
 * "hold" now and then to keep the trees held.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/ctlmsg.h"
#include "tools/ctlclient.h"
#include "tools/report.h"
#include "tools/take.h"

struct tree {
	const struct take_req *r;
	const char *mnt;
	FILE *f;		/* reply stream of the prepare, or NULL */
	int fd;			/* connection, until t->f owns it */
	int rc;			/* exit code of this tree's step */
	bool committed;		/* answered "ok" to commit */
	bool unsure;		/* no answer to commit in time: may commit */
	bool kept;		/* committed, and our release of it failed */
	char rest[256];
};

struct take_held {
	struct tree *ts;
	int n;
};

/*
 * A --path as the daemon wants it: relative to MNT.  An absolute path
 * inside MNT is made relative; trailing slashes and "./" prefixes go.
 * The daemon checks the rest strictly.
 */
static void scope_rel(const char *mnt, const char *path, char *out,
		      size_t size)
{
	char rm[PATH_MAX];
	size_t n;

	snprintf(out, size, "%s", path);
	if (path[0] == '/' && realpath(mnt, rm)) {
		n = strlen(rm);
		if (!strncmp(path, rm, n) && path[n] == '/')
			snprintf(out, size, "%s", path + n + 1);
	}
	while (!strncmp(out, "./", 2))
		memmove(out, out + 2, strlen(out + 2) + 1);
	for (n = strlen(out); n > 1 && out[n - 1] == '/'; n--)
		out[n - 1] = '\0';
}

/*
 * Seconds the daemon may spend on r beyond the reply timeout: the drain
 * and the boundary waits (silent up to one boundary report); -1: any.
 */
static double wait_secs(const struct take_req *r)
{
	double b = !strcmp(r->boundary, "off") ? 0
		   : !strcmp(r->boundary, "nomax") ? -1
		   : strtod(r->boundary, NULL) / 1000;

	if (!strcmp(r->wait, "nomax") || b < 0)
		return -1;
	return strtod(r->wait, NULL) / 1000 + b;
}

static void *syncfs_main(void *mnt)
{
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	return NULL;
}

/*
 * Dirty pages of shared writable mmaps reach the daemon before the drain.
 * A daemon that does not answer would hold syncfs forever: it gets the
 * reply timeout plus the drain wait, then the checkpoint fails (returning
 * from main ends the thread still stuck in the kernel).
 */
static int flush_mmaps(const struct take_req *r, const char *mnt)
{
	double limit = ctl_timeout() == 0 || wait_secs(r) < 0 ? 0 :
		       ctl_timeout() + wait_secs(r);
	struct timespec ts;
	pthread_t t;

	if (pthread_create(&t, NULL, syncfs_main, (void *)mnt) != 0) {
		syncfs_main((void *)mnt);
		return 0;
	}
	if (limit == 0) {
		pthread_join(t, NULL);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)limit;
	ts.tv_nsec += (long)((limit - (time_t)limit) * 1e9);
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	if (pthread_timedjoin_np(t, NULL, &ts) == 0)
		return 0;
	fprintf(stderr, "swactl: checkpoint %s not taken: the live tree '%s' "
		"did not answer within %g s (SWACTL_TIMEOUT)\n", r->name, mnt,
		limit);
	return 1;
}

/* Connect to the daemon of t->mnt (t->fd); says why not. */
static int connect_tree(struct tree *t)
{
	char why[512];

	t->fd = ctl_connect(t->mnt, why, sizeof(why));
	if (t->fd < 0) {
		fprintf(stderr, "swactl: %s\n", why);
		return 1;
	}
	ctl_set_timeout(t->fd, wait_secs(t->r));
	return 0;
}

/* Send VERB with r's arguments on t->fd; the reply comes on t->f. */
static int send_take(struct tree *t, const char *verb)
{
	static char paths[TAKE_SCOPE_MAX][PATH_MAX];
	char *argv[6 + TAKE_SCOPE_MAX], boundary[80], keep[40];
	const struct take_req *r = t->r;

	argv[0] = (char *)verb;
	argv[1] = (char *)r->name;
	argv[2] = (char *)r->retain;
	/* KEEP: 0, 1 (until released) or 1:MS (at most MS after T) */
	snprintf(keep, sizeof(keep), "%s%s%s", r->keep ? "1" : "0",
		 r->keep_for ? ":" : "", r->keep_for ? r->keep_for : "");
	argv[3] = keep;
	argv[4] = (char *)r->wait;
	/* BOUNDARY[:OTHERS_MS] */
	snprintf(boundary, sizeof(boundary), "%s%s%s", r->boundary,
		 r->others ? ":" : "", r->others ? r->others : "");
	argv[5] = boundary;
	for (int k = 0; k < r->npaths; k++) {
		scope_rel(t->mnt, r->paths[k], paths[k], sizeof(paths[k]));
		argv[6 + k] = paths[k];
	}
	t->f = ctl_request(t->fd, 6 + r->npaths, argv);
	if (!t->f) {
		fprintf(stderr, "swactl: %s: cannot talk to the daemon: %s\n",
			t->mnt, strerror(errno));
		close(t->fd);
	}
	t->fd = -1;	/* closed, or owned by t->f */
	/* unbuffered: poll() on the socket must see every line not read */
	if (t->f)
		setvbuf(t->f, NULL, _IONBF, 0);
	return t->f ? 0 : 1;
}

/*
 * "wait boundary waited_s=S count=N holders=PID:COMM,..." as
 * "swactl: MNT: checkpoint NAME waits for N open transaction(s) (S s):
 * pid PID (COMM), ...".
 */
static void print_progress(const struct tree *t, char *line)
{
	long long waited = 0;
	unsigned long count = 0;
	char *list = strstr(line, " holders=");

	sscanf(line, "wait boundary waited_s=%lld count=%lu", &waited, &count);
	fprintf(stderr, "swactl: %s: checkpoint %s waits for %lu open "
		"transaction(s) (%lld s)", t->mnt, t->r->name, count, waited);
	ctl_print_holders(stderr, list ? list + 9 : "", count);
	fputc('\n', stderr);
}

/*
 * Read one line of t's answer: -1 for a progress line (printed), 0 when
 * it is want (or, with want NULL, "ok ..."), else the exit code.
 */
static int read_answer(struct tree *t, const char *want)
{
	char line[1024];

	if (ctl_read_line(t->f, t->mnt, line, sizeof(line)))
		return 1;
	if (!strncmp(line, "wait boundary ", 14)) {
		print_progress(t, line);
		return -1;
	}
	if (want && !strcmp(line, want))
		return 0;
	return ctl_parse_status(line, want ? t->mnt : NULL, t->rest,
				sizeof(t->rest)) ?: (want ? 1 : 0);
}

/* How long a tree may stay silent: the reply bound of connect_tree(). */
static int poll_ms(const struct take_req *r)
{
	double w = wait_secs(r), ms = (ctl_timeout() + w) * 1000;

	/* beyond INT_MAX ms (24 days) is as good as no bound */
	return ctl_timeout() == 0 || w < 0 || ms > INT_MAX ? -1 : (int)ms;
}

/*
 * A daemon holding its tree after "ready" gives up after 10 s without a
 * word: while other trees still drain, the ready ones get "hold" every
 * TAKE_HOLD_MS.  Returns false if one of them went away.
 */
#define TAKE_HOLD_MS 2000

static bool hold_ready(struct tree *ts, int n)
{
	for (int k = 0; k < n; k++)
		if (ts[k].rc == 0 && send(fileno(ts[k].f), "hold\n", 5,
					  MSG_NOSIGNAL) != 5) {
			fprintf(stderr, "swactl: %s: the daemon gave up its "
				"hold\n", ts[k].mnt);
			ts[k].rc = 1;
			return false;
		}
	return true;
}

/* Read the answers that poll() found in p; -1 if one failed, else how
 * many of them were want. */
static int read_polled(struct tree *ts, int n, struct pollfd *p,
		       const char *want)
{
	int got = 0;

	for (int k = 0; k < n; k++) {
		if (!p[k].revents)
			continue;
		ts[k].rc = read_answer(&ts[k], want);
		if (ts[k].rc > 0)
			return -1;
		got += ts[k].rc == 0;
	}
	return got;
}

/*
 * Read every prepared tree's answer until each said want; stop at the
 * first failure.  Returns true when all did.
 */
static bool await_all(struct tree *ts, int n, const char *want)
{
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	int left = 0, rc, silent = 0, limit = poll_ms(ts[0].r);
	bool holding = !strcmp(want, "ready");

	if (!p)
		return false;
	for (int k = 0; k < n; k++) {
		ts[k].rc = ts[k].f ? -1 : 1;	/* -1: no answer yet */
		left += ts[k].rc == -1;
	}
	while (left > 0) {
		int step = holding && (limit < 0 || limit - silent > TAKE_HOLD_MS)
			   ? TAKE_HOLD_MS : limit < 0 ? -1 : limit - silent;

		for (int k = 0; k < n; k++)
			p[k] = (struct pollfd){ .fd = ts[k].rc == -1 ?
						fileno(ts[k].f) : -1,
						.events = POLLIN };
		rc = poll(p, (nfds_t)n, step);
		silent = rc == 0 ? silent + step : 0;
		if (rc == 0 && (limit < 0 || silent < limit)) {
			if (!hold_ready(ts, n))
				break;
			continue;
		}
		if (rc == 0)
			fprintf(stderr, "swactl: checkpoint %s not taken: a daemon "
				"did not answer within the wait time plus %g s "
				"(SWACTL_TIMEOUT)\n", ts[0].r->name, ctl_timeout());
		if (rc == 0 || (rc < 0 && errno != EINTR))
			break;
		rc = read_polled(ts, n, p, want);
		left = rc < 0 ? -1 : left - rc;
	}
	free(p);
	return left == 0;
}

/* Send the next word of the protocol to a prepared tree. */
static int send_word(struct tree *t, const char *word)
{
	size_t n = strlen(word);
	char buf[16];

	snprintf(buf, sizeof(buf), "%s\n", word);
	/* a daemon that gave up must not kill us with SIGPIPE */
	return send(fileno(t->f), buf, n + 1, MSG_NOSIGNAL) ==
	       (ssize_t)(n + 1) ? 0 : -1;
}

/*
 * A prepared daemon says nothing until "commit" unless it gave up its
 * hold: anything to read now is its abort.
 */
int take_hold(struct take_held *h)
{
	for (int k = 0; k < h->n; k++) {
		struct tree *t = &h->ts[k];
		struct pollfd p = { .fd = fileno(t->f), .events = POLLIN };

		if (poll(&p, 1, 0) != 0 ||
		    send(p.fd, "hold\n", 5, MSG_NOSIGNAL) != 5) {
			ctl_status(t->f, t->mnt, t->rest, sizeof(t->rest));
			return 1;
		}
	}
	return 0;
}

/* Read t's answer to "commit". */
static int commit_answer(struct tree *t)
{
	char line[1024];
	int rc;

	if (ctl_read_line(t->f, t->mnt, line, sizeof(line))) {
		/* silent, not gone: it may still read "commit" and keep NAME */
		t->unsure = !feof(t->f);
		return 1;
	}
	rc = ctl_parse_status(line, t->mnt, t->rest, sizeof(t->rest));
	t->committed = rc == 0;
	return rc;
}

/* Release NAME on t->mnt; 0 or 1 (reported). */
static int release_tree(struct tree *t)
{
	char why[512], rest[64];
	char *argv[] = { "release", (char *)t->r->name };
	int fd = ctl_connect(t->mnt, why, sizeof(why));
	FILE *f = fd >= 0 ? ctl_request(fd, 2, argv) : NULL;
	int rc = 1;

	if (fd < 0)
		fprintf(stderr, "swactl: %s\n", why);
	else if (!f) {
		fprintf(stderr, "swactl: %s: cannot talk to the daemon: %s\n",
			t->mnt, strerror(errno));
		close(fd);
	}
	if (f) {
		rc = ctl_status(f, t->mnt, rest, sizeof(rest));
		fclose(f);
	}
	return rc;
}

/*
 * Another tree failed its commit after these committed: one instant for
 * all trees or none (DESIGN.md 6), so NAME goes again where it was kept.
 */
static void undo_commits(struct tree *ts, int n)
{
	for (int k = 0; k < n; k++) {
		if (!ts[k].committed)
			continue;
		ts[k].kept = release_tree(&ts[k]) != 0;
		if (!ts[k].kept)
			fprintf(stderr, "swactl: %s: checkpoint %s released: "
				"another tree failed to commit\n", ts[k].mnt,
				ts[k].r->name);
	}
}

/*
 * Commit (ok) or abort every prepared tree; returns the worst exit code.
 * Every "commit" is sent before any answer is read: each tree's writers
 * wait from its drain to its commit, and that must not include the other
 * trees' round trips.
 */
static int finish_all(struct tree *ts, int n, bool ok)
{
	int rc = 0, done = 0;

	for (int k = 0; ok && k < n; k++)
		if (send_word(&ts[k], "commit") < 0)
			ts[k].rc = 1;
	for (int k = 0; k < n; k++) {
		struct tree *t = &ts[k];

		if (!t->f)
			continue;
		if (ok && t->rc == 0)
			t->rc = commit_answer(t);
		if (t->rc < 0)	/* never answered: aborted by us */
			t->rc = 0;
		/* closing without "commit" aborts a prepared tree */
		fclose(t->f);
		t->f = NULL;
		done += t->committed;
	}
	if (done > 0 && done < n)
		undo_commits(ts, n);
	/* a wait limit (3) explains the failure best, then the highest */
	for (int k = 0; k < n; k++)
		if (rc != 3 && (ts[k].rc == 3 || ts[k].rc > rc))
			rc = ts[k].rc;
	return rc;
}

/*
 * The last line of a failed take: where NAME still is (a release that
 * failed) or may be (a daemon silent after "commit"), else nowhere.
 */
static void say_not_taken(const struct tree *ts, int n)
{
	char list[1024] = "";
	size_t len = 0;

	for (int k = 0; k < n && len < sizeof(list); k++)
		if (ts[k].kept || ts[k].unsure)
			len += (size_t)snprintf(list + len, sizeof(list) - len,
						"%s%s%s", len ? ", " : "",
						ts[k].mnt, ts[k].kept ?
						" (its release failed)" :
						" (maybe: no answer to commit)");
	if (len)
		fprintf(stderr, "swactl: checkpoint %s not taken, but left on "
			"%s: release it there\n", ts[0].r->name, list);
	else if (n > 1)
		fprintf(stderr, "swactl: checkpoint %s not taken on any of the "
			"%d trees\n", ts[0].r->name, n);
}

/*
 * Each tree answered "pause_us=N t_ns=M": a line per tree for people, or
 * {"name":..., "trees":[{"mount":..., "pause_us":N, "t_ns":M}, ...]}.
 */
static void say_taken(const struct take_req *r, const struct tree *ts, int n)
{
	unsigned long long pause, t_ns;

	if (r->json)
		printf("{\"name\":\"%s\",\"trees\":[", r->name);
	for (int k = 0; k < n; k++) {
		pause = t_ns = 0;
		sscanf(ts[k].rest, "pause_us=%llu t_ns=%llu", &pause, &t_ns);
		if (!r->json) {
			printf("checkpoint %s taken on %s (pause_us=%llu)\n",
			       r->name, ts[k].mnt, pause);
			continue;
		}
		printf("%s{\"mount\":", k ? "," : "");
		report_json_str(ts[k].mnt);
		printf(",\"pause_us\":%llu,\"t_ns\":%llu}", pause, t_ns);
	}
	if (r->json)
		printf("]}\n");
}

static int take_one(const struct take_req *r, const char *mnt)
{
	struct tree t = { .r = r, .mnt = mnt };

	t.rc = flush_mmaps(r, mnt);
	if (t.rc == 0)
		t.rc = connect_tree(&t);
	if (t.rc == 0)
		t.rc = send_take(&t, "checkpoint");
	if (t.rc == 0) {
		while ((t.rc = read_answer(&t, NULL)) < 0)
			;
		fclose(t.f);
	}
	if (t.rc == 0)
		say_taken(r, &t, 1);
	return t.rc;
}

/*
 * Every step is done for all trees before the next step starts, so the
 * first tree held waits only for the others' drains, never for their
 * flushes or connections.
 */
int take_all(const struct take_req *r, char *const mnts[], int n,
	     take_barrier_fn *barrier, void *arg)
{
	struct tree *ts;
	bool ready = true;
	int rc, brc = 0;

	if (n == 1 && !barrier)
		return take_one(r, mnts[0]);
	ts = calloc((size_t)n, sizeof(*ts));
	if (!ts) {
		fprintf(stderr, "swactl: out of memory\n");
		return 1;
	}
	for (int k = 0; k < n; k++) {
		ts[k] = (struct tree){ .r = r, .mnt = mnts[k], .fd = -1 };
		if (ready && flush_mmaps(r, mnts[k]))
			ready = false;
	}
	for (int k = 0; k < n && ready; k++)
		ready = !(ts[k].rc = connect_tree(&ts[k]));
	for (int k = 0; k < n && ready; k++)
		ready = !(ts[k].rc = send_take(&ts[k], "prepare"));
	if (ready)
		ready = await_all(ts, n, "bounded");
	for (int k = 0; k < n && ready; k++)
		ready = send_word(&ts[k], "drain") == 0;
	if (ready)
		ready = await_all(ts, n, "ready");
	if (ready && barrier) {
		brc = barrier(arg, &(struct take_held){ .ts = ts, .n = n });
		ready = brc == 0;
	}
	rc = finish_all(ts, n, ready);
	if (!ready && rc == 0)
		rc = brc ? brc : 1;
	for (int k = 0; k < n; k++)
		if (ts[k].fd >= 0)	/* connected, never asked */
			close(ts[k].fd);
	if (rc == 0)
		say_taken(r, ts, n);
	if (rc)
		say_not_taken(ts, n);
	free(ts);
	return rc;
}
