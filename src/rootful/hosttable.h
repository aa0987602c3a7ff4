/* SPDX-License-Identifier: MIT */
/*
 * The one nft table a rootful run adds to the host (inet family, named
 * "childflow-<id>", flags owner): the kernel deletes it when the netlink
 * socket that created it closes, so it never outlives childflow, even
 * after SIGKILL. It holds the masquerade of the tree's addresses, the
 * policy of the tree's direct traffic, and the drops that keep the
 * forwarding the run turned on from forwarding anything but the tree's
 * replies.
 */
#ifndef CF_ROOTFUL_HOSTTABLE_H
#define CF_ROOTFUL_HOSTTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "rootful/hostplan.h"
#include "rootful/state.h"

struct nft_ctx;

/* cf_host_table_render() - the table's text into @buf. Return its length, or -ENOSPC/-ENOMEM. */
int cf_host_table_render(const struct cf_config *cfg, const struct cf_host_plan *hp,
			 const struct cf_rootful_state *st, char *buf, size_t len);

/*
 * cf_host_table_load() - load @text through a new libnftables context
 * whose socket owns the table; keep *@out open for the run, then
 * cf_host_table_drop() it. A kernel without owned tables (before 5.12)
 * gets a plain one (*@owned false), which the reaper deletes. Return 0, or
 * -errno with @err set.
 */
int cf_host_table_load(const char *text, struct nft_ctx **out, bool *owned, char *err,
		       size_t errlen);

/* cf_host_table_delete() - delete the inet table @table. Return 0, or -ENOENT when there is none.
 */
int cf_host_table_delete(const char *table);

/*
 * cf_host_table_learn() - put @ip in @table's set of addresses the domain
 * rules allow (@verdict 1) or deny (-1) for @ttl seconds. Return 0 or
 * -EINVAL.
 */
int cf_host_table_learn(struct nft_ctx *nft, const char *table, const struct cf_ip *ip, int verdict,
			uint32_t ttl);

/* cf_host_table_drop() - close @nft: the kernel deletes the owned table (NULL allowed). */
void cf_host_table_drop(struct nft_ctx *nft);

#endif
