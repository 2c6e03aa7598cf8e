/*
 * fdcap.h - shares of the daemon's descriptors for open files.
 *
 * Every file or directory open in the live tree, and a file open in a
 * view, costs the daemon up to one descriptor, and all of them come from
 * one limit (RLIMIT_NOFILE).  Users
 * other than root and the mount's owner are charged for their opens: each
 * may hold at most per_user, and all of them together at most pool, so one
 * user exhausting its share gets EMFILE alone, and what lies above the pool
 * stays for root, the owner, the descriptor cache, captures and the control
 * socket.  Root and the owner are never charged.
 */
#ifndef SWAFS_FDCAP_H
#define SWAFS_FDCAP_H

#include <stdbool.h>
#include <sys/types.h>

struct fdcap;

/* per_user <= pool.  Returns 0 or -errno. */
int fdcap_create(unsigned per_user, unsigned pool, uid_t owner,
		 struct fdcap **out);
void fdcap_free(struct fdcap *c);

/*
 * Charge one open to uid: 0, or -EMFILE when uid's share or the pool is
 * used up.  Every 0 is paired with one fdcap_give() for the same uid.
 */
int fdcap_take(struct fdcap *c, uid_t uid);
void fdcap_give(struct fdcap *c, uid_t uid);

#endif
