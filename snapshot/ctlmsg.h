/*
 * ctlmsg.h - the control protocol between swactl and the daemon.
 *
 * One request per connection: a line "VERB ARG...\n" of at most
 * CTLMSG_MAX bytes; arguments are separated by one space and
 * percent-encoded (every byte outside [A-Za-z0-9._/:=,-] as %XX), so any
 * path or name fits.  The reply starts with "ok KEY=VALUE...\n" or
 * "err EXIT MESSAGE\n" (EXIT is swactl's exit code); body lines may follow
 * until the daemon closes the connection.
 */
#ifndef SWAFS_CTLMSG_H
#define SWAFS_CTLMSG_H

#include <stddef.h>
#include <sys/types.h>

#define CTLMSG_MAX 8192
#define CTLMSG_ARGS 48
#define CTLMSG_SYNC_MAX 64	/* jobs in one sync group */

/*
 * Find the end of the request line among the n bytes received so far in
 * buf.  Returns the line's length with its '\n' replaced by a NUL,
 * -EAGAIN when no '\n' came yet, or -EINVAL when a NUL byte comes before
 * the '\n' (it would cut the line short unseen).
 */
ssize_t ctlmsg_frame(char *buf, size_t n);

/*
 * Split and decode a request line (without its newline) in place.  Returns
 * the number of arguments (verb included) stored in argv, or -EINVAL for a
 * malformed line (empty, too many arguments, bad escape, NUL byte).
 */
int ctlmsg_parse(char *line, char *argv[CTLMSG_ARGS]);

/*
 * Append " " (unless at the start) and the encoded arg to buf, which holds
 * a NUL-terminated string of capacity size.  Returns 0 or -ENAMETOOLONG.
 */
int ctlmsg_add(char *buf, size_t size, const char *arg);

/*
 * A value inside a reply field such as "holders=PID:COMM,...": every byte
 * outside [A-Za-z0-9._-] becomes %XX, so ',', ':', '=' and spaces never
 * appear in it.  Returns 0 or -ENAMETOOLONG (buf too small).
 */
int ctlmsg_quote(const char *s, char *buf, size_t size);
/* Decode such a value in place; -EINVAL if malformed. */
int ctlmsg_unquote(char *s);

/*
 * Where the daemon of a mount listens: a socket named after the mount's
 * device number (ctlmsg_socket_name) in one of the directories below, in
 * the order swactl tries them.  A daemon run by root uses /run/swafs
 * (root's, 0755); another uses $XDG_RUNTIME_DIR/swafs, else
 * /run/user/UID/swafs when that parent is private to it, else
 * /tmp/swafs-UID, each made 0700 and checked (fs/ctl.c).  xdg is
 * $XDG_RUNTIME_DIR of a caller that is the mount's owner, else NULL.
 * Returns how many of max directories were stored.
 */
#define CTLMSG_PATH_MAX 108	/* sun_path */
#define CTLMSG_DIRS_MAX 4
size_t ctlmsg_socket_dirs(uid_t owner, const char *xdg,
			  char dirs[][CTLMSG_PATH_MAX], size_t max);
/* The socket's name in that directory: "MAJOR:MINOR.sock". */
void ctlmsg_socket_name(dev_t dev, char *buf, size_t size);

#endif
