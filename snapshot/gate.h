/*
 * gate.h - the drain gate in front of every modifying call.
 *
 * Modifying calls pass the gate (gate_enter/gate_leave); taking a
 * checkpoint closes it, which holds new calls and waits for the ones in
 * flight to finish, so the instant T falls between calls, never inside one.
 * Passing an open gate costs two atomic operations and takes no lock.
 */
#ifndef SWAFS_GATE_H
#define SWAFS_GATE_H

#include <stdint.h>

struct gate;

int gate_create(struct gate **out);
void gate_free(struct gate *g);

/* A modifying call begins: waits while the gate is closed. */
void gate_enter(struct gate *g);
/* The call has finished changing backing state. */
void gate_leave(struct gate *g);

/*
 * Close the gate and wait until no call is in flight, at most timeout_ns
 * (< 0: no limit).  Returns 0 with the gate closed, or -ETIMEDOUT with the
 * gate open again and nothing changed.  Only one closer at a time: callers
 * serialise checkpoints themselves.
 */
int gate_close(struct gate *g, int64_t timeout_ns);

/* Reopen a closed gate and release every held call. */
void gate_open(struct gate *g);

/* Calls in flight now (for status and tests). */
unsigned gate_inflight(struct gate *g);

#endif
