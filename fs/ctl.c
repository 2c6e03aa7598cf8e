/*
 * ctl.c - the control socket of a live tree (protocol: snapshot/ctlmsg.h).
 *
 * Anyone who can reach the socket may read (list, events); only root and
 * the user who mounted may change checkpoints or mount views (peer
 * credentials, SO_PEERCRED).  Every argument is validated before use.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "fs/ctl.h"
#include "fs/view.h"
#include "snapshot/ctlconn.h"
#include "snapshot/ckeep.h"
#include "snapshot/ctlmsg.h"
#include "snapshot/events.h"
#include "snapshot/hist.h"
#include "snapshot/parse.h"

#define CTL_WAIT_MAX_MS (365ull * 86400 * 1000)
#define CTL_LIST_MAX 256
#define CTL_STEP_NS (10 * 1000000000ll)	/* the client's next word */
#define CTL_PAUSE_NS (100 * 1000000ll)	/* no accept after EMFILE */
#define CTL_EVENTS 64			/* per epoll_wait, and accepts per wake */

/*
 * The server: one loop thread (epoll) owns the listening socket and every
 * connection still sending its request line; a complete request goes to
 * a worker thread of its own, bounded by the caps of ctlconn.h.
 *
 * Invariants:
 *  1. a connection is on the loop's list (head..tail, in the order of
 *     their deadlines: all get the same time from accept) and in the
 *     epoll set, or it belongs to exactly one worker; never both.
 *  2. every connection holds one CTLCONN_CONN use of its uid; one served
 *     by a worker also holds its CTLCONN_WORK or CTLCONN_FOLLOW use.
 *  3. nwork counts the workers that still use the mount's state;
 *     ctl_stop() waits for it to reach 0 after the loop has ended.
 * Lock notes: lock guards nwork only; the list, resume_ns and spare
 * belong to the loop thread; uses has a lock of its own.
 */
struct ctl {
	struct fs_ctx *ctx;
	struct ctlconn_table *uses;
	int64_t deadline_ns;	/* to send a whole request line */
	int dirfd;		/* the checked directory of the socket */
	int lfd;		/* listening socket */
	bool bound;		/* lfd has its name in dirfd */
	int epfd, wakefd;	/* the loop's set; ctl_stop's wake-up */
	int spare;		/* given up to drop a client at EMFILE */
	int64_t resume_ns;	/* listening paused until then (0: not) */
	struct conn *head, *tail;
	pthread_t thread;
	bool running;
	char dir[CTLMSG_PATH_MAX];
	char name[32];
	atomic_bool stopping;	/* ends long requests (events --follow) */
	pthread_mutex_t lock;
	pthread_cond_t idle;	/* nwork reached 0 */
	unsigned nwork;
};

struct conn {
	struct ctl *ctl;
	struct fs_ctx *ctx;
	int fd;
	uid_t uid;		/* peer */
	bool priv;		/* root or the owner */
	struct ctlconn_kind kind;	/* of its request, once whole */
	int64_t deadline;	/* CLOCK_MONOTONIC: the whole line by then */
	struct conn *prev, *next;
	size_t len;		/* of line, so far */
	int argc;
	char *argv[CTLMSG_ARGS];
	char line[CTLMSG_MAX];
};

/* Send a formatted reply chunk; errors mean the client went away. */
__attribute__((format(printf, 2, 3)))
static int say(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	return send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/*
 * Read one line and nothing after it (a client may send "commit" right
 * after "hold"); returns its length or -1.
 */
static ssize_t read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size - 1) {
		ssize_t r = recv(fd, buf + n, size - 1 - n, MSG_PEEK), len;
		char *nl = r > 0 ? memchr(buf + n, '\n', (size_t)r) : NULL;

		if (r > 0)
			r = recv(fd, buf + n, nl ? (size_t)(nl - buf - n) + 1
						 : (size_t)r, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		len = ctlmsg_frame(buf, n);
		if (len != -EAGAIN)
			return len < 0 ? -1 : len;
	}
	return -1;	/* longer than the protocol allows */
}

/* A --path must name something in BACKING, reached without symlinks. */
static int check_scope_path(struct conn *c, const char *rel)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH |
					   RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	int root = ino_table_root_fd(c->ctx->itab);
	long fd = syscall(SYS_openat2, root, rel, &how, sizeof(how));

	if (fd >= 0) {
		close((int)fd);
		return 0;
	}
	if (errno == EXDEV || errno == ELOOP)
		say(c->fd, "err 2 --path '%s' leads outside the tree or through "
		    "a symlink; give a path inside it\n", rel);
	else
		say(c->fd, "err 1 --path '%s': %s\n", rel, errno == ENOENT ?
		    "no such file or directory in the tree" : strerror(errno));
	return -1;
}

/* What a checkpoint or prepare request asks for. */
struct take_args {
	const char *name;
	unsigned flags;
	int64_t wait_ns;	/* < 0: no limit */
	bool boundary;		/* wait for open transactions first */
	int64_t boundary_ns;	/* < 0: no limit */
	int64_t others_ns;	/* < 0: other users' holders delay it all along */
	int64_t keep_ns;	/* > 0: released this long after T at the latest */
	const char *const *paths;
	size_t npaths;
};

/* MILLISECONDS or "nomax" into *ns (< 0: no limit); -1 if malformed. */
static int parse_ms(const char *s, int64_t *ns)
{
	uint64_t ms;

	if (!strcmp(s, "nomax")) {
		*ns = -1;
		return 0;
	}
	if (parse_u64(s, 0, CTL_WAIT_MAX_MS, &ms))
		return -1;
	*ns = (int64_t)ms * 1000000;
	return 0;
}

/*
 * The boundary argument: off, or nomax|BOUNDARY_MS, optionally followed by
 * ":OTHERS_MS" (how long other users' holders may delay it).
 */
static int parse_boundary(char *arg, struct take_args *t)
{
	char *others = strchr(arg, ':');

	t->boundary = strcmp(arg, "off");
	t->others_ns = -1;
	if (others)
		*others++ = '\0';
	if (!t->boundary)
		return others ? -1 : 0;
	return parse_ms(arg, &t->boundary_ns) ||
	       (others && (parse_ms(others, &t->others_ns) ||
			   t->others_ns < 0)) ? -1 : 0;
}

/*
 * VERB NAME saved|all KEEP WAIT_MS|nomax BOUNDARY [PATH...] (BOUNDARY:
 * parse_boundary); says why if not.
 */
/* KEEP of a take: 0, 1 (until released), or 1:MS (at most MS ms). */
static int parse_keep(const char *s, struct take_args *t)
{
	uint64_t keep = 1, ms = 0;

	if (!strncmp(s, "1:", 2)) {
		if (parse_u64(s + 2, 1, CTL_WAIT_MAX_MS, &ms))
			return -EINVAL;
	} else if (parse_u64(s, 0, 1, &keep)) {
		return -EINVAL;
	}
	t->flags = keep ? CKPT_KEEP : 0;
	t->keep_ns = (int64_t)ms * 1000000;
	return 0;
}

static int parse_take(struct conn *c, int argc, char **argv,
		      struct take_args *t)
{
	if (argc < 6 || argc > 6 + CKPT_SCOPE_MAX || !parse_name_ok(argv[1]) ||
	    (strcmp(argv[2], "saved") && strcmp(argv[2], "all")) ||
	    parse_keep(argv[3], t) ||
	    parse_ms(argv[4], &t->wait_ns) || parse_boundary(argv[5], t)) {
		say(c->fd, "err 2 malformed %s request\n", argv[0]);
		return -1;
	}
	for (int k = 6; k < argc; k++)
		if (check_scope_path(c, argv[k]) < 0)
			return -1;
	t->name = argv[1];
	t->flags |= strcmp(argv[2], "all") ? 0 : CKPT_RETAIN_ALL;
	t->paths = (const char *const *)argv + 6;
	t->npaths = (size_t)argc - 6;
	return 0;
}

/*
 * The daemon stops: ctl_stop() was called, or the session is ending (a
 * signal, an unmount).  Held trees must let go at once then: the session
 * loop waits for calls held in the drain before ctl_stop() can run.
 */
static bool ctl_stopping(const struct conn *c)
{
	return atomic_load(&c->ctl->stopping) ||
	       (c->ctx->se && fuse_session_exited(c->ctx->se));
}

/* A boundary wait on a connection: progress lines, the holders at the end. */
struct bwait {
	struct conn *c;
	char why[768];		/* "N transaction(s) ...: pid P (uid U), ..." */
	struct txn_wait w;
};

/* holders as "PID:UID,..." or, human, "pid P (uid U), ..." */
static void holder_list(const struct txn_report *r, bool human, char *buf,
			size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < r->n && o < size; k++) {
		const struct txn_holder *h = &r->holders[k];

		o += (size_t)snprintf(buf + o, size - o, human ?
				      "%spid %d (uid %u)" : "%s%d:%u",
				      k ? (human ? ", " : ",") : "",
				      (int)h->pid, (unsigned)h->uid);
	}
	if (human && r->count > r->n && o < size)
		snprintf(buf + o, size - o, " and %zu more", r->count - r->n);
}

/*
 * Every report interval: "wait boundary waited_s=S count=N holders=LIST".
 * At the end: keep the reason for the error line.
 */
static void bwait_report(void *arg, const struct txn_report *r)
{
	struct bwait *b = arg;
	char list[640];

	holder_list(r, r->final, list, sizeof(list));
	if (r->final)
		snprintf(b->why, sizeof(b->why), "%zu transaction(s) still "
			 "open after %g s: %s", r->count,
			 (double)b->w.timeout_ns / 1e9, list);
	else
		say(b->c->fd, "wait boundary waited_s=%lld count=%zu "
		    "holders=%s\n", (long long)(r->waited_ns / 1000000000),
		    r->count, list);
}

/* The client sent something or went away, or the daemon stops. */
static bool bwait_cancelled(void *arg)
{
	struct bwait *b = arg;
	struct pollfd p = { .fd = b->c->fd, .events = POLLIN | POLLRDHUP };

	return ctl_stopping(b->c) || poll(&p, 1, 0) > 0;
}

/* Say why a checkpoint could not be prepared. */
static void say_take_error(struct conn *c, const char *name, int rc,
			   const struct bwait *b)
{
	if (rc == -EINVAL)
		say(c->fd, "err 2 invalid --path: want a relative path inside "
		    "the tree without '.', '..' or '//'\n");
	else if (rc == -EEXIST)
		say(c->fd, "err 1 checkpoint '%s' already exists\n", name);
	else if (rc == -ETIMEDOUT && b)
		say(c->fd, "err 3 checkpoint '%s' not taken: %s\n", name,
		    b->why);
	else if (rc == -ETIMEDOUT)
		say(c->fd, "err 3 checkpoint '%s' not taken: modifying calls "
		    "did not drain within the wait time\n", name);
	else if (rc == -ECANCELED)
		say(c->fd, "err 1 checkpoint '%s' not taken: the boundary wait "
		    "was cancelled\n", name);
	else
		say(c->fd, "err 1 checkpoint '%s' not taken: %s\n", name,
		    strerror(-rc));
}

/* Step 1 of a checkpoint: the boundary wait, if asked for. */
static int bound(struct conn *c, const struct take_args *t,
		 struct ckpt_prep **p)
{
	struct bwait b = { .c = c };
	int rc;

	b.w = (struct txn_wait){ .timeout_ns = t->boundary_ns,
				 .report_ns = c->ctx->boundary_report_ns,
				 .report = bwait_report,
				 .cancelled = bwait_cancelled, .arg = &b,
				 .bound_others = t->others_ns >= 0,
				 .others_ns = t->others_ns,
				 .owner = c->ctx->owner };
	rc = ckpt_bound(c->ctx->ckpts, t->name, t->flags, t->paths, t->npaths,
			t->boundary ? &b.w : NULL, p);
	if (rc < 0)
		say_take_error(c, t->name, rc, &b);
	return rc;
}

/* Step 2: the drain. */
static int drain(struct conn *c, const struct take_args *t,
		 struct ckpt_prep *p)
{
	int rc = ckpt_drain(p, t->wait_ns);

	if (rc < 0)
		say_take_error(c, t->name, rc, NULL);
	return rc;
}

/* The answer to a commit: the pause writers saw and the instant T. */
static void say_taken(struct conn *c, const struct take_args *a,
		      uint64_t pause_us)
{
	struct ckpt *ck = ckpt_get(c->ctx->ckpts, a->name);
	const struct timespec *t = ck ? ckpt_time(ck) : NULL;
	long long t_ns = t ? t->tv_sec * 1000000000ll + t->tv_nsec : 0;

	if (ck && a->keep_ns > 0 && ckeep_add(c->ctx->keep, ck, a->keep_ns) < 0) {
		/* never kept past what was asked */
		ckpt_release_this(ck);
		ckpt_put(ck);
		say(c->fd, "err 1 checkpoint '%s' released at once: no memory "
		    "to bound its --keep-for\n", a->name);
		return;
	}
	ckpt_put(ck);
	say(c->fd, "ok pause_us=%lu t_ns=%lld\n", (unsigned long)pause_us, t_ns);
}

static void cmd_checkpoint(struct conn *c, int argc, char **argv)
{
	struct ckpt_prep *p;
	struct take_args t;

	if (parse_take(c, argc, argv, &t) < 0 || bound(c, &t, &p) < 0 ||
	    drain(c, &t, p) < 0)
		return;
	say_taken(c, &t, ckpt_commit(p));
}

/*
 * Wait for the client's next line to be want: at most limit_ns (< 0: as
 * long as the client stays and the daemon runs).  Each "hold" restarts
 * the limit: a client still waiting for other trees or other jobs of a
 * sync group keeps its trees held, one that hangs loses them.
 */
static bool await_word(struct conn *c, const char *want, int64_t limit_ns)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int64_t left = limit_ns;
	char line[16];
	int r = 0;

	for (;;) {
		while (r == 0 && (limit_ns < 0 || left > 0) &&
		       !ctl_stopping(c)) {
			r = poll(&p, 1, 250);
			left -= 250 * 1000000ll;
			if (r < 0 && errno == EINTR)
				r = 0;
		}
		if (r <= 0 || read_line(c->fd, line, sizeof(line)) <= 0)
			return false;
		if (strcmp(line, "hold"))
			return !strcmp(line, want);
		left = limit_ns;
		r = 0;
	}
}

/*
 * The client closed its socket before we got to its request: swactl gave
 * up waiting (a stopped or busy daemon) and said the request failed, so
 * carrying it out now would contradict what the user was told.  (POLLHUP
 * means both directions are shut: a client that only shut its sending
 * side still waits for the answer.)
 */
static bool client_gone(int fd)
{
	struct pollfd p = { .fd = fd };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

/*
 * A checkpoint common to several trees, in phases on one connection:
 * boundary wait, answer "bounded", wait for "drain" (the other trees may
 * still wait for their boundary: as long as the boundary limit, plus the
 * usual step time), drain, answer "ready", hold the calls until "commit".
 * Anything else — another word, the client going away, a time limit —
 * aborts, and no checkpoint exists.
 */
static void cmd_prepare(struct conn *c, int argc, char **argv)
{
	struct ckpt_prep *p;
	struct take_args t;
	int64_t step = CTL_STEP_NS;

	if (parse_take(c, argc, argv, &t) < 0 || bound(c, &t, &p) < 0)
		return;
	if (t.boundary)
		step = t.boundary_ns < 0 ? -1 : t.boundary_ns + CTL_STEP_NS;
	if (say(c->fd, "bounded\n") < 0 || !await_word(c, "drain", step)) {
		ckpt_abort(p);
		return (void)say(c->fd, "err 1 checkpoint '%s' aborted before "
				 "its instant\n", t.name);
	}
	if (drain(c, &t, p) < 0)
		return;
	/* a client that gave up (a stopped daemon resumed) gets no commit */
	if (say(c->fd, "ready\n") == 0 && await_word(c, "commit", CTL_STEP_NS) &&
	    !client_gone(c->fd)) {
		say_taken(c, &t, ckpt_commit(p));
		return;
	}
	ckpt_abort(p);
	say(c->fd, "err 1 checkpoint '%s' aborted before its instant\n",
	    t.name);
}

/* Views go only where fs/vmount.h allows, for the uid that asked. */
static void cmd_mount(struct conn *c, int argc, char **argv)
{
	int rc;

	if (argc != 3 || !parse_name_ok(argv[1]) || argv[2][0] != '/')
		return (void)say(c->fd, "err 2 malformed mount request\n");
	rc = view_mount(c->ctx, argv[1], argv[2], c->uid);
	if (rc == -ENOENT)
		say(c->fd, "err 1 no checkpoint '%s' (or no directory '%s')\n",
		    argv[1], argv[2]);
	else if (rc == -EBUSY)
		say(c->fd, "err 1 '%s' already holds a view\n", argv[2]);
	else if (rc == -EXDEV)
		say(c->fd, "err 1 cannot mount '%s' on '%s': it lies inside the "
		    "live tree, whose directories a view would hide; choose "
		    "one outside it\n", argv[1], argv[2]);
	else if (rc == -ELOOP)
		say(c->fd, "err 1 cannot mount '%s' on '%s': a symlink in the "
		    "path (give the real path)\n", argv[1], argv[2]);
	else if (rc == -EPERM)
		say(c->fd, "err 1 cannot mount '%s' on '%s': it is not yours, or "
		    "a directory above it belongs to another user or is "
		    "writable by others\n", argv[1], argv[2]);
	else if (rc < 0)
		say(c->fd, "err 1 cannot mount '%s' on '%s': %s\n", argv[1],
		    argv[2], strerror(-rc));
	else
		say(c->fd, "ok\n");
}

static void cmd_release(struct conn *c, int argc, char **argv)
{
	if (argc != 2 || !parse_name_ok(argv[1]))
		return (void)say(c->fd, "err 2 malformed release request\n");
	if (ckpt_release(c->ctx->ckpts, argv[1]) < 0)
		say(c->fd, "err 1 no checkpoint '%s'\n", argv[1]);
	else
		say(c->fd, "ok\n");
}

static void cmd_list(struct conn *c)
{
	struct ckpt_info *infos = calloc(CTL_LIST_MAX, sizeof(*infos));
	size_t n;

	if (!infos)
		return (void)say(c->fd, "err 1 out of memory\n");
	n = ckpt_list(c->ctx->ckpts, infos, CTL_LIST_MAX);
	if (n > CTL_LIST_MAX)
		n = CTL_LIST_MAX;
	say(c->fd, "ok count=%zu\n", n);
	for (size_t k = 0; k < n && c->priv; k++) {
		struct ckpt_info *i = &infos[k];

		say(c->fd, "name=%s t=%ld pause_us=%lu valid=%d views=%u "
		    "retain=%s keep=%d objects=%lu captured_blocks=%lu "
		    "captured_bytes=%lu files_released=%lu t_ns=%lld\n", i->name,
		    (long)i->t_sec, (unsigned long)i->pause_us, i->valid,
		    i->views, i->flags & CKPT_RETAIN_ALL ? "all" : "saved",
		    !!(i->flags & CKPT_KEEP), (unsigned long)i->objs.objects,
		    (unsigned long)i->objs.captured_blocks,
		    (unsigned long)i->objs.captured_bytes,
		    (unsigned long)i->objs.released, (long long)i->t_ns);
	}
	free(infos);
}

/* Append " KEY=VALUE" (encoded, see ctlmsg.h) to the record in buf. */
__attribute__((format(printf, 4, 5)))
static void kv(char *buf, size_t size, const char *key, const char *fmt, ...)
{
	char item[600];
	va_list ap;
	int n = snprintf(item, sizeof(item), "%s=", key);

	va_start(ap, fmt);
	vsnprintf(item + n, sizeof(item) - (size_t)n, fmt, ap);
	va_end(ap);
	ctlmsg_add(buf, size, item);
}

/* Send a record built by kv() (longer than say() takes), as one line. */
static int send_line(int fd, char *line, size_t size)
{
	size_t n = strnlen(line, size - 1);

	line[n++] = '\n';
	return send(fd, line, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* A number, or "null" when v < 0 (not known). */
static void kv_num(char *buf, size_t size, const char *key, double v,
		   int prec)
{
	if (v < 0)
		kv(buf, size, key, "null");
	else
		kv(buf, size, key, "%.*f", prec, v);
}

static const char *const on_full_names[] = {
	[CKPT_FULL_INVALIDATE] = "invalidate",
	[CKPT_FULL_FAIL_WRITES] = "fail-writes",
	[CKPT_FULL_THROTTLE] = "throttle",
};

/* The store's limit and policy, and the writers it holds (throttle). */
static void kv_policy(char *line, size_t size, const struct ckpt_status *st)
{
	const struct ckpt_store_info *p = &st->policy;

	kv(line, size, "on_full", "%s", on_full_names[p->on_full]);
	kv(line, size, "store_used_bytes", "%lu", (unsigned long)p->used_bytes);
	kv(line, size, "store_max_bytes", "%lu", (unsigned long)p->max_bytes);
	kv(line, size, "throttled", "%u", p->throttled);
	kv(line, size, "throttle_waits", "%lu",
	   (unsigned long)p->throttle_waits);
	kv_num(line, size, "throttle_wait_s", (double)p->throttle_wait_us / 1e6,
	       3);
}

/*
 * The checkpoint being taken: its phase, for how long, and in a boundary
 * wait the open transactions that delay it.
 */
static void say_pending(struct conn *c, const struct ckpt_status *st)
{
	struct txn_holder h[TXN_REPORT_MAX];
	char line[CTLMSG_MAX] = "", list[640] = "";
	size_t count = 0;

	if (st->phase == CKPT_PHASE_BOUNDARY && c->ctx->txn) {
		count = txn_holders(c->ctx->txn, h, TXN_REPORT_MAX);
		holder_list(&(struct txn_report){ .count = count,
			    .holders = h, .n = count < TXN_REPORT_MAX ? count
			    : TXN_REPORT_MAX }, false, list, sizeof(list));
	}
	kv(line, sizeof(line), "name", "%s", st->info.name);
	kv(line, sizeof(line), "state", "%s", st->state);
	kv_num(line, sizeof(line), "age_s", st->age_s, 1);
	kv(line, sizeof(line), "open", "%zu", count);
	kv(line, sizeof(line), "holders", "%s", list);
	kv_policy(line, sizeof(line), st);
	send_line(c->fd, line, sizeof(line));
}

static void say_status(struct conn *c, const struct ckpt_status *st)
{
	const struct cobj_stats *o = &st->info.objs;
	bool known = st->tsize == CPROG_DONE;
	char line[CTLMSG_MAX] = "";

	kv(line, sizeof(line), "name", "%s", st->info.name);
	kv(line, sizeof(line), "state", "%s", st->state);
	kv(line, sizeof(line), "t", "%ld", (long)st->info.t_sec);
	kv_num(line, sizeof(line), "age_s", st->age_s, 1);
	kv(line, sizeof(line), "pause_us", "%lu",
	   (unsigned long)st->info.pause_us);
	kv(line, sizeof(line), "views", "%u", st->info.views);
	kv(line, sizeof(line), "t_size_state", "%s",
	   cprog_tsize_name(st->tsize));
	kv_num(line, sizeof(line), "t_size_bytes",
	       known ? (double)st->t_size_bytes : -1, 0);
	kv_num(line, sizeof(line), "t_files", known ? (double)st->t_files : -1,
	       0);
	kv(line, sizeof(line), "saved_bytes", "%lu",
	   (unsigned long)o->saved_bytes);
	kv_num(line, sizeof(line), "saved_pct", st->saved_pct, 1);
	kv(line, sizeof(line), "files_released", "%lu",
	   (unsigned long)o->released);
	kv(line, sizeof(line), "captures", "%lu",
	   (unsigned long)o->captured_blocks);
	kv(line, sizeof(line), "captured_bytes", "%lu",
	   (unsigned long)o->captured_bytes);
	kv(line, sizeof(line), "held_bytes", "%lu", (unsigned long)o->held_bytes);
	kv(line, sizeof(line), "peak_held_bytes", "%lu",
	   (unsigned long)o->peak_held_bytes);
	kv(line, sizeof(line), "store_mem_bytes", "%lu",
	   (unsigned long)st->store.mem_bytes);
	kv(line, sizeof(line), "store_disk_bytes", "%lu",
	   (unsigned long)st->store.disk_bytes);
	kv(line, sizeof(line), "store_raw_bytes", "%lu",
	   (unsigned long)st->store.raw_bytes);
	kv(line, sizeof(line), "store_stored_bytes", "%lu",
	   (unsigned long)(st->store.mem_bytes + st->store.disk_bytes));
	kv_num(line, sizeof(line), "rate_bps", st->rate_bps, 0);
	kv_num(line, sizeof(line), "eta_s", st->eta_s, 0);
	kv(line, sizeof(line), "reason", "%s", st->reason ? st->reason : "null");
	kv_policy(line, sizeof(line), st);
	send_line(c->fd, line, sizeof(line));
}

/* status [NAME]: one record per checkpoint (fields: README). */
static void cmd_status(struct conn *c, int argc, char **argv)
{
	struct ckpt_status *st;
	const char *name = argc == 2 ? argv[1] : NULL;
	size_t n;

	if (argc > 2 || (name && !parse_name_ok(name)))
		return (void)say(c->fd, "err 2 malformed status request\n");
	/* others learn how many there are, not which names exist */
	if (!c->priv)
		name = NULL;
	st = calloc(CTL_LIST_MAX, sizeof(*st));
	if (!st)
		return (void)say(c->fd, "err 1 out of memory\n");
	n = ckpt_status(c->ctx->ckpts, name, st, CTL_LIST_MAX);
	if (n > CTL_LIST_MAX)
		n = CTL_LIST_MAX;
	if (name && !n)
		say(c->fd, "err 1 no checkpoint '%s'\n", name);
	else
		say(c->fd, "ok count=%zu\n", n);
	for (size_t k = 0; k < n && c->priv; k++) {
		if (st[k].phase == CKPT_PHASE_NONE)
			say_status(c, &st[k]);
		else
			say_pending(c, &st[k]);
	}
	free(st);
}

static int say_hist(void *arg, const struct hist_rec *r)
{
	struct conn *c = arg;
	char line[CTLMSG_MAX] = "";

	kv(line, sizeof(line), "name", "%s", r->name);
	kv(line, sizeof(line), "outcome", "%s", r->outcome);
	kv(line, sizeof(line), "reason", "%s", r->reason);
	kv(line, sizeof(line), "t", "%ld", (long)r->t);
	kv(line, sizeof(line), "ended", "%ld", (long)r->ended);
	kv(line, sizeof(line), "pause_us", "%lu", (unsigned long)r->pause_us);
	kv_num(line, sizeof(line), "duration_s", r->duration_s, 3);
	kv(line, sizeof(line), "captured_bytes", "%lu",
	   (unsigned long)r->captured_bytes);
	kv(line, sizeof(line), "peak_store_bytes", "%lu",
	   (unsigned long)r->peak_store_bytes);
	kv(line, sizeof(line), "files", "%lu", (unsigned long)r->files);
	kv(line, sizeof(line), "saved_bytes", "%lu",
	   (unsigned long)r->saved_bytes);
	kv_num(line, sizeof(line), "t_size_bytes", (double)r->t_size_bytes, 0);
	kv_num(line, sizeof(line), "t_files", (double)r->t_files, 0);
	return send_line(c->fd, line, sizeof(line));
}

/* history: the kept records, oldest first (fields: README). */
static void cmd_history(struct conn *c, int argc)
{
	if (argc != 1)
		return (void)say(c->fd, "err 2 malformed history request\n");
	if (!c->ctx->hist)
		return (void)say(c->fd, "err 1 this mount keeps no history: "
				 "its store directory could not hold it (see "
				 "the daemon's warning)\n");
	if (say(c->fd, "ok\n") == 0)
		hist_read(c->ctx->hist, time(NULL), say_hist, c);
}

/* Users other than root and the owner see only when what happened. */
/* AFTER of an events request: a sequence number, or -N for the last N. */
static int parse_after(const struct conn *c, const char *s, uint64_t *after)
{
	uint64_t n, seq;

	if (s[0] != '-')
		return parse_u64(s, 0, UINT64_MAX, after);
	if (parse_u64(s + 1, 0, UINT64_MAX, &n))
		return -EINVAL;
	seq = events_seq(c->ctx->events);
	*after = seq > n ? seq - n : 0;
	return 0;
}

/*
 * events AFTER FOLLOW: the lines after sequence number AFTER (-N: the last
 * N), then with FOLLOW=1 every new one until the client goes.
 */
static void cmd_events(struct conn *c, int argc, char **argv)
{
	uint64_t after = 0, follow = 0, last;
	char *buf;
	size_t n, out;

	/* FOLLOW exactly "0" or "1": ctlconn counts "1" alone as a follow */
	if (argc != 3 || parse_after(c, argv[1], &after) ||
	    (strcmp(argv[2], "0") && strcmp(argv[2], "1")))
		return (void)say(c->fd, "err 2 malformed events request\n");
	follow = argv[2][0] == '1';
	buf = malloc(65536);
	if (!buf)
		return (void)say(c->fd, "err 1 out of memory\n");
	if (say(c->fd, "ok\n") == 0) {
		do {
			n = events_read(c->ctx->events, after, buf, 65536, &last);
			out = c->priv ? n : ctlconn_redact_events(buf, n);
			if (out && send(c->fd, buf, out, MSG_NOSIGNAL) !=
				   (ssize_t)out)
				break;
			after = last;
			if (!n && follow) {
				struct pollfd p = { .fd = c->fd, .events = POLLIN };

				/* the client closing its end ends the follow */
				if (poll(&p, 1, 250) > 0)
					break;
			}
		} while ((follow && !ctl_stopping(c)) || n);
	}
	free(buf);
}

/*
 * note sync-joined|sync-timeout|sync-ended ID NAME JOINED COUNT: a job of
 * sync group ID, taking checkpoint NAME here, tells the mount's events
 * how its group stands (JOINED of COUNT jobs).
 */
static void cmd_note(struct conn *c, int argc, char **argv)
{
	static const char *const kinds[] = { "sync-joined", "sync-timeout",
					     "sync-ended" };
	uint64_t joined, count;
	size_t k = 0;

	while (argc == 6 && k < 3 && strcmp(argv[1], kinds[k]))
		k++;
	if (argc != 6 || k == 3 || !parse_name_ok(argv[2]) ||
	    !parse_name_ok(argv[3]) ||
	    parse_u64(argv[5], 1, CTLMSG_SYNC_MAX, &count) ||
	    parse_u64(argv[4], 0, count, &joined))
		return (void)say(c->fd, "err 2 malformed note request\n");
	/* names are [A-Za-z0-9._-]: nothing to quote */
	events_emit(c->ctx->events, kinds[k], "\"sync\":\"%s\",\"name\":\"%s\","
		    "\"joined\":%lu,\"count\":%lu", argv[2], argv[3],
		    (unsigned long)joined, (unsigned long)count);
	say(c->fd, "ok\n");
}

/*
 * Who may ask what: only root and the owner change checkpoints; the
 * others learn how many checkpoints there are (list, status) but not
 * their names, sizes or the paths and activity the events and the
 * history tell.
 */
static void dispatch(struct conn *c, int argc, char **argv)
{
	if (c->kind.change && !c->priv)
		return (void)say(c->fd, "err 1 permission denied: only root "
				 "and the user who mounted may change "
				 "checkpoints\n");
	if (c->kind.private && !c->priv)
		return (void)say(c->fd, "err 1 permission denied: only root "
				 "and the user who mounted may read the %s of "
				 "this mount\n", argv[0]);
	if (!strcmp(argv[0], "checkpoint"))
		cmd_checkpoint(c, argc, argv);
	else if (!strcmp(argv[0], "prepare"))
		cmd_prepare(c, argc, argv);
	else if (!strcmp(argv[0], "mount"))
		cmd_mount(c, argc, argv);
	else if (!strcmp(argv[0], "release"))
		cmd_release(c, argc, argv);
	else if (!strcmp(argv[0], "list") && argc == 1)
		cmd_list(c);
	else if (!strcmp(argv[0], "events"))
		cmd_events(c, argc, argv);
	else if (!strcmp(argv[0], "status"))
		cmd_status(c, argc, argv);
	else if (!strcmp(argv[0], "history"))
		cmd_history(c, argc);
	else if (!strcmp(argv[0], "note"))
		cmd_note(c, argc, argv);
	else
		say(c->fd, "err 2 unknown request\n");
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* A short answer from the loop, which never blocks: best effort. */
static void say_nb(int fd, const char *msg)
{
	ssize_t w = send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)w;
}

static void conn_free(struct conn *c)
{
	ctlconn_release(c->ctl->uses, c->uid, CTLCONN_CONN);
	close(c->fd);
	free(c);
}

static void list_append(struct ctl *ctl, struct conn *c)
{
	c->prev = ctl->tail;
	c->next = NULL;
	*(ctl->tail ? &ctl->tail->next : &ctl->head) = c;
	ctl->tail = c;
}

static void list_unlink(struct ctl *ctl, struct conn *c)
{
	*(c->prev ? &c->prev->next : &ctl->head) = c->next;
	*(c->next ? &c->next->prev : &ctl->tail) = c->prev;
}

static void *worker(void *arg)
{
	struct conn *c = arg;
	struct ctl *ctl = c->ctl;

	if (!client_gone(c->fd))
		dispatch(c, c->argc, c->argv);
	ctlconn_release(ctl->uses, c->uid, c->kind.use);
	conn_free(c);
	pthread_mutex_lock(&ctl->lock);
	if (--ctl->nwork == 0)
		pthread_cond_broadcast(&ctl->idle);
	pthread_mutex_unlock(&ctl->lock);
	return NULL;
}

/*
 * The request line of c is complete (the loop no longer watches c): hand
 * it to a worker of its own, within the caps on requests in progress and
 * on followers, or refuse it.  Workers may block (boundary wait, drain,
 * sync holds, a follow): the loop never does.
 */
static void hand_off(struct ctl *ctl, struct conn *c)
{
	struct timeval tv = { .tv_sec = CTL_STEP_NS / 1000000000ll };
	pthread_t t;

	c->argc = ctlmsg_parse(c->line, c->argv);
	if (c->argc <= 0)
		return say_nb(c->fd, "err 2 malformed request\n"), conn_free(c);
	ctlconn_classify(c->argc, c->argv, &c->kind);
	if (ctlconn_admit(ctl->uses, c->uid, c->priv, c->kind.use) < 0) {
		say_nb(c->fd, c->kind.use == CTLCONN_FOLLOW ?
		       "err 1 busy: too many events --follow connections; "
		       "try again later\n" : "err 1 busy: too many requests in "
		       "progress; try again later\n");
		return conn_free(c);
	}
	/* a worker waits on its client with the socket's own timeouts */
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&ctl->lock);
	ctl->nwork++;
	pthread_mutex_unlock(&ctl->lock);
	if (pthread_create(&t, NULL, worker, c) == 0)
		return (void)pthread_detach(t);
	pthread_mutex_lock(&ctl->lock);
	ctl->nwork--;
	pthread_mutex_unlock(&ctl->lock);
	say_nb(c->fd, "err 1 busy: cannot start a worker; try again later\n");
	ctlconn_release(ctl->uses, c->uid, c->kind.use);
	conn_free(c);
}

/*
 * Bytes arrived on c: take those of the request line (nothing after its
 * '\n', which the request may read itself), hand the line off once whole.
 */
static void conn_read(struct ctl *ctl, struct conn *c)
{
	ssize_t r = recv(c->fd, c->line + c->len, CTLMSG_MAX - 1 - c->len,
			 MSG_PEEK | MSG_DONTWAIT), len;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r > 0)
		r = recv(c->fd, c->line + c->len,
			 ctlconn_take(c->line + c->len, (size_t)r),
			 MSG_DONTWAIT);
	if (r <= 0) {
		list_unlink(ctl, c);
		return conn_free(c);
	}
	c->len += (size_t)r;
	len = ctlmsg_frame(c->line, c->len);
	if (len == -EAGAIN && c->len < CTLMSG_MAX - 1)
		return;
	list_unlink(ctl, c);
	epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (len < 0)
		return say_nb(c->fd, "err 2 malformed request\n"), conn_free(c);
	hand_off(ctl, c);
}

/*
 * At the descriptor limit accept() fails and the client stays queued:
 * polling again would spin.  Give up the spare descriptor to take the
 * client and drop it; if even that fails, stop listening for a while.
 */
static void accept_emfile(struct ctl *ctl)
{
	struct epoll_event ev = { .events = 0, .data.ptr = &ctl->lfd };
	int fd = -1;

	if (ctl->spare >= 0) {
		close(ctl->spare);
		fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			close(fd);
		ctl->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0 || ctl->spare < 0) {
		epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, ctl->lfd, &ev);
		ctl->resume_ns = now_ns() + CTL_PAUSE_NS;
	}
}

/* Take one client from the queue; false when there is none (or no room). */
static bool accept_one(struct ctl *ctl)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	bool priv;
	int fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE))
		accept_emfile(ctl);
	if (fd < 0)
		return errno == ECONNABORTED || errno == EINTR;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(fd);
		return true;
	}
	priv = cred.uid == 0 || cred.uid == ctl->ctx->owner;
	if (ctlconn_admit(ctl->uses, cred.uid, priv, CTLCONN_CONN) < 0) {
		say_nb(fd, "err 1 busy: too many connections; try again "
		       "later\n");
		close(fd);
		return true;
	}
	c = malloc(sizeof(*c));
	if (c)
		*c = (struct conn){ .ctl = ctl, .ctx = ctl->ctx, .fd = fd,
				    .uid = cred.uid, .priv = priv,
				    .deadline = now_ns() + ctl->deadline_ns };
	ev.data.ptr = c;
	if (!c || epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ctlconn_release(ctl->uses, cred.uid, CTLCONN_CONN);
		close(fd);
		free(c);
		return true;
	}
	list_append(ctl, c);
	return true;
}

/* Cut the connections whose whole request did not come in time. */
static void expire(struct ctl *ctl, int64_t now)
{
	char msg[96];

	while (ctl->head && ctl->head->deadline <= now) {
		struct conn *c = ctl->head;

		list_unlink(ctl, c);
		snprintf(msg, sizeof(msg), "err 2 no whole request within "
			 "%g s\n", (double)ctl->deadline_ns / 1e9);
		say_nb(c->fd, msg);
		conn_free(c);
	}
}

/* How long the loop may sleep: until the first deadline or the resume. */
static int loop_timeout(const struct ctl *ctl, int64_t now)
{
	int64_t until = ctl->head ? ctl->head->deadline : -1;

	if (ctl->resume_ns && (until < 0 || ctl->resume_ns < until))
		until = ctl->resume_ns;
	if (until < 0)
		return -1;
	return until <= now ? 0 : (int)((until - now) / 1000000 + 1);
}

static void loop_resume(struct ctl *ctl, int64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ctl->lfd };

	if (!ctl->resume_ns || ctl->resume_ns > now)
		return;
	ctl->resume_ns = 0;
	if (ctl->spare < 0)
		ctl->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	epoll_ctl(ctl->epfd, EPOLL_CTL_MOD, ctl->lfd, &ev);
}

/*
 * The event loop: accepts, reads request lines up to their deadline and
 * hands them to workers.  It owns the connections on its list; a worker
 * owns the one it serves.
 */
static void *loop(void *arg)
{
	struct ctl *ctl = arg;
	struct epoll_event evs[CTL_EVENTS];

	while (!atomic_load(&ctl->stopping)) {
		int n = epoll_wait(ctl->epfd, evs, CTL_EVENTS,
				   loop_timeout(ctl, now_ns()));

		for (int k = 0; k < n; k++) {
			if (evs[k].data.ptr == &ctl->lfd) {
				for (int a = 0; a < CTL_EVENTS && accept_one(ctl);
				     a++)
					;
			} else if (evs[k].data.ptr) {
				conn_read(ctl, evs[k].data.ptr);
			}
		}
		expire(ctl, now_ns());
		loop_resume(ctl, now_ns());
	}
	while (ctl->head) {
		struct conn *c = ctl->head;

		list_unlink(ctl, c);
		conn_free(c);
	}
	return NULL;
}

/*
 * Open the socket's directory, made with mode when missing, and check
 * through the descriptor (never by path again) that it is a directory of
 * uid: another user who made it first, or put a symlink there, could move
 * our socket aside and answer for us.  One of ours with any of the bits
 * forbid (left by an older swafs, 0755) gets mode, through the descriptor.
 */
static int open_private(const char *dir, mode_t mode, uid_t uid, mode_t forbid,
			char *why, size_t size)
{
	struct stat st = { 0 };
	int fd, e;

	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		goto fail;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) == 0 && st.st_uid == uid &&
	    (!(st.st_mode & forbid) || fchmod(fd, mode) == 0))
		return fd;
	snprintf(why, size, "'%s' is owned by uid %u with mode %04o, not "
		 "private to uid %u: remove it%s", dir, (unsigned)st.st_uid,
		 (unsigned)(st.st_mode & 07777), (unsigned)uid,
		 uid ? " or set XDG_RUNTIME_DIR" : "");
	close(fd);
	return -EPERM;
fail:
	e = errno;
	snprintf(why, size, "'%s': %s%s", dir, strerror(e), e == ELOOP ||
		 e == ENOTDIR ? " (a symlink or not a directory)" : "");
	return -e;
}

/* The parent of dir (a runtime directory) is private to uid. */
static bool parent_private(const char *dir, uid_t uid)
{
	char parent[CTLMSG_PATH_MAX];
	struct stat st;
	bool ok;
	int fd;

	snprintf(parent, sizeof(parent), "%.*s",
		 (int)(strrchr(dir, '/') - dir), dir);
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = fstat(fd, &st) == 0 && st.st_uid == uid && !(st.st_mode & 077);
	close(fd);
	return ok;
}

/*
 * The directory of our socket (ctlmsg_socket_dirs): root's /run/swafs
 * (0755, only root writes it), else the first of the user's runtime
 * directories whose parent is private to us, else /tmp/swafs-UID, 0700.
 */
static int socket_dir(struct ctl *ctl, char *why, size_t size)
{
	char dirs[CTLMSG_DIRS_MAX][CTLMSG_PATH_MAX];
	uid_t uid = geteuid();
	size_t n = ctlmsg_socket_dirs(uid, getenv("XDG_RUNTIME_DIR"), dirs,
				      CTLMSG_DIRS_MAX), k = uid ? 1 : 0;

	while (k + 1 < n && !parent_private(dirs[k], uid))
		k++;
	snprintf(ctl->dir, sizeof(ctl->dir), "%s", dirs[k]);
	return open_private(dirs[k], uid ? 0700 : 0755, uid, uid ? 077 : 022,
			    why, size);
}

/*
 * Bind in the directory we checked, by its descriptor: the socket is
 * made with its final mode (the socket inode's mode, the umask being 0),
 * so nothing is changed by path after the bind.  Anyone may connect to
 * root's (the requests check who asks); a user's sits in a 0700 directory.
 */
static int ctl_listen(struct ctl *ctl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s",
		 ctl->dirfd, ctl->name);
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			  0);
	if (ctl->lfd < 0)
		return -errno;
	if (unlinkat(ctl->dirfd, ctl->name, 0) < 0 && errno != ENOENT)
		return -errno;	/* a socket left by a daemon that died */
	if (fchmod(ctl->lfd, geteuid() ? 0600 : 0666) < 0 ||
	    bind(ctl->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	ctl->bound = true;
	return listen(ctl->lfd, SOMAXCONN) < 0 ? -errno : 0;
}

int ctl_open(struct fs_ctx *ctx, dev_t dev, const struct ctl_limits *lim,
	     struct ctl **out, char *why, size_t size)
{
	struct ctl *ctl = calloc(1, sizeof(*ctl));
	struct ctlconn_caps caps;
	int rc;

	if (!ctl)
		return snprintf(why, size, "out of memory"), -ENOMEM;
	*ctl = (struct ctl){ .ctx = ctx, .dirfd = -1, .lfd = -1, .epfd = -1,
			     .wakefd = -1, .spare = -1,
			     .deadline_ns = lim->deadline_ns };
	pthread_mutex_init(&ctl->lock, NULL);
	pthread_cond_init(&ctl->idle, NULL);
	ctlmsg_socket_name(dev, ctl->name, sizeof(ctl->name));
	ctlconn_default_caps(lim->conns, lim->follow, &caps);
	rc = ctl->dirfd = socket_dir(ctl, why, size);
	if (rc >= 0 && (rc = ctl_listen(ctl)) < 0)
		snprintf(why, size, "cannot listen on '%s/%s': %s", ctl->dir,
			 ctl->name, strerror(-rc));
	if (rc >= 0 && (rc = ctlconn_create(&caps, &ctl->uses)) < 0)
		snprintf(why, size, "out of memory");
	if (rc < 0) {
		ctl_stop(ctl);
		return rc;
	}
	*out = ctl;
	return 0;
}

int ctl_run(struct ctl *ctl)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ctl->lfd };
	struct epoll_event wev = { .events = EPOLLIN, .data.ptr = NULL };
	int rc;

	ctl->epfd = epoll_create1(EPOLL_CLOEXEC);
	ctl->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ctl->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ctl->epfd < 0 || ctl->wakefd < 0 || ctl->spare < 0 ||
	    epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, ctl->lfd, &ev) < 0 ||
	    epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, ctl->wakefd, &wev) < 0)
		return -errno;
	rc = -pthread_create(&ctl->thread, NULL, loop, ctl);
	ctl->running = rc == 0;
	return rc;
}

/* Close what ctl holds; after the loop, which may replace the spare. */
static void close_fds(struct ctl *ctl)
{
	int fds[] = { ctl->dirfd, ctl->lfd, ctl->epfd, ctl->wakefd,
		      ctl->spare };

	for (size_t k = 0; k < sizeof(fds) / sizeof(fds[0]); k++)
		if (fds[k] >= 0)
			close(fds[k]);
}

/*
 * Stop accepting, then wait for the requests in flight: they use the
 * mount's state, which is freed next.  A checkpoint being taken finishes;
 * a follower of events is told to stop.
 */
void ctl_stop(struct ctl *ctl)
{
	if (!ctl)
		return;
	atomic_store(&ctl->stopping, true);
	if (ctl->running) {
		eventfd_write(ctl->wakefd, 1);
		pthread_join(ctl->thread, NULL);
	}
	pthread_mutex_lock(&ctl->lock);
	while (ctl->nwork)
		pthread_cond_wait(&ctl->idle, &ctl->lock);
	pthread_mutex_unlock(&ctl->lock);
	if (ctl->bound)
		unlinkat(ctl->dirfd, ctl->name, 0);
	close_fds(ctl);
	ctlconn_free(ctl->uses);
	free(ctl);
}
