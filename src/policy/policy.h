/* SPDX-License-Identifier: MIT */
/*
 * Outbound policy: decides every flow and every DNS query of the command
 * tree from --offline, --block-metadata, --block-private, the CIDR and domain
 * rules, --default-policy and --proxy-only, and says why in the terms the
 * flow log's policy_violation event needs. Domain rules reach connections
 * through the names their destination address was resolved from, which the
 * engine feeds in from forwarded DNS answers (cf_policy_learn_*).
 *
 * Order of evaluation (the first that denies decides; docs/policy.md has the
 * table and examples):
 *   offline > metadata > private > deny rules > allow rules > default
 * then --proxy-only for a flow the rules let through. Before all of them but
 * --offline come the built-in denials no rule can lift: the host-alias
 * address (host.childflow.internal) on a port --allow-host-port did not
 * open, multicast and broadcast, and every address local to the host
 * (host_local), which the engine keeps current (cf_policy_set_host_local). With
 * --proxy-remote-dns, UDP and ICMP to a stand-in address (dns/synth.h) are
 * denied right after offline: the name behind it exists only at the proxy,
 * which carries TCP alone. CIDR rules: longest
 * prefix wins, deny on a tie. Domain rules: the most specific rule wins
 * (exact, then longer suffix), deny on a tie. A deny from either the CIDR or
 * the domain side denies. v4-mapped (::ffff:a.b.c.d) and NAT64
 * (64:ff9b::a.b.c.d) destinations are checked as the IPv4 address too.
 *
 * Pure logic: no I/O, no clocks, no global state (cf_policy_new() only reads
 * 16 bytes from getrandom() to key the name memory's hash); not thread-safe
 * (one engine loop owns it).
 */
#ifndef CF_POLICY_POLICY_H
#define CF_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "net/addr.h"

enum cf_flow_proto {
	CF_PROTO_TCP,
	CF_PROTO_UDP,
	CF_PROTO_DNS,
	CF_PROTO_ICMPV4,
	CF_PROTO_ICMPV6,
};

/* cf_flow_proto_name() - "tcp", "udp", "dns", "icmpv4", "icmpv6" (or "unknown"). */
const char *cf_flow_proto_name(enum cf_flow_proto p);

enum cf_reason {
	CF_REASON_NONE, /* allowed */
	CF_REASON_OFFLINE,
	CF_REASON_METADATA,
	CF_REASON_PRIVATE,
	CF_REASON_DENY_CIDR,
	CF_REASON_DENY_DOMAIN,
	CF_REASON_DENY_DOMAIN_EXACT,
	CF_REASON_DEFAULT_DENY,
	CF_REASON_PROXY_ONLY,
	CF_REASON_REMOTE_DNS, /* UDP/ICMP to a remote-DNS stand-in address: only the proxy can reach
				 it */
	CF_REASON_HOST_LOCAL, /* an address of the host itself (or a port --allow-host-port did not
				 open) */
	CF_REASON_MULTICAST,  /* multicast or broadcast: never leaves the sandbox */
	CF_REASON__COUNT,
};

/* cf_reason_code() - the flow log's reason_code: "offline", ... ("none" for NONE, "unknown"). */
const char *cf_reason_code(enum cf_reason r);

/* cf_reason_control() - the flag behind @r: "--offline", ... (NULL for NONE or unknown). */
const char *cf_reason_control(enum cf_reason r);

struct cf_verdict {
	bool allow;
	enum cf_reason reason; /* NONE when allowed */
	const char *control;   /* "--deny-cidr" etc. (static string), NULL when allowed */
	char matched_cidr[64]; /* the rule or built-in range, "203.0.113.0/24"; "" if none */
	/* the domain rule as written, "example.com" or "*.example.com"; "" if none */
	char matched_domain[256];
	char reason_text[160]; /* human, e.g. "203.0.113.7 is in --deny-cidr 203.0.113.0/24" */
	/* allowed as a port --allow-host-port opened: connect to the host's loopback */
	bool host_port;
};

struct cf_policy;

/*
 * cf_policy_new() - build the policy of @cfg (rules are copied; @cfg may go away).
 * Domain rules are normalised again (case, one trailing dot); a suffix rule
 * "*.example.com" matches subdomains of example.com but not example.com.
 * Return: 0, -EINVAL (NULL argument, a CIDR with a bad family or prefix, an
 * empty or over-long domain rule) or -ENOMEM.
 */
int cf_policy_new(const struct cf_config *cfg, struct cf_policy **out);

/* cf_policy_free() - release @p (NULL is fine). */
void cf_policy_free(struct cf_policy *p);

/*
 * cf_policy_check_flow() - decide a flow of @proto to @dst:@port.
 * @via_proxy: the engine will carry it through the upstream proxy (only
 *             --proxy-only looks at it; ICMP never counts as proxied)
 * @now_ms: monotonic ms, for the expiry of learned names
 * @out: filled in full, allowed or not; a denial is counted
 * For CF_PROTO_DNS the rules apply to the server's address; whether a query
 * name may be resolved at all is cf_policy_check_dns(). The engine's own
 * upstream sockets (its forwarder, the proxy) are not flows of the tree.
 */
void cf_policy_check_flow(struct cf_policy *p, enum cf_flow_proto proto, const struct cf_ip *dst,
			  uint16_t port, bool via_proxy, uint64_t now_ms, struct cf_verdict *out);

/*
 * cf_policy_builtin_ranges() - the built-in ranges behind @reason
 * (CF_REASON_METADATA, _PRIVATE or _MULTICAST), for a backend that enforces
 * them outside the engine (the rootful backend's nft table). Fill up to
 * @max into @out; return how many there are (0 for another reason).
 */
size_t cf_policy_builtin_ranges(enum cf_reason reason, struct cf_cidr *out, size_t max);

/*
 * cf_policy_names_verdict() - what the domain rules say of @ip through the
 * names it was learned from, without deciding or counting a flow: -1 a
 * deny rule matches one of them, 1 an allow rule (and no deny), 0 neither
 * (or no domain rules). For a backend that enforces them outside the
 * engine (the rootful backend's nft sets).
 */
int cf_policy_names_verdict(struct cf_policy *p, const struct cf_ip *ip, uint64_t now_ms);

/*
 * cf_policy_check_dns() - decide whether the query for @qname may be resolved.
 * @qname: the query name (case and a trailing dot do not matter; NULL or ""
 *         for a query without a usable name, which only --offline and
 *         --default-policy deny can refuse)
 * A denied query is answered empty by the engine. Under --default-policy deny
 * only names an --allow-domain(-exact) rule covers are resolved.
 */
void cf_policy_check_dns(struct cf_policy *p, const char *qname, struct cf_verdict *out);

/* cf_policy_has_domain_rules() - whether any --allow-domain(-exact) or --deny-domain(-exact) is
 * set. */
bool cf_policy_has_domain_rules(const struct cf_policy *p);

/*
 * cf_policy_check_name() - decide the name a TCP flow to @dst:@port, already
 * allowed, carries in its first bytes (@source: "TLS SNI" or "HTTP Host";
 * the engine reads it, docs/policy.md). Denied when a deny domain rule
 * covers @name (matched_domain: the rule), or under --default-policy deny
 * when no allow domain rule does and no --allow-cidr covers @dst
 * (matched_domain: @name): a flow an address rule allowed is checked
 * against deny rules only. The reason text names @source and @name.
 */
void cf_policy_check_name(struct cf_policy *p, const char *name, const char *source,
			  const struct cf_ip *dst, uint16_t port, struct cf_verdict *out);

/*
 * cf_policy_learn_address() - remember that @name resolved to @ip for @ttl seconds.
 * Kept at least CF_NC_MIN_TTL_S and at most CF_NC_MAX_TTL_S; bounded to
 * CF_NC_DEFAULT_CAPACITY records, least recently learned dropped first.
 * Invalid names and allocation failures are ignored (the address then
 * carries no name: under default deny it stays denied).
 */
void cf_policy_learn_address(struct cf_policy *p, const char *name, const struct cf_ip *ip,
			     uint32_t ttl, uint64_t now_ms);

/* cf_policy_learn_cname() - remember that @alias is a CNAME of @target for @ttl seconds. */
void cf_policy_learn_cname(struct cf_policy *p, const char *alias, const char *target, uint32_t ttl,
			   uint64_t now_ms);

/*
 * cf_policy_names_for() - names @ip currently carries (owners first, then CNAME aliases),
 * for the flow log and proxy CONNECT by name. A v4-mapped or NAT64 @ip also
 * yields the names of its IPv4 address. Fills up to @max pointers, valid
 * until the next learn call or cf_policy_free().
 * Return: the number stored.
 */
size_t cf_policy_names_for(struct cf_policy *p, const struct cf_ip *ip, uint64_t now_ms,
			   const char **names, size_t max);

/*
 * cf_policy_set_host_local() - the host's own addresses, as the engine read them
 * from its routing tables: @local prefixes reach the host itself (its
 * addresses and local routes), @bcast addresses are its subnets' broadcast
 * addresses. Replaces the previous sets. 0.0.0.0/8, 127.0.0.0/8, :: and ::1
 * are host-local whatever is given here.
 * Return: 0 or -ENOMEM (the previous sets are kept).
 */
int cf_policy_set_host_local(struct cf_policy *p, const struct cf_cidr *local, size_t nlocal,
			     const struct cf_ip *bcast, size_t nbcast);

/*
 * cf_policy_set_host_alias() - the sandbox addresses that stand for the host's
 * loopback (host.childflow.internal): flows to them are allowed only on the
 * ports of --allow-host-port (verdict.host_port), denied as host_local else.
 */
void cf_policy_set_host_alias(struct cf_policy *p, const struct cf_ip *v4, const struct cf_ip *v6);

/* cf_policy_denials() - number of denials so far, all reasons (for --fail-on-leak). */
uint64_t cf_policy_denials(const struct cf_policy *p);

/* cf_policy_denials_by_reason() - number of denials so far for @r (0 for NONE or unknown). */
uint64_t cf_policy_denials_by_reason(const struct cf_policy *p, enum cf_reason r);

#endif
