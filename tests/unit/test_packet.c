// SPDX-License-Identifier: MIT
/*
 * Tests of src/net/packet.c against references that do not come from it:
 *
 * - bytes the Linux kernel (6.18) wrote into a tun device, stored below. How
 *   they were made, as root, in a private network namespace (`unshare -n`):
 *   open /dev/net/tun with IFF_TUN|IFF_NO_PI as "tun0" (what the engine reads),
 *   `ip link set tun0 mtu 1280 up`, `ip addr add 10.0.0.1/24 dev tun0`,
 *   `ip -6 addr add fd00::1/64 dev tun0 nodad`, `sysctl net.ipv6.auto_flowlabels=0`
 *   (so the kernel's v6 flow label is 0, as ours); then
 *   . packets the kernel sends: connect() to 10.0.0.2:80 / [fd00::2]:80 (SYNs);
 *     UDP from 10.0.0.1:40000 (IP_MTU_DISCOVER=IP_PMTUDISC_DONT, IP_TTL=64) and
 *     [fd00::1]:40001 (IPV6_UNICAST_HOPS=64) to port 53, a short payload and a
 *     1400-byte one (bytes i & 0xff) that the kernel fragments, the v6 one with
 *     IPV6_HOPOPTS set to one PadN option (hop-by-hop + fragment header); echo
 *     requests from ping sockets (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6);
 *   . packets written into tun0 (addressed from 10.0.0.2 / fd00::2, checksums
 *     made by a separate Python script) and the kernel's answers read back: RST
 *     for a SYN, a SYN with 20 bytes of data (seq wraps) and a bare ACK to
 *     closed port 81; echo replies; port unreachable for UDP to port 9, for
 *     a short datagram and a long one (972 / 1232 bytes of i & 0xff).
 *   The fd was read with read(2); a dumpcap on tun0 at the same time saw the
 *   same bytes, and `tshark -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE
 *   -o tcp.check_checksum:TRUE` reported every checksum good; the field values
 *   the parse tests expect are tshark's decode of these bytes. Big packets are
 *   stored as their headers; the rest is the known i & 0xff payload (fill()).
 * - a naive RFC 1071 checksum written here (ref_sum16()), byte pair by byte pair.
 * - the RFC 1071 section 3 example, RFC 768/792/4443/8200 field layouts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/packet.h"

/* ---- reference packets made by the kernel (see the top of this file) ---- */

static const uint8_t ref_tcp4_syn[] = {
    0x45, 0x00, 0x00, 0x3c, 0x74, 0xba, 0x40, 0x00, 0x40, 0x06, 0xb1, 0xff, 0x0a, 0x00, 0x00,
    0x01, 0x0a, 0x00, 0x00, 0x02, 0xb5, 0x60, 0x00, 0x50, 0x76, 0x2d, 0xa5, 0x4b, 0x00, 0x00,
    0x00, 0x00, 0xa0, 0x02, 0xfb, 0xe0, 0x30, 0x9c, 0x00, 0x00, 0x02, 0x04, 0x04, 0xd8, 0x04,
    0x02, 0x08, 0x0a, 0x3f, 0x67, 0xf7, 0xc8, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
};
static const uint8_t ref_tcp6_syn[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xdb, 0xdc, 0x00, 0x50, 0x35, 0xe2, 0xbe, 0x0a,
    0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfc, 0x94, 0x30, 0x0c, 0x00, 0x00, 0x02, 0x04, 0x04, 0xc4,
    0x04, 0x02, 0x08, 0x0a, 0xf8, 0x18, 0x5a, 0x15, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
};
static const uint8_t ref_udp4[] = {
    0x45, 0x00, 0x00, 0x2b, 0x44, 0x2e, 0x00, 0x00, 0x40, 0x11, 0x22, 0x92, 0x0a, 0x00, 0x00,
    0x01, 0x0a, 0x00, 0x00, 0x02, 0x9c, 0x40, 0x00, 0x35, 0x00, 0x17, 0xf6, 0xaa, 0x68, 0x65,
    0x6c, 0x6c, 0x6f, 0x20, 0x63, 0x68, 0x69, 0x6c, 0x64, 0x66, 0x6c, 0x6f, 0x77,
};
static const uint8_t ref_udp4_frag1_head[] = {
    0x45, 0x00, 0x04, 0xfc, 0x44, 0x2f, 0x20, 0x00, 0x40, 0x11, 0xfd, 0xbf, 0x0a, 0x00,
    0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x9c, 0x40, 0x00, 0x35, 0x05, 0x80, 0xa1, 0x19,
};
static const uint8_t ref_udp4_frag2_head[] = {
    0x45, 0x00, 0x00, 0xac, 0x44, 0x2f, 0x00, 0x9d, 0x40, 0x11,
    0x21, 0x73, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02,
};
static const uint8_t ref_udp6[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x1a, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x9c, 0x41,
    0x00, 0x35, 0x00, 0x1a, 0x9a, 0x4b, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x63, 0x68,
    0x69, 0x6c, 0x64, 0x66, 0x6c, 0x6f, 0x77, 0x20, 0x76, 0x36,
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
static const uint8_t ref_icmp4_echo_request[] = {
    0x45, 0x00, 0x00, 0x30, 0x64, 0xf9, 0x40, 0x00, 0x40, 0x01, 0xc1, 0xd1, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02, 0x08, 0x00, 0xb8, 0x1e, 0x79, 0x06, 0x00, 0x07, 0x70, 0x69, 0x6e, 0x67,
    0x20, 0x64, 0x61, 0x74, 0x61, 0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
};
static const uint8_t ref_icmp6_echo_request[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x19, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x80, 0x00, 0xd1, 0xb8, 0x79, 0x07, 0x00, 0x09, 0x70, 0x69, 0x6e, 0x67,
    0x36, 0x20, 0x64, 0x61, 0x74, 0x61, 0x20, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66,
};
static const uint8_t ref_rst4_syn_in[] = {
    0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x9a, 0x0a, 0x00,
    0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x80, 0xe8, 0x00, 0x51, 0x11, 0x22, 0x33, 0x44,
    0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0xdb, 0x4f, 0x00, 0x00,
};
static const uint8_t ref_rst4_syn_kernel[] = {
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0xce, 0x0a, 0x00,
    0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x51, 0x80, 0xe8, 0x00, 0x00, 0x00, 0x00,
    0x11, 0x22, 0x33, 0x45, 0x50, 0x14, 0x00, 0x00, 0xd6, 0x2d, 0x00, 0x00,
};
static const uint8_t ref_rst4_syn_data_in[] = {
    0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x86, 0x0a, 0x00, 0x00,
    0x02, 0x0a, 0x00, 0x00, 0x01, 0x80, 0xe9, 0x00, 0x51, 0xff, 0xff, 0xff, 0xf0, 0x00, 0x00,
    0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0x1f, 0xa6, 0x00, 0x00, 0x30, 0x31, 0x32, 0x33, 0x34,
    0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
};
static const uint8_t ref_rst4_syn_data_kernel[] = {
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0xce, 0x0a, 0x00,
    0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x51, 0x80, 0xe9, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0x50, 0x14, 0x00, 0x00, 0x1a, 0x8f, 0x00, 0x00,
};
static const uint8_t ref_rst4_ack_in[] = {
    0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x9a, 0x0a, 0x00,
    0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x80, 0xea, 0x00, 0x51, 0x01, 0x02, 0x03, 0x04,
    0xa0, 0xb0, 0xc0, 0xd0, 0x50, 0x10, 0xfa, 0xf0, 0xba, 0x1e, 0x00, 0x00,
};
static const uint8_t ref_rst4_ack_kernel[] = {
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x26, 0xce, 0x0a, 0x00,
    0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x51, 0x80, 0xea, 0xa0, 0xb0, 0xc0, 0xd0,
    0x00, 0x00, 0x00, 0x00, 0x50, 0x04, 0x00, 0x00, 0xb9, 0x21, 0x00, 0x00,
};
static const uint8_t ref_rst6_syn_in[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0xeb, 0x00, 0x51, 0x55,
    0x66, 0x77, 0x88, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0x6c, 0xc2, 0x00, 0x00,
};
static const uint8_t ref_rst6_syn_kernel[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x51, 0x80, 0xeb, 0x00,
    0x00, 0x00, 0x00, 0x55, 0x66, 0x77, 0x89, 0x50, 0x14, 0x00, 0x00, 0x67, 0xa0, 0x00, 0x00,
};
static const uint8_t ref_echo4_in[] = {
    0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x14, 0x9b, 0x0a, 0x00, 0x00,
    0x02, 0x0a, 0x00, 0x00, 0x01, 0x08, 0x00, 0x72, 0x6f, 0x42, 0x42, 0x00, 0x03, 0x61, 0x62,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70,
};
static const uint8_t ref_echo4_kernel[] = {
    0x45, 0x00, 0x00, 0x2c, 0x67, 0xa9, 0x00, 0x00, 0x40, 0x01, 0xff, 0x25, 0x0a, 0x00, 0x00,
    0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x7a, 0x6f, 0x42, 0x42, 0x00, 0x03, 0x61, 0x62,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70,
};
static const uint8_t ref_echo6_in[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x19, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x80, 0x00, 0x8e, 0x14, 0x43, 0x43, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71,
};
static const uint8_t ref_echo6_kernel[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x19, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x81, 0x00, 0x8d, 0x14, 0x43, 0x43, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71,
};
static const uint8_t ref_unreach4_in[] = {
    0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x14, 0x8b, 0x0a, 0x00, 0x00,
    0x02, 0x0a, 0x00, 0x00, 0x01, 0x80, 0xec, 0x00, 0x09, 0x00, 0x18, 0x8e, 0xb9, 0x74, 0x6f,
    0x20, 0x61, 0x20, 0x63, 0x6c, 0x6f, 0x73, 0x65, 0x64, 0x20, 0x70, 0x6f, 0x72, 0x74,
};
static const uint8_t ref_unreach4_kernel[] = {
    0x45, 0xc0, 0x00, 0x48, 0x68, 0xbe, 0x00, 0x00, 0x40, 0x01, 0xfd, 0x34, 0x0a, 0x00, 0x00,
    0x01, 0x0a, 0x00, 0x00, 0x02, 0x03, 0x03, 0x11, 0x29, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00,
    0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x14, 0x8b, 0x0a, 0x00, 0x00, 0x02, 0x0a,
    0x00, 0x00, 0x01, 0x80, 0xec, 0x00, 0x09, 0x00, 0x18, 0x8e, 0xb9, 0x74, 0x6f, 0x20, 0x61,
    0x20, 0x63, 0x6c, 0x6f, 0x73, 0x65, 0x64, 0x20, 0x70, 0x6f, 0x72, 0x74,
};
static const uint8_t ref_unreach4_big_in_head[] = {
    0x45, 0x00, 0x03, 0xe8, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x10, 0xcf, 0x0a, 0x00,
    0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x80, 0xed, 0x00, 0x09, 0x03, 0xd4, 0xbb, 0xc1,
};
static const uint8_t ref_unreach4_big_kernel_head[] = {
    0x45, 0xc0, 0x02, 0x40, 0x69, 0x56, 0x00, 0x00, 0x40, 0x01, 0xfa, 0xa4, 0x0a, 0x00,
    0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x03, 0x03, 0x2f, 0xe1, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t ref_unreach6_in[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x1b, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0xee,
    0x00, 0x09, 0x00, 0x1b, 0x52, 0x39, 0x74, 0x6f, 0x20, 0x61, 0x20, 0x63, 0x6c, 0x6f,
    0x73, 0x65, 0x64, 0x20, 0x70, 0x6f, 0x72, 0x74, 0x20, 0x76, 0x36,
};
static const uint8_t ref_unreach6_kernel[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x4b, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x04, 0x93, 0x42, 0x00,
    0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x1b, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0xee,
    0x00, 0x09, 0x00, 0x1b, 0x52, 0x39, 0x74, 0x6f, 0x20, 0x61, 0x20, 0x63, 0x6c, 0x6f, 0x73,
    0x65, 0x64, 0x20, 0x70, 0x6f, 0x72, 0x74, 0x20, 0x76, 0x36,
};
static const uint8_t ref_unreach6_big_in_head[] = {
    0x60, 0x00, 0x00, 0x00, 0x04, 0xd8, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0xef, 0x00, 0x09, 0x04, 0xd8, 0x77, 0xd8,
};
static const uint8_t ref_unreach6_big_kernel_head[] = {
    0x60, 0x00, 0x00, 0x00, 0x04, 0xd8, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x04, 0xc8, 0x06, 0x00, 0x00, 0x00, 0x00,
};

/* ---- helpers and the independent reference checksum ---- */

#define SENTINEL 0xa5

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

static void assert_ip(const struct cf_ip *got, const char *want)
{
	struct cf_ip w = ip(want);

	assert_int_equal(got->family, w.family);
	assert_memory_equal(got->b, w.b, w.family == AF_INET ? 4 : 16);
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool all_bytes_are(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* A stored big packet: @head, then bytes (@from + i) & 0xff up to @total. Return @total. */
static size_t fill(uint8_t *out, const uint8_t *head, size_t head_len, size_t total, size_t from)
{
	if (head_len)
		memcpy(out, head, head_len);
	for (size_t i = 0; head_len + i < total; i++)
		out[head_len + i] = (uint8_t)(from + i);
	return total;
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

/* Sum of the pseudo-header of a packet without v6 extension headers (0 for ICMPv4). */
static uint64_t ref_pseudo(const uint8_t *p, size_t len)
{
	size_t l4_len;

	if (p[0] >> 4 == 4) {
		l4_len = len - (size_t)(p[0] & 15) * 4;
		if (p[9] == IPPROTO_ICMP)
			return 0;
		return ref_sum16(p + 12, 8, 0) + p[9] + l4_len;
	}
	l4_len = len - 40;
	return ref_sum16(p + 8, 32, 0) + p[6] + (l4_len >> 16) + (l4_len & 0xffff);
}

/*
 * Independent check of a whole packet without v6 extension headers: the IP
 * length fields match @len, the IPv4 header and the L4 segment with its
 * pseudo-header each sum to 0xffff.
 */
static bool ref_checksums_ok(const uint8_t *p, size_t len)
{
	size_t hl = p[0] >> 4 == 4 ? (size_t)(p[0] & 15) * 4 : 40;

	if (p[0] >> 4 == 4) {
		if (be16(p + 2) != len || ref_sum16(p, hl, 0) != 0xffff)
			return false;
	} else if ((size_t)be16(p + 4) + 40 != len) {
		return false;
	}
	return ref_sum16(p + hl, len - hl, ref_pseudo(p, len)) == 0xffff;
}

/* Set an IPv4 header's id and flags/offset; fix its checksum with ref_sum16(). */
static void ref_patch_ip4(uint8_t *p, uint16_t id, uint16_t frag)
{
	uint16_t c;

	p[4] = (uint8_t)(id >> 8);
	p[5] = (uint8_t)id;
	p[6] = (uint8_t)(frag >> 8);
	p[7] = (uint8_t)frag;
	p[10] = 0;
	p[11] = 0;
	c = (uint16_t)~ref_sum16(p, 20, 0);
	p[10] = (uint8_t)(c >> 8);
	p[11] = (uint8_t)c;
}

static struct cf_pkt parse_ok(const uint8_t *buf, size_t len)
{
	struct cf_pkt p;

	assert_int_equal(cf_pkt_parse(buf, len, &p), 0);
	return p;
}

#define PARSE_OK(arr) parse_ok(arr, sizeof(arr))

/* ---- checksums ---- */

static void csum_matches_rfc1071_example(void **state)
{
	/* RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2. */
	static const uint8_t d[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

	(void)state;
	assert_int_equal(ref_sum16(d, sizeof(d), 0), 0xddf2);
	assert_int_equal(cf_csum_fold(cf_csum_partial(d, sizeof(d), 0)), 0x220d);
	assert_int_equal(cf_csum_fold(cf_csum_partial(d + 1, 7, 0)),
			 (uint16_t)~ref_sum16(d + 1, 7, 0));
}

static void csum_partial_matches_naive_sum_for_every_length_alignment_and_start(void **state)
{
	static const uint32_t starts[] = {0, 1, 0x1234, 0xffff, 0x10000, 0x1fffe, 0xffffffffu};
	uint8_t data[160];
	uint32_t x = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; off + len <= sizeof(data); len++)
			for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++)
				assert_int_equal(
				    cf_csum_fold(cf_csum_partial(data + off, len, starts[s])),
				    (uint16_t)~ref_sum16(data + off, len, starts[s]));
}

static void csum_partial_carries_over_long_runs_of_ones(void **state)
{
	static const size_t lens[] = {65535, 65536, 65575, 200001};
	uint8_t *data = malloc(200001);

	(void)state;
	assert_non_null(data);
	memset(data, 0xff, 200001);
	data[7] = 0xfe;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_int_equal(cf_csum_fold(cf_csum_partial(data, lens[i], 0xfffffff0u)),
				 (uint16_t)~ref_sum16(data, lens[i], 0xfffffff0u));
	free(data);
}

static void csum_partial_chains_over_even_pieces(void **state)
{
	static const uint8_t d[] = "The quick brown fox jumps over the lazy dog";
	uint32_t sum = cf_csum_partial(d, 10, 0);

	(void)state;
	sum = cf_csum_partial(d + 10, 20, sum);
	sum = cf_csum_partial(d + 30, sizeof(d) - 30, sum);
	assert_int_equal(cf_csum_fold(sum), cf_csum_fold(cf_csum_partial(d, sizeof(d), 0)));
	assert_true(cf_csum_partial(d, sizeof(d), 0xffffffffu) < 0x20000u);
}

static void csum_fold_complements_and_folds_carries(void **state)
{
	(void)state;
	assert_int_equal(cf_csum_fold(0), 0xffff);
	assert_int_equal(cf_csum_fold(0xffff), 0);
	assert_int_equal(cf_csum_fold(0x1fffe), 0);	 /* fffe + 1 */
	assert_int_equal(cf_csum_fold(0x12345), 0xdcb9); /* ~(2345 + 1) */
	assert_int_equal(cf_csum_fold(0xffffffffu), 0);
}

struct ref {
	const uint8_t *p;
	size_t len;
};

#define REF(a)                                                                                     \
	{                                                                                          \
		a, sizeof(a)                                                                       \
	}

/* Every whole kernel packet without v6 extension headers. */
static const struct ref kernel_packets[] = {
    REF(ref_tcp4_syn),
    REF(ref_tcp6_syn),
    REF(ref_udp4),
    REF(ref_udp6),
    REF(ref_icmp4_echo_request),
    REF(ref_icmp6_echo_request),
    REF(ref_rst4_syn_kernel),
    REF(ref_rst4_syn_data_kernel),
    REF(ref_rst4_ack_kernel),
    REF(ref_rst6_syn_kernel),
    REF(ref_echo4_kernel),
    REF(ref_echo6_kernel),
    REF(ref_unreach4_kernel),
    REF(ref_unreach6_kernel),
};

static void csum_verifies_every_kernel_packet(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kernel_packets) / sizeof(kernel_packets[0]); i++) {
		const struct ref *r = &kernel_packets[i];
		size_t hl = r->p[0] >> 4 == 4 ? 20 : 40;
		uint32_t pseudo = 0;

		assert_true(ref_checksums_ok(r->p, r->len)); /* the reference checker itself */
		if (hl == 20)
			assert_int_equal(cf_csum_fold(cf_csum_partial(r->p, 20, 0)), 0);
		if (r->p[hl == 20 ? 9 : 6] != IPPROTO_ICMP)
			pseudo = cf_csum_partial(r->p + (hl == 20 ? 12 : 8), hl == 20 ? 8 : 32,
						 (uint32_t)(r->p[hl == 20 ? 9 : 6] + r->len - hl));
		assert_int_equal(cf_csum_fold(cf_csum_partial(r->p + hl, r->len - hl, pseudo)), 0);
	}
}

/* ---- parsing what the kernel wrote (expected values: tshark's decode) ---- */

static void parse_reads_kernel_tcp4_syn(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_tcp4_syn);

	(void)state;
	assert_int_equal(p.family, AF_INET);
	assert_ip(&p.src, "10.0.0.1");
	assert_ip(&p.dst, "10.0.0.2");
	assert_int_equal(p.proto, IPPROTO_TCP);
	assert_int_equal(p.ttl, 64);
	assert_int_equal(p.tos, 0);
	assert_false(p.fragment);
	assert_ptr_equal(p.l3, ref_tcp4_syn);
	assert_int_equal(p.l3_len, 60);
	assert_ptr_equal(p.l4, ref_tcp4_syn + 20);
	assert_int_equal(p.l4_len, 40);
	assert_int_equal(p.sport, 46432);
	assert_int_equal(p.dport, 80);
	assert_int_equal(p.tcp_seq, 1982702923u);
	assert_int_equal(p.tcp_ack, 0);
	assert_int_equal(p.tcp_flags, TH_SYN);
	assert_ptr_equal(p.payload, ref_tcp4_syn + 60); /* after 20 bytes of options */
	assert_int_equal(p.payload_len, 0);
	assert_int_equal(p.icmp_type, 0);
	assert_int_equal(p.icmp_id, 0);
}

static void parse_reads_kernel_tcp6_syn(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_tcp6_syn);

	(void)state;
	assert_int_equal(p.family, AF_INET6);
	assert_ip(&p.src, "fd00::1");
	assert_ip(&p.dst, "fd00::2");
	assert_int_equal(p.proto, IPPROTO_TCP);
	assert_int_equal(p.ttl, 64);
	assert_int_equal(p.tos, 0);
	assert_false(p.fragment);
	assert_int_equal(p.l3_len, 80);
	assert_ptr_equal(p.l4, ref_tcp6_syn + 40);
	assert_int_equal(p.l4_len, 40);
	assert_int_equal(p.sport, 56284);
	assert_int_equal(p.dport, 80);
	assert_int_equal(p.tcp_seq, 904052234u);
	assert_int_equal(p.tcp_flags, TH_SYN);
	assert_ptr_equal(p.payload, ref_tcp6_syn + 80);
	assert_int_equal(p.payload_len, 0);
}

static void parse_reads_tcp_syn_with_data(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_rst4_syn_data_in);

	(void)state;
	assert_int_equal(p.sport, 33001);
	assert_int_equal(p.dport, 81);
	assert_int_equal(p.tcp_seq, 4294967280u);
	assert_int_equal(p.payload_len, 20);
	assert_memory_equal(p.payload, "0123456789abcdefghij", 20);
}

static void parse_reads_tcp_ack_number_and_flags(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_rst4_ack_in);

	(void)state;
	assert_int_equal(p.tcp_seq, 16909060u);
	assert_int_equal(p.tcp_ack, 2695938256u);
	assert_int_equal(p.tcp_flags, TH_ACK);
	p = PARSE_OK(ref_rst4_syn_kernel);
	assert_int_equal(p.tcp_flags, TH_RST | TH_ACK);
}

static void parse_reads_kernel_udp4(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_udp4);

	(void)state;
	assert_int_equal(p.family, AF_INET);
	assert_ip(&p.src, "10.0.0.1");
	assert_ip(&p.dst, "10.0.0.2");
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.ttl, 64);
	assert_false(p.fragment);
	assert_int_equal(p.l3_len, 43);
	assert_ptr_equal(p.l4, ref_udp4 + 20);
	assert_int_equal(p.l4_len, 23);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 53);
	assert_ptr_equal(p.payload, ref_udp4 + 28);
	assert_int_equal(p.payload_len, 15);
	assert_memory_equal(p.payload, "hello childflow", 15);
}

static void parse_reads_kernel_udp6(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_udp6);

	(void)state;
	assert_int_equal(p.family, AF_INET6);
	assert_ip(&p.src, "fd00::1");
	assert_ip(&p.dst, "fd00::2");
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.ttl, 64);
	assert_int_equal(p.l3_len, 66);
	assert_ptr_equal(p.l4, ref_udp6 + 40);
	assert_int_equal(p.l4_len, 26);
	assert_int_equal(p.sport, 40001);
	assert_int_equal(p.dport, 53);
	assert_int_equal(p.payload_len, 18);
	assert_memory_equal(p.payload, "hello childflow v6", 18);
}

static void parse_reads_kernel_icmp4_echo_request_and_reply(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_icmp4_echo_request);

	(void)state;
	assert_int_equal(p.proto, IPPROTO_ICMP);
	assert_ptr_equal(p.l4, ref_icmp4_echo_request + 20);
	assert_int_equal(p.l4_len, 28);
	assert_int_equal(p.icmp_type, 8);
	assert_int_equal(p.icmp_code, 0);
	assert_int_equal(p.icmp_id, 30982);
	assert_int_equal(p.icmp_seq, 7);
	assert_int_equal(p.payload_len, 20);
	assert_memory_equal(p.payload, "ping data 0123456789", 20);
	assert_int_equal(p.sport, 0);

	p = PARSE_OK(ref_echo4_kernel);
	assert_int_equal(p.icmp_type, 0);
	assert_int_equal(p.icmp_id, 16962);
	assert_int_equal(p.icmp_seq, 3);
	assert_memory_equal(p.payload, "abcdefghijklmnop", 16);
}

static void parse_reads_kernel_icmp6_echo_request_and_reply(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_icmp6_echo_request);

	(void)state;
	assert_int_equal(p.family, AF_INET6);
	assert_int_equal(p.proto, IPPROTO_ICMPV6);
	assert_int_equal(p.icmp_type, 128);
	assert_int_equal(p.icmp_code, 0);
	assert_int_equal(p.icmp_id, 0x7907);
	assert_int_equal(p.icmp_seq, 9);
	assert_int_equal(p.payload_len, 17);
	assert_memory_equal(p.payload, "ping6 data abcdef", 17);

	p = PARSE_OK(ref_echo6_kernel);
	assert_int_equal(p.icmp_type, 129);
	assert_int_equal(p.icmp_id, 0x4343);
	assert_int_equal(p.icmp_seq, 4);
}

static void parse_icmp_error_points_payload_at_quote_without_echo_fields(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_unreach4_kernel);

	(void)state;
	assert_int_equal(p.tos, 0xc0);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_code, 3);
	assert_int_equal(p.icmp_id, 0);
	assert_int_equal(p.icmp_seq, 0);
	assert_int_equal(p.payload_len, sizeof(ref_unreach4_in));
	assert_memory_equal(p.payload, ref_unreach4_in, sizeof(ref_unreach4_in));

	p = PARSE_OK(ref_unreach6_kernel);
	assert_int_equal(p.icmp_type, 1);
	assert_int_equal(p.icmp_code, 4);
	assert_int_equal(p.icmp_id, 0);
	assert_memory_equal(p.payload, ref_unreach6_in, sizeof(ref_unreach6_in));
}

static void parse_ipv4_first_fragment_reads_udp_header(void **state)
{
	uint8_t b[1276];
	struct cf_pkt p;

	(void)state;
	fill(b, ref_udp4_frag1_head, sizeof(ref_udp4_frag1_head), sizeof(b), 0);
	p = PARSE_OK(b);
	assert_true(p.fragment);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.l3_len, 1276);
	assert_int_equal(p.l4_len, 1256);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 53);
	assert_ptr_equal(p.payload, b + 28);
	assert_int_equal(p.payload_len, 1248); /* the part in this fragment */
	/* what reassembly needs: the whole IPv4 header, id 0x442f, offset 0, MF */
	assert_int_equal(p.frag.head_len, 20);
	assert_int_equal(p.frag.data_off, 20);
	assert_int_equal(p.frag.next, IPPROTO_UDP);
	assert_int_equal(p.frag.id, 0x442f);
	assert_int_equal(p.frag.offset, 0);
	assert_true(p.frag.more);
}

static void parse_ipv4_later_fragment_leaves_l4_fields_zero(void **state)
{
	uint8_t b[172];
	struct cf_pkt p;

	(void)state;
	fill(b, ref_udp4_frag2_head, sizeof(ref_udp4_frag2_head), sizeof(b), 1248);
	p = PARSE_OK(b);
	assert_true(p.fragment);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_ptr_equal(p.l4, b + 20);
	assert_int_equal(p.l4_len, 152);
	assert_null(p.payload);
	assert_int_equal(p.payload_len, 0);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.dport, 0);
	/* fragment offset 0x9d = 157 units of 8 bytes: 1256, right after the first */
	assert_int_equal(p.frag.head_len, 20);
	assert_int_equal(p.frag.data_off, 20);
	assert_int_equal(p.frag.id, 0x442f);
	assert_int_equal(p.frag.offset, 1256);
	assert_false(p.frag.more);
}

static void parse_ipv6_walks_hop_by_hop_and_first_fragment_header(void **state)
{
	uint8_t b[1280];
	struct cf_pkt p;

	(void)state;
	fill(b, ref_udp6_hbh_frag1_head, sizeof(ref_udp6_hbh_frag1_head), sizeof(b), 0);
	p = PARSE_OK(b);
	assert_true(p.fragment);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_ptr_equal(p.l4, b + 56); /* 40 + hop-by-hop 8 + fragment 8 */
	assert_int_equal(p.l4_len, 1224);
	assert_int_equal(p.sport, 40001);
	assert_int_equal(p.dport, 53);
	assert_ptr_equal(p.payload, b + 64);
	assert_int_equal(p.payload_len, 1216);
	/* the reassembled packet keeps IPv6 + hop-by-hop, whose Next Header (byte 40) named 44 */
	assert_int_equal(p.frag.head_len, 48);
	assert_int_equal(p.frag.data_off, 56);
	assert_int_equal(p.frag.nh_off, 40);
	assert_int_equal(p.frag.next, IPPROTO_UDP);
	assert_int_equal(p.frag.id, 0xaf49dccc);
	assert_int_equal(p.frag.offset, 0);
	assert_true(p.frag.more);
}

static void parse_ipv6_later_fragment_leaves_l4_fields_zero(void **state)
{
	uint8_t b[240];
	struct cf_pkt p;

	(void)state;
	fill(b, ref_udp6_hbh_frag2_head, sizeof(ref_udp6_hbh_frag2_head), sizeof(b), 1216);
	p = PARSE_OK(b);
	assert_true(p.fragment);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_ptr_equal(p.l4, b + 56);
	assert_int_equal(p.l4_len, 184);
	assert_null(p.payload);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.frag.head_len, 48);
	assert_int_equal(p.frag.data_off, 56);
	assert_int_equal(p.frag.nh_off, 40);
	assert_int_equal(p.frag.id, 0xaf49dccc);
	assert_int_equal(p.frag.offset, 1224); /* 0x04c8 & 0xfff8 */
	assert_false(p.frag.more);
}

static void parse_ipv6_records_only_the_first_of_two_fragment_headers(void **state)
{
	uint8_t b[1280 + 8];
	struct cf_pkt p;

	(void)state;
	/* the kernel's first fragment with a second Fragment header (offset 8, M) behind the first
	 */
	fill(b, ref_udp6_hbh_frag1_head, 56, sizeof(b), 0);
	b[5] = 0xe0; /* payload length 0x04e0: 8 more */
	b[48] = IPPROTO_FRAGMENT;
	memcpy(b + 56, (const uint8_t[]){IPPROTO_UDP, 0, 0x00, 0x09, 1, 2, 3, 4}, 8);
	memcpy(b + 64, ref_udp6_hbh_frag1_head + 56, 8);
	p = PARSE_OK(b);
	assert_true(p.fragment);
	assert_int_equal(p.frag.head_len, 48);
	assert_int_equal(p.frag.next, IPPROTO_FRAGMENT);
	assert_int_equal(p.frag.id, 0xaf49dccc);
	assert_null(p.payload); /* the second header says: not the first fragment */
}

static void parse_leaves_fragment_fields_zero_for_whole_packets(void **state)
{
	struct cf_pkt p = PARSE_OK(ref_udp6);

	(void)state;
	assert_false(p.fragment);
	assert_int_equal(p.frag.head_len, 0);
	assert_int_equal(p.frag.data_off, 0);
	assert_int_equal(p.frag.id, 0);
	p = PARSE_OK(ref_udp4);
	assert_false(p.fragment);
	assert_int_equal(p.frag.head_len, 0);
	assert_int_equal(p.frag.id, 0);
	assert_false(p.truncated);
}

/* ---- parsing the kept start of a packet ---- */

static void parse_quote_reads_the_start_of_a_big_udp_datagram(void **state)
{
	uint8_t b[1280];
	struct cf_pkt p;

	(void)state;
	/* the first 1280 bytes of a 1428-byte IPv4 datagram: the kernel's first fragment
	 * with MF and offset cleared, total length 1428 */
	fill(b, ref_udp4_frag1_head, sizeof(ref_udp4_frag1_head), sizeof(b), 0);
	ref_patch_ip4(b, 0x442f, 0);
	b[2] = 0x05;
	b[3] = 0x94;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	assert_int_equal(cf_pkt_parse_quote(b, sizeof(b), &p), 0);
	assert_true(p.truncated);
	assert_false(p.fragment);
	assert_ptr_equal(p.l3, b);
	assert_int_equal(p.l3_len, 1280);
	assert_int_equal(p.l4_len, 1260);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 53);
	assert_int_equal(p.payload_len, 1252);
	assert_ip(&p.dst, "10.0.0.2");

	/* IPv6: 1280 bytes of a 1456-byte datagram (the hop-by-hop fragment's headers,
	 * unfragmented) */
	fill(b, ref_udp6_hbh_frag1_head, 48, sizeof(b), 0);
	b[4] = 0x05;
	b[5] = 0x88; /* payload length: hop-by-hop 8 + UDP 1408 */
	b[40] = IPPROTO_UDP;
	memcpy(b + 48, ref_udp6_hbh_frag1_head + 56, 8);
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	assert_int_equal(cf_pkt_parse_quote(b, sizeof(b), &p), 0);
	assert_true(p.truncated);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.l3_len, 1280);
	assert_int_equal(p.sport, 40001);
	assert_int_equal(p.payload_len, 1280 - 56);
}

static void parse_quote_of_a_whole_packet_is_parse(void **state)
{
	struct cf_pkt a, b;

	(void)state;
	for (size_t i = 0; i < sizeof(kernel_packets) / sizeof(kernel_packets[0]); i++) {
		assert_int_equal(cf_pkt_parse(kernel_packets[i].p, kernel_packets[i].len, &a), 0);
		assert_int_equal(cf_pkt_parse_quote(kernel_packets[i].p, kernel_packets[i].len, &b),
				 0);
		assert_false(b.truncated);
		assert_memory_equal(&a, &b, sizeof(a));
	}
}

static void parse_quote_still_needs_the_ip_and_l4_headers(void **state)
{
	struct cf_pkt p;

	(void)state;
	assert_int_equal(cf_pkt_parse_quote(ref_udp4, 19, &p), -EINVAL);
	assert_int_equal(cf_pkt_parse_quote(ref_udp4, 27, &p), -EINVAL); /* UDP header cut */
	assert_int_equal(cf_pkt_parse_quote(ref_udp6, 39, &p), -EINVAL);
	assert_int_equal(cf_pkt_parse_quote(ref_tcp6_syn, 59, &p), -EINVAL); /* TCP header cut */
	assert_int_equal(cf_pkt_parse_quote(ref_udp4, 28, &p), 0);
	assert_true(p.truncated);
	assert_int_equal(p.payload_len, 0);
}

static void build_icmp_error_from_a_kept_start_quotes_the_original_bytes(void **state)
{
	uint8_t whole[1456], kept[1280], from_whole[1280], from_kept[1280];
	struct cf_pkt a, b;
	struct cf_ip router = ip("fd00::fe");

	(void)state;
	/* the 1456-byte datagram of the test above, whole and its first 1280 bytes */
	fill(whole, ref_udp6_hbh_frag1_head, 48, sizeof(whole), 0);
	whole[4] = 0x05;
	whole[5] = 0x88;
	whole[40] = IPPROTO_UDP;
	memcpy(whole + 48, ref_udp6_hbh_frag1_head + 56, 8);
	fill(whole + 56, NULL, 0, sizeof(whole) - 56, 0);
	memcpy(kept, whole, sizeof(kept));
	assert_int_equal(cf_pkt_parse(whole, sizeof(whole), &a), 0);
	assert_int_equal(cf_pkt_parse_quote(kept, sizeof(kept), &b), 0);
	/* packet too big, MTU 1400: 48 bytes of headers + 1232 quoted, the same either way */
	assert_int_equal(
	    cf_pkt_build_icmp_error(from_whole, sizeof(from_whole), &a, &router, 2, 0, 1400), 1280);
	assert_int_equal(
	    cf_pkt_build_icmp_error(from_kept, sizeof(from_kept), &b, &router, 2, 0, 1400), 1280);
	assert_memory_equal(from_whole, from_kept, 1280);
	assert_memory_equal(from_kept + 48, whole, 1232);
}

/* ---- IPv6 fragmentation ---- */

/* A UDP datagram of @len bytes (i * 7 & 0xff) fd00::1:40001 -> fd00::2:53, built by
 * cf_pkt_build_udp(). */
static size_t udp6_packet(uint8_t *buf, size_t cap, size_t len)
{
	struct cf_ip src = ip("fd00::1"), dst = ip("fd00::2");
	uint8_t *data = buf + CF_PKT_UDP6_PAYLOAD_OFF;
	ssize_t n;

	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7);
	n = cf_pkt_build_udp(buf, cap, &src, 40001, &dst, 53, data, len, 64, 0);
	assert_true(n > 0);
	buf[1] |= 0x0a; /* a flow label, which every fragment must carry too */
	buf[3] = 0x5c;
	return (size_t)n;
}

static void assert_fragment(const struct cf_pkt_frag6 *f, const uint8_t *pkt, size_t off,
			    size_t len, bool more, uint32_t id)
{
	const uint8_t *fh = f->head + 40;

	assert_memory_equal(f->head, pkt, 4); /* version, traffic class, flow label */
	assert_int_equal(be16(f->head + 4), 8 + len);
	assert_int_equal(f->head[6], IPPROTO_FRAGMENT);
	assert_memory_equal(f->head + 7, pkt + 7, 33); /* hop limit, addresses */
	assert_int_equal(fh[0], pkt[6]);
	assert_int_equal(fh[1], 0);
	assert_int_equal(be16(fh + 2), off | more);
	assert_int_equal(be32(fh + 4), id);
	assert_ptr_equal(f->data, pkt + 40 + off);
	assert_int_equal(f->data_len, len);
}

static void frag6_splits_the_largest_udp_datagram_as_the_kernel_does_for_mtu_65535(void **state)
{
	uint8_t *pkt = malloc(CF_PKT_IP6_MAX_LEN);
	struct cf_pkt_frag6 f[3];
	size_t len;

	(void)state;
	assert_non_null(pkt);
	/* 65,507 bytes of data: 65,515 of UDP; 65,480 fit (65,535 - 48, rounded down to 8) */
	len = udp6_packet(pkt, CF_PKT_IP6_MAX_LEN, 65507);
	assert_int_equal(len, 65555);
	assert_int_equal(cf_pkt_frag6(pkt, len, 0x01020304, 65535, f, 3), 2);
	assert_fragment(&f[0], pkt, 0, 65480, true, 0x01020304);
	assert_fragment(&f[1], pkt, 65480, 35, false, 0x01020304);
	/* the largest IPv6 packet */
	len = udp6_packet(pkt, CF_PKT_IP6_MAX_LEN, 65527);
	assert_int_equal(len, CF_PKT_IP6_MAX_LEN);
	assert_int_equal(cf_pkt_frag6(pkt, len, 7, 65535, f, 3), 2);
	assert_fragment(&f[0], pkt, 0, 65480, true, 7);
	assert_fragment(&f[1], pkt, 65480, 55, false, 7);
	free(pkt);
}

static void frag6_uses_multiples_of_8_that_fit_the_mtu(void **state)
{
	uint8_t pkt[48 + 3000];
	struct cf_pkt_frag6 f[4];
	size_t len = udp6_packet(pkt, sizeof(pkt), 3000);

	(void)state;
	/* 1280: 1232 per fragment, as the kernel's (RFC 8200 minimum MTU) */
	assert_int_equal(cf_pkt_frag6(pkt, len, 9, 1280, f, 4), 3);
	assert_fragment(&f[0], pkt, 0, 1232, true, 9);
	assert_fragment(&f[1], pkt, 1232, 1232, true, 9);
	assert_fragment(&f[2], pkt, 2464, 544, false, 9);
	/* 1287 leaves 1239 bytes: 1232 again */
	assert_int_equal(cf_pkt_frag6(pkt, len, 9, 1287, f, 4), 3);
	assert_int_equal(f[0].data_len, 1232);
	/* 1288: 1240 */
	assert_int_equal(cf_pkt_frag6(pkt, len, 9, 1288, f, 4), 3);
	assert_fragment(&f[0], pkt, 0, 1240, true, 9);
	assert_fragment(&f[2], pkt, 2480, 528, false, 9);
	/* one byte over the MTU: what fits, rounded down to 8, then the rest */
	assert_int_equal(cf_pkt_frag6(pkt, len, 9, len - 1, f, 4), 2);
	assert_fragment(&f[0], pkt, 0, (len - 1 - 48) & ~(size_t)7, true, 9);
	assert_int_equal(f[0].data_len + f[1].data_len, len - 40);
}

static void frag6_refuses_what_it_cannot_split(void **state)
{
	uint8_t pkt[48 + 3000], bad[sizeof(pkt)];
	struct cf_pkt_frag6 f[4];
	size_t len = udp6_packet(pkt, sizeof(pkt), 3000);
	static const uint8_t ext[] = {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT,
				      IPPROTO_DSTOPTS};

	(void)state;
	assert_int_equal(cf_pkt_frag6(pkt, 39, 1, 1280, f, 4), -EINVAL);
	assert_int_equal(cf_pkt_frag6(pkt, len - 1, 1, 1280, f, 4), -EINVAL); /* length fields */
	assert_int_equal(cf_pkt_frag6(pkt, len, 1, 1279, f, 4), -EINVAL);     /* below 1280 */
	assert_int_equal(cf_pkt_frag6(pkt, len, 1, len, f, 4), -EINVAL);      /* fits already */
	assert_int_equal(cf_pkt_frag6(pkt, len, 1, 1280, f, 2), -ENOSPC);
	for (size_t i = 0; i < sizeof(ext); i++) {
		memcpy(bad, pkt, len);
		bad[6] = ext[i];
		assert_int_equal(cf_pkt_frag6(bad, len, 1, 1280, f, 4), -EINVAL);
	}
	memcpy(bad, pkt, len);
	bad[0] = 0x45;
	assert_int_equal(cf_pkt_frag6(bad, len, 1, 1280, f, 4), -EINVAL);
}

static void frag6_fragments_parse_as_the_kernels_do(void **state)
{
	uint8_t pkt[48 + 3000], buf[1280];
	struct cf_pkt_frag6 f[3];
	struct cf_pkt p;
	size_t len = udp6_packet(pkt, sizeof(pkt), 3000);

	(void)state;
	assert_int_equal(cf_pkt_frag6(pkt, len, 0xdeadbeef, 1280, f, 3), 3);
	for (size_t i = 0; i < 3; i++) {
		memcpy(buf, f[i].head, 48);
		memcpy(buf + 48, f[i].data, f[i].data_len);
		assert_int_equal(cf_pkt_parse(buf, 48 + f[i].data_len, &p), 0);
		assert_true(p.fragment);
		assert_int_equal(p.proto, IPPROTO_UDP);
		assert_int_equal(p.frag.id, 0xdeadbeef);
		assert_int_equal(p.frag.offset, i * 1232);
		assert_int_equal(p.frag.more, i < 2);
		assert_int_equal(p.frag.head_len, 40);
		assert_int_equal(p.frag.nh_off, 6);
		if (i == 0) {
			assert_int_equal(p.sport, 40001);
			assert_int_equal(p.dport, 53);
		}
	}
}

/* Hand-written: IPv6, destination options (PadN), routing (16 bytes), UDP 1234 -> 5678 "abcd". */
static const uint8_t dstopts_routing_udp6[] = {
    0x60,
    0x00,
    0x00,
    0x00,
    0x00,
    0x24,
    IPPROTO_DSTOPTS,
    0x40,
    0xfd,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0x02,
    0xfd,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0x01,
    IPPROTO_ROUTING,
    0x00,
    0x01,
    0x04,
    0x00,
    0x00,
    0x00,
    0x00,
    IPPROTO_UDP,
    0x01,
    0x04,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x04,
    0xd2,
    0x16,
    0x2e,
    0x00,
    0x0c,
    0x00,
    0x00,
    'a',
    'b',
    'c',
    'd',
};

static void parse_ipv6_walks_destination_options_and_routing(void **state)
{
	struct cf_pkt p = PARSE_OK(dstopts_routing_udp6);

	(void)state;
	assert_false(p.fragment);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_ptr_equal(p.l4, dstopts_routing_udp6 + 64);
	assert_int_equal(p.l4_len, 12);
	assert_int_equal(p.sport, 1234);
	assert_int_equal(p.dport, 5678);
	assert_memory_equal(p.payload, "abcd", 4);
}

static void parse_skips_ipv4_options(void **state)
{
	uint8_t b[47];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp4, 20);
	b[0] = 0x46;
	b[3] = 47;
	memcpy(b + 20, (const uint8_t[]){0x01, 0x01, 0x01, 0x00}, 4); /* NOP NOP NOP EOL */
	memcpy(b + 24, ref_udp4 + 20, 23);
	p = PARSE_OK(b);
	assert_ptr_equal(p.l4, b + 24);
	assert_int_equal(p.l4_len, 23);
	assert_int_equal(p.sport, 40000);
	assert_memory_equal(p.payload, "hello childflow", 15);
}

static void parse_ignores_bytes_past_ip_total_length(void **state)
{
	uint8_t b4[sizeof(ref_udp4) + 5], b6[sizeof(ref_udp6) + 9];
	struct cf_pkt p;

	(void)state;
	memset(b4, 0xee, sizeof(b4));
	memset(b6, 0xee, sizeof(b6));
	memcpy(b4, ref_udp4, sizeof(ref_udp4));
	memcpy(b6, ref_udp6, sizeof(ref_udp6));
	p = PARSE_OK(b4);
	assert_int_equal(p.l3_len, sizeof(ref_udp4));
	assert_int_equal(p.l4_len, 23);
	assert_int_equal(p.payload_len, 15);
	p = PARSE_OK(b6);
	assert_int_equal(p.l3_len, sizeof(ref_udp6));
	assert_int_equal(p.l4_len, 26);
	assert_int_equal(p.payload_len, 18);
}

static void parse_trims_udp_payload_to_udp_length(void **state)
{
	uint8_t b[sizeof(ref_udp4)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp4, sizeof(b));
	b[25] = 8 + 5; /* UDP length 13 inside an IP payload of 23 */
	p = PARSE_OK(b);
	assert_int_equal(p.l4_len, 23);
	assert_int_equal(p.payload_len, 5);
}

static void parse_unsupported_protocol_fills_l3_and_l4_only(void **state)
{
	uint8_t b[sizeof(ref_udp4)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp4, sizeof(b));
	b[9] = 47; /* GRE */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EPROTONOSUPPORT);
	assert_int_equal(p.family, AF_INET);
	assert_ip(&p.src, "10.0.0.1");
	assert_ip(&p.dst, "10.0.0.2");
	assert_int_equal(p.proto, 47);
	assert_int_equal(p.ttl, 64);
	assert_ptr_equal(p.l3, b);
	assert_int_equal(p.l3_len, 43);
	assert_ptr_equal(p.l4, b + 20);
	assert_int_equal(p.l4_len, 23);
	assert_null(p.payload);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.dport, 0);
}

static void parse_icmp_of_the_other_family_is_unsupported(void **state)
{
	uint8_t b4[sizeof(ref_icmp4_echo_request)], b6[sizeof(ref_icmp6_echo_request)];
	struct cf_pkt p;

	(void)state;
	memcpy(b4, ref_icmp4_echo_request, sizeof(b4));
	memcpy(b6, ref_icmp6_echo_request, sizeof(b6));
	b4[9] = IPPROTO_ICMPV6;
	b6[6] = IPPROTO_ICMP;
	assert_int_equal(cf_pkt_parse(b4, sizeof(b4), &p), -EPROTONOSUPPORT);
	assert_int_equal(p.icmp_type, 0);
	assert_int_equal(cf_pkt_parse(b6, sizeof(b6), &p), -EPROTONOSUPPORT);
	assert_int_equal(p.proto, IPPROTO_ICMP);
	assert_int_equal(p.icmp_type, 0);
}

static void parse_ipv6_no_next_header_is_unsupported(void **state)
{
	uint8_t b[40];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp6, 40);
	b[4] = 0;
	b[5] = 0;
	b[6] = IPPROTO_NONE;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EPROTONOSUPPORT);
	assert_int_equal(p.proto, IPPROTO_NONE);
	assert_ptr_equal(p.l4, b + 40);
	assert_int_equal(p.l4_len, 0);
}

static void parse_later_fragment_of_unsupported_protocol_is_unsupported(void **state)
{
	uint8_t b[172];
	struct cf_pkt p;

	(void)state;
	fill(b, ref_udp4_frag2_head, sizeof(ref_udp4_frag2_head), sizeof(b), 1248);
	b[9] = 47;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EPROTONOSUPPORT);
	assert_true(p.fragment);
	assert_int_equal(p.l4_len, 152);
}

/* ---- malformed input ---- */

static void parse_rejects_empty_buffer(void **state)
{
	struct cf_pkt p;

	(void)state;
	assert_int_equal(cf_pkt_parse(ref_udp4, 0, &p), -EINVAL);
	assert_int_equal(cf_pkt_parse(NULL, 0, &p), -EINVAL);
}

static void parse_rejects_truncated_ipv4_header(void **state)
{
	struct cf_pkt p;

	(void)state;
	for (size_t len = 1; len < 20; len++)
		assert_int_equal(cf_pkt_parse(ref_udp4, len, &p), -EINVAL);
}

static void parse_rejects_ipv4_ihl_below_5(void **state)
{
	uint8_t b[sizeof(ref_udp4)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp4, sizeof(b));
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		b[0] = (uint8_t)(0x40 | ihl);
		assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	}
}

static void parse_rejects_ipv4_header_longer_than_total_length(void **state)
{
	uint8_t b[64] = {0};
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp4, sizeof(ref_udp4));
	b[0] = 0x4f; /* 60-byte header in a 43-byte packet */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_ipv4_total_length_past_buffer(void **state)
{
	uint8_t b[sizeof(ref_udp4)];
	struct cf_pkt p;

	(void)state;
	assert_int_equal(cf_pkt_parse(ref_udp4, sizeof(ref_udp4) - 1, &p), -EINVAL);
	memcpy(b, ref_udp4, sizeof(b));
	b[2] = 0xff;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_ipv4_total_length_below_header(void **state)
{
	uint8_t b[sizeof(ref_udp4)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp4, sizeof(b));
	b[3] = 19;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	b[3] = 0;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_ip_versions_other_than_4_and_6(void **state)
{
	uint8_t b4[sizeof(ref_udp4)], b6[sizeof(ref_udp6)];
	struct cf_pkt p;

	(void)state;
	memcpy(b4, ref_udp4, sizeof(b4));
	memcpy(b6, ref_udp6, sizeof(b6));
	for (unsigned v = 0; v < 16; v++) {
		if (v == 4 || v == 6)
			continue;
		b4[0] = (uint8_t)(v << 4 | 5);
		b6[0] = (uint8_t)(v << 4);
		assert_int_equal(cf_pkt_parse(b4, sizeof(b4), &p), -EINVAL);
		assert_int_equal(cf_pkt_parse(b6, sizeof(b6), &p), -EINVAL);
	}
}

static void parse_rejects_truncated_ipv6_header(void **state)
{
	struct cf_pkt p;

	(void)state;
	for (size_t len = 1; len < 40; len++)
		assert_int_equal(cf_pkt_parse(ref_udp6, len, &p), -EINVAL);
}

static void parse_rejects_ipv6_payload_length_past_buffer(void **state)
{
	uint8_t b[sizeof(ref_udp6)];
	struct cf_pkt p;

	(void)state;
	assert_int_equal(cf_pkt_parse(ref_udp6, sizeof(ref_udp6) - 1, &p), -EINVAL);
	memcpy(b, ref_udp6, sizeof(b));
	b[4] = 0x01;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_truncated_extension_header_chain(void **state)
{
	uint8_t b[240];
	struct cf_pkt p;

	(void)state;
	fill(b, ref_udp6_hbh_frag2_head, sizeof(ref_udp6_hbh_frag2_head), sizeof(b), 1216);
	b[4] = 0;
	b[5] = 4; /* hop-by-hop header cut after 4 bytes */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	b[5] = 12; /* fragment header cut after 4 bytes */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	b[5] = 16; /* both whole: a later fragment with no data is fine */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), 0);
	b[5] = 200;
	b[41] = 30; /* hop-by-hop claims 248 bytes of 200 */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_truncated_routing_and_destination_options(void **state)
{
	uint8_t b[sizeof(dstopts_routing_udp6)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, dstopts_routing_udp6, sizeof(b));
	b[49] = 5; /* routing header claims 48 bytes */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	memcpy(b, dstopts_routing_udp6, sizeof(b));
	b[5] = 20; /* the chain ends inside the routing header */
	assert_int_equal(cf_pkt_parse(b, 60, &p), -EINVAL);
}

static void parse_rejects_hop_by_hop_after_first_header(void **state)
{
	uint8_t b[sizeof(dstopts_routing_udp6)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, dstopts_routing_udp6, sizeof(b));
	b[40] = IPPROTO_HOPOPTS; /* destination options -> hop-by-hop */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_bad_tcp_data_offset(void **state)
{
	uint8_t b[sizeof(ref_tcp4_syn)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_tcp4_syn, sizeof(b));
	for (unsigned doff = 0; doff < 16; doff++) {
		b[32] = (uint8_t)(doff << 4);
		/* 40 bytes of TCP: 5..10 words are valid */
		assert_int_equal(cf_pkt_parse(b, sizeof(b), &p),
				 doff >= 5 && doff <= 10 ? 0 : -EINVAL);
	}
}

static void parse_rejects_truncated_tcp_header(void **state)
{
	uint8_t b[sizeof(ref_rst4_syn_in)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_rst4_syn_in, sizeof(b));
	b[3] = 39;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_bad_udp_length(void **state)
{
	static const uint16_t bad[] = {0, 1, 7, 24, 0xffff};
	uint8_t b[sizeof(ref_udp4)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp4, sizeof(b));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b[24] = (uint8_t)(bad[i] >> 8);
		b[25] = (uint8_t)bad[i];
		assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
	}
}

static void parse_rejects_truncated_udp_header(void **state)
{
	uint8_t b[sizeof(ref_udp6)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_udp6, sizeof(b));
	b[5] = 7;
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

static void parse_rejects_truncated_icmp_header(void **state)
{
	uint8_t b4[sizeof(ref_echo4_in)], b6[sizeof(ref_echo6_in)];
	struct cf_pkt p;

	(void)state;
	memcpy(b4, ref_echo4_in, sizeof(b4));
	memcpy(b6, ref_echo6_in, sizeof(b6));
	b4[3] = 27;
	b6[5] = 7;
	assert_int_equal(cf_pkt_parse(b4, sizeof(b4), &p), -EINVAL);
	assert_int_equal(cf_pkt_parse(b6, sizeof(b6), &p), -EINVAL);
}

static void parse_rejects_first_fragment_too_short_for_l4_header(void **state)
{
	uint8_t b[sizeof(ref_rst4_syn_in)];
	struct cf_pkt p;

	(void)state;
	memcpy(b, ref_rst4_syn_in, sizeof(b));
	b[3] = 28;   /* RFC 1858 tiny fragment: 8 bytes of TCP */
	b[6] = 0x20; /* MF */
	assert_int_equal(cf_pkt_parse(b, sizeof(b), &p), -EINVAL);
}

/* ---- building: byte for byte against the kernel ---- */

static void build_udp4_matches_kernel_bytes(void **state)
{
	struct cf_ip src = ip("10.0.0.1"), dst = ip("10.0.0.2");
	uint8_t buf[128];

	(void)state;
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &src, 40000, &dst, 53,
					  (const uint8_t *)"hello childflow", 15, 64, 0x442e),
			 sizeof(ref_udp4));
	assert_memory_equal(buf, ref_udp4, sizeof(ref_udp4));
}

static void build_udp6_matches_kernel_bytes(void **state)
{
	struct cf_ip src = ip("fd00::1"), dst = ip("fd00::2");
	uint8_t buf[128];

	(void)state;
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &src, 40001, &dst, 53,
					  (const uint8_t *)"hello childflow v6", 18, 64, 0x442e),
			 sizeof(ref_udp6));
	assert_memory_equal(buf, ref_udp6, sizeof(ref_udp6));
}

static void build_icmp6_echo_request_and_reply_match_kernel_bytes(void **state)
{
	struct cf_ip a = ip("fd00::1"), b = ip("fd00::2");
	uint8_t buf[128];

	(void)state;
	assert_int_equal(cf_pkt_build_icmp_echo(buf, sizeof(buf), &a, &b, false, 0x7907, 9,
						(const uint8_t *)"ping6 data abcdef", 17, 64),
			 sizeof(ref_icmp6_echo_request));
	assert_memory_equal(buf, ref_icmp6_echo_request, sizeof(ref_icmp6_echo_request));

	assert_int_equal(cf_pkt_build_icmp_echo(buf, sizeof(buf), &a, &b, true, 0x4343, 4,
						(const uint8_t *)"abcdefghijklmnopq", 17, 64),
			 sizeof(ref_echo6_kernel));
	assert_memory_equal(buf, ref_echo6_kernel, sizeof(ref_echo6_kernel));
}

/* Our v4 echo has DF and IP id 0; the kernel's id is its own choice. */
static void build_icmp4_echo_request_and_reply_match_kernel_bytes_but_ip_id(void **state)
{
	struct cf_ip a = ip("10.0.0.1"), b = ip("10.0.0.2");
	uint8_t want[64], buf[128];

	(void)state;
	memcpy(want, ref_icmp4_echo_request, sizeof(ref_icmp4_echo_request));
	ref_patch_ip4(want, 0, 0x4000);
	assert_int_equal(cf_pkt_build_icmp_echo(buf, sizeof(buf), &a, &b, false, 0x7906, 7,
						(const uint8_t *)"ping data 0123456789", 20, 64),
			 sizeof(ref_icmp4_echo_request));
	assert_memory_equal(buf, want, sizeof(ref_icmp4_echo_request));

	memcpy(want, ref_echo4_kernel, sizeof(ref_echo4_kernel));
	ref_patch_ip4(want, 0, 0x4000); /* kernel replies: DF clear, random id */
	assert_int_equal(cf_pkt_build_icmp_echo(buf, sizeof(buf), &a, &b, true, 0x4242, 3,
						(const uint8_t *)"abcdefghijklmnop", 16, 64),
			 sizeof(ref_echo4_kernel));
	assert_memory_equal(buf, want, sizeof(ref_echo4_kernel));
}

static void assert_rst_like_kernel(const uint8_t *in, size_t in_len, const uint8_t *kernel,
				   size_t kernel_len)
{
	struct cf_pkt syn = parse_ok(in, in_len);
	uint8_t buf[128];

	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &syn), kernel_len);
	assert_memory_equal(buf, kernel, kernel_len);
}

static void build_tcp_rst_matches_kernel_bytes(void **state)
{
	(void)state;
	assert_rst_like_kernel(ref_rst4_syn_in, sizeof(ref_rst4_syn_in), ref_rst4_syn_kernel,
			       sizeof(ref_rst4_syn_kernel));
	/* seq 0xfffffff0 + SYN + 20 bytes wraps to ack 5 */
	assert_rst_like_kernel(ref_rst4_syn_data_in, sizeof(ref_rst4_syn_data_in),
			       ref_rst4_syn_data_kernel, sizeof(ref_rst4_syn_data_kernel));
	/* a segment with ACK gets a bare RST with seq = its ack */
	assert_rst_like_kernel(ref_rst4_ack_in, sizeof(ref_rst4_ack_in), ref_rst4_ack_kernel,
			       sizeof(ref_rst4_ack_kernel));
	assert_rst_like_kernel(ref_rst6_syn_in, sizeof(ref_rst6_syn_in), ref_rst6_syn_kernel,
			       sizeof(ref_rst6_syn_kernel));
}

/* Our v4 errors have DF and IP id 0; the kernel's have DF clear and a random id. */
static void build_icmp_port_unreachable_matches_kernel_bytes_but_ip_id(void **state)
{
	struct cf_ip from4 = ip("10.0.0.1"), from6 = ip("fd00::1");
	struct cf_pkt orig;
	uint8_t want[sizeof(ref_unreach4_kernel)], buf[256];

	(void)state;
	memcpy(want, ref_unreach4_kernel, sizeof(want));
	ref_patch_ip4(want, 0, 0x4000);
	orig = PARSE_OK(ref_unreach4_in);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &orig, &from4, 3, 3, 0),
			 sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));

	orig = PARSE_OK(ref_unreach6_in);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &orig, &from6, 1, 4, 0),
			 sizeof(ref_unreach6_kernel));
	assert_memory_equal(buf, ref_unreach6_kernel, sizeof(ref_unreach6_kernel));
}

static void build_icmp_error_quotes_like_kernel_up_to_576_and_1280_bytes(void **state)
{
	struct cf_ip from4 = ip("10.0.0.1"), from6 = ip("fd00::1");
	uint8_t in[1280], want[1280], buf[2048];
	struct cf_pkt orig;

	(void)state;
	/* v4: 1000-byte datagram, 548 bytes quoted */
	fill(in, ref_unreach4_big_in_head, sizeof(ref_unreach4_big_in_head), 1000, 0);
	memcpy(want, ref_unreach4_big_kernel_head, 28);
	memcpy(want + 28, in, 548);
	ref_patch_ip4(want, 0, 0x4000);
	orig = parse_ok(in, 1000);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &orig, &from4, 3, 3, 0), 576);
	assert_memory_equal(buf, want, 576);

	/* v6: 1280-byte datagram, 1232 bytes quoted */
	fill(in, ref_unreach6_big_in_head, sizeof(ref_unreach6_big_in_head), 1280, 0);
	memcpy(want, ref_unreach6_big_kernel_head, 48);
	memcpy(want + 48, in, 1232);
	orig = parse_ok(in, 1280);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &orig, &from6, 1, 4, 0), 1280);
	assert_memory_equal(buf, want, 1280);
}

/* ---- building: fields, limits, errors ---- */

static void build_tcp_rst_swaps_addresses_and_ports_and_acks_the_syn(void **state)
{
	struct cf_pkt syn = PARSE_OK(ref_tcp4_syn);
	uint8_t buf[64];

	(void)state;
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &syn), 40);
	assert_true(ref_checksums_ok(buf, 40));
	assert_int_equal(buf[0], 0x45);
	assert_int_equal(be16(buf + 6), 0x4000); /* DF */
	assert_int_equal(buf[8], 64);
	assert_int_equal(buf[9], IPPROTO_TCP);
	assert_memory_equal(buf + 12, ref_tcp4_syn + 16, 4); /* from the SYN's destination */
	assert_memory_equal(buf + 16, ref_tcp4_syn + 12, 4); /* to its source */
	assert_int_equal(be16(buf + 20), 80);
	assert_int_equal(be16(buf + 22), 46432);
	assert_int_equal(be32(buf + 24), 0);
	assert_int_equal(be32(buf + 28), 1982702924u);
	assert_int_equal(buf[32], 0x50); /* no options */
	assert_int_equal(buf[33], TH_RST | TH_ACK);
	assert_int_equal(be16(buf + 34), 0); /* window */
	assert_int_equal(be16(buf + 38), 0); /* urgent pointer */

	syn = PARSE_OK(ref_tcp6_syn);
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &syn), 60);
	assert_true(ref_checksums_ok(buf, 60));
	assert_int_equal(buf[7], 64);
	assert_memory_equal(buf + 8, ref_tcp6_syn + 24, 16);
	assert_memory_equal(buf + 24, ref_tcp6_syn + 8, 16);
	assert_int_equal(be16(buf + 40), 80);
	assert_int_equal(be16(buf + 42), 56284);
	assert_int_equal(be32(buf + 44), 0);
	assert_int_equal(be32(buf + 48), 904052235u);
	assert_int_equal(buf[53], TH_RST | TH_ACK);
}

static void build_tcp_rst_counts_syn_and_fin_in_ack(void **state)
{
	uint8_t b[sizeof(ref_rst4_syn_in)], buf[64];
	struct cf_pkt syn;

	(void)state;
	memcpy(b, ref_rst4_syn_in, sizeof(b));
	b[33] = TH_SYN | TH_FIN;
	syn = PARSE_OK(b);
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &syn), 40);
	assert_int_equal(be32(buf + 28), 0x11223344u + 2);
}

static void build_tcp_rst_keeps_dscp_and_clears_ecn(void **state)
{
	uint8_t b4[sizeof(ref_rst4_syn_in)], b6[sizeof(ref_rst6_syn_in)], buf[64];
	struct cf_pkt syn;

	(void)state;
	memcpy(b4, ref_rst4_syn_in, sizeof(b4));
	memcpy(b6, ref_rst6_syn_in, sizeof(b6));
	b4[1] = 0x2b;
	b6[0] = 0x6a; /* traffic class 0xa3 */
	b6[1] = 0x30;
	syn = PARSE_OK(b4);
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &syn), 40);
	assert_int_equal(buf[1], 0x28);
	assert_true(ref_checksums_ok(buf, 40));
	syn = PARSE_OK(b6);
	assert_int_equal(syn.tos, 0xa3);
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &syn), 60);
	assert_int_equal(buf[0], 0x6a);
	assert_int_equal(buf[1], 0x00);
}

static void build_tcp_rst_rejects_what_is_not_a_whole_tcp_segment(void **state)
{
	uint8_t frag[sizeof(ref_rst4_syn_in)], buf[64];
	struct cf_pkt p;

	(void)state;
	p = PARSE_OK(ref_udp4);
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &p), -EINVAL);
	p = PARSE_OK(ref_rst4_syn_kernel); /* never answer a RST */
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &p), -EINVAL);
	memcpy(frag, ref_rst4_syn_in, sizeof(frag));
	frag[6] = 0x20; /* MF: a first fragment */
	p = PARSE_OK(frag);
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &p), -EINVAL);
	p = PARSE_OK(ref_rst4_syn_in);
	p.payload = NULL; /* L4 not parsed */
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &p), -EINVAL);
	p = PARSE_OK(ref_rst4_syn_in);
	p.family = AF_UNIX;
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &p), -EINVAL);
}

static void build_tcp_rst_needs_40_or_60_bytes(void **state)
{
	struct cf_pkt p4 = PARSE_OK(ref_rst4_syn_in), p6 = PARSE_OK(ref_rst6_syn_in);
	uint8_t buf[64];

	(void)state;
	for (size_t cap = 0; cap < 60; cap++) {
		memset(buf, SENTINEL, sizeof(buf));
		if (cap < 40)
			assert_int_equal(cf_pkt_build_tcp_rst(buf, cap, &p4), -ENOSPC);
		assert_int_equal(cf_pkt_build_tcp_rst(buf, cap, &p6), -ENOSPC);
		assert_true(all_bytes_are(buf, sizeof(buf), SENTINEL));
	}
	assert_int_equal(cf_pkt_build_tcp_rst(buf, 40, &p4), 40);
	assert_int_equal(cf_pkt_build_tcp_rst(buf, 60, &p6), 60);
}

static void build_tcp_rst_in_place_over_the_syn(void **state)
{
	uint8_t buf[64];
	struct cf_pkt syn;

	(void)state;
	memcpy(buf, ref_rst4_syn_in, sizeof(ref_rst4_syn_in));
	syn = parse_ok(buf, sizeof(ref_rst4_syn_in));
	assert_int_equal(cf_pkt_build_tcp_rst(buf, sizeof(buf), &syn), 40);
	assert_memory_equal(buf, ref_rst4_syn_kernel, 40);
}

/* An IPv4/IPv6 UDP datagram of @len bytes 10.0.0.2 -> 10.0.0.1 (or v6), built by hand. */
static size_t make_udp(uint8_t *b, int family, size_t len)
{
	const uint8_t *head =
	    family == AF_INET ? ref_unreach4_big_in_head : ref_unreach6_big_in_head;
	size_t hl = family == AF_INET ? 28 : 48;

	fill(b, head, hl, len, 0);
	if (family == AF_INET) {
		b[2] = (uint8_t)(len >> 8);
		b[3] = (uint8_t)len;
		b[24] = (uint8_t)((len - 20) >> 8);
		b[25] = (uint8_t)(len - 20);
	} else {
		b[4] = (uint8_t)((len - 40) >> 8);
		b[5] = (uint8_t)(len - 40);
		b[44] = b[4];
		b[45] = b[5];
	}
	return len;
}

static void assert_icmp_error_quotes(int family, size_t orig_len, size_t want_len)
{
	struct cf_ip from = ip(family == AF_INET ? "192.0.2.1" : "2001:db8::1");
	size_t hl = family == AF_INET ? 28 : 48;
	uint8_t *in = malloc(orig_len), *buf = malloc(2000);
	struct cf_pkt orig;

	assert_non_null(in);
	assert_non_null(buf);
	orig = parse_ok(in, make_udp(in, family, orig_len));
	assert_int_equal(
	    cf_pkt_build_icmp_error(buf, 2000, &orig, &from, family == AF_INET ? 11 : 3, 0, 0),
	    want_len);
	assert_true(ref_checksums_ok(buf, want_len));
	assert_memory_equal(buf + hl, in, want_len - hl);
	assert_int_equal(buf[hl - 8], family == AF_INET ? 11 : 3);
	assert_int_equal(be32(buf + hl - 4), 0);
	if (family == AF_INET) {
		assert_int_equal(buf[8], 64);
		assert_int_equal(buf[1], 0xc0);
		assert_memory_equal(buf + 12, from.b, 4);
		assert_memory_equal(buf + 16, in + 12, 4);
	} else {
		assert_int_equal(buf[7], 64);
		assert_memory_equal(buf + 8, from.b, 16);
		assert_memory_equal(buf + 24, in + 8, 16);
	}
	free(in);
	free(buf);
}

static void build_icmp_error_quotes_at_most_576_bytes_v4_and_1280_v6(void **state)
{
	(void)state;
	assert_icmp_error_quotes(AF_INET, 60, 88);
	assert_icmp_error_quotes(AF_INET, 548, 576);
	assert_icmp_error_quotes(AF_INET, 549, 576);
	assert_icmp_error_quotes(AF_INET, 1500, 576);
	assert_icmp_error_quotes(AF_INET, 65535, 576);
	assert_icmp_error_quotes(AF_INET6, 80, 128);
	assert_icmp_error_quotes(AF_INET6, 1232, 1280);
	assert_icmp_error_quotes(AF_INET6, 1233, 1280);
	assert_icmp_error_quotes(AF_INET6, 1500, 1280);
	assert_icmp_error_quotes(AF_INET6, 65575, 1280);
}

/* Build an error about ref_udp4 / ref_udp6 and return the 4 bytes after its checksum. */
static int64_t icmp_error_rest(int family, uint8_t type, uint8_t code, uint32_t mtu)
{
	struct cf_pkt orig = family == AF_INET ? PARSE_OK(ref_udp4) : PARSE_OK(ref_udp6);
	struct cf_ip from = ip(family == AF_INET ? "10.0.0.2" : "fd00::2");
	size_t hl = family == AF_INET ? 20 : 40;
	uint8_t buf[256];
	ssize_t n = cf_pkt_build_icmp_error(buf, sizeof(buf), &orig, &from, type, code, mtu);

	if (n < 0)
		return n;
	assert_true(ref_checksums_ok(buf, (size_t)n));
	assert_int_equal(buf[hl], type);
	assert_int_equal(buf[hl + 1], code);
	return be32(buf + hl + 4);
}

static void build_icmp_error_puts_mtu_and_pointer_where_the_rfcs_say(void **state)
{
	(void)state;
	assert_int_equal(icmp_error_rest(AF_INET, 3, 4, 1400), 1400); /* RFC 1191 */
	assert_int_equal(icmp_error_rest(AF_INET, 3, 4, 65535), 65535);
	assert_int_equal(icmp_error_rest(AF_INET, 3, 4, 65536), -EINVAL);
	assert_int_equal(icmp_error_rest(AF_INET, 3, 1, 1400), 0); /* ignored */
	assert_int_equal(icmp_error_rest(AF_INET, 3, 13, 0), 0);
	assert_int_equal(icmp_error_rest(AF_INET, 11, 0, 1400), 0);
	assert_int_equal(icmp_error_rest(AF_INET, 12, 0, 20), 20u << 24); /* RFC 792 pointer */
	assert_int_equal(icmp_error_rest(AF_INET, 12, 0, 256), -EINVAL);
	assert_int_equal(icmp_error_rest(AF_INET6, 2, 0, 1280), 1280); /* RFC 4443 3.2 */
	assert_int_equal(icmp_error_rest(AF_INET6, 4, 0, 0x12345678), 0x12345678);
	assert_int_equal(icmp_error_rest(AF_INET6, 1, 3, 1280), 0);
	assert_int_equal(icmp_error_rest(AF_INET6, 3, 0, 1280), 0);
}

static void build_icmp_error_rejects_bad_family_and_informational_v6_type(void **state)
{
	struct cf_pkt o4 = PARSE_OK(ref_udp4), o6 = PARSE_OK(ref_udp6);
	struct cf_ip from4 = ip("10.0.0.2"), from6 = ip("fd00::2");
	uint8_t buf[256];

	(void)state;
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &o4, &from6, 3, 1, 0), -EINVAL);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &o6, &from4, 1, 3, 0), -EINVAL);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &o6, &from6, 128, 0, 0),
			 -EINVAL);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &o6, &from6, 255, 0, 0),
			 -EINVAL);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &o6, &from6, 127, 0, 0), 114);
	o4.l3 = NULL;
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &o4, &from4, 3, 1, 0), -EINVAL);
	o6.family = AF_UNSPEC;
	from6.family = AF_UNSPEC;
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &o6, &from6, 1, 3, 0), -EINVAL);
}

static void build_icmp_error_never_answers_an_icmp_error(void **state)
{
	struct cf_ip from4 = ip("10.0.0.2"), from6 = ip("fd00::2");
	struct cf_pkt p;
	uint8_t buf[1300];

	(void)state;
	p = PARSE_OK(ref_unreach4_kernel);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from4, 3, 1, 0), -EINVAL);
	p = PARSE_OK(ref_unreach6_kernel);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from6, 1, 3, 0), -EINVAL);
	/* informational messages may get one */
	p = PARSE_OK(ref_echo4_in);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from4, 3, 1, 0), 72);
	p = PARSE_OK(ref_echo6_in);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from6, 1, 3, 0), 113);
}

static void build_icmp_error_answers_first_fragments_only_v4(void **state)
{
	struct cf_ip from4 = ip("10.0.0.2"), from6 = ip("fd00::2");
	uint8_t b[1280], buf[1300];
	struct cf_pkt p;

	(void)state;
	p = parse_ok(b, fill(b, ref_udp4_frag2_head, sizeof(ref_udp4_frag2_head), 172, 1248));
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from4, 11, 1, 0), -EINVAL);
	p = parse_ok(b, fill(b, ref_udp4_frag1_head, sizeof(ref_udp4_frag1_head), 1276, 0));
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from4, 11, 1, 0), 576);
	/* RFC 4443 has no such rule */
	p = parse_ok(b,
		     fill(b, ref_udp6_hbh_frag2_head, sizeof(ref_udp6_hbh_frag2_head), 240, 1216));
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from6, 3, 1, 0), 288);
}

static ssize_t icmp_error_about(const char *src, const char *dst, uint8_t type, uint8_t code)
{
	struct cf_ip s = ip(src), d = ip(dst),
		     from = ip(s.family == AF_INET ? "10.9.9.9" : "fd09::9");
	uint8_t b[128], buf[256];
	struct cf_pkt p;

	if (s.family == AF_INET) {
		memcpy(b, ref_udp4, sizeof(ref_udp4));
		memcpy(b + 12, s.b, 4);
		memcpy(b + 16, d.b, 4);
		p = parse_ok(b, sizeof(ref_udp4));
	} else {
		memcpy(b, ref_udp6, sizeof(ref_udp6));
		memcpy(b + 8, s.b, 16);
		memcpy(b + 24, d.b, 16);
		p = parse_ok(b, sizeof(ref_udp6));
	}
	return cf_pkt_build_icmp_error(buf, sizeof(buf), &p, &from, type, code, 1280);
}

static void build_icmp_error_refuses_unspecified_and_multicast_addresses(void **state)
{
	(void)state;
	assert_int_equal(icmp_error_about("10.0.0.1", "10.0.0.2", 3, 1), 71);
	assert_int_equal(icmp_error_about("0.0.0.0", "10.0.0.2", 3, 1), -EINVAL);
	assert_int_equal(icmp_error_about("224.0.0.1", "10.0.0.2", 3, 1), -EINVAL);
	assert_int_equal(icmp_error_about("240.0.0.1", "10.0.0.2", 3, 1), -EINVAL);
	assert_int_equal(icmp_error_about("255.255.255.255", "10.0.0.2", 3, 1), -EINVAL);
	assert_int_equal(icmp_error_about("10.0.0.1", "224.0.0.251", 3, 1), -EINVAL);
	assert_int_equal(icmp_error_about("10.0.0.1", "239.255.255.250", 11, 0), -EINVAL);
	assert_int_equal(icmp_error_about("10.0.0.1", "255.255.255.255", 3, 3), -EINVAL);
	assert_int_equal(icmp_error_about("223.255.255.255", "10.0.0.2", 3, 1), 71);

	assert_int_equal(icmp_error_about("fd00::1", "fd00::2", 1, 3), 114);
	assert_int_equal(icmp_error_about("::", "fd00::2", 1, 3), -EINVAL);
	assert_int_equal(icmp_error_about("ff02::1", "fd00::2", 1, 3), -EINVAL);
	assert_int_equal(icmp_error_about("fd00::1", "ff02::1", 1, 3), -EINVAL);
	assert_int_equal(icmp_error_about("fd00::1", "ff02::1", 4, 1), -EINVAL);
	assert_int_equal(icmp_error_about("fd00::1", "ff02::1", 2, 0), 114); /* packet too big */
	assert_int_equal(icmp_error_about("fd00::1", "ff02::1", 4, 2), 114); /* unknown option */
}

static void build_icmp_error_needs_room_for_the_whole_packet(void **state)
{
	struct cf_pkt o4 = PARSE_OK(ref_unreach4_in), o6 = PARSE_OK(ref_unreach6_in);
	struct cf_ip from4 = ip("10.0.0.1"), from6 = ip("fd00::1");
	uint8_t buf[128];

	(void)state;
	for (size_t cap = 0; cap < 115; cap++) {
		memset(buf, SENTINEL, sizeof(buf));
		if (cap < 72)
			assert_int_equal(cf_pkt_build_icmp_error(buf, cap, &o4, &from4, 3, 3, 0),
					 -ENOSPC);
		assert_int_equal(cf_pkt_build_icmp_error(buf, cap, &o6, &from6, 1, 4, 0), -ENOSPC);
		assert_true(all_bytes_are(buf, sizeof(buf), SENTINEL));
	}
	assert_int_equal(cf_pkt_build_icmp_error(buf, 72, &o4, &from4, 3, 3, 0), 72);
	assert_int_equal(cf_pkt_build_icmp_error(buf, 115, &o6, &from6, 1, 4, 0), 115);
}

static void build_icmp_error_in_place_over_the_original(void **state)
{
	struct cf_ip from4 = ip("10.0.0.1"), from6 = ip("fd00::1");
	uint8_t in[1280], want[1280], buf[1400];
	struct cf_pkt orig;

	(void)state;
	fill(in, ref_unreach6_big_in_head, sizeof(ref_unreach6_big_in_head), 1280, 0);
	orig = parse_ok(in, 1280);
	assert_int_equal(cf_pkt_build_icmp_error(want, sizeof(want), &orig, &from6, 1, 4, 0), 1280);
	memcpy(buf, in, 1280);
	orig = parse_ok(buf, 1280);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &orig, &from6, 1, 4, 0), 1280);
	assert_memory_equal(buf, want, 1280);

	fill(in, ref_unreach4_big_in_head, sizeof(ref_unreach4_big_in_head), 1000, 0);
	orig = parse_ok(in, 1000);
	assert_int_equal(cf_pkt_build_icmp_error(want, sizeof(want), &orig, &from4, 3, 3, 0), 576);
	memcpy(buf, in, 1000);
	orig = parse_ok(buf, 1000);
	assert_int_equal(cf_pkt_build_icmp_error(buf, sizeof(buf), &orig, &from4, 3, 3, 0), 576);
	assert_memory_equal(buf, want, 576);
}

static void build_udp_sets_ip_id_ttl_and_clears_df(void **state)
{
	struct cf_ip src = ip("192.0.2.1"), dst = ip("198.51.100.7");
	uint8_t buf[64];

	(void)state;
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &src, 53, &dst, 5353,
					  (const uint8_t *)"xyz", 3, 7, 0xbeef),
			 31);
	assert_true(ref_checksums_ok(buf, 31));
	assert_int_equal(buf[1], 0);
	assert_int_equal(be16(buf + 4), 0xbeef);
	assert_int_equal(be16(buf + 6), 0);
	assert_int_equal(buf[8], 7);
	assert_int_equal(be16(buf + 20), 53);
	assert_int_equal(be16(buf + 22), 5353);
	assert_int_equal(be16(buf + 24), 11);
	assert_memory_equal(buf + 28, "xyz", 3);
}

/* Pick a 2-byte payload that makes the computed checksum 0: it must go out as ffff. */
static void build_udp_sends_a_computed_zero_checksum_as_ffff(void **state)
{
	static const char *const addrs[][2] = {{"10.0.0.1", "10.0.0.2"}, {"fd00::1", "fd00::2"}};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct cf_ip src = ip(addrs[i][0]), dst = ip(addrs[i][1]);
		size_t hl = src.family == AF_INET ? 20 : 40, n = hl + 10;
		uint8_t buf[64], w[2] = {0, 0};
		uint16_t s;

		assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &src, 1, &dst, 2, w, 2, 64, 0),
				 n);
		buf[hl + 6] = 0;
		buf[hl + 7] = 0;
		s = ref_sum16(buf + hl, 10, ref_pseudo(buf, n));
		w[0] = (uint8_t)((0xffff - s) >> 8);
		w[1] = (uint8_t)(0xffff - s);
		assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &src, 1, &dst, 2, w, 2, 64, 0),
				 n);
		assert_int_equal(be16(buf + hl + 6), 0xffff);
		assert_true(ref_checksums_ok(buf, n));
	}
}

static void build_udp_v4_takes_65507_bytes_and_refuses_65508(void **state)
{
	struct cf_ip src = ip("10.0.0.1"), dst = ip("10.0.0.2");
	uint8_t *data = malloc(65600), *buf = malloc(65600);

	(void)state;
	assert_non_null(data);
	assert_non_null(buf);
	fill(data, NULL, 0, 65600, 3);
	assert_int_equal(cf_pkt_build_udp(buf, 65600, &src, 1, &dst, 2, data, 65507, 64, 1), 65535);
	assert_int_equal(be16(buf + 2), 65535);
	assert_int_equal(be16(buf + 24), 65515);
	assert_memory_equal(buf + 28, data, 65507);
	assert_true(ref_checksums_ok(buf, 65535));
	assert_int_equal(cf_pkt_build_udp(buf, 65600, &src, 1, &dst, 2, data, 65508, 64, 1),
			 -EMSGSIZE);
	free(data);
	free(buf);
}

static void build_udp_v6_takes_65527_bytes_and_refuses_65528(void **state)
{
	struct cf_ip src = ip("fd00::1"), dst = ip("fd00::2");
	uint8_t *data = malloc(65600), *buf = malloc(65600);

	(void)state;
	assert_non_null(data);
	assert_non_null(buf);
	fill(data, NULL, 0, 65600, 3);
	assert_int_equal(cf_pkt_build_udp(buf, 65600, &src, 1, &dst, 2, data, 65527, 64, 0), 65575);
	assert_int_equal(be16(buf + 4), 65535);
	assert_int_equal(be16(buf + 44), 65535);
	assert_true(ref_checksums_ok(buf, 65575));
	assert_int_equal(cf_pkt_build_udp(buf, 65600, &src, 1, &dst, 2, data, 65528, 64, 0),
			 -EMSGSIZE);
	free(data);
	free(buf);
}

static void build_udp_uses_payload_already_in_place_or_overlapping(void **state)
{
	struct cf_ip src = ip("10.0.0.1"), dst = ip("10.0.0.2");
	struct cf_ip src6 = ip("fd00::1"), dst6 = ip("fd00::2");
	uint8_t buf[128];

	(void)state;
	memcpy(buf + CF_PKT_UDP4_PAYLOAD_OFF, "hello childflow", 15);
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &src, 40000, &dst, 53,
					  buf + CF_PKT_UDP4_PAYLOAD_OFF, 15, 64, 0x442e),
			 sizeof(ref_udp4));
	assert_memory_equal(buf, ref_udp4, sizeof(ref_udp4));

	memcpy(buf + 3, "hello childflow v6", 18); /* overlaps the headers to be written */
	assert_int_equal(
	    cf_pkt_build_udp(buf, sizeof(buf), &src6, 40001, &dst6, 53, buf + 3, 18, 64, 0),
	    sizeof(ref_udp6));
	assert_memory_equal(buf, ref_udp6, sizeof(ref_udp6));
	memcpy(buf + 60, "hello childflow v6", 18); /* overlaps its own destination */
	assert_int_equal(
	    cf_pkt_build_udp(buf, sizeof(buf), &src6, 40001, &dst6, 53, buf + 60, 18, 64, 0),
	    sizeof(ref_udp6));
	assert_memory_equal(buf, ref_udp6, sizeof(ref_udp6));
}

static void build_udp_rejects_bad_families_and_missing_payload(void **state)
{
	struct cf_ip v4 = ip("10.0.0.1"), v6 = ip("fd00::1"), none = {0};
	uint8_t buf[64];

	(void)state;
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &v4, 1, &v6, 2, buf, 0, 64, 0),
			 -EINVAL);
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &v6, 1, &v4, 2, buf, 0, 64, 0),
			 -EINVAL);
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &none, 1, &none, 2, buf, 0, 64, 0),
			 -EINVAL);
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &v4, 1, &v4, 2, NULL, 1, 64, 0),
			 -EINVAL);
	assert_int_equal(cf_pkt_build_udp(buf, sizeof(buf), &v4, 1, &v4, 2, NULL, 0, 64, 0), 28);
	assert_true(ref_checksums_ok(buf, 28));
}

static void build_udp_needs_room_for_the_whole_packet(void **state)
{
	struct cf_ip a4 = ip("10.0.0.1"), b4 = ip("10.0.0.2"), a6 = ip("fd00::1"),
		     b6 = ip("fd00::2");
	const uint8_t *d = (const uint8_t *)"hello childflow v6";
	uint8_t buf[128];

	(void)state;
	for (size_t cap = 0; cap < 66; cap++) {
		memset(buf, SENTINEL, sizeof(buf));
		if (cap < 43)
			assert_int_equal(cf_pkt_build_udp(buf, cap, &a4, 1, &b4, 2, d, 15, 64, 0),
					 -ENOSPC);
		assert_int_equal(cf_pkt_build_udp(buf, cap, &a6, 1, &b6, 2, d, 18, 64, 0), -ENOSPC);
		assert_true(all_bytes_are(buf, sizeof(buf), SENTINEL));
	}
	assert_int_equal(cf_pkt_build_udp(buf, 43, &a4, 1, &b4, 2, d, 15, 64, 0), 43);
	assert_int_equal(cf_pkt_build_udp(buf, 66, &a6, 1, &b6, 2, d, 18, 64, 0), 66);
}

static void build_icmp_echo_limits_errors_and_in_place_data(void **state)
{
	struct cf_ip a4 = ip("10.0.0.1"), b4 = ip("10.0.0.2"), a6 = ip("fd00::1"),
		     b6 = ip("fd00::2");
	uint8_t *big = calloc(1, 65600), buf[128];

	(void)state;
	assert_non_null(big);
	assert_int_equal(cf_pkt_build_icmp_echo(big, 65600, &a4, &b4, true, 1, 2, big, 65507, 64),
			 65535);
	assert_true(ref_checksums_ok(big, 65535));
	assert_int_equal(cf_pkt_build_icmp_echo(big, 65600, &a4, &b4, true, 1, 2, big, 65508, 64),
			 -EMSGSIZE);
	assert_int_equal(cf_pkt_build_icmp_echo(big, 65600, &a6, &b6, true, 1, 2, big, 65527, 64),
			 65575);
	assert_true(ref_checksums_ok(big, 65575));
	assert_int_equal(cf_pkt_build_icmp_echo(big, 65600, &a6, &b6, true, 1, 2, big, 65528, 64),
			 -EMSGSIZE);
	free(big);

	assert_int_equal(
	    cf_pkt_build_icmp_echo(buf, sizeof(buf), &a4, &b6, true, 1, 2, NULL, 0, 64), -EINVAL);
	assert_int_equal(
	    cf_pkt_build_icmp_echo(buf, sizeof(buf), &a4, &b4, true, 1, 2, NULL, 5, 64), -EINVAL);
	assert_int_equal(
	    cf_pkt_build_icmp_echo(buf, sizeof(buf), &a6, &b6, false, 1, 2, NULL, 0, 64), 48);
	assert_true(ref_checksums_ok(buf, 48));
	assert_int_equal(buf[40], 128);

	for (size_t cap = 0; cap < 65; cap++) {
		memset(buf, SENTINEL, sizeof(buf));
		if (cap < 48)
			assert_int_equal(
			    cf_pkt_build_icmp_echo(buf, cap, &a4, &b4, true, 0x7906, 7,
						   (const uint8_t *)"ping data 0123456789", 20, 64),
			    -ENOSPC);
		assert_int_equal(cf_pkt_build_icmp_echo(buf, cap, &a6, &b6, false, 0x7907, 9,
							(const uint8_t *)"ping6 data abcdef", 17,
							64),
				 -ENOSPC);
		assert_true(all_bytes_are(buf, sizeof(buf), SENTINEL));
	}

	memcpy(buf + CF_PKT_ICMP6_DATA_OFF, "ping6 data abcdef", 17);
	assert_int_equal(cf_pkt_build_icmp_echo(buf, 65, &a6, &b6, false, 0x7907, 9,
						buf + CF_PKT_ICMP6_DATA_OFF, 17, 64),
			 65);
	assert_memory_equal(buf, ref_icmp6_echo_request, 65);
}

static void built_packets_parse_back_to_what_was_asked(void **state)
{
	struct cf_ip a = ip("2001:db8::7"), b = ip("2001:db8::8");
	uint8_t buf[128];
	struct cf_pkt p;
	ssize_t n;

	(void)state;
	n = cf_pkt_build_udp(buf, sizeof(buf), &a, 5000, &b, 6000, (const uint8_t *)"q", 1, 9, 0);
	assert_int_equal(n, 49);
	p = parse_ok(buf, (size_t)n);
	assert_ip(&p.src, "2001:db8::7");
	assert_ip(&p.dst, "2001:db8::8");
	assert_int_equal(p.ttl, 9);
	assert_int_equal(p.sport, 5000);
	assert_int_equal(p.dport, 6000);
	assert_int_equal(p.payload_len, 1);
}

/* ---- cf_pkt_build_tcp ---- */

static struct cf_pkt_tcp_seg tcp_seg(const struct cf_ip *src, const struct cf_ip *dst)
{
	return (struct cf_pkt_tcp_seg){
	    .src = src,
	    .dst = dst,
	    .sport = 1000,
	    .dport = 2000,
	    .seq = 1,
	    .ack = 2,
	    .flags = TH_ACK,
	    .window = 65535,
	    .ttl = 64,
	};
}

/* The kernel's SYNs carry MSS, SACK-permitted, timestamps and window scale: the same bytes. */
static void build_tcp_matches_kernel_syns_with_options(void **state)
{
	struct cf_ip a4 = ip("10.0.0.1"), b4 = ip("10.0.0.2");
	struct cf_ip a6 = ip("fd00::1"), b6 = ip("fd00::2");
	struct cf_pkt_tcp_seg s = tcp_seg(&a4, &b4);
	uint8_t buf[128];

	(void)state;
	s.sport = 0xb560;
	s.dport = 80;
	s.seq = 0x762da54b;
	s.ack = 0;
	s.flags = TH_SYN;
	s.window = 0xfbe0;
	s.opts = ref_tcp4_syn + 40;
	s.opts_len = 20;
	s.ip_id = 0x74ba;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), sizeof(ref_tcp4_syn));
	assert_memory_equal(buf, ref_tcp4_syn, sizeof(ref_tcp4_syn));

	s = tcp_seg(&a6, &b6);
	s.sport = 0xdbdc;
	s.dport = 80;
	s.seq = 0x35e2be0a;
	s.ack = 0;
	s.flags = TH_SYN;
	s.window = 0xfc94;
	s.opts = ref_tcp6_syn + 60;
	s.opts_len = 20;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), sizeof(ref_tcp6_syn));
	assert_memory_equal(buf, ref_tcp6_syn, sizeof(ref_tcp6_syn));
}

/* The kernel's RST|ACK (id 0, DF, window 0) and a SYN with 20 bytes whose checksum Python made. */
static void build_tcp_matches_kernel_rst_and_segment_with_data(void **state)
{
	struct cf_ip a4 = ip("10.0.0.1"), b4 = ip("10.0.0.2");
	struct cf_ip a6 = ip("fd00::1"), b6 = ip("fd00::2");
	struct cf_pkt_tcp_seg s = tcp_seg(&a4, &b4);
	uint8_t buf[128];

	(void)state;
	s.sport = 81;
	s.dport = 0x80e8;
	s.seq = 0;
	s.ack = 0x11223345;
	s.flags = TH_RST | TH_ACK;
	s.window = 0;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), sizeof(ref_rst4_syn_kernel));
	assert_memory_equal(buf, ref_rst4_syn_kernel, sizeof(ref_rst4_syn_kernel));

	s.src = &a6;
	s.dst = &b6;
	s.dport = 0x80eb;
	s.ack = 0x55667789;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), sizeof(ref_rst6_syn_kernel));
	assert_memory_equal(buf, ref_rst6_syn_kernel, sizeof(ref_rst6_syn_kernel));

	s = tcp_seg(&b4, &a4);
	s.sport = 0x80e9;
	s.dport = 0x51;
	s.seq = 0xfffffff0;
	s.ack = 0;
	s.flags = TH_SYN;
	s.window = 0xfaf0;
	s.ip_id = 0x1234;
	s.payload = (const uint8_t *)"0123456789abcdefghij";
	s.len = 20;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), sizeof(ref_rst4_syn_data_in));
	assert_memory_equal(buf, ref_rst4_syn_data_in, sizeof(ref_rst4_syn_data_in));
}

static void build_tcp_parses_back_with_valid_checksums(void **state)
{
	static const uint8_t opts[4] = {1, 3, 3, 7}; /* NOP, window scale 7 */
	struct cf_ip a = ip("2001:db8::1"), b = ip("2001:db8::2");
	struct cf_ip a4 = ip("192.0.2.1"), b4 = ip("198.51.100.2");
	struct cf_pkt_tcp_seg s = tcp_seg(&a, &b);
	uint8_t data[1001], buf[1200];
	struct cf_pkt p;
	ssize_t n;

	(void)state;
	fill(data, NULL, 0, sizeof(data), 7);
	s.seq = 0xfffffffe;
	s.ack = 0x12345678;
	s.flags = TH_ACK | TH_PUSH;
	s.payload = data;
	s.len = sizeof(data); /* odd: the checksum pads the last byte */
	s.opts = opts;
	s.opts_len = sizeof(opts);
	n = cf_pkt_build_tcp(buf, sizeof(buf), &s);
	assert_int_equal(n, 40 + 24 + 1001);
	assert_true(ref_checksums_ok(buf, (size_t)n));
	p = parse_ok(buf, (size_t)n);
	assert_ip(&p.src, "2001:db8::1");
	assert_ip(&p.dst, "2001:db8::2");
	assert_int_equal(p.proto, IPPROTO_TCP);
	assert_int_equal(p.sport, 1000);
	assert_int_equal(p.dport, 2000);
	assert_int_equal(p.tcp_seq, 0xfffffffe);
	assert_int_equal(p.tcp_ack, 0x12345678);
	assert_int_equal(p.tcp_flags, TH_ACK | TH_PUSH);
	assert_int_equal(p.payload_len, sizeof(data));
	assert_memory_equal(p.payload, data, sizeof(data));
	assert_memory_equal(buf + 60, opts, sizeof(opts));
	assert_int_equal(be16(buf + 60 - 6), 65535); /* window */

	s = tcp_seg(&a4, &b4);
	s.flags = TH_FIN | TH_ACK;
	s.ttl = 3;
	s.ip_id = 0xbeef;
	n = cf_pkt_build_tcp(buf, sizeof(buf), &s);
	assert_int_equal(n, 40);
	assert_true(ref_checksums_ok(buf, (size_t)n));
	assert_int_equal(be16(buf + 4), 0xbeef);
	assert_int_equal(be16(buf + 6), 0x4000); /* DF */
	assert_int_equal(buf[8], 3);
	p = parse_ok(buf, (size_t)n);
	assert_int_equal(p.tcp_flags, TH_FIN | TH_ACK);
	assert_int_equal(p.payload_len, 0);
}

static void build_tcp_uses_payload_already_in_place_or_overlapping(void **state)
{
	struct cf_ip a = ip("10.0.0.1"), b = ip("10.0.0.2");
	struct cf_ip a6 = ip("fd00::1"), b6 = ip("fd00::2");
	struct cf_pkt_tcp_seg s = tcp_seg(&a, &b);
	uint8_t want[128], buf[128];
	ssize_t n;

	(void)state;
	s.payload = (const uint8_t *)"in place, no copy";
	s.len = 17;
	n = cf_pkt_build_tcp(want, sizeof(want), &s);
	assert_int_equal(n, 57);
	memcpy(buf + CF_PKT_TCP4_PAYLOAD_OFF, "in place, no copy", 17);
	s.payload = buf + CF_PKT_TCP4_PAYLOAD_OFF;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), n);
	assert_memory_equal(buf, want, (size_t)n);
	/* overlapping the header area: moved first */
	memcpy(buf + 3, "in place, no copy", 17);
	s.payload = buf + 3;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), n);
	assert_memory_equal(buf, want, (size_t)n);

	s.src = &a6;
	s.dst = &b6;
	s.payload = (const uint8_t *)"v6 data";
	s.len = 7;
	n = cf_pkt_build_tcp(want, sizeof(want), &s);
	assert_int_equal(n, 67);
	memcpy(buf + CF_PKT_TCP6_PAYLOAD_OFF, "v6 data", 7);
	s.payload = buf + CF_PKT_TCP6_PAYLOAD_OFF;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), n);
	assert_memory_equal(buf, want, (size_t)n);
}

static void build_tcp_limits_data_to_one_packet(void **state)
{
	static const uint8_t opts[8] = {1, 1, 1, 1, 1, 1, 1, 1};
	struct cf_ip a = ip("10.0.0.1"), b = ip("10.0.0.2");
	struct cf_ip a6 = ip("fd00::1"), b6 = ip("fd00::2");
	struct cf_pkt_tcp_seg s = tcp_seg(&a, &b);
	uint8_t *buf = malloc(70000), *data = calloc(1, 70000);

	(void)state;
	assert_non_null(buf);
	assert_non_null(data);
	s.payload = data;
	s.len = 65495; /* 65535 - 20 - 20 */
	assert_int_equal(cf_pkt_build_tcp(buf, 70000, &s), 65535);
	assert_true(ref_checksums_ok(buf, 65535));
	s.len = 65496;
	assert_int_equal(cf_pkt_build_tcp(buf, 70000, &s), -EMSGSIZE);
	s.len = 65487;
	s.opts = opts;
	s.opts_len = sizeof(opts);
	assert_int_equal(cf_pkt_build_tcp(buf, 70000, &s), 65535);
	s.len = 65488;
	assert_int_equal(cf_pkt_build_tcp(buf, 70000, &s), -EMSGSIZE);

	s = tcp_seg(&a6, &b6);
	s.payload = data;
	s.len = 65515; /* payload length 65535 - 20 */
	assert_int_equal(cf_pkt_build_tcp(buf, 70000, &s), 40 + 65535);
	assert_true(ref_checksums_ok(buf, 40 + 65535));
	s.len = 65516;
	assert_int_equal(cf_pkt_build_tcp(buf, 70000, &s), -EMSGSIZE);
	free(buf);
	free(data);
}

static void build_tcp_rejects_bad_families_options_and_missing_data(void **state)
{
	static const uint8_t opts[44] = {0};
	struct cf_ip a = ip("10.0.0.1"), b6 = ip("fd00::2"), none = {0};
	struct cf_pkt_tcp_seg s = tcp_seg(&a, &b6);
	uint8_t buf[128];

	(void)state;
	memset(buf, SENTINEL, sizeof(buf));
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), -EINVAL);
	s.src = &none;
	s.dst = &none;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), -EINVAL);
	s = tcp_seg(&a, &a);
	s.len = 1; /* no data pointer */
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), -EINVAL);
	s.len = 0;
	s.opts = opts;
	s.opts_len = 3; /* not a multiple of 4 */
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), -EINVAL);
	s.opts_len = 44; /* over 40 */
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), -EINVAL);
	s.opts = NULL;
	s.opts_len = 4;
	assert_int_equal(cf_pkt_build_tcp(buf, sizeof(buf), &s), -EINVAL);
	assert_true(all_bytes_are(buf, sizeof(buf), SENTINEL));
}

static void build_tcp_needs_room_for_the_whole_packet(void **state)
{
	struct cf_ip a = ip("10.0.0.1"), b = ip("10.0.0.2");
	struct cf_ip a6 = ip("fd00::1"), b6 = ip("fd00::2");
	struct cf_pkt_tcp_seg s = tcp_seg(&a, &b);
	uint8_t buf[128];

	(void)state;
	s.payload = (const uint8_t *)"abc";
	s.len = 3;
	memset(buf, SENTINEL, sizeof(buf));
	assert_int_equal(cf_pkt_build_tcp(buf, 42, &s), -ENOSPC);
	assert_true(all_bytes_are(buf, sizeof(buf), SENTINEL));
	assert_int_equal(cf_pkt_build_tcp(buf, 43, &s), 43);
	s.src = &a6;
	s.dst = &b6;
	memset(buf, SENTINEL, sizeof(buf));
	assert_int_equal(cf_pkt_build_tcp(buf, 62, &s), -ENOSPC);
	assert_true(all_bytes_are(buf, sizeof(buf), SENTINEL));
	assert_int_equal(cf_pkt_build_tcp(buf, 63, &s), 63);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(csum_matches_rfc1071_example),
	    cmocka_unit_test(csum_partial_matches_naive_sum_for_every_length_alignment_and_start),
	    cmocka_unit_test(csum_partial_carries_over_long_runs_of_ones),
	    cmocka_unit_test(csum_partial_chains_over_even_pieces),
	    cmocka_unit_test(csum_fold_complements_and_folds_carries),
	    cmocka_unit_test(csum_verifies_every_kernel_packet),
	    cmocka_unit_test(parse_reads_kernel_tcp4_syn),
	    cmocka_unit_test(parse_reads_kernel_tcp6_syn),
	    cmocka_unit_test(parse_reads_tcp_syn_with_data),
	    cmocka_unit_test(parse_reads_tcp_ack_number_and_flags),
	    cmocka_unit_test(parse_reads_kernel_udp4),
	    cmocka_unit_test(parse_reads_kernel_udp6),
	    cmocka_unit_test(parse_reads_kernel_icmp4_echo_request_and_reply),
	    cmocka_unit_test(parse_reads_kernel_icmp6_echo_request_and_reply),
	    cmocka_unit_test(parse_icmp_error_points_payload_at_quote_without_echo_fields),
	    cmocka_unit_test(parse_ipv4_first_fragment_reads_udp_header),
	    cmocka_unit_test(parse_ipv6_records_only_the_first_of_two_fragment_headers),
	    cmocka_unit_test(parse_leaves_fragment_fields_zero_for_whole_packets),
	    cmocka_unit_test(parse_quote_reads_the_start_of_a_big_udp_datagram),
	    cmocka_unit_test(parse_quote_of_a_whole_packet_is_parse),
	    cmocka_unit_test(parse_quote_still_needs_the_ip_and_l4_headers),
	    cmocka_unit_test(build_icmp_error_from_a_kept_start_quotes_the_original_bytes),
	    cmocka_unit_test(
		frag6_splits_the_largest_udp_datagram_as_the_kernel_does_for_mtu_65535),
	    cmocka_unit_test(frag6_uses_multiples_of_8_that_fit_the_mtu),
	    cmocka_unit_test(frag6_refuses_what_it_cannot_split),
	    cmocka_unit_test(frag6_fragments_parse_as_the_kernels_do),
	    cmocka_unit_test(parse_ipv4_later_fragment_leaves_l4_fields_zero),
	    cmocka_unit_test(parse_ipv6_walks_hop_by_hop_and_first_fragment_header),
	    cmocka_unit_test(parse_ipv6_later_fragment_leaves_l4_fields_zero),
	    cmocka_unit_test(parse_ipv6_walks_destination_options_and_routing),
	    cmocka_unit_test(parse_skips_ipv4_options),
	    cmocka_unit_test(parse_ignores_bytes_past_ip_total_length),
	    cmocka_unit_test(parse_trims_udp_payload_to_udp_length),
	    cmocka_unit_test(parse_unsupported_protocol_fills_l3_and_l4_only),
	    cmocka_unit_test(parse_icmp_of_the_other_family_is_unsupported),
	    cmocka_unit_test(parse_ipv6_no_next_header_is_unsupported),
	    cmocka_unit_test(parse_later_fragment_of_unsupported_protocol_is_unsupported),
	    cmocka_unit_test(parse_rejects_empty_buffer),
	    cmocka_unit_test(parse_rejects_truncated_ipv4_header),
	    cmocka_unit_test(parse_rejects_ipv4_ihl_below_5),
	    cmocka_unit_test(parse_rejects_ipv4_header_longer_than_total_length),
	    cmocka_unit_test(parse_rejects_ipv4_total_length_past_buffer),
	    cmocka_unit_test(parse_rejects_ipv4_total_length_below_header),
	    cmocka_unit_test(parse_rejects_ip_versions_other_than_4_and_6),
	    cmocka_unit_test(parse_rejects_truncated_ipv6_header),
	    cmocka_unit_test(parse_rejects_ipv6_payload_length_past_buffer),
	    cmocka_unit_test(parse_rejects_truncated_extension_header_chain),
	    cmocka_unit_test(parse_rejects_truncated_routing_and_destination_options),
	    cmocka_unit_test(parse_rejects_hop_by_hop_after_first_header),
	    cmocka_unit_test(parse_rejects_bad_tcp_data_offset),
	    cmocka_unit_test(parse_rejects_truncated_tcp_header),
	    cmocka_unit_test(parse_rejects_bad_udp_length),
	    cmocka_unit_test(parse_rejects_truncated_udp_header),
	    cmocka_unit_test(parse_rejects_truncated_icmp_header),
	    cmocka_unit_test(parse_rejects_first_fragment_too_short_for_l4_header),
	    cmocka_unit_test(build_udp4_matches_kernel_bytes),
	    cmocka_unit_test(build_udp6_matches_kernel_bytes),
	    cmocka_unit_test(build_icmp6_echo_request_and_reply_match_kernel_bytes),
	    cmocka_unit_test(build_icmp4_echo_request_and_reply_match_kernel_bytes_but_ip_id),
	    cmocka_unit_test(build_tcp_rst_matches_kernel_bytes),
	    cmocka_unit_test(build_icmp_port_unreachable_matches_kernel_bytes_but_ip_id),
	    cmocka_unit_test(build_icmp_error_quotes_like_kernel_up_to_576_and_1280_bytes),
	    cmocka_unit_test(build_tcp_rst_swaps_addresses_and_ports_and_acks_the_syn),
	    cmocka_unit_test(build_tcp_rst_counts_syn_and_fin_in_ack),
	    cmocka_unit_test(build_tcp_rst_keeps_dscp_and_clears_ecn),
	    cmocka_unit_test(build_tcp_rst_rejects_what_is_not_a_whole_tcp_segment),
	    cmocka_unit_test(build_tcp_rst_needs_40_or_60_bytes),
	    cmocka_unit_test(build_tcp_rst_in_place_over_the_syn),
	    cmocka_unit_test(build_icmp_error_quotes_at_most_576_bytes_v4_and_1280_v6),
	    cmocka_unit_test(build_icmp_error_puts_mtu_and_pointer_where_the_rfcs_say),
	    cmocka_unit_test(build_icmp_error_rejects_bad_family_and_informational_v6_type),
	    cmocka_unit_test(build_icmp_error_never_answers_an_icmp_error),
	    cmocka_unit_test(build_icmp_error_answers_first_fragments_only_v4),
	    cmocka_unit_test(build_icmp_error_refuses_unspecified_and_multicast_addresses),
	    cmocka_unit_test(build_icmp_error_needs_room_for_the_whole_packet),
	    cmocka_unit_test(build_icmp_error_in_place_over_the_original),
	    cmocka_unit_test(build_udp_sets_ip_id_ttl_and_clears_df),
	    cmocka_unit_test(build_udp_sends_a_computed_zero_checksum_as_ffff),
	    cmocka_unit_test(build_udp_v4_takes_65507_bytes_and_refuses_65508),
	    cmocka_unit_test(build_udp_v6_takes_65527_bytes_and_refuses_65528),
	    cmocka_unit_test(build_udp_uses_payload_already_in_place_or_overlapping),
	    cmocka_unit_test(build_udp_rejects_bad_families_and_missing_payload),
	    cmocka_unit_test(build_udp_needs_room_for_the_whole_packet),
	    cmocka_unit_test(build_icmp_echo_limits_errors_and_in_place_data),
	    cmocka_unit_test(built_packets_parse_back_to_what_was_asked),
	    cmocka_unit_test(build_tcp_matches_kernel_syns_with_options),
	    cmocka_unit_test(build_tcp_matches_kernel_rst_and_segment_with_data),
	    cmocka_unit_test(build_tcp_parses_back_with_valid_checksums),
	    cmocka_unit_test(build_tcp_uses_payload_already_in_place_or_overlapping),
	    cmocka_unit_test(build_tcp_limits_data_to_one_packet),
	    cmocka_unit_test(build_tcp_rejects_bad_families_options_and_missing_data),
	    cmocka_unit_test(build_tcp_needs_room_for_the_whole_packet),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
