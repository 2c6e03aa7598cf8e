/*
 * swactl.h - what swactl's command modules share with its main: exit
 * codes, the one-line usage error, the checkpoint options.
 */
#ifndef SWAFS_SWACTL_H
#define SWAFS_SWACTL_H

#include "tools/take.h"

#define EXIT_USAGE 2
#define EXIT_SKIPPED 4	/* done, with objects skipped (DESIGN.md 9) */

/* The options every command that takes a checkpoint shares. */
#define TAKE_OPTIONS \
	{ "name", required_argument, NULL, 'n' }, \
	{ "retain", required_argument, NULL, 'r' }, \
	{ "keep", no_argument, NULL, 'k' }, \
	{ "keep-for", required_argument, NULL, 'K' }, \
	{ "wait", required_argument, NULL, 'w' }, \
	{ "boundary-wait", required_argument, NULL, 't' }, \
	{ "others-wait", required_argument, NULL, 'o' }, \
	{ "path", required_argument, NULL, 'p' }

/*
 * Apply getopt's answer c (arg: optarg) of TAKE_OPTIONS to r.  Returns 0,
 * a usage exit (reported), or -1 when c is not one of them.
 */
int take_option(int c, char *arg, struct take_req *r);

/* After the options: r complete and valid?  0 or a usage exit. */
int take_check(const char *verb, struct take_req *r);

/*
 * s for an error line: control characters shown as '?' (one per call and
 * thread: the result lives until the thread's next call).
 */
const char *printable(const char *s);

/* Print "swactl: WHAT; see swactl --help" on stderr; returns EXIT_USAGE. */
__attribute__((format(printf, 1, 2)))
int usage_error(const char *fmt, ...);

#endif
