/*
 * events.c - JSON Lines event log with an in-memory ring.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/events.h"

#define EV_RING 1024
#define EV_LINE 4096

struct events {
	pthread_mutex_t lock;
	int fd;			/* immutable; -1 without a file */
	char *ring[EV_RING];	/* lock; line of seq s at s % EV_RING */
	uint64_t seq;		/* lock; sequence number of the last line */
};

/*
 * The events file may lie in a directory other users write: a FIFO planted
 * there would block the open (O_NONBLOCK: ENXIO instead) or every write,
 * and someone else's file would receive every event.
 */
static int open_ours(const char *path)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
		      O_NOFOLLOW | O_NONBLOCK, 0640);

	if (fd < 0)
		return errno == ENXIO ? -EPERM : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid()) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int events_open(const char *path, struct events **out)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->fd = -1;
	if (path) {
		ev->fd = open_ours(path);
		if (ev->fd < 0) {
			int rc = ev->fd;

			free(ev);
			return rc;
		}
	}
	pthread_mutex_init(&ev->lock, NULL);
	*out = ev;
	return 0;
}

void events_close(struct events *ev)
{
	if (!ev)
		return;
	for (int k = 0; k < EV_RING; k++)
		free(ev->ring[k]);
	if (ev->fd >= 0)
		close(ev->fd);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

const char *events_quote(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(buf + o, size - o, "\\u%04x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = '\0';
	return buf;
}

void events_emit(struct events *ev, const char *event, const char *fields, ...)
{
	char line[EV_LINE];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (!ev)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\","
		     "\"event\":\"%s\"", tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000, event);
	if (fields && n < (int)sizeof(line) - 2) {
		line[n++] = ',';
		va_start(ap, fields);
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fields, ap);
		va_end(ap);
	}
	if (n > (int)sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '}';
	line[n++] = '\n';
	line[n] = '\0';
	pthread_mutex_lock(&ev->lock);
	ev->seq++;
	free(ev->ring[ev->seq % EV_RING]);
	ev->ring[ev->seq % EV_RING] = strdup(line);
	if (ev->fd >= 0) {
		/* a full disk must not stop the daemon: the ring keeps it */
		ssize_t w = write(ev->fd, line, (size_t)n);

		(void)w;
	}
	pthread_mutex_unlock(&ev->lock);
}

size_t events_read(struct events *ev, uint64_t after, char *buf, size_t size,
		   uint64_t *last)
{
	size_t o = 0;
	uint64_t s;

	pthread_mutex_lock(&ev->lock);
	s = after + 1;
	if (ev->seq >= EV_RING && s <= ev->seq - EV_RING)
		s = ev->seq - EV_RING + 1;	/* older lines are gone */
	*last = after;
	for (; s <= ev->seq; s++) {
		const char *l = ev->ring[s % EV_RING];
		size_t n = l ? strlen(l) : 0;

		if (o + n > size)
			break;
		memcpy(buf + o, l, n);
		o += n;
		*last = s;
	}
	pthread_mutex_unlock(&ev->lock);
	return o;
}

uint64_t events_seq(struct events *ev)
{
	uint64_t s;

	pthread_mutex_lock(&ev->lock);
	s = ev->seq;
	pthread_mutex_unlock(&ev->lock);
	return s;
}
