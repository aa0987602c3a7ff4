/* SPDX-License-Identifier: MIT */
/*
 * Why these rules: the tree's kernel terminates its own TCP, but a new
 * connection must not complete before the engine has opened the upstream
 * side. So in the route hook a SYN (without ACK) to a non-local address is
 * marked for tun0, where the engine reads it; every other TCP segment to a
 * non-local address is marked for lo. Packets arriving on tun0 (the SYN the
 * engine writes back once upstream succeeded) or lo (the rest of the
 * connection) are TPROXY-ed to the transparent sockets whose fds the engine
 * holds; policy routing sends mark 1 to "local" and mark 2 to tun0.
 *
 * Only a SYN may reach the listener. Every other segment goes to the
 * connection it belongs to (request, established or TIME_WAIT socket) or
 * is dropped: the kernel's lockless lookup can miss a connection for an
 * instant while a request socket is being replaced by the full one (a
 * segment the tree sends the moment its connect() returns races the
 * handshake's last ACK on the other CPU), and a TPROXY rule that falls back
 * to the listener then answers with an RST that kills a healthy
 * connection. Dropped instead, the segment is retransmitted and arrives.
 * The fallback lookup of the non-SYN rules goes to the other family's
 * listener port, where childflow has no listener of this family (the IPv6
 * one is IPV6_V6ONLY; childnet.c keeps the two ports apart), so it finds
 * nothing; a listener the tree itself opened there would at worst get the
 * stray segment, as before.
 */
#include "sandbox/nftrules.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/plan.h"

/*
 * The rootful backend's tree sends only what the engine answers through
 * tun0: DNS on port 53 (any server, as in the rootless backend), the
 * virtual resolver and host alias addresses, with a proxy every TCP
 * connection, and with a socks5:// proxy every UDP datagram (its UDP
 * ASSOCIATE, engine/socksudp.c); everything else takes the veth and the
 * host's kernel. UDP is steered by the mark alone, as DNS always was: the
 * engine reads datagrams from tun0 and writes the replies and ICMP errors
 * back there, so no listener is needed (TPROXY for UDP would need one
 * transparent socket per flow to answer from the right address).
 * With --rate-limit every packet goes to the engine, whose buckets then
 * see all of the tree's bytes (the host's table forwards nothing from the
 * veth then, for a socket bound to it).
 */
static int engine_selector(char *buf, size_t len, const struct cf_plan *plan,
			   const struct cf_veth_plan *veth)
{
	char gw4[CF_IP_STRLEN], h4[CF_IP_STRLEN], gw6[CF_IP_STRLEN], h6[CF_IP_STRLEN];
	const char *udp;
	char other[64] = "";
	int n;

	if (!veth)
		return snprintf(buf, len, "    meta l4proto != tcp return\n") < (int)len ? 0
											 : -ENOSPC;
	cf_ip_format(&plan->gateway4, gw4, sizeof(gw4));
	cf_ip_format(&plan->host4, h4, sizeof(h4));
	cf_ip_format(&plan->gateway6, gw6, sizeof(gw6));
	cf_ip_format(&plan->host6, h6, sizeof(h6));
	udp = veth->udp_via_engine || veth->all_via_engine ? "" : "udp dport 53 ";
	if (veth->all_via_engine)
		snprintf(other, sizeof(other), " meta mark set %d ct mark set %d", CF_MARK_TUN,
			 CF_CT_MARK_ENGINE);
	n = snprintf(buf, len,
		     "    meta l4proto udp %smeta mark set %d ct mark set %d return\n"
		     "    meta l4proto != tcp%s return\n"
		     "%s"
		     "    tcp dport 53 goto to_engine\n"
		     "    ip daddr { %s, %s } goto to_engine\n"
		     "    ip6 daddr { %s, %s } goto to_engine\n"
		     "    return\n"
		     "  }\n"
		     "  chain to_engine {\n"
		     "    ct mark set %d\n",
		     udp, CF_MARK_TUN, CF_CT_MARK_ENGINE, other,
		     veth->tcp_via_engine || veth->all_via_engine ? "    goto to_engine\n" : "",
		     gw4, h4, gw6, h6, CF_CT_MARK_ENGINE);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int cf_nft_child_ruleset(char *buf, size_t len, uint16_t port4, uint16_t port6,
			 const struct cf_plan *plan, const struct cf_veth_plan *veth)
{
	char selector[768];
	int n;

	if (engine_selector(selector, sizeof(selector), plan, veth) < 0)
		return -ENOSPC;
	n = snprintf(
	    buf, len,
	    "table inet childflow {\n"
	    "  chain output {\n"
	    "    type route hook output priority mangle; policy accept;\n"
	    "    fib daddr type local return\n"
	    "%s"
	    "    tcp flags & (syn | ack) == syn meta mark set %d return\n"
	    "    meta mark set %d\n"
	    "  }\n"
	    "  chain prerouting {\n"
	    "    type filter hook prerouting priority mangle; policy accept;\n"
	    "    meta l4proto != tcp return\n"
	    "    fib daddr type local return\n"
	    "    meta nfproto ipv4 meta l4proto tcp tcp flags & (syn | ack) == syn "
	    "tproxy ip to :%u meta mark set %d accept\n"
	    "    meta nfproto ipv6 meta l4proto tcp tcp flags & (syn | ack) == syn "
	    "tproxy ip6 to :%u meta mark set %d accept\n"
	    "    meta nfproto ipv4 meta l4proto tcp tproxy ip to :%u meta mark set %d accept\n"
	    "    meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :%u meta mark set %d accept\n"
	    "    drop\n"
	    "  }\n"
	    "}\n",
	    selector, CF_MARK_TUN, CF_MARK_LOCAL, port4, CF_MARK_LOCAL, port6, CF_MARK_LOCAL, port6,
	    CF_MARK_LOCAL, port4, CF_MARK_LOCAL);

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
