// SPDX-License-Identifier: MIT
/* Unit tests for src/config/proxyuri.c: proxy URI parsing, formatting and masking. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/proxyuri.h"
#include "util/cleanup.h"

#define SECRET "Sup3rS3cretPw"

static struct cf_proxy parse_ok(const char *uri)
{
	struct cf_proxy p;
	char err[256] = "";

	if (cf_proxy_parse(uri, &p, err, sizeof(err)) != 0)
		fail_msg("rejected '%s': %s", uri, err);
	return p;
}

/* Parse @uri expecting failure; check the message has @want and never SECRET. */
static void parse_bad(const char *uri, const char *want)
{
	struct cf_proxy p;
	char err[512] = "";

	if (cf_proxy_parse(uri, &p, err, sizeof(err)) != -EINVAL)
		fail_msg("accepted '%s'", uri);
	assert_int_equal(p.scheme, CF_PROXY_NONE);
	assert_null(p.host);
	assert_null(p.user);
	assert_null(p.password);
	assert_int_equal(p.port, 0);
	if (!strstr(err, want))
		fail_msg("message for '%s' lacks '%s': %s", uri, want, err);
	if (strstr(err, SECRET) || strstr(err, "S3cret"))
		fail_msg("message for '%s' leaks the password: %s", uri, err);
}

static void test_parse_each_scheme_with_explicit_port(void **state)
{
	struct cf_proxy p;

	(void)state;
	p = parse_ok("http://proxy.example:3128");
	assert_int_equal(p.scheme, CF_PROXY_HTTP);
	assert_string_equal(p.host, "proxy.example");
	assert_int_equal(p.port, 3128);
	assert_null(p.user);
	assert_null(p.password);
	cf_proxy_free(&p);

	p = parse_ok("https://proxy.example.com:8443");
	assert_int_equal(p.scheme, CF_PROXY_HTTPS);
	assert_int_equal(p.port, 8443);
	cf_proxy_free(&p);

	p = parse_ok("socks5://host.docker.internal:10080");
	assert_int_equal(p.scheme, CF_PROXY_SOCKS5);
	assert_string_equal(p.host, "host.docker.internal");
	assert_int_equal(p.port, 10080);
	cf_proxy_free(&p);

	p = parse_ok("HTTP://127.0.0.1:8080/");
	assert_int_equal(p.scheme, CF_PROXY_HTTP);
	assert_string_equal(p.host, "127.0.0.1");
	assert_int_equal(p.port, 8080);
	cf_proxy_free(&p);

	p = parse_ok("socks5://h:65535");
	assert_int_equal(p.port, 65535);
	cf_proxy_free(&p);
	p = parse_ok("socks5://h:1");
	assert_int_equal(p.port, 1);
	cf_proxy_free(&p);
}

static void test_parse_default_ports(void **state)
{
	struct cf_proxy p;

	(void)state;
	p = parse_ok("http://proxy.example");
	assert_int_equal(p.port, 80);
	cf_proxy_free(&p);
	p = parse_ok("https://proxy.example/");
	assert_int_equal(p.port, 443);
	cf_proxy_free(&p);
	p = parse_ok("socks5://proxy.example");
	assert_int_equal(p.port, 1080);
	cf_proxy_free(&p);
	p = parse_ok("socks5://[2001:db8::1]");
	assert_int_equal(p.port, 1080);
	assert_string_equal(p.host, "2001:db8::1");
	cf_proxy_free(&p);
}

static void test_parse_bracketed_ipv6(void **state)
{
	struct cf_proxy p;

	(void)state;
	p = parse_ok("http://[2001:db8::1]:3128");
	assert_string_equal(p.host, "2001:db8::1");
	assert_int_equal(p.port, 3128);
	cf_proxy_free(&p);
	p = parse_ok("socks5://u:p@[::1]:1080/");
	assert_string_equal(p.host, "::1");
	assert_string_equal(p.user, "u");
	cf_proxy_free(&p);
}

static void test_parse_userinfo_with_percent_decoding(void **state)
{
	struct cf_proxy p;

	(void)state;
	p = parse_ok("http://alice:" SECRET "@proxy.example:8080");
	assert_string_equal(p.user, "alice");
	assert_string_equal(p.password, SECRET);
	assert_string_equal(p.host, "proxy.example");
	cf_proxy_free(&p);

	p = parse_ok("socks5://a%40b%2ec:p%3Aw%2F%25%20x@h:1080");
	assert_string_equal(p.user, "a@b.c");
	assert_string_equal(p.password, "p:w/% x");
	cf_proxy_free(&p);

	p = parse_ok("http://alice@h:1");
	assert_string_equal(p.user, "alice");
	assert_null(p.password);
	cf_proxy_free(&p);

	p = parse_ok("http://alice:@h:1");
	assert_string_equal(p.password, "");
	cf_proxy_free(&p);

	/* a raw '@', ':' or '/' in the password still belongs to the password */
	p = parse_ok("http://u:p@s:s/w@proxy.example:3128");
	assert_string_equal(p.user, "u");
	assert_string_equal(p.password, "p@s:s/w");
	assert_string_equal(p.host, "proxy.example");
	assert_int_equal(p.port, 3128);
	cf_proxy_free(&p);
}

static void test_parse_rejects_unknown_or_missing_scheme(void **state)
{
	(void)state;
	parse_bad("ftp://h:21", "unsupported scheme 'ftp'");
	parse_bad("socks5h://h:1080", "use http://, https:// or socks5://");
	parse_bad("socks4://u:" SECRET "@h:1080", "'socks4'");
	parse_bad("proxy.example:3128", "missing scheme");
	parse_bad("u:" SECRET "@proxy.example:3128", "missing scheme");
	parse_bad("u:" SECRET "@http://proxy.example:3128", "missing scheme");
	parse_bad("//proxy.example:3128", "missing scheme");
	parse_bad("http:/proxy.example:3128", "missing scheme");
}

static void test_parse_rejects_missing_host(void **state)
{
	(void)state;
	parse_bad("http://", "missing host");
	parse_bad("http://:8080", "missing host");
	parse_bad("http://u:" SECRET "@", "missing host");
	parse_bad("http://u:" SECRET "@:3128", "missing host");
	parse_bad("http:///", "missing host");
}

static void test_parse_rejects_bad_ports(void **state)
{
	(void)state;
	parse_bad("http://h:0", "port 0 out of range");
	parse_bad("http://u:" SECRET "@h:65536", "port 65536 out of range");
	parse_bad("http://h:abc", "invalid port 'abc'");
	parse_bad("http://u:" SECRET "@h:8o8o", "invalid port '8o8o'");
	parse_bad("http://h:-1", "invalid port '-1'");
	parse_bad("http://h:+80", "invalid port '+80'");
	parse_bad("http://h:99999999", "invalid port '99999999'");
	parse_bad("http://h:", "missing port");
	parse_bad("http://h:/", "missing port");
	parse_bad("socks5://[::1]:x", "invalid port 'x'");
}

static void test_parse_rejects_bad_hosts(void **state)
{
	(void)state;
	parse_bad("http://2001:db8::1:8080", "must be in brackets");
	parse_bad("http://u:" SECRET "@::1", "must be in brackets");
	parse_bad("http://[2001:db8::zz]:80", "invalid IPv6 address '2001:db8::zz'");
	parse_bad("http://[192.0.2.1]:80", "invalid IPv6 address");
	parse_bad("http://[fe80::1%25eth0]:80", "invalid IPv6 address");
	parse_bad("http://[::1:80", "missing ']'");
	parse_bad("http://[::1]x", "unexpected 'x'");
	parse_bad("http://1.2.3:80", "invalid host '1.2.3'");
	parse_bad("http://256.1.1.1:80", "invalid host");
	parse_bad("http://-proxy.example:80", "invalid host");
	parse_bad("http://proxy-.example:80", "invalid host");
	parse_bad("http://pro%78y:80", "invalid host");
	parse_bad("http://a..b:80", "invalid host");
	parse_bad("http://pr!xy:80", "invalid host");
}

static void test_parse_rejects_path_query_fragment_and_spaces(void **state)
{
	(void)state;
	parse_bad("http://h:80/path", "no path ('/path')");
	parse_bad("http://h//", "no path");
	parse_bad("http://h:80?x=1", "no query");
	parse_bad("http://h:80/?x=1", "no path");
	parse_bad("http://h#frag", "no fragment");
	parse_bad("http://u:" SECRET "@h:80/x", "no path");
	parse_bad(" http://h:80", "space or control");
	parse_bad("http://h:80 ", "space or control");
	parse_bad("http://u:Sup3r S3cretPw@h:80", "space or control");
	parse_bad("http://u:" SECRET "\n@h:80", "space or control");
	parse_bad("", "empty proxy URI");
}

static void test_parse_rejects_bad_userinfo(void **state)
{
	char uri[700];

	(void)state;
	parse_bad("http://:" SECRET "@h:80", "empty user name");
	parse_bad("http://@h:80", "empty user name");
	parse_bad("http://u%zz:" SECRET "@h:80", "bad percent-encoding in the user name");
	parse_bad("http://u:" SECRET "%4@h:80", "bad percent-encoding in the password");
	parse_bad("http://u:" SECRET "%@h:80", "bad percent-encoding in the password");
	parse_bad("http://u:" SECRET "%00@h:80", "bad percent-encoding in the password");

	snprintf(uri, sizeof(uri), "socks5://%0256d:" SECRET "@h:1080", 0);
	parse_bad(uri, "socks5 user names are limited to 255 bytes");
	snprintf(uri, sizeof(uri), "socks5://u:" SECRET "%0250d@h:1080", 0);
	parse_bad(uri, "socks5 passwords are limited to 255 bytes");
	/* http has no such limit */
	snprintf(uri, sizeof(uri), "http://u:" SECRET "%0250d@h:1080", 0);
	struct cf_proxy p = parse_ok(uri);
	assert_int_equal(strlen(p.password), strlen(SECRET) + 250);
	cf_proxy_free(&p);
}

static void test_error_message_masks_password_but_shows_user(void **state)
{
	struct cf_proxy p;
	char err[256];

	(void)state;
	assert_int_equal(cf_proxy_parse("http://alice:" SECRET "@h:abc", &p, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "invalid proxy URI 'http://alice:***@h:abc': invalid port 'abc'");
	/* a percent-encoded password is masked in its encoded form too */
	assert_int_equal(cf_proxy_parse("ftp://bob:%53up3rS3cretPw@h", &p, err, sizeof(err)),
			 -EINVAL);
	assert_null(strstr(err, "up3rS3cret"));
	assert_non_null(strstr(err, "bob:***@h"));
}

/* Found writing fuzz_uri: an empty password was masked again and again, filling the message. */
static void test_error_message_masks_empty_password_once(void **state)
{
	struct cf_proxy p;
	char err[256];

	(void)state;
	assert_int_equal(cf_proxy_parse("socks5://u:@host:99999", &p, err, sizeof(err)), -EINVAL);
	assert_string_equal(
	    err, "invalid proxy URI 'socks5://u:***@host:99999': port 99999 out of range "
		 "1-65535");
}

static void test_parse_tolerates_tiny_or_absent_error_buffer(void **state)
{
	struct cf_proxy p;
	char err[8];

	(void)state;
	assert_int_equal(cf_proxy_parse("ftp://h", &p, NULL, 0), -EINVAL);
	assert_int_equal(cf_proxy_parse(NULL, &p, NULL, 0), -EINVAL);
	assert_int_equal(cf_proxy_parse("ftp://u:" SECRET "@h", &p, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

static void test_scheme_names(void **state)
{
	(void)state;
	assert_string_equal(cf_proxy_scheme_name(CF_PROXY_HTTP), "http");
	assert_string_equal(cf_proxy_scheme_name(CF_PROXY_HTTPS), "https");
	assert_string_equal(cf_proxy_scheme_name(CF_PROXY_SOCKS5), "socks5");
	assert_string_equal(cf_proxy_scheme_name(CF_PROXY_NONE), "none");
}

static void test_format_writes_uri_with_explicit_port_and_brackets(void **state)
{
	struct cf_proxy p;
	char buf[256];

	(void)state;
	p = parse_ok("http://proxy.example");
	assert_int_equal(cf_proxy_format(&p, false, buf, sizeof(buf)),
			 (int)strlen("http://proxy.example:80"));
	assert_string_equal(buf, "http://proxy.example:80");
	cf_proxy_free(&p);

	p = parse_ok("socks5://[2001:db8::1]");
	cf_proxy_format(&p, false, buf, sizeof(buf));
	assert_string_equal(buf, "socks5://[2001:db8::1]:1080");
	cf_proxy_free(&p);

	p = parse_ok("HTTPS://user@192.0.2.1");
	cf_proxy_format(&p, true, buf, sizeof(buf));
	assert_string_equal(buf, "https://user@192.0.2.1:443");
	cf_proxy_free(&p);
}

static void test_format_masks_or_encodes_password(void **state)
{
	struct cf_proxy p, back;
	char buf[256];

	(void)state;
	p = parse_ok("socks5://a%40b:p%3Aw%2F%25%20" SECRET "@[::1]:1080");
	assert_true(cf_proxy_format(&p, true, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "socks5://a%40b:***@[::1]:1080");

	assert_true(cf_proxy_format(&p, false, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "socks5://a%40b:p%3Aw%2F%25%20" SECRET "@[::1]:1080");
	back = parse_ok(buf);
	assert_int_equal(back.scheme, p.scheme);
	assert_string_equal(back.host, p.host);
	assert_int_equal(back.port, p.port);
	assert_string_equal(back.user, p.user);
	assert_string_equal(back.password, p.password);
	cf_proxy_free(&back);
	cf_proxy_free(&p);
}

static void test_format_reports_small_buffer_and_none(void **state)
{
	struct cf_proxy none = {.scheme = CF_PROXY_NONE};
	struct cf_proxy p = parse_ok("http://u:" SECRET "@proxy.example:3128");
	char buf[24];

	(void)state;
	assert_int_equal(cf_proxy_format(&none, false, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(cf_proxy_format(&p, false, buf, sizeof(buf)), -ENOSPC);
	assert_null(strstr(buf, "S3"));
	assert_string_equal(buf, "");
	assert_int_equal(cf_proxy_format(&p, false, buf, 0), -ENOSPC);
	cf_proxy_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_each_scheme_with_explicit_port),
	    cmocka_unit_test(test_parse_default_ports),
	    cmocka_unit_test(test_parse_bracketed_ipv6),
	    cmocka_unit_test(test_parse_userinfo_with_percent_decoding),
	    cmocka_unit_test(test_parse_rejects_unknown_or_missing_scheme),
	    cmocka_unit_test(test_parse_rejects_missing_host),
	    cmocka_unit_test(test_parse_rejects_bad_ports),
	    cmocka_unit_test(test_parse_rejects_bad_hosts),
	    cmocka_unit_test(test_parse_rejects_path_query_fragment_and_spaces),
	    cmocka_unit_test(test_parse_rejects_bad_userinfo),
	    cmocka_unit_test(test_error_message_masks_password_but_shows_user),
	    cmocka_unit_test(test_error_message_masks_empty_password_once),
	    cmocka_unit_test(test_parse_tolerates_tiny_or_absent_error_buffer),
	    cmocka_unit_test(test_scheme_names),
	    cmocka_unit_test(test_format_writes_uri_with_explicit_port_and_brackets),
	    cmocka_unit_test(test_format_masks_or_encodes_password),
	    cmocka_unit_test(test_format_reports_small_buffer_and_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
