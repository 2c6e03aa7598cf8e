/* Unit tests for on_full=throttle in snapshot/ckpt.c: writers that find
 * the store full wait, holding no lock, and go on as the save frees
 * space; when throttle_ns runs out the checkpoint is invalidated, its
 * pre-images freed and every waiter released; a release wakes them too;
 * store-warn fires once per crossing of 80%. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/ckpt.h"
#include "snapshot/cobj.h"
#include "snapshot/events.h"
#include "snapshot/pstore.h"

#define BS 4096u
#define NBLK 64u
#define REC (PSTORE_REC_HDR_SIZE + BS)	/* random data stays raw */
#define STORE_RECS 4u			/* the store holds this many */
#define NWRITERS 4

static char dir[64], evpath[128];
static struct events *ev;
static struct ckpt_set *s;
static struct cobj_ref ref;
static int fd = -1;
static unsigned char orig[NBLK * BS];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* A set whose store holds STORE_RECS blocks in memory and never spills,
 * and a file of NBLK random blocks, checkpoint "t" taken. */
static void setup_with(int64_t throttle_ns)
{
	struct ckpt_set_opts o = { .block_size = BS, .store_dir = dir,
				   .on_full = CKPT_FULL_THROTTLE,
				   .store_mem = STORE_RECS * REC,
				   .throttle_ns = throttle_ns };
	char p[128];
	struct stat st;
	uint64_t pause;

	strcpy(dir, "/tmp/swafs-thr-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(evpath, sizeof(evpath), "%s/events.jsonl", dir);
	cr_assert_eq(events_open(evpath, &ev), 0);
	o.events = ev;
	cr_assert_eq(ckpt_set_create(&o, &s), 0);
	snprintf(p, sizeof(p), "%s/f", dir);
	fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	for (size_t k = 0; k < sizeof(orig); k++)
		orig[k] = (unsigned char)random();
	cr_assert_eq(pwrite(fd, orig, sizeof(orig), 0), sizeof(orig));
	ref.fd = open(p, O_PATH | O_CLOEXEC);
	cr_assert_eq(fstat(fd, &st), 0);
	ref.dev = st.st_dev;
	ref.ino = st.st_ino;
	cr_assert_eq(ckpt_take(s, "t", 0, -1, &pause), 0);
}

static void setup_long(void)
{
	setup_with(20000000000ll);
}

static void setup_short(void)
{
	setup_with(300000000ll);
}

static void teardown(void)
{
	char cmd[128];

	ckpt_set_free(s);
	events_close(ev);
	close(fd);
	close(ref.fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* The live tree's write of block b: hook, then change. */
static int live_write(unsigned b)
{
	unsigned char buf[BS];
	int rc;

	memset(buf, 0xee, sizeof(buf));
	ckpt_op_begin(s);
	rc = ckpt_before_data(s, &ref, (uint64_t)b * BS, BS);
	if (rc == 0)
		cr_assert_eq(pwrite(fd, buf, BS, (off_t)b * BS), BS);
	ckpt_op_end(s);
	return rc;
}

struct writer {
	pthread_t th;
	unsigned block;
	int rc;
	atomic_bool done;
	int64_t took_ns;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int64_t t0 = now_ns();

	w->rc = live_write(w->block);
	w->took_ns = now_ns() - t0;
	atomic_store(&w->done, true);
	return NULL;
}

/* Fill the store, then start NWRITERS writers on new blocks: all wait. */
static void fill_and_block(struct writer *w)
{
	struct ckpt_store_info si;

	for (unsigned b = 0; b < STORE_RECS; b++)
		cr_assert_eq(live_write(b), 0);
	for (int k = 0; k < NWRITERS; k++) {
		w[k].block = 10 + (unsigned)k;
		cr_assert_eq(pthread_create(&w[k].th, NULL, writer_main,
					    &w[k]), 0);
	}
	for (int k = 0; k < 100; k++) {
		ckpt_store_info(s, &si);
		if (si.throttled == NWRITERS)
			break;
		usleep(10000);
	}
	cr_assert_eq(si.throttled, NWRITERS, "%u writers waiting",
		     si.throttled);
	usleep(100000);
	for (int k = 0; k < NWRITERS; k++)
		cr_assert_not(atomic_load(&w[k].done),
			      "writer %d did not wait for a full store", k);
}

static struct cobj *entry(struct ckpt *c)
{
	struct cobj *co = cobj_find(ckpt_objects(c), ref.dev, ref.ino);

	cr_assert_not_null(co);
	return co;
}

/* Block b as checkpoint c shows it, compared with T's bytes. */
static int view_block(struct ckpt *c, unsigned b)
{
	unsigned char buf[BS];
	struct cobj *co = entry(c);
	ssize_t n;

	cobj_view_open(co);
	n = cobj_read(ckpt_objects(c), co, fd, buf, BS, (uint64_t)b * BS);
	cobj_view_close(ckpt_objects(c), co);
	if (n < 0)
		return (int)n;
	return n == BS && !memcmp(buf, orig + b * BS, BS) ? 0 : -1000;
}

static unsigned count_events(const char *what)
{
	char line[1024], pat[64];
	unsigned n = 0;
	FILE *f = fopen(evpath, "r");

	cr_assert_not_null(f);
	snprintf(pat, sizeof(pat), "\"event\":\"%s\"", what);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, pat) != NULL;
	fclose(f);
	return n;
}

Test(throttle, save_frees_space_and_wakes_writers, .init = setup_long,
     .fini = teardown)
{
	struct writer w[NWRITERS] = { 0 };
	struct ckpt *c = ckpt_get(s, "t");
	struct ckpt_store_info si;

	fill_and_block(w);
	/* the saver reads and moves past one block at a time: each frees
	 * a pre-image and lets one writer capture */
	for (unsigned b = 0; b < STORE_RECS; b++) {
		cr_assert_eq(view_block(c, b), 0, "block %u", b);
		cobj_mark_saved(ckpt_objects(c), entry(c), b, b);
	}
	for (int k = 0; k < NWRITERS; k++) {
		pthread_join(w[k].th, NULL);
		cr_assert_eq(w[k].rc, 0);
		cr_assert_lt(w[k].took_ns, 10000000000ll);
	}
	cr_assert(ckpt_usable(c));
	for (int k = 0; k < NWRITERS; k++)
		cr_assert_eq(view_block(c, w[k].block), 0, "block %u",
			     w[k].block);
	ckpt_store_info(s, &si);
	cr_assert_eq(si.on_full, CKPT_FULL_THROTTLE);
	cr_assert_eq(si.throttled, 0);
	cr_assert_eq(si.throttle_waits, NWRITERS);
	cr_assert_gt(si.throttle_wait_us, NWRITERS * 100000u);
	cr_assert_eq(si.throttle_timeouts, 0);
	cr_assert_eq(count_events("store-full"), 0);
	ckpt_put(c);
}

Test(throttle, timeout_invalidates_frees_and_releases_all, .init = setup_short,
     .fini = teardown)
{
	struct writer w[NWRITERS] = { 0 };
	struct ckpt *c = ckpt_get(s, "t");
	struct ckpt_store_info si;
	struct ckpt_status st;

	fill_and_block(w);
	for (int k = 0; k < NWRITERS; k++) {
		pthread_join(w[k].th, NULL);
		cr_assert_eq(w[k].rc, 0, "a throttled write must not fail");
		cr_assert_geq(w[k].took_ns, 250000000ll);
		cr_assert_lt(w[k].took_ns, 5000000000ll);
	}
	cr_assert_not(ckpt_usable(c));
	cr_assert_str_eq(ckpt_unusable_why(c), "invalidated: store full");
	/* its pre-images are gone although c is still referenced */
	ckpt_store_info(s, &si);
	cr_assert_eq(si.used_bytes, 0);
	cr_assert_eq(ckpt_status(s, "t", &st, 1), 1);
	cr_assert_eq(st.info.objs.held_bytes, 0, "status shows freed bytes held");
	cr_assert_eq(si.throttle_timeouts, 1);
	cr_assert_eq(si.throttled, 0);
	cr_assert_eq(view_block(c, 0), -EIO);
	cr_assert_eq(view_block(c, 20), -EIO);
	cr_assert_eq(count_events("store-full"), 1);
	/* later writes pay nothing */
	cr_assert_eq(live_write(30), 0);
	ckpt_store_info(s, &si);
	cr_assert_eq(si.throttle_waits, NWRITERS);
	ckpt_put(c);
}

Test(throttle, release_wakes_waiters, .init = setup_long, .fini = teardown)
{
	struct writer w[NWRITERS] = { 0 };
	struct ckpt_store_info si;
	int64_t t0;

	fill_and_block(w);
	/* a waiting writer holds no list lock: the release gets through */
	t0 = now_ns();
	cr_assert_eq(ckpt_release(s, "t"), 0);
	cr_assert_lt(now_ns() - t0, 2000000000ll);
	for (int k = 0; k < NWRITERS; k++) {
		pthread_join(w[k].th, NULL);
		cr_assert_eq(w[k].rc, 0);
		cr_assert_lt(w[k].took_ns, 5000000000ll);
	}
	ckpt_store_info(s, &si);
	cr_assert_eq(si.used_bytes, 0);
	cr_assert_eq(si.throttle_timeouts, 0);
}

Test(throttle, store_warn_once_per_crossing, .init = setup_long,
     .fini = teardown)
{
	struct ckpt *c = ckpt_get(s, "t");

	/* 3 of 4 records is 75%: no warning yet */
	for (unsigned b = 0; b < 3; b++)
		cr_assert_eq(live_write(b), 0);
	cr_assert_eq(count_events("store-warn"), 0);
	cr_assert_eq(live_write(3), 0);
	cr_assert_eq(count_events("store-warn"), 1);
	/* down to 75% (not below 70%) and up again: no new warning */
	cobj_mark_saved(ckpt_objects(c), entry(c), 0, 0);
	cr_assert_eq(live_write(4), 0);
	cr_assert_eq(count_events("store-warn"), 1);
	/* down to 50%, then up past 80% again: a second warning */
	cobj_mark_saved(ckpt_objects(c), entry(c), 1, 2);
	cr_assert_eq(live_write(5), 0);
	cr_assert_eq(live_write(6), 0);
	cr_assert_eq(count_events("store-warn"), 2);
	ckpt_put(c);
}

Test(throttle, take_while_throttled_drains_after_throttle_max,
     .init = setup_short, .fini = teardown)
{
	struct writer w[NWRITERS] = { 0 };
	struct ckpt *c = ckpt_get(s, "t"), *u;
	uint64_t pause;
	int64_t t0;

	fill_and_block(w);
	/* waiting writers are inside the gate: a drain shorter than their
	 * wait fails and changes nothing */
	cr_assert_eq(ckpt_take(s, "u", 0, 50000000ll, &pause), -ETIMEDOUT);
	cr_assert_null(ckpt_get(s, "u"));
	/* a longer one ends once throttle_ns has run out for them */
	t0 = now_ns();
	cr_assert_eq(ckpt_take(s, "u", 0, 10000000000ll, &pause), 0);
	cr_assert_lt(now_ns() - t0, 5000000000ll);
	for (int k = 0; k < NWRITERS; k++) {
		pthread_join(w[k].th, NULL);
		cr_assert_eq(w[k].rc, 0);
	}
	cr_assert_not(ckpt_usable(c));
	u = ckpt_get(s, "u");
	cr_assert(ckpt_usable(u));
	/* the new checkpoint has the whole (emptied) store to itself */
	cr_assert_eq(live_write(40), 0);
	cr_assert_eq(view_block(u, 40), 0);
	ckpt_put(u);
	ckpt_put(c);
}

/* A take drains behind throttled writers. */
struct taker {
	pthread_t th;
	int rc;
};

static void *taker_main(void *arg)
{
	struct taker *t = arg;
	uint64_t pause;

	t->rc = ckpt_take(s, "u", 0, 30000000000ll, &pause);
	return NULL;
}

/*
 * A release while a take drains behind throttled writers gets through at
 * once and frees their space (it must not wait for the take: the writers
 * would run out their throttle time and invalidate a finished save).
 */
Test(throttle, release_during_a_throttled_drain, .init = setup_long,
     .fini = teardown)
{
	struct writer w[NWRITERS] = { 0 };
	struct ckpt_store_info si;
	struct taker tk;
	int64_t t0, took;

	fill_and_block(w);
	cr_assert_eq(pthread_create(&tk.th, NULL, taker_main, &tk), 0);
	usleep(200000);		/* the take is now draining */
	t0 = now_ns();
	cr_assert_eq(ckpt_release(s, "t"), 0);
	took = now_ns() - t0;
	pthread_join(tk.th, NULL);
	for (int k = 0; k < NWRITERS; k++)
		pthread_join(w[k].th, NULL);
	cr_assert_eq(tk.rc, 0);
	ckpt_store_info(s, &si);
	cr_assert_lt(took, 2000000000ll, "the release waited %.1f s for the "
		     "drain", (double)took / 1e9);
	cr_assert_eq(si.throttle_timeouts, 0, "a released checkpoint was "
		     "invalidated");
}
