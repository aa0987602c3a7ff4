/* SPDX-License-Identifier: MIT */
/*
 * The ends of switched flows (engine/switch.c), for the flow log and the
 * summary: the kernel tells a NETLINK_SOCK_DIAG socket of the engine's
 * (host) namespace, subscribed to the TCP destroy groups, about every TCP
 * socket of that namespace it frees, with the socket's cookie and its final
 * tcp_info. The host sockets handed to the tree are registered by cookie;
 * their destroy event (or, at the run's end, a query by cookie) gives
 * flow_end its bytes.
 */
#ifndef CF_ENGINE_SOCKEND_H
#define CF_ENGINE_SOCKEND_H

#include "engine/ctx.h"
#include "engine/flows.h"

/*
 * cf_sockend_open() - open and subscribe the destroy-event socket and the
 * query socket in the engine's namespace and watch the first. Call before
 * the engine confines itself (isolation.c allows no netlink socket). Return
 * 0 or -errno.
 */
int cf_sockend_open(struct cf_engine *e);

/*
 * cf_sockend_connecting() - a non-blocking tree connect() got EINPROGRESS on
 * @host for @f: write its connect_result when the connect ends (and follow
 * it with cf_sockend_add() if it connected). Return false when not taken
 * (no records wanted, or no memory): the caller writes the result itself.
 */
bool cf_sockend_connecting(struct cf_engine *e, int host, const struct cf_flow *f);

/* cf_sockend_on_conn() - a connect cf_sockend_connecting() watches ended. */
void cf_sockend_on_conn(struct cf_engine *e, struct cf_watch *w, uint32_t events);

/*
 * cf_sockend_add() - the tree holds @host (the engine's reference, still
 * open) for the connected flow @f: remember it by cookie until it ends. No-op
 * without cf_sockend_open().
 */
void cf_sockend_add(struct cf_engine *e, int host, const struct cf_flow *f);

/*
 * cf_sockend_add_tunnel() - cf_sockend_add() for a socket connected to a
 * proxy at @peer:@pport (not @f's target) after a handshake that sent
 * @skip_out bytes and took @skip_in: flow_end counts the tunnel's bytes only.
 */
void cf_sockend_add_tunnel(struct cf_engine *e, int host, const struct cf_flow *f,
			   const struct cf_ip *peer, uint16_t pport, uint64_t skip_out,
			   uint64_t skip_in);

/* cf_sockend_on_readable() - end the flows whose sockets the kernel freed. */
void cf_sockend_on_readable(struct cf_engine *e);

/* cf_sockend_on_tick() - end the flows an overrun left without an event. */
void cf_sockend_on_tick(struct cf_engine *e);

/*
 * cf_sockend_finish() - the tree is gone: end every flow still registered
 * (its event, else what a query by cookie reports, else what is known) and
 * free everything.
 */
void cf_sockend_finish(struct cf_engine *e);

#endif
