/* SPDX-License-Identifier: MIT */
/*
 * The "child" capture view: every packet the tree sent or received, as the
 * tree saw it, from an AF_PACKET socket inside the sandbox (opened by the
 * helper), written to pcapng.
 */
#ifndef CF_ENGINE_CAPTURE_H
#define CF_ENGINE_CAPTURE_H

#include "engine/ctx.h"

/*
 * Start the thread that writes what capture socket @fd (owned by the engine
 * from now on) sees into @w (borrowed: capture/files.h closes it).
 */
int cf_capture_start(struct cf_engine *e, int fd, struct cf_pcapng *w);

/*
 * Wait while the capture thread is half a packet ring behind (cheap when it
 * is not). The engine calls this before every event it handles, so that
 * however fast relays produce traffic, the ring does not overflow: the
 * relays wait for the capture instead.
 */
void cf_capture_wait_room(struct cf_engine *e);

/*
 * Write what is still queued, flush, stop the thread and close the socket;
 * the writer stays open for its owner. Return 0 or the first write error
 * (-errno); *dropped gets the packets the kernel dropped, *packets those
 * written.
 */
int cf_capture_finish(struct cf_engine *e, uint64_t *dropped, uint64_t *packets);

#endif
