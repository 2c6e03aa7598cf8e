/*
 * ckeep.h - checkpoints kept for at most an age (swactl checkpoint
 * --keep-for AGE): each is released, with a keep-expired event, once its
 * age passes, whether or not a view is mounted, so a forgotten --keep
 * cannot hold the store for ever.
 */
#ifndef SWAFS_CKEEP_H
#define SWAFS_CKEEP_H

#include <stdint.h>

struct ckeep;
struct ckpt;
struct ckpt_set;
struct events;

/* One releasing thread for the checkpoints of s; ev may be NULL.
 * Returns 0 or -errno. */
int ckeep_create(struct ckpt_set *s, struct events *ev, struct ckeep **out);
/* Stops the thread; checkpoints not yet due stay as they are. */
void ckeep_free(struct ckeep *k);

/*
 * Release c age_ns from now, if it still lives then: it is found again by
 * its name and instant T, so a later checkpoint of the same name is not
 * touched and nothing of c is held meanwhile (a release frees it all).
 * Returns 0 or -ENOMEM.
 */
int ckeep_add(struct ckeep *k, struct ckpt *c, int64_t age_ns);

#endif
