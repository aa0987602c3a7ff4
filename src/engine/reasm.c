/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: fragment reassembly.
 *
 * Why the engine needs it: tun0's MTU is 65,535, so the tree's kernel
 * fragments only what cannot be one packet: an IPv6 UDP datagram above
 * 65,487 bytes of data (40 + 8 + 65,487 = 65,535) or an ICMPv6 echo above
 * 65,487 bytes, and, in either family, any datagram larger than a path MTU
 * the tree learnt from a "fragmentation needed" / "packet too big" error that
 * the engine relayed from its host socket (a router on the real path with a
 * smaller MTU). The engine relays payloads, so it needs whole datagrams.
 *
 * Each datagram being reassembled has one slot, keyed as RFC 791 and RFC 8200
 * say: source, destination, identification, and for IPv4 the protocol. A
 * slot holds the payload received so far in one buffer (grown as pieces
 * arrive), the sorted, disjoint [start, end) ranges received, and the headers
 * of the fragment at offset 0. A fragment that overlaps a held one (or puts
 * the end elsewhere than the last fragment did) discards the datagram and
 * every later fragment of it until the slot times out (RFC 5722); an exact
 * duplicate is only dropped itself (RFC 8200 4.5 allows that). Once the
 * ranges cover [0, end) the packet is built for the caller and the slot freed.
 *
 * Bounds: at most max_datagrams slots (a new datagram evicts the oldest when
 * all are taken); at most max_bytes held by all slots (a slot that must grow
 * evicts the oldest others first); timeout_ms after a datagram's first
 * fragment it is given up. Hitting either bound is logged once per bound.
 * Nothing is allocated for packets that are not fragments.
 */
#include "engine/reasm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/log.h"

#define IP4_DF 0x4000
#define IP4_MAX_PACKET 65535u
#define IP6_MAX_PACKET (CF_PKT_IP6_HDR_LEN + 65535u)
/* The most payload any fragment can reach: fragment offset 8191 * 8 plus data. */
#define PAYLOAD_MAX 65535u
#define RANGES_MIN 4

struct range {
	uint32_t start, end;
};

struct dgram {
	bool used;
	bool discarded; /* RFC 5722: drop every fragment until the timeout */
	bool has_end;	/* the fragment without M came: end is known */
	uint8_t family;
	uint8_t proto; /* IPv4: part of the key; IPv6: 0 */
	uint32_t id;
	struct cf_ip src, dst;
	uint64_t first_ms;
	uint8_t *data; /* the payload, data_cap bytes; piece [s, e) at data + s */
	size_t data_cap;
	uint8_t *head; /* the offset-0 fragment's headers, NULL until it came */
	size_t head_len, nh_off;
	uint8_t next;
	struct range *ranges; /* sorted by start, disjoint */
	size_t n_ranges, ranges_cap;
	size_t received, end;
};

struct cf_reasm {
	struct cf_reasm_limits lim;
	struct cf_reasm_stats st;
	bool warned_datagrams, warned_bytes;
	struct dgram *slots; /* lim.max_datagrams of them */
};

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static size_t max_packet(uint8_t family)
{
	return family == AF_INET ? IP4_MAX_PACKET : IP6_MAX_PACKET;
}

int cf_reasm_new(const struct cf_reasm_limits *lim, struct cf_reasm **out)
{
	static const struct cf_reasm_limits engine = {
	    .max_datagrams = CF_REASM_MAX_DATAGRAMS,
	    .max_bytes = CF_REASM_MAX_BYTES,
	    .timeout_ms = CF_REASM_TIMEOUT_MS,
	};
	struct cf_reasm *r;

	*out = NULL;
	if (!lim)
		lim = &engine;
	if (!lim->max_datagrams || !lim->max_bytes || !lim->timeout_ms)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lim = *lim;
	r->slots = calloc(lim->max_datagrams, sizeof(*r->slots));
	if (!r->slots) {
		free(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

static size_t dgram_bytes(const struct dgram *d)
{
	return d->data_cap + (d->head ? d->head_len : 0) + d->ranges_cap * sizeof(struct range);
}

/* Free what @d holds; the slot stays taken. */
static void dgram_clear(struct cf_reasm *r, struct dgram *d)
{
	r->st.bytes -= dgram_bytes(d);
	free(d->data);
	free(d->head);
	free(d->ranges);
	d->data = d->head = NULL;
	d->ranges = NULL;
	d->data_cap = d->head_len = d->ranges_cap = d->n_ranges = 0;
}

static void dgram_release(struct cf_reasm *r, struct dgram *d)
{
	dgram_clear(r, d);
	memset(d, 0, sizeof(*d));
	r->st.datagrams--;
}

/* RFC 5722: keep the key, so later fragments are dropped too, but nothing else. */
static void dgram_discard(struct cf_reasm *r, struct dgram *d)
{
	dgram_clear(r, d);
	d->discarded = true;
	r->st.discarded++;
}

void cf_reasm_free(struct cf_reasm *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->lim.max_datagrams; i++)
		if (r->slots[i].used)
			dgram_release(r, &r->slots[i]);
	free(r->slots);
	free(r);
}

static bool expired(const struct cf_reasm *r, const struct dgram *d, uint64_t now_ms)
{
	return now_ms >= d->first_ms && now_ms - d->first_ms >= r->lim.timeout_ms;
}

static void expire_one(struct cf_reasm *r, struct dgram *d)
{
	if (!d->discarded)
		r->st.timed_out++;
	dgram_release(r, d);
}

void cf_reasm_expire(struct cf_reasm *r, uint64_t now_ms)
{
	for (size_t i = 0; i < r->lim.max_datagrams; i++)
		if (r->slots[i].used && expired(r, &r->slots[i], now_ms))
			expire_one(r, &r->slots[i]);
}

struct cf_reasm_stats cf_reasm_stats(const struct cf_reasm *r)
{
	return r->st;
}

static bool same_datagram(const struct dgram *d, const struct cf_pkt *f)
{
	return d->used && d->family == f->family && d->id == f->frag.id &&
	       d->proto == (f->family == AF_INET ? f->frag.next : 0) &&
	       cf_ip_equal(&d->src, &f->src) && cf_ip_equal(&d->dst, &f->dst);
}

/* The slot of @f's datagram, or NULL. */
static struct dgram *find(struct cf_reasm *r, const struct cf_pkt *f)
{
	for (size_t i = 0; i < r->lim.max_datagrams; i++)
		if (same_datagram(&r->slots[i], f))
			return &r->slots[i];
	return NULL;
}

/* Of the slots holding bytes, other than @keep, the one whose first fragment came first. */
static struct dgram *oldest_holding(struct cf_reasm *r, const struct dgram *keep)
{
	struct dgram *best = NULL;

	for (size_t i = 0; i < r->lim.max_datagrams; i++) {
		struct dgram *d = &r->slots[i];

		if (d->used && d != keep && dgram_bytes(d) &&
		    (!best || d->first_ms < best->first_ms))
			best = d;
	}
	return best;
}

static void evict(struct cf_reasm *r, struct dgram *d)
{
	r->st.evicted++;
	dgram_release(r, d);
}

/* A free slot, else the one whose first fragment came first. */
static struct dgram *free_or_oldest(struct cf_reasm *r)
{
	struct dgram *best = &r->slots[0];

	for (size_t i = 0; i < r->lim.max_datagrams; i++) {
		struct dgram *d = &r->slots[i];

		if (!d->used)
			return d;
		if (d->first_ms < best->first_ms)
			best = d;
	}
	return best;
}

/* A slot for a new datagram: a free one, else the oldest one's. */
static struct dgram *slot_new(struct cf_reasm *r, const struct cf_pkt *f, uint64_t now_ms)
{
	struct dgram *d = free_or_oldest(r);

	if (d->used) {
		if (!r->warned_datagrams) {
			r->warned_datagrams = true;
			log_warn("fragment reassembly: %zu datagrams incomplete at once; dropping "
				 "the oldest ones (logged once)",
				 r->lim.max_datagrams);
		}
		evict(r, d);
	}
	d->used = true;
	d->family = f->family;
	d->proto = f->family == AF_INET ? f->frag.next : 0;
	d->id = f->frag.id;
	d->src = f->src;
	d->dst = f->dst;
	d->first_ms = now_ms;
	r->st.datagrams++;
	return d;
}

/* Make @need more bytes fit under max_bytes, evicting the oldest slots other than @d. */
static int make_room(struct cf_reasm *r, struct dgram *d, size_t need)
{
	struct dgram *victim;

	/* Only @d left and still too big: evicting the others would not help. */
	if (dgram_bytes(d) + need > r->lim.max_bytes)
		return -ENOBUFS;
	while (r->st.bytes + need > r->lim.max_bytes && (victim = oldest_holding(r, d))) {
		if (!r->warned_bytes) {
			r->warned_bytes = true;
			log_warn("fragment reassembly: %zu bytes held; dropping the oldest "
				 "incomplete datagrams (logged once)",
				 r->lim.max_bytes);
		}
		evict(r, victim);
	}
	return 0;
}

/* Where piece [s, e) goes in @d's ranges; -EEXIST: an exact duplicate; -EBADMSG: an overlap. */
static int find_place(const struct dgram *d, uint32_t s, uint32_t e, size_t *at)
{
	size_t lo = 0, hi = d->n_ranges;

	while (lo < hi) { /* the first range starting at or after s */
		size_t mid = lo + (hi - lo) / 2;

		if (d->ranges[mid].start < s)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	if (lo < d->n_ranges && d->ranges[lo].start == s && d->ranges[lo].end == e)
		return -EEXIST;
	if (lo > 0 && d->ranges[lo - 1].end > s)
		return -EBADMSG;
	if (lo < d->n_ranges && d->ranges[lo].start < e)
		return -EBADMSG;
	return 0;
}

/* Whether [s, e) with the M flag @more contradicts the end of the datagram already known. */
static bool end_conflicts(const struct dgram *d, uint32_t e, bool more)
{
	if (more)
		return d->has_end && e > d->end;
	if (d->has_end)
		return e != d->end;
	return d->n_ranges && d->ranges[d->n_ranges - 1].end > e;
}

/* The payload buffer size for a piece ending at @e: doubled, up to the most a payload can be. */
static size_t data_cap_for(size_t cap, uint32_t e)
{
	size_t want = 2 * cap;

	if (e <= cap)
		return cap;
	if (want > PAYLOAD_MAX)
		want = PAYLOAD_MAX;
	return want > e ? want : e;
}

/* Grow @d so that a piece ending at @e fits, plus one range, plus @head_len header bytes. */
static int grow(struct cf_reasm *r, struct dgram *d, uint32_t e, size_t head_len)
{
	size_t data_cap = data_cap_for(d->data_cap, e), ranges_cap = d->ranges_cap, need;
	void *p;
	int err;

	if (d->n_ranges == ranges_cap)
		ranges_cap = ranges_cap ? 2 * ranges_cap : RANGES_MIN;
	need = (data_cap - d->data_cap) + (ranges_cap - d->ranges_cap) * sizeof(struct range) +
	       head_len;
	err = make_room(r, d, need);
	if (err < 0)
		return err;
	if (data_cap != d->data_cap) {
		p = realloc(d->data, data_cap);
		if (!p)
			return -ENOMEM;
		r->st.bytes += data_cap - d->data_cap;
		d->data = p;
		d->data_cap = data_cap;
	}
	if (ranges_cap != d->ranges_cap) {
		p = realloc(d->ranges, ranges_cap * sizeof(struct range));
		if (!p)
			return -ENOMEM;
		r->st.bytes += (ranges_cap - d->ranges_cap) * sizeof(struct range);
		d->ranges = p;
		d->ranges_cap = ranges_cap;
	}
	return 0;
}

/* Keep the offset-0 fragment's headers: they start the whole packet. */
static int keep_head(struct cf_reasm *r, struct dgram *d, const struct cf_pkt *f)
{
	d->head = malloc(f->frag.head_len);
	if (!d->head)
		return -ENOMEM;
	memcpy(d->head, f->l3, f->frag.head_len);
	d->head_len = f->frag.head_len;
	d->nh_off = f->frag.nh_off;
	d->next = f->frag.next;
	r->st.bytes += d->head_len;
	return 0;
}

/* Put @f's piece into @d. */
static int insert(struct cf_reasm *r, struct dgram *d, const struct cf_pkt *f)
{
	uint32_t s = f->frag.offset, len = (uint32_t)(f->l3_len - f->frag.data_off), e = s + len;
	size_t at;
	int err;

	if (end_conflicts(d, e, f->frag.more)) {
		dgram_discard(r, d);
		return -EBADMSG;
	}
	err = find_place(d, s, e, &at);
	if (err == -EBADMSG)
		dgram_discard(r, d);
	if (err == 0)
		err = grow(r, d, e, s == 0 ? f->frag.head_len : 0);
	if (err == 0 && s == 0)
		err = keep_head(r, d, f);
	if (err < 0)
		return err;
	memcpy(d->data + s, f->l3 + f->frag.data_off, len);
	memmove(&d->ranges[at + 1], &d->ranges[at], (d->n_ranges - at) * sizeof(struct range));
	d->ranges[at] = (struct range){s, e};
	d->n_ranges++;
	d->received += len;
	if (!f->frag.more) {
		d->has_end = true;
		d->end = e;
	}
	return 0;
}

/* The first fragment's headers fixed for the whole packet of @payload_len payload bytes. */
static void fix_head(uint8_t family, uint8_t *p, size_t head_len, size_t nh_off, uint8_t next,
		     size_t payload_len)
{
	if (family == AF_INET6) {
		put16(p + 4, (uint16_t)(head_len - CF_PKT_IP6_HDR_LEN + payload_len));
		p[nh_off] = next;
		return;
	}
	put16(p + 2, (uint16_t)(head_len + payload_len));
	put16(p + 6, get16(p + 6) & IP4_DF); /* MF and offset cleared */
	put16(p + 10, 0);
	put16(p + 10, cf_csum_fold(cf_csum_partial(p, head_len, 0)));
}

struct whole {
	uint8_t family;
	const uint8_t *head;
	size_t head_len, nh_off;
	uint8_t next;
	const uint8_t *payload;
	size_t payload_len;
};

/* Build the whole packet @w describes into a new buffer. */
static int build(struct cf_reasm *r, const struct whole *w, uint8_t **out, size_t *out_len)
{
	size_t len = w->head_len + w->payload_len;
	uint8_t *p;

	if (len > max_packet(w->family))
		return -EMSGSIZE;
	p = malloc(len);
	if (!p)
		return -ENOMEM;
	memcpy(p, w->head, w->head_len);
	memcpy(p + w->head_len, w->payload, w->payload_len);
	fix_head(w->family, p, w->head_len, w->nh_off, w->next, w->payload_len);
	*out = p;
	*out_len = len;
	r->st.completed++;
	return 1;
}

/* RFC 6946: an IPv6 fragment at offset 0 without M is a whole packet by itself. */
static int atomic(struct cf_reasm *r, const struct cf_pkt *f, uint8_t **out, size_t *out_len)
{
	struct whole w = {
	    .family = f->family,
	    .head = f->l3,
	    .head_len = f->frag.head_len,
	    .nh_off = f->frag.nh_off,
	    .next = f->frag.next,
	    .payload = f->l3 + f->frag.data_off,
	    .payload_len = f->l3_len - f->frag.data_off,
	};

	return build(r, &w, out, out_len);
}

/* All of @d came: hand out the packet and free the slot (whatever the outcome). */
static int complete(struct cf_reasm *r, struct dgram *d, uint8_t **out, size_t *out_len)
{
	struct whole w = {
	    .family = d->family,
	    .head = d->head,
	    .head_len = d->head_len,
	    .nh_off = d->nh_off,
	    .next = d->next,
	    .payload = d->data,
	    .payload_len = d->end,
	};
	int r1 = build(r, &w, out, out_len);

	dgram_release(r, d);
	return r1;
}

/* Refuse what reassembly must never take; 0 if @f may be added. */
static int check_fragment(const struct cf_pkt *f)
{
	size_t len;

	if (!f->fragment || !f->l3 || (f->family != AF_INET && f->family != AF_INET6))
		return -EINVAL;
	/* What cf_pkt_parse() guarantees, checked: the headers are copied and fixed up. */
	if (f->frag.head_len < (f->family == AF_INET ? CF_PKT_IP4_HDR_LEN : CF_PKT_IP6_HDR_LEN) ||
	    f->frag.head_len > f->frag.data_off || f->frag.data_off > f->l3_len ||
	    (f->family == AF_INET6 && f->frag.nh_off >= f->frag.head_len))
		return -EINVAL;
	len = f->l3_len - f->frag.data_off;
	if (len == 0 || (f->frag.more && len % 8))
		return -EINVAL;
	/* RFC 8200 4.5: a fragment that would make the packet too big is dropped. */
	if (f->frag.head_len + f->frag.offset + len > max_packet(f->family))
		return -EMSGSIZE;
	return 0;
}

static int add(struct cf_reasm *r, const struct cf_pkt *f, uint64_t now_ms, uint8_t **out,
	       size_t *out_len)
{
	struct dgram *d;
	int err = check_fragment(f);

	if (err < 0)
		return err;
	if (f->family == AF_INET6 && f->frag.offset == 0 && !f->frag.more)
		return atomic(r, f, out, out_len);
	d = find(r, f);
	if (d && expired(r, d, now_ms)) {
		expire_one(r,
			   d); /* before the next tick: a fragment after the timeout starts anew */
		d = NULL;
	}
	if (!d)
		d = slot_new(r, f, now_ms);
	if (d->discarded)
		return -EBADMSG;
	err = insert(r, d, f);
	if (err < 0) {
		if (!d->discarded && d->n_ranges == 0)
			dgram_release(r, d); /* nothing of it is held: no slot either */
		return err;
	}
	if (d->has_end && d->received == d->end)
		return complete(r, d, out, out_len);
	return 0;
}

int cf_reasm_add(struct cf_reasm *r, const struct cf_pkt *frag, uint64_t now_ms, uint8_t **out,
		 size_t *out_len)
{
	int err;

	*out = NULL;
	*out_len = 0;
	err = add(r, frag, now_ms, out, out_len);
	if (err < 0)
		r->st.dropped++;
	return err;
}
