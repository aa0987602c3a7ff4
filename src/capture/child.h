/* SPDX-License-Identifier: MIT */
/*
 * The "child" capture view: every packet the tree sent or received, as the
 * tree saw it, from an AF_PACKET socket inside the sandbox (opened by the
 * helper), written to pcapng by a thread of its own (capdrain.h). Private
 * to capture/: engines drive it through capview.h.
 */
#ifndef CF_CAPTURE_CHILD_H
#define CF_CAPTURE_CHILD_H

#include "capture/capview.h"

struct cf_child_view;

/* The tree's own addresses: tun0's v4 and v6, and the rootful veth's (family 0: none). */
#define CF_CHILD_VIEW_ADDRS 4

/*
 * cf_child_view_start() - Start the thread that writes what capture socket
 * @fd (the view's from this call on, whatever it returns) sees into @w
 * (borrowed); @tree holds the tree's addresses. Return 0 or -errno.
 */
int cf_child_view_start(struct cf_pcapng *w, int fd, const struct cf_ip tree[CF_CHILD_VIEW_ADDRS],
			struct cf_child_view **out);

/* cf_child_view_wait_room() - Wait while the thread is half a packet ring behind. */
void cf_child_view_wait_room(struct cf_child_view *c);

/*
 * cf_child_view_stop() - Write what is still queued, flush, stop the thread,
 * close the socket and free @c (NULL is fine); the writer stays open for
 * its owner. @st: the first write error, packets written and dropped.
 */
void cf_child_view_stop(struct cf_child_view *c, struct cf_capview_stats *st);

#endif
