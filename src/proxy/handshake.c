// SPDX-License-Identifier: MIT
/*
 * Upstream proxy client handshakes, sans I/O.
 *
 * Theory of operation: cf_hs_new() builds every byte the client will send up
 * front, into one fixed buffer (out[]) split in segments: for HTTP the whole
 * CONNECT request; for SOCKS5 the greeting, the RFC 1929 sub-negotiation and
 * the CONNECT request. Each phase sends one segment and then reads one reply:
 *
 *   ST_HTTP_REPLY    CONNECT request sent; reading the status line and headers
 *                    up to the empty line (1xx interim responses are skipped)
 *   ST_SOCKS_METHOD  greeting sent; reading VER METHOD (2 bytes)
 *   ST_SOCKS_AUTH    user/password sent; reading VER STATUS (2 bytes)
 *   ST_SOCKS_REPLY   CONNECT sent; reading VER REP RSV ATYP BND.ADDR BND.PORT
 *   ST_DONE          tunnel open
 *   ST_FAILED        err/errtext say why
 *
 * The public status is derived: WANT_WRITE while the current segment is not
 * fully sent, else WANT_READ. Replies are read byte-exactly (SOCKS5 by
 * accumulating exactly the length still needed, HTTP by scanning for the empty
 * line), so nothing past the reply is consumed. A reply that arrives complete
 * before its request was fully sent can only come from a confused or hostile
 * proxy and fails the handshake, except an HTTP error status, which is reported
 * as such (proxies answer 407 early). Bytes after a reply that must be followed
 * by our next request (SOCKS5 method and auth replies) are a protocol error too,
 * which keeps the caller's rule simple: leftover input only ever follows DONE.
 *
 * Error texts are built only from our own strings and the numeric status: the
 * proxy's reason phrase is never copied (it is untrusted and could carry
 * anything, including the credentials it was sent).
 */
#include "proxy/handshake.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX 2048
#define HOSTPORT_MAX (255 + 1 + 5 + 1)
#define HTTP_CRED_MAX 1024  /* strlen("user:password"); keeps the request within OUT_MAX */
#define SOCKS_FIELD_MAX 255 /* RFC 1929 ULEN/PLEN and RFC 1928 domain length are one byte */
#define SOCKS_REPLY_MAX (4 + 1 + 255 + 2)
#define STATUS_PREFIX 13 /* "HTTP/1.1 200 " */

enum hs_state {
	ST_HTTP_REPLY,
	ST_SOCKS_METHOD,
	ST_SOCKS_AUTH,
	ST_SOCKS_REPLY,
	ST_DONE,
	ST_FAILED,
};

/* SOCKS5 constants (RFC 1928, RFC 1929). */
enum {
	SOCKS_VER = 5,
	SOCKS_AUTH_VER = 1,
	SOCKS_METHOD_NONE = 0,
	SOCKS_METHOD_USERPASS = 2,
	SOCKS_METHOD_REJECT = 0xff,
	SOCKS_CMD_CONNECT = 1,
	SOCKS_CMD_UDP_ASSOCIATE = 3,
	SOCKS_ATYP_V4 = 1,
	SOCKS_ATYP_DOMAIN = 3,
	SOCKS_ATYP_V6 = 4,
};

struct http_parse {
	uint32_t total;	   /* header bytes read, all responses */
	uint32_t line_len; /* bytes of the current line, CR excluded */
	bool in_status;	   /* the current line is a status line */
	bool cr;	   /* the previous byte was CR */
	uint16_t code;	   /* status of the response being read */
	char status[STATUS_PREFIX];
};

struct cf_hs {
	enum hs_state state;
	int err;
	uint16_t out_pos, out_end; /* the segment being sent */
	uint16_t auth_off, auth_len, conn_off, conn_len;
	bool creds;
	struct http_parse http;
	uint16_t in_have, in_need; /* SOCKS5 reply accumulation */
	uint8_t in[SOCKS_REPLY_MAX];
	char errtext[80];
	uint8_t out[OUT_MAX];
};

/* --- helpers ----------------------------------------------------------------------------- */

static void send_segment(struct cf_hs *hs, size_t off, size_t len)
{
	hs->out_pos = (uint16_t)off;
	hs->out_end = (uint16_t)(off + len);
}

static bool output_pending(const struct cf_hs *hs)
{
	return hs->out_pos < hs->out_end;
}

/* Move to ST_FAILED; the request is no longer needed, so wipe the credentials in it. */
static enum cf_hs_status fail(struct cf_hs *hs, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum cf_hs_status fail(struct cf_hs *hs, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hs->errtext, sizeof(hs->errtext), fmt, ap);
	va_end(ap);
	hs->state = ST_FAILED;
	hs->err = err;
	hs->out_pos = hs->out_end = 0;
	explicit_bzero(hs->out, sizeof(hs->out));
	return CF_HS_FAILED;
}

static enum cf_hs_status malformed(struct cf_hs *hs)
{
	return fail(hs, ECONNREFUSED, "proxy: malformed reply");
}

static enum cf_hs_status done(struct cf_hs *hs)
{
	hs->state = ST_DONE;
	explicit_bzero(hs->out, sizeof(hs->out));
	return CF_HS_DONE;
}

/* A name we can put on the wire as is: letters, digits, '-', '_', '.'; at most 255 bytes. */
static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -EINVAL;
	if (len > SOCKS_FIELD_MAX)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return -EINVAL;
	}
	return 0;
}

static int check_target(const struct cf_hs_target *t)
{
	if (t->port == 0)
		return -EINVAL;
	if (t->name)
		return check_name(t->name);
	if (!t->ip || (t->ip->family != AF_INET && t->ip->family != AF_INET6))
		return -EINVAL;
	return 0;
}

/* RFC 4648 base64 of @len bytes of @in into @out (4 * ceil(len / 3) + 1 bytes). */
static void base64_encode(const uint8_t *in, size_t len, char *out)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
		*out++ = abc[(v >> 6) & 63];
		*out++ = abc[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		*out++ = abc[v >> 18];
		*out++ = abc[(v >> 12) & 63];
		*out++ = abc[(v >> 6) & 63];
		*out++ = '=';
	}
	*out = '\0';
}

/* --- HTTP CONNECT ------------------------------------------------------------------------ */

/* "Proxy-Authorization: Basic ...\r\n" for @user/@password into @buf, or "" without credentials. */
static int http_auth_header(const char *user, const char *password, char *buf, size_t len)
{
	char cred[HTTP_CRED_MAX + 1];
	char b64[(HTTP_CRED_MAX + 2) / 3 * 4 + 1];
	int n;

	buf[0] = '\0';
	if (!user && !password)
		return 0;
	n = snprintf(cred, sizeof(cred), "%s:%s", user ? user : "", password ? password : "");
	if (n < 0 || (size_t)n >= sizeof(cred)) {
		explicit_bzero(cred, sizeof(cred));
		return -ENAMETOOLONG;
	}
	base64_encode((const uint8_t *)cred, (size_t)n, b64);
	n = snprintf(buf, len, "Proxy-Authorization: Basic %s\r\n", b64);
	explicit_bzero(cred, sizeof(cred));
	explicit_bzero(b64, sizeof(b64));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int http_build(struct cf_hs *hs, const char *user, const char *password,
		      const struct cf_hs_target *t)
{
	char hostport[HOSTPORT_MAX];
	char auth[OUT_MAX];
	int n, r;

	if (t->name)
		snprintf(hostport, sizeof(hostport), "%s:%u", t->name, (unsigned int)t->port);
	else
		cf_addrport_format(t->ip, t->port, hostport, sizeof(hostport));
	r = http_auth_header(user, password, auth, sizeof(auth));
	if (r < 0)
		return r;
	n = snprintf((char *)hs->out, sizeof(hs->out),
		     "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%sUser-Agent: childflow\r\n\r\n", hostport,
		     hostport, auth);
	explicit_bzero(auth, sizeof(auth));
	if (n < 0 || (size_t)n >= sizeof(hs->out))
		return -ENAMETOOLONG;
	hs->state = ST_HTTP_REPLY;
	hs->http.in_status = true;
	send_segment(hs, 0, (size_t)n);
	return 0;
}

/* "HTTP/1.x NNN" followed by the end of the line or a space; the code, or -1. */
static int http_status_code(const struct http_parse *p)
{
	const char *s = p->status;
	size_t len = p->line_len;

	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return -1;
	if (len > 12 && s[12] != ' ')
		return -1;
	for (size_t i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (s[9] == '0')
		return -1;
	return (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
}

static const char *http_reason(unsigned int code)
{
	static const struct {
		unsigned int code;
		const char *text;
	} reasons[] = {
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {407, "Proxy Authentication Required"},
	    {408, "Request Timeout"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {501, "Not Implemented"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].text;
	return NULL;
}

/* The empty line ending a response's headers was read. */
static enum cf_hs_status http_end_of_headers(struct cf_hs *hs)
{
	unsigned int code = hs->http.code;
	const char *reason;

	if (code < 200) {
		/* Interim response: the final one follows. */
		hs->http.in_status = true;
		return output_pending(hs) ? CF_HS_WANT_WRITE : CF_HS_WANT_READ;
	}
	if (code < 300)
		return output_pending(hs) ? malformed(hs) : done(hs);
	reason = http_reason(code);
	if (reason)
		return fail(hs, ECONNREFUSED, "proxy: HTTP %u %s", code, reason);
	return fail(hs, ECONNREFUSED, "proxy: HTTP %u", code);
}

/* One line ended (LF read). */
static enum cf_hs_status http_end_of_line(struct cf_hs *hs)
{
	struct http_parse *p = &hs->http;

	if (p->line_len == 0) {
		if (p->in_status)
			return malformed(hs);
		return http_end_of_headers(hs);
	}
	if (p->in_status) {
		int code = http_status_code(p);

		if (code < 0)
			return malformed(hs);
		p->code = (uint16_t)code;
		p->in_status = false;
	}
	p->line_len = 0;
	return CF_HS_WANT_READ;
}

/* One byte of a line that is not CR or LF. */
static bool http_line_byte(struct http_parse *p, uint8_t c)
{
	if ((c < 0x20 && c != '\t') || c == 0x7f)
		return false;
	if (p->in_status && p->line_len < sizeof(p->status))
		p->status[p->line_len] = (char)c;
	p->line_len++;
	return true;
}

static enum cf_hs_status http_input(struct cf_hs *hs, const uint8_t *data, size_t n, size_t *used)
{
	struct http_parse *p = &hs->http;
	enum cf_hs_status st;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = data[i];

		*used = i + 1;
		if (++p->total > CF_HS_HTTP_MAX_REPLY)
			return fail(hs, ECONNREFUSED, "proxy: HTTP reply headers too long");
		if (p->cr && c != '\n')
			return malformed(hs);
		p->cr = c == '\r';
		if (c == '\r')
			continue;
		if (c != '\n') {
			if (!http_line_byte(p, c))
				return malformed(hs);
			continue;
		}
		st = http_end_of_line(hs);
		if (st == CF_HS_DONE || st == CF_HS_FAILED)
			return st;
	}
	return cf_hs_status(hs);
}

/* --- SOCKS5 ------------------------------------------------------------------------------ */

static size_t put_bytes(uint8_t *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
	return len;
}

static int socks_build(struct cf_hs *hs, const char *user, const char *password,
		       const struct cf_hs_target *t, uint8_t cmd)
{
	uint8_t *o = hs->out;
	size_t pos = 0;

	hs->creds = user || password;
	o[pos++] = SOCKS_VER;
	if (hs->creds) {
		o[pos++] = 2;
		o[pos++] = SOCKS_METHOD_NONE;
		o[pos++] = SOCKS_METHOD_USERPASS;
	} else {
		o[pos++] = 1;
		o[pos++] = SOCKS_METHOD_NONE;
	}
	send_segment(hs, 0, pos);

	hs->auth_off = (uint16_t)pos;
	if (hs->creds) {
		size_t ulen = user ? strlen(user) : 0;
		size_t plen = password ? strlen(password) : 0;

		if (ulen > SOCKS_FIELD_MAX || plen > SOCKS_FIELD_MAX)
			return -ENAMETOOLONG;
		o[pos++] = SOCKS_AUTH_VER;
		o[pos++] = (uint8_t)ulen;
		pos += put_bytes(o + pos, user ? user : "", ulen);
		o[pos++] = (uint8_t)plen;
		pos += put_bytes(o + pos, password ? password : "", plen);
	}
	hs->auth_len = (uint16_t)(pos - hs->auth_off);

	hs->conn_off = (uint16_t)pos;
	o[pos++] = SOCKS_VER;
	o[pos++] = cmd;
	o[pos++] = 0;
	if (t->name) {
		size_t len = strlen(t->name);

		o[pos++] = SOCKS_ATYP_DOMAIN;
		o[pos++] = (uint8_t)len;
		pos += put_bytes(o + pos, t->name, len);
	} else if (t->ip->family == AF_INET) {
		o[pos++] = SOCKS_ATYP_V4;
		pos += put_bytes(o + pos, t->ip->b, 4);
	} else {
		o[pos++] = SOCKS_ATYP_V6;
		pos += put_bytes(o + pos, t->ip->b, 16);
	}
	o[pos++] = (uint8_t)(t->port >> 8);
	o[pos++] = (uint8_t)(t->port & 0xff);
	hs->conn_len = (uint16_t)(pos - hs->conn_off);

	hs->state = ST_SOCKS_METHOD;
	hs->in_need = 2;
	return 0;
}

/* Start the next phase: send @len bytes at @off, then read @need reply bytes. */
static enum cf_hs_status socks_next(struct cf_hs *hs, enum hs_state st, size_t off, size_t len)
{
	if (output_pending(hs))
		return malformed(hs); /* answered a request it has not fully received */
	hs->state = st;
	hs->in_have = 0;
	hs->in_need = 2;
	send_segment(hs, off, len);
	return CF_HS_WANT_WRITE;
}

static enum cf_hs_status socks_method_reply(struct cf_hs *hs)
{
	if (hs->in[0] != SOCKS_VER)
		return malformed(hs);
	switch (hs->in[1]) {
	case SOCKS_METHOD_NONE:
		return socks_next(hs, ST_SOCKS_REPLY, hs->conn_off, hs->conn_len);
	case SOCKS_METHOD_USERPASS:
		if (!hs->creds)
			return malformed(hs);
		return socks_next(hs, ST_SOCKS_AUTH, hs->auth_off, hs->auth_len);
	case SOCKS_METHOD_REJECT:
		if (hs->creds)
			return fail(hs, ECONNREFUSED,
				    "proxy: SOCKS5 no acceptable authentication method");
		return fail(hs, ECONNREFUSED,
			    "proxy: SOCKS5 no acceptable authentication method "
			    "(credentials required?)");
	default:
		return malformed(hs);
	}
}

static enum cf_hs_status socks_auth_reply(struct cf_hs *hs)
{
	if (hs->in[0] != SOCKS_AUTH_VER)
		return malformed(hs);
	if (hs->in[1] != 0)
		return fail(hs, ECONNREFUSED, "proxy: SOCKS5 authentication failed");
	return socks_next(hs, ST_SOCKS_REPLY, hs->conn_off, hs->conn_len);
}

static enum cf_hs_status socks_reply_failure(struct cf_hs *hs, unsigned int rep)
{
	static const struct {
		int err;
		const char *text;
	} replies[] = {
	    [1] = {ECONNREFUSED, "general SOCKS server failure"},
	    [2] = {ECONNREFUSED, "connection not allowed by ruleset"},
	    [3] = {ENETUNREACH, "network unreachable"},
	    [4] = {EHOSTUNREACH, "host unreachable"},
	    [5] = {ECONNREFUSED, "connection refused"},
	    [6] = {ETIMEDOUT, "TTL expired"},
	    [7] = {ECONNREFUSED, "command not supported"},
	    [8] = {ECONNREFUSED, "address type not supported"},
	};

	if (rep < sizeof(replies) / sizeof(replies[0]))
		return fail(hs, replies[rep].err, "proxy: SOCKS5 reply %u (%s)", rep,
			    replies[rep].text);
	return fail(hs, ECONNREFUSED, "proxy: SOCKS5 reply %u (unassigned)", rep);
}

/* The CONNECT reply so far has hs->in_need bytes: check them, then need more or finish. */
static enum cf_hs_status socks_connect_reply(struct cf_hs *hs)
{
	const uint8_t *r = hs->in;

	if (hs->in_need == 2) {
		if (r[0] != SOCKS_VER)
			return malformed(hs);
		if (r[1] != 0)
			return socks_reply_failure(hs, r[1]);
		hs->in_need = 4;
		return CF_HS_WANT_READ;
	}
	if (hs->in_need == 4) {
		if (r[2] != 0)
			return malformed(hs);
		switch (r[3]) {
		case SOCKS_ATYP_V4:
			hs->in_need = 4 + 4 + 2;
			break;
		case SOCKS_ATYP_V6:
			hs->in_need = 4 + 16 + 2;
			break;
		case SOCKS_ATYP_DOMAIN:
			hs->in_need = 5;
			break;
		default:
			return malformed(hs);
		}
		return CF_HS_WANT_READ;
	}
	if (hs->in_need == 5 && r[3] == SOCKS_ATYP_DOMAIN) {
		hs->in_need = (uint16_t)(5 + r[4] + 2);
		return CF_HS_WANT_READ;
	}
	return output_pending(hs) ? malformed(hs) : done(hs);
}

static enum cf_hs_status socks_step(struct cf_hs *hs)
{
	switch (hs->state) {
	case ST_SOCKS_METHOD:
		return socks_method_reply(hs);
	case ST_SOCKS_AUTH:
		return socks_auth_reply(hs);
	default:
		return socks_connect_reply(hs);
	}
}

static enum cf_hs_status socks_input(struct cf_hs *hs, const uint8_t *data, size_t n, size_t *used)
{
	while (*used < n) {
		size_t k = hs->in_need - hs->in_have;
		enum cf_hs_status st;

		if (k > n - *used)
			k = n - *used;
		memcpy(hs->in + hs->in_have, data + *used, k);
		hs->in_have = (uint16_t)(hs->in_have + k);
		*used += k;
		if (hs->in_have < hs->in_need)
			break;
		st = socks_step(hs);
		if (st == CF_HS_DONE || st == CF_HS_FAILED)
			return st;
		/* data past a reply that our next request must follow */
		if (st == CF_HS_WANT_WRITE && *used < n)
			return malformed(hs);
	}
	return cf_hs_status(hs);
}

/* Put @ip (v4 or v6) as ATYP and address at @o; return the bytes written. */
static size_t put_addr(uint8_t *o, const struct cf_ip *ip)
{
	if (ip->family == AF_INET) {
		o[0] = SOCKS_ATYP_V4;
		memcpy(o + 1, ip->b, 4);
		return 1 + 4;
	}
	o[0] = SOCKS_ATYP_V6;
	memcpy(o + 1, ip->b, 16);
	return 1 + 16;
}

/* --- public API -------------------------------------------------------------------------- */

int cf_hs_new(const struct cf_proxy *proxy, const char *user, const char *password,
	      const struct cf_hs_target *target, struct cf_hs **out)
{
	struct cf_hs *hs;
	int r;

	*out = NULL;
	if (!proxy || proxy->scheme == CF_PROXY_NONE || !target)
		return -EINVAL;
	r = check_target(target);
	if (r < 0)
		return r;
	if (!user)
		user = proxy->user;
	if (!password)
		password = proxy->password;
	hs = calloc(1, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	if (proxy->scheme == CF_PROXY_SOCKS5)
		r = socks_build(hs, user, password, target, SOCKS_CMD_CONNECT);
	else
		r = http_build(hs, user, password, target);
	if (r < 0) {
		cf_hs_free(hs);
		return r;
	}
	*out = hs;
	return 0;
}

void cf_hs_free(struct cf_hs *hs)
{
	if (!hs)
		return;
	explicit_bzero(hs, sizeof(*hs));
	free(hs);
}

size_t cf_hs_pending_output(struct cf_hs *hs, const uint8_t **data)
{
	*data = hs->out + hs->out_pos;
	if (hs->state == ST_DONE || hs->state == ST_FAILED)
		return 0;
	return (size_t)(hs->out_end - hs->out_pos);
}

void cf_hs_consumed_output(struct cf_hs *hs, size_t n)
{
	size_t left = (size_t)(hs->out_end - hs->out_pos);

	hs->out_pos = (uint16_t)(hs->out_pos + (n < left ? n : left));
}

enum cf_hs_status cf_hs_input(struct cf_hs *hs, const uint8_t *data, size_t n, size_t *used)
{
	*used = 0;
	if (hs->state == ST_DONE || hs->state == ST_FAILED)
		return cf_hs_status(hs);
	if (n == 0)
		return fail(hs, ECONNREFUSED, "proxy: connection closed during handshake");
	if (hs->state == ST_HTTP_REPLY)
		return http_input(hs, data, n, used);
	return socks_input(hs, data, n, used);
}

enum cf_hs_status cf_hs_status(const struct cf_hs *hs)
{
	switch (hs->state) {
	case ST_DONE:
		return CF_HS_DONE;
	case ST_FAILED:
		return CF_HS_FAILED;
	default:
		return output_pending(hs) ? CF_HS_WANT_WRITE : CF_HS_WANT_READ;
	}
}

int cf_hs_error(const struct cf_hs *hs, const char **text)
{
	if (hs->state != ST_FAILED) {
		*text = NULL;
		return 0;
	}
	*text = hs->errtext;
	return hs->err;
}

int cf_hs_new_udp(const struct cf_proxy *proxy, const char *user, const char *password, int family,
		  struct cf_hs **out)
{
	/* The client's UDP address is not known before its first datagram: RFC 1928 allows zeros.
	 */
	struct cf_ip any = {.family = (uint8_t)family};
	struct cf_hs_target t = {.ip = &any, .port = 0};
	struct cf_hs *hs;
	int r;

	*out = NULL;
	if (!proxy || proxy->scheme != CF_PROXY_SOCKS5 || proxy->port == 0 ||
	    (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	hs = calloc(1, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	r = socks_build(hs, user ? user : proxy->user, password ? password : proxy->password, &t,
			SOCKS_CMD_UDP_ASSOCIATE);
	if (r < 0) {
		cf_hs_free(hs);
		return r;
	}
	*out = hs;
	return 0;
}

int cf_hs_bound(const struct cf_hs *hs, struct cf_ip *ip, uint16_t *port)
{
	const uint8_t *r = hs->in;
	size_t alen;

	if (hs->state != ST_DONE)
		return -EINVAL;
	/* An HTTP handshake leaves in[] zero: no address type. */
	if (r[3] != SOCKS_ATYP_V4 && r[3] != SOCKS_ATYP_V6)
		return -EAFNOSUPPORT;
	alen = r[3] == SOCKS_ATYP_V4 ? 4 : 16;
	memset(ip, 0, sizeof(*ip));
	ip->family = alen == 4 ? AF_INET : AF_INET6;
	memcpy(ip->b, r + 4, alen);
	*port = (uint16_t)(r[4 + alen] << 8 | r[4 + alen + 1]);
	return 0;
}

ssize_t cf_socks_udp_encode(uint8_t *buf, size_t cap, const struct cf_ip *ip, uint16_t port,
			    const uint8_t *payload, size_t len)
{
	size_t hdr = ip->family == AF_INET ? 3 + 1 + 4 + 2 : 3 + 1 + 16 + 2;

	if (ip->family != AF_INET && ip->family != AF_INET6)
		return -EAFNOSUPPORT;
	if (len > cap || hdr > cap - len)
		return -EMSGSIZE;
	/* First the payload: it may overlap the header's place. */
	if (len)
		memmove(buf + hdr, payload, len);
	buf[0] = buf[1] = 0; /* RSV */
	buf[2] = 0;	     /* FRAG: we never fragment */
	put_addr(buf + 3, ip);
	buf[hdr - 2] = (uint8_t)(port >> 8);
	buf[hdr - 1] = (uint8_t)(port & 0xff);
	return (ssize_t)(hdr + len);
}

int cf_socks_udp_decode(const uint8_t *buf, size_t len, struct cf_ip *ip, uint16_t *port,
			size_t *hdr_len)
{
	size_t alen;

	if (len < 4 || buf[0] != 0 || buf[1] != 0)
		return -EBADMSG;
	if (buf[2] != 0)
		return -EPROTO; /* a fragment: we never ask for them, so drop (RFC 1928 allows it)
				 */
	if (buf[3] == SOCKS_ATYP_V4)
		alen = 4;
	else if (buf[3] == SOCKS_ATYP_V6)
		alen = 16;
	else if (buf[3] == SOCKS_ATYP_DOMAIN)
		return -EAFNOSUPPORT; /* we only send addresses; a reply from a name is not ours */
	else
		return -EBADMSG;
	if (len < 4 + alen + 2)
		return -EBADMSG;
	memset(ip, 0, sizeof(*ip));
	ip->family = alen == 4 ? AF_INET : AF_INET6;
	memcpy(ip->b, buf + 4, alen);
	*port = (uint16_t)(buf[4 + alen] << 8 | buf[4 + alen + 1]);
	*hdr_len = 4 + alen + 2;
	return 0;
}
