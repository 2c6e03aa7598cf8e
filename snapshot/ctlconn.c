/*
 * ctlconn.c - admission caps and request framing of the control server.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/ctlconn.h"

/*
 * Room kept for root and the owner beyond the others' totals: bounds a
 * runaway script, never a sync group (64 jobs, each holding a prepare).
 */
#define CTLCONN_RESERVE_CONNS 1024
#define CTLCONN_RESERVE_WORK 256
#define CTLCONN_RESERVE_FOLLOW 64
/* Requests of other users served at once, in total and per uid. */
#define CTLCONN_WORK_OTHERS 8
#define CTLCONN_WORK_PER_UID 4

struct uid_use {
	uid_t uid;
	bool priv;
	unsigned n[CTLCONN_USES];
};

/*
 * Invariants (under lock):
 *  1. total[u] is the sum of users[k].n[u] over k < nusers; others[u]
 *     the same over the uids admitted without priv.
 *  2. every entry of users holds at least one use (one whose counts all
 *     reach zero is removed), so the table never outgrows the uses.
 *  3. a use admitted for a uid other than root and the owner never made
 *     others[u] exceed caps.total[u] nor its n[u] exceed caps.per_uid[u];
 *     one of root or the owner never made total[u] exceed
 *     caps.total[u] + caps.reserve[u]: whatever the others hold, root
 *     and the owner keep reserve[u] for themselves.
 */
struct ctlconn_table {
	pthread_mutex_t lock;
	struct ctlconn_caps caps;
	unsigned total[CTLCONN_USES];
	unsigned others[CTLCONN_USES];
	struct uid_use *users;
	size_t nusers, cap;
};

void ctlconn_default_caps(unsigned conns, unsigned follow,
			  struct ctlconn_caps *out)
{
	*out = (struct ctlconn_caps){
		.total = { [CTLCONN_CONN] = conns,
			   [CTLCONN_WORK] = CTLCONN_WORK_OTHERS,
			   [CTLCONN_FOLLOW] = follow },
		.per_uid = { [CTLCONN_CONN] = conns / 8 ? conns / 8 : 1,
			     [CTLCONN_WORK] = CTLCONN_WORK_PER_UID,
			     [CTLCONN_FOLLOW] = follow / 4 ? follow / 4 : 1 },
		.reserve = { [CTLCONN_CONN] = CTLCONN_RESERVE_CONNS,
			     [CTLCONN_WORK] = CTLCONN_RESERVE_WORK,
			     [CTLCONN_FOLLOW] = CTLCONN_RESERVE_FOLLOW },
	};
}

int ctlconn_create(const struct ctlconn_caps *caps, struct ctlconn_table **out)
{
	struct ctlconn_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->caps = *caps;
	*out = t;
	return 0;
}

void ctlconn_free(struct ctlconn_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->users);
	free(t);
}

/* The entry of uid, or NULL; lock held. */
static struct uid_use *find(struct ctlconn_table *t, uid_t uid)
{
	for (size_t k = 0; k < t->nusers; k++)
		if (t->users[k].uid == uid)
			return &t->users[k];
	return NULL;
}

/* The entry of uid, made if missing; NULL when out of memory. */
static struct uid_use *get(struct ctlconn_table *t, uid_t uid, bool priv)
{
	struct uid_use *e = find(t, uid);

	if (e)
		return e;
	if (t->nusers == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct uid_use *u = realloc(t->users, cap * sizeof(*u));

		if (!u)
			return NULL;
		t->users = u;
		t->cap = cap;
	}
	e = &t->users[t->nusers++];
	*e = (struct uid_use){ .uid = uid, .priv = priv };
	return e;
}

/* Invariant 2: drop e once it holds nothing. */
static void prune(struct ctlconn_table *t, struct uid_use *e)
{
	for (int u = 0; u < CTLCONN_USES; u++)
		if (e->n[u])
			return;
	*e = t->users[--t->nusers];
}

int ctlconn_admit(struct ctlconn_table *t, uid_t uid, bool priv,
		  enum ctlconn_use u)
{
	const struct ctlconn_caps *c = &t->caps;
	struct uid_use *e;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	e = get(t, uid, priv);
	if (!e)
		rc = -ENOMEM;
	else if (e->priv ? t->total[u] >= c->total[u] + c->reserve[u]
			 : t->others[u] >= c->total[u] ||
			   e->n[u] >= c->per_uid[u])
		rc = -EBUSY;
	if (rc == 0) {
		e->n[u]++;
		t->total[u]++;
		t->others[u] += !e->priv;
	} else if (e) {
		prune(t, e);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void ctlconn_release(struct ctlconn_table *t, uid_t uid, enum ctlconn_use u)
{
	struct uid_use *e;

	pthread_mutex_lock(&t->lock);
	e = find(t, uid);
	if (e && e->n[u]) {
		e->n[u]--;
		t->total[u]--;
		t->others[u] -= !e->priv;
		prune(t, e);
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned ctlconn_count(struct ctlconn_table *t, enum ctlconn_use u)
{
	unsigned n;

	pthread_mutex_lock(&t->lock);
	n = t->total[u];
	pthread_mutex_unlock(&t->lock);
	return n;
}

unsigned ctlconn_count_uid(struct ctlconn_table *t, uid_t uid,
			   enum ctlconn_use u)
{
	struct uid_use *e;
	unsigned n;

	pthread_mutex_lock(&t->lock);
	e = find(t, uid);
	n = e ? e->n[u] : 0;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t ctlconn_take(const char *peeked, size_t n)
{
	const char *nl = memchr(peeked, '\n', n);

	return nl ? (size_t)(nl - peeked) + 1 : n;
}

void ctlconn_classify(int argc, char *const argv[], struct ctlconn_kind *out)
{
	static const char *const changes[] = { "checkpoint", "prepare",
					       "mount", "release", "note" };

	*out = (struct ctlconn_kind){ .use = CTLCONN_WORK };
	if (argc < 1)
		return;
	for (size_t k = 0; k < sizeof(changes) / sizeof(changes[0]); k++)
		if (!strcmp(argv[0], changes[k]))
			out->change = true;
	out->private = !strcmp(argv[0], "history");
	/* "events AFTER 1" follows: it holds its worker until the client goes */
	if (argc == 3 && !strcmp(argv[0], "events") && !strcmp(argv[2], "1"))
		out->use = CTLCONN_FOLLOW;
}

/* The length of line's {"time":"...","event":"KIND" prefix, or 0. */
static size_t event_prefix(const char *line, size_t n)
{
	static const char key[] = "\",\"event\":\"";
	static const char start[] = "{\"time\":\"";
	const char *k, *end;

	if (n < sizeof(start) - 1 || memcmp(line, start, sizeof(start) - 1))
		return 0;
	k = memmem(line, n, key, sizeof(key) - 1);
	if (!k)
		return 0;
	k += sizeof(key) - 1;
	end = memchr(k, '"', n - (size_t)(k - line));
	return end ? (size_t)(end - line) + 1 : 0;
}

size_t ctlconn_redact_events(char *buf, size_t n)
{
	size_t in = 0, out = 0;

	while (in < n) {
		char *nl = memchr(buf + in, '\n', n - in);
		size_t len = nl ? (size_t)(nl - (buf + in)) : n - in;
		size_t keep = nl ? event_prefix(buf + in, len) : 0;

		if (keep) {
			memmove(buf + out, buf + in, keep);
			out += keep;
			buf[out++] = '}';
			buf[out++] = '\n';
		}
		in += len + 1;
	}
	return out;
}
