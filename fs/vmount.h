/*
 * vmount.h - where a view is mounted: the directory a request names,
 * resolved without following symlinks and checked like fusermount checks
 * a user's mountpoint, and the mount made on exactly that directory.
 *
 * Why: the request names DIR as a path, and a user who owns a directory on
 * that path can swap a component for a symlink at any moment.  Resolving
 * the path once (openat2 RESOLVE_NO_SYMLINKS, one component at a time so
 * that each ancestor's owner is seen) and mounting on the resulting
 * descriptor (fsmount and move_mount) leaves no second lookup to race.
 */
#ifndef SWAFS_VMOUNT_H
#define SWAFS_VMOUNT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Open dir for a view requested by uid: an absolute path in one spelling
 * (no "//", ".", ".." or trailing "/": -EINVAL),
 * every component a real directory (no symlink: -ELOOP), every ancestor
 * owned by root or uid and writable by no one else unless sticky, and dir
 * itself owned by uid unless uid is root (-EPERM otherwise).  Returns an
 * O_PATH descriptor of exactly that directory, or -errno.
 */
int vmount_dir_open(const char *dir, uid_t uid);

/*
 * Mount a new FUSE filesystem (read-only, nosuid, nodev; fsname, subtype
 * swafs-view) on the directory dfd.  Needs CAP_SYS_ADMIN.  Returns the
 * open /dev/fuse descriptor to serve it with, or -errno; *mnt_id is the
 * new mount's id, for vmount_detach().
 */
int vmount_attach(int dfd, const char *fsname, bool allow_other,
		  uint64_t *mnt_id);

/*
 * Lazily unmount the mount mnt_id, found at dir: only if dir, resolved
 * without symlinks, still leads to exactly that mount (an ancestor renamed
 * or swapped since cannot aim the unmount at another mount).
 */
void vmount_detach(const char *dir, uint64_t mnt_id);

#endif
