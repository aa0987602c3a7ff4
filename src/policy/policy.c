// SPDX-License-Identifier: MIT
/*
 * Outbound policy decisions.
 *
 * Theory of operation
 * -------------------
 * cf_policy_new() compiles the configuration into three lookup structures:
 *
 *   - CIDR rules: a path-compressed binary trie per family whose nodes carry
 *     allow/deny bits. The deepest rule node on the destination's path is
 *     the longest matching prefix; an allow and a deny of the same prefix
 *     share a node and deny wins. Cost: one two-word compare per branching
 *     point on the path, about log2(rules).
 *   - Domain rules: one open-addressing hash table of rule name -> bits
 *     (allow/deny x exact/suffix/"*." subdomains-only). A name is looked up
 *     whole, then with one leading label removed at a time; the first level
 *     with an applicable rule is the most specific one and decides (exact
 *     before suffix, deny before allow on a tie).
 *   - The name memory (namecache.c), fed from forwarded DNS answers, which
 *     says which names a destination address was resolved from.
 *
 * A flow is decided in the order of the table in docs/policy.md:
 *   offline, the host alias and its ports, multicast/broadcast, the host's own
 *   addresses (host_local), metadata, private, deny rules (CIDR then domain), allow rules,
 *   --default-policy, then --proxy-only for what the rules let through.
 * --proxy-only comes last on purpose: a flow that would be refused even
 * through the proxy reports the rule that refuses it, not "use the proxy".
 * v4-mapped and NAT64 destinations are checked both as written and as their
 * embedded IPv4 address; a deny from either form denies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/synth.h"
#include "policy/namecache.h"
#include "policy/policy.h"
#include "util/cleanup.h"
#include "util/siphash.h"

enum {
	RULE_ALLOW = 1 << 0,
	RULE_DENY = 1 << 1,
};

enum {
	DOM_ALLOW_EXACT = 1 << 0,
	DOM_DENY_EXACT = 1 << 1,
	DOM_ALLOW_SUFFIX = 1 << 2,
	DOM_DENY_SUFFIX = 1 << 3,
	DOM_ALLOW_SUB = 1 << 4, /* "*.example.com": subdomains only */
	DOM_DENY_SUB = 1 << 5,
};

/*
 * A node of the CIDR trie. Addresses are 128-bit big-endian numbers (hi, lo);
 * IPv4 sits in the top 32 bits of hi, in a trie of its own.
 */
struct cidr_node {
	uint64_t hi, lo; /* the prefix, bits below len zero */
	struct cidr_node *child[2];
	uint8_t len;
	uint8_t flags; /* RULE_*; 0 for a branching node no rule asked for */
};

struct cidr_trie {
	struct cidr_node *pool; /* every node; a rule adds at most two */
	size_t used;
	struct cidr_node *root[2]; /* [0] IPv4, [1] IPv6 */
};

struct dom_entry {
	char *name; /* NULL: empty slot */
	size_t len;
	uint64_t hash;
	uint8_t flags; /* DOM_* */
};

struct dom_table {
	struct dom_entry *slots;
	size_t mask;
	size_t n;
};

/* A built-in range of --block-metadata or --block-private; sources in docs/policy.md. */
struct builtin_range {
	uint8_t family;
	uint8_t prefix;
	uint8_t b[16];
	const char *what;
};

struct cf_policy {
	bool offline;
	bool block_private;
	bool block_metadata;
	bool proxy_only;
	bool remote_dns;
	bool default_deny;
	bool has_allow_domains;
	bool has_deny_domains;
	struct cidr_trie cidrs;
	struct dom_table domains;
	struct cf_namecache *names;
	uint64_t denials[CF_REASON__COUNT];
	/* the host's own prefixes and broadcast addresses (cf_policy_set_host_local) */
	struct builtin_range *host_nets;
	size_t n_host_nets;
	struct builtin_range *host_bcast;
	size_t n_host_bcast;
	/* host.childflow.internal and the ports --allow-host-port opened */
	struct cf_ip host_alias[2];
	size_t n_host_alias;
	struct cf_host_port *host_ports;
	size_t n_host_ports;
};

static const struct builtin_range metadata_ranges[] = {
    {AF_INET, 32, {169, 254, 169, 254}, "the cloud instance metadata service"},
    {AF_INET6,
     128,
     {0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54},
     "the AWS IMDS IPv6 endpoint"},
    {AF_INET, 32, {169, 254, 170, 2}, "the AWS ECS task metadata and credentials endpoint"},
    {AF_INET, 32, {169, 254, 170, 23}, "the AWS EKS Pod Identity agent"},
    {AF_INET6, 128, {0xfd, 0x00, 0x0e, 0xc2, [15] = 0x23}, "the AWS EKS Pod Identity agent"},
    {AF_INET, 32, {100, 100, 100, 200}, "the Alibaba Cloud metadata service"},
    {AF_INET, 32, {168, 63, 129, 16}, "the Azure WireServer"},
    {AF_INET6,
     128,
     {0xfe, 0x80, [12] = 0xa9, 0xfe, 0xa9, 0xfe},
     "the OpenStack IPv6 metadata service"},
};

static const struct builtin_range private_ranges[] = {
    {AF_INET, 8, {10}, "private (RFC 1918)"},
    {AF_INET, 12, {172, 16}, "private (RFC 1918)"},
    {AF_INET, 16, {192, 168}, "private (RFC 1918)"},
    {AF_INET, 10, {100, 64}, "shared address space (RFC 6598)"},
    {AF_INET, 8, {127}, "loopback"},
    {AF_INET, 16, {169, 254}, "link-local"},
    {AF_INET, 8, {0}, "\"this network\" (RFC 1122)"},
    {AF_INET6, 128, {[15] = 1}, "loopback"},
    {AF_INET6, 128, {0}, "unspecified (local)"},
    {AF_INET6, 10, {0xfe, 0x80}, "link-local"},
    {AF_INET6, 7, {0xfc}, "unique local (RFC 4193)"},
    {AF_INET6, 10, {0xfe, 0xc0}, "site-local (RFC 3879)"},
};

const char *cf_flow_proto_name(enum cf_flow_proto p)
{
	switch (p) {
	case CF_PROTO_TCP:
		return "tcp";
	case CF_PROTO_UDP:
		return "udp";
	case CF_PROTO_DNS:
		return "dns";
	case CF_PROTO_ICMPV4:
		return "icmpv4";
	case CF_PROTO_ICMPV6:
		return "icmpv6";
	}
	return "unknown";
}

static const struct {
	const char *code;
	const char *control;
} reasons[CF_REASON__COUNT] = {
    [CF_REASON_NONE] = {"none", NULL},
    [CF_REASON_OFFLINE] = {"offline", "--offline"},
    [CF_REASON_METADATA] = {"metadata", "--block-metadata"},
    [CF_REASON_PRIVATE] = {"private", "--block-private"},
    [CF_REASON_DENY_CIDR] = {"deny_cidr", "--deny-cidr"},
    [CF_REASON_DENY_DOMAIN] = {"deny_domain", "--deny-domain"},
    [CF_REASON_DENY_DOMAIN_EXACT] = {"deny_domain_exact", "--deny-domain-exact"},
    [CF_REASON_DEFAULT_DENY] = {"default_deny", "--default-policy"},
    [CF_REASON_PROXY_ONLY] = {"proxy_only", "--proxy-only"},
    [CF_REASON_REMOTE_DNS] = {"remote_dns", "--proxy-remote-dns"},
    /* Built in, no flag turns them on: the flow log's control is "built-in". */
    [CF_REASON_HOST_LOCAL] = {"host_local", NULL},
    [CF_REASON_MULTICAST] = {"multicast", NULL},
};

const char *cf_reason_code(enum cf_reason r)
{
	return (unsigned int)r < CF_REASON__COUNT ? reasons[r].code : "unknown";
}

const char *cf_reason_control(enum cf_reason r)
{
	return (unsigned int)r < CF_REASON__COUNT ? reasons[r].control : NULL;
}

/* Never leave the sandbox: multicast, the reserved class E and the limited broadcast. */
static const struct builtin_range multicast_ranges[] = {
    {AF_INET, 4, {224}, "multicast"},
    {AF_INET, 4, {240}, "reserved (class E) or the limited broadcast"},
    {AF_INET6, 8, {0xff}, "multicast"},
};

/* The host itself, whatever its interfaces say: connecting there reaches the host. */
static const struct builtin_range local_ranges[] = {
    {AF_INET, 8, {127}, "the host's loopback"},
    {AF_INET, 8, {0}, "\"this host\" (0.0.0.0/8)"},
    {AF_INET6, 128, {[15] = 1}, "the host's loopback"},
    {AF_INET6, 128, {0}, "the unspecified address (this host)"},
};

size_t cf_policy_builtin_ranges(enum cf_reason reason, struct cf_cidr *out, size_t max)
{
	const struct builtin_range *v = NULL;
	size_t n = 0;

	if (reason == CF_REASON_METADATA) {
		v = metadata_ranges;
		n = CF_ARRAY_SIZE(metadata_ranges);
	} else if (reason == CF_REASON_PRIVATE) {
		v = private_ranges;
		n = CF_ARRAY_SIZE(private_ranges);
	} else if (reason == CF_REASON_MULTICAST) {
		v = multicast_ranges;
		n = CF_ARRAY_SIZE(multicast_ranges);
	}
	for (size_t i = 0; i < n && i < max; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].ip.family = v[i].family;
		memcpy(out[i].ip.b, v[i].b, sizeof(v[i].b));
		out[i].prefix = v[i].prefix;
	}
	return n;
}

/* ---- addresses ---------------------------------------------------------- */

static uint8_t family_bits(uint8_t family)
{
	return family == AF_INET ? 32 : 128;
}

/* Copy @src keeping only its first @prefix bits. */
static void mask_addr(uint8_t dst[16], const uint8_t src[16], uint8_t prefix)
{
	size_t full = prefix / 8;
	unsigned int rest = prefix % 8;

	memset(dst, 0, 16);
	memcpy(dst, src, full);
	if (rest)
		dst[full] = (uint8_t)(src[full] & (0xff << (8 - rest)));
}

static bool in_range(const struct builtin_range *r, const struct cf_ip *ip)
{
	uint8_t m[16];

	if (r->family != ip->family)
		return false;
	mask_addr(m, ip->b, r->prefix);
	return memcmp(m, r->b, 16) == 0;
}

/* If @ip is ::ffff:a.b.c.d or 64:ff9b::a.b.c.d, store a.b.c.d in @v4. */
static bool embedded_v4(const struct cf_ip *ip, struct cf_ip *v4)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};

	if (ip->family != AF_INET6 ||
	    (memcmp(ip->b, mapped, 12) != 0 && memcmp(ip->b, nat64, 12) != 0))
		return false;
	memset(v4, 0, sizeof(*v4));
	v4->family = AF_INET;
	memcpy(v4->b, ip->b + 12, 4);
	return true;
}

/* ---- CIDR trie ---------------------------------------------------------- */

/*
 * A path-compressed binary trie (PATRICIA): a node exists only where a rule
 * ends or two rules branch, so a lookup takes at most one step per such
 * point on the path, about log2(rules) steps, each a compare of two words.
 * The deepest rule node on the path is the longest matching prefix; an allow
 * and a deny of the same prefix share a node, and deny wins.
 */

static uint64_t load_be64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void store_be64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

static void ip_key(const struct cf_ip *ip, uint64_t *hi, uint64_t *lo)
{
	if (ip->family == AF_INET) {
		uint8_t b[8] = {ip->b[0], ip->b[1], ip->b[2], ip->b[3]};

		*hi = load_be64(b);
		*lo = 0;
	} else {
		*hi = load_be64(ip->b);
		*lo = load_be64(ip->b + 8);
	}
}

/* Length of the common prefix of two keys, at most @max bits. */
static unsigned int common_bits(uint64_t hi1, uint64_t lo1, uint64_t hi2, uint64_t lo2,
				unsigned int max)
{
	unsigned int n;

	if (hi1 != hi2)
		n = (unsigned int)__builtin_clzll(hi1 ^ hi2);
	else if (lo1 != lo2)
		n = 64 + (unsigned int)__builtin_clzll(lo1 ^ lo2);
	else
		n = 128;
	return n < max ? n : max;
}

static unsigned int bit_at(uint64_t hi, uint64_t lo, unsigned int pos)
{
	return pos < 64 ? (unsigned int)(hi >> (63 - pos)) & 1
			: (unsigned int)(lo >> (127 - pos)) & 1;
}

static void mask_key(uint64_t *hi, uint64_t *lo, unsigned int len)
{
	if (len < 64) {
		*hi = len ? *hi & ~(UINT64_MAX >> len) : 0;
		*lo = 0;
	} else if (len < 128) {
		*lo = len > 64 ? *lo & ~(UINT64_MAX >> (len - 64)) : 0;
	}
}

static struct cidr_node *trie_node(struct cidr_trie *t, uint64_t hi, uint64_t lo, unsigned int len,
				   uint8_t flags)
{
	struct cidr_node *n = &t->pool[t->used++];

	mask_key(&hi, &lo, len);
	n->hi = hi;
	n->lo = lo;
	n->len = (uint8_t)len;
	n->flags = flags;
	return n;
}

static int trie_add(struct cidr_trie *t, const struct cf_cidr *c, uint8_t flag)
{
	unsigned int len = c->prefix;
	struct cidr_node **pp, *n, *glue;
	uint64_t hi, lo;

	if ((c->ip.family != AF_INET && c->ip.family != AF_INET6) ||
	    c->prefix > family_bits(c->ip.family))
		return -EINVAL;
	ip_key(&c->ip, &hi, &lo);
	mask_key(&hi, &lo, len);
	pp = &t->root[c->ip.family == AF_INET6];
	while ((n = *pp)) {
		unsigned int common =
		    common_bits(hi, lo, n->hi, n->lo, len < n->len ? len : n->len);

		if (common == n->len && n->len == len) {
			n->flags |= flag;
			return 0;
		}
		if (common == n->len) {
			pp = &n->child[bit_at(hi, lo, n->len)];
			continue;
		}
		if (common == len) {
			/* The new rule is a shorter prefix of n: it goes above n. */
			glue = trie_node(t, hi, lo, len, flag);
			glue->child[bit_at(n->hi, n->lo, len)] = n;
		} else {
			/* They part at bit @common: a branching node with both below. */
			glue = trie_node(t, hi, lo, common, 0);
			glue->child[bit_at(n->hi, n->lo, common)] = n;
			glue->child[bit_at(hi, lo, common)] = trie_node(t, hi, lo, len, flag);
		}
		*pp = glue;
		return 0;
	}
	*pp = trie_node(t, hi, lo, len, flag);
	return 0;
}

static int cidr_build(struct cidr_trie *t, const struct cf_cidrv *allow,
		      const struct cf_cidrv *deny)
{
	int r = 0;

	t->pool = calloc(2 * (allow->n + deny->n) + 1, sizeof(*t->pool));
	if (!t->pool)
		return -ENOMEM;
	for (size_t i = 0; i < allow->n && r == 0; i++)
		r = trie_add(t, &allow->v[i], RULE_ALLOW);
	for (size_t i = 0; i < deny->n && r == 0; i++)
		r = trie_add(t, &deny->v[i], RULE_DENY);
	return r;
}

/* The rule with the longest prefix containing @ip, or NULL. */
static const struct cidr_node *cidr_lookup(const struct cidr_trie *t, const struct cf_ip *ip)
{
	const struct cidr_node *n, *best = NULL;
	unsigned int bits;
	uint64_t hi, lo;

	if (ip->family != AF_INET && ip->family != AF_INET6)
		return NULL;
	bits = family_bits(ip->family);
	ip_key(ip, &hi, &lo);
	for (n = t->root[ip->family == AF_INET6]; n; n = n->child[bit_at(hi, lo, n->len)]) {
		if (common_bits(hi, lo, n->hi, n->lo, n->len) < n->len)
			break;
		if (n->flags)
			best = n;
		if (n->len == bits)
			break;
	}
	return best;
}

/* The rule @n as a CIDR of @family. */
static struct cf_cidr node_cidr(const struct cidr_node *n, uint8_t family)
{
	struct cf_cidr c = {.ip = {.family = family}, .prefix = n->len};

	if (family == AF_INET) {
		uint8_t b[8];

		store_be64(b, n->hi);
		memcpy(c.ip.b, b, 4);
	} else {
		store_be64(c.ip.b, n->hi);
		store_be64(c.ip.b + 8, n->lo);
	}
	return c;
}

/* ---- domain table ------------------------------------------------------- */

static size_t table_size(size_t n)
{
	size_t size = 8;

	while (size < n * 2)
		size <<= 1;
	return size;
}

static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static struct dom_entry *dom_slot(const struct dom_table *t, const char *s, size_t len, uint64_t h)
{
	size_t i = (size_t)h & t->mask;

	for (;; i = (i + 1) & t->mask) {
		struct dom_entry *e = &t->slots[i];

		if (!e->name || (e->hash == h && e->len == len && memcmp(e->name, s, len) == 0))
			return e;
	}
}

static const struct dom_entry *dom_find(const struct dom_table *t, const char *s, size_t len)
{
	const struct dom_entry *e;

	if (!t->n)
		return NULL;
	e = dom_slot(t, s, len, fnv1a(s, len));
	return e->name ? e : NULL;
}

/*
 * Whether a normalised rule has labels of 1..63 bytes and "*" only as the
 * whole leftmost label of a longer name: what the configuration accepts.
 */
static bool rule_ok(const char *s, size_t len)
{
	size_t label = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (s[i] == '*' && !(i == 0 && len > 2 && s[1] == '.'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

static int dom_add(struct dom_table *t, const char *rule, bool suffix, uint8_t flag,
		   uint8_t sub_flag)
{
	char buf[CF_NC_NAME_MAX + 1];
	int len = cf_name_normalise(rule, buf);
	const char *key = buf;
	struct dom_entry *e;
	uint64_t h;

	if (len <= 0 || !rule_ok(buf, (size_t)len))
		return -EINVAL;
	if (suffix && buf[0] == '*') {
		key += 2; /* "*.example.com": subdomains only */
		len -= 2;
		flag = sub_flag;
	}
	h = fnv1a(key, (size_t)len);
	e = dom_slot(t, key, (size_t)len, h);
	if (!e->name) {
		e->name = strndup(key, (size_t)len);
		if (!e->name)
			return -ENOMEM;
		e->len = (size_t)len;
		e->hash = h;
		t->n++;
	}
	e->flags |= flag;
	return 0;
}

static int dom_add_list(struct dom_table *t, const struct cf_strv *v, bool suffix, uint8_t flag,
			uint8_t sub_flag)
{
	for (size_t i = 0; i < v->n; i++) {
		int r = dom_add(t, v->v[i], suffix, flag, sub_flag);

		if (r < 0)
			return r;
	}
	return 0;
}

static int dom_build(struct dom_table *t, const struct cf_config *cfg)
{
	size_t n = cfg->allow_domains.n + cfg->allow_domains_exact.n + cfg->deny_domains.n +
		   cfg->deny_domains_exact.n;
	size_t size = table_size(n);
	int r;

	t->slots = calloc(size, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->mask = size - 1;
	r = dom_add_list(t, &cfg->allow_domains, true, DOM_ALLOW_SUFFIX, DOM_ALLOW_SUB);
	if (r == 0)
		r = dom_add_list(t, &cfg->allow_domains_exact, false, DOM_ALLOW_EXACT, 0);
	if (r == 0)
		r = dom_add_list(t, &cfg->deny_domains, true, DOM_DENY_SUFFIX, DOM_DENY_SUB);
	if (r == 0)
		r = dom_add_list(t, &cfg->deny_domains_exact, false, DOM_DENY_EXACT, 0);
	return r;
}

static void dom_free(struct dom_table *t)
{
	if (!t->slots)
		return;
	for (size_t i = 0; i <= t->mask; i++)
		free(t->slots[i].name);
	free(t->slots);
}

/* The domain rule that decides for one name. */
struct dom_match {
	uint8_t action; /* 0, RULE_ALLOW or RULE_DENY */
	bool exact;	/* an --*-domain-exact rule */
	bool sub;	/* a "*." rule */
	const struct dom_entry *e;
};

static bool dom_pick(struct dom_match *m, const struct dom_entry *e, uint8_t flags, uint8_t deny,
		     uint8_t allow, uint8_t sub)
{
	uint8_t hit = flags & (deny | allow);

	if (!hit)
		return false;
	m->e = e;
	hit = (flags & deny) ? (flags & deny) : hit;
	m->action = (flags & deny) ? RULE_DENY : RULE_ALLOW;
	m->sub = (hit & sub) && !(hit & ~sub);
	return true;
}

/* Find the most specific rule for the normalised @name: exact, then longest suffix. */
static struct dom_match dom_match(const struct dom_table *t, const char *name, size_t len)
{
	struct dom_match m = {0};
	const struct dom_entry *e;

	if (!t->n || len == 0)
		return m;
	e = dom_find(t, name, len);
	if (e && dom_pick(&m, e, e->flags, DOM_DENY_EXACT, DOM_ALLOW_EXACT, 0)) {
		m.exact = true;
		return m;
	}
	if (e && dom_pick(&m, e, e->flags, DOM_DENY_SUFFIX, DOM_ALLOW_SUFFIX, 0))
		return m;
	for (size_t i = 0; i < len; i++) {
		if (name[i] != '.')
			continue;
		e = dom_find(t, name + i + 1, len - i - 1);
		if (e && dom_pick(&m, e, e->flags, DOM_DENY_SUFFIX | DOM_DENY_SUB,
				  DOM_ALLOW_SUFFIX | DOM_ALLOW_SUB, DOM_DENY_SUB | DOM_ALLOW_SUB))
			return m;
	}
	return m;
}

/* ---- verdicts ----------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void set_text(struct cf_verdict *v, const char *fmt,
							   ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reason_text, sizeof(v->reason_text), fmt, ap);
	va_end(ap);
}

static void verdict_allow(struct cf_verdict *v)
{
	v->allow = true;
	v->host_port = false;
	v->reason = CF_REASON_NONE;
	v->control = NULL;
	v->matched_cidr[0] = '\0';
	v->matched_domain[0] = '\0';
	v->reason_text[0] = '\0';
}

static void verdict_deny(struct cf_policy *p, struct cf_verdict *v, enum cf_reason r)
{
	v->allow = false;
	v->reason = r;
	v->control = cf_reason_control(r);
	p->denials[r]++;
}

static void set_matched_cidr(struct cf_verdict *v, const struct cf_cidr *c)
{
	cf_cidr_format(c, v->matched_cidr, sizeof(v->matched_cidr));
}

static void set_matched_domain(struct cf_verdict *v, const struct dom_match *m)
{
	snprintf(v->matched_domain, sizeof(v->matched_domain), "%s%s", m->sub ? "*." : "",
		 m->e->name);
}

/* ---- flows -------------------------------------------------------------- */

struct flow {
	enum cf_flow_proto proto;
	const struct cf_ip *dst;
	uint16_t port;
	struct cf_ip addrs[2]; /* dst, then its embedded IPv4 if any */
	size_t naddrs;
	char dst_text[CF_IP_STRLEN]; /* formatted on the first denial only */
};

static const char *dst_str(struct flow *f)
{
	if (!f->dst_text[0])
		cf_ip_format(f->dst, f->dst_text, sizeof(f->dst_text));
	return f->dst_text;
}

/* " (as 203.0.113.7)" when the match was on the embedded IPv4 form, else "". */
static const char *as_v4(const struct flow *f, const struct cf_ip *matched, char *buf, size_t len)
{
	char ip[CF_IP_STRLEN];

	if (matched == &f->addrs[0])
		return "";
	snprintf(buf, len, " (as %s)", cf_ip_format(matched, ip, sizeof(ip)));
	return buf;
}

static void deny_builtin(struct cf_policy *p, struct flow *f, const struct builtin_range *r,
			 const struct cf_ip *matched, enum cf_reason reason, struct cf_verdict *v)
{
	struct cf_cidr c = {.ip = {.family = r->family}, .prefix = r->prefix};
	char as[CF_IP_STRLEN + 8];

	memcpy(c.ip.b, r->b, sizeof(c.ip.b));
	verdict_deny(p, v, reason);
	set_matched_cidr(v, &c);
	if (v->control)
		set_text(v, "%s%s is %s, blocked by %s", dst_str(f),
			 as_v4(f, matched, as, sizeof(as)), r->what, v->control);
	else if (reason == CF_REASON_MULTICAST)
		set_text(v, "%s%s is %s, which never leaves the sandbox", dst_str(f),
			 as_v4(f, matched, as, sizeof(as)), r->what);
	else
		set_text(v,
			 "%s%s is %s; the sandbox never reaches the host (see --allow-host-port)",
			 dst_str(f), as_v4(f, matched, as, sizeof(as)), r->what);
}

/* Deny with @reason if either address form lies in one of @ranges. */
static bool check_builtin(struct cf_policy *p, struct flow *f, const struct builtin_range *ranges,
			  size_t n, enum cf_reason reason, struct cf_verdict *v)
{
	for (size_t k = 0; k < f->naddrs; k++) {
		for (size_t i = 0; i < n; i++) {
			if (in_range(&ranges[i], &f->addrs[k])) {
				deny_builtin(p, f, &ranges[i], &f->addrs[k], reason, v);
				return true;
			}
		}
	}
	return false;
}

/* Whether either address form of @f is host.childflow.internal. */
static bool to_host_alias(const struct cf_policy *p, const struct flow *f)
{
	for (size_t k = 0; k < f->naddrs; k++)
		for (size_t i = 0; i < p->n_host_alias; i++)
			if (cf_ip_equal(&f->addrs[k], &p->host_alias[i]))
				return true;
	return false;
}

static bool host_port_open(const struct cf_policy *p, const struct flow *f)
{
	bool udp = f->proto == CF_PROTO_UDP || f->proto == CF_PROTO_DNS;

	if (f->proto == CF_PROTO_ICMPV4 || f->proto == CF_PROTO_ICMPV6)
		return false;
	for (size_t i = 0; i < p->n_host_ports; i++)
		if (p->host_ports[i].port == f->port && p->host_ports[i].udp == udp)
			return true;
	return false;
}

/* host.childflow.internal: the ports --allow-host-port opened, nothing else; true if decided. */
static bool check_host_alias(struct cf_policy *p, struct flow *f, struct cf_verdict *v)
{
	bool udp = f->proto == CF_PROTO_UDP || f->proto == CF_PROTO_DNS;

	if (!to_host_alias(p, f))
		return false;
	if (host_port_open(p, f)) {
		v->host_port = true;
		return true;
	}
	verdict_deny(p, v, CF_REASON_HOST_LOCAL);
	if (f->proto == CF_PROTO_ICMPV4 || f->proto == CF_PROTO_ICMPV6)
		set_text(v,
			 "%s to host.childflow.internal (%s): only ports opened by "
			 "--allow-host-port reach the host",
			 cf_flow_proto_name(f->proto), dst_str(f));
	else
		set_text(v,
			 "port %u/%s of host.childflow.internal (the host's loopback) is not "
			 "open: use --allow-host-port %u/%s",
			 f->port, udp ? "udp" : "tcp", f->port, udp ? "udp" : "tcp");
	return true;
}

/* Multicast, broadcast and the host's own addresses: denied whatever the rules say. */
static bool check_never(struct cf_policy *p, struct flow *f, struct cf_verdict *v)
{
	return check_builtin(p, f, multicast_ranges, CF_ARRAY_SIZE(multicast_ranges),
			     CF_REASON_MULTICAST, v) ||
	       check_builtin(p, f, p->host_bcast, p->n_host_bcast, CF_REASON_MULTICAST, v) ||
	       check_builtin(p, f, local_ranges, CF_ARRAY_SIZE(local_ranges), CF_REASON_HOST_LOCAL,
			     v) ||
	       check_builtin(p, f, p->host_nets, p->n_host_nets, CF_REASON_HOST_LOCAL, v);
}

/* The CIDR verdict: RULE_DENY if either address form's longest match denies. */
static uint8_t cidr_decide(const struct cf_policy *p, const struct flow *f,
			   const struct cidr_node **hit, const struct cf_ip **hit_ip)
{
	uint8_t action = 0;

	for (size_t k = 0; k < f->naddrs; k++) {
		const struct cidr_node *e = cidr_lookup(&p->cidrs, &f->addrs[k]);

		if (!e)
			continue;
		if (e->flags & RULE_DENY) {
			*hit = e;
			*hit_ip = &f->addrs[k];
			return RULE_DENY;
		}
		action = RULE_ALLOW;
	}
	return action;
}

/* A walk over the names a destination carries, looking for the deciding domain rule. */
struct dom_walk {
	const struct cf_policy *p;
	bool want_deny;	 /* deny domain rules exist: look at every name */
	bool want_allow; /* only an allow domain rule can save the flow */
	struct dom_match deny;
	const char *deny_name;
	bool allowed;
	const char *first_name; /* for the message */
};

static int dom_visit(const char *name, void *ctx)
{
	struct dom_walk *w = ctx;
	struct dom_match m = dom_match(&w->p->domains, name, strlen(name));

	if (!w->first_name)
		w->first_name = name;
	if (m.action == RULE_DENY) {
		w->deny = m;
		w->deny_name = name;
		return 1;
	}
	if (m.action == RULE_ALLOW)
		w->allowed = true;
	return !w->want_deny && (w->allowed || !w->want_allow);
}

static void deny_cidr(struct cf_policy *p, struct flow *f, const struct cidr_node *e,
		      const struct cf_ip *ip, struct cf_verdict *v)
{
	struct cf_cidr c = node_cidr(e, ip->family);
	char as[CF_IP_STRLEN + 8];

	verdict_deny(p, v, CF_REASON_DENY_CIDR);
	set_matched_cidr(v, &c);
	set_text(v, "%s%s is in --deny-cidr %s", dst_str(f), as_v4(f, ip, as, sizeof(as)),
		 v->matched_cidr);
}

static void deny_domain_flow(struct cf_policy *p, struct flow *f, const struct dom_walk *w,
			     struct cf_verdict *v)
{
	verdict_deny(p, v, w->deny.exact ? CF_REASON_DENY_DOMAIN_EXACT : CF_REASON_DENY_DOMAIN);
	set_matched_domain(v, &w->deny);
	set_text(v, "%s was resolved from %s, which matches %s %s", dst_str(f), w->deny_name,
		 v->control, v->matched_domain);
}

static void deny_default_flow(struct cf_policy *p, struct flow *f, const struct dom_walk *w,
			      struct cf_verdict *v)
{
	verdict_deny(p, v, CF_REASON_DEFAULT_DENY);
	if (w->first_name)
		set_text(v, "%s (resolved from %s) matches no allow rule (--default-policy deny)",
			 dst_str(f), w->first_name);
	else
		set_text(v, "%s matches no allow rule (--default-policy deny)", dst_str(f));
}

static void deny_proxy_only(struct cf_policy *p, struct flow *f, struct cf_verdict *v)
{
	const char *name = cf_flow_proto_name(f->proto);

	verdict_deny(p, v, CF_REASON_PROXY_ONLY);
	if (f->proto == CF_PROTO_ICMPV4 || f->proto == CF_PROTO_ICMPV6) {
		set_text(v, "%s to %s cannot go through the proxy (--proxy-only)", name,
			 dst_str(f));
	} else {
		char ap[CF_ADDRPORT_STRLEN];

		set_text(v, "direct %s to %s bypasses the proxy (--proxy-only)", name,
			 cf_addrport_format(f->dst, f->port, ap, sizeof(ap)));
	}
}

/* Apply the CIDR and domain rules and the default; true if that denied. */
static bool check_rules(struct cf_policy *p, struct flow *f, uint64_t now_ms, struct cf_verdict *v)
{
	const struct cidr_node *e = NULL;
	const struct cf_ip *ip = NULL;
	uint8_t cidr = cidr_decide(p, f, &e, &ip);
	struct dom_walk w = {
	    .p = p,
	    .want_deny = p->has_deny_domains,
	    .want_allow = p->default_deny && !cidr && p->has_allow_domains,
	};

	if (cidr == RULE_DENY) {
		deny_cidr(p, f, e, ip, v);
		return true;
	}
	/* With default deny and no CIDR allow, the walk also names the address in the message. */
	if (w.want_deny || (p->default_deny && !cidr))
		cf_namecache_walk(p->names, f->addrs, f->naddrs, now_ms, CF_NC_WALK_MAX, dom_visit,
				  &w);
	if (w.deny_name) {
		deny_domain_flow(p, f, &w, v);
		return true;
	}
	if (p->default_deny && !cidr && !w.allowed) {
		deny_default_flow(p, f, &w, v);
		return true;
	}
	return false;
}

void cf_policy_check_flow(struct cf_policy *p, enum cf_flow_proto proto, const struct cf_ip *dst,
			  uint16_t port, bool via_proxy, uint64_t now_ms, struct cf_verdict *out)
{
	struct flow f = {.proto = proto, .dst = dst, .port = port, .naddrs = 1};

	verdict_allow(out);
	f.addrs[0] = *dst;
	if (embedded_v4(dst, &f.addrs[1]))
		f.naddrs = 2;
	if (p->offline) {
		char ap[CF_ADDRPORT_STRLEN];

		verdict_deny(p, out, CF_REASON_OFFLINE);
		set_text(out, "%s to %s does not leave the sandbox (--offline)",
			 cf_flow_proto_name(proto), cf_addrport_format(dst, port, ap, sizeof(ap)));
		return;
	}
	if (check_host_alias(p, &f, out) || check_never(p, &f, out))
		return;
	if (p->remote_dns && proto != CF_PROTO_TCP && cf_synth_contains(dst)) {
		verdict_deny(p, out, CF_REASON_REMOTE_DNS);
		set_text(out,
			 "%s to %s: the address stands for a name only the proxy resolves, "
			 "and the proxy carries TCP only (--proxy-remote-dns)",
			 cf_flow_proto_name(proto), dst_str(&f));
		return;
	}
	if (p->block_metadata &&
	    check_builtin(p, &f, metadata_ranges, CF_ARRAY_SIZE(metadata_ranges),
			  CF_REASON_METADATA, out))
		return;
	if (p->block_private && check_builtin(p, &f, private_ranges, CF_ARRAY_SIZE(private_ranges),
					      CF_REASON_PRIVATE, out))
		return;
	if (check_rules(p, &f, now_ms, out))
		return;
	if (p->proxy_only && (!via_proxy || proto == CF_PROTO_ICMPV4 || proto == CF_PROTO_ICMPV6))
		deny_proxy_only(p, &f, out);
}

int cf_policy_names_verdict(struct cf_policy *p, const struct cf_ip *ip, uint64_t now_ms)
{
	struct cf_ip addrs[2] = {*ip};
	size_t n = embedded_v4(ip, &addrs[1]) ? 2 : 1;
	struct dom_walk w = {.p = p, .want_deny = true, .want_allow = true};

	if (!p->has_deny_domains && !p->has_allow_domains)
		return 0;
	cf_namecache_walk(p->names, addrs, n, now_ms, CF_NC_WALK_MAX, dom_visit, &w);
	return w.deny_name ? -1 : w.allowed ? 1 : 0;
}

/* ---- DNS ---------------------------------------------------------------- */

void cf_policy_check_dns(struct cf_policy *p, const char *qname, struct cf_verdict *out)
{
	char name[CF_NC_NAME_MAX + 1];
	int len = qname ? cf_name_normalise(qname, name) : 0;
	struct dom_match m;

	verdict_allow(out);
	if (len < 0)
		len = 0; /* over-long: no rule can match it */
	name[len] = '\0';
	if (p->offline) {
		verdict_deny(p, out, CF_REASON_OFFLINE);
		set_text(out, "the query for %s is not resolved (--offline)", len ? name : "\".\"");
		return;
	}
	m = dom_match(&p->domains, name, (size_t)len);
	if (m.action == RULE_DENY) {
		verdict_deny(p, out, m.exact ? CF_REASON_DENY_DOMAIN_EXACT : CF_REASON_DENY_DOMAIN);
		set_matched_domain(out, &m);
		set_text(out, "%s matches %s %s", name, out->control, out->matched_domain);
		return;
	}
	if (m.action != RULE_ALLOW && p->default_deny) {
		verdict_deny(p, out, CF_REASON_DEFAULT_DENY);
		set_text(out, "%s matches no --allow-domain rule (--default-policy deny)",
			 len ? name : "a query without a name");
	}
}

/* ---- names in a flow's first bytes (TLS SNI, HTTP Host) ------------------ */

bool cf_policy_has_domain_rules(const struct cf_policy *p)
{
	return p->has_allow_domains || p->has_deny_domains;
}

void cf_policy_check_name(struct cf_policy *p, const char *name, const char *source,
			  const struct cf_ip *dst, uint16_t port, struct cf_verdict *out)
{
	char n[CF_NC_NAME_MAX + 1], ap[CF_ADDRPORT_STRLEN];
	struct flow f = {.proto = CF_PROTO_TCP, .dst = dst, .port = port, .naddrs = 1};
	const struct cidr_node *e = NULL;
	const struct cf_ip *ip = NULL;
	int len = cf_name_normalise(name, n);
	struct dom_match m = {0};

	verdict_allow(out);
	f.addrs[0] = *dst;
	if (embedded_v4(dst, &f.addrs[1]))
		f.naddrs = 2;
	if (len > 0)
		m = dom_match(&p->domains, n, (size_t)len);
	else
		snprintf(n, sizeof(n), "%s", name); /* no rule can match it: for the message */
	cf_addrport_format(dst, port, ap, sizeof(ap));
	if (m.action == RULE_DENY) {
		verdict_deny(p, out, m.exact ? CF_REASON_DENY_DOMAIN_EXACT : CF_REASON_DENY_DOMAIN);
		set_matched_domain(out, &m);
		set_text(out, "%s %s of tcp to %s matches %s %s", source, n, ap, out->control,
			 out->matched_domain);
		return;
	}
	if (m.action == RULE_ALLOW || !p->default_deny || cidr_decide(p, &f, &e, &ip) == RULE_ALLOW)
		return;
	verdict_deny(p, out, CF_REASON_DEFAULT_DENY);
	snprintf(out->matched_domain, sizeof(out->matched_domain), "%s", n);
	set_text(out, "%s %s of tcp to %s matches no --allow-domain rule (--default-policy deny)",
		 source, n, ap);
}

/* ---- name memory -------------------------------------------------------- */

void cf_policy_learn_address(struct cf_policy *p, const char *name, const struct cf_ip *ip,
			     uint32_t ttl, uint64_t now_ms)
{
	/* Errors leave the address without this name, which can only deny more. */
	(void)cf_namecache_add_address(p->names, name, ip, ttl, now_ms);
}

void cf_policy_learn_cname(struct cf_policy *p, const char *alias, const char *target, uint32_t ttl,
			   uint64_t now_ms)
{
	(void)cf_namecache_add_cname(p->names, alias, target, ttl, now_ms);
}

size_t cf_policy_names_for(struct cf_policy *p, const struct cf_ip *ip, uint64_t now_ms,
			   const char **names, size_t max)
{
	struct cf_ip addrs[2];
	size_t n = 1;

	if (!ip)
		return 0;
	addrs[0] = *ip;
	if (embedded_v4(ip, &addrs[1]))
		n = 2;
	return cf_namecache_names_for(p->names, addrs, n, now_ms, names, max);
}

/* Built-in ranges for @n prefixes; NULL with @n 0 or on failure (-ENOMEM in *r). */
static struct builtin_range *host_ranges(const struct cf_cidr *c, const struct cf_ip *ip, size_t n,
					 const char *what, int *r)
{
	struct builtin_range *v;

	*r = 0;
	if (!n)
		return NULL;
	v = calloc(n, sizeof(*v));
	if (!v) {
		*r = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cf_ip *a = c ? &c[i].ip : &ip[i];

		v[i].family = a->family;
		v[i].prefix = c ? c[i].prefix : family_bits(a->family);
		mask_addr(v[i].b, a->b, v[i].prefix);
		v[i].what = what;
	}
	return v;
}

int cf_policy_set_host_local(struct cf_policy *p, const struct cf_cidr *local, size_t nlocal,
			     const struct cf_ip *bcast, size_t nbcast)
{
	struct builtin_range *nets, *bc;
	int r;

	nets = host_ranges(local, NULL, nlocal, "an address of the host itself", &r);
	if (r < 0)
		return r;
	bc = host_ranges(NULL, bcast, nbcast, "a broadcast address of the host's networks", &r);
	if (r < 0) {
		free(nets);
		return r;
	}
	free(p->host_nets);
	free(p->host_bcast);
	p->host_nets = nets;
	p->n_host_nets = nlocal;
	p->host_bcast = bc;
	p->n_host_bcast = nbcast;
	return 0;
}

void cf_policy_set_host_alias(struct cf_policy *p, const struct cf_ip *v4, const struct cf_ip *v6)
{
	p->n_host_alias = 0;
	if (v4)
		p->host_alias[p->n_host_alias++] = *v4;
	if (v6)
		p->host_alias[p->n_host_alias++] = *v6;
}

/* The ports of --allow-host-port, from their normalised strings. */
static int host_ports_build(struct cf_policy *p, const struct cf_strv *v)
{
	if (!v->n)
		return 0;
	p->host_ports = calloc(v->n, sizeof(*p->host_ports));
	if (!p->host_ports)
		return -ENOMEM;
	for (size_t i = 0; i < v->n; i++)
		if (cf_host_port_parse(v->v[i], &p->host_ports[p->n_host_ports++]) < 0)
			return -EINVAL;
	return 0;
}

uint64_t cf_policy_denials(const struct cf_policy *p)
{
	uint64_t total = 0;

	for (size_t r = 0; r < CF_REASON__COUNT; r++)
		total += p->denials[r];
	return total;
}

uint64_t cf_policy_denials_by_reason(const struct cf_policy *p, enum cf_reason r)
{
	return (unsigned int)r < CF_REASON__COUNT ? p->denials[r] : 0;
}

int cf_policy_new(const struct cf_config *cfg, struct cf_policy **out)
{
	struct cf_policy *p;
	int r;

	if (!cfg || !out)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->offline = cfg->offline;
	p->block_private = cfg->block_private;
	p->block_metadata = cfg->block_metadata;
	p->proxy_only = cfg->proxy_only;
	p->remote_dns = cfg->proxy_remote_dns;
	p->default_deny = cfg->default_policy == CF_POLICY_DENY;
	p->has_allow_domains = cfg->allow_domains.n + cfg->allow_domains_exact.n > 0;
	p->has_deny_domains = cfg->deny_domains.n + cfg->deny_domains_exact.n > 0;
	r = cidr_build(&p->cidrs, &cfg->allow_cidrs, &cfg->deny_cidrs);
	if (r == 0)
		r = dom_build(&p->domains, cfg);
	if (r == 0)
		r = host_ports_build(p, &cfg->allow_host_ports);
	if (r == 0) {
		uint8_t key[16];

		cf_hash_key(key, p);
		r = cf_namecache_new(CF_NC_DEFAULT_CAPACITY, key, &p->names);
	}
	if (r < 0) {
		cf_policy_free(p);
		return r;
	}
	*out = p;
	return 0;
}

void cf_policy_free(struct cf_policy *p)
{
	if (!p)
		return;
	cf_namecache_free(p->names);
	dom_free(&p->domains);
	free(p->host_nets);
	free(p->host_bcast);
	free(p->host_ports);
	free(p->cidrs.pool);
	free(p);
}
