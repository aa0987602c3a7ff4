/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: the "wire-egress" view.
 *
 * childflow (as root, or with CAP_NET_RAW on the host) opens one cooked
 * AF_PACKET socket (SOCK_DGRAM, ETH_P_ALL) in the host's network namespace
 * before the tree starts: it sees every IPv4/IPv6 packet of every interface,
 * without link-layer headers. The view keeps a hash set of the 4-tuples
 * (protocol, local address and port, remote address and port; ICMP echo
 * sockets: their echo id) of the engine's host sockets for the tree, added
 * when the engine reports a socket open (cf_capview_sock_open()) and removed
 * GRACE_MS after it closed (its FIN exchange and late packets still arrive). A packet is written
 * when its 4-tuple, in either orientation, is in the set; an ICMP error when the packet it quotes
 * is; a later fragment when its first fragment was. Everything else on the host is dropped unread
 * by the view.
 *
 * Each interface gets its own Interface Description Block (LINKTYPE_RAW, its
 * name) the first time one of its packets is kept. On lo every packet passes
 * twice (out and in): only the outgoing copy is kept.
 */
#include "capture/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "capture/pktring.h"
#include "util/log.h"

#define SET_BUCKETS 1024
#define GRACE_MS 10000
#define MAX_IFACES 32
#define FRAG_MEMO 32
#define BATCH 256

#define ICMP4_ECHO_REPLY 0
#define ICMP4_ECHO_REQUEST 8
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129

struct wire_key {
	uint8_t proto;
	struct cf_ip local, remote;
	uint16_t lport, rport;
};

struct wire_entry {
	struct wire_key k;
	uint64_t expires_ms; /* 0 while the socket is open */
	struct wire_entry *hnext;
	struct wire_entry *cnext; /* closing list, oldest first */
};

/* A first fragment that was kept: its later fragments are kept too. */
struct frag_memo {
	uint8_t proto;
	struct cf_ip src, dst;
	uint32_t id;
	bool used;
};

struct cf_wire {
	int fd;
	int err;
	struct cf_pcapng *pcap;
	struct {
		int ifindex, id;
	} ifaces[MAX_IFACES];
	size_t n_ifaces;
	struct wire_entry *bucket[SET_BUCKETS];
	struct wire_entry *closing, *closing_tail;
	struct frag_memo frags[FRAG_MEMO];
	unsigned frag_next;
	uint8_t buf[CF_PCAPNG_SNAPLEN];
};

/* What the filter looks at in one packet. */
struct wire_tuple {
	uint8_t proto;
	struct cf_ip src, dst;
	uint16_t sport, dport; /* echo: the id in sport */
	bool echo;
	bool icmp_error;
	const uint8_t *inner; /* an ICMP error's quoted packet */
	size_t inner_len;
	bool fragment, later_fragment;
	uint32_t frag_id;
};

int cf_wire_start(struct cf_pcapng *w, int fd, struct cf_wire **out)
{
	struct cf_wire *wire = calloc(1, sizeof(*wire));

	*out = NULL;
	if (!wire) {
		close(fd);
		return -ENOMEM;
	}
	wire->fd = fd;
	wire->pcap = w;
	*out = wire;
	return 0;
}

int cf_wire_fd(const struct cf_wire *wire)
{
	return wire->fd;
}

/* CLOCK_MONOTONIC in milliseconds: when a closed socket's grace time ends. */
static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the set of the tree's 4-tuples ---- */

static size_t ip_len(const struct cf_ip *ip)
{
	return ip->family == AF_INET ? 4 : 16;
}

static uint32_t key_hash(const struct wire_key *k)
{
	uint32_t h = 2166136261u ^ k->proto;

	for (size_t i = 0; i < ip_len(&k->local); i++)
		h = (h ^ k->local.b[i] ^ (uint32_t)k->remote.b[i] << 8) * 16777619u;
	h = (h ^ k->lport ^ (uint32_t)k->rport << 16) * 16777619u;
	return h % SET_BUCKETS;
}

static bool key_equal(const struct wire_key *a, const struct wire_key *b)
{
	return a->proto == b->proto && a->lport == b->lport && a->rport == b->rport &&
	       cf_ip_equal(&a->local, &b->local) && cf_ip_equal(&a->remote, &b->remote);
}

static struct wire_key key_of(const struct cf_capview_sock *s)
{
	return (struct wire_key){.proto = s->proto,
				 .local = s->local,
				 .remote = s->remote,
				 .lport = s->lport,
				 .rport = s->rport};
}

static bool set_has(const struct cf_wire *wire, const struct wire_key *k)
{
	for (const struct wire_entry *x = wire->bucket[key_hash(k)]; x; x = x->hnext)
		if (key_equal(&x->k, k))
			return true;
	return false;
}

void cf_wire_add(struct cf_wire *wire, const struct cf_capview_sock *s)
{
	struct wire_entry *x = calloc(1, sizeof(*x));
	uint32_t h;

	if (!x) {
		log_warn("capture: out of memory; wire-egress misses a flow");
		return;
	}
	x->k = key_of(s);
	h = key_hash(&x->k);
	x->hnext = wire->bucket[h];
	wire->bucket[h] = x;
}

void cf_wire_remove(struct cf_wire *wire, const struct cf_capview_sock *s)
{
	struct wire_key k = key_of(s);

	for (struct wire_entry *x = wire->bucket[key_hash(&k)]; x; x = x->hnext) {
		if (x->expires_ms || !key_equal(&x->k, &k))
			continue;
		x->expires_ms = monotonic_ms() + GRACE_MS;
		if (wire->closing_tail)
			wire->closing_tail->cnext = x;
		else
			wire->closing = x;
		wire->closing_tail = x;
		return;
	}
}

static void set_unlink(struct cf_wire *wire, struct wire_entry *x)
{
	struct wire_entry **pp = &wire->bucket[key_hash(&x->k)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == x) {
			*pp = x->hnext;
			return;
		}
	}
}

static void expire(struct cf_wire *wire, uint64_t now_ms)
{
	struct wire_entry *x;

	while ((x = wire->closing) && x->expires_ms <= now_ms) {
		wire->closing = x->cnext;
		if (!wire->closing)
			wire->closing_tail = NULL;
		set_unlink(wire, x);
		free(x);
	}
}

/* ---- parsing just enough of a packet ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Ports, echo id or the quoted packet of the L4 header at @l4 (@len bytes, maybe truncated). */
static void parse_l4(struct wire_tuple *t, const uint8_t *l4, size_t len)
{
	bool v4 = t->src.family == AF_INET;

	if (t->later_fragment || len < 8)
		return;
	if (t->proto == IPPROTO_TCP || t->proto == IPPROTO_UDP) {
		t->sport = get16(l4);
		t->dport = get16(l4 + 2);
		return;
	}
	if (t->proto != (v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6))
		return;
	if (v4 ? (l4[0] == ICMP4_ECHO_REQUEST || l4[0] == ICMP4_ECHO_REPLY)
	       : (l4[0] == ICMP6_ECHO_REQUEST || l4[0] == ICMP6_ECHO_REPLY)) {
		t->echo = true;
		t->sport = get16(l4 + 4);
	} else if (v4 ? (l4[0] == 3 || l4[0] == 4 || l4[0] == 5 || l4[0] == 11 || l4[0] == 12)
		      : l4[0] < 128) {
		t->icmp_error = true;
		t->inner = l4 + 8;
		t->inner_len = len - 8;
	}
}

static int parse_ip4(const uint8_t *p, size_t len, struct wire_tuple *t)
{
	size_t ihl;
	uint16_t frag;

	if (len < 20)
		return -EINVAL;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	if (ihl < 20 || ihl > len)
		return -EINVAL;
	frag = get16(p + 6);
	t->proto = p[9];
	t->src.family = t->dst.family = AF_INET;
	memcpy(t->src.b, p + 12, 4);
	memcpy(t->dst.b, p + 16, 4);
	t->fragment = (frag & 0x3fff) != 0;
	t->later_fragment = (frag & 0x1fff) != 0;
	t->frag_id = get16(p + 4);
	/* A quoted packet's total length says more than the quote holds: use what is there. */
	if (get16(p + 2) >= ihl && get16(p + 2) < len)
		len = get16(p + 2);
	parse_l4(t, p + ihl, len - ihl);
	return 0;
}

static int parse_ip6(const uint8_t *p, size_t len, struct wire_tuple *t)
{
	size_t off = 40;
	uint8_t next;

	if (len < 40)
		return -EINVAL;
	t->src.family = t->dst.family = AF_INET6;
	memcpy(t->src.b, p + 8, 16);
	memcpy(t->dst.b, p + 24, 16);
	if ((size_t)get16(p + 4) + 40 < len)
		len = (size_t)get16(p + 4) + 40;
	for (next = p[6];;) {
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
		    next != IPPROTO_FRAGMENT)
			break;
		if (len - off < 8)
			return -EINVAL;
		if (next == IPPROTO_FRAGMENT) {
			t->fragment = true;
			t->later_fragment = (get16(p + off + 2) & 0xfff8) != 0;
			t->frag_id = get32(p + off + 4);
			next = p[off];
			off += 8;
			continue;
		}
		next = p[off];
		off += ((size_t)p[off + 1] + 1) * 8;
		if (off > len)
			return -EINVAL;
	}
	t->proto = next;
	parse_l4(t, p + off, len - off);
	return 0;
}

static int parse_ip(const uint8_t *p, size_t len, struct wire_tuple *t)
{
	memset(t, 0, sizeof(*t));
	if (len < 1)
		return -EINVAL;
	if (p[0] >> 4 == 4)
		return parse_ip4(p, len, t);
	if (p[0] >> 4 == 6)
		return parse_ip6(p, len, t);
	return -EINVAL;
}

/* ---- the filter ---- */

static bool tuple_in_set(const struct cf_wire *wire, const struct wire_tuple *t)
{
	struct wire_key a = {.proto = t->proto,
			     .local = t->src,
			     .remote = t->dst,
			     .lport = t->sport,
			     .rport = t->dport};
	struct wire_key b = {.proto = t->proto,
			     .local = t->dst,
			     .remote = t->src,
			     .lport = t->dport,
			     .rport = t->sport};

	if (t->echo) {
		a.rport = 0; /* echo: the id is the local "port" in both directions */
		b.lport = t->sport;
		b.rport = 0;
	}
	return set_has(wire, &a) || set_has(wire, &b);
}

static bool frag_seen(const struct cf_wire *wire, const struct wire_tuple *t)
{
	for (size_t i = 0; i < FRAG_MEMO; i++) {
		const struct frag_memo *m = &wire->frags[i];

		if (m->used && m->id == t->frag_id && m->proto == t->proto &&
		    cf_ip_equal(&m->src, &t->src) && cf_ip_equal(&m->dst, &t->dst))
			return true;
	}
	return false;
}

static void frag_remember(struct cf_wire *wire, const struct wire_tuple *t)
{
	struct frag_memo *m = &wire->frags[wire->frag_next++ % FRAG_MEMO];

	*m = (struct frag_memo){
	    .proto = t->proto, .src = t->src, .dst = t->dst, .id = t->frag_id, .used = true};
}

/* Whether the packet @p belongs to one of the tree's flows. */
static bool is_tree_packet(struct cf_wire *wire, const uint8_t *p, size_t len)
{
	struct wire_tuple t, inner;
	bool keep;

	if (parse_ip(p, len, &t) < 0)
		return false;
	if (t.later_fragment)
		return frag_seen(wire, &t);
	if (t.icmp_error)
		keep = parse_ip(t.inner, t.inner_len, &inner) == 0 && !inner.later_fragment &&
		       tuple_in_set(wire, &inner);
	else
		keep = tuple_in_set(wire, &t);
	if (keep && t.fragment)
		frag_remember(wire, &t);
	return keep;
}

/* ---- reading the packet socket ---- */

static int iface_id(struct cf_wire *wire, int ifindex)
{
	char name[IF_NAMESIZE + 1], desc[160];
	int id;

	for (size_t i = 0; i < wire->n_ifaces; i++)
		if (wire->ifaces[i].ifindex == ifindex)
			return wire->ifaces[i].id;
	if (wire->n_ifaces == MAX_IFACES)
		return -ENOSPC;
	if (!if_indextoname((unsigned)ifindex, name))
		snprintf(name, sizeof(name), "if%d", ifindex);
	snprintf(desc, sizeof(desc),
		 "childflow wire-egress view: host interface %s, the tree's flows only (filtered "
		 "on childflow's socket 4-tuples)",
		 name);
	id = cf_pcapng_add_interface(wire->pcap, CF_PCAPNG_LINKTYPE_RAW, name, desc);
	if (id < 0)
		return id;
	wire->ifaces[wire->n_ifaces].ifindex = ifindex;
	wire->ifaces[wire->n_ifaces].id = id;
	wire->n_ifaces++;
	return id;
}

static void write_error(struct cf_wire *wire, int r)
{
	wire->err = r;
	log_error("capture: cannot write the wire-egress pcapng file: %s (capture stopped)",
		  strerror(-r));
}

/* Read and maybe write one packet. Return 0, or -EAGAIN when none is left. */
static int read_one(struct cf_wire *wire)
{
	struct cf_pktring_pkt pkt;
	int id, r = cf_pktring_recv(wire->fd, wire->buf, sizeof(wire->buf), &pkt);

	if (r < 0)
		return r == -EINTR ? 0 : -EAGAIN;
	if (pkt.protocol != ETH_P_IP && pkt.protocol != ETH_P_IPV6)
		return 0;
	/* lo: each packet is seen leaving and arriving; keep the copy going out. */
	if (pkt.hatype == ARPHRD_LOOPBACK && pkt.pkttype != PACKET_OUTGOING)
		return 0;
	if (!is_tree_packet(wire, wire->buf, pkt.len))
		return 0;
	id = iface_id(wire, pkt.ifindex);
	if (id < 0)
		return 0;
	r = cf_pcapng_write_packet(wire->pcap, id, pkt.ts_ns, wire->buf, pkt.len,
				   pkt.pkttype == PACKET_OUTGOING ? CF_PCAPNG_DIR_OUT
								  : CF_PCAPNG_DIR_IN);
	if (r < 0)
		write_error(wire, r);
	return 0;
}

static void read_batch(struct cf_wire *wire, int max)
{
	for (int i = 0; i < max && !wire->err; i++)
		if (read_one(wire) < 0)
			return;
}

void cf_wire_on_readable(struct cf_wire *wire)
{
	if (wire->err) {
		/* Keep the queue from filling up: read and drop. */
		for (int i = 0; i < BATCH; i++)
			if (recv(wire->fd, wire->buf, 1, MSG_DONTWAIT | MSG_TRUNC) < 0)
				break;
		return;
	}
	read_batch(wire, BATCH);
}

void cf_wire_on_tick(struct cf_wire *wire)
{
	expire(wire, monotonic_ms());
	if (!wire->err)
		(void)cf_pcapng_flush(wire->pcap);
}

static void free_set(struct cf_wire *wire)
{
	for (size_t i = 0; i < SET_BUCKETS; i++) {
		while (wire->bucket[i]) {
			struct wire_entry *x = wire->bucket[i];

			wire->bucket[i] = x->hnext;
			free(x);
		}
	}
}

void cf_wire_stop(struct cf_wire *wire, struct cf_capview_stats *st)
{
	struct tpacket_stats ts;
	socklen_t sl = sizeof(ts);

	*st = (struct cf_capview_stats){0};
	if (!wire)
		return;
	if (!wire->err)
		read_batch(wire, 1 << 20);
	if (getsockopt(wire->fd, SOL_PACKET, PACKET_STATISTICS, &ts, &sl) == 0)
		st->dropped = ts.tp_drops;
	close(wire->fd);
	st->packets = cf_pcapng_packets(wire->pcap);
	st->err = wire->err;
	free_set(wire);
	free(wire);
}
