/* SPDX-License-Identifier: MIT */
/*
 * The rootful backend's records of what the host's kernel carries: the
 * tree's TCP, UDP and ICMP echo flows seen as conntrack events of the
 * tree's own network namespace (a NETLINK_NETFILTER socket the sandbox's
 * helper subscribed there). Each new entry is decided by the same policy
 * the host's table enforces (so a denied flow is a policy_violation, an
 * allowed one a connect_attempt), its first reply is the connect result,
 * its destruction the flow's end with the kernel's byte counters (IP
 * packets, headers included). Entries of connections the engine carries
 * itself (conntrack mark CF_CT_MARK_ENGINE) and of the tree's loopback are
 * not flows of this path.
 */
#ifndef CF_ENGINE_CTRACK_H
#define CF_ENGINE_CTRACK_H

#include "engine/ctx.h"
#include "sandbox/plan.h"

/* Take over @fd (events of the tree whose addresses @veth names). Return 0 or -errno. */
int cf_ctrack_new(struct cf_engine *e, int fd, const struct cf_veth_plan *veth);

/* Read and record the queued events. */
void cf_ctrack_on_readable(struct cf_engine *e);

/*
 * The run is over: read what is left, end every flow still open with its
 * counters from a last dump of the table, and free everything.
 */
void cf_ctrack_finish(struct cf_engine *e);

#endif
