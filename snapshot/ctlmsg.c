/*
 * ctlmsg.c - control protocol encoding.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "snapshot/ctlmsg.h"

static bool plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("._/:=,-", c);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode one %-encoded argument in place; -EINVAL if malformed. */
static int decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		int h, l;

		if (*s != '%') {
			if (!plain((unsigned char)*s))
				return -EINVAL;
			*o++ = *s;
			continue;
		}
		h = hexval(s[1]);
		l = h < 0 ? -1 : hexval(s[2]);
		if (l < 0 || (h == 0 && l == 0))
			return -EINVAL;	/* no NUL inside an argument */
		*o++ = (char)(h * 16 + l);
		s += 2;
	}
	*o = '\0';
	return 0;
}

ssize_t ctlmsg_frame(char *buf, size_t n)
{
	char *nl = memchr(buf, '\n', n);

	if (!nl)
		return -EAGAIN;
	if (memchr(buf, '\0', (size_t)(nl - buf)))
		return -EINVAL;
	*nl = '\0';
	return nl - buf;
}

int ctlmsg_parse(char *line, char *argv[CTLMSG_ARGS])
{
	int n = 0;
	char *p = line;

	if (!*line || strlen(line) >= CTLMSG_MAX)
		return -EINVAL;
	for (;;) {
		char *sp = strchr(p, ' ');

		if (n == CTLMSG_ARGS)
			return -EINVAL;
		if (sp)
			*sp = '\0';
		if (!*p || decode(p) < 0)
			return -EINVAL;
		argv[n++] = p;
		if (!sp)
			return n;
		p = sp + 1;
	}
}

/* Percent-encode s at buf + o: every byte but the plain ones not in also. */
static int encode(const char *s, const char *also, char *buf, size_t o,
		  size_t size)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (o + 4 > size)
			return -ENAMETOOLONG;
		if (plain(c) && !strchr(also, c))
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "%%%02X", c);
	}
	if (o + 1 > size)
		return -ENAMETOOLONG;
	buf[o] = '\0';
	return 0;
}

int ctlmsg_add(char *buf, size_t size, const char *arg)
{
	size_t o = strlen(buf);

	if (o && o + 1 < size)
		buf[o++] = ' ';
	return encode(arg, "", buf, o, size);
}

int ctlmsg_quote(const char *s, char *buf, size_t size)
{
	return encode(s, "/:=,", buf, 0, size);
}

int ctlmsg_unquote(char *s)
{
	return decode(s);
}

size_t ctlmsg_socket_dirs(uid_t owner, const char *xdg,
			  char dirs[][CTLMSG_PATH_MAX], size_t max)
{
	size_t n = 0;

	if (n < max)
		snprintf(dirs[n++], CTLMSG_PATH_MAX, "/run/swafs");
	if (owner == 0)
		return n;
	/* a relative $XDG_RUNTIME_DIR is invalid (XDG base directory spec) */
	if (xdg && xdg[0] == '/' && n < max &&
	    snprintf(dirs[n], CTLMSG_PATH_MAX, "%s/swafs", xdg) <
	    CTLMSG_PATH_MAX - 24)	/* room for "/MAJOR:MINOR.sock" */
		n++;
	if (n < max)
		snprintf(dirs[n++], CTLMSG_PATH_MAX, "/run/user/%u/swafs",
			 (unsigned)owner);
	if (n < max)
		snprintf(dirs[n++], CTLMSG_PATH_MAX, "/tmp/swafs-%u",
			 (unsigned)owner);
	return n;
}

void ctlmsg_socket_name(dev_t dev, char *buf, size_t size)
{
	snprintf(buf, size, "%u:%u.sock", major(dev), minor(dev));
}
