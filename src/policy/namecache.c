// SPDX-License-Identifier: MIT
/*
 * Name memory for domain policy.
 *
 * Theory of operation
 * -------------------
 * Names are interned: one refcounted struct nc_name per distinct name, in a
 * chained hash table keyed by SipHash-2-4 of the name. A record binds an
 * owner name either to an address (A/AAAA) or to a CNAME target name, with
 * an absolute expiry in monotonic milliseconds. Records live in one array
 * allocated up front (calloc: pages are touched only as records are used)
 * and are linked, by index, into
 *
 *   - a by-key bucket chain: address records by hash(address), CNAME records
 *     by the target name's hash; this answers "who owns 1.2.3.4" and "who is
 *     an alias of b.cdn";
 *   - one LRU list in learning order (head = least recently learned); a
 *     repeat of a known binding moves it to the tail and extends its expiry;
 *   - the free list, once dropped (never-used slots are handed out in
 *     order first, so an idle cache stays small in resident memory).
 *
 * Bounds: a full array drops the LRU head; an address (or CNAME target) with
 * CF_NC_MAX_PER_KEY records drops the one expiring first. So every chain walk
 * is short even when a hostile resolver binds thousands of names to one
 * address, and memory is capacity records plus at most two names each.
 *
 * Expired records are not purged eagerly: lookups skip them and the LRU or
 * the per-key bound reclaims them. Nothing is freed outside add and free, so
 * the name pointers a walk hands out stay valid until the next add.
 *
 * A walk marks visited names with a generation stamp, which makes CNAME
 * loops harmless and deduplicates names reached twice.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/namecache.h"
#include "util/siphash.h"

/*
 * Record 0 is never used: 0 ends every list, so the bucket heads start out
 * as calloc()'s untouched zero pages (a run that learns nothing never
 * touches the 1 MiB of heads a 0xff fill would write).
 */
#define NC_NIL 0u
#define NC_MAX_CAPACITY (UINT32_C(1) << 24)

struct nc_name {
	struct nc_name *next; /* hash chain */
	uint64_t hash;
	uint32_t refs;
	uint32_t seen; /* walk generation that last visited it */
	size_t len;
	char s[];
};

struct nc_rec {
	struct nc_name *owner;	/* NULL when the slot is free */
	struct nc_name *target; /* CNAME target; NULL for an address record */
	uint64_t expires_ms;
	uint32_t key_next; /* next in the by-key chain, or in the free list */
	uint32_t lru_prev;
	uint32_t lru_next;
	struct cf_ip ip; /* address records; unused bytes zero */
};

struct cf_namecache {
	uint8_t key[16];
	uint32_t capacity;
	uint32_t used;
	uint32_t nnames;
	uint32_t gen;
	size_t mask; /* bucket arrays have mask + 1 entries */
	struct nc_rec *recs;
	uint32_t *addr_buckets;
	uint32_t *cname_buckets;
	struct nc_name **name_buckets;
	uint32_t free_head; /* records freed since */
	uint32_t fresh;	    /* records [fresh, capacity] were never used */
	uint32_t lru_head;
	uint32_t lru_tail;
	struct nc_name *queue[CF_NC_WALK_MAX]; /* walk scratch, no allocation per lookup */
	uint8_t depth[CF_NC_WALK_MAX];
};

int cf_name_normalise(const char *in, char out[static CF_NC_NAME_MAX + 1])
{
	size_t len;

	if (!in)
		return -EINVAL;
	len = strnlen(in, CF_NC_NAME_MAX + 2);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len > CF_NC_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
	return (int)len;
}

static size_t ip_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

static bool ip_same(const struct cf_ip *a, const struct cf_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, ip_len(a->family)) == 0;
}

static size_t ip_bucket(const struct cf_namecache *nc, const struct cf_ip *ip)
{
	uint8_t buf[17];

	buf[0] = ip->family;
	memcpy(buf + 1, ip->b, ip_len(ip->family));
	return (size_t)cf_siphash24(nc->key, buf, 1 + ip_len(ip->family)) & nc->mask;
}

static size_t next_pow2(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

int cf_namecache_new(uint32_t capacity, const uint8_t key[16], struct cf_namecache **out)
{
	struct cf_namecache *nc;
	size_t nb;

	if (capacity == 0 || capacity > NC_MAX_CAPACITY || !key || !out)
		return -EINVAL;
	nc = calloc(1, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	memcpy(nc->key, key, sizeof(nc->key));
	nc->capacity = capacity;
	nb = next_pow2((size_t)capacity * 2);
	nc->mask = nb - 1;
	nc->recs = calloc((size_t)capacity + 1, sizeof(*nc->recs));
	nc->addr_buckets = calloc(nb, sizeof(*nc->addr_buckets));
	nc->cname_buckets = calloc(nb, sizeof(*nc->cname_buckets));
	nc->name_buckets = calloc(nb, sizeof(*nc->name_buckets));
	if (!nc->recs || !nc->addr_buckets || !nc->cname_buckets || !nc->name_buckets) {
		cf_namecache_free(nc);
		return -ENOMEM;
	}
	nc->fresh = 1;
	nc->free_head = NC_NIL;
	nc->lru_head = NC_NIL;
	nc->lru_tail = NC_NIL;
	*out = nc;
	return 0;
}

void cf_namecache_free(struct cf_namecache *nc)
{
	if (!nc)
		return;
	if (nc->name_buckets) {
		/* Stops at the last name: an empty memory's heads stay untouched. */
		for (size_t i = 0; nc->nnames > 0 && i <= nc->mask; i++) {
			struct nc_name *n = nc->name_buckets[i];

			while (n) {
				struct nc_name *next = n->next;

				free(n);
				nc->nnames--;
				n = next;
			}
		}
	}
	free(nc->name_buckets);
	free(nc->cname_buckets);
	free(nc->addr_buckets);
	free(nc->recs);
	free(nc);
}

/* Find or create the interned @s and take a reference. NULL on -ENOMEM. */
static struct nc_name *name_ref(struct cf_namecache *nc, const char *s, size_t len)
{
	uint64_t h = cf_siphash24(nc->key, s, len);
	struct nc_name **head = &nc->name_buckets[h & nc->mask];
	struct nc_name *n;

	for (n = *head; n; n = n->next) {
		if (n->hash == h && n->len == len && memcmp(n->s, s, len) == 0) {
			n->refs++;
			return n;
		}
	}
	n = malloc(sizeof(*n) + len + 1);
	if (!n)
		return NULL;
	n->hash = h;
	n->refs = 1;
	n->seen = 0;
	n->len = len;
	memcpy(n->s, s, len);
	n->s[len] = '\0';
	n->next = *head;
	*head = n;
	nc->nnames++;
	return n;
}

/* Look up the interned @s without taking a reference. */
static struct nc_name *name_find(const struct cf_namecache *nc, const char *s, size_t len)
{
	uint64_t h = cf_siphash24(nc->key, s, len);
	struct nc_name *n;

	for (n = nc->name_buckets[h & nc->mask]; n; n = n->next)
		if (n->hash == h && n->len == len && memcmp(n->s, s, len) == 0)
			return n;
	return NULL;
}

static void name_unref(struct cf_namecache *nc, struct nc_name *n)
{
	struct nc_name **pp;

	if (!n || --n->refs > 0)
		return;
	for (pp = &nc->name_buckets[n->hash & nc->mask]; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	nc->nnames--;
	free(n);
}

static void lru_unlink(struct cf_namecache *nc, uint32_t i)
{
	struct nc_rec *r = &nc->recs[i];

	if (r->lru_prev != NC_NIL)
		nc->recs[r->lru_prev].lru_next = r->lru_next;
	else
		nc->lru_head = r->lru_next;
	if (r->lru_next != NC_NIL)
		nc->recs[r->lru_next].lru_prev = r->lru_prev;
	else
		nc->lru_tail = r->lru_prev;
}

static void lru_append(struct cf_namecache *nc, uint32_t i)
{
	struct nc_rec *r = &nc->recs[i];

	r->lru_prev = nc->lru_tail;
	r->lru_next = NC_NIL;
	if (nc->lru_tail != NC_NIL)
		nc->recs[nc->lru_tail].lru_next = i;
	else
		nc->lru_head = i;
	nc->lru_tail = i;
}

static uint32_t *rec_bucket(struct cf_namecache *nc, const struct nc_rec *r)
{
	if (r->target)
		return &nc->cname_buckets[r->target->hash & nc->mask];
	return &nc->addr_buckets[ip_bucket(nc, &r->ip)];
}

/* Unlink record @i from every list, drop its names and put it on the free list. */
static void rec_remove(struct cf_namecache *nc, uint32_t i)
{
	struct nc_rec *r = &nc->recs[i];
	uint32_t *pp = rec_bucket(nc, r);

	while (*pp != NC_NIL && *pp != i)
		pp = &nc->recs[*pp].key_next;
	if (*pp == i)
		*pp = r->key_next;
	lru_unlink(nc, i);
	name_unref(nc, r->owner);
	name_unref(nc, r->target);
	memset(r, 0, sizeof(*r));
	r->key_next = nc->free_head;
	nc->free_head = i;
	nc->used--;
}

/* Take a free slot, dropping the least recently learned record if none is free. */
static uint32_t rec_alloc(struct cf_namecache *nc)
{
	uint32_t i;

	if (nc->free_head == NC_NIL && nc->fresh <= nc->capacity) {
		nc->used++;
		return nc->fresh++; /* first use: its page is touched only now */
	}
	if (nc->free_head == NC_NIL)
		rec_remove(nc, nc->lru_head);
	i = nc->free_head;
	nc->free_head = nc->recs[i].key_next;
	nc->used++;
	return i;
}

/* Give back a slot rec_alloc() returned that was never linked. */
static void rec_unalloc(struct cf_namecache *nc, uint32_t i)
{
	nc->recs[i].key_next = nc->free_head;
	nc->free_head = i;
	nc->used--;
}

static void rec_link(struct cf_namecache *nc, uint32_t i)
{
	uint32_t *head = rec_bucket(nc, &nc->recs[i]);

	nc->recs[i].key_next = *head;
	*head = i;
	lru_append(nc, i);
}

static uint64_t expiry(uint32_t ttl, uint64_t now_ms)
{
	if (ttl < CF_NC_MIN_TTL_S)
		ttl = CF_NC_MIN_TTL_S;
	if (ttl > CF_NC_MAX_TTL_S)
		ttl = CF_NC_MAX_TTL_S;
	return now_ms + (uint64_t)ttl * 1000;
}

/* Whether @r binds the same thing as the template @key: the same target, or the same address. */
static bool same_key(const struct nc_rec *r, const struct nc_rec *key)
{
	if (key->target)
		return r->target == key->target;
	return !r->target && ip_same(&r->ip, &key->ip);
}

/*
 * If a record of @key->owner (which may be NULL: a new name) already sits on
 * the chain at @head with the same key, extend it and return true. Otherwise
 * make room on that key for one more record and return false.
 */
static bool refresh_or_bound(struct cf_namecache *nc, uint32_t head, const struct nc_rec *key)
{
	uint32_t count = 0, soonest = NC_NIL;

	for (uint32_t i = head; i != NC_NIL; i = nc->recs[i].key_next) {
		struct nc_rec *r = &nc->recs[i];

		if (!same_key(r, key))
			continue;
		if (r->owner == key->owner) {
			if (key->expires_ms > r->expires_ms)
				r->expires_ms = key->expires_ms;
			lru_unlink(nc, i);
			lru_append(nc, i);
			return true;
		}
		count++;
		if (soonest == NC_NIL || r->expires_ms < nc->recs[soonest].expires_ms)
			soonest = i;
	}
	if (count >= CF_NC_MAX_PER_KEY)
		rec_remove(nc, soonest);
	return false;
}

/* Store @key in a free slot, taking references on its names again after any eviction. */
static int rec_insert(struct cf_namecache *nc, struct nc_rec *key, const char *owner,
		      size_t owner_len, const char *target, size_t target_len)
{
	uint32_t i = rec_alloc(nc);

	key->owner = name_ref(nc, owner, owner_len);
	key->target = key->owner && target ? name_ref(nc, target, target_len) : NULL;
	if (!key->owner || (target && !key->target)) {
		name_unref(nc, key->owner);
		rec_unalloc(nc, i);
		return -ENOMEM;
	}
	nc->recs[i].owner = key->owner;
	nc->recs[i].target = key->target;
	nc->recs[i].ip = key->ip;
	nc->recs[i].expires_ms = key->expires_ms;
	rec_link(nc, i);
	return 0;
}

int cf_namecache_add_address(struct cf_namecache *nc, const char *name, const struct cf_ip *ip,
			     uint32_t ttl, uint64_t now_ms)
{
	char buf[CF_NC_NAME_MAX + 1];
	int len = cf_name_normalise(name, buf);
	struct nc_rec key = {.expires_ms = expiry(ttl, now_ms)};

	if (len <= 0 || !ip || (ip->family != AF_INET && ip->family != AF_INET6))
		return -EINVAL;
	key.ip.family = ip->family;
	memcpy(key.ip.b, ip->b, ip_len(ip->family));
	key.owner = name_find(nc, buf, (size_t)len);
	if (refresh_or_bound(nc, nc->addr_buckets[ip_bucket(nc, &key.ip)], &key))
		return 0;
	return rec_insert(nc, &key, buf, (size_t)len, NULL, 0);
}

int cf_namecache_add_cname(struct cf_namecache *nc, const char *alias, const char *target,
			   uint32_t ttl, uint64_t now_ms)
{
	char abuf[CF_NC_NAME_MAX + 1], tbuf[CF_NC_NAME_MAX + 1];
	int alen = cf_name_normalise(alias, abuf);
	int tlen = cf_name_normalise(target, tbuf);
	struct nc_rec key = {.expires_ms = expiry(ttl, now_ms)};

	if (alen <= 0 || tlen <= 0 || (alen == tlen && memcmp(abuf, tbuf, (size_t)alen) == 0))
		return -EINVAL;
	key.owner = name_find(nc, abuf, (size_t)alen);
	key.target = name_find(nc, tbuf, (size_t)tlen);
	/* An unknown target has no aliases yet: nothing to refresh or bound. */
	if (key.target &&
	    refresh_or_bound(nc, nc->cname_buckets[key.target->hash & nc->mask], &key))
		return 0;
	return rec_insert(nc, &key, abuf, (size_t)alen, tbuf, (size_t)tlen);
}

/* Mark @n visited by the current walk; false if it already was. */
static bool mark(struct cf_namecache *nc, struct nc_name *n)
{
	if (n->seen == nc->gen)
		return false;
	n->seen = nc->gen;
	return true;
}

static void new_generation(struct cf_namecache *nc)
{
	if (++nc->gen != 0)
		return;
	/* Wrapped after 2^32 walks: clear every stamp once. */
	for (size_t b = 0; b <= nc->mask; b++)
		for (struct nc_name *n = nc->name_buckets[b]; n; n = n->next)
			n->seen = 0;
	nc->gen = 1;
}

/* Visit the owners of @ip not visited yet; false once @limit is reached or @visit stops. */
static bool walk_owners(struct cf_namecache *nc, const struct cf_ip *ip, uint64_t now_ms,
			size_t limit, cf_namecache_visit_fn visit, void *ctx, size_t *n)
{
	if (ip->family != AF_INET && ip->family != AF_INET6)
		return true;
	for (uint32_t i = nc->addr_buckets[ip_bucket(nc, ip)]; i != NC_NIL;
	     i = nc->recs[i].key_next) {
		struct nc_rec *r = &nc->recs[i];

		if (r->target || !ip_same(&r->ip, ip) || r->expires_ms <= now_ms ||
		    !mark(nc, r->owner))
			continue;
		if (*n >= limit)
			return false;
		nc->queue[*n] = r->owner;
		nc->depth[(*n)++] = 0;
		if (visit(r->owner->s, ctx))
			return false;
	}
	return true;
}

size_t cf_namecache_walk(struct cf_namecache *nc, const struct cf_ip *ips, size_t nips,
			 uint64_t now_ms, size_t limit, cf_namecache_visit_fn visit, void *ctx)
{
	size_t n = 0;

	if (limit > CF_NC_WALK_MAX)
		limit = CF_NC_WALK_MAX;
	new_generation(nc);
	for (size_t k = 0; k < nips; k++)
		if (!walk_owners(nc, &ips[k], now_ms, limit, visit, ctx, &n))
			return n;
	for (size_t q = 0; q < n; q++) {
		struct nc_name *t = nc->queue[q];

		if (nc->depth[q] >= CF_NC_MAX_DEPTH)
			continue;
		for (uint32_t i = nc->cname_buckets[t->hash & nc->mask]; i != NC_NIL;
		     i = nc->recs[i].key_next) {
			struct nc_rec *r = &nc->recs[i];

			if (r->target != t || r->expires_ms <= now_ms || !mark(nc, r->owner))
				continue;
			if (n >= limit)
				return n;
			nc->queue[n] = r->owner;
			nc->depth[n++] = (uint8_t)(nc->depth[q] + 1);
			if (visit(r->owner->s, ctx))
				return n;
		}
	}
	return n;
}

struct collect {
	const char **names;
	size_t n;
};

static int collect_name(const char *name, void *ctx)
{
	struct collect *c = ctx;

	c->names[c->n++] = name;
	return 0;
}

size_t cf_namecache_names_for(struct cf_namecache *nc, const struct cf_ip *ips, size_t nips,
			      uint64_t now_ms, const char **names, size_t max)
{
	struct collect c = {.names = names, .n = 0};

	if (!names || max == 0)
		return 0;
	cf_namecache_walk(nc, ips, nips, now_ms, max, collect_name, &c);
	return c.n;
}

uint32_t cf_namecache_records(const struct cf_namecache *nc)
{
	return nc->used;
}

uint32_t cf_namecache_names(const struct cf_namecache *nc)
{
	return nc->nnames;
}
