/*
 * saveview.h - a checkpoint's view on a private directory, for the
 * length of one save, verify or command, cleaned up whatever happens.
 *
 * The view is mounted on DIR/view where DIR is made by mkdtemp (mode
 * 0700, owned by the caller) under $XDG_RUNTIME_DIR when that is a 0700
 * directory of ours, else under $TMPDIR or /tmp: no other user can reach
 * it or put something in its place.  SIGINT, SIGTERM and SIGHUP are
 * turned into a flag (and forwarded to a running command) so that the
 * caller unmounts and releases before it exits.
 */
#ifndef SWAFS_SAVEVIEW_H
#define SWAFS_SAVEVIEW_H

#include <stdbool.h>
#include <sys/types.h>

#include "tools/take.h"

struct sv_view;

/*
 * Block SIGINT, SIGTERM and SIGHUP in this thread (and the threads it
 * starts later) and start the thread that receives them.  Call once,
 * before any other thread starts.  Returns 0 or -errno.
 */
int sv_signals_catch(void);

/* The signal that asked us to stop, or 0. */
int sv_stop_signal(void);

/* Forward stop signals to pid while it runs (0: to none). */
void sv_forward_to(pid_t pid);

/*
 * Take checkpoint r on mnt (printing its line), then mount its view on a
 * private directory.  Returns swactl's exit code; on 0 *out is the view
 * (end it with sv_end), else nothing is left behind.
 */
int sv_take(const struct take_req *r, const char *mnt, struct sv_view **out);

/*
 * Mount the view of the existing checkpoint name of mnt privately.  Its
 * retain policy ("saved" or "all") is copied to retain (size >= 16).
 * Returns swactl's exit code.
 */
int sv_attach(const char *mnt, const char *name, char *retain, size_t size,
	      struct sv_view **out);

/* The directory the view is mounted on. */
const char *sv_dir(const struct sv_view *v);

/*
 * Unmount the view (lazily if it stays busy or its daemon is gone),
 * release the checkpoint if sv_take took it without --keep and the
 * unmount did not release it already, remove the directories.  Returns 0,
 * or 1 after saying on stderr what was left behind.
 */
int sv_end(struct sv_view *v);

#endif
