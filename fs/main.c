/*
 * main.c - the swafs daemon: options, checks, mount, session loop.
 *
 * BACKING is opened before the mount, so `swafs DIR DIR` (mounting over the
 * backing directory itself) works and leaves no way around the live tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <grp.h>

#include "fs/ctx.h"
#include "fs/live.h"
#include "snapshot/parse.h"

#define SWAFS_VERSION "0.1.0"
#define FD_CACHE_MAX 1000000
#define TIMEOUT_MAX 86400.0

struct main_opts {
	char *backing;		/* first non-option argument */
	char *mountpoint;	/* second, kept for fuse_parse_cmdline */
	char *timeout;		/* -o timeout=SECS */
	char *fd_cache;		/* -o fd_cache=N */
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
"                         (default: 8192 or half the open-file limit)\n"
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
		       char *rb)
{
	char rm[PATH_MAX];
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

static int parse_values(const struct main_opts *o, struct fs_ctx *ctx,
			unsigned *fd_cache)
{
	struct rlimit rl;
	uint64_t n;

	ctx->timeout = 60.0;
	if (o->timeout && parse_secs(o->timeout, TIMEOUT_MAX, &ctx->timeout))
		return fail("invalid option 'timeout=%s': %s", o->timeout,
			    "want seconds from 0 to 86400");
	/* The kernel caps open files (here 20,000, hard); use what we may. */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	*fd_cache = rl.rlim_cur / 2 < 8192 ? (unsigned)(rl.rlim_cur / 2) : 8192;
	if (o->fd_cache) {
		if (parse_u64(o->fd_cache, 16, FD_CACHE_MAX, &n))
			return fail("invalid option 'fd_cache=%s': %s",
				    o->fd_cache, "want a number from 16 to 1000000");
		*fd_cache = (unsigned)n;
	}
	return 0;
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

static int run_session(struct fuse_args *args, struct fuse_cmdline_opts *co,
		       struct fs_ctx *ctx)
{
	struct fuse_session *se;
	struct fuse_loop_config *cfg = NULL;
	int rc = 1;

	se = fuse_session_new(args, live_ops(), sizeof(*live_ops()), ctx);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, co->mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(co->foreground);
	if (co->singlethread) {
		rc = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(cfg, co->clone_fd);
		/* fuse_parse_cmdline() leaves UINT_MAX for "not given" */
		if (co->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(cfg, co->max_idle_threads);
		if (co->max_threads != UINT_MAX)
			fuse_loop_cfg_set_max_threads(cfg, co->max_threads);
		rc = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	rc = rc ? 1 : 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co = { 0 };
	struct main_opts o = { 0 };
	struct fs_ctx ctx = { 0 };
	char backing[PATH_MAX];
	unsigned fd_cache = 0;
	int root_fd = -1, rc = 1;

	if (fuse_opt_parse(&args, &o, main_optspec, main_opt_proc) != 0)
		goto out;
	if (o.help || o.version) {
		if (o.help)
			usage(stdout);
		else
			printf("swafs %s (libfuse %s)\n", SWAFS_VERSION,
			       fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (o.nonopts != 2) {
		fprintf(stderr, "swafs: want BACKING and MOUNTPOINT; "
			"see swafs --help\n");
		goto out;
	}
	if (parse_values(&o, &ctx, &fd_cache) < 0)
		goto out;
	if (fuse_parse_cmdline(&args, &co) != 0)
		goto out;
	if (check_paths(o.backing, co.mountpoint, &root_fd, backing) < 0)
		goto out;
	if (add_implied(&args, &o, backing) < 0)
		goto out;
	umask(0);	/* the kernel already applied the caller's umask */
	ctx.as_caller = geteuid() == 0;
	if (ctx.as_caller && setgroups(0, NULL) < 0)
		goto out;
	rc = ino_table_create(root_fd, fd_cache, &ctx.itab);
	if (rc < 0) {
		fail("cannot set up inode table for '%s': %s", o.backing,
		     strerror(-rc));
		rc = 1;
		goto out;
	}
	root_fd = -1;
	if (!ino_table_uses_handles(ctx.itab))
		fprintf(stderr, "swafs: warning: no file handles on '%s' (daemon "
			"not root?): one open descriptor per cached object\n",
			backing);
	rc = run_session(&args, &co, &ctx);
	ino_table_free(ctx.itab);
out:
	if (root_fd >= 0)
		close(root_fd);
	free(co.mountpoint);
	free(o.backing);
	free(o.timeout);
	free(o.fd_cache);
	fuse_opt_free_args(&args);
	return rc;
}
