// SPDX-License-Identifier: MIT
/*
 * The name in a client's first bytes: TLS SNI or the HTTP/1 Host header.
 *
 * Written by hand: Debian has no library that reads a ClientHello short of
 * a whole TLS stack (OpenSSL and GnuTLS parse one only inside a server
 * handshake they then run), and an HTTP parser (llhttp, picohttpparser) is
 * more than finding one header in a request head. Both readers are small,
 * bounded by CF_PEEK_WINDOW, covered by tests/unit/test_peekname.c and a
 * fuzz target (tests/fuzz/fuzz_peekname.c).
 *
 * TLS (RFC 8446 4.1.2, RFC 6066 3): records of type 22 (handshake) are
 * concatenated (a ClientHello may be split across records), then the
 * ClientHello is walked: version, random, session id, cipher suites,
 * compression methods, extensions; the server_name extension (type 0)
 * gives its first host_name entry. Running out of bytes is MORE while the
 * message announced more, NONE when the message itself is inconsistent.
 */
#include "net/peekname.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define TLS_HANDSHAKE 22
#define TLS_CLIENT_HELLO 1
#define TLS_RECORD_MAX 16384
#define TLS_EXT_SERVER_NAME 0
#define HTTP_METHOD_MAX 20

const char *cf_peek_kind_name(enum cf_peek_kind kind)
{
	return kind == CF_PEEK_TLS_SNI ? "TLS SNI" : "HTTP Host";
}

/*
 * A name as sent, unless it is empty, too long, holds a NUL or is a dotted
 * IPv4 literal. Bytes outside printable ASCII become '?': the name reaches
 * messages and the terminal, and such a name matches no rule either way.
 */
static bool copy_name(const uint8_t *s, size_t n, char name[CF_PEEK_NAME_MAX])
{
	bool literal = true;

	if (n == 0 || n >= CF_PEEK_NAME_MAX || memchr(s, '\0', n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			literal = false;
	if (literal)
		return false;
	for (size_t i = 0; i < n; i++)
		name[i] = s[i] > 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	name[n] = '\0';
	return true;
}

/* --- TLS ---------------------------------------------------------------------- */

struct reader {
	const uint8_t *p;
	size_t n;
};

static bool take(struct reader *r, size_t k, const uint8_t **out)
{
	if (r->n < k)
		return false;
	*out = r->p;
	r->p += k;
	r->n -= k;
	return true;
}

static bool take_u8(struct reader *r, size_t *v)
{
	const uint8_t *p;

	if (!take(r, 1, &p))
		return false;
	*v = p[0];
	return true;
}

static bool take_u16(struct reader *r, size_t *v)
{
	const uint8_t *p;

	if (!take(r, 2, &p))
		return false;
	*v = (size_t)p[0] << 8 | p[1];
	return true;
}

/* The server_name extension's first host_name: NAME, or NONE. */
static enum cf_peek sni_of(const uint8_t *ext, size_t n, char name[CF_PEEK_NAME_MAX])
{
	struct reader r = {ext, n}, list;
	size_t list_len, type, len;
	const uint8_t *p;

	if (!take_u16(&r, &list_len) || !take(&r, list_len, &p))
		return CF_PEEK_NONE;
	list = (struct reader){p, list_len};
	while (take_u8(&list, &type) && take_u16(&list, &len) && take(&list, len, &p)) {
		if (type == 0)
			return copy_name(p, len, name) ? CF_PEEK_NAME : CF_PEEK_NONE;
	}
	return CF_PEEK_NONE;
}

/*
 * Walk a ClientHello body of which @have bytes are here; @whole says whether
 * they are all it has. Running out of bytes is MORE unless @whole.
 */
static enum cf_peek client_hello(const uint8_t *body, size_t have, bool whole,
				 char name[CF_PEEK_NAME_MAX])
{
	struct reader r = {body, have};
	enum cf_peek out_of_bytes = whole ? CF_PEEK_NONE : CF_PEEK_MORE;
	size_t len, type;
	const uint8_t *p;

	if (!take(&r, 2 + 32, &p) || !take_u8(&r, &len) || !take(&r, len, &p) ||
	    !take_u16(&r, &len) || !take(&r, len, &p) || !take_u8(&r, &len) || !take(&r, len, &p))
		return out_of_bytes;
	if (r.n == 0 && whole)
		return CF_PEEK_NONE; /* no extensions at all */
	/* The extensions' total length is not trusted: each extension is read as far as it goes. */
	if (!take_u16(&r, &len))
		return out_of_bytes;
	while (take_u16(&r, &type)) {
		if (!take_u16(&r, &len))
			return out_of_bytes;
		if (!take(&r, len, &p))
			return out_of_bytes;
		if (type == TLS_EXT_SERVER_NAME)
			return sni_of(p, len, name);
	}
	return whole ? CF_PEEK_NONE : CF_PEEK_MORE;
}

static enum cf_peek tls_name(const uint8_t *buf, size_t len, char name[CF_PEEK_NAME_MAX])
{
	uint8_t hs[CF_PEEK_WINDOW];
	size_t hlen = 0, off = 0, msg_len, have;
	bool cut = false; /* the last record is not all here */

	/* The handshake bytes of consecutive handshake records, as far as they are here. */
	while (off < len && hlen < sizeof(hs)) {
		size_t rlen, avail;

		if (len - off < 5) {
			cut = true;
			break;
		}
		if (buf[off] != TLS_HANDSHAKE || buf[off + 1] != 3)
			break;
		rlen = (size_t)buf[off + 3] << 8 | buf[off + 4];
		/*
		 * A bad first record is no ClientHello; a bad later one ends the
		 * handshake bytes like another record type would: what came before
		 * it is judged as a prefix that stopped there was, so the answer
		 * never changes once given.
		 */
		if ((rlen == 0 || rlen > TLS_RECORD_MAX) && off == 0)
			return CF_PEEK_NONE;
		if (rlen == 0 || rlen > TLS_RECORD_MAX)
			break;
		avail = len - off - 5 < rlen ? len - off - 5 : rlen;
		if (avail > sizeof(hs) - hlen)
			avail = sizeof(hs) - hlen;
		memcpy(hs + hlen, buf + off + 5, avail);
		hlen += avail;
		if (avail < rlen) {
			cut = true;
			break;
		}
		off += 5 + rlen;
	}
	if (hlen < 4)
		return cut || off >= len ? CF_PEEK_MORE : CF_PEEK_NONE;
	if (hs[0] != TLS_CLIENT_HELLO)
		return CF_PEEK_NONE;
	msg_len = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
	have = hlen - 4 < msg_len ? hlen - 4 : msg_len;
	/* Whole: the message is here, or no more of it can come (another record type followed). */
	return client_hello(hs + 4, have, have == msg_len || (!cut && off < len), name);
}

/* --- HTTP/1 ------------------------------------------------------------------- */

/* The next line of @buf from *@off, without its "\r\n" or "\n"; false when it has not ended. */
static bool next_line(const uint8_t *buf, size_t len, size_t *off, const uint8_t **line, size_t *n)
{
	const uint8_t *nl = memchr(buf + *off, '\n', len - *off);

	if (!nl)
		return false;
	*line = buf + *off;
	*n = (size_t)(nl - *line);
	*off = (size_t)(nl - buf) + 1;
	if (*n && (*line)[*n - 1] == '\r')
		(*n)--;
	return true;
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* A Host header's value: the name without its port; NONE for an IPv6 literal or no name. */
static enum cf_peek host_value(const uint8_t *v, size_t n, char name[CF_PEEK_NAME_MAX])
{
	const uint8_t *colon;

	while (n && is_ows(*v))
		v++, n--;
	while (n && is_ows(v[n - 1]))
		n--;
	if (n && v[0] == '[')
		return CF_PEEK_NONE;
	colon = memchr(v, ':', n);
	if (colon)
		n = (size_t)(colon - v);
	return copy_name(v, n, name) ? CF_PEEK_NAME : CF_PEEK_NONE;
}

static enum cf_peek http_name(const uint8_t *buf, size_t len, char name[CF_PEEK_NAME_MAX])
{
	static const char version[] = " HTTP/1.";
	const uint8_t *line;
	size_t i, n, off = 0;

	for (i = 0; i < len && i <= HTTP_METHOD_MAX && buf[i] >= 'A' && buf[i] <= 'Z'; i++)
		;
	if (i == len)
		return i <= HTTP_METHOD_MAX ? CF_PEEK_MORE : CF_PEEK_NONE;
	if (i == 0 || i > HTTP_METHOD_MAX || buf[i] != ' ')
		return CF_PEEK_NONE;
	if (!next_line(buf, len, &off, &line, &n))
		return CF_PEEK_MORE;
	/* "METHOD TARGET HTTP/1.x": HTTP/2's preface (PRI * HTTP/2.0) and HTTP/0.9 are not. */
	if (n < sizeof(version) || memcmp(line + n - sizeof(version), version, sizeof(version) - 1))
		return CF_PEEK_NONE;
	while (next_line(buf, len, &off, &line, &n)) {
		if (n == 0)
			return CF_PEEK_NONE; /* the head ended without a Host */
		if (n >= 5 && strncasecmp((const char *)line, "host:", 5) == 0)
			return host_value(line + 5, n - 5, name);
	}
	return CF_PEEK_MORE;
}

enum cf_peek cf_peek_name(const uint8_t *buf, size_t len, char name[CF_PEEK_NAME_MAX],
			  enum cf_peek_kind *kind)
{
	enum cf_peek r;

	if (len == 0)
		return CF_PEEK_MORE;
	if (buf[0] == TLS_HANDSHAKE && (len < 2 || buf[1] == 3)) {
		*kind = CF_PEEK_TLS_SNI;
		r = tls_name(buf, len, name);
	} else {
		*kind = CF_PEEK_HTTP_HOST;
		r = http_name(buf, len, name);
	}
	return r == CF_PEEK_MORE && len >= CF_PEEK_WINDOW ? CF_PEEK_NONE : r;
}
