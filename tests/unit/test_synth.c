// SPDX-License-Identifier: MIT
/* Unit tests for src/dns/synth.c: remote DNS's synthetic address table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/synth.h"
#include "net/addr.h"
#include "alloc_fail.h"

static struct cf_ip ip(const char *s)
{
	struct cf_ip a;

	assert_int_equal(cf_ip_parse(s, &a), 0);
	return a;
}

static void assert_ip(const struct cf_ip *a, const char *want)
{
	char buf[CF_IP_STRLEN];

	assert_string_equal(cf_ip_format(a, buf, sizeof(buf)), want);
}

static struct cf_synth *table(size_t slots, uint64_t min_idle_ms)
{
	struct cf_synth *s;

	assert_int_equal(cf_synth_new(slots, min_idle_ms, &s), 0);
	return s;
}

static void test_first_names_get_the_first_addresses_of_both_ranges(void **state)
{
	struct cf_synth *s = table(16, 1000);
	struct cf_ip v4, v6;

	(void)state;
	assert_int_equal(cf_synth_addrs(s, "origin.test", 0, &v4, &v6), 0);
	assert_ip(&v4, "198.19.0.1");
	assert_ip(&v6, "fd63:6866:6c77:53::1");
	assert_int_equal(cf_synth_addrs(s, "other.test", 0, &v4, &v6), 0);
	assert_ip(&v4, "198.19.0.2");
	assert_ip(&v6, "fd63:6866:6c77:53::2");
	assert_int_equal(cf_synth_count(s), 2);
	cf_synth_free(s);
}

static void test_a_name_keeps_its_addresses(void **state)
{
	struct cf_synth *s = table(16, 1000);
	struct cf_ip a4, a6, b4, b6;

	(void)state;
	assert_int_equal(cf_synth_addrs(s, "origin.test", 0, &a4, &a6), 0);
	assert_int_equal(cf_synth_addrs(s, "x.test", 5, &b4, &b6), 0);
	assert_int_equal(cf_synth_addrs(s, "origin.test", 999999, &b4, &b6), 0);
	assert_true(cf_ip_equal(&a4, &b4));
	assert_true(cf_ip_equal(&a6, &b6));
	assert_int_equal(cf_synth_count(s), 2);
	cf_synth_free(s);
}

static void test_both_addresses_lead_back_to_the_name(void **state)
{
	struct cf_synth *s = table(16, 1000);
	struct cf_ip v4, v6;

	(void)state;
	assert_int_equal(cf_synth_addrs(s, "a.test", 0, &v4, &v6), 0);
	assert_int_equal(cf_synth_addrs(s, "b.test", 0, &v4, &v6), 0);
	assert_string_equal(cf_synth_name(s, &v4, 1), "b.test");
	assert_string_equal(cf_synth_name(s, &v6, 1), "b.test");
	v4 = ip("198.19.0.1");
	assert_string_equal(cf_synth_name(s, &v4, 1), "a.test");
	cf_synth_free(s);
}

static void test_addresses_without_a_name_have_none(void **state)
{
	static const char *const none[] = {
	    "198.19.0.3",     /* in range, never given out */
	    "198.19.0.0",     /* slot 0 does not exist */
	    "198.19.255.255", /* past the last slot */
	    "198.18.0.1",     /* the tree's resolver */
	    "198.51.100.10",	   "fd63:6866:6c77:53::3",   "fd63:6866:6c77::1",
	    "fd63:6866:6c77:53::", "fd63:6866:6c77:53::1:1", "2001:db8::1",
	};
	struct cf_synth *s = table(16, 1000);
	struct cf_ip v4, v6;

	(void)state;
	assert_int_equal(cf_synth_addrs(s, "a.test", 0, &v4, &v6), 0);
	assert_int_equal(cf_synth_addrs(s, "b.test", 0, &v4, &v6), 0);
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		struct cf_ip a = ip(none[i]);

		print_message("case %s\n", none[i]);
		assert_null(cf_synth_name(s, &a, 1));
	}
	cf_synth_free(s);
}

static void test_contains_covers_exactly_the_two_ranges(void **state)
{
	static const struct {
		const char *ip;
		bool in;
	} cases[] = {
	    {"198.19.0.0", true},
	    {"198.19.255.255", true},
	    {"198.18.0.1", false},
	    {"198.18.255.255", false},
	    {"198.20.0.0", false},
	    {"fd63:6866:6c77:53::", true},
	    {"fd63:6866:6c77:53::ffff:ffff", true},
	    {"fd63:6866:6c77:53:0:1::", false},
	    {"fd63:6866:6c77::1", false},
	    {"::ffff:198.19.0.1", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cf_ip a = ip(cases[i].ip);

		print_message("case %s\n", cases[i].ip);
		assert_int_equal(cf_synth_contains(&a), cases[i].in);
	}
}

static void test_last_slot_of_a_full_size_table_is_198_19_255_254(void **state)
{
	struct cf_synth *s = table(CF_SYNTH_MAX_SLOTS, 1000);
	struct cf_ip v4, v6;
	char name[32];

	(void)state;
	for (unsigned i = 0; i < CF_SYNTH_MAX_SLOTS; i++) {
		snprintf(name, sizeof(name), "n%u.test", i);
		assert_int_equal(cf_synth_addrs(s, name, 0, &v4, &v6), 0);
	}
	assert_ip(&v4, "198.19.255.254");
	assert_ip(&v6, "fd63:6866:6c77:53::fffe");
	assert_string_equal(cf_synth_name(s, &v4, 0), name);
	assert_int_equal(cf_synth_addrs(s, "one.more", 1, &v4, &v6), -ENOSPC);
	cf_synth_free(s);
}

static void test_a_full_table_reuses_only_the_slot_idle_long_enough(void **state)
{
	struct cf_synth *s = table(2, 1000);
	struct cf_ip v4, v6, a4;

	(void)state;
	assert_int_equal(cf_synth_addrs(s, "a.test", 0, &a4, &v6), 0);
	assert_int_equal(cf_synth_addrs(s, "b.test", 100, &v4, &v6), 0);
	/* both used within the last 1000 ms: no slot for a third name */
	assert_int_equal(cf_synth_addrs(s, "c.test", 999, &v4, &v6), -ENOSPC);
	/* a connection to a.test's address counts as use */
	assert_string_equal(cf_synth_name(s, &a4, 500), "a.test");
	assert_int_equal(cf_synth_addrs(s, "c.test", 1099, &v4, &v6), -ENOSPC);
	/* b.test, idle 1000 ms, gives its slot */
	assert_int_equal(cf_synth_addrs(s, "c.test", 1100, &v4, &v6), 0);
	assert_ip(&v4, "198.19.0.2");
	assert_string_equal(cf_synth_name(s, &v4, 1100), "c.test");
	assert_string_equal(cf_synth_name(s, &a4, 1100), "a.test");
	/* b.test is gone; asking again needs a slot again */
	assert_int_equal(cf_synth_addrs(s, "b.test", 1200, &v4, &v6), -ENOSPC);
	/* now c.test (last used at 1100) is the one idle longest */
	assert_int_equal(cf_synth_addrs(s, "b.test", 2100, &v4, &v6), 0);
	assert_ip(&v4, "198.19.0.2");
	assert_string_equal(cf_synth_name(s, &a4, 2100), "a.test");
	assert_int_equal(cf_synth_count(s), 2);
	cf_synth_free(s);
}

static void test_many_names_in_one_table_find_their_own_slot(void **state)
{
	struct cf_synth *s = table(4096, 1000);
	struct cf_ip v4, v6;
	char name[32];

	(void)state;
	for (unsigned i = 0; i < 4096; i++) {
		snprintf(name, sizeof(name), "host-%u.example", i);
		assert_int_equal(cf_synth_addrs(s, name, 0, &v4, &v6), 0);
	}
	for (unsigned i = 0; i < 4096; i += 97) {
		snprintf(name, sizeof(name), "host-%u.example", i);
		assert_int_equal(cf_synth_addrs(s, name, 0, &v4, &v6), 0);
		assert_string_equal(cf_synth_name(s, &v6, 0), name);
		assert_int_equal((v4.b[2] << 8 | v4.b[3]) - 1, (int)i);
	}
	assert_int_equal(cf_synth_count(s), 4096);
	cf_synth_free(s);
}

static void test_bad_arguments_are_rejected(void **state)
{
	struct cf_synth *s = (struct cf_synth *)&s;
	struct cf_ip v4, v6;
	char long_name[300];

	(void)state;
	assert_int_equal(cf_synth_new(0, 1, &s), -EINVAL);
	assert_null(s);
	assert_int_equal(cf_synth_new(CF_SYNTH_MAX_SLOTS + 1, 1, &s), -EINVAL);
	s = table(4, 1);
	memset(long_name, 'a', 254);
	long_name[254] = '\0';
	assert_int_equal(cf_synth_addrs(s, "", 0, &v4, &v6), -EINVAL);
	assert_int_equal(cf_synth_addrs(s, NULL, 0, &v4, &v6), -EINVAL);
	assert_int_equal(cf_synth_addrs(s, long_name, 0, &v4, &v6), -EINVAL);
	long_name[253] = '\0';
	assert_int_equal(cf_synth_addrs(s, long_name, 0, &v4, &v6), 0);
	assert_int_equal(cf_synth_count(s), 1);
	cf_synth_free(s);
	cf_synth_free(NULL);
}

static void test_allocation_failures_are_reported_and_change_nothing(void **state)
{
#ifdef CF_TEST_ALLOC_FAIL
	struct cf_synth *s = NULL;
	struct cf_ip v4, v6;

	(void)state;
	if (!injection_works())
		skip();
	for (unsigned n = 1;; n++) {
		assert_true(n < 10);
		fail_nth_allocation(n);
		int r = cf_synth_new(8, 1, &s);

		if (!stop_failing()) {
			assert_int_equal(r, 0);
			break;
		}
		assert_int_equal(r, -ENOMEM);
		assert_null(s);
	}
	assert_non_null(s);
	fail_nth_allocation(1);
	assert_int_equal(cf_synth_addrs(s, "a.test", 0, &v4, &v6), -ENOMEM);
	assert_true(stop_failing());
	assert_int_equal(cf_synth_count(s), 0);
	assert_int_equal(cf_synth_addrs(s, "a.test", 0, &v4, &v6), 0);
	assert_ip(&v4, "198.19.0.1");
	cf_synth_free(s);
#else
	(void)state;
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_names_get_the_first_addresses_of_both_ranges),
	    cmocka_unit_test(test_a_name_keeps_its_addresses),
	    cmocka_unit_test(test_both_addresses_lead_back_to_the_name),
	    cmocka_unit_test(test_addresses_without_a_name_have_none),
	    cmocka_unit_test(test_contains_covers_exactly_the_two_ranges),
	    cmocka_unit_test(test_last_slot_of_a_full_size_table_is_198_19_255_254),
	    cmocka_unit_test(test_a_full_table_reuses_only_the_slot_idle_long_enough),
	    cmocka_unit_test(test_many_names_in_one_table_find_their_own_slot),
	    cmocka_unit_test(test_bad_arguments_are_rejected),
	    cmocka_unit_test(test_allocation_failures_are_reported_and_change_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
