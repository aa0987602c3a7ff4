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
 *   set, v4 first then v6, each in order; into a buffer too small, the
 *   render fails with -ENOSPC;
 * - cf_resolvconf_read() of the input as a file (NULs included) finds what
 *   the parser finds in the text with each NUL read as a newline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* Into every buffer shorter than the whole render: -ENOSPC, and no write past it. */
static void check_render_short(const struct cf_resolvconf *rc, size_t cap)
{
	char full[CF_RESOLV_MAX * 64 + 128], *buf;
	ssize_t n = cf_resolvconf_render(rc->servers, rc->n, full, sizeof(full));

	CHECK(n >= 0);
	if (cap > (size_t)n)
		return;
	buf = malloc(cap ? cap : 1); /* exact size: ASan sees a write past it */
	if (!buf)
		return;
	CHECK(cf_resolvconf_render(rc->servers, rc->n, buf, cap) == -ENOSPC);
	free(buf);
}

/*
 * cf_resolvconf_read() of @data as a file agrees with the parser on the text,
 * NULs as newlines. The file is a memfd, opened by its /proc/self/fd path:
 * no disk, nothing to clean up.
 */
static void check_read(const uint8_t *data, size_t size, const struct cf_resolvconf *want_nul)
{
	static int fd = -1;
	static char path[64];
	struct cf_resolvconf got;

	if (fd < 0) {
		fd = memfd_create("cf-fuzz-resolv.conf", MFD_CLOEXEC);
		CHECK(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	CHECK(cf_resolvconf_read(path, &got) == 0);
	CHECK(memcmp(&got, want_nul, sizeof(got)) == 0);
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
	check_render_short(&rc, size ? data[0] : 0);
	/* What a file with these bytes gives: NULs read as newlines. */
	for (size_t i = 0; i < size; i++)
		if (text[i] == '\0')
			text[i] = '\n';
	CHECK(cf_resolvconf_parse(text, &rc) == 0);
	check_read(data, size, &rc);
	free(text);
	return 0;
}
