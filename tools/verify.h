/*
 * verify.h - `swactl verify ARCHIVE... (--manifest FILE | --against MNT
 * NAME)`: read every entry of an archive set (contents hashed as the
 * save hashed them) and compare it with the manifest the save wrote, or
 * with a manifest made now from the view of a living checkpoint.  Exit 0
 * when they agree, 1 with every difference listed on stdout.
 */
#ifndef SWAFS_VERIFY_H
#define SWAFS_VERIFY_H

int verify_main(int argc, char **argv);

#endif
