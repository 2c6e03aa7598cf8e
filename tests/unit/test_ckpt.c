/* Unit tests for snapshot/ckpt.c: take, list and release; names; the
 * drain; views attaching and detaching; hooks into every active
 * checkpoint and none after release; events; and checkpoints taken while
 * writers run (G1: every write that returned before T is in, none that
 * began after). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/ckpt.h"
#include "snapshot/cobj.h"
#include "snapshot/events.h"
#include "snapshot/hist.h"
#include "snapshot/nscap.h"

#define MIB (1024u * 1024u)
#define BS 4096u

static char dir[64];
static char evpath[128];
static struct events *ev;
static struct ckpt_set *s;

static void setup(void)
{
	struct ckpt_set_opts o = { .block_size = BS, .store_dir = dir,
				   .store_mem = 16 * MIB,
				   .store_max = 64 * MIB };

	strcpy(dir, "/tmp/swafs-ckpt-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(evpath, sizeof(evpath), "%s/events.jsonl", dir);
	cr_assert_eq(events_open(evpath, &ev), 0);
	o.events = ev;
	cr_assert_eq(ckpt_set_create(&o, &s), 0);
}

static void teardown(void)
{
	char cmd[128];

	ckpt_set_free(s);
	events_close(ev);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/*
 * The set's invariants: ckpt_list names exactly the checkpoints expected
 * (NULL-terminated), each valid and reachable by ckpt_get; ckpt_active
 * says whether any exists.
 */
static void check_set(const char *const *names)
{
	struct ckpt_info inf[16];
	size_t n = 0, got = ckpt_list(s, inf, 16);

	while (names[n])
		n++;
	cr_assert_eq(got, n, "%zu checkpoints listed, want %zu", got, n);
	cr_assert_eq(ckpt_active(s), n > 0);
	for (size_t k = 0; k < n; k++) {
		struct ckpt *c = ckpt_get(s, names[k]);
		bool listed = false;

		cr_assert_not_null(c, "'%s' not found", names[k]);
		cr_assert_str_eq(ckpt_name(c), names[k]);
		cr_assert(ckpt_usable(c));
		cr_assert_eq(ckpt_set_of(c), s);
		for (size_t i = 0; i < got; i++)
			if (!strcmp(inf[i].name, names[k])) {
				listed = true;
				cr_assert(inf[i].valid);
				cr_assert_eq(inf[i].t_sec,
					     ckpt_time(c)->tv_sec);
			}
		cr_assert(listed, "'%s' not listed", names[k]);
		ckpt_put(c);
	}
}

#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NONE ((const char *const[]){ NULL })

static int take(const char *name, unsigned flags)
{
	uint64_t pause = UINT64_MAX;
	int rc = ckpt_take(s, name, flags, 5000000000ll, &pause);

	if (rc == 0)
		cr_assert_lt(pause, 5000000, "pause of %lu us",
			     (unsigned long)pause);
	return rc;
}

/* A file of n blocks, byte value seed; *r is its O_PATH reference. */
static int make_file(const char *name, unsigned n, int seed,
		     struct cobj_ref *r)
{
	char p[256], buf[BS];
	struct stat st;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	memset(buf, seed, sizeof(buf));
	for (unsigned b = 0; b < n; b++)
		cr_assert_eq(pwrite(fd, buf, BS, (off_t)b * BS), BS);
	r->fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	cr_assert_geq(r->fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	return fd;
}

/* The live tree's write of byte value v over block b. */
static void live_write(int fd, const struct cobj_ref *r, unsigned b, int v)
{
	char buf[BS];

	memset(buf, v, sizeof(buf));
	ckpt_op_begin(s);
	cr_assert_eq(ckpt_before_data(s, r, (uint64_t)b * BS, BS), 0);
	cr_assert_eq(pwrite(fd, buf, BS, (off_t)b * BS), BS);
	ckpt_op_end(s);
}

/* Block b of r as checkpoint name shows it: its byte value, or -errno,
 * or -1000 if the block is not uniform. */
static int view_byte(const char *name, const struct cobj_ref *r, int fd,
		     unsigned b)
{
	struct ckpt *c = ckpt_get(s, name);
	struct cobj_table *t;
	struct cobj *co;
	char buf[BS];
	ssize_t n;

	cr_assert_not_null(c);
	t = ckpt_objects(c);
	cr_assert_eq(cobj_get(t, r, &co), 0);
	cobj_view_open(co);
	n = cobj_read(t, co, fd, buf, BS, (uint64_t)b * BS);
	cobj_view_close(t, co);
	ckpt_put(c);
	if (n < 0)
		return (int)n;
	cr_assert_eq(n, BS);
	for (unsigned i = 1; i < BS; i++)
		if (buf[i] != buf[0])
			return -1000;
	return (unsigned char)buf[0];
}

static struct cobj_stats stats_of(const char *name)
{
	struct ckpt *c = ckpt_get(s, name);
	struct cobj_stats st;

	cr_assert_not_null(c);
	cobj_table_stats(ckpt_objects(c), &st);
	ckpt_put(c);
	return st;
}

/* ---- lifecycle ---- */

Test(ckpt, take_list_release, .init = setup, .fini = teardown)
{
	struct ckpt_info inf[4];
	struct timespec before;
	struct ckpt *a;

	check_set(NONE);
	clock_gettime(CLOCK_REALTIME, &before);
	cr_assert_eq(take("a", 0), 0);
	check_set(NAMES("a"));
	cr_assert_eq(take("b", CKPT_RETAIN_ALL | CKPT_KEEP), 0);
	check_set(NAMES("a", "b"));
	a = ckpt_get(s, "a");
	cr_assert_geq(ckpt_time(a)->tv_sec, before.tv_sec);
	cr_assert_leq(ckpt_time(a)->tv_sec, before.tv_sec + 5);
	cr_assert_eq(ckpt_list(s, inf, 1), 2, "the count is of all");
	cr_assert_eq(ckpt_list(s, inf, 4), 2);
	for (int k = 0; k < 2; k++) {
		unsigned want = strcmp(inf[k].name, "b") ? 0u
				: CKPT_RETAIN_ALL | CKPT_KEEP;

		cr_assert_eq(inf[k].flags, want);
		cr_assert_eq(inf[k].views, 0);
		cr_assert_eq(inf[k].objs.objects, 0);
	}
	cr_assert_eq(ckpt_release(s, "a"), 0);
	check_set(NAMES("b"));
	cr_assert_null(ckpt_get(s, "a"));
	cr_assert(!ckpt_usable(a), "a released checkpoint stays unusable");
	cr_assert_str_eq(ckpt_name(a), "a");
	ckpt_put(a);	/* the last reference frees it (ASan watches) */
	cr_assert_eq(ckpt_release(s, "a"), -ENOENT);
	cr_assert_eq(ckpt_release(s, "nosuch"), -ENOENT);
	cr_assert_eq(ckpt_release(s, "b"), 0);
	check_set(NONE);
	/* a name is free again once released */
	cr_assert_eq(take("a", 0), 0);
	check_set(NAMES("a"));
}

Test(ckpt, duplicate_name, .init = setup, .fini = teardown)
{
	uint64_t pause = 12345;

	cr_assert_eq(take("a", 0), 0);
	cr_assert_eq(ckpt_take(s, "a", 0, -1, &pause), -EEXIST);
	cr_assert_eq(ckpt_take(s, "a", CKPT_KEEP, -1, &pause), -EEXIST);
	check_set(NAMES("a"));
	cr_assert_eq(take("A", 0), 0, "names are case-sensitive");
	check_set(NAMES("a", "A"));
}

Test(ckpt, bad_names, .init = setup, .fini = teardown)
{
	static const char *bad[] = {
		"", ".", "..", "a/b", "/a", "a b", "a\n", "caf\xc3\xa9",
		"a:b", "*", "x\ty",
		"0123456789012345678901234567890123456789012345678901234567890"
		"1234",	/* 65 */
	};
	static const char *good[] = {
		"a", "...", ".a", "a.b-c_D9", "-",
		"0123456789012345678901234567890123456789012345678901234567890"
		"123",	/* 64 */
	};
	uint64_t pause;

	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++)
		cr_assert_eq(ckpt_take(s, bad[k], 0, -1, &pause), -EINVAL,
			     "'%s' accepted", bad[k]);
	check_set(NONE);
	for (size_t k = 0; k < sizeof(good) / sizeof(*good); k++)
		cr_assert_eq(take(good[k], 0), 0, "'%s' refused", good[k]);
	check_set(NAMES("a", "...", ".a", "a.b-c_D9", "-", good[5]));
}

/* ---- the drain ---- */

struct holder {
	atomic_bool inside, leave, left;
};

static void *hold(void *p)
{
	struct holder *h = p;

	ckpt_op_begin(s);
	atomic_store(&h->inside, true);
	while (!atomic_load(&h->leave))
		usleep(1000);
	ckpt_op_end(s);
	atomic_store(&h->left, true);
	return NULL;
}

static void *one_op(void *p)
{
	atomic_bool *done = p;

	ckpt_op_begin(s);
	ckpt_op_end(s);
	atomic_store(done, true);
	return NULL;
}

Test(ckpt, drain_timeout_changes_nothing, .init = setup, .fini = teardown)
{
	struct holder h = { 0 };
	atomic_bool done = false;
	pthread_t th, op;
	uint64_t pause = 777;
	int64_t t0, dt;

	pthread_create(&th, NULL, hold, &h);
	while (!atomic_load(&h.inside))
		usleep(1000);
	t0 = now_ns();
	cr_assert_eq(ckpt_take(s, "x", 0, 50 * 1000000ll, &pause),
		     -ETIMEDOUT);
	dt = now_ns() - t0;
	cr_assert_geq(dt, 45 * 1000000ll, "gave up after %ld ns", (long)dt);
	cr_assert_lt(dt, 1000 * 1000000ll, "took %ld ns", (long)dt);
	check_set(NONE);
	cr_assert_null(ckpt_get(s, "x"));
	/* the gate is open again: another call passes while h still holds */
	pthread_create(&op, NULL, one_op, &done);
	for (int k = 0; k < 2000 && !atomic_load(&done); k++)
		usleep(1000);
	cr_assert(atomic_load(&done), "a call was left held after the timeout");
	pthread_join(op, NULL);
	cr_assert(!atomic_load(&h.left));
	atomic_store(&h.leave, true);
	pthread_join(th, NULL);
	cr_assert_eq(take("x", 0), 0);
	check_set(NAMES("x"));
}

/* A call in flight when the take starts is waited for, and is in T; the
 * pause reported is the drain. */
struct slow_write {
	int fd;
	const struct cobj_ref *r;
	atomic_bool inside;
};

static void *slow_write_run(void *p)
{
	struct slow_write *w = p;
	char buf[BS];

	memset(buf, 'b', sizeof(buf));
	ckpt_op_begin(s);
	atomic_store(&w->inside, true);
	usleep(100 * 1000);
	ckpt_before_data(s, w->r, 0, BS);
	if (pwrite(w->fd, buf, BS, 0) != BS)
		abort();
	ckpt_op_end(s);
	return NULL;
}

Test(ckpt, take_waits_for_call_in_flight, .init = setup, .fini = teardown)
{
	struct cobj_ref r = { 0 };
	struct slow_write w = { .r = &r };
	pthread_t th;
	uint64_t pause;
	int64_t t0;

	w.fd = make_file("f", 2, 'a', &r);
	pthread_create(&th, NULL, slow_write_run, &w);
	while (!atomic_load(&w.inside))
		usleep(1000);
	t0 = now_ns();
	cr_assert_eq(ckpt_take(s, "c", 0, -1, &pause), 0);
	cr_assert_geq(now_ns() - t0, 50 * 1000000ll, "no drain");
	cr_assert_geq(pause, 50000, "pause %lu us hides the drain",
		      (unsigned long)pause);
	pthread_join(th, NULL);
	cr_assert_eq(view_byte("c", &r, w.fd, 0), 'b');
	cr_assert_eq(stats_of("c").captured_blocks, 0);
	live_write(w.fd, &r, 0, 'c');
	cr_assert_eq(view_byte("c", &r, w.fd, 0), 'b');
	cr_assert_eq(stats_of("c").captured_blocks, 1);
	close(w.fd);
	close(r.fd);
}

Test(ckpt, pause_is_small, .init = setup, .fini = teardown)
{
	struct ckpt_info inf;
	uint64_t pause = UINT64_MAX;

	cr_assert_eq(ckpt_take(s, "p", 0, -1, &pause), 0);
	cr_assert_lt(pause, 100000, "pause %lu us with nothing in flight",
		     (unsigned long)pause);
	cr_assert_eq(ckpt_list(s, &inf, 1), 1);
	cr_assert_eq(inf.pause_us, pause);
}

/* ---- views ---- */

Test(ckpt, last_view_detach_releases, .init = setup, .fini = teardown)
{
	struct ckpt_info inf;
	struct ckpt *c;

	cr_assert_eq(take("v", 0), 0);
	c = ckpt_get(s, "v");
	ckpt_view_attach(c);
	ckpt_view_attach(c);
	cr_assert_eq(ckpt_list(s, &inf, 1), 1);
	cr_assert_eq(inf.views, 2);
	ckpt_view_detach(c);
	check_set(NAMES("v"));
	ckpt_view_detach(c);
	check_set(NONE);
	cr_assert(!ckpt_usable(c));
	ckpt_put(c);

	/* --keep: survives its last view until released */
	cr_assert_eq(take("k", CKPT_KEEP), 0);
	c = ckpt_get(s, "k");
	ckpt_view_attach(c);
	ckpt_view_detach(c);
	check_set(NAMES("k"));
	cr_assert(ckpt_usable(c));
	cr_assert_eq(ckpt_release(s, "k"), 0);
	cr_assert(!ckpt_usable(c));
	ckpt_put(c);
	check_set(NONE);
}

/*
 * A view of a released checkpoint is unmounted after a new checkpoint of
 * the same name was taken (release "nightly", take "nightly" again, the
 * old view goes away).  The new checkpoint is not the old view's to
 * release.
 */
Test(ckpt, old_view_detach_spares_new_checkpoint_of_same_name,
     .init = setup, .fini = teardown)
{
	struct ckpt *old;

	cr_assert_eq(take("nightly", 0), 0);
	old = ckpt_get(s, "nightly");
	ckpt_view_attach(old);
	cr_assert_eq(ckpt_release(s, "nightly"), 0);
	cr_assert_eq(take("nightly", CKPT_KEEP), 0);
	ckpt_view_detach(old);
	ckpt_put(old);
	check_set(NAMES("nightly"));
}

/* ---- hooks ---- */

Test(ckpt, hooks_capture_into_every_active_checkpoint, .init = setup,
     .fini = teardown)
{
	struct cobj_ref r = { 0 };
	int fd = make_file("f", 4, 'a', &r);

	/* with no checkpoint a hook does nothing */
	live_write(fd, &r, 0, 'b');
	cr_assert_eq(take("one", 0), 0);
	live_write(fd, &r, 1, 'c');
	cr_assert_eq(take("two", 0), 0);
	live_write(fd, &r, 1, 'd');
	live_write(fd, &r, 2, 'e');
	cr_assert_eq(stats_of("one").captured_blocks, 2);
	cr_assert_eq(stats_of("two").captured_blocks, 2);
	cr_assert_eq(view_byte("one", &r, fd, 0), 'b');
	cr_assert_eq(view_byte("one", &r, fd, 1), 'a');
	cr_assert_eq(view_byte("one", &r, fd, 2), 'a');
	cr_assert_eq(view_byte("one", &r, fd, 3), 'a');
	cr_assert_eq(view_byte("two", &r, fd, 0), 'b');
	cr_assert_eq(view_byte("two", &r, fd, 1), 'c');
	cr_assert_eq(view_byte("two", &r, fd, 2), 'a');
	check_set(NAMES("one", "two"));
	close(fd);
	close(r.fd);
}

Test(ckpt, hooks_after_release_capture_nothing, .init = setup,
     .fini = teardown)
{
	struct cobj_ref r = { 0 }, d = { 0 };
	struct cobj_stats st;
	struct ckpt *c;
	int fd = make_file("f", 4, 'a', &r);
	struct stat sb;

	cr_assert_eq(take("gone", 0), 0);
	c = ckpt_get(s, "gone");
	live_write(fd, &r, 0, 'b');
	cobj_table_stats(ckpt_objects(c), &st);
	cr_assert_eq(st.captured_blocks, 1, "a live checkpoint captures");
	cr_assert_eq(ckpt_release(s, "gone"), 0);
	cr_assert(!ckpt_active(s));
	live_write(fd, &r, 1, 'c');
	d.fd = open(dir, O_PATH | O_CLOEXEC);
	cr_assert_eq(fstat(d.fd, &sb), 0);
	d.dev = sb.st_dev;
	d.ino = sb.st_ino;
	ckpt_op_begin(s);
	cr_assert_eq(ckpt_before_attr(s, &d), 0);
	cr_assert_eq(ckpt_before_xattr(s, &r), 0);
	cr_assert_eq(ckpt_before_dir(s, &d), 0);
	cr_assert_eq(ckpt_before_unlink(s, &r, true), 0);
	ckpt_after_create(s, &d);
	ckpt_op_end(s);
	cobj_table_stats(ckpt_objects(c), &st);
	cr_assert_eq(st.captured_blocks, 1);
	cr_assert_eq(st.objects, 1, "a released checkpoint got new entries");
	ckpt_put(c);
	close(d.fd);
	close(fd);
	close(r.fd);
}

Test(ckpt, hook_kinds, .init = setup, .fini = teardown)
{
	struct cobj_ref r = { 0 }, d = { 0 }, n = { 0 };
	struct ckpt *c;
	struct cobj *co;
	struct stat sb;
	char p[256], buf[BS];
	int fd = make_file("f", 2, 'a', &r), nfd;

	cr_assert_eq(fchmod(fd, 0640), 0);
	cr_assert_eq(fsetxattr(fd, "user.k", "v", 1, 0), 0);
	d.fd = open(dir, O_PATH | O_CLOEXEC);
	cr_assert_eq(fstat(d.fd, &sb), 0);
	d.dev = sb.st_dev;
	d.ino = sb.st_ino;
	cr_assert_eq(take("k", 0), 0);
	c = ckpt_get(s, "k");

	ckpt_op_begin(s);
	ckpt_before_attr(s, &r);
	cr_assert_eq(fchmod(fd, 0600), 0);
	ckpt_before_xattr(s, &r);
	cr_assert_eq(fsetxattr(fd, "user.k", "w", 1, 0), 0);
	ckpt_before_dir(s, &d);
	snprintf(p, sizeof(p), "%s/new", dir);
	nfd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(nfd, 0);
	cr_assert_eq(fstat(nfd, &sb), 0);
	n = (struct cobj_ref){ .dev = sb.st_dev, .ino = sb.st_ino,
			       .fd = open(p, O_PATH | O_CLOEXEC) };
	ckpt_after_create(s, &n);
	ckpt_op_end(s);
	cr_assert_eq(cobj_get(ckpt_objects(c), &r, &co), 0);
	cr_assert_eq(cobj_stat(co)->st_mode & 07777, 0640);
	cr_assert(cobj_flags(co) & COBJ_XATTR);
	cr_assert_eq(cobj_get(ckpt_objects(c), &d, &co), 0);
	cr_assert(cobj_flags(co) & COBJ_DIR);
	cr_assert_geq(nsdir_find(cobj_dir(co), "f"), 0);
	cr_assert_eq(nsdir_find(cobj_dir(co), "new"), -ENOENT);
	cr_assert_eq(cobj_get(ckpt_objects(c), &n, &co), 0);
	cr_assert(cobj_flags(co) & COBJ_NEW);
	/* a new object's writes capture nothing */
	live_write(nfd, &n, 0, 'n');
	cr_assert_eq(stats_of("k").captured_blocks, 0);

	/* the last name goes: the data stays readable without the file */
	ckpt_op_begin(s);
	ckpt_before_dir(s, &d);
	ckpt_before_unlink(s, &r, true);
	snprintf(p, sizeof(p), "%s/f", dir);
	cr_assert_eq(unlink(p), 0);
	ckpt_op_end(s);
	cr_assert_eq(cobj_get(ckpt_objects(c), &r, &co), 0);
	cr_assert(cobj_flags(co) & COBJ_DEAD);
	close(fd);
	close(r.fd);
	cobj_view_open(co);
	cr_assert_eq(cobj_read(ckpt_objects(c), co, -1, buf, BS, BS), BS);
	cr_assert_eq(buf[0], 'a');
	cr_assert_eq(buf[BS - 1], 'a');
	cobj_view_close(ckpt_objects(c), co);
	ckpt_put(c);
	close(nfd);
	close(n.fd);
	close(d.fd);
}

/* ---- events ---- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);

	cr_assert_not_null(f);
	cr_assert_lt(fread(buf, 1, 65535, f), 65535);
	fclose(f);
	return buf;
}

/* The next line at or after *pos holding both strings; moves *pos past it. */
static bool next_line_with(const char **pos, const char *a, const char *b)
{
	const char *l = *pos;

	while (*l) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char line[4096];

		cr_assert_lt(n, sizeof(line));
		memcpy(line, l, n);
		line[n] = '\0';
		cr_assert_eq(line[0], '{', "not JSON: %s", line);
		cr_assert_eq(line[n - 1], '}', "not JSON: %s", line);
		l = e ? e + 1 : l + n;
		if (strstr(line, a) && strstr(line, b)) {
			*pos = l;
			return true;
		}
	}
	return false;
}

Test(ckpt, events_file_gets_json_lines, .init = setup, .fini = teardown)
{
	struct holder h = { 0 };
	pthread_t th;
	const char *p;
	char *log;
	uint64_t pause;
	struct ckpt *c;

	cr_assert_eq(take("e1", 0), 0);
	cr_assert_eq(ckpt_take(s, "e1", 0, -1, &pause), -EEXIST);
	cr_assert_eq(ckpt_release(s, "e1"), 0);
	pthread_create(&th, NULL, hold, &h);
	while (!atomic_load(&h.inside))
		usleep(1000);
	cr_assert_eq(ckpt_take(s, "e2", 0, 20 * 1000000ll, &pause),
		     -ETIMEDOUT);
	atomic_store(&h.leave, true);
	pthread_join(th, NULL);
	cr_assert_eq(take("e3", 0), 0);
	c = ckpt_get(s, "e3");
	ckpt_view_attach(c);
	ckpt_view_detach(c);	/* releases e3 */
	ckpt_put(c);

	log = slurp(evpath);
	p = log;
	cr_assert(next_line_with(&p, "\"event\":\"requested\"",
				 "\"name\":\"e1\""), "%s", log);
	cr_assert(next_line_with(&p, "\"event\":\"reached\"",
				 "\"name\":\"e1\""), "%s", log);
	cr_assert(next_line_with(&p, "\"event\":\"released\"",
				 "\"name\":\"e1\""), "%s", log);
	p = log;
	cr_assert(next_line_with(&p, "\"event\":\"reached\"", "\"pause_us\":"));
	cr_assert(next_line_with(&p, "\"event\":\"failed\"",
				 "\"name\":\"e2\""), "%s", log);
	cr_assert(next_line_with(&p, "\"event\":\"requested\"",
				 "\"name\":\"e3\""), "%s", log);
	cr_assert(next_line_with(&p, "\"event\":\"reached\"",
				 "\"name\":\"e3\""), "%s", log);
	cr_assert(next_line_with(&p, "\"event\":\"released\"",
				 "\"name\":\"e3\""), "%s", log);
	p = log;
	cr_assert(!next_line_with(&p, "\"event\":\"reached\"",
				  "\"name\":\"e2\""), "%s", log);
	p = log;
	cr_assert(next_line_with(&p, "\"time\":\"", "Z\""));
	free(log);
}

/* ---- checkpoints taken while writers run ---- */

#define CW 3		/* writers, one block each */
#define CK 20		/* checkpoints */

struct counter {
	int fd;
	struct cobj_ref ref;
	atomic_bool stop;
	atomic_ullong started[CW];	/* value whose write began */
	atomic_ullong published[CW];	/* value whose write returned */
	atomic_int errors;
};

struct cwriter {
	struct counter *x;
	unsigned w;
};

static void *count_writer(void *p)
{
	struct cwriter *cw = p;
	struct counter *x = cw->x;
	uint64_t buf[BS / 8];

	for (uint64_t v = 1; !atomic_load(&x->stop); v++) {
		for (unsigned i = 0; i < BS / 8; i++)
			buf[i] = v;
		ckpt_op_begin(s);
		atomic_store(&x->started[cw->w], v);
		ckpt_before_data(s, &x->ref, (uint64_t)cw->w * BS, BS);
		if (v % 4 == 0)
			usleep(200); /* widen the call: T must not cut it */
		if (pwrite(x->fd, buf, BS, (off_t)cw->w * BS) != BS)
			atomic_fetch_add(&x->errors, 1);
		atomic_store(&x->published[cw->w], v);
		ckpt_op_end(s);
	}
	return NULL;
}

/* The counter in block w of checkpoint name; fails on a torn block. */
static uint64_t view_counter(const char *name, struct counter *x, unsigned w)
{
	struct ckpt *c = ckpt_get(s, name);
	struct cobj_table *t = ckpt_objects(c);
	uint64_t buf[BS / 8];
	struct cobj *co;

	cr_assert_eq(cobj_get(t, &x->ref, &co), 0);
	cobj_view_open(co);
	cr_assert_eq(cobj_read(t, co, x->fd, buf, BS, (uint64_t)w * BS), BS);
	cobj_view_close(t, co);
	ckpt_put(c);
	for (unsigned i = 1; i < BS / 8; i++)
		if (buf[i] != buf[0])
			cr_assert_fail("%s block %u torn: %lu and %lu", name, w,
				       (unsigned long)buf[0],
				       (unsigned long)buf[i]);
	return buf[0];
}

Test(ckpt_stress, take_while_writing, .init = setup, .fini = teardown,
     .timeout = 60)
{
	struct counter x = { 0 };
	struct cwriter cw[CW];
	pthread_t th[CW];
	uint64_t seen[CK][CW], lo[CW], hi[CW], pause, maxpause = 0;
	char name[16], p[256];
	struct stat st;
	uint64_t zero[BS / 8 * CW] = { 0 };

	snprintf(p, sizeof(p), "%s/counters", dir);
	x.fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(x.fd, 0);
	cr_assert_eq(pwrite(x.fd, zero, sizeof(zero), 0),
		     (ssize_t)sizeof(zero));
	x.ref = (struct cobj_ref){ .fd = open(p, O_PATH | O_CLOEXEC) };
	cr_assert_eq(fstat(x.fd, &st), 0);
	x.ref.dev = st.st_dev;
	x.ref.ino = st.st_ino;
	for (unsigned w = 0; w < CW; w++) {
		cw[w] = (struct cwriter){ &x, w };
		pthread_create(&th[w], NULL, count_writer, &cw[w]);
	}
	usleep(20000);
	for (int k = 0; k < CK; k++) {
		snprintf(name, sizeof(name), "c%d", k);
		for (unsigned w = 0; w < CW; w++)
			lo[w] = atomic_load(&x.published[w]);
		cr_assert_eq(ckpt_take(s, name, 0, -1, &pause), 0);
		for (unsigned w = 0; w < CW; w++)
			hi[w] = atomic_load(&x.started[w]);
		if (pause > maxpause)
			maxpause = pause;
		for (unsigned w = 0; w < CW; w++) {
			uint64_t v = view_counter(name, &x, w);

			cr_assert(v >= lo[w] && v <= hi[w],
				  "%s block %u shows %lu: outside [%lu, %lu]",
				  name, w, (unsigned long)v,
				  (unsigned long)lo[w], (unsigned long)hi[w]);
			if (k)
				cr_assert_geq(v, seen[k - 1][w]);
			seen[k][w] = v;
		}
		usleep(5000);	/* the writers run on past T */
		for (unsigned w = 0; w < CW; w++)
			cr_assert_eq(view_counter(name, &x, w), seen[k][w],
				     "%s block %u moved after T", name, w);
		usleep(15000);
	}
	atomic_store(&x.stop, true);
	for (unsigned w = 0; w < CW; w++)
		pthread_join(th[w], NULL);
	cr_assert_eq(atomic_load(&x.errors), 0);
	/* every writer made progress across the checkpoints */
	for (unsigned w = 0; w < CW; w++)
		cr_assert_gt(seen[CK - 1][w], seen[0][w], "writer %u stalled",
			     w);
	/* the images did not move while the writers went on */
	for (int k = 0; k < CK; k++) {
		snprintf(name, sizeof(name), "c%d", k);
		for (unsigned w = 0; w < CW; w++)
			cr_assert_eq(view_counter(name, &x, w), seen[k][w],
				     "%s block %u changed", name, w);
		cr_assert_eq(stats_of(name).captured_blocks, CW);
	}
	cr_assert_lt(maxpause, 1000000, "pause %lu us",
		     (unsigned long)maxpause);
	close(x.fd);
	close(x.ref.fd);
}

/* ---- status and history ---- */

static struct hist *hs;
static atomic_int reached_calls;

static void count_reached(void *arg, struct ckpt *c)
{
	atomic_fetch_add(&reached_calls, 1);
}

static void setup_hist(void)
{
	struct ckpt_set_opts o = { .block_size = BS, .store_dir = dir,
				   .store_mem = 16 * MIB,
				   .store_max = 64 * MIB,
				   .on_reached = count_reached };

	strcpy(dir, "/tmp/swafs-ckpt-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(evpath, sizeof(evpath), "%s/events.jsonl", dir);
	cr_assert_eq(events_open(evpath, &ev), 0);
	cr_assert_eq(hist_open(dir, "/srv/t", 30, time(NULL), &hs), 0);
	o.events = ev;
	o.hist = hs;
	atomic_store(&reached_calls, 0);
	cr_assert_eq(ckpt_set_create(&o, &s), 0);
}

static void teardown_hist(void)
{
	teardown();
	hist_close(hs);
}

struct recs {
	struct hist_rec r[8];
	int n;
};

static int keep_rec(void *arg, const struct hist_rec *r)
{
	struct recs *rs = arg;

	if (rs->n < 8)
		rs->r[rs->n++] = *r;
	return 0;
}

Test(ckpt_hist, status_and_history_of_a_save, .init = setup_hist,
     .fini = teardown_hist)
{
	struct ckpt_status st[4];
	struct cobj_ref r = { 0 };
	struct recs rs = { .n = 0 };
	struct ckpt *c;
	struct cobj *co;
	char *log;
	const char *p;
	int fd = make_file("f", 4, 'a', &r);

	cr_assert_eq(take("a", 0), 0);
	cr_assert_eq(atomic_load(&reached_calls), 1);
	live_write(fd, &r, 1, 'b');
	c = ckpt_get(s, "a");
	cprog_set_tsize(ckpt_prog(c), CPROG_DONE, 4 * BS, 1);
	cr_assert_eq(cobj_get(ckpt_objects(c), &r, &co), 0);
	cobj_note_served(ckpt_objects(c), co, 0);
	cr_assert_eq(ckpt_status(s, "nope", st, 4), 0);
	cr_assert_eq(ckpt_status(s, NULL, st, 4), 1);
	cr_assert_str_eq(st[0].info.name, "a");
	cr_assert_str_eq(st[0].state, "active");
	cr_assert_eq(st[0].t_size_bytes, 4 * BS);
	cr_assert_eq(st[0].info.objs.saved_bytes, BS);
	cr_assert_float_eq(st[0].saved_pct, 25.0, 1e-9);
	cr_assert_eq(st[0].info.objs.held_bytes, BS);
	cr_assert_eq(st[0].store.raw_bytes, BS);
	ckpt_put(c);
	usleep(20000);
	cr_assert_eq(ckpt_release(s, "a"), 0);
	cr_assert_eq(hist_read(hs, time(NULL), keep_rec, &rs), 0);
	cr_assert_eq(rs.n, 1);
	cr_assert_str_eq(rs.r[0].name, "a");
	cr_assert_str_eq(rs.r[0].outcome, "released");
	cr_assert_eq(rs.r[0].captured_bytes, BS);
	cr_assert_eq(rs.r[0].peak_store_bytes, BS);
	cr_assert_eq(rs.r[0].saved_bytes, BS);
	cr_assert_eq(rs.r[0].t_size_bytes, 4 * BS);
	cr_assert_geq(rs.r[0].duration_s, 0.015);
	log = slurp(evpath);
	p = log;
	cr_assert(next_line_with(&p, "\"event\":\"released\"",
				 "\"peak_store_bytes\":4096,"), "%s", log);
	p = log;
	cr_assert(next_line_with(&p, "\"event\":\"released\"",
				 "\"duration_s\":0.0"), "%s", log);
	free(log);
	close(fd);
	close(r.fd);
}

Test(ckpt_hist, failed_and_stopped_are_recorded, .init = setup_hist,
     .fini = teardown_hist)
{
	struct holder h = { 0 };
	struct recs rs = { .n = 0 };
	uint64_t pause;
	pthread_t th;

	pthread_create(&th, NULL, hold, &h);
	while (!atomic_load(&h.inside))
		usleep(1000);
	cr_assert_eq(ckpt_take(s, "late", 0, 20 * 1000000ll, &pause),
		     -ETIMEDOUT);
	atomic_store(&h.leave, true);
	pthread_join(th, NULL);
	cr_assert_eq(take("left", 0), 0);
	ckpt_set_free(s);
	s = NULL;
	cr_assert_eq(hist_read(hs, time(NULL), keep_rec, &rs), 0);
	cr_assert_eq(rs.n, 2);
	cr_assert_str_eq(rs.r[0].name, "late");
	cr_assert_str_eq(rs.r[0].outcome, "failed");
	cr_assert_str_eq(rs.r[0].reason, "drain wait exceeded");
	cr_assert_str_eq(rs.r[1].name, "left");
	cr_assert_str_eq(rs.r[1].outcome, "stopped");
	cr_assert_eq(rs.r[1].t_size_bytes, -1, "T size was never counted");
}

/* The boundary wait before the drain (ckpt_bound). */
static int granted;

static void count_grant(void *cookie, void *arg)
{
	granted++;
}

static struct txn *txn;

static void setup_txn(void)
{
	static const struct txn_ops ops = { count_grant, NULL };
	struct ckpt_set_opts o = { .block_size = BS, .store_dir = dir,
				   .store_mem = 16 * MIB,
				   .store_max = 64 * MIB };

	granted = 0;
	strcpy(dir, "/tmp/swafs-ckpt-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(evpath, sizeof(evpath), "%s/events.jsonl", dir);
	cr_assert_eq(events_open(evpath, &ev), 0);
	cr_assert_eq(txn_create(&ops, NULL, &txn), 0);
	o.events = ev;
	o.txn = txn;
	cr_assert_eq(ckpt_set_create(&o, &s), 0);
}

static void teardown_txn(void)
{
	teardown();
	txn_free(txn);
}

Test(ckpt, boundary_timeout_leaves_nothing, .init = setup_txn,
     .fini = teardown_txn)
{
	struct txn_wait w = { .timeout_ns = 100 * 1000000ll,
			      .report_ns = 1000 * 1000000ll };
	struct ckpt_info info[2];
	struct txn_state st;
	struct ckpt_prep *p;
	int cookie;

	cr_assert_eq(txn_lock(txn, 1, 1, 1000, 0, NULL), 0);
	cr_assert_eq(ckpt_bound(s, "b", 0, NULL, 0, &w, &p), -ETIMEDOUT);
	cr_assert_eq(ckpt_list(s, info, 2), 0);
	txn_state(txn, &st);
	cr_assert_not(st.closed, "the gate must reopen after a failed wait");
	/* and a later boundary, once the holder is gone, works */
	txn_unlock(txn, 1);
	cr_assert_eq(ckpt_bound(s, "b", 0, NULL, 0, &w, &p), 0);
	cr_assert_eq(txn_lock(txn, 2, 2, 1000, 0, &cookie), TXN_PARKED);
	cr_assert_eq(ckpt_drain(p, -1), 0);
	cr_assert_eq(granted, 0, "a transaction began before T");
	ckpt_commit(p);
	cr_assert_eq(granted, 1);
	cr_assert_eq(ckpt_list(s, info, 2), 1);
	txn_state(txn, &st);
	cr_assert_not(st.closed);
	cr_assert_eq(st.holders, 1);
}

static void *bound_long(void *arg)
{
	struct txn_wait w = { .timeout_ns = 1500 * 1000000ll };
	struct ckpt_prep *p;

	return (void *)(intptr_t)ckpt_bound(s, "slow", 0, NULL, 0, &w, &p);
}

/* A take waiting for its boundary must not hold up a release (nor the
 * last view's unmount, which releases). */
Test(ckpt, release_does_not_wait_for_a_boundary_wait, .init = setup_txn,
     .fini = teardown_txn)
{
	struct timespec a, b;
	pthread_t th;
	void *rc;

	cr_assert_eq(take("old", 0), 0);
	cr_assert_eq(txn_lock(txn, 1, 1, 1000, 0, NULL), 0);
	pthread_create(&th, NULL, bound_long, NULL);
	usleep(200000);
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(ckpt_release(s, "old"), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	cr_assert_lt((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) /
		     1000000, 500, "the release waited for the boundary wait");
	pthread_join(th, &rc);
	cr_assert_eq((intptr_t)rc, -ETIMEDOUT);
	txn_unlock(txn, 1);
}

/* A set over the tree dir/tree (BACKING) for scoped takes. */
static struct ckpt_set *scoped_set(char *tree, size_t size, int *root_fd)
{
	struct ckpt_set_opts o = { .block_size = BS, .store_dir = dir,
				   .store_mem = 16 * MIB,
				   .store_max = 64 * MIB, .events = ev };
	struct ckpt_set *ss;

	snprintf(tree, size, "%s/tree", dir);
	cr_assert_eq(mkdir(tree, 0755), 0);
	*root_fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(*root_fd, 0);
	o.root = tree;
	o.root_fd = *root_fd;
	cr_assert_eq(ckpt_set_create(&o, &ss), 0);
	return ss;
}

/* The first data hook on tree/rel, after which it is written. */
static struct cobj *hook_data(struct ckpt_set *ss, struct ckpt *c,
			      int root_fd, const char *rel)
{
	struct cobj_ref r = { .fd = openat(root_fd, rel, O_PATH | O_CLOEXEC) };
	struct stat st;

	cr_assert_geq(r.fd, 0, "%s", rel);
	cr_assert_eq(fstat(r.fd, &st), 0);
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	cr_assert_eq(ckpt_before_data(ss, &r, 0, BS), 0);
	close(r.fd);
	return cobj_find(ckpt_objects(c), st.st_dev, st.st_ino);
}

/* --path sub1: after `mv sub1 moved` the T subtree is still captured
 * before it changes; a sibling is not; the root lists only sub1. */
Test(ckpt, scoped_take_follows_a_renamed_root, .init = setup,
     .fini = teardown)
{
	const char *paths[] = { "sub1" };
	char tree[128];
	struct ckpt_set *ss;
	struct stat st;
	struct cobj *f, *o;
	struct ckpt *c;
	uint64_t pause;
	int root_fd, fd;

	ss = scoped_set(tree, sizeof(tree), &root_fd);
	cr_assert_eq(mkdirat(root_fd, "sub1", 0755), 0);
	cr_assert_eq(mkdirat(root_fd, "sib", 0755), 0);
	fd = openat(root_fd, "sub1/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	cr_assert_eq(write(fd, "T data", 6), 6);
	close(fd);
	fd = openat(root_fd, "sib/s", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	close(fd);
	cr_assert_eq(ckpt_take_scoped(ss, "sc", 0, -1, paths, 1, &pause), 0);
	c = ckpt_get(ss, "sc");
	cr_assert_eq(renameat(root_fd, "sub1", root_fd, "moved"), 0);
	f = hook_data(ss, c, root_fd, "moved/f");
	cr_assert_not_null(f, "the moved T file got no entry");
	cr_assert_eq(cobj_flags(f) & COBJ_NEW, 0, "moved T file left out");
	o = hook_data(ss, c, root_fd, "sib/s");
	cr_assert_not_null(o);
	cr_assert_neq(cobj_flags(o) & COBJ_NEW, 0, "sibling captured");
	cr_assert_eq(fstat(root_fd, &st), 0);
	f = cobj_find(ckpt_objects(c), st.st_dev, st.st_ino);
	cr_assert_not_null(f, "BACKING has no entry");
	cr_assert_eq(cobj_flags(f) & (COBJ_ANCESTOR | COBJ_DIR),
		     COBJ_ANCESTOR | COBJ_DIR);
	cr_assert_eq(nsdir_count(cobj_dir(f)), 1);
	ckpt_put(c);
	ckpt_set_free(ss);
	close(root_fd);
}
