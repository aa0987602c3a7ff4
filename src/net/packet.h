/* SPDX-License-Identifier: MIT */
/*
 * IP packets on the tun device (IFF_TUN | IFF_NO_PI: a buffer starts with the
 * IPv4 or IPv6 header): parse what the child's kernel wrote, build what the
 * engine writes back (TCP RST, ICMP errors and echo, UDP datagrams).
 *
 * Hot path: nothing here allocates; parsing points into the caller's buffer,
 * building writes only into the caller's output buffer. All multi-byte fields
 * are read and written byte by byte, so buffers need no alignment.
 */
#ifndef CF_NET_PACKET_H
#define CF_NET_PACKET_H

#include <netinet/in.h>
#include <netinet/tcp.h> /* TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK, TH_URG */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"

#define CF_PKT_IP4_HDR_LEN 20
#define CF_PKT_IP6_HDR_LEN 40
#define CF_PKT_TCP_HDR_LEN 20
#define CF_PKT_UDP_HDR_LEN 8
#define CF_PKT_ICMP_HDR_LEN 8 /* type, code, checksum and the 4-byte rest of header */

/* Where a payload starts in a built UDP packet: receive straight into buf + this. */
#define CF_PKT_UDP4_PAYLOAD_OFF (CF_PKT_IP4_HDR_LEN + CF_PKT_UDP_HDR_LEN)
#define CF_PKT_UDP6_PAYLOAD_OFF (CF_PKT_IP6_HDR_LEN + CF_PKT_UDP_HDR_LEN)
/* Where echo data starts in a built ICMP / ICMPv6 echo packet. */
#define CF_PKT_ICMP4_DATA_OFF (CF_PKT_IP4_HDR_LEN + CF_PKT_ICMP_HDR_LEN)
#define CF_PKT_ICMP6_DATA_OFF (CF_PKT_IP6_HDR_LEN + CF_PKT_ICMP_HDR_LEN)

/* Largest ICMP error packet: RFC 1812 4.3.2.3 (v4), RFC 4443 2.4(c) (v6). */
#define CF_PKT_ICMP4_ERROR_MAX 576
#define CF_PKT_ICMP6_ERROR_MAX 1280

/* TTL / hop limit of the RST and ICMP error packets the engine makes up. */
#define CF_PKT_DEFAULT_TTL 64

/* One parsed packet; every pointer points into the buffer given to cf_pkt_parse(). */
struct cf_pkt {
	uint8_t family; /* AF_INET / AF_INET6 */
	struct cf_ip src, dst;
	uint8_t proto; /* final L4 protocol (after v6 extension headers) */
	uint8_t ttl;   /* TTL or hop limit */
	uint8_t tos;   /* v4 TOS / v6 traffic class */
	/* v4 MF or offset != 0, or a v6 fragment header. L4 fields are parsed for a
	 * first fragment only (and then describe the part in this fragment). */
	bool fragment;
	/* cf_pkt_parse_quote() only: the packet goes on beyond the bytes given
	 * (l3_len and l4_len end there; a UDP payload is cut as for a fragment). */
	bool truncated;
	/*
	 * Fragments only (fragment true), what reassembly needs: head_len, the
	 * headers the reassembled packet starts with (v4: the IP header with its
	 * options; v6: every header before the first Fragment header); data_off,
	 * where this fragment's piece of the payload starts in l3; nh_off (v6),
	 * the Next Header byte that names the Fragment header; next, the protocol
	 * of the payload (v4: the protocol field; v6: the Fragment header's Next
	 * Header); id, the identification (v4: 16 bits); offset, where the piece
	 * goes in the payload, in bytes; more, the M / MF flag.
	 */
	struct {
		size_t head_len, data_off, nh_off;
		uint32_t id, offset;
		uint8_t next;
		bool more;
	} frag;
	const uint8_t *l3; /* the whole packet, trimmed to the IP total length */
	size_t l3_len;
	const uint8_t *l4; /* L4 header + payload (of this fragment) */
	size_t l4_len;
	/* After the TCP/UDP/ICMP header; NULL when the L4 header was not parsed
	 * (non-first fragment, unsupported protocol). UDP: trimmed to the UDP length. */
	const uint8_t *payload;
	size_t payload_len;
	uint16_t sport, dport; /* TCP/UDP */
	uint32_t tcp_seq, tcp_ack;
	/* TH_FIN|TH_SYN|TH_RST|TH_PUSH|TH_ACK|TH_URG: the whole byte, so ECE and CWR too */
	uint8_t tcp_flags;
	uint8_t icmp_type, icmp_code;
	uint16_t icmp_id, icmp_seq; /* echo request/reply only */
};

/**
 * cf_pkt_parse() - Parse one IPv4 or IPv6 packet as read from the tun device
 * @buf:	packet bytes (starting with the IP header)
 * @len:	bytes in @buf; bytes past the IP total length are ignored
 * @out:	filled in; every pointer points into @buf
 *
 * Checksums are not verified (the child's kernel made the packet). IPv6
 * hop-by-hop (first only), routing, destination options and fragment headers
 * are walked; any other next header ends the walk and becomes @out->proto.
 *
 * Return: 0; -EPROTONOSUPPORT for an L4 protocol not parsed here (the L3
 * fields and l4/l4_len are still filled, the L4 fields stay zero);
 * -EINVAL for a malformed or truncated packet (then @out is unspecified).
 */
int cf_pkt_parse(const uint8_t *buf, size_t len, struct cf_pkt *out);

/**
 * cf_pkt_parse_quote() - Parse a packet of which only the first bytes were kept
 * @buf:	its first bytes, length fields as they were
 * @len:	bytes in @buf
 * @out:	as for cf_pkt_parse(); when the packet's length fields say more
 *		than @len, @out->truncated is set and l3_len / l4_len end at @len
 *
 * For the ICMP errors about a packet of the tree's that the engine kept only
 * the start of: cf_pkt_build_icmp_error() quotes at most 548 (v4) / 1232 (v6)
 * bytes, so the start is all it needs.
 *
 * Return: as cf_pkt_parse().
 */
int cf_pkt_parse_quote(const uint8_t *buf, size_t len, struct cf_pkt *out);

/**
 * cf_pkt_build_tcp_rst() - Build the reset the destination's kernel would send for @syn
 * @buf:	output buffer; may be the buffer @syn was parsed from
 * @cap:	its size (40 bytes for v4, 60 for v6 are enough)
 * @syn:	parsed TCP segment, normally a SYN
 *
 * Addresses and ports swapped, TTL/hop limit 64, window 0, no options. As
 * RFC 9293 3.10.7.1 and Linux: for a segment without ACK, RST|ACK with seq 0
 * and ack = seq + SYN + FIN + payload length; for a segment with ACK, a bare
 * RST with seq = its ack.
 *
 * Return: packet length; -ENOSPC if @cap is too small; -EINVAL if @syn is not
 * a parsed, unfragmented TCP segment or is itself a RST.
 */
ssize_t cf_pkt_build_tcp_rst(uint8_t *buf, size_t cap, const struct cf_pkt *syn);

/**
 * cf_pkt_build_icmp_error() - Build an ICMP / ICMPv6 error about @orig, sent to its source
 * @buf:	output buffer; may be the buffer @orig was parsed from (built in place)
 * @cap:	its size (576 bytes for v4, 1280 for v6 are always enough)
 * @orig:	parsed packet that caused the error
 * @from:	source address of the error (same family as @orig)
 * @type:	ICMP type (v4: any, e.g. 3, 11; v6: an error type, below 128)
 * @code:	ICMP code
 * @mtu:	next-hop MTU for v4 3/4 and v6 type 2; pointer for parameter problem
 *		(v4 12, v6 4); ignored otherwise
 *
 * Quotes as much of @orig as fits in 576 (v4) / 1280 (v6) bytes in all.
 * TTL/hop limit 64; v4 TOS as Linux sets it (precedence 0xc0), DF, id 0.
 *
 * Return: packet length; -ENOSPC if @cap is below the whole packet; -EINVAL
 * for mismatched families, a v6 type >= 128, an out-of-range @mtu, or when
 * RFC 1122 3.2.2 / 1812 4.3.2.7 / 4443 2.4(e) forbid an error about @orig: it
 * is an ICMP error itself, a non-first v4 fragment, comes from an unspecified
 * or multicast source, or went to a multicast (or v4 broadcast) destination
 * (v6 packet too big and parameter problem code 2 excepted).
 */
ssize_t cf_pkt_build_icmp_error(uint8_t *buf, size_t cap, const struct cf_pkt *orig,
				const struct cf_ip *from, uint8_t type, uint8_t code, uint32_t mtu);

/**
 * cf_pkt_build_udp() - Build a UDP datagram @src:@sport -> @dst:@dport
 * @buf:	output buffer
 * @cap:	its size
 * @src:	source address (its family picks IPv4 or IPv6)
 * @sport:	source port
 * @dst:	destination address (same family)
 * @dport:	destination port
 * @payload:	data; may already be at buf + CF_PKT_UDP4/6_PAYLOAD_OFF (no copy then)
 *		or overlap @buf otherwise (it is moved)
 * @len:	bytes of data
 * @ttl:	TTL / hop limit
 * @ip_id:	IPv4 identification (DF is clear); unused for v6
 *
 * UDP checksum always computed (a computed 0 is sent as 0xffff).
 *
 * Return: packet length; -EINVAL for bad or mismatched families; -EMSGSIZE if
 * the datagram does not fit one packet (v4: total length 65535, i.e. 65507
 * bytes of data; v6: payload length 65535, i.e. 65527); -ENOSPC if @cap is too small.
 */
ssize_t cf_pkt_build_udp(uint8_t *buf, size_t cap, const struct cf_ip *src, uint16_t sport,
			 const struct cf_ip *dst, uint16_t dport, const uint8_t *payload,
			 size_t len, uint8_t ttl, uint16_t ip_id);

/**
 * cf_pkt_build_icmp_echo() - Build an ICMP / ICMPv6 echo reply or request
 * @buf:	output buffer
 * @cap:	its size
 * @src:	source address (its family picks ICMP or ICMPv6)
 * @dst:	destination address (same family)
 * @reply:	echo reply (true) or echo request (false)
 * @id:	echo identifier
 * @seq:	echo sequence number
 * @data:	echo data; may already be at buf + CF_PKT_ICMP4/6_DATA_OFF or overlap @buf
 * @len:	bytes of data
 * @ttl:	TTL / hop limit
 *
 * IPv4: DF set, id 0 (RFC 6864 atomic datagram), TOS 0.
 *
 * Return: packet length; -EINVAL for bad or mismatched families; -EMSGSIZE if
 * it does not fit one packet (as for UDP); -ENOSPC if @cap is too small.
 */
ssize_t cf_pkt_build_icmp_echo(uint8_t *buf, size_t cap, const struct cf_ip *src,
			       const struct cf_ip *dst, bool reply, uint16_t id, uint16_t seq,
			       const uint8_t *data, size_t len, uint8_t ttl);

/* Largest IPv6 packet (no jumbograms): the header and a payload of 65,535 bytes. */
#define CF_PKT_IP6_MAX_LEN (CF_PKT_IP6_HDR_LEN + 65535)
/* The smallest MTU an IPv6 link may have (RFC 8200 5). */
#define CF_PKT_IP6_MIN_MTU 1280
#define CF_PKT_FRAG6_HDR_LEN 8

/* One fragment made by cf_pkt_frag6(): @head, then @data_len bytes at @data. */
struct cf_pkt_frag6 {
	uint8_t head[CF_PKT_IP6_HDR_LEN + CF_PKT_FRAG6_HDR_LEN]; /* IPv6 + Fragment header */
	const uint8_t *data; /* points into the packet that was split */
	size_t data_len;
};

/**
 * cf_pkt_frag6() - Split an IPv6 packet into fragments (RFC 8200 4.5)
 * @pkt:	a whole IPv6 packet with no extension header (as the builders here
 *		make them: the payload is an upper-layer header and its data)
 * @len:	its length: 40 + its payload length
 * @id:	Fragment Identification for every fragment
 * @mtu:	largest fragment, IPv6 and Fragment headers included (>= 1280)
 * @frags:	filled with the fragments, in offset order; their data point into @pkt
 * @max:	room in @frags
 *
 * Every fragment carries @pkt's IPv6 header (traffic class, flow label, hop
 * limit, addresses) with Next Header 44 and its own payload length, then a
 * Fragment header naming @pkt's Next Header; all but the last carry a
 * multiple of 8 bytes, as many as fit in @mtu, with M set. Checksums are
 * @pkt's: the receiver checks them on the reassembled packet.
 *
 * Return: the number of fragments; -EINVAL if @pkt is not such a packet of
 * @len bytes, already fits in @mtu (RFC 8021: no atomic fragments) or @mtu is
 * below 1280; -ENOSPC if more than @max fragments are needed.
 */
ssize_t cf_pkt_frag6(const uint8_t *pkt, size_t len, uint32_t id, size_t mtu,
		     struct cf_pkt_frag6 *frags, size_t max);

/* Where the data starts in a built TCP segment without options: read straight into buf + this. */
#define CF_PKT_TCP4_PAYLOAD_OFF (CF_PKT_IP4_HDR_LEN + CF_PKT_TCP_HDR_LEN)
#define CF_PKT_TCP6_PAYLOAD_OFF (CF_PKT_IP6_HDR_LEN + CF_PKT_TCP_HDR_LEN)
/* Most TCP option bytes a segment carries (data offset 15). */
#define CF_PKT_TCP_OPTS_MAX 40

/* One TCP segment to build with cf_pkt_build_tcp(). */
struct cf_pkt_tcp_seg {
	const struct cf_ip *src, *dst; /* same family; it picks IPv4 or IPv6 */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;	     /* TH_* */
	uint16_t window;     /* as sent (unscaled) */
	const uint8_t *opts; /* TCP options, a multiple of 4 bytes, at most CF_PKT_TCP_OPTS_MAX */
	size_t opts_len;
	/* Data; may already be at buf + CF_PKT_TCP4/6_PAYLOAD_OFF (no options: no copy then)
	 * or overlap the buffer otherwise (it is moved). */
	const uint8_t *payload;
	size_t len;
	uint8_t ttl;	/* TTL / hop limit */
	uint16_t ip_id; /* IPv4 identification (DF is set, as Linux TCP does); unused for v6 */
};

/**
 * cf_pkt_build_tcp() - Build one TCP segment
 * @buf:	output buffer
 * @cap:	its size
 * @seg:	what to build
 *
 * IPv4: DF set, TOS 0; IPv6: traffic class and flow label 0. The TCP
 * checksum (with pseudo-header) and the IPv4 header checksum are computed;
 * the urgent pointer is 0.
 *
 * Return: packet length; -EINVAL for bad or mismatched families, options not
 * a multiple of 4 or over 40 bytes, or data without a pointer; -EMSGSIZE if
 * the segment does not fit one packet (v4: total length 65535; v6: payload
 * length 65535); -ENOSPC if @cap is too small.
 */
ssize_t cf_pkt_build_tcp(uint8_t *buf, size_t cap, const struct cf_pkt_tcp_seg *seg);

/**
 * cf_csum_partial() - Add @data to a running Internet checksum sum
 * @data:	bytes, any alignment
 * @len:	their count; only the last piece of a checksummed run may be odd
 * @sum:	running sum of big-endian 16-bit words (host values may be added
 *		directly, e.g. protocol and length of a pseudo-header)
 *
 * Return: the new running sum (always below 2^17).
 */
uint32_t cf_csum_partial(const void *data, size_t len, uint32_t sum);

/**
 * cf_csum_fold() - Fold a running sum into the checksum field value
 * @sum:	running sum from cf_csum_partial()
 *
 * Return: the one's complement of the folded sum, in host order (store it
 * big-endian). Over a packet whose checksum is right this returns 0.
 */
uint16_t cf_csum_fold(uint32_t sum);

#endif
