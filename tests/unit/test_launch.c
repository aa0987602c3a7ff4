// SPDX-License-Identifier: MIT
/*
 * Unit tests for src/sandbox/launch.c: a sandbox that fails to start leaves
 * nothing behind (no descriptor, no process). Needs user namespaces; skipped
 * where this user may not create them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "sandbox/launch.h"
#include "sandbox/plan.h"

/* The number of descriptors open in this process. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

static void test_failed_setup_closes_everything(void **state)
{
	char *const argv[] = {"true", NULL};
	struct cf_plan plan;
	struct cf_sandbox sb;
	enum cf_sandbox_phase phase;
	char err[512] = "";
	int before, r;

	(void)state;
	cf_plan_default(&plan);
	/* The helper fails after the clone: --hosts-file names nothing. */
	struct cf_sandbox_opts so = {
	    .argv = argv,
	    .resolv_text = "nameserver 198.18.0.1\n",
	    .hosts_path = "/nonexistent/childflow-test-launch/hosts",
	    .plan = &plan,
	};
	before = open_fds();
	r = cf_sandbox_start(&so, &sb, &phase, err, sizeof(err));
	if (r < 0 && phase == CF_SANDBOX_PREFLIGHT) {
		print_message("no user namespaces here (%s)\n", err);
		skip();
	}
	print_message("cf_sandbox_start: %d, %s\n", r, err);
	assert_true(r < 0);
	assert_int_equal(phase, CF_SANDBOX_BOOTSTRAP);
	assert_non_null(strstr(err, "--hosts-file"));
	/* Nothing is left for the caller to close or reap. */
	assert_int_equal(open_fds(), before);
	assert_int_equal(sb.helper, -1);
	assert_int_equal(sb.pidfd, -1);
	assert_int_equal(sb.ctlfd, -1);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	cf_sandbox_close(&sb); /* still harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failed_setup_closes_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
