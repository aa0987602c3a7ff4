/* SPDX-License-Identifier: MIT */
/*
 * The name memory behind domain policy: which DNS names the tree's forwarded
 * answers bound to which addresses (A/AAAA) and to which other names (CNAME),
 * each with an expiry. Asked "which names does this address carry?", it
 * returns the names that own the address and, walking CNAMEs backwards, every
 * alias that led to them (a.example CNAME b.cdn, b.cdn A 1.2.3.4: 1.2.3.4
 * carries b.cdn and a.example).
 *
 * Memory is bounded: at most @capacity records (one per address or CNAME
 * binding), records preallocated; when full, the least recently learned
 * record is dropped. Every lookup is a hash probe plus a walk bounded by
 * CF_NC_MAX_PER_KEY, so a hostile resolver cannot make lookups slow. Pure
 * logic: no I/O, no clocks (callers pass monotonic milliseconds).
 */
#ifndef CF_POLICY_NAMECACHE_H
#define CF_POLICY_NAMECACHE_H

#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

/* Records kept by cf_policy (address and CNAME bindings together). */
#define CF_NC_DEFAULT_CAPACITY 65536u
/* Shortest retention: answers with TTL 0..59 are kept 60 s (clients cache that long, e.g. curl). */
#define CF_NC_MIN_TTL_S 60u
/* Longest retention, whatever the TTL says (unbound's cache-max-ttl default). */
#define CF_NC_MAX_TTL_S 86400u
/* Most names bound to one address, and most aliases of one name; the soonest to expire goes first.
 */
#define CF_NC_MAX_PER_KEY 64u
/* Most CNAME levels walked back from an address. */
#define CF_NC_MAX_DEPTH 16u
/* Most distinct names one walk visits. */
#define CF_NC_WALK_MAX 256u
/* Longest name in presentation form without the trailing dot; buffers need one byte more. */
#define CF_NC_NAME_MAX 253u

struct cf_namecache;

/*
 * cf_name_normalise() - copy a DNS name lower-cased (ASCII) with one trailing dot removed.
 * @in: the name as seen on the wire or in a rule
 * @out: buffer of at least CF_NC_NAME_MAX + 1 bytes
 * Return: the length written (0 for the root "."), or -EINVAL if @in is NULL or too long.
 */
int cf_name_normalise(const char *in, char out[static CF_NC_NAME_MAX + 1]);

/*
 * cf_namecache_new() - create an empty name memory.
 * @capacity: most records kept (1..2^24)
 * @key: 16 secret bytes keying the hash, so a resolver cannot aim collisions
 * @out: the new cache
 * Return: 0, -EINVAL for a bad capacity, or -ENOMEM.
 */
int cf_namecache_new(uint32_t capacity, const uint8_t key[16], struct cf_namecache **out);

/* cf_namecache_free() - release @nc and every name it holds (NULL is fine). */
void cf_namecache_free(struct cf_namecache *nc);

/*
 * cf_namecache_add_address() - remember that @name resolved to @ip.
 * @ttl: seconds, clamped to [CF_NC_MIN_TTL_S, CF_NC_MAX_TTL_S]; a repeat extends, never shortens
 * @now_ms: monotonic milliseconds
 * Return: 0, -EINVAL (bad name or family) or -ENOMEM (the binding is not stored; a
 * record dropped to make room stays dropped).
 */
int cf_namecache_add_address(struct cf_namecache *nc, const char *name, const struct cf_ip *ip,
			     uint32_t ttl, uint64_t now_ms);

/*
 * cf_namecache_add_cname() - remember that @alias is a CNAME of @target.
 * Return: 0, -EINVAL (bad name, or alias == target) or -ENOMEM.
 */
int cf_namecache_add_cname(struct cf_namecache *nc, const char *alias, const char *target,
			   uint32_t ttl, uint64_t now_ms);

/* Called once per distinct name; return non-zero to stop the walk. */
typedef int (*cf_namecache_visit_fn)(const char *name, void *ctx);

/*
 * cf_namecache_walk() - visit the unexpired names the addresses @ips carry, nearest first.
 * Names owning the addresses come first (newest binding first), then their
 * aliases level by level, at most CF_NC_MAX_DEPTH levels; a name reached
 * twice is visited once.
 * @ips: @nips addresses (e.g. an IPv6 destination and its embedded IPv4)
 * @limit: most names visited (capped at CF_NC_WALK_MAX)
 * Return: the number of names visited.
 */
size_t cf_namecache_walk(struct cf_namecache *nc, const struct cf_ip *ips, size_t nips,
			 uint64_t now_ms, size_t limit, cf_namecache_visit_fn visit, void *ctx);

/*
 * cf_namecache_names_for() - collect what cf_namecache_walk() visits into @names.
 * The pointers stay valid until the next add or free.
 * Return: the number of names stored (at most @max).
 */
size_t cf_namecache_names_for(struct cf_namecache *nc, const struct cf_ip *ips, size_t nips,
			      uint64_t now_ms, const char **names, size_t max);

/* cf_namecache_records() - number of records held (expired ones included until dropped). */
uint32_t cf_namecache_records(const struct cf_namecache *nc);

/* cf_namecache_names() - number of distinct names held. */
uint32_t cf_namecache_names(const struct cf_namecache *nc);

#endif
