/* SPDX-License-Identifier: MIT */
/*
 * The synthesized "egress" capture view: the tree's flows as they leave the
 * host, on the engine's own host sockets (docs/capture.md). The engine
 * reports what happens on each socket through capview.h's cf_capview_sock
 * hooks, which this file implements; these are the view's own start, flush
 * and stop, private to capture/.
 */
#ifndef CF_CAPTURE_EGRESS_H
#define CF_CAPTURE_EGRESS_H

#include "capture/capview.h"

/* cf_egress_start() - Start the view into @w (borrowed). Return 0 or -errno. */
int cf_egress_start(struct cf_pcapng *w, struct cf_egress **out);

/* cf_egress_flush() - Periodic flush, so an interrupted run leaves a valid file. */
void cf_egress_flush(struct cf_egress *eg);

/*
 * cf_egress_stop() - Stop the view and free @eg (NULL is fine); the writer
 * stays open. @st: its first write error and the packets written.
 */
void cf_egress_stop(struct cf_egress *eg, struct cf_capview_stats *st);

/* cf_egress_sock_opened() - @s was just opened: for TCP, the host's SYN. */
void cf_egress_sock_opened(struct cf_capview_sock *s);

#endif
