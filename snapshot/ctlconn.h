/*
 * ctlconn.h - what the control server admits, and how it frames a request.
 *
 * The server (fs/ctl.c) runs one event loop for every connection and a
 * bounded set of worker threads for the requests.  This module holds the
 * parts of it that need no sockets: the per-uid and total caps on
 * connections, requests in progress and followers of the events, with
 * room kept for root and the mount's owner; the framing of a request
 * line that arrives in pieces; and which verbs change the mount or hold
 * a worker for long.  No FUSE dependency (unit tests, fuzz harness).
 */
#ifndef SWAFS_CTLCONN_H
#define SWAFS_CTLCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum ctlconn_use {
	CTLCONN_CONN,		/* an open connection */
	CTLCONN_WORK,		/* a request being served by a worker */
	CTLCONN_FOLLOW,		/* an events --follow connection */
	CTLCONN_USES
};

/*
 * Users other than root and the owner together hold at most total[u] of
 * a use, each uid at most per_uid[u]; root and the owner are admitted
 * while all uses together stay below total[u] + reserve[u], so others
 * filling their share never lock them out.
 */
struct ctlconn_caps {
	unsigned total[CTLCONN_USES];
	unsigned per_uid[CTLCONN_USES];
	unsigned reserve[CTLCONN_USES];
};

/* The default caps for total connections and followers of other users. */
void ctlconn_default_caps(unsigned conns, unsigned follow,
			  struct ctlconn_caps *out);

struct ctlconn_table;

/* caps is copied.  Returns 0 or -ENOMEM. */
int ctlconn_create(const struct ctlconn_caps *caps, struct ctlconn_table **out);
/* Every admitted use must have been released. */
void ctlconn_free(struct ctlconn_table *t);

/*
 * Count one use u by uid (priv: root or the owner).  Returns 0, -EBUSY
 * when a cap says no, or -ENOMEM.  Thread-safe.
 */
int ctlconn_admit(struct ctlconn_table *t, uid_t uid, bool priv,
		  enum ctlconn_use u);
/* Give back a use admitted for uid. */
void ctlconn_release(struct ctlconn_table *t, uid_t uid, enum ctlconn_use u);
/* Uses u held now in total, and by uid. */
unsigned ctlconn_count(struct ctlconn_table *t, enum ctlconn_use u);
unsigned ctlconn_count_uid(struct ctlconn_table *t, uid_t uid,
			   enum ctlconn_use u);

/*
 * Of n bytes peeked from a connection, how many belong to the request
 * line: up to and including the first '\n', else all n.  The bytes after
 * it stay in the socket for the request to read (prepare's next words).
 */
size_t ctlconn_take(const char *peeked, size_t n);

/* What a parsed request needs before a worker may serve it. */
struct ctlconn_kind {
	bool change;		/* only root and the owner may ask it */
	bool private;		/* only they get an answer (history) */
	enum ctlconn_use use;	/* CTLCONN_WORK or CTLCONN_FOLLOW */
};
void ctlconn_classify(int argc, char *const argv[], struct ctlconn_kind *out);

/*
 * Events lines (snapshot/events.h) as users other than root and the owner
 * see them: each of the n bytes' complete lines cut to its time and
 * event kind, {"time":"...","event":"KIND"}; no names, paths or sizes.
 * In place; returns the new length.  A line not of that form is dropped.
 */
size_t ctlconn_redact_events(char *buf, size_t n);

#endif
