/*
 * rcur.h - a reader cursor: one open handle of a checkpoint view's file.
 *
 * It serves T bytes (cobj_read) and owns the saved rule (DESIGN.md 4):
 *   - a block counts as saved once the handle has covered it whole and
 *     the reader has moved RCUR_WINDOW past it (the highest offset read
 *     through the handle), or when the handle closes;
 *   - "covered" is byte-exact and order-free: several partial reads of a
 *     block, in any order and of any size, add up; a block's bytes past
 *     the T size need no reading;
 *   - a hole at T is covered once the reader seeks over it with SEEK_DATA
 *     (rcur_seek_data) or passes it (reads on both sides of it);
 *   - progress (cobj_note_served) counts the blocks that held data at T;
 *   - while several views of the checkpoint are mounted nothing counts as
 *     saved: another view may still need it;
 *   - the file is released when every block of its T image is saved and no
 *     handle has it open (cobj_view_close).
 * Its memory is proportional to the ranges read, never to the file size.
 */
#ifndef SWAFS_RCUR_H
#define SWAFS_RCUR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ckpt;
struct cobj;
struct rcur;

/* Blocks this far behind the reader's highest offset are saved. */
#define RCUR_WINDOW (8u << 20)

/*
 * Open a cursor on c, the entry of a regular file in ck's table (ck must
 * outlive the cursor).  live_fd is a readable descriptor of the live file,
 * or -1 for a dead one; the caller keeps it open until rcur_close().
 * Takes a cobj_view_open() reference.  Returns 0 or -ENOMEM.
 */
int rcur_open(struct ckpt *ck, struct cobj *c, int live_fd,
	      struct rcur **out);
/* Serve T bytes [off, off+len) into buf: bytes read or -errno (as
 * cobj_read); what was served counts towards saving. */
ssize_t rcur_read(struct rcur *r, void *buf, size_t len, uint64_t off);
/* The reader's lseek(off, SEEK_DATA) answered data (UINT64_MAX: ENXIO):
 * [off, data) was a hole at T and counts as covered. */
void rcur_seek_data(struct rcur *r, uint64_t off, uint64_t data);
/* Bytes of the T image this handle covered (served or holes passed) and,
 * in *ranges, the disjoint ranges it keeps for them (its memory). */
uint64_t rcur_covered(struct rcur *r, size_t *ranges);
/* Close: everything covered is saved.  Returns true when this close
 * released the file. */
bool rcur_close(struct rcur *r);

#endif
