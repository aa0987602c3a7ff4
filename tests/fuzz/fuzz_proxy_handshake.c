/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a hostile proxy's replies to our HTTP CONNECT and SOCKS5 handshakes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/handshake.h"

static void run(enum cf_proxy_scheme scheme, bool auth, bool udp, const uint8_t *data, size_t size)
{
	struct cf_proxy proxy = {.scheme = scheme, .host = (char *)"proxy.test", .port = 1080};
	struct cf_ip ip = {.family = AF_INET, .b = {198, 51, 100, 10}};
	struct cf_hs_target t = {.name = "origin.test", .ip = &ip, .port = 80};
	struct cf_hs *hs = NULL;
	size_t off = 0;

	struct cf_ip bound;
	uint16_t bport;
	int r;

	if (udp && scheme == CF_PROXY_SOCKS5)
		r = cf_hs_new_udp(&proxy, auth ? "alice" : NULL, auth ? "s3cret" : NULL, AF_INET,
				  &hs);
	else
		r = cf_hs_new(&proxy, auth ? "alice" : NULL, auth ? "s3cret" : NULL, &t, &hs);
	if (r < 0)
		return;
	/* Feed in chunks whose sizes come from the input itself, so splits are explored too. */
	while (off < size) {
		const uint8_t *out;
		size_t used = 0, chunk = (size_t)(data[off] % 7) + 1;
		enum cf_hs_status st;

		cf_hs_consumed_output(hs, cf_hs_pending_output(hs, &out));
		off++;
		if (chunk > size - off)
			chunk = size - off;
		st = cf_hs_input(hs, data + off, chunk, &used);
		if (used > chunk)
			abort();
		off += chunk;
		if (st == CF_HS_DONE || st == CF_HS_FAILED)
			break;
	}
	if (cf_hs_status(hs) == CF_HS_FAILED) {
		const char *text = NULL;

		cf_hs_error(hs, &text);
		if (text && strstr(text, "s3cret"))
			abort(); /* a password in an error text */
	}
	if (cf_hs_status(hs) == CF_HS_DONE && cf_hs_bound(hs, &bound, &bport) == 0 &&
	    bound.family != AF_INET && bound.family != AF_INET6)
		abort();
	cf_hs_free(hs);
}

/* A datagram from the UDP relay: decode, and re-encode what decoded. */
static void udp_header(const uint8_t *data, size_t size)
{
	uint8_t buf[CF_SOCKS_UDP_HDR_MAX + 64];
	struct cf_ip ip;
	uint16_t port;
	size_t hdr = 0;
	ssize_t n;

	if (cf_socks_udp_decode(data, size, &ip, &port, &hdr) < 0)
		return;
	if (hdr > size)
		abort();
	n = cf_socks_udp_encode(buf, sizeof(buf), &ip, port, data + hdr,
				size - hdr < 64 ? size - hdr : 64);
	if (n < 0 || (size_t)n < hdr || memcmp(buf, data, hdr) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if ((data[0] & 8) != 0)
		udp_header(data + 1, size - 1);
	else
		run((data[0] & 1) ? CF_PROXY_SOCKS5 : CF_PROXY_HTTP, (data[0] & 2) != 0,
		    (data[0] & 4) != 0, data + 1, size - 1);
	return 0;
}
