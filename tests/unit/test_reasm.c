// SPDX-License-Identifier: MIT
/*
 * Unit tests of src/engine/reasm.c, the reassembly of the fragments the
 * tree's kernel writes into tun0, against references that do not come from
 * it:
 *
 * - fragments the Linux kernel made (the 1400-byte UDP datagrams of
 *   tests/unit/test_packet.c, IPv4 and IPv6 with a hop-by-hop header, stored
 *   as their headers; the data is bytes i & 0xff): the reassembled packets'
 *   IPv4 header checksum and UDP checksum, which the kernel computed over the
 *   whole datagram, must hold (checked with a naive RFC 1071 sum written here);
 * - whole packets built by cf_pkt_build_udp() and cut into fragments here,
 *   by hand, byte by byte (cut()): reassembly must give back exactly the
 *   packet that was cut;
 * - cf_pkt_frag6(): what it makes must reassemble to its input.
 *
 * Without ASan, the test binary replaces malloc/calloc/realloc/free with a
 * counting allocator that can fail the Nth allocation, so every -ENOMEM path
 * is walked and checked for leaks (skipped under ASan, which owns malloc).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/reasm.h"
#include "net/packet.h"

/* ---- failing allocator ---------------------------------------------------------------------- */

#include "alloc_count.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static const struct cf_reasm_limits test_limits = {
    .max_datagrams = 8,
    .max_bytes = 1u << 20,
    .timeout_ms = 10000,
};

static struct cf_ip ip(const char *s)
{
	struct cf_ip a = {0};

	if (inet_pton(AF_INET, s, a.b) == 1) {
		a.family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, s, a.b), 1);
		a.family = AF_INET6;
	}
	return a;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Naive RFC 1071 sum: big-endian byte pairs, odd byte padded; folded, not complemented. */
static uint16_t ref_sum16(const uint8_t *p, size_t len, uint64_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint64_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint64_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Set the IPv4 header checksum of @p with ref_sum16(). */
static void ref_ip4_csum(uint8_t *p)
{
	size_t ihl = (size_t)(p[0] & 15) * 4;

	put_be16(p + 10, 0);
	put_be16(p + 10, (uint16_t)~ref_sum16(p, ihl, 0));
}

/* Whether the UDP datagram at @udp (@len bytes) sums to 0xffff with its pseudo-header. */
static bool ref_udp_ok(const uint8_t *src, const uint8_t *dst, size_t alen, const uint8_t *udp,
		       size_t len)
{
	uint64_t pseudo = (uint64_t)ref_sum16(src, alen, 0) + ref_sum16(dst, alen, 0) +
			  IPPROTO_UDP + (len >> 16) + (len & 0xffff);

	return be16(udp + 4) == len && ref_sum16(udp, len, pseudo) == 0xffff;
}

/* A UDP packet of @len data bytes ((i * 13 + 5) & 0xff), built by cf_pkt_build_udp(). */
static size_t make_udp(uint8_t *buf, size_t cap, uint8_t family, size_t len, uint16_t ip_id)
{
	struct cf_ip src = ip(family == AF_INET ? "10.0.0.1" : "fd00::1");
	struct cf_ip dst = ip(family == AF_INET ? "10.0.0.2" : "fd00::2");
	size_t off = family == AF_INET ? CF_PKT_UDP4_PAYLOAD_OFF : CF_PKT_UDP6_PAYLOAD_OFF;
	ssize_t n;

	assert_true(cap >= off + len);
	for (size_t i = 0; i < len; i++)
		buf[off + i] = (uint8_t)(i * 13 + 5);
	n = cf_pkt_build_udp(buf, cap, &src, 40000, &dst, 53, buf + off, len, 64, ip_id);
	assert_true(n > 0);
	return (size_t)n;
}

static size_t hdr_len(const uint8_t *whole)
{
	return whole[0] >> 4 == 4 ? (size_t)(whole[0] & 15) * 4 : CF_PKT_IP6_HDR_LEN;
}

/*
 * Cut bytes [@off, @off + @len) of @whole's payload into the fragment @out,
 * written by hand: IPv4, the header with MF / offset and its checksum
 * fixed; IPv6, the header naming a Fragment header (identification @id6).
 * Return the fragment's length.
 */
static size_t cut(const uint8_t *whole, size_t off, size_t len, bool more, uint32_t id6,
		  uint8_t *out)
{
	size_t hl = hdr_len(whole);

	memcpy(out, whole, hl);
	if (whole[0] >> 4 == 4) {
		put_be16(out + 2, (uint16_t)(hl + len));
		put_be16(out + 6,
			 (uint16_t)((be16(whole + 6) & 0x4000) | (more ? 0x2000 : 0) | off / 8));
		ref_ip4_csum(out);
		memcpy(out + hl, whole + hl + off, len);
		return hl + len;
	}
	put_be16(out + 4, (uint16_t)(8 + len));
	out[6] = IPPROTO_FRAGMENT;
	out[40] = whole[6];
	out[41] = 0;
	put_be16(out + 42, (uint16_t)(off | more));
	out[44] = (uint8_t)(id6 >> 24);
	out[45] = (uint8_t)(id6 >> 16);
	out[46] = (uint8_t)(id6 >> 8);
	out[47] = (uint8_t)id6;
	memcpy(out + 48, whole + 40 + off, len);
	return 48 + len;
}

/* Parse @buf as a fragment and hand it to @r. */
static int add_buf(struct cf_reasm *r, const uint8_t *buf, size_t len, uint64_t now, uint8_t **out,
		   size_t *out_len)
{
	struct cf_pkt p;

	assert_int_equal(cf_pkt_parse(buf, len, &p), 0);
	assert_true(p.fragment);
	return cf_reasm_add(r, &p, now, out, out_len);
}

/* Cut [@off, @off + @len) of @whole (M set unless it reaches the end) and add it. */
static int add_piece(struct cf_reasm *r, const uint8_t *whole, size_t whole_len, size_t off,
		     size_t len, uint64_t now, uint8_t **out, size_t *out_len)
{
	static uint8_t frag[65536 + 48];
	bool more = off + len < whole_len - hdr_len(whole);
	size_t n = cut(whole, off, len, more, 0x1234, frag);

	return add_buf(r, frag, n, now, out, out_len);
}

/* Add @piece and expect it to be held. */
static void held(struct cf_reasm *r, const uint8_t *whole, size_t whole_len, size_t off, size_t len,
		 uint64_t now)
{
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 1;

	assert_int_equal(add_piece(r, whole, whole_len, off, len, now, &out, &out_len), 0);
	assert_null(out);
	assert_int_equal(out_len, 0);
}

/* Add the last missing piece and expect @whole back. */
static void completes(struct cf_reasm *r, const uint8_t *whole, size_t whole_len, size_t off,
		      size_t len, uint64_t now)
{
	uint8_t *out = NULL;
	size_t out_len = 0;

	assert_int_equal(add_piece(r, whole, whole_len, off, len, now, &out, &out_len), 1);
	assert_non_null(out);
	assert_int_equal(out_len, whole_len);
	assert_memory_equal(out, whole, whole_len);
	free(out);
}

/* Add a piece and expect @err. */
static void refused(struct cf_reasm *r, const uint8_t *whole, size_t whole_len, size_t off,
		    size_t len, uint64_t now, int err)
{
	uint8_t *out = (uint8_t *)1;
	size_t out_len = 1;

	assert_int_equal(add_piece(r, whole, whole_len, off, len, now, &out, &out_len), err);
	assert_null(out);
}

static struct cf_reasm *new_reasm(const struct cf_reasm_limits *lim)
{
	struct cf_reasm *r = NULL;

	assert_int_equal(cf_reasm_new(lim, &r), 0);
	assert_non_null(r);
	return r;
}

/* Run @fn with stderr going to a file; return how many lines of it contain @needle. */
static int stderr_lines_with(void (*fn)(void *), void *arg, const char *needle)
{
	char line[512];
	FILE *tmp = tmpfile();
	int saved, n = 0;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	fn(arg);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	rewind(tmp);
	while (fgets(line, sizeof(line), tmp))
		n += strstr(line, needle) != NULL;
	fclose(tmp);
	return n;
}

/* The kernel's fragments of a 1400-byte UDP datagram (tests/unit/test_packet.c). */
static const uint8_t ref_udp4_frag1_head[] = {
    0x45, 0x00, 0x04, 0xfc, 0x44, 0x2f, 0x20, 0x00, 0x40, 0x11, 0xfd, 0xbf, 0x0a, 0x00,
    0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x9c, 0x40, 0x00, 0x35, 0x05, 0x80, 0xa1, 0x19,
};
static const uint8_t ref_udp4_frag2_head[] = {
    0x45, 0x00, 0x00, 0xac, 0x44, 0x2f, 0x00, 0x9d, 0x40, 0x11,
    0x21, 0x73, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
};
static const uint8_t ref_udp6_hbh_frag1_head[] = {
    0x60, 0x00, 0x00, 0x00, 0x04, 0xd8, 0x00, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
    0x11, 0x00, 0x00, 0x01, 0xaf, 0x49, 0xdc, 0xcc, 0x9c, 0x41, 0x00, 0x35, 0x05, 0x80, 0xbb, 0x16,
};
static const uint8_t ref_udp6_hbh_frag2_head[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0xc8, 0x00, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x2c, 0x00,
    0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x04, 0xc8, 0xaf, 0x49, 0xdc, 0xcc,
};

/* @head, then bytes (@from + i) & 0xff up to @total. Return @total. */
static size_t fill(uint8_t *out, const uint8_t *head, size_t head_len, size_t total, size_t from)
{
	memcpy(out, head, head_len);
	for (size_t i = 0; head_len + i < total; i++)
		out[head_len + i] = (uint8_t)(from + i);
	return total;
}

/* ---- in order, out of order, the kernel's fragments ------------------------------------------ */

static void reasm_ipv6_pieces_in_order_give_back_the_packet_byte_for_byte(void **state)
{
	static uint8_t whole[48 + 3000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	struct cf_reasm *r = new_reasm(&test_limits);
	struct cf_reasm_stats st;

	(void)state;
	held(r, whole, len, 0, 1232, 5);
	held(r, whole, len, 1232, 1232, 5);
	st = cf_reasm_stats(r);
	assert_int_equal(st.datagrams, 1);
	assert_true(st.bytes >= 2464 && st.bytes <= test_limits.max_bytes);
	completes(r, whole, len, 2464, 544, 5);
	st = cf_reasm_stats(r);
	assert_int_equal(st.completed, 1);
	assert_int_equal(st.datagrams, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.dropped, 0);
	cf_reasm_free(r);
}

static void reasm_ipv4_pieces_in_order_give_back_the_packet_byte_for_byte(void **state)
{
	static uint8_t whole[28 + 3000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET, 3000, 0x1234);
	struct cf_reasm *r = new_reasm(&test_limits);

	(void)state;
	held(r, whole, len, 0, 1480, 0);
	held(r, whole, len, 1480, 1480, 0);
	completes(r, whole, len, 2960, 48, 0);
	/* DF is kept, MF and the offset cleared, the header checksum redone */
	whole[6] = 0x40;
	ref_ip4_csum(whole);
	held(r, whole, len, 0, 1480, 0);
	held(r, whole, len, 1480, 1480, 0);
	completes(r, whole, len, 2960, 48, 0);
	assert_int_equal(cf_reasm_stats(r).completed, 2);
	cf_reasm_free(r);
}

/* Add four pieces of @whole in the order @perm and expect it whole at the last one. */
static void four_pieces_in_order(const uint8_t *whole, size_t len, const size_t perm[4])
{
	size_t payload = len - hdr_len(whole), q = payload / 4 & ~(size_t)7;
	struct cf_reasm *r = new_reasm(&test_limits);

	for (size_t i = 0; i < 4; i++) {
		size_t k = perm[i], off = k * q, n = k == 3 ? payload - 3 * q : q;

		if (i < 3)
			held(r, whole, len, off, n, i);
		else
			completes(r, whole, len, off, n, i);
	}
	assert_int_equal(cf_reasm_stats(r).bytes, 0);
	cf_reasm_free(r);
}

static void reasm_every_order_of_four_pieces_gives_the_same_packet(void **state)
{
	static uint8_t w4[28 + 1000], w6[48 + 1000];
	size_t len4 = make_udp(w4, sizeof(w4), AF_INET, 1000, 7);
	size_t len6 = make_udp(w6, sizeof(w6), AF_INET6, 1000, 0);
	int orders = 0;

	(void)state;
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 4; b++)
			for (size_t c = 0; c < 4; c++) {
				size_t perm[4] = {a, b, c, 6 - a - b - c};

				if (a == b || a == c || b == c)
					continue;
				four_pieces_in_order(w4, len4, perm);
				four_pieces_in_order(w6, len6, perm);
				orders++;
			}
	assert_int_equal(orders, 24);
}

static void reasm_the_kernels_ipv4_fragments_make_a_datagram_whose_checksums_hold(void **state)
{
	uint8_t f1[1276], f2[172], *out = NULL;
	struct cf_reasm *r = new_reasm(NULL);
	size_t n = 0;

	(void)state;
	fill(f1, ref_udp4_frag1_head, sizeof(ref_udp4_frag1_head), sizeof(f1), 0);
	fill(f2, ref_udp4_frag2_head, sizeof(ref_udp4_frag2_head), sizeof(f2), 1248);
	/* the second first: any order */
	assert_int_equal(add_buf(r, f2, sizeof(f2), 0, &out, &n), 0);
	assert_int_equal(add_buf(r, f1, sizeof(f1), 0, &out, &n), 1);
	assert_int_equal(n, 20 + 8 + 1400);
	assert_int_equal(be16(out + 2), 1428);
	assert_int_equal(be16(out + 4), 0x442f);
	assert_int_equal(be16(out + 6), 0); /* no DF, no MF, offset 0 */
	assert_int_equal(ref_sum16(out, 20, 0), 0xffff);
	assert_true(ref_udp_ok(out + 12, out + 16, 4, out + 20, 1408));
	for (size_t i = 0; i < 1400; i++)
		assert_int_equal(out[28 + i], (uint8_t)i);
	free(out);
	cf_reasm_free(r);
}

static void reasm_the_kernels_ipv6_fragments_keep_the_hop_by_hop_header(void **state)
{
	uint8_t f1[1280], f2[240], *out = NULL;
	struct cf_reasm *r = new_reasm(NULL);
	size_t n = 0;

	(void)state;
	fill(f1, ref_udp6_hbh_frag1_head, sizeof(ref_udp6_hbh_frag1_head), sizeof(f1), 0);
	fill(f2, ref_udp6_hbh_frag2_head, sizeof(ref_udp6_hbh_frag2_head), sizeof(f2), 1216);
	assert_int_equal(add_buf(r, f1, sizeof(f1), 0, &out, &n), 0);
	assert_int_equal(add_buf(r, f2, sizeof(f2), 0, &out, &n), 1);
	assert_int_equal(n, 40 + 8 + 1408);
	assert_memory_equal(out, ref_udp6_hbh_frag1_head, 4);
	assert_int_equal(be16(out + 4), 8 + 1408);
	assert_int_equal(out[6], IPPROTO_HOPOPTS);
	assert_memory_equal(out + 7, ref_udp6_hbh_frag1_head + 7, 33);
	/* hop-by-hop now names UDP; its options are as they were; no Fragment header */
	assert_int_equal(out[40], IPPROTO_UDP);
	assert_memory_equal(out + 41, ref_udp6_hbh_frag1_head + 41, 7);
	assert_true(ref_udp_ok(out + 8, out + 24, 16, out + 48, 1408));
	free(out);
	cf_reasm_free(r);
}

static void reasm_many_eight_byte_pieces_in_reverse_order(void **state)
{
	static uint8_t whole[48 + 2000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 2000, 0), payload = 2008;
	struct cf_reasm *r = new_reasm(&test_limits);

	(void)state;
	for (size_t off = payload - 8; off > 0; off -= 8)
		held(r, whole, len, off, 8, 0);
	completes(r, whole, len, 0, 8, 0);
	assert_int_equal(cf_reasm_stats(r).bytes, 0);
	cf_reasm_free(r);
}

static void reasm_ipv6_atomic_fragment_is_whole_at_once(void **state)
{
	static uint8_t whole[48 + 100];
	uint8_t frag[48 + 108], *out = NULL;
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 100, 0), n = 0;
	struct cf_reasm *r = new_reasm(&test_limits);

	(void)state;
	/* RFC 6946: offset 0 and no M: nothing to wait for, no slot taken */
	assert_int_equal(add_buf(r, frag, cut(whole, 0, 108, false, 1, frag), 0, &out, &n), 1);
	assert_int_equal(n, len);
	assert_memory_equal(out, whole, len);
	free(out);
	assert_int_equal(cf_reasm_stats(r).datagrams, 0);
	assert_int_equal(cf_reasm_stats(r).completed, 1);
	cf_reasm_free(r);
}

/* ---- which fragments belong together --------------------------------------------------------- */

static void reasm_ipv4_keys_on_the_protocol_too(void **state)
{
	static uint8_t udp[28 + 200], echo[28 + 200];
	struct cf_ip a = ip("10.0.0.1"), b = ip("10.0.0.2");
	size_t ulen = make_udp(udp, sizeof(udp), AF_INET, 200, 0x77);
	ssize_t elen =
	    cf_pkt_build_icmp_echo(echo, sizeof(echo), &a, &b, false, 1, 2, udp + 28, 200, 64);
	struct cf_reasm *r = new_reasm(&test_limits);

	(void)state;
	/* the same addresses and identification, but ICMP */
	assert_int_equal(elen, 228);
	echo[4] = 0;
	echo[5] = 0x77;
	echo[6] = 0; /* no DF, as the UDP */
	ref_ip4_csum(echo);
	held(r, udp, ulen, 0, 104, 0);
	held(r, echo, (size_t)elen, 104, 104, 0);
	assert_int_equal(cf_reasm_stats(r).datagrams, 2);
	completes(r, echo, (size_t)elen, 0, 104, 0);
	completes(r, udp, ulen, 104, 104, 0);
	cf_reasm_free(r);
}

static void reasm_ipv6_keys_on_addresses_and_id_not_on_next_header(void **state)
{
	static uint8_t w[48 + 200], other[48 + 200];
	uint8_t frag[48 + 208], *out = NULL;
	size_t len = make_udp(w, sizeof(w), AF_INET6, 200, 0), n = 0, fl;
	struct cf_reasm *r = new_reasm(&test_limits);

	(void)state;
	/* the same id from another source is another datagram */
	memcpy(other, w, len);
	other[23] = 9;
	held(r, w, len, 0, 104, 0);
	held(r, other, len, 104, 104, 0);
	assert_int_equal(cf_reasm_stats(r).datagrams, 2);
	/* RFC 8200 4.5: a later fragment may name another Next Header; the first's counts */
	fl = cut(w, 104, 104, false, 0x1234, frag);
	frag[40] = IPPROTO_TCP;
	assert_int_equal(add_buf(r, frag, fl, 0, &out, &n), 1);
	assert_int_equal(n, len);
	assert_memory_equal(out, w, len);
	free(out);
	/* and another identification is another datagram */
	fl = cut(w, 0, 104, true, 0x1235, frag);
	assert_int_equal(add_buf(r, frag, fl, 0, &out, &n), 0);
	assert_int_equal(cf_reasm_stats(r).datagrams, 2);
	cf_reasm_free(r);
}

/* ---- duplicates and overlaps (RFC 5722) -------------------------------------------------------
 */

static void reasm_exact_duplicates_are_dropped_and_the_datagram_still_completes(void **state)
{
	static uint8_t whole[48 + 3000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	struct cf_reasm *r = new_reasm(&test_limits);
	struct cf_reasm_stats st;

	(void)state;
	held(r, whole, len, 1232, 1232, 0);
	refused(r, whole, len, 1232, 1232, 0, -EEXIST);
	held(r, whole, len, 2464, 544, 0);
	refused(r, whole, len, 2464, 544, 0, -EEXIST); /* the last one again */
	completes(r, whole, len, 0, 1232, 0);
	st = cf_reasm_stats(r);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.discarded, 0);
	cf_reasm_free(r);
}

static void reasm_any_overlap_discards_the_datagram_and_its_later_fragments(void **state)
{
	/* held: [0, 16) and [32, 48) of a 72-byte payload; each of these overlaps */
	static const size_t overlaps[][2] = {
	    {8, 16},  /* starts inside the first */
	    {24, 16}, /* ends inside the second */
	    {0, 8},   /* the first's start, shorter */
	    {0, 24},  /* the first's start, longer */
	    {32, 8},  /* the second's start, shorter */
	    {40, 8},  /* inside the second, its end */
	    {16, 40}, /* covers the second */
	    {8, 48},  /* covers everything */
	};
	static uint8_t whole[48 + 64];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 64, 0);

	(void)state;
	for (size_t i = 0; i < sizeof(overlaps) / sizeof(overlaps[0]); i++) {
		struct cf_reasm *r = new_reasm(&test_limits);
		struct cf_reasm_stats st;

		held(r, whole, len, 0, 16, 100);
		held(r, whole, len, 32, 16, 100);
		refused(r, whole, len, overlaps[i][0], overlaps[i][1], 100, -EBADMSG);
		st = cf_reasm_stats(r);
		assert_int_equal(st.discarded, 1);
		assert_int_equal(st.bytes, 0);
		assert_int_equal(st.datagrams, 1); /* kept, to drop what comes later */
		/* the pieces that would have completed it are dropped too */
		refused(r, whole, len, 16, 16, 101, -EBADMSG);
		refused(r, whole, len, 48, 24, 101, -EBADMSG);
		/* until the timeout; then the identification starts afresh */
		cf_reasm_expire(r, 100 + test_limits.timeout_ms);
		st = cf_reasm_stats(r);
		assert_int_equal(st.datagrams, 0);
		assert_int_equal(st.timed_out, 0); /* a discarded one is not a timeout */
		held(r, whole, len, 0, 32, 20000);
		completes(r, whole, len, 32, 40, 20000);
		cf_reasm_free(r);
	}
}

static void reasm_fragments_that_disagree_on_the_end_discard_the_datagram(void **state)
{
	static uint8_t whole[48 + 64];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 64, 0);
	uint8_t frag[48 + 72];
	struct cf_reasm *r;
	uint8_t *out = NULL;
	size_t n = 0;

	(void)state;
	/* two last fragments with different ends (offset 0 without M would be atomic) */
	r = new_reasm(&test_limits);
	held(r, whole, len, 48, 24, 0);
	assert_int_equal(add_buf(r, frag, cut(whole, 8, 8, false, 0x1234, frag), 0, &out, &n),
			 -EBADMSG);
	assert_int_equal(cf_reasm_stats(r).discarded, 1);
	cf_reasm_free(r);
	/* a piece with M beyond the end already known */
	r = new_reasm(&test_limits);
	assert_int_equal(add_buf(r, frag, cut(whole, 8, 24, false, 0x1234, frag), 0, &out, &n), 0);
	assert_int_equal(add_buf(r, frag, cut(whole, 32, 8, true, 0x1234, frag), 0, &out, &n),
			 -EBADMSG);
	cf_reasm_free(r);
	/* a last fragment ending before data already held */
	r = new_reasm(&test_limits);
	held(r, whole, len, 32, 16, 0);
	assert_int_equal(add_buf(r, frag, cut(whole, 8, 16, false, 0x1234, frag), 0, &out, &n),
			 -EBADMSG);
	assert_int_equal(cf_reasm_stats(r).discarded, 1);
	assert_int_equal(cf_reasm_stats(r).dropped, 1);
	cf_reasm_free(r);
}

/* ---- timeout -------------------------------------------------------------------------------- */

static void reasm_missing_piece_is_given_up_at_the_timeout(void **state)
{
	static uint8_t whole[48 + 3000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	struct cf_reasm *r = new_reasm(&test_limits);
	struct cf_reasm_stats st;

	(void)state;
	held(r, whole, len, 0, 1232, 1000);
	held(r, whole, len, 2464, 544, 1500); /* the timeout counts from the first fragment */
	cf_reasm_expire(r, 1000 + test_limits.timeout_ms - 1);
	assert_int_equal(cf_reasm_stats(r).datagrams, 1);
	cf_reasm_expire(r, 1000 + test_limits.timeout_ms);
	st = cf_reasm_stats(r);
	assert_int_equal(st.datagrams, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.timed_out, 1);
	/* the missing piece alone now starts a new datagram, which waits */
	held(r, whole, len, 1232, 1232, 1000 + test_limits.timeout_ms);
	assert_int_equal(cf_reasm_stats(r).completed, 0);
	cf_reasm_free(r); /* frees what is still held */
}

static void reasm_a_fragment_after_the_timeout_does_not_join_the_old_datagram(void **state)
{
	static uint8_t whole[48 + 3000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	struct cf_reasm *r = new_reasm(&test_limits);

	(void)state;
	held(r, whole, len, 0, 1232, 0);
	held(r, whole, len, 1232, 1232, 1);
	/* no cf_reasm_expire() call in between: the add itself sees the old one expired */
	held(r, whole, len, 2464, 544, test_limits.timeout_ms);
	assert_int_equal(cf_reasm_stats(r).timed_out, 1);
	assert_int_equal(cf_reasm_stats(r).datagrams, 1);
	cf_reasm_free(r);
}

/* ---- bounds --------------------------------------------------------------------------------- */

struct bound_run {
	struct cf_reasm *r;
	const uint8_t *whole;
	size_t len;
	uint32_t first_id;
};

/* Start 4 datagrams (ids first_id.. first_id + 3, at that time) where only 2 may be incomplete. */
static void start_four_datagrams(void *arg)
{
	struct bound_run *b = arg;
	uint8_t frag[48 + 1232], *out = NULL;
	size_t n = 0;

	for (uint32_t id = b->first_id; id < b->first_id + 4; id++)
		assert_int_equal(
		    add_buf(b->r, frag, cut(b->whole, 0, 1232, true, id, frag), id, &out, &n), 0);
}

static void reasm_too_many_datagrams_evict_the_oldest_and_log_once(void **state)
{
	static const struct cf_reasm_limits two = {2, 1u << 20, 10000};
	static uint8_t whole[48 + 3000];
	struct bound_run b = {.r = new_reasm(&two), .whole = whole, .first_id = 1};
	uint8_t frag[48 + 1776], *out = NULL;
	struct cf_reasm_stats st;
	size_t n = 0;

	(void)state;
	b.len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	assert_int_equal(stderr_lines_with(start_four_datagrams, &b, "2 datagrams incomplete"), 1);
	st = cf_reasm_stats(b.r);
	assert_int_equal(st.evicted, 2);
	assert_int_equal(st.datagrams, 2);
	/* 3 and 4 are held: 4 completes; 1 was evicted, so its rest starts anew */
	assert_int_equal(add_buf(b.r, frag, cut(whole, 1232, 1776, false, 4, frag), 9, &out, &n),
			 1);
	assert_memory_equal(out, whole, b.len);
	free(out);
	assert_int_equal(add_buf(b.r, frag, cut(whole, 1232, 1776, false, 1, frag), 9, &out, &n),
			 0);
	/* evicting again is not logged again */
	b.first_id = 11;
	assert_int_equal(stderr_lines_with(start_four_datagrams, &b, "fragment reassembly"), 0);
	assert_int_equal(cf_reasm_stats(b.r).evicted, 6);
	cf_reasm_free(b.r);
}

/* Start 8 datagrams of one 1232-byte piece each, where about 6 fit in the bytes allowed. */
static void start_eight_datagrams(void *arg)
{
	struct bound_run *b = arg;
	uint8_t frag[48 + 1232], *out = NULL;
	size_t n = 0;

	for (uint32_t id = 1; id <= 8; id++) {
		assert_int_equal(
		    add_buf(b->r, frag, cut(b->whole, 0, 1232, true, id, frag), id, &out, &n), 0);
		assert_true(cf_reasm_stats(b->r).bytes <= 8000);
	}
}

static void reasm_too_many_bytes_evict_the_oldest_others_and_log_once(void **state)
{
	static const struct cf_reasm_limits bytes = {16, 8000, 10000};
	static uint8_t whole[48 + 3000];
	struct bound_run b = {.r = new_reasm(&bytes), .whole = whole};
	uint8_t frag[48 + 1776], *out = NULL;
	struct cf_reasm_stats st;
	size_t n = 0;

	(void)state;
	b.len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	assert_int_equal(stderr_lines_with(start_eight_datagrams, &b, "8000 bytes held"), 1);
	st = cf_reasm_stats(b.r);
	assert_true(st.evicted >= 2);
	assert_int_equal(st.datagrams + st.evicted, 8);
	/* the newest completes: growing it evicts older ones, never itself */
	assert_int_equal(add_buf(b.r, frag, cut(whole, 1232, 1776, false, 8, frag), 9, &out, &n),
			 1);
	assert_memory_equal(out, whole, b.len);
	free(out);
	assert_true(cf_reasm_stats(b.r).bytes <= 8000);
	/* the oldest was evicted */
	assert_int_equal(add_buf(b.r, frag, cut(whole, 1232, 1776, false, 1, frag), 9, &out, &n),
			 0);
	cf_reasm_free(b.r);
}

static void reasm_one_datagram_bigger_than_the_bytes_allowed_is_refused_alone(void **state)
{
	static const struct cf_reasm_limits bytes = {16, 2000, 10000};
	static uint8_t whole[48 + 3000], other[48 + 3000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	struct cf_reasm *r = new_reasm(&bytes);
	struct cf_reasm_stats st;

	(void)state;
	memcpy(other, whole, len);
	other[23] = 3;
	held(r, other, len, 0, 200, 0);
	held(r, whole, len, 0, 1232, 1);
	/* growing it past 2000 bytes: evicting `other` would not be enough */
	refused(r, whole, len, 1232, 1232, 2, -ENOBUFS);
	st = cf_reasm_stats(r);
	assert_int_equal(st.evicted, 0);
	assert_int_equal(st.datagrams, 2);
	/* a new datagram too big for the bound at once takes no slot */
	other[23] = 4;
	refused(r, other, len, 0, 2464, 3, -ENOBUFS);
	assert_int_equal(cf_reasm_stats(r).datagrams, 2);
	assert_int_equal(cf_reasm_stats(r).dropped, 2);
	cf_reasm_free(r);
}

/* ---- malformed fragments -------------------------------------------------------------------- */

static void reasm_refuses_fragments_it_must_not_take(void **state)
{
	static uint8_t w6[48 + 65527], w4[28 + 65507];
	size_t len6 = make_udp(w6, sizeof(w6), AF_INET6, 65527, 0);
	size_t len4 = make_udp(w4, sizeof(w4), AF_INET, 65507, 0);
	struct cf_reasm *r = new_reasm(&test_limits);
	uint8_t frag[56], *out = NULL;
	struct cf_pkt p;
	size_t n = 0;

	(void)state;
	/* a whole packet is no fragment */
	assert_int_equal(cf_pkt_parse(w6, len6, &p), 0);
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	/* M set on a length that is not a multiple of 8 (RFC 8200 4.5) */
	refused(r, w6, len6, 0, 12, 0, -EINVAL);
	refused(r, w4, len4, 8, 12, 0, -EINVAL);
	/* no data at all */
	assert_int_equal(add_buf(r, frag, cut(w6, 64, 0, true, 1, frag), 0, &out, &n), -EINVAL);
	assert_int_equal(add_buf(r, frag, cut(w6, 64, 0, false, 1, frag), 0, &out, &n), -EINVAL);
	assert_int_equal(cf_reasm_stats(r).dropped, 5);
	assert_int_equal(cf_reasm_stats(r).datagrams, 0);
	cf_reasm_free(r);
}

static void reasm_refuses_too_big_fragments(void **state)
{
	static uint8_t w6[48 + 65527], w4[28 + 65507];
	uint8_t *big = malloc(65536 + 48), *out = NULL;
	struct cf_reasm *r = new_reasm(&test_limits);
	size_t n = 0, fl;

	(void)state;
	assert_non_null(big);
	assert_int_equal(make_udp(w6, sizeof(w6), AF_INET6, 65527, 0), sizeof(w6));
	assert_int_equal(make_udp(w4, sizeof(w4), AF_INET, 65507, 0), sizeof(w4));
	/* v6: the last byte a payload can have is at 65,534: 65528 + 7 fits, + 8 does not */
	fl = cut(w6, 65528, 7, false, 1, big);
	assert_int_equal(add_buf(r, big, fl, 0, &out, &n), 0);
	fl = cut(w6, 65512, 16, false, 2, big);
	put_be16(big + 42, 65528);
	assert_int_equal(add_buf(r, big, fl, 0, &out, &n), -EMSGSIZE);
	/* v4: a packet ends at 65,535: 20 + 65504 + 11 fits, + 16 does not */
	fl = cut(w4, 65504, 11, false, 0, big);
	assert_int_equal(add_buf(r, big, fl, 0, &out, &n), 0);
	fl = cut(w4, 65472, 16, false, 0, big);
	big[5] = 1; /* another datagram */
	put_be16(big + 6, 65504 / 8);
	ref_ip4_csum(big);
	assert_int_equal(add_buf(r, big, fl, 0, &out, &n), -EMSGSIZE);
	assert_int_equal(cf_reasm_stats(r).datagrams, 2);
	assert_int_equal(cf_reasm_stats(r).dropped, 2);
	free(big);
	cf_reasm_free(r);
}

static void reasm_a_packet_too_big_only_once_whole_is_dropped_with_its_datagram(void **state)
{
	static uint8_t w4[28 + 65507];
	uint8_t *frag = malloc(65536 + 48), first[32], *out = NULL;
	struct cf_reasm *r = new_reasm(&test_limits);
	size_t n = 0;

	(void)state;
	assert_non_null(frag);
	assert_int_equal(make_udp(w4, sizeof(w4), AF_INET, 65507, 0), sizeof(w4));
	/* the first fragment has 4 bytes of IP options (NOPs): 24 + 8 bytes */
	memcpy(first, w4, 20);
	first[0] = 0x46;
	put_be16(first + 2, 32);
	put_be16(first + 6, 0x2000);
	memset(first + 20, 1, 4);
	memcpy(first + 24, w4 + 20, 8);
	ref_ip4_csum(first);
	assert_int_equal(add_buf(r, first, 32, 0, &out, &n), 0);
	/* the rest fits with a 20-byte header (65,535), not behind the first's 24 */
	assert_int_equal(add_buf(r, frag, cut(w4, 8, 65507, false, 0, frag), 0, &out, &n),
			 -EMSGSIZE);
	assert_null(out);
	assert_int_equal(cf_reasm_stats(r).datagrams, 0);
	assert_int_equal(cf_reasm_stats(r).bytes, 0);
	free(frag);
	cf_reasm_free(r);
}

static void reasm_refuses_fragment_descriptions_parse_never_makes(void **state)
{
	static uint8_t whole[48 + 64];
	uint8_t frag[48 + 64], *out = NULL;
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 64, 0), n = 0;
	struct cf_reasm *r = new_reasm(&test_limits);
	struct cf_pkt good, p;

	(void)state;
	(void)len;
	assert_int_equal(cf_pkt_parse(frag, cut(whole, 0, 64, true, 1, frag), &good), 0);
	p = good;
	p.family = 0;
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	p = good;
	p.l3 = NULL;
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	p = good;
	p.frag.head_len = 39;
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	p = good;
	p.frag.head_len = p.frag.data_off + 1;
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	p = good;
	p.frag.data_off = p.l3_len + 1;
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	p = good;
	p.frag.nh_off = p.frag.head_len;
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	p = good;
	p.family = AF_INET;
	p.frag.head_len = 19;
	assert_int_equal(cf_reasm_add(r, &p, 0, &out, &n), -EINVAL);
	assert_int_equal(cf_reasm_stats(r).dropped, 7);
	assert_int_equal(cf_reasm_stats(r).datagrams, 0);
	/* and the real one is fine */
	assert_int_equal(cf_reasm_add(r, &good, 0, &out, &n), 0);
	cf_reasm_free(r);
}

/* ---- cf_pkt_frag6() and back -------------------------------------------------------------- */

/* Split @whole with cf_pkt_frag6() at @mtu, add the fragments (reversed if @rev): @whole again. */
static void frag6_round_trip(struct cf_reasm *r, const uint8_t *whole, size_t len, size_t mtu,
			     bool rev)
{
	struct cf_pkt_frag6 f[64];
	static uint8_t buf[65536];
	ssize_t n = cf_pkt_frag6(whole, len, (uint32_t)mtu, mtu, f, 64);
	uint8_t *out = NULL;
	size_t out_len = 0;

	assert_true(n >= 2);
	for (ssize_t k = 0; k < n; k++) {
		const struct cf_pkt_frag6 *x = &f[rev ? n - 1 - k : k];

		assert_true(sizeof(x->head) + x->data_len <= mtu);
		memcpy(buf, x->head, sizeof(x->head));
		memcpy(buf + sizeof(x->head), x->data, x->data_len);
		assert_int_equal(add_buf(r, buf, sizeof(x->head) + x->data_len, 0, &out, &out_len),
				 k + 1 < n ? 0 : 1);
	}
	assert_int_equal(out_len, len);
	assert_memory_equal(out, whole, len);
	free(out);
}

static void frag6_output_reassembles_to_its_input(void **state)
{
	static const size_t mtus[] = {1280, 1281, 1287, 1288, 1500, 9000, 65535};
	static const size_t sizes[] = {1300, 3000, 65487 + 1, 65507, 65527};
	static uint8_t whole[CF_PKT_IP6_MAX_LEN];
	struct cf_reasm *r = new_reasm(NULL);

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t len = make_udp(whole, sizeof(whole), AF_INET6, sizes[s], 0);

		for (size_t m = 0; m < sizeof(mtus) / sizeof(mtus[0]); m++) {
			if (len <= mtus[m])
				continue;
			frag6_round_trip(r, whole, len, mtus[m], false);
			frag6_round_trip(r, whole, len, mtus[m], true);
		}
	}
	assert_int_equal(cf_reasm_stats(r).datagrams, 0);
	assert_int_equal(cf_reasm_stats(r).bytes, 0);
	cf_reasm_free(r);
}

/* ---- creation and allocation failures ------------------------------------------------------- */

static void reasm_new_takes_the_engines_bounds_or_refuses_zero(void **state)
{
	struct cf_reasm_limits lim = test_limits;
	struct cf_reasm *r = (struct cf_reasm *)1;

	(void)state;
	lim.max_datagrams = 0;
	assert_int_equal(cf_reasm_new(&lim, &r), -EINVAL);
	assert_null(r);
	lim = test_limits;
	lim.max_bytes = 0;
	assert_int_equal(cf_reasm_new(&lim, &r), -EINVAL);
	lim = test_limits;
	lim.timeout_ms = 0;
	assert_int_equal(cf_reasm_new(&lim, &r), -EINVAL);
	cf_reasm_free(NULL);
	r = new_reasm(NULL);
	assert_int_equal(cf_reasm_stats(r).bytes, 0);
	cf_reasm_free(r);
}

static void reasm_new_fails_cleanly_without_memory(void **state)
{
	struct cf_reasm *r;
	long enomem = 0;

	(void)state;
	require_alloc_injection();
	for (long at = 0;; at++) {
		long live = alloc_live;
		int err;

		alloc_arm(at);
		err = cf_reasm_new(&test_limits, &r);
		alloc_disarm();
		if (err == 0) {
			cf_reasm_free(r);
		} else {
			assert_int_equal(err, -ENOMEM);
			assert_null(r);
			enomem++;
		}
		assert_int_equal(alloc_live, live);
		if (!alloc_fired)
			break;
	}
	assert_int_equal(enomem, 2);
}

/*
 * A datagram in three pieces, the first last, plus an atomic fragment; every
 * allocation may fail. Return how many adds said -ENOMEM; *whole_ok: the
 * datagram came back (then byte for byte).
 */
static int three_pieces_and_an_atomic(const uint8_t *whole, size_t len, bool *whole_ok)
{
	static const size_t pieces[][2] = {{1232, 1232}, {2464, 544}, {0, 1232}};
	struct cf_reasm *r = NULL;
	uint8_t frag[48 + 1232], *out = NULL;
	size_t n = 0;
	int enomem = 0, err;

	*whole_ok = false;
	if (cf_reasm_new(&test_limits, &r) < 0)
		return 1;
	for (size_t i = 0; i < 3; i++) {
		err = add_piece(r, whole, len, pieces[i][0], pieces[i][1], 0, &out, &n);
		enomem += err == -ENOMEM;
		assert_true(err == -ENOMEM || err == (i == 2 ? 1 : 0) ||
			    (err == 0 && i == 2) /* an earlier piece was lost */);
		if (err == 1) {
			assert_int_equal(n, len);
			assert_memory_equal(out, whole, len);
			*whole_ok = true;
			free(out);
		}
		assert_true(cf_reasm_stats(r).bytes <= test_limits.max_bytes);
	}
	err = add_buf(r, frag, cut(whole, 0, 1232, false, 5, frag), 0, &out, &n);
	enomem += err == -ENOMEM;
	assert_true(err == -ENOMEM || err == 1);
	free(out);
	cf_reasm_free(r);
	return enomem;
}

static void reasm_fails_cleanly_without_memory_at_every_allocation(void **state)
{
	static uint8_t whole[48 + 3000];
	size_t len = make_udp(whole, sizeof(whole), AF_INET6, 3000, 0);
	long failures = 0;
	bool whole_ok;

	(void)state;
	require_alloc_injection();
	for (long at = 0;; at++) {
		long live = alloc_live;

		alloc_arm(at);
		failures += three_pieces_and_an_atomic(whole, len, &whole_ok) > 0;
		alloc_disarm();
		assert_int_equal(alloc_live, live);
		if (!alloc_fired)
			break;
		assert_true(at < 1000);
	}
	assert_true(whole_ok); /* the last run had no failure */
	/* reasm and its slots; the first piece's payload and ranges; growing the payload;
	 * the first fragment's headers; the whole packet; the atomic fragment's packet */
	assert_int_equal(failures, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(reasm_ipv6_pieces_in_order_give_back_the_packet_byte_for_byte),
	    cmocka_unit_test(reasm_ipv4_pieces_in_order_give_back_the_packet_byte_for_byte),
	    cmocka_unit_test(reasm_every_order_of_four_pieces_gives_the_same_packet),
	    cmocka_unit_test(reasm_the_kernels_ipv4_fragments_make_a_datagram_whose_checksums_hold),
	    cmocka_unit_test(reasm_the_kernels_ipv6_fragments_keep_the_hop_by_hop_header),
	    cmocka_unit_test(reasm_many_eight_byte_pieces_in_reverse_order),
	    cmocka_unit_test(reasm_ipv6_atomic_fragment_is_whole_at_once),
	    cmocka_unit_test(reasm_ipv4_keys_on_the_protocol_too),
	    cmocka_unit_test(reasm_ipv6_keys_on_addresses_and_id_not_on_next_header),
	    cmocka_unit_test(reasm_exact_duplicates_are_dropped_and_the_datagram_still_completes),
	    cmocka_unit_test(reasm_any_overlap_discards_the_datagram_and_its_later_fragments),
	    cmocka_unit_test(reasm_fragments_that_disagree_on_the_end_discard_the_datagram),
	    cmocka_unit_test(reasm_missing_piece_is_given_up_at_the_timeout),
	    cmocka_unit_test(reasm_a_fragment_after_the_timeout_does_not_join_the_old_datagram),
	    cmocka_unit_test(reasm_too_many_datagrams_evict_the_oldest_and_log_once),
	    cmocka_unit_test(reasm_too_many_bytes_evict_the_oldest_others_and_log_once),
	    cmocka_unit_test(reasm_one_datagram_bigger_than_the_bytes_allowed_is_refused_alone),
	    cmocka_unit_test(reasm_refuses_fragments_it_must_not_take),
	    cmocka_unit_test(reasm_refuses_too_big_fragments),
	    cmocka_unit_test(reasm_a_packet_too_big_only_once_whole_is_dropped_with_its_datagram),
	    cmocka_unit_test(reasm_refuses_fragment_descriptions_parse_never_makes),
	    cmocka_unit_test(frag6_output_reassembles_to_its_input),
	    cmocka_unit_test(reasm_new_takes_the_engines_bounds_or_refuses_zero),
	    cmocka_unit_test(reasm_new_fails_cleanly_without_memory),
	    cmocka_unit_test(reasm_fails_cleanly_without_memory_at_every_allocation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
