/* SPDX-License-Identifier: MIT */
/*
 * Network set-up inside the child's fresh network namespace, run by the
 * helper while it still holds its namespace capabilities: lo and tun0 up,
 * the address plan, policy routing, sysctls, the nft table and the two
 * transparent listeners whose fds go to the engine, and with --capture an
 * AF_PACKET socket (it needs CAP_NET_RAW in the namespace, which only the
 * helper has).
 */
#ifndef CF_SANDBOX_CHILDNET_H
#define CF_SANDBOX_CHILDNET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/ctl.h"
#include "sandbox/plan.h"

struct cf_child_net {
	int tun_fd;
	int listen4;
	int listen6;
	int capture; /* AF_PACKET socket seeing tun0 and lo, or -1 */
	int diag;    /* NETLINK_SOCK_DIAG socket of the sandbox's network namespace */
	int ctrack;  /* rootful: its conntrack events (NETLINK_NETFILTER), else -1 */
	uint16_t port4;
	uint16_t port6;
};

/*
 * A listening socket (non-blocking) that accepts connections for any
 * address, the TPROXY target, bound to an ephemeral port of every address
 * of @family (IPv6 only for AF_INET6). Return the fd (port in *@port) or
 * -errno (-ENOPROTOOPT: no transparent proxy support in the kernel).
 */
int cf_tproxy_listener(int family, int backlog, uint16_t *port);

/*
 * Set up the child's network (with @veth: the rootful backend's, whose veth
 * end the host created already). *@step follows the steps as they start.
 * On failure return -errno, close whatever was opened and describe the
 * failing step in @err (one line, with a remedy where there is one).
 */
int cf_child_net_setup(const struct cf_plan *plan, const struct cf_veth_plan *veth, gid_t gid,
		       bool capture, struct cf_child_net *out, enum cf_sandbox_step *step,
		       char *err, size_t errlen);

#endif
