/* SPDX-License-Identifier: MIT */
/*
 * The rootful backend's host table as text (rootful/hosttable.c) and the
 * names of a run's host-side things (hoststate/records.h): the order of the
 * policy rules is the policy's order, and nothing broader than a run's own
 * names is ever taken for one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "config/settings.h"
#include "hoststate/records.h"
#include "rootful/hosttable.h"

static const struct cf_value_src cli = {.cli = true};

static void plan(struct cf_host_plan *hp, bool v6)
{
	memset(hp, 0, sizeof(*hp));
	snprintf(hp->id, sizeof(hp->id), "0badc0de");
	snprintf(hp->veth, sizeof(hp->veth), "cf-0badc0de");
	snprintf(hp->table, sizeof(hp->table), "childflow-0badc0de");
	hp->link.tree4.family = AF_INET;
	inet_pton(AF_INET, "198.18.128.2", hp->link.tree4.b);
	if (v6) {
		hp->link.tree6.family = AF_INET6;
		inet_pton(AF_INET6, "fd63:6866:6c77:8000::2", hp->link.tree6.b);
	}
}

static void render(struct cf_config *c, bool v6, char *buf, size_t len)
{
	struct cf_host_plan hp;
	struct cf_rootful_state st = {0};

	plan(&hp, v6);
	assert_true(cf_host_table_render(c, &hp, &st, buf, len) > 0);
}

/* Position of @needle in @hay, which must hold it. */
static size_t at(const char *hay, const char *needle)
{
	const char *p = strstr(hay, needle);

	if (!p)
		fail_msg("'%s' is not in the table:\n%s", needle, hay);
	return (size_t)(p - hay);
}

static void test_owned_and_named_after_the_run(void **state)
{
	struct cf_config c;
	char buf[16384];

	(void)state;
	cf_config_init(&c);
	render(&c, true, buf, sizeof(buf));
	assert_true(strncmp(buf, "table inet childflow-0badc0de {\n  flags owner\n", 46) == 0);
	at(buf, "ip saddr 198.18.128.2 oifname != \"cf-0badc0de\" masquerade");
	at(buf, "ip6 saddr fd63:6866:6c77:8000::2 oifname != \"cf-0badc0de\" masquerade");
	/* Nothing new reaches the tree; the tree reaches no other run's. */
	at(buf, "oifname \"cf-0badc0de\" drop");
	at(buf, "oifname \"cf-*\" goto deny");
	cf_config_free(&c);
}

static void test_longest_prefix_first_and_deny_first_on_a_tie(void **state)
{
	struct cf_config c;
	char buf[16384];

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_setting_set(&c, CF_KEY_DENY_CIDRS, "198.51.100.0/24", &cli, NULL, 0),
			 0);
	assert_int_equal(cf_setting_set(&c, CF_KEY_ALLOW_CIDRS, "198.51.100.11/32", &cli, NULL, 0),
			 0);
	assert_int_equal(cf_setting_set(&c, CF_KEY_ALLOW_CIDRS, "203.0.113.0/24", &cli, NULL, 0),
			 0);
	assert_int_equal(cf_setting_set(&c, CF_KEY_DENY_CIDRS, "203.0.113.0/24", &cli, NULL, 0), 0);
	render(&c, false, buf, sizeof(buf));
	assert_true(at(buf, "ip daddr 198.51.100.11/32 accept") <
		    at(buf, "ip daddr 198.51.100.0/24 goto deny"));
	assert_true(at(buf, "ip daddr 203.0.113.0/24 goto deny") <
		    at(buf, "ip daddr 203.0.113.0/24 accept"));
	/* No IPv6 for the tree: its IPv6 never leaves. */
	at(buf, "meta nfproto ipv6 drop");
	cf_config_free(&c);
}

static void test_builtins_come_before_the_rules_and_default_last(void **state)
{
	struct cf_config c;
	char buf[16384];

	(void)state;
	cf_config_init(&c);
	cf_setting_set_bool(&c, CF_KEY_BLOCK_METADATA, true);
	cf_setting_set_bool(&c, CF_KEY_BLOCK_PRIVATE, true);
	assert_int_equal(cf_setting_set(&c, CF_KEY_ALLOW_CIDRS, "10.1.2.3/32", &cli, NULL, 0), 0);
	assert_int_equal(cf_setting_set(&c, CF_KEY_DEFAULT_POLICY, "deny", &cli, NULL, 0), 0);
	render(&c, true, buf, sizeof(buf));
	/* metadata > private > rules > default (policy.h): the allow cannot lift private. */
	assert_true(at(buf, "ip daddr 169.254.169.254/32 goto deny") <
		    at(buf, "ip daddr 10.0.0.0/8"));
	assert_true(at(buf, "ip daddr 10.0.0.0/8 goto deny") <
		    at(buf, "ip daddr 10.1.2.3/32 accept"));
	assert_true(at(buf, "ip daddr 10.1.2.3/32 accept") < at(buf, "    goto deny\n    accept"));
	assert_true(at(buf, "ip daddr 224.0.0.0/4 goto deny") <
		    at(buf, "ip daddr 169.254.169.254/32"));
	cf_config_free(&c);
}

static void test_offline_denies_before_any_rule(void **state)
{
	struct cf_config c;
	char buf[16384];

	(void)state;
	cf_config_init(&c);
	cf_setting_set_bool(&c, CF_KEY_OFFLINE, true);
	assert_int_equal(cf_setting_set(&c, CF_KEY_ALLOW_CIDRS, "203.0.113.0/24", &cli, NULL, 0),
			 0);
	render(&c, true, buf, sizeof(buf));
	assert_true(at(buf, "fib daddr type { broadcast, multicast } goto deny\n    goto deny\n") <
		    at(buf, "ip daddr 203.0.113.0/24 accept"));
	cf_config_free(&c);
}

/* --rate-limit: the engine carries everything, so a socket the tree binds to its veth gets nothing.
 */
static void test_all_via_engine_denies_before_any_rule(void **state)
{
	struct cf_config c;
	struct cf_host_plan hp;
	struct cf_rootful_state st = {0};
	char buf[16384];

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_setting_set(&c, CF_KEY_ALLOW_CIDRS, "203.0.113.0/24", &cli, NULL, 0),
			 0);
	plan(&hp, true);
	assert_true(cf_host_table_render(&c, &hp, &st, buf, sizeof(buf)) > 0);
	assert_null(strstr(buf, "multicast } goto deny\n    goto deny\n"));
	hp.link.all_via_engine = true;
	assert_true(cf_host_table_render(&c, &hp, &st, buf, sizeof(buf)) > 0);
	assert_true(at(buf, "fib daddr type { broadcast, multicast } goto deny\n    goto deny\n") <
		    at(buf, "ip daddr 203.0.113.0/24 accept"));
	cf_config_free(&c);
}

static void test_a_small_buffer_is_enospc(void **state)
{
	struct cf_config c;
	struct cf_host_plan hp;
	struct cf_rootful_state st = {0};
	char buf[64];

	(void)state;
	cf_config_init(&c);
	plan(&hp, true);
	assert_int_equal(cf_host_table_render(&c, &hp, &st, buf, sizeof(buf)), -ENOSPC);
	cf_config_free(&c);
}

static void test_only_a_runs_own_names_are_ours(void **state)
{
	(void)state;
	assert_true(cf_host_name_is_ours("cf-0badc0de", CF_HOST_VETH_PREFIX));
	assert_true(cf_host_name_is_ours("childflow-12345678", CF_HOST_TABLE_PREFIX));
	assert_false(cf_host_name_is_ours("cf-0BADC0DE", CF_HOST_VETH_PREFIX));
	assert_false(cf_host_name_is_ours("cf-0badc0d", CF_HOST_VETH_PREFIX));
	assert_false(cf_host_name_is_ours("cf-0badc0de0", CF_HOST_VETH_PREFIX));
	assert_false(cf_host_name_is_ours("cf-0badc0dg", CF_HOST_VETH_PREFIX));
	assert_false(cf_host_name_is_ours("cf-", CF_HOST_VETH_PREFIX));
	assert_false(cf_host_name_is_ours("eth0", CF_HOST_VETH_PREFIX));
	assert_false(cf_host_name_is_ours("docker0", CF_HOST_VETH_PREFIX));
}

static void test_what_the_engine_carries_never_takes_the_kernels_path(void **state)
{
	struct cf_config c;
	struct cf_host_plan hp;
	struct cf_rootful_state st = {0};
	char buf[16384];

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_setting_set(&c, CF_KEY_ALLOW_CIDRS, "203.0.113.0/24", &cli, NULL, 0),
			 0);
	plan(&hp, true);
	assert_true(cf_host_table_render(&c, &hp, &st, buf, sizeof(buf)) > 0);
	assert_null(strstr(buf, "meta l4proto udp goto deny"));
	assert_null(strstr(buf, "meta l4proto tcp goto deny"));
	/* socks5://: the tree's UDP is the engine's; none leaves directly, whatever allows it. */
	hp.link.udp_via_engine = true;
	assert_true(cf_host_table_render(&c, &hp, &st, buf, sizeof(buf)) > 0);
	assert_true(at(buf, "meta l4proto udp goto deny") <
		    at(buf, "ip daddr 203.0.113.0/24 accept"));
	assert_null(strstr(buf, "meta l4proto tcp goto deny"));
	/* Any proxy, or domain rules: so is its TCP. */
	hp.link.udp_via_engine = false;
	hp.link.tcp_via_engine = true;
	assert_true(cf_host_table_render(&c, &hp, &st, buf, sizeof(buf)) > 0);
	assert_true(at(buf, "meta l4proto tcp goto deny") <
		    at(buf, "ip daddr 203.0.113.0/24 accept"));
	assert_null(strstr(buf, "meta l4proto udp goto deny"));
	cf_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_owned_and_named_after_the_run),
	    cmocka_unit_test(test_longest_prefix_first_and_deny_first_on_a_tie),
	    cmocka_unit_test(test_builtins_come_before_the_rules_and_default_last),
	    cmocka_unit_test(test_offline_denies_before_any_rule),
	    cmocka_unit_test(test_a_small_buffer_is_enospc),
	    cmocka_unit_test(test_only_a_runs_own_names_are_ours),
	    cmocka_unit_test(test_what_the_engine_carries_never_takes_the_kernels_path),
	    cmocka_unit_test(test_all_via_engine_denies_before_any_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
