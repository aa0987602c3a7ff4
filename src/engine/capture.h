/* SPDX-License-Identifier: MIT */
/*
 * The "child" capture view: every packet the tree sent or received, as the
 * tree saw it, from an AF_PACKET socket inside the sandbox (opened by the
 * helper), written to pcapng.
 */
#ifndef CF_ENGINE_CAPTURE_H
#define CF_ENGINE_CAPTURE_H

#include "engine/ctx.h"

/* Start reading the capture socket @fd into @w (both owned by the engine from now on). */
int cf_capture_start(struct cf_engine *e, int fd, struct cf_pcapng *w);

/* The capture socket is readable. */
void cf_capture_on_readable(struct cf_engine *e);

/*
 * Read what the packet ring holds (cheap when it holds nothing). The engine
 * calls this before every event it handles, so that however fast relays
 * produce traffic, the capture falls behind by at most one event's worth
 * and the ring does not overflow.
 */
void cf_capture_poll(struct cf_engine *e);

/* Periodic flush, so an interrupted run leaves a valid file. */
void cf_capture_on_tick(struct cf_engine *e);

/*
 * Read what is still queued, flush and close. Return 0 or the first write
 * error (-errno); *dropped gets the packets the kernel dropped.
 */
int cf_capture_finish(struct cf_engine *e, uint64_t *dropped);

#endif
