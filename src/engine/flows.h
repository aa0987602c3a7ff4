/* SPDX-License-Identifier: MIT */
/*
 * The one place where the engine decides flows and where they start and
 * end. Every protocol handler calls these hooks, so policy, the flow log and
 * the summary see the same events in the same order.
 */
#ifndef CF_ENGINE_FLOWS_H
#define CF_ENGINE_FLOWS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/addr.h"

struct cf_engine;

struct cf_flow {
	uint64_t id;
	struct cf_ip src, dst;	    /* as the tree addressed it */
	uint16_t sport, dport;
	struct cf_ip target;	    /* where the engine connects (dst, or the resolver for DNS) */
	uint16_t target_port;
	bool via_proxy;
	bool is_dns;	    /* DNS over TCP redirected to the resolver */
	bool connected;
	uint64_t start_ms;
	uint64_t bytes_sent, bytes_received;
};

/*
 * Decide a new TCP flow: pick its target and apply policy. Return 0 to
 * connect, or -errno to answer the tree with that error instead
 * (-ECONNREFUSED: RST; -EACCES: ICMP administratively prohibited).
 */
int cf_flow_tcp_decide(struct cf_engine *e, struct cf_flow *f);

/*
 * Decide a new UDP or ICMP echo flow (@proto IPPROTO_UDP/ICMP/ICMPV6): pick
 * its target and apply policy. Return 0, or -errno to answer the tree with an
 * ICMP error instead (-EACCES: administratively prohibited).
 */
int cf_flow_dgram_decide(struct cf_engine *e, struct cf_flow *f, uint8_t proto);

/* Whether DNS the tree sends to @server goes to childflow's resolver choice (--dns or the host's). */
bool cf_flow_dns_redirected(const struct cf_engine *e, const struct cf_ip *server);

/*
 * Decide a DNS query for @qname (NULL when it has none) the tree sent to
 * @server:@port. Return 0 to forward it, -EACCES to answer it empty.
 */
int cf_flow_dns_decide(struct cf_engine *e, const char *qname, const struct cf_ip *server,
		       uint16_t port);

/* Learn names -> addresses (and CNAMEs) from a forwarded DNS answer, for domain policy. */
void cf_flow_dns_learn(struct cf_engine *e, const uint8_t *msg, size_t len);

/* The upstream connect of @f finished: @err 0 for success or an errno. */
void cf_flow_connect_result(struct cf_engine *e, struct cf_flow *f, int err);

/* A connected flow ended (bytes filled in by the caller). */
void cf_flow_end(struct cf_engine *e, struct cf_flow *f);

#endif
