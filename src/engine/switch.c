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
 *             completed (0, or its errno without a socket).
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
#include "util/cleanup.h"
#include "util/log.h"

#ifndef CF_PIDFD_THREAD
#define CF_PIDFD_THREAD O_EXCL /* PIDFD_THREAD, Linux 6.9 */
#endif

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
};

struct cf_switch {
	int listener;
	struct cf_watch w;
	dev_t ns_dev, host_dev; /* the tree's network namespace, and the engine's */
	ino_t ns_ino, host_ino;
	bool continue_all; /* the tree's namespace could not be named: switch nothing */
	struct pending *pending, *dead;
	size_t n_pending;
	uint64_t switched, continued;
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
	return !(e->synth && cf_synth_contains(ip));
}

/* The engine's copy of the tree's address, or -errno: the tree's kernel will judge it. */
static int read_dest(const struct seccomp_notif *req, struct cf_ip *ip, uint16_t *port)
{
	struct sockaddr_storage ss;
	uint64_t len = req->data.args[2];
	struct iovec local, remote;

	if (len < sizeof(sa_family_t) || len > sizeof(ss))
		return -EINVAL;
	memset(&ss, 0, sizeof(ss));
	local = (struct iovec){.iov_base = &ss, .iov_len = (size_t)len};
	remote = (struct iovec){.iov_base = (void *)(uintptr_t)req->data.args[1],
				.iov_len = (size_t)len};
	if (process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return -EFAULT;
	if (ss.ss_family == AF_INET && len < sizeof(struct sockaddr_in))
		return -EINVAL;
	if (ss.ss_family == AF_INET6 &&
	    (len < sizeof(struct sockaddr_in6) || ((struct sockaddr_in6 *)&ss)->sin6_scope_id))
		return -EINVAL;
	return cf_ip_from_sockaddr((struct sockaddr *)&ss, ip, port);
}

/* fdinfo's flags (octal): whether the tree's fd is close-on-exec. */
static int tree_fd_flags(pid_t pid, int fd, uint32_t *out)
{
	char path[64], buf[256], *f;
	cleanup_fd int d = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	d = open(path, O_RDONLY | O_CLOEXEC);
	if (d < 0)
		return -errno;
	n = read(d, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	f = strstr(buf, "flags:");
	if (!f)
		return -EIO;
	*out = strtoul(f + 6, NULL, 8) & O_CLOEXEC ? O_CLOEXEC : 0;
	return 0;
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
	int type, proto, fastopen, fl;
	struct cf_ip ip;
	uint16_t port;

	if (int_opt(sock, SOL_SOCKET, SO_DOMAIN, &ts->domain) < 0 ||
	    int_opt(sock, SOL_SOCKET, SO_TYPE, &type) < 0 ||
	    int_opt(sock, SOL_SOCKET, SO_PROTOCOL, &proto) < 0)
		return false;
	if ((ts->domain != AF_INET && ts->domain != AF_INET6) || type != SOCK_STREAM ||
	    proto != IPPROTO_TCP)
		return false;
	/* Unbound (or the wildcard with port 0) and never connected. */
	if (getsockname(sock, (struct sockaddr *)&ss, &sl) < 0 ||
	    cf_ip_from_sockaddr((struct sockaddr *)&ss, &ip, &port) < 0 || port != 0)
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

static void copy_int(int from, int to, int level, int name, bool only_set)
{
	int v;

	if (int_opt(from, level, name, &v) == 0 && (v || !only_set))
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
static void copy_options(int from, int to, int domain)
{
	struct linger lg;
	struct timeval tv;
	char cc[16];
	socklen_t l;

	copy_int(from, to, IPPROTO_TCP, TCP_NODELAY, true);
	copy_int(from, to, SOL_SOCKET, SO_KEEPALIVE, true);
	copy_int(from, to, IPPROTO_TCP, TCP_KEEPIDLE, false);
	copy_int(from, to, IPPROTO_TCP, TCP_KEEPINTVL, false);
	copy_int(from, to, IPPROTO_TCP, TCP_KEEPCNT, false);
	copy_int(from, to, IPPROTO_TCP, TCP_USER_TIMEOUT, true);
	copy_int(from, to, IPPROTO_TCP, TCP_SYNCNT, false);
	copy_int(from, to, SOL_SOCKET, SO_PRIORITY, true);
	if (domain == AF_INET)
		copy_int(from, to, IPPROTO_IP, IP_TOS, true);
	else
		copy_int(from, to, IPPROTO_IPV6, IPV6_TCLASS, true);
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
	if (getsockopt(from, IPPROTO_TCP, TCP_CONGESTION, cc, &l) == 0) {
		char mine[16];
		socklen_t ml = sizeof(mine);

		memset(mine, 0, sizeof(mine));
		if (getsockopt(to, IPPROTO_TCP, TCP_CONGESTION, mine, &ml) == 0 &&
		    strncmp(cc, mine, sizeof(cc)) != 0)
			(void)setsockopt(to, IPPROTO_TCP, TCP_CONGESTION, cc,
					 (socklen_t)strnlen(cc, sizeof(cc)));
	}
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
 * answers then. Takes @host.
 */
static void add_pending(struct cf_engine *e, uint64_t id, int host, const struct cf_flow *f)
{
	struct cf_switch *s = e->sw;
	struct pending *p = calloc(1, sizeof(*p));

	if (!p) {
		close(host);
		(void)notif_send(s->listener, id, -ENOMEM, 0);
		return;
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
	}
}

static void pending_done(struct cf_engine *e, struct pending *p)
{
	struct cf_switch *s = e->sw;
	int err = 0;
	socklen_t l = sizeof(err);

	if (getsockopt(p->host, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		err = errno;
	if (p->flow.id) {
		cf_flow_connect_result(e, &p->flow, err, NULL);
		if (err)
			e->stats.tcp_failed++;
		else
			e->stats.tcp_ok++;
		if (!err)
			cf_sockend_add(e, p->host, &p->flow);
	}
	(void)notif_send(s->listener, p->id, -err, 0);
	pending_free(e, p);
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
	int host, r, fl, tree_fd = (int)req->data.args[0];

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
	host = socket(ts->domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (host < 0) {
		r = errno;
		cf_flow_connect_result(e, &f, r, NULL);
		(void)notif_send(s->listener, req->id, -r, 0);
		return;
	}
	copy_options(sock, host, ts->domain);
	sl = cf_ip_to_sockaddr(&f.target, f.target_port, &ss);
	r = connect(host, (struct sockaddr *)&ss, sl) < 0 ? errno : 0;
	if (r != 0 && r != EINPROGRESS) {
		e->stats.tcp_failed++;
		cf_flow_connect_result(e, &f, r, NULL);
		close(host);
		(void)notif_send(s->listener, req->id, -r, 0);
		return;
	}
	/* The engine only polls it from here on: the flag is the tree's. */
	fl = fcntl(host, F_GETFL);
	if (!ts->nonblock && fl >= 0)
		(void)fcntl(host, F_SETFL, fl & ~O_NONBLOCK);
	if (install(s, req->id, host, tree_fd, ts->fd_flags) < 0) {
		close(host);
		return;
	}
	if (r == EINPROGRESS && !ts->nonblock) {
		add_pending(e, req->id, host, &f);
		return;
	}
	if (r == 0)
		e->stats.tcp_ok++;
	/* Under way: its result once known (sockend.c, with records), else now. */
	if (r == 0 || !cf_sockend_connecting(e, host, &f)) {
		cf_flow_connect_result(e, &f, 0, NULL);
		cf_sockend_add(e, host, &f);
	}
	close(host);
	(void)notif_send(s->listener, req->id, -r, 0);
}

/*
 * connect() on a socket this engine switched before (it is of the host's
 * namespace). Never CONTINUE: the kernel would connect it, in the host's
 * namespace, to whatever the tree names. Answered as the kernel would: a
 * socket that is connected or connecting keeps its destination (EISCONN;
 * EALREADY, or for a blocking call the wait for its result, as a connect()
 * restarted after a signal does); one whose connect failed is vetted and
 * switched again, like a fresh one.
 */
static void on_host_socket(struct cf_engine *e, const struct seccomp_notif *req, int *sock,
			   struct tree_sock *ts)
{
	struct cf_switch *s = e->sw;
	struct tcp_info ti;
	socklen_t til = sizeof(ti);
	struct cf_ip dst;
	uint16_t port;
	int fl;

	if (getsockopt(*sock, IPPROTO_TCP, TCP_INFO, &ti, &til) < 0) {
		(void)notif_send(s->listener, req->id, -EINVAL, 0);
		return;
	}
	fl = fcntl(*sock, F_GETFL);
	ts->nonblock = fl >= 0 && (fl & O_NONBLOCK);
	if (ti.tcpi_state == TCP_SYN_SENT || ti.tcpi_state == TCP_SYN_RECV) {
		if (ts->nonblock || s->n_pending >= PENDING_MAX) {
			(void)notif_send(s->listener, req->id, -EALREADY, 0);
			return;
		}
		add_pending(e, req->id, *sock, NULL);
		*sock = -1;
		return;
	}
	if (ti.tcpi_state != TCP_CLOSE) {
		(void)notif_send(s->listener, req->id, -EISCONN, 0);
		return;
	}
	/* A tree-local destination cannot be reached from the host's side: refused. */
	if (read_dest(req, &dst, &port) < 0 ||
	    int_opt(*sock, SOL_SOCKET, SO_DOMAIN, &ts->domain) < 0 ||
	    ts->domain != (dst.family == AF_INET ? AF_INET : AF_INET6) ||
	    tree_fd_flags((pid_t)req->pid, (int)req->data.args[0], &ts->fd_flags) < 0) {
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
	do_switch(e, req, *sock, ts, &dst, port);
}

/*
 * A copy of the caller's fd @tree_fd, or -errno: -EBADF when the tree has
 * no such fd (its kernel says so), another errno when the engine could not
 * look (out of descriptors: it cannot tell whether the fd is safe to let
 * through).
 */
static int copy_tree_fd(const struct cf_switch *s, const struct seccomp_notif *req, int tree_fd)
{
	cleanup_fd int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)req->pid, CF_PIDFD_THREAD);
	int fd;

	if (pidfd < 0 && errno == EINVAL) /* before Linux 6.9: thread-group leaders only */
		pidfd = (int)syscall(SYS_pidfd_open, (pid_t)req->pid, 0);
	if (pidfd < 0)
		return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -errno : -EBADF;
	/* The pid (and the memory read later) were that caller's only if the call still waits. */
	if (!notif_valid(s, req->id))
		return -ENOENT;
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, tree_fd, 0);
	return fd < 0 ? -errno : fd;
}

static void on_notification(struct cf_engine *e)
{
	struct cf_switch *s = e->sw;
	struct seccomp_notif req;
	struct tree_sock ts;
	cleanup_fd int sock = -1;
	struct cf_ip dst;
	struct stat st;
	uint16_t port;
	dev_t dev;
	ino_t ino;
	int tree_fd;

	memset(&req, 0, sizeof(req));
	memset(&ts, 0, sizeof(ts));
	if (ioctl(s->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
		return; /* ENOENT: the caller went away before we read it */
	tree_fd = (int)req.data.args[0];
	if (s->continue_all || tree_fd < 0 || (uint64_t)tree_fd != req.data.args[0]) {
		notif_continue(s, req.id); /* nothing switched: nothing of the host's in the tree */
		return;
	}
	sock = copy_tree_fd(s, &req, tree_fd);
	if (sock == -ENOENT)
		return;
	if (sock == -EBADF || (sock >= 0 && fstat(sock, &st) == 0 && !S_ISSOCK(st.st_mode))) {
		notif_continue(s, req.id); /* no socket: the kernel's EBADF or ENOTSOCK */
		return;
	}
	if (sock < 0) {
		(void)notif_send(s->listener, req.id, -ENOBUFS, 0);
		return;
	}
	/* Only a socket of a namespace the sandbox made may continue into the kernel. */
	if (sock_netns(sock, &dev, &ino) < 0 || (dev == s->host_dev && ino == s->host_ino)) {
		on_host_socket(e, &req, &sock, &ts);
		return;
	}
	/*
	 * Of the tree's namespace, or a nested sandbox's (whose own engine
	 * relays it, and connects from here): its kernel and the relay are safe.
	 */
	if (dev != s->ns_dev || ino != s->ns_ino || s->n_pending >= PENDING_MAX ||
	    read_dest(&req, &dst, &port) < 0 || !leaves_through_tun(e, &dst, port) ||
	    !switchable(sock, &ts) || tree_fd_flags((pid_t)req.pid, tree_fd, &ts.fd_flags) < 0 ||
	    ts.domain != (dst.family == AF_INET ? AF_INET : AF_INET6) || !notif_valid(s, req.id)) {
		notif_continue(s, req.id);
		return;
	}
	do_switch(e, &req, sock, &ts, &dst, port);
}

void cf_switch_on_event(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	(void)events;
	struct pending *p;

	if (w->kind == CF_W_SWITCH) {
		on_notification(e);
		return;
	}
	p = cf_container_of(w, struct pending, w);
	if (!p->dead)
		pending_done(e, p);
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

int cf_switch_start(struct cf_engine *e, int listener, int netns_probe)
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
	/* The listener must be served either way: unanswered, the tree's connects would hang. */
	if (sock_netns(netns_probe, &s->ns_dev, &s->ns_ino) < 0 || host_netns(s) < 0) {
		log_debug("switch: cannot name the tree's network namespace: %s; relay only",
			  strerror(errno));
		s->continue_all = true;
	}
	/* Records need each switched socket's end (sockend.c): without it, the relay. */
	if (e->obs && !e->sockend)
		s->continue_all = true;
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
	log_debug("switch: %llu connects switched, %llu continued to the relay",
		  (unsigned long long)s->switched, (unsigned long long)s->continued);
	/* Closing it answers every call still waiting with ENOSYS: the tree is gone by now. */
	close(s->listener);
	free(s);
	e->sw = NULL;
}
