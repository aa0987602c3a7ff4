/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the name memory under hostile DNS answers: the
 * records a hostile resolver can make the engine learn (src/policy/
 * namecache.c), through cf_policy_learn_address / cf_policy_learn_cname /
 * cf_policy_names_for as the engine calls them, or through the cache itself
 * with a small capacity so that eviction and the per-key bound are reached.
 *
 * The input is a program: byte 0 picks the API ('P': the policy's; else the
 * cache's with capacity 1 + byte 1), then records, each an opcode byte:
 *   0  learn NAME -> ADDR (TTL)
 *   1  learn ALIAS CNAME TARGET (TTL)
 *   2  look up the names of ADDR (at most MAX) and check them
 *   3  time passes (2 bytes, seconds)
 *   4  walk the names of ADDR and a second ADDR, stopping after K
 * NAME is a byte: an index into a small pool (case and trailing-dot variants,
 * the root, the empty name, 253 and 254 characters) or, from 0xf0, a length
 * byte and that many raw bytes. ADDR is a byte: a pool index (v4, v6, the v4
 * ones v4-mapped and NAT64, a bad family) or, from 0xf0, 4 (even) or 16 (odd)
 * raw bytes.
 *
 * A model keeps every binding ever learned with its latest expiry (no
 * eviction). Properties, abort on violation:
 * - records never exceed the capacity, names never exceed two per record;
 * - a lookup returns at most MAX distinct names, lower case and 1..253 long, each reachable
 *   in the model from the address (or its embedded IPv4) through unexpired
 *   bindings: an evicted or expired binding never comes back, no name is
 *   made up, and every byte of every name is read, again at the next lookup
 *   if nothing was learned in between (ASan: no stale pointer); a walk
 *   visits only such names too;
 * - right after learning NAME -> ADDR, a lookup of ADDR returns NAME.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"
#include "policy/namecache.h"
#include "policy/policy.h"
#include "util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* The model's and the checks' loops are not the code under test: no coverage features. */
#define MODEL __attribute__((no_sanitize("coverage")))

#define MAX_OPS 300
#define NAME_BUF 300

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take8(struct input *in)
{
	uint8_t b = 0;

	if (in->left) {
		b = *in->p++;
		in->left--;
	}
	return b;
}

static uint16_t take16(struct input *in)
{
	uint16_t hi = take8(in);

	return (uint16_t)(hi << 8 | take8(in));
}

/* One binding of the model: NAME -> address, or NAME (alias) -> target; names by index. */
struct binding {
	int name;
	int target; /* -1 for an address binding */
	struct cf_ip ip;
	uint64_t expires_ms;
};

struct state {
	bool policy_api;
	struct cf_policy *policy;
	struct cf_namecache *nc;
	uint32_t capacity;
	uint64_t now_ms;
	struct binding model[MAX_OPS];
	size_t nmodel;
	char names[MAX_OPS * 2][NAME_BUF]; /* the model's names, each once */
	size_t nnames;
	bool reached[MAX_OPS * 2]; /* scratch for the model's walk */
	int queue[MAX_OPS * 2];
	/* The names the last lookup returned: valid until the next learn, so read again. */
	const char *last[CF_NC_WALK_MAX];
	size_t nlast;
};

static void name_pool(size_t i, char *out)
{
	static const char *const pool[] = {
	    "a.test",	  "A.TEST.",	"b.test", "c.test", "cdn.test", "x.a.test",
	    "loop1.test", "loop2.test", ".",	  "",	    "a.test..", "_srv.Test",
	};
	size_t n = CF_ARRAY_SIZE(pool) + 2;

	i %= n;
	if (i < CF_ARRAY_SIZE(pool)) {
		strcpy(out, pool[i]);
		return;
	}
	/* 253 characters (the longest name) and 254 (one too many). */
	memset(out, 'l', 253 + (i - CF_ARRAY_SIZE(pool)));
	out[253 + (i - CF_ARRAY_SIZE(pool))] = '\0';
}

static void take_name(struct input *in, char *out)
{
	uint8_t k = take8(in);
	size_t len;

	if (k < 0xf0) {
		name_pool(k, out);
		return;
	}
	len = take8(in);
	if (len > in->left)
		len = in->left;
	memcpy(out, in->p, len);
	out[len] = '\0';
	in->p += len;
	in->left -= len;
}

static void take_ip(struct input *in, struct cf_ip *ip)
{
	static const uint8_t v4[3][4] = {{198, 51, 100, 1}, {198, 51, 100, 2}, {203, 0, 113, 9}};
	uint8_t k = take8(in);

	memset(ip, 0, sizeof(*ip));
	if (k >= 0xf0) {
		ip->family = k & 1 ? AF_INET6 : AF_INET;
		for (size_t i = 0; i < (k & 1 ? 16u : 4u); i++)
			ip->b[i] = take8(in);
		return;
	}
	switch (k % 6) {
	case 0:
		ip->family = AF_INET;
		memcpy(ip->b, v4[k / 6 % 3], 4);
		break;
	case 1: /* v4-mapped */
		ip->family = AF_INET6;
		ip->b[10] = ip->b[11] = 0xff;
		memcpy(ip->b + 12, v4[k / 6 % 3], 4);
		break;
	case 2: /* NAT64 */
		ip->family = AF_INET6;
		ip->b[1] = 0x64;
		ip->b[2] = 0xff;
		ip->b[3] = 0x9b;
		memcpy(ip->b + 12, v4[k / 6 % 3], 4);
		break;
	case 3:
	case 4:
		ip->family = AF_INET6;
		ip->b[0] = 0x20;
		ip->b[1] = 0x01;
		ip->b[2] = 0x0d;
		ip->b[3] = 0xb8;
		ip->b[15] = (uint8_t)(k / 6 % 3);
		break;
	default:
		ip->family = (uint8_t)(k / 6); /* neither AF_INET nor AF_INET6 but by chance */
		ip->b[0] = 1;
		break;
	}
}

/* The model's normalisation, written apart from cf_name_normalise(): -1 when invalid. */
MODEL static int normalise(const char *in, char *out)
{
	size_t len = strlen(in);

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > CF_NC_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = in[i] >= 'A' && in[i] <= 'Z' ? (char)(in[i] + 32) : in[i];
	out[len] = '\0';
	return (int)len;
}

static uint64_t expiry(uint32_t ttl, uint64_t now_ms)
{
	if (ttl < CF_NC_MIN_TTL_S)
		ttl = CF_NC_MIN_TTL_S;
	if (ttl > CF_NC_MAX_TTL_S)
		ttl = CF_NC_MAX_TTL_S;
	return now_ms + (uint64_t)ttl * 1000;
}

MODEL static bool same_ip(const struct cf_ip *a, const struct cf_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, a->family == AF_INET ? 4 : 16) == 0;
}

/* The index of @name in the model, added if new; -1 if not there and not to be added. */
MODEL static int model_name(struct state *s, const char *name, bool add)
{
	for (size_t i = 0; i < s->nnames; i++)
		if (strcmp(s->names[i], name) == 0)
			return (int)i;
	if (!add)
		return -1;
	strcpy(s->names[s->nnames], name);
	return (int)s->nnames++;
}

MODEL static void model_learn(struct state *s, const char *name, const char *target,
			      const struct cf_ip *ip, uint64_t expires_ms)
{
	int n = model_name(s, name, true), t = target ? model_name(s, target, true) : -1;
	struct binding *b;

	for (size_t i = 0; i < s->nmodel; i++) {
		b = &s->model[i];
		if (b->name == n && b->target == t && (t >= 0 || same_ip(&b->ip, ip))) {
			if (expires_ms > b->expires_ms)
				b->expires_ms = expires_ms;
			return;
		}
	}
	b = &s->model[s->nmodel++];
	b->name = n;
	b->target = t;
	memset(&b->ip, 0, sizeof(b->ip));
	if (ip)
		b->ip = *ip;
	b->expires_ms = expires_ms;
}

/* Mark in s->reached every name the model reaches from @ips through unexpired bindings. */
MODEL static void model_reach(struct state *s, const struct cf_ip *ips, size_t nips)
{
	size_t n = 0;

	memset(s->reached, 0, sizeof(s->reached));
	for (size_t i = 0; i < s->nmodel; i++) {
		const struct binding *b = &s->model[i];

		if (b->target >= 0 || b->expires_ms <= s->now_ms || s->reached[b->name])
			continue;
		for (size_t k = 0; k < nips; k++)
			if (same_ip(&b->ip, &ips[k])) {
				s->reached[b->name] = true;
				s->queue[n++] = b->name;
				break;
			}
	}
	for (size_t q = 0; q < n; q++)
		for (size_t i = 0; i < s->nmodel; i++) {
			const struct binding *b = &s->model[i];

			if (b->target == s->queue[q] && b->expires_ms > s->now_ms &&
			    !s->reached[b->name]) {
				s->reached[b->name] = true;
				s->queue[n++] = b->name;
			}
		}
}

/* The addresses cf_policy_names_for() looks up for @ip: itself and an embedded IPv4. */
MODEL static size_t policy_ips(const struct cf_ip *ip, struct cf_ip ips[2])
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};

	ips[0] = *ip;
	if (ip->family != AF_INET6 || (memcmp(ip->b, mapped, 12) && memcmp(ip->b, nat64, 12)))
		return 1;
	memset(&ips[1], 0, sizeof(ips[1]));
	ips[1].family = AF_INET;
	memcpy(ips[1].b, ip->b + 12, 4);
	return 2;
}

MODEL static void check_counts(const struct state *s)
{
	uint32_t recs;

	if (s->policy_api)
		return;
	recs = cf_namecache_records(s->nc);
	CHECK(recs <= s->capacity && recs <= s->nmodel);
	CHECK(cf_namecache_names(s->nc) <= 2 * recs);
}

/* Look up @ip (and its embedded IPv4 under the policy API); check against the model. */
MODEL static size_t lookup(struct state *s, const struct cf_ip *ip, size_t max, const char **names)
{
	struct cf_ip ips[2];
	size_t nips = policy_ips(ip, ips), n;

	/* No learn since the last lookup: its names are still there (ASan: no use after free). */
	for (size_t i = 0; i < s->nlast; i++)
		CHECK(strlen(s->last[i]) <= CF_NC_NAME_MAX);
	if (s->policy_api) {
		n = cf_policy_names_for(s->policy, ip, s->now_ms, names, max);
	} else {
		nips = 1;
		n = cf_namecache_names_for(s->nc, ips, 1, s->now_ms, names, max);
	}
	CHECK(n <= max && n <= CF_NC_WALK_MAX);
	model_reach(s, ips, nips);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		int k;

		CHECK(len > 0 && len <= CF_NC_NAME_MAX);
		for (size_t c = 0; c < len; c++)
			CHECK(names[i][c] < 'A' || names[i][c] > 'Z');
		k = model_name(s, names[i], false);
		CHECK(k >= 0 && s->reached[k]);
		for (size_t j = 0; j < i; j++)
			CHECK(names[j] != names[i] && strcmp(names[j], names[i]) != 0);
	}
	memcpy(s->last, names, n * sizeof(*names));
	s->nlast = n;
	return n;
}

static void op_learn_address(struct state *s, struct input *in)
{
	char name[NAME_BUF], norm[NAME_BUF];
	const char *names[CF_NC_WALK_MAX];
	struct cf_ip ip;
	uint32_t ttl;
	bool valid;
	size_t n;

	take_name(in, name);
	take_ip(in, &ip);
	ttl = take16(in);
	if (ttl & 0x8000)
		ttl = UINT32_MAX - (ttl & 0x7fff); /* TTLs past the cap */
	valid = normalise(name, norm) > 0 && (ip.family == AF_INET || ip.family == AF_INET6);
	s->nlast = 0;
	if (s->policy_api)
		cf_policy_learn_address(s->policy, name, &ip, ttl, s->now_ms);
	else
		CHECK((cf_namecache_add_address(s->nc, name, &ip, ttl, s->now_ms) == 0) == valid);
	if (!valid)
		return;
	model_learn(s, norm, NULL, &ip, expiry(ttl, s->now_ms));
	check_counts(s);
	/* Just learned: the address carries the name. */
	n = lookup(s, &ip, CF_NC_WALK_MAX, names);
	for (size_t i = 0;; i++) {
		CHECK(i < n);
		if (strcmp(names[i], norm) == 0)
			break;
	}
}

static void op_learn_cname(struct state *s, struct input *in)
{
	char alias[NAME_BUF], target[NAME_BUF], na[NAME_BUF], nt[NAME_BUF];
	uint32_t ttl;
	bool valid;

	take_name(in, alias);
	take_name(in, target);
	ttl = take16(in);
	valid = normalise(alias, na) > 0 && normalise(target, nt) > 0 && strcmp(na, nt) != 0;
	s->nlast = 0;
	if (s->policy_api)
		cf_policy_learn_cname(s->policy, alias, target, ttl, s->now_ms);
	else
		CHECK((cf_namecache_add_cname(s->nc, alias, target, ttl, s->now_ms) == 0) == valid);
	if (valid)
		model_learn(s, na, nt, NULL, expiry(ttl, s->now_ms));
	check_counts(s);
}

struct stopper {
	struct state *s;
	size_t seen, stop_after;
};

/* A walk visits names the model reaches (s->reached set for its addresses). */
MODEL static int visit(const char *name, void *ctx)
{
	struct stopper *st = ctx;
	int k = model_name(st->s, name, false);

	CHECK(strlen(name) <= CF_NC_NAME_MAX && k >= 0 && st->s->reached[k]);
	return ++st->seen >= st->stop_after;
}

static void op_walk(struct state *s, struct input *in)
{
	struct stopper st = {s, 0, 0};
	struct cf_ip ips[2];
	size_t n;

	take_ip(in, &ips[0]);
	take_ip(in, &ips[1]);
	st.stop_after = take8(in);
	if (s->policy_api)
		return;
	model_reach(s, ips, 2);
	n = cf_namecache_walk(s->nc, ips, 2, s->now_ms, 300, visit, &st);
	CHECK(n == st.seen && n <= CF_NC_WALK_MAX);
	CHECK(st.stop_after == 0 || n <= st.stop_after);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	struct input in = {data, size};
	struct state *s = calloc(1, sizeof(*s));
	const char *names[CF_NC_WALK_MAX];
	struct cf_config cfg;
	struct cf_ip ip;
	int r;

	if (!s)
		return 0;
	s->policy_api = take8(&in) == 'P'; /* rarer: a policy's cache is large to set up */
	s->capacity = 1u + take8(&in);
	s->now_ms = 1000;
	if (s->policy_api) {
		cf_config_init(&cfg);
		r = cf_policy_new(&cfg, &s->policy);
		cf_config_free(&cfg);
	} else {
		r = cf_namecache_new(s->capacity, key, &s->nc);
	}
	if (r < 0) {
		free(s);
		return 0;
	}
	for (size_t ops = 0; in.left && ops < MAX_OPS; ops++) {
		switch (take8(&in) % 5) {
		case 0:
			op_learn_address(s, &in);
			break;
		case 1:
			op_learn_cname(s, &in);
			break;
		case 2:
			take_ip(&in, &ip);
			(void)lookup(s, &ip, take8(&in), names);
			break;
		case 3:
			s->now_ms += (uint64_t)take16(&in) * 1000;
			break;
		default:
			op_walk(s, &in);
			break;
		}
	}
	cf_policy_free(s->policy);
	cf_namecache_free(s->nc);
	free(s);
	return 0;
}
