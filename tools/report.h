/*
 * report.h - swactl's read commands for progress and the past:
 * `status MNT [NAME] [--json|--watch]` and `history MNT [--json]`.
 * Each takes the command's argv (argv[0] is the command) and returns
 * swactl's exit code.
 */
#ifndef SWAFS_REPORT_H
#define SWAFS_REPORT_H

int report_status(int argc, char **argv);
int report_history(int argc, char **argv);

#endif
