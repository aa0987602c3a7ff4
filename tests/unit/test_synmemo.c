// SPDX-License-Identifier: MIT
/* Unit tests for src/engine/synmemo.c: the refused SYNs whose retransmissions get the same answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "engine/synmemo.h"

static struct cf_pkt syn4(uint8_t last, uint16_t sport, uint16_t dport, uint32_t isn)
{
	struct cf_pkt p;

	memset(&p, 0, sizeof(p));
	p.family = AF_INET;
	p.src.family = p.dst.family = AF_INET;
	memcpy(p.src.b, (uint8_t[]){198, 18, 0, 2}, 4);
	memcpy(p.dst.b, (uint8_t[]){198, 51, 100, last}, 4);
	p.sport = sport;
	p.dport = dport;
	p.tcp_seq = isn;
	p.tcp_flags = 0x02;
	return p;
}

static struct cf_synmemo *memo(void)
{
	struct cf_synmemo *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	return m;
}

static void test_a_retransmission_gets_the_same_answer(void **state)
{
	struct cf_synmemo *m = memo();
	struct cf_pkt a = syn4(10, 40000, 80, 0x11223344);

	(void)state;
	assert_int_equal(cf_synmemo_find(m, &a, 1000), 0);
	cf_synmemo_add(m, &a, EACCES, 1000);
	assert_int_equal(cf_synmemo_find(m, &a, 2000), EACCES);
	assert_int_equal(cf_synmemo_find(m, &a, 1000 + CF_SYNMEMO_KEEP_MS - 1), EACCES);
	free(m);
}

static void test_a_new_attempt_is_not_a_retransmission(void **state)
{
	struct cf_synmemo *m = memo();
	struct cf_pkt a = syn4(10, 40000, 80, 0x11223344);
	struct cf_pkt other_isn = syn4(10, 40000, 80, 0x11223345);
	struct cf_pkt other_port = syn4(10, 40001, 80, 0x11223344);
	struct cf_pkt other_dport = syn4(10, 40000, 81, 0x11223344);
	struct cf_pkt other_dst = syn4(11, 40000, 80, 0x11223344);
	struct cf_pkt v6 = a;

	(void)state;
	v6.family = v6.src.family = v6.dst.family = AF_INET6;
	cf_synmemo_add(m, &a, ECONNREFUSED, 0);
	assert_int_equal(cf_synmemo_find(m, &other_isn, 1), 0);
	assert_int_equal(cf_synmemo_find(m, &other_port, 1), 0);
	assert_int_equal(cf_synmemo_find(m, &other_dport, 1), 0);
	assert_int_equal(cf_synmemo_find(m, &other_dst, 1), 0);
	assert_int_equal(cf_synmemo_find(m, &v6, 1), 0);
	free(m);
}

static void test_a_failure_is_forgotten_after_its_time(void **state)
{
	struct cf_synmemo *m = memo();
	struct cf_pkt a = syn4(10, 40000, 80, 7);

	(void)state;
	cf_synmemo_add(m, &a, ETIMEDOUT, 500);
	assert_int_equal(cf_synmemo_find(m, &a, 500 + CF_SYNMEMO_KEEP_MS), 0);
	free(m);
}

static void test_the_latest_failure_of_a_slot_wins(void **state)
{
	struct cf_synmemo *m = memo();
	struct cf_pkt first = syn4(10, 40000, 80, 7);
	struct cf_pkt again = syn4(10, 40000, 80, 9);
	size_t kept = 0;

	(void)state;
	cf_synmemo_add(m, &first, EACCES, 0);
	cf_synmemo_add(m, &again, EHOSTUNREACH, 0); /* the same tuple: the same slot */
	assert_int_equal(cf_synmemo_find(m, &first, 1), 0);
	assert_int_equal(cf_synmemo_find(m, &again, 1), EHOSTUNREACH);
	/* More failures than slots: bounded, and the newest are remembered. */
	for (uint16_t p = 0; p < 4 * CF_SYNMEMO_SLOTS; p++) {
		struct cf_pkt s = syn4(20, (uint16_t)(1024 + p), 443, p);

		cf_synmemo_add(m, &s, ENETUNREACH, 0);
	}
	for (uint16_t p = 0; p < 4 * CF_SYNMEMO_SLOTS; p++) {
		struct cf_pkt s = syn4(20, (uint16_t)(1024 + p), 443, p);

		kept += cf_synmemo_find(m, &s, 1) == ENETUNREACH;
	}
	assert_true(kept > CF_SYNMEMO_SLOTS / 2 && kept <= CF_SYNMEMO_SLOTS);
	struct cf_pkt newest =
	    syn4(20, (uint16_t)(1024 + 4 * CF_SYNMEMO_SLOTS - 1), 443, 4 * CF_SYNMEMO_SLOTS - 1);
	assert_int_equal(cf_synmemo_find(m, &newest, 1), ENETUNREACH);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_retransmission_gets_the_same_answer),
	    cmocka_unit_test(test_a_new_attempt_is_not_a_retransmission),
	    cmocka_unit_test(test_a_failure_is_forgotten_after_its_time),
	    cmocka_unit_test(test_the_latest_failure_of_a_slot_wins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
