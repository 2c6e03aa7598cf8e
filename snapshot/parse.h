/*
 * parse.h - strict parsing of numbers, sizes, durations and names that come
 * from outside (mount options, the control socket, the command line).
 *
 * Every parser accepts the whole string or nothing: no leading space, no
 * sign, no trailing garbage, no overflow.  Each returns 0 or -EINVAL
 * (malformed) / -ERANGE (outside the allowed range).
 */
#ifndef SWAFS_PARSE_H
#define SWAFS_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* Decimal integer in [min, max]. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Size: decimal integer with an optional K, M, G or T suffix (powers of
 * 1024, case-insensitive, optional trailing 'B' or 'iB'), in [min, max]. */
int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Seconds: decimal with an optional fraction ("1", "0.25"), in [0, max]. */
int parse_secs(const char *s, double max, double *out);

/* A duration: seconds as parse_secs() with an optional unit s, m, h or d
 * ("90", "30s", "10m", "1.5h", "7d"), in [0, max] seconds. */
int parse_age(const char *s, double max, double *out);

/* Checkpoint and sync-group names: [A-Za-z0-9._-]{1,64}, not "." or "..". */
bool parse_name_ok(const char *s);

#endif
