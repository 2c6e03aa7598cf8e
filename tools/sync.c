/*
 * sync.c - sync groups: the coordinator process and the job's side
 * (protocol in sync.h).
 *
 * The instant: jobs prepare their trees only after "go", so every tree
 * of every job is drained and held at once before any commits, exactly
 * as take.c does for the trees of one command.  A job waiting for the
 * others keeps its trees held with take_hold(): a daemon would abort a
 * prepared tree after 10 s without a word, and a slow job's drain or
 * --pre command may take longer than that.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "snapshot/parse.h"
#include "tools/ctlclient.h"
#include "tools/sync.h"
#include "tools/syncdir.h"

#define SYNC_PEERS (2 * SYNC_COUNT_MAX)	/* jobs plus passing requests */
#define SYNC_FOREIGN_MAX 16	/* connections of other users (info only) */
#define SYNC_FOREIGN_UID 4	/* ... of one of them */
#define SYNC_REPLY_MS 10000	/* a coordinator answers a request in this */
#define SYNC_GRACE_MS 5000	/* past the group's wait: it is gone */
#define SYNC_CAP_MS (365LL * 86400 * 1000)	/* even "nomax" ends */
#define SYNC_IDLE_MS 5000	/* a connection that asks nothing goes */
#define SYNC_HOLD_MS 2000	/* renew the daemons' holds this often */
#define SYNC_LINE 256

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Send a formatted line; never blocks, never raises SIGPIPE. */
__attribute__((format(printf, 2, 3)))
static int say(int fd, const char *fmt, ...)
{
	char buf[SYNC_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	return send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n
		? 0 : -1;
}

/* ---- the coordinator ------------------------------------------------ */

enum peer_state {
	PEER_NEW,	/* connected, request not read yet */
	PEER_JOINING,	/* has a slot, still telling its mounts */
	PEER_JOINED,	/* a job of the group */
	PEER_READY,	/* a job with every tree held, after go */
};

struct peer {
	int fd;
	enum peer_state state;
	uid_t uid;
	int64_t since;		/* accepted, ms */
	size_t len;
	char buf[SYNC_LINE];	/* input not yet a whole line */
};

/*
 * Invariants: joined counts the PEER_JOINING, PEER_JOINED and PEER_READY
 * peers, ready the PEER_READY ones; go only once no peer is PEER_JOINING
 * (a job whose mounts refuse it frees its slot, it does not abort the
 * group); ready > 0 only after go; over is set once commit,
 * abort or the answer to end was sent, and the coordinator then exits.
 */
struct coord {
	const char *id;
	int lfd;
	int dfd;		/* the socket's directory (tools/syncdir.h) */
	ino_t ino;		/* the socket's inode there */
	uid_t owner;
	unsigned count, joined, ready;
	bool go, nomax, over;
	int64_t t0, deadline;	/* ms, CLOCK_MONOTONIC */
	int npeers;
	struct peer peers[SYNC_PEERS];
};

static void peer_close(struct coord *g, int k)
{
	close(g->peers[k].fd);
	g->peers[k] = g->peers[--g->npeers];
}

/* Every job of the group gets word (abort timeout|ended|failed K N). */
static void coord_abort(struct coord *g, const char *why)
{
	for (int k = 0; k < g->npeers; k++)
		if (g->peers[k].state != PEER_NEW)
			say(g->peers[k].fd, "abort %s %u %u\n", why, g->joined,
			    g->count);
	g->over = true;
}

/* A job went away (or broke the protocol): before go it frees its slot. */
static void peer_gone(struct coord *g, int k)
{
	struct peer *p = &g->peers[k];

	if (p->state != PEER_NEW && g->go)
		coord_abort(g, "failed");
	else if (p->state != PEER_NEW)
		g->joined--;
	peer_close(g, k);
}

static void coord_info(struct coord *g, int fd)
{
	int64_t now = now_ms();
	char left[24] = "null";	/* no limit */

	if (!g->nomax)
		snprintf(left, sizeof(left), "%lld",
			 (long long)(g->deadline - now + 999) / 1000);
	say(fd, "ok id=%s count=%u joined=%u age_s=%lld wait_left_s=%s pid=%d "
	    "uid=%u\n", g->id, g->count, g->joined,
	    (long long)(now - g->t0) / 1000, left, (int)getpid(),
	    (unsigned)g->owner);
}

/* The first line of a connection: join, end or info.  False: closed. */
static bool peer_request(struct coord *g, int k, char *line)
{
	struct peer *p = &g->peers[k];
	bool allowed = p->uid == 0 || p->uid == g->owner;
	char *argv[CTLMSG_ARGS];
	int argc = ctlmsg_parse(line, argv);
	bool join = argc == 2 && !strcmp(argv[0], "join") &&
		    parse_name_ok(argv[1]);
	bool end = argc == 1 && !strcmp(argv[0], "end");

	if ((join || end) && !allowed)
		say(p->fd, "err 1 sync group %s: permission denied: only root "
		    "and the user who started it may join or end it\n", g->id);
	else if (join && (g->go || g->joined == g->count))
		say(p->fd, "err %d sync group %s in use: all %u jobs have "
		    "joined\n", SYNC_EXIT_IN_USE, g->id, g->count);
	else if (join) {
		p->state = PEER_JOINING;
		g->joined++;
		/* the wait left bounds how long the job waits for us */
		say(p->fd, "joined %u %u %lld\n", g->joined, g->count,
		    (long long)(g->deadline - now_ms()));
		return true;
	} else if (end) {
		unsigned waiting = g->joined;

		coord_abort(g, "ended");
		say(p->fd, "ok waiting=%u\n", waiting);
	} else if (argc == 1 && !strcmp(argv[0], "info"))
		coord_info(g, p->fd);
	else
		say(p->fd, "err 2 malformed sync group request\n");
	peer_close(g, k);
	return false;
}

/* One whole line from peer k.  False: the peer is gone. */
static bool peer_line(struct coord *g, int k, char *line)
{
	struct peer *p = &g->peers[k];

	if (p->state == PEER_NEW)
		return peer_request(g, k, line);
	if (p->state == PEER_JOINING && !strcmp(line, "noted")) {
		p->state = PEER_JOINED;
		return true;
	}
	if (p->state == PEER_JOINED && g->go && !strcmp(line, "ready")) {
		p->state = PEER_READY;
		g->ready++;
		return true;
	}
	/* "failed", or a word out of turn */
	peer_gone(g, k);
	return false;
}

static void peer_input(struct coord *g, int k)
{
	struct peer *p = &g->peers[k];
	ssize_t r = recv(p->fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len,
			 MSG_DONTWAIT);
	char line[SYNC_LINE], *nl;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0)
		return peer_gone(g, k);
	p->len += (size_t)r;
	while (!g->over && (nl = memchr(p->buf, '\n', p->len))) {
		size_t n = (size_t)(nl - p->buf);

		memcpy(line, p->buf, n);
		line[n] = '\0';
		p->len -= n + 1;
		memmove(p->buf, nl + 1, p->len);
		if (!peer_line(g, k, line))
			return;
	}
	if (p->len == sizeof(p->buf) - 1)	/* no line is that long */
		peer_gone(g, k);
}

/*
 * Other users may only ask for info: their connections are capped, per
 * uid and together, so that they never take the jobs' slots.
 */
static bool coord_room(const struct coord *g, uid_t uid)
{
	int all = 0, theirs = 0;

	if (g->npeers == SYNC_PEERS)
		return false;
	if (uid == 0 || uid == g->owner)
		return true;
	for (int k = 0; k < g->npeers; k++) {
		uid_t u = g->peers[k].uid;

		all += u != 0 && u != g->owner;
		theirs += u == uid;
	}
	return all < SYNC_FOREIGN_MAX && theirs < SYNC_FOREIGN_UID;
}

static void coord_accept(struct coord *g)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    !coord_room(g, cred.uid)) {
		close(fd);
		return;
	}
	g->peers[g->npeers++] = (struct peer){ .fd = fd, .uid = cred.uid,
					       .since = now_ms() };
}

static bool coord_joining(const struct coord *g)
{
	for (int k = 0; k < g->npeers; k++)
		if (g->peers[k].state == PEER_JOINING)
			return true;
	return false;
}

/* All joined: go.  All held: commit, and the group is over. */
static void coord_step(struct coord *g)
{
	if (!g->go && g->joined == g->count && !coord_joining(g)) {
		g->go = true;
		for (int k = 0; k < g->npeers; k++)
			if (g->peers[k].state == PEER_JOINED)
				say(g->peers[k].fd, "go\n");
	}
	if (g->go && g->ready == g->count) {
		for (int k = 0; k < g->npeers; k++)
			if (g->peers[k].state == PEER_READY)
				say(g->peers[k].fd, "commit\n");
		g->over = true;
	}
}

/* Poll timeout: the deadline, or the first idle connection to drop. */
static int coord_timeout(struct coord *g, int64_t now)
{
	int64_t t = g->deadline - now;

	for (int k = 0; k < g->npeers; k++)
		if (g->peers[k].state == PEER_NEW &&
		    g->peers[k].since + SYNC_IDLE_MS - now < t)
			t = g->peers[k].since + SYNC_IDLE_MS - now;
	return t < 0 ? 0 : t > 60000 ? 60000 : (int)t;
}

/*
 * One poll over the listening socket and every connection, never a
 * blocking call on one peer.  Peers are handled from the last down, so
 * peer_close() moving the last peer into a hole skips nobody.
 */
static void coord_run(struct coord *g)
{
	struct pollfd pf[SYNC_PEERS + 1];

	while (!g->over) {
		int64_t now = now_ms();
		int n = g->npeers;

		if (now >= g->deadline) {
			coord_abort(g, "timeout");
			break;
		}
		pf[0] = (struct pollfd){ .fd = g->lfd, .events = POLLIN };
		for (int k = 0; k < n; k++)
			pf[k + 1] = (struct pollfd){ .fd = g->peers[k].fd,
						     .events = POLLIN };
		if (poll(pf, (nfds_t)n + 1, coord_timeout(g, now)) < 0 &&
		    errno != EINTR)
			break;
		for (int k = n - 1; k >= 0 && !g->over; k--)
			if (pf[k + 1].revents)
				peer_input(g, k);
		now = now_ms();
		for (int k = g->npeers - 1; k >= 0 && !g->over; k--)
			if (g->peers[k].state == PEER_NEW &&
			    now - g->peers[k].since >= SYNC_IDLE_MS)
				peer_close(g, k);
		if (!g->over && (pf[0].revents & POLLIN))
			coord_accept(g);
		if (!g->over)
			coord_step(g);
	}
}

/*
 * The coordinator, in the child of `sync start`: detached from the
 * caller's session, terminal, files and working directory, so it holds
 * nothing but its socket (a mount it started in stays unmountable).
 */
static void coord_main(struct coord *g, int lfd, int dfd)
{
	int keep = fcntl(lfd, F_DUPFD_CLOEXEC, 5);
	int dkeep = fcntl(dfd, F_DUPFD_CLOEXEC, 5);
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (keep < 0 || dkeep < 0 || nul < 0 || setsid() < 0 || chdir("/") < 0)
		_exit(1);
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	if (dup3(keep, 3, O_CLOEXEC) < 0 || dup3(dkeep, 4, O_CLOEXEC) < 0)
		_exit(1);
	close_range(5, ~0U, 0);
	prctl(PR_SET_NAME, "swafs-sync");
	g->lfd = 3;
	g->dfd = 4;
	coord_run(g);
	/* a new group of the id may start once ours is gone */
	syncdir_unlink(g->dfd, g->id, g->ino);
	_exit(0);
}

int sync_start(const char *id, unsigned count, int64_t wait_ms)
{
	struct coord *g = NULL;
	uid_t me = geteuid();
	int dfd = syncdir_open(me, true), lfd = -1, rc = 1;
	pid_t pid;

	if (dfd < 0)
		return 1;	/* said why */
	lfd = syncdir_listen(dfd, me, id);
	if (lfd < 0) {
		if (lfd == -EADDRINUSE)
			rc = SYNC_EXIT_STARTED;
		fprintf(stderr, "swactl: sync group %s %s%s\n", id,
			rc == SYNC_EXIT_STARTED ? "already started"
						: "cannot be started: ",
			rc == SYNC_EXIT_STARTED ? "" : strerror(-lfd));
		goto out;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		fprintf(stderr, "swactl: out of memory\n");
		goto out;
	}
	*g = (struct coord){ .id = id, .owner = me, .count = count,
			     .nomax = wait_ms < 0, .t0 = now_ms(),
			     .ino = syncdir_ino(dfd, id) };
	g->deadline = g->t0 + (wait_ms < 0 ? SYNC_CAP_MS : wait_ms);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		coord_main(g, lfd, dfd);
	if (pid < 0) {
		fprintf(stderr, "swactl: sync group %s cannot be started: %s\n",
			id, strerror(errno));
		goto out;
	}
	printf("sync group %s started: waiting for %u job%s, coordinator pid "
	       "%d\n", id, count, count == 1 ? "" : "s", (int)pid);
	rc = 0;
out:
	free(g);
	if (lfd >= 0)
		close(lfd);
	close(dfd);
	return rc;
}

/* ---- talking to a coordinator --------------------------------------- */

/* Bound each receive on fd to ms (at least 1 ms). */
static void set_deadline(int fd, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	if (ms < 1)
		tv = (struct timeval){ .tv_usec = 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/*
 * Read one line (without its newline), byte by byte: no read-ahead.  Every
 * receive is bounded (set_deadline): a timeout reads as the coordinator
 * gone.
 */
static int recv_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size - 1) {
		ssize_t r = recv(fd, buf + n, 1, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return 0;
		}
		n++;
	}
	return -1;
}

struct find {
	const char *id;
	int fd;			/* the socket, or -errno of the last try */
};

static bool find_in(int dfd, uid_t owner, void *arg)
{
	struct find *f = arg;

	f->fd = syncdir_connect(dfd, owner, f->id);
	return f->fd >= 0 || f->fd == -EPERM;
}

/*
 * Connect to group id's coordinator: in the caller's directory, then
 * root's, and for root with users every user's (tools/syncdir.h), so a
 * job joins only a group of root's or of its own user.  Returns the
 * socket, its receives bounded, or minus the exit code (reported).
 */
static int sync_connect(const char *id, bool users)
{
	struct find f = { .id = id, .fd = -ENOENT };

	syncdir_each(users, find_in, &f);
	if (f.fd >= 0) {
		set_deadline(f.fd, SYNC_REPLY_MS);
		return f.fd;
	}
	if (f.fd == -ENOENT || f.fd == -ECONNREFUSED) {
		fprintf(stderr, "swactl: sync group %s not started\n", id);
		return -SYNC_EXIT_NOT_STARTED;
	}
	if (f.fd != -EPERM)
		fprintf(stderr, "swactl: cannot reach sync group %s: %s\n", id,
			strerror(-f.fd));
	return -1;
}

/* An "err EXIT MESSAGE" answer: print MESSAGE, return EXIT. */
static int coord_error(const char *id, const char *line)
{
	const char *msg;
	int code;

	if (sscanf(line, "err %d", &code) == 1 && code >= 1 &&
	    code <= SYNC_EXIT_IN_USE && (msg = strchr(line + 4, ' '))) {
		fprintf(stderr, "swactl: %s\n", msg + 1);
		return code;
	}
	fprintf(stderr, "swactl: sync group %s: unexpected answer from its "
		"coordinator\n", id);
	return 1;
}

int sync_end(const char *id)
{
	char line[SYNC_LINE];
	unsigned waiting;
	int fd = sync_connect(id, true), rc;

	if (fd < 0)
		return -fd;
	if (say(fd, "end\n") < 0 || recv_line(fd, line, sizeof(line)) < 0) {
		fprintf(stderr, "swactl: sync group %s: its coordinator went "
			"away\n", id);
		rc = 1;
	} else if (sscanf(line, "ok waiting=%u", &waiting) == 1) {
		printf("sync group %s ended: %u %s waiting\n", id, waiting,
		       waiting == 1 ? "job was" : "jobs were");
		rc = 0;
	} else {
		rc = coord_error(id, line);
	}
	close(fd);
	return rc;
}

struct each {
	void (*fn)(char *record, void *arg);
	void *arg;
};

/* Every group of one directory; false: go on to the next. */
static bool list_in(int dfd, uid_t owner, void *arg)
{
	struct each *e = arg;
	char reply[SYNC_LINE], id[80];
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	struct dirent *de;

	if (!d && dup >= 0)
		close(dup);
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		int fd;

		if (n < 6 || n - 5 >= sizeof(id) ||
		    strcmp(de->d_name + n - 5, ".sock"))
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(n - 5), de->d_name);
		if (!parse_name_ok(id))
			continue;
		/* a group that ends meanwhile is simply not listed */
		fd = syncdir_connect(dfd, owner, id);
		if (fd < 0)
			continue;
		set_deadline(fd, SYNC_REPLY_MS);
		if (say(fd, "info\n") == 0 &&
		    recv_line(fd, reply, sizeof(reply)) == 0 &&
		    !strncmp(reply, "ok ", 3))
			e->fn(reply + 3, e->arg);
		close(fd);
	}
	if (d)
		closedir(d);
	return false;
}

void sync_each(void (*fn)(char *record, void *arg), void *arg)
{
	struct each e = { .fn = fn, .arg = arg };

	syncdir_each(true, list_in, &e);
}

/* ---- a job of the group --------------------------------------------- */

struct job {
	const char *id;
	const struct take_req *r;
	char *const *mnts;
	int n;
	int fd;			/* to the coordinator */
	int64_t deadline;	/* ms: the group's wait is over by then */
	unsigned joined, count;
	bool decided;		/* the coordinator said commit or abort */
	bool committed;		/* it said commit: the other jobs commit */
};

/* Tell every daemon of the job: note EVENT ID NAME JOINED COUNT. */
static int job_note(struct job *j, const char *event, unsigned joined,
		    unsigned count)
{
	char why[512], rest[64], k[16], n[16];
	int rc = 0;

	snprintf(k, sizeof(k), "%u", joined);
	snprintf(n, sizeof(n), "%u", count);
	for (int m = 0; m < j->n; m++) {
		char *argv[] = { "note", (char *)event, (char *)j->id,
				 (char *)j->r->name, k, n };
		int fd = ctl_connect(j->mnts[m], why, sizeof(why));
		FILE *f = fd >= 0 ? ctl_request(fd, 6, argv) : NULL;

		if (fd < 0)
			fprintf(stderr, "swactl: %s\n", why);
		else if (!f)
			close(fd);
		if (!f || ctl_status(f, j->mnts[m], rest, sizeof(rest)))
			rc = 1;
		if (f)
			fclose(f);
	}
	return rc;
}

/* The coordinator's last word (line NULL: it went away); exit code. */
static int job_decision(struct job *j, const char *line)
{
	const char *id = j->id, *name = j->r->name;
	unsigned joined, count;
	char why[16];

	j->decided = true;
	if (line && !strcmp(line, "commit")) {
		j->committed = true;
		return 0;
	}
	if (!line || sscanf(line, "abort %15s %u %u", why, &joined,
			    &count) != 3) {
		fprintf(stderr, "swactl: sync group %s: its coordinator went "
			"away; checkpoint %s not taken\n", id, name);
		return 1;
	}
	if (!strcmp(why, "timeout")) {
		job_note(j, "sync-timeout", joined, count);
		fprintf(stderr, "swactl: sync group %s: wait time exceeded: "
			"%u of %u jobs joined; checkpoint %s not taken\n", id,
			joined, count, name);
		return 3;
	}
	if (!strcmp(why, "ended")) {
		job_note(j, "sync-ended", joined, count);
		fprintf(stderr, "swactl: sync group %s ended before its "
			"instant; checkpoint %s not taken\n", id, name);
		return 1;
	}
	fprintf(stderr, "swactl: sync group %s: another job of the group "
		"failed; checkpoint %s not taken\n", id, name);
	return 1;
}

/* Called by take_all with every tree held: wait for the whole group. */
static int job_barrier(void *arg, struct take_held *h)
{
	struct job *j = arg;
	struct pollfd p = { .fd = j->fd, .events = POLLIN };
	char line[SYNC_LINE];
	int r;

	/* if this fails the coordinator is gone: the read below says so */
	say(j->fd, "ready\n");
	for (;;) {
		r = poll(&p, 1, SYNC_HOLD_MS);
		if (r > 0 || (r < 0 && errno != EINTR) || now_ms() > j->deadline)
			break;
		if (r == 0 && take_hold(h))
			return 1;	/* a daemon gave up: we fail */
	}
	set_deadline(j->fd, j->deadline - now_ms());
	return job_decision(j, recv_line(j->fd, line, sizeof(line)) == 0
			       ? line : NULL);
}

/* Join: 0 with j->joined, j->count and j->deadline set, else the exit
 * code. */
static int job_join(struct job *j)
{
	char line[SYNC_LINE];
	long long left;

	if (say(j->fd, "join %s\n", j->r->name) < 0 ||
	    recv_line(j->fd, line, sizeof(line)) < 0) {
		fprintf(stderr, "swactl: sync group %s: its coordinator went "
			"away\n", j->id);
		return 1;
	}
	if (sscanf(line, "joined %u %u %lld", &j->joined, &j->count,
		   &left) != 3 || left < 0)
		return coord_error(j->id, line);
	j->deadline = now_ms() + left + SYNC_GRACE_MS;
	/*
	 * A mount we may not change (or no swafs mount) fails here: the
	 * group goes only once every job has said "noted", so our "failed"
	 * frees our slot instead of aborting the group.
	 */
	if (job_note(j, "sync-joined", j->joined, j->count)) {
		fprintf(stderr, "swactl: checkpoint %s not joined to sync group "
			"%s: a tree refused it (above)\n", j->r->name, j->id);
		return 1;
	}
	if (say(j->fd, "noted\n") < 0) {
		fprintf(stderr, "swactl: sync group %s: its coordinator went "
			"away\n", j->id);
		return 1;
	}
	printf("checkpoint %s joined sync group %s (%u of %u jobs)\n",
	       j->r->name, j->id, j->joined, j->count);
	fflush(stdout);
	return 0;
}

int sync_join(const char *id, const struct take_req *r, char *const mnts[],
	      int n, int (*before)(void *arg), void *arg)
{
	struct job j = { .id = id, .r = r, .mnts = mnts, .n = n };
	char line[SYNC_LINE];
	int rc;

	j.fd = sync_connect(id, false);
	if (j.fd < 0)
		return -j.fd;
	rc = job_join(&j);
	if (rc == 0) {
		bool got;

		set_deadline(j.fd, j.deadline - now_ms());
		got = recv_line(j.fd, line, sizeof(line)) == 0;

		if (got && !strcmp(line, "go"))
			rc = before ? before(arg) : 0;
		else	/* "commit" before "go" is nonsense: fail */
			rc = job_decision(&j, got ? line : NULL) ?: 1;
	}
	if (rc == 0)
		rc = take_all(r, mnts, n, job_barrier, &j);
	/* leaving before go frees our slot; after go it aborts the group */
	if (rc && !j.decided)
		say(j.fd, "failed\n");
	if (rc && j.committed)
		fprintf(stderr, "swactl: sync group %s: the other jobs committed "
			"and keep checkpoint %s (this job cannot tell them)\n",
			id, r->name);
	close(j.fd);
	return rc;
}
