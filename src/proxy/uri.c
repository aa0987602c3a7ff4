// SPDX-License-Identifier: MIT
/*
 * Proxy URI parsing and formatting.
 *
 * The userinfo is everything between "SCHEME://" and the LAST '@': a password
 * typed with a raw '@', '/' or '#' in it therefore still lands in the password
 * and never in the host, port or path that error messages quote. Every
 * message quotes the URI through mask_uri(), which prints the user name but
 * replaces the password with "***".
 */
#include "proxy/uri.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/addr.h"
#include "util/cleanup.h"

#define SOCKS5_MAX_CRED 255 /* RFC 1929: ULEN and PLEN are one byte */

static const struct {
	const char *name;
	enum cf_proxy_scheme scheme;
	uint16_t port;
} schemes[] = {
    {"http", CF_PROXY_HTTP, CF_PROXY_HTTP_PORT},
    {"https", CF_PROXY_HTTPS, CF_PROXY_HTTPS_PORT},
    {"socks5", CF_PROXY_SOCKS5, CF_PROXY_SOCKS5_PORT},
};

const char *cf_proxy_scheme_name(enum cf_proxy_scheme s)
{
	for (size_t i = 0; i < CF_ARRAY_SIZE(schemes); i++)
		if (schemes[i].scheme == s)
			return schemes[i].name;
	return "none";
}

/* Length of a leading "SCHEME://" scheme (RFC 3986 syntax), or 0 when there is none. */
static size_t scheme_len(const char *uri)
{
	size_t n;

	if (!((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z')))
		return 0;
	n = strspn(uri, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
	return strncmp(uri + n, "://", 3) == 0 ? n : 0;
}

/* Where the authority starts: after "SCHEME://" if there is one, else at the start. */
static const char *authority_start(const char *uri)
{
	size_t n = scheme_len(uri);

	return n ? uri + n + 3 : uri;
}

/* Write @uri into @buf for a message: password replaced, control bytes as '?'. */
static void mask_uri(const char *uri, char *buf, size_t len)
{
	const char *auth = authority_start(uri);
	const char *at = strrchr(auth, '@');
	const char *colon = NULL;
	size_t pos = 0;

	if (at)
		colon = memchr(auth, ':', (size_t)(at - auth));
	for (const char *p = uri; *p && pos + 1 < len; p++) {
		if (colon && p == colon + 1) {
			for (const char *m = "***"; *m && pos + 1 < len; m++)
				buf[pos++] = *m;
			p = at - 1;
			colon = NULL; /* once: an empty password puts @at right after @colon */
			continue;
		}
		buf[pos++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
	}
	if (len)
		buf[pos] = '\0';
}

__attribute__((format(printf, 4, 5))) static int fail(const char *uri, char *err, size_t errlen,
						      const char *fmt, ...)
{
	char masked[512], why[256];
	va_list ap;

	if (errlen == 0)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	mask_uri(uri, masked, sizeof(masked));
	snprintf(err, errlen, "invalid proxy URI '%s': %s", masked, why);
	return -EINVAL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode @n bytes of @s into a new string. Return 0, -EINVAL or -ENOMEM. */
static int pct_decode(const char *s, size_t n, char **out)
{
	char *d = malloc(n + 1);
	size_t j = 0;

	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int hi = -1, lo = -1;

		if (s[i] != '%') {
			d[j++] = s[i];
			continue;
		}
		if (i + 2 < n) {
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
		}
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			explicit_bzero(d, j);
			free(d);
			return -EINVAL;
		}
		d[j++] = (char)(hi << 4 | lo);
		i += 2;
	}
	d[j] = '\0';
	*out = d;
	return 0;
}

/* Split and decode the userinfo of @n bytes at @ui into out->user / out->password. */
static int parse_userinfo(const char *uri, const char *ui, size_t n, struct cf_proxy *out,
			  char *err, size_t errlen)
{
	const char *colon = memchr(ui, ':', n);
	size_t ulen = colon ? (size_t)(colon - ui) : n;
	int r;

	if (ulen == 0)
		return fail(uri, err, errlen, "empty user name before '@'");
	r = pct_decode(ui, ulen, &out->user);
	if (r == -EINVAL)
		return fail(uri, err, errlen, "bad percent-encoding in the user name");
	if (r < 0)
		return r;
	if (out->scheme == CF_PROXY_SOCKS5 && strlen(out->user) > SOCKS5_MAX_CRED)
		return fail(uri, err, errlen, "socks5 user names are limited to %d bytes",
			    SOCKS5_MAX_CRED);
	if (!colon)
		return 0;
	r = pct_decode(colon + 1, n - ulen - 1, &out->password);
	if (r == -EINVAL)
		return fail(uri, err, errlen, "bad percent-encoding in the password");
	if (r < 0)
		return r;
	if (out->scheme == CF_PROXY_SOCKS5 && strlen(out->password) > SOCKS5_MAX_CRED)
		return fail(uri, err, errlen, "socks5 passwords are limited to %d bytes",
			    SOCKS5_MAX_CRED);
	return 0;
}

/* Whether @h (NUL-terminated) is a valid DNS host name, one trailing dot allowed. */
static bool hostname_ok(const char *h)
{
	size_t len = strlen(h), label = 0;

	if (len > 0 && h[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if ((label == 0 && c == '-') || ++label > 63)
			return false;
	}
	return h[len - 1] != '-';
}

/* Whether @h looks like an attempt at an IPv4 literal (digits and dots only). */
static bool looks_numeric(const char *h)
{
	return h[strspn(h, "0123456789.")] == '\0';
}

/* Parse the host of @hp (bracketed IPv6, IPv4 or name); *used gets its length. */
static int parse_host(const char *uri, const char *hp, size_t *used, struct cf_proxy *out,
		      char *err, size_t errlen)
{
	cleanup_free char *host = NULL;
	struct cf_ip ip;
	size_t n;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');

		if (!close)
			return fail(uri, err, errlen, "missing ']' after the IPv6 address");
		host = strndup(hp + 1, (size_t)(close - hp - 1));
		if (!host)
			return -ENOMEM;
		if (cf_ip_parse(host, &ip) < 0 || ip.family != AF_INET6)
			return fail(uri, err, errlen, "invalid IPv6 address '%s'", host);
		*used = (size_t)(close - hp) + 1;
	} else {
		n = strcspn(hp, ":/?#");
		if (hp[n] == ':' && memchr(hp + n + 1, ':', strcspn(hp + n + 1, "/?#")))
			return fail(uri, err, errlen, "an IPv6 address must be in brackets");
		host = strndup(hp, n);
		if (!host)
			return -ENOMEM;
		if (n == 0)
			return fail(uri, err, errlen, "missing host");
		if (looks_numeric(host) ? cf_ip_parse(host, &ip) < 0 : !hostname_ok(host))
			return fail(uri, err, errlen, "invalid host '%s'", host);
		*used = n;
	}
	out->host = take_ptr(&host);
	return 0;
}

/* Parse ":PORT" (or nothing, for the scheme's default) and what may follow it. */
static int parse_port_tail(const char *uri, const char *p, uint16_t def, struct cf_proxy *out,
			   char *err, size_t errlen)
{
	unsigned long v = def;

	if (*p == ':') {
		size_t n = strspn(++p, "0123456789");

		if (n == 0 && strcspn(p, "/?#") == 0)
			return fail(uri, err, errlen, "missing port after ':'");
		if (n == 0 || n > 5 || (p[n] && !strchr("/?#", p[n])))
			return fail(uri, err, errlen, "invalid port '%.*s'", (int)strcspn(p, "/?#"),
				    p);
		v = strtoul(p, NULL, 10);
		if (v == 0 || v > 65535)
			return fail(uri, err, errlen, "port %lu out of range 1-65535", v);
		p += n;
	}
	if (*p && !strchr("/?#", *p))
		return fail(uri, err, errlen, "unexpected '%c' after the host", *p);
	if (*p == '?')
		return fail(uri, err, errlen, "a proxy URI takes no query string");
	if (*p == '#')
		return fail(uri, err, errlen, "a proxy URI takes no fragment");
	if (*p && strcmp(p, "/") != 0)
		return fail(uri, err, errlen, "a proxy URI takes no path ('%s')", p);
	out->port = (uint16_t)v;
	return 0;
}

static int parse_scheme(const char *uri, const char *sep, struct cf_proxy *out, uint16_t *def,
			char *err, size_t errlen)
{
	size_t n = (size_t)(sep - uri);

	for (size_t i = 0; i < CF_ARRAY_SIZE(schemes); i++) {
		if (strlen(schemes[i].name) == n && strncasecmp(uri, schemes[i].name, n) == 0) {
			out->scheme = schemes[i].scheme;
			*def = schemes[i].port;
			return 0;
		}
	}
	return fail(uri, err, errlen,
		    "unsupported scheme '%.*s' (use http://, https:// or socks5://)",
		    (int)(n > 32 ? 32 : n), uri);
}

static int parse(const char *uri, struct cf_proxy *out, char *err, size_t errlen)
{
	const char *sep, *auth, *at;
	size_t used = 0;
	uint16_t def = 0;
	int r;

	for (const char *p = uri; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return fail(uri, err, errlen, "contains a space or control character");
	if (scheme_len(uri) == 0)
		return fail(uri, err, errlen,
			    "missing scheme (use http://, https:// or socks5://)");
	sep = uri + scheme_len(uri);
	r = parse_scheme(uri, sep, out, &def, err, errlen);
	if (r < 0)
		return r;
	auth = sep + 3;
	at = strrchr(auth, '@');
	if (at) {
		r = parse_userinfo(uri, auth, (size_t)(at - auth), out, err, errlen);
		if (r < 0)
			return r;
		auth = at + 1;
	}
	r = parse_host(uri, auth, &used, out, err, errlen);
	if (r < 0)
		return r;
	return parse_port_tail(uri, auth + used, def, out, err, errlen);
}

int cf_proxy_parse(const char *uri, struct cf_proxy *out, char *err, size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	out->scheme = CF_PROXY_NONE;
	if (!uri || !*uri) {
		if (errlen)
			snprintf(err, errlen, "empty proxy URI");
		return -EINVAL;
	}
	r = parse(uri, out, err, errlen);
	if (r < 0) {
		if (r == -ENOMEM && errlen)
			snprintf(err, errlen, "out of memory");
		cf_proxy_free(out);
	}
	return r;
}

/* A bounded string builder that remembers overflow. */
struct sbuf {
	char *buf;
	size_t len, pos;
	bool full;
};

static void sb_putc(struct sbuf *sb, char c)
{
	if (sb->pos + 1 >= sb->len) {
		sb->full = true;
		return;
	}
	sb->buf[sb->pos++] = c;
	sb->buf[sb->pos] = '\0';
}

static void sb_puts(struct sbuf *sb, const char *s)
{
	while (*s)
		sb_putc(sb, *s++);
}

/* Append @s percent-encoded: everything but RFC 3986 "unreserved" is escaped. */
static void sb_put_encoded(struct sbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c)) {
			sb_putc(sb, (char)c);
			continue;
		}
		sb_putc(sb, '%');
		sb_putc(sb, hex[c >> 4]);
		sb_putc(sb, hex[c & 15]);
	}
}

int cf_proxy_format(const struct cf_proxy *p, bool mask_password, char *buf, size_t len)
{
	struct sbuf sb = {.buf = buf, .len = len};
	char port[8];

	if (p->scheme == CF_PROXY_NONE || !p->host)
		return -EINVAL;
	if (len == 0)
		return -ENOSPC;
	buf[0] = '\0';
	sb_puts(&sb, cf_proxy_scheme_name(p->scheme));
	sb_puts(&sb, "://");
	if (p->user || p->password) {
		sb_put_encoded(&sb, p->user ? p->user : "");
		if (p->password) {
			sb_putc(&sb, ':');
			if (mask_password)
				sb_puts(&sb, "***");
			else
				sb_put_encoded(&sb, p->password);
		}
		sb_putc(&sb, '@');
	}
	if (strchr(p->host, ':')) {
		sb_putc(&sb, '[');
		sb_puts(&sb, p->host);
		sb_putc(&sb, ']');
	} else {
		sb_puts(&sb, p->host);
	}
	snprintf(port, sizeof(port), ":%u", (unsigned int)p->port);
	sb_puts(&sb, port);
	if (sb.full) {
		explicit_bzero(buf, len);
		return -ENOSPC;
	}
	return (int)sb.pos;
}
