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

#include "sandbox/plan.h"

#define CF_HOST_MAX_UPLINKS 16
/* Every host-side name of a run starts so, followed by the 8 hex digits of its id. */
#define CF_HOST_VETH_PREFIX "cf-"
#define CF_HOST_TABLE_PREFIX "childflow-"

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
};

/*
 * cf_host_plan_make() - choose a fresh run id and addresses, and list the
 * uplinks. @v6: whether the tree gets IPv6 (rootful/state.h decides).
 * Return 0, or -errno with @err set.
 */
int cf_host_plan_make(struct cf_host_plan *hp, bool v6, char *err, size_t errlen);

/* cf_host_name_is_ours() - whether @name is "<prefix><8 hex digits>" (nothing broader). */
bool cf_host_name_is_ours(const char *name, const char *prefix);

#endif
