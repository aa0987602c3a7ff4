/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the proxy URI parser and formatter (src/config/proxyuri.c):
 * a URI comes from the command line, a profile or the environment, and its
 * password must never reach a message. The input is the URI (cut at its first
 * NUL); its last byte also picks the size of a formatting buffer.
 * Properties, abort on violation:
 *
 * - a parsed URI has a scheme, a host and a port; formatted (password shown)
 *   it parses back to the same scheme, host, port, user and password, and
 *   the formatted length is what strlen says;
 * - formatting into a smaller buffer fails with -ENOSPC and leaves "" (no
 *   partial URI, which could hold part of a password);
 * - formatted with the password masked, the text is the unmasked one with
 *   the encoded password (between the userinfo's ':' and the last '@')
 *   replaced by "***";
 * - on failure, the message is one line, quotes the URI masked (not much
 *   longer than the URI) and then the reason, and does not contain the password
 *   as the URI spells it (the bytes between the first ':' of the userinfo
 *   and the last '@'), nor does it after a successful parse masked.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/proxyuri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * The password as @uri spells it, when it is long enough to be told apart:
 * after the scheme, between the first ':' before the last '@' and that '@'.
 * Only when it does not occur elsewhere in @uri, holds no byte a message
 * replaces ('?' for control bytes) and one byte no message text has, so
 * finding it in a message means a leak.
 */
static bool spelled_password(const char *uri, char *pw, size_t cap)
{
	const char *auth = strstr(uri, "://"), *at, *colon;
	size_t n;

	auth = auth ? auth + 3 : uri;
	at = strrchr(auth, '@');
	colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (!colon)
		return false;
	n = (size_t)(at - colon - 1);
	if (n < 6 || n >= cap)
		return false;
	memcpy(pw, colon + 1, n);
	pw[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f)
			return false;
	/*
	 * A byte no fixed message text has, so the message cannot spell it by
	 * chance; and no quote or '*', so it cannot span the quoted URI's edges
	 * or its "***" either.
	 */
	if (!strpbrk(pw, "~!$&=,") || strpbrk(pw, "'*"))
		return false;
	return !strstr(at, pw) && strstr(uri, pw) == colon + 1;
}

/*
 * The message quotes the URI with at most its password replaced by "***",
 * then gives the reason (at most 255 bytes): so it is never much longer than
 * the URI, and a URI short enough is quoted whole, reason included.
 */
static void check_message_length(const char *uri)
{
	static const char head[] = "invalid proxy URI '";
	size_t len = strlen(uri);
	struct cf_proxy p;
	char full[2048];

	if (len == 0 || len >= 400) /* "empty proxy URI"; or the quote is cut */
		return;
	CHECK(cf_proxy_parse(uri, &p, full, sizeof(full)) == -EINVAL);
	CHECK(strncmp(full, head, strlen(head)) == 0);
	CHECK(strlen(full) <= strlen(head) + len + 3 + strlen("': ") + 255);
	CHECK(strstr(full, "': "));
}

static void check_roundtrip(const struct cf_proxy *p, size_t small)
{
	size_t cap =
	    3 * ((p->user ? strlen(p->user) : 0) + (p->password ? strlen(p->password) : 0)) + 512;
	char *buf = malloc(cap), tiny[512];
	struct cf_proxy back;
	char err[256];
	int n;

	CHECK(p->scheme != CF_PROXY_NONE && p->host && p->port != 0);
	if (!buf)
		return;
	n = cf_proxy_format(p, false, buf, cap);
	CHECK(n > 0 && (size_t)n == strlen(buf));
	CHECK(cf_proxy_parse(buf, &back, err, sizeof(err)) == 0);
	CHECK(back.scheme == p->scheme && back.port == p->port && strcmp(back.host, p->host) == 0);
	CHECK(same_str(back.user, p->user) && same_str(back.password, p->password));
	cf_proxy_free(&back);

	if (small <= (size_t)n) {
		memset(tiny, 'x', sizeof(tiny));
		CHECK(cf_proxy_format(p, false, tiny, small) == -ENOSPC);
		CHECK(small == 0 || tiny[0] == '\0');
		CHECK(tiny[small] == 'x');
	}

	/* Masked, the encoded password between the userinfo's ':' and the last '@' is "***". */
	if (p->password) {
		char *masked = malloc(cap);
		const char *colon = strchr(strstr(buf, "://") + 3, ':');
		const char *at = strrchr(buf, '@');
		size_t pre;

		CHECK(colon && at && colon < at);
		pre = (size_t)(colon - buf) + 1;
		if (masked) {
			n = cf_proxy_format(p, true, masked, cap);
			CHECK(n > 0 && (size_t)n == strlen(masked));
			CHECK(memcmp(masked, buf, pre) == 0 &&
			      strncmp(masked + pre, "***", 3) == 0);
			CHECK(strcmp(masked + pre + 3, at) == 0);
			free(masked);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri = malloc(size + 1), err[300], pw[4096];
	struct cf_proxy p;
	size_t small = size ? data[size - 1] : 0;
	int r;

	if (!uri)
		return 0;
	memcpy(uri, data, size);
	uri[size] = '\0';
	memset(err, 'x', sizeof(err));
	r = cf_proxy_parse(uri, &p, err, sizeof(err));
	if (r == 0) {
		check_roundtrip(&p, small);
		cf_proxy_free(&p);
	} else {
		CHECK(r == -EINVAL);
		CHECK(p.scheme == CF_PROXY_NONE && !p.host && !p.user && !p.password);
		CHECK(memchr(err, '\0', sizeof(err)) && !strchr(err, '\n'));
		if (spelled_password(uri, pw, sizeof(pw)))
			CHECK(!strstr(err, pw));
		check_message_length(uri);
	}
	/* No message buffer at all is fine too. */
	if (cf_proxy_parse(uri, &p, NULL, 0) == 0)
		cf_proxy_free(&p);
	free(uri);
	return 0;
}
