// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/proxy/handshake.c (HTTP CONNECT and SOCKS5 client state
 * machines, fed bytes by hand) and src/proxy/tls.c (against a real OpenSSL
 * server in this process over a socketpair, with certificates made at run time).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proxy/handshake.h"
#include "proxy/tls.h"

#define PASSWORD "s3cretPw"
#define PASSWORD_B64 "czNjcmV0UHc" /* base64 of the password alone, minus padding */

static char proxy_host[] = "proxy.example";
static char uri_user[] = "alice";
static char uri_password[] = PASSWORD;

/* --- handshake helpers ------------------------------------------------------------------- */

static struct cf_proxy make_proxy(enum cf_proxy_scheme scheme, bool with_creds)
{
	struct cf_proxy p = {
	    .scheme = scheme,
	    .host = proxy_host,
	    .port = scheme == CF_PROXY_SOCKS5 ? 1080 : 3128,
	    .user = with_creds ? uri_user : NULL,
	    .password = with_creds ? uri_password : NULL,
	};
	return p;
}

static struct cf_ip ip_of(const char *s)
{
	struct cf_ip ip;

	assert_int_equal(cf_ip_parse(s, &ip), 0);
	return ip;
}

static struct cf_hs *start(enum cf_proxy_scheme scheme, bool uri_creds, const char *user,
			   const char *password, const struct cf_hs_target *t)
{
	struct cf_proxy p = make_proxy(scheme, uri_creds);
	struct cf_hs *hs = NULL;

	assert_int_equal(cf_hs_new(&p, user, password, t, &hs), 0);
	assert_non_null(hs);
	return hs;
}

static struct cf_hs *start_name(enum cf_proxy_scheme scheme, bool uri_creds)
{
	struct cf_hs_target t = {.name = "example.com", .port = 443};

	return start(scheme, uri_creds, NULL, NULL, &t);
}

/* The pending output is exactly @want; send it all. */
static void expect_output(struct cf_hs *hs, const void *want, size_t len)
{
	const uint8_t *out;
	size_t n;

	assert_int_equal(cf_hs_status(hs), CF_HS_WANT_WRITE);
	n = cf_hs_pending_output(hs, &out);
	assert_int_equal(n, len);
	assert_memory_equal(out, want, len);
	cf_hs_consumed_output(hs, n);
	assert_int_equal(cf_hs_status(hs), CF_HS_WANT_READ);
	assert_int_equal(cf_hs_pending_output(hs, &out), 0);
}

static void expect_output_str(struct cf_hs *hs, const char *want)
{
	expect_output(hs, want, strlen(want));
}

/* Send whatever is pending without looking at it. */
static void flush_output(struct cf_hs *hs)
{
	const uint8_t *out;

	cf_hs_consumed_output(hs, cf_hs_pending_output(hs, &out));
	assert_int_equal(cf_hs_status(hs), CF_HS_WANT_READ);
}

static enum cf_hs_status feed(struct cf_hs *hs, const void *data, size_t n, size_t *used)
{
	return cf_hs_input(hs, data, n, used);
}

/* Feed @s whole; expect @st and all of it used. */
static void feed_all(struct cf_hs *hs, const char *s, size_t n, enum cf_hs_status st)
{
	size_t used = 12345;

	assert_int_equal(feed(hs, s, n, &used), st);
	assert_int_equal(used, n);
}

static void expect_failed(struct cf_hs *hs, int err, const char *text)
{
	const char *got = NULL;
	const uint8_t *out;

	assert_int_equal(cf_hs_status(hs), CF_HS_FAILED);
	assert_int_equal(cf_hs_error(hs, &got), err);
	assert_non_null(got);
	assert_string_equal(got, text);
	assert_null(strstr(got, PASSWORD));
	assert_null(strstr(got, PASSWORD_B64));
	assert_int_equal(cf_hs_pending_output(hs, &out), 0);
}

/* Feed @reply to a fresh HTTP handshake whose request was sent; expect failure @err/@text. */
static void http_reply_fails(const char *reply, size_t len, int err, const char *text)
{
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, true);
	size_t used;

	flush_output(hs);
	assert_int_equal(feed(hs, reply, len, &used), CF_HS_FAILED);
	expect_failed(hs, err, text);
	cf_hs_free(hs);
}

/* --- HTTP CONNECT requests --------------------------------------------------------------- */

static void test_http_request_for_name_without_credentials(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);

	(void)state;
	expect_output_str(hs, "CONNECT example.com:443 HTTP/1.1\r\n"
			      "Host: example.com:443\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
}

static void test_http_request_with_uri_credentials_sends_basic_auth(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, true);

	(void)state;
	/* base64("alice:s3cretPw") */
	expect_output_str(hs, "CONNECT example.com:443 HTTP/1.1\r\n"
			      "Host: example.com:443\r\n"
			      "Proxy-Authorization: Basic YWxpY2U6czNjcmV0UHc=\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
}

static void test_https_scheme_speaks_the_same_connect(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_HTTPS, false);

	(void)state;
	expect_output_str(hs, "CONNECT example.com:443 HTTP/1.1\r\n"
			      "Host: example.com:443\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
}

static void test_http_credentials_override_uri_ones_independently(void **state)
{
	struct cf_hs_target t = {.name = "h", .port = 1};
	struct cf_hs *hs;

	(void)state;
	/* user from the option, password still from the URI: base64("bob:s3cretPw") */
	hs = start(CF_PROXY_HTTP, true, "bob", NULL, &t);
	expect_output_str(hs, "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n"
			      "Proxy-Authorization: Basic Ym9iOnMzY3JldFB3\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
	/* both from the options: base64("bob:pw") */
	hs = start(CF_PROXY_HTTP, true, "bob", "pw", &t);
	expect_output_str(hs, "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n"
			      "Proxy-Authorization: Basic Ym9iOnB3\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
	/* a password alone still authenticates, with an empty user: base64(":pw") */
	hs = start(CF_PROXY_HTTP, false, NULL, "pw", &t);
	expect_output_str(hs, "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n"
			      "Proxy-Authorization: Basic OnB3\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
}

static void test_http_basic_auth_base64_padding(void **state)
{
	static const struct {
		const char *user, *password, *b64;
	} cases[] = {
	    {"a", "", "YTo="},	     /* 2 bytes */
	    {"ab", "", "YWI6"},	     /* 3 bytes */
	    {"a", "bc", "YTpiYw=="}, /* 4 bytes */
	    {"Aladdin", "open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
	};
	struct cf_hs_target t = {.name = "h", .port = 1};
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cf_hs *hs =
		    start(CF_PROXY_HTTP, false, cases[i].user, cases[i].password, &t);

		snprintf(want, sizeof(want),
			 "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n"
			 "Proxy-Authorization: Basic %s\r\nUser-Agent: childflow\r\n\r\n",
			 cases[i].b64);
		expect_output_str(hs, want);
		cf_hs_free(hs);
	}
}

static void test_http_request_for_ipv4_and_ipv6_targets(void **state)
{
	struct cf_ip v4 = ip_of("192.0.2.7"), v6 = ip_of("2001:db8::1");
	struct cf_hs_target t4 = {.ip = &v4, .port = 80}, t6 = {.ip = &v6, .port = 8443};
	struct cf_hs *hs;

	(void)state;
	hs = start(CF_PROXY_HTTP, false, NULL, NULL, &t4);
	expect_output_str(hs, "CONNECT 192.0.2.7:80 HTTP/1.1\r\nHost: 192.0.2.7:80\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
	hs = start(CF_PROXY_HTTP, false, NULL, NULL, &t6);
	expect_output_str(hs, "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
}

static void test_name_takes_precedence_over_ip(void **state)
{
	struct cf_ip v4 = ip_of("192.0.2.7");
	struct cf_hs_target t = {.name = "example.com", .ip = &v4, .port = 443};
	struct cf_hs *hs = start(CF_PROXY_HTTP, false, NULL, NULL, &t);

	(void)state;
	expect_output_str(hs, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
			      "User-Agent: childflow\r\n\r\n");
	cf_hs_free(hs);
}

static void test_output_can_be_sent_in_pieces(void **state)
{
	static const char req[] = "CONNECT example.com:443 HTTP/1.1\r\n";
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);
	const uint8_t *out;
	size_t total, n;

	(void)state;
	total = cf_hs_pending_output(hs, &out);
	cf_hs_consumed_output(hs, 8);
	assert_int_equal(cf_hs_status(hs), CF_HS_WANT_WRITE);
	n = cf_hs_pending_output(hs, &out);
	assert_int_equal(n, total - 8);
	assert_memory_equal(out, req + 8, sizeof(req) - 1 - 8);
	cf_hs_consumed_output(hs, 0);
	assert_int_equal(cf_hs_pending_output(hs, &out), total - 8);
	cf_hs_consumed_output(hs, 100000); /* more than pending: clamped */
	assert_int_equal(cf_hs_status(hs), CF_HS_WANT_READ);
	assert_int_equal(cf_hs_pending_output(hs, &out), 0);
	cf_hs_free(hs);
}

/* --- cf_hs_new() argument checks --------------------------------------------------------- */

static void expect_new_fails(enum cf_proxy_scheme scheme, const char *user, const char *password,
			     const struct cf_hs_target *t, int err)
{
	struct cf_proxy p = make_proxy(scheme, false);
	struct cf_hs *hs = (struct cf_hs *)&p; /* must be reset to NULL */

	assert_int_equal(cf_hs_new(&p, user, password, t, &hs), err);
	assert_null(hs);
}

static void test_new_rejects_bad_scheme_port_and_target(void **state)
{
	struct cf_ip v4 = ip_of("192.0.2.7");
	struct cf_ip bad = {.family = AF_UNIX};
	struct cf_hs_target ok = {.name = "h", .port = 1};
	struct cf_hs_target port0 = {.ip = &v4, .port = 0};
	struct cf_hs_target noip = {.port = 1};
	struct cf_hs_target badfam = {.ip = &bad, .port = 1};
	struct cf_hs *hs = NULL;

	(void)state;
	expect_new_fails(CF_PROXY_NONE, NULL, NULL, &ok, -EINVAL);
	expect_new_fails(CF_PROXY_HTTP, NULL, NULL, &port0, -EINVAL);
	expect_new_fails(CF_PROXY_SOCKS5, NULL, NULL, &noip, -EINVAL);
	expect_new_fails(CF_PROXY_SOCKS5, NULL, NULL, &badfam, -EINVAL);
	expect_new_fails(CF_PROXY_HTTP, NULL, NULL, NULL, -EINVAL);
	assert_int_equal(cf_hs_new(NULL, NULL, NULL, &ok, &hs), -EINVAL);
	assert_null(hs);
}

static void test_new_rejects_names_that_could_inject_bytes(void **state)
{
	static const char *const bad[] = {
	    "",								  /* empty */
	    "evil.com:80 HTTP/1.1\r\nX-Injected: 1\r\n\r\nCONNECT other", /* CRLF */
	    "a b",							  /* space */
	    "a\\032b",							  /* DNS escape */
	    "a/b",							  /* slash */
	    "[::1]",							  /* literal */
	    "host:1",							  /* port */
	};
	char longname[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cf_hs_target t = {.name = bad[i], .port = 80};

		expect_new_fails(CF_PROXY_HTTP, NULL, NULL, &t, -EINVAL);
		expect_new_fails(CF_PROXY_SOCKS5, NULL, NULL, &t, -EINVAL);
	}
	memset(longname, 'a', sizeof(longname));
	longname[256] = '\0';
	{
		struct cf_hs_target t = {.name = longname, .port = 80};
		struct cf_hs *hs;

		expect_new_fails(CF_PROXY_HTTP, NULL, NULL, &t, -ENAMETOOLONG);
		expect_new_fails(CF_PROXY_SOCKS5, NULL, NULL, &t, -ENAMETOOLONG);
		longname[255] = '\0';
		hs = start(CF_PROXY_SOCKS5, false, NULL, NULL, &t);
		cf_hs_free(hs);
		hs = start(CF_PROXY_HTTP, true, NULL, NULL, &t);
		cf_hs_free(hs);
	}
}

static void test_new_rejects_overlong_credentials(void **state)
{
	struct cf_hs_target t = {.name = "example.com", .port = 443};
	char big[2000];
	struct cf_hs *hs;

	(void)state;
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	expect_new_fails(CF_PROXY_HTTP, big, "pw", &t, -ENAMETOOLONG);
	big[1000] = '\0'; /* "user:pw" of 1003 bytes fits an HTTP request */
	hs = start(CF_PROXY_HTTP, false, big, "pw", &t);
	cf_hs_free(hs);

	big[256] = '\0'; /* RFC 1929 fields are at most 255 bytes */
	expect_new_fails(CF_PROXY_SOCKS5, big, "pw", &t, -ENAMETOOLONG);
	expect_new_fails(CF_PROXY_SOCKS5, "u", big, &t, -ENAMETOOLONG);
	big[255] = '\0';
	hs = start(CF_PROXY_SOCKS5, false, big, big, &t);
	cf_hs_free(hs);
}

/* --- HTTP CONNECT replies ---------------------------------------------------------------- */

static void test_http_200_with_headers_opens_tunnel(void **state)
{
	static const char reply[] = "HTTP/1.1 200 Connection established\r\n"
				    "Proxy-Agent: tinyproxy/1.11.1\r\n"
				    "Via: 1.1 proxy\r\n\r\n";
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, true);
	const char *text = "x";

	(void)state;
	flush_output(hs);
	feed_all(hs, reply, sizeof(reply) - 1, CF_HS_DONE);
	assert_int_equal(cf_hs_status(hs), CF_HS_DONE);
	assert_int_equal(cf_hs_error(hs, &text), 0);
	assert_null(text);
	cf_hs_free(hs);
}

static void test_http_other_2xx_and_http10_without_reason_open_tunnel(void **state)
{
	static const char *const replies[] = {
	    "HTTP/1.0 200\r\n\r\n",
	    "HTTP/1.1 204 No Content\r\n\r\n",
	    "HTTP/1.1 299 \r\n\r\n",
	    "HTTP/1.1 200 OK\n\n", /* bare LF line ends */
	    "HTTP/1.1 200 OK\r\nX: a\tb \x80\xff\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);

		flush_output(hs);
		feed_all(hs, replies[i], strlen(replies[i]), CF_HS_DONE);
		cf_hs_free(hs);
	}
}

static void test_http_200_split_byte_by_byte(void **state)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);
	size_t used;

	(void)state;
	flush_output(hs);
	for (size_t i = 0; i + 1 < sizeof(reply) - 1; i++) {
		assert_int_equal(feed(hs, reply + i, 1, &used), CF_HS_WANT_READ);
		assert_int_equal(used, 1);
	}
	assert_int_equal(feed(hs, reply + sizeof(reply) - 2, 1, &used), CF_HS_DONE);
	assert_int_equal(used, 1);
	cf_hs_free(hs);
}

static void test_http_bytes_after_reply_stay_with_the_caller(void **state)
{
	static const char hdr[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	static const char banner[] = "SSH-2.0-OpenSSH_9.2\r\n";
	char buf[128];
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);
	size_t used;

	(void)state;
	snprintf(buf, sizeof(buf), "%s%s", hdr, banner);
	flush_output(hs);
	/* the first piece ends inside the status line */
	assert_int_equal(feed(hs, buf, 10, &used), CF_HS_WANT_READ);
	assert_int_equal(used, 10);
	assert_int_equal(feed(hs, buf + 10, strlen(buf) - 10, &used), CF_HS_DONE);
	assert_int_equal(used, strlen(hdr) - 10);
	assert_string_equal(buf + 10 + used, banner);
	/* input after DONE is not taken */
	assert_int_equal(feed(hs, banner, 3, &used), CF_HS_DONE);
	assert_int_equal(used, 0);
	cf_hs_free(hs);
}

static void test_http_interim_1xx_is_skipped(void **state)
{
	static const char reply[] = "HTTP/1.1 100 Continue\r\n\r\n"
				    "HTTP/1.1 200 OK\r\n\r\nbanner";
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);
	size_t used;

	(void)state;
	flush_output(hs);
	assert_int_equal(feed(hs, reply, strlen(reply), &used), CF_HS_DONE);
	assert_int_equal(used, strlen(reply) - strlen("banner"));
	cf_hs_free(hs);
}

static void test_http_error_statuses_refuse_with_canonical_reason(void **state)
{
	static const struct {
		const char *reply, *text;
	} cases[] = {
	    {"HTTP/1.1 403 Forbidden\r\n\r\n", "proxy: HTTP 403 Forbidden"},
	    /* the proxy's own reason phrase is never copied */
	    {"HTTP/1.1 407 Go away alice:" PASSWORD "\r\nProxy-Authenticate: Basic\r\n\r\n",
	     "proxy: HTTP 407 Proxy Authentication Required"},
	    {"HTTP/1.0 502 Bad Gateway\r\nContent-Length: 5\r\n\r\n",
	     "proxy: HTTP 502 Bad Gateway"},
	    {"HTTP/1.1 503 x\r\n\r\n", "proxy: HTTP 503 Service Unavailable"},
	    {"HTTP/1.1 504\r\n\r\n", "proxy: HTTP 504 Gateway Timeout"},
	    {"HTTP/1.1 301 Moved\r\n\r\n", "proxy: HTTP 301"},
	    {"HTTP/1.1 599 Whatever\r\n\r\n", "proxy: HTTP 599"},
	    {"HTTP/1.1 999 Whatever\r\n\r\n", "proxy: HTTP 999"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		http_reply_fails(cases[i].reply, strlen(cases[i].reply), ECONNREFUSED,
				 cases[i].text);
}

static void test_http_error_reply_leaves_body_unread(void **state)
{
	static const char reply[] = "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n<html>";
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);
	size_t used;

	(void)state;
	flush_output(hs);
	assert_int_equal(feed(hs, reply, strlen(reply), &used), CF_HS_FAILED);
	assert_int_equal(used, strlen(reply) - strlen("<html>"));
	expect_failed(hs, ECONNREFUSED, "proxy: HTTP 407 Proxy Authentication Required");
	/* nothing more is taken after failure */
	assert_int_equal(feed(hs, reply, 4, &used), CF_HS_FAILED);
	assert_int_equal(used, 0);
	cf_hs_free(hs);
}

static void test_http_malformed_status_lines_fail(void **state)
{
	static const char *const replies[] = {
	    "SSH-2.0-OpenSSH_9.2\r\n",
	    "HTTP/2 200\r\n\r\n",
	    "HTTP/2.0 200 OK\r\n\r\n",
	    "http/1.1 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HTTP/1.1 2000 OK\r\n\r\n",
	    "HTTP/1.1 099 OK\r\n\r\n",
	    "HTTP/1.1 2x0 OK\r\n\r\n",
	    "HTTP/1.1  200 OK\r\n\r\n",
	    "HTTP/1.x 200 OK\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	    "HTTP/1.1\r\n\r\n",
	    "\r\nHTTP/1.1 200 OK\r\n\r\n",	  /* no status line */
	    "HTTP/1.1 200 OK\rX\n\r\n",		  /* CR not before LF */
	    "HTTP/1.1 200 OK\r\nX: \001\r\n\r\n", /* control byte in a header */
	    "HTTP/1.1 200 OK\r\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
		http_reply_fails(replies[i], strlen(replies[i]), ECONNREFUSED,
				 "proxy: malformed reply");
	/* a NUL byte, which strlen() would hide */
	http_reply_fails("HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", 23, ECONNREFUSED,
			 "proxy: malformed reply");
}

/* A 200 reply of exactly @total bytes: status line, one padding header, empty line. */
static char *reply_of_size(size_t total)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nX: ";
	size_t pad = total - (sizeof(head) - 1) - 4;
	char *r = malloc(total + 1);

	/* abort(), not a cmocka assert: gcc must see r is non-NULL (ASan builds warn otherwise). */
	if (!r)
		abort();
	memcpy(r, head, sizeof(head) - 1);
	memset(r + sizeof(head) - 1, 'a', pad);
	memcpy(r + sizeof(head) - 1 + pad, "\r\n\r\n", 5);
	assert_int_equal(strlen(r), total);
	return r;
}

static void test_http_reply_size_is_bounded(void **state)
{
	char *ok = reply_of_size(CF_HS_HTTP_MAX_REPLY);
	char *big = reply_of_size(CF_HS_HTTP_MAX_REPLY + 1);
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, false);
	size_t used;

	(void)state;
	flush_output(hs);
	feed_all(hs, ok, CF_HS_HTTP_MAX_REPLY, CF_HS_DONE);
	cf_hs_free(hs);
	http_reply_fails(big, CF_HS_HTTP_MAX_REPLY + 1, ECONNREFUSED,
			 "proxy: HTTP reply headers too long");

	/* an endless header, fed in pieces: stops at the limit */
	hs = start_name(CF_PROXY_HTTP, false);
	flush_output(hs);
	memset(big, 'a', CF_HS_HTTP_MAX_REPLY);
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	assert_int_equal(feed(hs, big, 10000, &used), CF_HS_WANT_READ);
	assert_int_equal(feed(hs, big + 10000, 10000 - 1, &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: HTTP reply headers too long");
	cf_hs_free(hs);
	free(ok);
	free(big);
}

static void test_http_eof_before_reply_end_fails(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_HTTP, true);
	size_t used;

	(void)state;
	flush_output(hs);
	feed_all(hs, "HTTP/1.1 200 OK\r\n", 17, CF_HS_WANT_READ);
	assert_int_equal(feed(hs, "", 0, &used), CF_HS_FAILED);
	assert_int_equal(used, 0);
	expect_failed(hs, ECONNREFUSED, "proxy: connection closed during handshake");
	cf_hs_free(hs);
}

static void test_http_early_reply_while_request_unsent(void **state)
{
	static const char r407[] = "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
	static const char r200[] = "HTTP/1.1 200 OK\r\n\r\n";
	struct cf_hs *hs;
	size_t used;

	(void)state;
	/* a refusal before the whole request went out is reported as such */
	hs = start_name(CF_PROXY_HTTP, true);
	cf_hs_consumed_output(hs, 5);
	assert_int_equal(feed(hs, r407, strlen(r407), &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: HTTP 407 Proxy Authentication Required");
	cf_hs_free(hs);
	/* a success for a request it has not read cannot be right */
	hs = start_name(CF_PROXY_HTTP, true);
	assert_int_equal(feed(hs, r200, strlen(r200), &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: malformed reply");
	cf_hs_free(hs);
	/* a partial early reply leaves the request still to be sent */
	hs = start_name(CF_PROXY_HTTP, false);
	assert_int_equal(feed(hs, r200, 5, &used), CF_HS_WANT_WRITE);
	assert_int_equal(used, 5);
	flush_output(hs);
	feed_all(hs, r200 + 5, strlen(r200) - 5, CF_HS_DONE);
	cf_hs_free(hs);
}

/* --- SOCKS5 ------------------------------------------------------------------------------ */

static const uint8_t greet_noauth[] = {5, 1, 0};
static const uint8_t greet_auth[] = {5, 2, 0, 2};
static const uint8_t reply_v4[] = {5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90};
/* CONNECT example.com:443 */
#define REQ_NAME                                                                                   \
	"\x05\x01\x00\x03\x0b"                                                                     \
	"example.com"                                                                              \
	"\x01\xbb"

static void test_socks5_greeting_without_credentials_offers_no_auth(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, false);

	(void)state;
	expect_output(hs, greet_noauth, sizeof(greet_noauth));
	cf_hs_free(hs);
}

static void test_socks5_no_auth_flow_for_a_name(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, false);

	(void)state;
	expect_output(hs, greet_noauth, sizeof(greet_noauth));
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	expect_output(hs, REQ_NAME, sizeof(REQ_NAME) - 1);
	feed_all(hs, (const char *)reply_v4, sizeof(reply_v4), CF_HS_DONE);
	cf_hs_free(hs);
}

static void test_socks5_user_password_flow(void **state)
{
	static const char auth[] = "\x01\x05"
				   "alice"
				   "\x08" PASSWORD;
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, true);

	(void)state;
	expect_output(hs, greet_auth, sizeof(greet_auth));
	feed_all(hs, "\x05\x02", 2, CF_HS_WANT_WRITE);
	expect_output(hs, auth, sizeof(auth) - 1);
	feed_all(hs, "\x01\x00", 2, CF_HS_WANT_WRITE);
	expect_output(hs, REQ_NAME, sizeof(REQ_NAME) - 1);
	feed_all(hs, (const char *)reply_v4, sizeof(reply_v4), CF_HS_DONE);
	cf_hs_free(hs);
}

static void test_socks5_credentials_override_and_empty_halves(void **state)
{
	static const char auth_bob[] = "\x01\x03"
				       "bob"
				       "\x08" PASSWORD;
	static const char auth_pw_only[] = "\x01\x00\x02"
					   "pw";
	struct cf_hs_target t = {.name = "example.com", .port = 443};
	struct cf_hs *hs;

	(void)state;
	hs = start(CF_PROXY_SOCKS5, true, "bob", NULL, &t);
	flush_output(hs);
	feed_all(hs, "\x05\x02", 2, CF_HS_WANT_WRITE);
	expect_output(hs, auth_bob, sizeof(auth_bob) - 1);
	cf_hs_free(hs);
	hs = start(CF_PROXY_SOCKS5, false, NULL, "pw", &t);
	expect_output(hs, greet_auth, sizeof(greet_auth));
	feed_all(hs, "\x05\x02", 2, CF_HS_WANT_WRITE);
	expect_output(hs, auth_pw_only, sizeof(auth_pw_only) - 1);
	cf_hs_free(hs);
}

static void test_socks5_server_may_choose_no_auth_despite_credentials(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, true);

	(void)state;
	flush_output(hs);
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	expect_output(hs, REQ_NAME, sizeof(REQ_NAME) - 1);
	cf_hs_free(hs);
}

static void test_socks5_auth_failure(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, true);
	size_t used;

	(void)state;
	flush_output(hs);
	feed_all(hs, "\x05\x02", 2, CF_HS_WANT_WRITE);
	flush_output(hs);
	assert_int_equal(feed(hs, "\x01\x01", 2, &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: SOCKS5 authentication failed");
	cf_hs_free(hs);
}

static void test_socks5_bad_auth_reply_version_is_malformed(void **state)
{
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, true);
	size_t used;

	(void)state;
	flush_output(hs);
	feed_all(hs, "\x05\x02", 2, CF_HS_WANT_WRITE);
	flush_output(hs);
	assert_int_equal(feed(hs, "\x05\x00", 2, &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: malformed reply");
	cf_hs_free(hs);
}

static void socks_method_fails(bool creds, const char *reply, const char *text)
{
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, creds);
	size_t used;

	flush_output(hs);
	assert_int_equal(feed(hs, reply, 2, &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, text);
	cf_hs_free(hs);
}

static void test_socks5_method_replies(void **state)
{
	(void)state;
	socks_method_fails(true, "\x05\xff", "proxy: SOCKS5 no acceptable authentication method");
	socks_method_fails(false, "\x05\xff",
			   "proxy: SOCKS5 no acceptable authentication method "
			   "(credentials required?)");
	/* user/password chosen though not offered, GSSAPI, wrong version */
	socks_method_fails(false, "\x05\x02", "proxy: malformed reply");
	socks_method_fails(true, "\x05\x01", "proxy: malformed reply");
	socks_method_fails(false, "\x04\x00", "proxy: malformed reply");
	socks_method_fails(false, "HT", "proxy: malformed reply");
}

static void test_socks5_connect_request_for_ipv4_and_ipv6(void **state)
{
	static const char req4[] = "\x05\x01\x00\x01"
				   "\xc0\x00\x02\x07"
				   "\x00\x50";
	static const char req6[] =
	    "\x05\x01\x00\x04"
	    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	    "\xff\xfe";
	struct cf_ip v4 = ip_of("192.0.2.7"), v6 = ip_of("2001:db8::1");
	struct cf_hs_target t4 = {.ip = &v4, .port = 80}, t6 = {.ip = &v6, .port = 65534};
	struct cf_hs *hs;

	(void)state;
	hs = start(CF_PROXY_SOCKS5, false, NULL, NULL, &t4);
	flush_output(hs);
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	expect_output(hs, req4, sizeof(req4) - 1);
	cf_hs_free(hs);
	hs = start(CF_PROXY_SOCKS5, false, NULL, NULL, &t6);
	flush_output(hs);
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	expect_output(hs, req6, sizeof(req6) - 1);
	cf_hs_free(hs);
}

/* A handshake whose CONNECT request was sent, waiting for the reply. */
static struct cf_hs *socks_at_reply(void)
{
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, true);

	flush_output(hs);
	feed_all(hs, "\x05\x02", 2, CF_HS_WANT_WRITE);
	flush_output(hs);
	feed_all(hs, "\x01\x00", 2, CF_HS_WANT_WRITE);
	flush_output(hs);
	return hs;
}

static void test_socks5_reply_codes_map_to_errno(void **state)
{
	static const struct {
		uint8_t rep;
		int err;
		const char *text;
	} cases[] = {
	    {1, ECONNREFUSED, "proxy: SOCKS5 reply 1 (general SOCKS server failure)"},
	    {2, ECONNREFUSED, "proxy: SOCKS5 reply 2 (connection not allowed by ruleset)"},
	    {3, ENETUNREACH, "proxy: SOCKS5 reply 3 (network unreachable)"},
	    {4, EHOSTUNREACH, "proxy: SOCKS5 reply 4 (host unreachable)"},
	    {5, ECONNREFUSED, "proxy: SOCKS5 reply 5 (connection refused)"},
	    {6, ETIMEDOUT, "proxy: SOCKS5 reply 6 (TTL expired)"},
	    {7, ECONNREFUSED, "proxy: SOCKS5 reply 7 (command not supported)"},
	    {8, ECONNREFUSED, "proxy: SOCKS5 reply 8 (address type not supported)"},
	    {9, ECONNREFUSED, "proxy: SOCKS5 reply 9 (unassigned)"},
	    {255, ECONNREFUSED, "proxy: SOCKS5 reply 255 (unassigned)"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t reply[10] = {5, cases[i].rep, 0, 1, 0, 0, 0, 0, 0, 0};
		struct cf_hs *hs = socks_at_reply();
		size_t used;

		assert_int_equal(feed(hs, reply, sizeof(reply), &used), CF_HS_FAILED);
		expect_failed(hs, cases[i].err, cases[i].text);
		cf_hs_free(hs);
	}
	/* a refusal is reported from the first two bytes, as short replies are common */
	{
		struct cf_hs *hs = socks_at_reply();
		size_t used;

		assert_int_equal(feed(hs, "\x05\x05", 2, &used), CF_HS_FAILED);
		expect_failed(hs, ECONNREFUSED, "proxy: SOCKS5 reply 5 (connection refused)");
		cf_hs_free(hs);
	}
}

static void test_socks5_bound_address_of_each_type_is_skipped_exactly(void **state)
{
	/* each reply is followed by 3 tunnel bytes, "BAN" */
	static const char v4[] = "\x05\x00\x00\x01"
				 "\x01\x02\x03\x04"
				 "\x00\x50"
				 "BAN";
	static const char v6[] = "\x05\x00\x00\x04"
				 "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
				 "\x00\x50"
				 "BAN";
	static const char dom[] = "\x05\x00\x00\x03"
				  "\x05"
				  "h.com"
				  "\x00\x50"
				  "BAN";
	static const char dom0[] = "\x05\x00\x00\x03"
				   "\x00"
				   "\x00\x50"
				   "BAN";
	static const uint8_t dom255_head[] = {5, 0, 0, 3, 255};
	static const struct {
		const char *p;
		size_t len;
	} cases[] = {
	    {v4, sizeof(v4) - 1},
	    {v6, sizeof(v6) - 1},
	    {dom, sizeof(dom) - 1},
	    {dom0, sizeof(dom0) - 1},
	};
	uint8_t big[5 + 255 + 2 + 3];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cf_hs *hs = socks_at_reply();
		size_t used;

		assert_int_equal(feed(hs, cases[i].p, cases[i].len, &used), CF_HS_DONE);
		assert_int_equal(used, cases[i].len - 3);
		assert_memory_equal(cases[i].p + used, "BAN", 3);
		cf_hs_free(hs);
	}
	/* the longest domain form */
	memcpy(big, dom255_head, sizeof(dom255_head));
	memset(big + 5, 'a', 255 + 2);
	memcpy(big + 5 + 255 + 2, "BAN", 3);
	{
		struct cf_hs *hs = socks_at_reply();
		size_t used;

		assert_int_equal(feed(hs, big, sizeof(big), &used), CF_HS_DONE);
		assert_int_equal(used, sizeof(big) - 3);
		cf_hs_free(hs);
	}
}

static void test_socks5_malformed_connect_replies(void **state)
{
	static const uint8_t bad_ver[] = {4, 0, 0, 1, 0, 0, 0, 0, 0, 0};
	static const uint8_t bad_rsv[] = {5, 0, 1, 1, 0, 0, 0, 0, 0, 0};
	static const uint8_t bad_atyp[] = {5, 0, 0, 2, 0, 0, 0, 0, 0, 0};
	static const uint8_t bad_atyp0[] = {5, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t *const cases[] = {bad_ver, bad_rsv, bad_atyp, bad_atyp0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cf_hs *hs = socks_at_reply();
		size_t used;

		assert_int_equal(feed(hs, cases[i], 10, &used), CF_HS_FAILED);
		expect_failed(hs, ECONNREFUSED, "proxy: malformed reply");
		cf_hs_free(hs);
	}
}

static void test_socks5_whole_exchange_split_byte_by_byte(void **state)
{
	static const uint8_t reply[] = {5, 0, 0, 3, 3, 'a', '.', 'b', 0x12, 0x34};
	struct cf_hs *hs = start_name(CF_PROXY_SOCKS5, true);
	size_t used;

	(void)state;
	flush_output(hs);
	assert_int_equal(feed(hs, "\x05", 1, &used), CF_HS_WANT_READ);
	assert_int_equal(feed(hs, "\x02", 1, &used), CF_HS_WANT_WRITE);
	flush_output(hs);
	assert_int_equal(feed(hs, "\x01", 1, &used), CF_HS_WANT_READ);
	assert_int_equal(feed(hs, "\x00", 1, &used), CF_HS_WANT_WRITE);
	flush_output(hs);
	for (size_t i = 0; i + 1 < sizeof(reply); i++) {
		assert_int_equal(feed(hs, reply + i, 1, &used), CF_HS_WANT_READ);
		assert_int_equal(used, 1);
	}
	assert_int_equal(feed(hs, reply + sizeof(reply) - 1, 1, &used), CF_HS_DONE);
	assert_int_equal(used, 1);
	cf_hs_free(hs);
}

static void test_socks5_data_past_a_mid_handshake_reply_is_refused(void **state)
{
	struct cf_hs *hs;
	size_t used;

	(void)state;
	/* method reply plus bytes the proxy cannot have sent yet */
	hs = start_name(CF_PROXY_SOCKS5, false);
	flush_output(hs);
	assert_int_equal(feed(hs, "\x05\x00\x05\x00", 4, &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: malformed reply");
	cf_hs_free(hs);
	/* a method reply before the greeting was fully sent */
	hs = start_name(CF_PROXY_SOCKS5, false);
	cf_hs_consumed_output(hs, 1);
	assert_int_equal(feed(hs, "\x05", 1, &used), CF_HS_WANT_WRITE);
	assert_int_equal(feed(hs, "\x00", 1, &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: malformed reply");
	cf_hs_free(hs);
	/* a CONNECT reply before the request was fully sent */
	hs = start_name(CF_PROXY_SOCKS5, false);
	flush_output(hs);
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	assert_int_equal(feed(hs, reply_v4, sizeof(reply_v4), &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: malformed reply");
	cf_hs_free(hs);
}

static void test_socks5_eof_mid_reply_fails(void **state)
{
	struct cf_hs *hs = socks_at_reply();
	size_t used;

	(void)state;
	feed_all(hs, (const char *)reply_v4, 5, CF_HS_WANT_READ);
	assert_int_equal(feed(hs, NULL, 0, &used), CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: connection closed during handshake");
	cf_hs_free(hs);
}

/* --- SOCKS5 UDP ASSOCIATE and the UDP request header ------------------------------------- */

static void test_socks5_udp_associate_with_auth_gives_relay_address(void **state)
{
	static const char auth[] = "\x01\x05"
				   "alice"
				   "\x08" PASSWORD;
	static const uint8_t req[] = {5, 3, 0, 1, 0, 0, 0, 0, 0, 0};
	static const uint8_t reply[] = {5, 0, 0, 1, 198, 51, 100, 7, 0x9c, 0x40};
	struct cf_proxy p = make_proxy(CF_PROXY_SOCKS5, true);
	struct cf_hs *hs = NULL;
	struct cf_ip ip, want = ip_of("198.51.100.7");
	uint16_t port = 0;

	(void)state;
	assert_int_equal(cf_hs_new_udp(&p, NULL, NULL, AF_INET, &hs), 0);
	assert_int_equal(cf_hs_bound(hs, &ip, &port), -EINVAL);
	expect_output(hs, greet_auth, sizeof(greet_auth));
	feed_all(hs, "\x05\x02", 2, CF_HS_WANT_WRITE);
	expect_output(hs, auth, sizeof(auth) - 1);
	feed_all(hs, "\x01\x00", 2, CF_HS_WANT_WRITE);
	expect_output(hs, req, sizeof(req));
	feed_all(hs, (const char *)reply, sizeof(reply), CF_HS_DONE);
	assert_int_equal(cf_hs_bound(hs, &ip, &port), 0);
	assert_true(cf_ip_equal(&ip, &want));
	assert_int_equal(port, 40000);
	cf_hs_free(hs);
}

static void test_socks5_udp_associate_v6_and_refusal(void **state)
{
	static const uint8_t req6[] = {5, 3, 0, 4, 0, 0, 0, 0, 0, 0, 0,
				       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	uint8_t reply6[22] = {5, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8};
	struct cf_proxy p = make_proxy(CF_PROXY_SOCKS5, false);
	struct cf_hs *hs = NULL;
	struct cf_ip ip, want = ip_of("2001:db8::9");
	uint16_t port = 0;

	(void)state;
	reply6[19] = 9;
	reply6[21] = 53;
	assert_int_equal(cf_hs_new_udp(&p, NULL, NULL, AF_INET6, &hs), 0);
	expect_output(hs, greet_noauth, sizeof(greet_noauth));
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	expect_output(hs, req6, sizeof(req6));
	feed_all(hs, (const char *)reply6, sizeof(reply6), CF_HS_DONE);
	assert_int_equal(cf_hs_bound(hs, &ip, &port), 0);
	assert_true(cf_ip_equal(&ip, &want));
	assert_int_equal(port, 53);
	cf_hs_free(hs);

	/* microsocks and others: "command not supported" */
	assert_int_equal(cf_hs_new_udp(&p, NULL, NULL, AF_INET, &hs), 0);
	flush_output(hs);
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	flush_output(hs);
	feed_all(hs, "\x05\x07", 2, CF_HS_FAILED);
	expect_failed(hs, ECONNREFUSED, "proxy: SOCKS5 reply 7 (command not supported)");
	cf_hs_free(hs);
}

static void test_socks5_udp_associate_rejects_bad_arguments(void **state)
{
	struct cf_proxy http = make_proxy(CF_PROXY_HTTP, false);
	struct cf_proxy s = make_proxy(CF_PROXY_SOCKS5, false);
	struct cf_hs *hs = (struct cf_hs *)&s;

	(void)state;
	assert_int_equal(cf_hs_new_udp(&http, NULL, NULL, AF_INET, &hs), -EINVAL);
	assert_null(hs);
	assert_int_equal(cf_hs_new_udp(&s, NULL, NULL, AF_UNIX, &hs), -EINVAL);
	assert_int_equal(cf_hs_new_udp(NULL, NULL, NULL, AF_INET, &hs), -EINVAL);
}

static void test_socks5_bound_of_a_name_is_unsupported(void **state)
{
	struct cf_proxy p = make_proxy(CF_PROXY_SOCKS5, false);
	struct cf_hs *hs = NULL;
	struct cf_ip ip;
	uint16_t port;

	(void)state;
	assert_int_equal(cf_hs_new_udp(&p, NULL, NULL, AF_INET, &hs), 0);
	flush_output(hs);
	feed_all(hs, "\x05\x00", 2, CF_HS_WANT_WRITE);
	flush_output(hs);
	/* a 3-byte name makes a reply as long as a v4 one */
	feed_all(hs,
		 "\x05\x00\x00\x03\x03"
		 "abc"
		 "\x00\x35",
		 10, CF_HS_DONE);
	assert_int_equal(cf_hs_bound(hs, &ip, &port), -EAFNOSUPPORT);
	cf_hs_free(hs);
}

static void test_socks5_udp_header_round_trips_v4_and_v6(void **state)
{
	static const uint8_t want4[] = {0, 0, 0, 1, 203, 0, 113, 5, 0x1f, 0x90, 'h', 'i'};
	uint8_t buf[64];
	struct cf_ip ip4 = ip_of("203.0.113.5"), ip6 = ip_of("2001:db8::1"), got;
	uint16_t port = 0;
	size_t hdr = 0;
	ssize_t n;

	(void)state;
	n = cf_socks_udp_encode(buf, sizeof(buf), &ip4, 8080, (const uint8_t *)"hi", 2);
	assert_int_equal(n, sizeof(want4));
	assert_memory_equal(buf, want4, sizeof(want4));
	assert_int_equal(cf_socks_udp_decode(buf, (size_t)n, &got, &port, &hdr), 0);
	assert_true(cf_ip_equal(&got, &ip4));
	assert_int_equal(port, 8080);
	assert_int_equal(hdr, 10);

	/* the payload may already sit in the buffer: it is moved */
	memcpy(buf, "hello", 5);
	n = cf_socks_udp_encode(buf, sizeof(buf), &ip6, 53, buf, 5);
	assert_int_equal(n, CF_SOCKS_UDP_HDR_MAX + 5);
	assert_int_equal(buf[3], 4);
	assert_memory_equal(buf + CF_SOCKS_UDP_HDR_MAX, "hello", 5);
	assert_int_equal(cf_socks_udp_decode(buf, (size_t)n, &got, &port, &hdr), 0);
	assert_true(cf_ip_equal(&got, &ip6));
	assert_int_equal(port, 53);
	assert_int_equal(hdr, CF_SOCKS_UDP_HDR_MAX);

	assert_int_equal(cf_socks_udp_encode(buf, 12, &ip4, 1, buf, 3), -EMSGSIZE);
	assert_int_equal(cf_socks_udp_encode(buf, 12, &ip4, 1, buf, 2), 12);
}

static void test_socks5_udp_header_decode_refuses_bad_datagrams(void **state)
{
	static const uint8_t frag[] = {0, 0, 1, 1, 203, 0, 113, 5, 0, 53};
	static const uint8_t rsv[] = {0, 1, 0, 1, 203, 0, 113, 5, 0, 53};
	static const uint8_t name[] = {0, 0, 0, 3, 1, 'a', 0, 53};
	static const uint8_t atyp[] = {0, 0, 0, 9, 203, 0, 113, 5, 0, 53};
	static const uint8_t shortv4[] = {0, 0, 0, 1, 203, 0, 113, 5, 0};
	static const uint8_t shortv6[] = {0, 0, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0};
	struct cf_ip ip;
	uint16_t port;
	size_t hdr;

	(void)state;
	assert_int_equal(cf_socks_udp_decode(frag, sizeof(frag), &ip, &port, &hdr), -EPROTO);
	assert_int_equal(cf_socks_udp_decode(rsv, sizeof(rsv), &ip, &port, &hdr), -EBADMSG);
	assert_int_equal(cf_socks_udp_decode(name, sizeof(name), &ip, &port, &hdr), -EAFNOSUPPORT);
	assert_int_equal(cf_socks_udp_decode(atyp, sizeof(atyp), &ip, &port, &hdr), -EBADMSG);
	assert_int_equal(cf_socks_udp_decode(shortv4, sizeof(shortv4), &ip, &port, &hdr), -EBADMSG);
	assert_int_equal(cf_socks_udp_decode(shortv6, sizeof(shortv6), &ip, &port, &hdr), -EBADMSG);
	assert_int_equal(cf_socks_udp_decode(frag, 3, &ip, &port, &hdr), -EBADMSG);
}

static void test_free_accepts_null(void **state)
{
	(void)state;
	cf_hs_free(NULL);
	cf_tls_free(NULL);
	cf_tls_ctx_free(NULL);
}

/* --- TLS: a real server in this process -------------------------------------------------- */

struct cert {
	EVP_PKEY *key;
	X509 *x509;
};

/* A self-signed certificate for @san ("DNS:proxy.test", "IP:127.0.0.1"), valid from/to days. */
static struct cert make_cert(const char *san, long from_days, long to_days)
{
	struct cert c = {EVP_EC_gen("P-256"), X509_new()};
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	X509_NAME *name;

	assert_non_null(c.key);
	assert_non_null(c.x509);
	X509_set_version(c.x509, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c.x509), 1);
	X509_gmtime_adj(X509_getm_notBefore(c.x509), from_days * 86400L);
	X509_gmtime_adj(X509_getm_notAfter(c.x509), to_days * 86400L);
	X509_set_pubkey(c.x509, c.key);
	name = X509_get_subject_name(c.x509);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"childflow test", -1, -1, 0);
	X509_set_issuer_name(c.x509, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, c.x509, c.x509, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	assert_non_null(ext);
	X509_add_ext(c.x509, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(c.x509, c.key, EVP_sha256()) > 0);
	return c;
}

static void free_cert(struct cert *c)
{
	EVP_PKEY_free(c->key);
	X509_free(c->x509);
}

struct tls_pair {
	struct cf_tls_ctx *cctx;
	struct cf_tls *client;
	SSL_CTX *sctx;
	SSL *server;
	int fd[2]; /* [0] client, [1] server */
};

static void pair_start(struct tls_pair *p, const struct cert *c, bool insecure, const char *host)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd),
			 0);
	assert_int_equal(cf_tls_ctx_new(insecure, &p->cctx), 0);
	assert_int_equal(cf_tls_new(p->cctx, p->fd[0], host, &p->client), 0);
	p->sctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(p->sctx);
	assert_int_equal(SSL_CTX_use_certificate(p->sctx, c->x509), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, c->key), 1);
	p->server = SSL_new(p->sctx);
	assert_non_null(p->server);
	assert_int_equal(SSL_set_fd(p->server, p->fd[1]), 1);
	SSL_set_accept_state(p->server);
}

static void pair_free(struct tls_pair *p)
{
	cf_tls_free(p->client);
	cf_tls_ctx_free(p->cctx);
	SSL_free(p->server);
	SSL_CTX_free(p->sctx);
	if (p->fd[0] >= 0)
		close(p->fd[0]);
	if (p->fd[1] >= 0)
		close(p->fd[1]);
	ERR_clear_error();
}

/* Run both handshakes until neither can progress; return the client's result. */
static int pump_handshake(struct tls_pair *p)
{
	int cr = -EAGAIN, sdone = 0;

	for (int i = 0; i < 100 && (cr == -EAGAIN || !sdone); i++) {
		if (cr == -EAGAIN) {
			cr = cf_tls_handshake(p->client);
			if (cr == -EAGAIN)
				assert_true(cf_tls_wants(p->client) != 0);
		}
		if (!sdone) {
			int r = SSL_do_handshake(p->server);
			int e = SSL_get_error(p->server, r);

			if (r == 1)
				sdone = 1;
			else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				sdone = -1;
		}
	}
	ERR_clear_error();
	return cr;
}

static void expect_tls_result(const struct cert *c, bool insecure, const char *host, int want,
			      const char *text)
{
	struct tls_pair p = {0};
	const char *why;
	int r;

	pair_start(&p, c, insecure, host);
	r = pump_handshake(&p);
	if (r != want)
		fail_msg("handshake with %s (insecure=%d): %d, want %d (%s)", host, insecure, r,
			 want, cf_tls_error(p.client) ? cf_tls_error(p.client) : "no error text");
	if (text)
		assert_string_equal(cf_tls_error(p.client), text);
	else
		assert_null(cf_tls_error(p.client));
	/* a refused certificate is explained: the name expected and the certificate's subject */
	why = cf_tls_cert_refused(p.client);
	if (text && (strstr(text, "hostname mismatch") || strstr(text, "verify failed"))) {
		assert_non_null(why);
		assert_non_null(strstr(why, host));
		assert_non_null(strstr(why, "subject: CN = childflow test"));
	} else {
		assert_null(why);
	}
	pair_free(&p);
}

/* expect_tls_result() without --proxy-insecure, with @c in the trust store (SSL_CERT_FILE). */
static void expect_tls_trusted(const struct cert *c, const char *host, int want, const char *text)
{
	char path[] = "/tmp/cf-test-ca-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, c->x509), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(setenv("SSL_CERT_FILE", path, 1), 0);
	expect_tls_result(c, false, host, want, text);
	unsetenv("SSL_CERT_FILE");
	unlink(path);
}

static void test_tls_untrusted_certificate_is_refused_when_secure(void **state)
{
	struct cert c = make_cert("DNS:proxy.test", 0, 30);

	(void)state;
	expect_tls_result(&c, false, "proxy.test", -ECONNREFUSED,
			  "proxy TLS: certificate verify failed: self-signed certificate");
	free_cert(&c);
}

static void test_tls_insecure_accepts_self_signed_and_expired(void **state)
{
	struct cert c = make_cert("DNS:proxy.test", 0, 30);
	struct cert old = make_cert("DNS:proxy.test", -30, -1);
	struct cert future = make_cert("DNS:proxy.test", 10, 30);

	(void)state;
	expect_tls_result(&c, true, "proxy.test", 0, NULL);
	expect_tls_result(&old, true, "proxy.test", 0, NULL);
	expect_tls_result(&future, true, "proxy.test", 0, NULL);
	free_cert(&c);
	free_cert(&old);
	free_cert(&future);
}

static void test_tls_insecure_accepts_any_certificate_even_for_another_name(void **state)
{
	struct cert c = make_cert("DNS:other.test", 0, 30);
	struct cert wild = make_cert("DNS:*.proxy.test", 0, 30);
	struct cert ip = make_cert("IP:127.0.0.1", -30, -1);

	(void)state;
	/* like curl --proxy-insecure: no trust, date or name check */
	expect_tls_result(&c, true, "proxy.test", 0, NULL);
	expect_tls_result(&wild, true, "b.a.proxy.test", 0, NULL);
	expect_tls_result(&ip, true, "127.0.0.2", 0, NULL);
	expect_tls_result(&ip, true, "proxy.test", 0, NULL);
	free_cert(&c);
	free_cert(&wild);
	free_cert(&ip);
}

static void test_tls_trusted_certificate_is_still_checked_by_name(void **state)
{
	struct cert c = make_cert("DNS:other.test", 0, 30);
	struct cert wild = make_cert("DNS:*.proxy.test", 0, 30);
	struct cert partial = make_cert("DNS:p*.example.test", 0, 30);

	(void)state;
	expect_tls_trusted(&c, "other.test", 0, NULL);
	expect_tls_trusted(&c, "proxy.test", -ECONNREFUSED, "proxy TLS: hostname mismatch");
	/* wildcards match one whole label only */
	expect_tls_trusted(&wild, "a.proxy.test", 0, NULL);
	expect_tls_trusted(&wild, "b.a.proxy.test", -ECONNREFUSED, "proxy TLS: hostname mismatch");
	expect_tls_trusted(&partial, "proxy.example.test", -ECONNREFUSED,
			   "proxy TLS: hostname mismatch");
	free_cert(&c);
	free_cert(&wild);
	free_cert(&partial);
}

static void test_tls_ip_literal_host_checks_ip_san(void **state)
{
	struct cert c = make_cert("IP:127.0.0.1, IP:::1", 0, 30);

	(void)state;
	expect_tls_trusted(&c, "127.0.0.1", 0, NULL);
	expect_tls_trusted(&c, "::1", 0, NULL);
	expect_tls_trusted(&c, "127.0.0.2", -ECONNREFUSED, "proxy TLS: hostname mismatch");
	free_cert(&c);
}

static void test_tls_sni_is_the_proxy_name_but_never_an_ip(void **state)
{
	struct cert named = make_cert("DNS:proxy.test", 0, 30);
	struct cert ip = make_cert("IP:127.0.0.1", 0, 30);
	struct tls_pair p = {0};

	(void)state;
	pair_start(&p, &named, true, "proxy.test");
	assert_int_equal(pump_handshake(&p), 0);
	assert_string_equal(SSL_get_servername(p.server, TLSEXT_NAMETYPE_host_name), "proxy.test");
	pair_free(&p);
	memset(&p, 0, sizeof(p));
	pair_start(&p, &ip, true, "127.0.0.1");
	assert_int_equal(pump_handshake(&p), 0);
	assert_null(SSL_get_servername(p.server, TLSEXT_NAMETYPE_host_name));
	pair_free(&p);
	free_cert(&named);
	free_cert(&ip);
}

/* Write @c's certificate to a temp file and make it the only trusted one via SSL_CERT_FILE. */
static void trust_only(const struct cert *c, char *path, size_t len)
{
	char dir[] = "/tmp/cf-tls-XXXXXX";
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, len, "%s/ca.pem", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, c->x509), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(setenv("SSL_CERT_FILE", path, 1), 0);
	assert_int_equal(setenv("SSL_CERT_DIR", dir, 1), 0);
}

static void untrust(const char *path)
{
	char dir[256];

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_tls_secure_accepts_trusted_certificate_for_the_right_name(void **state)
{
	struct cert c = make_cert("DNS:proxy.test", 0, 30);
	struct cert old = make_cert("DNS:proxy.test", -30, -1);
	char path[256];

	(void)state;
	trust_only(&c, path, sizeof(path));
	expect_tls_result(&c, false, "proxy.test", 0, NULL);
	expect_tls_result(&c, false, "other.test", -ECONNREFUSED, "proxy TLS: hostname mismatch");
	untrust(path);
	trust_only(&old, path, sizeof(path));
	expect_tls_result(&old, false, "proxy.test", -ECONNREFUSED,
			  "proxy TLS: certificate verify failed: certificate has expired");
	untrust(path);
	free_cert(&c);
	free_cert(&old);
}

static void test_tls_data_round_trips_and_close_notify(void **state)
{
	struct cert c = make_cert("DNS:proxy.test", 0, 30);
	struct tls_pair p = {0};
	static uint8_t big[200000], got[sizeof(big)];
	size_t sent = 0, recvd = 0;
	char buf[16];
	ssize_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	pair_start(&p, &c, true, "proxy.test");
	assert_int_equal(pump_handshake(&p), 0);
	assert_int_equal(setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &(int){4096}, sizeof(int)), 0);
	/* nothing to read yet */
	assert_int_equal(cf_tls_read(p.client, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(cf_tls_wants(p.client), CF_TLS_WANT_READ);
	assert_int_equal(cf_tls_write(p.client, "ping", 0), 0);
	assert_int_equal(cf_tls_write(p.client, "ping", 4), 4);
	assert_int_equal(SSL_read(p.server, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(SSL_write(p.server, "pong!", 5), 5);
	assert_int_equal(cf_tls_read(p.client, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "pong!", 5);

	/* more than the socket buffer: short writes, -EAGAIN with WANT_WRITE */
	bool saw_eagain = false;
	while (recvd < sizeof(big)) {
		if (sent < sizeof(big)) {
			n = cf_tls_write(p.client, big + sent, sizeof(big) - sent);
			if (n == -EAGAIN) {
				saw_eagain = true;
				assert_int_equal(cf_tls_wants(p.client), CF_TLS_WANT_WRITE);
			} else {
				assert_true(n > 0);
				sent += (size_t)n;
			}
		}
		int r = SSL_read(p.server, got + recvd, (int)(sizeof(got) - recvd));
		if (r > 0)
			recvd += (size_t)r;
		else
			assert_int_equal(SSL_get_error(p.server, r), SSL_ERROR_WANT_READ);
	}
	assert_true(saw_eagain);
	assert_memory_equal(got, big, sizeof(big));

	/* close_notify both ways */
	assert_int_equal(cf_tls_shutdown(p.client), 0);
	assert_int_equal(cf_tls_shutdown(p.client), 0);
	assert_int_equal(cf_tls_write(p.client, "x", 1), -EPIPE);
	assert_true(SSL_read(p.server, buf, sizeof(buf)) <= 0);
	assert_int_equal(SSL_get_error(p.server, 0), SSL_ERROR_ZERO_RETURN);
	SSL_shutdown(p.server);
	assert_int_equal(cf_tls_read(p.client, buf, sizeof(buf)), 0);
	assert_null(cf_tls_error(p.client));
	pair_free(&p);
	free_cert(&c);
}

static void test_tls_truncated_stream_is_a_reset_not_eof(void **state)
{
	struct cert c = make_cert("DNS:proxy.test", 0, 30);
	struct tls_pair p = {0};
	char buf[16];

	(void)state;
	pair_start(&p, &c, true, "proxy.test");
	assert_int_equal(pump_handshake(&p), 0);
	assert_int_equal(shutdown(p.fd[1], SHUT_WR), 0); /* FIN without close_notify */
	assert_int_equal(cf_tls_read(p.client, buf, sizeof(buf)), -ECONNRESET);
	assert_string_equal(cf_tls_error(p.client), "proxy TLS: connection closed by the proxy");
	assert_int_equal(cf_tls_read(p.client, buf, sizeof(buf)), -EPIPE);
	assert_int_equal(cf_tls_shutdown(p.client), -ENOTCONN);
	pair_free(&p);
	free_cert(&c);
}

static void test_tls_handshake_failures_from_a_bad_peer(void **state)
{
	struct cert c = make_cert("DNS:proxy.test", 0, 30);
	static const char http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	struct tls_pair p = {0};
	const char *text;
	int r;

	(void)state;
	/* the peer closes at once */
	pair_start(&p, &c, true, "proxy.test");
	assert_int_equal(cf_tls_shutdown(p.client), -ENOTCONN);
	assert_int_equal(shutdown(p.fd[1], SHUT_WR), 0);
	r = cf_tls_handshake(p.client);
	assert_int_equal(r, -ECONNRESET);
	assert_string_equal(cf_tls_error(p.client), "proxy TLS: connection closed by the proxy");
	assert_int_equal(cf_tls_handshake(p.client), -ECONNREFUSED); /* stays failed */
	pair_free(&p);

	/* the peer speaks plain HTTP */
	memset(&p, 0, sizeof(p));
	pair_start(&p, &c, true, "proxy.test");
	assert_int_equal(write(p.fd[1], http, sizeof(http) - 1), (ssize_t)(sizeof(http) - 1));
	r = cf_tls_handshake(p.client);
	assert_int_equal(r, -ECONNREFUSED);
	text = cf_tls_error(p.client);
	assert_non_null(text);
	assert_int_equal(strncmp(text, "proxy TLS: ", 11), 0);
	assert_true(strlen(text) > 11);
	pair_free(&p);

	/* the peer's socket is gone: the socket error comes back */
	memset(&p, 0, sizeof(p));
	pair_start(&p, &c, true, "proxy.test");
	close(p.fd[1]);
	p.fd[1] = -1;
	r = cf_tls_handshake(p.client);
	assert_int_equal(r, -EPIPE);
	assert_string_equal(cf_tls_error(p.client), "proxy TLS: Broken pipe");
	pair_free(&p);
	free_cert(&c);
}

static void test_tls_new_rejects_bad_arguments(void **state)
{
	struct cf_tls_ctx *ctx;
	struct cf_tls *t = (struct cf_tls *)&ctx;

	(void)state;
	assert_int_equal(cf_tls_ctx_new(false, &ctx), 0);
	assert_int_equal(cf_tls_new(ctx, 0, "", &t), -EINVAL);
	assert_null(t);
	assert_int_equal(cf_tls_new(ctx, -1, "proxy.test", &t), -EINVAL);
	assert_int_equal(cf_tls_new(ctx, 0, NULL, &t), -EINVAL);
	assert_int_equal(cf_tls_new(NULL, 0, "proxy.test", &t), -EINVAL);
	cf_tls_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_request_for_name_without_credentials),
	    cmocka_unit_test(test_http_request_with_uri_credentials_sends_basic_auth),
	    cmocka_unit_test(test_https_scheme_speaks_the_same_connect),
	    cmocka_unit_test(test_http_credentials_override_uri_ones_independently),
	    cmocka_unit_test(test_http_basic_auth_base64_padding),
	    cmocka_unit_test(test_http_request_for_ipv4_and_ipv6_targets),
	    cmocka_unit_test(test_name_takes_precedence_over_ip),
	    cmocka_unit_test(test_output_can_be_sent_in_pieces),
	    cmocka_unit_test(test_new_rejects_bad_scheme_port_and_target),
	    cmocka_unit_test(test_new_rejects_names_that_could_inject_bytes),
	    cmocka_unit_test(test_new_rejects_overlong_credentials),
	    cmocka_unit_test(test_http_200_with_headers_opens_tunnel),
	    cmocka_unit_test(test_http_other_2xx_and_http10_without_reason_open_tunnel),
	    cmocka_unit_test(test_http_200_split_byte_by_byte),
	    cmocka_unit_test(test_http_bytes_after_reply_stay_with_the_caller),
	    cmocka_unit_test(test_http_interim_1xx_is_skipped),
	    cmocka_unit_test(test_http_error_statuses_refuse_with_canonical_reason),
	    cmocka_unit_test(test_http_error_reply_leaves_body_unread),
	    cmocka_unit_test(test_http_malformed_status_lines_fail),
	    cmocka_unit_test(test_http_reply_size_is_bounded),
	    cmocka_unit_test(test_http_eof_before_reply_end_fails),
	    cmocka_unit_test(test_http_early_reply_while_request_unsent),
	    cmocka_unit_test(test_socks5_greeting_without_credentials_offers_no_auth),
	    cmocka_unit_test(test_socks5_no_auth_flow_for_a_name),
	    cmocka_unit_test(test_socks5_user_password_flow),
	    cmocka_unit_test(test_socks5_udp_associate_with_auth_gives_relay_address),
	    cmocka_unit_test(test_socks5_udp_associate_v6_and_refusal),
	    cmocka_unit_test(test_socks5_udp_associate_rejects_bad_arguments),
	    cmocka_unit_test(test_socks5_bound_of_a_name_is_unsupported),
	    cmocka_unit_test(test_socks5_udp_header_round_trips_v4_and_v6),
	    cmocka_unit_test(test_socks5_udp_header_decode_refuses_bad_datagrams),
	    cmocka_unit_test(test_socks5_credentials_override_and_empty_halves),
	    cmocka_unit_test(test_socks5_server_may_choose_no_auth_despite_credentials),
	    cmocka_unit_test(test_socks5_auth_failure),
	    cmocka_unit_test(test_socks5_bad_auth_reply_version_is_malformed),
	    cmocka_unit_test(test_socks5_method_replies),
	    cmocka_unit_test(test_socks5_connect_request_for_ipv4_and_ipv6),
	    cmocka_unit_test(test_socks5_reply_codes_map_to_errno),
	    cmocka_unit_test(test_socks5_bound_address_of_each_type_is_skipped_exactly),
	    cmocka_unit_test(test_socks5_malformed_connect_replies),
	    cmocka_unit_test(test_socks5_whole_exchange_split_byte_by_byte),
	    cmocka_unit_test(test_socks5_data_past_a_mid_handshake_reply_is_refused),
	    cmocka_unit_test(test_socks5_eof_mid_reply_fails),
	    cmocka_unit_test(test_free_accepts_null),
	    cmocka_unit_test(test_tls_untrusted_certificate_is_refused_when_secure),
	    cmocka_unit_test(test_tls_insecure_accepts_self_signed_and_expired),
	    cmocka_unit_test(test_tls_insecure_accepts_any_certificate_even_for_another_name),
	    cmocka_unit_test(test_tls_trusted_certificate_is_still_checked_by_name),
	    cmocka_unit_test(test_tls_ip_literal_host_checks_ip_san),
	    cmocka_unit_test(test_tls_sni_is_the_proxy_name_but_never_an_ip),
	    cmocka_unit_test(test_tls_secure_accepts_trusted_certificate_for_the_right_name),
	    cmocka_unit_test(test_tls_data_round_trips_and_close_notify),
	    cmocka_unit_test(test_tls_truncated_stream_is_a_reset_not_eof),
	    cmocka_unit_test(test_tls_handshake_failures_from_a_bad_peer),
	    cmocka_unit_test(test_tls_new_rejects_bad_arguments),
	};

	/* as in childflow itself: a write to a closed socket is EPIPE, not a signal */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
