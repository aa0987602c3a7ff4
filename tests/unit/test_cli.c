// SPDX-License-Identifier: MIT
/* Unit tests for src/cli/cli.c: every option, modes, argument splitting, messages, --help. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/cleanup.h"

/* Scratch files shared by all tests, created once in group setup. */
static char tmpdir[64];
static char hosts_path[128], profile_path[128], flowlog_path[128], subdir_path[128];
static char regular_file[128], cap_path[128];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cf-test-cli-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", tmpdir);
	snprintf(profile_path, sizeof(profile_path), "%s/p.toml", tmpdir);
	snprintf(flowlog_path, sizeof(flowlog_path), "%s/flows.jsonl", tmpdir);
	snprintf(subdir_path, sizeof(subdir_path), "%s/sub", tmpdir);
	snprintf(regular_file, sizeof(regular_file), "%s/file", tmpdir);
	snprintf(cap_path, sizeof(cap_path), "%s/out.pcapng", tmpdir);
	write_file(hosts_path, "127.0.0.1 localhost\n");
	write_file(profile_path, "summary = true\n");
	write_file(flowlog_path, "{}\n");
	write_file(regular_file, "x\n");
	return mkdir(subdir_path, 0700);
}

static int group_teardown(void **state)
{
	char path[160];

	(void)state;
	unlink(hosts_path);
	unlink(profile_path);
	unlink(flowlog_path);
	unlink(regular_file);
	unlink(cap_path);
	snprintf(path, sizeof(path), "%s/rel.pcapng", tmpdir);
	unlink(path);
	rmdir(subdir_path);
	return rmdir(tmpdir);
}

/* Parse "childflow ARGS..." (NULL-terminated); return the result code. */
static int parse_argv(struct cf_cli *cli, char *err, size_t errlen, const char *const *args)
{
	char *argv[64];
	int argc = 0;

	argv[argc++] = "childflow";
	for (; *args; args++) {
		assert_true(argc < 63);
		argv[argc++] = (char *)*args;
	}
	argv[argc] = NULL;
	return cf_cli_parse(argc, argv, cli, err, errlen);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Parse expecting success; fail the test with the message otherwise. */
#define PARSE_OK(cli, ...)                                                                         \
	do {                                                                                       \
		char e_[256] = "";                                                                 \
		if (parse_argv((cli), e_, sizeof(e_), ARGS(__VA_ARGS__)) != 0)                     \
			fail_msg("rejected: %s", e_);                                              \
	} while (0)

/* Parse expecting -EINVAL, and a message containing @want1 and @want2. */
static void expect_error(const char *want1, const char *want2, const char *const *args)
{
	struct cf_cli cli;
	char err[512] = "";

	if (parse_argv(&cli, err, sizeof(err), args) != -EINVAL)
		fail_msg("accepted (want error '%s')", want1);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("message lacks '%s'/'%s': %s", want1, want2 ? want2 : "", err);
	if (strchr(err, '\n'))
		fail_msg("message is not one line: %s", err);
	/* a failed parse leaves nothing behind */
	assert_int_equal(cli.cfg.set, 0);
	assert_null(cli.profile);
	assert_null(cli.report_path);
	assert_null(cli.cfg.command.v);
	cf_cli_free(&cli);
}

#define EXPECT_ERROR(w1, w2, ...) expect_error((w1), (w2), ARGS(__VA_ARGS__))

static void test_no_arguments_is_run_mode_with_nothing_set(void **state)
{
	struct cf_cli cli;
	char *argv[] = {"childflow", NULL};
	char err[64];

	(void)state;
	assert_int_equal(cf_cli_parse(1, argv, &cli, err, sizeof(err)), 0);
	assert_int_equal(cli.mode, CF_MODE_RUN);
	assert_int_equal(cli.cfg.set, 0);
	assert_int_equal(cli.cfg.command.n, 0);
	assert_null(cli.profile);
	cf_cli_free(&cli);
}

static void test_command_after_first_non_option_is_not_parsed(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--summary", "curl", "-v", "--offline", "https://example.com");
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_SUMMARY) | CF_KEY_BIT(CF_KEY_COMMAND));
	assert_false(cli.cfg.offline);
	assert_int_equal(cli.cfg.command.n, 4);
	assert_string_equal(cli.cfg.command.v[0], "curl");
	assert_string_equal(cli.cfg.command.v[1], "-v");
	assert_string_equal(cli.cfg.command.v[2], "--offline");
	assert_string_equal(cli.cfg.command.v[3], "https://example.com");
	assert_null(cli.cfg.command.v[4]);
	cf_cli_free(&cli);
}

static void test_double_dash_ends_options(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--offline", "--", "--summary", "-h");
	assert_true(cli.cfg.offline);
	assert_false(cli.cfg.summary);
	assert_int_equal(cli.mode, CF_MODE_RUN);
	assert_int_equal(cli.cfg.command.n, 2);
	assert_string_equal(cli.cfg.command.v[0], "--summary");
	assert_string_equal(cli.cfg.command.v[1], "-h");
	cf_cli_free(&cli);

	/* a "--" after the command belongs to the command */
	PARSE_OK(&cli, "env", "--", "x");
	assert_int_equal(cli.cfg.command.n, 3);
	assert_string_equal(cli.cfg.command.v[1], "--");
	cf_cli_free(&cli);

	/* "--" with nothing after it sets no command */
	PARSE_OK(&cli, "--summary", "--");
	assert_int_equal(cli.cfg.command.n, 0);
	assert_false(cli.cfg.set & CF_KEY_BIT(CF_KEY_COMMAND));
	cf_cli_free(&cli);
}

static void test_short_options_take_attached_or_separate_values(void **state)
{
	struct cf_cli cli;
	char buf[CF_IP_STRLEN];

	(void)state;
	PARSE_OK(&cli, "-d198.51.100.53", "-i", "eth0", "-Cboth", "--", "true");
	assert_string_equal(cf_ip_format(&cli.cfg.dns, buf, sizeof(buf)), "198.51.100.53");
	assert_string_equal(cli.cfg.iface, "eth0");
	assert_int_equal(cli.cfg.capture_point, CF_CAPTURE_BOTH);
	cf_cli_free(&cli);

	PARSE_OK(&cli, "--dns=2001:db8::53", "--iface=wlan0");
	assert_string_equal(cf_ip_format(&cli.cfg.dns, buf, sizeof(buf)), "2001:db8::53");
	assert_string_equal(cli.cfg.iface, "wlan0");
	cf_cli_free(&cli);
}

static void test_modes_are_selected_by_their_options(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--doctor");
	assert_int_equal(cli.mode, CF_MODE_DOCTOR);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--dump-profile", "--", "curl", "x");
	assert_int_equal(cli.mode, CF_MODE_DUMP_PROFILE);
	assert_int_equal(cli.cfg.command.n, 2);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--report", flowlog_path);
	assert_int_equal(cli.mode, CF_MODE_REPORT);
	assert_string_equal(cli.report_path, flowlog_path);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "-h");
	assert_int_equal(cli.mode, CF_MODE_HELP);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--help");
	assert_int_equal(cli.mode, CF_MODE_HELP);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "-V");
	assert_int_equal(cli.mode, CF_MODE_VERSION);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--version");
	assert_int_equal(cli.mode, CF_MODE_VERSION);
	cf_cli_free(&cli);
	/* the same mode twice is fine */
	PARSE_OK(&cli, "--doctor", "--doctor", "--root");
	assert_int_equal(cli.mode, CF_MODE_DOCTOR);
	assert_int_equal(cli.cfg.backend, CF_BACKEND_ROOTFUL);
	cf_cli_free(&cli);
}

static void test_help_and_version_win_over_later_arguments(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--summary", "--help", "--bogus", "--dns", "nonsense");
	assert_int_equal(cli.mode, CF_MODE_HELP);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "-V", "--allow-cidr", "10.0.0.1/8");
	assert_int_equal(cli.mode, CF_MODE_VERSION);
	cf_cli_free(&cli);
}

static void test_conflicting_modes_are_rejected(void **state)
{
	(void)state;
	EXPECT_ERROR("--report cannot be combined with --doctor", NULL, "--doctor", "--report",
		     flowlog_path);
	EXPECT_ERROR("--doctor cannot be combined with --dump-profile", NULL, "--dump-profile",
		     "--doctor");
	EXPECT_ERROR("--dump-profile cannot be combined with --report", NULL, "--report",
		     flowlog_path, "--dump-profile");
}

static void test_doctor_and_report_take_no_command(void **state)
{
	(void)state;
	EXPECT_ERROR("--doctor runs no command", "'curl'", "--doctor", "curl");
	EXPECT_ERROR("--report runs no command", "'ls'", "--report", flowlog_path, "--", "ls");
}

static void test_root_selects_rootful_backend(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--root");
	assert_int_equal(cli.cfg.backend, CF_BACKEND_ROOTFUL);
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_BACKEND));
	cf_cli_free(&cli);
	EXPECT_ERROR("--root: takes no value", NULL, "--root=yes");
}

static void test_flags_set_their_value_and_key_only(void **state)
{
	static const struct {
		const char *opt;
		enum cf_key key;
		size_t offset;
	} flags[] = {
	    {"--proxy-insecure", CF_KEY_PROXY_INSECURE, offsetof(struct cf_config, proxy_insecure)},
	    {"--summary", CF_KEY_SUMMARY, offsetof(struct cf_config, summary)},
	    {"--offline", CF_KEY_OFFLINE, offsetof(struct cf_config, offline)},
	    {"--block-private", CF_KEY_BLOCK_PRIVATE, offsetof(struct cf_config, block_private)},
	    {"--block-metadata", CF_KEY_BLOCK_METADATA, offsetof(struct cf_config, block_metadata)},
	    {"--proxy-only", CF_KEY_PROXY_ONLY, offsetof(struct cf_config, proxy_only)},
	    {"--fail-on-leak", CF_KEY_FAIL_ON_LEAK, offsetof(struct cf_config, fail_on_leak)},
	};
	struct cf_cli cli;
	char valued[64];

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(flags); i++) {
		PARSE_OK(&cli, flags[i].opt);
		assert_true(*(bool *)((char *)&cli.cfg + flags[i].offset));
		assert_int_equal(cli.cfg.set, CF_KEY_BIT(flags[i].key));
		cf_cli_free(&cli);

		snprintf(valued, sizeof(valued), "%s=1", flags[i].opt);
		EXPECT_ERROR(flags[i].opt, "takes no value", valued);
	}
}

static void test_capture_point_values(void **state)
{
	static const struct {
		const char *v;
		enum cf_capture_point cp;
	} ok[] = {
	    {"child", CF_CAPTURE_CHILD},
	    {"egress", CF_CAPTURE_EGRESS},
	    {"wire-egress", CF_CAPTURE_WIRE_EGRESS},
	    {"both", CF_CAPTURE_BOTH},
	};
	struct cf_cli cli;

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(ok); i++) {
		PARSE_OK(&cli, "-C", ok[i].v);
		assert_int_equal(cli.cfg.capture_point, ok[i].cp);
		assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_CAPTURE_POINT));
		cf_cli_free(&cli);
	}
	EXPECT_ERROR("--capture-point: invalid value 'wire'", "child, egress, wire-egress, both",
		     "--capture-point", "wire");
	EXPECT_ERROR("--capture-point: invalid value 'Child'", NULL, "-C", "Child");
	EXPECT_ERROR("--capture-point: invalid value ''", NULL, "--capture-point=");
}

static void test_format_options(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--summary-format", "json", "--doctor-format", "json", "--report-format",
		 "markdown");
	assert_int_equal(cli.cfg.summary_format, CF_FORMAT_JSON);
	assert_int_equal(cli.cfg.doctor_format, CF_FORMAT_JSON);
	assert_int_equal(cli.cfg.report_format, CF_FORMAT_MARKDOWN);
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_SUMMARY_FORMAT) |
					  CF_KEY_BIT(CF_KEY_DOCTOR_FORMAT) |
					  CF_KEY_BIT(CF_KEY_REPORT_FORMAT));
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--summary-format", "text", "--doctor-format", "text", "--report-format",
		 "json");
	assert_int_equal(cli.cfg.summary_format, CF_FORMAT_TEXT);
	assert_int_equal(cli.cfg.doctor_format, CF_FORMAT_TEXT);
	assert_int_equal(cli.cfg.report_format, CF_FORMAT_JSON);
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--report-format", "text");
	assert_int_equal(cli.cfg.report_format, CF_FORMAT_TEXT);
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_REPORT_FORMAT));
	cf_cli_free(&cli);

	EXPECT_ERROR("--summary-format: invalid value 'markdown'", "text, json", "--summary-format",
		     "markdown");
	EXPECT_ERROR("--doctor-format: invalid value 'yaml'", "text, json", "--doctor-format",
		     "yaml");
	EXPECT_ERROR("--report-format: invalid value 'html'", "text, markdown, json",
		     "--report-format", "html");
}

static void test_default_policy_values(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--default-policy", "deny");
	assert_int_equal(cli.cfg.default_policy, CF_POLICY_DENY);
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_DEFAULT_POLICY));
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--default-policy", "deny", "--default-policy", "allow");
	assert_int_equal(cli.cfg.default_policy, CF_POLICY_ALLOW);
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_DEFAULT_POLICY));
	cf_cli_free(&cli);
	EXPECT_ERROR("--default-policy: invalid value 'block'", "allow, deny", "--default-policy",
		     "block");
}

static void test_dns_accepts_v4_and_v6_and_last_wins(void **state)
{
	struct cf_cli cli;
	char buf[CF_IP_STRLEN];

	(void)state;
	PARSE_OK(&cli, "-d", "9.9.9.9");
	assert_true(cli.cfg.dns_set);
	assert_int_equal(cli.cfg.dns.family, AF_INET);
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_DNS));
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--dns", "9.9.9.9", "--dns", "2620:fe::fe");
	assert_string_equal(cf_ip_format(&cli.cfg.dns, buf, sizeof(buf)), "2620:fe::fe");
	cf_cli_free(&cli);
	EXPECT_ERROR("--dns: invalid IP address '1.2.3'", NULL, "--dns", "1.2.3");
	EXPECT_ERROR("--dns: invalid IP address '[::1]'", NULL, "-d", "[::1]");
	EXPECT_ERROR("--dns: invalid IP address 'dns.google'", NULL, "-d", "dns.google");
	EXPECT_ERROR("--dns: invalid IP address '198.51.100.53:53'", NULL, "-d",
		     "198.51.100.53:53");
}

static void test_cidr_lists_append_in_order(void **state)
{
	struct cf_cli cli;
	char buf[CF_IP_STRLEN + 4];

	(void)state;
	PARSE_OK(&cli, "--allow-cidr", "10.0.0.0/8", "--deny-cidr", "192.0.2.1", "--allow-cidr",
		 "2001:db8::/32");
	assert_int_equal(cli.cfg.allow_cidrs.n, 2);
	assert_string_equal(cf_cidr_format(&cli.cfg.allow_cidrs.v[0], buf, sizeof(buf)),
			    "10.0.0.0/8");
	assert_string_equal(cf_cidr_format(&cli.cfg.allow_cidrs.v[1], buf, sizeof(buf)),
			    "2001:db8::/32");
	assert_int_equal(cli.cfg.deny_cidrs.n, 1);
	assert_string_equal(cf_cidr_format(&cli.cfg.deny_cidrs.v[0], buf, sizeof(buf)),
			    "192.0.2.1/32");
	assert_int_equal(cli.cfg.set,
			 CF_KEY_BIT(CF_KEY_ALLOW_CIDRS) | CF_KEY_BIT(CF_KEY_DENY_CIDRS));
	cf_cli_free(&cli);

	EXPECT_ERROR("--deny-cidr: invalid CIDR '10.0.0.1/33'", NULL, "--deny-cidr", "10.0.0.1/33");
	EXPECT_ERROR("--allow-cidr: invalid CIDR '10.0.0.1/8'", NULL, "--allow-cidr", "10.0.0.0/8",
		     "--allow-cidr", "10.0.0.1/8");
	EXPECT_ERROR("--allow-cidr: invalid CIDR 'x'", NULL, "--allow-cidr", "x");
}

static void test_domain_lists_are_normalised_per_option(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--allow-domain", "Example.COM.", "--allow-domain", "b.example",
		 "--allow-domain-exact", "API.example.com", "--deny-domain", "Ads.Example.",
		 "--deny-domain-exact", "x.EXAMPLE");
	assert_int_equal(cli.cfg.allow_domains.n, 2);
	assert_string_equal(cli.cfg.allow_domains.v[0], "example.com");
	assert_string_equal(cli.cfg.allow_domains.v[1], "b.example");
	assert_int_equal(cli.cfg.allow_domains_exact.n, 1);
	assert_string_equal(cli.cfg.allow_domains_exact.v[0], "api.example.com");
	assert_int_equal(cli.cfg.deny_domains.n, 1);
	assert_string_equal(cli.cfg.deny_domains.v[0], "ads.example");
	assert_int_equal(cli.cfg.deny_domains_exact.n, 1);
	assert_string_equal(cli.cfg.deny_domains_exact.v[0], "x.example");
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_ALLOW_DOMAINS) |
					  CF_KEY_BIT(CF_KEY_ALLOW_DOMAINS_EXACT) |
					  CF_KEY_BIT(CF_KEY_DENY_DOMAINS) |
					  CF_KEY_BIT(CF_KEY_DENY_DOMAINS_EXACT));
	cf_cli_free(&cli);

	EXPECT_ERROR("--allow-domain: invalid domain 'a..b'", NULL, "--allow-domain", "a..b");
	EXPECT_ERROR("--allow-domain-exact: invalid domain ''", NULL, "--allow-domain-exact", "");
	EXPECT_ERROR("--deny-domain: invalid domain 'bad domain'", NULL, "--deny-domain",
		     "bad domain");
	EXPECT_ERROR("--deny-domain-exact: invalid domain '..'", NULL, "--deny-domain-exact", "..");
}

static void test_proxy_uri_and_credentials(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "-p", "socks5://[2001:db8::1]:1080", "-U", "alice", "-P", "pw:with@odd");
	assert_int_equal(cli.cfg.proxy.scheme, CF_PROXY_SOCKS5);
	assert_string_equal(cli.cfg.proxy.host, "2001:db8::1");
	assert_int_equal(cli.cfg.proxy.port, 1080);
	assert_string_equal(cli.cfg.proxy_user, "alice");
	assert_string_equal(cli.cfg.proxy_password, "pw:with@odd");
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_PROXY) | CF_KEY_BIT(CF_KEY_PROXY_USER) |
					  CF_KEY_BIT(CF_KEY_PROXY_PASSWORD));
	cf_cli_free(&cli);

	/* a second value replaces the first (ASan checks nothing leaks) */
	PARSE_OK(&cli, "--proxy", "http://a:b@h1:1", "--proxy", "https://h2", "--proxy-password",
		 "one", "--proxy-password", "", "-U", "x", "-U", "y");
	assert_int_equal(cli.cfg.proxy.scheme, CF_PROXY_HTTPS);
	assert_string_equal(cli.cfg.proxy.host, "h2");
	assert_int_equal(cli.cfg.proxy.port, 443);
	assert_null(cli.cfg.proxy.user);
	assert_string_equal(cli.cfg.proxy_password, "");
	assert_string_equal(cli.cfg.proxy_user, "y");
	cf_cli_free(&cli);

	EXPECT_ERROR("--proxy: invalid proxy URI 'ftp://h:21'", "unsupported scheme", "--proxy",
		     "ftp://h:21");
	EXPECT_ERROR("--proxy: invalid proxy URI 'http://h:0'", "out of range", "-p", "http://h:0");
	EXPECT_ERROR("--proxy-user: empty user name", NULL, "-U", "");
	EXPECT_ERROR("--proxy-user: control characters", "'a\tb'", "-U", "a\tb");
	EXPECT_ERROR("--proxy-password: the password contains control characters", NULL, "-P",
		     "a\x01secret");
}

static void test_no_message_ever_contains_the_password(void **state)
{
	static const char *const cases[][3] = {
	    {"--proxy", "http://u:TopSecret9@h:abc", NULL},
	    {"--proxy", "u:TopSecret9@h:80", NULL},
	    {"--proxy", "socks4://u:TopSecret9@h", NULL},
	    {"--proxy-password", "TopSecret9\n", NULL},
	    {"-P", "TopSecret9\x7f", NULL},
	    {"--proxy-pasword=TopSecret9", NULL, NULL},
	    {"--proxy-pass=TopSecret9", NULL, NULL},
	};
	struct cf_cli cli;
	char err[512];

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
		const char *const *a = cases[i];

		assert_int_equal(parse_argv(&cli, err, sizeof(err), a), -EINVAL);
		if (strstr(err, "TopSecret9"))
			fail_msg("password in message: %s", err);
		cf_cli_free(&cli);
	}
}

/*
 * Parse a writable copy of "childflow ARGS..." (NULL-terminated), scrub it,
 * and check the copy against @want (the arguments as they must read
 * afterwards) and that the configuration still holds @password.
 */
static void expect_scrubbed(const char *const *args, const char *const *want, const char *password)
{
	char buf[64][128], *argv[64], err[256] = "";
	struct cf_cli cli;
	int argc = 0;

	snprintf(buf[argc], sizeof(buf[argc]), "childflow");
	argv[argc] = buf[argc];
	argc++;
	for (; *args; args++, argc++) {
		assert_true(argc < 63 && strlen(*args) < sizeof(buf[0]));
		snprintf(buf[argc], sizeof(buf[argc]), "%s", *args);
		argv[argc] = buf[argc];
	}
	argv[argc] = NULL;
	if (cf_cli_parse(argc, argv, &cli, err, sizeof(err)) != 0)
		fail_msg("rejected: %s", err);
	cf_cli_scrub_argv(&cli);
	for (int i = 1; i < argc; i++, want++) {
		assert_non_null(*want);
		if (strcmp(argv[i], *want) != 0)
			fail_msg("argv[%d] is '%s', want '%s'", i, argv[i], *want);
	}
	assert_null(*want);
	/* the copies in the configuration were taken before: they still work */
	if (cli.cfg.proxy_password)
		assert_string_equal(cli.cfg.proxy_password, password);
	else
		assert_string_equal(cli.cfg.proxy.password, password);
	cf_cli_free(&cli);
}

static void test_scrub_replaces_every_form_of_the_password(void **state)
{
	(void)state;
	expect_scrubbed(ARGS("-P", "s3cret", "--", "cmd"), ARGS("-P", "******", "--", "cmd"),
			"s3cret");
	expect_scrubbed(ARGS("-Ps3cret", "cmd"), ARGS("-P******", "cmd"), "s3cret");
	expect_scrubbed(ARGS("--proxy-password", "s3cret", "cmd"),
			ARGS("--proxy-password", "******", "cmd"), "s3cret");
	expect_scrubbed(ARGS("--proxy-password=s3cret", "cmd"),
			ARGS("--proxy-password=******", "cmd"), "s3cret");
	expect_scrubbed(ARGS("-p", "socks5://u:pw%40x@h:1080", "cmd"),
			ARGS("-p", "socks5://u:******@h:1080", "cmd"), "pw@x");
	expect_scrubbed(ARGS("-psocks5://u:pw@h", "cmd"), ARGS("-psocks5://u:**@h", "cmd"), "pw");
	expect_scrubbed(ARGS("--proxy", "http://u:p@ss@[2001:db8::1]:3128", "cmd"),
			ARGS("--proxy", "http://u:****@[2001:db8::1]:3128", "cmd"), "p@ss");
	expect_scrubbed(ARGS("--proxy=http://u:pw@h", "cmd"), ARGS("--proxy=http://u:**@h", "cmd"),
			"pw");
	/* the user name, a URI without a password and the command stay as they are */
	expect_scrubbed(ARGS("-p", "http://u@h", "-U", "u", "-P", "x", "--", "curl", "-P", "x"),
			ARGS("-p", "http://u@h", "-U", "u", "-P", "*", "--", "curl", "-P", "x"),
			"x");
}

static void test_scrub_covers_repeated_options(void **state)
{
	(void)state;
	/* the last one wins, but every one was on the command line */
	expect_scrubbed(ARGS("-P", "one", "-Ptwo", "--proxy-password=three", "cmd"),
			ARGS("-P", "***", "-P***", "--proxy-password=*****", "cmd"), "three");
	expect_scrubbed(ARGS("-p", "socks5://a:first@h", "--proxy=socks5://a:second@h", "cmd"),
			ARGS("-p", "socks5://a:*****@h", "--proxy=socks5://a:******@h", "cmd"),
			"second");
}

static void test_mask_and_unmask_take_absolute_paths(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--mask", "/run/a.sock", "--mask=/srv/dir/", "--unmask", "/run/docker.sock",
		 "--", "true");
	assert_int_equal(cli.cfg.mask.n, 2);
	assert_string_equal(cli.cfg.mask.v[0], "/run/a.sock");
	assert_string_equal(cli.cfg.mask.v[1], "/srv/dir");
	assert_int_equal(cli.cfg.unmask.n, 1);
	assert_string_equal(cli.cfg.unmask.v[0], "/run/docker.sock");
	assert_true(cli.cfg.set & CF_KEY_BIT(CF_KEY_MASK));
	assert_true(cli.cfg.set & CF_KEY_BIT(CF_KEY_UNMASK));
	cf_cli_free(&cli);
	expect_error("--mask: 'a.sock' is not an absolute path", "", ARGS("--mask", "a.sock"));
	expect_error("--unmask: '//' is not an absolute path", "", ARGS("--unmask", "//"));
	expect_error("--mask: '' is not an absolute path", "", ARGS("--mask="));
}

static void test_iface_names(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "-i", "eth0");
	assert_string_equal(cli.cfg.iface, "eth0");
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_IFACE));
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--iface", "enp0s31f6.100");
	assert_string_equal(cli.cfg.iface, "enp0s31f6.100");
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--iface", "abcdefghijklmno"); /* 15 characters */
	assert_string_equal(cli.cfg.iface, "abcdefghijklmno");
	cf_cli_free(&cli);

	EXPECT_ERROR("--iface: invalid interface name 'abcdefghijklmnop'", NULL, "--iface",
		     "abcdefghijklmnop");
	EXPECT_ERROR("--iface: invalid interface name ''", NULL, "--iface", "");
	EXPECT_ERROR("--iface: invalid interface name 'a/b'", NULL, "-i", "a/b");
	EXPECT_ERROR("--iface: invalid interface name 'a b'", NULL, "-i", "a b");
	EXPECT_ERROR("--iface: invalid interface name 'eth0:1'", NULL, "-i", "eth0:1");
	EXPECT_ERROR("--iface: invalid interface name '..'", NULL, "-i", "..");
}

static void test_allow_host_port_is_normalised_and_appended(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--allow-host-port", "5432", "--allow-host-port", "53/udp",
		 "--allow-host-port", "8080/tcp");
	assert_int_equal(cli.cfg.allow_host_ports.n, 3);
	assert_string_equal(cli.cfg.allow_host_ports.v[0], "5432/tcp");
	assert_string_equal(cli.cfg.allow_host_ports.v[1], "53/udp");
	assert_string_equal(cli.cfg.allow_host_ports.v[2], "8080/tcp");
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_ALLOW_HOST_PORTS));
	cf_cli_free(&cli);
	EXPECT_ERROR("--allow-host-port: invalid port '0' (expected PORT, PORT/tcp or PORT/udp, "
		     "PORT 1-65535)",
		     NULL, "--allow-host-port", "0");
	EXPECT_ERROR("--allow-host-port: invalid port '53/sctp'", NULL, "--allow-host-port",
		     "53/sctp");
}

static void test_input_files_must_be_readable_regular_files(void **state)
{
	struct cf_cli cli;
	char path[200];

	(void)state;
	PARSE_OK(&cli, "--hosts-file", hosts_path, "--profile", profile_path);
	assert_string_equal(cli.cfg.hosts_file, hosts_path);
	assert_string_equal(cli.profile, profile_path);
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_HOSTS_FILE));
	cf_cli_free(&cli);

	EXPECT_ERROR("--hosts-file: cannot read '/nonexistent/x': No such file or directory", NULL,
		     "--hosts-file", "/nonexistent/x");
	EXPECT_ERROR("--hosts-file: '", "' is not a regular file", "--hosts-file", subdir_path);
	EXPECT_ERROR("--hosts-file: empty file name", NULL, "--hosts-file", "");
	EXPECT_ERROR("--profile: cannot read '/nonexistent/p.toml': No such file or directory",
		     NULL, "--profile", "/nonexistent/p.toml");
	EXPECT_ERROR("--profile: '", "' is not a regular file", "--profile", subdir_path);
	EXPECT_ERROR("--report: cannot read '/nonexistent/f.jsonl': No such file or directory",
		     NULL, "--report", "/nonexistent/f.jsonl");
	EXPECT_ERROR("--report: '", "' is not a regular file", "--report", subdir_path);
	snprintf(path, sizeof(path), "%s/x", regular_file);
	EXPECT_ERROR("--hosts-file: cannot read", "Not a directory", "--hosts-file", path);
}

static void test_user_names_and_uids(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--user", "nobody");
	assert_string_equal(cli.cfg.user, "nobody");
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_USER));
	cf_cli_free(&cli);
	PARSE_OK(&cli, "--user=1000");
	assert_string_equal(cli.cfg.user, "1000");
	cf_cli_free(&cli);

	EXPECT_ERROR("--user: empty user name (give a name or a UID)", NULL, "--user", "");
	EXPECT_ERROR("--user: control characters in the user name", NULL, "--user", "a\nb");
}

static void test_output_files_need_an_existing_directory(void **state)
{
	struct cf_cli cli;
	char path[200];

	(void)state;
	PARSE_OK(&cli, "-c", cap_path, "--flow-log", flowlog_path);
	assert_string_equal(cli.cfg.capture, cap_path);
	assert_string_equal(cli.cfg.flow_log, flowlog_path); /* existing file: overwritten */
	assert_int_equal(cli.cfg.set, CF_KEY_BIT(CF_KEY_CAPTURE) | CF_KEY_BIT(CF_KEY_FLOW_LOG));
	cf_cli_free(&cli);

	EXPECT_ERROR("--capture: cannot create '/nonexistent/out.pcapng': directory "
		     "'/nonexistent': No such file or directory",
		     NULL, "--capture", "/nonexistent/out.pcapng");
	EXPECT_ERROR("--flow-log: cannot create '/nonexistent/f.jsonl'", "No such file",
		     "--flow-log", "/nonexistent/f.jsonl");
	EXPECT_ERROR("--capture: '", "' is a directory", "-c", subdir_path);
	EXPECT_ERROR("--flow-log: empty file name", NULL, "--flow-log", "");
	snprintf(path, sizeof(path), "%s/x.pcapng", regular_file);
	EXPECT_ERROR("--capture: cannot create '", "/file' is not a directory", "-c", path);
}

static void test_relative_output_paths_become_absolute(void **state)
{
	cleanup_free char *old = getcwd(NULL, 0);
	struct cf_cli cli;
	char want[200];

	(void)state;
	assert_non_null(old);
	assert_int_equal(chdir(tmpdir), 0);
	PARSE_OK(&cli, "-c", "rel.pcapng", "--flow-log", "./sub/f.jsonl", "--hosts-file",
		 ".//hosts");
	assert_int_equal(chdir(old), 0);
	snprintf(want, sizeof(want), "%s/rel.pcapng", tmpdir);
	assert_string_equal(cli.cfg.capture, want);
	snprintf(want, sizeof(want), "%s/sub/f.jsonl", tmpdir);
	assert_string_equal(cli.cfg.flow_log, want);
	assert_string_equal(cli.cfg.hosts_file, hosts_path);
	cf_cli_free(&cli);

	assert_int_equal(chdir("/"), 0);
	PARSE_OK(&cli, "-c", "tmp/x.pcapng");
	assert_int_equal(chdir(old), 0);
	assert_string_equal(cli.cfg.capture, "/tmp/x.pcapng");
	cf_cli_free(&cli);
}

static void test_missing_values_are_reported_by_long_name(void **state)
{
	(void)state;
	EXPECT_ERROR("--dns: missing value (IP)", NULL, "--dns");
	EXPECT_ERROR("--dns: missing value (IP)", NULL, "-d");
	EXPECT_ERROR("--proxy-password: missing value", NULL, "--summary", "-P");
	EXPECT_ERROR("--capture: missing value (OUT)", NULL, "-c");
	EXPECT_ERROR("--report: missing value (FLOWLOG)", NULL, "--report");
}

static void test_unknown_and_abbreviated_options_are_rejected(void **state)
{
	(void)state;
	EXPECT_ERROR("unknown option '--bogus'", NULL, "--bogus");
	EXPECT_ERROR("unknown option '--bogus'", NULL, "--bogus=1");
	EXPECT_ERROR("unknown option '-x'", NULL, "-x");
	EXPECT_ERROR("unknown option '-q'", NULL, "-q");
	EXPECT_ERROR("unknown option '-q'", NULL, "--summary", "-q", "-V");
	EXPECT_ERROR("unknown option '--summ'", NULL, "--summ");
	EXPECT_ERROR("unknown option '--dump'", "did you mean '--dump-profile'?", "--dump");
	EXPECT_ERROR("unknown option '--allow-domain-ex'", "did you mean '--allow-domain-exact'?",
		     "--allow-domain-ex=a.b");
	EXPECT_ERROR("unknown option '--Summary'", NULL, "--Summary");
}

static void test_parse_is_reentrant_after_errors_and_early_returns(void **state)
{
	struct cf_cli cli;
	char err[256];

	(void)state;
	/* stop inside a short-option cluster, then fail mid-way, then parse again */
	PARSE_OK(&cli, "-hV");
	assert_int_equal(cli.mode, CF_MODE_HELP);
	cf_cli_free(&cli);
	assert_int_equal(parse_argv(&cli, err, sizeof(err), ARGS("--summary", "-d", "x", "-V")),
			 -EINVAL);
	cf_cli_free(&cli);
	for (int i = 0; i < 3; i++) {
		PARSE_OK(&cli, "--offline", "-d", "198.51.100.53", "true");
		assert_true(cli.cfg.offline);
		assert_int_equal(cli.cfg.command.n, 1);
		assert_string_equal(cli.cfg.command.v[0], "true");
		cf_cli_free(&cli);
	}
}

static void test_error_buffer_may_be_small_or_absent(void **state)
{
	struct cf_cli cli;
	char small[10];

	(void)state;
	assert_int_equal(parse_argv(&cli, NULL, 0, ARGS("--dns", "bad")), -EINVAL);
	cf_cli_free(&cli);
	assert_int_equal(parse_argv(&cli, small, sizeof(small), ARGS("--dns", "bad")), -EINVAL);
	assert_string_equal(small, "--dns: in");
	cf_cli_free(&cli);
}

static void test_free_is_safe_twice(void **state)
{
	struct cf_cli cli;

	(void)state;
	PARSE_OK(&cli, "--profile", profile_path, "-p", "http://h:1", "curl");
	cf_cli_free(&cli);
	assert_null(cli.profile);
	assert_int_equal(cli.cfg.set, 0);
	cf_cli_free(&cli);
}

/* The fixed contract of REFERENCE.md: long name, short flag, takes a value. */
static const struct {
	const char *name;
	char short_name;
	bool arg;
} reference[] = {
    {"profile", 0, true},
    {"dump-profile", 0, false},
    {"capture", 'c', true},
    {"capture-point", 'C', true},
    {"root", 0, false},
    {"doctor", 0, false},
    {"doctor-format", 0, true},
    {"report", 0, true},
    {"report-format", 0, true},
    {"dns", 'd', true},
    {"hosts-file", 0, true},
    {"proxy", 'p', true},
    {"proxy-user", 'U', true},
    {"proxy-password", 'P', true},
    {"proxy-insecure", 0, false},
    {"summary", 0, false},
    {"summary-format", 0, true},
    {"flow-log", 0, true},
    {"offline", 0, false},
    {"block-private", 0, false},
    {"block-metadata", 0, false},
    {"default-policy", 0, true},
    {"allow-cidr", 0, true},
    {"deny-cidr", 0, true},
    {"allow-domain", 0, true},
    {"allow-domain-exact", 0, true},
    {"deny-domain", 0, true},
    {"deny-domain-exact", 0, true},
    {"proxy-only", 0, false},
    {"fail-on-leak", 0, false},
    {"iface", 'i', true},
    {"help", 'h', false},
    {"version", 'V', false},
    {"mask", 0, true},
    {"unmask", 0, true},
    /* beyond the reference: the proxy issue asks for a way to always send IPs */
    {"proxy-send-ip", 0, false},
    /* and for remote DNS through the proxy */
    {"proxy-remote-dns", 0, false},
    /* the second release's table (REFERENCE.md) */
    {"allow-host-port", 0, true},
    {"user", 0, true},
    {"cleanup", 0, false},
    {"quiet", 0, false},
    /* issue 21 */
    {"rate-limit", 0, true},
    /* the third release's (REFERENCE.md) */
    {"publish", 0, true},
    {"tcp-path", 0, true},
};

static void test_option_table_is_exactly_the_reference_list(void **state)
{
	size_t n;
	const struct cf_cli_option *opts = cf_cli_options(&n);

	(void)state;
	assert_int_equal(n, CF_ARRAY_SIZE(reference));
	for (size_t i = 0; i < CF_ARRAY_SIZE(reference); i++) {
		size_t j;

		for (j = 0; j < n; j++)
			if (strcmp(opts[j].name, reference[i].name) == 0)
				break;
		if (j == n)
			fail_msg("--%s missing from the option table", reference[i].name);
		assert_int_equal(opts[j].short_name, reference[i].short_name);
		assert_int_equal(opts[j].arg != NULL, reference[i].arg);
		assert_non_null(opts[j].help);
	}
}

static void test_every_short_flag_maps_to_its_long_option(void **state)
{
	struct cf_cli cli;
	char err[256];

	(void)state;
	/* a missing value names the long option, which proves the mapping */
	for (size_t i = 0; i < CF_ARRAY_SIZE(reference); i++) {
		char flag[3] = {'-', reference[i].short_name, 0}, want[64];

		if (!reference[i].short_name || !reference[i].arg)
			continue;
		snprintf(want, sizeof(want), "--%s: missing value", reference[i].name);
		assert_int_equal(parse_argv(&cli, err, sizeof(err), ARGS(flag)), -EINVAL);
		if (!strstr(err, want))
			fail_msg("%s: %s", flag, err);
		cf_cli_free(&cli);
	}
}

static char *usage_text(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	cf_cli_usage(f);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void test_help_documents_every_option(void **state)
{
	cleanup_free char *text = usage_text();
	size_t n;
	const struct cf_cli_option *opts = cf_cli_options(&n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		char want[64];

		if (opts[i].short_name)
			snprintf(want, sizeof(want), "-%c, --%s%s", opts[i].short_name,
				 opts[i].name, opts[i].arg ? " " : "");
		else
			snprintf(want, sizeof(want), "    --%s%s", opts[i].name,
				 opts[i].arg ? " " : "");
		if (!strstr(text, want))
			fail_msg("--help lacks '%s'", want);
		if (opts[i].arg) {
			snprintf(want, sizeof(want), "--%s %s", opts[i].name, opts[i].arg);
			assert_non_null(strstr(text, want));
		}
	}
	for (size_t i = 0; i < CF_ARRAY_SIZE(reference); i++) {
		char want[64];

		snprintf(want, sizeof(want), "--%s", reference[i].name);
		assert_non_null(strstr(text, want));
	}
}

static void test_help_has_sections_defaults_and_exit_codes(void **state)
{
	static const char *const want[] = {
	    "Usage: childflow [OPTIONS] [--] COMMAND",
	    "\nRun:\n",
	    "\nProfile:\n",
	    "\nDNS and hosts:\n",
	    "\nProxy:\n",
	    "\nPolicy:\n",
	    "\nObservability:\n",
	    "\nCapture:\n",
	    "\nRootful backend:\n",
	    "\nOther:\n",
	    "[default: child]",
	    "[default: allow]",
	    "[default: text]",
	    "Exit status:",
	    "128+N",
	    "  122 ",
	    "  123 ",
	    "  124 ",
	    "childflow --doctor",
	    "  125 ",
	    "  126 ",
	    "  127 ",
	};
	cleanup_free char *text = usage_text();
	const char *line;

	(void)state;
	for (size_t i = 0; i < CF_ARRAY_SIZE(want); i++)
		if (!strstr(text, want[i]))
			fail_msg("--help lacks '%s'", want[i]);
	for (line = text; *line;) {
		size_t len = strcspn(line, "\n");

		if (len > 80)
			fail_msg("--help line over 80 columns: %.*s", (int)len, line);
		line += len + (line[len] ? 1 : 0);
	}
}

static void test_exit_codes_have_documented_values(void **state)
{
	(void)state;
	assert_int_equal(CF_EXIT_LEAK, 122);
	assert_int_equal(CF_EXIT_RUNTIME, 123);
	assert_int_equal(CF_EXIT_SETUP, 124);
	assert_int_equal(CF_EXIT_USAGE, 125);
	assert_int_equal(CF_EXIT_NOEXEC, 126);
	assert_int_equal(CF_EXIT_NOTFOUND, 127);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_arguments_is_run_mode_with_nothing_set),
	    cmocka_unit_test(test_command_after_first_non_option_is_not_parsed),
	    cmocka_unit_test(test_double_dash_ends_options),
	    cmocka_unit_test(test_short_options_take_attached_or_separate_values),
	    cmocka_unit_test(test_modes_are_selected_by_their_options),
	    cmocka_unit_test(test_help_and_version_win_over_later_arguments),
	    cmocka_unit_test(test_conflicting_modes_are_rejected),
	    cmocka_unit_test(test_doctor_and_report_take_no_command),
	    cmocka_unit_test(test_root_selects_rootful_backend),
	    cmocka_unit_test(test_flags_set_their_value_and_key_only),
	    cmocka_unit_test(test_capture_point_values),
	    cmocka_unit_test(test_format_options),
	    cmocka_unit_test(test_default_policy_values),
	    cmocka_unit_test(test_dns_accepts_v4_and_v6_and_last_wins),
	    cmocka_unit_test(test_cidr_lists_append_in_order),
	    cmocka_unit_test(test_domain_lists_are_normalised_per_option),
	    cmocka_unit_test(test_proxy_uri_and_credentials),
	    cmocka_unit_test(test_no_message_ever_contains_the_password),
	    cmocka_unit_test(test_scrub_replaces_every_form_of_the_password),
	    cmocka_unit_test(test_scrub_covers_repeated_options),
	    cmocka_unit_test(test_mask_and_unmask_take_absolute_paths),
	    cmocka_unit_test(test_iface_names),
	    cmocka_unit_test(test_allow_host_port_is_normalised_and_appended),
	    cmocka_unit_test(test_user_names_and_uids),
	    cmocka_unit_test(test_input_files_must_be_readable_regular_files),
	    cmocka_unit_test(test_output_files_need_an_existing_directory),
	    cmocka_unit_test(test_relative_output_paths_become_absolute),
	    cmocka_unit_test(test_missing_values_are_reported_by_long_name),
	    cmocka_unit_test(test_unknown_and_abbreviated_options_are_rejected),
	    cmocka_unit_test(test_parse_is_reentrant_after_errors_and_early_returns),
	    cmocka_unit_test(test_error_buffer_may_be_small_or_absent),
	    cmocka_unit_test(test_free_is_safe_twice),
	    cmocka_unit_test(test_option_table_is_exactly_the_reference_list),
	    cmocka_unit_test(test_every_short_flag_maps_to_its_long_option),
	    cmocka_unit_test(test_help_documents_every_option),
	    cmocka_unit_test(test_help_has_sections_defaults_and_exit_codes),
	    cmocka_unit_test(test_exit_codes_have_documented_values),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
