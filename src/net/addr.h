/* SPDX-License-Identifier: MIT */
/*
 * IP addresses and CIDR ranges, v4 and v6 in one type. Parsing is strict
 * (inet_pton, no host bits check relaxations documented per function) and
 * formatting matches what the flow log prints.
 */
#ifndef CF_NET_ADDR_H
#define CF_NET_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address. For AF_INET only the first 4 bytes of b are used. */
struct cf_ip {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t b[16];
};

struct cf_cidr {
	struct cf_ip ip; /* host bits are zero */
	uint8_t prefix;	 /* 0..32 or 0..128 */
};

/* "198.51.100.7:443" / "[2001:db8::1]:443" fits in this. */
#define CF_IP_STRLEN 46
#define CF_ADDRPORT_STRLEN (CF_IP_STRLEN + 8)

/* Parse a literal IPv4 or IPv6 address (no brackets, no zone). Return 0 or -EINVAL. */
int cf_ip_parse(const char *s, struct cf_ip *out);

/*
 * Parse "ADDR/PREFIX" or a bare address (prefix /32 or /128). Host bits set
 * below the prefix are rejected with -EINVAL (a typo, not a range). Return 0 or -EINVAL.
 */
int cf_cidr_parse(const char *s, struct cf_cidr *out);

/* Whether @ip lies in @cidr (families must match; v4-mapped forms are not unfolded here). */
bool cf_cidr_contains(const struct cf_cidr *cidr, const struct cf_ip *ip);

/* Format @ip into @buf (size >= CF_IP_STRLEN). Return buf. */
const char *cf_ip_format(const struct cf_ip *ip, char *buf, size_t len);

/* Format "ip:port" or "[ip6]:port" into @buf (size >= CF_ADDRPORT_STRLEN). Return buf. */
const char *cf_addrport_format(const struct cf_ip *ip, uint16_t port, char *buf, size_t len);

/* Format "ip/prefix" into @buf (size >= CF_IP_STRLEN + 4). Return buf. */
const char *cf_cidr_format(const struct cf_cidr *c, char *buf, size_t len);

/* Whether two addresses are equal (family and bytes). */
bool cf_ip_equal(const struct cf_ip *a, const struct cf_ip *b);

/* Fill a sockaddr (sockaddr_in or sockaddr_in6) from @ip and @port; return its length. */
socklen_t cf_ip_to_sockaddr(const struct cf_ip *ip, uint16_t port, struct sockaddr_storage *ss);

/* Read address and port from a sockaddr_in/in6. Return 0 or -EAFNOSUPPORT. */
int cf_ip_from_sockaddr(const struct sockaddr *sa, struct cf_ip *ip, uint16_t *port);

#endif
