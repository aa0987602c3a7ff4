/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: the tree's UDP through a SOCKS5 UDP ASSOCIATE.
 *
 *   IDLE     no association; the next datagram opens one
 *   OPENING  TCP to the proxy, then the handshake (proxy/handshake.h,
 *            cf_hs_new_udp(), with the run's credentials); datagrams wait in
 *            a short queue
 *   READY    one UDP socket connected to the relay address the proxy named
 *            (BND.ADDR, or the proxy's own address when that is zero); each
 *            datagram carries the RFC 1928 header naming its destination
 *   FAILED   the proxy is down, refused UDP (microsocks: "command not
 *            supported") or broke the association; for RETRY_MS every
 *            datagram is answered with ICMP port unreachable at once, so the
 *            tree fails fast (QUIC falls back to TCP) and nothing leaves
 *            directly; then the next datagram tries again
 *
 * Policy is dgram.c's: every (source, destination, port) of the tree is a
 * flow decided before its first datagram, so every destination the header
 * names was checked, host-local included. The proxy's own address and its
 * relay's are refused as destinations: a datagram there would reach the
 * proxy's services from the proxy itself. Replies are read only from the
 * relay (the socket is connected) and reach the tree only through a flow that
 * sent to their source (dgram.c), like a NAT.
 *
 * The association ends with its control connection (RFC 1928); the flows stay
 * and the next datagram opens a new one.
 */
#include "engine/socksudp.h"

#include <errno.h>
#include <stdio.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <linux/icmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/dgram.h"
#include "proxy/handshake.h"
#include "util/log.h"

#define OPEN_TIMEOUT_MS 5000
#define RETRY_MS 10000
#define QUEUE_MAX 32

enum su_state {
	SU_IDLE,
	SU_OPENING,
	SU_READY,
	SU_FAILED,
};

struct queued {
	uint8_t *l3; /* the tree's whole packet: payload to send, or quote for the ICMP error */
	size_t len;
	struct cf_ip ip;
	uint16_t port;
};

struct cf_socksudp {
	enum su_state state;
	int ctl_fd, udp_fd;
	struct cf_watch w_ctl, w_udp;
	bool connected; /* ctl_fd's TCP connect completed */
	struct cf_hs *hs;
	struct cf_ip proxy_ip, relay_ip;
	uint64_t deadline_ms; /* OPENING: give up; FAILED: try again */
	char why[96];	      /* FAILED: the reason, for the flow log */
	bool warned;
	struct queued q[QUEUE_MAX];
	size_t nq;
	uint8_t buf[CF_SOCKS_UDP_HDR_MAX + 65536];
};

bool cf_socksudp_enabled(const struct cf_engine *e)
{
	return e->cfg->proxy.scheme == CF_PROXY_SOCKS5 && e->proxy_addr_len > 0;
}

static struct cf_socksudp *get(struct cf_engine *e)
{
	struct cf_socksudp *s = e->socksudp;
	uint16_t port;

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ctl_fd = s->udp_fd = -1;
	s->w_ctl.kind = s->w_udp.kind = CF_W_SOCKSUDP;
	cf_ip_from_sockaddr((const struct sockaddr *)&e->proxy_addr, &s->proxy_ip, &port);
	e->socksudp = s;
	return s;
}

/* Answer the tree's packet @l3 with ICMP port unreachable from its destination. */
static void port_unreachable(struct cf_engine *e, const uint8_t *l3, size_t len)
{
	struct cf_pkt pkt;
	bool v4;
	ssize_t n;

	if (cf_pkt_parse(l3, len, &pkt) < 0)
		return;
	v4 = pkt.family == AF_INET;
	n = cf_pkt_build_icmp_error(e->txbuf, sizeof(e->txbuf), &pkt, &pkt.dst,
				    v4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH,
				    v4 ? ICMP_PORT_UNREACH : ICMP6_DST_UNREACH_NOPORT, 0);
	if (n > 0)
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
}

static void close_fds(struct cf_socksudp *s)
{
	if (s->ctl_fd >= 0)
		close(s->ctl_fd);
	if (s->udp_fd >= 0)
		close(s->udp_fd);
	s->ctl_fd = s->udp_fd = -1;
	s->connected = false;
	cf_hs_free(s->hs);
	s->hs = NULL;
}

/* Empty the queue: each datagram is refused (@refuse) or just dropped. */
static void flush_queue(struct cf_engine *e, struct cf_socksudp *s, bool refuse)
{
	for (size_t i = 0; i < s->nq; i++) {
		if (refuse)
			port_unreachable(e, s->q[i].l3, s->q[i].len);
		free(s->q[i].l3);
	}
	s->nq = 0;
}

/* The association could not be opened or broke: refuse the tree's UDP for RETRY_MS. */
static void su_fail(struct cf_engine *e, struct cf_socksudp *s, const char *why)
{
	snprintf(s->why, sizeof(s->why), "%s", why);
	if (!s->warned) {
		log_warn(
		    "--proxy: the proxy %s:%u carries none of the tree's UDP (%s): the tree "
		    "gets ICMP port unreachable; use a SOCKS5 proxy that supports UDP ASSOCIATE",
		    e->cfg->proxy.host, e->cfg->proxy.port, why);
		s->warned = true;
	}
	log_debug("socks5 udp: association failed: %s", why);
	close_fds(s);
	s->state = SU_FAILED;
	s->deadline_ms = e->now_ms + RETRY_MS;
	flush_queue(e, s, true);
}

static int su_start(struct cf_engine *e, struct cf_socksudp *s)
{
	int r;

	s->ctl_fd = socket(e->proxy_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->ctl_fd < 0)
		return -errno;
	if (connect(s->ctl_fd, (struct sockaddr *)&e->proxy_addr, e->proxy_addr_len) < 0 &&
	    errno != EINPROGRESS)
		return -errno;
	/* --proxy-user / --proxy-password override the URI's, as for TCP (upstream.c). */
	r = cf_hs_new_udp(&e->cfg->proxy, e->cfg->proxy_user, e->cfg->proxy_password,
			  e->proxy_addr.ss_family, &s->hs);
	if (r < 0)
		return r;
	r = cf_engine_watch(e, s->ctl_fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, &s->w_ctl);
	if (r < 0)
		return r;
	s->state = SU_OPENING;
	s->deadline_ms = e->now_ms + OPEN_TIMEOUT_MS;
	return 0;
}

/* Whether @ip is the proxy's own address or its relay's: never a destination through it. */
static bool is_proxy(const struct cf_socksudp *s, const struct cf_ip *ip)
{
	return cf_ip_equal(ip, &s->proxy_ip) ||
	       (s->state == SU_READY && cf_ip_equal(ip, &s->relay_ip));
}

int cf_socksudp_usable(struct cf_engine *e, const struct cf_ip *ip, const char **why)
{
	struct cf_socksudp *s = get(e);

	*why = NULL;
	if (!s)
		return -ENOMEM;
	if (is_proxy(s, ip)) {
		*why = "the proxy's own address is no destination through the proxy";
		return -EACCES;
	}
	if (s->state == SU_FAILED && e->now_ms < s->deadline_ms) {
		*why = s->why;
		return -ECONNREFUSED;
	}
	return 0;
}

static int send_now(struct cf_socksudp *s, const struct cf_ip *ip, uint16_t port,
		    const uint8_t *payload, size_t len)
{
	ssize_t n = cf_socks_udp_encode(s->buf, sizeof(s->buf), ip, port, payload, len);

	if (n < 0)
		return (int)n;
	if (send(s->udp_fd, s->buf, (size_t)n, 0) < 0)
		return -errno;
	return 0;
}

static int enqueue(struct cf_socksudp *s, const struct cf_pkt *pkt, const struct cf_ip *ip,
		   uint16_t port)
{
	struct queued *q;

	if (s->nq == QUEUE_MAX)
		return -ENOBUFS;
	q = &s->q[s->nq];
	q->l3 = malloc(pkt->l3_len);
	if (!q->l3)
		return -ENOMEM;
	memcpy(q->l3, pkt->l3, pkt->l3_len);
	q->len = pkt->l3_len;
	q->ip = *ip;
	q->port = port;
	s->nq++;
	return 0;
}

int cf_socksudp_send(struct cf_engine *e, const struct cf_pkt *pkt, const struct cf_ip *ip,
		     uint16_t port)
{
	struct cf_socksudp *s = get(e);
	int r;

	if (!s)
		return -ENOMEM;
	if (is_proxy(s, ip))
		return -EACCES;
	if (s->state == SU_FAILED && e->now_ms >= s->deadline_ms)
		s->state = SU_IDLE;
	switch (s->state) {
	case SU_READY:
		return send_now(s, ip, port, pkt->payload, pkt->payload_len);
	case SU_FAILED:
		return -ECONNREFUSED;
	case SU_IDLE:
		r = su_start(e, s);
		if (r < 0) {
			char why[64];

			snprintf(why, sizeof(why), "proxy: %s", strerror(-r));
			su_fail(e, s, why);
			return -ECONNREFUSED;
		}
		break;
	case SU_OPENING:
		break;
	}
	return enqueue(s, pkt, ip, port);
}

/* The proxy named its relay: open the UDP socket there and send what waited. */
static void su_ready(struct cf_engine *e, struct cf_socksudp *s)
{
	struct sockaddr_storage ss;
	uint16_t port = 0;
	socklen_t sl;
	int r = cf_hs_bound(s->hs, &s->relay_ip, &port);

	if (r < 0 || port == 0) {
		su_fail(e, s, "proxy: SOCKS5 UDP ASSOCIATE reply names no usable relay address");
		return;
	}
	/* "0.0.0.0" / "::": the relay listens on the proxy's own address. */
	if (!memcmp(s->relay_ip.b, (uint8_t[16]){0}, 16))
		s->relay_ip = s->proxy_ip;
	sl = cf_ip_to_sockaddr(&s->relay_ip, port, &ss);
	s->udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->udp_fd < 0 || connect(s->udp_fd, (struct sockaddr *)&ss, sl) < 0 ||
	    cf_engine_watch(e, s->udp_fd, EPOLLIN, &s->w_udp) < 0) {
		su_fail(e, s, "proxy: cannot open a UDP socket to the SOCKS5 relay");
		return;
	}
	cf_hs_free(s->hs);
	s->hs = NULL;
	s->state = SU_READY;
	log_debug("socks5 udp: association open");
	for (size_t i = 0; i < s->nq; i++) {
		struct cf_pkt pkt;

		if (cf_pkt_parse(s->q[i].l3, s->q[i].len, &pkt) == 0)
			send_now(s, &s->q[i].ip, s->q[i].port, pkt.payload, pkt.payload_len);
	}
	flush_queue(e, s, false);
}

/* Drive the handshake on the control connection. */
static void su_handshake(struct cf_engine *e, struct cf_socksudp *s, uint32_t events)
{
	uint8_t in[512];

	if (!s->connected) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(s->ctl_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			char why[64];

			snprintf(why, sizeof(why), "proxy: %s", strerror(soerr));
			su_fail(e, s, why);
			return;
		}
		s->connected = true;
	}
	for (;;) {
		const uint8_t *out;
		size_t n = cf_hs_pending_output(s->hs, &out), used;
		ssize_t k;
		enum cf_hs_status st;

		if (n > 0) {
			k = send(s->ctl_fd, out, n, MSG_NOSIGNAL);
			if (k < 0 && errno == EAGAIN)
				return;
			if (k < 0) {
				su_fail(e, s, "proxy: connection lost during the SOCKS5 handshake");
				return;
			}
			cf_hs_consumed_output(s->hs, (size_t)k);
			continue;
		}
		if (cf_hs_status(s->hs) != CF_HS_WANT_READ)
			break;
		k = recv(s->ctl_fd, in, sizeof(in), 0);
		if (k < 0 && errno == EAGAIN)
			return;
		st = cf_hs_input(s->hs, in, k < 0 ? 0 : (size_t)k, &used);
		if (st == CF_HS_DONE || st == CF_HS_FAILED)
			break;
	}
	if (cf_hs_status(s->hs) == CF_HS_DONE) {
		/* Only the end of the control connection matters from now on. */
		cf_engine_rewatch(e, s->ctl_fd, EPOLLIN | EPOLLRDHUP, &s->w_ctl);
		su_ready(e, s);
	} else {
		const char *text = NULL;

		cf_hs_error(s->hs, &text);
		su_fail(e, s, text ? text : "proxy: SOCKS5 handshake failed");
	}
}

/* READY: the proxy says nothing on the control connection but its end. */
static void su_control(struct cf_engine *e, struct cf_socksudp *s)
{
	uint8_t junk[256];
	ssize_t k;

	while ((k = recv(s->ctl_fd, junk, sizeof(junk), 0)) > 0)
		;
	if (k < 0 && errno == EAGAIN)
		return;
	log_debug("socks5 udp: the proxy %s ended the association (the next datagram opens one)",
		  e->cfg->proxy.host);
	close_fds(s);
	s->state = SU_IDLE;
}

/* Datagrams from the relay, each to the flow that sent to its source. */
static void su_relay(struct cf_engine *e, struct cf_socksudp *s)
{
	for (int i = 0; i < 64 && s->udp_fd >= 0; i++) {
		ssize_t n = recv(s->udp_fd, e->rxbuf, sizeof(e->rxbuf), MSG_TRUNC);
		struct cf_ip ip;
		uint16_t port;
		size_t hdr;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			su_fail(e, s, "proxy: the SOCKS5 UDP relay is unreachable");
			return;
		}
		if ((size_t)n > sizeof(e->rxbuf) ||
		    cf_socks_udp_decode(e->rxbuf, (size_t)n, &ip, &port, &hdr) < 0) {
			e->stats.packets_dropped++;
			continue;
		}
		cf_dgram_proxy_reply(e, &ip, port, e->rxbuf + hdr, (size_t)n - hdr);
	}
}

void cf_socksudp_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	struct cf_socksudp *s = e->socksudp;

	if (!s)
		return;
	if (w == &s->w_udp && s->state == SU_READY)
		su_relay(e, s);
	else if (w == &s->w_ctl && s->state == SU_OPENING)
		su_handshake(e, s, events);
	else if (w == &s->w_ctl && s->state == SU_READY)
		su_control(e, s);
}

void cf_socksudp_on_tick(struct cf_engine *e)
{
	struct cf_socksudp *s = e->socksudp;

	if (s && s->state == SU_OPENING && e->now_ms >= s->deadline_ms)
		su_fail(e, s, "proxy: no SOCKS5 UDP ASSOCIATE reply in time");
}

void cf_socksudp_fini(struct cf_engine *e)
{
	struct cf_socksudp *s = e->socksudp;

	if (!s)
		return;
	close_fds(s);
	flush_queue(e, s, false);
	free(s);
	e->socksudp = NULL;
}
