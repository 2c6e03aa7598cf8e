/*
 * evlog.h - swactl events MNT [--follow] [--since WHEN] [--name NAME]
 * [-n N]: the mount's events as JSON Lines, those asked for only.
 */
#ifndef SWAFS_EVLOG_H
#define SWAFS_EVLOG_H

/* argv[0] is "events"; returns swactl's exit code. */
int evlog_run(int argc, char **argv);

#endif
