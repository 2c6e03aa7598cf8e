/*
 * test_ckeep.c - checkpoints kept for an age are released when it passes,
 * by identity, with a keep-expired event, and not before.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/ckeep.h"
#include "snapshot/ckpt.h"
#include "snapshot/events.h"

#define MIB (1024u * 1024u)

static char dir[64];
static struct events *ev;
static struct ckpt_set *s;
static struct ckeep *k;

static void setup(void)
{
	struct ckpt_set_opts o = { .block_size = 4096, .store_dir = dir,
				   .store_mem = 16 * MIB,
				   .store_max = 64 * MIB };

	strcpy(dir, "/tmp/swafs-ckeep-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(events_open(NULL, &ev), 0);
	o.events = ev;
	cr_assert_eq(ckpt_set_create(&o, &s), 0);
	cr_assert_eq(ckeep_create(s, ev, &k), 0);
}

static void teardown(void)
{
	char cmd[128];

	ckeep_free(k);
	ckpt_set_free(s);
	events_close(ev);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static struct ckpt *take_kept(const char *name)
{
	uint64_t pause;

	cr_assert_eq(ckpt_take(s, name, CKPT_KEEP, -1, &pause), 0);
	return ckpt_get(s, name);
}

/* How many events of kind event the ring holds. */
static int count_events(const char *event)
{
	static char buf[65536];
	char want[64];
	uint64_t last;
	size_t n = events_read(ev, 0, buf, sizeof(buf) - 1, &last);
	int c = 0;

	buf[n] = '\0';
	snprintf(want, sizeof(want), "\"event\":\"%s\"", event);
	for (char *p = buf; (p = strstr(p, want)); p++)
		c++;
	return c;
}

static bool listed(const char *name)
{
	struct ckpt *c = ckpt_get(s, name);

	ckpt_put(c);
	return c != NULL;
}

Test(ckeep, releases_when_due_and_not_before, .init = setup,
     .fini = teardown, .timeout = 20)
{
	struct ckpt *a = take_kept("a"), *b = take_kept("b");

	cr_assert_eq(ckeep_add(k, b, 600 * 1000000ll), 0);
	cr_assert_eq(ckeep_add(k, a, 200 * 1000000ll), 0);
	ckpt_put(a);
	ckpt_put(b);
	usleep(100 * 1000);
	cr_assert(listed("a") && listed("b"), "released before its age");
	usleep(300 * 1000);
	cr_assert(!listed("a"), "a outlived its 0.2 s");
	cr_assert(listed("b"), "b went with a");
	usleep(500 * 1000);
	cr_assert(!listed("b"), "b outlived its 0.6 s");
	cr_assert_eq(count_events("keep-expired"), 2);
}

Test(ckeep, a_new_checkpoint_of_the_name_is_not_touched, .init = setup,
     .fini = teardown, .timeout = 20)
{
	struct ckpt *a = take_kept("a");

	cr_assert_eq(ckeep_add(k, a, 200 * 1000000ll), 0);
	ckpt_put(a);
	cr_assert_eq(ckpt_release(s, "a"), 0);
	ckpt_put(take_kept("a"));
	usleep(500 * 1000);
	cr_assert(listed("a"), "the expiry of the old 'a' released the new one");
	cr_assert_eq(count_events("keep-expired"), 0);
}

Test(ckeep, free_with_pending_entries, .init = setup, .fini = teardown)
{
	struct ckpt *a = take_kept("a");

	cr_assert_eq(ckeep_add(k, a, 3600 * 1000000000ll), 0);
	ckpt_put(a);
	ckeep_free(k);
	k = NULL;
	cr_assert(listed("a"), "freeing the keeper released a checkpoint");
}
