/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what the tree writes into tun0: the packet parser
 * (cf_pkt_parse, cf_pkt_parse_quote) and fragment reassembly (reasm.c), with
 * IPv6 fragmentation (cf_pkt_frag6) checked against reassembly.
 *
 * The input is a program of records, each starting with an opcode byte:
 *   0  a raw packet (2-byte length, bytes): parsed both ways; a fragment
 *      goes to the reassembler
 *   1  a fragment of a known datagram (family, id, offset, length, M): its
 *      data byte at payload position k is a function of (id, k) only, so
 *      whatever the order, duplicates and overlaps, a packet reassembly hands
 *      out must have exactly those bytes
 *   2  time passes (1 byte * 16 ms), the reassembler expires what is due
 *   3  a UDP datagram of a given size split by cf_pkt_frag6() at a given MTU
 *      and fed back, in order or reversed, must come back byte for byte
 * The reassembler has small bounds so eviction is exercised; its byte and
 * datagram counts must stay within them. Crashes, sanitizer reports, leaks
 * and broken invariants are findings.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine/reasm.h"
#include "net/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BYTES (256u * 1024)
#define MAX_DATAGRAMS 4
#define SRC_LAST_BYTE 9 /* the known datagrams' source; raw packets never use it */

static const struct cf_reasm_limits limits = {MAX_DATAGRAMS, MAX_BYTES, 1000};

struct input {
	const uint8_t *p;
	size_t left;
};

static bool take(struct input *in, void *out, size_t n)
{
	if (in->left < n)
		return false;
	memcpy(out, in->p, n);
	in->p += n;
	in->left -= n;
	return true;
}

static uint16_t take16(struct input *in)
{
	uint8_t b[2] = {0, 0};

	(void)take(in, b, 2);
	return (uint16_t)(b[0] << 8 | b[1]);
}

/* Byte @k of the payload of known datagram @id: a UDP header, then a pattern. */
static uint8_t known_byte(uint8_t id, size_t k)
{
	static const uint8_t udp[8] = {0x9c, 0x40, 0x00, 0x35, 0xff, 0xff, 0x00, 0x00};

	return k < 8 ? udp[k] : (uint8_t)(k * 31 + id);
}

static void check_stats(const struct cf_reasm *r)
{
	struct cf_reasm_stats st = cf_reasm_stats(r);

	if (st.bytes > MAX_BYTES || st.datagrams > MAX_DATAGRAMS)
		__builtin_trap();
}

/* A packet reassembly handed out: it must parse as IP (it may be refused above IP). */
static void check_whole(const uint8_t *p, size_t len)
{
	struct cf_pkt pkt;
	size_t max = p[0] >> 4 == 4 ? 65535 : CF_PKT_IP6_MAX_LEN;

	if (len > max)
		__builtin_trap();
	(void)cf_pkt_parse(p, len, &pkt);
}

static void op_raw(struct cf_reasm *r, struct input *in, uint64_t now)
{
	static uint8_t buf[65536];
	size_t len = take16(in), n = 0;
	struct cf_pkt pkt;
	uint8_t *out = NULL;

	if (len > in->left)
		len = in->left;
	(void)take(in, buf, len);
	/* Keep off the known datagrams' source, so their bytes stay known. */
	if (len >= 24 && buf[0] >> 4 == 6 && buf[23] == SRC_LAST_BYTE)
		buf[23] = 1;
	if (len >= 16 && buf[0] >> 4 == 4 && buf[15] == SRC_LAST_BYTE)
		buf[15] = 1;
	if (cf_pkt_parse_quote(buf, len, &pkt) == 0 && pkt.l3_len > len)
		__builtin_trap();
	if (cf_pkt_parse(buf, len, &pkt) < 0 || !pkt.fragment)
		return;
	if (pkt.l3_len > len || pkt.frag.data_off > pkt.l3_len ||
	    pkt.frag.head_len > pkt.frag.data_off)
		__builtin_trap();
	if (cf_reasm_add(r, &pkt, now, &out, &n) == 1)
		check_whole(out, n);
	free(out);
}

struct known {
	bool v6, more;
	uint8_t id;
	size_t off, len;
};

static size_t build_known(const struct known *k, uint8_t *buf)
{
	size_t hlen = k->v6 ? 48 : 20;

	memset(buf, 0, hlen);
	if (k->v6) {
		buf[0] = 0x60;
		buf[4] = (uint8_t)((8 + k->len) >> 8);
		buf[5] = (uint8_t)(8 + k->len);
		buf[6] = IPPROTO_FRAGMENT;
		buf[7] = 64;
		buf[8] = 0xfd;
		buf[23] = SRC_LAST_BYTE;
		buf[24] = 0xfd;
		buf[39] = 2;
		buf[40] = IPPROTO_UDP;
		buf[42] = (uint8_t)(k->off >> 8);
		buf[43] = (uint8_t)((k->off & 0xf8) | k->more);
		buf[47] = k->id;
	} else {
		buf[0] = 0x45;
		buf[2] = (uint8_t)((20 + k->len) >> 8);
		buf[3] = (uint8_t)(20 + k->len);
		buf[5] = k->id;
		buf[6] = (uint8_t)((k->more ? 0x20 : 0) | k->off >> 11);
		buf[7] = (uint8_t)(k->off >> 3);
		buf[8] = 64;
		buf[9] = IPPROTO_UDP;
		buf[12] = 10;
		buf[15] = SRC_LAST_BYTE;
		buf[16] = 10;
		buf[19] = 2;
	}
	for (size_t i = 0; i < k->len; i++)
		buf[hlen + i] = known_byte(k->id, k->off + i);
	return hlen + k->len;
}

/* What reassembly of known datagrams hands out must be those bytes. */
static void check_known(const struct known *k, const uint8_t *p, size_t len)
{
	size_t hlen = k->v6 ? 40 : 20;

	if (len < hlen || (k->v6 ? p[6] != IPPROTO_UDP || (size_t)(p[4] << 8 | p[5]) + 40 != len
				 : (size_t)(p[2] << 8 | p[3]) != len || (p[6] & 0x3f) || p[7]))
		__builtin_trap();
	for (size_t i = hlen; i < len; i++)
		if (p[i] != known_byte(k->id, i - hlen))
			__builtin_trap();
}

static void op_known(struct cf_reasm *r, struct input *in, uint64_t now)
{
	static uint8_t buf[65536 + 48];
	uint8_t flags = 0, *out = NULL;
	struct known k = {0};
	struct cf_pkt pkt;
	size_t n = 0;

	(void)take(in, &flags, 1);
	k.v6 = flags & 1;
	k.more = flags & 2;
	k.id = flags >> 4; /* few ids: fragments meet */
	k.off = (size_t)(take16(in) & 0xfff8);
	k.len = take16(in);
	if (k.len > 65535 - (k.v6 ? 48 : 20))
		k.len = 65535 - (k.v6 ? 48 : 20);
	if (cf_pkt_parse(buf, build_known(&k, buf), &pkt) < 0 || !pkt.fragment)
		return; /* e.g. a first fragment too short for the UDP header */
	if (cf_reasm_add(r, &pkt, now, &out, &n) == 1) {
		check_whole(out, n);
		check_known(&k, out, n);
	}
	free(out);
}

/* cf_pkt_frag6() then reassembly gives the packet back. */
static void op_frag6(struct input *in)
{
	static uint8_t whole[CF_PKT_IP6_MAX_LEN], frag[65536];
	struct cf_ip src = {.family = AF_INET6, .b = {0xfd, [15] = 1}};
	struct cf_ip dst = {.family = AF_INET6, .b = {0xfd, [15] = 2}};
	size_t size = take16(in), mtu = take16(in), n = 0;
	bool reverse = size & 1;
	struct cf_pkt_frag6 f[64];
	struct cf_reasm *r = NULL;
	uint8_t *out = NULL;
	ssize_t len, count;

	if (size > 65527)
		size = 65527;
	for (size_t i = 0; i < size; i++)
		whole[CF_PKT_UDP6_PAYLOAD_OFF + i] = (uint8_t)(i ^ mtu);
	len = cf_pkt_build_udp(whole, sizeof(whole), &src, 1, &dst, 2,
			       whole + CF_PKT_UDP6_PAYLOAD_OFF, size, 64, 0);
	count = cf_pkt_frag6(whole, (size_t)len, (uint32_t)mtu, mtu, f, 64);
	if (count < 0) {
		/* only a packet that fits, or an MTU below IPv6's minimum, is refused */
		if ((size_t)len > mtu && mtu >= CF_PKT_IP6_MIN_MTU)
			__builtin_trap();
		return;
	}
	if (cf_reasm_new(NULL, &r) < 0)
		return;
	for (ssize_t i = 0; i < count; i++) {
		const struct cf_pkt_frag6 *x = &f[reverse ? count - 1 - i : i];
		struct cf_pkt pkt;
		int err;

		if (sizeof(x->head) + x->data_len > mtu)
			__builtin_trap();
		memcpy(frag, x->head, sizeof(x->head));
		memcpy(frag + sizeof(x->head), x->data, x->data_len);
		if (cf_pkt_parse(frag, sizeof(x->head) + x->data_len, &pkt) < 0)
			__builtin_trap();
		err = cf_reasm_add(r, &pkt, 0, &out, &n);
		if (err != (i + 1 < count ? 0 : 1))
			__builtin_trap();
	}
	if (n != (size_t)len || memcmp(out, whole, n) != 0)
		__builtin_trap();
	free(out);
	cf_reasm_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	struct cf_reasm *r = NULL;
	uint64_t now = 0;
	uint8_t op;

	if (cf_reasm_new(&limits, &r) < 0)
		return 0;
	while (take(&in, &op, 1)) {
		switch (op % 4) {
		case 0:
			op_raw(r, &in, now);
			break;
		case 1:
			op_known(r, &in, now);
			break;
		case 2:
			now += (uint64_t)(in.left ? in.p[0] : 0) * 16;
			(void)take(&in, &op, 1);
			cf_reasm_expire(r, now);
			break;
		default:
			op_frag6(&in);
			break;
		}
		check_stats(r);
	}
	cf_reasm_free(r);
	return 0;
}
