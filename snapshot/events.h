/*
 * events.h - JSON Lines events of a mount: one object per line with the
 * time, the event name and its fields, appended to events=FILE if given
 * and kept in a bounded in-memory ring for `swactl events`.
 */
#ifndef SWAFS_EVENTS_H
#define SWAFS_EVENTS_H

#include <stddef.h>
#include <stdint.h>

struct events;

/*
 * path may be NULL (ring only).  It is opened without following a symlink
 * and without blocking; anything but a regular file owned by the daemon's
 * effective uid is refused.  Returns 0 or -errno (-EPERM: refused, -ELOOP:
 * a symlink).
 */
int events_open(const char *path, struct events **out);
void events_close(struct events *ev);

/*
 * Emit one event.  fields is a printf format producing the JSON members
 * after "event" (e.g. "\"name\":\"%s\",\"pause_us\":%lu"), or NULL; string
 * values must go through events_quote().  Never fails the caller.
 */
__attribute__((format(printf, 3, 4)))
void events_emit(struct events *ev, const char *event, const char *fields, ...);

/* Quote s as a JSON string body into buf (size >= 8); truncates safely. */
const char *events_quote(const char *s, char *buf, size_t size);

/*
 * Copy ring lines with sequence number > after into buf (newline-separated,
 * at most size bytes, whole lines only).  Returns bytes written; *last is
 * the sequence number of the last line copied (or after if none).
 */
size_t events_read(struct events *ev, uint64_t after, char *buf, size_t size,
		   uint64_t *last);

/* The sequence number of the last line emitted (0: none yet). */
uint64_t events_seq(struct events *ev);

#endif
