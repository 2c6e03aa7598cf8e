/*
 * take.c - one checkpoint instant across one or several live trees.
 *
 * A single tree is one "checkpoint" request.  Several use the daemons'
 * two-phase protocol: "prepare" sent to every tree at once (each daemon
 * drains and holds its modifying calls, then answers "ready"), then
 * "commit" to all.
 * While the last tree drains, the first ones are already held, so no tree
 * changes between the first and the last commit: one common instant.  A
 * tree that fails to prepare makes the others abort; a daemon aborts by
 * itself if we go away, or after 10 s without a word from us.  A barrier
 * (sync group, tools/sync.c) may wait between "ready" and "commit" for
 * longer, sending "hold" now and then to keep the trees held.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/ctlclient.h"
#include "tools/take.h"

struct tree {
	const struct take_req *r;
	const char *mnt;
	FILE *f;		/* reply stream of the prepare, or NULL */
	int fd;			/* connection, until t->f owns it */
	int rc;			/* exit code of this tree's step */
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

/* Dirty pages of shared writable mmaps reach the daemon before the drain. */
static void flush_mmaps(const char *mnt)
{
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
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
	return 0;
}

/* Send VERB with r's arguments on t->fd; the reply comes on t->f. */
static int send_take(struct tree *t, const char *verb)
{
	static char paths[TAKE_SCOPE_MAX][PATH_MAX];
	char *argv[5 + TAKE_SCOPE_MAX];
	const struct take_req *r = t->r;

	argv[0] = (char *)verb;
	argv[1] = (char *)r->name;
	argv[2] = (char *)r->retain;
	argv[3] = r->keep ? "1" : "0";
	argv[4] = (char *)r->wait;
	for (int k = 0; k < r->npaths; k++) {
		scope_rel(t->mnt, r->paths[k], paths[k], sizeof(paths[k]));
		argv[5 + k] = paths[k];
	}
	t->f = ctl_request(t->fd, 5 + r->npaths, argv);
	if (!t->f) {
		fprintf(stderr, "swactl: %s: cannot talk to the daemon: %s\n",
			t->mnt, strerror(errno));
		close(t->fd);
	}
	t->fd = -1;	/* closed, or owned by t->f */
	return t->f ? 0 : 1;
}

/* Read a tree's answer to "prepare": 0 when it is drained and held. */
static int read_ready(struct tree *t)
{
	char line[1024];

	if (!fgets(line, sizeof(line), t->f)) {
		fprintf(stderr, "swactl: %s: the daemon closed the connection "
			"without an answer\n", t->mnt);
		return 1;
	}
	line[strcspn(line, "\n")] = '\0';
	if (!strcmp(line, "ready"))
		return 0;
	return ctl_parse_status(line, t->mnt, t->rest, sizeof(t->rest)) ?: 1;
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

/*
 * Commit (ok) or abort every prepared tree; returns the worst exit code.
 * Every "commit" is sent before any answer is read: each tree's writers
 * wait from its drain to its commit, and that must not include the other
 * trees' round trips.
 */
static int finish_all(struct tree *ts, int n, bool ok)
{
	int rc = 0;

	for (int k = 0; ok && k < n; k++)
		if (ts[k].f && ts[k].rc == 0 &&
		    write(fileno(ts[k].f), "commit\n", 7) != 7)
			ts[k].rc = 1;
	for (int k = 0; k < n; k++) {
		struct tree *t = &ts[k];

		if (!t->f)
			continue;
		if (ok && t->rc == 0)
			t->rc = ctl_status(t->f, t->mnt, t->rest,
					   sizeof(t->rest));
		/* closing without "commit" aborts a prepared tree */
		fclose(t->f);
		t->f = NULL;
	}
	/* a wait limit (3) explains the failure best, then the highest */
	for (int k = 0; k < n; k++)
		if (rc != 3 && (ts[k].rc == 3 || ts[k].rc > rc))
			rc = ts[k].rc;
	return rc;
}

static int take_one(const struct take_req *r, const char *mnt)
{
	struct tree t = { .r = r, .mnt = mnt };

	flush_mmaps(mnt);
	t.rc = connect_tree(&t);
	if (t.rc == 0)
		t.rc = send_take(&t, "checkpoint");
	if (t.rc == 0) {
		t.rc = ctl_status(t.f, NULL, t.rest, sizeof(t.rest));
		fclose(t.f);
	}
	if (t.rc == 0)
		printf("checkpoint %s taken on %s (%s)\n", r->name, mnt, t.rest);
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
		flush_mmaps(mnts[k]);
	}
	for (int k = 0; k < n && ready; k++)
		ready = !(ts[k].rc = connect_tree(&ts[k]));
	for (int k = 0; k < n && ready; k++)
		ready = !(ts[k].rc = send_take(&ts[k], "prepare"));
	for (int k = 0; k < n; k++) {
		if (ts[k].f)
			ts[k].rc = read_ready(&ts[k]);
		ready &= ts[k].rc == 0;
	}
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
	for (int k = 0; k < n && rc == 0; k++)
		printf("checkpoint %s taken on %s (%s)\n", r->name, mnts[k],
		       ts[k].rest);
	if (rc && n > 1)
		fprintf(stderr, "swactl: checkpoint %s not taken on any of the "
			"%d trees\n", r->name, n);
	free(ts);
	return rc;
}
