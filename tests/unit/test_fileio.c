// SPDX-License-Identifier: MIT
/* Unit tests for src/util/fileio.c. */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

static void test_write_file_writes_the_whole_text(void **state)
{
	char path[] = "/tmp/cf-test-fileio-XXXXXX", buf[32] = "";
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(cf_write_file(path, "1 2 3\n"), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	unlink(path);
	assert_string_equal(buf, "1 2 3\n");
}

static void test_write_file_reports_open_and_write_errors(void **state)
{
	(void)state;
	/* never creates a file */
	assert_int_equal(cf_write_file("/tmp/cf-test-fileio-missing/x", "1"), -ENOENT);
	assert_int_equal(cf_write_file("/dev/full", "1"), -ENOSPC);
}

static void test_write_proc_builds_the_path_of_the_pid(void **state)
{
	(void)state;
	/* /proc/PID/comm of this process takes a new name */
	assert_int_equal(cf_write_proc(getpid(), "comm", "cf-fileio-test"), 0);
	assert_int_equal(cf_write_proc(getpid(), "no-such-file", "x"), -ENOENT);
}

static void test_write_all_puts_out_every_byte_and_stops_at_the_first_error(void **state)
{
	char path[] = "/tmp/cf-test-fileio-XXXXXX";
	static char big[1 << 20];
	struct rlimit old, lim;
	struct stat st;
	int fd = mkstemp(path), p[2];

	(void)state;
	assert_true(fd >= 0);
	memset(big, 'x', sizeof(big));
	assert_int_equal(cf_write_all(fd, big, sizeof(big)), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, sizeof(big));
	/* a file size limit cuts a write short: what fits goes out, then the error */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = (struct rlimit){.rlim_cur = sizeof(big) + 1000, .rlim_max = old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(cf_write_all(fd, big, sizeof(big)), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, sizeof(big) + 1000);
	close(fd);
	unlink(path);

	fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(cf_write_all(fd, "x", 1), -ENOSPC);
	close(fd);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	assert_int_equal(cf_write_all(p[1], "x", 1), -EPIPE);
	close(p[1]);
	assert_int_equal(cf_write_all(-1, "x", 1), -EBADF);
	assert_int_equal(cf_write_all(-1, "x", 0), 0); /* nothing to write: nothing done */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_file_writes_the_whole_text),
	    cmocka_unit_test(test_write_file_reports_open_and_write_errors),
	    cmocka_unit_test(test_write_proc_builds_the_path_of_the_pid),
	    cmocka_unit_test(test_write_all_puts_out_every_byte_and_stops_at_the_first_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
