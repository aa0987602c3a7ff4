/* SPDX-License-Identifier: MIT */
/*
 * Why these rules: the tree's kernel terminates its own TCP, but a new
 * connection must not complete before the engine has opened the upstream
 * side. So in the route hook a SYN (without ACK) to a non-local address is
 * marked for tun0, where the engine reads it; every other TCP segment to a
 * non-local address is marked for lo. Packets arriving on tun0 (the SYN the
 * engine writes back once upstream succeeded) or lo (the rest of the
 * connection) are TPROXY-ed to the transparent listeners whose fds the
 * engine holds; policy routing sends mark 1 to "local" and mark 2 to tun0.
 */
#include "sandbox/nftrules.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/plan.h"

int cf_nft_child_ruleset(char *buf, size_t len, uint16_t port4, uint16_t port6)
{
	int n = snprintf(buf, len,
			 "table inet childflow {\n"
			 "  chain output {\n"
			 "    type route hook output priority mangle; policy accept;\n"
			 "    meta l4proto != tcp return\n"
			 "    fib daddr type local return\n"
			 "    tcp flags & (syn | ack) == syn meta mark set %d return\n"
			 "    meta mark set %d\n"
			 "  }\n"
			 "  chain prerouting {\n"
			 "    type filter hook prerouting priority mangle; policy accept;\n"
			 "    meta l4proto != tcp return\n"
			 "    fib daddr type local return\n"
			 "    meta nfproto ipv4 meta l4proto tcp tproxy ip to :%u meta mark set %d accept\n"
			 "    meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :%u meta mark set %d accept\n"
			 "  }\n"
			 "}\n",
			 CF_MARK_TUN, CF_MARK_LOCAL, port4, CF_MARK_LOCAL, port6, CF_MARK_LOCAL);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

int cf_nft_load(const char *ruleset, char *err, size_t errlen)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	const char *msg;
	int r = 0;

	if (!nft)
		return -ENOMEM;
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		r = -ENOMEM;
		goto out;
	}
	if (nft_run_cmd_from_buffer(nft, ruleset) != 0) {
		msg = nft_ctx_get_error_buffer(nft);
		snprintf(err, errlen, "%s", msg && *msg ? msg : "nftables rejected the ruleset");
		/* Keep it to one line for the caller's message. */
		err[strcspn(err, "\n")] = '\0';
		r = -EINVAL;
	}
out:
	nft_ctx_free(nft);
	return r;
}
