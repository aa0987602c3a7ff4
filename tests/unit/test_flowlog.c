// SPDX-License-Identifier: MIT
/*
 * Tests of the flow-log writer and the live summary: the exact shape of
 * every event (each line parsed back with jansson: every field present, in
 * order, with the right type and value), one line per event, file mode and
 * truncation, escaping of every control character, quotes, backslashes and
 * invalid UTF-8, names normalised, ICMP without ports, write errors, and the
 * summary in text and JSON from a fixed sequence of events.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "obs/flowlog.h"
#include "obs/text.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_flowlog.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/flow.jsonl", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct cf_ip ip(const char *s)
{
	struct cf_ip a;

	assert_int_equal(cf_ip_parse(s, &a), 0);
	return a;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Parse line @index (0-based) of the log; assert the log has exactly @nlines lines. */
static json_t *line_of(const char *path, size_t nlines, size_t index)
{
	size_t len, count = 0;
	char *buf = slurp(path, &len);
	char *p = buf, *nl;
	json_t *j = NULL;
	json_error_t err;

	assert_true(len > 0);
	assert_int_equal(buf[len - 1], '\n');
	while ((nl = memchr(p, '\n', len - (size_t)(p - buf)))) {
		if (count == index) {
			j = json_loadb(p, (size_t)(nl - p), 0, &err);
			if (!j)
				fail_msg("line %zu is not JSON: %s", index + 1, err.text);
		}
		count++;
		p = nl + 1;
	}
	assert_int_equal(count, nlines);
	free(buf);
	assert_non_null(j);
	return j;
}

/* One expected field: name, jansson type, and (for strings/integers) the value. */
struct field {
	const char *name;
	json_type type;
	const char *s;
	json_int_t i;
};

/* clang-format off */
#define S(n, v) { n, JSON_STRING, v, 0 }
#define I(n, v) { n, JSON_INTEGER, NULL, v }
#define N(n) { n, JSON_NULL, NULL, 0 }
#define T(n) { n, JSON_TRUE, NULL, 0 }
#define F(n) { n, JSON_FALSE, NULL, 0 }
#define A(n) { n, JSON_ARRAY, NULL, 0 }
#define ANY_INT(n) { n, JSON_INTEGER, NULL, -1 }
/* clang-format on */

/* Assert @j has exactly @fields, in this order, with these types and values. */
static void expect_fields(const json_t *j, const struct field *fields, size_t n)
{
	void *it = json_object_iter((json_t *)j);

	assert_int_equal(json_object_size(j), n);
	for (size_t i = 0; i < n; i++, it = json_object_iter_next((json_t *)j, it)) {
		const json_t *v;

		assert_non_null(it);
		assert_string_equal(json_object_iter_key(it), fields[i].name);
		v = json_object_iter_value(it);
		if (json_typeof(v) != fields[i].type)
			fail_msg("field %s has type %d, expected %d", fields[i].name,
				 json_typeof(v), fields[i].type);
		if (fields[i].type == JSON_STRING && fields[i].s)
			assert_string_equal(json_string_value(v), fields[i].s);
		if (fields[i].type == JSON_INTEGER && fields[i].i >= 0)
			assert_int_equal(json_integer_value(v), fields[i].i);
	}
}

#define EXPECT_FIELDS(j, ...)                                                                      \
	do {                                                                                       \
		const struct field f_[] = {__VA_ARGS__};                                           \
		expect_fields(j, f_, sizeof(f_) / sizeof(f_[0]));                                  \
	} while (0)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- opening ------------------------------------------------------------------ */

static void log_file_is_created_with_mode_0600(void **state)
{
	struct fixture *f = *state;
	struct cf_obs *o;
	struct stat st;
	mode_t old = umask(0);

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	umask(old);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	cf_obs_close(o);
}

static void existing_log_is_truncated(void **state)
{
	struct fixture *f = *state;
	struct cf_obs *o;
	struct stat st;
	FILE *old = fopen(f->path, "w");

	assert_non_null(old);
	fputs("old content that must go\n", old);
	fclose(old);
	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_close(o);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 0);
}

static void open_errors_are_negative_errno(void **state)
{
	struct fixture *f = *state;
	struct cf_obs *o = NULL;
	char path[256];

	snprintf(path, sizeof(path), "%s/missing/flow.jsonl", f->dir);
	assert_int_equal(cf_obs_open(path, &o), -ENOENT);
	assert_int_equal(cf_obs_open(f->dir, &o), -EISDIR);
	assert_null(o);
}

static void log_fd_is_close_on_exec(void **state)
{
	struct fixture *f = *state;
	struct cf_obs *o;
	char link[64], target[256];
	int found = 0;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	for (int fd = 3; fd < 1024; fd++) {
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, f->path) == 0) {
			assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
			assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
			found++;
		}
	}
	assert_int_equal(found, 1);
	cf_obs_close(o);
}

static void without_a_path_events_are_only_aggregated(void **state)
{
	struct cf_ip a = ip("203.0.113.5");
	struct cf_obs *o;

	(void)state;
	assert_int_equal(cf_obs_open(NULL, &o), 0);
	cf_obs_policy_violation(o, 1, "tcp", &a, 25, "deny_cidr", "--deny-cidr", "203.0.113.0/24",
				NULL, "denied");
	cf_obs_policy_violation(o, 2, "udp", &a, 53, "offline", "--offline", NULL, NULL, "offline");
	assert_int_equal(cf_obs_violations(o), 2);
	assert_int_equal(cf_obs_flow_log_error(o), 0);
	cf_obs_close(o);
}

static void null_obs_is_harmless(void **state)
{
	struct cf_ip a = ip("203.0.113.5");

	(void)state;
	cf_obs_connect_attempt(NULL, 1, &a, 80, false, NULL);
	cf_obs_runtime_failure(NULL, "run", "x", "y");
	assert_int_equal(cf_obs_violations(NULL), 0);
	assert_int_equal(cf_obs_flow_log_error(NULL), 0);
	assert_int_equal(cf_obs_dropped_events(NULL), 0);
	cf_obs_close(NULL);
}

/* --- the shape of every event ---------------------------------------------- */

static void dns_query_has_every_field_in_order(void **state)
{
	struct fixture *f = *state;
	struct cf_ip srv = ip("10.0.2.3");
	struct cf_obs *o;
	int64_t before = now_ms(), after;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_dns_query(o, 7, "udp", &srv, 53, "WWW.Example.COM.", "AAAA");
	after = now_ms();
	cf_obs_close(o);
	j = line_of(f->path, 1, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "dns_query"),
		      I("flow_id", 7), S("protocol", "udp"), S("server", "10.0.2.3:53"),
		      S("server_ip", "10.0.2.3"), I("server_port", 53),
		      S("qname", "www.example.com"), S("qtype", "AAAA"));
	assert_true(json_integer_value(json_object_get(j, "ts_ms")) >= before);
	assert_true(json_integer_value(json_object_get(j, "ts_ms")) <= after);
	json_decref(j);
}

static void dns_query_unknowns_are_null_and_qtype_unknown(void **state)
{
	struct fixture *f = *state;
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_dns_query(o, 1, "tcp", NULL, 0, NULL, NULL);
	cf_obs_dns_query(o, 2, "udp", NULL, 0, ".", "A");
	cf_obs_close(o);
	j = line_of(f->path, 2, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "dns_query"),
		      I("flow_id", 1), S("protocol", "tcp"), N("server"), N("server_ip"),
		      N("server_port"), N("qname"), S("qtype", "unknown"));
	json_decref(j);
	j = line_of(f->path, 2, 1);
	assert_string_equal(json_string_value(json_object_get(j, "qname")), "."); /* the root */
	json_decref(j);
}

static void dns_answer_has_every_field_and_the_answer_ips(void **state)
{
	struct fixture *f = *state;
	struct cf_ip srv = ip("2001:db8::53");
	struct cf_ip ans[] = {ip("198.51.100.7"), ip("2001:db8::7")};
	struct cf_obs *o;
	json_t *j, *ips;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_dns_answer(o, 3, "udp", &srv, 53, "example.com", "A", "relayed", 77, ans, 2);
	cf_obs_dns_answer(o, 4, "tcp", &srv, 5353, "blocked.example", "A", "synthetic_empty", 33,
			  NULL, 0);
	cf_obs_close(o);
	j = line_of(f->path, 2, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "dns_answer"),
		      I("flow_id", 3), S("protocol", "udp"), S("server", "[2001:db8::53]:53"),
		      S("server_ip", "2001:db8::53"), I("server_port", 53),
		      S("qname", "example.com"), S("qtype", "A"), S("mode", "relayed"),
		      I("bytes", 77), A("answer_ips"));
	ips = json_object_get(j, "answer_ips");
	assert_int_equal(json_array_size(ips), 2);
	assert_string_equal(json_string_value(json_array_get(ips, 0)), "198.51.100.7");
	assert_string_equal(json_string_value(json_array_get(ips, 1)), "2001:db8::7");
	json_decref(j);
	j = line_of(f->path, 2, 1);
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "synthetic_empty");
	assert_int_equal(json_integer_value(json_object_get(j, "server_port")), 5353);
	assert_int_equal(json_array_size(json_object_get(j, "answer_ips")), 0);
	json_decref(j);
}

static void connect_attempt_has_every_field_with_process(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("198.51.100.7");
	struct cf_obs_proc p = {.pid = 4242, .comm = "curl", .exe = "/usr/bin/curl"};
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_connect_attempt(o, 9, &dst, 443, true, &p);
	cf_obs_connect_attempt(o, 10, &dst, 80, false, NULL);
	cf_obs_close(o);
	j = line_of(f->path, 2, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "connect_attempt"),
		      I("flow_id", 9), S("protocol", "tcp"), S("remote_addr", "198.51.100.7:443"),
		      S("remote_ip", "198.51.100.7"), I("remote_port", 443), T("via_proxy"),
		      I("pid", 4242), S("comm", "curl"), S("exe", "/usr/bin/curl"),
		      S("direction", "outbound"));
	json_decref(j);
	j = line_of(f->path, 2, 1);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "connect_attempt"),
		      I("flow_id", 10), S("protocol", "tcp"), S("remote_addr", "198.51.100.7:80"),
		      S("remote_ip", "198.51.100.7"), I("remote_port", 80), F("via_proxy"),
		      N("pid"), N("comm"), N("exe"), S("direction", "outbound"));
	json_decref(j);
}

static void unknown_process_fields_are_null(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("198.51.100.7");
	struct cf_obs_proc p = {.pid = 0, .comm = "", .exe = NULL};
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_connect_attempt(o, 1, &dst, 80, false, &p);
	cf_obs_close(o);
	j = line_of(f->path, 1, 0);
	assert_true(json_is_null(json_object_get(j, "pid")));
	assert_true(json_is_null(json_object_get(j, "comm")));
	assert_true(json_is_null(json_object_get(j, "exe")));
	json_decref(j);
}

static void connect_result_ok_and_error(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("2001:db8::7");
	struct cf_obs_proc p = {.pid = 12, .comm = "wget", .exe = "/usr/bin/wget"};
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_connect_result(o, 5, &dst, 443, true, NULL, &p, "socket");
	cf_obs_connect_result(o, 6, &dst, 8443, false, "connection refused", NULL, "relay");
	cf_obs_close(o);
	j = line_of(f->path, 2, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "connect_result"),
		      I("flow_id", 5), S("protocol", "tcp"), S("remote_addr", "[2001:db8::7]:443"),
		      S("remote_ip", "2001:db8::7"), I("remote_port", 443), T("via_proxy"),
		      S("status", "ok"), N("error"), I("pid", 12), S("comm", "wget"),
		      S("exe", "/usr/bin/wget"), S("path", "socket"), S("direction", "outbound"));
	json_decref(j);
	j = line_of(f->path, 2, 1);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "connect_result"),
		      I("flow_id", 6), S("protocol", "tcp"), S("remote_addr", "[2001:db8::7]:8443"),
		      S("remote_ip", "2001:db8::7"), I("remote_port", 8443), F("via_proxy"),
		      S("status", "error"), S("error", "connection refused"), N("pid"), N("comm"),
		      N("exe"), S("path", "relay"), S("direction", "outbound"));
	json_decref(j);
}

static void policy_violation_has_every_field(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("203.0.113.66");
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_policy_violation(o, 11, "tcp", &dst, 443, "deny_cidr", "--deny-cidr",
				"203.0.113.64/26", "", "203.0.113.66 is in 203.0.113.64/26");
	cf_obs_policy_violation(o, 12, "dns", &dst, 53, "deny_domain", "--deny-domain", NULL,
				"example.org", "under example.org");
	cf_obs_policy_violation(o, 13, "udp", &dst, 1900, "multicast", NULL, "224.0.0.0/4", NULL,
				"multicast");
	cf_obs_close(o);
	j = line_of(f->path, 3, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "policy_violation"),
		      I("flow_id", 11), S("protocol", "tcp"), S("remote", "203.0.113.66:443"),
		      S("remote_ip", "203.0.113.66"), I("remote_port", 443), S("action", "deny"),
		      S("reason_code", "deny_cidr"), S("control", "--deny-cidr"),
		      S("matched_cidr", "203.0.113.64/26"), N("matched_domain"),
		      S("reason", "203.0.113.66 is in 203.0.113.64/26"));
	json_decref(j);
	j = line_of(f->path, 3, 1);
	assert_true(json_is_null(json_object_get(j, "matched_cidr")));
	assert_string_equal(json_string_value(json_object_get(j, "matched_domain")), "example.org");
	assert_string_equal(json_string_value(json_object_get(j, "protocol")), "dns");
	json_decref(j);
	/* schema v1 types control as a string: a built-in denial names itself */
	j = line_of(f->path, 3, 2);
	assert_string_equal(json_string_value(json_object_get(j, "control")), "built-in");
	json_decref(j);
}

static void icmp_addresses_have_no_port(void **state)
{
	struct fixture *f = *state;
	struct cf_ip v4 = ip("198.51.100.99"), v6 = ip("2001:db8::99");
	struct cf_obs_dgram d = {.protocol = "icmpv6", .ip = &v6, .port = 77};
	struct cf_obs_traffic t = {.bytes_sent = 64, .bytes_received = 64};
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_policy_violation(o, 1, "icmpv4", &v4, 1234, "default_deny", "--default-policy", NULL,
				NULL, "no allow rule");
	cf_obs_datagram_flow_start(o, 2, &d, NULL);
	cf_obs_datagram_flow_end(o, 2, &d, &t);
	cf_obs_close(o);
	j = line_of(f->path, 3, 0);
	assert_string_equal(json_string_value(json_object_get(j, "remote")), "198.51.100.99");
	assert_string_equal(json_string_value(json_object_get(j, "remote_ip")), "198.51.100.99");
	assert_true(json_is_null(json_object_get(j, "remote_port")));
	json_decref(j);
	for (size_t i = 1; i < 3; i++) {
		j = line_of(f->path, 3, i);
		assert_string_equal(json_string_value(json_object_get(j, "protocol")), "icmpv6");
		assert_string_equal(json_string_value(json_object_get(j, "remote_addr")),
				    "2001:db8::99");
		assert_true(json_is_null(json_object_get(j, "remote_port")));
		json_decref(j);
	}
}

static void flow_end_has_every_field(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("203.0.113.123");
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_flow_end(o, 15, &dst, 123, 48, 96, 1000);
	cf_obs_flow_end(o, 16, NULL, 0, UINT64_MAX, 0, 0);
	cf_obs_close(o);
	j = line_of(f->path, 2, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "flow_end"),
		      I("flow_id", 15), S("protocol", "tcp"), S("remote_addr", "203.0.113.123:123"),
		      S("remote_ip", "203.0.113.123"), I("remote_port", 123), I("bytes_sent", 48),
		      I("bytes_received", 96), I("duration_ms", 1000), S("direction", "outbound"));
	json_decref(j);
	j = line_of(f->path, 2, 1);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "flow_end"),
		      I("flow_id", 16), S("protocol", "tcp"), N("remote_addr"), N("remote_ip"),
		      N("remote_port"), I("bytes_sent", INT64_MAX), I("bytes_received", 0),
		      I("duration_ms", 0), S("direction", "outbound"));
	json_decref(j);
}

static void tcp_events_are_tcp_whatever_the_caller(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("198.51.100.7");
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_connect_attempt(o, 1, &dst, 443, false, NULL);
	cf_obs_connect_result(o, 1, &dst, 443, false, NULL, NULL, "relay");
	cf_obs_flow_end(o, 1, &dst, 443, 1, 2, 3);
	cf_obs_close(o);
	for (size_t i = 0; i < 3; i++) {
		j = line_of(f->path, 3, i);
		assert_string_equal(json_string_value(json_object_get(j, "protocol")), "tcp");
		assert_true(json_is_integer(json_object_get(j, "remote_port")));
		json_decref(j);
	}
}

static void datagram_flow_start_has_every_field(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("203.0.113.123"), v6 = ip("2001:db8::53");
	struct cf_obs_proc p = {.pid = 77, .comm = "ntpdate", .exe = "/usr/sbin/ntpdate"};
	struct cf_obs_dgram d = {.protocol = "udp", .ip = &dst, .port = 123, .proc = &p};
	struct cf_obs_dgram e = {.protocol = "icmpv4", .ip = &dst, .port = 9, .via_proxy = true};
	struct cf_obs_dgram g = {.protocol = "udp", .ip = &v6, .port = 53};
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_datagram_flow_start(o, 15, &d, NULL);
	cf_obs_datagram_flow_start(o, 16, &e, "Operation not permitted");
	cf_obs_datagram_flow_start(o, 17, &g, NULL);
	cf_obs_close(o);
	j = line_of(f->path, 3, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"),
		      S("event", "datagram_flow_start"), I("flow_id", 15), S("protocol", "udp"),
		      S("remote_addr", "203.0.113.123:123"), S("remote_ip", "203.0.113.123"),
		      I("remote_port", 123), F("via_proxy"), S("status", "ok"), N("error"),
		      I("pid", 77), S("comm", "ntpdate"), S("exe", "/usr/sbin/ntpdate"),
		      S("direction", "outbound"));
	json_decref(j);
	j = line_of(f->path, 3, 1);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"),
		      S("event", "datagram_flow_start"), I("flow_id", 16), S("protocol", "icmpv4"),
		      S("remote_addr", "203.0.113.123"), S("remote_ip", "203.0.113.123"),
		      N("remote_port"), T("via_proxy"), S("status", "error"),
		      S("error", "Operation not permitted"), N("pid"), N("comm"), N("exe"),
		      S("direction", "outbound"));
	json_decref(j);
	j = line_of(f->path, 3, 2);
	assert_string_equal(json_string_value(json_object_get(j, "remote_addr")),
			    "[2001:db8::53]:53");
	json_decref(j);
}

static void inbound_events_end_with_direction_mapping_and_tree_port(void **state)
{
	struct fixture *f = *state;
	struct cf_ip peer = ip("127.0.0.1");
	struct cf_obs_inbound tcp = {.peer = &peer,
				     .peer_port = 40000,
				     .published = "127.0.0.1:8080:80/tcp",
				     .tree_port = 80};
	struct cf_obs_inbound udp = tcp;
	struct cf_obs_traffic t = {.bytes_sent = 5, .bytes_received = 3, .duration_ms = 2};
	struct cf_obs *o;
	json_t *j;

	udp.udp = true;
	udp.published = "127.0.0.1:5353:53/udp";
	udp.tree_port = 53;
	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_inbound_start(o, 1, &tcp, true, NULL);
	cf_obs_inbound_start(o, 1, &tcp, false, "Connection refused");
	cf_obs_inbound_end(o, 1, &tcp, &t);
	cf_obs_inbound_start(o, 2, &udp, false, NULL);
	cf_obs_close(o);
	j = line_of(f->path, 4, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "connect_attempt"),
		      I("flow_id", 1), S("protocol", "tcp"), S("remote_addr", "127.0.0.1:40000"),
		      S("remote_ip", "127.0.0.1"), I("remote_port", 40000), F("via_proxy"),
		      N("pid"), N("comm"), N("exe"), S("direction", "inbound"),
		      S("published", "127.0.0.1:8080:80/tcp"), I("tree_port", 80));
	json_decref(j);
	j = line_of(f->path, 4, 1);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "connect_result"),
		      I("flow_id", 1), S("protocol", "tcp"), S("remote_addr", "127.0.0.1:40000"),
		      S("remote_ip", "127.0.0.1"), I("remote_port", 40000), F("via_proxy"),
		      S("status", "error"), S("error", "Connection refused"), N("pid"), N("comm"),
		      N("exe"), S("path", "relay"), S("direction", "inbound"),
		      S("published", "127.0.0.1:8080:80/tcp"), I("tree_port", 80));
	json_decref(j);
	j = line_of(f->path, 4, 2);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "flow_end"),
		      I("flow_id", 1), S("protocol", "tcp"), S("remote_addr", "127.0.0.1:40000"),
		      S("remote_ip", "127.0.0.1"), I("remote_port", 40000), I("bytes_sent", 5),
		      I("bytes_received", 3), I("duration_ms", 2), S("direction", "inbound"),
		      S("published", "127.0.0.1:8080:80/tcp"), I("tree_port", 80));
	json_decref(j);
	j = line_of(f->path, 4, 3);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"),
		      S("event", "datagram_flow_start"), I("flow_id", 2), S("protocol", "udp"),
		      S("remote_addr", "127.0.0.1:40000"), S("remote_ip", "127.0.0.1"),
		      I("remote_port", 40000), F("via_proxy"), S("status", "ok"), N("error"),
		      N("pid"), N("comm"), N("exe"), S("direction", "inbound"),
		      S("published", "127.0.0.1:5353:53/udp"), I("tree_port", 53));
	json_decref(j);
}

static void datagram_flow_end_has_every_field(void **state)
{
	struct fixture *f = *state;
	struct cf_ip dst = ip("203.0.113.123");
	struct cf_obs_proc p = {.pid = 77, .comm = "ntpdate", .exe = NULL};
	struct cf_obs_dgram d = {.protocol = "udp", .ip = &dst, .port = 123, .proc = &p};
	struct cf_obs_dgram n = {.protocol = "udp"};
	struct cf_obs_traffic t = {.bytes_sent = 48,
				   .bytes_received = 96,
				   .packets_sent = 1,
				   .packets_received = 2,
				   .duration_ms = 1000};
	struct cf_obs_traffic big = {.bytes_sent = UINT64_MAX};
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_datagram_flow_end(o, 15, &d, &t);
	cf_obs_datagram_flow_end(o, 16, &n, &big);
	cf_obs_close(o);
	j = line_of(f->path, 2, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "datagram_flow_end"),
		      I("flow_id", 15), S("protocol", "udp"), S("remote_addr", "203.0.113.123:123"),
		      S("remote_ip", "203.0.113.123"), I("remote_port", 123), F("via_proxy"),
		      I("bytes_sent", 48), I("bytes_received", 96), I("packets_sent", 1),
		      I("packets_received", 2), I("duration_ms", 1000), I("pid", 77),
		      S("comm", "ntpdate"), N("exe"), S("direction", "outbound"));
	json_decref(j);
	j = line_of(f->path, 2, 1);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "datagram_flow_end"),
		      I("flow_id", 16), S("protocol", "udp"), N("remote_addr"), N("remote_ip"),
		      N("remote_port"), F("via_proxy"), I("bytes_sent", INT64_MAX),
		      I("bytes_received", 0), I("packets_sent", 0), I("packets_received", 0),
		      I("duration_ms", 0), N("pid"), N("comm"), N("exe"),
		      S("direction", "outbound"));
	json_decref(j);
}

static void runtime_failure_has_no_flow_fields(void **state)
{
	struct fixture *f = *state;
	struct cf_obs *o;
	json_t *j;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_runtime_failure(o, "child_bootstrap", "tap_create_blocked", "/dev/net/tun: EPERM");
	cf_obs_runtime_failure(o, "run", "x", NULL);
	cf_obs_close(o);
	j = line_of(f->path, 2, 0);
	EXPECT_FIELDS(j, I("schema_version", 1), ANY_INT("ts_ms"), S("event", "runtime_failure"),
		      S("phase", "child_bootstrap"), S("reason_code", "tap_create_blocked"),
		      S("detail", "/dev/net/tun: EPERM"));
	json_decref(j);
	/* v1 types detail as a string: none is "", never null */
	j = line_of(f->path, 2, 1);
	assert_string_equal(json_string_value(json_object_get(j, "detail")), "");
	json_decref(j);
}

/* --- lines and escaping ------------------------------------------------------- */

static void every_event_is_one_line(void **state)
{
	struct fixture *f = *state;
	struct cf_ip a = ip("198.51.100.7");
	char big[6000];
	struct cf_obs *o;
	json_t *j;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cf_obs_open(f->path, &o), 0);
	for (int i = 0; i < 50; i++)
		cf_obs_connect_attempt(o, (uint64_t)i, &a, 443, false, NULL);
	/* Longer than the stack buffer: still one line. */
	cf_obs_runtime_failure(o, "run", "long", big);
	cf_obs_flow_end(o, 1, &a, 443, 1, 2, 3);
	cf_obs_close(o);
	j = line_of(f->path, 52, 49);
	assert_int_equal(json_integer_value(json_object_get(j, "flow_id")), 49);
	json_decref(j);
	j = line_of(f->path, 52, 50);
	assert_string_equal(json_string_value(json_object_get(j, "detail")), big);
	json_decref(j);
}

static void every_control_character_round_trips_and_stays_escaped(void **state)
{
	struct fixture *f = *state;
	char s[64];
	size_t n = 0, len;
	struct cf_obs *o;
	json_t *j;
	char *raw;

	for (int c = 1; c < 0x20; c++)
		s[n++] = (char)c;
	s[n++] = 0x7f;
	s[n++] = '"';
	s[n++] = '\\';
	s[n++] = '/';
	s[n] = '\0';
	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_runtime_failure(o, "run", "ctl", s);
	cf_obs_close(o);
	j = line_of(f->path, 1, 0);
	assert_string_equal(json_string_value(json_object_get(j, "detail")), s);
	json_decref(j);
	/* No raw control byte in the file but the final newline. */
	raw = slurp(f->path, &len);
	for (size_t i = 0; i + 1 < len; i++)
		assert_true((unsigned char)raw[i] >= 0x20);
	assert_non_null(strstr(raw, "\\u0001"));
	assert_non_null(strstr(raw, "\\n"));
	assert_non_null(strstr(raw, "\\\"\\\\"));
	free(raw);
}

static void nul_byte_is_written_as_u0000(void **state)
{
	json_t *s = cf_json_stringn_sane("a\0b", 3);
	char *out;

	(void)state;
	assert_non_null(s);
	assert_int_equal(json_string_length(s), 3);
	out = json_dumps(s, JSON_ENCODE_ANY);
	assert_string_equal(out, "\"a\\u0000b\"");
	free(out);
	json_decref(s);
	s = cf_json_string_sane(NULL);
	assert_true(json_is_null(s));
	json_decref(s);
}

static void invalid_utf8_becomes_replacement_characters(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
	    {"\x80", "\xef\xbf\xbd"},				      /* lone continuation byte */
	    {"a\xc0\x80z", "a\xef\xbf\xbd\xef\xbf\xbdz"},	      /* overlong NUL */
	    {"\xc1\xbf", "\xef\xbf\xbd\xef\xbf\xbd"},		      /* overlong */
	    {"\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong */
	    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
	    {"\xf4\x90\x80\x80",
	     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
	    {"\xf5", "\xef\xbf\xbd"},
	    {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},
	    {"x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd"}, /* truncated at the end */
	    {"\xe2\x82y", "\xef\xbf\xbd\xef\xbf\xbdy"}, /* truncated in the middle */
	    {"\xf0\x9f\x98", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	};
	struct fixture *f = *state;
	struct cf_obs *o;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *s = cf_json_string_sane(cases[i].in);

		assert_non_null(s);
		assert_string_equal(json_string_value(s), cases[i].out);
		json_decref(s);
		cf_obs_runtime_failure(o, "run", "utf8", cases[i].in);
	}
	cf_obs_close(o);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = line_of(f->path, sizeof(cases) / sizeof(cases[0]), i);

		assert_string_equal(json_string_value(json_object_get(j, "detail")), cases[i].out);
		json_decref(j);
	}
}

static void utf8_decoder_is_strict(void **state)
{
	uint32_t cp = 0;

	(void)state;
	assert_int_equal(cf_utf8_next((const unsigned char *)"A", 1, &cp), 1);
	assert_int_equal(cp, 'A');
	assert_int_equal(cf_utf8_next((const unsigned char *)"\xc2\x80", 2, &cp), 2);
	assert_int_equal(cp, 0x80);
	assert_int_equal(cf_utf8_next((const unsigned char *)"\xef\xbf\xbf", 3, &cp), 3);
	assert_int_equal(cp, 0xffff);
	assert_int_equal(cf_utf8_next((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp), 4);
	assert_int_equal(cp, 0x10ffff);
	assert_int_equal(cf_utf8_next((const unsigned char *)"\xed\x9f\xbf", 3, &cp), 3);
	assert_int_equal(cp, 0xd7ff);
	assert_int_equal(cf_utf8_next((const unsigned char *)"\xc2\x80", 1, &cp), 0);
	assert_int_equal(cf_utf8_next((const unsigned char *)"\xc2\xc0", 2, &cp), 0);
	assert_int_equal(cf_utf8_next((const unsigned char *)"\xf0\x8f\xbf\xbf", 4, &cp), 0);
	assert_int_equal(cf_utf8_next((const unsigned char *)"", 0, &cp), 0);
}

static void hostile_names_in_every_string_field_still_give_valid_json(void **state)
{
	static const char *nasty = "\x1b[2J\"\\\xff\xc0</script>\x7f\n";
	struct fixture *f = *state;
	struct cf_ip a = ip("198.51.100.7");
	struct cf_obs_proc p = {.pid = 1, .comm = nasty, .exe = nasty};
	struct cf_obs_dgram d = {.protocol = nasty, .ip = &a, .port = 1, .proc = &p};
	struct cf_obs_traffic t = {0};
	struct cf_obs *o;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	cf_obs_dns_query(o, 1, nasty, &a, 53, nasty, nasty);
	cf_obs_dns_answer(o, 1, nasty, &a, 53, nasty, nasty, nasty, 1, &a, 1);
	cf_obs_connect_attempt(o, 1, &a, 1, false, &p);
	cf_obs_connect_result(o, 1, &a, 1, false, nasty, &p, "relay");
	cf_obs_policy_violation(o, 1, nasty, &a, 1, nasty, nasty, nasty, nasty, nasty);
	cf_obs_flow_end(o, 1, &a, 1, 0, 0, 0);
	cf_obs_runtime_failure(o, nasty, nasty, nasty);
	cf_obs_datagram_flow_start(o, 2, &d, nasty);
	cf_obs_datagram_flow_end(o, 2, &d, &t);
	assert_int_equal(cf_obs_dropped_events(o), 0);
	cf_obs_close(o);
	for (size_t i = 0; i < 9; i++)
		json_decref(line_of(f->path, 9, i)); /* line_of fails on invalid JSON */
}

/* --- errors and counters ---------------------------------------------------- */

static void write_errors_are_remembered_and_aggregation_goes_on(void **state)
{
	struct cf_ip a = ip("198.51.100.7");
	struct cf_obs *o;

	(void)state;
	if (access("/dev/full", W_OK) != 0)
		skip();
	assert_int_equal(cf_obs_open("/dev/full", &o), 0);
	cf_obs_policy_violation(o, 1, "tcp", &a, 1, "private", "--block-private", NULL, NULL, "r");
	assert_int_equal(cf_obs_flow_log_error(o), -ENOSPC);
	cf_obs_policy_violation(o, 2, "tcp", &a, 2, "private", "--block-private", NULL, NULL, "r");
	assert_int_equal(cf_obs_violations(o), 2);
	assert_int_equal(cf_obs_flow_log_error(o), -ENOSPC);
	cf_obs_close(o);
}

/* --- the summary ------------------------------------------------------------- */

/* The fixed sequence of events behind the summary tests. */
static void record_run(struct cf_obs *o)
{
	struct cf_ip dns = ip("10.0.2.3"), a = ip("198.51.100.7"), b = ip("2001:db8::7"),
		     c = ip("203.0.113.9"), m = ip("169.254.169.254");
	struct cf_ip ans[] = {a, b};
	struct cf_obs_proc curl = {.pid = 42, .comm = "curl", .exe = "/usr/bin/curl"};

	cf_obs_dns_query(o, 1, "udp", &dns, 53, "example.com", "A");
	cf_obs_dns_answer(o, 1, "udp", &dns, 53, "example.com", "A", "relayed", 61, ans, 2);
	cf_obs_connect_attempt(o, 2, &a, 443, true, &curl);
	cf_obs_connect_result(o, 2, &a, 443, true, NULL, &curl, "relay");
	cf_obs_connect_attempt(o, 3, &b, 443, true, &curl);
	cf_obs_connect_result(o, 3, &b, 443, true, "proxy: 502 Bad Gateway", &curl, "relay");
	cf_obs_connect_attempt(o, 4, &c, 8080, false, NULL);
	cf_obs_connect_result(o, 4, &c, 8080, false, "connection refused", NULL, "kernel");
	cf_obs_connect_attempt(o, 5, &a, 443, true, &curl);
	cf_obs_connect_result(o, 5, &a, 443, true, NULL, &curl, "socket");
	cf_obs_policy_violation(o, 6, "tcp", &m, 80, "metadata", "--block-metadata",
				"169.254.169.254/32", NULL, "metadata endpoint");
	cf_obs_policy_violation(o, 7, "dns", &dns, 53, "deny_domain", "--deny-domain", NULL,
				"tracker.example", "denied domain");
	cf_obs_flow_end(o, 2, &a, 443, 500, 12000, 830);
	cf_obs_runtime_failure(o, "run", "dns_upstream_timeout", "no reply from 192.0.2.53:53");
}

static char *const command[] = {"curl", "-sS", "https://example.com/a b", "it's", NULL};
static const char *const controls[] = {"--proxy http://192.0.2.8:3128", "--block-metadata",
				       "--deny-domain tracker.example", NULL};
static const char *const captures[] = {"/tmp/run.pcapng", NULL};

static const char summary_text[] =
    "childflow summary\n"
    "  backend            rootless-internal\n"
    "  command            curl -sS 'https://example.com/a b' 'it'\\''s'\n"
    "  exit code          7\n"
    "  controls           --proxy http://192.0.2.8:3128, --block-metadata, --deny-domain "
    "tracker.example\n"
    "  captures           /tmp/run.pcapng\n"
    "  flow log           none\n"
    "  events             14  connect_attempt (4), connect_result (4), policy_violation (2), "
    "dns_answer (1), dns_query (1), flow_end (1), runtime_failure (1)\n"
    "  connections        4 attempts (3 via proxy, 1 direct), 2 ok, 2 failed\n"
    "  tcp paths          1 switched socket, 2 relay, 1 kernel\n"
    "  inbound            none\n"
    "  top targets\n"
    "    198.51.100.7:443   2  example.com (1)\n"
    "    203.0.113.9:8080   1\n"
    "    [2001:db8::7]:443  1  example.com (1)\n"
    "  policy violations  2\n"
    "    by reason_code     deny_domain (1), metadata (1)\n"
    "    by control         --block-metadata (1), --deny-domain (1)\n"
    "    by matched_domain  tracker.example (1)\n"
    "  connect errors     2\n"
    "    connection refused      1  203.0.113.9:8080 (1)\n"
    "    proxy: 502 Bad Gateway  1  [2001:db8::7]:443 (1)\n"
    "  runtime failures   1\n"
    "    dns_upstream_timeout  1  [run]  no reply from 192.0.2.53:53 (1)\n";

static const char summary_json[] =
    "{\"backend\":\"rootless-internal\",\"command\":\"curl -sS 'https://example.com/a b' 'it'"
    "\\\\''s'\",\"exit_code\":7,\"sandbox_controls\":[\"--proxy http://192.0.2.8:3128\",\"--b"
    "lock-metadata\",\"--deny-domain tracker.example\"],\"capture\":{\"status\":\"enabled\","
    "\"requested\":\"child\",\"effective\":\"child\",\"output\":\"/tmp/run.pcapng\",\"child_o"
    "utput\":null,\"egress_output\":null},\"flow_log\":{\"status\":\"disabled\",\"path\":null"
    ",\"event_counts\":{\"total\":14,\"dns_query\":1,\"dns_answer\":1,\"connect_attempt\":4,"
    "\"connect_result\":4,\"policy_violation\":2,\"flow_end\":1,\"runtime_failure\":1,\"unkno"
    "wn_event\":0,\"datagram_flow_start\":0,\"datagram_flow_end\":0},\"top_dns_name\":{\"qnam"
    "e\":\"example.com\",\"queries\":1,\"answers\":1,\"answer_ips\":[\"198.51.100.7\",\"2001:"
    "db8::7\"],\"targets\":[{\"target\":\"198.51.100.7:443\",\"connect_attempts\":2,\"connect"
    "_ok\":2,\"connect_error\":0,\"flow_end\":1,\"matched_domains\":[]},{\"target\":\"[2001:d"
    "b8::7]:443\",\"connect_attempts\":1,\"connect_ok\":0,\"connect_error\":1,\"flow_end\":0,"
    "\"matched_domains\":[]}]},\"dns_policy_rows\":[{\"qname\":\"example.com\",\"queries\":1,"
    "\"answers\":1,\"answer_ips\":[\"198.51.100.7\",\"2001:db8::7\"],\"target\":\"198.51.100."
    "7:443\",\"target_ip\":\"198.51.100.7\",\"connect_attempts\":2,\"connect_ok\":2,\"connect"
    "_error\":0,\"flow_end\":1,\"matched_domains\":[]},{\"qname\":\"example.com\",\"queries\""
    ":1,\"answers\":1,\"answer_ips\":[\"198.51.100.7\",\"2001:db8::7\"],\"target\":\"[2001:db"
    "8::7]:443\",\"target_ip\":\"2001:db8::7\",\"connect_attempts\":1,\"connect_ok\":0,\"conn"
    "ect_error\":1,\"flow_end\":0,\"matched_domains\":[]}],\"top_dns_policy_correlation\":{\""
    "qname\":\"example.com\",\"queries\":1,\"answers\":1,\"answer_ips\":[\"198.51.100.7\",\"2"
    "001:db8::7\"],\"matched_domains\":[],\"targets\":[{\"target\":\"198.51.100.7:443\",\"con"
    "nect_attempts\":2,\"connect_ok\":2,\"connect_error\":0,\"flow_end\":1,\"matched_domains"
    "\":[]},{\"target\":\"[2001:db8::7]:443\",\"connect_attempts\":1,\"connect_ok\":0,\"conne"
    "ct_error\":1,\"flow_end\":0,\"matched_domains\":[]}]},\"top_target\":{\"target\":\"198.5"
    "1.100.7:443\",\"connect_attempts\":2,\"connect_ok\":2,\"connect_error\":0,\"flow_end\":1"
    ",\"dns_names\":[\"example.com\"],\"matched_domains\":[]},\"policy_violations\":[{\"key\""
    ":\"deny_domain\",\"count\":1},{\"key\":\"metadata\",\"count\":1}],\"policy_controls\":[{"
    "\"key\":\"--block-metadata\",\"count\":1},{\"key\":\"--deny-domain\",\"count\":1}],\"pol"
    "icy_matched_domains\":[{\"key\":\"tracker.example\",\"count\":1}],\"connect_errors\":[{"
    "\"key\":\"connection refused\",\"count\":1},{\"key\":\"proxy: 502 Bad Gateway\",\"count"
    "\":1}],\"runtime_failures\":[{\"key\":\"dns_upstream_timeout\",\"count\":1}],\"runtime_f"
    "ailure_phases\":[{\"key\":\"run\",\"count\":1}]},\"schema_version\":2,\"argv\":[\"curl\""
    ",\"-sS\",\"https://example.com/a b\",\"it's\"],\"controls\":[\"--proxy http://192.0.2.8:"
    "3128\",\"--block-metadata\",\"--deny-domain tracker.example\"],\"captures\":[\"/tmp/run."
    "pcapng\"],\"flow_log_error\":null,\"dropped_events\":0,\"events\":{\"total\":14,\"by_typ"
    "e\":[{\"key\":\"connect_attempt\",\"count\":4},{\"key\":\"connect_result\",\"count\":4},"
    "{\"key\":\"policy_violation\",\"count\":2},{\"key\":\"dns_answer\",\"count\":1},{\"key\""
    ":\"dns_query\",\"count\":1},{\"key\":\"flow_end\",\"count\":1},{\"key\":\"runtime_failur"
    "e\",\"count\":1}]},\"connections\":{\"attempts\":4,\"via_proxy\":3,\"direct\":1,\"ok\":2"
    ",\"error\":2,\"by_path\":{\"socket\":1,\"relay\":2,\"kernel\":1}},\"top_targets\":[{\"key\":"
    "\"198.51.100.7:443\",\"count\":2,\"names\":[{\"k"
    "ey\":\"example.com\",\"count\":1}]},{\"key\":\"203.0.113.9:8080\",\"count\":1,\"names\":"
    "[]},{\"key\":\"[2001:db8::7]:443\",\"count\":1,\"names\":[{\"key\":\"example.com\",\"cou"
    "nt\":1}]}],\"violations\":{\"total\":2,\"by_reason_code\":[{\"key\":\"deny_domain\",\"co"
    "unt\":1},{\"key\":\"metadata\",\"count\":1}],\"by_control\":[{\"key\":\"--block-metadata"
    "\",\"count\":1},{\"key\":\"--deny-domain\",\"count\":1}],\"by_matched_domain\":[{\"key\""
    ":\"tracker.example\",\"count\":1}]},\"connect_errors\":{\"total\":2,\"by_error\":[{\"key"
    "\":\"connection refused\",\"count\":1,\"targets\":[{\"key\":\"203.0.113.9:8080\",\"count"
    "\":1}]},{\"key\":\"proxy: 502 Bad Gateway\",\"count\":1,\"targets\":[{\"key\":\"[2001:db"
    "8::7]:443\",\"count\":1}]}]},\"runtime_failures\":{\"total\":1,\"by_reason_code\":[{\"ke"
    "y\":\"dns_upstream_timeout\",\"count\":1,\"phase\":\"run\",\"details\":[{\"key\":\"no re"
    "ply from "
    "192.0.2.53:53\",\"count\":1}]}]},\"rate_limit\":null,\"inbound\":{\"flows\":0,\"failed\":0,"
    "\"ended\":0,"
    "\"bytes_sent\":0,\"bytes_received\":0,\"published\":[]}}\n";

static char *summary_of(const struct cf_obs *o, const struct cf_run_info *run, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(cf_obs_print_summary(o, run, json, f), 0);
	fclose(f);
	return buf;
}

static void summary_text_of_a_fixed_run(void **state)
{
	struct cf_run_info run = {.backend = "rootless-internal",
				  .command = command,
				  .exit_code = 7,
				  .controls = controls,
				  .captures = captures};
	struct cf_obs *o;
	char *text;

	(void)state;
	assert_int_equal(cf_obs_open(NULL, &o), 0);
	record_run(o);
	text = summary_of(o, &run, false);
	assert_string_equal(text, summary_text);
	free(text);
	cf_obs_close(o);
}

static void summary_json_of_a_fixed_run_is_one_line(void **state)
{
	struct cf_run_info run = {.backend = "rootless-internal",
				  .command = command,
				  .exit_code = 7,
				  .controls = controls,
				  .captures = captures,
				  .capture_requested = "child",
				  .capture_effective = "child",
				  .capture_child = "/tmp/run.pcapng"};
	struct cf_obs *o;
	json_error_t err;
	json_t *j;
	char *text;

	(void)state;
	assert_int_equal(cf_obs_open(NULL, &o), 0);
	record_run(o);
	text = summary_of(o, &run, true);
	assert_string_equal(text, summary_json);
	assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
	j = json_loads(text, 0, &err);
	assert_non_null(j);
	json_decref(j);
	free(text);
	cf_obs_close(o);
}

static void summary_and_flow_log_count_the_same_events(void **state)
{
	struct fixture *f = *state;
	struct cf_run_info run = {.backend = "rootless-internal", .flow_log = f->path};
	struct cf_obs *o;
	char *text;

	assert_int_equal(cf_obs_open(f->path, &o), 0);
	record_run(o);
	text = summary_of(o, &run, false);
	cf_obs_close(o);
	json_decref(line_of(f->path, 14, 13));
	assert_non_null(strstr(text, "  events             14  "));
	free(text);
}

static void summary_without_events_or_obs(void **state)
{
	struct cf_run_info run = {.backend = "rootful", .exit_code = 0};
	char *text;

	(void)state;
	text = summary_of(NULL, &run, false);
	assert_non_null(strstr(text, "  command            none\n"));
	assert_non_null(strstr(text, "  controls           none\n"));
	assert_non_null(strstr(text, "  events             0  none\n"));
	assert_non_null(strstr(text, "  top targets\n    none\n"));
	assert_non_null(strstr(text, "  policy violations  0\n  connect errors     0\n"));
	free(text);
	text = summary_of(NULL, &run, true);
	assert_non_null(strstr(text, "\"command\":\"\",") && strstr(text, "\"argv\":[],"));
	assert_non_null(strstr(text, "\"events\":{\"total\":0,\"by_type\":[]}"));
	free(text);
	text = summary_of(NULL, NULL, true);
	assert_non_null(strstr(text, "\"backend\":null,\"command\":\"\",\"exit_code\":0,"));
	free(text);
}

static void summary_mentions_a_flow_log_write_error(void **state)
{
	struct cf_run_info run = {.backend = "rootless-internal", .flow_log = "/dev/full"};
	struct cf_ip a = ip("198.51.100.7");
	struct cf_obs *o;
	char *text;

	(void)state;
	if (access("/dev/full", W_OK) != 0)
		skip();
	assert_int_equal(cf_obs_open("/dev/full", &o), 0);
	cf_obs_connect_attempt(o, 1, &a, 80, false, NULL);
	text = summary_of(o, &run, false);
	assert_non_null(strstr(text, "/dev/full (writing failed: No space left on device;"));
	free(text);
	text = summary_of(o, &run, true);
	assert_non_null(strstr(text, "\"flow_log_error\":\"No space left on device\""));
	free(text);
	cf_obs_close(o);
}

static void summary_escapes_hostile_command_and_names(void **state)
{
	char *const cmd[] = {"sh", "-c", "echo \x1b]0;pwned\x07", NULL};
	struct cf_run_info run = {.backend = "rootless-internal", .command = cmd};
	struct cf_ip a = ip("198.51.100.7");
	struct cf_obs *o;
	char *text;

	(void)state;
	assert_int_equal(cf_obs_open(NULL, &o), 0);
	cf_obs_connect_result(o, 1, &a, 80, false, "bad\x1b[31m", NULL, "relay");
	text = summary_of(o, &run, false);
	assert_non_null(strstr(text, "sh -c 'echo \\x1b]0;pwned\\x07'"));
	assert_non_null(strstr(text, "bad\\x1b[31m"));
	assert_null(strchr(text, '\x1b'));
	free(text);
	cf_obs_close(o);
}

static void summary_to_a_full_device_is_eio(void **state)
{
	struct cf_run_info run = {.backend = "rootless-internal"};
	FILE *full = fopen("/dev/full", "w");

	(void)state;
	if (!full)
		skip();
	assert_int_equal(cf_obs_print_summary(NULL, &run, false, full), -EIO);
	fclose(full);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(log_file_is_created_with_mode_0600, setup, teardown),
	    cmocka_unit_test_setup_teardown(existing_log_is_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(open_errors_are_negative_errno, setup, teardown),
	    cmocka_unit_test_setup_teardown(log_fd_is_close_on_exec, setup, teardown),
	    cmocka_unit_test(without_a_path_events_are_only_aggregated),
	    cmocka_unit_test(null_obs_is_harmless),
	    cmocka_unit_test_setup_teardown(dns_query_has_every_field_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(dns_query_unknowns_are_null_and_qtype_unknown, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(dns_answer_has_every_field_and_the_answer_ips, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(connect_attempt_has_every_field_with_process, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(unknown_process_fields_are_null, setup, teardown),
	    cmocka_unit_test_setup_teardown(connect_result_ok_and_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(policy_violation_has_every_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(icmp_addresses_have_no_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(flow_end_has_every_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(tcp_events_are_tcp_whatever_the_caller, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(datagram_flow_start_has_every_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(datagram_flow_end_has_every_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(inbound_events_end_with_direction_mapping_and_tree_port,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(runtime_failure_has_no_flow_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(every_event_is_one_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(every_control_character_round_trips_and_stays_escaped,
					    setup, teardown),
	    cmocka_unit_test(nul_byte_is_written_as_u0000),
	    cmocka_unit_test_setup_teardown(invalid_utf8_becomes_replacement_characters, setup,
					    teardown),
	    cmocka_unit_test(utf8_decoder_is_strict),
	    cmocka_unit_test_setup_teardown(
		hostile_names_in_every_string_field_still_give_valid_json, setup, teardown),
	    cmocka_unit_test(write_errors_are_remembered_and_aggregation_goes_on),
	    cmocka_unit_test(summary_text_of_a_fixed_run),
	    cmocka_unit_test(summary_json_of_a_fixed_run_is_one_line),
	    cmocka_unit_test_setup_teardown(summary_and_flow_log_count_the_same_events, setup,
					    teardown),
	    cmocka_unit_test(summary_without_events_or_obs),
	    cmocka_unit_test(summary_mentions_a_flow_log_write_error),
	    cmocka_unit_test(summary_escapes_hostile_command_and_names),
	    cmocka_unit_test(summary_to_a_full_device_is_eio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
