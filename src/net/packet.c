// SPDX-License-Identifier: MIT
/*
 * Packet parsing and building for the tun device.
 *
 * Theory of operation: the child's kernel writes whole IP packets into tun0
 * (no packet-information header). The engine parses each one in place into
 * a struct cf_pkt (pointers into the read buffer, no copy) and decides on
 * the flow; what it answers with (a RST for a refused SYN, an ICMP error, an
 * echo reply, a UDP datagram relayed from a host socket) is built here into
 * an output buffer that is then written to tun0 as is.
 *
 * Every field is read and written byte by byte in network order, so no
 * buffer needs alignment and no struct overlays the wire. Built packets are
 * complete: IPv4 header checksum and L4 checksum (with pseudo-header) are
 * always filled in, because the tun device has no checksum offload here and
 * the child's kernel drops packets whose checksums are wrong.
 *
 * Builders check everything before they write a byte, and take what they need
 * from struct fields, so building in place over the parsed packet works (the
 * quoted bytes of an ICMP error are moved first).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "net/packet.h"

#define IP4_MF 0x2000
#define IP4_DF 0x4000
#define IP4_OFFSET_MASK 0x1fff
#define IP6_FRAG_OFFSET_MASK 0xfff8
#define IP6_FRAG_MORE 0x0001
#define ECN_MASK 0x03
#define IPTOS_PREC_INTERNETCONTROL 0xc0
#define IPTOS_TOS_MASK 0x1e

#define ICMP4_ECHO_REPLY 0
#define ICMP4_DEST_UNREACH 3
#define ICMP4_SOURCE_QUENCH 4
#define ICMP4_REDIRECT 5
#define ICMP4_ECHO_REQUEST 8
#define ICMP4_TIME_EXCEEDED 11
#define ICMP4_PARAMETER_PROBLEM 12
#define ICMP4_MAX_KNOWN_TYPE 18 /* Linux NR_ICMP_TYPES: unknown types count as errors */
#define ICMP4_FRAG_NEEDED 4	/* code of ICMP4_DEST_UNREACH */
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_PARAM_PROB 4
#define ICMP6_PARAM_PROB_OPTION 2 /* unrecognised IPv6 option: may answer multicast */
#define ICMP6_INFO_MIN 128
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129

#define IP4_MAX_TOTAL 65535u
#define IP6_MAX_PAYLOAD 65535u

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- checksums ---- */

static inline uint64_t add_carry(uint64_t acc, uint64_t w)
{
	acc += w;
	return acc + (acc < w);
}

uint32_t cf_csum_partial(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t acc = 0, a[4] = {0, 0, 0, 0};
	uint64_t w64;
	uint32_t w32, w[4];
	uint16_t w16;

	/*
	 * One's complement addition does not care about byte order (RFC 1071
	 * 2(B)): sum native-order words, then swap the folded result once.
	 * The bulk goes into four independent sums of 32-bit words, which
	 * cannot overflow 64 bits (2^32 words at the least) and do not wait on
	 * each other's carries: the egress capture sums every byte relayed.
	 */
	for (; len >= 16; p += 16, len -= 16) {
		memcpy(w, p, 16);
		a[0] += w[0];
		a[1] += w[1];
		a[2] += w[2];
		a[3] += w[3];
	}
	acc = add_carry(add_carry(a[0], a[1]), add_carry(a[2], a[3]));
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w64, p, 8);
		acc = add_carry(acc, w64);
	}
	if (len >= 4) {
		memcpy(&w32, p, 4);
		acc = add_carry(acc, w32);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&w16, p, 2);
		acc = add_carry(acc, w16);
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = {p[0], 0};

		memcpy(&w16, last, 2);
		acc = add_carry(acc, w16);
	}
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffu) + (acc >> 16);
	acc = (acc & 0xffffu) + (acc >> 16);
	acc = (acc & 0xffffu) + (acc >> 16);

	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return sum + ntohs((uint16_t)acc);
}

uint16_t cf_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t addr_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

/* Sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 768, RFC 8200 8.1). */
static uint32_t pseudo_sum(const struct cf_ip *src, const struct cf_ip *dst, uint8_t proto,
			   size_t l4_len)
{
	uint32_t sum = cf_csum_partial(src->b, addr_len(src->family), 0);

	sum = cf_csum_partial(dst->b, addr_len(dst->family), sum);
	return sum + proto + (uint32_t)(l4_len >> 16) + (uint32_t)(l4_len & 0xffff);
}

/* ---- parsing ---- */

static int parse_tcp(struct cf_pkt *p)
{
	const uint8_t *th = p->l4;
	size_t doff;

	if (p->l4_len < CF_PKT_TCP_HDR_LEN)
		return -EINVAL;
	doff = (size_t)(th[12] >> 4) * 4;
	if (doff < CF_PKT_TCP_HDR_LEN || doff > p->l4_len)
		return -EINVAL;
	p->sport = get16(th);
	p->dport = get16(th + 2);
	p->tcp_seq = get32(th + 4);
	p->tcp_ack = get32(th + 8);
	p->tcp_flags = th[13];
	p->payload = th + doff;
	p->payload_len = p->l4_len - doff;
	return 0;
}

static int parse_udp(struct cf_pkt *p)
{
	const uint8_t *uh = p->l4;
	size_t ulen;

	if (p->l4_len < CF_PKT_UDP_HDR_LEN)
		return -EINVAL;
	ulen = get16(uh + 4);
	if (ulen < CF_PKT_UDP_HDR_LEN)
		return -EINVAL;
	if (p->fragment || p->truncated) {
		/* First fragment, or a kept start: the datagram goes on beyond these bytes. */
		if (ulen > p->l4_len)
			ulen = p->l4_len;
	} else if (ulen > p->l4_len) {
		return -EINVAL;
	}
	p->sport = get16(uh);
	p->dport = get16(uh + 2);
	p->payload = uh + CF_PKT_UDP_HDR_LEN;
	p->payload_len = ulen - CF_PKT_UDP_HDR_LEN;
	return 0;
}

static int parse_icmp(struct cf_pkt *p, uint8_t echo_request, uint8_t echo_reply)
{
	const uint8_t *ih = p->l4;

	if (p->l4_len < CF_PKT_ICMP_HDR_LEN)
		return -EINVAL;
	p->icmp_type = ih[0];
	p->icmp_code = ih[1];
	if (ih[0] == echo_request || ih[0] == echo_reply) {
		p->icmp_id = get16(ih + 4);
		p->icmp_seq = get16(ih + 6);
	}
	p->payload = ih + CF_PKT_ICMP_HDR_LEN;
	p->payload_len = p->l4_len - CF_PKT_ICMP_HDR_LEN;
	return 0;
}

static bool l4_supported(uint8_t family, uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return true;
	case IPPROTO_ICMP:
		return family == AF_INET;
	case IPPROTO_ICMPV6:
		return family == AF_INET6;
	default:
		return false;
	}
}

/* Parse the L4 header at p->l4, unless this is a fragment other than the first. */
static int parse_l4(struct cf_pkt *p, bool first_fragment)
{
	if (!l4_supported(p->family, p->proto))
		return -EPROTONOSUPPORT;
	if (!first_fragment)
		return 0;

	switch (p->proto) {
	case IPPROTO_TCP:
		return parse_tcp(p);
	case IPPROTO_UDP:
		return parse_udp(p);
	case IPPROTO_ICMP:
		return parse_icmp(p, ICMP4_ECHO_REQUEST, ICMP4_ECHO_REPLY);
	default:
		return parse_icmp(p, ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY);
	}
}

static int parse_ip4(const uint8_t *buf, size_t len, struct cf_pkt *p)
{
	size_t ihl, total;
	uint16_t frag;

	if (len < CF_PKT_IP4_HDR_LEN)
		return -EINVAL;
	ihl = (size_t)(buf[0] & 0x0f) * 4;
	total = get16(buf + 2);
	if (p->truncated && total > len && len >= ihl)
		total = len;
	else
		p->truncated = false;
	if (ihl < CF_PKT_IP4_HDR_LEN || total < ihl || total > len)
		return -EINVAL;

	frag = get16(buf + 6);
	p->family = AF_INET;
	p->tos = buf[1];
	p->ttl = buf[8];
	p->proto = buf[9];
	p->src.family = AF_INET;
	p->dst.family = AF_INET;
	memcpy(p->src.b, buf + 12, 4);
	memcpy(p->dst.b, buf + 16, 4);
	p->fragment = (frag & (IP4_MF | IP4_OFFSET_MASK)) != 0;
	if (p->fragment) {
		p->frag.head_len = ihl;
		p->frag.data_off = ihl;
		p->frag.next = p->proto;
		p->frag.id = get16(buf + 4);
		p->frag.offset = (uint32_t)(frag & IP4_OFFSET_MASK) * 8;
		p->frag.more = (frag & IP4_MF) != 0;
	}
	p->l3 = buf;
	p->l3_len = total;
	p->l4 = buf + ihl;
	p->l4_len = total - ihl;
	return parse_l4(p, (frag & IP4_OFFSET_MASK) == 0);
}

/* Record the first Fragment header, at @off, named by the Next Header byte at @nh_off. */
static void note_frag6(const uint8_t *buf, size_t off, size_t nh_off, struct cf_pkt *p)
{
	uint16_t offset_flags = get16(buf + off + 2);

	if (p->fragment)
		return;
	p->fragment = true;
	p->frag.head_len = off;
	p->frag.data_off = off + 8;
	p->frag.nh_off = nh_off;
	p->frag.next = buf[off];
	p->frag.id = get32(buf + off + 4);
	p->frag.offset = offset_flags & IP6_FRAG_OFFSET_MASK;
	p->frag.more = (offset_flags & IP6_FRAG_MORE) != 0;
}

static int parse_ip6(const uint8_t *buf, size_t len, struct cf_pkt *p)
{
	bool first_header = true, first_fragment = true;
	size_t total, off = CF_PKT_IP6_HDR_LEN, hlen, nh_off = 6;
	uint8_t next;

	if (len < CF_PKT_IP6_HDR_LEN)
		return -EINVAL;
	total = CF_PKT_IP6_HDR_LEN + (size_t)get16(buf + 4);
	if (p->truncated && total > len)
		total = len;
	else
		p->truncated = false;
	if (total > len)
		return -EINVAL;

	p->family = AF_INET6;
	p->tos = (uint8_t)((buf[0] & 0x0f) << 4 | buf[1] >> 4);
	p->ttl = buf[7];
	p->src.family = AF_INET6;
	p->dst.family = AF_INET6;
	memcpy(p->src.b, buf + 8, 16);
	memcpy(p->dst.b, buf + 24, 16);
	p->l3 = buf;
	p->l3_len = total;

	/* Each extension header is at least 8 bytes, so this ends. */
	for (next = buf[6]; first_fragment; first_header = false) {
		if (next == IPPROTO_HOPOPTS && !first_header)
			return -EINVAL; /* RFC 8200 4.3: only right after the IPv6 header */
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS &&
		    next != IPPROTO_FRAGMENT)
			break;
		if (total - off < 8)
			return -EINVAL;
		if (next == IPPROTO_FRAGMENT) {
			hlen = 8;
			note_frag6(buf, off, nh_off, p);
			first_fragment = (get16(buf + off + 2) & IP6_FRAG_OFFSET_MASK) == 0;
		} else {
			hlen = ((size_t)buf[off + 1] + 1) * 8;
			if (total - off < hlen)
				return -EINVAL;
		}
		next = buf[off];
		nh_off = off;
		off += hlen;
	}
	p->proto = next;
	p->l4 = buf + off;
	p->l4_len = total - off;
	return parse_l4(p, first_fragment);
}

/* @may_be_cut: the packet may go on beyond @len bytes (then out->truncated is set). */
static int parse(const uint8_t *buf, size_t len, struct cf_pkt *out, bool may_be_cut)
{
	*out = (struct cf_pkt){.truncated = may_be_cut};
	if (len < 1)
		return -EINVAL;
	switch (buf[0] >> 4) {
	case 4:
		return parse_ip4(buf, len, out);
	case 6:
		return parse_ip6(buf, len, out);
	default:
		return -EINVAL;
	}
}

int cf_pkt_parse(const uint8_t *buf, size_t len, struct cf_pkt *out)
{
	return parse(buf, len, out, false);
}

int cf_pkt_parse_quote(const uint8_t *buf, size_t len, struct cf_pkt *out)
{
	return parse(buf, len, out, true);
}

/* ---- building ---- */

static size_t ip_hdr_len(uint8_t family)
{
	switch (family) {
	case AF_INET:
		return CF_PKT_IP4_HDR_LEN;
	case AF_INET6:
		return CF_PKT_IP6_HDR_LEN;
	default:
		return 0;
	}
}

/* Largest L4 length (header + data) one packet carries. */
static size_t l4_max(uint8_t family)
{
	return family == AF_INET ? IP4_MAX_TOTAL - CF_PKT_IP4_HDR_LEN : IP6_MAX_PAYLOAD;
}

struct ip_fields {
	const struct cf_ip *src, *dst;
	uint8_t proto, ttl, tos;
	uint16_t ip4_id, ip4_frag; /* v4 only: identification, flags (DF or 0) */
};

/* Write the IP header for @l4_len bytes of L4 behind it; return its length. */
static size_t write_ip_hdr(uint8_t *buf, const struct ip_fields *f, size_t l4_len)
{
	if (f->src->family == AF_INET) {
		buf[0] = 0x45;
		buf[1] = f->tos;
		put16(buf + 2, (uint16_t)(CF_PKT_IP4_HDR_LEN + l4_len));
		put16(buf + 4, f->ip4_id);
		put16(buf + 6, f->ip4_frag);
		buf[8] = f->ttl;
		buf[9] = f->proto;
		put16(buf + 10, 0);
		memcpy(buf + 12, f->src->b, 4);
		memcpy(buf + 16, f->dst->b, 4);
		put16(buf + 10, cf_csum_fold(cf_csum_partial(buf, CF_PKT_IP4_HDR_LEN, 0)));
		return CF_PKT_IP4_HDR_LEN;
	}
	buf[0] = (uint8_t)(0x60 | f->tos >> 4);
	buf[1] = (uint8_t)(f->tos << 4); /* flow label 0 */
	buf[2] = 0;
	buf[3] = 0;
	put16(buf + 4, (uint16_t)l4_len);
	buf[6] = f->proto;
	buf[7] = f->ttl;
	memcpy(buf + 8, f->src->b, 16);
	memcpy(buf + 24, f->dst->b, 16);
	return CF_PKT_IP6_HDR_LEN;
}

/* Checksum of an L4 header + data at @l4 whose checksum field is at @csum_off. */
static void write_l4_csum(uint8_t *l4, size_t l4_len, size_t csum_off, const struct ip_fields *f)
{
	uint32_t sum = 0;
	uint16_t csum;

	put16(l4 + csum_off, 0);
	if (f->proto != IPPROTO_ICMP)
		sum = pseudo_sum(f->src, f->dst, f->proto, l4_len);
	csum = cf_csum_fold(cf_csum_partial(l4, l4_len, sum));
	if (csum == 0 && f->proto == IPPROTO_UDP)
		csum = 0xffff; /* RFC 768: 0 means "no checksum" */
	put16(l4 + csum_off, csum);
}

ssize_t cf_pkt_build_tcp_rst(uint8_t *buf, size_t cap, const struct cf_pkt *syn)
{
	struct ip_fields f = {
	    .src = &syn->dst,
	    .dst = &syn->src,
	    .proto = IPPROTO_TCP,
	    .ttl = CF_PKT_DEFAULT_TTL,
	    .tos = (uint8_t)(syn->tos & ~ECN_MASK),
	    .ip4_frag = IP4_DF,
	};
	size_t hlen = ip_hdr_len(syn->family);
	uint32_t seq = 0, ack;
	uint8_t flags = TH_RST | TH_ACK;
	uint8_t *th;

	if (!hlen || syn->proto != IPPROTO_TCP || !syn->payload || syn->fragment ||
	    (syn->tcp_flags & TH_RST))
		return -EINVAL;
	if (cap < hlen + CF_PKT_TCP_HDR_LEN)
		return -ENOSPC;

	/* RFC 9293 3.10.7.1 (what tcp_v4_send_reset() does too). */
	ack = syn->tcp_seq + (uint32_t)syn->payload_len + !!(syn->tcp_flags & TH_SYN) +
	      !!(syn->tcp_flags & TH_FIN);
	if (syn->tcp_flags & TH_ACK) {
		seq = syn->tcp_ack;
		ack = 0;
		flags = TH_RST;
	}

	th = buf + write_ip_hdr(buf, &f, CF_PKT_TCP_HDR_LEN);
	put16(th, syn->dport);
	put16(th + 2, syn->sport);
	put32(th + 4, seq);
	put32(th + 8, ack);
	th[12] = (CF_PKT_TCP_HDR_LEN / 4) << 4;
	th[13] = flags;
	put16(th + 14, 0); /* window */
	put16(th + 18, 0); /* urgent pointer */
	write_l4_csum(th, CF_PKT_TCP_HDR_LEN, 16, &f);
	return (ssize_t)(hlen + CF_PKT_TCP_HDR_LEN);
}

ssize_t cf_pkt_build_tcp(uint8_t *buf, size_t cap, const struct cf_pkt_tcp_seg *seg)
{
	struct ip_fields f = {
	    .src = seg->src,
	    .dst = seg->dst,
	    .proto = IPPROTO_TCP,
	    .ttl = seg->ttl,
	    .ip4_id = seg->ip_id,
	    .ip4_frag = IP4_DF,
	};
	size_t hlen = ip_hdr_len(seg->src->family);
	size_t thlen = CF_PKT_TCP_HDR_LEN + seg->opts_len, l4_len;
	uint8_t *th;

	if (!hlen || seg->dst->family != seg->src->family || (seg->len && !seg->payload) ||
	    seg->opts_len % 4 || seg->opts_len > CF_PKT_TCP_OPTS_MAX ||
	    (seg->opts_len && !seg->opts))
		return -EINVAL;
	if (seg->len > l4_max(seg->src->family) - thlen)
		return -EMSGSIZE;
	l4_len = thlen + seg->len;
	if (cap < hlen + l4_len)
		return -ENOSPC;

	th = buf + hlen;
	if (seg->len && seg->payload != th + thlen)
		memmove(th + thlen, seg->payload, seg->len);
	if (seg->opts_len)
		memmove(th + CF_PKT_TCP_HDR_LEN, seg->opts, seg->opts_len);
	write_ip_hdr(buf, &f, l4_len);
	put16(th, seg->sport);
	put16(th + 2, seg->dport);
	put32(th + 4, seg->seq);
	put32(th + 8, seg->ack);
	th[12] = (uint8_t)((thlen / 4) << 4);
	th[13] = seg->flags;
	put16(th + 14, seg->window);
	put16(th + 18, 0); /* urgent pointer */
	write_l4_csum(th, l4_len, 16, &f);
	return (ssize_t)(hlen + l4_len);
}

static bool ip4_is_multicast_or_broadcast(const struct cf_ip *ip)
{
	return (ip->b[0] & 0xf0) == 0xe0 || get32(ip->b) == 0xffffffffu;
}

static bool ip4_is_unspecified(const struct cf_ip *ip)
{
	return get32(ip->b) == 0;
}

static bool ip6_is_unspecified(const struct cf_ip *ip)
{
	static const uint8_t zero[16];

	return memcmp(ip->b, zero, 16) == 0;
}

static bool icmp4_is_error(uint8_t type)
{
	return type > ICMP4_MAX_KNOWN_TYPE || type == ICMP4_DEST_UNREACH ||
	       type == ICMP4_SOURCE_QUENCH || type == ICMP4_REDIRECT ||
	       type == ICMP4_TIME_EXCEEDED || type == ICMP4_PARAMETER_PROBLEM;
}

/* RFC 1122 3.2.2 and RFC 1812 4.3.2.7: when no ICMP error may be sent about @orig. */
static bool icmp4_error_forbidden(const struct cf_pkt *orig)
{
	if (get16(orig->l3 + 6) & IP4_OFFSET_MASK)
		return true;
	if (orig->proto == IPPROTO_ICMP && orig->payload && icmp4_is_error(orig->icmp_type))
		return true;
	/* Source must name one host: not 0.0.0.0, multicast, class E or broadcast. */
	if (ip4_is_unspecified(&orig->src) || (orig->src.b[0] & 0xe0) == 0xe0)
		return true;
	return ip4_is_multicast_or_broadcast(&orig->dst);
}

/* RFC 4443 2.4(e). */
static bool icmp6_error_forbidden(const struct cf_pkt *orig, uint8_t type, uint8_t code)
{
	if (orig->proto == IPPROTO_ICMPV6 && orig->payload && orig->icmp_type < ICMP6_INFO_MIN)
		return true;
	if (ip6_is_unspecified(&orig->src) || orig->src.b[0] == 0xff)
		return true;
	return orig->dst.b[0] == 0xff && type != ICMP6_PACKET_TOO_BIG &&
	       !(type == ICMP6_PARAM_PROB && code == ICMP6_PARAM_PROB_OPTION);
}

/* The 4 bytes after the ICMP checksum of an error message; -EINVAL if @param does not fit. */
static int icmp_error_rest(uint8_t family, uint8_t type, uint8_t code, uint32_t param,
			   uint32_t *rest)
{
	*rest = 0;
	if (family == AF_INET6) {
		if (type == ICMP6_PACKET_TOO_BIG || type == ICMP6_PARAM_PROB)
			*rest = param;
		return 0;
	}
	if (type == ICMP4_DEST_UNREACH && code == ICMP4_FRAG_NEEDED) {
		if (param > 0xffff)
			return -EINVAL;
		*rest = param; /* RFC 1191: next-hop MTU in the low 16 bits */
	} else if (type == ICMP4_PARAMETER_PROBLEM) {
		if (param > 0xff)
			return -EINVAL;
		*rest = param << 24; /* RFC 792: pointer in the first byte */
	}
	return 0;
}

ssize_t cf_pkt_build_icmp_error(uint8_t *buf, size_t cap, const struct cf_pkt *orig,
				const struct cf_ip *from, uint8_t type, uint8_t code, uint32_t mtu)
{
	bool v4 = orig->family == AF_INET;
	struct ip_fields f = {
	    .src = from,
	    .dst = &orig->src,
	    .proto = v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
	    .ttl = CF_PKT_DEFAULT_TTL,
	    /* as Linux icmp_send(): keep the TOS bits, mark as network control */
	    .tos = v4 ? (uint8_t)((orig->tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL) : 0,
	    .ip4_frag = IP4_DF,
	};
	size_t hlen = ip_hdr_len(orig->family), quote, l4_len;
	uint32_t rest;
	uint8_t *ih;

	if (!hlen || from->family != orig->family || !orig->l3 || orig->l3_len < hlen)
		return -EINVAL;
	if (v4 ? icmp4_error_forbidden(orig)
	       : (type >= ICMP6_INFO_MIN || icmp6_error_forbidden(orig, type, code)))
		return -EINVAL;
	if (icmp_error_rest(orig->family, type, code, mtu, &rest) < 0)
		return -EINVAL;

	quote = (v4 ? CF_PKT_ICMP4_ERROR_MAX : CF_PKT_ICMP6_ERROR_MAX) - hlen - CF_PKT_ICMP_HDR_LEN;
	if (quote > orig->l3_len)
		quote = orig->l3_len;
	l4_len = CF_PKT_ICMP_HDR_LEN + quote;
	if (cap < hlen + l4_len)
		return -ENOSPC;

	/* Quote first: @orig's bytes may lie where the headers go. */
	ih = buf + hlen;
	memmove(ih + CF_PKT_ICMP_HDR_LEN, orig->l3, quote);
	write_ip_hdr(buf, &f, l4_len);
	ih[0] = type;
	ih[1] = code;
	put32(ih + 4, rest);
	write_l4_csum(ih, l4_len, 2, &f);
	return (ssize_t)(hlen + l4_len);
}

/* Checks shared by the UDP and echo builders; return the IP header length or -errno. */
static ssize_t check_build(const struct cf_ip *src, const struct cf_ip *dst, const uint8_t *data,
			   size_t len, size_t cap)
{
	size_t hlen = ip_hdr_len(src->family);

	if (!hlen || dst->family != src->family || (len && !data))
		return -EINVAL;
	if (len > l4_max(src->family) - CF_PKT_UDP_HDR_LEN) /* ICMP header is 8 bytes too */
		return -EMSGSIZE;
	if (cap < hlen + CF_PKT_UDP_HDR_LEN + len)
		return -ENOSPC;
	return (ssize_t)hlen;
}

ssize_t cf_pkt_build_udp(uint8_t *buf, size_t cap, const struct cf_ip *src, uint16_t sport,
			 const struct cf_ip *dst, uint16_t dport, const uint8_t *payload,
			 size_t len, uint8_t ttl, uint16_t ip_id)
{
	struct ip_fields f = {
	    .src = src,
	    .dst = dst,
	    .proto = IPPROTO_UDP,
	    .ttl = ttl,
	    .ip4_id = ip_id,
	};
	ssize_t hlen = check_build(src, dst, payload, len, cap);
	size_t l4_len = CF_PKT_UDP_HDR_LEN + len;
	uint8_t *uh;

	if (hlen < 0)
		return hlen;
	uh = buf + hlen;
	if (len && payload != uh + CF_PKT_UDP_HDR_LEN)
		memmove(uh + CF_PKT_UDP_HDR_LEN, payload, len);
	write_ip_hdr(buf, &f, l4_len);
	put16(uh, sport);
	put16(uh + 2, dport);
	put16(uh + 4, (uint16_t)l4_len);
	write_l4_csum(uh, l4_len, 6, &f);
	return hlen + (ssize_t)l4_len;
}

ssize_t cf_pkt_build_icmp_echo(uint8_t *buf, size_t cap, const struct cf_ip *src,
			       const struct cf_ip *dst, bool reply, uint16_t id, uint16_t seq,
			       const uint8_t *data, size_t len, uint8_t ttl)
{
	bool v4 = src->family == AF_INET;
	struct ip_fields f = {
	    .src = src,
	    .dst = dst,
	    .proto = v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6,
	    .ttl = ttl,
	    .ip4_frag = IP4_DF,
	};
	ssize_t hlen = check_build(src, dst, data, len, cap);
	size_t l4_len = CF_PKT_ICMP_HDR_LEN + len;
	uint8_t *ih;

	if (hlen < 0)
		return hlen;
	ih = buf + hlen;
	if (len && data != ih + CF_PKT_ICMP_HDR_LEN)
		memmove(ih + CF_PKT_ICMP_HDR_LEN, data, len);
	write_ip_hdr(buf, &f, l4_len);
	if (v4)
		ih[0] = reply ? ICMP4_ECHO_REPLY : ICMP4_ECHO_REQUEST;
	else
		ih[0] = reply ? ICMP6_ECHO_REPLY : ICMP6_ECHO_REQUEST;
	ih[1] = 0;
	put16(ih + 4, id);
	put16(ih + 6, seq);
	write_l4_csum(ih, l4_len, 2, &f);
	return hlen + (ssize_t)l4_len;
}

/* ---- IPv6 fragmentation ---- */

/* Headers that must precede a Fragment header, or say the packet is fragmented already. */
static bool is_unfragmentable_ext(uint8_t next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_FRAGMENT ||
	       next == IPPROTO_DSTOPTS;
}

ssize_t cf_pkt_frag6(const uint8_t *pkt, size_t len, uint32_t id, size_t mtu,
		     struct cf_pkt_frag6 *frags, size_t max)
{
	size_t per, payload, n;

	if (len < CF_PKT_IP6_HDR_LEN || pkt[0] >> 4 != 6 ||
	    CF_PKT_IP6_HDR_LEN + (size_t)get16(pkt + 4) != len || is_unfragmentable_ext(pkt[6]) ||
	    mtu < CF_PKT_IP6_MIN_MTU || len <= mtu)
		return -EINVAL;
	/* Data per fragment: a multiple of 8 (offsets count 8-byte units). */
	per = (mtu - CF_PKT_IP6_HDR_LEN - CF_PKT_FRAG6_HDR_LEN) & ~(size_t)7;
	payload = len - CF_PKT_IP6_HDR_LEN;
	n = (payload + per - 1) / per;
	if (n > max)
		return -ENOSPC;
	for (size_t i = 0; i < n; i++) {
		struct cf_pkt_frag6 *f = &frags[i];
		size_t off = i * per;
		uint8_t *fh = f->head + CF_PKT_IP6_HDR_LEN;

		f->data = pkt + CF_PKT_IP6_HDR_LEN + off;
		f->data_len = payload - off < per ? payload - off : per;
		memcpy(f->head, pkt, CF_PKT_IP6_HDR_LEN);
		put16(f->head + 4, (uint16_t)(CF_PKT_FRAG6_HDR_LEN + f->data_len));
		f->head[6] = IPPROTO_FRAGMENT;
		fh[0] = pkt[6];
		fh[1] = 0; /* reserved */
		put16(fh + 2, (uint16_t)(off | (i + 1 < n ? IP6_FRAG_MORE : 0)));
		put32(fh + 4, id);
	}
	return (ssize_t)n;
}
