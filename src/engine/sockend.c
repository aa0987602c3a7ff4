/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation. A NETLINK_SOCK_DIAG socket that is bound (an
 * unbound one has port id 0, which multicast skips) and member of
 * SKNLGRP_INET_TCP_DESTROY and SKNLGRP_INET6_TCP_DESTROY receives, for
 * every full TCP socket of its namespace that the kernel frees, an
 * inet_diag_msg with the socket's cookie and an INET_DIAG_INFO attribute
 * (its last struct tcp_info). No capability is needed. A socket is freed
 * when it is closed and done: right after its LAST_ACK is acknowledged, or
 * when it becomes a TIME_WAIT (or orphaned FIN_WAIT2) mini-socket.
 *
 * The event names no owner (its idiag_uid is always 0), so a classic BPF
 * filter keeps what can be a switched socket: local port in the namespace's
 * ephemeral range (every switched socket's port is picked there by its
 * connect; the host's servers' accepted sockets have their service's port)
 * and a peer that is not loopback (never a switched destination). The
 * registry (cookie -> flow) decides the rest.
 *
 * Bytes, in the relay's terms (payload only). tcpi_bytes_acked counts the
 * SYN and, once acknowledged, our FIN; tcpi_bytes_received counts the
 * peer's FIN once received. Sent is what the peer acknowledged less the
 * SYN, at most the payload sent once (tcpi_bytes_sent less
 * tcpi_bytes_retrans; tcpi_bytes_sent alone counts retransmitted bytes
 * twice). Received loses the peer's FIN when our FIN was acknowledged: a
 * freed socket whose close completed (LAST_ACK, CLOSING, TIME_WAIT) had
 * the peer's FIN, and so does one the tree closed first, as TCP_LINGER2
 * (LINGER2_S) keeps that orphan a full socket in FIN_WAIT2 for 30 s until
 * the peer's FIN arrives, instead of freeing it as soon as its own FIN is
 * acknowledged (a peer silent that long: received is one short). A query
 * by cookie also reports the state, which says whether the FIN came.
 *
 * A full receive queue loses events (ENOBUFS): then every registered cookie
 * is asked for; one that no longer exists ended unseen, and gets its
 * flow_end (no bytes known) at the next tick unless its event shows up.
 */
#include "engine/sockend.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "util/cleanup.h"
#include "util/log.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define BUCKETS 4096u
#define RCVBUF (4u << 20) /* capped by net.core.rmem_max */
/*
 * TCP_LINGER2 above TCP_TIMEWAIT_LEN (60 s) keeps an orphan in FIN_WAIT2 a
 * full socket for LINGER2_S - 60 s, then a mini-socket for as long again
 * (tcp_keepalive_timer()): 90 keeps the kernel's default 60 s in all.
 */
#define LINGER2_S 90
#define FINAL_WAIT_MS 100 /* at the run's end: events of sockets a query missed */

/*
 * The start of the kernel's struct tcp_info (linux/tcp.h, which clashes with
 * glibc's netinet/tcp.h; glibc's lacks these counters): an append-only ABI.
 */
struct kinfo {
	uint8_t state;
	uint8_t u8s[7];
	uint32_t u32s[24]; /* tcpi_rto .. tcpi_total_retrans */
	uint64_t pacing_rate, max_pacing_rate;
	uint64_t bytes_acked, bytes_received;
	uint32_t u32s2[6]; /* tcpi_segs_out .. tcpi_data_segs_out */
	uint64_t u64s[4];  /* tcpi_delivery_rate .. tcpi_sndbuf_limited */
	uint32_t delivered, delivered_ce;
	uint64_t bytes_sent, bytes_retrans;
};

_Static_assert(offsetof(struct kinfo, bytes_acked) == 120 &&
		   offsetof(struct kinfo, bytes_sent) == 200 && sizeof(struct kinfo) == 216,
	       "struct tcp_info's layout");

struct reg {
	uint64_t cookie;
	struct cf_ip local, peer; /* the host socket's own ends (peer: a proxy's, for a tunnel) */
	uint16_t lport, pport;
	uint64_t skip_out, skip_in; /* a proxy handshake's bytes, not the flow's */
	bool gone;		    /* a query found no socket: its event was lost in an overrun */
	struct cf_flow f;
	struct reg *next;
};

/* A non-blocking tree connect() still under way, whose connect_result waits for its end. */
struct conn {
	struct cf_watch w;
	int fd; /* the engine's own descriptor of the socket the tree holds */
	struct cf_flow f;
	struct conn *next;
};

struct cf_sockend {
	struct cf_watch w;
	struct conn *conns;
	int events;		   /* the destroy groups' member */
	int query;		   /* requests by cookie */
	uint32_t port_lo, port_hi; /* what the filter lets through */
	bool filtered;
	bool overrun_said;
	size_t n;
	uint64_t lost; /* flows ended without their socket's last counters */
	struct reg *buckets[BUCKETS];
	uint8_t buf[16384] __attribute__((aligned(8)));
};

/* Where the filter looks: the message starts with its nlmsghdr. */
#define OFF_MSG NLMSG_LENGTH(0)
#define OFF_FAMILY (OFF_MSG + offsetof(struct inet_diag_msg, idiag_family))
#define OFF_SPORT (OFF_MSG + offsetof(struct inet_diag_msg, id.idiag_sport))
#define OFF_DST (OFF_MSG + offsetof(struct inet_diag_msg, id.idiag_dst))

_Static_assert(OFF_FAMILY == 16 && OFF_SPORT == 20 && OFF_DST == 40,
	       "inet_diag_msg layout as the kernel sends it");

static struct reg **slot(struct cf_sockend *s, uint64_t cookie)
{
	struct reg **p = &s->buckets[(cookie * 11400714819323198485ull) >> 52];

	while (*p && (*p)->cookie != cookie)
		p = &(*p)->next;
	return p;
}

/*
 * Keep messages of sockets whose local port is in [lo, hi] and whose peer
 * is not 127.0.0.0/8 or ::1; drop everything else.
 */
static int attach_filter(int fd, uint32_t lo, uint32_t hi)
{
	struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, OFF_SPORT), /* host order: a port number */
	    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, lo, 0, 13),
	    BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, hi, 12, 0),
	    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, OFF_FAMILY),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 2, 0),
	    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, OFF_DST), /* v4: the first byte */
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 127, 8, 9),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OFF_DST), /* v6: ::1, word by word */
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 7),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OFF_DST + 4),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 5),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OFF_DST + 8),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, OFF_DST + 12),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, 0),	    /* drop */
	    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* keep */
	};
	struct sock_fprog prog = {.len = CF_ARRAY_SIZE(code), .filter = code};

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

/* The namespace's ephemeral port range, which connect() picks local ports from. */
static int port_range(uint32_t *lo, uint32_t *hi)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned a, b;
	int n;

	if (!f)
		return -errno;
	n = fscanf(f, "%u %u", &a, &b);
	fclose(f);
	if (n != 2 || a > b || b > 65535)
		return -EINVAL;
	*lo = a;
	*hi = b;
	return 0;
}

static int open_events(struct cf_sockend *s)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int groups[] = {SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY};
	int size = RCVBUF;

	s->events =
	    socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s->events < 0)
		return -errno;
	(void)setsockopt(s->events, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	/* Before the groups: nothing unfiltered is ever queued. */
	if (port_range(&s->port_lo, &s->port_hi) == 0 &&
	    attach_filter(s->events, s->port_lo, s->port_hi) == 0)
		s->filtered = true;
	if (bind(s->events, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (size_t i = 0; i < CF_ARRAY_SIZE(groups); i++)
		if (setsockopt(s->events, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i],
			       sizeof(groups[i])) < 0)
			return -errno;
	return 0;
}

int cf_sockend_open(struct cf_engine *e)
{
	struct cf_sockend *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->w.kind = CF_W_SOCKEND;
	s->query = -1;
	e->sockend = s;
	r = open_events(s);
	if (r == 0) {
		s->query = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		if (s->query < 0)
			r = -errno;
	}
	if (r == 0)
		r = cf_engine_watch(e, s->events, EPOLLIN, &s->w);
	if (r < 0) {
		if (s->events >= 0)
			close(s->events);
		if (s->query >= 0)
			close(s->query);
		free(s);
		e->sockend = NULL;
	}
	return r;
}

static int get_info(int fd, struct kinfo *ti)
{
	socklen_t l = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &l) < 0 ? -errno : 0;
}

/*
 * Why @c's connect failed, without reading SO_ERROR (which would take the
 * error from the tree): a reset was a segment received; an ICMP error set
 * the error while the socket still retries its SYN (the kernel keeps it
 * in SYN_SENT), or ended it before its SYN retries ran out (its kind is
 * not known here: host unreachable, the most common); else the SYNs went
 * unanswered.
 */
static int conn_errno(const struct conn *c, const struct kinfo *ti)
{
	int syncnt = 0;
	socklen_t l = sizeof(syncnt);

	if (ti->u32s2[1]) /* tcpi_segs_in */
		return ECONNREFUSED;
	if (ti->state == TCP_SYN_SENT)
		return EHOSTUNREACH;
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_SYNCNT, &syncnt, &l) == 0 &&
	    ti->u8s[1] /* tcpi_retransmits */ < syncnt)
		return EHOSTUNREACH;
	return ETIMEDOUT;
}

static void conn_free(struct cf_engine *e, struct conn *c)
{
	struct cf_sockend *s = e->sockend;

	for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/*
 * @c's socket is writable or has an error (@events): its connect_result, and
 * its registration. The error itself stays for the tree to read.
 */
static void conn_done(struct cf_engine *e, struct conn *c, uint32_t events)
{
	struct kinfo ti;
	int err = get_info(c->fd, &ti);
	bool connecting = err == 0 && (ti.state == TCP_SYN_SENT || ti.state == TCP_SYN_RECV);

	if (connecting && !(events & EPOLLERR) &&
	    cf_engine_rewatch(e, c->fd, EPOLLOUT | EPOLLONESHOT, &c->w) == 0)
		return; /* not yet */
	/* Connected once the SYN was acknowledged, whatever happened since. */
	if (err == 0 && (connecting || ti.state == TCP_CLOSE) && !ti.bytes_acked)
		err = conn_errno(c, &ti);
	else
		err = err < 0 ? -err : 0;
	if (err)
		e->stats.tcp_failed++;
	else
		e->stats.tcp_ok++;
	cf_flow_connect_result(e, &c->f, err, NULL);
	if (!err)
		cf_sockend_add(e, c->fd, &c->f);
	conn_free(e, c);
}

bool cf_sockend_connecting(struct cf_engine *e, int host, const struct cf_flow *f)
{
	struct cf_sockend *s = e->sockend;
	struct conn *c;

	if (!s)
		return false;
	c = calloc(1, sizeof(*c));
	if (!c)
		return false;
	c->w.kind = CF_W_SOCKEND_CONN;
	c->f = *f;
	c->fd = fcntl(host, F_DUPFD_CLOEXEC, 0);
	if (c->fd < 0 || cf_engine_watch(e, c->fd, EPOLLOUT | EPOLLONESHOT, &c->w) < 0) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return false;
	}
	c->next = s->conns;
	s->conns = c;
	return true;
}

void cf_sockend_on_conn(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	conn_done(e, cf_container_of(w, struct conn, w), events);
}

/* A port the filter would drop (the range was changed since): widen it. */
static void cover_port(struct cf_sockend *s, uint16_t port)
{
	uint32_t lo = s->port_lo < port ? s->port_lo : port;
	uint32_t hi = s->port_hi > port ? s->port_hi : port;

	if (!s->filtered || (lo == s->port_lo && hi == s->port_hi))
		return;
	if (attach_filter(s->events, lo, hi) == 0) {
		s->port_lo = lo;
		s->port_hi = hi;
	} else if (setsockopt(s->events, SOL_SOCKET, SO_DETACH_FILTER, NULL, 0) == 0) {
		s->filtered = false;
	}
}

void cf_sockend_add(struct cf_engine *e, int host, const struct cf_flow *f)
{
	cf_sockend_add_tunnel(e, host, f, &f->target, f->target_port, 0, 0);
}

void cf_sockend_add_tunnel(struct cf_engine *e, int host, const struct cf_flow *f,
			   const struct cf_ip *peer, uint16_t pport, uint64_t skip_out,
			   uint64_t skip_in)
{
	struct cf_sockend *s = e->sockend;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint64_t cookie;
	socklen_t cl = sizeof(cookie);
	int linger2 = LINGER2_S;
	struct reg *g;

	if (!s)
		return;
	g = calloc(1, sizeof(*g));
	if (!g || getsockopt(host, SOL_SOCKET, SO_COOKIE, &cookie, &cl) < 0 ||
	    getsockname(host, (struct sockaddr *)&ss, &sl) < 0 ||
	    cf_ip_from_sockaddr((struct sockaddr *)&ss, &g->local, &g->lport) < 0) {
		struct cf_flow now = *f;

		free(g);
		s->lost++;
		/* Never a flow without its end: now, without bytes. */
		log_debug("flow %llu: cannot follow its switched socket: flow_end now, without "
			  "bytes",
			  (unsigned long long)f->id);
		cf_flow_end(e, &now);
		return;
	}
	(void)setsockopt(host, IPPROTO_TCP, TCP_LINGER2, &linger2, sizeof(linger2));
	cover_port(s, g->lport);
	g->cookie = cookie;
	g->peer = *peer;
	g->pport = pport;
	g->skip_out = skip_out;
	g->skip_in = skip_in;
	g->f = *f;
	g->next = NULL;
	*slot(s, cookie) = g;
	s->n++;
}

/*
 * @ti's bytes as the relay counts them (see the theory above); @fin_in:
 * whether the peer's FIN was received, -1 when the state does not say.
 */
static void fill_bytes(struct cf_flow *f, const struct kinfo *ti, int fin_in)
{
	uint64_t once = ti->bytes_sent -
			(ti->bytes_retrans < ti->bytes_sent ? ti->bytes_retrans : ti->bytes_sent);
	uint64_t acked = ti->bytes_acked ? ti->bytes_acked - 1 : 0; /* the SYN */

	f->bytes_sent = acked < once ? acked : once;
	if (fin_in < 0)
		fin_in = acked > once; /* our FIN was acknowledged */
	f->bytes_received = ti->bytes_received - (fin_in && ti->bytes_received ? 1 : 0);
}

/* End @g's flow (@ti NULL: its counters are unknown) and forget it. */
static void end_reg(struct cf_engine *e, struct reg *g, const struct kinfo *ti, int fin_in)
{
	struct cf_sockend *s = e->sockend;
	struct reg **p = slot(s, g->cookie);

	if (ti) {
		fill_bytes(&g->f, ti, fin_in);
		g->f.bytes_sent -= g->f.bytes_sent < g->skip_out ? g->f.bytes_sent : g->skip_out;
		g->f.bytes_received -=
		    g->f.bytes_received < g->skip_in ? g->f.bytes_received : g->skip_in;
	} else {
		s->lost++;
		log_debug("flow %llu: its switched socket ended unseen (events lost): flow_end "
			  "without bytes",
			  (unsigned long long)g->f.id);
	}
	cf_flow_end(e, &g->f);
	*p = g->next;
	s->n--;
	free(g);
}

/* The tcp_info of a message, zero-padded to this build's size; false if it has none. */
static bool msg_info(const struct nlmsghdr *h, struct kinfo *ti)
{
	const struct nlattr *a;
	const char *tail;

	memset(ti, 0, sizeof(*ti));
	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return false;
	a = mnl_nlmsg_get_payload_offset(h, sizeof(struct inet_diag_msg));
	tail = mnl_nlmsg_get_payload_tail(h);
	for (; mnl_attr_ok(a, (int)(tail - (const char *)a)); a = mnl_attr_next(a)) {
		size_t n = mnl_attr_get_payload_len(a);

		if (mnl_attr_get_type(a) != INET_DIAG_INFO)
			continue;
		memcpy(ti, mnl_attr_get_payload(a), n < sizeof(*ti) ? n : sizeof(*ti));
		return true;
	}
	return false;
}

static uint64_t msg_cookie(const struct inet_diag_msg *m)
{
	return (uint64_t)m->id.idiag_cookie[1] << 32 | m->id.idiag_cookie[0];
}

static void on_event(struct cf_engine *e, const struct nlmsghdr *h)
{
	struct kinfo ti;
	struct reg *g;

	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return;
	g = *slot(e->sockend, msg_cookie(NLMSG_DATA(h)));
	if (g)
		end_reg(e, g, msg_info(h, &ti) ? &ti : NULL, -1);
}

/* Whether the peer's FIN was received, by the state a query reports (-1: cannot say). */
static int fin_by_state(uint8_t state)
{
	switch (state) {
	case TCP_CLOSE_WAIT:
	case TCP_LAST_ACK:
	case TCP_CLOSING:
	case TCP_TIME_WAIT:
		return 1;
	case TCP_CLOSE:
		return -1;
	default:
		return 0;
	}
}

/*
 * Ask for @g's socket. Return 1 with @ti and @fin_in filled, 0 when it no
 * longer exists, -errno when the kernel could not say.
 */
static int query(struct cf_sockend *s, const struct reg *g, struct kinfo *ti, int *fin_in)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg;
	struct nlmsghdr *h = (struct nlmsghdr *)(void *)s->buf;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST;
	msg.req.sdiag_family = g->local.family;
	msg.req.sdiag_protocol = IPPROTO_TCP;
	msg.req.idiag_ext = 1u << (INET_DIAG_INFO - 1);
	msg.req.idiag_states = ~0u;
	msg.req.id.idiag_sport = htons(g->lport);
	msg.req.id.idiag_dport = htons(g->pport);
	memcpy(msg.req.id.idiag_src, g->local.b, g->local.family == AF_INET ? 4 : 16);
	memcpy(msg.req.id.idiag_dst, g->peer.b, g->peer.family == AF_INET ? 4 : 16);
	msg.req.id.idiag_cookie[0] = (uint32_t)g->cookie;
	msg.req.id.idiag_cookie[1] = (uint32_t)(g->cookie >> 32);
	if (send(s->query, &msg, sizeof(msg), 0) < 0)
		return -errno;
	n = recv(s->query, s->buf, sizeof(s->buf), 0);
	if (n < 0)
		return -errno;
	if (!mnl_nlmsg_ok(h, (int)n))
		return -EIO;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *err = NLMSG_DATA(h);

		return err->error == -ENOENT || err->error == -ESTALE ? 0 : err->error;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)) ||
	    msg_cookie(NLMSG_DATA(h)) != g->cookie)
		return -EIO;
	/* A TIME_WAIT (or FIN_WAIT2) mini-socket keeps the cookie: the full one was freed. */
	if (!msg_info(h, ti))
		return 0;
	*fin_in = fin_by_state(((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_state);
	return 1;
}

/* Events were lost: the registered sockets that no longer exist ended unseen. */
static void reconcile(struct cf_engine *e)
{
	struct cf_sockend *s = e->sockend;
	struct kinfo ti;
	int fin_in;

	for (size_t i = 0; i < BUCKETS; i++)
		for (struct reg *g = s->buckets[i]; g; g = g->next)
			if (!g->gone && query(s, g, &ti, &fin_in) == 0)
				g->gone = true;
}

/* Read every queued event; return whether some were lost. */
static bool drain(struct cf_engine *e)
{
	struct cf_sockend *s = e->sockend;
	bool lost = false;

	for (;;) {
		ssize_t n = recv(s->events, s->buf, sizeof(s->buf), MSG_DONTWAIT);
		int left;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			lost = true;
			continue;
		}
		if (n <= 0)
			break;
		left = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)s->buf; mnl_nlmsg_ok(h, left);
		     h = mnl_nlmsg_next(h, &left))
			on_event(e, h);
	}
	if (lost && !s->overrun_said) {
		s->overrun_said = true;
		log_debug("sockend: destroy events were lost (the engine fell behind); asking "
			  "for each switched socket instead");
	}
	return lost;
}

void cf_sockend_on_readable(struct cf_engine *e)
{
	if (e->sockend && drain(e))
		reconcile(e);
}

/* End every flow a reconcile found gone whose event did not come since. */
static void end_gone(struct cf_engine *e)
{
	struct cf_sockend *s = e->sockend;

	for (size_t i = 0; i < BUCKETS; i++) {
		struct reg *g = s->buckets[i], *next;

		for (; g; g = next) {
			next = g->next;
			if (g->gone)
				end_reg(e, g, NULL, -1);
		}
	}
}

void cf_sockend_on_tick(struct cf_engine *e)
{
	if (!e->sockend)
		return;
	/* Events queued since the reconcile first: they carry the counters. */
	if (drain(e))
		reconcile(e);
	else
		end_gone(e);
}

void cf_sockend_finish(struct cf_engine *e)
{
	struct cf_sockend *s = e->sockend;
	struct pollfd p;
	bool missing = false;
	struct kinfo ti;
	int fin_in;

	if (!s)
		return;
	/* Connects still under way end unresolved, as the relay's do. */
	while (s->conns)
		conn_free(e, s->conns);
	(void)drain(e);
	for (size_t i = 0; i < BUCKETS; i++) {
		struct reg *g = s->buckets[i], *next;

		for (; g; g = next) {
			next = g->next;
			if (query(s, g, &ti, &fin_in) == 1) {
				log_debug("flow %llu: its switched socket is still open (state %u)",
					  (unsigned long long)g->f.id, ti.state);
				end_reg(e, g, &ti, fin_in);
			} else {
				missing = g->gone = true;
			}
		}
	}
	/* Freed between the drain and its query: the event is on its way. */
	p = (struct pollfd){.fd = s->events, .events = POLLIN};
	if (missing && poll(&p, 1, FINAL_WAIT_MS) > 0)
		(void)drain(e);
	end_gone(e);
	if (s->lost)
		log_debug("sockend: %llu switched flow(s) ended without their last counters",
			  (unsigned long long)s->lost);
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->events, NULL);
	close(s->events);
	close(s->query);
	free(s);
	e->sockend = NULL;
}
