/* Unit tests for fs/fdcap.c: per-uid shares, the pool of all charged uids,
 * root and the owner never charged, many uids (the table grows), and
 * concurrent take/give keeping the counts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>

#include "fs/fdcap.h"

#define OWNER 1000

static struct fdcap *mk(unsigned per_user, unsigned pool)
{
	struct fdcap *c = NULL;

	cr_assert_eq(fdcap_create(per_user, pool, OWNER, &c), 0);
	return c;
}

static unsigned take_all(struct fdcap *c, uid_t uid, unsigned most)
{
	unsigned n = 0;

	while (n < most && fdcap_take(c, uid) == 0)
		n++;
	return n;
}

Test(fdcap, one_user_gets_its_share_alone)
{
	struct fdcap *c = mk(10, 25);

	cr_assert_eq(take_all(c, 4242, 100), 10);
	cr_assert_eq(fdcap_take(c, 4242), -EMFILE);
	cr_assert_eq(take_all(c, 4243, 100), 10, "another user keeps its share");
	fdcap_give(c, 4242);
	cr_assert_eq(fdcap_take(c, 4242), 0, "a given back open is free again");
	fdcap_free(c);
}

Test(fdcap, pool_caps_all_users_together)
{
	struct fdcap *c = mk(10, 25);

	cr_assert_eq(take_all(c, 1, 100), 10);
	cr_assert_eq(take_all(c, 2, 100), 10);
	cr_assert_eq(take_all(c, 3, 100), 5);
	cr_assert_eq(fdcap_take(c, 4), -EMFILE);
	fdcap_give(c, 1);
	cr_assert_eq(fdcap_take(c, 4), 0);
	fdcap_free(c);
}

Test(fdcap, root_and_owner_never_charged)
{
	struct fdcap *c = mk(1, 1);

	cr_assert_eq(take_all(c, 7, 100), 1);
	cr_assert_eq(take_all(c, 0, 1000), 1000);
	cr_assert_eq(take_all(c, OWNER, 1000), 1000);
	for (int k = 0; k < 1000; k++) {
		fdcap_give(c, 0);
		fdcap_give(c, OWNER);
	}
	cr_assert_eq(fdcap_take(c, 8), -EMFILE, "the pool is still full");
	fdcap_free(c);
}

Test(fdcap, many_uids_grow_the_table)
{
	struct fdcap *c = mk(2, 100000);

	for (uid_t u = 2000; u < 7000; u++)
		cr_assert_eq(take_all(c, u, 5), 2, "uid %u", u);
	for (uid_t u = 2000; u < 7000; u++)
		fdcap_give(c, u);
	for (uid_t u = 2000; u < 7000; u++)
		cr_assert_eq(take_all(c, u, 5), 1, "uid %u after a give", u);
	fdcap_free(c);
}

Test(fdcap, bad_arguments)
{
	struct fdcap *c = NULL;

	cr_assert_eq(fdcap_create(0, 10, OWNER, &c), -EINVAL);
	cr_assert_eq(fdcap_create(11, 10, OWNER, &c), -EINVAL);
	cr_assert_null(c);
}

static void *churn(void *arg)
{
	struct fdcap *c = arg;

	for (int k = 0; k < 20000; k++) {
		uid_t u = 100 + (uid_t)(k % 7);

		if (fdcap_take(c, u) == 0)
			fdcap_give(c, u);
	}
	return NULL;
}

Test(fdcap, concurrent_take_give_keeps_counts)
{
	struct fdcap *c = mk(3, 12);
	pthread_t th[4];

	for (int k = 0; k < 4; k++)
		pthread_create(&th[k], NULL, churn, c);
	for (int k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	for (uid_t u = 100; u < 104; u++)
		cr_assert_eq(take_all(c, u, 10), 3, "uid %u", u);
	fdcap_free(c);
}
