// SPDX-License-Identifier: MIT
/* Unit tests for src/config/config.c: defaults, overlay, vectors, key names, domains. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "util/cleanup.h"

static struct cf_cidr cidr_of(const char *s)
{
	struct cf_cidr c;

	assert_int_equal(cf_cidr_parse(s, &c), 0);
	return c;
}

static void test_init_gives_documented_defaults(void **state)
{
	struct cf_config c;

	(void)state;
	memset(&c, 0xff, sizeof(c));
	cf_config_init(&c);
	assert_int_equal(c.set, 0);
	assert_int_equal(c.backend, CF_BACKEND_ROOTLESS);
	assert_int_equal(c.capture_point, CF_CAPTURE_CHILD);
	assert_int_equal(c.summary_format, CF_FORMAT_TEXT);
	assert_int_equal(c.doctor_format, CF_FORMAT_TEXT);
	assert_int_equal(c.report_format, CF_FORMAT_TEXT);
	assert_int_equal(c.default_policy, CF_POLICY_ALLOW);
	assert_int_equal(c.proxy.scheme, CF_PROXY_NONE);
	assert_null(c.proxy.host);
	assert_null(c.extends);
	assert_null(c.capture);
	assert_null(c.hosts_file);
	assert_null(c.flow_log);
	assert_null(c.iface);
	assert_null(c.proxy_user);
	assert_null(c.proxy_password);
	assert_false(c.dns_set);
	assert_false(c.summary || c.offline || c.block_private || c.block_metadata ||
		     c.proxy_only || c.fail_on_leak || c.proxy_insecure);
	assert_int_equal(c.command.n + c.allow_cidrs.n + c.deny_cidrs.n + c.allow_domains.n +
			     c.allow_domains_exact.n + c.deny_domains.n + c.deny_domains_exact.n,
			 0);
	cf_config_free(&c);
}

static void test_key_names_are_the_profile_keys(void **state)
{
	static const char *const expected[CF_KEY__COUNT] = {
	    "extends",
	    "backend",
	    "command",
	    "capture",
	    "capture_point",
	    "dns",
	    "hosts_file",
	    "proxy",
	    "proxy_user",
	    "proxy_password",
	    "proxy_insecure",
	    "proxy_send_ip",
	    "proxy_remote_dns",
	    "summary",
	    "summary_format",
	    "doctor_format",
	    "report_format",
	    "flow_log",
	    "offline",
	    "block_private",
	    "block_metadata",
	    "default_policy",
	    "allow_cidrs",
	    "deny_cidrs",
	    "allow_domains",
	    "allow_domains_exact",
	    "deny_domains",
	    "deny_domains_exact",
	    "proxy_only",
	    "fail_on_leak",
	    "iface",
	    "allow_host_ports",
	    "mask",
	    "unmask",
	    "user",
	    "quiet",
	    "rate_limit",
	    "tcp_path",
	    "publish",
	};

	(void)state;
	for (int k = 0; k < CF_KEY__COUNT; k++)
		assert_string_equal(cf_key_name((enum cf_key)k), expected[k]);
	assert_string_equal(cf_key_name(CF_KEY__COUNT), "?");
	assert_string_equal(cf_key_name((enum cf_key) - 1), "?");
	assert_true(CF_KEY__COUNT <= 64);
}

static void test_strv_push_copies_and_keeps_null_terminator(void **state)
{
	struct cf_strv sv = {0};
	char word[] = "curl";

	(void)state;
	assert_int_equal(cf_strv_push(&sv, word), 0);
	word[0] = 'X'; /* the vector owns a copy */
	assert_int_equal(cf_strv_push(&sv, "-v"), 0);
	assert_int_equal(cf_strv_push(&sv, ""), 0);
	assert_int_equal(sv.n, 3);
	assert_string_equal(sv.v[0], "curl");
	assert_string_equal(sv.v[1], "-v");
	assert_string_equal(sv.v[2], "");
	assert_null(sv.v[3]);
	cf_strv_free(&sv);
	assert_null(sv.v);
	assert_int_equal(sv.n, 0);
	cf_strv_free(&sv); /* idempotent */
}

static void test_cidrv_push_appends_in_order(void **state)
{
	struct cf_config c;
	struct cf_cidr a = cidr_of("10.0.0.0/8"), b = cidr_of("2001:db8::/32");

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_cidrv_push(&c.allow_cidrs, &a), 0);
	assert_int_equal(cf_cidrv_push(&c.allow_cidrs, &b), 0);
	assert_int_equal(c.allow_cidrs.n, 2);
	assert_int_equal(c.allow_cidrs.v[0].prefix, 8);
	assert_int_equal(c.allow_cidrs.v[1].prefix, 32);
	assert_int_equal(c.allow_cidrs.v[1].ip.family, AF_INET6);
	cf_config_free(&c);
}

/* A config with every key set to a non-default value. */
static void fill_everything(struct cf_config *c)
{
	struct cf_cidr a = cidr_of("198.51.100.0/24"), d = cidr_of("203.0.113.0/24");

	cf_config_init(c);
	c->extends = strdup("base.toml");
	c->backend = CF_BACKEND_ROOTFUL;
	assert_int_equal(cf_strv_push(&c->command, "curl"), 0);
	assert_int_equal(cf_strv_push(&c->command, "https://example.com"), 0);
	c->capture = strdup("/tmp/out.pcapng");
	c->capture_point = CF_CAPTURE_BOTH;
	c->dns_set = true;
	assert_int_equal(cf_ip_parse("2001:db8::53", &c->dns), 0);
	c->hosts_file = strdup("/etc/hosts.test");
	c->proxy = (struct cf_proxy){.scheme = CF_PROXY_SOCKS5,
				     .host = strdup("proxy.example"),
				     .port = 1080,
				     .user = strdup("alice"),
				     .password = strdup("s3cret")};
	c->proxy_user = strdup("bob");
	c->proxy_password = strdup("hunter2");
	c->proxy_insecure = true;
	c->summary = true;
	c->summary_format = CF_FORMAT_JSON;
	c->doctor_format = CF_FORMAT_JSON;
	c->report_format = CF_FORMAT_MARKDOWN;
	c->flow_log = strdup("/tmp/flows.jsonl");
	c->offline = c->block_private = c->block_metadata = true;
	c->default_policy = CF_POLICY_DENY;
	assert_int_equal(cf_cidrv_push(&c->allow_cidrs, &a), 0);
	assert_int_equal(cf_cidrv_push(&c->deny_cidrs, &d), 0);
	assert_int_equal(cf_strv_push(&c->allow_domains, "example.com"), 0);
	assert_int_equal(cf_strv_push(&c->allow_domains_exact, "api.example.com"), 0);
	assert_int_equal(cf_strv_push(&c->deny_domains, "ads.example"), 0);
	assert_int_equal(cf_strv_push(&c->deny_domains_exact, "x.example"), 0);
	c->proxy_only = c->fail_on_leak = true;
	c->iface = strdup("eth1");
	assert_int_equal(cf_strv_push(&c->mask, "/run/x.sock"), 0);
	assert_int_equal(cf_strv_push(&c->unmask, "/run/docker.sock"), 0);
	c->set = CF_KEY_BIT(CF_KEY__COUNT) - 1;
}

static void assert_everything(const struct cf_config *c)
{
	char buf[CF_IP_STRLEN];

	assert_string_equal(c->extends, "base.toml");
	assert_int_equal(c->backend, CF_BACKEND_ROOTFUL);
	assert_int_equal(c->command.n, 2);
	assert_string_equal(c->command.v[1], "https://example.com");
	assert_null(c->command.v[2]);
	assert_string_equal(c->capture, "/tmp/out.pcapng");
	assert_int_equal(c->capture_point, CF_CAPTURE_BOTH);
	assert_true(c->dns_set);
	assert_string_equal(cf_ip_format(&c->dns, buf, sizeof(buf)), "2001:db8::53");
	assert_string_equal(c->hosts_file, "/etc/hosts.test");
	assert_int_equal(c->proxy.scheme, CF_PROXY_SOCKS5);
	assert_string_equal(c->proxy.host, "proxy.example");
	assert_int_equal(c->proxy.port, 1080);
	assert_string_equal(c->proxy.user, "alice");
	assert_string_equal(c->proxy.password, "s3cret");
	assert_string_equal(c->proxy_user, "bob");
	assert_string_equal(c->proxy_password, "hunter2");
	assert_true(c->proxy_insecure && c->summary && c->offline && c->block_private &&
		    c->block_metadata && c->proxy_only && c->fail_on_leak);
	assert_int_equal(c->summary_format, CF_FORMAT_JSON);
	assert_int_equal(c->doctor_format, CF_FORMAT_JSON);
	assert_int_equal(c->report_format, CF_FORMAT_MARKDOWN);
	assert_string_equal(c->flow_log, "/tmp/flows.jsonl");
	assert_int_equal(c->default_policy, CF_POLICY_DENY);
	assert_int_equal(c->allow_cidrs.n, 1);
	assert_int_equal(c->allow_cidrs.v[0].prefix, 24);
	assert_int_equal(c->deny_cidrs.n, 1);
	assert_int_equal(c->deny_cidrs.v[0].ip.b[0], 203);
	assert_string_equal(c->allow_domains.v[0], "example.com");
	assert_string_equal(c->allow_domains_exact.v[0], "api.example.com");
	assert_string_equal(c->deny_domains.v[0], "ads.example");
	assert_string_equal(c->deny_domains_exact.v[0], "x.example");
	assert_string_equal(c->iface, "eth1");
	assert_string_equal(c->mask.v[0], "/run/x.sock");
	assert_string_equal(c->unmask.v[0], "/run/docker.sock");
	assert_int_equal(c->set, CF_KEY_BIT(CF_KEY__COUNT) - 1);
}

static void test_overlay_copies_every_key_deeply(void **state)
{
	struct cf_config base, over;

	(void)state;
	cf_config_init(&base);
	fill_everything(&over);
	assert_int_equal(cf_config_overlay(&base, &over), 0);
	cf_config_free(&over); /* ASan: base must not point into over */
	assert_everything(&base);
	cf_config_free(&base);
}

static void test_overlay_leaves_unset_keys_untouched(void **state)
{
	struct cf_config base, over;

	(void)state;
	fill_everything(&base);
	cf_config_init(&over);
	/* values in over without their set bit must be ignored */
	over.offline = false;
	over.iface = strdup("ignored0");
	assert_int_equal(cf_config_overlay(&base, &over), 0);
	assert_everything(&base);
	cf_config_free(&over);
	cf_config_free(&base);
}

static void test_overlay_lists_replace_instead_of_appending(void **state)
{
	struct cf_config base, over;
	struct cf_cidr c = cidr_of("192.0.2.0/24");

	(void)state;
	fill_everything(&base);
	cf_config_init(&over);
	assert_int_equal(cf_cidrv_push(&over.allow_cidrs, &c), 0);
	assert_int_equal(cf_strv_push(&over.deny_domains, "one.example"), 0);
	assert_int_equal(cf_strv_push(&over.deny_domains, "two.example"), 0);
	assert_int_equal(cf_strv_push(&over.command, "true"), 0);
	over.set = CF_KEY_BIT(CF_KEY_ALLOW_CIDRS) | CF_KEY_BIT(CF_KEY_DENY_DOMAINS) |
		   CF_KEY_BIT(CF_KEY_COMMAND) | CF_KEY_BIT(CF_KEY_DENY_CIDRS);
	assert_int_equal(cf_config_overlay(&base, &over), 0);
	cf_config_free(&over);

	assert_int_equal(base.allow_cidrs.n, 1);
	assert_int_equal(base.allow_cidrs.v[0].ip.b[0], 192);
	assert_int_equal(base.deny_cidrs.n, 0); /* set and empty: replaced by nothing */
	assert_null(base.deny_cidrs.v);
	assert_int_equal(base.deny_domains.n, 2);
	assert_string_equal(base.deny_domains.v[0], "one.example");
	assert_string_equal(base.deny_domains.v[1], "two.example");
	assert_null(base.deny_domains.v[2]);
	assert_int_equal(base.command.n, 1);
	assert_string_equal(base.command.v[0], "true");
	assert_null(base.command.v[1]);
	assert_int_equal(base.allow_domains.n, 1); /* not set in over */
	cf_config_free(&base);
}

static void test_overlay_scalars_and_mask_union(void **state)
{
	struct cf_config base, over;

	(void)state;
	cf_config_init(&base);
	base.summary = true;
	base.set = CF_KEY_BIT(CF_KEY_SUMMARY);
	cf_config_init(&over);
	over.backend = CF_BACKEND_ROOTFUL;
	over.default_policy = CF_POLICY_DENY;
	over.capture = strdup("/tmp/c.pcapng");
	over.set = CF_KEY_BIT(CF_KEY_BACKEND) | CF_KEY_BIT(CF_KEY_DEFAULT_POLICY) |
		   CF_KEY_BIT(CF_KEY_CAPTURE);
	assert_int_equal(cf_config_overlay(&base, &over), 0);
	assert_int_equal(base.set, CF_KEY_BIT(CF_KEY_SUMMARY) | over.set);
	assert_true(base.summary);
	assert_int_equal(base.backend, CF_BACKEND_ROOTFUL);
	assert_int_equal(base.default_policy, CF_POLICY_DENY);
	assert_string_equal(base.capture, "/tmp/c.pcapng");
	assert_ptr_not_equal(base.capture, over.capture);

	/* an explicit false in a later source wins over an earlier true */
	over.summary = false;
	over.set = CF_KEY_BIT(CF_KEY_SUMMARY);
	assert_int_equal(cf_config_overlay(&base, &over), 0);
	assert_false(base.summary);
	cf_config_free(&over);
	cf_config_free(&base);
}

static void test_overlay_replaces_strings_and_proxy_without_leaking(void **state)
{
	struct cf_config base, over;

	(void)state;
	fill_everything(&base);
	cf_config_init(&over);
	over.capture = strdup("/tmp/new.pcapng");
	over.proxy =
	    (struct cf_proxy){.scheme = CF_PROXY_HTTP, .host = strdup("::1"), .port = 3128};
	over.proxy_password = NULL; /* set to "none" explicitly */
	over.set = CF_KEY_BIT(CF_KEY_CAPTURE) | CF_KEY_BIT(CF_KEY_PROXY) |
		   CF_KEY_BIT(CF_KEY_PROXY_PASSWORD);
	assert_int_equal(cf_config_overlay(&base, &over), 0);
	cf_config_free(&over);
	assert_string_equal(base.capture, "/tmp/new.pcapng");
	assert_int_equal(base.proxy.scheme, CF_PROXY_HTTP);
	assert_string_equal(base.proxy.host, "::1");
	assert_int_equal(base.proxy.port, 3128);
	assert_null(base.proxy.user);
	assert_null(base.proxy.password);
	assert_null(base.proxy_password);
	assert_string_equal(base.proxy_user, "bob");
	cf_config_free(&base);
}

static void test_overlay_chain_parent_child_cli(void **state)
{
	struct cf_config eff, parent, child, cli;

	(void)state;
	cf_config_init(&eff);
	cf_config_init(&parent);
	cf_config_init(&child);
	cf_config_init(&cli);
	parent.summary_format = CF_FORMAT_JSON;
	parent.iface = strdup("eth0");
	parent.set = CF_KEY_BIT(CF_KEY_SUMMARY_FORMAT) | CF_KEY_BIT(CF_KEY_IFACE);
	child.iface = strdup("eth1");
	child.set = CF_KEY_BIT(CF_KEY_IFACE);
	cli.iface = strdup("eth2");
	cli.set = CF_KEY_BIT(CF_KEY_IFACE);
	assert_int_equal(cf_config_overlay(&eff, &parent), 0);
	assert_int_equal(cf_config_overlay(&eff, &child), 0);
	assert_string_equal(eff.iface, "eth1");
	assert_int_equal(cf_config_overlay(&eff, &cli), 0);
	assert_string_equal(eff.iface, "eth2");
	assert_int_equal(eff.summary_format, CF_FORMAT_JSON);
	assert_int_equal(cf_config_overlay(&eff, &eff), 0); /* self: no-op */
	assert_string_equal(eff.iface, "eth2");
	cf_config_free(&parent);
	cf_config_free(&child);
	cf_config_free(&cli);
	cf_config_free(&eff);
}

static void test_free_resets_to_defaults_and_is_repeatable(void **state)
{
	struct cf_config c;

	(void)state;
	fill_everything(&c);
	cf_config_free(&c);
	assert_int_equal(c.set, 0);
	assert_null(c.capture);
	assert_null(c.command.v);
	assert_int_equal(c.proxy.scheme, CF_PROXY_NONE);
	assert_int_equal(c.backend, CF_BACKEND_ROOTLESS);
	cf_config_free(&c);
}

static void test_proxy_free_resets_to_none(void **state)
{
	struct cf_proxy p = {.scheme = CF_PROXY_HTTPS,
			     .host = strdup("h"),
			     .port = 443,
			     .user = strdup("u"),
			     .password = strdup("p")};

	(void)state;
	cf_proxy_free(&p);
	assert_int_equal(p.scheme, CF_PROXY_NONE);
	assert_null(p.host);
	assert_null(p.user);
	assert_null(p.password);
	assert_int_equal(p.port, 0);
	cf_proxy_free(&p);
}

static void assert_normalises(const char *in, const char *out)
{
	char buf[300];

	snprintf(buf, sizeof(buf), "%s", in);
	if (cf_domain_normalise(buf) != 0)
		fail_msg("rejected '%s'", in);
	assert_string_equal(buf, out);
}

static void assert_domain_rejected(const char *in)
{
	char buf[300];

	snprintf(buf, sizeof(buf), "%s", in);
	if (cf_domain_normalise(buf) != -EINVAL)
		fail_msg("accepted '%s'", in);
	assert_string_equal(buf, in); /* untouched on failure */
}

static void test_domain_normalise_lowercases_and_drops_one_trailing_dot(void **state)
{
	(void)state;
	assert_normalises("Example.COM.", "example.com");
	assert_normalises("example.com", "example.com");
	assert_normalises("LOCALHOST", "localhost");
	assert_normalises("_dmarc.Example.org", "_dmarc.example.org");
	assert_normalises("xn--bcher-kva.example", "xn--bcher-kva.example");
	assert_normalises("*.Example.com", "*.example.com");
	assert_normalises("a-b.c_d.9", "a-b.c_d.9");
}

static void test_domain_normalise_rejects_bad_names(void **state)
{
	char label64[80], name254[300], name253[260];

	(void)state;
	assert_domain_rejected("");
	assert_domain_rejected(".");
	assert_domain_rejected("..");
	assert_domain_rejected("example.com..");
	assert_domain_rejected(".example.com");
	assert_domain_rejected("a..b");
	assert_domain_rejected("exa mple.com");
	assert_domain_rejected("example.com/");
	assert_domain_rejected("b\xc3\xbc"
			       "cher.example");
	assert_domain_rejected("*");
	assert_domain_rejected("a.*.example");
	assert_domain_rejected("ex*ample.com");
	assert_domain_rejected("**.example");
	assert_domain_rejected("192.0.2.1:80");
	assert_int_equal(cf_domain_normalise(NULL), -EINVAL);

	memset(label64, 'a', 64);
	strcpy(label64 + 64, ".com");
	assert_domain_rejected(label64);
	strcpy(label64 + 63, ".com"); /* 63 is the limit */
	assert_normalises(label64, label64);

	/* 253 bytes is the longest name (254 with the trailing dot) */
	memset(name253, 0, sizeof(name253));
	for (size_t i = 0; i < 253; i++)
		name253[i] = (i % 2) ? '.' : 'a';
	name253[252] = 'a';
	assert_normalises(name253, name253);
	snprintf(name254, sizeof(name254), "%s.", name253);
	assert_normalises(name254, name253);
	snprintf(name254, sizeof(name254), "a.%s", name253);
	assert_domain_rejected(name254);
}

/* ---- cf_config_check ---------------------------------------------------- */

static void test_check_accepts_defaults_and_remote_dns_with_a_proxy(void **state)
{
	struct cf_config c;
	char err[256] = "";

	(void)state;
	cf_config_init(&c);
	assert_int_equal(cf_config_check(&c, err, sizeof(err)), 0);
	c.proxy.scheme = CF_PROXY_SOCKS5;
	c.proxy_remote_dns = true;
	c.default_policy = CF_POLICY_DENY;
	c.proxy_only = true;
	assert_int_equal(cf_config_check(&c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

static void test_check_refuses_proxy_settings_without_a_proxy(void **state)
{
	struct cf_config c;
	char err[256];

	(void)state;
	cf_config_init(&c);
	c.proxy_insecure = true;
	assert_int_equal(cf_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "need --proxy"));
	cf_config_init(&c);
	c.proxy_remote_dns = true;
	assert_int_equal(cf_config_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--proxy-remote-dns needs --proxy");
}

/* One setting that needs another, and its message (the option, the key, the remedy). */
struct dependency_case {
	void (*set)(struct cf_config *c);
	const char *want; /* in the message; NULL: accepted */
};

static void only_proxy_only(struct cf_config *c)
{
	c->proxy_only = true;
}
static void insecure_http(struct cf_config *c)
{
	c->proxy.scheme = CF_PROXY_HTTP;
	c->proxy_insecure = true;
}
static void insecure_socks(struct cf_config *c)
{
	c->proxy.scheme = CF_PROXY_SOCKS5;
	c->proxy_insecure = true;
}
static void insecure_https(struct cf_config *c)
{
	c->proxy.scheme = CF_PROXY_HTTPS;
	c->proxy_insecure = true;
}
static void user_alone(struct cf_config *c)
{
	c->proxy.scheme = CF_PROXY_SOCKS5;
	c->proxy_user = (char *)"alice";
}
static void password_alone(struct cf_config *c)
{
	c->proxy.scheme = CF_PROXY_SOCKS5;
	c->proxy_password = (char *)"secret";
}
static void user_and_uri_password(struct cf_config *c)
{
	c->proxy.scheme = CF_PROXY_HTTP;
	c->proxy.password = (char *)"secret";
	c->proxy_user = (char *)"alice";
}
static void uri_user_alone(struct cf_config *c)
{
	c->proxy.scheme = CF_PROXY_HTTP;
	c->proxy.user = (char *)"alice";
}
static void egress_without_capture(struct cf_config *c)
{
	c->capture_point = CF_CAPTURE_EGRESS;
}
static void child_without_capture(struct cf_config *c)
{
	c->capture_point = CF_CAPTURE_CHILD;
}
static void both_with_capture(struct cf_config *c)
{
	c->capture_point = CF_CAPTURE_BOTH;
	c->capture = (char *)"/tmp/x.pcapng";
}

static void test_check_refuses_settings_that_need_another(void **state)
{
	static const struct dependency_case cases[] = {
	    {only_proxy_only, "--proxy-only (proxy_only) needs --proxy (proxy)"},
	    {insecure_http, "--proxy-insecure (proxy_insecure) is only for https:// proxies: "
			    "the --proxy http://"},
	    {insecure_socks, "the --proxy socks5:// has no certificate"},
	    {insecure_https, NULL},
	    {user_alone, "--proxy-user (proxy_user) needs a password"},
	    {password_alone, "--proxy-password (proxy_password) needs a user"},
	    {user_and_uri_password, NULL},
	    {uri_user_alone, "--proxy-user (proxy_user) needs a password"},
	    {egress_without_capture, "--capture-point egress (capture_point) needs --capture"},
	    {child_without_capture, NULL},
	    {both_with_capture, NULL},
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cf_config c;
		int r;

		cf_config_init(&c);
		cases[i].set(&c);
		err[0] = '\0';
		r = cf_config_check(&c, err, sizeof(err));
		if (!cases[i].want) {
			if (r != 0)
				fail_msg("case %zu refused: %s", i, err);
			continue;
		}
		if (r != -EINVAL || !strstr(err, cases[i].want))
			fail_msg("case %zu: %d '%s', want '%s'", i, r, err, cases[i].want);
	}
}

static void test_check_refuses_remote_dns_with_address_settings(void **state)
{
	static const char *const options[] = {
	    "--proxy-send-ip",	"--dns",	"--offline",   "--block-private",
	    "--block-metadata", "--allow-cidr", "--deny-cidr",
	};
	struct cf_cidr net = cidr_of("203.0.113.0/24");
	char err[256], want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		struct cf_config c;

		cf_config_init(&c);
		c.proxy.scheme = CF_PROXY_HTTP;
		c.proxy_remote_dns = true;
		c.proxy_send_ip = i == 0;
		c.dns_set = i == 1;
		c.offline = i == 2;
		c.block_private = i == 3;
		c.block_metadata = i == 4;
		if (i == 5)
			assert_int_equal(cf_cidrv_push(&c.allow_cidrs, &net), 0);
		if (i == 6)
			assert_int_equal(cf_cidrv_push(&c.deny_cidrs, &net), 0);
		print_message("case %s\n", options[i]);
		assert_int_equal(cf_config_check(&c, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "combined with %s:", options[i]);
		assert_non_null(strstr(err, want));
		cf_config_free(&c);
	}
}

/* --publish: the accepted forms, normalised, and what is refused. */
static void test_publish_parse_and_format(void **state)
{
	static const char *const ok[][2] = {
	    {"8080:80", "127.0.0.1:8080:80/tcp"},
	    {"8080:80/udp", "127.0.0.1:8080:80/udp"},
	    {"0.0.0.0:1:65535/tcp", "0.0.0.0:1:65535/tcp"},
	    {"[::]:53:5353/udp", "[::]:53:5353/udp"},
	    {"[::1]:8080:80", "[::1]:8080:80/tcp"},
	    {"198.51.100.7:443:8443", "198.51.100.7:443:8443/tcp"},
	};
	static const char *const bad[] = {
	    "8080",	    "8080:",	     ":80",	     "0:80",	      "8080:0",
	    "8080:65536",   "08080:80",	     "8080:80/sctp", "8080:80/",      "::1:8080:80",
	    "[::1:8080:80", "[1.2.3.4]:1:2", "host:1:2",     "1.2.3.4:1:2:3", "",
	    "[::1]8080:80",
	};
	char buf[CF_PUBLISH_STRLEN];
	struct cf_publish p;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(cf_publish_parse(ok[i][0], &p), 0);
		assert_string_equal(cf_publish_format(&p, buf, sizeof(buf)), ok[i][1]);
		/* the normalised form reads back the same */
		assert_int_equal(cf_publish_parse(buf, &p), 0);
		assert_string_equal(cf_publish_format(&p, buf, sizeof(buf)), ok[i][1]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cf_publish_parse(bad[i], &p) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_gives_documented_defaults),
	    cmocka_unit_test(test_key_names_are_the_profile_keys),
	    cmocka_unit_test(test_strv_push_copies_and_keeps_null_terminator),
	    cmocka_unit_test(test_cidrv_push_appends_in_order),
	    cmocka_unit_test(test_overlay_copies_every_key_deeply),
	    cmocka_unit_test(test_overlay_leaves_unset_keys_untouched),
	    cmocka_unit_test(test_overlay_lists_replace_instead_of_appending),
	    cmocka_unit_test(test_overlay_scalars_and_mask_union),
	    cmocka_unit_test(test_overlay_replaces_strings_and_proxy_without_leaking),
	    cmocka_unit_test(test_overlay_chain_parent_child_cli),
	    cmocka_unit_test(test_free_resets_to_defaults_and_is_repeatable),
	    cmocka_unit_test(test_proxy_free_resets_to_none),
	    cmocka_unit_test(test_domain_normalise_lowercases_and_drops_one_trailing_dot),
	    cmocka_unit_test(test_domain_normalise_rejects_bad_names),
	    cmocka_unit_test(test_check_accepts_defaults_and_remote_dns_with_a_proxy),
	    cmocka_unit_test(test_check_refuses_proxy_settings_without_a_proxy),
	    cmocka_unit_test(test_check_refuses_remote_dns_with_address_settings),
	    cmocka_unit_test(test_check_refuses_settings_that_need_another),
	    cmocka_unit_test(test_publish_parse_and_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
