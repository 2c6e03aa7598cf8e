/*
 * svc.c - service manager notices and syslog for a daemon in the background.
 *
 * fuse_daemonize() points stderr at /dev/null, where the store-full and
 * integrity lines the README promises would be lost.  stderr is replaced
 * by a stream whose writes become syslog records, so every fprintf(stderr)
 * in the daemon and in libfuse (fuse_log) reaches the journal or syslogd
 * through /dev/log.  The stream is line buffered and its cookie joins
 * pieces of a line, so a record is always a whole line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>

#include "fs/svc.h"

#define SVC_LINE_MAX 1024

/* A partial line; touched only under the FILE's own lock. */
struct svc_line {
	char buf[SVC_LINE_MAX];
	size_t len;
};

static void svc_emit(struct svc_line *l)
{
	if (l->len == 0)
		return;
	l->buf[l->len] = '\0';
	syslog(strstr(l->buf, "warning:") ? LOG_WARNING : LOG_ERR, "%s", l->buf);
	l->len = 0;
}

static ssize_t svc_write(void *cookie, const char *data, size_t size)
{
	struct svc_line *l = cookie;

	for (size_t k = 0; k < size; k++) {
		if (data[k] == '\n' || l->len == sizeof(l->buf) - 1)
			svc_emit(l);
		if (data[k] != '\n')
			l->buf[l->len++] = data[k];
	}
	return (ssize_t)size;
}

int svc_log_to_syslog(void)
{
	static struct svc_line line;
	cookie_io_functions_t io = { .write = svc_write };
	FILE *f;

	openlog("swafs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	f = fopencookie(&line, "w", io);
	if (!f)
		return -errno;
	setvbuf(f, NULL, _IOLBF, 0);
	stderr = f;
	return 0;
}

void svc_ready(void)
{
	sd_notify(0, "READY=1");
}

void svc_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}
