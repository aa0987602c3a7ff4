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
	/* the helper named the step that failed, and it has the original's reason code */
	assert_int_equal(sb.step, CF_STEP_HOSTS);
	assert_string_equal(cf_sandbox_step_reason(sb.step), "hosts_bind_blocked");
	/* Nothing is left for the caller to close or reap. */
	assert_int_equal(open_fds(), before);
	assert_int_equal(sb.helper, -1);
	assert_int_equal(sb.pidfd, -1);
	assert_int_equal(sb.ctlfd, -1);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	cf_sandbox_close(&sb); /* still harmless */
}

static void test_every_step_has_its_own_reason_code(void **state)
{
	(void)state;
	/* the original's codes for the failures it names (docs/flow-log-schema.md) */
	assert_string_equal(cf_sandbox_step_reason(CF_STEP_NAMESPACES), "namespace_unshare_failed");
	assert_string_equal(cf_sandbox_step_reason(CF_STEP_ID_MAPS),
			    "user_namespace_mapping_failed");
	assert_string_equal(cf_sandbox_step_reason(CF_STEP_MOUNT_PROPAGATION),
			    "mount_propagation_blocked");
	assert_string_equal(cf_sandbox_step_reason(CF_STEP_RESOLV_CONF),
			    "resolv_conf_bind_blocked");
	assert_string_equal(cf_sandbox_step_reason(CF_STEP_TUN), "tap_create_blocked");
	assert_string_equal(cf_sandbox_step_reason(CF_STEP_CAPTURE), "packet_capture_blocked");
	assert_string_equal(cf_sandbox_step_reason(CF_STEP_CONTROL),
			    "rootless_bootstrap_sync_failed");
	assert_string_equal(cf_sandbox_step_reason(CF_STEP__COUNT), "unknown_runtime_failure");
	for (int i = 0; i < CF_STEP__COUNT; i++) {
		const char *a = cf_sandbox_step_reason((enum cf_sandbox_step)i);

		assert_null(strstr(a, "sandbox_setup_failed"));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(a, cf_sandbox_step_reason((enum cf_sandbox_step)j));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failed_setup_closes_everything),
	    cmocka_unit_test(test_every_step_has_its_own_reason_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
