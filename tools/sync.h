/*
 * sync.h - sync groups: separate jobs, each running `swactl checkpoint
 * MNT... --sync ID`, reach one common instant (DESIGN.md 6).
 *
 * `swactl sync start` forks a coordinator that listens on ID.sock in its
 * user's directory (tools/syncdir.h: only that user and root can put a
 * socket there) and lives exactly as long as its group: it exits, removing
 * its socket, once it has said commit or abort, or answered end.  Users
 * other than root and the starter may only ask info, with few connections
 * (SYNC_FOREIGN_*).  Every receive of a client is bounded: replies by
 * SYNC_REPLY_MS, a job's wait for go and commit by the group's wait (W,
 * ms left, sent with joined).  One line per message:
 *
 *   job -> coordinator       coordinator -> job
 *   join NAME                joined K N W | err EXIT MESSAGE (and closes)
 *   noted | failed           (its mounts took the sync-joined note)
 *                            go          all N joined and noted: prepare
 *   ready | failed           commit      all N held: commit now
 *                            abort timeout|ended|failed K N
 *   end                      ok waiting=K  (each joined job got abort)
 *   info                     ok id=ID count=N joined=K age=S
 *                               wait_left=S|nomax pid=P uid=U
 *
 * A job that goes away (or says failed) before go frees its slot; after
 * go it makes the group abort.  A job whose commit fails after commit
 * cannot undo the other jobs' commits: they keep the checkpoint.  The wait runs from start until all N are held.
 */
#ifndef SWAFS_SYNC_H
#define SWAFS_SYNC_H

#include <stdint.h>

#include "snapshot/ctlmsg.h"
#include "tools/take.h"

#define SYNC_COUNT_MAX CTLMSG_SYNC_MAX
/* swactl exit codes of the sync errors (3 is the wait time exceeded) */
#define SYNC_EXIT_STARTED 5
#define SYNC_EXIT_NOT_STARTED 6
#define SYNC_EXIT_IN_USE 7

/*
 * Start group id (a valid name) for count jobs, waiting wait_ms (< 0: no
 * limit) for all of them; returns once the coordinator listens.  Prints
 * one line; returns swactl's exit code: 0, 1 or SYNC_EXIT_STARTED.
 */
int sync_start(const char *id, unsigned count, int64_t wait_ms);

/* End group id; returns 0, 1 or SYNC_EXIT_NOT_STARTED (reported). */
int sync_end(const char *id);

/*
 * Call fn(record, arg) for each active group with its info record
 * ("id=ID count=N ...", see above; fn may modify it).
 */
void sync_each(void (*fn)(char *record, void *arg), void *arg);

/*
 * Take r on mnts[0..n) as one job of group id.  before(arg), if not NULL,
 * runs once all jobs have joined, just before this job's drain; non-zero
 * fails the job (it says why).  Returns swactl's exit code: 0, 1, 3 and
 * the SYNC_EXIT_ codes.
 */
int sync_join(const char *id, const struct take_req *r, char *const mnts[],
	      int n, int (*before)(void *arg), void *arg);

#endif
