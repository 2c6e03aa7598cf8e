/*
 * report.h - swactl's read commands: `list MNT [--json]`,
 * `status MNT [NAME] [--json|--watch]` and `history MNT [--json]`.
 * Each takes the command's argv (argv[0] is the command) and returns
 * swactl's exit code.
 */
#ifndef SWAFS_REPORT_H
#define SWAFS_REPORT_H

#include <stdbool.h>

int report_list(int argc, char **argv);
int report_status(int argc, char **argv);
int report_history(int argc, char **argv);

/* Print s as a JSON string, quoted and escaped. */
void report_json_str(const char *s);

/* Print one encoded KEY=VALUE record (line, changed) as a JSON object,
 * after a comma unless first. */
void report_json_line(char *line, bool first);

#endif
