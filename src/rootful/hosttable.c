/* SPDX-License-Identifier: MIT */
/*
 * Why the table looks so (docs/rootful.md has the whole picture):
 *
 * - forward, from the tree: only the tree's own source addresses, never
 *   to another childflow veth, never multicast or broadcast, never what
 *   the engine carries (it reaches here only from a socket bound to the
 *   tree's eth0), then the policy in the engine's order (offline,
 *   metadata, private, CIDR rules with the longest prefix first and deny
 *   first on a tie, the default).
 *   A denial answers at once (TCP reset, ICMP administratively
 *   prohibited), as the rootless engine does.
 * - forward, to the tree: replies only (conntrack), nothing new.
 * - forward, in by an uplink whose forwarding childflow turned on: dropped
 *   unless it goes to a childflow veth, so the host forwards nothing it
 *   did not forward before.
 * - input from the tree: the host's own addresses are host_local; only
 *   neighbour discovery and MLD on the link pass.
 * - postrouting: masquerade of the tree's addresses.
 *
 * Base chains sit one step before the filter and srcnat priorities, so
 * the run's verdicts come first; an accept here does not override a
 * drop of another table (the host's own firewall still applies).
 */
#include "rootful/hosttable.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/hostview.h"
#include "dns/synth.h"
#include "policy/policy.h"
#include "util/cleanup.h"

/* The addresses the domain rules cover, as the engine learns them (cf_host_table_learn()). */
static const struct {
	const char *name, *type;
} dom_sets[] = {
    {"dom_allow4", "ipv4_addr"},
    {"dom_allow6", "ipv6_addr"},
    {"dom_deny4", "ipv4_addr"},
    {"dom_deny6", "ipv6_addr"},
};

struct out {
	char *buf;
	size_t len, used;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->used)
		o->full = true;
	else
		o->used += (size_t)n;
}

static void put_match(struct out *o, const struct cf_cidr *c, const char *verdict)
{
	char s[CF_IP_STRLEN + 4];

	put(o, "    %s daddr %s %s\n", c->ip.family == AF_INET ? "ip" : "ip6",
	    cf_cidr_format(c, s, sizeof(s)), verdict);
}

static void put_builtin(struct out *o, enum cf_reason reason)
{
	struct cf_cidr v[16];
	size_t n = cf_policy_builtin_ranges(reason, v, 16);

	for (size_t i = 0; i < n && i < 16; i++)
		put_match(o, &v[i], "goto deny");
}

/* Longer prefixes first; on a tie deny before allow (policy.h). */
struct rule {
	const struct cf_cidr *c;
	bool deny;
};

static int rule_cmp(const void *a, const void *b)
{
	const struct rule *x = a, *y = b;

	if (x->c->prefix != y->c->prefix)
		return y->c->prefix - x->c->prefix;
	return (int)y->deny - (int)x->deny;
}

static int put_cidr_rules(struct out *o, const struct cf_config *cfg)
{
	size_t n = cfg->allow_cidrs.n + cfg->deny_cidrs.n, k = 0;
	struct rule *v;

	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->deny_cidrs.n; i++)
		v[k++] = (struct rule){&cfg->deny_cidrs.v[i], true};
	for (size_t i = 0; i < cfg->allow_cidrs.n; i++)
		v[k++] = (struct rule){&cfg->allow_cidrs.v[i], false};
	qsort(v, n, sizeof(*v), rule_cmp);
	for (size_t i = 0; i < n; i++)
		put_match(o, v[i].c, v[i].deny ? "goto deny" : "accept");
	free(v);
	return 0;
}

static void put_sources(struct out *o, const struct cf_host_plan *hp)
{
	char a4[CF_IP_STRLEN], a6[CF_IP_STRLEN];

	put(o, "    meta nfproto ipv4 ip saddr != %s drop\n",
	    cf_ip_format(&hp->link.tree4, a4, sizeof(a4)));
	if (hp->link.tree6.family)
		put(o, "    meta nfproto ipv6 ip6 saddr != %s drop\n",
		    cf_ip_format(&hp->link.tree6, a6, sizeof(a6)));
	else
		put(o, "    meta nfproto ipv6 drop\n");
}

static int put_from_tree(struct out *o, const struct cf_config *cfg, const struct cf_host_plan *hp)
{
	int r;

	put(o, "  chain from_tree {\n");
	put_sources(o, hp);
	put(o, "    oifname \"" CF_HOST_VETH_PREFIX "*\" goto deny\n");
	put_builtin(o, CF_REASON_MULTICAST);
	put(o, "    fib daddr type { broadcast, multicast } goto deny\n");
	/*
	 * What the engine carries (every TCP connection with a proxy or domain
	 * rules, every UDP datagram with a socks5:// proxy) the tree's own table
	 * sends to tun0; here it slipped past that (a socket bound to eth0 with
	 * SO_BINDTODEVICE ignores the mark's route) and would leave directly,
	 * around the proxy and the engine's checks.
	 */
	if (hp->link.tcp_via_engine)
		put(o, "    meta l4proto tcp goto deny\n");
	if (hp->link.udp_via_engine)
		put(o, "    meta l4proto udp goto deny\n");
	/* --rate-limit: the engine carries everything; a socket bound to the veth gets nothing. */
	if (cfg->offline || hp->link.all_via_engine)
		put(o, "    goto deny\n");
	/* Stand-ins for names only the proxy resolves: it carries TCP alone, the engine's. */
	if (cfg->proxy_remote_dns)
		put(o, "    ip daddr " CF_SYNTH_V4_TEXT " goto deny\n"
		       "    ip6 daddr " CF_SYNTH_V6_TEXT " goto deny\n");
	if (cfg->block_metadata)
		put_builtin(o, CF_REASON_METADATA);
	if (cfg->block_private)
		put_builtin(o, CF_REASON_PRIVATE);
	/* With a proxy only ICMP, and UDP but with socks5://, is left here: no proxy takes it. */
	if (cfg->proxy_only)
		put(o, "    goto deny\n");
	/* Domain rules through the addresses their names resolved to (the engine fills the sets).
	 */
	put(o, "    ip daddr @dom_deny4 goto deny\n    ip6 daddr @dom_deny6 goto deny\n");
	r = put_cidr_rules(o, cfg);
	put(o, "    ip daddr @dom_allow4 accept\n    ip6 daddr @dom_allow6 accept\n");
	if (cfg->default_policy == CF_POLICY_DENY)
		put(o, "    goto deny\n");
	put(o, "    accept\n  }\n");
	return r;
}

static void put_forward(struct out *o, const struct cf_host_plan *hp,
			const struct cf_rootful_state *st)
{
	put(o,
	    "  chain forward {\n"
	    "    type filter hook forward priority filter - 1; policy accept;\n"
	    "    iifname \"%s\" goto from_tree\n"
	    "    oifname \"%s\" ct state established,related accept\n"
	    "    oifname \"%s\" drop\n",
	    hp->veth, hp->veth, hp->veth);
	for (size_t i = 0; i < st->n; i++)
		put(o,
		    "    meta nfproto %s iifname \"%s\" oifname != \"" CF_HOST_VETH_PREFIX
		    "*\" drop\n",
		    st->ch[i].family == AF_INET ? "ipv4" : "ipv6", st->ch[i].iface);
	put(o, "  }\n");
}

static void put_input_nat(struct out *o, const struct cf_host_plan *hp)
{
	char a4[CF_IP_STRLEN], a6[CF_IP_STRLEN];

	put(o,
	    "  chain input {\n"
	    "    type filter hook input priority filter - 1; policy accept;\n"
	    "    iifname \"%s\" meta l4proto ipv6-icmp icmpv6 type { nd-router-solicit, "
	    "nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } "
	    "accept\n"
	    "    iifname \"%s\" goto deny\n"
	    "  }\n"
	    "  chain deny {\n"
	    "    meta l4proto tcp reject with tcp reset\n"
	    "    reject with icmpx type admin-prohibited\n"
	    "  }\n"
	    "  chain postrouting {\n"
	    "    type nat hook postrouting priority srcnat - 1; policy accept;\n"
	    "    ip saddr %s oifname != \"%s\" masquerade\n",
	    hp->veth, hp->veth, cf_ip_format(&hp->link.tree4, a4, sizeof(a4)), hp->veth);
	if (hp->link.tree6.family)
		put(o, "    ip6 saddr %s oifname != \"%s\" masquerade\n",
		    cf_ip_format(&hp->link.tree6, a6, sizeof(a6)), hp->veth);
	put(o, "  }\n");
}

/* -C egress: what leaves the host for the tree, after masquerade; replies before it is undone. */
static void put_capture(struct out *o, const struct cf_host_plan *hp)
{
	char a4[CF_IP_STRLEN], a6[CF_IP_STRLEN];

	if (!hp->log_group)
		return;
	put(o,
	    "  chain capture_out {\n"
	    "    type filter hook postrouting priority srcnat + 1; policy accept;\n"
	    "    iifname \"%s\" oifname != \"%s\" log prefix \"" CF_HOSTVIEW_PREFIX_OUT
	    "\" group %u\n"
	    "  }\n"
	    "  chain capture_in {\n"
	    "    type filter hook prerouting priority dstnat - 1; policy accept;\n"
	    "    ct direction reply ct original ip saddr %s log prefix \"" CF_HOSTVIEW_PREFIX_IN
	    "\" group %u\n",
	    hp->veth, hp->veth, (unsigned)hp->log_group,
	    cf_ip_format(&hp->link.tree4, a4, sizeof(a4)), (unsigned)hp->log_group);
	if (hp->link.tree6.family)
		put(o,
		    "    ct direction reply ct original ip6 saddr %s log prefix "
		    "\"" CF_HOSTVIEW_PREFIX_IN "\" group %u\n",
		    cf_ip_format(&hp->link.tree6, a6, sizeof(a6)), (unsigned)hp->log_group);
	put(o, "  }\n");
}

int cf_host_table_render(const struct cf_config *cfg, const struct cf_host_plan *hp,
			 const struct cf_rootful_state *st, char *buf, size_t len)
{
	struct out o = {buf, len, 0, false};
	int r;

	put(&o, "table inet %s {\n  flags owner\n", hp->table);
	for (size_t i = 0; i < CF_ARRAY_SIZE(dom_sets); i++)
		put(&o, "  set %s { type %s; flags timeout; }\n", dom_sets[i].name,
		    dom_sets[i].type);
	r = put_from_tree(&o, cfg, hp);
	put_forward(&o, hp, st);
	put_input_nat(&o, hp);
	put_capture(&o, hp);
	put(&o, "}\n");
	if (r < 0)
		return r;
	return o.full ? -ENOSPC : (int)o.used;
}

#define OWNER_LINE "  flags owner\n"

/* @text without its "flags owner" line, for a kernel before owned tables (Linux 5.12). */
static char *without_owner(const char *text)
{
	const char *at = strstr(text, OWNER_LINE);
	size_t head = at ? (size_t)(at - text) : 0, len = strlen(text);
	char *s;

	if (!at)
		return NULL;
	s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, text, head);
	memcpy(s + head, at + strlen(OWNER_LINE), len - head - strlen(OWNER_LINE) + 1);
	return s;
}

int cf_host_table_load(const char *text, struct nft_ctx **out, bool *owned, char *err,
		       size_t errlen)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	const char *msg;
	char *plain;

	*out = NULL;
	*owned = true;
	if (!nft || nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		snprintf(err, errlen, "cannot create a libnftables context");
		nft_ctx_free(nft);
		return -ENOMEM;
	}
	if (nft_run_cmd_from_buffer(nft, text) == 0) {
		*out = nft;
		return 0;
	}
	msg = nft_ctx_get_error_buffer(nft);
	snprintf(err, errlen,
		 "cannot load the run's nftables table (needs nf_tables with fib, conntrack, "
		 "reject and masquerade): %s",
		 msg && *msg ? msg : "nftables rejected it");
	/* One line for the caller's message. */
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = ' ';
	/* Without the owner flag, the reaper (or --cleanup) deletes the table. */
	plain = without_owner(text);
	if (plain && nft_run_cmd_from_buffer(nft, plain) == 0) {
		*owned = false;
		*out = nft;
		free(plain);
		return 0;
	}
	free(plain);
	nft_ctx_free(nft);
	return -EINVAL;
}

int cf_host_table_delete(const char *table)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	char cmd[96];
	int r;

	if (!nft)
		return -ENOMEM;
	/* Quiet: a table that is gone already is the usual case. */
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		nft_ctx_free(nft);
		return -ENOMEM;
	}
	snprintf(cmd, sizeof(cmd), "delete table inet %s", table);
	r = nft_run_cmd_from_buffer(nft, cmd) == 0 ? 0 : -ENOENT;
	nft_ctx_free(nft);
	return r;
}

void cf_host_table_drop(struct nft_ctx *nft)
{
	if (nft)
		nft_ctx_free(nft);
}

/* Run one command on the owned table's context. Return 0 or -EINVAL. */
static int run(struct nft_ctx *nft, const char *cmd)
{
	return nft_run_cmd_from_buffer(nft, cmd) == 0 ? 0 : -EINVAL;
}

int cf_host_table_learn(struct nft_ctx *nft, const char *table, const struct cf_ip *ip, int verdict,
			uint32_t ttl)
{
	char a[CF_IP_STRLEN], set[16], cmd[256];

	snprintf(set, sizeof(set), "dom_%s%c", verdict < 0 ? "deny" : "allow",
		 ip->family == AF_INET ? '4' : '6');
	cf_ip_format(ip, a, sizeof(a));
	/* Replaced, so the element lives as long as the newest answer says. */
	snprintf(cmd, sizeof(cmd), "delete element inet %s %s { %s }", table, set, a);
	(void)run(nft, cmd); /* absent: nothing to delete */
	snprintf(cmd, sizeof(cmd), "add element inet %s %s { %s timeout %us }", table, set, a,
		 (unsigned)ttl);
	return run(nft, cmd);
}
