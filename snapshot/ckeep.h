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
struct events;

/* One releasing thread; ev may be NULL.  Returns 0 or -errno. */
int ckeep_create(struct events *ev, struct ckeep **out);
/* Stops the thread; checkpoints not yet due stay as they are. */
void ckeep_free(struct ckeep *k);

/*
 * Release c (by identity: a later checkpoint of the same name is not
 * touched) age_ns from now.  Takes its own reference.  Returns 0 or
 * -ENOMEM.
 */
int ckeep_add(struct ckeep *k, struct ckpt *c, int64_t age_ns);

#endif
