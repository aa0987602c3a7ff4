// SPDX-License-Identifier: MIT
/*
 * Unit tests of src/dns/message.c: real DNS messages (built once with
 * Python's struct module, annotated below; ldns prints them back as
 * described), malformed ones, and the synthetic answers read back by ldns.
 *
 * Without ASan, the test binary replaces malloc/calloc/realloc/free with a
 * counting allocator that can fail the Nth allocation (ldns's included), so
 * every -ENOMEM path is walked and checked for leaks. Under ASan or valgrind
 * (which own malloc) those tests are skipped; ASan checks the rest for leaks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns/message.h"

/* ---- failing allocator --------------------------------------------------------------------- */

#define ALLOC_SPARE_SITES
#include "alloc_count.h"

#if ALLOC_INJECT
#include <dlfcn.h>
#include <execinfo.h>

/*
 * Allocation sites inside ldns 1.8.3 whose failure ldns itself mishandles:
 * a NULL dereference (ldns_pkt_new's lists, ldns_wire2rr's ldns_rr_new),
 * rdata silently dropped (ldns_wire2rdf), or an allocation failure reported
 * as a parse error (ldns_rr_list_push_rr in ldns_wire2pkt). The code under
 * test cannot do better there, so those failures are not injected.
 */
static const struct {
	const char *callee; /* the function that called malloc */
	const char *caller; /* its caller, or NULL for any */
} ldns_unsafe_sites[] = {
    {"ldns_rr_list_new", NULL},
    {"ldns_rr_new", "ldns_wire2rr"},
    {"ldns_rr_list_push_rr", "ldns_wire2pkt"},
    {"ldns_rdf_new", "ldns_wire2rdf"},
    {"ldns_rr_push_rdf", "ldns_wire2rdf"},
};

static bool frame_is(void *addr, const char *name)
{
	Dl_info di;

	return name == NULL ||
	       (dladdr(addr, &di) && di.dli_sname && strcmp(di.dli_sname, name) == 0);
}

static bool alloc_spare_site(void)
{
	void *bt[8];
	int n = backtrace(bt, 8);

	for (int i = 0; i + 1 < n; i++)
		for (size_t j = 0; j < sizeof(ldns_unsafe_sites) / sizeof(ldns_unsafe_sites[0]);
		     j++)
			if (frame_is(bt[i], ldns_unsafe_sites[j].callee) &&
			    frame_is(bt[i + 1], ldns_unsafe_sites[j].caller))
				return true;
	return false;
}

/* backtrace() allocates on its first call (it loads libgcc_s): do that outside any test. */
static void alloc_prime(void)
{
	void *bt[2];

	(void)backtrace(bt, 2);
}
#else
static void alloc_prime(void)
{
}
#endif

/*
 * Run @call with the 0th, 1st, 2nd, ... allocation failing until no
 * allocation is left to fail. Each run must either return -ENOMEM or
 * succeed with a complete result that passes @on_success (ldns has a few
 * allocations it can do without, e.g. shrinking a buffer). Every run must
 * free all it allocated, and at least one failure must lead to -ENOMEM.
 */
#define FOR_EACH_ALLOC_FAILURE(r, call, on_success)                                                \
	do {                                                                                       \
		long enomem_ = 0;                                                                  \
		require_alloc_injection();                                                         \
		for (long at_ = 0;; at_++) {                                                       \
			long live_ = alloc_live;                                                   \
			alloc_arm(at_);                                                            \
			r = (call);                                                                \
			alloc_disarm();                                                            \
			if (r == -ENOMEM) {                                                        \
				assert_true(alloc_fired);                                          \
				enomem_++;                                                         \
			} else {                                                                   \
				assert_true(r >= 0);                                               \
				on_success;                                                        \
			}                                                                          \
			assert_int_equal(alloc_live, live_);                                       \
			if (!alloc_reached)                                                        \
				break;                                                             \
			assert_true(at_ < 10000);                                                  \
		}                                                                                  \
		print_message("%ld allocation failures gave -ENOMEM\n", enomem_);                  \
		assert_true(enomem_ > 0);                                                          \
	} while (0)

/* ---- test messages -------------------------------------------------------------------------- */

/* id 0x1234, RD+AD, "www.Example.COM." A IN, EDNS0 OPT (as dig sends) */
static const uint8_t q_a_mixed_case[] = {
    0x12, 0x34, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x77, 0x77,
    0x77, 0x07, 0x45, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x43, 0x4f, 0x4d, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* id 0xbeef, RD, "example.org." AAAA IN */
static const uint8_t q_aaaa[] = {
    0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x1c, 0x00, 0x01,
};

/* id 0x0001, RD, "Example.NET." HTTPS (65) IN */
static const uint8_t q_https[] = {
    0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x45, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x4e, 0x45, 0x54, 0x00, 0x00, 0x41, 0x00, 0x01,
};

/* id 0x0002, no RD, root "." NS IN */
static const uint8_t q_root_ns[] = {
    0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
};

/* id 0x0003, header only: QDCOUNT 0 */
static const uint8_t q_no_question[] = {
    0x00, 0x03, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* id 0x0004, two questions "a.example." and "b.example." A */
static const uint8_t q_two_questions[] = {
    0x00, 0x04, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x61,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01,
    0x62, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x00, 0x00, 0x01, 0x00, 0x01,
};

/* id 0x0005, RD+CD, "example.com." TXT CH */
static const uint8_t q_txt_chaos_cd[] = {
    0x00, 0x05, 0x01, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x10, 0x00, 0x03,
};

/* id 0x0006, A for a name whose first label is the 5 octets a . b \ C */
static const uint8_t q_escaped_label[] = {
    0x00, 0x06, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x61, 0x2e, 0x62,
    0x5c, 0x43, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x00, 0x00, 0x01, 0x00, 0x01,
};

/* id 0x4321, QR RD RA NOERROR, "www.Example.com." A; answers (all names compressed):
 * www.example.com CNAME edge.example.net (300), edge.example.net CNAME e1.cdn.example.net (60),
 * e1.cdn.example.net A 192.0.2.1 (20), A 192.0.2.2 (20), TXT "hello world" (skipped),
 * AAAA 2001:db8::1 (40), and a CH-class A 198.51.100.9 (skipped) */
static const uint8_t r_cname_chain[] = {
    0x43, 0x21, 0x81, 0x80, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x03, 0x77, 0x77, 0x77,
    0x07, 0x45, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00,
    0x01, 0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x12, 0x04, 0x65, 0x64,
    0x67, 0x65, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x6e, 0x65, 0x74, 0x00, 0xc0,
    0x2d, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x09, 0x02, 0x65, 0x31, 0x03, 0x63,
    0x64, 0x6e, 0xc0, 0x32, 0xc0, 0x4b, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x14, 0x00, 0x04,
    0xc0, 0x00, 0x02, 0x01, 0xc0, 0x4b, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x14, 0x00, 0x04,
    0xc0, 0x00, 0x02, 0x02, 0xc0, 0x4b, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x0c,
    0x0b, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64, 0xc0, 0x4b, 0x00, 0x1c,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x28, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x4b, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00,
    0x00, 0x32, 0x00, 0x04, 0xc6, 0x33, 0x64, 0x09,
};

/* id 0x5555, QR RD RA NXDOMAIN, "nope.example.com." A, SOA in authority */
static const uint8_t r_nxdomain[] = {
    0x55, 0x55, 0x81, 0x83, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x6e, 0x6f,
    0x70, 0x65, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00,
    0x00, 0x01, 0x00, 0x01, 0xc0, 0x11, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00,
    0x39, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x0a,
    0x68, 0x6f, 0x73, 0x74, 0x6d, 0x61, 0x73, 0x74, 0x65, 0x72, 0x07, 0x65, 0x78, 0x61, 0x6d,
    0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x0e,
    0x10, 0x00, 0x00, 0x02, 0x58, 0x00, 0x01, 0x51, 0x80, 0x00, 0x00, 0x00, 0x3c,
};

/* id 0x6666, NOERROR, "example.com." TXT "v=spf1 -all": no A/AAAA/CNAME */
static const uint8_t r_txt_only[] = {
    0x66, 0x66, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x10, 0x00,
    0x01, 0xc0, 0x0c, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x64, 0x00, 0x0c, 0x0b,
    0x76, 0x3d, 0x73, 0x70, 0x66, 0x31, 0x20, 0x2d, 0x61, 0x6c, 0x6c,
};

/* label length byte 0x41: the reserved 01 label type */
static const uint8_t bad_label_type[] = {
    0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41, 0x78,
    0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
    0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
    0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
    0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
    0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x00, 0x00, 0x01, 0x00, 0x01,
};

/* label length 63 with only 3 octets left */
static const uint8_t bad_label_overrun[] = {
    0x01, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x61, 0x62, 0x63,
};

/* question name is a pointer to itself (offset 12) */
static const uint8_t bad_pointer_self[] = {
    0x01, 0x02, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01,
};

/* two names pointing at each other: a -> (b -> a -> ...) */
static const uint8_t bad_pointer_loop[] = {
    0x01, 0x03, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x61, 0xc0, 0x14, 0x00, 0x01, 0x00, 0x01, 0x01, 0x62, 0xc0, 0x0c,
};

/* question cut inside the name */
static const uint8_t bad_truncated_question[] = {
    0x01, 0x04, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
};

/* A record announcing rdlength 4 with 3 octets left */
static const uint8_t bad_rdata_overrun[] = {
    0x01, 0x05, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0,
    0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 0xc0, 0x00, 0x02,
};

/* A record with rdlength 5 followed by a good A record */
static const uint8_t bad_a_rdlength[] = {
    0x01, 0x06, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x61,
    0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x05, 0xc0, 0x00, 0x02, 0x01, 0x07, 0xc0, 0x0c,
    0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3d, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x03,
};

/* AAAA record with rdlength 15 */
static const uint8_t bad_aaaa_rdlength[] = {
    0x01, 0x08, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65,
    0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x1c, 0x00,
    0x01, 0xc0, 0x0c, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x0f, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* question name pointer past the end of the message */
static const uint8_t bad_pointer_forward[] = {
    0x01, 0x07, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xc0, 0x20, 0x00, 0x01, 0x00, 0x01,
};

/* id 0x0009, RD, "Any.Example." ANY IN */
static const uint8_t q_any[] = {
    0x00, 0x09, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x41, 0x6e,
    0x79, 0x07, 0x45, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x00, 0x00, 0xff, 0x00, 0x01,
};

/* id 0x000a, RD, "example.com." MX IN */
static const uint8_t q_mx[] = {
    0x00, 0x0a, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x0f, 0x00, 0x01,
};

/* id 0x000b, opcode NOTIFY (4), no RD, "example.com." SOA IN */
static const uint8_t q_notify[] = {
    0x00, 0x0b, 0x20, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x06, 0x00, 0x01,
};

/*
 * An A query (id 7) for a 255-octet name made of 0x01 octets (labels of 63,
 * 63, 63, 61): valid on the wire, "\001" x 250 in presentation form.
 */
static size_t make_binary_name_query(uint8_t *buf, size_t cap)
{
	static const uint8_t header[] = {0x00, 0x07, 0x01, 0x00, 0x00, 0x01,
					 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	static const uint8_t labels[] = {63, 63, 63, 61};
	static const uint8_t tail[] = {0x00, 0x00, 0x01, 0x00, 0x01};
	size_t n = sizeof(header);

	assert_true(cap >= 12 + 255 + 4);
	memcpy(buf, header, n);
	for (size_t i = 0; i < sizeof(labels); i++) {
		buf[n++] = labels[i];
		memset(buf + n, 0x01, labels[i]);
		n += labels[i];
	}
	memcpy(buf + n, tail, sizeof(tail));
	return n + sizeof(tail);
}

/* ---- helpers -------------------------------------------------------------------------------- */

static struct cf_ip ip4(const char *s)
{
	struct cf_ip ip = {.family = AF_INET};

	assert_int_equal(inet_pton(AF_INET, s, ip.b), 1);
	return ip;
}

static struct cf_ip ip6(const char *s)
{
	struct cf_ip ip = {.family = AF_INET6};

	assert_int_equal(inet_pton(AF_INET6, s, ip.b), 1);
	return ip;
}

/* Parse bytes built by the code under test with ldns; they must be accepted. */
static ldns_pkt *ldns_parse_ok(const uint8_t *buf, ssize_t len)
{
	ldns_pkt *p = NULL;

	assert_true(len >= 12);
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)len), LDNS_STATUS_OK);
	assert_non_null(p);
	return p;
}

static void assert_rdf_str(const ldns_rdf *rdf, const char *want)
{
	char *s = ldns_rdf2str(rdf);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

/* The header flags every synthetic answer shares. */
static void assert_reply_header(const ldns_pkt *p, uint16_t id, bool rd, uint8_t rcode)
{
	assert_int_equal(ldns_pkt_id(p), id);
	assert_true(ldns_pkt_qr(p));
	assert_true(ldns_pkt_ra(p));
	assert_int_equal(ldns_pkt_rd(p), rd);
	assert_false(ldns_pkt_aa(p));
	assert_false(ldns_pkt_tc(p));
	assert_int_equal(ldns_pkt_get_rcode(p), rcode);
	assert_false(ldns_pkt_edns(p));
	assert_int_equal(ldns_pkt_nscount(p), 0);
	assert_int_equal(ldns_pkt_arcount(p), 0);
}

/* ---- cf_dns_parse_query --------------------------------------------------------------------- */

static void test_parse_query_reads_id_and_lowercases_qname(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_a_mixed_case, sizeof(q_a_mixed_case), &q), 0);
	assert_int_equal(q.id, 0x1234);
	assert_false(q.is_response);
	assert_true(q.has_question);
	assert_string_equal(q.qname, "www.example.com");
	assert_int_equal(q.qtype, 1);
	assert_int_equal(q.qclass, 1);
}

static void test_parse_query_reads_aaaa_and_https_types(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_aaaa, sizeof(q_aaaa), &q), 0);
	assert_int_equal(q.id, 0xbeef);
	assert_string_equal(q.qname, "example.org");
	assert_int_equal(q.qtype, 28);

	assert_int_equal(cf_dns_parse_query(q_https, sizeof(q_https), &q), 0);
	assert_string_equal(q.qname, "example.net");
	assert_int_equal(q.qtype, 65);
}

static void test_parse_query_root_name_is_empty_string(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_root_ns, sizeof(q_root_ns), &q), 0);
	assert_true(q.has_question);
	assert_string_equal(q.qname, "");
	assert_int_equal(q.qtype, 2);
}

static void test_parse_query_keeps_class(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_txt_chaos_cd, sizeof(q_txt_chaos_cd), &q), 0);
	assert_string_equal(q.qname, "example.com");
	assert_int_equal(q.qtype, 16);
	assert_int_equal(q.qclass, 3);
}

static void test_parse_query_without_question_has_no_question(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_no_question, sizeof(q_no_question), &q), 0);
	assert_int_equal(q.id, 3);
	assert_false(q.has_question);
	assert_string_equal(q.qname, "");
	assert_int_equal(q.qtype, 0);
	assert_int_equal(q.qclass, 0);
}

static void test_parse_query_with_two_questions_has_no_question(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_two_questions, sizeof(q_two_questions), &q), 0);
	assert_int_equal(q.id, 4);
	assert_false(q.has_question);
	assert_string_equal(q.qname, "");
	assert_int_equal(q.qtype, 0);
}

static void test_parse_query_escapes_dots_and_backslashes_inside_labels(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_escaped_label, sizeof(q_escaped_label), &q), 0);
	assert_true(q.has_question);
	/* One label "a.b\C" then "example": the label's dot must not become a separator. */
	assert_string_equal(q.qname, "a\\.b\\\\c.example");
}

static void test_parse_query_name_too_long_in_presentation_has_no_question(void **state)
{
	uint8_t msg[512];
	size_t len = make_binary_name_query(msg, sizeof(msg));
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(msg, len, &q), 0);
	assert_int_equal(q.id, 7);
	assert_false(q.has_question);
	assert_string_equal(q.qname, "");
	assert_int_equal(q.qtype, 0);
}

static void test_parse_query_on_response_sets_is_response(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(r_cname_chain, sizeof(r_cname_chain), &q), 0);
	assert_int_equal(q.id, 0x4321);
	assert_true(q.is_response);
	assert_true(q.has_question);
	assert_string_equal(q.qname, "www.example.com");
}

/* "example.org." AAAA, then TSIG records (root owner, class ANY, no rdata) in the additional
 * section. */
#define TSIG_RR 0x00, 0x00, 0xfa, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00
#define Q_WITH_TSIGS(n)                                                                            \
	0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, (n), 0x07, 0x65, 0x78,   \
	    0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x1c, 0x00, 0x01
static const uint8_t q_one_tsig[] = {Q_WITH_TSIGS(1), TSIG_RR};
/* ldns_wire2pkt() would leak all but the last: see check_single_tsig(). */
static const uint8_t q_three_tsigs[] = {Q_WITH_TSIGS(3), TSIG_RR, TSIG_RR, TSIG_RR};
/* Two TSIGs, then a record cut short: ldns leaks the first TSIG before it fails. */
static const uint8_t q_two_tsigs_then_garbage[] = {Q_WITH_TSIGS(3), TSIG_RR, TSIG_RR, 0x00, 0x00};

static void test_parse_query_accepts_one_tsig_record(void **state)
{
	struct cf_dns_query q;

	(void)state;
	assert_int_equal(cf_dns_parse_query(q_one_tsig, sizeof(q_one_tsig), &q), 0);
	assert_true(q.has_question);
	assert_string_equal(q.qname, "example.org");
}

static const struct {
	const char *what;
	const uint8_t *msg;
	size_t len;
} malformed_queries[] = {
    {"three TSIG records (at most one is allowed)", q_three_tsigs, sizeof(q_three_tsigs)},
    {"two TSIG records, then a cut record", q_two_tsigs_then_garbage,
     sizeof(q_two_tsigs_then_garbage)},
    {"NULL, 0 bytes", NULL, 0},
    {"0 bytes", q_aaaa, 0},
    {"truncated header (5 bytes)", q_aaaa, 5},
    {"truncated header (11 bytes)", q_aaaa, 11},
    {"QDCOUNT 1 but nothing after the header", q_aaaa, 12},
    {"question cut before its type", q_aaaa, sizeof(q_aaaa) - 3},
    {"reserved label type 0x41", bad_label_type, sizeof(bad_label_type)},
    {"label overruns the message", bad_label_overrun, sizeof(bad_label_overrun)},
    {"pointer to itself", bad_pointer_self, sizeof(bad_pointer_self)},
    {"pointer loop", bad_pointer_loop, sizeof(bad_pointer_loop)},
    {"pointer past the end", bad_pointer_forward, sizeof(bad_pointer_forward)},
    {"truncated question name", bad_truncated_question, sizeof(bad_truncated_question)},
    {"rdata overruns the message", bad_rdata_overrun, sizeof(bad_rdata_overrun)},
    {"A rdlength 5, then a record", bad_a_rdlength, sizeof(bad_a_rdlength)},
    {"AAAA rdlength 15", bad_aaaa_rdlength, sizeof(bad_aaaa_rdlength)},
    {"answer cut inside its rdata", r_cname_chain, 60},
};

static void test_parse_query_rejects_malformed_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(malformed_queries) / sizeof(malformed_queries[0]); i++) {
		struct cf_dns_query q;

		memset(&q, 0xa5, sizeof(q));
		print_message("case: %s\n", malformed_queries[i].what);
		assert_int_equal(
		    cf_dns_parse_query(malformed_queries[i].msg, malformed_queries[i].len, &q),
		    -EINVAL);
		assert_int_equal(q.id, 0);
		assert_false(q.has_question);
		assert_string_equal(q.qname, "");
	}
}

static void test_parse_query_enomem_is_reported_without_leaks(void **state)
{
	struct cf_dns_query q;
	int r;

	(void)state;
	FOR_EACH_ALLOC_FAILURE(r, cf_dns_parse_query(q_a_mixed_case, sizeof(q_a_mixed_case), &q),
			       assert_string_equal(q.qname, "www.example.com"));
}

/* ---- cf_dns_type_name ----------------------------------------------------------------------- */

static void test_type_name_uses_ldns_mnemonics_else_unknown(void **state)
{
	static const struct {
		uint16_t type;
		const char *name;
	} cases[] = {
	    {1, "A"},		{28, "AAAA"},	    {5, "CNAME"},    {15, "MX"},
	    {16, "TXT"},	{12, "PTR"},	    {33, "SRV"},     {64, "SVCB"},
	    {65, "HTTPS"},	{255, "ANY"},	    {252, "AXFR"},   {251, "IXFR"},
	    {257, "CAA"},	{0, "unknown"},	    {54, "unknown"}, {258, "unknown"},
	    {65280, "unknown"}, {65535, "unknown"},
	};
	char buf[16];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("type %u\n", cases[i].type);
		assert_string_equal(cf_dns_type_name(cases[i].type, buf, sizeof(buf)),
				    cases[i].name);
		assert_string_equal(cf_dns_type_name(cases[i].type, NULL, 0), cases[i].name);
	}
}

static void test_type_name_is_never_null_for_any_code(void **state)
{
	(void)state;
	for (uint32_t t = 0; t <= UINT16_MAX; t++) {
		const char *s = cf_dns_type_name((uint16_t)t, NULL, 0);

		assert_non_null(s);
		assert_true(s[0] != '\0');
		assert_true(strncmp(s, "TYPE", 4) != 0);
	}
}

/* ---- cf_dns_parse_answer -------------------------------------------------------------------- */

static void assert_cname(const struct cf_dns_record *r, const char *name, uint32_t ttl,
			 const char *target)
{
	assert_true(r->is_cname);
	assert_string_equal(r->name, name);
	assert_int_equal(r->ttl, ttl);
	assert_string_equal(r->target, target);
	assert_int_equal(r->ip.family, 0);
}

static void assert_address(const struct cf_dns_record *r, const char *name, uint32_t ttl,
			   struct cf_ip ip)
{
	size_t n = ip.family == AF_INET ? 4 : 16;

	assert_false(r->is_cname);
	assert_string_equal(r->name, name);
	assert_int_equal(r->ttl, ttl);
	assert_string_equal(r->target, "");
	assert_int_equal(r->ip.family, ip.family);
	assert_memory_equal(r->ip.b, ip.b, n);
}

static void test_parse_answer_returns_cname_chain_and_addresses_in_order(void **state)
{
	struct cf_dns_answer a;

	(void)state;
	assert_int_equal(cf_dns_parse_answer(r_cname_chain, sizeof(r_cname_chain), &a), 0);
	assert_int_equal(a.rcode, 0);
	/* TXT and the CH-class A are skipped. */
	assert_int_equal(a.n, 5);
	assert_cname(&a.rr[0], "www.example.com", 300, "edge.example.net");
	assert_cname(&a.rr[1], "edge.example.net", 60, "e1.cdn.example.net");
	assert_address(&a.rr[2], "e1.cdn.example.net", 20, ip4("192.0.2.1"));
	assert_address(&a.rr[3], "e1.cdn.example.net", 20, ip4("192.0.2.2"));
	assert_address(&a.rr[4], "e1.cdn.example.net", 40, ip6("2001:db8::1"));
	cf_dns_answer_free(&a);
	assert_null(a.rr);
	assert_int_equal(a.n, 0);
}

static void test_parse_answer_nxdomain_has_rcode_and_no_records(void **state)
{
	struct cf_dns_answer a;

	(void)state;
	assert_int_equal(cf_dns_parse_answer(r_nxdomain, sizeof(r_nxdomain), &a), 0);
	assert_int_equal(a.rcode, 3);
	assert_int_equal(a.n, 0);
	assert_null(a.rr);
	cf_dns_answer_free(&a);
}

static void test_parse_answer_skips_other_record_types(void **state)
{
	struct cf_dns_answer a;

	(void)state;
	assert_int_equal(cf_dns_parse_answer(r_txt_only, sizeof(r_txt_only), &a), 0);
	assert_int_equal(a.rcode, 0);
	assert_int_equal(a.n, 0);
	assert_null(a.rr);
}

static void test_parse_answer_rejects_malformed_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(malformed_queries) / sizeof(malformed_queries[0]); i++) {
		struct cf_dns_answer a;

		memset(&a, 0xa5, sizeof(a));
		print_message("case: %s\n", malformed_queries[i].what);
		assert_int_equal(
		    cf_dns_parse_answer(malformed_queries[i].msg, malformed_queries[i].len, &a),
		    -EINVAL);
		assert_null(a.rr);
		assert_int_equal(a.n, 0);
		assert_int_equal(a.rcode, 0);
	}
}

static void test_answer_free_is_safe_twice_and_on_null(void **state)
{
	struct cf_dns_answer a = {0};

	(void)state;
	cf_dns_answer_free(NULL);
	cf_dns_answer_free(&a);
	assert_int_equal(cf_dns_parse_answer(r_cname_chain, sizeof(r_cname_chain), &a), 0);
	cf_dns_answer_free(&a);
	cf_dns_answer_free(&a);
	assert_null(a.rr);
}

static void test_parse_answer_enomem_is_reported_without_leaks(void **state)
{
	struct cf_dns_answer a;
	int r;

	(void)state;
	FOR_EACH_ALLOC_FAILURE(r, cf_dns_parse_answer(r_cname_chain, sizeof(r_cname_chain), &a), {
		assert_int_equal(a.n, 5);
		cf_dns_answer_free(&a);
	});
}

/* ---- cf_dns_answer_keep_chain --------------------------------------------------------------- */

/* Records given as "owner>target" (CNAME) or "owner=v4" (A), in order. */
static size_t make_answer(struct cf_dns_record *rr, const char *const *spec, size_t n)
{
	memset(rr, 0, n * sizeof(*rr));
	for (size_t i = 0; i < n; i++) {
		const char *sep = strpbrk(spec[i], ">=");

		assert_non_null(sep);
		snprintf(rr[i].name, sizeof(rr[i].name), "%.*s", (int)(sep - spec[i]), spec[i]);
		rr[i].ttl = 60;
		rr[i].is_cname = *sep == '>';
		if (rr[i].is_cname)
			snprintf(rr[i].target, sizeof(rr[i].target), "%s", sep + 1);
		else
			rr[i].ip = ip4(sep + 1);
	}
	return n;
}

/* Keep the chain of @qname in @spec; the kept records, as their index in @spec, are @want. */
static void check_chain(const char *qname, const char *const *spec, size_t n, const size_t *want,
			size_t n_want)
{
	struct cf_dns_record rr[40], orig[40];
	struct cf_dns_answer a = {.rr = rr, .n = make_answer(rr, spec, n)};

	assert_true(n <= 40);
	memcpy(orig, rr, sizeof(orig[0]) * n);
	assert_int_equal(cf_dns_answer_keep_chain(&a, qname), n_want);
	assert_int_equal(a.n, n_want);
	for (size_t i = 0; i < n_want; i++) {
		print_message("kept %zu: %s\n", i, spec[want[i]]);
		assert_memory_equal(&a.rr[i], &orig[want[i]], sizeof(rr[0]));
	}
}

#define SPEC(...) ((const char *const[]){__VA_ARGS__})
#define IDX(...) ((const size_t[]){__VA_ARGS__})
#define CHECK_CHAIN(q, spec, want)                                                                 \
	check_chain(q, spec, sizeof(spec) / sizeof(spec[0]), want, sizeof(want) / sizeof(want[0]))

static void test_keep_chain_drops_records_of_other_names(void **state)
{
	(void)state;
	/* An answer for x.allowed.test teaches nothing about y.allowed.test or evil.test. */
	CHECK_CHAIN("x.allowed.test",
		    SPEC("evil.test=198.51.100.99", "x.allowed.test=198.51.100.11",
			 "y.allowed.test=198.51.100.98", "x.allowed.test=198.51.100.12"),
		    IDX(1, 3));
}

static void test_keep_chain_follows_cnames_in_any_order(void **state)
{
	(void)state;
	CHECK_CHAIN("www.example.com",
		    SPEC("e1.cdn.example.net=192.0.2.1", "edge.example.net>e1.cdn.example.net",
			 "www.example.com>edge.example.net", "other.example.net=192.0.2.9",
			 "other.example.net>e1.cdn.example.net", "e1.cdn.example.net=192.0.2.2"),
		    IDX(0, 1, 2, 5));
}

static void test_keep_chain_is_case_insensitive(void **state)
{
	(void)state;
	CHECK_CHAIN("WWW.Example.COM",
		    SPEC("www.example.com>Edge.Example.Net", "EDGE.example.net=192.0.2.1",
			 "evil.example.com=192.0.2.66"),
		    IDX(0, 1));
}

static void test_keep_chain_cname_elsewhere_teaches_nothing(void **state)
{
	(void)state;
	/* A chain that does not start at the question's name is not the question's: none kept. */
	static const char *const spec[] = {"evil.test>x.allowed.test", "y.allowed.test>evil.test",
					   "evil.test=198.51.100.99"};

	check_chain("x.allowed.test", spec, sizeof(spec) / sizeof(spec[0]), NULL, 0);
}

static void test_keep_chain_takes_the_first_cname_of_an_owner(void **state)
{
	(void)state;
	CHECK_CHAIN(
	    "a.test",
	    SPEC("a.test>b.test", "a.test>evil.test", "b.test=192.0.2.1", "evil.test=192.0.2.66"),
	    IDX(0, 2));
}

static void test_keep_chain_stops_at_a_loop(void **state)
{
	(void)state;
	/* a -> b -> A: the CNAME back to a is dropped, the walk ends. */
	CHECK_CHAIN("a.test",
		    SPEC("a.test>b.test", "b.test>A.test", "b.test=192.0.2.1", "a.test=192.0.2.2"),
		    IDX(0, 2, 3));
	CHECK_CHAIN("a.test", SPEC("a.test>a.test", "a.test=192.0.2.1"), IDX(1));
}

static void test_keep_chain_is_bounded(void **state)
{
	char names[CF_DNS_CHAIN_MAX + 3][40];
	const char *spec[CF_DNS_CHAIN_MAX + 3];
	size_t want[CF_DNS_CHAIN_MAX + 1];

	(void)state;
	/* n0 -> n1 -> ... -> n(MAX+1), then an address of the last name. */
	for (size_t i = 0; i <= CF_DNS_CHAIN_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "n%zu.test>n%zu.test", i, i + 1);
		spec[i] = names[i];
	}
	snprintf(names[CF_DNS_CHAIN_MAX + 1], sizeof(names[0]), "n%d.test=192.0.2.1",
		 CF_DNS_CHAIN_MAX + 1);
	spec[CF_DNS_CHAIN_MAX + 1] = names[CF_DNS_CHAIN_MAX + 1];
	snprintf(names[CF_DNS_CHAIN_MAX + 2], sizeof(names[0]), "n%d.test=192.0.2.2",
		 CF_DNS_CHAIN_MAX);
	spec[CF_DNS_CHAIN_MAX + 2] = names[CF_DNS_CHAIN_MAX + 2];
	/* MAX links are followed: n(MAX) is the last name, its address kept, n(MAX+1)'s not. */
	for (size_t i = 0; i < CF_DNS_CHAIN_MAX; i++)
		want[i] = i;
	want[CF_DNS_CHAIN_MAX] = CF_DNS_CHAIN_MAX + 2;
	check_chain("n0.test", spec, CF_DNS_CHAIN_MAX + 3, want, CF_DNS_CHAIN_MAX + 1);
}

static void test_keep_chain_of_an_empty_answer_is_empty(void **state)
{
	struct cf_dns_answer a = {0};

	(void)state;
	assert_int_equal(cf_dns_answer_keep_chain(&a, "a.test"), 0);
	assert_int_equal(a.n, 0);
}

/* ---- cf_dns_build_empty_answer -------------------------------------------------------------- */

static void test_empty_answer_nodata_keeps_id_question_and_rd(void **state)
{
	uint8_t out[512];
	ssize_t n;
	ldns_pkt *p;
	const ldns_rr *q;

	(void)state;
	n = cf_dns_build_empty_answer(q_a_mixed_case, sizeof(q_a_mixed_case), CF_DNS_RCODE_NOERROR,
				      out, sizeof(out));
	assert_int_equal(n, 12 + 21);
	p = ldns_parse_ok(out, n);
	assert_reply_header(p, 0x1234, true, LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_get_opcode(p), LDNS_PACKET_QUERY);
	assert_false(ldns_pkt_cd(p));
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	q = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	assert_rdf_str(ldns_rr_owner(q), "www.Example.COM.");
	assert_int_equal(ldns_rr_get_type(q), LDNS_RR_TYPE_A);
	assert_int_equal(ldns_rr_get_class(q), LDNS_RR_CLASS_IN);
	ldns_pkt_free(p);
	/* The question goes back byte for byte (0x20 case randomisation survives). */
	assert_memory_equal(out + 12, q_a_mixed_case + 12, 21);
}

static void test_empty_answer_carries_refused_and_servfail(void **state)
{
	static const uint8_t rcodes[] = {CF_DNS_RCODE_REFUSED, CF_DNS_RCODE_SERVFAIL,
					 CF_DNS_RCODE_NXDOMAIN};
	uint8_t out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(rcodes); i++) {
		ssize_t n =
		    cf_dns_build_empty_answer(q_aaaa, sizeof(q_aaaa), rcodes[i], out, sizeof(out));
		ldns_pkt *p = ldns_parse_ok(out, n);
		struct cf_dns_query q;

		assert_reply_header(p, 0xbeef, true, rcodes[i]);
		assert_int_equal(ldns_pkt_ancount(p), 0);
		ldns_pkt_free(p);
		assert_int_equal(cf_dns_parse_query(out, (size_t)n, &q), 0);
		assert_true(q.is_response);
		assert_string_equal(q.qname, "example.org");
		assert_int_equal(q.qtype, 28);
	}
}

static void test_empty_answer_copies_cd_class_opcode_and_clear_rd(void **state)
{
	uint8_t out[512];
	ssize_t n;
	ldns_pkt *p;

	(void)state;
	n = cf_dns_build_empty_answer(q_txt_chaos_cd, sizeof(q_txt_chaos_cd), 0, out, sizeof(out));
	p = ldns_parse_ok(out, n);
	assert_true(ldns_pkt_cd(p));
	assert_int_equal(ldns_rr_get_class(ldns_rr_list_rr(ldns_pkt_question(p), 0)),
			 LDNS_RR_CLASS_CH);
	ldns_pkt_free(p);

	n = cf_dns_build_empty_answer(q_notify, sizeof(q_notify), CF_DNS_RCODE_NOTIMP, out,
				      sizeof(out));
	p = ldns_parse_ok(out, n);
	assert_reply_header(p, 0x000b, false, LDNS_RCODE_NOTIMPL);
	assert_int_equal(ldns_pkt_get_opcode(p), LDNS_PACKET_NOTIFY);
	ldns_pkt_free(p);
}

static void test_empty_answer_is_formerr_without_one_parsable_question(void **state)
{
	static const struct {
		const uint8_t *msg;
		size_t len;
		uint16_t id;
		bool rd;
	} cases[] = {
	    {q_no_question, sizeof(q_no_question), 0x0003, true},
	    {q_two_questions, sizeof(q_two_questions), 0x0004, true},
	    {bad_label_type, sizeof(bad_label_type), 0x0100, true},
	    {bad_pointer_loop, sizeof(bad_pointer_loop), 0x0103, true},
	    {q_aaaa, 12, 0xbeef, true},
	    {q_root_ns, 14, 0x0002, false},
	};
	uint8_t out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssize_t n = cf_dns_build_empty_answer(cases[i].msg, cases[i].len,
						      CF_DNS_RCODE_NOERROR, out, sizeof(out));
		ldns_pkt *p;

		print_message("case %zu\n", i);
		assert_int_equal(n, 12);
		p = ldns_parse_ok(out, n);
		assert_reply_header(p, cases[i].id, cases[i].rd, LDNS_RCODE_FORMERR);
		assert_int_equal(ldns_pkt_qdcount(p), 0);
		assert_int_equal(ldns_pkt_ancount(p), 0);
		ldns_pkt_free(p);
	}
}

static void test_empty_answer_rejects_short_input_responses_and_bad_rcode(void **state)
{
	uint8_t out[512];

	(void)state;
	assert_int_equal(cf_dns_build_empty_answer(NULL, 0, 0, out, sizeof(out)), -EINVAL);
	assert_int_equal(cf_dns_build_empty_answer(q_aaaa, 11, 0, out, sizeof(out)), -EINVAL);
	assert_int_equal(cf_dns_build_empty_answer(q_aaaa, sizeof(q_aaaa), 0, NULL, 512), -EINVAL);
	assert_int_equal(
	    cf_dns_build_empty_answer(r_cname_chain, sizeof(r_cname_chain), 0, out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(cf_dns_build_empty_answer(q_aaaa, sizeof(q_aaaa), 16, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cf_dns_build_empty_answer(q_aaaa, sizeof(q_aaaa), 15, out, sizeof(out)),
			 (ssize_t)sizeof(q_aaaa));
}

static void test_empty_answer_needs_room_for_every_byte(void **state)
{
	uint8_t out[512];

	(void)state;
	/* q_aaaa has no EDNS, so the answer is exactly as long as the query. */
	assert_int_equal(
	    cf_dns_build_empty_answer(q_aaaa, sizeof(q_aaaa), 0, out, sizeof(q_aaaa) - 1), -ENOSPC);
	assert_int_equal(cf_dns_build_empty_answer(q_aaaa, sizeof(q_aaaa), 0, out, sizeof(q_aaaa)),
			 (ssize_t)sizeof(q_aaaa));
	assert_int_equal(
	    cf_dns_build_empty_answer(q_no_question, sizeof(q_no_question), 0, out, 11), -ENOSPC);
	assert_int_equal(cf_dns_build_empty_answer(q_no_question, sizeof(q_no_question), 0, out, 0),
			 -ENOSPC);
}

static void test_empty_answer_enomem_is_reported_without_leaks(void **state)
{
	uint8_t out[512];
	ssize_t r;

	(void)state;
	FOR_EACH_ALLOC_FAILURE(r,
			       cf_dns_build_empty_answer(q_a_mixed_case, sizeof(q_a_mixed_case),
							 CF_DNS_RCODE_REFUSED, out, sizeof(out)),
			       assert_int_equal(r, 33));
	FOR_EACH_ALLOC_FAILURE(
	    r,
	    cf_dns_build_empty_answer(bad_label_type, sizeof(bad_label_type), 0, out, sizeof(out)),
	    assert_int_equal(r, 12));
}

/* ---- cf_dns_build_address_answer ------------------------------------------------------------ */

static const struct cf_ip *mixed_ips(void)
{
	static struct cf_ip ips[3];

	ips[0] = ip4("192.0.2.1");
	ips[1] = ip6("2001:db8::1");
	ips[2] = ip4("192.0.2.7");
	return ips;
}

static void test_address_answer_a_question_gets_the_v4_addresses(void **state)
{
	uint8_t out[512];
	struct cf_dns_answer a;
	ssize_t n;
	ldns_pkt *p;
	const ldns_rr *rr;

	(void)state;
	n = cf_dns_build_address_answer(q_a_mixed_case, sizeof(q_a_mixed_case), mixed_ips(), 3, 42,
					out, sizeof(out));
	p = ldns_parse_ok(out, n);
	assert_reply_header(p, 0x1234, true, LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	assert_int_equal(ldns_pkt_ancount(p), 2);
	rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
	assert_rdf_str(ldns_rr_owner(rr), "www.Example.COM.");
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
	assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
	assert_int_equal(ldns_rr_ttl(rr), 42);
	assert_rdf_str(ldns_rr_rdf(rr, 0), "192.0.2.1");
	assert_rdf_str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 1), 0), "192.0.2.7");
	ldns_pkt_free(p);

	assert_int_equal(cf_dns_parse_answer(out, (size_t)n, &a), 0);
	assert_int_equal(a.n, 2);
	assert_address(&a.rr[0], "www.example.com", 42, ip4("192.0.2.1"));
	assert_address(&a.rr[1], "www.example.com", 42, ip4("192.0.2.7"));
	cf_dns_answer_free(&a);
}

static void test_address_answer_aaaa_question_gets_the_v6_addresses(void **state)
{
	uint8_t out[512];
	struct cf_dns_answer a;
	ssize_t n;

	(void)state;
	n = cf_dns_build_address_answer(q_aaaa, sizeof(q_aaaa), mixed_ips(), 3, 7, out,
					sizeof(out));
	assert_true(n > 0);
	assert_int_equal(cf_dns_parse_answer(out, (size_t)n, &a), 0);
	assert_int_equal(a.rcode, 0);
	assert_int_equal(a.n, 1);
	assert_address(&a.rr[0], "example.org", 7, ip6("2001:db8::1"));
	cf_dns_answer_free(&a);
}

static void test_address_answer_any_question_gets_every_address(void **state)
{
	uint8_t out[512];
	struct cf_dns_answer a;
	ssize_t n;

	(void)state;
	n = cf_dns_build_address_answer(q_any, sizeof(q_any), mixed_ips(), 3, 1, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(cf_dns_parse_answer(out, (size_t)n, &a), 0);
	assert_int_equal(a.n, 3);
	assert_address(&a.rr[0], "any.example", 1, ip4("192.0.2.1"));
	assert_address(&a.rr[1], "any.example", 1, ip6("2001:db8::1"));
	assert_address(&a.rr[2], "any.example", 1, ip4("192.0.2.7"));
	cf_dns_answer_free(&a);
}

static void test_address_answer_other_types_and_no_match_are_nodata(void **state)
{
	uint8_t out[512];
	ssize_t n;
	ldns_pkt *p;

	(void)state;
	n = cf_dns_build_address_answer(q_mx, sizeof(q_mx), mixed_ips(), 3, 1, out, sizeof(out));
	p = ldns_parse_ok(out, n);
	assert_reply_header(p, 0x000a, true, LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);

	n = cf_dns_build_address_answer(q_aaaa, sizeof(q_aaaa), mixed_ips(), 1, 1, out,
					sizeof(out));
	p = ldns_parse_ok(out, n);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);

	n = cf_dns_build_address_answer(q_aaaa, sizeof(q_aaaa), NULL, 0, 1, out, sizeof(out));
	p = ldns_parse_ok(out, n);
	assert_int_equal(ldns_pkt_ancount(p), 0);
	ldns_pkt_free(p);
}

static void test_address_answer_rejects_unusable_queries_and_addresses(void **state)
{
	struct cf_ip bad = {.family = AF_UNIX};
	uint8_t out[512];
	const struct cf_ip *ips = mixed_ips();

	(void)state;
	assert_int_equal(
	    cf_dns_build_address_answer(q_aaaa, sizeof(q_aaaa), &bad, 1, 1, out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(
	    cf_dns_build_address_answer(q_aaaa, sizeof(q_aaaa), NULL, 1, 1, out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(cf_dns_build_address_answer(q_no_question, sizeof(q_no_question), ips, 3,
						     1, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cf_dns_build_address_answer(q_two_questions, sizeof(q_two_questions), ips,
						     3, 1, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cf_dns_build_address_answer(bad_pointer_self, sizeof(bad_pointer_self),
						     ips, 3, 1, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cf_dns_build_address_answer(q_txt_chaos_cd, sizeof(q_txt_chaos_cd), ips, 3,
						     1, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cf_dns_build_address_answer(r_cname_chain, sizeof(r_cname_chain), ips, 3,
						     1, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cf_dns_build_address_answer(q_aaaa, 11, ips, 3, 1, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(cf_dns_build_address_answer(NULL, 0, ips, 3, 1, out, sizeof(out)),
			 -EINVAL);
}

static void test_address_answer_needs_room_for_every_byte(void **state)
{
	uint8_t out[512];
	ssize_t n;

	(void)state;
	n = cf_dns_build_address_answer(q_a_mixed_case, sizeof(q_a_mixed_case), mixed_ips(), 3, 1,
					out, sizeof(out));
	/* Header, question, then two A records; names are written uncompressed (17 octets). */
	assert_int_equal(n, 12 + 21 + 2 * (17 + 10 + 4));
	assert_int_equal(cf_dns_build_address_answer(q_a_mixed_case, sizeof(q_a_mixed_case),
						     mixed_ips(), 3, 1, out, (size_t)n - 1),
			 -ENOSPC);
	assert_int_equal(cf_dns_build_address_answer(q_a_mixed_case, sizeof(q_a_mixed_case),
						     mixed_ips(), 3, 1, out, (size_t)n),
			 n);
}

static void test_address_answer_larger_than_512_bytes_keeps_every_record(void **state)
{
	struct cf_ip ips[40];
	uint8_t out[2048];
	struct cf_dns_answer a;
	ssize_t n;

	(void)state;
	for (size_t i = 0; i < 40; i++)
		ips[i] = (struct cf_ip){.family = AF_INET, .b = {198, 51, 100, (uint8_t)i}};
	n = cf_dns_build_address_answer(q_a_mixed_case, sizeof(q_a_mixed_case), ips, 40, 9, out,
					sizeof(out));
	assert_int_equal(n, 12 + 21 + 40 * (17 + 10 + 4));
	assert_int_equal(cf_dns_parse_answer(out, (size_t)n, &a), 0);
	assert_int_equal(a.n, 40);
	assert_address(&a.rr[39], "www.example.com", 9, ips[39]);
	cf_dns_answer_free(&a);
}

static void test_address_answer_enomem_is_reported_without_leaks(void **state)
{
	struct cf_ip many[40];
	uint8_t out[2048];
	ssize_t r;

	(void)state;
	FOR_EACH_ALLOC_FAILURE(
	    r,
	    cf_dns_build_address_answer(q_any, sizeof(q_any), mixed_ips(), 3, 5, out, sizeof(out)),
	    assert_int_equal(r, 12 + 17 + 2 * (13 + 10 + 4) + (13 + 10 + 16)));
	/* Past 512 bytes the output buffer has to grow, and that can fail too. */
	for (size_t i = 0; i < 40; i++)
		many[i] = mixed_ips()[i % 3];
	FOR_EACH_ALLOC_FAILURE(
	    r, cf_dns_build_address_answer(q_any, sizeof(q_any), many, 40, 5, out, sizeof(out)),
	    assert_true(r > 512));
}

/* ---- cf_dns_set_id -------------------------------------------------------------------------- */

static void test_set_id_rewrites_only_the_id(void **state)
{
	uint8_t msg[sizeof(q_aaaa)];
	struct cf_dns_query q;

	(void)state;
	memcpy(msg, q_aaaa, sizeof(msg));
	assert_int_equal(cf_dns_set_id(msg, sizeof(msg), 0xa1b2), 0);
	assert_int_equal(msg[0], 0xa1);
	assert_int_equal(msg[1], 0xb2);
	assert_memory_equal(msg + 2, q_aaaa + 2, sizeof(msg) - 2);
	assert_int_equal(cf_dns_parse_query(msg, sizeof(msg), &q), 0);
	assert_int_equal(q.id, 0xa1b2);
}

static void test_set_id_rejects_short_messages(void **state)
{
	uint8_t msg[12] = {0x12, 0x34};

	(void)state;
	assert_int_equal(cf_dns_set_id(msg, 11, 1), -EINVAL);
	assert_int_equal(msg[0], 0x12);
	assert_int_equal(msg[1], 0x34);
	assert_int_equal(cf_dns_set_id(NULL, 12, 1), -EINVAL);
	assert_int_equal(cf_dns_set_id(msg, 12, 0), 0);
	assert_int_equal(msg[0], 0);
	assert_int_equal(msg[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_query_reads_id_and_lowercases_qname),
	    cmocka_unit_test(test_parse_query_reads_aaaa_and_https_types),
	    cmocka_unit_test(test_parse_query_root_name_is_empty_string),
	    cmocka_unit_test(test_parse_query_keeps_class),
	    cmocka_unit_test(test_parse_query_without_question_has_no_question),
	    cmocka_unit_test(test_parse_query_with_two_questions_has_no_question),
	    cmocka_unit_test(test_parse_query_escapes_dots_and_backslashes_inside_labels),
	    cmocka_unit_test(test_parse_query_name_too_long_in_presentation_has_no_question),
	    cmocka_unit_test(test_parse_query_on_response_sets_is_response),
	    cmocka_unit_test(test_parse_query_accepts_one_tsig_record),
	    cmocka_unit_test(test_parse_query_rejects_malformed_messages),
	    cmocka_unit_test(test_parse_query_enomem_is_reported_without_leaks),
	    cmocka_unit_test(test_type_name_uses_ldns_mnemonics_else_unknown),
	    cmocka_unit_test(test_type_name_is_never_null_for_any_code),
	    cmocka_unit_test(test_parse_answer_returns_cname_chain_and_addresses_in_order),
	    cmocka_unit_test(test_parse_answer_nxdomain_has_rcode_and_no_records),
	    cmocka_unit_test(test_parse_answer_skips_other_record_types),
	    cmocka_unit_test(test_parse_answer_rejects_malformed_messages),
	    cmocka_unit_test(test_answer_free_is_safe_twice_and_on_null),
	    cmocka_unit_test(test_parse_answer_enomem_is_reported_without_leaks),
	    cmocka_unit_test(test_keep_chain_drops_records_of_other_names),
	    cmocka_unit_test(test_keep_chain_follows_cnames_in_any_order),
	    cmocka_unit_test(test_keep_chain_is_case_insensitive),
	    cmocka_unit_test(test_keep_chain_cname_elsewhere_teaches_nothing),
	    cmocka_unit_test(test_keep_chain_takes_the_first_cname_of_an_owner),
	    cmocka_unit_test(test_keep_chain_stops_at_a_loop),
	    cmocka_unit_test(test_keep_chain_is_bounded),
	    cmocka_unit_test(test_keep_chain_of_an_empty_answer_is_empty),
	    cmocka_unit_test(test_empty_answer_nodata_keeps_id_question_and_rd),
	    cmocka_unit_test(test_empty_answer_carries_refused_and_servfail),
	    cmocka_unit_test(test_empty_answer_copies_cd_class_opcode_and_clear_rd),
	    cmocka_unit_test(test_empty_answer_is_formerr_without_one_parsable_question),
	    cmocka_unit_test(test_empty_answer_rejects_short_input_responses_and_bad_rcode),
	    cmocka_unit_test(test_empty_answer_needs_room_for_every_byte),
	    cmocka_unit_test(test_empty_answer_enomem_is_reported_without_leaks),
	    cmocka_unit_test(test_address_answer_a_question_gets_the_v4_addresses),
	    cmocka_unit_test(test_address_answer_aaaa_question_gets_the_v6_addresses),
	    cmocka_unit_test(test_address_answer_any_question_gets_every_address),
	    cmocka_unit_test(test_address_answer_other_types_and_no_match_are_nodata),
	    cmocka_unit_test(test_address_answer_rejects_unusable_queries_and_addresses),
	    cmocka_unit_test(test_address_answer_needs_room_for_every_byte),
	    cmocka_unit_test(test_address_answer_larger_than_512_bytes_keeps_every_record),
	    cmocka_unit_test(test_address_answer_enomem_is_reported_without_leaks),
	    cmocka_unit_test(test_set_id_rewrites_only_the_id),
	    cmocka_unit_test(test_set_id_rejects_short_messages),
	};

	alloc_prime();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
