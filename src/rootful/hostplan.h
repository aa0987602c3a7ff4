/* SPDX-License-Identifier: MIT */
/*
 * What one rootful run adds to the host, chosen before anything changes:
 * the run id and the names made from it, the veth pair's addresses (a /30
 * in 198.18.128.0/17 and a /64 in fd63:6866:6c77:8000::/49 that no host route
 * overlaps), and the interfaces the tree's traffic may leave by (whose
 * forwarding the run turns on, rootful/state.h).
 */
#ifndef CF_ROOTFUL_HOSTPLAN_H
#define CF_ROOTFUL_HOSTPLAN_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "hoststate/records.h"
#include "sandbox/plan.h"

struct cf_host_plan {
	char id[9];		/* 8 hex digits */
	char veth[IF_NAMESIZE]; /* the host's end: "cf-<id>" */
	char table[32];		/* the nft table (inet): "childflow-<id>" */
	struct cf_veth_plan link;
	/* Where replies to the tree come in: every interface a main-table route leaves by. */
	char up4[CF_HOST_MAX_UPLINKS][IF_NAMESIZE];
	size_t n_up4;
	char up6[CF_HOST_MAX_UPLINKS][IF_NAMESIZE];
	size_t n_up6;
	/* --iface: the run's routing table for the tree's traffic, out of that interface only. */
	const char *iface; /* NULL: the host's own routes */
	unsigned iface_index;
	struct cf_ip iface_gw4, iface_gw6; /* next hops (family 0: on-link) */
	uint32_t rt_table;
	uint16_t log_group; /* -C egress/wire-egress/both: the NFLOG group, else 0 */
};

/* The priority of the rule that sends the veth's traffic to the run's table (--iface). */
#define CF_HOST_RULE_PRIORITY 100

/*
 * cf_host_plan_make() - choose a fresh run id and addresses, and list the
 * uplinks: @iface alone (it must exist and be up; its next hops come from
 * the main table's routes out of it, and a free routing table is chosen),
 * or without it every interface a main-table route leaves by. @v6: whether
 * the tree gets IPv6 (rootful/state.h decides). Return 0, or -errno with
 * @err set (-ENODEV, -ENETDOWN: @iface).
 */
int cf_host_plan_make(struct cf_host_plan *hp, const char *iface, bool v6, char *err,
		      size_t errlen);

#endif
