/* SPDX-License-Identifier: MIT */
/*
 * Slots live in one array; a keyed hash finds a name's slot, the address
 * gives the slot index directly, and a list in order of use finds the slot
 * idle longest when the table is full.
 */
#include "dns/synth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/siphash.h"

#define NIL UINT32_MAX
#define NAME_MAX_LEN 253

struct slot {
	char *name; /* NULL: never given out */
	uint64_t used_ms;
	uint32_t hnext;	     /* next slot in the same bucket */
	uint32_t prev, next; /* use order: prev is more recent */
};

struct cf_synth {
	struct slot *slot;
	uint32_t *bucket; /* first slot of each chain, NIL when empty */
	size_t nslots, mask;
	size_t fresh; /* slots [fresh, nslots) were never given out */
	uint32_t mru, lru;
	uint64_t min_idle_ms;
	uint8_t key[16];
};

static const uint8_t v6_prefix[12] = {0xfd, 0x63, 0x68, 0x66, 0x6c, 0x77, 0x00, 0x53};

int cf_synth_new(size_t slots, uint64_t min_idle_ms, struct cf_synth **out)
{
	struct cf_synth *s;
	size_t nb = 1;

	*out = NULL;
	if (slots == 0 || slots > CF_SYNTH_MAX_SLOTS)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	while (nb < slots)
		nb <<= 1;
	/* Large and mostly untouched for a typical run: calloc maps them lazily. */
	s->slot = calloc(slots, sizeof(*s->slot));
	s->bucket = malloc(nb * sizeof(*s->bucket));
	if (!s->slot || !s->bucket) {
		cf_synth_free(s);
		return -ENOMEM;
	}
	memset(s->bucket, 0xff, nb * sizeof(*s->bucket));
	s->nslots = slots;
	s->mask = nb - 1;
	s->mru = s->lru = NIL;
	s->min_idle_ms = min_idle_ms;
	cf_hash_key(s->key, s);
	*out = s;
	return 0;
}

void cf_synth_free(struct cf_synth *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->slot && i < s->fresh; i++)
		free(s->slot[i].name);
	free(s->slot);
	free(s->bucket);
	free(s);
}

size_t cf_synth_count(const struct cf_synth *s)
{
	return s->fresh;
}

/* The slot index @ip stands for, or -1. */
static long slot_of(const struct cf_ip *ip)
{
	uint32_t n;

	if (ip->family == AF_INET && ip->b[0] == 198 && ip->b[1] == 19)
		n = (uint32_t)ip->b[2] << 8 | ip->b[3];
	else if (ip->family == AF_INET6 && memcmp(ip->b, v6_prefix, sizeof(v6_prefix)) == 0)
		n = (uint32_t)ip->b[12] << 24 | (uint32_t)ip->b[13] << 16 |
		    (uint32_t)ip->b[14] << 8 | ip->b[15];
	else
		return -1;
	return n >= 1 && n <= CF_SYNTH_MAX_SLOTS ? (long)n - 1 : -1;
}

bool cf_synth_contains(const struct cf_ip *ip)
{
	return ip->family == AF_INET	? ip->b[0] == 198 && ip->b[1] == 19
	       : ip->family == AF_INET6 ? memcmp(ip->b, v6_prefix, sizeof(v6_prefix)) == 0
					: false;
}

static void slot_addrs(uint32_t i, struct cf_ip *v4, struct cf_ip *v6)
{
	uint32_t n = i + 1;

	memset(v4, 0, sizeof(*v4));
	v4->family = AF_INET;
	v4->b[0] = 198;
	v4->b[1] = 19;
	v4->b[2] = (uint8_t)(n >> 8);
	v4->b[3] = (uint8_t)n;
	memset(v6, 0, sizeof(*v6));
	v6->family = AF_INET6;
	memcpy(v6->b, v6_prefix, sizeof(v6_prefix));
	v6->b[12] = (uint8_t)(n >> 24);
	v6->b[13] = (uint8_t)(n >> 16);
	v6->b[14] = (uint8_t)(n >> 8);
	v6->b[15] = (uint8_t)n;
}

/* ---- use order ---------------------------------------------------------- */

static void lru_unlink(struct cf_synth *s, uint32_t i)
{
	struct slot *x = &s->slot[i];

	if (x->prev != NIL)
		s->slot[x->prev].next = x->next;
	else
		s->mru = x->next;
	if (x->next != NIL)
		s->slot[x->next].prev = x->prev;
	else
		s->lru = x->prev;
}

static void lru_push(struct cf_synth *s, uint32_t i)
{
	struct slot *x = &s->slot[i];

	x->prev = NIL;
	x->next = s->mru;
	if (s->mru != NIL)
		s->slot[s->mru].prev = i;
	s->mru = i;
	if (s->lru == NIL)
		s->lru = i;
}

static void touch(struct cf_synth *s, uint32_t i, uint64_t now_ms)
{
	s->slot[i].used_ms = now_ms;
	if (s->mru != i) {
		lru_unlink(s, i);
		lru_push(s, i);
	}
}

/* ---- name hash ---------------------------------------------------------- */

static uint32_t *chain_of(struct cf_synth *s, const char *name)
{
	return &s->bucket[cf_siphash24(s->key, name, strlen(name)) & s->mask];
}

static uint32_t find(struct cf_synth *s, const char *name)
{
	for (uint32_t i = *chain_of(s, name); i != NIL; i = s->slot[i].hnext)
		if (strcmp(s->slot[i].name, name) == 0)
			return i;
	return NIL;
}

static void unhash(struct cf_synth *s, uint32_t i)
{
	uint32_t *p = chain_of(s, s->slot[i].name);

	while (*p != i)
		p = &s->slot[*p].hnext;
	*p = s->slot[i].hnext;
}

/* A slot for a new name: a fresh one, else the one idle longest if idle long enough. */
static int take_slot(struct cf_synth *s, uint64_t now_ms, uint32_t *out)
{
	uint32_t i;

	if (s->fresh < s->nslots) {
		*out = (uint32_t)s->fresh;
		return 0;
	}
	i = s->lru;
	if (now_ms - s->slot[i].used_ms < s->min_idle_ms)
		return -ENOSPC;
	*out = i;
	return 0;
}

int cf_synth_addrs(struct cf_synth *s, const char *name, uint64_t now_ms, struct cf_ip *v4,
		   struct cf_ip *v6)
{
	size_t len = name ? strnlen(name, NAME_MAX_LEN + 1) : 0;
	uint32_t i;
	char *copy;
	int r;

	if (len == 0 || len > NAME_MAX_LEN)
		return -EINVAL;
	i = find(s, name);
	if (i == NIL) {
		r = take_slot(s, now_ms, &i);
		if (r < 0)
			return r;
		copy = strdup(name);
		if (!copy)
			return -ENOMEM;
		if (i == s->fresh) {
			s->fresh++;
			lru_push(s, i);
		} else {
			unhash(s, i);
			free(s->slot[i].name);
		}
		s->slot[i].name = copy;
		s->slot[i].hnext = *chain_of(s, copy);
		*chain_of(s, copy) = i;
	}
	touch(s, i, now_ms);
	slot_addrs(i, v4, v6);
	return 0;
}

const char *cf_synth_name(struct cf_synth *s, const struct cf_ip *ip, uint64_t now_ms)
{
	long i = slot_of(ip);

	if (i < 0 || (size_t)i >= s->fresh)
		return NULL;
	touch(s, (uint32_t)i, now_ms);
	return s->slot[i].name;
}
