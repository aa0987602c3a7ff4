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

#include "net/addr.h"

struct cf_engine;

struct cf_flow {
	uint64_t id;
	uint8_t proto;	       /* enum cf_flow_proto */
	struct cf_ip src, dst; /* as the tree addressed it */
	uint16_t sport, dport;
	struct cf_ip target; /* where the engine connects (dst, or the resolver for DNS) */
	uint16_t target_port;
	bool via_proxy;
	bool is_dns; /* DNS over TCP redirected to the resolver */
	bool connected;
	int owner_pid; /* the process the first event named (0: none yet) */
	uint64_t start_ms;
	uint64_t bytes_sent, bytes_received;
	uint64_t packets_sent, packets_received; /* datagram flows: datagrams relayed */
	bool switched; /* TCP: a host socket handed to the tree (switch.c), not relayed */
	bool kernel;   /* rootful: carried by the host's kernel (ctrack.c), not the engine */
};

/*
 * Decide a new TCP flow: pick its target and apply policy. Return 0 to
 * connect, or -errno to answer the tree with that error instead
 * (-ECONNREFUSED: RST; -EACCES: ICMP administratively prohibited).
 */
int cf_flow_tcp_decide(struct cf_engine *e, struct cf_flow *f);

/*
 * cf_flow_tcp_names_checked() - whether the name in @f's first bytes (TLS
 * SNI, HTTP Host) is checked before relaying: domain rules are in force, and
 * @f is neither DNS for childflow's resolver nor a port of
 * host.childflow.internal.
 */
bool cf_flow_tcp_names_checked(const struct cf_engine *e, const struct cf_flow *f);

/*
 * cf_flow_tcp_name() - policy for the name @f's first bytes carry (@source:
 * "TLS SNI" or "HTTP Host"). Return 0 to relay, or -EACCES when denied (the
 * denial is recorded like any other: flow log, stderr line, --fail-on-leak).
 */
int cf_flow_tcp_name(struct cf_engine *e, struct cf_flow *f, const char *name, const char *source);

/*
 * Decide a new UDP or ICMP echo flow (@proto IPPROTO_UDP/ICMP/ICMPV6): pick
 * its target and apply policy. Return 0, or -errno to answer the tree with an
 * ICMP error instead (-EACCES: administratively prohibited).
 */
int cf_flow_dgram_decide(struct cf_engine *e, struct cf_flow *f, uint8_t proto);

/* Whether DNS the tree sends to @server goes to childflow's resolver choice (--dns or the host's).
 */
bool cf_flow_dns_redirected(const struct cf_engine *e, const struct cf_ip *server);

/*
 * Whether the engine answers every DNS query itself, never forwarding one
 * (--offline: empty answers; --proxy-remote-dns: stand-in addresses), so
 * DNS over TCP needs no upstream connection either.
 */
bool cf_flow_dns_local(const struct cf_engine *e);

/*
 * The engine's own answer to a query cf_flow_dns_query() gave verdict 1,
 * written to @out (@cap bytes): A, AAAA and ANY questions of class IN get
 * host.childflow.internal's addresses, or under --proxy-remote-dns the
 * name's stand-in addresses; other questions NODATA, a full table SERVFAIL.
 * Logged like any answer. Return its length or -errno.
 */
ssize_t cf_flow_dns_remote_answer(struct cf_engine *e, uint64_t id, bool tcp,
				  const struct cf_ip *server, uint16_t port, const uint8_t *msg,
				  size_t len, uint8_t *out, size_t cap);

/*
 * A DNS message the tree sent to @server:@port (over TCP when @tcp): log the
 * query and decide it. *verdict: 0 forward it, 1 the engine answers it
 * (cf_flow_dns_remote_answer(): --proxy-remote-dns, or host.childflow.internal
 * with --allow-host-port), -EACCES answer it empty
 * (synthetic_empty), -EINVAL answer FORMERR or drop (not a query with one
 * question). Return the flow id its answer is logged with (@id, or a new one
 * when @id is 0).
 */
uint64_t cf_flow_dns_query(struct cf_engine *e, uint64_t id, bool tcp, const uint8_t *msg,
			   size_t len, const struct cf_ip *server, uint16_t port, int *verdict);

/* The name the tree last asked for that resolved to @ip, or NULL (for proxies). */
const char *cf_flow_asked_name(const struct cf_engine *e, const struct cf_ip *ip);

/* No resolver answered: the engine answers SERVFAIL (@msg) and says so in the flow log. */
void cf_flow_dns_failed(struct cf_engine *e, uint64_t id, const struct cf_ip *server, uint16_t port,
			const uint8_t *msg, size_t len);

/*
 * An answer from upstream is going back to the tree (@server: the server the
 * tree asked): log it; learn its question's names for policy only when the
 * query was redirected to childflow's resolver (cf_flow_dns_redirected()).
 */
void cf_flow_dns_relayed(struct cf_engine *e, uint64_t id, bool tcp, const struct cf_ip *server,
			 uint16_t port, const uint8_t *msg, size_t len);

/* The engine answered a query itself (policy): log it. */
void cf_flow_dns_synthetic(struct cf_engine *e, uint64_t id, bool tcp, const struct cf_ip *server,
			   uint16_t port, const uint8_t *msg, size_t len);

/*
 * The upstream side of @f is open (@err 0) or failed (@err an errno; @why a
 * text for the log, or NULL). Flow log: connect_result for TCP,
 * datagram_flow_start for UDP and ICMP.
 */
void cf_flow_connect_result(struct cf_engine *e, struct cf_flow *f, int err, const char *why);

/* A connected flow ended (bytes filled in by the caller): flow_end or datagram_flow_end. */
void cf_flow_end(struct cf_engine *e, struct cf_flow *f);

#endif
