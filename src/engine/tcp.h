/* SPDX-License-Identifier: MIT */
/* TCP connections of the tree: SYN vetting, upstream connect, accept, splice relay. */
#ifndef CF_ENGINE_TCP_H
#define CF_ENGINE_TCP_H

#include "engine/ctx.h"

/*
 * How long the engine waits for a connect to the destination or the proxy
 * and the proxy's handshake (the tree's own SYN retries usually give up
 * first: 127 s by default).
 */
#define CF_TCP_CONNECTING_TIMEOUT_MS 135000

/* Create the connection table. Return 0 or -ENOMEM. */
int cf_tcp_init(struct cf_engine *e);

/*
 * Number of relayed connections whose tree-to-destination direction has not
 * delivered its end yet: after the tree exited, the engine keeps running
 * until this is 0 so data the tree wrote before exiting is not lost.
 */
size_t cf_tcp_unflushed(const struct cf_engine *e);

/* Close every connection (gracefully where the tree's end was delivered) and free the table. */
void cf_tcp_fini(struct cf_engine *e);

/* A TCP SYN (without ACK) the tree sent, read from tun0. */
void cf_tcp_on_syn(struct cf_engine *e, const struct cf_pkt *syn);

/* A transparent listener is readable: accept and match vetted connections. */
void cf_tcp_on_listener(struct cf_engine *e, int listen_fd);

/* Events on a connection's upstream socket (connect in progress) or relay sockets. */
void cf_tcp_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events);

/* Free connections closed during the last epoll batch. */
void cf_tcp_reap(struct cf_engine *e);

/* Whether relays are waiting for another turn (cf_tcp_run_ready()): the loop must not block. */
bool cf_tcp_has_ready(const struct cf_engine *e);

/* Give every relay whose turn ran out one more turn. */
void cf_tcp_run_ready(struct cf_engine *e);

/* Expire pending connections whose deadline passed. */
void cf_tcp_on_tick(struct cf_engine *e);

/*
 * cf_tcp_proxy_unreachable() - the proxy itself cannot be reached (@err):
 * say so once; the tree's connects are refused meanwhile.
 */
void cf_tcp_proxy_unreachable(struct cf_engine *e, int err);

/* --rate-limit's timer: give the relays that waited for tokens another turn. */
void cf_tcp_wake_throttled(struct cf_engine *e);

#endif
