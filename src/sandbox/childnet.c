/* SPDX-License-Identifier: MIT */
#include "sandbox/childnet.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/netlink.h"
#include "sandbox/nftrules.h"
#include "util/cleanup.h"
#include "util/fileio.h"

static int open_tun(char *err, size_t errlen)
{
	struct ifreq ifr;
	cleanup_fd int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		int r = -errno;

		if (r == -EACCES || r == -EPERM)
			snprintf(err, errlen,
				 "cannot open /dev/net/tun: %s (it must be usable by every user: "
				 "'chmod 0666 /dev/net/tun' as root, or a udev rule "
				 "KERNEL==\"tun\", MODE=\"0666\")",
				 strerror(-r));
		else
			snprintf(err, errlen,
				 "cannot open /dev/net/tun: %s (load the tun module: "
				 "'modprobe tun')",
				 strerror(-r));
		return r;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", CF_PLAN_TUN_NAME);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot create %s: %s", CF_PLAN_TUN_NAME, strerror(-r));
		return r;
	}
	/*
	 * Persistent, so closing the engine's fd at the end does not unregister
	 * the device synchronously (tens of ms of RCU waits in childflow's own
	 * exit): the kernel removes it with the private network namespace, in
	 * its cleanup worker. Nothing can outlive that namespace.
	 */
	if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot configure %s: %s", CF_PLAN_TUN_NAME, strerror(-r));
		return r;
	}
	return take_fd(&fd);
}

int cf_tproxy_listener(int family, int backlog, uint16_t *port)
{
	cleanup_fd int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1;

	if (fd < 0)
		return -errno;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0)
			return -errno;
		sl = sizeof(struct sockaddr_in);
	} else {
		if (setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
		    setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0)
			return -errno;
		sl = sizeof(struct sockaddr_in6);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0)
		return -errno;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return take_fd(&fd);
}

/*
 * A packet socket sees each packet on lo twice, going out and coming in;
 * the capture keeps only the outgoing copy (capture/child.c). Dropping the
 * other in the kernel halves the work there, and the receive queue (capped
 * by net.core.rmem_max) holds twice as many packets the capture wants.
 */
static int drop_lo_incoming(int fd)
{
	static struct sock_filter code[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_IFINDEX),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1 /* lo */, 0, 2),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
	    BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {.len = CF_ARRAY_SIZE(code), .filter = code};

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

/* A packet socket for every interface of the sandbox, with kernel timestamps. */
static int open_capture(void)
{
	cleanup_fd int fd =
	    socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	int one = 1, size = 8 << 20, r;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0)
		return -errno;
	r = drop_lo_incoming(fd);
	if (r < 0)
		return r;
	/* Capped by net.core.rmem_max; drops are counted and reported, never silent. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return take_fd(&fd);
}

static int set_sysctls(gid_t gid)
{
	char range[64];
	static const char *const zero[] = {
	    "/proc/sys/net/ipv4/conf/all/rp_filter",
	    "/proc/sys/net/ipv4/conf/" CF_PLAN_TUN_NAME "/rp_filter",
	    "/proc/sys/net/ipv6/conf/" CF_PLAN_TUN_NAME "/accept_ra",
	    "/proc/sys/net/ipv6/conf/" CF_PLAN_TUN_NAME "/router_solicitations",
	    /*
	     * A SYN cookie's last ACK would have to reach the listener, which
	     * only SYNs may (nftrules.c): with a full queue the SYN is dropped
	     * instead, and the tree sends it again.
	     */
	    "/proc/sys/net/ipv4/tcp_syncookies",
	};
	int r;

	for (size_t i = 0; i < CF_ARRAY_SIZE(zero); i++) {
		r = cf_write_file(zero[i], "0");
		if (r < 0)
			return r;
	}
	/* The vetted SYN comes back with the tree's own address as source. */
	r = cf_write_file("/proc/sys/net/ipv4/conf/" CF_PLAN_TUN_NAME "/accept_local", "1");
	if (r < 0)
		return r;
	/* Unprivileged ping inside the tree, for its own group. */
	snprintf(range, sizeof(range), "%u %u", (unsigned)gid, (unsigned)gid);
	return cf_write_file("/proc/sys/net/ipv4/ping_group_range", range);
}

/* Policy routing of marked TCP (nftrules.c): mark 1 to lo's local table, mark 2 to tun0. */
static int set_mark_routes(struct mnl_socket *nl, int f, unsigned lo, unsigned tun)
{
	int r = cf_nl_route_add(nl, f, CF_TABLE_TUN, RTN_UNICAST, NULL, 0, tun);

	if (r == 0)
		r = cf_nl_route_add(nl, f, CF_TABLE_LOCAL, RTN_LOCAL, NULL, 0, lo);
	if (r == 0)
		r = cf_nl_rule_add(nl, f, CF_MARK_LOCAL, CF_TABLE_LOCAL, 100);
	if (r == 0)
		r = cf_nl_rule_add(nl, f, CF_MARK_TUN, CF_TABLE_TUN, 101);
	return r;
}

/*
 * The rootful tree's own link: its addresses and default routes on the
 * veth; the engine's addresses (resolver, host alias) stay on tun0.
 */
static int set_veth_routes(struct mnl_socket *nl, const struct cf_plan *plan,
			   const struct cf_veth_plan *veth, unsigned tun)
{
	unsigned eth = if_nametoindex(CF_PLAN_VETH_NAME);
	const struct cf_ip *engine[] = {&plan->gateway4, &plan->host4, &plan->gateway6,
					&plan->host6};
	int r;

	if (!eth)
		return -ENODEV;
	r = cf_nl_link_up(nl, eth, 0);
	if (r == 0)
		r = cf_nl_addr_add(nl, eth, &veth->tree4, 30);
	if (r == 0)
		r = cf_nl_route_default_via(nl, &veth->host4, eth);
	if (r == 0 && veth->tree6.family)
		r = cf_nl_addr_add(nl, eth, &veth->tree6, 64);
	if (r == 0 && veth->tree6.family)
		r = cf_nl_route_default_via(nl, &veth->host6, eth);
	for (size_t i = 0; r == 0 && i < CF_ARRAY_SIZE(engine); i++)
		r = cf_nl_route_add(nl, engine[i]->family, RT_TABLE_MAIN, RTN_UNICAST, engine[i],
				    engine[i]->family == AF_INET ? 32 : 128, tun);
	return r;
}

static int set_routes(struct mnl_socket *nl, const struct cf_plan *plan,
		      const struct cf_veth_plan *veth, unsigned lo, unsigned tun)
{
	static const int families[] = {AF_INET, AF_INET6};
	int r;

	r = cf_nl_addr_add(nl, tun, &plan->child4, 32);
	if (r == 0)
		r = cf_nl_addr_add(nl, tun, &plan->child6, 128);
	if (r == 0 && veth)
		r = set_veth_routes(nl, plan, veth, tun);
	for (size_t i = 0; r == 0 && i < CF_ARRAY_SIZE(families); i++) {
		int f = families[i];

		if (!veth)
			r = cf_nl_route_add(nl, f, RT_TABLE_MAIN, RTN_UNICAST, NULL, 0, tun);
		if (r == 0)
			r = set_mark_routes(nl, f, lo, tun);
	}
	return r;
}

static int setup_links(const struct cf_plan *plan, const struct cf_veth_plan *veth, char *err,
		       size_t errlen)
{
	struct mnl_socket *nl = NULL;
	unsigned lo = if_nametoindex("lo"), tun = if_nametoindex(CF_PLAN_TUN_NAME);
	int r;

	r = cf_nl_open(&nl);
	if (r < 0) {
		snprintf(err, errlen, "cannot open rtnetlink: %s", strerror(-r));
		return r;
	}
	r = cf_nl_link_up(nl, lo, 0);
	if (r == 0)
		r = cf_nl_link_up(nl, tun, CF_PLAN_TUN_MTU);
	if (r < 0)
		snprintf(err, errlen, "cannot bring up lo/%s: %s", CF_PLAN_TUN_NAME, strerror(-r));
	if (r == 0) {
		r = set_routes(nl, plan, veth, lo, tun);
		if (r < 0)
			snprintf(err, errlen,
				 "cannot set the sandbox's addresses and routes: %s "
				 "(IPv6 disabled on this host?)",
				 strerror(-r));
	}
	cf_nl_close(nl);
	return r;
}

/*
 * The rootful tree's conntrack events, for the engine's records of what the
 * host's kernel carries (engine/ctrack.h). Counted bytes, and finished TCP
 * entries gone after a second rather than two minutes (this namespace's own
 * table: nothing here filters or translates by it).
 */
static int open_ctrack(char *err, size_t errlen)
{
	static const char *const one[] = {
	    "/proc/sys/net/netfilter/nf_conntrack_acct",
	    "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait",
	    "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close",
	};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
				 .nl_groups = NF_NETLINK_CONNTRACK_NEW |
					      NF_NETLINK_CONNTRACK_UPDATE |
					      NF_NETLINK_CONNTRACK_DESTROY};
	cleanup_fd int fd = -1;
	int size = 16 << 20, r;

	for (size_t i = 0; i < CF_ARRAY_SIZE(one); i++) {
		r = cf_write_file(one[i], "1");
		if (r < 0) {
			snprintf(err, errlen, "cannot write %s in the sandbox: %s", one[i],
				 strerror(-r));
			return r;
		}
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot subscribe to the sandbox's conntrack events: %s",
			 strerror(-r));
		return r;
	}
	/* Losses are counted and reported, never silent; a large buffer makes them rare. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return take_fd(&fd);
}

int cf_child_net_setup(const struct cf_plan *plan, const struct cf_veth_plan *veth, gid_t gid,
		       bool capture, struct cf_child_net *out, enum cf_sandbox_step *step,
		       char *err, size_t errlen)
{
	cleanup_fd int tun = -1, l4 = -1, l6 = -1, cap = -1, diag = -1, ct = -1;
	char ruleset[3072], nfterr[256] = "ruleset does not fit its buffer";
	int r;

	*step = CF_STEP_TUN;
	tun = open_tun(err, errlen);
	if (tun < 0)
		return tun;
	*step = CF_STEP_LINKS;
	r = setup_links(plan, veth, err, errlen);
	if (r < 0)
		return r;
	*step = CF_STEP_SYSCTLS;
	r = set_sysctls(gid);
	if (r < 0) {
		snprintf(err, errlen, "cannot set the sandbox's sysctls: %s", strerror(-r));
		return r;
	}
	*step = CF_STEP_TPROXY;
	l4 = cf_tproxy_listener(AF_INET, 4096, &out->port4);
	/* Each family's rules need the other's port to be free of its listeners (nftrules.c). */
	for (int i = 0; l4 >= 0 && i < 8 && (l6 < 0 || out->port6 == out->port4); i++) {
		if (l6 >= 0)
			close(l6);
		l6 = cf_tproxy_listener(AF_INET6, 4096, &out->port6);
		if (l6 < 0)
			break;
	}
	if (l6 >= 0 && out->port6 == out->port4) {
		close(l6);
		l6 = -EADDRINUSE;
	}
	if (l4 < 0 || l6 < 0) {
		r = l4 < 0 ? l4 : l6;
		snprintf(err, errlen,
			 "cannot open the transparent listeners: %s "
			 "(the kernel needs IP_TRANSPARENT/TPROXY support)",
			 strerror(-r));
		return r;
	}
	*step = CF_STEP_NFTABLES;
	r = cf_nft_child_ruleset(ruleset, sizeof(ruleset), out->port4, out->port6, plan, veth);
	if (r >= 0)
		r = cf_nft_load(ruleset, nfterr, sizeof(nfterr));
	if (r < 0) {
		snprintf(err, errlen,
			 "cannot load the sandbox's nftables rules (needs nf_tables "
			 "with fib, socket and TPROXY support): %s",
			 nfterr);
		return r;
	}
	if (veth) {
		*step = CF_STEP_CTRACK;
		ct = open_ctrack(err, errlen);
		if (ct < 0)
			return ct;
	}
	*step = CF_STEP_CAPTURE;
	if (capture) {
		cap = open_capture();
		if (cap < 0) {
			snprintf(err, errlen, "cannot open the capture socket in the sandbox: %s",
				 strerror(-cap));
			return cap;
		}
	}
	/* For the flow log's process attribution: netlink sockets stay in the netns they were made
	 * in. */
	*step = CF_STEP_SOCK_DIAG;
	diag = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (diag < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open a sock_diag socket in the sandbox: %s",
			 strerror(-r));
		return r;
	}
	out->diag = take_fd(&diag);
	out->ctrack = take_fd(&ct);
	out->capture = take_fd(&cap);
	out->tun_fd = take_fd(&tun);
	out->listen4 = take_fd(&l4);
	out->listen6 = take_fd(&l6);
	return 0;
}
