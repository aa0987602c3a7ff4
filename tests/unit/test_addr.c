// SPDX-License-Identifier: MIT
/* Unit tests for src/net/addr.c: IP and CIDR parsing, matching, formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "net/addr.h"
#include "util/cleanup.h"

static struct cf_ip ip_of(const char *s)
{
	struct cf_ip ip;

	assert_int_equal(cf_ip_parse(s, &ip), 0);
	return ip;
}

static struct cf_cidr cidr_of(const char *s)
{
	struct cf_cidr c;

	assert_int_equal(cf_cidr_parse(s, &c), 0);
	return c;
}

static void test_ip_parse_accepts_v4_and_v6_literals(void **state)
{
	struct cf_ip ip;

	(void)state;
	assert_int_equal(cf_ip_parse("198.51.100.7", &ip), 0);
	assert_int_equal(ip.family, AF_INET);
	assert_memory_equal(ip.b, "\xc6\x33\x64\x07", 4);

	assert_int_equal(cf_ip_parse("2001:db8::1", &ip), 0);
	assert_int_equal(ip.family, AF_INET6);
	assert_memory_equal(ip.b, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);

	assert_int_equal(cf_ip_parse("::ffff:1.2.3.4", &ip), 0);
	assert_int_equal(ip.family, AF_INET6);
	assert_int_equal(cf_ip_parse("::", &ip), 0);
	assert_int_equal(ip.family, AF_INET6);
	assert_int_equal(cf_ip_parse("0.0.0.0", &ip), 0);
	assert_int_equal(ip.family, AF_INET);
}

static void test_ip_parse_zeroes_unused_bytes_of_v4(void **state)
{
	struct cf_ip ip;

	(void)state;
	memset(&ip, 0xaa, sizeof(ip));
	assert_int_equal(cf_ip_parse("10.0.0.1", &ip), 0);
	for (size_t i = 4; i < sizeof(ip.b); i++)
		assert_int_equal(ip.b[i], 0);
}

static void test_ip_parse_rejects_garbage_and_leaves_output_alone(void **state)
{
	static const char *const bad[] = {
	    "",		  "1.2.3",	"1.2.3.4.5",	"256.1.1.1", "01.2.3.4",     " 1.2.3.4",
	    "1.2.3.4 ",	  "1.2.3.4/32", "fe80::1%eth0", "[::1]",     "2001:db8:::1", "example.com",
	    "0x7f.0.0.1", "1.2.3.-4",	"::1::",
	};
	struct cf_ip ip;

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
		memset(&ip, 0x5a, sizeof(ip));
		if (cf_ip_parse(bad[i], &ip) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_int_equal(ip.family, 0x5a);
	}
	assert_int_equal(cf_ip_parse(NULL, &ip), -EINVAL);
}

static void test_cidr_parse_accepts_ranges_and_bare_addresses(void **state)
{
	struct cf_cidr c;

	(void)state;
	c = cidr_of("10.0.0.0/8");
	assert_int_equal(c.ip.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_true(cf_ip_equal(&c.ip, &(struct cf_ip){.family = AF_INET, .b = {10}}));

	assert_int_equal(cidr_of("0.0.0.0/0").prefix, 0);
	assert_int_equal(cidr_of("::/0").prefix, 0);
	assert_int_equal(cidr_of("1.2.3.4/32").prefix, 32);
	assert_int_equal(cidr_of("2001:db8::1/128").prefix, 128);
	assert_int_equal(cidr_of("1.2.3.4").prefix, 32);
	assert_int_equal(cidr_of("::1").prefix, 128);
	assert_int_equal(cidr_of("172.16.0.0/12").prefix, 12);
	assert_int_equal(cidr_of("2001:db8::/32").prefix, 32);
	assert_int_equal(cidr_of("fe80::/10").prefix, 10);
}

static void test_cidr_parse_rejects_host_bits_below_prefix(void **state)
{
	static const char *const bad[] = {
	    "10.0.0.1/8",     "11.0.0.0/7", "172.17.0.0/12", "1.2.3.5/31", "0.0.0.1/0",
	    "2001:db8::1/32", "fec0::/9",   "::1/127",	     "8000::/0",
	};
	struct cf_cidr c;

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++)
		if (cf_cidr_parse(bad[i], &c) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
}

static void test_cidr_parse_rejects_bad_prefix_and_junk(void **state)
{
	static const char *const bad[] = {
	    "1.2.3.4/33",  "::/129",	    "1.2.3.4/",
	    "/8",	   "1.2.3.0/24x",   "1.2.3.4/-1",
	    "1.2.3.0/+24", "1.2.3.0/024",   "1.2.3.0/24/24",
	    " 10.0.0.0/8", "10.0.0.0/8 ",   "10.0.0.0 /8",
	    "10.0.0.0/ 8", "10.0.0.0/1000", "",
	    "garbage",	   "10.0.0.0/8\n",  "1111:2222:3333:4444:5555:6666:7777:8888:9999/128",
	    "[::1]/128",   "::/",
	};
	struct cf_cidr c;

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
		memset(&c, 0x5a, sizeof(c));
		if (cf_cidr_parse(bad[i], &c) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_int_equal(c.prefix, 0x5a);
	}
	assert_int_equal(cf_cidr_parse(NULL, &c), -EINVAL);
}

static void test_cidr_contains_prefix_boundaries(void **state)
{
	struct cf_cidr c20 = cidr_of("198.51.96.0/20");
	struct cf_ip in_lo = ip_of("198.51.96.0"), in_hi = ip_of("198.51.111.255");
	struct cf_ip out_lo = ip_of("198.51.95.255"), out_hi = ip_of("198.51.112.0");

	(void)state;
	assert_true(cf_cidr_contains(&c20, &in_lo));
	assert_true(cf_cidr_contains(&c20, &in_hi));
	assert_false(cf_cidr_contains(&c20, &out_lo));
	assert_false(cf_cidr_contains(&c20, &out_hi));
}

static void test_cidr_contains_zero_prefix_matches_whole_family_only(void **state)
{
	struct cf_cidr all4 = cidr_of("0.0.0.0/0"), all6 = cidr_of("::/0");
	struct cf_ip v4 = ip_of("203.0.113.9"), v6 = ip_of("2001:db8::9");

	(void)state;
	assert_true(cf_cidr_contains(&all4, &v4));
	assert_true(
	    cf_cidr_contains(&all4, &(struct cf_ip){.family = AF_INET, .b = {255, 255, 255, 255}}));
	assert_true(cf_cidr_contains(&all6, &v6));
	assert_false(cf_cidr_contains(&all4, &v6));
	assert_false(cf_cidr_contains(&all6, &v4));
}

static void test_cidr_contains_full_prefix_is_exact_match(void **state)
{
	struct cf_cidr h4 = cidr_of("192.0.2.1/32"), h6 = cidr_of("2001:db8::1/128");
	struct cf_ip a4 = ip_of("192.0.2.1"), b4 = ip_of("192.0.2.2");
	struct cf_ip a6 = ip_of("2001:db8::1"), b6 = ip_of("2001:db8::2");

	(void)state;
	assert_true(cf_cidr_contains(&h4, &a4));
	assert_false(cf_cidr_contains(&h4, &b4));
	assert_true(cf_cidr_contains(&h6, &a6));
	assert_false(cf_cidr_contains(&h6, &b6));
}

static void test_cidr_contains_does_not_unfold_v4_mapped(void **state)
{
	struct cf_cidr c = cidr_of("192.0.2.0/24");
	struct cf_ip mapped = ip_of("::ffff:192.0.2.1");
	struct cf_cidr mapped_range = cidr_of("::ffff:0:0/96");

	(void)state;
	assert_false(cf_cidr_contains(&c, &mapped));
	assert_true(cf_cidr_contains(&mapped_range, &mapped));
}

static void test_ip_format_matches_inet_ntop(void **state)
{
	static const char *const v[] = {
	    "0.0.0.0", "255.255.255.255", "2001:db8::1",   "::",
	    "::1",     "::ffff:1.2.3.4",  "fe80::1:2:3:4", "2001:db8:0:1:1:1:1:1",
	};
	char buf[CF_IP_STRLEN], ref[INET6_ADDRSTRLEN];

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(v); i++) {
		struct cf_ip ip = ip_of(v[i]);

		assert_non_null(inet_ntop(ip.family, ip.b, ref, sizeof(ref)));
		assert_string_equal(cf_ip_format(&ip, buf, sizeof(buf)), ref);
	}
	/* inet_ntop compresses the longest zero run, not the one written */
	struct cf_ip ip = ip_of("2001:0db8:0000:0000:0000:0000:0000:0001");
	assert_string_equal(cf_ip_format(&ip, buf, sizeof(buf)), "2001:db8::1");
	assert_ptr_equal(cf_ip_format(&ip, buf, sizeof(buf)), buf);
}

static void test_ip_format_longest_v6_fits_strlen(void **state)
{
	struct cf_ip ip = ip_of("::ffff:255.255.255.255");
	char buf[CF_IP_STRLEN];

	(void)state;
	assert_string_equal(cf_ip_format(&ip, buf, sizeof(buf)), "::ffff:255.255.255.255");
	ip = ip_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_string_equal(cf_ip_format(&ip, buf, sizeof(buf)),
			    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

static void test_ip_format_unknown_family_or_small_buffer(void **state)
{
	struct cf_ip bad = {.family = AF_UNIX};
	struct cf_ip ip = ip_of("192.0.2.1");
	char buf[CF_IP_STRLEN], tiny[4];

	(void)state;
	assert_string_equal(cf_ip_format(&bad, buf, sizeof(buf)), "?");
	assert_string_equal(cf_ip_format(&ip, tiny, sizeof(tiny)), "?");
	cf_ip_format(&ip, buf, 0); /* must not write */
}

static void test_addrport_format_brackets_v6_only(void **state)
{
	struct cf_ip v4 = ip_of("198.51.100.7"), v6 = ip_of("2001:db8::1");
	char buf[CF_ADDRPORT_STRLEN];

	(void)state;
	assert_string_equal(cf_addrport_format(&v4, 443, buf, sizeof(buf)), "198.51.100.7:443");
	assert_string_equal(cf_addrport_format(&v6, 53, buf, sizeof(buf)), "[2001:db8::1]:53");
	assert_string_equal(cf_addrport_format(&v6, 65535, buf, sizeof(buf)),
			    "[2001:db8::1]:65535");
	assert_string_equal(cf_addrport_format(&v4, 0, buf, sizeof(buf)), "198.51.100.7:0");
	v6 = ip_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_string_equal(cf_addrport_format(&v6, 65535, buf, sizeof(buf)),
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void test_cidr_format_round_trips(void **state)
{
	static const char *const v[] = {
	    "0.0.0.0/0",     "10.0.0.0/8",	"192.0.2.1/32", "::/0",
	    "2001:db8::/32", "2001:db8::1/128", "fe80::/10",
	};
	char buf[CF_IP_STRLEN + 4];

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(v); i++) {
		struct cf_cidr c = cidr_of(v[i]), back;

		assert_string_equal(cf_cidr_format(&c, buf, sizeof(buf)), v[i]);
		back = cidr_of(buf);
		assert_true(cf_ip_equal(&c.ip, &back.ip));
		assert_int_equal(c.prefix, back.prefix);
	}
	struct cf_cidr bare = cidr_of("192.0.2.1");
	assert_string_equal(cf_cidr_format(&bare, buf, sizeof(buf)), "192.0.2.1/32");
}

static void test_ip_equal_compares_family_and_used_bytes(void **state)
{
	struct cf_ip a = ip_of("192.0.2.1"), b = ip_of("192.0.2.1");
	struct cf_ip c = ip_of("192.0.2.2"), v6 = ip_of("::");

	(void)state;
	assert_true(cf_ip_equal(&a, &b));
	b.b[10] = 0x42; /* unused for AF_INET */
	assert_true(cf_ip_equal(&a, &b));
	assert_false(cf_ip_equal(&a, &c));
	memcpy(v6.b, a.b, 4);
	v6.family = AF_INET6;
	assert_false(cf_ip_equal(&a, &v6));
	a = ip_of("::1");
	b = ip_of("::2");
	assert_false(cf_ip_equal(&a, &b));
	b = ip_of("::1");
	assert_true(cf_ip_equal(&a, &b));
}

static void test_sockaddr_round_trip_v4_and_v6(void **state)
{
	static const char *const v[] = {"198.51.100.7", "2001:db8::1"};
	struct sockaddr_storage ss;

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(v); i++) {
		struct cf_ip ip = ip_of(v[i]), back;
		uint16_t port = 0;
		socklen_t len = cf_ip_to_sockaddr(&ip, 8443, &ss);

		assert_int_equal(len, ip.family == AF_INET ? sizeof(struct sockaddr_in)
							   : sizeof(struct sockaddr_in6));
		assert_int_equal(ss.ss_family, ip.family);
		assert_int_equal(cf_ip_from_sockaddr((struct sockaddr *)&ss, &back, &port), 0);
		assert_true(cf_ip_equal(&ip, &back));
		assert_int_equal(port, 8443);
	}
	struct cf_ip ip = ip_of("198.51.100.7");
	cf_ip_to_sockaddr(&ip, 443, &ss);
	assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, htons(443));
}

static void test_sockaddr_other_families_are_refused(void **state)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_storage ss;
	struct cf_ip ip, bad = {.family = AF_UNIX};

	(void)state;
	assert_int_equal(cf_ip_from_sockaddr((struct sockaddr *)&un, &ip, NULL), -EAFNOSUPPORT);
	assert_int_equal(cf_ip_to_sockaddr(&bad, 1, &ss), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ip_parse_accepts_v4_and_v6_literals),
	    cmocka_unit_test(test_ip_parse_zeroes_unused_bytes_of_v4),
	    cmocka_unit_test(test_ip_parse_rejects_garbage_and_leaves_output_alone),
	    cmocka_unit_test(test_cidr_parse_accepts_ranges_and_bare_addresses),
	    cmocka_unit_test(test_cidr_parse_rejects_host_bits_below_prefix),
	    cmocka_unit_test(test_cidr_parse_rejects_bad_prefix_and_junk),
	    cmocka_unit_test(test_cidr_contains_prefix_boundaries),
	    cmocka_unit_test(test_cidr_contains_zero_prefix_matches_whole_family_only),
	    cmocka_unit_test(test_cidr_contains_full_prefix_is_exact_match),
	    cmocka_unit_test(test_cidr_contains_does_not_unfold_v4_mapped),
	    cmocka_unit_test(test_ip_format_matches_inet_ntop),
	    cmocka_unit_test(test_ip_format_longest_v6_fits_strlen),
	    cmocka_unit_test(test_ip_format_unknown_family_or_small_buffer),
	    cmocka_unit_test(test_addrport_format_brackets_v6_only),
	    cmocka_unit_test(test_cidr_format_round_trips),
	    cmocka_unit_test(test_ip_equal_compares_family_and_used_bytes),
	    cmocka_unit_test(test_sockaddr_round_trip_v4_and_v6),
	    cmocka_unit_test(test_sockaddr_other_families_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
