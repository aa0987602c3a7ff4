/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: UDP and ICMP echo.
 *
 * Each flow is the tree's (source, destination, protocol, port-or-echo-id)
 * and owns one connected host socket: UDP, or an unprivileged ICMP
 * ("ping") socket, whose kernel-chosen echo id is mapped back to the tree's.
 * Every datagram is sent with the tree's own TTL / hop limit, so TTL-limited
 * probes (traceroute) expire where they would have. IP_RECVERR /
 * IPV6_RECVERR turns the ICMP errors the host receives into the error queue;
 * the engine rebuilds each one for the tree, from the real sender (a router
 * for time-exceeded, the destination for port-unreachable), quoting the
 * tree's last packet of that flow. So traceroute sees every hop and a
 * connected UDP socket sees ECONNREFUSED.
 *
 * Flows expire after IDLE_MS without traffic either way; at most MAX_FLOWS
 * exist, the least recently used is closed to make room (logged once).
 *
 * The flow log has one datagram_flow_start per flow, once its host socket is
 * open or failed to open (not connect_attempt/_result: schema v1 keeps those
 * for TCP), and one datagram_flow_end when it closes, with the bytes and
 * datagrams it carried.
 */
#include "engine/dgram.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <linux/icmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/capview.h"
#include "engine/flows.h"
#include "engine/ratelimit.h"
#include "engine/socksudp.h"
#include "util/log.h"

#define DGRAM_BUCKETS 4096
#define MAX_FLOWS 4096
#define IDLE_MS 60000
/* Enough of the tree's packet to quote in an ICMP error (RFC 1812: 576 bytes for v4). */
#define QUOTE_MAX 1280

struct dgram_flow {
	struct cf_watch w;
	int fd;
	uint8_t proto;	     /* IPPROTO_UDP, IPPROTO_ICMP or IPPROTO_ICMPV6 */
	struct cf_flow flow; /* sport/dport: UDP ports, or echo id in sport */
	uint8_t ttl;	     /* TTL currently set on the socket */
	bool dead;
	uint64_t last_ms;
	uint8_t quote[QUOTE_MAX]; /* the tree's last packet of this flow, for ICMP errors */
	size_t quote_len;
	struct cf_capview_sock egs; /* the host socket, for the egress capture views */
	struct dgram_flow *hnext;
	struct dgram_flow *prev, *next; /* LRU: most recent at the tail */
};

struct cf_dgram_table {
	struct dgram_flow *bucket[DGRAM_BUCKETS];
	struct dgram_flow lru;
	struct dgram_flow *graveyard;
	size_t n;
	bool warned_full, warned_no_ping;
};

static uint32_t key_hash(uint8_t proto, const struct cf_ip *src, const struct cf_ip *dst,
			 uint16_t sport, uint16_t dport)
{
	uint32_t h = 2166136261u ^ proto;

	for (size_t i = 0; i < 16; i++)
		h = (h ^ src->b[i] ^ (uint32_t)(dst->b[i] << 8)) * 16777619u;
	h = (h ^ sport ^ ((uint32_t)dport << 16)) * 16777619u;
	return h % DGRAM_BUCKETS;
}

static struct dgram_flow **find_slot(struct cf_dgram_table *t, uint8_t proto,
				     const struct cf_ip *src, const struct cf_ip *dst,
				     uint16_t sport, uint16_t dport)
{
	struct dgram_flow **pp = &t->bucket[key_hash(proto, src, dst, sport, dport)];

	for (; *pp; pp = &(*pp)->hnext) {
		struct dgram_flow *f = *pp;

		if (f->proto == proto && f->flow.sport == sport && f->flow.dport == dport &&
		    cf_ip_equal(&f->flow.src, src) && cf_ip_equal(&f->flow.dst, dst))
			return pp;
	}
	return pp;
}

static void lru_del(struct dgram_flow *f)
{
	f->prev->next = f->next;
	f->next->prev = f->prev;
}

static void lru_add_tail(struct cf_dgram_table *t, struct dgram_flow *f)
{
	f->next = &t->lru;
	f->prev = t->lru.prev;
	t->lru.prev->next = f;
	t->lru.prev = f;
}

int cf_dgram_init(struct cf_engine *e)
{
	struct cf_dgram_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->lru.next = t->lru.prev = &t->lru;
	e->dgram = t;
	return 0;
}

static void flow_close(struct cf_engine *e, struct dgram_flow *f)
{
	struct cf_dgram_table *t = e->dgram;
	struct dgram_flow **slot =
	    find_slot(t, f->proto, &f->flow.src, &f->flow.dst, f->flow.sport, f->flow.dport);

	if (*slot == f)
		*slot = f->hnext;
	lru_del(f);
	t->n--;
	cf_flow_end(e, &f->flow);
	cf_capview_sock_close(&f->egs, false);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->dead = true;
	f->hnext = t->graveyard;
	t->graveyard = f;
}

void cf_dgram_reap(struct cf_engine *e)
{
	struct dgram_flow *f;

	while ((f = e->dgram->graveyard)) {
		e->dgram->graveyard = f->hnext;
		free(f);
	}
}

void cf_dgram_fini(struct cf_engine *e)
{
	if (!e->dgram)
		return;
	while (e->dgram->lru.next != &e->dgram->lru)
		flow_close(e, e->dgram->lru.next);
	cf_dgram_reap(e);
	free(e->dgram);
	e->dgram = NULL;
}

static int set_ttl(struct dgram_flow *f, uint8_t ttl)
{
	int v = ttl;
	int r;

	if (f->ttl == ttl)
		return 0;
	if (f->flow.target.family == AF_INET)
		r = setsockopt(f->fd, IPPROTO_IP, IP_TTL, &v, sizeof(v));
	else
		r = setsockopt(f->fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof(v));
	if (r < 0)
		return -errno;
	f->ttl = ttl;
	return 0;
}

static int open_socket(struct cf_engine *e, struct dgram_flow *f)
{
	int family = f->flow.target.family, one = 1, type_proto;
	struct sockaddr_storage ss;
	socklen_t sl;

	if (f->proto == IPPROTO_UDP)
		type_proto = IPPROTO_UDP;
	else
		type_proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	f->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, type_proto);
	if (f->fd < 0)
		return -errno;
	if (family == AF_INET)
		setsockopt(f->fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
	else
		setsockopt(f->fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
	sl = cf_ip_to_sockaddr(&f->flow.target, f->proto == IPPROTO_UDP ? f->flow.target_port : 0,
			       &ss);
	if (connect(f->fd, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	cf_capview_sock_open(e->capview, &f->egs, f->fd, (uint8_t)type_proto,
			     (struct sockaddr *)&ss);
	return cf_engine_watch(e, f->fd, EPOLLIN, &f->w);
}

static void no_ping_hint(struct cf_engine *e)
{
	if (e->dgram->warned_no_ping)
		return;
	e->dgram->warned_no_ping = true;
	log_warn("ping from the tree cannot be relayed: this host does not allow unprivileged "
		 "ICMP sockets for your group (sysctl net.ipv4.ping_group_range; "
		 "`childflow --doctor` explains)");
}

/* Make room under MAX_FLOWS by closing the least recently used flow. */
static void evict_if_full(struct cf_engine *e)
{
	struct cf_dgram_table *t = e->dgram;

	if (t->n < MAX_FLOWS)
		return;
	if (!t->warned_full) {
		log_warn("%d UDP/ICMP flows open: closing the least recently used ones", MAX_FLOWS);
		t->warned_full = true;
	}
	flow_close(e, t->lru.next);
}

/*
 * Create the flow for @pkt. On failure return NULL with *err set and
 * *denied telling a policy refusal from a host socket failure.
 */
static struct dgram_flow *flow_new(struct cf_engine *e, const struct cf_pkt *pkt, uint16_t sport,
				   uint16_t dport, int *err, bool *denied)
{
	struct dgram_flow *f = calloc(1, sizeof(*f));

	*err = -ENOMEM;
	if (!f)
		return NULL;
	f->w.kind = CF_W_DGRAM;
	f->fd = -1;
	f->proto = pkt->proto;
	f->flow.src = pkt->src;
	f->flow.dst = pkt->dst;
	f->flow.sport = sport;
	f->flow.dport = dport;
	*err = cf_flow_dgram_decide(e, &f->flow, pkt->proto);
	*denied = *err < 0;
	if (*err == 0 && f->flow.via_proxy) {
		const char *why;

		/* No host socket: the datagrams go through the proxy's association. */
		*err = cf_socksudp_usable(e, &f->flow.target, &why);
		cf_flow_connect_result(e, &f->flow, -*err, why);
	} else if (*err == 0) {
		*err = open_socket(e, f);
		cf_flow_connect_result(e, &f->flow, -*err, NULL);
	}
	if (*err < 0) {
		cf_capview_sock_close(&f->egs, false);
		if (f->fd >= 0)
			close(f->fd);
		free(f);
		return NULL;
	}
	evict_if_full(e);
	*find_slot(e->dgram, f->proto, &f->flow.src, &f->flow.dst, sport, dport) = f;
	lru_add_tail(e->dgram, f);
	e->dgram->n++;
	return f;
}

/* Tell the tree a datagram could not go out (policy, no route, no ICMP socket). */
static void refuse(struct cf_engine *e, const struct cf_pkt *pkt, int err)
{
	bool v4 = pkt->family == AF_INET;
	uint8_t type = v4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH;
	uint8_t code;
	ssize_t n;

	if (err == -EACCES || err == -EPERM)
		code = v4 ? ICMP_PKT_FILTERED : ICMP6_DST_UNREACH_ADMIN;
	else if (err == -ECONNREFUSED) /* through a proxy that carries no UDP */
		code = v4 ? ICMP_PORT_UNREACH : ICMP6_DST_UNREACH_NOPORT;
	else if (err == -ENETUNREACH)
		code = v4 ? ICMP_NET_UNREACH : ICMP6_DST_UNREACH_NOROUTE;
	else
		code = v4 ? ICMP_HOST_UNREACH : ICMP6_DST_UNREACH_ADDR;
	n = cf_pkt_build_icmp_error(e->txbuf, sizeof(e->txbuf), pkt, &pkt->dst, type, code, 0);
	if (n > 0)
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
}

/* Through the proxy's association; what it refuses, the tree hears of at once. */
static int send_proxied(struct cf_engine *e, struct dgram_flow *f, const struct cf_pkt *pkt)
{
	int r = cf_socksudp_send(e, pkt, &f->flow.target, f->flow.target_port);

	if (r == -ECONNREFUSED || r == -EACCES) {
		refuse(e, pkt, r);
		return r;
	}
	if (r < 0)
		return r;
	f->flow.bytes_sent += pkt->payload_len;
	f->flow.packets_sent++;
	return 0;
}

static int send_payload(struct cf_engine *e, struct dgram_flow *f, const struct cf_pkt *pkt)
{
	ssize_t n;

	if (f->flow.via_proxy)
		return send_proxied(e, f, pkt);
	if (set_ttl(f, pkt->ttl) < 0)
		return -errno;
	/* ICMP sockets take the echo header too; the kernel sets the id and checksum. */
	if (f->proto == IPPROTO_UDP)
		n = send(f->fd, pkt->payload, pkt->payload_len, 0);
	else
		n = send(f->fd, pkt->l4, pkt->l4_len, 0);
	if (n < 0)
		return -errno;
	f->flow.bytes_sent += (uint64_t)n;
	f->flow.packets_sent++;
	cf_capview_dgram(&f->egs, CF_CAPVIEW_OUT, f->proto == IPPROTO_UDP ? pkt->payload : pkt->l4,
			 (size_t)n, pkt->ttl);
	return 0;
}

void cf_dgram_on_packet(struct cf_engine *e, const struct cf_pkt *pkt)
{
	uint16_t sport = pkt->sport, dport = pkt->dport;
	struct dgram_flow *f;
	bool denied = false;
	int err;

	if (pkt->proto != IPPROTO_UDP) {
		bool echo = pkt->proto == IPPROTO_ICMP ? pkt->icmp_type == ICMP_ECHO
						       : pkt->icmp_type == ICMP6_ECHO_REQUEST;

		if (!echo) {
			e->stats.packets_dropped++;
			return;
		}
		sport = pkt->icmp_id;
		dport = 0;
	}
	f = *find_slot(e->dgram, pkt->proto, &pkt->src, &pkt->dst, sport, dport);
	if (!f) {
		f = flow_new(e, pkt, sport, dport, &err, &denied);
		if (!f) {
			if (!denied && pkt->proto != IPPROTO_UDP &&
			    (err == -EACCES || err == -EPERM))
				no_ping_hint(e);
			refuse(e, pkt, err);
			return;
		}
	}
	f->last_ms = e->now_ms;
	lru_del(f);
	lru_add_tail(e->dgram, f);
	f->quote_len = pkt->l3_len < QUOTE_MAX ? pkt->l3_len : QUOTE_MAX;
	memcpy(f->quote, pkt->l3, f->quote_len);
	/* --rate-limit: a datagram the bucket cannot take is lost, as on a full link. */
	if (!cf_ratelimit_datagram(e, 0,
				   f->proto == IPPROTO_UDP ? pkt->payload_len : pkt->l4_len)) {
		e->stats.packets_dropped++;
		return;
	}
	err = send_payload(e, f, pkt);
	if (err < 0 && err != -EAGAIN && err != -ECONNREFUSED)
		log_debug("flow %llu: send: %s", (unsigned long long)f->flow.id, strerror(-err));
}

/* Deliver one reply datagram to the tree. */
static void deliver(struct cf_engine *e, struct dgram_flow *f, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (!cf_ratelimit_datagram(e, 1, len)) {
		e->stats.packets_dropped++;
		return;
	}
	cf_capview_dgram(&f->egs, CF_CAPVIEW_IN, buf, len, 64);
	if (f->proto == IPPROTO_UDP) {
		n = cf_pkt_build_udp(e->txbuf, sizeof(e->txbuf), &f->flow.dst, f->flow.dport,
				     &f->flow.src, f->flow.sport, buf, len, 64, 0);
	} else {
		uint8_t reply_type = f->proto == IPPROTO_ICMP ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY;
		uint16_t seq;

		if (len < 8 || buf[0] != reply_type)
			return;
		seq = (uint16_t)(buf[6] << 8 | buf[7]);
		n = cf_pkt_build_icmp_echo(e->txbuf, sizeof(e->txbuf), &f->flow.dst, &f->flow.src,
					   true, f->flow.sport, seq, buf + 8, len - 8, 64);
	}
	if (n > 0) {
		f->flow.bytes_received += len;
		f->flow.packets_received++;
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
	}
}

void cf_dgram_proxy_reply(struct cf_engine *e, const struct cf_ip *ip, uint16_t port,
			  const uint8_t *buf, size_t len)
{
	struct cf_dgram_table *t = e->dgram;

	/* The most recent flow to that source: a reply nobody asked for goes nowhere. */
	for (struct dgram_flow *f = t->lru.prev; f != &t->lru; f = f->prev) {
		if (f->proto == IPPROTO_UDP && f->flow.via_proxy && f->flow.target_port == port &&
		    cf_ip_equal(&f->flow.target, ip)) {
			f->last_ms = e->now_ms;
			deliver(e, f, buf, len);
			return;
		}
	}
	e->stats.packets_dropped++;
}

/*
 * The tree's packet an ICMP error is about. For echo flows, probes differ
 * only in sequence number and several are in flight at once (traceroute -I),
 * so the quoted request is rebuilt from the bytes the error queue returns
 * (our echo header and data) with the tree's own id; for UDP the flow's last
 * packet is the one (each probe of a traceroute is its own flow).
 */
static int errored_packet(struct cf_engine *e, struct dgram_flow *f, const uint8_t *sent,
			  size_t sent_len, uint8_t *buf, size_t cap, struct cf_pkt *orig)
{
	ssize_t n;

	if (f->proto == IPPROTO_UDP || sent_len < 8)
		return cf_pkt_parse_quote(f->quote, f->quote_len, orig);
	n = cf_pkt_build_icmp_echo(buf, cap, &f->flow.src, &f->flow.dst, false, f->flow.sport,
				   (uint16_t)(sent[6] << 8 | sent[7]), sent + 8, sent_len - 8, 1);
	(void)e;
	return n < 0 ? (int)n : cf_pkt_parse(buf, (size_t)n, orig);
}

/* Turn one queued ICMP error into the packet the tree would have received. */
static void deliver_error(struct cf_engine *e, struct dgram_flow *f,
			  const struct sock_extended_err *ee, const uint8_t *sent, size_t sent_len)
{
	uint8_t quote[QUOTE_MAX];
	const struct sockaddr *offender = SO_EE_OFFENDER(ee);
	struct cf_ip from;
	struct cf_pkt orig;
	uint16_t port;
	ssize_t n;

	if (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6)
		return;
	/* Without an offender's address, the egress view takes the host socket's peer. */
	cf_capview_icmp_error(&f->egs,
			      cf_ip_from_sockaddr(offender, &from, &port) == 0 ? &from : NULL,
			      ee->ee_type, ee->ee_code, ee->ee_info, sent, sent_len);
	if (cf_ip_from_sockaddr(offender, &from, &port) < 0)
		from = f->flow.dst;
	/* The host socket may be v6 for a v4 flow only in theory; keep the tree's family. */
	if (from.family != f->flow.dst.family)
		from = f->flow.dst;
	if (errored_packet(e, f, sent, sent_len, quote, sizeof(quote), &orig) < 0)
		return;
	n = cf_pkt_build_icmp_error(e->txbuf, sizeof(e->txbuf), &orig, &from, ee->ee_type,
				    ee->ee_code, ee->ee_info);
	if (n > 0)
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
}

static void drain_errors(struct cf_engine *e, struct dgram_flow *f)
{
	union {
		char
		    buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6))];
		struct cmsghdr align;
	} u;
	uint8_t data[QUOTE_MAX];

	for (int i = 0; i < 16; i++) {
		struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *c;
		ssize_t n = recvmsg(f->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);

		if (n < 0)
			return;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			struct {
				struct sock_extended_err ee;
				struct sockaddr_in6 offender; /* SO_EE_OFFENDER() reads past ee */
			} err;

			if ((c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR) &&
			    (c->cmsg_level != IPPROTO_IPV6 || c->cmsg_type != IPV6_RECVERR))
				continue;
			memset(&err, 0, sizeof(err));
			memcpy(&err, CMSG_DATA(c),
			       c->cmsg_len - CMSG_LEN(0) < sizeof(err) ? c->cmsg_len - CMSG_LEN(0)
								       : sizeof(err));
			deliver_error(e, f, &err.ee, data, (size_t)n);
		}
	}
}

void cf_dgram_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	struct dgram_flow *f = cf_container_of(w, struct dgram_flow, w);

	if (f->dead)
		return;
	if (events & EPOLLERR)
		drain_errors(e, f);
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(f->fd, e->rxbuf, sizeof(e->rxbuf), MSG_TRUNC);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/* With IP_RECVERR an error is reported here too; the queue has the details.
			 */
			drain_errors(e, f);
			continue;
		}
		if ((size_t)n > sizeof(e->rxbuf)) {
			e->stats.packets_dropped++;
			continue;
		}
		f->last_ms = e->now_ms;
		deliver(e, f, e->rxbuf, (size_t)n);
	}
}

void cf_dgram_on_tick(struct cf_engine *e)
{
	struct cf_dgram_table *t = e->dgram;

	/* The LRU head is the least recently used: stop at the first fresh one. */
	while (t->lru.next != &t->lru && t->lru.next->last_ms + IDLE_MS <= e->now_ms)
		flow_close(e, t->lru.next);
}
