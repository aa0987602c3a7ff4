/* SPDX-License-Identifier: MIT */
/*
 * The rootful backend's egress view: the tree's packets as they leave the
 * host after its masquerade, and their replies as they arrive before it is
 * undone (as on the wire, with the host's addresses), which the run's nft
 * table copies to an NFLOG group of its own (docs/rootful.md, "Records").
 */
#ifndef CF_CAPTURE_HOSTVIEW_H
#define CF_CAPTURE_HOSTVIEW_H

#include "capture/capview.h"

struct cf_hostview;

/* The NFLOG prefixes of the run's table: which way a packet went. */
#define CF_HOSTVIEW_PREFIX_OUT "cf-out"
#define CF_HOSTVIEW_PREFIX_IN "cf-in"

/*
 * cf_hostview_start() - write what the NFLOG socket @fd (bound to the run's
 * group; the view's from this call on, whatever it returns) delivers into
 * @w (borrowed). Return 0 or -errno.
 */
int cf_hostview_start(struct cf_pcapng *w, int fd, struct cf_hostview **out);

/* cf_hostview_fd() - the descriptor the engine's loop watches. */
int cf_hostview_fd(const struct cf_hostview *h);

/* cf_hostview_on_readable() - write what is queued. */
void cf_hostview_on_readable(struct cf_hostview *h);

/* cf_hostview_on_tick() - periodic: write what is queued and flush, so an interrupted run leaves a
 * valid file. */
void cf_hostview_on_tick(struct cf_hostview *h);

/* cf_hostview_stop() - write what is left, close the socket, free @h (NULL is fine); @st: counts.
 */
void cf_hostview_stop(struct cf_hostview *h, struct cf_capview_stats *st);

#endif
