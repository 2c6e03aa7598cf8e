/*
 * view.h - read-only views of checkpoints, served by the live daemon.
 *
 * Each view is its own FUSE session mounted read-only on a directory and
 * run by its own threads.  It shows the live tree as it was at the
 * checkpoint's T: objects unchanged since are read live, changed ones from
 * their pre-images (snapshot/cobj.h).  Unmounting the view ends it; the
 * last view of a checkpoint releases it unless it was taken with --keep.
 */
#ifndef SWAFS_VIEW_H
#define SWAFS_VIEW_H

#include "fs/ctx.h"

int views_create(struct views **out);
/*
 * Unmount and free every view (the live tree is going away).  Returns
 * false if some view is still busy after a grace period: its thread still
 * uses the live tree's state, which the caller must then not free.
 */
bool views_free(struct views *vs);

/*
 * Mount a view of checkpoint name on dir, for uid (who asked): dir is
 * resolved and checked by vmount_dir_open() and the view mounted on
 * exactly the directory it checked.  Returns 0 once the mount is up, or
 * -errno: -ENOENT (no such checkpoint or directory), -ENOTDIR, -ELOOP (a
 * symlink in dir), -EPERM (an owner rule of fs/vmount.h), -EINVAL (not
 * absolute, or ".."), -EBUSY (dir already holds a view), or what mounting
 * returned.
 */
int view_mount(struct fs_ctx *live, const char *name, const char *dir,
	       uid_t uid);

/*
 * ckpt_set_opts.on_reached, arg the live tree's fs_ctx: start the
 * low-priority walk that counts the T size of checkpoint ck (cprog.h) as
 * its views will show it.  views_free() stops and waits for the walks.
 */
void views_on_reached(void *arg, struct ckpt *ck);

#endif
