/* SPDX-License-Identifier: MIT */
/*
 * The address plan of the rootless sandbox: the tree's own addresses on tun0
 * and the virtual gateway/resolver the engine answers for. The tree's
 * addresses are /32 and /128 with a default route on tun0 and no on-link
 * subnet, so every destination but these two is routed out through the
 * engine. They come from the benchmarking range 198.18.0.0/15 (RFC 2544) and
 * a ULA prefix, which real services do not use.
 */
#ifndef CF_SANDBOX_PLAN_H
#define CF_SANDBOX_PLAN_H

#include <stdbool.h>

#include "net/addr.h"

#define CF_PLAN_CHILD4 "198.18.0.2"
#define CF_PLAN_GATEWAY4 "198.18.0.1"
#define CF_PLAN_CHILD6 "fd63:6866:6c77::2"
#define CF_PLAN_GATEWAY6 "fd63:6866:6c77::1"
/* host.childflow.internal: stands for the host's loopback (--allow-host-port) */
#define CF_PLAN_HOST_NAME "host.childflow.internal"
#define CF_PLAN_HOST4 "198.18.0.254"
#define CF_PLAN_HOST6 "fd63:6866:6c77::fe"
/* The tree's /etc/hosts lines for it (added with --allow-host-port). */
#define CF_HOST_ALIAS_HOSTS                                                                        \
	"# childflow: the host's loopback ports opened by --allow-host-port\n" CF_PLAN_HOST4       \
	" " CF_PLAN_HOST_NAME "\n" CF_PLAN_HOST6 " " CF_PLAN_HOST_NAME "\n"
#define CF_PLAN_TUN_NAME "tun0"
/* The largest IPv4 packet: a 65,507-byte UDP datagram crosses tun0 unfragmented. */
#define CF_PLAN_TUN_MTU 65535

/* fwmarks and routing tables of the child's policy routing (DESIGN.md). */
#define CF_MARK_LOCAL 1
#define CF_MARK_TUN 2
/* rootful: the conntrack mark of the tree's connections that the engine carries (tun0). */
#define CF_CT_MARK_ENGINE 16
#define CF_TABLE_LOCAL 100
#define CF_TABLE_TUN 101

struct cf_plan {
	struct cf_ip child4, gateway4;
	struct cf_ip child6, gateway6;
	struct cf_ip host4, host6; /* host.childflow.internal */
};

/* The tree's end of the rootful backend's veth pair, as the sandbox names it. */
#define CF_PLAN_VETH_NAME "eth0"

/*
 * The rootful backend's link to the host (rootful/README in docs/rootful.md):
 * a veth pair whose tree end carries the tree's addresses and default
 * routes, while tun0 still carries what the engine answers (DNS, the host
 * alias, with a proxy every TCP connection, and with a socks5:// proxy
 * every UDP datagram).
 */
struct cf_veth_plan {
	struct cf_ip tree4, host4; /* a /30 */
	struct cf_ip tree6, host6; /* a /64; family 0 when the tree has no IPv6 */
	bool tcp_via_engine;	   /* every TCP connection goes to the engine (--proxy) */
	bool udp_via_engine;	   /* every UDP datagram goes to the engine (socks5:// proxy) */
	bool all_via_engine;	   /* every packet goes to the engine (--rate-limit) */
};

/* Fill @plan with the fixed addresses above. */
void cf_plan_default(struct cf_plan *plan);

#endif
