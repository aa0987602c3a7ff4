/* SPDX-License-Identifier: MIT */
/*
 * The one nft table of the child's network namespace (DESIGN.md, rootless
 * data path step 1), loaded in-process with libnftables.
 */
#ifndef CF_SANDBOX_NFTRULES_H
#define CF_SANDBOX_NFTRULES_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox/plan.h"

/*
 * Render the child table for transparent listeners on @port4 / @port6 into
 * @buf: every TCP connection goes to the engine, or with @veth (the rootful
 * backend) only what the engine answers. Return the length, or -ENOSPC.
 */
int cf_nft_child_ruleset(char *buf, size_t len, uint16_t port4, uint16_t port6,
			 const struct cf_plan *plan, const struct cf_veth_plan *veth);

/*
 * Load @ruleset into the current network namespace atomically. On failure
 * return -EINVAL (or -ENOMEM) and copy libnftables' message into @err.
 */
int cf_nft_load(const char *ruleset, char *err, size_t errlen);

#endif
