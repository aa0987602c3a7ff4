// SPDX-License-Identifier: MIT
/*
 * Tests of the first-bytes name reader (net/peekname.c): the SNI of a real
 * ClientHello (OpenSSL's, tests/fuzz/corpus/peekname/) and of built ones,
 * split into records or cut anywhere (MORE until the name is there), without
 * SNI or with an IP literal (NONE); the Host of HTTP/1 requests with ports,
 * odd case and whitespace, cut anywhere; h2c, other protocols and IP
 * literals give NONE; nothing is ever MORE at the window's size.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/peekname.h"

#define CORPUS "../fuzz/corpus/peekname/"

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static enum cf_peek peek(const void *buf, size_t len, char *name, enum cf_peek_kind *kind)
{
	return cf_peek_name(buf, len, name, kind);
}

/*
 * Every prefix of @buf is MORE until the answer is known, then the answer:
 * the whole gives @want (and @want_name), and no prefix ever gives another.
 */
static void prefixes_then(const uint8_t *buf, size_t len, enum cf_peek want, const char *want_name,
			  enum cf_peek_kind want_kind)
{
	char name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind kind;
	bool known = false;

	for (size_t i = 0; i < len; i++) {
		enum cf_peek r = peek(buf, i, name, &kind);

		if (r != CF_PEEK_MORE || known) {
			assert_int_equal(r, want);
			known = true;
			if (want == CF_PEEK_NAME)
				assert_string_equal(name, want_name);
		}
	}
	assert_int_equal(peek(buf, len, name, &kind), want);
	if (want == CF_PEEK_NAME) {
		assert_string_equal(name, want_name);
		assert_int_equal(kind, want_kind);
	}
}

/* A ClientHello for @sni (NULL: no SNI) after an extension of @pad bytes, in records of @rec. */
static size_t build_hello(uint8_t *out, const char *sni, size_t pad, size_t rec)
{
	uint8_t body[4096], hs[4096];
	size_t n = 0, ext_at, hl, o = 0;

	memset(body, 0x11, 34);
	n = 34;
	body[n++] = 0; /* session id */
	body[n++] = 0;
	body[n++] = 2;
	body[n++] = 0x13;
	body[n++] = 0x01;
	body[n++] = 1;
	body[n++] = 0;
	ext_at = n;
	n += 2;
	body[n++] = 0x00; /* padding (21) */
	body[n++] = 21;
	body[n++] = (uint8_t)(pad >> 8);
	body[n++] = (uint8_t)pad;
	memset(body + n, 0, pad);
	n += pad;
	if (sni) {
		size_t sl = strlen(sni);

		body[n++] = 0;
		body[n++] = 0;
		body[n++] = (uint8_t)((sl + 5) >> 8);
		body[n++] = (uint8_t)(sl + 5);
		body[n++] = (uint8_t)((sl + 3) >> 8);
		body[n++] = (uint8_t)(sl + 3);
		body[n++] = 0;
		body[n++] = (uint8_t)(sl >> 8);
		body[n++] = (uint8_t)sl;
		memcpy(body + n, sni, sl);
		n += sl;
	}
	body[ext_at] = (uint8_t)((n - ext_at - 2) >> 8);
	body[ext_at + 1] = (uint8_t)(n - ext_at - 2);
	hs[0] = 1;
	hs[1] = 0;
	hs[2] = (uint8_t)(n >> 8);
	hs[3] = (uint8_t)n;
	memcpy(hs + 4, body, n);
	hl = n + 4;
	for (size_t at = 0; at < hl; at += rec) {
		size_t k = hl - at < rec ? hl - at : rec;

		out[o++] = 22;
		out[o++] = 3;
		out[o++] = 1;
		out[o++] = (uint8_t)(k >> 8);
		out[o++] = (uint8_t)k;
		memcpy(out + o, hs + at, k);
		o += k;
	}
	return o;
}

static void openssl_client_hello_gives_its_sni_and_every_prefix_waits(void **state)
{
	uint8_t buf[4096];
	size_t n = read_file(CORPUS "tls-openssl-sni.bin", buf, sizeof(buf));

	(void)state;
	prefixes_then(buf, n, CF_PEEK_NAME, "www.example.com", CF_PEEK_TLS_SNI);
}

static void client_hello_without_sni_is_none(void **state)
{
	uint8_t buf[4096];
	char name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind kind;
	size_t n = read_file(CORPUS "tls-openssl-nosni.bin", buf, sizeof(buf));

	(void)state;
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NONE);
	n = build_hello(buf, NULL, 10, 16384);
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NONE);
}

static void client_hello_split_into_records_is_read_across_them(void **state)
{
	uint8_t buf[8192];
	size_t n;

	(void)state;
	n = build_hello(buf, "Split.Example.ORG", 300, 7);
	prefixes_then(buf, n, CF_PEEK_NAME, "Split.Example.ORG", CF_PEEK_TLS_SNI);
}

static void sni_ip_literal_and_bad_lengths_are_none(void **state)
{
	uint8_t buf[4096];
	char name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind kind;
	size_t n;

	(void)state;
	n = build_hello(buf, "198.51.100.7", 0, 16384);
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NONE);
	n = build_hello(buf, "a.example", 0, 16384);
	buf[3] = 0x50; /* record longer than the largest allowed */
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NONE);
	n = build_hello(buf, "a.example", 0, 16384);
	buf[5] = 2; /* ServerHello, not ClientHello */
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NONE);
	n = build_hello(buf, "a.example", 0, 16384);
	buf[1] = 1; /* not TLS: read as HTTP, which it is not either */
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NONE);
}

/*
 * A message that goes on in a next record whose header is invalid (length 0,
 * or more than a record holds): what the first record already showed stands,
 * as it did for every prefix that ended before that header (found by the
 * fuzz target: the whole gave NONE after its prefixes gave the name).
 */
static void a_bad_record_after_the_name_keeps_the_name(void **state)
{
	static const uint8_t bad[][2] = {{0, 0}, {0x50, 0}};
	uint8_t buf[4096];
	size_t n, len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = build_hello(buf, "a.example", 0, 16384);
		len = ((size_t)buf[7] << 8 | buf[8]) + 10; /* the message announces more */
		buf[7] = (uint8_t)(len >> 8);
		buf[8] = (uint8_t)len;
		buf[n++] = 22;
		buf[n++] = 3;
		buf[n++] = 1;
		buf[n++] = bad[i][0];
		buf[n++] = bad[i][1];
		prefixes_then(buf, n, CF_PEEK_NAME, "a.example", CF_PEEK_TLS_SNI);
	}
}

static void http_host_is_found_without_port_and_every_prefix_waits(void **state)
{
	uint8_t buf[1024];
	size_t n = read_file(CORPUS "http-host.txt", buf, sizeof(buf));
	static const char lf[] = "POST http://x/ HTTP/1.0\nHOST:Origin.Test\n\n";
	static const char v6[] = "GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n";
	static const char v4[] = "GET / HTTP/1.1\r\nHost: 198.51.100.7\r\n\r\n";
	static const char none[] = "GET / HTTP/1.1\r\nAccept: */*\r\n\r\nHost: late.example\r\n";
	char name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind kind;

	(void)state;
	/* the Host line is complete well before the head ends */
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NAME);
	assert_string_equal(name, "origin.test");
	assert_int_equal(kind, CF_PEEK_HTTP_HOST);
	prefixes_then((const uint8_t *)lf, strlen(lf) - 1, CF_PEEK_NAME, "Origin.Test",
		      CF_PEEK_HTTP_HOST);
	assert_int_equal(peek(v6, strlen(v6), name, &kind), CF_PEEK_NONE);
	assert_int_equal(peek(v4, strlen(v4), name, &kind), CF_PEEK_NONE);
	assert_int_equal(peek(none, strlen(none), name, &kind), CF_PEEK_NONE);
}

static void other_protocols_and_h2c_are_none(void **state)
{
	uint8_t buf[1024];
	size_t n = read_file(CORPUS "h2c-preface.txt", buf, sizeof(buf));
	char name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind kind;
	static const char *const others[] = {
	    "SSH-2.0-OpenSSH_9.2\r\n",	       "get / HTTP/1.1\r\nHost: a\r\n\r\n",
	    "GET / HTTP/2\r\nHost: a\r\n\r\n", "\x05\x01\x00",
	    "HELLOWORLDHELLOWORLDHELLO ",      " GET / HTTP/1.1\r\n"};

	(void)state;
	assert_int_equal(peek(buf, n, name, &kind), CF_PEEK_NONE);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_int_equal(peek(others[i], strlen(others[i]), name, &kind), CF_PEEK_NONE);
	assert_int_equal(peek("", 0, name, &kind), CF_PEEK_MORE);
	assert_int_equal(peek("GE", 2, name, &kind), CF_PEEK_MORE);
}

static void nothing_waits_past_the_window(void **state)
{
	static uint8_t big[CF_PEEK_WINDOW + 64];
	char name[CF_PEEK_NAME_MAX];
	enum cf_peek_kind kind;
	size_t n;

	(void)state;
	/* a request head that never ends */
	memcpy(big, "GET / HTTP/1.1\r\n", 16);
	memset(big + 16, 'a', sizeof(big) - 16);
	for (size_t i = 96; i < sizeof(big); i += 80)
		big[i] = '\n';
	assert_int_equal(peek(big, CF_PEEK_WINDOW - 1, name, &kind), CF_PEEK_MORE);
	assert_int_equal(peek(big, CF_PEEK_WINDOW, name, &kind), CF_PEEK_NONE);
	/* a ClientHello padded past the window before its SNI */
	n = build_hello(big, "late.example", 3000, 16384);
	assert_int_equal(peek(big, n, name, &kind), CF_PEEK_NAME);
	assert_int_equal(peek(big, n - 20, name, &kind), CF_PEEK_MORE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(openssl_client_hello_gives_its_sni_and_every_prefix_waits),
	    cmocka_unit_test(client_hello_without_sni_is_none),
	    cmocka_unit_test(client_hello_split_into_records_is_read_across_them),
	    cmocka_unit_test(a_bad_record_after_the_name_keeps_the_name),
	    cmocka_unit_test(sni_ip_literal_and_bad_lengths_are_none),
	    cmocka_unit_test(http_host_is_found_without_port_and_every_prefix_waits),
	    cmocka_unit_test(other_protocols_and_h2c_are_none),
	    cmocka_unit_test(nothing_waits_past_the_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
