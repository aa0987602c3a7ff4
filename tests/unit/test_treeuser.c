// SPDX-License-Identifier: MIT
/* Unit tests for src/sandbox/treeuser.c: who the command tree runs as. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "sandbox/treeuser.h"

/* "root" and "daemon" (1:1) are in every Debian passwd; 4242 and the name below are in none. */
#define UNKNOWN_NAME "cf-no-such-user"

static struct cf_tree_user pick_ok(const char *spec, unsigned caller, const char *sudo_uid,
				   const char *sudo_gid)
{
	struct cf_tree_user u;
	char err[256] = "";

	assert_int_equal(cf_tree_user_pick(spec, caller == 0, caller, caller, sudo_uid, sudo_gid,
					   &u, err, sizeof(err)),
			 0);
	assert_string_equal(err, "");
	return u;
}

static void a_caller_that_is_not_root_runs_the_tree_as_itself(void **state)
{
	struct cf_tree_user u;

	(void)state;
	u = pick_ok(NULL, 1000, "0", "0"); /* sudo's variables mean nothing here */
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1000);
	assert_false(u.root);
	assert_string_equal(u.note, "");
	u = pick_ok("1000", 1000, NULL, NULL); /* naming itself is fine */
	assert_int_equal(u.uid, 1000);
	assert_string_equal(u.note, "");
}

static void a_caller_that_is_not_root_cannot_name_another_user(void **state)
{
	struct cf_tree_user u;
	char err[256];

	(void)state;
	assert_int_equal(
	    cf_tree_user_pick("root", false, 1000, 1000, NULL, NULL, &u, err, sizeof(err)), -EPERM);
	assert_string_equal(err, "--user: only root can run the command as another user ('root' is "
				 "uid 0, you are uid 1000); drop --user or run childflow as root");
	assert_int_equal(
	    cf_tree_user_pick("daemon", false, 1000, 1000, NULL, NULL, &u, err, sizeof(err)),
	    -EPERM);
}

static void root_of_a_user_namespace_is_an_ordinary_caller(void **state)
{
	struct cf_tree_user u;
	char err[256];

	(void)state;
	assert_int_equal(cf_tree_user_pick(NULL, false, 0, 0, "1000", "1000", &u, err, sizeof(err)),
			 0);
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 0);
	assert_false(u.root);
	assert_string_equal(u.note, "");
	assert_int_equal(cf_tree_user_pick("daemon", false, 0, 0, NULL, NULL, &u, err, sizeof(err)),
			 -EPERM);
	assert_string_equal(err, "--user: only root can run the command as another user ('daemon' "
				 "is uid 1, you are uid 0 in a user namespace); drop --user or run "
				 "childflow as root");
}

static void an_unknown_user_name_is_an_error_naming_it(void **state)
{
	struct cf_tree_user u;
	char err[256];

	(void)state;
	assert_int_equal(
	    cf_tree_user_pick(UNKNOWN_NAME, true, 0, 0, NULL, NULL, &u, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--user: unknown user '" UNKNOWN_NAME
				 "' (give a user name or a numeric UID)");
}

static void a_root_caller_runs_the_tree_as_sudos_user(void **state)
{
	struct cf_tree_user u;

	(void)state;
	u = pick_ok(NULL, 0, "1000", "1001");
	assert_int_equal(u.uid, 1000);
	assert_int_equal(u.gid, 1001);
	assert_false(u.root);
	assert_string_equal(u.note, "running the command as uid 1000, gid 1001 (from SUDO_UID); "
				    "use --user to choose, --user root to keep root");
	u = pick_ok(NULL, 0, "1", "x"); /* no valid SUDO_GID: the user's primary group */
	assert_int_equal(u.uid, 1);
	assert_int_equal(u.gid, 1);
}

static void a_root_caller_without_sudo_runs_the_tree_as_nobody(void **state)
{
	static const char *const bad[] = {NULL, "", "0", "-1", "1000x", "4294967295", " 1000"};
	struct cf_tree_user u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u = pick_ok(NULL, 0, bad[i], "1000");
		assert_int_equal(u.uid, CF_TREE_NOBODY);
		assert_int_equal(u.gid, CF_TREE_NOBODY);
		assert_string_equal(u.note, "running the command as uid 65534, gid 65534 (nobody: "
					    "no SUDO_UID); use --user to choose, --user root to "
					    "keep root");
	}
}

static void a_root_caller_chooses_with_user(void **state)
{
	struct cf_tree_user u;

	(void)state;
	u = pick_ok("daemon", 0, "1000", "1000");
	assert_int_equal(u.uid, 1);
	assert_int_equal(u.gid, 1);
	assert_string_equal(u.note, "");
	u = pick_ok("4242", 0, NULL, NULL); /* a UID without an entry: nogroup */
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, CF_TREE_NOBODY);
	u = pick_ok("root", 0, "1000", "1000");
	assert_int_equal(u.uid, 0);
	assert_int_equal(u.gid, 0);
	assert_true(u.root);
	assert_non_null(strstr(u.note, "warning: --user root:"));
	u = pick_ok("0", 0, NULL, NULL);
	assert_true(u.root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_caller_that_is_not_root_runs_the_tree_as_itself),
	    cmocka_unit_test(a_caller_that_is_not_root_cannot_name_another_user),
	    cmocka_unit_test(root_of_a_user_namespace_is_an_ordinary_caller),
	    cmocka_unit_test(an_unknown_user_name_is_an_error_naming_it),
	    cmocka_unit_test(a_root_caller_runs_the_tree_as_sudos_user),
	    cmocka_unit_test(a_root_caller_without_sudo_runs_the_tree_as_nobody),
	    cmocka_unit_test(a_root_caller_chooses_with_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
