/*
 * save.h - `swactl save`: take a checkpoint, mount its view privately,
 * and either run a command on it (save ... -- CMD ARGS) or write pax
 * archives of it (save ... --to DIR...), then unmount and release.
 * Takes the command's argv (argv[0] is "save"); returns swactl's exit
 * code (the command's own status in the first form).
 */
#ifndef SWAFS_SAVE_H
#define SWAFS_SAVE_H

int save_main(int argc, char **argv);

#endif
