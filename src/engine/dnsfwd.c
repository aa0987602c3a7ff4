/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: the tree's UDP DNS.
 *
 * Every UDP query on port 53 arrives here as a packet from tun0: to the
 * virtual resolver, or, with --dns, to any server, it is redirected to the
 * resolver childflow chose; to another server without --dns, it goes to
 * that server, but through the same policy. It is parsed with ldns (dns/message.h; a
 * query ldns rejects is dropped), then sent from a fresh connected UDP
 * socket on the host (a random source port per query) to the chosen
 * resolver: --dns, else the host's resolv.conf servers in order, moving to
 * the next one after QUERY_TIMEOUT_MS. The answer, when its id matches, is
 * written back into tun0 as a UDP packet from the address the tree asked,
 * so its stub resolver accepts it. When every resolver fails the tree gets
 * SERVFAIL rather than waiting for its own timeout. Only answers of the
 * resolver childflow chose teach policy's name memory (flows.c): a server
 * the tree addressed itself may be the tree's own.
 */
#include "engine/dnsfwd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/capview.h"
#include "dns/message.h"
#include "engine/flows.h"
#include "util/log.h"

#define QUERY_TIMEOUT_MS 2500
#define MAX_IN_FLIGHT 4096

struct dns_query {
	struct cf_watch w;
	int fd;
	struct cf_ip client, server; /* the tree's address, and the server it asked */
	uint16_t client_port, server_port;
	uint16_t id;
	uint64_t flow_id; /* ties the flow log's query and answer */
	size_t resolver;  /* index of the resolver tried */
	uint64_t deadline_ms;
	uint8_t *msg;
	size_t len;
	bool dead;		    /* answered; freed after the current epoll batch */
	struct cf_capview_sock egs; /* the host socket, for the egress capture views */
	struct dns_query *prev, *next;
};

struct cf_dnsfwd {
	struct dns_query head;
	struct dns_query *graveyard; /* chained through next */
	size_t n;
	bool warned_no_resolver;
};

int cf_dnsfwd_init(struct cf_engine *e)
{
	struct cf_dnsfwd *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->head.next = d->head.prev = &d->head;
	e->dns = d;
	return 0;
}

static void query_free(struct cf_engine *e, struct dns_query *q)
{
	q->prev->next = q->next;
	q->next->prev = q->prev;
	e->dns->n--;
	cf_capview_sock_close(&q->egs, false);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	free(q->msg);
	q->msg = NULL;
	q->dead = true;
	q->next = e->dns->graveyard;
	e->dns->graveyard = q;
}

void cf_dnsfwd_reap(struct cf_engine *e)
{
	struct dns_query *q;

	while ((q = e->dns->graveyard)) {
		e->dns->graveyard = q->next;
		free(q);
	}
}

void cf_dnsfwd_fini(struct cf_engine *e)
{
	if (!e->dns)
		return;
	while (e->dns->head.next != &e->dns->head)
		query_free(e, e->dns->head.next);
	cf_dnsfwd_reap(e);
	free(e->dns);
	e->dns = NULL;
}

bool cf_dnsfwd_wants(const struct cf_engine *e, const struct cf_pkt *pkt)
{
	(void)e;
	/* Every query on port 53 passes the forwarder, so DNS policy has no bypass. */
	return pkt->dport == 53;
}

/* Send @q to resolver number q->resolver. Return 0, or -errno (-ENOENT: none left). */
static int query_send(struct cf_engine *e, struct dns_query *q)
{
	const struct cf_ip *server;
	struct cf_ip loopback;

	if (cf_flow_dns_redirected(e, &q->server))
		server = cf_engine_resolver(e, q->resolver);
	else if (q->resolver == 0 && cf_engine_host_target(e, &q->server, &loopback))
		server = &loopback; /* policy allowed it: a port of --allow-host-port */
	else			    /* the server the tree asked, and only that one */
		server = q->resolver == 0 ? &q->server : NULL;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	if (!server)
		return -ENOENT;
	if (q->fd >= 0) {
		cf_capview_sock_close(&q->egs, false);
		close(q->fd); /* epoll forgets a closed fd by itself */
		q->fd = -1;
	}
	sl = cf_ip_to_sockaddr(server, cf_flow_dns_redirected(e, &q->server) ? 53 : q->server_port,
			       &ss);
	fd = socket(server->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	q->fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	cf_capview_sock_open(e->capview, &q->egs, fd, IPPROTO_UDP, (struct sockaddr *)&ss);
	if (send(fd, q->msg, q->len, 0) < 0)
		return -errno;
	cf_capview_dgram(&q->egs, CF_CAPVIEW_OUT, q->msg, q->len, 64);
	q->deadline_ms = e->now_ms + QUERY_TIMEOUT_MS;
	return cf_engine_watch(e, fd, EPOLLIN, &q->w);
}

/* Write @msg back to the tree as a UDP packet from the server it asked. */
static void reply(struct cf_engine *e, const struct dns_query *q, const uint8_t *msg, size_t len)
{
	ssize_t n = cf_pkt_build_udp(e->txbuf, sizeof(e->txbuf), &q->server, q->server_port,
				     &q->client, q->client_port, msg, len, 64, 0);

	if (n > 0)
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
	else
		e->stats.packets_dropped++;
}

static void fail_query(struct cf_engine *e, struct dns_query *q)
{
	uint8_t buf[512];
	ssize_t n =
	    cf_dns_build_empty_answer(q->msg, q->len, CF_DNS_RCODE_SERVFAIL, buf, sizeof(buf));

	e->stats.dns_failures++;
	if (n > 0) {
		cf_flow_dns_failed(e, q->flow_id, &q->server, q->server_port, buf, (size_t)n);
		reply(e, q, buf, (size_t)n);
	}
	query_free(e, q);
}

static struct dns_query *query_new(struct cf_engine *e, const struct cf_pkt *pkt, uint16_t id)
{
	struct dns_query *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->msg = malloc(pkt->payload_len);
	if (!q->msg) {
		free(q);
		return NULL;
	}
	memcpy(q->msg, pkt->payload, pkt->payload_len);
	q->len = pkt->payload_len;
	q->w.kind = CF_W_DNS_UPSTREAM;
	q->fd = -1;
	q->client = pkt->src;
	q->client_port = pkt->sport;
	q->server = pkt->dst;
	q->server_port = pkt->dport;
	q->id = id;
	q->next = &e->dns->head;
	q->prev = e->dns->head.prev;
	e->dns->head.prev->next = q;
	e->dns->head.prev = q;
	e->dns->n++;
	return q;
}

/*
 * Answer a query at once from the engine: a refused one with NOERROR and no
 * records ("synthetic_empty"; FORMERR without a question), an allowed one
 * under remote DNS with its stand-in addresses.
 */
static void answer_local(struct cf_engine *e, const struct cf_pkt *pkt, uint64_t flow_id,
			 bool allowed)
{
	uint8_t buf[512];
	ssize_t n;

	if (allowed) {
		n = cf_flow_dns_remote_answer(e, flow_id, false, &pkt->dst, pkt->dport,
					      pkt->payload, pkt->payload_len, buf, sizeof(buf));
	} else {
		n = cf_dns_build_empty_answer(pkt->payload, pkt->payload_len, 0, buf, sizeof(buf));
		if (n > 0)
			cf_flow_dns_synthetic(e, flow_id, false, &pkt->dst, pkt->dport, buf,
					      (size_t)n);
	}
	if (n <= 0)
		return;
	n = cf_pkt_build_udp(e->txbuf, sizeof(e->txbuf), &pkt->dst, pkt->dport, &pkt->src,
			     pkt->sport, buf, (size_t)n, 64, 0);
	if (n > 0)
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
}

void cf_dnsfwd_on_query(struct cf_engine *e, const struct cf_pkt *pkt)
{
	struct cf_dns_query info;
	struct dns_query *q;
	uint64_t flow_id;
	int verdict;

	if (cf_dns_parse_query(pkt->payload, pkt->payload_len, &info) < 0 || info.is_response) {
		e->stats.packets_dropped++;
		return;
	}
	e->stats.dns_queries++;
	flow_id = cf_flow_dns_query(e, 0, false, pkt->payload, pkt->payload_len, &pkt->dst,
				    pkt->dport, &verdict);
	if (verdict < 0) {
		/* Denied, or no single nameable question (then the builder answers FORMERR). */
		answer_local(e, pkt, flow_id, false);
		return;
	}
	if (verdict > 0) {
		answer_local(e, pkt, flow_id, true);
		return;
	}
	if (e->dns->n >= MAX_IN_FLIGHT) {
		log_debug("dns: %zu queries in flight, dropping one for %s", e->dns->n, info.qname);
		e->stats.packets_dropped++;
		return;
	}
	q = query_new(e, pkt, info.id);
	if (!q) {
		e->stats.packets_dropped++;
		return;
	}
	q->flow_id = flow_id;
	if (query_send(e, q) == -ENOENT && !e->dns->warned_no_resolver) {
		log_warn("the tree asked for DNS but the host has no resolver in /etc/resolv.conf; "
			 "use --dns IP");
		e->dns->warned_no_resolver = true;
	}
	/* A send error leaves the query to time out onto the next resolver. */
}

void cf_dnsfwd_on_event(struct cf_engine *e, struct cf_watch *w)
{
	struct dns_query *q = cf_container_of(w, struct dns_query, w);
	uint8_t *buf = e->rxbuf;
	ssize_t n;

	if (q->dead)
		return;
	for (;;) {
		n = recv(q->fd, buf, sizeof(e->rxbuf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* ICMP error from this resolver (refused): try the next one now. */
			q->deadline_ms = e->now_ms;
			return;
		}
		cf_capview_dgram(&q->egs, CF_CAPVIEW_IN, buf, (size_t)n, 64);
		if (n >= 12 && buf[0] == (q->id >> 8) && buf[1] == (q->id & 0xff))
			break;
	}
	e->stats.dns_answers++;
	cf_flow_dns_relayed(e, q->flow_id, false, &q->server, q->server_port, buf, (size_t)n);
	reply(e, q, buf, (size_t)n);
	query_free(e, q);
}

void cf_dnsfwd_on_tick(struct cf_engine *e)
{
	struct dns_query *q, *next;

	for (q = e->dns->head.next; q != &e->dns->head; q = next) {
		next = q->next;
		if (q->deadline_ms > e->now_ms)
			continue;
		q->resolver++;
		if (query_send(e, q) < 0)
			fail_query(e, q);
	}
}
