// SPDX-License-Identifier: MIT
/* Unit tests for src/engine/treetask.c: the handles on the tree's calling threads. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/treetask.h"

static uint32_t cloexec_of(struct cf_treetasks *t, int fd)
{
	uint32_t flags = 0xffffffff;

	assert_int_equal(cf_treetasks_cloexec(t, gettid(), fd, &flags), 0);
	return flags;
}

/* A kept fdinfo file is read anew: a flag changed since, or another file at that number. */
static void test_the_close_on_exec_flag_is_read_as_it_is_now(void **state)
{
	struct cf_treetasks *t;
	int fd = socket(AF_INET, SOCK_STREAM, 0), copy;
	uint32_t flags;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(cf_treetasks_new(&t), 0);
	copy = cf_treetasks_getfd(t, gettid(), fd);
	assert_true(copy >= 0);
	close(copy);
	assert_int_equal(cloexec_of(t, fd), 0);
	assert_int_equal(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
	assert_int_equal(cloexec_of(t, fd), O_CLOEXEC);
	assert_int_equal(fcntl(fd, F_SETFD, 0), 0);
	assert_int_equal(cloexec_of(t, fd), 0);
	/* Another file at the same number, close-on-exec this time. */
	close(fd);
	assert_int_equal(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd);
	assert_int_equal(cloexec_of(t, fd), O_CLOEXEC);
	close(fd);
	assert_int_equal(cf_treetasks_cloexec(t, gettid(), fd, &flags), -ENOENT);
	cf_treetasks_free(t);
}

/* More fd numbers than are kept: each is still answered, and nothing leaks. */
static void test_many_fd_numbers_each_answered(void **state)
{
	struct cf_treetasks *t;
	int fds[12];

	(void)state;
	assert_int_equal(cf_treetasks_new(&t), 0);
	for (size_t i = 0; i < 12; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | (i % 2 ? SOCK_CLOEXEC : 0), 0);
		assert_true(fds[i] >= 0);
	}
	close(cf_treetasks_getfd(t, gettid(), fds[0]));
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < 12; i++)
			assert_int_equal(cloexec_of(t, fds[i]), i % 2 ? O_CLOEXEC : 0);
	for (size_t i = 0; i < 12; i++)
		close(fds[i]);
	cf_treetasks_free(t);
}

/* No handle for a thread that never called: ESRCH, not another thread's answer. */
static void test_an_unknown_thread_is_no_answer(void **state)
{
	struct cf_treetasks *t;
	uint32_t flags;

	(void)state;
	assert_int_equal(cf_treetasks_new(&t), 0);
	assert_int_equal(cf_treetasks_cloexec(t, gettid(), 0, &flags), -ESRCH);
	assert_int_equal(cf_treetasks_getfd(t, gettid(), 9999), -EBADF);
	cf_treetasks_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_the_close_on_exec_flag_is_read_as_it_is_now),
	    cmocka_unit_test(test_many_fd_numbers_each_answered),
	    cmocka_unit_test(test_an_unknown_thread_is_no_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
