// SPDX-License-Identifier: MIT
/*
 * Unit tests for the table of settings (src/config/settings.def and
 * settings.c): the invariants a new row must keep, and the summary's
 * controls that the table produces.
 */
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

#include "cli/cli.h"
#include "config/config.h"
#include "config/settings.h"
#include "util/cleanup.h"

static void test_keys_have_unique_wellformed_names_and_help(void **state)
{
	(void)state;
	assert_true(CF_KEY__COUNT <= 64);
	for (unsigned i = 0; i < CF_KEY__COUNT; i++) {
		const struct cf_setting *s = &cf_settings[i];

		assert_non_null(s->name);
		assert_true(s->name[0] != '\0');
		if (strspn(s->name, "abcdefghijklmnopqrstuvwxyz_") != strlen(s->name))
			fail_msg("key '%s': only a-z and _", s->name);
		if (!s->help || !s->help[0])
			fail_msg("key '%s' has no help text", s->name);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(s->name, cf_settings[j].name) == 0)
				fail_msg("key '%s' twice", s->name);
	}
}

static void test_keys_have_distinct_fields(void **state)
{
	(void)state;
	for (unsigned i = 0; i < CF_KEY__COUNT; i++) {
		assert_true(cf_settings[i].off < sizeof(struct cf_config));
		for (unsigned j = 0; j < i; j++)
			if (cf_settings[i].off == cf_settings[j].off)
				fail_msg("keys '%s' and '%s' share a field", cf_settings[i].name,
					 cf_settings[j].name);
	}
}

static void test_choice_lists_are_nonempty_and_hold_the_default(void **state)
{
	(void)state;
	for (unsigned i = 0; i < CF_KEY__COUNT; i++) {
		const struct cf_setting *s = &cf_settings[i];

		if (s->type != CF_T_CHOICE) {
			if (s->choices)
				fail_msg("key '%s' has choices but is not a CHOICE", s->name);
			continue;
		}
		if (!s->choices || !s->choices[0].name)
			fail_msg("CHOICE key '%s' has no choices", s->name);
		if (!cf_setting_choice((enum cf_key)i, s->def))
			fail_msg("default of '%s' is not one of its choices", s->name);
		for (const struct cf_choice *a = s->choices; a->name; a++)
			for (const struct cf_choice *b = s->choices; b < a; b++)
				if (!strcmp(a->name, b->name) || a->value == b->value)
					fail_msg("'%s': choice '%s' twice", s->name, a->name);
	}
}

static void test_options_have_unique_names_letters_and_help(void **state)
{
	size_t n;
	const struct cf_cli_option *o = cf_cli_options(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		assert_non_null(o[i].name);
		if (!o[i].help || !o[i].help[0])
			fail_msg("--%s has no help text", o[i].name);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(o[i].name, o[j].name) == 0)
				fail_msg("--%s twice", o[i].name);
			if (o[i].short_name && o[i].short_name == o[j].short_name)
				fail_msg("-%c is both --%s and --%s", o[i].short_name, o[j].name,
					 o[i].name);
		}
	}
}

/* An option of a key is that key's option, and it takes a value unless it is a flag. */
static void test_options_match_their_keys(void **state)
{
	size_t n, keyed = 0;
	const struct cf_cli_option *o = cf_cli_options(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const struct cf_setting *s;

		if (o[i].key == CF_KEY__COUNT)
			continue;
		keyed++;
		assert_true((unsigned)o[i].key < CF_KEY__COUNT);
		s = &cf_settings[o[i].key];
		assert_non_null(s->option);
		assert_string_equal(s->option, o[i].name);
		if ((s->type == CF_T_BOOL) != (o[i].arg == NULL))
			fail_msg("--%s: a flag exactly when its key is a BOOL", o[i].name);
	}
	for (unsigned k = 0; k < CF_KEY__COUNT; k++)
		if (cf_settings[k].option)
			keyed--;
	assert_int_equal(keyed, 0);
}

/* The summary names options: a row it lists needs one, and a password is never listed. */
static void test_controls_rows_have_an_option_and_no_secret(void **state)
{
	(void)state;
	for (unsigned k = 0; k < CF_KEY__COUNT; k++) {
		if (!cf_settings[k].controls)
			continue;
		if (!cf_settings[k].option)
			fail_msg("key '%s' is in the controls without an option",
				 cf_settings[k].name);
		assert_int_not_equal(cf_settings[k].type, CF_T_PASSWORD);
	}
}

static void test_controls_of_the_defaults_are_empty(void **state)
{
	struct cf_config c;
	struct cf_strv out = {0};

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_config_controls(&c, &out), 0);
	assert_int_equal(out.n, 0);
	cf_config_free(&c);
}

static void test_controls_list_what_is_set_in_table_order_without_credentials(void **state)
{
	/* A hosts file of the test's own: a minimal system may have no /etc/hosts. */
	char hosts[] = "/tmp/cf-test-hosts-XXXXXX", hosts_ctl[64];
	int hfd = mkstemp(hosts);
	const char *const want[] = {
	    "--dns 192.0.2.53",
	    hosts_ctl,
	    "--proxy socks5://proxy.example:1080",
	    "--offline",
	    "--default-policy deny",
	    "--allow-cidr 198.51.100.0/24",
	    "--deny-cidr 203.0.113.7/32",
	    "--deny-domain-exact bad.example",
	    "--fail-on-leak",
	    "--allow-host-port 5432/tcp",
	};
	static const struct cf_value_src src = {.cli = true};
	struct cf_config c;
	struct cf_strv out = {0};
	char why[256];

	(void)state;
	assert_true(hfd >= 0);
	close(hfd);
	snprintf(hosts_ctl, sizeof(hosts_ctl), "--hosts-file %s", hosts);
	cf_config_init(&c);
	assert_int_equal(cf_setting_set(&c, CF_KEY_PROXY, "socks5://u:secret@proxy.example", &src,
					why, sizeof(why)),
			 0);
	assert_int_equal(cf_setting_set(&c, CF_KEY_DNS, "192.0.2.53", &src, why, sizeof(why)), 0);
	assert_int_equal(cf_setting_set(&c, CF_KEY_HOSTS_FILE, hosts, &src, why, sizeof(why)), 0);
	assert_int_equal(cf_setting_set(&c, CF_KEY_DEFAULT_POLICY, "deny", &src, why, sizeof(why)),
			 0);
	assert_int_equal(
	    cf_setting_set(&c, CF_KEY_ALLOW_CIDRS, "198.51.100.0/24", &src, why, sizeof(why)), 0);
	assert_int_equal(
	    cf_setting_set(&c, CF_KEY_DENY_CIDRS, "203.0.113.7", &src, why, sizeof(why)), 0);
	assert_int_equal(
	    cf_setting_set(&c, CF_KEY_DENY_DOMAINS_EXACT, "Bad.Example.", &src, why, sizeof(why)),
	    0);
	assert_int_equal(
	    cf_setting_set(&c, CF_KEY_ALLOW_HOST_PORTS, "5432", &src, why, sizeof(why)), 0);
	assert_int_equal(
	    cf_setting_set(&c, CF_KEY_PROXY_PASSWORD, "hunter2", &src, why, sizeof(why)), 0);
	cf_setting_set_bool(&c, CF_KEY_OFFLINE, true);
	cf_setting_set_bool(&c, CF_KEY_FAIL_ON_LEAK, true);
	cf_setting_set_bool(&c, CF_KEY_SUMMARY, true); /* not a control */

	assert_int_equal(cf_config_controls(&c, &out), 0);
	for (size_t i = 0; i < out.n && i < CF_ARRAY_SIZE(want); i++)
		assert_string_equal(out.v[i], want[i]);
	assert_int_equal(out.n, CF_ARRAY_SIZE(want));
	for (size_t i = 0; i < out.n; i++) {
		assert_null(strstr(out.v[i], "secret"));
		assert_null(strstr(out.v[i], "hunter2"));
	}
	cf_strv_free(&out);
	cf_config_free(&c);
	unlink(hosts);
}

/* The two sources share the value code and differ only in how they quote a value. */
static void
test_set_quotes_values_as_typed_on_the_command_line_and_printable_from_profiles(void **state)
{
	static const struct cf_value_src cli = {.cli = true}, profile = {.dir = "/"};
	struct cf_config c;
	char why[256];

	(void)state;
	cf_config_init(&c);
	assert_int_equal(
	    cf_setting_set(&c, CF_KEY_DENY_CIDRS, "10.0.0.1/33\x1b", &cli, why, sizeof(why)),
	    -EINVAL);
	assert_string_equal(why, "invalid CIDR '10.0.0.1/33\x1b'");
	assert_int_equal(
	    cf_setting_set(&c, CF_KEY_DENY_CIDRS, "10.0.0.1/33\x1b", &profile, why, sizeof(why)),
	    -EINVAL);
	assert_string_equal(why, "invalid CIDR '10.0.0.1/33?'");
	assert_int_equal(c.set, 0);
	cf_config_free(&c);
}

static void test_rate_parse_and_format(void **state)
{
	static const struct {
		const char *in;
		uint64_t bps;
		const char *out;
	} ok[] = {
	    {"20M", 20000000, "20M"},	    {"8k", 8000, "8k"},	       {"1G", 1000000000, "1G"},
	    {"1500k", 1500000, "1500k"},    {"12345", 12345, "12345"}, {"1000", 0, NULL},
	    {"1000000k", 1000000000, "1G"},
	};
	static const char *const bad[] = {
	    "", "M", "20m", "20 M", "-5", "20Mbit", "7999", "1001G", "99999999999999999999999",
	    "0"};
	char buf[32];
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (!ok[i].out) {
			assert_int_equal(cf_rate_parse(ok[i].in, &v), -EINVAL); /* under 8k */
			continue;
		}
		assert_int_equal(cf_rate_parse(ok[i].in, &v), 0);
		assert_int_equal(v, ok[i].bps);
		assert_string_equal(cf_rate_format(v, buf, sizeof(buf)), ok[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cf_rate_parse(bad[i], &v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rate_parse_and_format),
	    cmocka_unit_test(test_keys_have_unique_wellformed_names_and_help),
	    cmocka_unit_test(test_keys_have_distinct_fields),
	    cmocka_unit_test(test_choice_lists_are_nonempty_and_hold_the_default),
	    cmocka_unit_test(test_options_have_unique_names_letters_and_help),
	    cmocka_unit_test(test_options_match_their_keys),
	    cmocka_unit_test(test_controls_rows_have_an_option_and_no_secret),
	    cmocka_unit_test(test_controls_of_the_defaults_are_empty),
	    cmocka_unit_test(test_controls_list_what_is_set_in_table_order_without_credentials),
	    cmocka_unit_test(
		test_set_quotes_values_as_typed_on_the_command_line_and_printable_from_profiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
