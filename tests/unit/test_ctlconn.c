/* Unit tests for snapshot/ctlconn.c: the caps of the control server with
 * room kept for root and the owner, request framing in pieces, which
 * verbs change the mount or follow, and what others see of the events. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "snapshot/ctlconn.h"

static struct ctlconn_table *table(unsigned conns, unsigned follow)
{
	struct ctlconn_caps caps;
	struct ctlconn_table *t;

	ctlconn_default_caps(conns, follow, &caps);
	cr_assert_eq(ctlconn_create(&caps, &t), 0);
	return t;
}

Test(ctlconn, per_uid_cap_stops_one_user_alone)
{
	struct ctlconn_table *t = table(64, 16);	/* 8 per uid */

	for (int k = 0; k < 8; k++)
		cr_assert_eq(ctlconn_admit(t, 1000, false, CTLCONN_CONN), 0);
	cr_assert_eq(ctlconn_admit(t, 1000, false, CTLCONN_CONN), -EBUSY);
	cr_assert_eq(ctlconn_admit(t, 1001, false, CTLCONN_CONN), 0);
	cr_assert_eq(ctlconn_count_uid(t, 1000, CTLCONN_CONN), 8);
	ctlconn_release(t, 1000, CTLCONN_CONN);
	cr_assert_eq(ctlconn_admit(t, 1000, false, CTLCONN_CONN), 0);
	for (int k = 0; k < 8; k++)
		ctlconn_release(t, 1000, CTLCONN_CONN);
	ctlconn_release(t, 1001, CTLCONN_CONN);
	cr_assert_eq(ctlconn_count(t, CTLCONN_CONN), 0);
	ctlconn_free(t);
}

Test(ctlconn, others_filling_the_total_leave_root_its_reserve)
{
	struct ctlconn_table *t = table(16, 16);	/* 2 per uid */
	unsigned root = 0;

	for (uid_t u = 2000; u < 2008; u++)
		for (int k = 0; k < 2; k++)
			cr_assert_eq(ctlconn_admit(t, u, false, CTLCONN_CONN), 0);
	cr_assert_eq(ctlconn_admit(t, 2100, false, CTLCONN_CONN), -EBUSY);
	while (ctlconn_admit(t, 0, true, CTLCONN_CONN) == 0)
		root++;
	cr_assert_eq(root, 1024, "root got %u beyond the others", root);
	ctlconn_free(t);
}

Test(ctlconn, root_using_much_does_not_shrink_the_others_share)
{
	struct ctlconn_table *t = table(16, 16);	/* follow: 4 per uid */

	for (int k = 0; k < 10; k++)
		cr_assert_eq(ctlconn_admit(t, 0, true, CTLCONN_FOLLOW), 0);
	for (int k = 0; k < 4; k++)
		cr_assert_eq(ctlconn_admit(t, 3000, false, CTLCONN_FOLLOW), 0);
	cr_assert_eq(ctlconn_admit(t, 3000, false, CTLCONN_FOLLOW), -EBUSY);
	ctlconn_free(t);
}

Test(ctlconn, take_stops_after_the_newline)
{
	cr_assert_eq(ctlconn_take("prepare a\nhold\n", 15), 10);
	cr_assert_eq(ctlconn_take("chec", 4), 4);
	cr_assert_eq(ctlconn_take("\n", 1), 1);
}

Test(ctlconn, classify)
{
	struct ctlconn_kind k;

	ctlconn_classify(3, (char *[]){ "events", "0", "1" }, &k);
	cr_assert(k.use == CTLCONN_FOLLOW && !k.change && !k.private);
	ctlconn_classify(3, (char *[]){ "events", "0", "0" }, &k);
	cr_assert(k.use == CTLCONN_WORK);
	ctlconn_classify(2, (char *[]){ "release", "a" }, &k);
	cr_assert(k.change);
	ctlconn_classify(1, (char *[]){ "history" }, &k);
	cr_assert(k.private && !k.change);
	ctlconn_classify(1, (char *[]){ "list" }, &k);
	cr_assert(!k.private && !k.change);
}

Test(ctlconn, redacted_events_keep_time_and_kind)
{
	char buf[] = "{\"time\":\"2026-01-01T00:00:00.000000Z\",\"event\":"
		     "\"reached\",\"name\":\"secret\",\"bytes\":5}\n"
		     "{\"time\":\"2026-01-01T00:00:01.000000Z\",\"event\":"
		     "\"file-released\",\"path\":\"a/b\"}\n"
		     "garbage\n{\"time\":\"x\",\"event\":\"cut";
	size_t n = ctlconn_redact_events(buf, strlen(buf));

	buf[n] = '\0';
	cr_assert_str_eq(buf, "{\"time\":\"2026-01-01T00:00:00.000000Z\","
			 "\"event\":\"reached\"}\n{\"time\":\"2026-01-01T00:"
			 "00:01.000000Z\",\"event\":\"file-released\"}\n");
}
