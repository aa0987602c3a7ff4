/* SPDX-License-Identifier: MIT */
/*
 * The tree's UDP through the SOCKS5 proxy's UDP ASSOCIATE (RFC 1928 section
 * 7): one association per run, opened on the first datagram, kept while the
 * proxy keeps its control connection. dgram.c decides and owns the flows;
 * this file owns the association and carries their datagrams.
 */
#ifndef CF_ENGINE_SOCKSUDP_H
#define CF_ENGINE_SOCKSUDP_H

#include <stdint.h>

#include "engine/ctx.h"

/* Whether the tree's UDP goes through the proxy (a socks5:// one, with its address). */
bool cf_socksudp_enabled(const struct cf_engine *e);

/*
 * cf_socksudp_usable() - whether a new flow to @ip can go through the
 * association: 0, -ECONNREFUSED while a recent attempt failed, -EACCES when
 * @ip is the proxy's own or its relay's address, -ENOMEM; *@why: the reason,
 * for the flow log.
 */
int cf_socksudp_usable(struct cf_engine *e, const struct cf_ip *ip, const char **why);

/*
 * cf_socksudp_send() - carry the tree's UDP datagram @pkt to @ip:@port,
 * opening the association first if needed (the datagram waits for it). Return
 * 0 (sent or queued), -ECONNREFUSED (no association: the tree gets port
 * unreachable), -EACCES (@ip is the proxy's own or its relay's address), or
 * another -errno (dropped).
 */
int cf_socksudp_send(struct cf_engine *e, const struct cf_pkt *pkt, const struct cf_ip *ip,
		     uint16_t port);

/* An event on the association's control connection or relay socket. */
void cf_socksudp_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events);

/* Give up an association that takes too long to open. */
void cf_socksudp_on_tick(struct cf_engine *e);

/* Close the association and drop what waits for it. */
void cf_socksudp_fini(struct cf_engine *e);

#endif
