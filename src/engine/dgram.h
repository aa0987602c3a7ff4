/* SPDX-License-Identifier: MIT */
/* The tree's UDP and ICMP echo traffic, relayed through host sockets. */
#ifndef CF_ENGINE_DGRAM_H
#define CF_ENGINE_DGRAM_H

#include "engine/ctx.h"

/* Create the datagram flow table. Return 0 or -ENOMEM. */
int cf_dgram_init(struct cf_engine *e);

/* Close every flow and free the table. */
void cf_dgram_fini(struct cf_engine *e);

/* A UDP datagram or ICMP/ICMPv6 echo request the tree sent (other ICMP is dropped). */
void cf_dgram_on_packet(struct cf_engine *e, const struct cf_pkt *pkt);

/* A flow's host socket is readable or has an error queued. */
void cf_dgram_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events);

/*
 * cf_dgram_proxy_reply() - a datagram the SOCKS5 relay brought from @ip:@port:
 * to the tree through the most recently used proxied flow to that address and
 * port, or dropped when there is none.
 */
void cf_dgram_proxy_reply(struct cf_engine *e, const struct cf_ip *ip, uint16_t port,
			  const uint8_t *buf, size_t len);

/* Expire idle flows. */
void cf_dgram_on_tick(struct cf_engine *e);

/* Free flows closed during the last epoll batch. */
void cf_dgram_reap(struct cf_engine *e);

#endif
