// SPDX-License-Identifier: MIT
/* Unit tests for src/util/fileio.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_file_writes_the_whole_text),
	    cmocka_unit_test(test_write_file_reports_open_and_write_errors),
	    cmocka_unit_test(test_write_proc_builds_the_path_of_the_pid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
