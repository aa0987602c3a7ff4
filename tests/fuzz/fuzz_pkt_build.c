/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what the engine builds about the tree's packets: the
 * TCP RST (cf_pkt_build_tcp_rst) and the ICMP errors (cf_pkt_build_icmp_error)
 * on packets parsed whole (cf_pkt_parse) or from their kept start
 * (cf_pkt_parse_quote, as the egress and datagram paths do for errors the
 * host reports). fuzz_packet covers the parsers; this covers the builders.
 *
 * Input: a header of 9 bytes, then the packet:
 *   0     bit 0: parse as a quote; bit 1: the error's source is a fixed
 *         address instead of the packet's destination; bits 2-7: RST
 *         buffer size (0..63)
 *   1, 2  ICMP type and code
 *   3-6   ICMP mtu / pointer (big endian)
 *   7-8   ICMP output buffer size (big endian, capped at 1400)
 * Buffers are allocated at exactly their size, so ASan sees any write or
 * read past them. Properties, abort on violation:
 *
 * - a built packet fits the buffer, parses back, carries the expected
 *   addresses, ports, type and code, and its IPv4 header and L4 checksums
 *   verify (computed here independently);
 * - an ICMP error is at most 576 (v4) / 1280 (v6) bytes and quotes exactly
 *   the start of the packet, as much as fits;
 * - no error about an ICMP error, a non-first v4 fragment, or from an
 *   unspecified or multicast source; no RST for a RST or a fragment;
 * - built in place (over the parsed packet's own buffer, as the engine does)
 *   the bytes are the same as built into a separate buffer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

#define HDR 9
#define ICMP_CAP_MAX 1400

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static size_t addr_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

/* Check a built packet's checksums; return its parse. */
static void check_sums(const uint8_t *p, size_t n, uint8_t family, uint8_t proto)
{
	size_t hlen = family == AF_INET ? 20 : 40, alen = addr_len(family);
	uint32_t sum = 0;

	CHECK(n >= hlen);
	if (family == AF_INET) {
		CHECK(fold(sum16(p, 20, 0)) == 0xffff);
		CHECK((size_t)(p[2] << 8 | p[3]) == n);
	} else {
		CHECK((size_t)(p[4] << 8 | p[5]) + 40 == n);
	}
	if (proto != IPPROTO_ICMP) {
		const uint8_t *src = p + (family == AF_INET ? 12 : 8);

		sum = sum16(src, 2 * alen, 0) + proto + (uint32_t)(n - hlen);
	}
	CHECK(fold(sum16(p + hlen, n - hlen, sum)) == 0xffff);
}

static bool same_ip(const struct cf_ip *a, const struct cf_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, addr_len(a->family)) == 0;
}

/* How the packet was parsed: as a quote or whole, and with which result. */
struct how {
	bool quote;
	int result;
};

static void reparse(const struct how *how, const uint8_t *buf, size_t len, struct cf_pkt *out)
{
	int r = how->quote ? cf_pkt_parse_quote(buf, len, out) : cf_pkt_parse(buf, len, out);

	CHECK(r == how->result);
}

static void check_rst(const struct how *how, const uint8_t *pkt, size_t len,
		      const struct cf_pkt *syn, size_t cap)
{
	uint8_t *out = malloc(cap ? cap : 1), *inplace;
	ssize_t n = cf_pkt_build_tcp_rst(out, cap, syn);
	size_t hlen = syn->family == AF_INET ? 20 : 40;
	struct cf_pkt back, again;

	if (!out)
		return;
	if (syn->proto != IPPROTO_TCP || !syn->payload || syn->fragment ||
	    (syn->tcp_flags & TH_RST))
		CHECK(n == -EINVAL);
	if (n < 0) {
		CHECK(n == -EINVAL || (n == -ENOSPC && cap < hlen + 20));
		free(out);
		return;
	}
	CHECK((size_t)n == hlen + 20 && (size_t)n <= cap);
	check_sums(out, (size_t)n, syn->family, IPPROTO_TCP);
	CHECK(cf_pkt_parse(out, (size_t)n, &back) == 0);
	CHECK(back.proto == IPPROTO_TCP && (back.tcp_flags & TH_RST));
	CHECK(same_ip(&back.src, &syn->dst) && same_ip(&back.dst, &syn->src));
	CHECK(back.sport == syn->dport && back.dport == syn->sport);
	if (syn->tcp_flags & TH_ACK)
		CHECK(back.tcp_seq == syn->tcp_ack && back.tcp_flags == TH_RST);
	else
		CHECK(back.tcp_seq == 0 && back.tcp_flags == (TH_RST | TH_ACK));

	/* In place: over a copy of the packet, parsed from there. */
	inplace = malloc(len > cap ? len : cap);
	if (inplace) {
		memcpy(inplace, pkt, len);
		reparse(how, inplace, len, &again);
		CHECK(cf_pkt_build_tcp_rst(inplace, len > cap ? len : cap, &again) == n);
		CHECK(memcmp(inplace, out, (size_t)n) == 0);
		free(inplace);
	}
	free(out);
}

static bool icmp_error_type(uint8_t family, uint8_t type)
{
	if (family == AF_INET6)
		return type < 128;
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12 || type > 18;
}

static void check_icmp(const struct how *how, const uint8_t *pkt, size_t len,
		       const struct cf_pkt *orig, const struct cf_ip *from, uint8_t type,
		       uint8_t code, uint32_t mtu, size_t cap)
{
	bool v4 = orig->family == AF_INET;
	size_t hlen = v4 ? 20 : 40, max = v4 ? 576 : 1280, room = len > cap ? len : cap;
	uint8_t *out = malloc(cap ? cap : 1), *inplace;
	ssize_t n = cf_pkt_build_icmp_error(out, cap, orig, from, type, code, mtu);
	struct cf_pkt back, again;
	size_t quote;

	if (!out)
		return;
	if (orig->payload && orig->proto == (v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6) &&
	    icmp_error_type(orig->family, orig->icmp_type))
		CHECK(n == -EINVAL);
	if (v4 && (orig->l3[6] & 0x1f || orig->l3[7]))
		CHECK(n == -EINVAL);
	if (v4 ? memcmp(orig->src.b, "\0\0\0\0", 4) == 0 || orig->src.b[0] >= 224
	       : orig->src.b[0] == 0xff)
		CHECK(n == -EINVAL);
	if (n < 0) {
		CHECK(n == -EINVAL || (n == -ENOSPC && cap < max));
		free(out);
		return;
	}
	CHECK((size_t)n <= cap && (size_t)n <= max);
	check_sums(out, (size_t)n, orig->family, v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	quote = (size_t)n - hlen - 8;
	CHECK(quote == (orig->l3_len < max - hlen - 8 ? orig->l3_len : max - hlen - 8));
	CHECK(memcmp(out + hlen + 8, orig->l3, quote) == 0);
	CHECK(out[hlen] == type && out[hlen + 1] == code);
	CHECK(cf_pkt_parse(out, (size_t)n, &back) == 0);
	CHECK(same_ip(&back.src, from) && same_ip(&back.dst, &orig->src));
	CHECK(back.proto == (v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6));

	/* In place, as the engine builds errors over the packet it parsed. */
	inplace = malloc(room);
	if (inplace) {
		memcpy(inplace, pkt, len);
		reparse(how, inplace, len, &again);
		if (from == &orig->dst)
			from = &again.dst;
		CHECK(cf_pkt_build_icmp_error(inplace, room, &again, from, type, code, mtu) == n);
		CHECK(memcmp(inplace, out, (size_t)n) == 0);
		free(inplace);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cf_ip fixed4 = {.family = AF_INET, .b = {198, 51, 100, 1}};
	static const struct cf_ip fixed6 = {.family = AF_INET6,
					    .b = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
	const struct cf_ip *from;
	struct cf_pkt pkt;
	struct how how;
	size_t len, icmp_cap;
	uint8_t *buf;
	uint32_t mtu;

	if (size < HDR)
		return 0;
	how.quote = data[0] & 1;
	mtu = (uint32_t)data[3] << 24 | (uint32_t)data[4] << 16 | (uint32_t)data[5] << 8 | data[6];
	icmp_cap = (size_t)(data[7] << 8 | data[8]);
	if (icmp_cap > ICMP_CAP_MAX)
		icmp_cap = ICMP_CAP_MAX;
	len = size - HDR;
	buf = malloc(len ? len : 1); /* exact size: ASan sees reads past the packet */
	if (!buf)
		return 0;
	memcpy(buf, data + HDR, len);
	how.result = how.quote ? cf_pkt_parse_quote(buf, len, &pkt) : cf_pkt_parse(buf, len, &pkt);
	if (how.result == 0 || how.result == -EPROTONOSUPPORT) {
		CHECK(pkt.family == AF_INET || pkt.family == AF_INET6);
		if (data[0] & 2)
			from = pkt.family == AF_INET ? &fixed4 : &fixed6;
		else
			from = &pkt.dst;
		check_rst(&how, buf, len, &pkt, (size_t)(data[0] >> 2));
		check_icmp(&how, buf, len, &pkt, from, data[1], data[2], mtu, icmp_cap);
	}
	free(buf);
	return 0;
}
