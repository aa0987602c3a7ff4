/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of profile loading and dumping: every key and its type errors,
 * extends chains and cycles, relative paths, merging with the command line,
 * and dump -> load round trips. Profiles are written to a fresh directory
 * under /tmp per test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/profile.h"
#include "config/proxyuri.h"
#include "net/addr.h"

struct fixture {
	char dir[64];
	char path[512]; /* scratch for paths built by path_in() */
	char err[1024];
	struct cf_config cfg;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cf-test-profile-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	cf_config_init(&f->cfg);
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	cf_config_free(&f->cfg);
	nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* "<dir>/<name>" in f->path. */
static const char *path_in(struct fixture *f, const char *name)
{
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	return f->path;
}

static void write_file(struct fixture *f, const char *name, const char *text)
{
	FILE *fp;

	fp = fopen(path_in(f, name), "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static void make_dir(struct fixture *f, const char *name)
{
	assert_int_equal(mkdir(path_in(f, name), 0700), 0);
}

/* Load profile @name from the fixture directory; fail the test on error. */
static struct cf_config *load_ok(struct fixture *f, const char *name)
{
	int r;

	cf_config_free(&f->cfg);
	r = cf_profile_load(path_in(f, name), &f->cfg, f->err, sizeof(f->err));
	if (r != 0)
		fail_msg("loading %s failed (%d): %s", name, r, f->err);
	return &f->cfg;
}

/* Write @text as p.toml, load it, expect -EINVAL and an error ending in @msg. */
static void expect_error(struct fixture *f, const char *text, const char *msg)
{
	char expected[1024];
	int r;

	write_file(f, "p.toml", text);
	cf_config_free(&f->cfg);
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, f->err, sizeof(f->err));
	snprintf(expected, sizeof(expected), "%s/p.toml:%s", f->dir, msg);
	if (r != -EINVAL || strcmp(f->err, expected) != 0)
		fail_msg("profile:\n%s\nexpected -EINVAL: %s\ngot %d: %s", text, expected, r,
			 f->err);
	/* nothing of a failed load is left */
	assert_int_equal(f->cfg.set, 0);
	assert_null(f->cfg.command.v);
}

static char *abs_in(struct fixture *f, const char *name)
{
	char *s = NULL;

	assert_true(asprintf(&s, "%s/%s", f->dir, name) > 0);
	return s;
}

static void assert_path(struct fixture *f, const char *got, const char *name)
{
	char *want = abs_in(f, name);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(want);
}

static const char every_key[] = "# every key, none at its default\n"
				"extends = \"base.toml\"\n"
				"backend = \"rootful\"\n"
				"command = [\"curl\", \"-sS\", \"https://example.com/\"]\n"
				"capture = \"out/run.pcapng\"\n"
				"capture_point = \"both\"\n"
				"dns = \"2001:db8::53\"\n"
				"hosts_file = \"./hosts\"\n"
				"proxy = \"socks5://u%40x:p%3Aw@[2001:db8::1]\"\n"
				"proxy_user = \"alice\"\n"
				"proxy_password = \"s3cr\\u00e9t\"\n"
				"proxy_insecure = true\n"
				"proxy_send_ip = true\n"
				"proxy_remote_dns = true\n"
				"summary = true\n"
				"summary_format = \"json\"\n"
				"doctor_format = \"json\"\n"
				"report_format = \"markdown\"\n"
				"flow_log = \"flows.jsonl\"\n"
				"offline = true\n"
				"block_private = true\n"
				"block_metadata = true\n"
				"default_policy = \"deny\"\n"
				"allow_cidrs = [\"198.51.100.0/24\", \"2001:db8::/32\"]\n"
				"deny_cidrs = [\n  \"203.0.113.7\", # a single host\n]\n"
				"allow_domains = [\"Example.COM.\", \"*.example.org\"]\n"
				"allow_domains_exact = [\"exact.example\"]\n"
				"deny_domains = [\"bad.example\"]\n"
				"deny_domains_exact = [\"x.bad.example\", \"y.bad.example\"]\n"
				"proxy_only = true\n"
				"fail_on_leak = true\n"
				"iface = \"eth0\"\n"
				"allow_host_ports = [\"5432\", \"53/udp\", \"8080/tcp\"]\n"
				"mask = [\"/run/custom.sock\", \"/tmp/dir/\"]\n"
				"unmask = [\"/run/docker.sock\"]\n"
				"user = \"nobody\"\n"
				"quiet = true\n"
				"rate_limit = \"20M\"\n"
				"publish = [\"8080:80\", \"[::]:53:5353/udp\"]\n"
				"tcp_path = \"relay\"\n";

static void write_every_key_profile(struct fixture *f)
{
	make_dir(f, "out");
	write_file(f, "hosts", "127.0.0.1 localhost\n");
	write_file(f, "base.toml", "");
	write_file(f, "p.toml", every_key);
}

static void cidr_is(const struct cf_cidr *c, const char *text)
{
	char buf[CF_IP_STRLEN + 8];

	assert_string_equal(cf_cidr_format(c, buf, sizeof(buf)), text);
}

/* ---- loading ------------------------------------------------------------ */

static void every_key_is_loaded_with_its_type_and_marked_set(void **state)
{
	struct fixture *f = *state;
	struct cf_config *c;
	char ip[CF_IP_STRLEN];

	write_every_key_profile(f);
	c = load_ok(f, "p.toml");
	assert_true(c->set == CF_KEY_BIT(CF_KEY__COUNT) - 1);
	assert_true(c->quiet);
	assert_true(c->rate_limit == 20000000);
	assert_int_equal(c->publish.n, 2);
	assert_string_equal(c->publish.v[0], "127.0.0.1:8080:80/tcp");
	assert_string_equal(c->publish.v[1], "[::]:53:5353/udp");
	assert_int_equal(c->tcp_path, CF_TCP_PATH_RELAY);
	assert_path(f, c->extends, "base.toml");
	assert_int_equal(c->backend, CF_BACKEND_ROOTFUL);
	assert_int_equal(c->command.n, 3);
	assert_string_equal(c->command.v[2], "https://example.com/");
	assert_null(c->command.v[3]);
	assert_path(f, c->capture, "out/run.pcapng");
	assert_int_equal(c->capture_point, CF_CAPTURE_BOTH);
	assert_true(c->dns_set);
	assert_string_equal(cf_ip_format(&c->dns, ip, sizeof(ip)), "2001:db8::53");
	assert_path(f, c->hosts_file, "hosts");
	assert_int_equal(c->proxy.scheme, CF_PROXY_SOCKS5);
	assert_string_equal(c->proxy.host, "2001:db8::1");
	assert_int_equal(c->proxy.port, 1080);
	assert_string_equal(c->proxy.user, "u@x");
	assert_string_equal(c->proxy.password, "p:w");
	assert_string_equal(c->proxy_user, "alice");
	assert_string_equal(c->proxy_password, "s3cr\xc3\xa9t");
	assert_true(c->proxy_insecure);
	assert_true(c->proxy_send_ip);
	assert_true(c->proxy_remote_dns);
	assert_true(c->summary);
	assert_int_equal(c->summary_format, CF_FORMAT_JSON);
	assert_int_equal(c->doctor_format, CF_FORMAT_JSON);
	assert_int_equal(c->report_format, CF_FORMAT_MARKDOWN);
	assert_path(f, c->flow_log, "flows.jsonl");
	assert_true(c->offline);
	assert_true(c->block_private);
	assert_true(c->block_metadata);
	assert_int_equal(c->default_policy, CF_POLICY_DENY);
	assert_int_equal(c->allow_cidrs.n, 2);
	cidr_is(&c->allow_cidrs.v[0], "198.51.100.0/24");
	cidr_is(&c->allow_cidrs.v[1], "2001:db8::/32");
	assert_int_equal(c->deny_cidrs.n, 1);
	cidr_is(&c->deny_cidrs.v[0], "203.0.113.7/32");
	assert_int_equal(c->allow_domains.n, 2);
	assert_string_equal(c->allow_domains.v[0], "example.com");
	assert_string_equal(c->allow_domains.v[1], "*.example.org");
	assert_string_equal(c->allow_domains_exact.v[0], "exact.example");
	assert_string_equal(c->deny_domains.v[0], "bad.example");
	assert_int_equal(c->deny_domains_exact.n, 2);
	assert_true(c->proxy_only);
	assert_true(c->fail_on_leak);
	assert_string_equal(c->iface, "eth0");
	assert_int_equal(c->allow_host_ports.n, 3);
	assert_string_equal(c->allow_host_ports.v[0], "5432/tcp"); /* a bare port is TCP */
	assert_string_equal(c->allow_host_ports.v[1], "53/udp");
	assert_string_equal(c->allow_host_ports.v[2], "8080/tcp");
	assert_int_equal(c->mask.n, 2);
	assert_string_equal(c->mask.v[0], "/run/custom.sock");
	assert_string_equal(c->mask.v[1], "/tmp/dir");
	assert_string_equal(c->unmask.v[0], "/run/docker.sock");
	assert_string_equal(c->user, "nobody");
}

static void an_empty_profile_sets_nothing_and_keeps_the_defaults(void **state)
{
	struct fixture *f = *state;
	struct cf_config *c, defaults;

	write_file(f, "p.toml", "# nothing\n");
	c = load_ok(f, "p.toml");
	cf_config_init(&defaults);
	assert_int_equal(c->set, 0);
	assert_memory_equal(c, &defaults, sizeof(defaults));
}

static void alternative_values_of_every_choice_key_are_accepted(void **state)
{
	struct fixture *f = *state;
	struct cf_config *c;

	write_file(f, "p.toml",
		   "backend = \"rootless-internal\"\ncapture_point = \"wire-egress\"\n"
		   "summary_format = \"text\"\ndoctor_format = \"text\"\n"
		   "report_format = \"json\"\ndefault_policy = \"allow\"\nsummary = false\n"
		   "command = []\nallow_cidrs = []\n");
	c = load_ok(f, "p.toml");
	assert_int_equal(c->backend, CF_BACKEND_ROOTLESS);
	assert_int_equal(c->capture_point, CF_CAPTURE_WIRE_EGRESS);
	assert_int_equal(c->report_format, CF_FORMAT_JSON);
	assert_false(c->summary);
	assert_true(c->set & CF_KEY_BIT(CF_KEY_SUMMARY));
	assert_true(c->set & CF_KEY_BIT(CF_KEY_COMMAND));
	assert_int_equal(c->command.n, 0);
	write_file(f, "p.toml",
		   "capture_point = \"egress\"\nproxy = \"http://proxy.example\"\n"
		   "proxy_password = \"\"\n");
	c = load_ok(f, "p.toml");
	assert_int_equal(c->capture_point, CF_CAPTURE_EGRESS);
	assert_int_equal(c->proxy.scheme, CF_PROXY_HTTP);
	assert_int_equal(c->proxy.port, 80);
	assert_string_equal(c->proxy_password, "");
}

static void relative_paths_resolve_against_the_profile_directory(void **state)
{
	struct fixture *f = *state;
	struct cf_config *c;
	char *cwd = getcwd(NULL, 0);
	int r;

	make_dir(f, "sub");
	make_dir(f, "sub/logs");
	write_file(f, "sub/hosts", "");
	write_file(f, "abs-hosts", "");
	write_file(f, "sub/p.toml",
		   "capture = \"c.pcapng\"\nflow_log = \"././logs//f.jsonl\"\n"
		   "hosts_file = \"../abs-hosts\"\n");
	/* loaded through a relative path from another directory */
	assert_int_equal(chdir(f->dir), 0);
	cf_config_free(&f->cfg);
	r = cf_profile_load("sub/p.toml", &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(chdir(cwd), 0);
	free(cwd);
	assert_int_equal(r, 0);
	assert_path(f, f->cfg.capture, "sub/c.pcapng");
	assert_path(f, f->cfg.flow_log, "sub/logs//f.jsonl");
	assert_path(f, f->cfg.hosts_file, "sub/../abs-hosts");

	/* absolute paths are kept as written */
	snprintf(f->err, sizeof(f->err), "hosts_file = \"%s/sub/hosts\"\n", f->dir);
	write_file(f, "p.toml", f->err);
	c = load_ok(f, "p.toml");
	assert_path(f, c->hosts_file, "sub/hosts");
}

static void unknown_keys_are_errors_with_a_suggestion(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "summary = true\nsumary = true\n",
		     "2:1: unknown key 'sumary' "
		     "(did you mean 'summary'?)");
	expect_error(f, "allow-cidr = []\n",
		     "1:1: unknown key 'allow-cidr' (did you mean 'allow_cidrs'?)");
	expect_error(f, "  colour = 1\n", "1:3: unknown key 'colour'");
	expect_error(f, "root = true\n",
		     "1:1: unknown key 'root' (the command line's --root is "
		     "backend = \"rootful\" in a profile)");
	expect_error(f, "[policy]\nallow = []\n", "1:2: unknown key 'policy'");
	expect_error(f, "\"summary\\u0000\" = true\n",
		     "1:1: unknown key 'summary?' (did you "
		     "mean 'summary'?)");
	expect_error(f, "\"a\\nb\" = 1\n", "1:1: unknown key 'a?b'");
}

struct type_case {
	const char *text;
	const char *msg;
};

static void wrong_types_are_errors_naming_line_column_and_key(void **state)
{
	static const struct type_case cases[] = {
	    {"extends = 1\n", "1:11: key 'extends': expected a string, got an integer"},
	    {"backend = true\n", "1:11: key 'backend': expected a string, got a boolean"},
	    {"command = \"ls -l\"\n",
	     "1:11: key 'command': expected an array of strings, got a string"},
	    {"command = [\"ls\", 1]\n",
	     "1:18: key 'command': expected an array of strings, found an integer in it"},
	    {"command = [[\"ls\"]]\n",
	     "1:12: key 'command': expected an array of strings, found an array in it"},
	    {"capture = []\n", "1:11: key 'capture': expected a string, got an array"},
	    {"capture_point = 1\n", "1:17: key 'capture_point': expected a string, got an "
				    "integer"},
	    {"dns = 8\n", "1:7: key 'dns': expected a string, got an integer"},
	    {"hosts_file = false\n", "1:14: key 'hosts_file': expected a string, got a "
				     "boolean"},
	    {"[proxy]\nhost = \"x\"\n", "1:1: key 'proxy': expected a string, got a table"},
	    {"proxy_user = 7\n", "1:14: key 'proxy_user': expected a string, got an integer"},
	    {"proxy_password = 7\n", "1:18: key 'proxy_password': expected a string, got an "
				     "integer"},
	    {"proxy_insecure = \"yes\"\n", "1:18: key 'proxy_insecure': expected a boolean "
					   "(true or false), got a string"},
	    {"summary = 1\n", "1:11: key 'summary': expected a boolean (true or false), got "
			      "an integer"},
	    {"summary_format = []\n", "1:18: key 'summary_format': expected a string, got "
				      "an array"},
	    {"doctor_format = 0\n", "1:17: key 'doctor_format': expected a string, got an "
				    "integer"},
	    {"report_format = 0\n", "1:17: key 'report_format': expected a string, got an "
				    "integer"},
	    {"flow_log = 0\n", "1:12: key 'flow_log': expected a string, got an integer"},
	    {"offline = \"true\"\n", "1:11: key 'offline': expected a boolean (true or "
				     "false), got a string"},
	    {"block_private = 1\n", "1:17: key 'block_private': expected a boolean (true or "
				    "false), got an integer"},
	    {"block_metadata = []\n", "1:18: key 'block_metadata': expected a boolean (true "
				      "or false), got an array"},
	    {"default_policy = false\n", "1:18: key 'default_policy': expected a string, got "
					 "a boolean"},
	    {"allow_cidrs = \"10.0.0.0/8\"\n", "1:15: key 'allow_cidrs': expected an array "
					       "of strings, got a string"},
	    {"deny_cidrs = [\n  \"10.0.0.0/8\",\n  8,\n]\n",
	     "3:3: key 'deny_cidrs': expected an array of strings, found an integer in it"},
	    {"allow_domains = \"a.example\"\n", "1:17: key 'allow_domains': expected an "
						"array of strings, got a string"},
	    {"allow_domains_exact = [true]\n", "1:24: key 'allow_domains_exact': expected "
					       "an array of strings, found a boolean in it"},
	    {"deny_domains = 1\n", "1:16: key 'deny_domains': expected an array of strings, "
				   "got an integer"},
	    {"deny_domains_exact = {}\n", "1:22: unsupported: inline tables ({...}); use a "
					  "[table]"},
	    {"proxy_only = \"no\"\n", "1:14: key 'proxy_only': expected a boolean (true or "
				      "false), got a string"},
	    {"fail_on_leak = 0\n", "1:16: key 'fail_on_leak': expected a boolean (true or "
				   "false), got an integer"},
	    {"iface = [\"eth0\"]\n", "1:9: key 'iface': expected a string, got an array"},
	    {"mask = \"/run/x.sock\"\n",
	     "1:8: key 'mask': expected an array of strings, got a string"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(f, cases[i].text, cases[i].msg);
}

static void invalid_values_are_errors_naming_the_key_and_value(void **state)
{
	static const struct type_case cases[] = {
	    {"mask = [\"run/x.sock\"]\n", "1:9: key 'mask': 'run/x.sock' is not an absolute path "
					  "other than '/'"},
	    {"unmask = [\"/\"]\n", "1:11: key 'unmask': '/' is not an absolute path other "
				   "than '/'"},
	    {"backend = \"rootless\"\n", "1:11: key 'backend': invalid value 'rootless' "
					 "(expected one of: rootless-internal, rootful)"},
	    {"capture_point = \"host\"\n", "1:17: key 'capture_point': invalid value 'host' "
					   "(expected one of: child, egress, wire-egress, "
					   "both)"},
	    {"summary_format = \"markdown\"\n", "1:18: key 'summary_format': invalid value "
						"'markdown' (expected one of: text, json)"},
	    {"doctor_format = \"JSON\"\n", "1:17: key 'doctor_format': invalid value 'JSON' "
					   "(expected one of: text, json)"},
	    {"report_format = \"html\"\n", "1:17: key 'report_format': invalid value 'html' "
					   "(expected one of: text, markdown, json, profile)"},
	    {"default_policy = \"block\"\n", "1:18: key 'default_policy': invalid value "
					     "'block' (expected one of: allow, deny)"},
	    {"dns = \"1.2.3\"\n", "1:7: key 'dns': invalid IP address '1.2.3'"},
	    {"dns = \"[::1]\"\n", "1:7: key 'dns': invalid IP address '[::1]'"},
	    {"proxy_user = \"\"\n", "1:14: key 'proxy_user': empty user name"},
	    {"proxy_user = \"a\\tb\"\n", "1:14: key 'proxy_user': control characters in "
					 "user name 'a?b'"},
	    {"proxy_password = \"hunter2\\n\"\n", "1:18: key 'proxy_password': the password "
						  "contains control characters"},
	    {"iface = \"\"\n", "1:9: key 'iface': invalid interface name '' (1-15 "
			       "characters, no '/', ':' or spaces)"},
	    {"iface = \"a-very-long-name\"\n", "1:9: key 'iface': invalid interface name "
					       "'a-very-long-name' (1-15 characters, no "
					       "'/', ':' or spaces)"},
	    {"iface = \"eth0:1\"\n", "1:9: key 'iface': invalid interface name 'eth0:1' "
				     "(1-15 characters, no '/', ':' or spaces)"},
	    {"iface = \"..\"\n", "1:9: key 'iface': invalid interface name '..' (1-15 "
				 "characters, no '/', ':' or spaces)"},
	    {"allow_cidrs = [\"10.0.0.0/8\", \"10.0.0.1/33\"]\n",
	     "1:30: key 'allow_cidrs': invalid CIDR '10.0.0.1/33'"},
	    {"deny_cidrs = [\"10.0.0.1/8\"]\n", "1:15: key 'deny_cidrs': invalid CIDR "
						"'10.0.0.1/8'"},
	    {"allow_domains = [\"a..b\"]\n", "1:18: key 'allow_domains': invalid domain "
					     "'a..b'"},
	    {"allow_host_ports = [\"80/sctp\"]\n",
	     "1:21: key 'allow_host_ports': invalid port '80/sctp' (expected PORT, PORT/tcp or "
	     "PORT/udp)"},
	    {"deny_domains_exact = [\"\"]\n", "1:23: key 'deny_domains_exact': invalid "
					      "domain ''"},
	    {"capture = \"\"\n", "1:11: key 'capture': empty path"},
	    {"flow_log = \"~/f.jsonl\"\n", "1:12: key 'flow_log': '~' is not expanded: write "
					   "an absolute path, or one relative to the "
					   "profile's directory"},
	    {"command = [\"a\\u0000b\"]\n", "1:12: key 'command': the string contains a "
					    "NUL character (\\u0000)"},
	    {"summary = true\nsummary = false\n", "2:1: duplicate key 'summary'"},
	    {"summary = yes\n", "1:11: invalid value (expected a string, integer, true, "
				"false or array)"},
	    {"dns = \"198.51.100.53\" x\n", "1:23: expected the end of the line after a value"},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(f, cases[i].text, cases[i].msg);
}

static void long_values_and_keys_are_cut_in_messages(void **state)
{
	struct fixture *f = *state;
	char text[512], want[512];
	char *label = malloc(121);

	assert_non_null(label);
	memset(label, 'x', 120);
	label[120] = '\0';
	snprintf(text, sizeof(text), "allow_domains = [\"%s\"]\n", label);
	snprintf(want, sizeof(want), "1:18: key 'allow_domains': invalid domain '%.80s...'", label);
	expect_error(f, text, want);
	/* an unknown key too long to compare gets no suggestion */
	snprintf(text, sizeof(text), "allow_domains_exactly_and_more_and_more = []\n");
	expect_error(f, text, "1:1: unknown key 'allow_domains_exactly_and_more_and_more'");
	free(label);
}

static void key_errors_without_room_for_a_message_still_fail(void **state)
{
	struct fixture *f = *state;

	write_file(f, "p.toml", "summary = 1\n");
	assert_int_equal(cf_profile_load(path_in(f, "p.toml"), &f->cfg, NULL, 0), -EINVAL);
	write_file(f, "p.toml", "summary = [\n");
	assert_int_equal(cf_profile_load(path_in(f, "p.toml"), &f->cfg, NULL, 0), -EINVAL);
}

static void proxy_errors_never_show_the_password(void **state)
{
	struct fixture *f = *state;
	int r;

	write_file(f, "p.toml", "proxy = \"ftp://user:topsecret@host\"\n");
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(f->err, "p.toml:1:9: key 'proxy': "));
	assert_null(strstr(f->err, "topsecret"));
	write_file(f, "p.toml", "proxy_password = \"topsecret\\u0001\"\n");
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	assert_null(strstr(f->err, "topsecret"));
}

static void files_are_checked_like_the_command_line_checks_them(void **state)
{
	struct fixture *f = *state;
	char msg[1024];

	make_dir(f, "d");
	write_file(f, "plain", "");
	snprintf(msg, sizeof(msg),
		 "1:14: key 'hosts_file': cannot read '%s/missing': No such file or directory",
		 f->dir);
	expect_error(f, "hosts_file = \"missing\"\n", msg);
	snprintf(msg, sizeof(msg), "1:14: key 'hosts_file': '%s/d' is not a regular file", f->dir);
	expect_error(f, "hosts_file = \"d\"\n", msg);
	snprintf(msg, sizeof(msg), "1:11: key 'capture': '%s/d' is a directory", f->dir);
	expect_error(f, "capture = \"d\"\n", msg);
	snprintf(msg, sizeof(msg),
		 "1:12: key 'flow_log': cannot create '%s/nodir/f.jsonl': directory "
		 "'%s/nodir': No such file or directory",
		 f->dir, f->dir);
	expect_error(f, "flow_log = \"nodir/f.jsonl\"\n", msg);
	snprintf(msg, sizeof(msg),
		 "1:11: key 'capture': cannot create '%s/plain/x': '%s/plain' is not a "
		 "directory",
		 f->dir, f->dir);
	expect_error(f, "capture = \"plain/x\"\n", msg);
	/* an existing output file is fine */
	write_file(f, "p.toml", "capture = \"plain\"\n");
	load_ok(f, "p.toml");
}

static void toml_errors_name_the_file_line_and_column(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "summary = true\n\nproxy = \"http://x\n",
		     "3:18: line break in a single-line string");
	expect_error(f, "summary = true\n\nproxy = \"http://x", "3:9: unterminated string");
	expect_error(f, "command = [\"a\",\n  2.5]\n",
		     "2:3: unsupported: floating-point "
		     "numbers");
	expect_error(f, "[[x]]\n", "1:1: unsupported: arrays of tables ([[...]])");
}

static void unreadable_profiles_return_errno(void **state)
{
	struct fixture *f = *state;
	char big[4096];
	FILE *fp;
	int r;

	r = cf_profile_load(path_in(f, "missing.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(f->err, "missing.toml: cannot read profile: No such file"));
	r = cf_profile_load(f->dir, &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EISDIR);
	r = cf_profile_load("/dev/null", &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	assert_string_equal(f->err, "/dev/null: cannot read profile: not a regular file");
	/* a profile over 1 MiB */
	memset(big, '#', sizeof(big));
	fp = fopen(path_in(f, "big.toml"), "w");
	assert_non_null(fp);
	for (int i = 0; i <= (int)(CF_PROFILE_MAX_SIZE / sizeof(big)); i++)
		assert_int_equal(fwrite(big, 1, sizeof(big), fp), sizeof(big));
	assert_int_equal(fclose(fp), 0);
	r = cf_profile_load(path_in(f, "big.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EFBIG);
	/* without room for a message */
	r = cf_profile_load(path_in(f, "missing.toml"), &f->cfg, NULL, 0);
	assert_int_equal(r, -ENOENT);
	write_file(f, "p.toml", "x = 1\n");
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, NULL, 0);
	assert_int_equal(r, -EINVAL);
}

/* ---- extends ------------------------------------------------------------ */

static void extends_merges_the_chain_parent_first(void **state)
{
	struct fixture *f = *state;
	struct cf_config *c;

	make_dir(f, "base");
	make_dir(f, "base/root");
	write_file(f, "base/root/grand.toml",
		   "summary = true\nsummary_format = \"json\"\nallow_cidrs = [\"10.0.0.0/8\"]\n"
		   "command = [\"grand\"]\nflow_log = \"g.jsonl\"\n");
	write_file(f, "base/parent.toml",
		   "extends = \"root/grand.toml\"\nsummary_format = \"text\"\n"
		   "allow_cidrs = [\"192.0.2.0/24\", \"198.51.100.0/24\"]\noffline = true\n");
	write_file(f, "child.toml",
		   "extends = \"base/parent.toml\"\noffline = false\n"
		   "command = [\"child\", \"arg\"]\n");
	c = load_ok(f, "child.toml");
	/* grandparent's keys nobody overrode */
	assert_true(c->summary);
	assert_path(f, c->flow_log, "base/root/g.jsonl");
	/* parent over grandparent; its list replaces, not appends */
	assert_int_equal(c->summary_format, CF_FORMAT_TEXT);
	assert_int_equal(c->allow_cidrs.n, 2);
	cidr_is(&c->allow_cidrs.v[0], "192.0.2.0/24");
	/* child over both */
	assert_false(c->offline);
	assert_int_equal(c->command.n, 2);
	assert_string_equal(c->command.v[0], "child");
	/* the child's own parent, absolute */
	assert_path(f, c->extends, "base/parent.toml");
	assert_true(c->set == (CF_KEY_BIT(CF_KEY_EXTENDS) | CF_KEY_BIT(CF_KEY_SUMMARY) |
			       CF_KEY_BIT(CF_KEY_SUMMARY_FORMAT) | CF_KEY_BIT(CF_KEY_ALLOW_CIDRS) |
			       CF_KEY_BIT(CF_KEY_COMMAND) | CF_KEY_BIT(CF_KEY_FLOW_LOG) |
			       CF_KEY_BIT(CF_KEY_OFFLINE)));
	assert_int_equal(c->default_policy, CF_POLICY_ALLOW);
}

static void extends_accepts_an_absolute_path_and_long_chains(void **state)
{
	struct fixture *f = *state;
	char text[512], name[32];
	struct cf_config *c;

	snprintf(text, sizeof(text), "extends = \"%s/p0.toml\"\ndns = \"192.0.2.53\"\n", f->dir);
	write_file(f, "abs.toml", text);
	write_file(f, "p0.toml", "summary = true\n");
	for (int i = 1; i < 40; i++) {
		snprintf(name, sizeof(name), "p%d.toml", i);
		snprintf(text, sizeof(text), "extends = \"p%d.toml\"\n", i - 1);
		write_file(f, name, text);
	}
	c = load_ok(f, "abs.toml");
	assert_true(c->summary);
	assert_true(c->dns_set);
	c = load_ok(f, "p39.toml");
	assert_true(c->summary);
	assert_path(f, c->extends, "p38.toml");
}

static void extends_cycles_are_reported_with_the_chain(void **state)
{
	struct fixture *f = *state;
	char *cwd = getcwd(NULL, 0);
	char want[1024];
	int r;

	write_file(f, "a.toml", "extends = \"b.toml\"\n");
	write_file(f, "b.toml", "summary = true\nextends = \"./a.toml\"\n");
	write_file(f, "self.toml", "extends = \"self.toml\"\n");
	assert_int_equal(chdir(f->dir), 0);
	r = cf_profile_load("a.toml", &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	snprintf(want, sizeof(want), "%s/b.toml:2:11: extends cycle: a.toml -> b.toml -> ./a.toml",
		 f->dir);
	assert_string_equal(f->err, want);
	r = cf_profile_load("self.toml", &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	assert_string_equal(f->err, "self.toml:1:11: extends cycle: self.toml -> self.toml");
	r = cf_profile_load("self.toml", &f->cfg, NULL, 0);
	assert_int_equal(r, -EINVAL);
	assert_int_equal(chdir(cwd), 0);
	free(cwd);
}

/* Found writing fuzz_profile: a path's control characters went into the message as written. */
static void paths_in_messages_show_control_characters_as_question_marks(void **state)
{
	struct fixture *f = *state;
	char want[1024];
	int r;

	write_file(f, "p.toml", "extends = \"a\\nb.toml\"\n");
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/p.toml:1:11: key 'extends': cannot read '%s/a?b.toml': No such file or "
		 "directory",
		 f->dir, f->dir);
	assert_string_equal(f->err, want);

	/* An escape sequence the terminal would act on. */
	write_file(f, "p.toml", "capture = \"no\\u001b[2Jdir/x.pcapng\"\n");
	cf_config_free(&f->cfg);
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/p.toml:1:11: key 'capture': cannot create '%s/no?[2Jdir/x.pcapng': "
		 "directory '%s/no?[2Jdir': No such file or directory",
		 f->dir, f->dir, f->dir);
	assert_string_equal(f->err, want);
}

static void a_missing_or_broken_parent_is_reported_where_it_is_named(void **state)
{
	struct fixture *f = *state;
	char want[1024];
	int r;

	write_file(f, "p.toml", "\n  extends = \"gone.toml\"\n");
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/p.toml:2:13: key 'extends': cannot read '%s/gone.toml': No such file or "
		 "directory",
		 f->dir, f->dir);
	assert_string_equal(f->err, want);

	write_file(f, "broken.toml", "offline = 1\n");
	write_file(f, "p.toml", "extends = \"broken.toml\"\n");
	r = cf_profile_load(path_in(f, "p.toml"), &f->cfg, f->err, sizeof(f->err));
	assert_int_equal(r, -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/broken.toml:1:11: key 'offline': expected a boolean (true or false), got "
		 "an integer",
		 f->dir);
	assert_string_equal(f->err, want);
	expect_error(f, "extends = \"\"\n", "1:11: key 'extends': empty path");
}

/* ---- merging with the command line -------------------------------------- */

static void command_line_flags_override_the_profile(void **state)
{
	struct fixture *f = *state;
	struct cf_config merged;
	struct cf_cli cli;
	char profile[512], err[512];
	char *argv[] = {"childflow",
			"--profile",
			profile,
			"--allow-cidr",
			"203.0.113.0/24",
			"--root",
			"--summary-format",
			"text",
			"--",
			"echo",
			"hi",
			NULL};
	struct cf_config *c;

	snprintf(profile, sizeof(profile), "%s/p.toml", f->dir);
	write_file(f, "p.toml",
		   "backend = \"rootless-internal\"\ncommand = [\"curl\", \"x\"]\n"
		   "allow_cidrs = [\"10.0.0.0/8\", \"192.0.2.0/24\"]\nsummary_format = \"json\"\n"
		   "deny_domains = [\"bad.example\"]\n");
	c = load_ok(f, "p.toml");
	assert_int_equal(cf_cli_parse(11, argv, &cli, err, sizeof(err)), 0);
	cf_config_init(&merged);
	/* defaults, then the profile chain, then the command line */
	assert_int_equal(cf_config_overlay(&merged, c), 0);
	assert_int_equal(cf_config_overlay(&merged, &cli.cfg), 0);
	assert_int_equal(merged.backend, CF_BACKEND_ROOTFUL);
	assert_int_equal(merged.command.n, 2);
	assert_string_equal(merged.command.v[0], "echo");
	assert_int_equal(merged.allow_cidrs.n, 1);
	cidr_is(&merged.allow_cidrs.v[0], "203.0.113.0/24");
	assert_int_equal(merged.summary_format, CF_FORMAT_TEXT);
	assert_int_equal(merged.deny_domains.n, 1);
	cf_config_free(&merged);
	cf_cli_free(&cli);
}

/* ---- dumping ------------------------------------------------------------ */

static char *dump_to_string(const struct cf_config *c, bool show_secrets, int *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	assert_non_null(m);
	*r = cf_profile_dump(c, show_secrets, m);
	assert_int_equal(fclose(m), 0);
	return buf;
}

static void strv_equal(const struct cf_strv *a, const struct cf_strv *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->v[i], b->v[i]);
}

static void opt_str_equal(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void cidrv_equal(const struct cf_cidrv *a, const struct cf_cidrv *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_true(cf_ip_equal(&a->v[i].ip, &b->v[i].ip));
		assert_int_equal(a->v[i].prefix, b->v[i].prefix);
	}
}

/* Every field but extends (which a dump shows as a comment) and the set mask. */
static void config_equal(const struct cf_config *a, const struct cf_config *b)
{
	assert_int_equal(a->backend, b->backend);
	strv_equal(&a->command, &b->command);
	opt_str_equal(a->capture, b->capture);
	assert_int_equal(a->capture_point, b->capture_point);
	assert_int_equal(a->dns_set, b->dns_set);
	if (a->dns_set)
		assert_true(cf_ip_equal(&a->dns, &b->dns));
	opt_str_equal(a->hosts_file, b->hosts_file);
	assert_int_equal(a->proxy.scheme, b->proxy.scheme);
	opt_str_equal(a->proxy.host, b->proxy.host);
	assert_int_equal(a->proxy.port, b->proxy.port);
	opt_str_equal(a->proxy.user, b->proxy.user);
	opt_str_equal(a->proxy.password, b->proxy.password);
	opt_str_equal(a->proxy_user, b->proxy_user);
	opt_str_equal(a->proxy_password, b->proxy_password);
	assert_int_equal(a->proxy_insecure, b->proxy_insecure);
	assert_int_equal(a->proxy_send_ip, b->proxy_send_ip);
	assert_int_equal(a->proxy_remote_dns, b->proxy_remote_dns);
	assert_int_equal(a->summary, b->summary);
	assert_int_equal(a->summary_format, b->summary_format);
	assert_int_equal(a->doctor_format, b->doctor_format);
	assert_int_equal(a->report_format, b->report_format);
	opt_str_equal(a->flow_log, b->flow_log);
	assert_int_equal(a->offline, b->offline);
	assert_int_equal(a->block_private, b->block_private);
	assert_int_equal(a->block_metadata, b->block_metadata);
	assert_int_equal(a->default_policy, b->default_policy);
	cidrv_equal(&a->allow_cidrs, &b->allow_cidrs);
	cidrv_equal(&a->deny_cidrs, &b->deny_cidrs);
	strv_equal(&a->allow_domains, &b->allow_domains);
	strv_equal(&a->allow_domains_exact, &b->allow_domains_exact);
	strv_equal(&a->deny_domains, &b->deny_domains);
	strv_equal(&a->deny_domains_exact, &b->deny_domains_exact);
	assert_int_equal(a->proxy_only, b->proxy_only);
	assert_int_equal(a->fail_on_leak, b->fail_on_leak);
	opt_str_equal(a->iface, b->iface);
	strv_equal(&a->mask, &b->mask);
	strv_equal(&a->unmask, &b->unmask);
	opt_str_equal(a->user, b->user);
}

/* Dump @c with secrets, load the dump, compare every field and the dumps themselves. */
static void assert_round_trip(struct fixture *f, const struct cf_config *c)
{
	char *first, *second;
	int r;

	first = dump_to_string(c, true, &r);
	assert_int_equal(r, 0);
	write_file(f, "dump.toml", first);
	load_ok(f, "dump.toml");
	config_equal(c, &f->cfg);
	assert_null(f->cfg.extends);
	second = dump_to_string(&f->cfg, true, &r);
	assert_int_equal(r, 0);
	if (!c->extends)
		assert_string_equal(first, second);
	free(first);
	free(second);
}

static void dump_of_every_key_loads_back_to_the_same_configuration(void **state)
{
	struct fixture *f = *state;
	struct cf_config copy;

	write_every_key_profile(f);
	load_ok(f, "p.toml");
	cf_config_init(&copy);
	assert_int_equal(cf_config_overlay(&copy, &f->cfg), 0);
	assert_round_trip(f, &copy);
	cf_config_free(&copy);
}

static void dump_of_the_defaults_loads_back_to_the_defaults(void **state)
{
	struct fixture *f = *state;
	struct cf_config c;

	cf_config_init(&c);
	assert_round_trip(f, &c);
}

static void dump_escapes_strings_so_they_load_back_unchanged(void **state)
{
	static const char *const odd[] = {
	    "quote\"back\\slash",
	    "tab\there",
	    "new\nline",
	    "cr\rbell\a",
	    "\x7f\x01\x1f",
	    "unicode \xc3\xa9 \xf0\x9f\x98\x80",
	    "",
	    "'single'",
	    "\"\"\"",
	    "# not a comment",
	};
	struct fixture *f = *state;
	struct cf_config c;

	cf_config_init(&c);
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		assert_int_equal(cf_strv_push(&c.command, odd[i]), 0);
	c.capture = abs_in(f, "with space and \"quote\".pcapng");
	c.iface = strdup("veth-x");
	c.user = strdup("1000");
	c.proxy_password = strdup("p\\a\"ss");
	assert_int_equal(
	    cf_proxy_parse("http://us%20er:p%25w@proxy.example:3128", &c.proxy, NULL, 0), 0);
	c.dns_set = true;
	assert_int_equal(cf_ip_parse("192.0.2.1", &c.dns), 0);
	assert_int_equal(cf_strv_push(&c.deny_domains_exact, "*.wild.example"), 0);
	assert_round_trip(f, &c);
	cf_config_free(&c);
}

static void dump_lists_every_key_in_key_order(void **state)
{
	struct fixture *f = *state;
	struct cf_config c;
	const char *pos;
	char *text;
	int r;

	(void)f;
	cf_config_init(&c);
	text = dump_to_string(&c, false, &r);
	assert_int_equal(r, 0);
	pos = text;
	for (unsigned k = 0; k < CF_KEY__COUNT; k++) {
		char key[64];
		const char *hit;

		/* "\nkey = " or "\n# key: not set" */
		snprintf(key, sizeof(key), "\n%s = ", cf_key_name((enum cf_key)k));
		hit = strstr(pos, key);
		if (!hit) {
			snprintf(key, sizeof(key), "\n# %s: not set", cf_key_name((enum cf_key)k));
			hit = strstr(pos, key);
		}
		if (!hit)
			fail_msg("key %s missing or out of order in:\n%s",
				 cf_key_name((enum cf_key)k), text);
		pos = hit + 1;
	}
	assert_non_null(strstr(text, "\nbackend = \"rootless-internal\"\n"));
	assert_non_null(strstr(text, "\ncommand = []\n"));
	assert_non_null(strstr(text, "\n# dns: not set (the host's resolvers)\n"));
	assert_non_null(strstr(text, "\nallow_cidrs = []\n"));
	free(text);
}

static void dump_shows_extends_as_a_comment_and_paths_absolute(void **state)
{
	struct fixture *f = *state;
	char *text, want[512];
	int r;

	write_file(f, "base.toml", "flow_log = \"f.jsonl\"\n");
	write_file(f, "p.toml", "extends = \"base.toml\"\nallow_domains = [\"A.example\"]\n");
	load_ok(f, "p.toml");
	text = dump_to_string(&f->cfg, false, &r);
	assert_int_equal(r, 0);
	snprintf(want, sizeof(want),
		 "\n# extends = \"%s/base.toml\"  (already merged into the values below)\n",
		 f->dir);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "\nflow_log = \"%s/f.jsonl\"\n", f->dir);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "\nallow_domains = [\n    \"a.example\",\n]\n"));
	free(text);
}

static void dump_masks_passwords_unless_asked(void **state)
{
	struct fixture *f = *state;
	char *masked, *shown;
	int r;

	write_file(f, "p.toml",
		   "proxy = \"socks5://bob:urisecret@proxy.example:1080\"\n"
		   "proxy_user = \"alice\"\nproxy_password = \"keysecret\"\n");
	load_ok(f, "p.toml");
	masked = dump_to_string(&f->cfg, false, &r);
	assert_int_equal(r, 0);
	assert_null(strstr(masked, "secret"));
	assert_non_null(strstr(masked, "\nproxy = \"socks5://bob:***@proxy.example:1080\"\n"));
	assert_non_null(strstr(masked, "\nproxy_password = \"********\"\n"));
	assert_non_null(strstr(masked, "# Passwords are masked"));
	assert_non_null(strstr(masked, "\nproxy_user = \"alice\"\n"));
	shown = dump_to_string(&f->cfg, true, &r);
	assert_int_equal(r, 0);
	assert_non_null(strstr(shown, "\nproxy = \"socks5://bob:urisecret@proxy.example:1080\"\n"));
	assert_non_null(strstr(shown, "\nproxy_password = \"keysecret\"\n"));
	assert_non_null(strstr(shown, "# This dump contains passwords"));
	free(masked);
	free(shown);
}

static void dump_refuses_strings_toml_cannot_hold_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct cf_config c;
	char *text;
	int r;

	(void)f;
	cf_config_init(&c);
	assert_int_equal(cf_strv_push(&c.command, "printf"), 0);
	assert_int_equal(cf_strv_push(&c.command, "\xff\xfe"), 0);
	text = dump_to_string(&c, false, &r);
	assert_int_equal(r, -EILSEQ);
	assert_true(text == NULL || text[0] == '\0');
	free(text);
	cf_config_free(&c);
}

static void dump_refuses_a_value_outside_its_choices(void **state)
{
	struct cf_config c;
	char *text;
	int r;

	(void)state;
	cf_config_init(&c);
	c.backend = (enum cf_backend)99;
	text = dump_to_string(&c, false, &r);
	assert_int_equal(r, -EINVAL);
	free(text);
}

static void dump_reports_a_failing_stream(void **state)
{
	struct fixture *f = *state;
	struct cf_config c;
	FILE *full = fopen("/dev/full", "w");

	(void)f;
	if (!full)
		skip();
	setvbuf(full, NULL, _IONBF, 0);
	cf_config_init(&c);
	assert_int_equal(cf_profile_dump(&c, false, full), -EIO);
	fclose(full);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(every_key_is_loaded_with_its_type_and_marked_set, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(an_empty_profile_sets_nothing_and_keeps_the_defaults,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(alternative_values_of_every_choice_key_are_accepted,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(relative_paths_resolve_against_the_profile_directory,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(unknown_keys_are_errors_with_a_suggestion, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(wrong_types_are_errors_naming_line_column_and_key,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(invalid_values_are_errors_naming_the_key_and_value,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(long_values_and_keys_are_cut_in_messages, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(key_errors_without_room_for_a_message_still_fail, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(proxy_errors_never_show_the_password, setup, teardown),
	    cmocka_unit_test_setup_teardown(files_are_checked_like_the_command_line_checks_them,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(toml_errors_name_the_file_line_and_column, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(unreadable_profiles_return_errno, setup, teardown),
	    cmocka_unit_test_setup_teardown(extends_merges_the_chain_parent_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(extends_accepts_an_absolute_path_and_long_chains, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(extends_cycles_are_reported_with_the_chain, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		a_missing_or_broken_parent_is_reported_where_it_is_named, setup, teardown),
	    cmocka_unit_test_setup_teardown(command_line_flags_override_the_profile, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(dump_of_every_key_loads_back_to_the_same_configuration,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(dump_of_the_defaults_loads_back_to_the_defaults, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(dump_escapes_strings_so_they_load_back_unchanged, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(dump_lists_every_key_in_key_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(dump_shows_extends_as_a_comment_and_paths_absolute,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(dump_masks_passwords_unless_asked, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		dump_refuses_strings_toml_cannot_hold_and_writes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(dump_refuses_a_value_outside_its_choices, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(dump_reports_a_failing_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		paths_in_messages_show_control_characters_as_question_marks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
