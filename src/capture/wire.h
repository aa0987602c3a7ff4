/* SPDX-License-Identifier: MIT */
/*
 * The "wire-egress" capture view: a real capture on the host, limited to the
 * tree's flows. One AF_PACKET socket (cooked, every interface of the host's
 * network namespace) sees every packet; only those whose 4-tuple is one of
 * the engine's own host sockets for the tree are written (docs/capture.md).
 * Private to capture/: engines drive it through capview.h.
 */
#ifndef CF_CAPTURE_WIRE_H
#define CF_CAPTURE_WIRE_H

#include "capture/capview.h"

/*
 * cf_wire_start() - Start reading packet socket @fd (cf_capture_wire_socket(),
 * the view's from this call on, whatever it returns) into @w (borrowed).
 * Return 0 or -errno.
 */
int cf_wire_start(struct cf_pcapng *w, int fd, struct cf_wire **out);

/* cf_wire_fd() - The packet socket, for the caller's loop to watch. */
int cf_wire_fd(const struct cf_wire *wire);

/* cf_wire_add() - Add @s's 4-tuple to the set of the tree's flows. */
void cf_wire_add(struct cf_wire *wire, const struct cf_capview_sock *s);

/*
 * cf_wire_remove() - @s is being closed: its 4-tuple stays in the set a few
 * seconds more (FIN, TIME_WAIT).
 */
void cf_wire_remove(struct cf_wire *wire, const struct cf_capview_sock *s);

/* cf_wire_on_readable() - The packet socket is readable. */
void cf_wire_on_readable(struct cf_wire *wire);

/* cf_wire_on_tick() - Periodic flush; forget closed sockets whose grace time passed. */
void cf_wire_on_tick(struct cf_wire *wire);

/*
 * cf_wire_stop() - Read what is still queued, close the socket and free
 * @wire (NULL is fine); the writer stays open for its owner. @st: the first
 * write error, packets written, packets the kernel dropped on the socket
 * (any host traffic).
 */
void cf_wire_stop(struct cf_wire *wire, struct cf_capview_stats *st);

#endif
