// SPDX-License-Identifier: MIT
/*
 * Unit tests of src/policy: CIDR and domain matching, the precedence table of
 * docs/policy.md row by row, v4-mapped/NAT64 forms, the built-in private and
 * metadata lists, --proxy-only per protocol, the name memory (CNAME chains,
 * TTLs, bounds) and every field a verdict carries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "net/addr.h"
#include "policy/namecache.h"
#include "policy/policy.h"

#include "alloc_fail.h"

/* ---- helpers ------------------------------------------------------------ */

static struct cf_ip ip(const char *s)
{
	struct cf_ip a;

	assert_int_equal(cf_ip_parse(s, &a), 0);
	return a;
}

static void add_cidr(struct cf_cidrv *v, const char *s)
{
	struct cf_cidr c;

	assert_int_equal(cf_cidr_parse(s, &c), 0);
	assert_int_equal(cf_cidrv_push(v, &c), 0);
}

static void add_name(struct cf_strv *v, const char *s)
{
	assert_int_equal(cf_strv_push(v, s), 0);
}

static struct cf_policy *build(const struct cf_config *c)
{
	struct cf_policy *p = NULL;

	assert_int_equal(cf_policy_new(c, &p), 0);
	assert_non_null(p);
	return p;
}

/* Decide a flow into a verdict pre-filled with garbage, so every field must be written. */
static struct cf_verdict flow(struct cf_policy *p, enum cf_flow_proto proto, const char *dst,
			      uint16_t port, bool via_proxy, uint64_t now_ms)
{
	struct cf_verdict v;
	struct cf_ip a = ip(dst);

	memset(&v, 0xa5, sizeof(v));
	cf_policy_check_flow(p, proto, &a, port, via_proxy, now_ms, &v);
	return v;
}

static struct cf_verdict tcp(struct cf_policy *p, const char *dst, uint64_t now_ms)
{
	return flow(p, CF_PROTO_TCP, dst, 443, false, now_ms);
}

static struct cf_verdict dns(struct cf_policy *p, const char *qname)
{
	struct cf_verdict v;

	memset(&v, 0xa5, sizeof(v));
	cf_policy_check_dns(p, qname, &v);
	return v;
}

static void expect_allow(const struct cf_verdict *v)
{
	assert_true(v->allow);
	assert_int_equal(v->reason, CF_REASON_NONE);
	assert_null(v->control);
	assert_string_equal(v->matched_cidr, "");
	assert_string_equal(v->matched_domain, "");
	assert_string_equal(v->reason_text, "");
}

static void expect_deny(const struct cf_verdict *v, enum cf_reason reason, const char *control,
			const char *cidr, const char *domain, const char *text)
{
	assert_false(v->allow);
	assert_string_equal(cf_reason_code(v->reason), cf_reason_code(reason));
	assert_non_null(v->control);
	assert_string_equal(v->control, control);
	assert_string_equal(v->matched_cidr, cidr);
	assert_string_equal(v->matched_domain, domain);
	assert_string_equal(v->reason_text, text);
}

/* Shorthand for the most common denial: a CIDR rule, checked as the flow log needs it. */
static void expect_deny_cidr(const struct cf_verdict *v, const char *cidr, const char *text)
{
	expect_deny(v, CF_REASON_DENY_CIDR, "--deny-cidr", cidr, "", text);
}

static const uint8_t test_key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- names of things ---------------------------------------------------- */

static void test_proto_names_are_the_flow_log_protocols(void **state)
{
	(void)state;
	assert_string_equal(cf_flow_proto_name(CF_PROTO_TCP), "tcp");
	assert_string_equal(cf_flow_proto_name(CF_PROTO_UDP), "udp");
	assert_string_equal(cf_flow_proto_name(CF_PROTO_DNS), "dns");
	assert_string_equal(cf_flow_proto_name(CF_PROTO_ICMPV4), "icmpv4");
	assert_string_equal(cf_flow_proto_name(CF_PROTO_ICMPV6), "icmpv6");
	assert_string_equal(cf_flow_proto_name((enum cf_flow_proto)99), "unknown");
}

static void test_reason_codes_and_controls_are_the_flow_log_values(void **state)
{
	static const struct {
		enum cf_reason r;
		const char *code;
		const char *control;
	} want[] = {
	    {CF_REASON_OFFLINE, "offline", "--offline"},
	    {CF_REASON_METADATA, "metadata", "--block-metadata"},
	    {CF_REASON_PRIVATE, "private", "--block-private"},
	    {CF_REASON_DENY_CIDR, "deny_cidr", "--deny-cidr"},
	    {CF_REASON_DENY_DOMAIN, "deny_domain", "--deny-domain"},
	    {CF_REASON_DENY_DOMAIN_EXACT, "deny_domain_exact", "--deny-domain-exact"},
	    {CF_REASON_DEFAULT_DENY, "default_deny", "--default-policy"},
	    {CF_REASON_PROXY_ONLY, "proxy_only", "--proxy-only"},
	    {CF_REASON_REMOTE_DNS, "remote_dns", "--proxy-remote-dns"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(cf_reason_code(want[i].r), want[i].code);
		assert_string_equal(cf_reason_control(want[i].r), want[i].control);
	}
	assert_string_equal(cf_reason_code(CF_REASON_NONE), "none");
	assert_null(cf_reason_control(CF_REASON_NONE));
	assert_string_equal(cf_reason_code((enum cf_reason)99), "unknown");
	assert_null(cf_reason_control((enum cf_reason)99));
}

/* ---- construction ------------------------------------------------------- */

static void test_new_rejects_null_arguments(void **state)
{
	struct cf_config c;
	struct cf_policy *p = NULL;

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_policy_new(NULL, &p), -EINVAL);
	assert_int_equal(cf_policy_new(&c, NULL), -EINVAL);
	assert_null(p);
	cf_policy_free(NULL);
}

static void test_new_rejects_cidr_with_bad_family_or_prefix(void **state)
{
	static const struct cf_cidr bad[] = {
	    {.ip = {.family = 0}, .prefix = 0},
	    {.ip = {.family = AF_INET}, .prefix = 33},
	    {.ip = {.family = AF_INET6}, .prefix = 129},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cf_config c;
		struct cf_policy *p = NULL;

		cf_config_init(&c);
		assert_int_equal(cf_cidrv_push(i % 2 ? &c.deny_cidrs : &c.allow_cidrs, &bad[i]), 0);
		assert_int_equal(cf_policy_new(&c, &p), -EINVAL);
		assert_null(p);
		cf_config_free(&c);
	}
}

static void test_new_rejects_empty_or_overlong_domain_rules(void **state)
{
	char longname[300];
	const char *bad[] = {
	    "",	      ".",   "*.",    "*", "a*.example.com", "*.*.example.com", "a..example.com",
	    ".a.com", "*..", longname};

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cf_strv *lists[4];
		struct cf_config c;

		cf_config_init(&c);
		lists[0] = &c.allow_domains;
		lists[1] = &c.allow_domains_exact;
		lists[2] = &c.deny_domains;
		lists[3] = &c.deny_domains_exact;
		for (size_t l = 0; l < 4; l++) {
			struct cf_policy *p = NULL;

			add_name(lists[l], bad[i]);
			assert_int_equal(cf_policy_new(&c, &p), -EINVAL);
			assert_null(p);
			cf_strv_free(lists[l]);
		}
		cf_config_free(&c);
	}
}

static void test_new_copies_rules_so_config_can_go_away(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_name(&c.deny_domains, "example.com");
	p = build(&c);
	cf_config_free(&c);
	v = tcp(p, "203.0.113.7", 0);
	expect_deny_cidr(&v, "203.0.113.0/24", "203.0.113.7 is in --deny-cidr 203.0.113.0/24");
	v = dns(p, "www.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "example.com",
		    "www.example.com matches --deny-domain example.com");
	cf_policy_free(p);
}

static void test_new_returns_enomem_without_leaking_when_any_allocation_fails(void **state)
{
#ifdef CF_TEST_ALLOC_FAIL
	struct cf_config c;
	unsigned int failures = 0;
	bool succeeded = false;

	(void)state;
	if (!injection_works())
		skip();
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_cidr(&c.allow_cidrs, "2001:db8::/32");
	add_name(&c.allow_domains, "example.com");
	add_name(&c.deny_domains, "*.ads.example.com");
	add_name(&c.deny_domains_exact, "x.example.org");
	for (unsigned int n = 1; n < 100 && !succeeded; n++) {
		struct cf_policy *p = NULL;
		int r;

		fail_nth_allocation(n);
		r = cf_policy_new(&c, &p);
		if (stop_failing()) {
			assert_int_equal(r, -ENOMEM);
			assert_null(p);
			failures++;
		} else {
			assert_int_equal(r, 0);
			cf_policy_free(p);
			succeeded = true;
		}
	}
	assert_true(succeeded);
	/* policy, CIDR table, domain table, 3 rule names, cache, records, 3 bucket arrays */
	assert_int_equal(failures, 11);
	cf_config_free(&c);
#else
	(void)state;
	skip();
#endif
}

/* ---- CIDR matching ------------------------------------------------------ */

static void test_deny_cidr_v4_denies_inside_and_allows_outside(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	p = build(&c);
	v = tcp(p, "203.0.113.7", 0);
	expect_deny_cidr(&v, "203.0.113.0/24", "203.0.113.7 is in --deny-cidr 203.0.113.0/24");
	v = tcp(p, "203.0.113.255", 0);
	assert_false(v.allow);
	v = tcp(p, "203.0.112.255", 0);
	expect_allow(&v);
	v = tcp(p, "203.0.114.0", 0);
	expect_allow(&v);
	v = tcp(p, "2001:db8::cb00:7107", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_deny_cidr_v6_denies_inside_and_allows_outside(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "2001:db8::/33");
	p = build(&c);
	v = flow(p, CF_PROTO_UDP, "2001:db8:7fff::1", 53, false, 0);
	expect_deny_cidr(&v, "2001:db8::/33", "2001:db8:7fff::1 is in --deny-cidr 2001:db8::/33");
	v = flow(p, CF_PROTO_UDP, "2001:db8:8000::1", 53, false, 0);
	expect_allow(&v);
	v = tcp(p, "32.1.13.184", 0); /* the same leading bytes as IPv4 */
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_slash_zero_matches_every_address_of_its_family_only(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "0.0.0.0/0");
	p = build(&c);
	v = tcp(p, "198.51.100.1", 0);
	expect_deny_cidr(&v, "0.0.0.0/0", "198.51.100.1 is in --deny-cidr 0.0.0.0/0");
	v = tcp(p, "255.255.255.255", 0);
	assert_false(v.allow);
	v = tcp(p, "2001:db8::1", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);

	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "::/0");
	p = build(&c);
	v = tcp(p, "2001:db8::1", 0);
	expect_deny_cidr(&v, "::/0", "2001:db8::1 is in --deny-cidr ::/0");
	v = tcp(p, "198.51.100.1", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_host_prefixes_32_and_128_match_exactly_one_address(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "198.51.100.7/32");
	add_cidr(&c.deny_cidrs, "2001:db8::7");
	p = build(&c);
	v = tcp(p, "198.51.100.7", 0);
	expect_deny_cidr(&v, "198.51.100.7/32", "198.51.100.7 is in --deny-cidr 198.51.100.7/32");
	v = tcp(p, "198.51.100.6", 0);
	expect_allow(&v);
	v = tcp(p, "198.51.100.8", 0);
	expect_allow(&v);
	v = tcp(p, "2001:db8::7", 0);
	expect_deny_cidr(&v, "2001:db8::7/128", "2001:db8::7 is in --deny-cidr 2001:db8::7/128");
	v = tcp(p, "2001:db8::6", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_longer_allow_prefix_beats_shorter_deny(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_cidr(&c.allow_cidrs, "203.0.113.128/25");
	add_cidr(&c.deny_cidrs, "2001:db8::/32");
	add_cidr(&c.allow_cidrs, "2001:db8:1::/48");
	p = build(&c);
	v = tcp(p, "203.0.113.200", 0);
	expect_allow(&v);
	v = tcp(p, "203.0.113.127", 0);
	expect_deny_cidr(&v, "203.0.113.0/24", "203.0.113.127 is in --deny-cidr 203.0.113.0/24");
	v = tcp(p, "2001:db8:1::5", 0);
	expect_allow(&v);
	v = tcp(p, "2001:db8:2::5", 0);
	expect_deny_cidr(&v, "2001:db8::/32", "2001:db8:2::5 is in --deny-cidr 2001:db8::/32");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_longer_deny_prefix_beats_shorter_allow_under_default_deny(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_cidr(&c.allow_cidrs, "198.51.0.0/16");
	add_cidr(&c.deny_cidrs, "198.51.100.0/24");
	p = build(&c);
	v = tcp(p, "198.51.100.1", 0);
	expect_deny_cidr(&v, "198.51.100.0/24", "198.51.100.1 is in --deny-cidr 198.51.100.0/24");
	v = tcp(p, "198.51.101.1", 0);
	expect_allow(&v);
	v = tcp(p, "198.52.0.1", 0);
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "198.52.0.1 matches no allow rule (--default-policy deny)");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_equal_prefix_allow_and_deny_deny_wins(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_cidr(&c.allow_cidrs, "203.0.113.0/24");
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_cidr(&c.deny_cidrs, "2001:db8::/64");
	add_cidr(&c.allow_cidrs, "2001:db8::/64");
	p = build(&c);
	v = tcp(p, "203.0.113.9", 0);
	expect_deny_cidr(&v, "203.0.113.0/24", "203.0.113.9 is in --deny-cidr 203.0.113.0/24");
	v = tcp(p, "2001:db8::9", 0);
	expect_deny_cidr(&v, "2001:db8::/64", "2001:db8::9 is in --deny-cidr 2001:db8::/64");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_nested_rules_alternate_by_longest_prefix(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "10.0.0.0/8");
	add_cidr(&c.allow_cidrs, "10.1.0.0/16");
	add_cidr(&c.deny_cidrs, "10.1.2.0/23");
	add_cidr(&c.allow_cidrs, "10.1.2.3/32");
	p = build(&c);
	v = tcp(p, "10.9.9.9", 0);
	expect_deny_cidr(&v, "10.0.0.0/8", "10.9.9.9 is in --deny-cidr 10.0.0.0/8");
	v = tcp(p, "10.1.9.9", 0);
	expect_allow(&v);
	v = tcp(p, "10.1.3.9", 0);
	expect_deny_cidr(&v, "10.1.2.0/23", "10.1.3.9 is in --deny-cidr 10.1.2.0/23");
	v = tcp(p, "10.1.2.3", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_cidr_rule_with_host_bits_is_applied_as_its_network(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_cidr sloppy = {.prefix = 8};
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	sloppy.ip = ip("10.1.2.3");
	assert_int_equal(cf_cidrv_push(&c.deny_cidrs, &sloppy), 0);
	p = build(&c);
	v = tcp(p, "10.200.0.1", 0);
	expect_deny_cidr(&v, "10.0.0.0/8", "10.200.0.1 is in --deny-cidr 10.0.0.0/8");
	cf_policy_free(p);
	cf_config_free(&c);
}

struct xorshift {
	uint64_t s;
};

static uint64_t xorshift_next(struct xorshift *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

static bool in_cidr(const struct cf_cidr *c, const struct cf_ip *a)
{
	unsigned int full = c->prefix / 8, rest = c->prefix % 8;

	if (c->ip.family != a->family || memcmp(c->ip.b, a->b, full) != 0)
		return false;
	return !rest || ((c->ip.b[full] ^ a->b[full]) & (0xff << (8 - rest))) == 0;
}

/* The verdict by definition: the longest matching prefix decides, deny on a tie. */
static const struct cf_cidr *brute_force(const struct cf_config *c, const struct cf_ip *a,
					 bool *deny)
{
	const struct cf_cidr *best = NULL;

	*deny = false;
	for (int list = 0; list < 2; list++) {
		const struct cf_cidrv *v = list ? &c->deny_cidrs : &c->allow_cidrs;

		for (size_t i = 0; i < v->n; i++) {
			if (!in_cidr(&v->v[i], a) || (best && v->v[i].prefix < best->prefix))
				continue;
			if (!best || v->v[i].prefix > best->prefix)
				*deny = false;
			best = &v->v[i];
			*deny = *deny || list == 1;
		}
	}
	return best;
}

/* 0/8, 127/8, 224/4 and above, ::, ::1 and ff00::/8: denied before any rule. */
static bool never_reachable(const struct cf_ip *a)
{
	static const uint8_t zero[16];

	if (a->family == AF_INET)
		return a->b[0] == 0 || a->b[0] == 127 || a->b[0] >= 224;
	return a->b[0] == 0xff || (memcmp(a->b, zero, 15) == 0 && a->b[15] <= 1);
}

static void test_cidr_trie_agrees_with_brute_force_longest_prefix_match(void **state)
{
	struct xorshift r = {.s = 0x2545f4914f6cdd1dULL};
	struct cf_ip bases[16];
	struct cf_config c;
	struct cf_policy *p;

	(void)state;
	cf_config_init(&c);
	/* Few bases and every prefix length: plenty of nesting, ties and near misses. */
	for (int i = 0; i < 16; i++) {
		uint64_t x = xorshift_next(&r), y = xorshift_next(&r);

		memset(&bases[i], 0, sizeof(bases[i]));
		bases[i].family = i % 2 ? AF_INET6 : AF_INET;
		memcpy(bases[i].b, &x, 8);
		memcpy(bases[i].b + 8, &y, 8);
		if (bases[i].family == AF_INET)
			memset(bases[i].b + 4, 0, 12);
	}
	for (int i = 0; i < 3000; i++) {
		const struct cf_ip *b = &bases[xorshift_next(&r) % 16];
		unsigned int bits = b->family == AF_INET ? 32 : 128;
		struct cf_cidr rule = {.ip = *b,
				       .prefix = (uint8_t)(xorshift_next(&r) % (bits + 1))};
		unsigned int flip = (unsigned int)(xorshift_next(&r) % bits);

		if (xorshift_next(&r) % 2) /* sometimes a sibling of the base */
			rule.ip.b[flip / 8] ^= (uint8_t)(0x80 >> (flip % 8));
		for (unsigned int bit = rule.prefix; bit < bits; bit++)
			rule.ip.b[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
		assert_int_equal(
		    cf_cidrv_push(xorshift_next(&r) % 3 ? &c.allow_cidrs : &c.deny_cidrs, &rule),
		    0);
	}
	p = build(&c);
	for (int i = 0; i < 20000; i++) {
		struct cf_ip a = bases[xorshift_next(&r) % 16];
		unsigned int bits = a.family == AF_INET ? 32 : 128;
		struct cf_verdict v;
		const struct cf_cidr *want;
		bool deny;

		for (int f = 0; f < 2; f++) {
			unsigned int bit = (unsigned int)(xorshift_next(&r) % bits);

			a.b[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
		}
		want = brute_force(&c, &a, &deny);
		cf_policy_check_flow(p, CF_PROTO_TCP, &a, 1, false, 0, &v);
		if (v.reason == CF_REASON_HOST_LOCAL || v.reason == CF_REASON_MULTICAST) {
			assert_true(never_reachable(&a)); /* decided before any rule */
			continue;
		}
		assert_int_equal(v.allow, !deny);
		if (deny) {
			char text[64];

			cf_cidr_format(want, text, sizeof(text));
			assert_string_equal(v.matched_cidr, text);
		}
	}
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- domain matching ---------------------------------------------------- */

static void test_suffix_rule_matches_apex_and_subdomains_not_lookalikes(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains, "example.com");
	p = build(&c);
	v = dns(p, "example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "example.com",
		    "example.com matches --deny-domain example.com");
	v = dns(p, "a.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "example.com",
		    "a.example.com matches --deny-domain example.com");
	v = dns(p, "x.y.z.example.com");
	assert_false(v.allow);
	v = dns(p, "badexample.com");
	expect_allow(&v);
	v = dns(p, "example.com.evil.net");
	expect_allow(&v);
	v = dns(p, "com");
	expect_allow(&v);
	v = dns(p, "xample.com");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_domain_matching_ignores_case_and_one_trailing_dot(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains, "Example.COM.");
	add_name(&c.deny_domains_exact, "WWW.Example.ORG");
	p = build(&c);
	v = dns(p, "A.EXAMPLE.com.");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "example.com",
		    "a.example.com matches --deny-domain example.com");
	v = dns(p, "www.example.org.");
	expect_deny(&v, CF_REASON_DENY_DOMAIN_EXACT, "--deny-domain-exact", "", "www.example.org",
		    "www.example.org matches --deny-domain-exact www.example.org");
	v = dns(p, "www.example.org..");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_exact_rule_matches_only_that_name(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains_exact, "a.example.com");
	p = build(&c);
	v = dns(p, "a.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN_EXACT, "--deny-domain-exact", "", "a.example.com",
		    "a.example.com matches --deny-domain-exact a.example.com");
	v = dns(p, "b.a.example.com");
	expect_allow(&v);
	v = dns(p, "example.com");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_exact_allow_beats_suffix_deny(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains, "example.com");
	add_name(&c.deny_domains, "ok.example.com");
	add_name(&c.allow_domains_exact, "ok.example.com");
	p = build(&c);
	v = dns(p, "ok.example.com");
	expect_allow(&v);
	v = dns(p, "x.ok.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "ok.example.com",
		    "x.ok.example.com matches --deny-domain ok.example.com");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_exact_deny_beats_suffix_allow(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	add_name(&c.deny_domains_exact, "bad.example.com");
	p = build(&c);
	v = dns(p, "bad.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN_EXACT, "--deny-domain-exact", "", "bad.example.com",
		    "bad.example.com matches --deny-domain-exact bad.example.com");
	v = dns(p, "x.bad.example.com");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_longer_suffix_rule_beats_shorter(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	add_name(&c.deny_domains, "ads.example.com");
	add_name(&c.allow_domains, "ok.ads.example.com");
	p = build(&c);
	v = dns(p, "www.example.com");
	expect_allow(&v);
	v = dns(p, "x.ads.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "ads.example.com",
		    "x.ads.example.com matches --deny-domain ads.example.com");
	v = dns(p, "a.ok.ads.example.com");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_equal_domain_rules_deny_wins(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.allow_domains, "example.com");
	add_name(&c.deny_domains, "example.com");
	add_name(&c.allow_domains_exact, "x.example.org");
	add_name(&c.deny_domains_exact, "x.example.org");
	p = build(&c);
	v = dns(p, "a.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "example.com",
		    "a.example.com matches --deny-domain example.com");
	v = dns(p, "x.example.org");
	expect_deny(&v, CF_REASON_DENY_DOMAIN_EXACT, "--deny-domain-exact", "", "x.example.org",
		    "x.example.org matches --deny-domain-exact x.example.org");
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- names in a flow's first bytes ------------------------------------------ */

static struct cf_verdict name_of(struct cf_policy *p, const char *name, const char *dst)
{
	struct cf_verdict v;
	struct cf_ip a = ip(dst);

	memset(&v, 0xa5, sizeof(v));
	cf_policy_check_name(p, name, "TLS SNI", &a, 443, &v);
	return v;
}

static void test_first_bytes_name_is_judged_by_domain_rules_and_address_allows(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "192.0.2.0/24");
	p = build(&c);
	assert_false(cf_policy_has_domain_rules(p)); /* address rules alone: nothing to peek at */
	cf_policy_free(p);
	add_name(&c.deny_domains, "bad.example");
	add_name(&c.allow_domains_exact, "ok.example");
	add_cidr(&c.allow_cidrs, "203.0.113.0/24");
	c.default_policy = CF_POLICY_DENY;
	p = build(&c);
	assert_true(cf_policy_has_domain_rules(p));
	v = name_of(p, "OK.example.", "198.51.100.7");
	expect_allow(&v);
	v = name_of(p, "x.bad.example", "198.51.100.7");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "bad.example",
		    "TLS SNI x.bad.example of tcp to 198.51.100.7:443 matches --deny-domain "
		    "bad.example");
	v = name_of(p, "other.example", "198.51.100.7");
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "other.example",
		    "TLS SNI other.example of tcp to 198.51.100.7:443 matches no --allow-domain "
		    "rule (--default-policy deny)");
	/* an address rule allowed the flow: deny rules only */
	v = name_of(p, "other.example", "203.0.113.9");
	expect_allow(&v);
	v = name_of(p, "bad.example", "203.0.113.9");
	assert_false(v.allow);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_DEFAULT_DENY), 1);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_wildcard_rule_matches_subdomains_but_not_the_apex(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains, "*.example.com");
	p = build(&c);
	v = dns(p, "a.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "*.example.com",
		    "a.example.com matches --deny-domain *.example.com");
	v = dns(p, "b.a.example.com");
	assert_false(v.allow);
	v = dns(p, "example.com");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_wildcard_in_exact_rule_is_literal(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains_exact, "*.example.com");
	p = build(&c);
	v = dns(p, "*.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN_EXACT, "--deny-domain-exact", "", "*.example.com",
		    "*.example.com matches --deny-domain-exact *.example.com");
	v = dns(p, "a.example.com");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_plain_rule_is_reported_when_plain_and_wildcard_both_match(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains, "*.example.com");
	add_name(&c.deny_domains, "example.com");
	p = build(&c);
	v = dns(p, "a.example.com");
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "example.com",
		    "a.example.com matches --deny-domain example.com");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_default_deny_resolves_only_allowed_names(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	add_name(&c.allow_domains_exact, "api.example.org");
	add_cidr(&c.allow_cidrs, "0.0.0.0/0"); /* CIDR allows do not make names resolvable */
	p = build(&c);
	v = dns(p, "www.example.com");
	expect_allow(&v);
	v = dns(p, "api.example.org");
	expect_allow(&v);
	v = dns(p, "www.example.org");
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "www.example.org matches no --allow-domain rule (--default-policy deny)");
	v = dns(p, NULL);
	expect_deny(
	    &v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
	    "a query without a name matches no --allow-domain rule (--default-policy deny)");
	v = dns(p, ".");
	assert_false(v.allow);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_dns_without_rules_is_allowed_even_for_odd_names(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	char longname[300];

	(void)state;
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cf_config_init(&c);
	add_name(&c.deny_domains, "example.com");
	p = build(&c);
	v = dns(p, NULL);
	expect_allow(&v);
	v = dns(p, ".");
	expect_allow(&v);
	v = dns(p, longname);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- the precedence table, one test per row ----------------------------- */

static void test_row1_offline_beats_everything(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.offline = true;
	c.block_metadata = true;
	c.block_private = true;
	add_cidr(&c.allow_cidrs, "169.254.169.254/32");
	add_name(&c.allow_domains, "example.com");
	p = build(&c);
	v = flow(p, CF_PROTO_TCP, "169.254.169.254", 80, true, 0);
	expect_deny(&v, CF_REASON_OFFLINE, "--offline", "", "",
		    "tcp to 169.254.169.254:80 does not leave the sandbox (--offline)");
	v = flow(p, CF_PROTO_UDP, "2001:db8::1", 53, false, 0);
	expect_deny(&v, CF_REASON_OFFLINE, "--offline", "", "",
		    "udp to [2001:db8::1]:53 does not leave the sandbox (--offline)");
	v = dns(p, "www.example.com");
	expect_deny(&v, CF_REASON_OFFLINE, "--offline", "", "",
		    "the query for www.example.com is not resolved (--offline)");
	v = dns(p, NULL);
	expect_deny(&v, CF_REASON_OFFLINE, "--offline", "", "",
		    "the query for \".\" is not resolved (--offline)");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_row2_metadata_beats_private_and_rules(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.block_metadata = true;
	c.block_private = true;
	add_cidr(&c.allow_cidrs, "169.254.169.254/32");
	add_cidr(&c.deny_cidrs, "169.254.0.0/16");
	p = build(&c);
	v = flow(p, CF_PROTO_TCP, "169.254.169.254", 80, false, 0);
	expect_deny(&v, CF_REASON_METADATA, "--block-metadata", "169.254.169.254/32", "",
		    "169.254.169.254 is the cloud instance metadata service, blocked by "
		    "--block-metadata");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_row3_private_beats_deny_and_allow_rules(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.block_private = true;
	add_cidr(&c.allow_cidrs, "10.1.2.3/32");
	add_cidr(&c.deny_cidrs, "10.1.0.0/16");
	p = build(&c);
	v = tcp(p, "10.1.2.3", 0);
	expect_deny(&v, CF_REASON_PRIVATE, "--block-private", "10.0.0.0/8", "",
		    "10.1.2.3 is private (RFC 1918), blocked by --block-private");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_row4_deny_rules_beat_allow_rules_across_cidr_and_domain(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("203.0.113.7"), b = ip("198.51.100.7");

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_cidr(&c.allow_cidrs, "198.51.100.7/32");
	add_name(&c.deny_domains, "bad.example.net");
	p = build(&c);
	cf_policy_learn_address(p, "www.example.com", &a, 300, 0);
	cf_policy_learn_address(p, "x.bad.example.net", &b, 300, 0);
	/* A CIDR deny beats a domain allow. */
	v = tcp(p, "203.0.113.7", 0);
	expect_deny_cidr(&v, "203.0.113.0/24", "203.0.113.7 is in --deny-cidr 203.0.113.0/24");
	/* A domain deny beats a CIDR allow, even a /32. */
	v = tcp(p, "198.51.100.7", 0);
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "bad.example.net",
		    "198.51.100.7 was resolved from x.bad.example.net, which matches --deny-domain "
		    "bad.example.net");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_row5_allow_rules_beat_default_deny(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("198.51.100.20");

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_cidr(&c.allow_cidrs, "203.0.113.0/24");
	add_name(&c.allow_domains, "example.com");
	p = build(&c);
	cf_policy_learn_address(p, "www.example.com", &a, 300, 0);
	v = tcp(p, "203.0.113.7", 0);
	expect_allow(&v);
	v = tcp(p, "198.51.100.20", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_row6_default_policy_decides_what_no_rule_matches(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("203.0.113.10");

	(void)state;
	cf_config_init(&c);
	p = build(&c);
	v = tcp(p, "203.0.113.10", 0);
	expect_allow(&v);
	v = flow(p, CF_PROTO_ICMPV6, "2001:db8::1", 0, false, 0);
	expect_allow(&v);
	cf_policy_free(p);

	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	p = build(&c);
	v = tcp(p, "203.0.113.10", 0);
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "203.0.113.10 matches no allow rule (--default-policy deny)");
	cf_policy_learn_address(p, "other.example", &a, 300, 0);
	v = tcp(p, "203.0.113.10", 0);
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "203.0.113.10 (resolved from other.example) matches no allow rule "
		    "(--default-policy deny)");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_row7_proxy_only_applies_to_what_the_rules_let_through(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.proxy_only = true;
	c.default_policy = CF_POLICY_DENY;
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_cidr(&c.allow_cidrs, "198.51.100.0/24");
	p = build(&c);
	/* Refused even through the proxy: the rule is reported, not --proxy-only. */
	v = flow(p, CF_PROTO_UDP, "203.0.113.7", 53, false, 0);
	expect_deny_cidr(&v, "203.0.113.0/24", "203.0.113.7 is in --deny-cidr 203.0.113.0/24");
	v = flow(p, CF_PROTO_UDP, "192.0.2.1", 53, false, 0);
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "192.0.2.1 matches no allow rule (--default-policy deny)");
	/* Allowed by the rules, but direct. */
	v = flow(p, CF_PROTO_UDP, "198.51.100.7", 53, false, 0);
	expect_deny(&v, CF_REASON_PROXY_ONLY, "--proxy-only", "", "",
		    "direct udp to 198.51.100.7:53 bypasses the proxy (--proxy-only)");
	v = flow(p, CF_PROTO_TCP, "198.51.100.7", 443, true, 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- v4-mapped and NAT64 forms ------------------------------------------ */

static void test_mapped_and_nat64_forms_are_checked_as_ipv4(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	p = build(&c);
	v = tcp(p, "::ffff:203.0.113.7", 0);
	expect_deny_cidr(&v, "203.0.113.0/24",
			 "::ffff:203.0.113.7 (as 203.0.113.7) is in --deny-cidr 203.0.113.0/24");
	v = tcp(p, "64:ff9b::203.0.113.7", 0);
	expect_deny_cidr(&v, "203.0.113.0/24",
			 "64:ff9b::cb00:7107 (as 203.0.113.7) is in --deny-cidr 203.0.113.0/24");
	v = tcp(p, "::ffff:203.0.114.7", 0);
	expect_allow(&v);
	/* Other embeddings are not unfolded (see docs/policy.md). */
	v = tcp(p, "64:ff9b:1::cb00:7107", 0);
	expect_allow(&v);
	v = tcp(p, "::203.0.113.7", 0);
	expect_allow(&v);
	v = tcp(p, "2001:db8::cb00:7107", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_mapped_form_is_allowed_by_ipv4_allow_rule_under_default_deny(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_cidr(&c.allow_cidrs, "198.51.100.0/24");
	add_cidr(&c.deny_cidrs, "64:ff9b::/96"); /* a v6 deny of the NAT64 form still denies */
	p = build(&c);
	v = tcp(p, "::ffff:198.51.100.7", 0);
	expect_allow(&v);
	v = tcp(p, "64:ff9b::198.51.100.7", 0);
	expect_deny_cidr(&v, "64:ff9b::/96", "64:ff9b::c633:6407 is in --deny-cidr 64:ff9b::/96");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_mapped_and_nat64_forms_of_private_and_metadata_are_blocked(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.block_private = true;
	c.block_metadata = true;
	p = build(&c);
	v = tcp(p, "::ffff:10.1.2.3", 0);
	expect_deny(&v, CF_REASON_PRIVATE, "--block-private", "10.0.0.0/8", "",
		    "::ffff:10.1.2.3 (as 10.1.2.3) is private (RFC 1918), blocked by "
		    "--block-private");
	v = tcp(p, "64:ff9b::10.0.0.1", 0);
	expect_deny(&v, CF_REASON_PRIVATE, "--block-private", "10.0.0.0/8", "",
		    "64:ff9b::a00:1 (as 10.0.0.1) is private (RFC 1918), blocked by "
		    "--block-private");
	v = tcp(p, "::ffff:169.254.169.254", 0);
	expect_deny(&v, CF_REASON_METADATA, "--block-metadata", "169.254.169.254/32", "",
		    "::ffff:169.254.169.254 (as 169.254.169.254) is the cloud instance metadata "
		    "service, blocked by --block-metadata");
	v = tcp(p, "64:ff9b::100.100.100.200", 0);
	assert_int_equal(v.reason, CF_REASON_METADATA);
	v = tcp(p, "::ffff:172.16.0.1", 0);
	assert_int_equal(v.reason, CF_REASON_PRIVATE);
	v = tcp(p, "::ffff:198.51.100.1", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_names_of_the_ipv4_address_apply_to_its_mapped_form(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("203.0.113.9"), m = ip("::ffff:203.0.113.9");
	const char *names[4];

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains, "evil.example");
	p = build(&c);
	cf_policy_learn_address(p, "x.evil.example", &a, 300, 0);
	v = tcp(p, "::ffff:203.0.113.9", 0);
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "evil.example",
		    "::ffff:203.0.113.9 was resolved from x.evil.example, which matches "
		    "--deny-domain evil.example");
	assert_int_equal(cf_policy_names_for(p, &m, 0, names, 4), 1);
	assert_string_equal(names[0], "x.evil.example");
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- built-in lists ----------------------------------------------------- */

static void test_block_private_covers_every_listed_range(void **state)
{
	static const struct {
		const char *dst;
		const char *cidr;
	} denied[] = {
	    {"10.0.0.0", "10.0.0.0/8"},
	    {"10.255.255.255", "10.0.0.0/8"},
	    {"172.16.0.1", "172.16.0.0/12"},
	    {"172.31.255.255", "172.16.0.0/12"},
	    {"192.168.1.1", "192.168.0.0/16"},
	    {"100.64.0.1", "100.64.0.0/10"},
	    {"100.127.255.255", "100.64.0.0/10"},
	    {"169.254.1.1", "169.254.0.0/16"},
	    {"fe80::1", "fe80::/10"},
	    {"febf::1", "fe80::/10"},
	    {"fc00::1", "fc00::/7"},
	    {"fdff::1", "fc00::/7"},
	    {"fec0::1", "fec0::/10"},
	};
	static const char *const allowed[] = {
	    "11.0.0.1",	   "172.15.255.255", "172.32.0.0",  "192.169.0.1", "100.63.255.255",
	    "100.128.0.0", "128.0.0.1",	     "203.0.113.1", "::2",	   "fe00::1",
	    "fb00::1",	   "2001:db8::1",
	};
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.block_private = true;
	p = build(&c);
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		v = tcp(p, denied[i].dst, 0);
		assert_int_equal(v.reason, CF_REASON_PRIVATE);
		assert_string_equal(v.control, "--block-private");
		assert_string_equal(v.matched_cidr, denied[i].cidr);
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		v = tcp(p, allowed[i], 0);
		expect_allow(&v);
	}
	/* Metadata endpoints are link-local or public: only 169.254/16 and fe80::/10 are here. */
	v = tcp(p, "100.100.100.200", 0);
	assert_int_equal(v.reason, CF_REASON_PRIVATE); /* 100.64.0.0/10 */
	v = tcp(p, "168.63.129.16", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_block_metadata_covers_every_listed_endpoint_and_nothing_near(void **state)
{
	static const struct {
		const char *dst;
		const char *cidr;
		const char *what;
	} denied[] = {
	    {"169.254.169.254", "169.254.169.254/32", "the cloud instance metadata service"},
	    {"fd00:ec2::254", "fd00:ec2::254/128", "the AWS IMDS IPv6 endpoint"},
	    {"169.254.170.2", "169.254.170.2/32",
	     "the AWS ECS task metadata and credentials endpoint"},
	    {"169.254.170.23", "169.254.170.23/32", "the AWS EKS Pod Identity agent"},
	    {"fd00:ec2::23", "fd00:ec2::23/128", "the AWS EKS Pod Identity agent"},
	    {"100.100.100.200", "100.100.100.200/32", "the Alibaba Cloud metadata service"},
	    {"168.63.129.16", "168.63.129.16/32", "the Azure WireServer"},
	    {"fe80::a9fe:a9fe", "fe80::a9fe:a9fe/128", "the OpenStack IPv6 metadata service"},
	};
	static const char *const allowed[] = {
	    "169.254.169.253", "169.254.169.255", "169.254.170.3", "fd00:ec2::253",
	    "fd00:ec2::123",   "100.100.100.201", "168.63.129.17", "10.0.0.1",
	};
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.block_metadata = true;
	p = build(&c);
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		char text[160];

		snprintf(text, sizeof(text), "%s is %s, blocked by --block-metadata", denied[i].dst,
			 denied[i].what);
		v = tcp(p, denied[i].dst, 0);
		expect_deny(&v, CF_REASON_METADATA, "--block-metadata", denied[i].cidr, "", text);
	}
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		v = tcp(p, allowed[i], 0);
		expect_allow(&v);
	}
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_without_block_flags_private_and_metadata_are_reachable(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	p = build(&c);
	v = tcp(p, "169.254.169.254", 0);
	expect_allow(&v);
	v = tcp(p, "10.0.0.1", 0);
	expect_allow(&v);
	v = tcp(p, "fd00::1", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- the host itself, multicast ----------------------------------------- */

static void expect_never(const struct cf_verdict *v, enum cf_reason reason, const char *cidr,
			 const char *text)
{
	assert_false(v->allow);
	assert_int_equal(v->reason, reason);
	assert_null(v->control); /* built in: the flow log writes "built-in" */
	assert_string_equal(v->matched_cidr, cidr);
	assert_string_equal(v->matched_domain, "");
	assert_string_equal(v->reason_text, text);
	assert_false(v->host_port);
}

static struct cf_policy *allow_everything(struct cf_config *c)
{
	cf_config_init(c);
	add_cidr(&c->allow_cidrs, "0.0.0.0/0");
	add_cidr(&c->allow_cidrs, "::/0");
	return build(c);
}

static void test_host_loopback_and_unspecified_are_host_local_whatever_the_rules(void **state)
{
	struct cf_config c;
	struct cf_policy *p = allow_everything(&c);
	struct cf_verdict v;

	(void)state;
	v = tcp(p, "127.0.0.1", 0);
	expect_never(&v, CF_REASON_HOST_LOCAL, "127.0.0.0/8",
		     "127.0.0.1 is the host's loopback; the sandbox never reaches the host (see "
		     "--allow-host-port)");
	v = tcp(p, "::ffff:127.0.0.53", 0);
	expect_never(&v, CF_REASON_HOST_LOCAL, "127.0.0.0/8",
		     "::ffff:127.0.0.53 (as 127.0.0.53) is the host's loopback; the sandbox never "
		     "reaches the host (see --allow-host-port)");
	v = tcp(p, "0.0.0.0", 0);
	assert_int_equal(v.reason, CF_REASON_HOST_LOCAL);
	v = flow(p, CF_PROTO_UDP, "::", 53, false, 0);
	assert_int_equal(v.reason, CF_REASON_HOST_LOCAL);
	v = flow(p, CF_PROTO_ICMPV6, "::1", 0, false, 0);
	assert_int_equal(v.reason, CF_REASON_HOST_LOCAL);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_HOST_LOCAL), 5);
	assert_string_equal(cf_reason_code(CF_REASON_HOST_LOCAL), "host_local");
	assert_null(cf_reason_control(CF_REASON_HOST_LOCAL));
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_host_addresses_are_host_local_until_replaced(void **state)
{
	struct cf_cidr nets[2];
	struct cf_ip bc = ip("203.0.113.255");
	struct cf_config c;
	struct cf_policy *p = allow_everything(&c);
	struct cf_verdict v;

	(void)state;
	assert_int_equal(cf_cidr_parse("203.0.113.2/32", &nets[0]), 0);
	assert_int_equal(cf_cidr_parse("2001:db8:1::/64", &nets[1]), 0);
	assert_int_equal(cf_policy_set_host_local(p, nets, 2, &bc, 1), 0);
	v = tcp(p, "203.0.113.2", 0);
	expect_never(&v, CF_REASON_HOST_LOCAL, "203.0.113.2/32",
		     "203.0.113.2 is an address of the host itself; the sandbox never reaches the "
		     "host (see --allow-host-port)");
	v = tcp(p, "::ffff:203.0.113.2", 0);
	assert_int_equal(v.reason, CF_REASON_HOST_LOCAL);
	v = tcp(p, "64:ff9b::203.0.113.2", 0);
	assert_int_equal(v.reason, CF_REASON_HOST_LOCAL);
	v = flow(p, CF_PROTO_UDP, "2001:db8:1::77", 9, false, 0);
	expect_never(&v, CF_REASON_HOST_LOCAL, "2001:db8:1::/64",
		     "2001:db8:1::77 is an address of the host itself; the sandbox never reaches "
		     "the host (see --allow-host-port)");
	v = flow(p, CF_PROTO_UDP, "203.0.113.255", 9, false, 0);
	expect_never(&v, CF_REASON_MULTICAST, "203.0.113.255/32",
		     "203.0.113.255 is a broadcast address of the host's networks, which never "
		     "leaves the sandbox");
	v = tcp(p, "203.0.113.1", 0); /* a neighbour, not the host */
	expect_allow(&v);
	/* The host's addresses changed: the old one is an ordinary destination again. */
	assert_int_equal(cf_cidr_parse("198.51.100.7/32", &nets[0]), 0);
	assert_int_equal(cf_policy_set_host_local(p, nets, 1, NULL, 0), 0);
	v = tcp(p, "203.0.113.2", 0);
	expect_allow(&v);
	v = flow(p, CF_PROTO_UDP, "203.0.113.255", 9, false, 0);
	expect_allow(&v);
	v = tcp(p, "198.51.100.7", 0);
	assert_int_equal(v.reason, CF_REASON_HOST_LOCAL);
	assert_int_equal(cf_policy_set_host_local(p, NULL, 0, NULL, 0), 0);
	v = tcp(p, "198.51.100.7", 0);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_multicast_and_broadcast_never_leave_whatever_the_rules(void **state)
{
	static const struct {
		const char *dst;
		const char *cidr;
	} denied[] = {
	    {"239.255.255.250", "224.0.0.0/4"}, /* SSDP */
	    {"224.0.0.9", "224.0.0.0/4"},	/* RIPv2 */
	    {"224.0.0.251", "224.0.0.0/4"},	/* mDNS */
	    {"255.255.255.255", "240.0.0.0/4"},
	    {"240.0.0.1", "240.0.0.0/4"},
	    {"ff02::1", "ff00::/8"},
	    {"ff05::c", "ff00::/8"},
	    {"::ffff:239.255.255.250", "224.0.0.0/4"},
	};
	struct cf_config c;
	struct cf_policy *p = allow_everything(&c);
	struct cf_verdict v;

	(void)state;
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		v = flow(p, CF_PROTO_UDP, denied[i].dst, 1900, false, 0);
		assert_false(v.allow);
		assert_int_equal(v.reason, CF_REASON_MULTICAST);
		assert_null(v.control);
		assert_string_equal(v.matched_cidr, denied[i].cidr);
	}
	v = flow(p, CF_PROTO_UDP, "239.255.255.250", 1900, false, 0);
	assert_string_equal(v.reason_text,
			    "239.255.255.250 is multicast, which never leaves the sandbox");
	v = flow(p, CF_PROTO_UDP, "223.255.255.255", 1900, false, 0);
	expect_allow(&v);
	assert_string_equal(cf_reason_code(CF_REASON_MULTICAST), "multicast");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_host_alias_opens_exactly_the_listed_ports(void **state)
{
	struct cf_ip a4 = ip("198.18.0.254"), a6 = ip("fd63:6866:6c77::fe");
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	c.proxy_only = true;
	add_name(&c.allow_host_ports, "5432/tcp");
	add_name(&c.allow_host_ports, "53/udp");
	p = build(&c);
	cf_policy_set_host_alias(p, &a4, &a6);
	v = flow(p, CF_PROTO_TCP, "198.18.0.254", 5432, false, 0);
	assert_true(v.allow);
	assert_true(v.host_port); /* neither default deny nor --proxy-only closes it */
	v = flow(p, CF_PROTO_TCP, "fd63:6866:6c77::fe", 5432, false, 0);
	assert_true(v.allow && v.host_port);
	v = flow(p, CF_PROTO_UDP, "198.18.0.254", 53, false, 0);
	assert_true(v.allow && v.host_port);
	v = flow(p, CF_PROTO_DNS, "198.18.0.254", 53, false, 0);
	assert_true(v.allow && v.host_port);
	v = flow(p, CF_PROTO_UDP, "198.18.0.254", 5432, false, 0);
	expect_never(&v, CF_REASON_HOST_LOCAL, "",
		     "port 5432/udp of host.childflow.internal (the host's loopback) is not open: "
		     "use --allow-host-port 5432/udp");
	v = flow(p, CF_PROTO_TCP, "198.18.0.254", 5433, true, 0);
	expect_never(&v, CF_REASON_HOST_LOCAL, "",
		     "port 5433/tcp of host.childflow.internal (the host's loopback) is not open: "
		     "use --allow-host-port 5433/tcp");
	v = flow(p, CF_PROTO_ICMPV4, "198.18.0.254", 0, false, 0);
	assert_int_equal(v.reason, CF_REASON_HOST_LOCAL);
	v = flow(p, CF_PROTO_TCP, "198.18.0.253", 5432, false, 0); /* not the alias */
	assert_false(v.allow);
	assert_false(v.host_port);
	assert_int_equal(v.reason, CF_REASON_DEFAULT_DENY);
	cf_policy_free(p);
	/* --offline closes the host's ports too. */
	c.offline = true;
	p = build(&c);
	cf_policy_set_host_alias(p, &a4, NULL);
	v = flow(p, CF_PROTO_TCP, "198.18.0.254", 5432, false, 0);
	assert_int_equal(v.reason, CF_REASON_OFFLINE);
	assert_false(v.host_port);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_host_port_parse_accepts_port_and_protocol_only(void **state)
{
	static const char *const bad[] = {"",	  "0",	    "65536", "01",  "80/",    "80/sctp",
					  "/tcp", "80/TCP", "-1",    "80 ", "123456", "8o"};
	struct cf_host_port hp;
	char buf[CF_HOST_PORT_STRLEN];

	(void)state;
	assert_int_equal(cf_host_port_parse("5432", &hp), 0);
	assert_string_equal(cf_host_port_format(&hp, buf, sizeof(buf)), "5432/tcp");
	assert_int_equal(cf_host_port_parse("53/udp", &hp), 0);
	assert_string_equal(cf_host_port_format(&hp, buf, sizeof(buf)), "53/udp");
	assert_int_equal(cf_host_port_parse("65535/tcp", &hp), 0);
	assert_string_equal(cf_host_port_format(&hp, buf, sizeof(buf)), "65535/tcp");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cf_host_port_parse(bad[i], &hp), -EINVAL);
}

/* ---- --proxy-only ------------------------------------------------------- */

static void test_proxy_only_allows_only_proxied_tcp_udp_dns_and_never_icmp(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;

	(void)state;
	cf_config_init(&c);
	c.proxy_only = true;
	p = build(&c);
	v = flow(p, CF_PROTO_TCP, "203.0.113.7", 443, true, 0);
	expect_allow(&v);
	v = flow(p, CF_PROTO_TCP, "203.0.113.7", 443, false, 0);
	expect_deny(&v, CF_REASON_PROXY_ONLY, "--proxy-only", "", "",
		    "direct tcp to 203.0.113.7:443 bypasses the proxy (--proxy-only)");
	v = flow(p, CF_PROTO_UDP, "203.0.113.7", 443, false, 0);
	expect_deny(&v, CF_REASON_PROXY_ONLY, "--proxy-only", "", "",
		    "direct udp to 203.0.113.7:443 bypasses the proxy (--proxy-only)");
	v = flow(p, CF_PROTO_UDP, "203.0.113.7", 443, true, 0);
	expect_allow(&v);
	v = flow(p, CF_PROTO_DNS, "2001:db8::53", 53, false, 0);
	expect_deny(&v, CF_REASON_PROXY_ONLY, "--proxy-only", "", "",
		    "direct dns to [2001:db8::53]:53 bypasses the proxy (--proxy-only)");
	v = flow(p, CF_PROTO_DNS, "2001:db8::53", 53, true, 0);
	expect_allow(&v);
	v = flow(p, CF_PROTO_ICMPV4, "203.0.113.7", 0, false, 0);
	expect_deny(&v, CF_REASON_PROXY_ONLY, "--proxy-only", "", "",
		    "icmpv4 to 203.0.113.7 cannot go through the proxy (--proxy-only)");
	v = flow(p, CF_PROTO_ICMPV4, "203.0.113.7", 0, true, 0);
	assert_int_equal(v.reason, CF_REASON_PROXY_ONLY);
	v = flow(p, CF_PROTO_ICMPV6, "2001:db8::1", 0, false, 0);
	expect_deny(&v, CF_REASON_PROXY_ONLY, "--proxy-only", "", "",
		    "icmpv6 to 2001:db8::1 cannot go through the proxy (--proxy-only)");
	v = flow(p, CF_PROTO_ICMPV6, "2001:db8::1", 0, true, 0);
	assert_int_equal(v.reason, CF_REASON_PROXY_ONLY);
	/* Name resolution is the forwarder's: only the domain rules decide it. */
	v = dns(p, "www.example.com");
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_without_proxy_only_every_protocol_may_go_direct(void **state)
{
	static const enum cf_flow_proto protos[] = {CF_PROTO_TCP, CF_PROTO_UDP, CF_PROTO_DNS,
						    CF_PROTO_ICMPV4, CF_PROTO_ICMPV6};
	struct cf_config c;
	struct cf_policy *p;

	(void)state;
	cf_config_init(&c);
	p = build(&c);
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		struct cf_verdict v = flow(p, protos[i], "203.0.113.7", 53, false, 0);

		expect_allow(&v);
	}
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- domain rules on flows through learned names ------------------------ */

static void test_default_deny_allows_address_learned_from_allowed_name(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("203.0.113.7"), b = ip("2001:db8::7");

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	p = build(&c);
	v = tcp(p, "203.0.113.7", 1000);
	assert_int_equal(v.reason, CF_REASON_DEFAULT_DENY);
	cf_policy_learn_address(p, "WWW.Example.com.", &a, 300, 1000);
	cf_policy_learn_address(p, "www.example.com", &b, 300, 1000);
	v = tcp(p, "203.0.113.7", 1000);
	expect_allow(&v);
	v = tcp(p, "2001:db8::7", 1000);
	expect_allow(&v);
	v = tcp(p, "203.0.113.8", 1000);
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "203.0.113.8 matches no allow rule (--default-policy deny)");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_default_deny_allows_address_reached_through_cname_chain(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("198.51.100.7");
	const char *names[8];

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains_exact, "a.example");
	p = build(&c);
	cf_policy_learn_cname(p, "a.example", "b.cdn.net", 300, 0);
	cf_policy_learn_cname(p, "b.cdn.net", "c.edge.net", 300, 0);
	cf_policy_learn_address(p, "c.edge.net", &a, 300, 0);
	v = tcp(p, "198.51.100.7", 0);
	expect_allow(&v);
	assert_int_equal(cf_policy_names_for(p, &a, 0, names, 8), 3);
	assert_string_equal(names[0], "c.edge.net");
	assert_string_equal(names[1], "b.cdn.net");
	assert_string_equal(names[2], "a.example");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_deny_domain_reaches_address_through_cname_target_and_alias(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("198.51.100.9"), b = ip("198.51.100.10");

	(void)state;
	cf_config_init(&c);
	add_name(&c.deny_domains, "tracker.example");
	add_name(&c.deny_domains_exact, "news.example");
	p = build(&c);
	/* The query name is fine, the CNAME target is denied. */
	cf_policy_learn_cname(p, "www.shop.example", "t.tracker.example", 300, 0);
	cf_policy_learn_address(p, "t.tracker.example", &a, 300, 0);
	v = tcp(p, "198.51.100.9", 0);
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "tracker.example",
		    "198.51.100.9 was resolved from t.tracker.example, which matches "
		    "--deny-domain tracker.example");
	/* The target is fine, the alias that led to it is denied. */
	cf_policy_learn_cname(p, "news.example", "edge.cdn.net", 300, 0);
	cf_policy_learn_address(p, "edge.cdn.net", &b, 300, 0);
	v = tcp(p, "198.51.100.10", 0);
	expect_deny(&v, CF_REASON_DENY_DOMAIN_EXACT, "--deny-domain-exact", "", "news.example",
		    "198.51.100.10 was resolved from news.example, which matches "
		    "--deny-domain-exact news.example");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_a_denied_name_among_allowed_names_denies_the_address(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("203.0.113.50");

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "good.example");
	add_name(&c.deny_domains, "bad.example");
	p = build(&c);
	cf_policy_learn_address(p, "www.good.example", &a, 300, 0);
	v = tcp(p, "203.0.113.50", 0);
	expect_allow(&v);
	cf_policy_learn_address(p, "www.bad.example", &a, 300, 0);
	v = tcp(p, "203.0.113.50", 0);
	expect_deny(&v, CF_REASON_DENY_DOMAIN, "--deny-domain", "", "bad.example",
		    "203.0.113.50 was resolved from www.bad.example, which matches --deny-domain "
		    "bad.example");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_learned_address_expires_after_its_ttl(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("203.0.113.7");

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	p = build(&c);
	cf_policy_learn_address(p, "www.example.com", &a, 300, 1000);
	v = tcp(p, "203.0.113.7", 1000 + 299999);
	expect_allow(&v);
	v = tcp(p, "203.0.113.7", 1000 + 300000);
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "203.0.113.7 matches no allow rule (--default-policy deny)");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_short_ttls_are_kept_sixty_seconds_and_long_ones_a_day(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_ip a = ip("203.0.113.7"), b = ip("203.0.113.8");

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	p = build(&c);
	cf_policy_learn_address(p, "zero.example.com", &a, 0, 0);
	cf_policy_learn_address(p, "huge.example.com", &b, UINT32_MAX, 0);
	assert_true(tcp(p, "203.0.113.7", 59999).allow);
	assert_false(tcp(p, "203.0.113.7", 60000).allow);
	assert_true(tcp(p, "203.0.113.8", 86400000 - 1).allow);
	assert_false(tcp(p, "203.0.113.8", 86400000).allow);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_relearning_extends_but_never_shortens(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_ip a = ip("203.0.113.7"), b = ip("203.0.113.8");

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example.com");
	p = build(&c);
	cf_policy_learn_address(p, "a.example.com", &a, 100, 0);
	cf_policy_learn_address(p, "a.example.com", &a, 100, 50000);
	assert_true(tcp(p, "203.0.113.7", 149999).allow);
	assert_false(tcp(p, "203.0.113.7", 150000).allow);
	cf_policy_learn_address(p, "b.example.com", &b, 1000, 0);
	cf_policy_learn_address(p, "b.example.com", &b, 60, 1000);
	assert_true(tcp(p, "203.0.113.8", 999999).allow);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_cname_expiry_drops_the_alias_but_keeps_the_target(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip a = ip("198.51.100.7");
	const char *names[4];

	(void)state;
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains_exact, "a.example");
	p = build(&c);
	cf_policy_learn_cname(p, "a.example", "b.cdn.net", 100, 0);
	cf_policy_learn_address(p, "b.cdn.net", &a, 1000, 0);
	assert_true(tcp(p, "198.51.100.7", 99999).allow);
	v = tcp(p, "198.51.100.7", 100000);
	expect_deny(&v, CF_REASON_DEFAULT_DENY, "--default-policy", "", "",
		    "198.51.100.7 (resolved from b.cdn.net) matches no allow rule "
		    "(--default-policy deny)");
	assert_int_equal(cf_policy_names_for(p, &a, 100000, names, 4), 1);
	assert_string_equal(names[0], "b.cdn.net");
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_learning_ignores_invalid_input(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_ip a = ip("203.0.113.7"), none = {.family = 0};
	const char *names[4];

	(void)state;
	cf_config_init(&c);
	p = build(&c);
	cf_policy_learn_address(p, NULL, &a, 300, 0);
	cf_policy_learn_address(p, "", &a, 300, 0);
	cf_policy_learn_address(p, ".", &a, 300, 0);
	cf_policy_learn_address(p, "x.example", NULL, 300, 0);
	cf_policy_learn_address(p, "x.example", &none, 300, 0);
	cf_policy_learn_cname(p, "x.example", "X.Example.", 300, 0);
	cf_policy_learn_cname(p, NULL, "x.example", 300, 0);
	cf_policy_learn_cname(p, "x.example", NULL, 300, 0);
	assert_int_equal(cf_policy_names_for(p, &a, 0, names, 4), 0);
	assert_int_equal(cf_policy_names_for(p, &none, 0, names, 4), 0);
	assert_int_equal(cf_policy_names_for(p, NULL, 0, names, 4), 0);
	assert_int_equal(cf_policy_names_for(p, &a, 0, NULL, 4), 0);
	assert_int_equal(cf_policy_names_for(p, &a, 0, names, 0), 0);
	cf_policy_free(p);
	cf_config_free(&c);
}

/* ---- the name memory ---------------------------------------------------- */

static void test_name_normalise_lowercases_and_drops_one_trailing_dot(void **state)
{
	char out[CF_NC_NAME_MAX + 1], in[CF_NC_NAME_MAX + 3];

	(void)state;
	assert_int_equal(cf_name_normalise("WWW.Example.COM.", out), 15);
	assert_string_equal(out, "www.example.com");
	assert_int_equal(cf_name_normalise(".", out), 0);
	assert_string_equal(out, "");
	assert_int_equal(cf_name_normalise(NULL, out), -EINVAL);
	memset(in, 'a', CF_NC_NAME_MAX);
	in[CF_NC_NAME_MAX] = '.';
	in[CF_NC_NAME_MAX + 1] = '\0';
	assert_int_equal(cf_name_normalise(in, out), (int)CF_NC_NAME_MAX);
	in[CF_NC_NAME_MAX] = 'a';
	assert_int_equal(cf_name_normalise(in, out), -EINVAL);
}

static void test_namecache_new_rejects_bad_arguments(void **state)
{
	struct cf_namecache *nc = NULL;

	(void)state;
	assert_int_equal(cf_namecache_new(0, test_key, &nc), -EINVAL);
	assert_int_equal(cf_namecache_new((1u << 24) + 1, test_key, &nc), -EINVAL);
	assert_int_equal(cf_namecache_new(4, NULL, &nc), -EINVAL);
	assert_int_equal(cf_namecache_new(4, test_key, NULL), -EINVAL);
	assert_null(nc);
	cf_namecache_free(NULL);
}

static void test_namecache_drops_least_recently_learned_when_full(void **state)
{
	struct cf_namecache *nc;
	struct cf_ip a[5];
	const char *names[4];
	char name[32];

	(void)state;
	assert_int_equal(cf_namecache_new(4, test_key, &nc), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "203.0.113.%d", i + 1);
		a[i] = ip(name);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		assert_int_equal(cf_namecache_add_address(nc, name, &a[i], 300, 0), 0);
	}
	/* Relearning n0 makes n1 the least recently learned. */
	assert_int_equal(cf_namecache_add_address(nc, "n0.example", &a[0], 300, 0), 0);
	assert_int_equal(cf_namecache_records(nc), 4);
	assert_int_equal(cf_namecache_add_address(nc, "n4.example", &a[4], 300, 0), 0);
	assert_int_equal(cf_namecache_records(nc), 4);
	assert_int_equal(cf_namecache_names(nc), 4);
	assert_int_equal(cf_namecache_names_for(nc, &a[1], 1, 0, names, 4), 0);
	assert_int_equal(cf_namecache_names_for(nc, &a[0], 1, 0, names, 4), 1);
	assert_string_equal(names[0], "n0.example");
	assert_int_equal(cf_namecache_names_for(nc, &a[4], 1, 0, names, 4), 1);
	assert_string_equal(names[0], "n4.example");
	/* A CNAME record counts against the same bound and frees both names when dropped. */
	assert_int_equal(cf_namecache_add_cname(nc, "alias.example", "n4.example", 300, 0), 0);
	assert_int_equal(cf_namecache_records(nc), 4);
	assert_int_equal(cf_namecache_names_for(nc, &a[2], 1, 0, names, 4), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "m%d.example", i);
		assert_int_equal(cf_namecache_add_address(nc, name, &a[0], 300, 0), 0);
	}
	assert_int_equal(cf_namecache_records(nc), 4);
	assert_int_equal(cf_namecache_names(nc), 4);
	cf_namecache_free(nc);
}

static void test_policy_name_memory_is_bounded_to_default_capacity(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	const uint32_t n = CF_NC_DEFAULT_CAPACITY + 10;
	struct cf_ip first = ip("10.0.0.0"), last = first;
	const char *names[2];
	char name[32];

	(void)state;
	cf_config_init(&c);
	p = build(&c);
	for (uint32_t i = 0; i < n; i++) {
		struct cf_ip a = first;

		a.b[1] = (uint8_t)(i >> 16);
		a.b[2] = (uint8_t)(i >> 8);
		a.b[3] = (uint8_t)i;
		snprintf(name, sizeof(name), "n%u.example", i);
		cf_policy_learn_address(p, name, &a, 300, 0);
		last = a;
	}
	assert_int_equal(cf_policy_names_for(p, &first, 0, names, 2), 0);
	first.b[3] = 9;
	assert_int_equal(cf_policy_names_for(p, &first, 0, names, 2), 0);
	first.b[3] = 10;
	assert_int_equal(cf_policy_names_for(p, &first, 0, names, 2), 1);
	assert_string_equal(names[0], "n10.example");
	assert_int_equal(cf_policy_names_for(p, &last, 0, names, 2), 1);
	snprintf(name, sizeof(name), "n%u.example", n - 1);
	assert_string_equal(names[0], name);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_namecache_bounds_names_per_address_dropping_soonest_expiry(void **state)
{
	struct cf_namecache *nc;
	struct cf_ip a = ip("203.0.113.1");
	const char *names[CF_NC_WALK_MAX];
	char name[32];
	size_t n;

	(void)state;
	assert_int_equal(cf_namecache_new(1024, test_key, &nc), 0);
	for (unsigned int i = 0; i < CF_NC_MAX_PER_KEY + 6; i++) {
		snprintf(name, sizeof(name), "n%u.example", i);
		assert_int_equal(cf_namecache_add_address(nc, name, &a, 100 + i, 0), 0);
	}
	assert_int_equal(cf_namecache_records(nc), CF_NC_MAX_PER_KEY);
	n = cf_namecache_names_for(nc, &a, 1, 0, names, CF_NC_WALK_MAX);
	assert_int_equal(n, CF_NC_MAX_PER_KEY);
	for (size_t i = 0; i < n; i++) {
		assert_string_not_equal(names[i], "n0.example");
		assert_string_not_equal(names[i], "n5.example");
	}
	/* The same bound holds for aliases of one CNAME target. */
	for (unsigned int i = 0; i < CF_NC_MAX_PER_KEY + 3; i++) {
		snprintf(name, sizeof(name), "alias%u.example", i);
		assert_int_equal(cf_namecache_add_cname(nc, name, "n6.example", 100 + i, 0), 0);
	}
	assert_int_equal(cf_namecache_records(nc), 2 * CF_NC_MAX_PER_KEY);
	cf_namecache_free(nc);
}

static void test_namecache_walk_survives_cname_loops_and_stops_at_depth(void **state)
{
	struct cf_namecache *nc;
	struct cf_ip a = ip("198.51.100.1"), b = ip("198.51.100.2");
	const char *names[CF_NC_WALK_MAX];
	char alias[32], target[32];

	(void)state;
	assert_int_equal(cf_namecache_new(256, test_key, &nc), 0);
	assert_int_equal(cf_namecache_add_cname(nc, "a.example", "b.example", 300, 0), 0);
	assert_int_equal(cf_namecache_add_cname(nc, "b.example", "a.example", 300, 0), 0);
	assert_int_equal(cf_namecache_add_address(nc, "b.example", &a, 300, 0), 0);
	assert_int_equal(cf_namecache_names_for(nc, &a, 1, 0, names, CF_NC_WALK_MAX), 2);
	assert_string_equal(names[0], "b.example");
	assert_string_equal(names[1], "a.example");
	/* c0 -> c1 -> ... -> c20 -> address: only CF_NC_MAX_DEPTH levels are walked. */
	for (int i = 0; i < 20; i++) {
		snprintf(alias, sizeof(alias), "c%d.example", i);
		snprintf(target, sizeof(target), "c%d.example", i + 1);
		assert_int_equal(cf_namecache_add_cname(nc, alias, target, 300, 0), 0);
	}
	assert_int_equal(cf_namecache_add_address(nc, "c20.example", &b, 300, 0), 0);
	assert_int_equal(cf_namecache_names_for(nc, &b, 1, 0, names, CF_NC_WALK_MAX),
			 CF_NC_MAX_DEPTH + 1);
	snprintf(alias, sizeof(alias), "c%u.example", 20 - CF_NC_MAX_DEPTH);
	assert_string_equal(names[CF_NC_MAX_DEPTH], alias);
	/* The caller's limit is honoured. */
	assert_int_equal(cf_namecache_names_for(nc, &b, 1, 0, names, 3), 3);
	assert_int_equal(cf_namecache_add_cname(nc, "a.example", "a.example", 300, 0), -EINVAL);
	assert_int_equal(cf_namecache_add_cname(nc, "", "a.example", 300, 0), -EINVAL);
	assert_int_equal(cf_namecache_add_address(nc, "", &a, 300, 0), -EINVAL);
	cf_namecache_free(nc);
}

static void test_namecache_walk_deduplicates_names_over_both_address_forms(void **state)
{
	struct cf_namecache *nc;
	struct cf_ip both[2] = {ip("::ffff:203.0.113.5"), ip("203.0.113.5")};
	const char *names[4];

	(void)state;
	assert_int_equal(cf_namecache_new(16, test_key, &nc), 0);
	assert_int_equal(cf_namecache_add_address(nc, "x.example", &both[0], 300, 0), 0);
	assert_int_equal(cf_namecache_add_address(nc, "x.example", &both[1], 300, 0), 0);
	assert_int_equal(cf_namecache_add_address(nc, "y.example", &both[1], 300, 0), 0);
	assert_int_equal(cf_namecache_names_for(nc, both, 2, 0, names, 4), 2);
	assert_string_equal(names[0], "x.example");
	assert_string_equal(names[1], "y.example");
	cf_namecache_free(nc);
}

static void test_namecache_add_returns_enomem_and_keeps_state_when_name_alloc_fails(void **state)
{
#ifdef CF_TEST_ALLOC_FAIL
	struct cf_namecache *nc;
	struct cf_ip a = ip("203.0.113.1");
	const char *names[4];
	int r;

	(void)state;
	if (!injection_works())
		skip();
	assert_int_equal(cf_namecache_new(8, test_key, &nc), 0);
	fail_nth_allocation(1);
	r = cf_namecache_add_address(nc, "x.example", &a, 300, 0);
	assert_true(stop_failing());
	assert_int_equal(r, -ENOMEM);
	assert_int_equal(cf_namecache_records(nc), 0);
	assert_int_equal(cf_namecache_names(nc), 0);
	/* The alias is interned, then the target fails: the alias is released again. */
	fail_nth_allocation(2);
	r = cf_namecache_add_cname(nc, "alias.example", "target.example", 300, 0);
	assert_true(stop_failing());
	assert_int_equal(r, -ENOMEM);
	assert_int_equal(cf_namecache_records(nc), 0);
	assert_int_equal(cf_namecache_names(nc), 0);
	/* The alias fails first. */
	fail_nth_allocation(1);
	r = cf_namecache_add_cname(nc, "alias.example", "target.example", 300, 0);
	assert_true(stop_failing());
	assert_int_equal(r, -ENOMEM);
	assert_int_equal(cf_namecache_names(nc), 0);
	assert_int_equal(cf_namecache_add_address(nc, "x.example", &a, 300, 0), 0);
	assert_int_equal(cf_namecache_names_for(nc, &a, 1, 0, names, 4), 1);
	cf_namecache_free(nc);
#else
	(void)state;
	skip();
#endif
}

static void test_policy_learn_survives_allocation_failure(void **state)
{
#ifdef CF_TEST_ALLOC_FAIL
	struct cf_config c;
	struct cf_policy *p;
	struct cf_ip a = ip("203.0.113.1");
	const char *names[4];

	(void)state;
	if (!injection_works())
		skip();
	cf_config_init(&c);
	c.default_policy = CF_POLICY_DENY;
	add_name(&c.allow_domains, "example");
	p = build(&c);
	fail_nth_allocation(1);
	cf_policy_learn_address(p, "x.example", &a, 300, 0);
	assert_true(stop_failing());
	fail_nth_allocation(1);
	cf_policy_learn_cname(p, "y.example", "x.example", 300, 0);
	assert_true(stop_failing());
	assert_int_equal(cf_policy_names_for(p, &a, 0, names, 4), 0);
	assert_int_equal(tcp(p, "203.0.113.1", 0).reason, CF_REASON_DEFAULT_DENY);
	cf_policy_free(p);
	cf_config_free(&c);
#else
	(void)state;
	skip();
#endif
}

/* ---- counters and verdict hygiene --------------------------------------- */

static void test_denials_are_counted_by_reason_and_allows_are_not(void **state)
{
	struct cf_config c;
	struct cf_policy *p;

	(void)state;
	cf_config_init(&c);
	c.block_private = true;
	c.proxy_only = true;
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_name(&c.deny_domains, "example.com");
	p = build(&c);
	assert_int_equal(cf_policy_denials(p), 0);
	(void)tcp(p, "10.0.0.1", 0);
	(void)tcp(p, "203.0.113.1", 0);
	(void)flow(p, CF_PROTO_TCP, "203.0.113.2", 443, true, 0);
	(void)dns(p, "a.example.com");
	(void)flow(p, CF_PROTO_UDP, "198.51.100.1", 53, false, 0);
	(void)flow(p, CF_PROTO_TCP, "198.51.100.1", 443, true, 0);
	(void)dns(p, "example.org");
	assert_int_equal(cf_policy_denials(p), 5);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_PRIVATE), 1);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_DENY_CIDR), 2);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_DENY_DOMAIN), 1);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_PROXY_ONLY), 1);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_OFFLINE), 0);
	assert_int_equal(cf_policy_denials_by_reason(p, CF_REASON_NONE), 0);
	assert_int_equal(cf_policy_denials_by_reason(p, (enum cf_reason)99), 0);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_reused_verdict_is_fully_reset_by_an_allow(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	struct cf_ip deny = ip("203.0.113.1"), ok = ip("198.51.100.1");

	(void)state;
	cf_config_init(&c);
	add_cidr(&c.deny_cidrs, "203.0.113.0/24");
	add_name(&c.deny_domains, "example.com");
	p = build(&c);
	cf_policy_check_flow(p, CF_PROTO_TCP, &deny, 443, false, 0, &v);
	assert_false(v.allow);
	cf_policy_check_flow(p, CF_PROTO_TCP, &ok, 443, false, 0, &v);
	expect_allow(&v);
	cf_policy_check_dns(p, "example.com", &v);
	assert_false(v.allow);
	cf_policy_check_dns(p, "example.org", &v);
	expect_allow(&v);
	cf_policy_free(p);
	cf_config_free(&c);
}

static void test_long_names_are_truncated_in_text_not_overflowed(void **state)
{
	struct cf_config c;
	struct cf_policy *p;
	struct cf_verdict v;
	char rule[CF_NC_NAME_MAX + 1];
	char qname[CF_NC_NAME_MAX + 1];

	(void)state;
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 bytes, a maximal rule. */
	memset(rule, 'a', CF_NC_NAME_MAX);
	rule[63] = rule[127] = rule[191] = '.';
	rule[CF_NC_NAME_MAX] = '\0';
	memcpy(qname, rule, sizeof(qname));
	cf_config_init(&c);
	add_name(&c.deny_domains_exact, rule);
	p = build(&c);
	v = dns(p, qname);
	assert_int_equal(v.reason, CF_REASON_DENY_DOMAIN_EXACT);
	assert_string_equal(v.matched_domain, rule);
	assert_int_equal(strlen(v.reason_text), sizeof(v.reason_text) - 1);
	cf_policy_free(p);
	cf_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_proto_names_are_the_flow_log_protocols),
	    cmocka_unit_test(test_reason_codes_and_controls_are_the_flow_log_values),
	    cmocka_unit_test(test_new_rejects_null_arguments),
	    cmocka_unit_test(test_new_rejects_cidr_with_bad_family_or_prefix),
	    cmocka_unit_test(test_new_rejects_empty_or_overlong_domain_rules),
	    cmocka_unit_test(test_new_copies_rules_so_config_can_go_away),
	    cmocka_unit_test(test_new_returns_enomem_without_leaking_when_any_allocation_fails),
	    cmocka_unit_test(test_deny_cidr_v4_denies_inside_and_allows_outside),
	    cmocka_unit_test(test_deny_cidr_v6_denies_inside_and_allows_outside),
	    cmocka_unit_test(test_slash_zero_matches_every_address_of_its_family_only),
	    cmocka_unit_test(test_host_prefixes_32_and_128_match_exactly_one_address),
	    cmocka_unit_test(test_longer_allow_prefix_beats_shorter_deny),
	    cmocka_unit_test(test_longer_deny_prefix_beats_shorter_allow_under_default_deny),
	    cmocka_unit_test(test_equal_prefix_allow_and_deny_deny_wins),
	    cmocka_unit_test(test_nested_rules_alternate_by_longest_prefix),
	    cmocka_unit_test(test_cidr_rule_with_host_bits_is_applied_as_its_network),
	    cmocka_unit_test(test_cidr_trie_agrees_with_brute_force_longest_prefix_match),
	    cmocka_unit_test(test_suffix_rule_matches_apex_and_subdomains_not_lookalikes),
	    cmocka_unit_test(test_domain_matching_ignores_case_and_one_trailing_dot),
	    cmocka_unit_test(test_exact_rule_matches_only_that_name),
	    cmocka_unit_test(test_exact_allow_beats_suffix_deny),
	    cmocka_unit_test(test_exact_deny_beats_suffix_allow),
	    cmocka_unit_test(test_longer_suffix_rule_beats_shorter),
	    cmocka_unit_test(test_equal_domain_rules_deny_wins),
	    cmocka_unit_test(test_wildcard_rule_matches_subdomains_but_not_the_apex),
	    cmocka_unit_test(test_first_bytes_name_is_judged_by_domain_rules_and_address_allows),
	    cmocka_unit_test(test_wildcard_in_exact_rule_is_literal),
	    cmocka_unit_test(test_plain_rule_is_reported_when_plain_and_wildcard_both_match),
	    cmocka_unit_test(test_default_deny_resolves_only_allowed_names),
	    cmocka_unit_test(test_dns_without_rules_is_allowed_even_for_odd_names),
	    cmocka_unit_test(test_row1_offline_beats_everything),
	    cmocka_unit_test(test_row2_metadata_beats_private_and_rules),
	    cmocka_unit_test(test_row3_private_beats_deny_and_allow_rules),
	    cmocka_unit_test(test_row4_deny_rules_beat_allow_rules_across_cidr_and_domain),
	    cmocka_unit_test(test_row5_allow_rules_beat_default_deny),
	    cmocka_unit_test(test_row6_default_policy_decides_what_no_rule_matches),
	    cmocka_unit_test(test_row7_proxy_only_applies_to_what_the_rules_let_through),
	    cmocka_unit_test(test_mapped_and_nat64_forms_are_checked_as_ipv4),
	    cmocka_unit_test(test_mapped_form_is_allowed_by_ipv4_allow_rule_under_default_deny),
	    cmocka_unit_test(test_mapped_and_nat64_forms_of_private_and_metadata_are_blocked),
	    cmocka_unit_test(test_names_of_the_ipv4_address_apply_to_its_mapped_form),
	    cmocka_unit_test(test_block_private_covers_every_listed_range),
	    cmocka_unit_test(test_block_metadata_covers_every_listed_endpoint_and_nothing_near),
	    cmocka_unit_test(test_without_block_flags_private_and_metadata_are_reachable),
	    cmocka_unit_test(test_host_loopback_and_unspecified_are_host_local_whatever_the_rules),
	    cmocka_unit_test(test_host_addresses_are_host_local_until_replaced),
	    cmocka_unit_test(test_multicast_and_broadcast_never_leave_whatever_the_rules),
	    cmocka_unit_test(test_host_alias_opens_exactly_the_listed_ports),
	    cmocka_unit_test(test_host_port_parse_accepts_port_and_protocol_only),
	    cmocka_unit_test(test_proxy_only_allows_only_proxied_tcp_udp_dns_and_never_icmp),
	    cmocka_unit_test(test_without_proxy_only_every_protocol_may_go_direct),
	    cmocka_unit_test(test_default_deny_allows_address_learned_from_allowed_name),
	    cmocka_unit_test(test_default_deny_allows_address_reached_through_cname_chain),
	    cmocka_unit_test(test_deny_domain_reaches_address_through_cname_target_and_alias),
	    cmocka_unit_test(test_a_denied_name_among_allowed_names_denies_the_address),
	    cmocka_unit_test(test_learned_address_expires_after_its_ttl),
	    cmocka_unit_test(test_short_ttls_are_kept_sixty_seconds_and_long_ones_a_day),
	    cmocka_unit_test(test_relearning_extends_but_never_shortens),
	    cmocka_unit_test(test_cname_expiry_drops_the_alias_but_keeps_the_target),
	    cmocka_unit_test(test_learning_ignores_invalid_input),
	    cmocka_unit_test(test_name_normalise_lowercases_and_drops_one_trailing_dot),
	    cmocka_unit_test(test_namecache_new_rejects_bad_arguments),
	    cmocka_unit_test(test_namecache_drops_least_recently_learned_when_full),
	    cmocka_unit_test(test_policy_name_memory_is_bounded_to_default_capacity),
	    cmocka_unit_test(test_namecache_bounds_names_per_address_dropping_soonest_expiry),
	    cmocka_unit_test(test_namecache_walk_survives_cname_loops_and_stops_at_depth),
	    cmocka_unit_test(test_namecache_walk_deduplicates_names_over_both_address_forms),
	    cmocka_unit_test(
		test_namecache_add_returns_enomem_and_keeps_state_when_name_alloc_fails),
	    cmocka_unit_test(test_policy_learn_survives_allocation_failure),
	    cmocka_unit_test(test_denials_are_counted_by_reason_and_allows_are_not),
	    cmocka_unit_test(test_reused_verdict_is_fully_reset_by_an_allow),
	    cmocka_unit_test(test_long_names_are_truncated_in_text_not_overflowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
