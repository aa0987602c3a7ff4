/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: TCP connections of the tree.
 *
 * The tree's kernel sends every new connection's SYN out through tun0 (nft
 * mark 2). The engine decides it here, opens the upstream socket on the host,
 * and only when that connect() succeeds writes the very same SYN back into
 * tun0; the tree's kernel then hands it to the transparent listener, the
 * tree's connect() completes, and the engine accept()s and splices. So the
 * tree never sees "connected" for a destination that refused or never
 * answered.
 *
 * States of a connection (enum tcp_state):
 *   CONNECTING  upstream connect() in progress; SYN retransmits absorbed
 *   PROXYING    connected to the proxy (--proxy): TLS to an https:// proxy
 *               and the CONNECT/SOCKS5 handshake (upstream.c) before the SYN
 *               is written back
 *   INJECTED    upstream connected, SYN written back; waiting for accept()
 *   SNIFF       accepted, but with domain rules in force nothing is relayed
 *               yet: the tree's first bytes are peeked at (MSG_PEEK, so they
 *               stay queued for the relay) until they show a TLS ClientHello's
 *               SNI or an HTTP/1 Host (net/peekname.h), show neither, the
 *               destination speaks first, or CF_SNIFF_TIMEOUT_MS pass; a
 *               denied name resets both sides, anything else starts RELAY
 *   RELAY       both sockets relayed until both sides closed: spliced
 *               (relay.c), through the proxy's TLS session (tlsrelay.c), or
 *               answered by the engine's resolver for DNS (dnsstream.c)
 *   DEAD        closed; kept on the graveyard until the current epoll batch
 *               is done (its events may still follow), then freed
 *
 * Failures of CONNECTING and PROXYING answer the tree like the network
 * would: RST for a refused port, ICMP unreachable for unreachable
 * hosts/networks, nothing for a timeout (the tree's own SYN retries time
 * out). Accepted connections with no INJECTED entry are aborted: nothing
 * reaches the network unvetted.
 *
 * Pending connections (CONNECTING, PROXYING, INJECTED) are in a hash table
 * keyed by the tree's 4-tuple and on the pending list, which the tick walks
 * for deadlines. RELAY connections are on the relays list (for the flush
 * count at the tree's exit, waking relays starved of pipes, and teardown)
 * and, while their turn ran out, on the ready list.
 */
#include "engine/tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/capview.h"
#include "engine/dnsstream.h"
#include "engine/flows.h"
#include "engine/ratelimit.h"
#include "engine/relay.h"
#include "engine/synmemo.h"
#include "engine/tlsrelay.h"
#include "engine/upstream.h"
#include "net/peekname.h"
#include "obs/flowlog.h"
#include "proxy/tls.h"
#include "util/cleanup.h"
#include "util/log.h"

#define TCP_BUCKETS 4096
/* Longer than the kernel's own SYN retry budget (about 127 s with 6 retries). */
#define CONNECTING_TIMEOUT_MS CF_TCP_CONNECTING_TIMEOUT_MS
/* After injection the tree's kernel completes the handshake in microseconds; this only
 * catches a tree that gave up on the connection meanwhile. */
#define INJECTED_TIMEOUT_MS 10000

/*
 * How long the tree may take to send its first bytes (a TLS ClientHello or
 * HTTP request head) before the address rules alone decide: clients send
 * them at once; a protocol where the server speaks first is let through
 * as soon as the destination's first bytes arrive (direct connections).
 */
#define CF_SNIFF_TIMEOUT_MS 2000

/* How a relaying connection's sockets are watched (cf_relay_progress() on any event). */
#define RELAY_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

enum tcp_state {
	TCP_CONNECTING,
	TCP_PROXYING, /* connected to the proxy: TLS and/or CONNECT/SOCKS5 handshake */
	TCP_INJECTED,
	TCP_RELAY,
	TCP_DEAD,  /* closed; freed after the current epoll batch (its events may follow) */
	TCP_SNIFF, /* accepted; the name in the tree's first bytes not checked yet */
};

static const char *const state_names[] = {"CONNECTING", "PROXYING", "INJECTED",
					  "RELAY",	"DEAD",	    "SNIFF"};

struct tcp_conn {
	struct cf_watch w_up;	 /* upstream socket */
	struct cf_watch w_child; /* child-side socket (RELAY) */
	enum tcp_state state;
	struct cf_flow flow; /* the tree's 4-tuple and the flow record */
	int up_fd, child_fd;
	uint64_t deadline_ms;
	uint8_t *syn;
	size_t syn_len;
	struct cf_relay relay;
	struct cf_dnsstream *dns;	/* instead of the splice relay for DNS over TCP */
	struct cf_upstream *up;		/* proxy session while PROXYING */
	struct cf_tlsrelay *tlsr;	/* instead of the splice relay through an https:// proxy */
	struct cf_tls *tls;		/* the proxy's TLS session, between PROXYING and RELAY */
	struct cf_capview_sock egs;	/* the upstream socket, for the egress capture views */
	struct tcp_conn *hnext;		/* hash chain (pending only) */
	struct tcp_conn *prev, *next;	/* pending list */
	struct tcp_conn *rprev, *rnext; /* ready list: relays whose turn ran out (RELAY only) */
	bool ready;
	bool starved;	/* its relay waits for a pipe: no descriptor was left */
	bool throttled; /* its relay waits for --rate-limit's tokens */
	bool dns_slot;	/* a DNS-over-TCP stream, counted in n_dns */
};

struct cf_tcp_table {
	struct tcp_conn *bucket[TCP_BUCKETS];
	struct tcp_conn pending; /* list heads */
	struct tcp_conn relays;
	struct tcp_conn ready;	    /* head of the ready list */
	struct tcp_conn *graveyard; /* DEAD connections, chained through hnext */
	struct cf_pipe_pool pipes;
	size_t n_pending, n_relay;
	size_t n_injected;	/* SYNs written back whose connection was not accepted yet */
	bool listeners_nodelay; /* TCP_NODELAY set on the listeners, so on what they accept */
	size_t max_conns;	/* what the file-descriptor limit allows */
	size_t n_starved;	/* relays waiting for a pipe */
	size_t n_throttled;	/* relays waiting for --rate-limit's tokens */
	bool wake_starved;	/* descriptors were freed since they last tried */
	bool warned_full, warned_relay, warned_starved;
	size_t n_dns; /* DNS-over-TCP streams, from SYN to close (at most CF_DNSSTREAM_MAX) */
	bool warned_dns_full;
	uint8_t peek[CF_PEEK_WINDOW]; /* the first bytes of a SNIFF connection, peeked at */
	struct cf_synmemo refused;    /* SYNs answered with a failure, for their retransmissions */
};

static void list_add(struct tcp_conn *head, struct tcp_conn *c)
{
	c->next = head;
	c->prev = head->prev;
	head->prev->next = c;
	head->prev = c;
}

static void list_del(struct tcp_conn *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void conn_set_state(struct cf_tcp_table *t, struct tcp_conn *c, enum tcp_state s)
{
	log_debug("tcp flow %llu: %s -> %s", (unsigned long long)c->flow.id, state_names[c->state],
		  state_names[s]);
	if (c->state == TCP_INJECTED)
		t->n_injected--;
	if (s == TCP_INJECTED)
		t->n_injected++;
	c->state = s;
}

static uint32_t tuple_hash(const struct cf_ip *src, uint16_t sport, const struct cf_ip *dst,
			   uint16_t dport)
{
	uint32_t h = 2166136261u;
	size_t n = src->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		h = (h ^ src->b[i]) * 16777619u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ dst->b[i]) * 16777619u;
	h = (h ^ sport) * 16777619u;
	h = (h ^ dport) * 16777619u;
	return h % TCP_BUCKETS;
}

static struct tcp_conn **find_slot(struct cf_tcp_table *t, const struct cf_ip *src, uint16_t sport,
				   const struct cf_ip *dst, uint16_t dport)
{
	struct tcp_conn **pp = &t->bucket[tuple_hash(src, sport, dst, dport)];

	for (; *pp; pp = &(*pp)->hnext) {
		const struct cf_flow *f = &(*pp)->flow;

		if (f->sport == sport && f->dport == dport && cf_ip_equal(&f->src, src) &&
		    cf_ip_equal(&f->dst, dst))
			return pp;
	}
	return pp;
}

static void pending_link(struct cf_tcp_table *t, struct tcp_conn *c)
{
	struct tcp_conn **slot =
	    find_slot(t, &c->flow.src, c->flow.sport, &c->flow.dst, c->flow.dport);

	c->hnext = NULL;
	*slot = c;
	list_add(&t->pending, c);
	t->n_pending++;
}

static void pending_unlink(struct cf_tcp_table *t, struct tcp_conn *c)
{
	struct tcp_conn **slot =
	    find_slot(t, &c->flow.src, c->flow.sport, &c->flow.dst, c->flow.dport);

	if (*slot == c)
		*slot = c->hnext;
	list_del(c);
	t->n_pending--;
}

/*
 * A relayed connection holds two sockets, and a pipe per direction only
 * while bytes wait in it (relay.c); keep a reserve for those pipes (the
 * pool's worth and more) and everything else. Past this, new connections
 * are refused at once rather than failing half-way; a relay that finds no
 * descriptor for a pipe waits until one is freed.
 */
#define FDS_PER_CONN 2
#define FD_RESERVE_MAX 1024

static size_t conn_budget(void)
{
	struct rlimit rl;
	rlim_t reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1u << 20;
	/* A quarter of a small limit, so a small limit still leaves connections. */
	reserve = rl.rlim_cur / 4 < FD_RESERVE_MAX ? rl.rlim_cur / 4 : FD_RESERVE_MAX;
	return (size_t)(rl.rlim_cur - reserve) / FDS_PER_CONN;
}

/* On a listener (-1: none) TCP_NODELAY is inherited by every socket it accepts. */
static bool set_nodelay(int listen_fd)
{
	int one = 1;

	return listen_fd < 0 ||
	       setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
}

int cf_tcp_init(struct cf_engine *e)
{
	struct cf_tcp_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->pending.next = t->pending.prev = &t->pending;
	t->relays.next = t->relays.prev = &t->relays;
	t->ready.rnext = t->ready.rprev = &t->ready;
	t->max_conns = conn_budget();
	t->listeners_nodelay = set_nodelay(e->listen4) && set_nodelay(e->listen6);
	e->tcp = t;
	return 0;
}

static void abort_fd(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (fd < 0)
		return;
	/* SO_LINGER 0: close() sends RST, so a failure is never mistaken for a clean end. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void ready_add(struct cf_tcp_table *t, struct tcp_conn *c)
{
	if (c->ready)
		return;
	c->rnext = &t->ready;
	c->rprev = t->ready.rprev;
	t->ready.rprev->rnext = c;
	t->ready.rprev = c;
	c->ready = true;
}

static void ready_del(struct tcp_conn *c)
{
	if (!c->ready)
		return;
	c->rprev->rnext = c->rnext;
	c->rnext->rprev = c->rprev;
	c->ready = false;
}

/* Note whether @c's relay waits for a pipe; say once that descriptors ran out. */
static void set_starved(struct cf_tcp_table *t, struct tcp_conn *c, bool starved)
{
	if (starved == c->starved)
		return;
	c->starved = starved;
	if (!starved) {
		t->n_starved--;
		return;
	}
	t->n_starved++;
	if (!t->warned_starved) {
		log_warn("out of file descriptors for relay pipes (ulimit -n): connections wait "
			 "until some are freed (reported once)");
		t->warned_starved = true;
	}
}

/* Note whether @c's relay waits for tokens; make sure the timer will wake it. */
static void set_throttled(struct cf_engine *e, struct tcp_conn *c, unsigned dirs)
{
	struct cf_tcp_table *t = e->tcp;

	if (dirs)
		cf_ratelimit_wait(e, (dirs & 1) ? 0 : 1);
	if ((dirs != 0) == c->throttled)
		return;
	c->throttled = dirs != 0;
	if (c->throttled)
		t->n_throttled++;
	else
		t->n_throttled--;
}

void cf_tcp_wake_throttled(struct cf_engine *e)
{
	struct cf_tcp_table *t = e->tcp;

	if (!t || t->n_throttled == 0)
		return;
	for (struct tcp_conn *c = t->relays.next; c != &t->relays; c = c->next)
		if (c->throttled)
			ready_add(t, c);
}

/* Give every relay waiting for a pipe another turn. */
static void wake_starved(struct cf_tcp_table *t)
{
	t->wake_starved = false;
	if (t->n_starved == 0)
		return;
	for (struct tcp_conn *c = t->relays.next; c != &t->relays; c = c->next)
		if (c->starved)
			ready_add(t, c);
}

static void conn_free(struct cf_engine *e, struct tcp_conn *c, bool reset)
{
	ready_del(c);
	set_starved(e->tcp, c, false);
	set_throttled(e, c, 0);
	e->tcp->wake_starved = true; /* its descriptors are free now */
	if (c->state == TCP_RELAY) {
		cf_relay_fini(&c->relay, reset ? NULL : &e->tcp->pipes);
		cf_dnsstream_free(c->dns);
		c->dns = NULL;
		cf_tlsrelay_free(c->tlsr);
		c->tlsr = NULL;
		list_del(c);
		e->tcp->n_relay--;
	} else {
		pending_unlink(e->tcp, c);
	}
	if (c->dns_slot)
		e->tcp->n_dns--;
	c->dns_slot = false;
	cf_capview_sock_close(&c->egs, reset);
	if (reset) {
		abort_fd(c->up_fd);
		abort_fd(c->child_fd);
	} else {
		if (c->up_fd >= 0)
			close(c->up_fd);
		if (c->child_fd >= 0)
			close(c->child_fd);
	}
	c->up_fd = c->child_fd = -1;
	cf_upstream_free(c->up);
	c->up = NULL;
	cf_tls_free(c->tls);
	c->tls = NULL;
	free(c->syn);
	c->syn = NULL;
	conn_set_state(e->tcp, c, TCP_DEAD);
	c->hnext = e->tcp->graveyard;
	e->tcp->graveyard = c;
}

void cf_tcp_reap(struct cf_engine *e)
{
	struct tcp_conn *c;

	while ((c = e->tcp->graveyard)) {
		e->tcp->graveyard = c->hnext;
		free(c);
	}
}

/* The tree's side has nothing more for the destination (DNS streams end at the engine). */
static bool conn_flushed(const struct tcp_conn *c)
{
	if (c->dns)
		return true;
	if (c->tlsr)
		return cf_tlsrelay_sent_eof(c->tlsr);
	return cf_relay_sent_eof(&c->relay);
}

size_t cf_tcp_unflushed(const struct cf_engine *e)
{
	const struct cf_tcp_table *t = e->tcp;
	size_t n = 0;

	if (!t)
		return 0;
	for (const struct tcp_conn *c = t->relays.next; c != &t->relays; c = c->next)
		if (!conn_flushed(c))
			n++;
	return n;
}

void cf_tcp_fini(struct cf_engine *e)
{
	struct cf_tcp_table *t = e->tcp;

	if (!t)
		return;
	while (t->pending.next != &t->pending)
		conn_free(e, t->pending.next, true);
	while (t->relays.next != &t->relays) {
		struct tcp_conn *c = t->relays.next;
		uint64_t b[2] = {c->relay.dir[0].bytes, c->relay.dir[1].bytes};

		if (c->tlsr)
			cf_tlsrelay_bytes(c->tlsr, b);
		c->flow.bytes_sent = b[0];
		c->flow.bytes_received = b[1];
		cf_flow_end(e, &c->flow);
		/* The tree is gone: a destination that sent its end too sees a clean close. */
		conn_free(e, c, !conn_flushed(c));
	}
	cf_tcp_reap(e);
	cf_pipe_pool_drain(&t->pipes);
	free(t);
	e->tcp = NULL;
}

/* Answer the tree's @syn the way the network would have, for upstream error @err. */
static void answer_syn(struct cf_engine *e, const struct cf_pkt *syn, int err)
{
	struct cf_pkt copy = *syn;
	bool v4 = syn->family == AF_INET;
	uint8_t type, code;
	ssize_t n;

	switch (err) {
	case ECONNREFUSED:
		n = cf_pkt_build_tcp_rst(e->txbuf, sizeof(e->txbuf), &copy);
		goto write;
	case ENETUNREACH:
		type = v4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH;
		code = v4 ? ICMP_NET_UNREACH : ICMP6_DST_UNREACH_NOROUTE;
		break;
	case EACCES:
	case EPERM:
		type = v4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH;
		code = v4 ? ICMP_PKT_FILTERED : ICMP6_DST_UNREACH_ADMIN;
		break;
	case ETIMEDOUT:
		return; /* silence: the tree's own connect times out, as it would have */
	default:	/* EHOSTUNREACH, EHOSTDOWN, ... */
		type = v4 ? ICMP_DEST_UNREACH : ICMP6_DST_UNREACH;
		code = v4 ? ICMP_HOST_UNREACH : ICMP6_DST_UNREACH_ADDR;
		break;
	}
	n = cf_pkt_build_icmp_error(e->txbuf, sizeof(e->txbuf), syn, &syn->dst, type, code, 0);
write:
	if (n > 0)
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
}

/* Answer @c's SYN for @err, and its retransmissions alike (synmemo.h). */
static void answer_failure(struct cf_engine *e, const struct tcp_conn *c, int err)
{
	struct cf_pkt syn;

	if (cf_pkt_parse(c->syn, c->syn_len, &syn) < 0)
		return;
	cf_synmemo_add(&e->tcp->refused, &syn, err, e->now_ms);
	answer_syn(e, &syn, err);
}

static void connect_failed(struct cf_engine *e, struct tcp_conn *c, int err)
{
	e->stats.tcp_failed++;
	cf_flow_connect_result(e, &c->flow, err, NULL);
	answer_failure(e, c, err);
	conn_free(e, c, false);
}

static void connect_succeeded(struct cf_engine *e, struct tcp_conn *c)
{
	cf_flow_connect_result(e, &c->flow, 0, NULL);
	/* Nothing to hear from upstream until the relay starts: the one-shot watch is spent. */
	if (c->flow.via_proxy)
		cf_engine_rewatch(e, c->up_fd, 0, &c->w_up);
	conn_set_state(e->tcp, c, TCP_INJECTED);
	c->deadline_ms = e->now_ms + INJECTED_TIMEOUT_MS;
	cf_engine_tun_write(e, c->syn, c->syn_len);
	/*
	 * The tree's kernel usually completes the handshake while the write()
	 * above runs (tun delivery, SYN-ACK and ACK over lo in softirq): accept
	 * now rather than after another trip through epoll.
	 */
	cf_tcp_on_listener(e, c->flow.src.family == AF_INET ? e->listen4 : e->listen6);
}

static int open_upstream(struct cf_engine *e, struct tcp_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (c->flow.via_proxy) {
		ss = e->proxy_addr;
		sl = e->proxy_addr_len;
	} else {
		sl = cf_ip_to_sockaddr(&c->flow.target, c->flow.target_port, &ss);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->up_fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	cf_capview_sock_open(e->capview, &c->egs, fd, IPPROTO_TCP,
			     (struct sockaddr *)&ss); /* SYN sent */
	/*
	 * Loopback connects may complete at once; the EPOLLOUT event reports both
	 * cases. A direct connection is watched as its relay will be, so it
	 * needs no other epoll_ctl: edge-triggered, it reports its connect once,
	 * and whatever it hears before the relay starts is read then. A proxied
	 * one is one-shot: once connected the handshake re-arms it.
	 */
	return cf_engine_watch(e, fd, c->flow.via_proxy ? EPOLLOUT | EPOLLONESHOT : RELAY_EVENTS,
			       &c->w_up);
}

static struct tcp_conn *conn_new(const struct cf_pkt *syn)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->syn = malloc(syn->l3_len);
	if (!c->syn) {
		free(c);
		return NULL;
	}
	memcpy(c->syn, syn->l3, syn->l3_len);
	c->syn_len = syn->l3_len;
	c->w_up.kind = CF_W_TCP_UPSTREAM;
	c->w_child.kind = CF_W_TCP_RELAY;
	c->up_fd = c->child_fd = -1;
	c->flow.src = syn->src;
	c->flow.dst = syn->dst;
	c->flow.sport = syn->sport;
	c->flow.dport = syn->dport;
	return c;
}

/* Answer @syn with a RST at once: no connection is made for it. */
static void refuse_syn(struct cf_engine *e, const struct cf_pkt *syn)
{
	struct cf_pkt copy = *syn;
	ssize_t n = cf_pkt_build_tcp_rst(e->txbuf, sizeof(e->txbuf), &copy);

	if (n > 0)
		cf_engine_tun_write(e, e->txbuf, (size_t)n);
}

void cf_tcp_on_syn(struct cf_engine *e, const struct cf_pkt *syn)
{
	struct cf_tcp_table *t = e->tcp;
	struct tcp_conn *c = *find_slot(t, &syn->src, syn->sport, &syn->dst, syn->dport);
	int err;

	if (c) {
		/* A retransmitted SYN: absorb it while connecting, re-inject once vetted. */
		if (c->state == TCP_INJECTED)
			cf_engine_tun_write(e, c->syn, c->syn_len);
		return;
	}
	/* One that failed already: the same answer again, and no second record. */
	err = cf_synmemo_find(&t->refused, syn, e->now_ms);
	if (err) {
		answer_syn(e, syn, err);
		return;
	}
	if (t->n_pending + t->n_relay >= t->max_conns) {
		if (!t->warned_full) {
			log_warn("%zu concurrent TCP connections: the file-descriptor limit "
				 "(ulimit -n) allows no more; refusing new ones (raise the limit)",
				 t->n_pending + t->n_relay);
			t->warned_full = true;
		}
		refuse_syn(e, syn);
		return;
	}
	/* Each stream holds buffers and descriptors: a tree cannot open them without end. */
	if (syn->dport == 53 && t->n_dns >= CF_DNSSTREAM_MAX) {
		if (!t->warned_dns_full) {
			log_warn("the tree has %u DNS-over-TCP connections open at once; refusing "
				 "new ones until one closes (reported once)",
				 CF_DNSSTREAM_MAX);
			t->warned_dns_full = true;
		}
		refuse_syn(e, syn);
		return;
	}
	c = conn_new(syn);
	if (!c) {
		e->stats.packets_dropped++;
		return;
	}
	c->state = TCP_CONNECTING;
	c->deadline_ms = e->now_ms + CONNECTING_TIMEOUT_MS;
	pending_link(t, c);
	c->dns_slot = syn->dport == 53;
	t->n_dns += c->dns_slot;
	e->stats.tcp_attempts++;
	err = cf_flow_tcp_decide(e, &c->flow);
	if (err < 0) {
		/* Denied or no route by decision: the decision already answered for the log. */
		e->stats.tcp_failed++;
		answer_failure(e, c, -err);
		conn_free(e, c, false);
		return;
	}
	if (c->flow.is_dns && cf_flow_dns_local(e)) {
		connect_succeeded(e, c); /* the engine is the resolver: nothing to connect */
		return;
	}
	err = open_upstream(e, c);
	if (err < 0)
		connect_failed(e, c, -err);
}

void cf_tcp_proxy_unreachable(struct cf_engine *e, int err)
{
	if (e->proxy_warned)
		return;
	e->proxy_warned = true;
	log_error("cannot connect to the proxy %s:%u: %s (the tree's connections are refused)",
		  e->cfg->proxy.host, e->cfg->proxy.port, strerror(err));
}

/*
 * The https:// proxy's certificate was refused: every connection will fail
 * the same way, and the tree only sees them refused, so say why once, on
 * stderr and as the flow log's runtime_failure.
 */
static void proxy_cert_refused(struct cf_engine *e, const char *why)
{
	char line[768];

	if (e->proxy_tls_warned)
		return;
	e->proxy_tls_warned = true;
	snprintf(line, sizeof(line),
		 "--proxy: the TLS certificate of the proxy %s:%u was refused: %s (the tree's "
		 "connections through it fail; use --proxy-insecure to accept any certificate)",
		 e->cfg->proxy.host, e->cfg->proxy.port, why);
	log_error("%s", line);
	if (e->obs)
		cf_obs_runtime_failure(e->obs, "run", "proxy_tls_verify_failed", line);
}

/* Drive the TLS/CONNECT/SOCKS5 handshake; inject the SYN when the tunnel is up. */
static void proxy_step(struct cf_engine *e, struct tcp_conn *c)
{
	uint32_t events = 0;
	const char *why;
	int err;

	switch (cf_upstream_progress(c->up, &events)) {
	case CF_UPSTREAM_PENDING:
		cf_engine_rewatch(e, c->up_fd, events, &c->w_up);
		return;
	case CF_UPSTREAM_FAILED:
		err = cf_upstream_error(c->up, &why);
		if (cf_upstream_cert_refused(c->up))
			proxy_cert_refused(e, cf_upstream_cert_refused(c->up));
		e->stats.tcp_failed++;
		cf_flow_connect_result(e, &c->flow, err, why);
		answer_failure(e, c, err);
		conn_free(e, c, false);
		return;
	case CF_UPSTREAM_DONE:
		c->tls = cf_upstream_take_tls(c->up);
		connect_succeeded(e, c);
		return;
	}
}

static void upstream_ready(struct cf_engine *e, struct tcp_conn *c, uint32_t events)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	/* Writable without an error or hang-up is connected: only a failure needs its errno. */
	if ((events & (EPOLLERR | EPOLLHUP)) &&
	    getsockopt(c->up_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr == ECONNREFUSED)
		cf_capview_tcp_refused(&c->egs);
	else if (soerr == 0)
		cf_capview_tcp_connected(&c->egs);
	if (soerr) {
		if (c->flow.via_proxy) {
			cf_tcp_proxy_unreachable(e, soerr);
			soerr = ECONNREFUSED;
		}
		connect_failed(e, c, soerr);
		return;
	}
	if (!c->flow.via_proxy) {
		connect_succeeded(e, c);
		return;
	}
	soerr = cf_upstream_new(e, &c->flow, c->up_fd, &c->egs, &c->up);
	if (soerr < 0) {
		connect_failed(e, c, ECONNREFUSED);
		return;
	}
	conn_set_state(e->tcp, c, TCP_PROXYING);
	proxy_step(e, c);
}

static void relay_run(struct cf_engine *e, struct tcp_conn *c)
{
	enum cf_relay_state s;
	uint64_t b[2];

	if (c->dns)
		s = cf_dnsstream_progress(e, c->dns, &c->flow, c->child_fd, c->up_fd, &c->egs);
	else if (c->tlsr)
		s = cf_tlsrelay_progress(c->tlsr);
	else
		s = cf_relay_progress(&c->relay);
	set_starved(e->tcp, c, !c->dns && !c->tlsr && c->relay.starved);
	set_throttled(e, c,
		      c->tlsr	? cf_tlsrelay_throttled(c->tlsr)
		      : !c->dns ? c->relay.throttled
				: 0);

	if (s == CF_RELAY_MORE)
		ready_add(e->tcp, c); /* no event may come for what is already queued */
	if (s == CF_RELAY_ACTIVE || s == CF_RELAY_MORE)
		return;
	if (s == CF_RELAY_RESET && !c->dns && !c->tlsr && c->relay.error_side == 1 &&
	    c->relay.error == ECONNRESET)
		cf_capview_tcp_rst(&c->egs, CF_CAPVIEW_IN); /* the peer reset it */
	if (c->tlsr) {
		cf_tlsrelay_bytes(c->tlsr, b);
		c->relay.dir[0].bytes = b[0];
		c->relay.dir[1].bytes = b[1];
	}
	c->flow.bytes_sent = c->relay.dir[0].bytes;
	c->flow.bytes_received = c->relay.dir[1].bytes;
	cf_flow_end(e, &c->flow);
	conn_free(e, c, s == CF_RELAY_RESET);
}

/* Bytes the origin sent right after the proxy's reply go to the tree first. */
static int deliver_leftover(struct tcp_conn *c, int child_fd)
{
	const uint8_t *data;
	size_t n = c->up ? cf_upstream_leftover(c->up, &data) : 0;
	ssize_t w;

	if (n == 0)
		return 0;
	/* A fresh socket's send buffer holds far more than the 4 KiB this can be. */
	w = send(child_fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	cf_upstream_free(c->up);
	c->up = NULL;
	return w == (ssize_t)n ? 0 : -EIO;
}

/* The egress view's tap on the splice relay: bytes, lost bytes and FINs of the upstream socket. */
static void tap_bytes(void *arg, int dir, int fd, size_t n)
{
	struct tcp_conn *c = arg;

	if (cf_capview_tcp_data_fd(&c->egs, (enum cf_capview_dir)dir, fd, n) < 0)
		log_debug("tcp flow %llu: egress capture lost bytes",
			  (unsigned long long)c->flow.id);
}

static void tap_gap(void *arg, int dir, size_t n)
{
	struct tcp_conn *c = arg;

	log_debug("tcp flow %llu: egress capture lost %zu bytes", (unsigned long long)c->flow.id,
		  n);
	cf_capview_tcp_gap(&c->egs, (enum cf_capview_dir)dir, n);
}

static void tap_eof(void *arg, int dir)
{
	struct tcp_conn *c = arg;

	cf_capview_tcp_fin(&c->egs, (enum cf_capview_dir)dir);
}

/* Splice relay; with the egress view on, tapped on the upstream side. */
static int relay_init(struct cf_engine *e, struct tcp_conn *c, int child_fd)
{
	const struct cf_relay_tap tap = {
	    .bytes = tap_bytes, .gap = tap_gap, .eof = tap_eof, .arg = c};
	int err = cf_relay_init(&c->relay, child_fd, c->up_fd, &e->tcp->pipes), t;

	c->relay.limit[0] = cf_ratelimit_bucket(e, 0);
	c->relay.limit[1] = cf_ratelimit_bucket(e, 1);

	/* A capture problem must not cost the tree its connection: relay untapped. */
	if (err == 0 && cf_capview_sock_taps(&c->egs)) {
		t = cf_relay_set_tap(&c->relay, &tap);
		if (t < 0)
			log_warn("capture: cannot copy tcp flow %llu's bytes (%s); the egress view "
				 "misses them",
				 (unsigned long long)c->flow.id, strerror(-t));
	}
	return err;
}

static void start_relay(struct cf_engine *e, struct tcp_conn *c, int child_fd)
{
	bool watched = c->state == TCP_SNIFF; /* the child side is watched as a relay's already */
	int one = 1, err;

	pending_unlink(e->tcp, c);
	c->child_fd = child_fd;
	conn_set_state(e->tcp, c, TCP_RELAY);
	list_add(&e->tcp->relays, c);
	e->tcp->n_relay++;
	if (!e->tcp->listeners_nodelay) /* an accepted socket inherits it otherwise */
		setsockopt(child_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->relay.dir[0].pipe_r = c->relay.dir[0].pipe_w = -1;
	c->relay.dir[1].pipe_r = c->relay.dir[1].pipe_w = -1;
	err = deliver_leftover(c, child_fd);
	if (err == 0 && c->flow.is_dns)
		err = cf_dnsstream_new(&c->dns);
	else if (err == 0 && c->tls)
		err = cf_tlsrelay_new(child_fd, take_ptr(&c->tls), &c->egs, &c->tlsr);
	else if (err == 0)
		err = relay_init(e, c, child_fd);
	if (err == 0 && c->tlsr)
		cf_tlsrelay_set_limit(c->tlsr, cf_ratelimit_bucket(e, 0),
				      cf_ratelimit_bucket(e, 1));
	if (err == 0 && c->up_fd >= 0 && c->flow.via_proxy) /* a direct one is watched so already */
		err = cf_engine_rewatch(e, c->up_fd, RELAY_EVENTS, &c->w_up);
	if (err == 0 && !watched)
		err = cf_engine_watch(e, child_fd, RELAY_EVENTS, &c->w_child);
	if (err < 0) {
		if (!e->tcp->warned_relay) {
			log_warn("cannot relay a connection: %s (reported once)", strerror(-err));
			e->tcp->warned_relay = true;
		}
		/* Keep conn_free's bookkeeping right: the relay pipes may be half made. */
		conn_free(e, c, true);
		return;
	}
	relay_run(e, c);
}

/* Whether the destination has spoken first: bytes it sent wait on the upstream side. */
static bool upstream_spoke(struct tcp_conn *c)
{
	const uint8_t *data;
	uint8_t b;

	if (c->up && cf_upstream_leftover(c->up, &data) > 0)
		return true;
	/* Through a proxy the socket carries the proxy's bytes (TLS records, even): not this. */
	return !c->flow.via_proxy && c->up_fd >= 0 &&
	       recv(c->up_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/*
 * Peek at the tree's first bytes; decide when they show a name or cannot.
 * @hup: the tree's side has ended (no more bytes will come).
 */
static void sniff_step(struct cf_engine *e, struct tcp_conn *c, bool hup)
{
	char name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind kind = CF_PEEK_TLS_SNI;
	ssize_t n = recv(c->child_fd, e->tcp->peek, sizeof(e->tcp->peek), MSG_PEEK | MSG_DONTWAIT);
	enum cf_peek r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR) && !hup)
		return;
	/* Nothing more to read, an error or an end: the relay deals with it, under the address
	 * rules. */
	r = n > 0 ? cf_peek_name(e->tcp->peek, (size_t)n, name, &kind) : CF_PEEK_NONE;
	if (r == CF_PEEK_MORE && !hup)
		return;
	if (r == CF_PEEK_NAME) {
		log_debug("tcp flow %llu: %s %s", (unsigned long long)c->flow.id,
			  cf_peek_kind_name(kind), name);
		if (cf_flow_tcp_name(e, &c->flow, name, cf_peek_kind_name(kind)) < 0) {
			/* Nothing was relayed: both sides are reset, the flow ends empty. */
			cf_flow_end(e, &c->flow);
			conn_free(e, c, true);
			return;
		}
	}
	start_relay(e, c, c->child_fd);
}

/* Hold @c's relay until the name in the tree's first bytes is checked (state SNIFF). */
static void start_sniff(struct cf_engine *e, struct tcp_conn *c, int child_fd)
{
	c->child_fd = child_fd;
	conn_set_state(e->tcp, c, TCP_SNIFF);
	c->deadline_ms = e->now_ms + CF_SNIFF_TIMEOUT_MS;
	if (cf_engine_watch(e, child_fd, RELAY_EVENTS, &c->w_child) < 0) {
		conn_free(e, c, true);
		return;
	}
	if (upstream_spoke(c))
		start_relay(e, c, child_fd);
	else
		sniff_step(e, c, false);
}

static void accept_one(struct cf_engine *e, int cfd, const struct sockaddr_storage *peer)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	struct cf_ip src, dst;
	uint16_t sport, dport;
	struct tcp_conn *c;

	if (getsockname(cfd, (struct sockaddr *)&local, &ll) < 0 ||
	    cf_ip_from_sockaddr((const struct sockaddr *)peer, &src, &sport) < 0 ||
	    cf_ip_from_sockaddr((struct sockaddr *)&local, &dst, &dport) < 0) {
		abort_fd(cfd);
		return;
	}
	c = *find_slot(e->tcp, &src, sport, &dst, dport);
	if (!c || c->state != TCP_INJECTED) {
		/* Fail closed: only connections the engine vetted get through. */
		e->stats.tcp_unvetted++;
		abort_fd(cfd);
		return;
	}
	e->stats.tcp_ok++;
	if (cf_flow_tcp_names_checked(e, &c->flow))
		start_sniff(e, c, cfd);
	else
		start_relay(e, c, cfd);
}

void cf_tcp_on_listener(struct cf_engine *e, int listen_fd)
{
	/*
	 * One accept at least (whatever is queued must go, vetted or not), then
	 * as many as connections are expected: the accept() that would find the
	 * queue empty is saved, one system call per connection. Level-triggered
	 * epoll reports the listener again if more is queued.
	 */
	for (int i = 0; i < 256 && (i == 0 || e->tcp->n_injected > 0); i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int cfd =
		    accept4(listen_fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_debug("accept on the transparent listener: %s",
					  strerror(errno));
			return;
		}
		accept_one(e, cfd, &peer);
	}
}

void cf_tcp_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	struct tcp_conn *c;

	if (w->kind == CF_W_TCP_UPSTREAM) {
		c = cf_container_of(w, struct tcp_conn, w_up);
		if (c->state == TCP_DEAD)
			return;
		if (c->state == TCP_CONNECTING)
			upstream_ready(e, c, events);
		else if (c->state == TCP_PROXYING)
			proxy_step(e, c);
		else if (c->state == TCP_RELAY)
			relay_run(e, c);
		else if (c->state == TCP_SNIFF && (events & ~(uint32_t)EPOLLOUT))
			start_relay(e, c, c->child_fd); /* the destination spoke first, or ended */
		return;
	}
	c = cf_container_of(w, struct tcp_conn, w_child);
	if (c->state == TCP_RELAY)
		relay_run(e, c);
	else if (c->state == TCP_SNIFF)
		sniff_step(e, c, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
}

void cf_tcp_on_tick(struct cf_engine *e)
{
	struct cf_tcp_table *t = e->tcp;
	struct tcp_conn *c = t->pending.next, *next;

	/* Pipes given back by relays that went idle free no descriptor the engine hears of. */
	wake_starved(t);
	for (; c != &t->pending; c = next) {
		next = c->next;
		if (c->deadline_ms > e->now_ms)
			continue;
		if (c->state == TCP_CONNECTING || c->state == TCP_PROXYING)
			connect_failed(e, c, ETIMEDOUT);
		else if (c->state == TCP_SNIFF)
			start_relay(e, c, c->child_fd); /* no name in time: address rules decide */
		else
			conn_free(e, c, true);
	}
}

bool cf_tcp_has_ready(const struct cf_engine *e)
{
	const struct cf_tcp_table *t = e->tcp;

	return t && (t->ready.rnext != &t->ready || (t->wake_starved && t->n_starved > 0));
}

void cf_tcp_run_ready(struct cf_engine *e)
{
	struct cf_tcp_table *t = e->tcp;
	size_t n = 0;

	if (t->wake_starved)
		wake_starved(t);
	for (struct tcp_conn *c = t->ready.rnext; c != &t->ready; c = c->rnext)
		n++;
	/* One more turn each for those queued now; who uses it up again goes to the back. */
	while (n-- > 0 && t->ready.rnext != &t->ready) {
		struct tcp_conn *c = t->ready.rnext;

		ready_del(c);
		cf_capview_wait_room(e->capview);
		relay_run(e, c);
	}
}
