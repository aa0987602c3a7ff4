/* SPDX-License-Identifier: MIT */
/*
 * --publish: the host's listeners carried into the tree. A connection (TCP)
 * or a client's first datagram (UDP) on a listener makes the engine ask the
 * sandbox's init (CONNECT on the control socket, sandbox/ctl.h) for a socket
 * to the tree's loopback at the published port; init passes it back
 * (CONNECTED) and the engine relays between the two, TCP with relay.c's
 * splice, UDP datagram by datagram. Flows are logged as inbound.
 */
#ifndef CF_ENGINE_PUBLISH_H
#define CF_ENGINE_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cf_engine;
struct cf_watch;
struct cf_ctl_msg;

/*
 * cf_publish_init() - watch the @n listeners @fds (borrowed), one per entry of
 * the configuration's publish list. Return 0 or -errno.
 */
int cf_publish_init(struct cf_engine *e, const int *fds, size_t n);

/* cf_publish_on_event() - an event of a listener or of an inbound flow's socket. */
void cf_publish_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events);

/* cf_publish_on_connected() - init answered a CONNECT: @fd is its socket or -1 (taken). */
void cf_publish_on_connected(struct cf_engine *e, const struct cf_ctl_msg *m, int fd);

/*
 * cf_publish_unflushed() - TCP flows whose tree side has not reached its end
 * at the client yet: after the tree exited, the engine keeps relaying them
 * (what the tree wrote before it exited is still in its sockets).
 */
size_t cf_publish_unflushed(const struct cf_engine *e);

/* cf_publish_has_ready() - whether relays wait for another turn (the loop must not block). */
bool cf_publish_has_ready(const struct cf_engine *e);

/* cf_publish_run_ready() - give those relays their turn. */
void cf_publish_run_ready(struct cf_engine *e);

/*
 * cf_publish_wake_throttled() - --rate-limit's timer fired: relays that
 * waited for tokens get another turn (cf_publish_run_ready()).
 */
void cf_publish_wake_throttled(struct cf_engine *e);

/* cf_publish_reap() - free the flows that ended during this loop turn. */
void cf_publish_reap(struct cf_engine *e);

/* cf_publish_on_tick() - end UDP flows idle for too long. */
void cf_publish_on_tick(struct cf_engine *e);

/* cf_publish_fini() - end every inbound flow (logged) and free everything. */
void cf_publish_fini(struct cf_engine *e);

#endif
