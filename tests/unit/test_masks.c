// SPDX-License-Identifier: MIT
/* Unit tests for src/sandbox/masks.c: the default list and --mask/--unmask. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sandbox/masks.h"

static bool has(const struct cf_strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

static const struct cf_mask_env plain = {.uid = 1234, .user = "ann", .home = "/home/ann"};

static void test_defaults_cover_the_documented_list(void **state)
{
	static const char *const want[] = {
	    "/run/docker.sock",
	    "/var/run/docker.sock",
	    "/run/podman/podman.sock",
	    "/run/containerd/containerd.sock",
	    "/run/user/1234/bus",
	    "/run/user/1234/systemd",
	    "/run/user/1234/docker.sock",
	    "/run/user/1234/podman/podman.sock",
	    "/run/user/1234/containerd",
	    "/run/user/1234/containerd-rootless",
	    "/tmp/tmux-1234",
	    "/run/screen/S-ann",
	    "/home/ann/.screen",
	};
	struct cf_strv sv = {0};

	(void)state;
	assert_int_equal(cf_masks_defaults(&plain, &sv), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!has(&sv, want[i]))
			fail_msg("%s is not masked by default", want[i]);
	assert_int_equal(sv.n, sizeof(want) / sizeof(want[0]));
	cf_strv_free(&sv);
}

static void test_a_root_callers_tree_user_gets_its_own_places_masked_too(void **state)
{
	static const char *const tree[] = {
	    "/run/user/1000/bus", "/run/user/1000/systemd", "/tmp/tmux-1000",
	    "/run/screen/S-bob",  "/home/bob/.screen",
	};
	struct cf_mask_env env = {.uid = 0, .user = "root", .home = "/root"};
	struct cf_strv sv = {0};

	(void)state;
	env.has_tree_user = true;
	env.tree_uid = 1000;
	env.tree_user = "bob";
	env.tree_home = "/home/bob";
	assert_int_equal(cf_masks_defaults(&env, &sv), 0);
	for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
		if (!has(&sv, tree[i]))
			fail_msg("%s (the tree's user's) is not masked", tree[i]);
	assert_true(has(&sv, "/run/user/0/bus")); /* and the caller's */
	cf_strv_free(&sv);
	/* the caller's own uid adds nothing twice */
	env.has_tree_user = false;
	cf_mask_env_tree_user(&env, 0);
	assert_false(env.has_tree_user);
}

static void test_environment_adds_per_user_places(void **state)
{
	struct cf_mask_env env = plain;
	struct cf_strv sv = {0};

	(void)state;
	env.xdg_runtime_dir = "/var/xdg/";
	env.dbus_session_bus = "unix:path=/tmp/dbus-x,guid=42;unix:abstract=/tmp/y;"
			       "unix:path=/run/user/1234/bus";
	env.tmux_tmpdir = "/scratch";
	env.screendir = "/scratch/screens";
	assert_int_equal(cf_masks_defaults(&env, &sv), 0);
	assert_true(has(&sv, "/var/xdg/bus"));
	assert_true(has(&sv, "/var/xdg/systemd"));
	assert_true(has(&sv, "/var/xdg/podman/podman.sock"));
	assert_true(has(&sv, "/tmp/dbus-x"));
	assert_false(has(&sv, "/tmp/y")); /* abstract: per network namespace anyway */
	assert_true(has(&sv, "/scratch/tmux-1234"));
	assert_true(has(&sv, "/scratch/screens"));
	for (size_t i = 0; i < sv.n; i++) /* each once */
		for (size_t j = i + 1; j < sv.n; j++)
			assert_string_not_equal(sv.v[i], sv.v[j]);
	cf_strv_free(&sv);
	/* relative values are ignored, as the servers would not use them either */
	env = plain;
	env.xdg_runtime_dir = "run";
	env.user = NULL;
	env.home = NULL;
	assert_int_equal(cf_masks_defaults(&env, &sv), 0);
	assert_false(has(&sv, "run/bus"));
	assert_false(has(&sv, "/home/ann/.screen"));
	cf_strv_free(&sv);
}

static void test_unmask_removes_a_default_and_mask_adds(void **state)
{
	struct cf_config c;
	struct cf_strv sv = {0};
	char err[256] = "";

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_strv_push(&c.unmask, "/run/user/1234/bus"), 0);
	assert_int_equal(cf_strv_push(&c.unmask, "/run/user/1234/bus"), 0); /* twice is fine */
	assert_int_equal(cf_strv_push(&c.mask, "/srv/app.sock"), 0);
	assert_int_equal(cf_masks_build(&c, &plain, &sv, err, sizeof(err)), 0);
	assert_false(has(&sv, "/run/user/1234/bus"));
	assert_true(has(&sv, "/run/user/1234/systemd"));
	assert_true(has(&sv, "/srv/app.sock"));
	cf_strv_free(&sv);
	cf_config_free(&c);
}

static void test_unmask_of_a_path_not_in_the_list_is_an_error(void **state)
{
	struct cf_config c;
	struct cf_strv sv = {0};
	char err[256] = "";

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_strv_push(&c.unmask, "/run/user/1234/bus.typo"), 0);
	assert_int_equal(cf_masks_build(&c, &plain, &sv, err, sizeof(err)), -EINVAL);
	assert_non_null(
	    strstr(err, "--unmask: '/run/user/1234/bus.typo' is not masked by default"));
	assert_int_equal(sv.n, 0);
	cf_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_cover_the_documented_list),
	    cmocka_unit_test(test_environment_adds_per_user_places),
	    cmocka_unit_test(test_a_root_callers_tree_user_gets_its_own_places_masked_too),
	    cmocka_unit_test(test_unmask_removes_a_default_and_mask_adds),
	    cmocka_unit_test(test_unmask_of_a_path_not_in_the_list_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
