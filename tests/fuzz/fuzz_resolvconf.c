/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the host's resolv.conf parser (cf_resolvconf_parse):
 * the file is outside childflow's control. The input is the file's text (cut
 * at its first NUL, as cf_resolvconf_read() hands the parser a C string).
 * Properties, abort on violation:
 *
 * - at most CF_RESOLV_MAX servers, each AF_INET or AF_INET6, no repeats, and
 *   the unused bytes of a v4 address zero;
 * - every server found is the first word after "nameserver" on some line of
 *   the input (printed back with inet_ntop, it parses to the same address);
 * - the servers rendered with cf_resolvconf_render() parse back to the same
 *   set, v4 first then v6, each in order.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/resolvconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static size_t addr_len(const struct cf_ip *ip)
{
	return ip->family == AF_INET ? 4 : 16;
}

static void check_servers(const struct cf_resolvconf *rc)
{
	static const uint8_t zero[16];

	CHECK(rc->n <= CF_RESOLV_MAX);
	for (size_t i = 0; i < rc->n; i++) {
		const struct cf_ip *a = &rc->servers[i];

		CHECK(a->family == AF_INET || a->family == AF_INET6);
		if (a->family == AF_INET)
			CHECK(memcmp(a->b + 4, zero, 12) == 0);
		for (size_t j = 0; j < i; j++)
			CHECK(rc->servers[j].family != a->family ||
			      memcmp(rc->servers[j].b, a->b, addr_len(a)) != 0);
	}
}

/* The render of @rc parses back to its servers, v4 first, then v6. */
static void check_render(const struct cf_resolvconf *rc)
{
	char buf[CF_RESOLV_MAX * 64 + 128];
	struct cf_resolvconf back;
	ssize_t n = cf_resolvconf_render(rc->servers, rc->n, buf, sizeof(buf));
	size_t k = 0;

	CHECK(n >= 0 && (size_t)n == strlen(buf));
	CHECK(cf_resolvconf_parse(buf, &back) == 0);
	CHECK(back.n == rc->n);
	for (int pass = 0; pass < 2; pass++) {
		int fam = pass == 0 ? AF_INET : AF_INET6;

		for (size_t i = 0; i < rc->n; i++) {
			if (rc->servers[i].family != fam)
				continue;
			CHECK(back.servers[k].family == fam);
			CHECK(memcmp(back.servers[k].b, rc->servers[i].b,
				     addr_len(&rc->servers[i])) == 0);
			k++;
		}
	}
}

/* Some line of @text names @ip right after "nameserver" (in some spelling inet_pton takes). */
static void check_found_in(const char *text, const struct cf_ip *ip)
{
	for (const char *p = text; (p = strstr(p, "nameserver")) != NULL; p++) {
		const char *w = p + strlen("nameserver");
		char tok[64];
		size_t len;
		struct cf_ip got = {.family = ip->family};

		w += strspn(w, " \t\r\v\f");
		len = strcspn(w, " \t\r\v\f\n#;");
		if (len == 0 || len >= sizeof(tok))
			continue;
		memcpy(tok, w, len);
		tok[len] = '\0';
		if (inet_pton(ip->family, tok, got.b) == 1 &&
		    memcmp(got.b, ip->b, addr_len(ip)) == 0)
			return;
	}
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cf_resolvconf rc;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	CHECK(cf_resolvconf_parse(text, &rc) == 0);
	check_servers(&rc);
	for (size_t i = 0; i < rc.n; i++)
		check_found_in(text, &rc.servers[i]);
	check_render(&rc);
	free(text);
	return 0;
}
