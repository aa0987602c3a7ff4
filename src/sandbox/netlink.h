/* SPDX-License-Identifier: MIT */
/*
 * The few rtnetlink requests the sandbox needs (libmnl): link up, addresses,
 * routes and policy rules in the current network namespace. Each call is one
 * synchronous request with an ACK; errors come back as -errno.
 */
#ifndef CF_SANDBOX_NETLINK_H
#define CF_SANDBOX_NETLINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"

struct mnl_socket;

/* Open a NETLINK_ROUTE socket. Return 0 or -errno. */
int cf_nl_open(struct mnl_socket **out);

/* Close it (NULL allowed). */
void cf_nl_close(struct mnl_socket *nl);

/* Set interface @ifindex up, optionally with @mtu (0 keeps it). Return 0 or -errno. */
int cf_nl_link_up(struct mnl_socket *nl, unsigned ifindex, unsigned mtu);

/* Add @ip/@prefix to @ifindex; v6 addresses get IFA_F_NODAD. Return 0 or -errno. */
int cf_nl_addr_add(struct mnl_socket *nl, unsigned ifindex, const struct cf_ip *ip,
		   unsigned prefix);

/*
 * Add a route to @family's default (or @dst/@prefix when dst is non-NULL) in
 * @table, of @type (RTN_UNICAST or RTN_LOCAL), out of @ifindex. Return 0 or -errno.
 */
int cf_nl_route_add(struct mnl_socket *nl, int family, uint32_t table, uint8_t type,
		    const struct cf_ip *dst, unsigned prefix, unsigned ifindex);

/* Add "fwmark @mark lookup @table" at @priority for @family. Return 0 or -errno. */
int cf_nl_rule_add(struct mnl_socket *nl, int family, uint32_t mark, uint32_t table,
		   uint32_t priority);

/* Add a default route of @gw's family via @gw out of @ifindex, in the main table. Return 0 or
 * -errno. */
int cf_nl_route_default_via(struct mnl_socket *nl, const struct cf_ip *gw, unsigned ifindex);

/*
 * Create a veth pair: @name here, its peer @peer_name in the network
 * namespace of process @peer_pid. Return 0 or -errno (-EEXIST: @name is taken).
 */
int cf_nl_veth_add(struct mnl_socket *nl, const char *name, const char *peer_name, pid_t peer_pid);

/* Delete the link called @name (with a veth, its peer too). Return 0 or -errno (-ENODEV). */
int cf_nl_link_del(struct mnl_socket *nl, const char *name);

/*
 * Add (@add) or delete the rule "iif @iif lookup @table" at @priority for
 * @family. Return 0 or -errno (deleting: -ENOENT when absent).
 */
int cf_nl_rule_iif(struct mnl_socket *nl, bool add, int family, const char *iif, uint32_t table,
		   uint32_t priority);

/*
 * Add (@add) or delete @family's default route in @table via @gw (NULL:
 * on-link) out of @ifindex. Return 0 or -errno (deleting: -ESRCH when absent).
 */
int cf_nl_route_table_default(struct mnl_socket *nl, bool add, int family, uint32_t table,
			      const struct cf_ip *gw, unsigned ifindex);

/* One route of a dump: destination prefix and output interface (0: none). */
struct cf_nl_route {
	struct cf_ip dst; /* family set; all zero for a default route */
	unsigned prefix;
	unsigned oif;
	struct cf_ip gw; /* family 0: none */
	uint8_t type;	 /* RTN_UNICAST, RTN_LOCAL, ... */
};

/*
 * Call @fn for every route of @family (AF_INET or AF_INET6) in routing
 * table @table (RT_TABLE_MAIN: the main table). Return 0 or -errno.
 */
int cf_nl_route_dump(struct mnl_socket *nl, int family, uint32_t table,
		     void (*fn)(const struct cf_nl_route *r, void *arg), void *arg);

#endif
