/* SPDX-License-Identifier: MIT */
/*
 * The "wire-egress" capture view: a real capture on the host, limited to the
 * tree's flows. One AF_PACKET socket (cooked, every interface of the host's
 * network namespace) sees every packet; only those whose 4-tuple is one of
 * the engine's own host sockets for the tree are written (docs/capture.md).
 */
#ifndef CF_ENGINE_WIRE_H
#define CF_ENGINE_WIRE_H

#include <stdint.h>

#include "engine/ctx.h"
#include "engine/egress.h"

/*
 * Start reading packet socket @fd (cf_capture_wire_socket(), owned by the
 * engine now) into @w (borrowed: capture/files.h closes it). Return 0 or -errno.
 */
int cf_wire_start(struct cf_engine *e, struct cf_pcapng *w, int fd);

/* Add @s's 4-tuple to the set of the tree's flows. */
void cf_wire_add(struct cf_wire *wire, const struct cf_egress_sock *s);

/* @s is being closed: its 4-tuple stays in the set a few seconds more (FIN, TIME_WAIT). */
void cf_wire_remove(struct cf_wire *wire, const struct cf_egress_sock *s);

/* The packet socket is readable. */
void cf_wire_on_readable(struct cf_engine *e);

/* Periodic flush; forget closed sockets whose grace time passed. */
void cf_wire_on_tick(struct cf_engine *e);

/*
 * Read what is still queued and close the socket; the writer stays open for
 * its owner. Return 0 or the first write error (-errno); *packets: written;
 * *dropped: packets the kernel dropped on the socket (any host traffic).
 */
int cf_wire_finish(struct cf_engine *e, uint64_t *packets, uint64_t *dropped);

#endif
