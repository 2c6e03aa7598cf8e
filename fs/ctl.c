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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "fs/ctl.h"
#include "fs/view.h"
#include "snapshot/ctlmsg.h"
#include "snapshot/events.h"
#include "snapshot/parse.h"

#define CTL_WAIT_MAX_MS (365ull * 86400 * 1000)
#define CTL_LIST_MAX 256

struct ctl {
	struct fs_ctx *ctx;
	int lfd;		/* listening socket */
	int wake[2];		/* pipe: stop the accept loop */
	pthread_t thread;
	char path[108];
	atomic_bool stopping;	/* ends long requests (events --follow) */
	pthread_mutex_t lock;
	pthread_cond_t idle;	/* nconn reached 0 */
	unsigned nconn;		/* lock: connection threads running */
};

struct conn {
	struct ctl *ctl;
	struct fs_ctx *ctx;
	int fd;
	uid_t uid;		/* peer */
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

static bool may_change(const struct conn *c)
{
	return c->uid == 0 || c->uid == c->ctx->owner;
}

/*
 * Read one line and nothing after it (a client may send "commit" right
 * after "hold"); returns its length or -1.
 */
static ssize_t read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n < size - 1) {
		ssize_t r = recv(fd, buf + n, size - 1 - n, MSG_PEEK);
		char *nl = r > 0 ? memchr(buf + n, '\n', (size_t)r) : NULL;

		if (r > 0)
			r = recv(fd, buf + n, nl ? (size_t)(nl - buf - n) + 1
						 : (size_t)r, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		if (nl) {
			*nl = '\0';
			return (ssize_t)strlen(buf);
		}
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
	const char *const *paths;
	size_t npaths;
};

/* VERB NAME saved|all KEEP WAIT_MS|nomax [PATH...]; says why if not. */
static int parse_take(struct conn *c, int argc, char **argv,
		      struct take_args *t)
{
	uint64_t keep, wait_ms = 0;

	if (argc < 5 || argc > 5 + CKPT_SCOPE_MAX || !parse_name_ok(argv[1]) ||
	    (strcmp(argv[2], "saved") && strcmp(argv[2], "all")) ||
	    parse_u64(argv[3], 0, 1, &keep) ||
	    (strcmp(argv[4], "nomax") &&
	     parse_u64(argv[4], 0, CTL_WAIT_MAX_MS, &wait_ms))) {
		say(c->fd, "err 2 malformed %s request\n", argv[0]);
		return -1;
	}
	for (int k = 5; k < argc; k++)
		if (check_scope_path(c, argv[k]) < 0)
			return -1;
	t->name = argv[1];
	t->flags = (strcmp(argv[2], "all") ? 0 : CKPT_RETAIN_ALL) |
		   (keep ? CKPT_KEEP : 0);
	t->wait_ns = strcmp(argv[4], "nomax") ? (int64_t)wait_ms * 1000000 : -1;
	t->paths = (const char *const *)argv + 5;
	t->npaths = (size_t)argc - 5;
	return 0;
}

/* Say why a checkpoint could not be prepared. */
static void say_take_error(struct conn *c, const char *name, int rc)
{
	if (rc == -EINVAL)
		say(c->fd, "err 2 invalid --path: want a relative path inside "
		    "the tree without '.', '..' or '//'\n");
	else if (rc == -EEXIST)
		say(c->fd, "err 1 checkpoint '%s' already exists\n", name);
	else if (rc == -ETIMEDOUT)
		say(c->fd, "err 3 checkpoint '%s' not taken: modifying calls "
		    "did not drain within the wait time\n", name);
	else
		say(c->fd, "err 1 checkpoint '%s' not taken: %s\n", name,
		    strerror(-rc));
}

static void cmd_checkpoint(struct conn *c, int argc, char **argv)
{
	struct take_args t;
	uint64_t pause;
	int rc;

	if (parse_take(c, argc, argv, &t) < 0)
		return;
	rc = ckpt_take_scoped(c->ctx->ckpts, t.name, t.flags, t.wait_ns,
			      t.paths, t.npaths, &pause);
	if (rc < 0)
		say_take_error(c, t.name, rc);
	else
		say(c->fd, "ok pause_us=%lu\n", (unsigned long)pause);
}

/*
 * Answer "ready" and wait for "commit".  Each "hold" renews the receive
 * timeout: a client still waiting for other trees or other jobs of a sync
 * group keeps its trees held, one that hangs loses them within 10 s.
 */
static bool await_commit(struct conn *c)
{
	char line[16];

	if (say(c->fd, "ready\n") < 0)
		return false;
	do {
		if (read_line(c->fd, line, sizeof(line)) <= 0)
			return false;
	} while (!strcmp(line, "hold"));
	return !strcmp(line, "commit");
}

/*
 * The first phase of a checkpoint common to several trees: drain, answer
 * "ready", hold the calls until the client says "commit" on the same
 * connection.  Anything else — another word, the client going away, the
 * receive timeout — aborts, and no checkpoint exists.
 */
static void cmd_prepare(struct conn *c, int argc, char **argv)
{
	struct ckpt_prep *p;
	struct take_args t;
	int rc;

	if (parse_take(c, argc, argv, &t) < 0)
		return;
	rc = ckpt_prepare(c->ctx->ckpts, t.name, t.flags, t.wait_ns, t.paths,
			  t.npaths, &p);
	if (rc < 0)
		return say_take_error(c, t.name, rc);
	if (await_commit(c)) {
		say(c->fd, "ok pause_us=%lu\n", (unsigned long)ckpt_commit(p));
		return;
	}
	ckpt_abort(p);
	say(c->fd, "err 1 checkpoint '%s' aborted before its instant\n",
	    t.name);
}

/* A non-root owner may only mount views on directories they own. */
static int check_view_dir(const struct conn *c, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (c->uid != 0 && st.st_uid != c->uid)
		return -EPERM;
	return 0;
}

static void cmd_mount(struct conn *c, int argc, char **argv)
{
	int rc;

	if (argc != 3 || !parse_name_ok(argv[1]) || argv[2][0] != '/')
		return (void)say(c->fd, "err 2 malformed mount request\n");
	rc = check_view_dir(c, argv[2]);
	if (rc == 0)
		rc = view_mount(c->ctx, argv[1], argv[2]);
	if (rc == -ENOENT)
		say(c->fd, "err 1 no checkpoint '%s' (or no directory '%s')\n",
		    argv[1], argv[2]);
	else if (rc == -EBUSY)
		say(c->fd, "err 1 '%s' already holds a view\n", argv[2]);
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
	for (size_t k = 0; k < n; k++) {
		struct ckpt_info *i = &infos[k];

		say(c->fd, "name=%s t=%ld pause_us=%lu valid=%d views=%u "
		    "retain=%s keep=%d objects=%lu captured_blocks=%lu "
		    "captured_bytes=%lu files_released=%lu\n", i->name,
		    (long)i->t_sec, (unsigned long)i->pause_us, i->valid,
		    i->views, i->flags & CKPT_RETAIN_ALL ? "all" : "saved",
		    !!(i->flags & CKPT_KEEP), (unsigned long)i->objs.objects,
		    (unsigned long)i->objs.captured_blocks,
		    (unsigned long)i->objs.captured_bytes,
		    (unsigned long)i->objs.released);
	}
	free(infos);
}

static void cmd_events(struct conn *c, int argc, char **argv)
{
	uint64_t after = 0, follow = 0, last;
	char *buf;
	size_t n;

	if (argc != 3 || parse_u64(argv[1], 0, UINT64_MAX, &after) ||
	    parse_u64(argv[2], 0, 1, &follow))
		return (void)say(c->fd, "err 2 malformed events request\n");
	buf = malloc(65536);
	if (!buf)
		return (void)say(c->fd, "err 1 out of memory\n");
	if (say(c->fd, "ok\n") == 0) {
		do {
			n = events_read(c->ctx->events, after, buf, 65536, &last);
			if (n && send(c->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
				break;
			after = last;
			if (!n && follow) {
				struct pollfd p = { .fd = c->fd, .events = POLLIN };

				/* the client closing its end ends the follow */
				if (poll(&p, 1, 250) > 0)
					break;
			}
		} while ((follow && !atomic_load(&c->ctl->stopping)) || n);
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

static void dispatch(struct conn *c, int argc, char **argv)
{
	bool change = !strcmp(argv[0], "checkpoint") ||
		      !strcmp(argv[0], "prepare") ||
		      !strcmp(argv[0], "mount") ||
		      !strcmp(argv[0], "release") || !strcmp(argv[0], "note");

	if (change && !may_change(c))
		return (void)say(c->fd, "err 1 permission denied: only root "
				 "and the user who mounted may change "
				 "checkpoints\n");
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
	else if (!strcmp(argv[0], "note"))
		cmd_note(c, argc, argv);
	else
		say(c->fd, "err 2 unknown request\n");
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	char *line = malloc(CTLMSG_MAX), *argv[CTLMSG_ARGS];
	int argc;

	if (line && read_line(c->fd, line, CTLMSG_MAX) > 0 &&
	    (argc = ctlmsg_parse(line, argv)) > 0)
		dispatch(c, argc, argv);
	else
		say(c->fd, "err 2 malformed request\n");
	free(line);
	close(c->fd);
	pthread_mutex_lock(&c->ctl->lock);
	if (--c->ctl->nconn == 0)
		pthread_cond_broadcast(&c->ctl->idle);
	pthread_mutex_unlock(&c->ctl->lock);
	free(c);
	return NULL;
}

static void accept_one(struct ctl *ctl)
{
	struct timeval tv = { .tv_sec = 10 };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	pthread_t t;
	int fd = accept4(ctl->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	c = malloc(sizeof(*c));
	if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		free(c);
		close(fd);
		return;
	}
	/* a client that never finishes its request must not pin a thread */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*c = (struct conn){ .ctl = ctl, .ctx = ctl->ctx, .fd = fd,
			    .uid = cred.uid };
	pthread_mutex_lock(&ctl->lock);
	ctl->nconn++;
	pthread_mutex_unlock(&ctl->lock);
	if (pthread_create(&t, NULL, conn_thread, c) != 0) {
		pthread_mutex_lock(&ctl->lock);
		ctl->nconn--;
		pthread_mutex_unlock(&ctl->lock);
		close(fd);
		free(c);
		return;
	}
	pthread_detach(t);
}

static void *accept_thread(void *arg)
{
	struct ctl *ctl = arg;
	struct pollfd p[2] = { { .fd = ctl->lfd, .events = POLLIN },
			       { .fd = ctl->wake[0], .events = POLLIN } };

	while (poll(p, 2, -1) >= 0 || errno == EINTR) {
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN)
			accept_one(ctl);
	}
	return NULL;
}

static int ctl_listen(struct ctl *ctl, dev_t dev)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[64];

	ctlmsg_socket_dir(geteuid(), dir, sizeof(dir));
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	ctlmsg_socket_path(dev, geteuid(), ctl->path, sizeof(ctl->path));
	strcpy(sa.sun_path, ctl->path);
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->lfd < 0)
		return -errno;
	unlink(ctl->path);	/* left by a daemon that died */
	if (bind(ctl->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(ctl->path, 0666) < 0 || listen(ctl->lfd, 64) < 0)
		return -errno;
	return 0;
}

int ctl_start(struct fs_ctx *ctx, dev_t dev, struct ctl **out)
{
	struct ctl *ctl = calloc(1, sizeof(*ctl));
	int rc;

	if (!ctl)
		return -ENOMEM;
	ctl->ctx = ctx;
	ctl->lfd = -1;
	pthread_mutex_init(&ctl->lock, NULL);
	pthread_cond_init(&ctl->idle, NULL);
	ctl->wake[0] = ctl->wake[1] = -1;
	rc = ctl_listen(ctl, dev);
	if (rc == 0 && pipe2(ctl->wake, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc == 0)
		rc = -pthread_create(&ctl->thread, NULL, accept_thread, ctl);
	if (rc < 0) {
		if (ctl->lfd >= 0)
			close(ctl->lfd);
		if (ctl->wake[0] >= 0) {
			close(ctl->wake[0]);
			close(ctl->wake[1]);
		}
		free(ctl);
		return rc;
	}
	*out = ctl;
	return 0;
}

/*
 * Stop accepting, then wait for the requests in flight: they use the
 * mount's state, which is freed next.  A checkpoint being taken finishes;
 * a follower of events is told to stop.
 */
void ctl_stop(struct ctl *ctl)
{
	ssize_t w;

	if (!ctl)
		return;
	atomic_store(&ctl->stopping, true);
	w = write(ctl->wake[1], "x", 1);
	(void)w;
	pthread_join(ctl->thread, NULL);
	pthread_mutex_lock(&ctl->lock);
	while (ctl->nconn)
		pthread_cond_wait(&ctl->idle, &ctl->lock);
	pthread_mutex_unlock(&ctl->lock);
	unlink(ctl->path);
	close(ctl->lfd);
	close(ctl->wake[0]);
	close(ctl->wake[1]);
	free(ctl);
}
