/*
 * swactl.h - what swactl's command modules share with its main: the
 * usage exit code and the one-line usage error.
 */
#ifndef SWAFS_SWACTL_H
#define SWAFS_SWACTL_H

#define EXIT_USAGE 2

/* Print "swactl: WHAT; see swactl --help" on stderr; returns EXIT_USAGE. */
__attribute__((format(printf, 1, 2)))
int usage_error(const char *fmt, ...);

#endif
