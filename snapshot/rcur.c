/*
 * rcur.c - reader cursors: the saved rule of DESIGN.md 4 for one handle
 * of a view (see rcur.h).
 *
 * Readers do not read in capture blocks: the kernel splits and reorders
 * requests (readahead runs in parallel with the reader, tar reads 10 KiB,
 * a backwards reader starts at the end), so a cursor records covered
 * byte ranges, not blocks, and decides per block only when asked whether
 * the block lies whole inside one range.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/ckpt.h"
#include "snapshot/cobj.h"
#include "snapshot/rcur.h"

/* Bytes [start, end) of the T image. */
struct rcur_iv {
	uint64_t start, end;
};

/*
 * Invariants, under lock:
 *   1. iv[0..niv) is sorted; its ranges are non-empty, inside [0, size),
 *      and neither overlap nor touch (adjacent ranges merge, so a
 *      sequential reader keeps one range whatever its read size).
 *   2. A byte is in iv only if it was served through this handle or was
 *      a hole at T that the reader seeked over or passed.  (A range that
 *      cannot be recorded for lack of memory merely stays unsaved.)
 *   3. A block is covered when it lies whole inside one range (the bytes
 *      of its last block past size need none); it was counted
 *      (cobj_note_served) when it became covered, if it held T data:
 *      progress counts the data of sparse files, not their holes.
 *   4. swept is 0, a multiple of bs or size, and at most the window limit
 *      of hi.  Every covered block ending at or below swept has been
 *      marked saved, unless missed is set (several views were mounted
 *      then); every hole at T below swept with a range before it is in iv.
 * Lock notes: lock protects the fields below it.  It is taken before the
 * entry's lock (cobj_mark_saved) and never held across cobj_read(): reads
 * through one handle run in parallel, only their bookkeeping is serialised.
 */
struct rcur {
	struct ckpt *ck;		/* immutable */
	struct cobj_table *t;		/* immutable: ck's */
	struct cobj *c;			/* immutable; a view_open reference */
	int fd;				/* immutable; the caller's */
	uint64_t size, bs;		/* immutable: T size, block size */
	bool dense;			/* immutable: no hole at T */
	pthread_mutex_t lock;
	struct rcur_iv *iv;
	size_t niv, cap;
	uint64_t hi;			/* highest offset the reader reached */
	uint64_t swept;
	bool missed;
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* First range ending after pos (at or after it, if touching). */
static size_t iv_search(const struct rcur *r, uint64_t pos, bool touching)
{
	size_t lo = 0, hi = r->niv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->iv[mid].end < pos || (!touching && r->iv[mid].end == pos))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int iv_grow(struct rcur *r)
{
	size_t cap = r->cap ? r->cap * 2 : 4;
	struct rcur_iv *n = realloc(r->iv, cap * sizeof(*n));

	if (!n)
		return -ENOMEM;
	r->iv = n;
	r->cap = cap;
	return 0;
}

/* Add [a, e) (a < e <= size), merging (invariant 1); *at: its range. */
static int iv_add(struct rcur *r, uint64_t a, uint64_t e, size_t *at)
{
	size_t i = iv_search(r, a, true), j = i;

	while (j < r->niv && r->iv[j].start <= e)
		j++;
	if (i == j) {
		if (r->niv == r->cap && iv_grow(r) < 0)
			return -ENOMEM;
		memmove(&r->iv[i + 1], &r->iv[i], (r->niv - i) * sizeof(*r->iv));
		r->niv++;
	} else {
		a = min_u64(a, r->iv[i].start);
		e = max_u64(e, r->iv[j - 1].end);
		memmove(&r->iv[i + 1], &r->iv[j], (r->niv - j) * sizeof(*r->iv));
		r->niv -= j - i - 1;
	}
	r->iv[i] = (struct rcur_iv){ a, e };
	*at = i;
	return 0;
}

/* Blocks ending at or below pos. */
static uint64_t blocks_below(const struct rcur *r, uint64_t pos)
{
	return pos >= r->size ? (r->size + r->bs - 1) / r->bs : pos / r->bs;
}

/* The blocks lying whole inside [a, e): [*first, *last]; false if none. */
static bool whole_blocks(const struct rcur *r, uint64_t a, uint64_t e,
			 uint64_t *first, uint64_t *last)
{
	uint64_t f = a / r->bs + (a % r->bs != 0), end = blocks_below(r, e);

	if (f >= end)
		return false;
	*first = f;
	*last = end - 1;
	return true;
}

/* Several views share the checkpoint: none may drop what another needs. */
static bool rcur_sole(const struct rcur *r)
{
	return ckpt_view_count(r->ck) <= 1;
}

static void rcur_mark(struct rcur *r, uint64_t first, uint64_t last)
{
	if (rcur_sole(r))
		cobj_mark_saved(r->t, r->c, first, last);
	else
		r->missed = true;
}

/* Count the covered blocks [f, l] that held T data; [ha, he) (empty if
 * not known) was all hole at T: only its edge blocks are looked up. */
static void rcur_count(struct rcur *r, uint64_t f, uint64_t l, uint64_t ha,
		       uint64_t he)
{
	uint64_t in_f = 1, in_l = 0;

	whole_blocks(r, ha, he, &in_f, &in_l);
	for (uint64_t b = f; b <= l; b++) {
		uint64_t s = b * r->bs, e = min_u64(s + r->bs, r->size);

		if (!r->dense && b >= in_f && b <= in_l)
			b = in_l;
		else if (r->dense ||
			 cobj_data_before(r->t, r->c, r->fd, s, e) < e)
			cobj_note_served(r->t, r->c, b);
	}
}

/* Record [a, e) as covered (all hole at T if hole): count the blocks it
 * completes, and save at once those the window has already passed
 * (invariants 3 and 4). */
static void rcur_cover(struct rcur *r, uint64_t a, uint64_t e, bool hole)
{
	uint64_t f, l, below, ha = hole ? a : 0, he = hole ? e : 0;
	size_t i;

	if (iv_add(r, a, e, &i) < 0)
		return;
	a = max_u64(r->iv[i].start, a - a % r->bs);
	e = min_u64(r->iv[i].end, min_u64((e - 1) / r->bs * r->bs + r->bs,
					  r->size));
	if (!whole_blocks(r, a, e, &f, &l))
		return;
	rcur_count(r, f, l, ha, he);
	below = blocks_below(r, r->swept);
	if (f < below)
		rcur_mark(r, f, min_u64(l, below - 1));
}

/*
 * The reader passed [a, e): the holes at T in it that it did not read are
 * covered.  Passed means read on both sides: a gap before every range is
 * still ahead of a reader that goes backwards or jumped to the end first.
 * Only the hole leading each gap is looked up: past unread data the block
 * is not covered anyway, and close looks again.
 */
static void rcur_pass_holes(struct rcur *r, uint64_t a, uint64_t e)
{
	uint64_t pos = a;

	e = min_u64(e, r->size);
	while (pos < e) {
		size_t i = iv_search(r, pos, false);
		uint64_t gap_end, hole_end;

		if (i < r->niv && r->iv[i].start <= pos) {
			pos = r->iv[i].end;
			continue;
		}
		gap_end = i < r->niv ? min_u64(r->iv[i].start, e) : e;
		hole_end = i ? cobj_data_before(r->t, r->c, r->fd, pos, gap_end)
			     : pos;
		if (hole_end > pos)
			rcur_cover(r, pos, hole_end, true);
		pos = gap_end;
	}
}

/* Mark saved every covered block inside [a, e). */
static void rcur_mark_covered(struct rcur *r, uint64_t a, uint64_t e)
{
	uint64_t f, l;

	for (size_t i = iv_search(r, a, false); i < r->niv &&
					       r->iv[i].start < e; i++)
		if (whole_blocks(r, max_u64(r->iv[i].start, a),
				 min_u64(r->iv[i].end, e), &f, &l))
			rcur_mark(r, f, l);
}

/* Advance the window to hi (invariant 4); with several views it waits. */
static void rcur_sweep(struct rcur *r)
{
	uint64_t limit = r->hi > RCUR_WINDOW ? r->hi - RCUR_WINDOW : 0;

	limit -= limit % r->bs;
	if (limit <= r->swept || !rcur_sole(r))
		return;
	rcur_pass_holes(r, r->swept, limit);
	rcur_mark_covered(r, r->swept, limit);
	r->swept = limit;
}

int rcur_open(struct ckpt *ck, struct cobj *c, int live_fd,
	      struct rcur **out)
{
	struct rcur *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->ck = ck;
	r->t = ckpt_objects(ck);
	r->c = c;
	r->fd = live_fd;
	r->size = (uint64_t)cobj_stat(c)->st_size;
	r->bs = cobj_block_size(r->t);
	r->dense = (uint64_t)cobj_stat(c)->st_blocks * 512 >= r->size;
	pthread_mutex_init(&r->lock, NULL);
	cobj_view_open(c);
	*out = r;
	return 0;
}

ssize_t rcur_read(struct rcur *r, void *buf, size_t len, uint64_t off)
{
	ssize_t n = cobj_read(r->t, r->c, r->fd, buf, len, off);
	uint64_t reached;

	if (n < 0)
		return n;
	/* a short read or one at or past EOF reached the end */
	reached = (size_t)n < len || off >= r->size ? r->size
						    : off + (uint64_t)n;
	pthread_mutex_lock(&r->lock);
	if (n > 0)
		rcur_cover(r, off, off + (uint64_t)n, false);
	r->hi = max_u64(r->hi, reached);
	rcur_sweep(r);
	pthread_mutex_unlock(&r->lock);
	return n;
}

void rcur_seek_data(struct rcur *r, uint64_t off, uint64_t data)
{
	data = min_u64(data, r->size);
	if (off >= data)
		return;
	pthread_mutex_lock(&r->lock);
	rcur_cover(r, off, data, true);
	pthread_mutex_unlock(&r->lock);
}

uint64_t rcur_covered(struct rcur *r, size_t *ranges)
{
	uint64_t sum = 0;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->niv; i++)
		sum += r->iv[i].end - r->iv[i].start;
	*ranges = r->niv;
	pthread_mutex_unlock(&r->lock);
	return sum;
}

bool rcur_close(struct rcur *r)
{
	bool released;

	pthread_mutex_lock(&r->lock);
	if (rcur_sole(r)) {
		/* a gap below swept may have got a range before it since */
		rcur_pass_holes(r, 0, r->hi);
		rcur_mark_covered(r, r->missed ? 0 : r->swept, r->size);
	}
	pthread_mutex_unlock(&r->lock);
	released = cobj_view_close(r->t, r->c);
	pthread_mutex_destroy(&r->lock);
	free(r->iv);
	free(r);
	return released;
}
