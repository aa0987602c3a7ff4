/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: the event loop.
 *
 * One epoll set holds: tun0 (packets the tree sends to anything but its own
 * loopback path), the two transparent listeners (vetted connections),
 * upstream and relay sockets, DNS upstream sockets, a signalfd, a 250 ms
 * timerfd for expiry, the control socket to the sandbox's init and the
 * helper's pidfd. The loop ends when init reports the command's wait status
 * (or the sandbox vanishes); then every flow is closed and recorded.
 *
 * Fragments the tree writes into tun0 are reassembled (reasm.c) before
 * anything looks at them; an IPv6 packet the engine writes that is larger
 * than tun0's MTU goes out as fragments, which the tree's kernel reassembles.
 *
 * Before it lets the command start (GO), the engine confines itself
 * (isolation.c): no_new_privs, not dumpable, a seccomp allowlist.
 *
 * Signals: SIGTERM, SIGHUP and SIGQUIT sent to childflow are passed on to
 * the tree through init. SIGINT from the terminal already reached the tree
 * (same process group) and is not sent twice; a SIGINT sent with kill() is
 * passed on. The third forwarded signal kills the sandbox outright.
 */
#include "engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/ctx.h"
#include "capture/capview.h"
#include "dns/synth.h"
#include "engine/attrib.h"
#include "engine/dgram.h"
#include "engine/ctrack.h"
#include "engine/ratelimit.h"
#include "engine/socksudp.h"
#include "engine/dnsfwd.h"
#include "engine/hostaddrs.h"
#include "engine/isolation.h"
#include "engine/publish.h"
#include "engine/reasm.h"
#include "engine/sockend.h"
#include "engine/switch.h"
#include "engine/tcp.h"
#include "policy/policy.h"
#include "proxy/tls.h"
#include "sandbox/ctl.h"
#include "sandbox/fdpass.h"
#include "util/cleanup.h"
#include "util/log.h"

#define TICK_MS 250
#define TUN_BATCH 64
/* After the tree exited: give up on a destination that accepted nothing for this long. */
#define FLUSH_IDLE_MS 1000

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int cf_engine_watch(struct cf_engine *e, int fd, uint32_t events, struct cf_watch *w)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	return epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int cf_engine_rewatch(struct cf_engine *e, int fd, uint32_t events, struct cf_watch *w)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	return epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

/*
 * Only IPv6 gets here (an IPv4 packet ends at 65,535 bytes, tun0's MTU): a
 * UDP datagram above 65,487 bytes or an echo reply above 65,487 bytes of data.
 * With that MTU two fragments always do.
 */
static int tun_write_fragments(struct cf_engine *e, const uint8_t *pkt, size_t len)
{
	struct cf_pkt_frag6 frags[2];
	ssize_t n =
	    cf_pkt_frag6(pkt, len, e->frag6_id++, CF_PLAN_TUN_MTU, frags, CF_ARRAY_SIZE(frags));

	for (ssize_t i = 0; i < n; i++) {
		struct iovec iov[2] = {
		    {.iov_base = frags[i].head, .iov_len = sizeof(frags[i].head)},
		    {.iov_base = (void *)frags[i].data, .iov_len = frags[i].data_len},
		};

		if (writev(e->tun_fd, iov, 2) != (ssize_t)(iov[0].iov_len + iov[1].iov_len)) {
			n = -errno;
			break;
		}
	}
	if (n < 0)
		e->stats.packets_dropped++;
	return n < 0 ? (int)n : 0;
}

int cf_engine_tun_write(struct cf_engine *e, const void *pkt, size_t len)
{
	if (len > CF_PLAN_TUN_MTU)
		return tun_write_fragments(e, pkt, len);
	if (write(e->tun_fd, pkt, len) != (ssize_t)len) {
		e->stats.packets_dropped++;
		return -errno;
	}
	return 0;
}

const struct cf_ip *cf_engine_resolver(const struct cf_engine *e, size_t index)
{
	if (e->cfg->dns_set)
		return index == 0 ? &e->cfg->dns : NULL;
	return index < e->host_dns.n ? &e->host_dns.servers[index] : NULL;
}

bool cf_engine_is_gateway(const struct cf_engine *e, const struct cf_ip *ip)
{
	return cf_ip_equal(ip, &e->plan.gateway4) || cf_ip_equal(ip, &e->plan.gateway6);
}

bool cf_engine_host_target(const struct cf_engine *e, const struct cf_ip *ip, struct cf_ip *out)
{
	static const uint8_t loopback4[4] = {127, 0, 0, 1};

	if (!cf_ip_equal(ip, &e->plan.host4) && !cf_ip_equal(ip, &e->plan.host6))
		return false;
	memset(out, 0, sizeof(*out));
	out->family = ip->family;
	if (ip->family == AF_INET)
		memcpy(out->b, loopback4, sizeof(loopback4));
	else
		out->b[15] = 1;
	return true;
}

/* A whole packet of the tree's (never a fragment). */
static void on_tree_packet(struct cf_engine *e, const struct cf_pkt *pkt)
{
	switch (pkt->proto) {
	case IPPROTO_TCP:
		if ((pkt->tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN)
			cf_tcp_on_syn(e, pkt);
		else
			e->stats.packets_dropped++;
		break;
	case IPPROTO_UDP:
		if (cf_dnsfwd_wants(e, pkt))
			cf_dnsfwd_on_query(e, pkt);
		else
			cf_dgram_on_packet(e, pkt);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		cf_dgram_on_packet(e, pkt);
		break;
	default:
		e->stats.packets_dropped++;
		break;
	}
}

/* Hold a fragment until its packet is whole, then handle that packet. */
static void on_tun_fragment(struct cf_engine *e, const struct cf_pkt *frag)
{
	cleanup_free uint8_t *whole = NULL;
	struct cf_pkt pkt;
	size_t len;
	int r = cf_reasm_add(e->reasm, frag, e->now_ms, &whole, &len);

	if (r == 0)
		return;
	/* A Fragment header inside the reassembled payload is not reassembled again. */
	if (r < 0 || cf_pkt_parse(whole, len, &pkt) < 0 || pkt.fragment) {
		e->stats.packets_dropped++;
		return;
	}
	on_tree_packet(e, &pkt);
}

static void on_tun_packet(struct cf_engine *e, const uint8_t *buf, size_t len)
{
	struct cf_pkt pkt;

	if (cf_pkt_parse(buf, len, &pkt) < 0)
		e->stats.packets_dropped++;
	else if (pkt.fragment)
		on_tun_fragment(e, &pkt);
	else
		on_tree_packet(e, &pkt);
}

static void on_tun(struct cf_engine *e)
{
	for (int i = 0; i < TUN_BATCH; i++) {
		ssize_t n = read(e->tun_fd, e->rxbuf, sizeof(e->rxbuf));

		if (n <= 0)
			return;
		on_tun_packet(e, e->rxbuf, (size_t)n);
	}
}

static void on_signal(struct cf_engine *e)
{
	struct signalfd_siginfo si;

	while (read(e->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int sig = (int)si.ssi_signo;

		if (sig == SIGINT && si.ssi_code == SI_KERNEL && !e->command_done)
			continue; /* the terminal sent it to the tree as well */
		if (e->command_done) {
			e->flush_abort = true; /* the user does not want to wait for the flush */
			continue;
		}
		if (++e->signals_forwarded >= 3) {
			log_warn("third signal: killing the sandbox");
			kill(e->helper, SIGKILL);
			continue;
		}
		kill(e->helper, sig);
	}
}

/* The command's connect() listener (sandbox/connfilter.h), or why there is none. */
static void on_listener(struct cf_engine *e, const struct cf_ctl_msg *m, int fd)
{
	int r;

	if (fd < 0) {
		log_debug(
		    "no connect() listener for the tree (%s): every TCP connection is relayed",
		    strerror(m->err ? m->err : EPROTO));
		return;
	}
	r = cf_switch_start(e, fd, e->listen4, m->err);
	if (r < 0)
		log_warn("cannot serve the tree's connect() listener: %s", strerror(-r));
}

static void on_ctl(struct cf_engine *e)
{
	struct cf_ctl_msg m;
	ssize_t n;
	size_t nfds;
	int fd;

	/* The control message and the pidfd often arrive in one epoll batch: read once. */
	while (!e->command_done) {
		fd = -1;
		nfds = 0;
		n = cf_fdpass_recv(e->ctlfd, &m, sizeof(m), &fd, 1, &nfds);
		if (n == -EAGAIN || n == -EINTR)
			return;
		if (n == (ssize_t)sizeof(m) && m.type == CF_CTL_CONNECTED) {
			cf_publish_on_connected(e, &m, nfds ? fd : -1);
			continue;
		}
		if (n == (ssize_t)sizeof(m) && m.type == CF_CTL_LISTENER) {
			on_listener(e, &m, nfds ? fd : -1);
			continue;
		}
		if (nfds)
			close(fd);
		if (n == (ssize_t)sizeof(m) && m.type == CF_CTL_EXITED) {
			e->res->wait_status = m.status;
		} else if (n == (ssize_t)sizeof(m) && m.type == CF_CTL_EXEC_FAILED) {
			e->res->exec_err = m.err ? m.err : EIO;
		} else {
			log_debug("control socket: read %zd bytes (type %u)", n,
				  n == (ssize_t)sizeof(m) ? m.type : 0u);
			e->res->helper_lost = true;
		}
		e->command_done = true;
	}
}

static void on_timer(struct cf_engine *e)
{
	uint64_t ticks;

	(void)!read(e->timerfd, &ticks, sizeof(ticks));
	cf_tcp_on_tick(e);
	cf_dnsfwd_on_tick(e);
	cf_dgram_on_tick(e);
	cf_socksudp_on_tick(e);
	cf_publish_on_tick(e);
	cf_reasm_expire(e->reasm, e->now_ms);
	cf_capview_on_tick(e->capview);
	cf_switch_on_tick(e);
	cf_sockend_on_tick(e);
}

/* The host's addresses changed: read them again, or keep the old set and say so once. */
static void on_hostaddrs(struct cf_engine *e)
{
	int r = cf_hostaddrs_on_event(e->hostaddrs);

	if (r < 0 && !e->hostaddrs_warned) {
		log_warn(
		    "cannot read the host's addresses again (%s): host_local keeps denying the "
		    "addresses read before",
		    strerror(-r));
		e->hostaddrs_warned = true;
	}
}

static void dispatch(struct cf_engine *e, struct cf_watch *w, uint32_t events)
{
	cf_capview_wait_room(e->capview);
	switch (w->kind) {
	case CF_W_TUN:
		on_tun(e);
		break;
	case CF_W_LISTEN:
		cf_tcp_on_listener(e, w == &e->w_listen4 ? e->listen4 : e->listen6);
		break;
	case CF_W_SIGNAL:
		on_signal(e);
		break;
	case CF_W_CTL:
		on_ctl(e);
		break;
	case CF_W_PIDFD:
		/* Init exited; its last message (if any) is already queued on ctl. */
		on_ctl(e);
		break;
	case CF_W_TIMER:
		on_timer(e);
		break;
	case CF_W_TCP_UPSTREAM:
	case CF_W_TCP_RELAY:
		cf_tcp_on_event(e, w, events);
		break;
	case CF_W_DNS_UPSTREAM:
		cf_dnsfwd_on_event(e, w);
		break;
	case CF_W_DGRAM:
		cf_dgram_on_event(e, w, events);
		break;
	case CF_W_CAPVIEW:
		cf_capview_on_readable(e->capview);
		break;
	case CF_W_HOSTADDRS:
		break; /* before everything else, by engine_turn() */
	case CF_W_CTRACK:
		cf_ctrack_on_readable(e);
		break;
	case CF_W_SOCKSUDP:
		cf_socksudp_on_event(e, w, events);
		break;
	case CF_W_RATELIMIT:
		cf_ratelimit_on_timer(e);
		break;
	case CF_W_PUB_LISTEN:
	case CF_W_PUB_HOST:
	case CF_W_PUB_TREE:
		cf_publish_on_event(e, w, events);
		break;
	case CF_W_SWITCH:
	case CF_W_SWITCH_CONN:
		cf_switch_on_event(e, w, events);
		break;
	case CF_W_SOCKEND:
		cf_sockend_on_readable(e);
		break;
	case CF_W_SOCKEND_CONN:
		cf_sockend_on_conn(e, w, events);
		break;
	default:
		break;
	}
}

/* The policy's view of the host itself: its addresses, and what stands for its loopback. */
static int open_hostaddrs(struct cf_engine *e)
{
	int r;

	cf_policy_set_host_alias(e->policy, &e->plan.host4, &e->plan.host6);
	r = cf_hostaddrs_open(e->policy, &e->hostaddrs);
	if (r < 0) {
		log_error("cannot read the host's addresses, which the tree must not reach: %s",
			  strerror(-r));
		return r;
	}
	e->w_hostaddrs.kind = CF_W_HOSTADDRS;
	return cf_engine_watch(e, cf_hostaddrs_fd(e->hostaddrs), EPOLLIN, &e->w_hostaddrs);
}

static int open_loop_fds(struct cf_engine *e)
{
	struct itimerspec its = {
	    .it_interval = {.tv_sec = 0, .tv_nsec = TICK_MS * 1000000L},
	    .it_value = {.tv_sec = 0, .tv_nsec = TICK_MS * 1000000L},
	};
	sigset_t mask;

	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0)
		return -errno;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	e->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (e->sigfd < 0)
		return -errno;
	e->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (e->timerfd < 0 || timerfd_settime(e->timerfd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

static int watch_all(struct cf_engine *e)
{
	struct {
		int fd;
		struct cf_watch *w;
		uint8_t kind;
	} t[] = {
	    {e->tun_fd, &e->w_tun, CF_W_TUN},	      {e->listen4, &e->w_listen4, CF_W_LISTEN},
	    {e->listen6, &e->w_listen6, CF_W_LISTEN}, {e->sigfd, &e->w_sig, CF_W_SIGNAL},
	    {e->ctlfd, &e->w_ctl, CF_W_CTL},	      {e->pidfd, &e->w_pidfd, CF_W_PIDFD},
	    {e->timerfd, &e->w_timer, CF_W_TIMER},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r;

		t[i].w->kind = t[i].kind;
		r = cf_engine_watch(e, t[i].fd, EPOLLIN, t[i].w);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Start the capture views, which take the child view's packet socket and the
 * wire view's; the writers are borrowed (capture/files.h closes them).
 */
static int start_capview(struct cf_engine *e, const struct cf_engine_opts *o, struct cf_sandbox *sb)
{
	struct cf_capview_opts co = {
	    .child = o->capture,
	    .child_fd = o->capture ? take_fd_int(&sb->capture_fd) : -1,
	    .tree4 = e->plan.child4,
	    .tree6 = e->plan.child6,
	    .link4 = o->veth ? o->veth->tree4 : (struct cf_ip){0},
	    .link6 = o->veth ? o->veth->tree6 : (struct cf_ip){0},
	    .egress = o->egress,
	    .wire = o->wire,
	    .wire_fd = o->wire ? o->wire_fd : -1,
	    .host = o->host,
	    .host_fd = o->host ? o->host_fd : -1,
	};
	int r = cf_capview_start(&co, &e->capview);
	int fd = cf_capview_poll_fd(e->capview);

	e->w_capview.kind = CF_W_CAPVIEW;
	if (r == 0 && fd >= 0)
		r = cf_engine_watch(e, fd, EPOLLIN, &e->w_capview);
	return r;
}

static int engine_init(struct cf_engine *e, const struct cf_engine_opts *o, struct cf_sandbox *sb)
{
	int r;

	e->cfg = o->cfg;
	e->obs = o->obs;
	e->learned = o->learned;
	e->learned_arg = o->learned_arg;
	if (o->proxy_addr) {
		e->proxy_addr = *o->proxy_addr;
		e->proxy_addr_len = o->proxy_addr_len;
	}
	e->plan = *o->plan;
	if (o->host_dns)
		e->host_dns = *o->host_dns;
	e->helper = sb->helper;
	e->epfd = e->sigfd = e->timerfd = -1;
	/* The engine owns these fds from now on. */
	e->tun_fd = take_fd_int(&sb->tun_fd);
	e->listen4 = take_fd_int(&sb->listen4);
	e->listen6 = take_fd_int(&sb->listen6);
	e->ctlfd = take_fd_int(&sb->ctlfd);
	e->pidfd = take_fd_int(&sb->pidfd);
	e->now_ms = monotonic_ms();
	r = cf_policy_new(o->cfg, &e->policy);
	if (r == 0 && o->cfg->proxy.scheme != CF_PROXY_NONE) {
		e->asked = calloc(CF_ASKED_SLOTS, sizeof(*e->asked));
		if (!e->asked)
			r = -ENOMEM;
	}
	if (r == 0 && o->cfg->proxy_remote_dns)
		r = cf_synth_new(CF_SYNTH_DEFAULT_SLOTS, CF_SYNTH_MIN_IDLE_MS, &e->synth);
	if (r == 0 && o->cfg->proxy.scheme == CF_PROXY_HTTPS)
		r = cf_tls_ctx_new(o->cfg->proxy_insecure, &e->tls_ctx);
	if (r == 0 && e->tls_ctx && o->cfg->proxy_insecure)
		log_warn("--proxy-insecure: the certificate of the proxy %s:%u is not checked "
			 "(any certificate is accepted, as with curl --proxy-insecure)",
			 o->cfg->proxy.host, o->cfg->proxy.port);
	if (r == 0)
		r = open_loop_fds(e);
	if (r == 0)
		r = open_hostaddrs(e);
	if (r == 0)
		r = cf_tcp_init(e);
	if (r == 0)
		r = cf_dnsfwd_init(e);
	if (r == 0)
		r = cf_dgram_init(e);
	if (r == 0)
		r = cf_ratelimit_init(e);
	if (r == 0)
		r = cf_reasm_new(NULL, &e->reasm);
	if (r == 0)
		r = watch_all(e);
	/*
	 * The listeners are watched now but served by the loop only, after GO:
	 * init reads CONNECT once it runs the tree. --publish reads CONNECTED
	 * with on_ctl(), which must never block.
	 */
	if (r == 0 && fcntl(e->ctlfd, F_SETFL, O_NONBLOCK) < 0)
		r = -errno;
	if (r == 0)
		r = cf_publish_init(e, o->publish_fds, o->n_publish);
	if (r == 0 && o->obs)
		r = cf_attrib_new(take_fd_int(&sb->diag_fd), sb->helper, &e->attrib);
	else if (sb->diag_fd >= 0)
		close(take_fd_int(
		    &sb->diag_fd)); /* see engine_fini: no socket may outlive tun0's fd */
	/*
	 * Before confine(): the filter allows no netlink socket. Without it
	 * switch.c switches nothing (flow_end needs it): not fatal.
	 */
	if (r == 0 && o->obs && o->switch_tcp && (r = cf_sockend_open(e)) < 0) {
		log_warn("cannot follow switched sockets for the flow records (%s): every TCP "
			 "connection is relayed",
			 strerror(-r));
		r = 0;
	}
	if (r == 0 && o->obs && o->veth && sb->ctrack_fd >= 0)
		r = cf_ctrack_new(e, take_fd_int(&sb->ctrack_fd), o->veth);
	else if (sb->ctrack_fd >= 0)
		close(take_fd_int(&sb->ctrack_fd));
	if (r == 0)
		return start_capview(e, o, sb);
	if (o->wire)
		close(o->wire_fd);
	if (o->host)
		close(o->host_fd);
	return r;
}

static void res_denials(struct cf_engine *e)
{
	e->res->denials = cf_policy_denials(e->policy);
}

/* Stop the child view, and keep what it wrote in the result. */
static void stop_child_view(struct cf_engine *e)
{
	struct cf_capview_stats st;

	cf_capview_stop_child(e->capview, &st);
	e->res->capture_err = st.err;
	e->res->capture_packets = st.packets;
	e->res->capture_dropped = st.dropped;
}

/* Stop the other views and free them, and keep what the egress file got in the result. */
static void stop_capview(struct cf_engine *e)
{
	struct cf_capview_stats st;

	cf_capview_free(e->capview, &st);
	e->capview = NULL;
	e->res->egress_err = st.err;
	e->res->egress_packets = st.packets;
	e->res->egress_dropped = st.dropped;
}

static void engine_fini(struct cf_engine *e)
{
	/*
	 * tun0 last: closing it while the sandbox's network namespace is alive
	 * unregisters the device synchronously (about 20 ms of RCU waits). Once
	 * the listeners, the last sockets of that namespace, are closed, the
	 * namespace is torn down by the kernel's own worker instead.
	 */
	int fds[] = {e->listen4, e->listen6, e->sigfd, e->ctlfd,
		     e->pidfd,	 e->timerfd, e->epfd,  e->tun_fd};

	stop_child_view(e);
	/* Its last dump still needs policy and the flow log: first. */
	cf_ctrack_finish(e);
	cf_switch_fini(e);
	/* The tree is gone: its switched sockets are closed or closing. */
	cf_sockend_finish(e);
	cf_tcp_fini(e);
	cf_publish_fini(e);
	cf_dnsfwd_fini(e);
	cf_dgram_fini(e);
	cf_socksudp_fini(e);
	cf_ratelimit_fini(e);
	cf_reasm_free(e->reasm);
	/* After the flows: closing their sockets still writes (FIN, RST) to the egress views. */
	stop_capview(e);
	if (e->policy)
		res_denials(e);
	cf_hostaddrs_close(e->hostaddrs);
	cf_policy_free(e->policy);
	free(e->asked);
	free(e->denied.slots);
	cf_synth_free(e->synth);
	cf_tls_ctx_free(e->tls_ctx);
	cf_attrib_free(e->attrib);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * One turn of the loop: wait up to @timeout_ms (not at all while relays wait
 * for another turn), handle what is ready, then those relays. *@relayed is
 * set when a relay moved or may have moved data. Return 0 or -errno.
 */
static int engine_turn(struct cf_engine *e, int timeout_ms, bool *relayed)
{
	struct epoll_event ev[64];
	bool ready = cf_tcp_has_ready(e) || cf_publish_has_ready(e);
	int n = epoll_wait(e->epfd, ev, 64, ready ? 0 : timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	e->now_ms = monotonic_ms();
	/*
	 * A change of the host's addresses first: epoll reports fds in the
	 * order they became ready, so a flow in this batch that started after
	 * the change is decided on the new set.
	 */
	for (int i = 0; i < n; i++)
		if (((struct cf_watch *)ev[i].data.ptr)->kind == CF_W_HOSTADDRS)
			on_hostaddrs(e);
	for (int i = 0; i < n; i++) {
		struct cf_watch *w = ev[i].data.ptr;

		*relayed |= w->kind == CF_W_TCP_RELAY || w->kind == CF_W_PUB_HOST ||
			    w->kind == CF_W_PUB_TREE;
		dispatch(e, w, ev[i].events);
	}
	if (ready) {
		cf_tcp_run_ready(e);
		cf_publish_run_ready(e);
		*relayed = true;
	}
	cf_tcp_reap(e);
	cf_publish_reap(e);
	cf_switch_reap(e);
	cf_dnsfwd_reap(e);
	cf_dgram_reap(e);
	return 0;
}

/*
 * The tree exited, but the kernel may still hold bytes it wrote, and its
 * FIN, in sockets the engine has not read yet. Keep relaying until every
 * connection (--publish's too: the client is their destination) delivered
 * the tree's end, as long as the destinations accept data, so that nothing the tree sent is lost
 * and no destination sees a reset for a connection the tree closed cleanly. Give up (engine_fini()
 * then resets what is left) after FLUSH_IDLE_MS without progress or on a
 * signal (flush_abort). Return 0 or -errno.
 */
static int engine_flush(struct cf_engine *e)
{
	uint64_t last = monotonic_ms();
	size_t left;

	/* Both stay readable once the tree is gone. */
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->ctlfd, NULL);
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->pidfd, NULL);
	while ((left = cf_tcp_unflushed(e) + cf_publish_unflushed(e)) > 0) {
		bool relayed = false;
		int r;

		if (e->flush_abort || monotonic_ms() - last >= FLUSH_IDLE_MS) {
			log_warn("%zu connection(s) still had data of the command for their "
				 "destination; resetting them",
				 left);
			return 0;
		}
		r = engine_turn(e, FLUSH_IDLE_MS / 4, &relayed);
		if (r < 0)
			return r;
		if (relayed)
			last = e->now_ms;
	}
	return 0;
}

static int engine_loop(struct cf_engine *e)
{
	while (!e->command_done) {
		bool relayed = false;
		int r = engine_turn(e, -1, &relayed);

		if (r < 0)
			return r;
	}
	return engine_flush(e);
}

/*
 * Set-up is over: from here on the engine only relays, so it drops what it
 * no longer needs (isolation.c). It runs after GO, while the helper starts
 * the command (building the filter takes a good part of a millisecond), and
 * before the loop reads anything of the tree's, which is what it guards. A kernel
 * without seccomp leaves it unconfined, which is said, not fatal: the tree's
 * policy does not depend on it.
 */
static void confine(struct cf_engine *e, bool switching)
{
	int r = cf_isolation_confine(e->helper, switching);

	if (r == 1)
		log_debug("seccomp: no filter in this build (sanitizers or an architecture other "
			  "than x86_64 and aarch64); the engine runs without it");
	else if (r < 0)
		log_warn("the engine runs without its seccomp filter (%s): it is not confined; "
			 "check that the kernel has CONFIG_SECCOMP_FILTER",
			 strerror(-r));
}

int cf_engine_run(const struct cf_engine_opts *opts, struct cf_sandbox *sb,
		  struct cf_engine_result *res)
{
	struct cf_engine *e = calloc(1, sizeof(*e));
	int r;

	memset(res, 0, sizeof(*res));
	if (!e)
		return -ENOMEM;
	e->res = res;
	r = engine_init(e, opts, sb);
	if (r < 0) {
		log_error("cannot start the engine: %s", strerror(-r));
		/* The helper waits for GO, which will not come: waiting for it would hang. */
		kill(e->helper, SIGKILL);
		goto out;
	}
	r = cf_sandbox_go(e->ctlfd);
	if (r == 0) {
		confine(e, opts->switch_tcp);
		r = engine_loop(e);
	}
	if (r < 0) {
		res->fatal_err = r;
		log_error("engine failure: %s", strerror(-r));
		kill(e->helper, SIGKILL);
		r = 0;
	}
out:
	waitpid(e->helper, NULL, 0);
	engine_fini(e);
	free(e);
	return r;
}
