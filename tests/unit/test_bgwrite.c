// SPDX-License-Identifier: MIT
/* Unit tests for src/util/bgwrite.c: order, bounded buffers, errors, allocation failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc_fail.h"
#include "util/bgwrite.h"

#define BUF 4096u

static int tmpfile_fd(char *path)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	return fd;
}

/* Fill @n bytes of the current buffer with the running counter @seq. */
static void fill(struct cf_bgwrite *w, size_t n, uint32_t *seq)
{
	uint8_t *p = cf_bgwrite_buffer(w);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((*seq)++ * 7u);
}

static void test_buffers_reach_the_file_whole_and_in_order(void **state)
{
	char path[] = "/tmp/cf-test-bgwrite-XXXXXX";
	int fd = tmpfile_fd(path);
	struct cf_bgwrite *w = NULL;
	uint32_t seq = 0, total = 0;
	uint64_t written = 0;
	struct stat st;
	uint8_t *got;

	(void)state;
	assert_int_equal(cf_bgwrite_new(fd, BUF, 2, &w), 0);
	assert_int_equal(cf_bgwrite_size(w), BUF);
	/* far more buffers than the two it has: the submits must wait their turn */
	for (unsigned i = 0; i < 3000; i++) {
		size_t n = 1 + (i * 37u) % BUF;

		fill(w, n, &seq);
		total += (uint32_t)n;
		assert_int_equal(cf_bgwrite_submit(w, n), 0);
		if (i % 1000 == 999) {
			assert_int_equal(cf_bgwrite_sync(w, &written), 0);
			assert_int_equal(written, total);
		}
	}
	assert_int_equal(cf_bgwrite_submit(w, 0), 0); /* nothing to hand over */
	assert_int_equal(cf_bgwrite_free(w, &written), 0);
	assert_int_equal(written, total);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, total);
	got = malloc(total);
	assert_non_null(got);
	assert_int_equal(pread(fd, got, total, 0), (ssize_t)total);
	for (uint32_t i = 0; i < total; i++)
		if (got[i] != (uint8_t)(i * 7u))
			fail_msg("byte %u is %u, not %u", i, got[i], (uint8_t)(i * 7u));
	free(got);
	close(fd);
	unlink(path);
}

static void test_full_device_gives_enospc_from_then_on(void **state)
{
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	struct cf_bgwrite *w = NULL;
	uint64_t written = 1;
	uint32_t seq = 0;
	int r = 0;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(cf_bgwrite_new(fd, BUF, 3, &w), 0);
	/* the first submit may return before the thread met the error; a sync may not */
	fill(w, 100, &seq);
	r = cf_bgwrite_submit(w, 100);
	assert_true(r == 0 || r == -ENOSPC);
	assert_int_equal(cf_bgwrite_sync(w, &written), -ENOSPC);
	assert_int_equal(written, 0);
	fill(w, 100, &seq);
	assert_int_equal(cf_bgwrite_submit(w, 100), -ENOSPC);
	assert_int_equal(cf_bgwrite_submit(w, 0), -ENOSPC);
	assert_int_equal(cf_bgwrite_free(w, &written), -ENOSPC);
	assert_int_equal(written, 0);
	close(fd);
}

static void test_closed_pipe_gives_epipe_and_no_signal_kills_us(void **state)
{
	struct cf_bgwrite *w = NULL;
	uint32_t seq = 0;
	int p[2];

	(void)state;
	/* SIGPIPE keeps its default action: the thread blocks it, so write() just fails */
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	assert_int_equal(cf_bgwrite_new(p[1], BUF, 2, &w), 0);
	fill(w, 10, &seq);
	(void)cf_bgwrite_submit(w, 10);
	assert_int_equal(cf_bgwrite_free(w, NULL), -EPIPE);
	close(p[1]);
}

static void test_new_rejects_invalid_arguments(void **state)
{
	struct cf_bgwrite *w = NULL;

	(void)state;
	assert_int_equal(cf_bgwrite_new(-1, BUF, 2, &w), -EINVAL);
	assert_int_equal(cf_bgwrite_new(1, 0, 2, &w), -EINVAL);
	assert_int_equal(cf_bgwrite_new(1, BUF, 1, &w), -EINVAL);
	assert_int_equal(cf_bgwrite_new(1, BUF, 2, NULL), -EINVAL);
	assert_null(w);
	assert_int_equal(cf_bgwrite_free(NULL, NULL), 0);
}

static void test_submit_rejects_more_than_a_buffer(void **state)
{
	char path[] = "/tmp/cf-test-bgwrite-XXXXXX";
	int fd = tmpfile_fd(path);
	struct cf_bgwrite *w = NULL;

	(void)state;
	assert_int_equal(cf_bgwrite_new(fd, BUF, 2, &w), 0);
	assert_int_equal(cf_bgwrite_submit(w, BUF + 1), -EINVAL);
	assert_int_equal(cf_bgwrite_free(w, NULL), 0);
	close(fd);
	unlink(path);
}

static void test_allocation_failures_leave_nothing(void **state)
{
	(void)state;
#ifdef CF_TEST_ALLOC_FAIL
	if (!injection_works())
		skip();
	/* new allocates 2 + nbufs times; every one of them may fail */
	for (unsigned n = 1; n <= 2 + 3; n++) {
		struct cf_bgwrite *w = NULL;

		fail_nth_allocation(n);
		assert_int_equal(cf_bgwrite_new(1, BUF, 3, &w), -ENOMEM);
		assert_true(stop_failing());
		assert_null(w);
	}
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buffers_reach_the_file_whole_and_in_order),
	    cmocka_unit_test(test_full_device_gives_enospc_from_then_on),
	    cmocka_unit_test(test_closed_pipe_gives_epipe_and_no_signal_kills_us),
	    cmocka_unit_test(test_new_rejects_invalid_arguments),
	    cmocka_unit_test(test_submit_rejects_more_than_a_buffer),
	    cmocka_unit_test(test_allocation_failures_leave_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
