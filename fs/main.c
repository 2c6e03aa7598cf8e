/*
 * main.c - the swafs daemon: options, checks, mount, session loop.
 *
 * BACKING is opened before the mount, so `swafs DIR DIR` (mounting over the
 * backing directory itself) works and leaves no way around the live tree.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>

#include "fs/ctl.h"
#include "fs/ctx.h"
#include "fs/fdcap.h"
#include "fs/live.h"
#include "fs/locks.h"
#include "fs/metrics.h"
#include "fs/svc.h"
#include "fs/view.h"
#include "fs/vnode.h"
#include "snapshot/ckeep.h"
#include "snapshot/events.h"
#include "snapshot/hist.h"
#include "snapshot/parse.h"
#include "snapshot/pstore.h"

#define SWAFS_VERSION "0.1.0"
#define FD_CACHE_MAX 1000000
#define TIMEOUT_MAX 86400.0
#define CTL_CONNS_DEFAULT 512
#define CTL_CONNS_MAX 4096
#define CTL_FOLLOW_DEFAULT 16
#define CTL_DEADLINE_DEFAULT 10.0

struct main_opts {
	char *backing;		/* first non-option argument */
	char *mountpoint;	/* second, kept for fuse_parse_cmdline */
	char *timeout;		/* -o timeout=SECS */
	char *fd_cache;		/* -o fd_cache=N */
	char *user_opens;	/* -o user_opens=N */
	char *block_size;	/* -o block_size=SIZE */
	char *store;		/* -o store=DIR */
	char *store_mem;	/* -o store_mem=SIZE */
	char *store_max;	/* -o store_max=SIZE */
	char *events;		/* -o events=FILE */
	char *on_full;		/* -o on_full=POLICY */
	char *keep_days;	/* -o keep_days=N */
	char *boundary_report;	/* -o boundary_report=SECS */
	char *throttle_max;	/* -o throttle_max=SECS */
	char *metrics;		/* -o metrics=FILE */
	char *metrics_interval;	/* -o metrics_interval=SECS */
	char *ctl_conns;	/* -o ctl_conns=N */
	char *ctl_follow;	/* -o ctl_follow=N */
	char *ctl_deadline;	/* -o ctl_deadline=SECS */
	int nonopts;
	bool allow_other;
	bool default_permissions;
	bool fsname;
	bool help;
	bool version;
};

enum { KEY_HELP, KEY_VERSION, KEY_ALLOW_OTHER, KEY_DEFAULT_PERM, KEY_FSNAME };

#define MAIN_OPT(t, p) { t, offsetof(struct main_opts, p), 1 }
static const struct fuse_opt main_optspec[] = {
	MAIN_OPT("timeout=%s", timeout),
	MAIN_OPT("fd_cache=%s", fd_cache),
	MAIN_OPT("user_opens=%s", user_opens),
	MAIN_OPT("block_size=%s", block_size),
	MAIN_OPT("store=%s", store),
	MAIN_OPT("store_mem=%s", store_mem),
	MAIN_OPT("store_max=%s", store_max),
	MAIN_OPT("events=%s", events),
	MAIN_OPT("on_full=%s", on_full),
	MAIN_OPT("keep_days=%s", keep_days),
	MAIN_OPT("boundary_report=%s", boundary_report),
	MAIN_OPT("throttle_max=%s", throttle_max),
	MAIN_OPT("metrics=%s", metrics),
	MAIN_OPT("metrics_interval=%s", metrics_interval),
	MAIN_OPT("ctl_conns=%s", ctl_conns),
	MAIN_OPT("ctl_follow=%s", ctl_follow),
	MAIN_OPT("ctl_deadline=%s", ctl_deadline),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERM),
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_END
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: swafs BACKING MOUNTPOINT [-f] [-o OPTION[,OPTION...]]\n"
"\n"
"Mount BACKING at MOUNTPOINT as the swafs live tree, a passthrough\n"
"filesystem.  Mounting over BACKING itself (swafs /srv/data /srv/data) is\n"
"the recommended setup: nothing can then change BACKING behind the mount.\n"
"\n"
"options:\n"
"  -f                     stay in the foreground\n"
"  -d, -o debug           foreground with a FUSE request trace on stderr\n"
"  -s                     single-threaded (for debugging)\n"
"  -h, --help             this text\n"
"  -V, --version          print the version\n"
"  -o allow_other         let every user use the mount; implies\n"
"                         default_permissions\n"
"  -o default_permissions let the kernel check permissions by mode bits\n"
"  -o ro                  read-only mount\n"
"  -o fsname=NAME         name shown in mount tables (default: BACKING)\n"
"  -o timeout=SECS        kernel cache time for names and attributes\n"
"                         (default 60; all changes go through the mount,\n"
"                         so caching never serves stale data)\n"
"  -o fd_cache=N          open descriptors kept for looked-up objects\n"
"                         (default: 8192 or a quarter of the open-file\n"
"                         limit; shrinks when open files need room)\n"
"  -o user_opens=N        files and directories one user other than root\n"
"                         and the mount's owner may hold open in the live\n"
"                         tree and its views (default: an eighth of the\n"
"                         open-file limit); all such users together get\n"
"                         at most half the limit, the rest stays for root\n"
"                         and the owner\n"
"  -o block_size=SIZE     capture unit of checkpoints, 4K..1M, a power\n"
"                         of two (default 64K)\n"
"  -o store=DIR           an existing directory where pre-images spill\n"
"                         to disk (default /var/lib/swafs as root, made\n"
"                         if need be, else /tmp); outside BACKING\n"
"  -o store_mem=SIZE      pre-images kept in memory before spilling\n"
"                         (default 256M)\n"
"  -o store_max=SIZE      the most the store holds, memory and disk\n"
"                         together (default 16G)\n"
"  -o on_full=POLICY      when the store is full: invalidate (default: the\n"
"                         checkpoint is invalidated, live writes go on),\n"
"                         throttle (changes that need a capture wait for\n"
"                         the save to free space, then invalidate) or\n"
"                         fail-writes (changes that need a capture fail\n"
"                         with ENOSPC; the checkpoint stays valid)\n"
"  -o throttle_max=SECS   longest wait of one call under on_full=throttle\n"
"                         (default 60)\n"
"  -o events=FILE         append JSON Lines events to FILE\n"
"  -o keep_days=N         keep the history of checkpoints (swactl history)\n"
"                         for N days after each ended, 0 to 36500\n"
"                         (default 30; 0 keeps none); it lives in the\n"
"                         store directory, one file per BACKING path\n"
"  -o boundary_report=SECS  while a checkpoint waits for open\n"
"                         transactions (swactl checkpoint --boundary-wait),\n"
"                         name the holders this often (default 30)\n"
"  -o metrics=FILE        write the tree's figures (checkpoints, store,\n"
"                         last save) to FILE, a Prometheus textfile for\n"
"                         node_exporter; removed when the tree stops\n"
"  -o metrics_interval=SECS  how often (default 5, 0.1 to 3600)\n"
"  -o ctl_conns=N         control connections open at once from users\n"
"                         other than root and the owner (default 512; an\n"
"                         eighth of it per uid; root and the owner have\n"
"                         1024 more)\n"
"  -o ctl_follow=N        their swactl events --follow at once (default\n"
"                         16; a quarter of it per uid; root and the\n"
"                         owner have 64 more)\n"
"  -o ctl_deadline=SECS   time a client has to send its whole request\n"
"                         (default 10)\n"
"\n"
"Checkpoints and views are driven with swactl(8): swactl --help.\n"
"  -o clone_fd, -o max_idle_threads=N, -o max_threads=N\n"
"                         libfuse session tuning\n"
"\n"
"It can also be mounted from /etc/fstab:\n"
"  /srv/data  /srv/data  fuse.swafs  allow_other  0 0\n");
}

static int main_opt_proc(void *data, const char *arg, int key,
			 struct fuse_args *outargs)
{
	struct main_opts *o = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (o->nonopts++ == 0) {
			o->backing = strdup(arg);
			return 0;
		}
		return 1;
	case KEY_HELP:
		o->help = true;
		return 0;
	case KEY_VERSION:
		o->version = true;
		return 0;
	case KEY_ALLOW_OTHER:
		o->allow_other = true;
		return 1;
	case KEY_DEFAULT_PERM:
		o->default_permissions = true;
		return 1;
	case KEY_FSNAME:
		o->fsname = true;
		return 1;
	default:
		return 1;
	}
}

/* Print one diagnostic line; returns -1 for the caller to pass on. */
__attribute__((format(printf, 1, 2)))
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("swafs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* True when a lies strictly inside b (both canonical paths). */
static bool path_inside(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (strcmp(b, "/") == 0)
		return strcmp(a, "/") != 0;
	return strncmp(a, b, n) == 0 && a[n] == '/';
}

/*
 * Open BACKING and check it against MOUNTPOINT.  On success *root_fd is
 * the open backing directory and rb (PATH_MAX) its canonical path.
 */
static int check_paths(const char *backing, const char *mnt, int *root_fd,
		       char *rb, char *rm)
{
	struct stat st;
	int fd;

	/* Not O_PATH: open_by_handle_at() refuses an O_PATH mount fd. */
	fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == EACCES)
		fd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOTDIR)
			return fail("backing '%s' is not a directory", backing);
		return fail("cannot open backing directory '%s': %s", backing,
			    strerror(errno));
	}
	if (!realpath(backing, rb) || !realpath(mnt, rm)) {
		close(fd);
		return fail("cannot resolve '%s': %s",
			    realpath(backing, rb) ? mnt : backing,
			    strerror(errno));
	}
	if (stat(rm, &st) < 0 || !S_ISDIR(st.st_mode)) {
		close(fd);
		return fail("mountpoint '%s' is not a directory", mnt);
	}
	if (path_inside(rm, rb) || path_inside(rb, rm)) {
		close(fd);
		return fail("'%s' and '%s' are nested; mount over BACKING "
			    "itself or beside it", backing, mnt);
	}
	*root_fd = fd;
	return 0;
}

/* Undo mountinfo's \\ooo escapes (space, tab, newline, backslash). */
static void unescape_octal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Option values after parsing. */
struct main_vals {
	unsigned fd_cache;
	unsigned user_opens;	/* per uid but root and the owner */
	unsigned open_pool;	/* for all of those uids together */
	unsigned kept_max;	/* descriptors of unlinked released files */
	unsigned block_size;
	uint64_t store_mem;
	uint64_t store_max;
	const char *store;
	char store_path[PATH_MAX];	/* store, canonical once checked */
	char metrics_path[PATH_MAX];	/* -o metrics, absolute */
	enum ckpt_on_full on_full;
	unsigned keep_days;
	unsigned stale;		/* stale stores removed at mount */
	double throttle_max;
	double metrics_interval;
	struct ctl_limits ctl;
};

static int parse_sizes(const struct main_opts *o, struct main_vals *v)
{
	uint64_t n;

	v->block_size = 64 << 10;
	v->store_mem = 256ull << 20;
	v->store_max = 16ull << 30;
	if (o->block_size) {
		if (parse_size(o->block_size, 4096, 1 << 20, &n) || (n & (n - 1)))
			return fail("invalid option 'block_size=%s': want a power "
				    "of two from 4K to 1M", o->block_size);
		v->block_size = (unsigned)n;
	}
	if (o->store_mem &&
	    parse_size(o->store_mem, 1 << 20, UINT64_MAX, &v->store_mem))
		return fail("invalid option 'store_mem=%s': want a size of at "
			    "least 1M, like 512M or 2G", o->store_mem);
	if (o->store_max &&
	    parse_size(o->store_max, 1 << 20, UINT64_MAX, &v->store_max))
		return fail("invalid option 'store_max=%s': want a size of at "
			    "least 1M, like 512M or 2G", o->store_max);
	v->keep_days = HIST_KEEP_DAYS_DEFAULT;
	if (o->keep_days &&
	    parse_u64(o->keep_days, 0, HIST_KEEP_DAYS_MAX, &n) == 0)
		v->keep_days = (unsigned)n;
	else if (o->keep_days)
		return fail("invalid option 'keep_days=%s': want a number of "
			    "days from 0 to %d", o->keep_days,
			    HIST_KEEP_DAYS_MAX);
	return 0;
}

/* -o metrics=FILE must be writable where it is asked for, before the mount. */
static int parse_metrics(const struct main_opts *o, struct main_vals *v)
{
	char why[PATH_MAX + 64];

	v->metrics_interval = 5.0;
	if (o->metrics_interval &&
	    (parse_secs(o->metrics_interval, 3600, &v->metrics_interval) ||
	     v->metrics_interval < 0.1))
		return fail("invalid option 'metrics_interval=%s': %s",
			    o->metrics_interval, "want seconds from 0.1 to 3600");
	if (o->metrics && metrics_check(o->metrics, v->metrics_path,
					why, sizeof(why)) < 0)
		return fail("invalid option 'metrics=%s': %s", o->metrics, why);
	return 0;
}

/*
 * Half the descriptor limit is a pool for the opens of users other than
 * root and the owner, each of them held to user_opens of it (fs/fdcap.h).
 */
static int parse_user_opens(const struct main_opts *o, const struct rlimit *rl,
			    struct main_vals *v)
{
	rlim_t lim = rl->rlim_cur < (1u << 30) ? rl->rlim_cur : 1u << 30;
	uint64_t n;

	v->open_pool = lim / 2 > 1 ? (unsigned)(lim / 2) : 1;
	v->user_opens = lim / 8 > 64 ? (unsigned)(lim / 8) : 64;
	if (v->user_opens > v->open_pool)
		v->user_opens = v->open_pool;
	if (!o->user_opens)
		return 0;
	if (parse_u64(o->user_opens, 1, v->open_pool, &n))
		return fail("invalid option 'user_opens=%s': want a number from "
			    "1 to %u (half the open-file limit)", o->user_opens,
			    v->open_pool);
	v->user_opens = (unsigned)n;
	return 0;
}

static int parse_ctl(const struct main_opts *o, struct ctl_limits *l)
{
	uint64_t conns = CTL_CONNS_DEFAULT, follow = CTL_FOLLOW_DEFAULT;
	double secs = CTL_DEADLINE_DEFAULT;

	if (o->ctl_conns && parse_u64(o->ctl_conns, 1, CTL_CONNS_MAX, &conns))
		return fail("invalid option 'ctl_conns=%s': want a number from "
			    "1 to %d", o->ctl_conns, CTL_CONNS_MAX);
	if (o->ctl_follow && parse_u64(o->ctl_follow, 0, CTL_CONNS_MAX, &follow))
		return fail("invalid option 'ctl_follow=%s': want a number from "
			    "0 to %d", o->ctl_follow, CTL_CONNS_MAX);
	if (o->ctl_deadline &&
	    (parse_secs(o->ctl_deadline, 3600, &secs) || secs < 0.1))
		return fail("invalid option 'ctl_deadline=%s': want seconds "
			    "from 0.1 to 3600", o->ctl_deadline);
	*l = (struct ctl_limits){ .conns = (unsigned)conns,
				  .follow = (unsigned)follow,
				  .deadline_ns = (int64_t)(secs * 1e9) };
	return 0;
}

static int parse_values(const struct main_opts *o, struct fs_ctx *ctx,
			struct main_vals *v)
{
	struct rlimit rl;
	uint64_t n;

	double secs = 30.0;

	ctx->timeout = 60.0;
	if (o->timeout && parse_secs(o->timeout, TIMEOUT_MAX, &ctx->timeout))
		return fail("invalid option 'timeout=%s': %s", o->timeout,
			    "want seconds from 0 to 86400");
	if (o->boundary_report &&
	    (parse_secs(o->boundary_report, TIMEOUT_MAX, &secs) || secs < 0.1))
		return fail("invalid option 'boundary_report=%s': %s",
			    o->boundary_report, "want seconds from 0.1 to 86400");
	ctx->boundary_report_ns = (int64_t)(secs * 1e9);
	/* The kernel caps open files (here 20,000, hard); use what we may. */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	/* a quarter of the limit: open files need one descriptor each */
	v->fd_cache = rl.rlim_cur / 4 < 8192 ? (unsigned)(rl.rlim_cur / 4) : 8192;
	/* an eighth: released files a view may still read after their last
	 * name went (cobj.h rule 7); never evicted, so bounded apart */
	v->kept_max = rl.rlim_cur / 8 < 8192 ? (unsigned)(rl.rlim_cur / 8) : 8192;
	if (o->fd_cache) {
		if (parse_u64(o->fd_cache, 16, FD_CACHE_MAX, &n))
			return fail("invalid option 'fd_cache=%s': %s",
				    o->fd_cache, "want a number from 16 to 1000000");
		v->fd_cache = (unsigned)n;
	}
	if (parse_user_opens(o, &rl, v) < 0)
		return -1;
	v->store = o->store ? o->store : geteuid() == 0 ? "/var/lib/swafs"
							: "/tmp";
	v->on_full = CKPT_FULL_INVALIDATE;
	if (o->on_full && !strcmp(o->on_full, "fail-writes"))
		v->on_full = CKPT_FULL_FAIL_WRITES;
	else if (o->on_full && !strcmp(o->on_full, "throttle"))
		v->on_full = CKPT_FULL_THROTTLE;
	else if (o->on_full && strcmp(o->on_full, "invalidate"))
		return fail("invalid option 'on_full=%s': want invalidate, "
			    "throttle or fail-writes", o->on_full);
	v->throttle_max = 60.0;
	if (o->throttle_max &&
	    parse_secs(o->throttle_max, TIMEOUT_MAX, &v->throttle_max))
		return fail("invalid option 'throttle_max=%s': %s",
			    o->throttle_max, "want seconds from 0 to 86400");
	if (parse_ctl(o, &v->ctl) < 0 || parse_sizes(o, v) < 0)
		return -1;
	return parse_metrics(o, v);
}

/*
 * The store must exist (only the default one is made: a mistyped store=
 * must not scatter directories) and lie outside BACKING (G4) and outside the
 * mountpoint: the daemon writing it through its own mount would wait on
 * itself.
 */
static int check_store(const char *store, bool create, const char *backing,
		       const char *mnt, char *rs)
{
	struct stat st;

	if (create && mkdir(store, 0700) < 0 && errno != EEXIST)
		return fail("cannot create store directory '%s': %s", store,
			    strerror(errno));
	if (stat(store, &st) < 0)
		return fail("store directory '%s': %s", store, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("store directory '%s' is not a directory", store);
	if (!realpath(store, rs))
		return fail("cannot resolve store directory '%s': %s", store,
			    strerror(errno));
	if (!strcmp(rs, backing) || path_inside(rs, backing))
		return fail("store directory '%s' lies inside BACKING '%s'; "
			    "choose one outside it", store, backing);
	if (!strcmp(rs, mnt) || path_inside(rs, mnt))
		return fail("store directory '%s' lies inside the mountpoint "
			    "'%s'; choose one outside it", store, mnt);
	return 0;
}

/*
 * Remove the stores of daemons that died, before daemonizing so that the
 * message reaches whoever mounts (stderr is /dev/null afterwards).
 */
static void clean_stale(struct main_vals *v)
{
	int rc = pstore_clean_stale(v->store, &v->stale);

	if (v->stale)
		fprintf(stderr, "swafs: removed %u stale store(s) left in '%s' "
			"by a daemon that died\n", v->stale, v->store);
	if (rc < 0)
		fprintf(stderr, "swafs: warning: cannot remove every stale "
			"store in '%s': %s\n", v->store, strerror(-rc));
}

/*
 * store_max is the most the store holds, memory and disk together (what an
 * operator sets); the engine takes a memory part and a disk part.  Memory
 * comes first, up to store_mem; the disk gets what is left.
 */
static uint64_t store_split(const struct main_vals *v, bool disk)
{
	uint64_t mem = v->store_mem < v->store_max ? v->store_mem : v->store_max;

	return disk ? v->store_max - mem : mem;
}

/* Why a file under a directory others may write was refused. */
static const char *refused_why(int rc)
{
	if (rc == -EPERM)
		return "not a regular file owned by the daemon's user";
	if (rc == -ELOOP)
		return "a symlink";
	return strerror(-rc);
}

/*
 * The events and history files, before the mount: a file planted by
 * someone else fails the mount with a message to whoever mounts.
 */
static int open_files(const struct main_opts *o, const struct main_vals *v,
		      const char *backing, struct fs_ctx *ctx)
{
	int rc = events_open(o->events, &ctx->events);

	if (rc < 0)
		return fail("cannot open events file '%s': %s", o->events,
			    refused_why(rc));
	rc = hist_open(v->store, backing, v->keep_days, time(NULL), &ctx->hist);
	if (rc < 0) {
		events_close(ctx->events);
		ctx->events = NULL;
		if (rc == -EPERM || rc == -ELOOP)
			return fail("cannot open the checkpoint history in "
				    "'%s': its history or lock file is %s",
				    v->store, refused_why(rc));
		return fail("cannot open the checkpoint history in '%s': %s",
			    v->store, strerror(-rc));
	}
	return 0;
}

/* The checkpoint engine: store, views. */
static int setup_engine(const struct main_opts *o, const struct main_vals *v,
			const char *backing, struct fs_ctx *ctx)
{
	struct ckpt_set_opts co = { .block_size = v->block_size,
				    .on_full = v->on_full,
				    .root = backing,
				    .root_fd = ino_table_root_fd(ctx->itab),
				    .store_dir = v->store,
				    .store_mem = store_split(v, false),
				    .store_max = store_split(v, true),
				    .throttle_ns = (int64_t)(v->throttle_max *
							     1e9),
				    .kept_max = v->kept_max };
	int rc;

	co.events = ctx->events;
	co.hist = ctx->hist;
	co.on_reached = views_on_reached;
	co.on_reached_arg = ctx;
	if (v->stale)
		events_emit(ctx->events, "store-cleaned", "\"stale\":%u",
			    v->stale);
	rc = txn_create(&vnode_txn_ops, ctx, &ctx->txn);
	if (rc == 0)
		rc = locks_create(&ctx->locks);
	if (rc < 0)
		return fail("cannot set up locks: %s", strerror(-rc));
	co.txn = ctx->txn;
	rc = ckpt_set_create(&co, &ctx->ckpts);
	if (rc == 0)
		rc = views_create(&ctx->views);
	if (rc == 0)
		rc = ckeep_create(ctx->ckpts, ctx->events, &ctx->keep);
	if (rc < 0)
		return fail("cannot set up checkpoints with store '%s': %s",
			    v->store, strerror(-rc));
	return 0;
}

/* Returns false when a busy view keeps the state alive (process exit
 * frees it). */
static bool teardown_engine(struct fs_ctx *ctx)
{
	if (!views_free(ctx->views))
		return false;
	ckeep_free(ctx->keep);
	ckpt_set_free(ctx->ckpts);
	hist_close(ctx->hist);
	txn_free(ctx->txn);
	events_close(ctx->events);
	return true;
}

/*
 * Device number of the mount at mnt (canonical path), from mountinfo:
 * stat() on our own mount would wait for the daemon that is calling it.
 */
static int mount_dev(const char *mnt, dev_t *dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096 + PATH_MAX], point[PATH_MAX];
	unsigned maj, min;
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min,
			   point) != 3)
			continue;
		unescape_octal(point);
		if (!strcmp(point, mnt) && strstr(line, " fuse.swafs ")) {
			*dev = makedev(maj, min);
			found = 0;	/* the last match is the top mount */
		}
	}
	fclose(f);
	return found;
}

/* A second daemon on a live tree would hide it: refuse to stack. */
static int refuse_stacked(const char *mnt)
{
	dev_t dev;

	if (mount_dev(mnt, &dev) < 0)
		return 0;
	return fail("'%s' is already a swafs live tree (device %u:%u); "
		    "unmount it first", mnt, major(dev), minor(dev));
}

/*
 * Network filesystems may report write errors only at close, so closes
 * must reach them (FLUSH); local ones report everything at write time.
 */
static bool backing_needs_flush(int fd)
{
	static const long local[] = {
		0xEF53,		/* ext2/3/4 */
		0x58465342,	/* xfs */
		0x9123683E,	/* btrfs */
		0x01021994,	/* tmpfs */
		0x2FC12FC1,	/* zfs */
		0xF2F52010,	/* f2fs */
	};
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return true;
	for (size_t k = 0; k < sizeof(local) / sizeof(local[0]); k++)
		if (sf.f_type == local[k])
			return false;
	return true;
}

/* Options implied by others, and the names shown in mount tables. */
static int add_implied(struct fuse_args *args, const struct main_opts *o,
		       const char *backing)
{
	char *escaped = NULL, *opt = NULL;
	int rc = 0;

	if (o->allow_other && !o->default_permissions)
		rc |= fuse_opt_add_arg(args, "-odefault_permissions");
	rc |= fuse_opt_add_arg(args, "-osubtype=swafs");
	if (!o->fsname) {
		/* commas in the path must not split the option list */
		rc |= fuse_opt_add_opt_escaped(&escaped, backing);
		if (rc == 0 && asprintf(&opt, "-ofsname=%s", escaped) < 0)
			rc = -1;
		if (rc == 0)
			rc |= fuse_opt_add_arg(args, opt);
		free(opt);
		free(escaped);
	}
	return rc ? fail("out of memory") : 0;
}

/*
 * The exit status of a session loop that returned rc: libfuse's signal
 * handlers end the loop with the signal's number, and SIGTERM, SIGINT or
 * SIGHUP is how a service manager or a terminal asks for a clean stop.
 */
static int loop_status(int rc)
{
	return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}

static int run_loop(struct fuse_session *se, struct fuse_cmdline_opts *co)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (co->singlethread)
		return loop_status(fuse_session_loop(se));
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return 1;
	fuse_loop_cfg_set_clone_fd(cfg, co->clone_fd);
	/* fuse_parse_cmdline() leaves UINT_MAX for "not given" */
	if (co->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(cfg, co->max_idle_threads);
	if (co->max_threads != UINT_MAX)
		fuse_loop_cfg_set_max_threads(cfg, co->max_threads);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return loop_status(rc);
}

/* What answers for the mounted tree: its control socket, its metrics. */
static int start_control(struct fs_ctx *ctx, const char *mnt,
			 const struct main_opts *o, const struct main_vals *v,
			 struct ctl *ctl, struct metrics **met)
{
	int64_t every = (int64_t)(v->metrics_interval * 1e9);
	int rc = ctl_run(ctl);

	if (rc < 0)
		return fail("cannot start the control socket for '%s': %s",
			    mnt, strerror(-rc));
	if (o->metrics &&
	    (rc = metrics_start(ctx, v->metrics_path, mnt, every, met)) < 0)
		return fail("cannot write metrics to '%s': %s", o->metrics,
			    strerror(-rc));
	return 0;
}

/*
 * The control socket of the mount at mnt, made before daemonizing: a
 * mount whose socket cannot be made must not report success.
 */
static int open_ctl(struct fs_ctx *ctx, const char *mnt,
		    const struct ctl_limits *lim, struct ctl **ctl)
{
	char why[512];
	int rc = mount_dev(mnt, &ctx->dev);

	if (rc < 0)
		snprintf(why, sizeof(why), "%s", strerror(-rc));
	else
		rc = ctl_open(ctx, ctx->dev, lim, ctl, why, sizeof(why));
	if (rc < 0)
		fail("cannot make the control socket for '%s': %s", mnt, why);
	return rc;
}

/*
 * Mount, make the control socket, daemonize, then start what runs threads
 * or names files after our pid (the store): neither would survive
 * fuse_daemonize()'s fork.
 */
static int run_session(struct fuse_args *args, struct fuse_cmdline_opts *co,
		       struct fs_ctx *ctx, const char *mnt, const char *backing,
		       const struct main_opts *o, const struct main_vals *v)
{
	struct fuse_session *se;
	struct ctl *ctl = NULL;
	struct metrics *met = NULL;
	int rc = 1;

	se = fuse_session_new(args, live_ops(), sizeof(*live_ops()), ctx);
	if (!se)
		return 1;
	ctx->se = se;	/* before the control threads that read it */
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, co->mountpoint) != 0)
		goto out_signals;
	if (open_ctl(ctx, mnt, &v->ctl, &ctl) < 0)
		goto out_unmount;
	fuse_daemonize(co->foreground);
	if (!co->foreground && svc_log_to_syslog() < 0)
		goto out_unmount;
	if (setup_engine(o, v, backing, ctx) < 0)
		goto out_unmount;
	if (start_control(ctx, mnt, o, v, ctl, &met) < 0) {
		rc = 1;
		goto out_unmount;
	}
	svc_ready();
	rc = run_loop(se, co);
	svc_stopping();
	metrics_stop(met);
out_unmount:
	ctl_stop(ctl);
	/* parked lock requests are answered while the session exists */
	locks_free(ctx->locks);
	ctx->locks = NULL;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return rc;
}

static void free_opts(struct main_opts *o)
{
	char **strs[] = { &o->backing, &o->timeout, &o->fd_cache,
			  &o->user_opens, &o->block_size, &o->store,
			  &o->store_mem, &o->store_max, &o->events,
			  &o->on_full, &o->keep_days, &o->boundary_report,
			  &o->throttle_max, &o->metrics, &o->metrics_interval,
			  &o->ctl_conns, &o->ctl_follow, &o->ctl_deadline };

	for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
		free(*strs[k]);
		*strs[k] = NULL;
	}
}

/* The live tree's state: inode table (owns root_fd), owner, flush. */
static int setup_live(const struct main_opts *o, struct main_vals *v,
		      int root_fd, const char *backing, const char *mnt,
		      struct fs_ctx *ctx)
{
	int rc = ino_table_create(root_fd, v->fd_cache, &ctx->itab);

	if (rc < 0) {
		close(root_fd);
		return fail("cannot set up inode table for '%s': %s",
			    o->backing, strerror(-rc));
	}
	if (!ino_table_uses_handles(ctx->itab))
		fprintf(stderr, "swafs: warning: no file handles on '%s' (daemon "
			"not root?): one open descriptor per cached object\n",
			backing);
	ctx->owner = getuid();
	rc = fdcap_create(v->user_opens, v->open_pool, ctx->owner, &ctx->fdcap);
	if (rc < 0) {
		ino_table_free(ctx->itab);
		return fail("cannot set up open-file shares: %s", strerror(-rc));
	}
	ctx->flush = backing_needs_flush(ino_table_root_fd(ctx->itab));
	ctx->allow_other = o->allow_other;
	clock_gettime(CLOCK_REALTIME, &ctx->mounted);
	/* the canonical path: the daemon's cwd becomes / when it forks */
	if (check_store(v->store, !o->store, backing, mnt, v->store_path) < 0) {
		ino_table_free(ctx->itab);
		return -1;
	}
	v->store = v->store_path;
	return 0;
}

/* Prints help or version and returns 0, or returns -1 to go on. */
static int help_or_version(const struct main_opts *o)
{
	if (o->help)
		usage(stdout);
	else if (o->version)
		printf("swafs %s (libfuse %s)\n", SWAFS_VERSION,
		       fuse_pkgversion());
	return o->help || o->version ? 0 : -1;
}

/*
 * libfuse ends a session's worker threads (a view's, at its unmount) with
 * pthread_cancel, for which glibc loads libgcc_s on first use.  A daemon
 * out of descriptors then cannot open it, and glibc aborts the process:
 * load it while descriptors are free.
 */
static void preload_unwinder(void)
{
	if (!dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE))
		fprintf(stderr, "swafs: warning: cannot load libgcc_s.so.1 (%s): "
			"a view unmounted while out of descriptors may abort the "
			"daemon\n", dlerror());
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co = { 0 };
	struct main_opts o = { 0 };
	struct fs_ctx ctx = { 0 };
	char backing[PATH_MAX], mnt[PATH_MAX];
	struct main_vals vals = { 0 };
	int root_fd = -1, rc = 1;

	if (fuse_opt_parse(&args, &o, main_optspec, main_opt_proc) != 0)
		goto out;
	if (help_or_version(&o) == 0) {
		rc = 0;
		goto out;
	}
	if (o.nonopts != 2) {
		fprintf(stderr, "swafs: want BACKING and MOUNTPOINT; "
			"see swafs --help\n");
		goto out;
	}
	if (parse_values(&o, &ctx, &vals) < 0 ||
	    fuse_parse_cmdline(&args, &co) != 0 ||
	    check_paths(o.backing, co.mountpoint, &root_fd, backing, mnt) < 0 ||
	    refuse_stacked(mnt) < 0 || add_implied(&args, &o, backing) < 0)
		goto out;
	umask(0);	/* the kernel already applied the caller's umask */
	preload_unwinder();
	ctx.as_caller = geteuid() == 0;
	if (ctx.as_caller && setgroups(0, NULL) < 0)
		goto out;
	rc = setup_live(&o, &vals, root_fd, backing, mnt, &ctx);
	root_fd = -1;
	if (rc < 0) {
		rc = 1;
		goto out;
	}
	clean_stale(&vals);
	if (open_files(&o, &vals, backing, &ctx) < 0) {
		ino_table_free(ctx.itab);
		rc = 1;
		goto out;
	}
	rc = run_session(&args, &co, &ctx, mnt, backing, &o, &vals);
	if (teardown_engine(&ctx))
		ino_table_free(ctx.itab);
	else	/* busy views still charge it: the exit frees it */
		ctx.fdcap = NULL;
out:
	if (root_fd >= 0)
		close(root_fd);
	fdcap_free(ctx.fdcap);
	free(co.mountpoint);
	free_opts(&o);
	fuse_opt_free_args(&args);
	return rc;
}
