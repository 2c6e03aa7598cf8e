/*
 * syncdir.h - where sync group coordinators listen: filesystem sockets
 * ID.sock in a directory only the group's starter (or root) can write.
 *
 *   root's groups:    /run/swafs/sync/       root's, 0755; sockets 0666 so
 *                                            any user may list them
 *   uid U's groups:   /tmp/swafs-sync-U/     U's, 0700 (made by U)
 *
 * Abstract socket names were first come, first served: any user could
 * take a group's name.  A directory is used only after it was opened
 * without following a symlink and fstat showed the right owner and no
 * write (or, for a user's, any) access for others; sockets are then
 * bound and reached through that descriptor (/proc/self/fd/N/ID.sock),
 * never by a path looked up again.  A coordinator's peer uid must be its
 * directory's owner.
 */
#ifndef SWAFS_SYNCDIR_H
#define SWAFS_SYNCDIR_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Open (create if create) owner's directory.  Returns its descriptor or
 * -errno, saying why on stderr unless, looking up only, it does not exist
 * or is closed to the caller (-ENOENT, -EACCES).
 */
int syncdir_open(uid_t owner, bool create);

/*
 * Listen on ID.sock in dfd (owner's), replacing a socket left by a
 * coordinator that died.  Returns the socket, or -errno (-EADDRINUSE: a
 * coordinator of that ID is running).
 */
int syncdir_listen(int dfd, uid_t owner, const char *id);

/*
 * Connect to ID.sock in dfd and check the listener runs as owner.
 * Returns the socket or -errno (-ENOENT, -ECONNREFUSED: none listens;
 * -EPERM: the listener is not owner, said on stderr).
 */
int syncdir_connect(int dfd, uid_t owner, const char *id);

/* The inode of ID.sock in dfd, 0 if none. */
ino_t syncdir_ino(int dfd, const char *id);

/* Remove ID.sock from dfd if it is still the socket ino. */
void syncdir_unlink(int dfd, const char *id, ino_t ino);

/*
 * The directories a lookup by the calling user visits, in order: its own
 * (unless root), root's, and if users and the caller is root every user's
 * under /tmp.  Calls fn(dfd, owner, arg) for each that exists and passes
 * the checks; fn returns true to stop.
 */
void syncdir_each(bool users, bool (*fn)(int dfd, uid_t owner, void *arg),
		  void *arg);

#endif
