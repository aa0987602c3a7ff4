/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation. Every connect() of the tree stops in the kernel and
 * reaches the engine as a notification on the listener. The engine decides
 * on its OWN copy of everything (the address read once with
 * process_vm_readv, the socket taken with pidfd_getfd): the tree may change
 * its memory or its fd table meanwhile, but what is connected is the
 * engine's socket to the address the engine vetted, and SETFD replaces
 * whatever the tree has at that fd number by then.
 *
 *   Switch    an AF_INET/AF_INET6 TCP socket of the tree's own network
 *             namespace, unbound, not connected, with no SO_SNDTIMEO on a
 *             blocking socket and no TCP_FASTOPEN_CONNECT, to an address
 *             that leaves through tun0 (never loopback, unspecified,
 *             v4-mapped or -compatible, link-local, multicast, broadcast,
 *             the sandbox's own addresses or host.childflow.internal) and a
 *             port other than 0 and 53: cf_flow_tcp_decide() as on the relay
 *             path; a denial answers the errno the relay path's ICMP or RST
 *             gives the tree's kernel. Allowed: a host socket of the same
 *             family, some options copied (copy_options()), connected
 *             non-blockingly; a non-blocking tree socket gets it at once
 *             with EINPROGRESS (or 0), a blocking one when the connect
 *             completed (0, or its errno; at once when it completed inside
 *             the engine's connect(), as it usually has on the host's own
 *             paths).
 *             Through an http:// or socks5:// proxy (the flow's via_proxy)
 *             the host socket connects to the proxy and the engine runs the
 *             relay's handshake (upstream.c) in its loop, reading nothing
 *             past the reply; the tree gets the socket only with the tunnel
 *             open, so every tree connect waits for it (a non-blocking one
 *             returns 0, not EINPROGRESS), bounded by the tree's SYN retries.
 *   Continue  everything else (SECCOMP_USER_NOTIF_FLAG_CONTINUE): the
 *             tree's kernel runs the call, and a TCP connect then takes
 *             the relay, which applies the policy itself. CONTINUE is never
 *             the answer to anything allowed only because it was checked.
 *
 * A nested childflow's tree is in another network namespace (the netns
 * check): its connects continue, its own engine relays them, and that
 * engine's connects are switched here under this run's policy.
 */
#include "engine/switch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dns/synth.h"
#include "engine/attrib.h"
#include "engine/ctx.h"
#include "engine/flows.h"
#include "engine/sockend.h"
#include "engine/treetask.h"
#include "engine/tcp.h"
#include "engine/upstream.h"
#include "sandbox/connfilter.h"
#include "util/cleanup.h"
#include "util/log.h"

/*
 * Blocking connects waiting for their host connect at once; more new ones
 * continue to the relay (a restarted one gets EALREADY).
 */
#define PENDING_MAX 4096

struct pending {
	struct cf_watch w;
	struct pending *next;
	uint64_t id; /* the notification */
	int host;    /* the engine's reference to the socket the tree holds, connecting */
	bool dead;   /* answered or abandoned: freed after the epoll batch */
	struct cf_flow flow;
	/*
	 * Through a proxy (flow.via_proxy): @host is the engine's alone, connecting
	 * to the proxy, then (@up) in its handshake; the tree gets it only after.
	 */
	struct cf_upstream *up;
	struct cf_capview_sock egs; /* never recording: a capture keeps the relay */
	uint64_t deadline_ms;
	int tree_fd, domain;
	uint32_t fd_flags;
	bool nonblock;
	/*
	 * A blocking connect of a socket with SO_SNDTIMEO (not through a proxy):
	 * answered with this errno at @deadline_ms if still under way, as the
	 * kernel's call gives up then (EINPROGRESS; EALREADY for a restarted one).
	 */
	int timeout_err;
};

/* What a new host socket has, so that copy_options() sets only what differs. */
struct host_defaults {
	int keepidle, keepintvl, keepcnt, syncnt; /* -1: unknown, always set */
	char cc[16];				  /* congestion control; "": unknown */
};

struct cf_switch {
	int listener;
	struct cf_watch w;
	dev_t ns_dev, host_dev; /* the tree's network namespace, and the engine's */
	ino_t ns_ino, host_ino;
	bool cookies;			 /* namespaces named by SO_NETNS_COOKIE (Linux 5.14) */
	uint64_t ns_cookie, host_cookie; /* then these, else dev/ino */
	struct host_defaults hd;
	struct cf_treetasks *tasks;
	/* switch nothing: the tree's namespace could not be named, records need the relay,
	 * or Landlock cannot keep host sockets safe in the tree */
	bool continue_all;
	bool landlock; /* the tree's kernel binds TCP sockets to port 0 only: the engine binds */
	struct pending *pending, *dead;
	size_t n_pending;
	uint64_t switched, continued;
	uint64_t proxied;  /* taken through the proxy's handshake, whatever the outcome */
	uint64_t emulated; /* TCP connects of the tree's namespace the engine made for it */
};

/* What the tree's socket is, as far as the decision goes. */
struct tree_sock {
	int domain;
	bool nonblock;
	uint32_t fd_flags; /* O_CLOEXEC for ADDFD */
};

static int notif_send(int listener, uint64_t id, int err, uint32_t flags)
{
	struct seccomp_notif_resp resp;

	memset(&resp, 0, sizeof(resp));
	resp.id = id;
	resp.error = err;
	resp.flags = flags;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0)
		return -errno; /* ENOENT: the call was interrupted, nobody waits for the answer */
	return 0;
}

static void notif_continue(struct cf_switch *s, uint64_t id)
{
	s->continued++;
	(void)notif_send(s->listener, id, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

static bool notif_valid(const struct cf_switch *s, uint64_t id)
{
	return ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

enum sock_ns { NS_HOST, NS_TREE, NS_OTHER, NS_NOT_A_SOCKET };

static int netns_cookie(int sock, uint64_t *cookie)
{
	socklen_t l = sizeof(*cookie);

	return getsockopt(sock, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &l) < 0 ? -errno : 0;
}

/* The socket's network namespace as dev/inode; -errno when the kernel does not say. */
static int sock_netns(int sock, dev_t *dev, ino_t *ino)
{
	cleanup_fd int ns = ioctl(sock, SIOCGSKNS);
	struct stat st;

	if (ns < 0 || fstat(ns, &st) < 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/*
 * Whose namespace @sock is of: the host's (a socket this engine switched
 * before; also when the kernel does not say), the tree's, or another (a
 * nested sandbox's); or whether it is no socket at all. One getsockopt
 * where SO_NETNS_COOKIE exists (ENOTSOCK tells the rest); else fstat and
 * SIOCGSKNS, which a rootless engine cannot use on the host's sockets.
 */
static enum sock_ns sock_ns(const struct cf_switch *s, int sock)
{
	uint64_t cookie;
	struct stat st;
	dev_t dev;
	ino_t ino;
	int r;

	if (s->cookies) {
		r = netns_cookie(sock, &cookie);
		if (r == -ENOTSOCK)
			return NS_NOT_A_SOCKET;
		if (r < 0 || cookie == s->host_cookie)
			return NS_HOST;
		return cookie == s->ns_cookie ? NS_TREE : NS_OTHER;
	}
	if (fstat(sock, &st) == 0 && !S_ISSOCK(st.st_mode))
		return NS_NOT_A_SOCKET;
	if (sock_netns(sock, &dev, &ino) < 0 || (dev == s->host_dev && ino == s->host_ino))
		return NS_HOST;
	return dev == s->ns_dev && ino == s->ns_ino ? NS_TREE : NS_OTHER;
}

/*
 * Whether a tree socket of @domain can reach the proxy from the host: of its
 * family, or an AF_INET6 socket with the proxy's IPv4 address v4-mapped. An
 * AF_INET socket cannot name an IPv6 proxy: the relay serves it.
 */
static bool proxy_fits(const struct cf_engine *e, int domain)
{
	enum cf_proxy_scheme scheme = e->cfg->proxy.scheme;
	int fam = e->proxy_addr.ss_family;

	if (scheme == CF_PROXY_NONE)
		return true;
	if ((scheme != CF_PROXY_HTTP && scheme != CF_PROXY_SOCKS5) || !e->proxy_addr_len)
		return false; /* https://: TLS ends in the engine, the relay carries it */
	return fam == domain || (domain == AF_INET6 && fam == AF_INET);
}

/* Destinations that do not leave through tun0, or that the relay must see. */
static bool leaves_through_tun(const struct cf_engine *e, const struct cf_ip *ip, uint16_t port)
{
	static const uint8_t zero[12];
	const struct cf_plan *p = &e->plan;
	const uint8_t *b = ip->b;

	if (port == 0 || port == 53)
		return false;
	if (ip->family == AF_INET) {
		if (b[0] == 0 || b[0] == 127 || (b[0] == 169 && b[1] == 254) || b[0] >= 224)
			return false;
	} else {
		/* ::/96 holds :: and ::1 and the v4-compatible; ::ffff:0:0/96 the v4-mapped. */
		if (memcmp(b, zero, 10) == 0 &&
		    (memcmp(b + 10, zero, 2) == 0 || (b[10] == 0xff && b[11] == 0xff)))
			return false;
		if (b[0] == 0xff || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
			return false;
	}
	if (cf_ip_equal(ip, &p->child4) || cf_ip_equal(ip, &p->gateway4) ||
	    cf_ip_equal(ip, &p->child6) || cf_ip_equal(ip, &p->gateway6) ||
	    cf_ip_equal(ip, &p->host4) || cf_ip_equal(ip, &p->host6))
		return false;
	/* A stand-in (--proxy-remote-dns) leaves as its name, through the proxy. */
	return !(e->synth && cf_synth_contains(ip)) ||
	       (e->cfg->proxy.scheme != CF_PROXY_NONE && proxy_fits(e, ip->family));
}

/* The caller's sockaddr, as many bytes as it said (the kernel's bounds); 0 or -errno. */
static int read_sockaddr(const struct seccomp_notif *req, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	struct iovec local, remote;

	if (req->data.args[2] > sizeof(*ss))
		return -EINVAL; /* a negative int too, as move_addr_to_kernel() says */
	*len = (socklen_t)req->data.args[2];
	memset(ss, 0, sizeof(*ss));
	if (*len == 0)
		return 0;
	local = (struct iovec){.iov_base = ss, .iov_len = *len};
	remote = (struct iovec){.iov_base = (void *)(uintptr_t)req->data.args[1], .iov_len = *len};
	if (process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0) != (ssize_t)*len)
		return -EFAULT;
	return 0;
}

/* The destination in @ss (@len bytes, the tree's), or -EINVAL where the kernel would refuse it. */
static int parse_dest(const struct sockaddr_storage *ss, socklen_t len, struct cf_ip *ip,
		      uint16_t *port)
{
	if (len < sizeof(sa_family_t))
		return -EINVAL;
	if (ss->ss_family == AF_INET && len < sizeof(struct sockaddr_in))
		return -EINVAL;
	if (ss->ss_family == AF_INET6 &&
	    (len < sizeof(struct sockaddr_in6) || ((const struct sockaddr_in6 *)ss)->sin6_scope_id))
		return -EINVAL;
	return cf_ip_from_sockaddr((const struct sockaddr *)ss, ip, port);
}

/* The engine's copy of the tree's address, or -errno: the tree's kernel will judge it. */
static int read_dest(const struct seccomp_notif *req, struct cf_ip *ip, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int r = read_sockaddr(req, &ss, &len);

	return r < 0 ? r : parse_dest(&ss, len, ip, port);
}

static int int_opt(int fd, int level, int name, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return getsockopt(fd, level, name, v, &l) < 0 ? -errno : 0;
}

/*
 * Whether the tree's socket @sock (the engine's copy of its fd, of the
 * tree's network namespace) can be switched: see the theory above. Fills @ts.
 */
static bool switchable(int sock, struct tree_sock *ts)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct tcp_info ti;
	socklen_t til = sizeof(ti);
	struct timeval tv;
	socklen_t tvl = sizeof(tv);
	int proto, fastopen, fl;
	struct cf_ip ip;
	uint16_t port;

	/* The local address's family is the socket's domain: one call fewer per connect. */
	if (getsockname(sock, (struct sockaddr *)&ss, &sl) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return false;
	ts->domain = ss.ss_family;
	/*
	 * TCP: an AF_INET/AF_INET6 socket of protocol IPPROTO_TCP is a stream,
	 * or a raw one, which TCP_INFO below refuses (ENOPROTOOPT).
	 */
	if (int_opt(sock, SOL_SOCKET, SO_PROTOCOL, &proto) < 0 || proto != IPPROTO_TCP)
		return false;
	/* Unbound (or the wildcard with port 0) and never connected. */
	if (cf_ip_from_sockaddr((struct sockaddr *)&ss, &ip, &port) < 0 || port != 0)
		return false;
	for (size_t i = 0; i < 16; i++)
		if (ip.b[i])
			return false;
	if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &til) < 0 || ti.tcpi_state != TCP_CLOSE)
		return false;
	fl = fcntl(sock, F_GETFL);
	if (fl < 0)
		return false;
	ts->nonblock = fl & O_NONBLOCK;
	/* A blocking connect with a send timeout ends early with EINPROGRESS: the relay's. */
	if (!ts->nonblock &&
	    (getsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, &tvl) < 0 || tv.tv_sec || tv.tv_usec))
		return false;
	if (int_opt(sock, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &fastopen) == 0 && fastopen)
		return false;
	return true;
}

/* Copy an int option unless the tree's value is @same, what a new host socket has already. */
static void copy_int(int from, int to, int level, int name, int same)
{
	int v;

	if (int_opt(from, level, name, &v) == 0 && v != same)
		(void)setsockopt(to, level, name, &v, sizeof(v));
}

/*
 * The options a program sets before connect() that change the connection:
 * TCP_NODELAY, keepalive and its timers, TCP_USER_TIMEOUT, TCP_SYNCNT
 * (the tree's SYN retries: its connect timeout), IP_TOS /
 * IPV6_TCLASS, SO_LINGER, SO_PRIORITY, the receive and send timeouts and
 * TCP_CONGESTION (when the host lets this user pick it). Buffer sizes are
 * not copied: the tree's defaults would lock the host socket's sizes and
 * end the kernel's autotuning. Each copy is best effort: the kernel's
 * defaults stand where it refuses one.
 */
static void copy_options(int from, int to, int domain, const struct host_defaults *hd)
{
	struct linger lg;
	struct timeval tv;
	char cc[16];
	socklen_t l;

	copy_int(from, to, IPPROTO_TCP, TCP_NODELAY, 0);
	copy_int(from, to, SOL_SOCKET, SO_KEEPALIVE, 0);
	copy_int(from, to, IPPROTO_TCP, TCP_KEEPIDLE, hd->keepidle);
	copy_int(from, to, IPPROTO_TCP, TCP_KEEPINTVL, hd->keepintvl);
	copy_int(from, to, IPPROTO_TCP, TCP_KEEPCNT, hd->keepcnt);
	copy_int(from, to, IPPROTO_TCP, TCP_USER_TIMEOUT, 0);
	copy_int(from, to, IPPROTO_TCP, TCP_SYNCNT, hd->syncnt);
	copy_int(from, to, SOL_SOCKET, SO_PRIORITY, 0);
	if (domain == AF_INET)
		copy_int(from, to, IPPROTO_IP, IP_TOS, 0);
	else
		copy_int(from, to, IPPROTO_IPV6, IPV6_TCLASS, 0);
	l = sizeof(lg);
	if (getsockopt(from, SOL_SOCKET, SO_LINGER, &lg, &l) == 0 && lg.l_onoff)
		(void)setsockopt(to, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	l = sizeof(tv);
	if (getsockopt(from, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) == 0 && (tv.tv_sec || tv.tv_usec))
		(void)setsockopt(to, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	l = sizeof(tv);
	if (getsockopt(from, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) == 0 && (tv.tv_sec || tv.tv_usec))
		(void)setsockopt(to, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	l = sizeof(cc);
	memset(cc, 0, sizeof(cc));
	/* Set only when it differs from what a new host socket gets (set is slow). */
	if (getsockopt(from, IPPROTO_TCP, TCP_CONGESTION, cc, &l) == 0 &&
	    strncmp(cc, hd->cc, sizeof(cc)) != 0)
		(void)setsockopt(to, IPPROTO_TCP, TCP_CONGESTION, cc,
				 (socklen_t)strnlen(cc, sizeof(cc)));
}

/*
 * The errno the tree's kernel reports for the relay path's answer to a
 * refused flow (tcp.c answer_failure()): a RST, or an ICMP error whose code
 * the kernel maps (icmp_err_convert, icmpv6_err_convert).
 */
static int relay_errno(int err, int family)
{
	switch (err) {
	case ECONNREFUSED:
	case ENETUNREACH:
	case ETIMEDOUT:
		return err;
	case EACCES:
	case EPERM:
		/* v4: "packet filtered" is EHOSTUNREACH; v6: "administratively prohibited" EACCES
		 */
		return family == AF_INET ? EHOSTUNREACH : EACCES;
	default:
		return EHOSTUNREACH;
	}
}

/* Put @host in place of the tree's fd (SETFD; the answer comes separately). Return 0 or -errno. */
static int install(struct cf_switch *s, uint64_t id, int host, int tree_fd, uint32_t fd_flags)
{
	struct seccomp_notif_addfd add;

	memset(&add, 0, sizeof(add));
	add.id = id;
	add.flags = SECCOMP_ADDFD_FLAG_SETFD;
	add.srcfd = (uint32_t)host;
	add.newfd = (uint32_t)tree_fd;
	add.newfd_flags = fd_flags;
	/* Not ADDFD_FLAG_SEND: that would make connect() return the fd number. */
	if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0)
		return -errno; /* ENOENT: the call was interrupted before */
	s->switched++;
	return 0;
}

/*
 * Stop waiting for @p: unwatched and unlinked now, freed by cf_switch_reap()
 * after the epoll batch (a later event of the batch may still name it). The
 * watch goes explicitly: the tree holds the same socket, so closing the
 * engine's descriptor alone would leave it registered.
 */
static void pending_free(struct cf_engine *e, struct pending *p)
{
	struct cf_switch *s = e->sw;

	for (struct pending **pp = &s->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	s->n_pending--;
	cf_upstream_free(p->up);
	p->up = NULL;
	if (p->host >= 0) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, p->host, NULL);
		close(p->host); /* the tree's fd keeps the socket: this is the engine's reference */
		p->host = -1;
	}
	p->dead = true;
	p->next = s->dead;
	s->dead = p;
}

/*
 * A blocking tree connect() waits until @host (the engine's reference to the
 * socket the tree now holds) has connected or failed: the loop watches it and
 * answers then. Takes @host; returns the entry, or NULL (answered).
 */
static struct pending *add_pending(struct cf_engine *e, uint64_t id, int host,
				   const struct cf_flow *f)
{
	struct cf_switch *s = e->sw;
	struct pending *p = calloc(1, sizeof(*p));

	if (!p) {
		close(host);
		(void)notif_send(s->listener, id, -ENOMEM, 0);
		return NULL;
	}
	p->w.kind = CF_W_SWITCH_CONN;
	p->id = id;
	p->host = host;
	if (f)
		p->flow = *f;
	else
		p->flow.id = 0; /* a restarted connect(): its flow was counted by the first */
	p->next = s->pending;
	s->pending = p;
	s->n_pending++;
	if (cf_engine_watch(e, host, EPOLLOUT | EPOLLONESHOT, &p->w) < 0) {
		(void)notif_send(s->listener, id, -ENOMEM, 0);
		pending_free(e, p);
		return NULL;
	}
	return p;
}

/*
 * Where a connect() that said EINPROGRESS on @sock stands right after it:
 * 0 connected, an errno (taken from the socket, as the kernel's blocking
 * call takes it) failed, EINPROGRESS still under way. On this host's own
 * paths (veth, loopback) the handshake has often finished inside the
 * connect() itself: answering then saves a pass through the loop.
 */
static int connect_state(int sock)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	int err = 0;

	if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return EINPROGRESS; /* the loop will see */
	if (ti.tcpi_state == TCP_SYN_SENT || ti.tcpi_state == TCP_SYN_RECV)
		return EINPROGRESS;
	if (ti.tcpi_state != TCP_CLOSE)
		return 0;
	l = sizeof(err);
	if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err == 0)
		return EINPROGRESS;
	return err;
}

/*
 * connect() on @sock, connecting or connected, for the kernel's answer and
 * its change of state: 0 once it has connected (the socket is connected
 * for good then), then EISCONN; for a failed one ECONNABORTED (it may
 * connect anew then). The address is a bare family: the kernel looks at no
 * address for such a socket, and refuses one that short (EINVAL) anywhere
 * it would. Return 0 or -errno.
 */
static int reconnect(int sock)
{
	struct sockaddr sa = {.sa_family = AF_INET};

	return connect(sock, &sa, sizeof(sa.sa_family)) < 0 ? -errno : 0;
}

/*
 * Leave @sock, which the engine connected non-blockingly and whose outcome
 * is now known, as the kernel's own blocking connect() leaves a socket:
 * connected for good (a later connect() says EISCONN, not 0), or, failed,
 * ready for a new connect() (not EALREADY / ECONNABORTED).
 */
static void settle(int sock)
{
	(void)reconnect(sock);
}

/*
 * A blocking connect() on @p->host gives up with @err after the socket's
 * SO_SNDTIMEO, as the kernel's does (to the engine's tick). No timeout, or
 * no @p: nothing.
 */
static void send_timeout(struct cf_engine *e, struct pending *p, int err)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);

	if (!p || getsockopt(p->host, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) < 0 ||
	    (!tv.tv_sec && !tv.tv_usec))
		return;
	p->deadline_ms =
	    e->now_ms + (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec + 999) / 1000;
	p->timeout_err = err;
}

static void pending_done(struct cf_engine *e, struct pending *p)
{
	struct cf_switch *s = e->sw;
	int err = 0;
	socklen_t l = sizeof(err);

	if (getsockopt(p->host, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		err = errno;
	settle(p->host);			       /* every pending call is a blocking one */
	(void)notif_send(s->listener, p->id, -err, 0); /* first: the rest while the tree goes on */
	if (p->flow.id) {
		cf_flow_connect_result(e, &p->flow, err, NULL);
		if (err)
			e->stats.tcp_failed++;
		else
			e->stats.tcp_ok++;
		if (!err)
			cf_sockend_add(e, p->host, &p->flow);
	}
	pending_free(e, p);
}

/* The proxy's address for a socket of @domain (see proxy_fits()). */
static socklen_t proxy_sockaddr(const struct cf_engine *e, int domain, struct sockaddr_storage *ss)
{
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&e->proxy_addr;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	if (domain == e->proxy_addr.ss_family) {
		*ss = e->proxy_addr;
		return e->proxy_addr_len;
	}
	memset(ss, 0, sizeof(*ss));
	v6->sin6_family = AF_INET6;
	v6->sin6_port = v4->sin_port;
	v6->sin6_addr.s6_addr[10] = 0xff;
	v6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&v6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
	return sizeof(*v6);
}

/*
 * When the tree's connect() gives up through the proxy: when its own SYN
 * retries (TCP_SYNCNT, copied to @host) would have on the relay path, whose
 * SYN the engine holds unanswered until the handshake is done (1 s, doubling,
 * at most 120 s between tries), and never later than the relay's own limit.
 */
static uint64_t proxy_deadline(const struct cf_engine *e, int host)
{
	uint64_t ms = 0, rto = 1000;
	int syncnt;

	if (int_opt(host, IPPROTO_TCP, TCP_SYNCNT, &syncnt) < 0 || syncnt <= 0)
		syncnt = 6;
	for (int i = 0; i <= syncnt && ms < CF_TCP_CONNECTING_TIMEOUT_MS; i++) {
		ms += rto;
		rto = rto * 2 > 120000 ? 120000 : rto * 2;
	}
	return e->now_ms + (ms < CF_TCP_CONNECTING_TIMEOUT_MS ? ms : CF_TCP_CONNECTING_TIMEOUT_MS);
}

/*
 * A connect through the proxy ended: @err 0 installs the socket in the tree
 * (now that the tunnel is open) and answers 0; otherwise the tree's connect()
 * gets what the relay path's answer to the same failure gives it. @why is the
 * flow log's text (NULL: strerror).
 */
/*
 * With records, follow @p's tunnel until its socket ends (sockend.c): by
 * the proxy's address, which the socket is connected to, and without the
 * handshake's bytes, which its counters hold too.
 */
static void follow_tunnel(struct cf_engine *e, const struct pending *p)
{
	struct sockaddr_storage ss;
	struct cf_ip peer = p->flow.target;
	uint16_t pport = p->flow.target_port;
	uint64_t out = 0, in = 0;

	if (!e->sockend)
		return;
	/* The address it was connected to (v4-mapped for an IPv6 socket to an IPv4 proxy). */
	(void)proxy_sockaddr(e, p->domain, &ss);
	(void)cf_ip_from_sockaddr((struct sockaddr *)&ss, &peer, &pport);
	if (p->up)
		cf_upstream_wire_bytes(p->up, &out, &in);
	cf_sockend_add_tunnel(e, p->host, &p->flow, &peer, pport, out, in);
}

static void proxy_done(struct cf_engine *e, struct pending *p, int err, const char *why)
{
	struct cf_switch *s = e->sw;
	uint64_t id = p->id;
	int fl, domain = p->domain;

	if (err == 0) {
		/* Unwatched first: the tree's descriptor will keep the socket registered. */
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, p->host, NULL);
		/* The tree's connect() returns 0: connected, as after the kernel's. */
		settle(p->host);
		fl = fcntl(p->host, F_GETFL);
		if (!p->nonblock && fl >= 0)
			(void)fcntl(p->host, F_SETFL, fl & ~O_NONBLOCK);
		if (install(s, id, p->host, p->tree_fd, p->fd_flags) < 0) {
			err = EINTR; /* the call was interrupted meanwhile: nobody to answer */
			why = "interrupted before the tunnel was handed over";
		}
	}
	if (p->flow.id) {
		cf_flow_connect_result(e, &p->flow, err, why);
		if (err) {
			e->stats.tcp_failed++;
		} else {
			e->stats.tcp_ok++;
			follow_tunnel(e, p);
		}
	}
	pending_free(e, p);
	if (err != EINTR)
		(void)notif_send(s->listener, id, err ? -relay_errno(err, domain) : 0, 0);
}

/* Drive the CONNECT/SOCKS5 handshake on @p's socket, connected to the proxy. */
static void proxy_step(struct cf_engine *e, struct pending *p)
{
	const uint8_t *extra;
	uint32_t events = 0;
	const char *why;
	int err;

	switch (cf_upstream_progress(p->up, &events)) {
	case CF_UPSTREAM_PENDING:
		if (cf_engine_rewatch(e, p->host, events | EPOLLONESHOT, &p->w) < 0)
			proxy_done(e, p, ENOMEM, NULL);
		return;
	case CF_UPSTREAM_FAILED:
		err = cf_upstream_error(p->up, &why);
		proxy_done(e, p, err, why);
		return;
	case CF_UPSTREAM_DONE:
		/* Exact reads: the destination's first bytes are still in the socket. */
		if (cf_upstream_leftover(p->up, &extra) > 0) {
			proxy_done(e, p, ECONNREFUSED, "proxy: bytes read past the reply");
			return;
		}
		proxy_done(e, p, 0, NULL);
		return;
	}
}

/* @p's connect to the proxy finished (or failed): start the handshake. */
static void proxy_connected(struct cf_engine *e, struct pending *p)
{
	int err = 0, r;
	socklen_t l = sizeof(err);

	if (getsockopt(p->host, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		err = errno;
	if (err) {
		cf_tcp_proxy_unreachable(e, err);
		/* The relay answers with a RST, or stays silent until the tree's SYN retries end.
		 */
		proxy_done(e, p, err == ETIMEDOUT ? ETIMEDOUT : ECONNREFUSED, NULL);
		return;
	}
	r = cf_upstream_new(e, &p->flow, p->host, &p->egs, &p->up);
	if (r < 0) {
		proxy_done(e, p, ECONNREFUSED, NULL);
		return;
	}
	cf_upstream_exact(p->up);
	proxy_step(e, p);
}

static void on_pending(struct cf_engine *e, struct pending *p)
{
	if (!p->flow.via_proxy)
		pending_done(e, p);
	else if (!p->up)
		proxy_connected(e, p);
	else
		proxy_step(e, p);
}

/*
 * Switch a vetted connect through the proxy: a host socket connects to it
 * and runs the handshake in the loop; only an open tunnel goes to the tree
 * (before, its bytes would be the handshake's), so a non-blocking connect()
 * waits for it too and returns 0, never EINPROGRESS.
 */
static void switch_via_proxy(struct cf_engine *e, const struct seccomp_notif *req, int sock,
			     const struct tree_sock *ts, struct cf_flow *f)
{
	struct cf_switch *s = e->sw;
	struct sockaddr_storage ss;
	struct pending *p;
	socklen_t sl;
	int host, r, off = 0;

	s->proxied++;
	host = socket(ts->domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (host < 0) {
		r = errno;
		e->stats.tcp_failed++;
		cf_flow_connect_result(e, f, r, NULL);
		(void)notif_send(s->listener, req->id, -r, 0);
		return;
	}
	copy_options(sock, host, ts->domain, &s->hd);
	if (ts->domain == AF_INET6) /* the proxy's IPv4 address may be v4-mapped */
		(void)setsockopt(host, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	sl = proxy_sockaddr(e, ts->domain, &ss);
	if (connect(host, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		r = errno;
		close(host);
		cf_tcp_proxy_unreachable(e, r);
		e->stats.tcp_failed++;
		cf_flow_connect_result(e, f, ECONNREFUSED, NULL);
		(void)notif_send(s->listener, req->id, -ECONNREFUSED, 0);
		return;
	}
	p = add_pending(e, req->id, host, f);
	if (!p)
		return;
	p->deadline_ms = proxy_deadline(e, host);
	p->tree_fd = (int)req->data.args[0];
	p->domain = ts->domain;
	p->fd_flags = ts->fd_flags;
	p->nonblock = ts->nonblock;
}

/*
 * Vet and connect one switchable connect(); answers the notification one way
 * or another. The host socket is installed before its connect completes, so
 * that a blocking connect() interrupted by a signal leaves the tree, as the
 * kernel would, with a socket still connecting.
 */
static void do_switch(struct cf_engine *e, const struct seccomp_notif *req, int sock,
		      const struct tree_sock *ts, const struct cf_ip *dst, uint16_t port)
{
	struct cf_switch *s = e->sw;
	struct sockaddr_storage ss;
	struct cf_flow f;
	socklen_t sl;
	int host, r, tree_fd = (int)req->data.args[0];

	memset(&f, 0, sizeof(f));
	f.src = ts->domain == AF_INET ? e->plan.child4 : e->plan.child6;
	f.dst = *dst;
	f.dport = port;
	f.switched = true;
	/* The caller, exactly: the relay path finds it by its socket's addresses. */
	if (e->attrib)
		f.owner_pid = cf_attrib_thread(e->attrib, (pid_t)req->pid);
	e->stats.tcp_attempts++;
	r = cf_flow_tcp_decide(e, &f);
	if (r < 0) {
		e->stats.tcp_failed++;
		(void)notif_send(s->listener, req->id, -relay_errno(-r, ts->domain), 0);
		return;
	}
	if (f.via_proxy) {
		switch_via_proxy(e, req, sock, ts, &f);
		return;
	}
	host = socket(ts->domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (host < 0) {
		r = errno;
		cf_flow_connect_result(e, &f, r, NULL);
		(void)notif_send(s->listener, req->id, -r, 0);
		return;
	}
	copy_options(sock, host, ts->domain, &s->hd);
	sl = cf_ip_to_sockaddr(&f.target, f.target_port, &ss);
	r = connect(host, (struct sockaddr *)&ss, sl) < 0 ? errno : 0;
	if (r != 0 && r != EINPROGRESS) {
		e->stats.tcp_failed++;
		cf_flow_connect_result(e, &f, r, NULL);
		close(host);
		(void)notif_send(s->listener, req->id, -r, 0);
		return;
	}
	/*
	 * Blocking: the kernel's answer and change of state while the socket is
	 * still non-blocking (EALREADY: under way). On this host's own paths
	 * (veth, loopback) the handshake has often ended inside the connect().
	 */
	if (r == EINPROGRESS && !ts->nonblock) {
		r = -reconnect(host);
		if (r == EALREADY)
			r = EINPROGRESS;
	}
	/* The engine only polls it from here on: the flag is the tree's (it made it O_NONBLOCK). */
	if (!ts->nonblock)
		(void)fcntl(host, F_SETFL, 0);
	if (install(s, req->id, host, tree_fd, ts->fd_flags) < 0) {
		close(host);
		return;
	}
	if (r == EINPROGRESS && !ts->nonblock) {
		add_pending(e, req->id, host, &f);
		return;
	}
	/*
	 * The answer first: the records are made while the tree goes on (the
	 * engine's reference keeps the socket until then). A blocking connect
	 * that failed at once leaves the tree the failed socket, as the kernel.
	 */
	(void)notif_send(s->listener, req->id, -r, 0);
	if (r != 0 && r != EINPROGRESS) {
		e->stats.tcp_failed++;
		cf_flow_connect_result(e, &f, r, NULL);
	} else if (r == 0 || !cf_sockend_connecting(e, host, &f)) {
		/* Under way: its result once known (sockend.c, with records), else now. */
		if (r == 0)
			e->stats.tcp_ok++;
		cf_flow_connect_result(e, &f, 0, NULL);
		cf_sockend_add(e, host, &f);
	}
	close(host);
}

/*
 * connect(AF_UNSPEC) on host socket @sock: the kernel dissolves the
 * association whatever the socket's state, reading nothing past the
 * family (0, or its error). The socket is then unconnected: its next
 * connect() is vetted and switched anew. Return 0 or -errno.
 */
static int dissolve(int sock, socklen_t len)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	return connect(sock, (struct sockaddr *)&ss, len) < 0 ? -errno : 0;
}

/*
 * The kernel's answer to a connect() on host socket @sock that its state
 * decides alone: a connected one keeps its destination (0 the first time
 * after a non-blocking connect, then EISCONN: the engine's own connect()
 * on its copy says which); a failed connect not yet reported by a
 * connect() gives its error and tries nothing new; a connecting one says
 * EALREADY, or for a blocking call waits for the result, as a connect()
 * restarted after a signal does (*sock then goes to the pending list).
 * False when the socket is unconnected: it connects anew.
 */
static bool answered_by_state(struct cf_engine *e, const struct seccomp_notif *req, int *sock)
{
	struct cf_switch *s = e->sw;
	struct tcp_info ti;
	socklen_t til = sizeof(ti);
	int fl, r;

	if (getsockopt(*sock, IPPROTO_TCP, TCP_INFO, &ti, &til) < 0) {
		(void)notif_send(s->listener, req->id, -EINVAL, 0);
		return true;
	}
	if (ti.tcpi_state != TCP_SYN_SENT && ti.tcpi_state != TCP_SYN_RECV) {
		/* Closed and unconnected: the bare family is too short to connect (EINVAL). */
		r = reconnect(*sock);
		if (ti.tcpi_state == TCP_CLOSE && r == -EINVAL)
			return false;
		(void)notif_send(s->listener, req->id, r, 0);
		return true;
	}
	fl = fcntl(*sock, F_GETFL);
	if ((fl >= 0 && (fl & O_NONBLOCK)) || s->n_pending >= PENDING_MAX) {
		(void)notif_send(s->listener, req->id, -EALREADY, 0);
		return true;
	}
	send_timeout(e, add_pending(e, req->id, *sock, NULL), EALREADY);
	*sock = -1;
	return true;
}

/*
 * connect() on a socket this engine switched before (it is of the host's
 * namespace). Never CONTINUE: the kernel would connect it, in the host's
 * namespace, to whatever the tree names. The address is read first, as
 * the kernel does (EFAULT, EINVAL before any state); AF_UNSPEC dissolves;
 * the socket's state answers the rest (answered_by_state()) but for an
 * unconnected socket, which is vetted and switched again like a fresh one.
 */
static void on_host_socket(struct cf_engine *e, const struct seccomp_notif *req, int *sock,
			   struct tree_sock *ts)
{
	struct cf_switch *s = e->sw;
	struct sockaddr_storage ss;
	struct cf_ip dst;
	socklen_t len;
	uint16_t port;
	int r;

	r = read_sockaddr(req, &ss, &len);
	if (r == 0 && len < sizeof(sa_family_t))
		r = -EINVAL;
	if (r < 0) {
		(void)notif_send(s->listener, req->id, r, 0);
		return;
	}
	if (ss.ss_family == AF_UNSPEC) {
		/* What was read was that caller's only if the call still waits. */
		if (notif_valid(s, req->id))
			(void)notif_send(s->listener, req->id, dissolve(*sock, len), 0);
		return;
	}
	if (answered_by_state(e, req, sock))
		return;
	/* A tree-local destination cannot be reached from the host's side: refused. */
	if (parse_dest(&ss, len, &dst, &port) < 0 ||
	    int_opt(*sock, SOL_SOCKET, SO_DOMAIN, &ts->domain) < 0 ||
	    ts->domain != (dst.family == AF_INET ? AF_INET : AF_INET6) ||
	    !proxy_fits(e, ts->domain) ||
	    cf_treetasks_cloexec(s->tasks, (pid_t)req->pid, (int)req->data.args[0], &ts->fd_flags) <
		0) {
		(void)notif_send(s->listener, req->id, -EINVAL, 0);
		return;
	}
	/* The pid read was that caller's only if the call still waits. */
	if (!notif_valid(s, req->id))
		return;
	if (!leaves_through_tun(e, &dst, port)) {
		(void)notif_send(s->listener, req->id, -ECONNREFUSED, 0);
		return;
	}
	r = fcntl(*sock, F_GETFL);
	ts->nonblock = r >= 0 && (r & O_NONBLOCK);
	do_switch(e, req, *sock, ts, &dst, port);
}

/*
 * A copy of the caller's fd @tree_fd, or -errno: -EBADF when the tree has
 * no such fd (its kernel says so, or the caller is gone), another errno
 * when the engine could not look (out of descriptors: it cannot tell
 * whether the fd is safe to let through). Whether the thread was that
 * caller is checked (SECCOMP_IOCTL_NOTIF_ID_VALID) before anything is done
 * on what was read.
 */
static int copy_tree_fd(const struct cf_switch *s, const struct seccomp_notif *req, int tree_fd)
{
	int fd = cf_treetasks_getfd(s->tasks, (pid_t)req->pid, tree_fd);

	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd >= 0)
		return fd;
	return -EBADF;
}

/*
 * Whether @sock is one Landlock refuses the tree's kernel to connect
 * (connfilter.h): TCP over IPv4 or IPv6 (not MPTCP, which it leaves alone).
 */
static bool is_tcp(int sock)
{
	int domain, type, proto;

	return int_opt(sock, SOL_SOCKET, SO_DOMAIN, &domain) == 0 &&
	       (domain == AF_INET || domain == AF_INET6) &&
	       int_opt(sock, SOL_SOCKET, SO_TYPE, &type) == 0 && type == SOCK_STREAM &&
	       int_opt(sock, SOL_SOCKET, SO_PROTOCOL, &proto) == 0 && proto == IPPROTO_TCP;
}

/*
 * A TCP connect() of the tree's own (or a nested sandbox's) namespace that
 * is not switched: the tree's kernel may not run it (Landlock), so the
 * engine does, on its copy of the socket and with its own copy of the
 * address, and answers what the kernel's call would have. A blocking call
 * is made non-blocking for the moment of the engine's connect() (the flag
 * is the open file's: another thread of the tree could see it then) and
 * answered when the connection is made or fails; a signal that ends the
 * call leaves the socket connecting, as the kernel's would.
 */
static void connect_for_tree(struct cf_engine *e, const struct seccomp_notif *req, int *sock)
{
	struct cf_switch *s = e->sw;
	struct sockaddr_storage ss;
	struct pending *p;
	socklen_t len;
	int fl, r;

	r = read_sockaddr(req, &ss, &len);
	if (r < 0) {
		(void)notif_send(s->listener, req->id, r, 0);
		return;
	}
	/* The socket and the address read were that caller's only if it still waits. */
	if (!notif_valid(s, req->id))
		return;
	fl = fcntl(*sock, F_GETFL);
	if (fl < 0) {
		(void)notif_send(s->listener, req->id, -errno, 0);
		return;
	}
	if (!(fl & O_NONBLOCK))
		(void)fcntl(*sock, F_SETFL, fl | O_NONBLOCK);
	r = connect(*sock, (struct sockaddr *)&ss, len) < 0 ? errno : 0;
	if (!(fl & O_NONBLOCK))
		(void)fcntl(*sock, F_SETFL, fl);
	s->emulated++;
	if (!(fl & O_NONBLOCK) && r == EINPROGRESS) {
		r = connect_state(*sock);
		if (r != EINPROGRESS)
			settle(*sock);
	}
	if ((fl & O_NONBLOCK) || (r != EINPROGRESS && r != EALREADY)) {
		(void)notif_send(s->listener, req->id, -r, 0);
		return;
	}
	if (s->n_pending >= PENDING_MAX) {
		(void)notif_send(s->listener, req->id, -EAGAIN, 0);
		return;
	}
	p = add_pending(e, req->id, *sock, NULL);
	*sock = -1;
	send_timeout(e, p, r);
}

/*
 * Whether @ss (@len bytes) names a port below 1024 in an address the kernel
 * would take that far: one the tree's user may not bind in its own
 * namespace (no capability there, the namespace's default
 * ip_unprivileged_port_start), which the engine, owner of that namespace,
 * could.
 */
static bool privileged_port(const struct sockaddr_storage *ss, socklen_t len)
{
	enum { SIN6_LEN_RFC2133 = 24 }; /* the shortest sockaddr_in6 the kernel takes */
	uint16_t port;

	if (ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	else if (ss->ss_family == AF_INET6 && len >= SIN6_LEN_RFC2133)
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	else
		return false;
	return port != 0 && port < 1024;
}

/*
 * bind() on the tree's TCP socket @sock (of its namespace if @own_ns, else
 * a nested sandbox's), which its kernel may not run but to port 0: the
 * engine binds its copy, with its own copy of the address, and answers
 * what the kernel said.
 */
static void bind_for_tree(struct cf_switch *s, const struct seccomp_notif *req, int sock,
			  bool own_ns)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int r = read_sockaddr(req, &ss, &len);

	/* The socket and the address read were that caller's only if it still waits. */
	if (r == 0 && !notif_valid(s, req->id))
		return;
	if (r == 0 && own_ns && privileged_port(&ss, len))
		r = -EACCES;
	else if (r == 0)
		r = bind(sock, (struct sockaddr *)&ss, len) < 0 ? -errno : 0;
	(void)notif_send(s->listener, req->id, r, 0);
}

/*
 * A bind() of the tree's. A host socket in the tree (one whose switched
 * connect failed, or that connect(AF_UNSPEC) dissolved) is unbound: bound
 * by the kernel to a port of the tree's choosing, it would hold that port
 * of the host's against the host's own servers. It is never bound (EINVAL,
 * the kernel's answer for a socket bound already), and Landlock lets the
 * tree's kernel bind no TCP socket but to port 0 (sandbox/connfilter.h),
 * so that a host socket another thread puts at the descriptor meanwhile
 * cannot be bound either; the tree's own TCP sockets the engine binds
 * (bind_for_tree()). Everything else, and everything where Landlock is not
 * in force (no host socket is handed out then), goes on to the kernel.
 */
static void on_bind(struct cf_engine *e, const struct seccomp_notif *req)
{
	struct cf_switch *s = e->sw;
	int tree_fd = (int)req->data.args[0];
	cleanup_fd int sock = -1;
	enum sock_ns ns;

	if (!s->landlock || tree_fd < 0 || (uint64_t)tree_fd != req->data.args[0]) {
		notif_continue(s, req->id);
		return;
	}
	sock = copy_tree_fd(s, req, tree_fd);
	if (sock < 0 && sock != -EBADF) {
		(void)notif_send(s->listener, req->id, -ENOBUFS, 0);
		return;
	}
	ns = sock < 0 ? NS_NOT_A_SOCKET : sock_ns(s, sock);
	if (ns == NS_HOST) {
		(void)notif_send(s->listener, req->id, -EINVAL, 0);
		return;
	}
	if (ns == NS_NOT_A_SOCKET || !is_tcp(sock)) {
		notif_continue(s, req->id);
		return;
	}
	bind_for_tree(s, req, sock, ns == NS_TREE);
}

static void on_notification(struct cf_engine *e)
{
	struct cf_switch *s = e->sw;
	struct seccomp_notif req;
	struct tree_sock ts;
	cleanup_fd int sock = -1;
	struct cf_ip dst;
	uint16_t port;
	enum sock_ns ns;
	int tree_fd;

	memset(&req, 0, sizeof(req));
	memset(&ts, 0, sizeof(ts));
	if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
		return; /* ENOENT: the caller went away before we read it */
	if (req.data.nr == SYS_bind) {
		on_bind(e, &req);
		return;
	}
	tree_fd = (int)req.data.args[0];
	if (tree_fd < 0 || (uint64_t)tree_fd != req.data.args[0]) {
		notif_continue(s, req.id); /* the kernel's EBADF: no descriptor has that number */
		return;
	}
	sock = copy_tree_fd(s, &req, tree_fd);
	if (sock < 0 && sock != -EBADF) {
		(void)notif_send(s->listener, req.id, -ENOBUFS, 0);
		return;
	}
	/* Only a socket of a namespace the sandbox made may continue into the kernel. */
	ns = sock < 0 ? NS_NOT_A_SOCKET : sock_ns(s, sock);
	/*
	 * No socket: the kernel's EBADF or ENOTSOCK. Should another thread put a
	 * socket there meanwhile, the kernel's connect runs on it: a TCP one is
	 * refused by Landlock (connfilter.h), anything else is the tree's own.
	 */
	if (ns == NS_NOT_A_SOCKET) {
		notif_continue(s, req.id);
		return;
	}
	if (ns == NS_HOST) {
		on_host_socket(e, &req, &sock, &ts);
		return;
	}
	/*
	 * Of the tree's namespace, or a nested sandbox's (whose own engine
	 * relays it, and connects from here): its kernel and the relay are safe.
	 */
	if (!s->continue_all && ns == NS_TREE && s->n_pending < PENDING_MAX &&
	    read_dest(&req, &dst, &port) == 0 && leaves_through_tun(e, &dst, port) &&
	    switchable(sock, &ts) && proxy_fits(e, ts.domain) &&
	    cf_treetasks_cloexec(s->tasks, (pid_t)req.pid, tree_fd, &ts.fd_flags) == 0 &&
	    ts.domain == (dst.family == AF_INET ? AF_INET : AF_INET6) && notif_valid(s, req.id)) {
		do_switch(e, &req, sock, &ts, &dst, port);
		return;
	}
	if (is_tcp(sock)) {
		connect_for_tree(e, &req, &sock);
		return;
	}
	notif_continue(s, req.id);
}

void cf_switch_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	struct pending *p;

	if (w->kind == CF_W_SWITCH) {
		/*
		 * HUP: no task holds the filter any more, so no call can come; the
		 * level-triggered HUP would otherwise wake the loop until the run ends.
		 */
		if (events & (EPOLLHUP | EPOLLERR))
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->sw->listener, NULL);
		else
			on_notification(e);
		return;
	}
	p = cf_container_of(w, struct pending, w);
	if (!p->dead)
		on_pending(e, p);
}

void cf_switch_reap(struct cf_engine *e)
{
	struct cf_switch *s = e->sw;

	while (s && s->dead) {
		struct pending *p = s->dead;

		s->dead = p->next;
		free(p);
	}
}

/* SO_SNDTIMEO ran out: the call returns, the socket goes on connecting (send_timeout()). */
static void timed_out(struct cf_engine *e, struct pending *p)
{
	(void)notif_send(e->sw->listener, p->id, -p->timeout_err, 0);
	pending_free(e, p);
}

void cf_switch_on_tick(struct cf_engine *e)
{
	struct cf_switch *s = e->sw;
	struct pending *p, *next;

	if (!s)
		return;
	for (p = s->pending; p; p = next) {
		next = p->next;
		if (!notif_valid(s, p->id))
			pending_free(e, p); /* a signal ended the tree's call: nobody waits */
		else if (!p->deadline_ms || e->now_ms < p->deadline_ms)
			continue;
		else if (p->flow.via_proxy)
			proxy_done(e, p, ETIMEDOUT,
				   NULL); /* the proxy, or its handshake, is silent */
		else
			timed_out(e, p);
	}
}

/*
 * The engine's own namespace, which every switched socket is of. Read from
 * /proc: SIOCGSKNS on its sockets needs CAP_NET_ADMIN there, which a rootless
 * engine has not (so for it a switched socket is one SIOCGSKNS refuses).
 */
static int host_netns(struct cf_switch *s)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) < 0)
		return -errno;
	s->host_dev = st.st_dev;
	s->host_ino = st.st_ino;
	return 0;
}

/*
 * What a new host socket is: its namespace's cookie (with the tree's, from
 * @netns_probe: s->cookies when the kernel names both) and the defaults of
 * the options copy_options() copies.
 */
static void host_probe(struct cf_switch *s, int netns_probe)
{
	cleanup_fd int h = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct host_defaults *hd = &s->hd;
	socklen_t l = sizeof(hd->cc) - 1;

	hd->keepidle = hd->keepintvl = hd->keepcnt = hd->syncnt = -1;
	if (h < 0)
		return;
	if (int_opt(h, IPPROTO_TCP, TCP_KEEPIDLE, &hd->keepidle) < 0 ||
	    int_opt(h, IPPROTO_TCP, TCP_KEEPINTVL, &hd->keepintvl) < 0 ||
	    int_opt(h, IPPROTO_TCP, TCP_KEEPCNT, &hd->keepcnt) < 0 ||
	    int_opt(h, IPPROTO_TCP, TCP_SYNCNT, &hd->syncnt) < 0)
		hd->keepidle = hd->keepintvl = hd->keepcnt = hd->syncnt = -1;
	if (getsockopt(h, IPPROTO_TCP, TCP_CONGESTION, hd->cc, &l) < 0)
		hd->cc[0] = '\0';
	s->cookies = netns_cookie(h, &s->host_cookie) == 0 &&
		     netns_cookie(netns_probe, &s->ns_cookie) == 0 &&
		     s->host_cookie != s->ns_cookie;
}

/* Fewer wake-ups of idle CPUs per connect (connfilter.h); an older kernel: as before. */
static void sync_wake_up(int listener)
{
	int r = cf_connfilter_sync_wake_up(listener);

	if (r < 0)
		log_debug("seccomp listener: no synchronous wake-ups: %s", strerror(-r));
	else
		log_debug("seccomp listener: synchronous wake-ups");
}

int cf_switch_start(struct cf_engine *e, int listener, int netns_probe, int landlock_err)
{
	struct cf_switch *s;
	int r;

	if (e->sw) {
		close(listener); /* one filter, one listener: a second is not ours to serve */
		return -EEXIST;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(listener);
		return -ENOMEM;
	}
	s->listener = listener;
	s->w.kind = CF_W_SWITCH;
	e->sw = s;
	r = cf_treetasks_new(&s->tasks);
	if (r < 0) {
		close(listener);
		free(s);
		e->sw = NULL;
		return r;
	}
	/* The listener must be served either way: unanswered, the tree's connects would hang. */
	host_probe(s, netns_probe);
	if (!s->cookies &&
	    (sock_netns(netns_probe, &s->ns_dev, &s->ns_ino) < 0 || host_netns(s) < 0)) {
		log_debug("switch: cannot name the tree's network namespace: %s; relay only",
			  strerror(errno));
		s->continue_all = true;
	}
	/* Records need each switched socket's end (sockend.c): without it, the relay. */
	if (e->obs && !e->sockend)
		s->continue_all = true;
	/* Host sockets are safe in the tree only where its kernel cannot connect them. */
	if (landlock_err) {
		log_debug("switch: Landlock cannot refuse the tree's TCP connects (%s); relay only",
			  strerror(landlock_err));
		s->continue_all = true;
	}
	s->landlock = !landlock_err;
	sync_wake_up(listener);
	r = cf_engine_watch(e, listener, EPOLLIN, &s->w);
	if (r < 0)
		cf_switch_fini(e);
	return r;
}

void cf_switch_fini(struct cf_engine *e)
{
	struct cf_switch *s = e->sw;

	if (!s)
		return;
	while (s->pending)
		pending_free(e, s->pending);
	cf_switch_reap(e);
	/* (tests read the last field: keep "through the proxy" last) */
	log_debug("switch: %llu connects switched, %llu continued, %llu made for the tree in its "
		  "namespace, %llu through the proxy",
		  (unsigned long long)s->switched, (unsigned long long)s->continued,
		  (unsigned long long)s->emulated, (unsigned long long)s->proxied);
	/* Closing it answers every call still waiting with ENOSYS: the tree is gone by now. */
	close(s->listener);
	cf_treetasks_free(s->tasks);
	free(s);
	e->sw = NULL;
}
