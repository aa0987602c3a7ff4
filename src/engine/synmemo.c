/* SPDX-License-Identifier: MIT */
#include "engine/synmemo.h"

#include <string.h>

/*
 * FNV-1a over the 4-tuple. The tree chooses the tuples: a collision only
 * makes it forget one of its own failures, so no keyed hash is needed.
 */
static size_t slot_of(const struct cf_pkt *syn)
{
	uint32_t h = 2166136261u;
	uint8_t ports[4] = {(uint8_t)(syn->sport >> 8), (uint8_t)syn->sport,
			    (uint8_t)(syn->dport >> 8), (uint8_t)syn->dport};

	for (size_t i = 0; i < sizeof(syn->src.b); i++)
		h = (h ^ syn->src.b[i]) * 16777619u;
	for (size_t i = 0; i < sizeof(syn->dst.b); i++)
		h = (h ^ syn->dst.b[i]) * 16777619u;
	for (size_t i = 0; i < sizeof(ports); i++)
		h = (h ^ ports[i]) * 16777619u;
	return h % CF_SYNMEMO_SLOTS;
}

static int same_ip(const struct cf_ip *a, const struct cf_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

void cf_synmemo_add(struct cf_synmemo *m, const struct cf_pkt *syn, int err, uint64_t now_ms)
{
	struct cf_synmemo_slot *s = &m->slot[slot_of(syn)];

	s->src = syn->src;
	s->dst = syn->dst;
	s->sport = syn->sport;
	s->dport = syn->dport;
	s->isn = syn->tcp_seq;
	s->err = err;
	s->expires_ms = now_ms + CF_SYNMEMO_KEEP_MS;
}

int cf_synmemo_find(const struct cf_synmemo *m, const struct cf_pkt *syn, uint64_t now_ms)
{
	const struct cf_synmemo_slot *s = &m->slot[slot_of(syn)];

	if (!s->err || now_ms >= s->expires_ms || s->isn != syn->tcp_seq ||
	    s->sport != syn->sport || s->dport != syn->dport || !same_ip(&s->src, &syn->src) ||
	    !same_ip(&s->dst, &syn->dst))
		return 0;
	return s->err;
}
