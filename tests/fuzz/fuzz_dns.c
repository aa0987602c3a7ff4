// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the DNS message code: the child's queries and the
 * upstream answers are hostile input. Every input goes through both parsers
 * and both answer builders; the properties below abort on violation:
 *
 * - a parsed qname is lower case, has no trailing dot and fits its buffer;
 * - an answer built for a query parses back as a response with the same id,
 *   and (when the query had a usable question) the same question;
 * - every A/AAAA/CNAME record from cf_dns_parse_answer is well formed;
 * - cf_dns_answer_keep_chain keeps a subset with at most CF_DNS_CHAIN_MAX CNAMEs.
 *
 * Build (the lead wires this into meson): clang -fsanitize=fuzzer,address,undefined
 * -Isrc tests/fuzz/fuzz_dns.c src/dns/message.c -lldns
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static void check_name(const char *name)
{
	size_t n = strnlen(name, CF_DNS_NAMELEN);

	CHECK(n < CF_DNS_NAMELEN);
	for (size_t i = 0; i < n; i++)
		CHECK(name[i] < 'A' || name[i] > 'Z');
	/* A trailing dot is only possible escaped ("\."), never as the root marker. */
	if (n > 0 && name[n - 1] == '.')
		CHECK(n >= 2 && name[n - 2] == '\\');
}

static void check_reply(const uint8_t *reply, ssize_t len, const struct cf_dns_query *q)
{
	struct cf_dns_query back;

	if (len < 0)
		return;
	CHECK(len >= CF_DNS_HEADER_LEN);
	CHECK(cf_dns_parse_query(reply, (size_t)len, &back) == 0);
	CHECK(back.is_response);
	CHECK(back.id == q->id);
	if (back.has_question && q->has_question) {
		CHECK(strcmp(back.qname, q->qname) == 0);
		CHECK(back.qtype == q->qtype && back.qclass == q->qclass);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cf_ip ips[2] = {
	    {.family = AF_INET, .b = {192, 0, 2, 1}},
	    {.family = AF_INET6, .b = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}},
	};
	struct cf_dns_query q;
	struct cf_dns_answer a;
	uint8_t out[1024];
	ssize_t n;
	bool asked = false;

	if (cf_dns_parse_query(data, size, &q) == 0) {
		asked = q.has_question;
		char buf[16];

		check_name(q.qname);
		CHECK(cf_dns_type_name(q.qtype, buf, sizeof(buf)) != NULL);
		if (!q.has_question)
			CHECK(q.qname[0] == '\0' && q.qtype == 0);
		if (!q.is_response) {
			n = cf_dns_build_empty_answer(data, size, CF_DNS_RCODE_REFUSED, out,
						      sizeof(out));
			check_reply(out, n, &q);
			n = cf_dns_build_address_answer(data, size, ips, 2, 60, out, sizeof(out));
			check_reply(out, n, &q);
		}
	} else if (size >= CF_DNS_HEADER_LEN && !(data[2] & 0x80)) {
		/* Unparsable queries still get a FORMERR with their id. */
		n = cf_dns_build_empty_answer(data, size, CF_DNS_RCODE_NOERROR, out, sizeof(out));
		CHECK(n == CF_DNS_HEADER_LEN);
		CHECK(out[0] == data[0] && out[1] == data[1]);
	}

	if (cf_dns_parse_answer(data, size, &a) == 0) {
		for (size_t i = 0; i < a.n; i++) {
			check_name(a.rr[i].name);
			if (a.rr[i].is_cname)
				check_name(a.rr[i].target);
			else
				CHECK(a.rr[i].ip.family == AF_INET ||
				      a.rr[i].ip.family == AF_INET6);
		}
		CHECK(a.rcode <= 15);
		if (asked) {
			/* What the name memory may learn: a subset, at most the chain's links. */
			size_t before = a.n, links = 0;

			CHECK(cf_dns_answer_keep_chain(&a, q.qname) == a.n && a.n <= before);
			for (size_t i = 0; i < a.n; i++)
				links += a.rr[i].is_cname;
			CHECK(links <= CF_DNS_CHAIN_MAX);
		}
		cf_dns_answer_free(&a);
	}
	return 0;
}
