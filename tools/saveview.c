/*
 * saveview.c - a private view for one save (tools/saveview.h).
 *
 * Invariants:
 * 1. A view we mounted is unmounted before sv_end returns: plainly, then
 *    (busy or daemon gone) lazily, so no mount outlives swactl.
 * 2. A checkpoint sv_take took without --keep does not outlive sv_end:
 *    the unmount releases it in the daemon; if it still lists a few
 *    seconds later we release it ourselves.
 * 3. Stop signals never interrupt a step half-way: they are blocked in
 *    every thread but one, which records the first and forwards each to
 *    the command we run; the caller polls sv_stop_signal() between steps.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/ctlclient.h"
#include "tools/saveview.h"

struct sv_view {
	char base[4096];	/* the mkdtemp directory */
	char dir[4096 + 8];	/* base/view, the mount point */
	char mnt[4096];
	char name[80];
	bool mounted;
	bool release;		/* ours to release (taken here, no --keep) */
};

static atomic_int stop_sig;
static atomic_int child_pid;
static sigset_t stop_set;

static void *signal_main(void *arg)
{
	int sig;

	for (;;) {
		if (sigwait(&stop_set, &sig))
			continue;
		int none = 0;

		atomic_compare_exchange_strong(&stop_sig, &none, sig);
		if (atomic_load(&child_pid) > 0)
			kill(atomic_load(&child_pid), sig);
	}
	return arg;
}

int sv_signals_catch(void)
{
	pthread_t t;
	int rc;

	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGHUP);
	rc = pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
	if (!rc)
		rc = pthread_create(&t, NULL, signal_main, NULL);
	if (!rc)
		pthread_detach(t);
	return -rc;
}

int sv_stop_signal(void)
{
	return atomic_load(&stop_sig);
}

void sv_forward_to(pid_t pid)
{
	atomic_store(&child_pid, pid);
}

const char *sv_dir(const struct sv_view *v)
{
	return v->dir;
}

/* A 0700 directory of ours under $XDG_RUNTIME_DIR, $TMPDIR or /tmp. */
static int make_private(struct sv_view *v)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR"), *tmp = getenv("TMPDIR");
	const char *base = "/tmp";
	struct stat st;

	if (xdg && xdg[0] == '/' && !lstat(xdg, &st) && S_ISDIR(st.st_mode) &&
	    st.st_uid == geteuid() && (st.st_mode & 077) == 0)
		base = xdg;
	else if (tmp && tmp[0] == '/')
		base = tmp;
	snprintf(v->base, sizeof(v->base), "%s/swactl-save.XXXXXX", base);
	if (!mkdtemp(v->base)) {
		fprintf(stderr, "swactl: cannot make a private directory "
			"under %s: %s\n", base, strerror(errno));
		return 1;
	}
	snprintf(v->dir, sizeof(v->dir), "%s/view", v->base);
	if (mkdir(v->dir, 0700) < 0) {
		fprintf(stderr, "swactl: cannot make '%s': %s\n", v->dir,
			strerror(errno));
		rmdir(v->base);
		return 1;
	}
	return 0;
}

/*
 * One request with a status-only answer, or (list) the records after it.
 * Returns swactl's exit code (on 0 with lines, *lines is the reply
 * stream), or -1, unreported, when no daemon serves mnt any more.
 */
static int ask(const char *mnt, int argc, char *const argv[], FILE **lines)
{
	int rc = ctl_ask(mnt, argc, argv, true, lines);

	return rc == -ENOTCONN ? -1 : rc;
}

/*
 * Look name up in mnt's list: 1 listed (its retain copied), 0 not, -1 no
 * answer (reported), -2 no daemon any more (not reported).
 */
static int listed(const char *mnt, const char *name, char *retain,
		  size_t size)
{
	char line[1024], want[96];
	FILE *f = NULL;
	int found = 0, rc = ask(mnt, 1, (char *[]){ "list" }, &f);

	if (rc)
		return rc < 0 ? -2 : -1;
	snprintf(want, sizeof(want), "name=%s ", name);
	while (!found && fgets(line, sizeof(line), f)) {
		char *r = strstr(line, " retain=");

		if (strncmp(line, want, strlen(want)))
			continue;
		found = 1;
		if (retain && r)
			snprintf(retain, size, "%.*s",
				 (int)strcspn(r + 8, " \n"), r + 8);
	}
	fclose(f);
	return found;
}

static bool is_mounted(const struct sv_view *v)
{
	struct stat a, b;

	return !stat(v->dir, &a) && !stat(v->base, &b) && a.st_dev != b.st_dev;
}

/* Mount name's view on v->dir and wait until the kernel shows it. */
static int mount_view(struct sv_view *v)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	int rc = ask(v->mnt, 3, (char *[]){ "mount", v->name, v->dir }, NULL);

	if (rc < 0)
		fprintf(stderr, "swactl: no daemon serves '%s'\n", v->mnt);
	if (rc)
		return rc < 0 ? 1 : rc;
	v->mounted = true;
	for (int k = 0; k < 500 && !is_mounted(v); k++)
		nanosleep(&pause, NULL);
	if (is_mounted(v))
		return 0;
	fprintf(stderr, "swactl: the view of %s did not appear on %s\n",
		v->name, v->dir);
	return 1;
}

int sv_take(const struct take_req *r, const char *mnt, struct sv_view **out)
{
	struct sv_view *v = calloc(1, sizeof(*v));
	int rc;

	if (!v) {
		fprintf(stderr, "swactl: out of memory\n");
		return 1;
	}
	snprintf(v->mnt, sizeof(v->mnt), "%s", mnt);
	snprintf(v->name, sizeof(v->name), "%s", r->name);
	rc = make_private(v);
	if (rc) {
		free(v);
		return rc;
	}
	rc = take_all(r, (char *const[]){ (char *)mnt }, 1, NULL, NULL);
	if (rc) {
		rmdir(v->dir);
		rmdir(v->base);
		free(v);
		return rc;
	}
	v->release = !r->keep;
	rc = mount_view(v);
	if (rc) {
		sv_end(v);
		return rc;
	}
	*out = v;
	return 0;
}

int sv_attach(const char *mnt, const char *name, char *retain, size_t size,
	      struct sv_view **out)
{
	struct sv_view *v = calloc(1, sizeof(*v));
	int rc;

	if (!v) {
		fprintf(stderr, "swactl: out of memory\n");
		return 1;
	}
	snprintf(v->mnt, sizeof(v->mnt), "%s", mnt);
	snprintf(v->name, sizeof(v->name), "%s", name);
	rc = listed(mnt, name, retain, size);
	if (rc == -2)
		fprintf(stderr, "swactl: no daemon serves '%s'\n", mnt);
	else if (rc == 0)
		fprintf(stderr, "swactl: no checkpoint '%s' on %s\n", name, mnt);
	if (rc != 1) {
		free(v);
		return 1;
	}
	rc = make_private(v);
	if (!rc)
		rc = mount_view(v);
	if (rc) {
		sv_end(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* umount2, waiting out a short EBUSY; fusermount3 when we may not. */
static int unmount(const char *dir)
{
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	pid_t pid;
	int st;

	for (int k = 0; k < 30; k++) {
		if (!umount2(dir, UMOUNT_NOFOLLOW) || errno == EINVAL)
			return 0;
		if (errno != EBUSY)
			break;
		nanosleep(&pause, NULL);
	}
	if (errno == EBUSY && !umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW))
		return 0;
	if (errno != EPERM)
		return -errno;
	pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", dir,
		       (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

/* Invariant 2: give the daemon's own release a moment, then do it. */
static int release_left(struct sv_view *v)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int in = 1;

	for (int k = 0; k < 60 && in == 1; k++) {
		in = listed(v->mnt, v->name, NULL, 0);
		if (in == 1)
			nanosleep(&pause, NULL);
	}
	if (in == 1 && ask(v->mnt, 2, (char *[]){ "release", v->name },
			   NULL) && listed(v->mnt, v->name, NULL, 0) == 1)
		in = -1;
	if (in == -2)
		fprintf(stderr, "swactl: the daemon of %s is gone, and "
			"checkpoint %s with it\n", v->mnt, v->name);
	else if (in < 0)
		fprintf(stderr, "swactl: checkpoint %s may be left on %s: "
			"release it there (swactl release)\n", v->name, v->mnt);
	return in < 0;
}

int sv_end(struct sv_view *v)
{
	int rc = 0, err;
	bool gone = true;	/* nothing mounted on v->dir any more */

	if (v->mounted && (err = unmount(v->dir))) {
		fprintf(stderr, "swactl: cannot unmount the view on %s: %s\n",
			v->dir, strerror(-err));
		rc = 1;
		gone = false;
	}
	if (v->release && release_left(v))
		rc = 1;
	if (gone && (rmdir(v->dir) || rmdir(v->base)))
		fprintf(stderr, "swactl: cannot remove '%s': %s\n", v->base,
			strerror(errno));
	free(v);
	return rc;
}
