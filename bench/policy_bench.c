// SPDX-License-Identifier: MIT
/*
 * Micro-benchmark of the policy decision path (not a test): 10,000 CIDR rules
 * (v4 and v6, every prefix length, allow and deny), 10,000 domain rules over
 * the four lists, default deny, --block-private and --block-metadata, and
 * 50,000 learned names (a fifth of them behind a CNAME). It then times
 * flow decisions (half to learned addresses, a quarter random IPv4, the rest
 * random IPv6 and v4-mapped), DNS decisions and learning, and prints
 * decisions per second. Deterministic: a fixed xorshift seed.
 *
 * Built by Meson as build/policy_bench (meson setup build && ninja -C build).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "net/addr.h"
#include "policy/policy.h"

#define N_CIDRS 10000
#define N_DOMAINS 10000
#define N_LEARNED 50000
#define N_FLOWS 2000000
#define N_QUERIES 1000000

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

static uint32_t below(struct rng *r, uint32_t n)
{
	return (uint32_t)(next(r) % n);
}

static void random_ip(struct rng *r, uint8_t family, struct cf_ip *ip)
{
	uint64_t a = next(r), b = next(r);

	memset(ip, 0, sizeof(*ip));
	ip->family = family;
	memcpy(ip->b, &a, 8);
	memcpy(ip->b + 8, &b, 8);
	if (family == AF_INET)
		memset(ip->b + 4, 0, 12);
	else
		ip->b[0] = 0x20; /* global unicast, like real destinations */
}

static void mask(struct cf_cidr *c)
{
	size_t len = c->ip.family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < len; i++) {
		unsigned int bit = (unsigned int)i * 8;

		if (bit >= c->prefix)
			c->ip.b[i] = 0;
		else if (bit + 8 > c->prefix)
			c->ip.b[i] &= (uint8_t)(0xff << (bit + 8 - c->prefix));
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill_config(struct cf_config *c, struct rng *r)
{
	char name[64];
	int err = 0;

	c->default_policy = CF_POLICY_DENY;
	c->block_private = true;
	c->block_metadata = true;
	for (uint32_t i = 0; i < N_CIDRS && !err; i++) {
		struct cf_cidr cidr;
		bool v4 = below(r, 10) < 7;

		random_ip(r, v4 ? AF_INET : AF_INET6, &cidr.ip);
		cidr.prefix = (uint8_t)(v4 ? 8 + below(r, 25) : 16 + below(r, 113));
		mask(&cidr);
		err = cf_cidrv_push(i % 2 ? &c->deny_cidrs : &c->allow_cidrs, &cidr);
	}
	for (uint32_t i = 0; i < N_DOMAINS && !err; i++) {
		static const char *const tlds[] = {"com", "net", "org", "io", "example"};
		struct cf_strv *lists[] = {&c->allow_domains, &c->deny_domains,
					   &c->allow_domains_exact, &c->deny_domains_exact};

		snprintf(name, sizeof(name), "site%u.%s", i, tlds[i % 5]);
		err = cf_strv_push(lists[i % 4], name);
	}
	return err;
}

static int learn(struct cf_policy *p, struct rng *r, struct cf_ip *learned)
{
	char name[96], target[96];

	for (uint32_t i = 0; i < N_LEARNED; i++) {
		random_ip(r, below(r, 4) ? AF_INET : AF_INET6, &learned[i]);
		snprintf(name, sizeof(name), "www%u.site%u.com", i, below(r, N_DOMAINS));
		if (i % 5 == 0) {
			snprintf(target, sizeof(target), "edge%u.cdn.net", i);
			cf_policy_learn_cname(p, name, target, 300, 0);
			cf_policy_learn_address(p, target, &learned[i], 300, 0);
		} else {
			cf_policy_learn_address(p, name, &learned[i], 300, 0);
		}
	}
	return 0;
}

static void bench_flows(struct cf_policy *p, struct rng *r, const struct cf_ip *learned)
{
	struct cf_ip *dsts = calloc(N_FLOWS, sizeof(*dsts));
	uint64_t allowed = 0;
	struct cf_verdict v;
	double t0, t1;

	if (!dsts)
		return;
	for (uint32_t i = 0; i < N_FLOWS; i++) {
		uint32_t kind = below(r, 8);

		if (kind < 4) {
			dsts[i] = learned[below(r, N_LEARNED)];
		} else if (kind < 6) {
			random_ip(r, AF_INET, &dsts[i]);
		} else if (kind < 7) {
			random_ip(r, AF_INET6, &dsts[i]);
		} else {
			struct cf_ip v4;

			random_ip(r, AF_INET, &v4);
			memset(&dsts[i], 0, sizeof(dsts[i]));
			dsts[i].family = AF_INET6;
			dsts[i].b[10] = dsts[i].b[11] = 0xff;
			memcpy(dsts[i].b + 12, v4.b, 4);
		}
	}
	t0 = now_s();
	for (uint32_t i = 0; i < N_FLOWS; i++) {
		cf_policy_check_flow(p, CF_PROTO_TCP, &dsts[i], 443, false, 1000, &v);
		allowed += v.allow;
	}
	t1 = now_s();
	printf("flow decisions: %d in %.3f s: %.0f decisions/s (%.0f ns each), %llu allowed\n",
	       N_FLOWS, t1 - t0, N_FLOWS / (t1 - t0), (t1 - t0) * 1e9 / N_FLOWS,
	       (unsigned long long)allowed);
	free(dsts);
}

static void bench_dns(struct cf_policy *p, struct rng *r)
{
	char(*names)[96] = calloc(N_QUERIES, sizeof(*names));
	uint64_t allowed = 0;
	struct cf_verdict v;
	double t0, t1;

	if (!names)
		return;
	for (uint32_t i = 0; i < N_QUERIES; i++) {
		if (i % 2)
			snprintf(names[i], sizeof(names[i]), "img.www.site%u.com",
				 below(r, N_DOMAINS));
		else
			snprintf(names[i], sizeof(names[i]), "a.b.c.host%u.unlisted.org",
				 below(r, 1000000));
	}
	t0 = now_s();
	for (uint32_t i = 0; i < N_QUERIES; i++) {
		cf_policy_check_dns(p, names[i], &v);
		allowed += v.allow;
	}
	t1 = now_s();
	printf("dns decisions:  %d in %.3f s: %.0f decisions/s (%.0f ns each), %llu allowed\n",
	       N_QUERIES, t1 - t0, N_QUERIES / (t1 - t0), (t1 - t0) * 1e9 / N_QUERIES,
	       (unsigned long long)allowed);
	free(names);
}

int main(void)
{
	struct rng r = {.s = UINT64_C(0x9e3779b97f4a7c15)};
	struct cf_config c;
	struct cf_policy *p = NULL;
	struct cf_ip *learned = calloc(N_LEARNED, sizeof(*learned));
	double t0, t1;
	int err;

	cf_config_init(&c);
	err = learned ? fill_config(&c, &r) : -1;
	if (!err) {
		t0 = now_s();
		err = cf_policy_new(&c, &p);
		t1 = now_s();
		if (!err)
			printf("build: %d CIDRs, %d domains in %.3f ms\n", N_CIDRS, N_DOMAINS,
			       (t1 - t0) * 1e3);
	}
	if (err) {
		fprintf(stderr, "policy_bench: setup failed (%d)\n", err);
		free(learned);
		cf_config_free(&c);
		return 1;
	}
	t0 = now_s();
	learn(p, &r, learned);
	t1 = now_s();
	printf("learn: %d addresses (+%d CNAMEs) in %.3f s: %.0f learns/s\n", N_LEARNED,
	       N_LEARNED / 5, t1 - t0, (N_LEARNED + N_LEARNED / 5) / (t1 - t0));
	bench_flows(p, &r, learned);
	bench_dns(p, &r);
	cf_policy_free(p);
	free(learned);
	cf_config_free(&c);
	return 0;
}
