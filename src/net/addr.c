// SPDX-License-Identifier: MIT
/*
 * IP addresses and CIDR ranges. Parsing goes through inet_pton(), which is
 * already strict (no leading zeros, no short IPv4 forms, no zone index); the
 * CIDR parser adds the prefix and refuses host bits below it, because
 * "10.0.0.1/8" is far more often a typo than a deliberate range.
 */
#include "net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static size_t ip_len(uint8_t family)
{
	return family == AF_INET ? 4 : 16;
}

int cf_ip_parse(const char *s, struct cf_ip *out)
{
	struct cf_ip ip;

	if (!s || !out)
		return -EINVAL;
	memset(&ip, 0, sizeof(ip));
	if (strchr(s, ':')) {
		if (inet_pton(AF_INET6, s, ip.b) != 1)
			return -EINVAL;
		ip.family = AF_INET6;
	} else {
		if (inet_pton(AF_INET, s, ip.b) != 1)
			return -EINVAL;
		ip.family = AF_INET;
	}
	*out = ip;
	return 0;
}

/* Parse a decimal prefix length: 1 to 3 digits, no sign, no leading zero. */
static int parse_prefix(const char *s, unsigned int max, uint8_t *out)
{
	unsigned int v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = (uint8_t)v;
	return 0;
}

/* Whether any bit of @ip below @prefix is set. */
static bool has_host_bits(const struct cf_ip *ip, unsigned int prefix)
{
	size_t len = ip_len(ip->family);

	for (size_t i = prefix / 8; i < len; i++) {
		unsigned int keep = 0;

		if (i == prefix / 8)
			keep = prefix % 8;
		if (ip->b[i] & (0xffu >> keep))
			return true;
	}
	return false;
}

int cf_cidr_parse(const char *s, struct cf_cidr *out)
{
	char addr[CF_IP_STRLEN];
	struct cf_cidr c;
	const char *slash;
	size_t alen;
	int r;

	if (!s || !out)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	r = cf_ip_parse(addr, &c.ip);
	if (r < 0)
		return r;
	if (slash) {
		r = parse_prefix(slash + 1, c.ip.family == AF_INET ? 32 : 128, &c.prefix);
		if (r < 0)
			return r;
	} else {
		c.prefix = c.ip.family == AF_INET ? 32 : 128;
	}
	if (has_host_bits(&c.ip, c.prefix))
		return -EINVAL;
	*out = c;
	return 0;
}

bool cf_cidr_contains(const struct cf_cidr *cidr, const struct cf_ip *ip)
{
	unsigned int full = cidr->prefix / 8, rest = cidr->prefix % 8;

	if (cidr->ip.family != ip->family || cidr->prefix > 8 * ip_len(ip->family))
		return false;
	if (memcmp(cidr->ip.b, ip->b, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rest));

		if ((cidr->ip.b[full] & mask) != (ip->b[full] & mask))
			return false;
	}
	return true;
}

const char *cf_ip_format(const struct cf_ip *ip, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if ((ip->family != AF_INET && ip->family != AF_INET6) ||
	    !inet_ntop(ip->family, ip->b, buf, (socklen_t)(len > 1024 ? 1024 : len)))
		snprintf(buf, len, "?");
	return buf;
}

const char *cf_addrport_format(const struct cf_ip *ip, uint16_t port, char *buf, size_t len)
{
	char a[CF_IP_STRLEN];

	if (len == 0)
		return buf;
	cf_ip_format(ip, a, sizeof(a));
	if (ip->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, (unsigned int)port);
	else
		snprintf(buf, len, "%s:%u", a, (unsigned int)port);
	return buf;
}

const char *cf_cidr_format(const struct cf_cidr *c, char *buf, size_t len)
{
	char a[CF_IP_STRLEN];

	if (len == 0)
		return buf;
	cf_ip_format(&c->ip, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, (unsigned int)c->prefix);
	return buf;
}

bool cf_ip_equal(const struct cf_ip *a, const struct cf_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, ip_len(a->family)) == 0;
}

socklen_t cf_ip_to_sockaddr(const struct cf_ip *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip->b, 4);
		return sizeof(*sin);
	}
	if (ip->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip->b, 16);
		return sizeof(*sin6);
	}
	return 0;
}

int cf_ip_from_sockaddr(const struct sockaddr *sa, struct cf_ip *ip, uint16_t *port)
{
	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		ip->family = AF_INET;
		memcpy(ip->b, &sin->sin_addr, 4);
		if (port)
			*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		ip->family = AF_INET6;
		memcpy(ip->b, &sin6->sin6_addr, 16);
		if (port)
			*port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}
