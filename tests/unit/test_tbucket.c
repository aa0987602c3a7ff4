// SPDX-License-Identifier: MIT
/* Unit tests for src/util/tbucket.c: --rate-limit's token bucket, on a made-up clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/tbucket.h"

#define MS 1000000ULL

static void test_starts_full_and_drains(void **state)
{
	struct cf_tbucket b;

	(void)state;
	cf_tbucket_init(&b, 1000000, 100000, 5 * MS);
	assert_int_equal(cf_tbucket_avail(&b, 5 * MS), 100000);
	cf_tbucket_take(&b, 60000);
	assert_int_equal(cf_tbucket_avail(&b, 5 * MS), 40000);
	cf_tbucket_take(&b, 50000); /* more than there is: empty, never negative */
	assert_int_equal(cf_tbucket_avail(&b, 5 * MS), 0);
}

static void test_refills_at_rate_up_to_burst(void **state)
{
	struct cf_tbucket b;

	(void)state;
	cf_tbucket_init(&b, 1000000, 100000, 0); /* 1 MB/s: 1000 bytes per ms */
	cf_tbucket_take(&b, 100000);
	assert_int_equal(cf_tbucket_avail(&b, 10 * MS), 10000);
	assert_int_equal(cf_tbucket_avail(&b, 30 * MS), 30000);
	assert_int_equal(cf_tbucket_avail(&b, 10000 * MS), 100000);
	/* a clock that goes back changes nothing */
	assert_int_equal(cf_tbucket_avail(&b, 1 * MS), 100000);
}

static void test_fractions_of_a_token_are_not_lost(void **state)
{
	struct cf_tbucket b;
	uint64_t t = 0;

	(void)state;
	cf_tbucket_init(&b, 3, 1000, 0); /* 3 bytes per second */
	cf_tbucket_take(&b, 1000);
	/* 100 steps of 0.1 s: 30 bytes, however the steps fall */
	for (int i = 0; i < 100; i++) {
		t += 100 * MS;
		cf_tbucket_avail(&b, t);
	}
	assert_int_equal(cf_tbucket_avail(&b, t), 30);
}

static void test_long_run_average_is_the_rate(void **state)
{
	struct cf_tbucket b;
	uint64_t moved = 0, t = 0;

	(void)state;
	cf_tbucket_init(&b, 2500000, 250000, 0); /* 20 Mbit/s, 100 ms burst */
	cf_tbucket_take(&b, 250000);
	/* a greedy sender asking every 0.7 ms for 10 s */
	while (t < 10000 * MS) {
		uint64_t n = cf_tbucket_avail(&b, t);

		cf_tbucket_take(&b, n);
		moved += n;
		t += 700000;
	}
	assert_in_range(moved, 25000000 - 3000, 25000000 + 3000);
}

static void test_wait_until_enough(void **state)
{
	struct cf_tbucket b;

	(void)state;
	cf_tbucket_init(&b, 1000000, 100000, 0);
	assert_int_equal(cf_tbucket_wait_ns(&b, 5000), 0);
	cf_tbucket_take(&b, 100000);
	assert_int_equal(cf_tbucket_wait_ns(&b, 5000), 5 * MS);
	/* more than a burst never fits: wait for a full bucket */
	assert_int_equal(cf_tbucket_wait_ns(&b, 1000000), 100 * MS);
	assert_int_equal(cf_tbucket_wait_ns(&b, 1), 1000);
}

static void test_huge_rate_does_not_overflow(void **state)
{
	struct cf_tbucket b;

	(void)state;
	cf_tbucket_init(&b, 125000000000ULL, 12500000000ULL, 0); /* 1 Tbit/s */
	cf_tbucket_take(&b, 12500000000ULL);
	assert_int_equal(cf_tbucket_avail(&b, 50 * MS), 6250000000ULL);
	assert_int_equal(cf_tbucket_avail(&b, 3600000 * MS), 12500000000ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_starts_full_and_drains),
	    cmocka_unit_test(test_refills_at_rate_up_to_burst),
	    cmocka_unit_test(test_fractions_of_a_token_are_not_lost),
	    cmocka_unit_test(test_long_run_average_is_the_rate),
	    cmocka_unit_test(test_wait_until_enough),
	    cmocka_unit_test(test_huge_rate_does_not_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
