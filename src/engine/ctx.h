/* SPDX-License-Identifier: MIT */
/*
 * The engine context, shared by every file of engine/ that handles events
 * (engine.c: loop and control; tcp.c, upstream.c: TCP vetting, proxying and
 * relays; dgram.c: UDP and ICMP; dnsfwd.c, dnsstream.c: the resolver;
 * flows.c: decisions and the flow log), directly or through their headers;
 * nothing outside engine/ includes it (runner.c sees only engine.h's opaque
 * struct). The capture views are capture/'s, behind capture/capview.h.
 * Everything the engine mutates lives here; there is no other state.
 *
 * epoll data always points at a struct cf_watch embedded in the object that
 * owns the fd, whose kind tells the loop which handler to call.
 */
#ifndef CF_ENGINE_CTX_H
#define CF_ENGINE_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config/config.h"
#include "dns/resolvconf.h"
#include "engine/engine.h"
#include "net/packet.h"
#include "sandbox/plan.h"

enum cf_watch_kind {
	CF_W_TUN,
	CF_W_LISTEN,
	CF_W_SIGNAL,
	CF_W_CTL,
	CF_W_PIDFD,
	CF_W_TIMER,
	CF_W_TCP_UPSTREAM,
	CF_W_TCP_RELAY,
	CF_W_DNS_UPSTREAM,
	CF_W_DGRAM,
	CF_W_CAPVIEW, /* the capture views' descriptor (the wire-egress packet socket) */
	CF_W_HOSTADDRS,
	CF_W_CTRACK,	   /* rootful: the tree's conntrack events (ctrack.c) */
	CF_W_SOCKSUDP,	   /* the SOCKS5 UDP association's sockets (socksudp.c) */
	CF_W_RATELIMIT,	   /* --rate-limit's timer (ratelimit.c) */
	CF_W_PUB_LISTEN,   /* --publish: a host listener (publish.c) */
	CF_W_PUB_HOST,	   /* --publish: a TCP client's socket */
	CF_W_PUB_TREE,	   /* --publish: init's socket in the tree */
	CF_W_SWITCH,	   /* the tree's connect() listener (switch.c) */
	CF_W_SWITCH_CONN,  /* a host connect a blocking tree connect() waits for (switch.c) */
	CF_W_SOCKEND,	   /* destroy events of the switched host sockets (sockend.c) */
	CF_W_SOCKEND_CONN, /* a non-blocking switched connect, for its result (sockend.c) */
};

struct cf_watch {
	uint8_t kind;
};

#define CF_ASKED_SLOTS 1024

#define cf_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct cf_tcp_table;
struct cf_dnsfwd;
struct cf_dgram_table;
struct cf_reasm;
struct cf_policy;
struct cf_obs;
struct cf_tls_ctx;
struct cf_attrib;
struct cf_capview;
struct cf_synth;
struct cf_ctrack;
struct cf_socksudp;
struct cf_ratelimit;
struct cf_publish_set;
struct cf_switch;
struct cf_sockend;

/* Engine-wide counters, the seed of the summary. */
/* Room for the destinations whose first denial printed a line. */
#define CF_DENIED_SLOTS 4096

struct cf_engine_stats {
	uint64_t tcp_attempts, tcp_ok, tcp_failed, tcp_unvetted;
	uint64_t dns_queries, dns_answers, dns_failures;
	uint64_t packets_dropped;
	uint64_t flows_started;
	uint64_t denials;
};

struct cf_engine {
	int epfd;
	int tun_fd, listen4, listen6, sigfd, ctlfd, pidfd, timerfd;
	pid_t helper;
	struct cf_watch w_tun, w_listen4, w_listen6, w_sig, w_ctl, w_pidfd, w_timer;

	const struct cf_config *cfg;
	struct cf_plan plan;
	struct cf_resolvconf host_dns;

	struct cf_tcp_table *tcp;
	struct cf_dnsfwd *dns;
	struct cf_dgram_table *dgram;
	struct cf_reasm *reasm; /* fragments the tree wrote into tun0, until whole */
	/*
	 * Identification of the next IPv6 datagram the engine fragments into
	 * tun0. A counter is enough: these are the only fragments the tree's
	 * kernel receives, and no one off the path can inject any.
	 */
	uint32_t frag6_id;
	struct cf_policy *policy;
	struct cf_hostaddrs *hostaddrs; /* keeps the policy's host_local set current */
	struct cf_watch w_hostaddrs;
	bool hostaddrs_warned;
	struct cf_obs *obs;	  /* flow log and summary aggregation, or NULL */
	struct cf_attrib *attrib; /* process attribution, with obs only */
	struct cf_ctrack *ctrack; /* rootful, with obs: the flows the host's kernel carries */
	void (*learned)(void *arg, const struct cf_ip *ip, int verdict, uint32_t ttl);
	void *learned_arg; /* engine.h: cf_engine_opts.learned */

	/*
	 * The name the tree last asked for, per address an answer gave it: what
	 * a proxy is asked for (the query name is also the right one behind a
	 * CNAME chain). Fixed size; a collision just forgets the older entry.
	 */
	struct cf_asked_name {
		struct cf_ip ip;
		char name[256];
	} * asked;		/* CF_ASKED_SLOTS entries, with --proxy only */
	struct cf_synth *synth; /* --proxy-remote-dns: stand-in addresses for names, or NULL */
	bool synth_full_warned;

	/* --proxy: where the engine connects instead of the destination (resolved on the host). */
	struct sockaddr_storage proxy_addr;
	socklen_t proxy_addr_len;
	struct cf_tls_ctx *tls_ctx; /* https:// proxies */
	bool proxy_warned;
	bool proxy_tls_warned;		/* the proxy's certificate was refused, and said so */
	struct cf_socksudp *socksudp;	/* the tree's UDP through a socks5:// proxy, or NULL */
	struct cf_ratelimit *ratelimit; /* --rate-limit, or NULL */

	struct cf_capview *capview; /* the capture views (capture/capview.h), or NULL */
	struct cf_watch w_capview;
	struct cf_engine_stats stats;

	/* Destinations already denied once: their later denials print no line (flows.c). */
	struct cf_denied {
		uint64_t *slots; /* CF_DENIED_SLOTS hashes, 0 free; allocated at the first denial */
		size_t used;
		bool full, full_said;
		uint8_t key[16];
	} denied;

	uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed once per loop turn */
	unsigned signals_forwarded;
	bool command_done;
	bool flush_abort; /* a signal after the tree exited: stop flushing its connections */
	struct cf_engine_result *res;

	struct cf_publish_set *publish; /* --publish (publish.c), or NULL */
	struct cf_switch *sw;		/* --tcp-path auto: switched sockets (switch.c), or NULL */
	struct cf_sockend *sockend;	/* with sw and obs: their flow_end (sockend.c), or NULL */

	uint8_t rxbuf[65536];
	/* Room for the largest IPv6 packet; cf_engine_tun_write() fragments what tun0 cannot take.
	 */
	uint8_t txbuf[CF_PKT_IP6_MAX_LEN];
};

/* Add @fd to the loop with @events, reporting to @w. Return 0 or -errno. */
int cf_engine_watch(struct cf_engine *e, int fd, uint32_t events, struct cf_watch *w);

/* Change the events of a watched @fd. Return 0 or -errno. */
int cf_engine_rewatch(struct cf_engine *e, int fd, uint32_t events, struct cf_watch *w);

/*
 * Write one packet into the child's tun0; an IPv6 packet larger than tun0's
 * MTU goes as fragments. Return 0 or -errno (dropped, counted).
 */
int cf_engine_tun_write(struct cf_engine *e, const void *pkt, size_t len);

/* The resolver DNS goes to: --dns, else the host's first. NULL if there is none. */
const struct cf_ip *cf_engine_resolver(const struct cf_engine *e, size_t index);

/* Whether @ip is one of the virtual gateway/resolver addresses. */
bool cf_engine_is_gateway(const struct cf_engine *e, const struct cf_ip *ip);

/*
 * cf_engine_host_target() - if @ip is host.childflow.internal, store the host
 * loopback address of its family (127.0.0.1, ::1) in @out: where a flow the
 * policy allowed there (verdict.host_port) connects. Return: whether it is.
 */
bool cf_engine_host_target(const struct cf_engine *e, const struct cf_ip *ip, struct cf_ip *out);

#endif
