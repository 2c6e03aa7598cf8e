/*
 * restore.h - `swactl restore ARCHIVE... --to DIR [PATH...] [--dry-run]`:
 * extract an archive set (or the PATHs and what they hold) under DIR
 * with libarchive's disk writer: contents with their holes, modes,
 * owners (numeric, as root), times, xattrs, ACLs, hard links.  Exit 0, 4
 * when objects could not be restored (each named), 1 on failure.
 */
#ifndef SWAFS_RESTORE_H
#define SWAFS_RESTORE_H

int restore_main(int argc, char **argv);

#endif
