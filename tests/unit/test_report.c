// SPDX-License-Identifier: MIT
/*
 * Tests of --report and the aggregator behind it: golden outputs (text,
 * Markdown, JSON and the malformed-line messages) of the logs in
 * tests/report/, line-number messages for every kind of damage, the
 * message cap, over-long lines, read and write errors, ranking order with
 * ties, the caps on distinct keys and key length, and escaping of hostile
 * names in text and Markdown.
 *
 * The golden files were written by running this test with
 * CF_UPDATE_GOLDEN=1 and reviewed by eye; without it the test compares
 * byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs/agg.h"
#include "obs/render.h"
#include "obs/report.h"
#include "obs/text.h"

#define GOLDEN_DIR "../report/"

/* --- helpers ------------------------------------------------------------ */

struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static void capture_open(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

/* Close the stream; the text stays in c->buf (free it with capture_free()). */
static void capture_close(struct capture *c)
{
	assert_int_equal(fclose(c->f), 0);
	c->f = NULL;
}

static void capture_free(struct capture *c)
{
	free(c->buf);
	c->buf = NULL;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Compare @got with the golden file @path (or rewrite it under CF_UPDATE_GOLDEN=1). */
static void expect_golden(const char *path, const char *got, size_t len)
{
	size_t want_len = 0;
	char *want;
	bool same;

	if (getenv("CF_UPDATE_GOLDEN"))
		write_file(path, got, len);
	want = read_file(path, &want_len);
	if (!want)
		fail_msg("missing golden file %s (run with CF_UPDATE_GOLDEN=1 and review it)",
			 path);
	same = want_len == len && memcmp(want, got, len) == 0;
	free(want);
	if (!same) {
		print_message("--- %s differs; got:\n%.*s\n", path, (int)len, got);
		fail_msg("output differs from %s", path);
	}
}

/* Run the report of the in-memory log @log; results in @out and @err. */
static int report_of(const char *log, size_t len, int format, struct capture *out,
		     struct capture *err)
{
	FILE *in = len ? fmemopen((void *)log, len, "r") : fopen("/dev/null", "r");
	int r;

	assert_non_null(in);
	capture_open(out);
	capture_open(err);
	r = cf_report_stream(in, "log", format, out->f, err->f);
	fclose(in);
	capture_close(out);
	capture_close(err);
	return r;
}

static json_t *report_json_of(const char *log, size_t len, struct capture *err)
{
	struct capture out;
	json_error_t jerr;
	json_t *j;

	assert_int_equal(report_of(log, len, CF_REPORT_JSON, &out, err), 0);
	j = json_loads(out.buf, 0, &jerr);
	if (!j)
		fail_msg("report JSON does not parse: %s (line %d)", jerr.text, jerr.line);
	capture_free(&out);
	return j;
}

static const char *EV_ATTEMPT =
    "{\"schema_version\":1,\"ts_ms\":1000,\"event\":\"connect_attempt\",\"flow_id\":1,"
    "\"protocol\":\"tcp\",\"remote_addr\":\"198.51.100.7:443\",\"remote_ip\":\"198.51.100.7\","
    "\"remote_port\":443,\"via_proxy\":true,\"pid\":null,\"comm\":null,\"exe\":null}";

/* A member of @j by a path of object keys (NULL-terminated), or NULL. */
static json_t *at(json_t *j, ...)
{
	va_list ap;
	const char *k;

	va_start(ap, j);
	while (j && (k = va_arg(ap, const char *)))
		j = json_object_get(j, k);
	va_end(ap);
	return j;
}

static void expect_json(json_t *got, const char *want_text)
{
	json_error_t jerr;
	json_t *want = json_loads(want_text, 0, &jerr);
	char *g;

	if (!want)
		fail_msg("expected JSON does not parse: %s: %s", want_text, jerr.text);
	if (!json_equal(got, want)) {
		g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
		print_message("got:  %s\nwant: %s\n", g ? g : "(null)", want_text);
		free(g);
		json_decref(want);
		fail_msg("JSON differs");
	}
	json_decref(want);
}

/* The original's per-target counts take UDP/ICMP flows too, and blocked domains go with IPs and
 * names. */
static void original_targets_and_dns_policy_views(void **state)
{
	static const char log[] =
	    "{\"event\":\"dns_query\",\"flow_id\":1,\"qname\":\"a.example\",\"qtype\":\"A\"}\n"
	    "{\"event\":\"dns_answer\",\"flow_id\":1,\"qname\":\"a.example\","
	    "\"answer_ips\":[\"192.0.2.1\"]}\n"
	    "{\"event\":\"dns_query\",\"flow_id\":2,\"qname\":\"t.bad.example\",\"qtype\":\"A\"}\n"
	    "{\"event\":\"policy_violation\",\"flow_id\":2,\"protocol\":\"dns\","
	    "\"remote_ip\":\"10.0.2.3\",\"reason_code\":\"deny_domain\",\"control\":\"--deny-"
	    "domain\","
	    "\"matched_domain\":\"bad.example\"}\n"
	    "{\"event\":\"connect_attempt\",\"flow_id\":3,\"remote_addr\":\"192.0.2.1:80\","
	    "\"remote_ip\":\"192.0.2.1\",\"via_proxy\":false}\n"
	    "{\"event\":\"connect_result\",\"flow_id\":3,\"remote_addr\":\"192.0.2.1:80\","
	    "\"remote_ip\":\"192.0.2.1\",\"status\":\"ok\",\"error\":null}\n"
	    "{\"event\":\"flow_end\",\"flow_id\":3,\"remote_addr\":\"192.0.2.1:80\","
	    "\"remote_ip\":\"192.0.2.1\"}\n"
	    "{\"event\":\"datagram_flow_start\",\"flow_id\":4,\"protocol\":\"udp\","
	    "\"remote_addr\":\"192.0.2.1:53\",\"remote_ip\":\"192.0.2.1\",\"via_proxy\":false,"
	    "\"status\":\"error\",\"error\":\"Network is unreachable\"}\n"
	    "{\"event\":\"datagram_flow_end\",\"flow_id\":4,\"protocol\":\"udp\","
	    "\"remote_addr\":\"192.0.2.1:53\",\"remote_ip\":\"192.0.2.1\"}\n"
	    "{\"event\":\"policy_violation\",\"flow_id\":5,\"protocol\":\"tcp\","
	    "\"remote\":\"192.0.2.1:443\",\"remote_ip\":\"192.0.2.1\",\"reason_code\":\"deny_"
	    "domain\","
	    "\"control\":\"--deny-domain\",\"matched_domain\":\"cdn.example\"}\n"
	    "{\"event\":\"later_event\"}\n";
	struct capture err;
	json_t *j = report_json_of(log, sizeof(log) - 1, &err);

	(void)state;
	expect_json(
	    at(j, "event_counts", NULL),
	    "{\"total\":11,\"dns_query\":2,\"dns_answer\":1,\"connect_attempt\":1,"
	    "\"connect_result\":1,\"policy_violation\":2,\"flow_end\":1,\"runtime_failure\":0,"
	    "\"unknown_event\":1,\"datagram_flow_start\":1,\"datagram_flow_end\":1}");
	expect_json(at(j, "top_connection_targets", NULL),
		    "[{\"target\":\"192.0.2.1:53\",\"connect_attempts\":1,\"connect_ok\":0,"
		    "\"connect_error\":1,\"flow_end\":1,\"dns_names\":[\"a.example\"],"
		    "\"matched_domains\":[{\"key\":\"cdn.example\",\"count\":1}]},"
		    "{\"target\":\"192.0.2.1:80\",\"connect_attempts\":1,\"connect_ok\":1,"
		    "\"connect_error\":0,\"flow_end\":1,\"dns_names\":[\"a.example\"],"
		    "\"matched_domains\":[{\"key\":\"cdn.example\",\"count\":1}]}]");
	/* the denied query's domain goes with its name, never with the resolver's address */
	expect_json(
	    at(j, "dns_policy_rows", NULL),
	    "[{\"qname\":\"a.example\",\"queries\":1,\"answers\":1,\"answer_ips\":[\"192.0.2.1\"],"
	    "\"target\":\"192.0.2.1:53\",\"target_ip\":\"192.0.2.1\",\"connect_attempts\":1,"
	    "\"connect_ok\":0,\"connect_error\":1,\"flow_end\":1,"
	    "\"matched_domains\":[{\"key\":\"cdn.example\",\"count\":1}]},"
	    "{\"qname\":\"a.example\",\"queries\":1,\"answers\":1,\"answer_ips\":[\"192.0.2.1\"],"
	    "\"target\":\"192.0.2.1:80\",\"target_ip\":\"192.0.2.1\",\"connect_attempts\":1,"
	    "\"connect_ok\":1,\"connect_error\":0,\"flow_end\":1,"
	    "\"matched_domains\":[{\"key\":\"cdn.example\",\"count\":1}]},"
	    "{\"qname\":\"t.bad.example\",\"queries\":1,\"answers\":0,\"answer_ips\":[],"
	    "\"target\":null,\"target_ip\":null,\"connect_attempts\":0,\"connect_ok\":0,"
	    "\"connect_error\":0,\"flow_end\":0,"
	    "\"matched_domains\":[{\"key\":\"bad.example\",\"count\":1}]}]");
	expect_json(at(j, "policy_matched_domains", NULL), "{\"bad.example\":1,\"cdn.example\":1}");
	expect_json(at(j, "sorted_connect_errors", NULL),
		    "[{\"key\":\"Network is unreachable\",\"count\":1}]");
	expect_json(at(j, "proxy_usage", NULL),
		    "{\"proxied_connect_attempts\":0,\"direct_connect_attempts\":2}");
	expect_json(at(j, "schema_versions", NULL), "[1]");
	json_decref(j);
	capture_free(&err);
}

/* --- golden files ----------------------------------------------------------- */

static void golden_case(const char *name)
{
	static const struct {
		int format;
		const char *ext;
	} formats[] = {
	    {CF_REPORT_TEXT, "txt"},
	    {CF_REPORT_MARKDOWN, "md"},
	    {CF_REPORT_JSON, "json"},
	};
	char log[256], path[256];

	snprintf(log, sizeof(log), GOLDEN_DIR "%s.jsonl", name);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct capture out, err;

		capture_open(&out);
		capture_open(&err);
		assert_int_equal(cf_report_run(log, formats[i].format, out.f, err.f), 0);
		capture_close(&out);
		capture_close(&err);
		snprintf(path, sizeof(path), GOLDEN_DIR "%s.%s", name, formats[i].ext);
		expect_golden(path, out.buf, out.len);
		snprintf(path, sizeof(path), GOLDEN_DIR "%s.err", name);
		expect_golden(path, err.buf, err.len);
		if (formats[i].format == CF_REPORT_JSON) {
			json_error_t jerr;
			json_t *j = json_loads(out.buf, 0, &jerr);

			assert_non_null(j);
			json_decref(j);
		}
		capture_free(&out);
		capture_free(&err);
	}
}

static void golden_clean_run_log_renders_as_expected_in_all_formats(void **state)
{
	(void)state;
	golden_case("basic");
}

static void golden_damaged_hostile_log_renders_as_expected_in_all_formats(void **state)
{
	(void)state;
	golden_case("messy");
}

/* --- reading: errors and damage ----------------------------------------------- */

static void missing_file_is_enoent(void **state)
{
	(void)state;
	assert_int_equal(cf_report_run("/nonexistent/flow.jsonl", CF_REPORT_TEXT, stdout, stderr),
			 -ENOENT);
}

static void directory_is_eisdir(void **state)
{
	struct capture out, err;

	(void)state;
	capture_open(&out);
	capture_open(&err);
	assert_int_equal(cf_report_run("/", CF_REPORT_TEXT, out.f, err.f), -EISDIR);
	capture_close(&out);
	capture_close(&err);
	assert_int_equal(out.len, 0);
	capture_free(&out);
	capture_free(&err);
}

static void unknown_format_is_einval(void **state)
{
	(void)state;
	assert_int_equal(cf_report_run(GOLDEN_DIR "basic.jsonl", 3, stdout, stderr), -EINVAL);
	assert_int_equal(cf_report_run(GOLDEN_DIR "basic.jsonl", -1, stdout, stderr), -EINVAL);
	assert_int_equal(cf_report_stream(stdin, "x", 7, stdout, stderr), -EINVAL);
}

static void malformed_lines_are_reported_with_their_numbers_and_skipped(void **state)
{
	char log[4096];
	struct capture err;
	json_t *j;
	int n = 0;

	(void)state;
	for (int i = 1; i <= 16; i++)
		n += snprintf(log + n, sizeof(log) - (size_t)n, "%s\n", EV_ATTEMPT);
	n += snprintf(log + n, sizeof(log) - (size_t)n, "{not json\n");	       /* 17 */
	n += snprintf(log + n, sizeof(log) - (size_t)n, "%s\n", EV_ATTEMPT);   /* 18 */
	n += snprintf(log + n, sizeof(log) - (size_t)n, "\"a string\"\n");     /* 19 */
	n += snprintf(log + n, sizeof(log) - (size_t)n, "{\"ts_ms\":1}\n");    /* 20 */
	n += snprintf(log + n, sizeof(log) - (size_t)n, "{\"event\":null}\n"); /* 21 */
	n += snprintf(log + n, sizeof(log) - (size_t)n,
		      "{\"schema_version\":\"1\",\"event\":\"flow_end\"}\n"); /* 22 */
	n += snprintf(log + n, sizeof(log) - (size_t)n, "%s", EV_ATTEMPT);    /* 23, no \n */
	j = report_json_of(log, (size_t)n, &err);
	assert_string_equal(err.buf, "log: line 17: not JSON\n"
				     "log: line 19: not a JSON object\n"
				     "log: line 20: no 'event' field\n"
				     "log: line 21: 'event' is not a string\n"
				     "log: line 22: unsupported 'schema_version' (expected 1)\n");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "lines"), "total")),
			 23);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "lines"), "malformed")), 5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "events"), "total")),
			 18);
	json_decref(j);
	capture_free(&err);
}

static void truncated_last_line_is_reported_and_earlier_lines_count(void **state)
{
	char log[1024];
	struct capture err;
	json_t *j;
	int n;

	(void)state;
	n = snprintf(log, sizeof(log), "%s\n%.40s", EV_ATTEMPT, EV_ATTEMPT);
	j = report_json_of(log, (size_t)n, &err);
	assert_string_equal(err.buf, "log: line 2: not JSON\n");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "events"), "total")),
			 1);
	json_decref(j);
	capture_free(&err);
}

static void garbage_bytes_never_stop_the_report(void **state)
{
	char log[4096];
	struct capture err;
	json_t *j;
	uint32_t x = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(log); i++) {
		x = x * 1103515245u + 12345u;
		log[i] = (char)(x >> 16);
	}
	j = report_json_of(log, sizeof(log), &err);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "events"), "total")),
			 0);
	assert_true(json_integer_value(json_object_get(json_object_get(j, "lines"), "malformed")) >
		    0);
	json_decref(j);
	capture_free(&err);
}

static void empty_log_gives_an_empty_report(void **state)
{
	struct capture out, err;

	(void)state;
	assert_int_equal(report_of("", 0, CF_REPORT_TEXT, &out, &err), 0);
	assert_non_null(strstr(out.buf, "lines  0 (0 events"));
	assert_non_null(strstr(out.buf, "time   unknown"));
	assert_int_equal(err.len, 0);
	capture_free(&out);
	capture_free(&err);
	assert_int_equal(report_of("", 0, CF_REPORT_MARKDOWN, &out, &err), 0);
	assert_non_null(strstr(out.buf, "## Highlights\n\n- 0 events\n- No policy violations"));
	capture_free(&out);
	capture_free(&err);
}

static void messages_stop_after_the_cap_with_a_count_of_the_rest(void **state)
{
	size_t n = CF_REPORT_MAX_MESSAGES + 50;
	char *log = malloc(n * 2);
	struct capture err;
	size_t lines = 0;
	json_t *j;

	(void)state;
	assert_non_null(log);
	for (size_t i = 0; i < n; i++) {
		log[2 * i] = 'x';
		log[2 * i + 1] = '\n';
	}
	j = report_json_of(log, n * 2, &err);
	for (const char *p = err.buf; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, CF_REPORT_MAX_MESSAGES + 1);
	assert_non_null(strstr(err.buf, "log: line 100: not JSON\n"
					"log: 50 more malformed lines not shown\n"));
	assert_null(strstr(err.buf, "line 101"));
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "lines"), "malformed")),
	    (json_int_t)n);
	json_decref(j);
	capture_free(&err);
	free(log);
}

/* A valid event padded with spaces to exactly @len bytes. */
static void padded_event(char *buf, size_t len)
{
	size_t l = strlen(EV_ATTEMPT);

	memcpy(buf, EV_ATTEMPT, l - 1);
	memset(buf + l - 1, ' ', len - l);
	buf[len - 1] = '}';
}

static void over_long_line_is_skipped_and_the_next_one_read(void **state)
{
	size_t max = CF_REPORT_MAX_LINE;
	size_t total = strlen(EV_ATTEMPT) + 1 + (max + 1) + 1 + max + 1;
	char *log = malloc(total);
	struct capture err;
	size_t o = 0;
	json_t *j;

	(void)state;
	assert_non_null(log);
	o += (size_t)sprintf(log, "%s\n", EV_ATTEMPT); /* line 1 */
	padded_event(log + o, max + 1);		       /* line 2: one byte too long */
	o += max + 1;
	log[o++] = '\n';
	padded_event(log + o, max); /* line 3: exactly the limit */
	o += max;
	log[o++] = '\n';
	assert_int_equal(o, total);
	j = report_json_of(log, total, &err);
	assert_string_equal(err.buf, "log: line 2: longer than 1048576 bytes\n");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "events"), "total")),
			 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "lines"), "total")),
			 3);
	json_decref(j);
	capture_free(&err);
	free(log);
}

static void over_long_last_line_without_newline_is_reported(void **state)
{
	size_t max = CF_REPORT_MAX_LINE;
	char *log = malloc(max + 2);
	struct capture err;
	json_t *j;

	(void)state;
	assert_non_null(log);
	padded_event(log, max + 2);
	j = report_json_of(log, max + 2, &err);
	assert_string_equal(err.buf, "log: line 1: longer than 1048576 bytes\n");
	json_decref(j);
	capture_free(&err);
	free(log);
}

static void writing_the_report_to_a_full_device_is_eio(void **state)
{
	FILE *full = fopen("/dev/full", "w");

	(void)state;
	if (!full)
		skip();
	assert_int_equal(cf_report_run(GOLDEN_DIR "basic.jsonl", CF_REPORT_TEXT, full, NULL), -EIO);
	fclose(full);
}

static void null_err_out_is_allowed(void **state)
{
	struct capture out;
	FILE *in = fmemopen("x\n", 2, "r");

	(void)state;
	capture_open(&out);
	assert_int_equal(cf_report_stream(in, "log", CF_REPORT_TEXT, out.f, NULL), 0);
	capture_close(&out);
	assert_non_null(strstr(out.buf, "1 malformed"));
	capture_free(&out);
	fclose(in);
}

/* --- the aggregator ------------------------------------------------------------ */

static enum cf_agg_result add_json(struct cf_agg *a, const char *text)
{
	json_error_t jerr;
	json_t *ev = json_loads(text, JSON_ALLOW_NUL, &jerr);
	enum cf_agg_result r;

	if (!ev)
		fail_msg("test event does not parse: %s: %s", text, jerr.text);
	r = cf_agg_add(a, ev);
	json_decref(ev);
	return r;
}

static void ranking_is_count_descending_then_key_ascending(void **state)
{
	struct cf_tally t;
	struct cf_rank *r;
	size_t n;

	(void)state;
	cf_tally_init(&t, 100);
	cf_tally_add(&t, "b", 1, 2);
	cf_tally_add(&t, "c", 1, 5);
	cf_tally_add(&t, "a", 1, 2);
	cf_tally_add(&t, "B", 1, 2); /* bytewise: "B" < "a" */
	cf_tally_add(&t, "aa", 2, 2);
	cf_tally_add(&t, "d", 1, 1);
	assert_int_equal(cf_tally_rank(&t, &r, &n), 0);
	assert_int_equal(n, 6);
	assert_string_equal(r[0].key, "c");
	assert_string_equal(r[1].key, "B");
	assert_string_equal(r[2].key, "a");
	assert_string_equal(r[3].key, "aa");
	assert_string_equal(r[4].key, "b");
	assert_string_equal(r[5].key, "d");
	assert_int_equal(r[0].count, 5);
	assert_int_equal(r[5].count, 1);
	free(r);
	cf_tally_free(&t);
}

static void empty_tally_ranks_to_nothing(void **state)
{
	struct cf_tally t;
	struct cf_rank *r = (void *)1;
	size_t n = 9;

	(void)state;
	cf_tally_init(&t, 10);
	assert_int_equal(cf_tally_rank(&t, &r, &n), 0);
	assert_null(r);
	assert_int_equal(n, 0);
	assert_null(cf_tally_find(&t, "x", 1));
	cf_tally_free(&t);
}

static void keys_over_the_cap_are_counted_as_other(void **state)
{
	struct cf_tally t;
	struct cf_rank *r;
	char key[32];
	size_t n;

	(void)state;
	cf_tally_init(&t, CF_TALLY_MAX_KEYS);
	for (unsigned int i = 0; i < CF_TALLY_MAX_KEYS + 25; i++) {
		int l = snprintf(key, sizeof(key), "k%05u", i);

		cf_tally_add(&t, key, (size_t)l, 1);
	}
	/* Keys seen before the cap still count. */
	assert_non_null(cf_tally_add(&t, "k00000", 6, 1));
	assert_null(cf_tally_add(&t, "new", 3, 4));
	assert_int_equal(t.n, CF_TALLY_MAX_KEYS);
	assert_int_equal(t.other, 25 + 4);
	assert_int_equal(cf_tally_distinct(&t), CF_TALLY_MAX_KEYS + 1);
	assert_int_equal(cf_tally_rank(&t, &r, &n), 0);
	assert_int_equal(n, CF_TALLY_MAX_KEYS + 1);
	assert_string_equal(r[0].key, CF_TALLY_OTHER); /* ranked like any other key */
	assert_int_equal(r[0].count, 29);
	assert_null(r[0].entry);
	assert_string_equal(r[1].key, "k00000");
	assert_int_equal(r[1].count, 2);
	free(r);
	cf_tally_free(&t);
}

static void sub_tallies_are_capped(void **state)
{
	struct cf_tally t;
	struct cf_tally_entry *e;
	char key[16];

	(void)state;
	cf_tally_init(&t, 10);
	e = cf_tally_add(&t, "name", 4, 1);
	assert_non_null(e);
	for (unsigned int i = 0; i < CF_TALLY_MAX_SUB_KEYS + 3; i++) {
		int l = snprintf(key, sizeof(key), "ip%u", i);

		cf_tally_add_sub(e, key, (size_t)l, 1);
	}
	assert_int_equal(e->sub->n, CF_TALLY_MAX_SUB_KEYS);
	assert_int_equal(e->sub->other, 3);
	cf_tally_free(&t);
}

static void long_keys_are_cut_on_a_character_boundary(void **state)
{
	char key[600];
	struct cf_tally t;
	struct cf_tally_entry *e;
	size_t klen;

	(void)state;
	/* 'a' then 2-byte characters: the limit falls inside a character. */
	key[0] = 'a';
	for (size_t i = 1; i + 1 < sizeof(key); i += 2) {
		key[i] = '\xc3';
		key[i + 1] = '\xa9'; /* é */
	}
	cf_tally_init(&t, 10);
	e = cf_tally_add(&t, key, sizeof(key) - 1, 1);
	assert_non_null(e);
	klen = strlen(e->key);
	assert_true(klen <= CF_TALLY_KEY_MAX);
	assert_int_equal(klen, 1 + 2 * ((CF_TALLY_KEY_MAX - 3 - 1) / 2) + 3);
	assert_memory_equal(e->key + klen - 3, "\xe2\x80\xa6", 3);
	assert_memory_equal(e->key + klen - 5, "\xc3\xa9", 2);
	/* The same long key finds the same entry. */
	assert_ptr_equal(cf_tally_find(&t, key, sizeof(key) - 1), e);
	assert_ptr_equal(cf_tally_add(&t, key, sizeof(key) - 1, 1), e);
	assert_int_equal(e->count, 2);
	cf_tally_free(&t);
}

static void nul_and_invalid_bytes_in_keys_become_replacement_characters(void **state)
{
	struct cf_tally t;
	struct cf_tally_entry *e;

	(void)state;
	cf_tally_init(&t, 10);
	e = cf_tally_add(&t, "a\0b\xff", 4, 1);
	assert_non_null(e);
	assert_string_equal(e->key, "a\xef\xbf\xbd"
				    "b\xef\xbf\xbd");
	cf_tally_free(&t);
}

static void aggregator_classifies_events(void **state)
{
	struct cf_agg *a;

	(void)state;
	assert_int_equal(cf_agg_new(&a), 0);
	assert_int_equal(add_json(a, EV_ATTEMPT), CF_AGG_COUNTED);
	assert_int_equal(add_json(a, "{\"event\":\"flow_end\"}"), CF_AGG_COUNTED);
	assert_int_equal(add_json(a, "{\"event\":\"later_event\",\"schema_version\":1}"),
			 CF_AGG_UNKNOWN_EVENT);
	assert_int_equal(add_json(a, "[]"), CF_AGG_NOT_OBJECT);
	assert_int_equal(add_json(a, "{}"), CF_AGG_NO_EVENT);
	assert_int_equal(add_json(a, "{\"event\":[1]}"), CF_AGG_EVENT_NOT_STRING);
	assert_int_equal(add_json(a, "{\"event\":\"flow_end\",\"schema_version\":2}"),
			 CF_AGG_BAD_VERSION);
	assert_int_equal(add_json(a, "{\"event\":\"flow_end\",\"schema_version\":1.0}"),
			 CF_AGG_BAD_VERSION);
	assert_int_equal(a->events, 2);
	assert_int_equal(a->unknown_events, 1);
	assert_int_equal(a->attempts, 1);
	assert_int_equal(a->attempts_proxied, 1);
	assert_int_equal(a->flows_ended, 1);
	assert_true(a->have_ts);
	assert_int_equal(a->first_ts_ms, 1000);
	assert_string_equal(cf_agg_result_str(CF_AGG_NO_EVENT), "no 'event' field");
	assert_string_equal(cf_agg_result_str(CF_AGG_NOT_OBJECT), "not a JSON object");
	cf_agg_free(a);
	cf_agg_free(NULL);
}

static void datagram_flows_count_as_connections_and_traffic(void **state)
{
	struct cf_agg *a;
	struct cf_tally_entry *e;

	(void)state;
	assert_int_equal(cf_agg_new(&a), 0);
	assert_int_equal(add_json(a, "{\"schema_version\":1,\"event\":\"datagram_flow_start\","
				     "\"protocol\":\"udp\",\"remote_addr\":\"192.0.2.5:53\","
				     "\"remote_ip\":\"192.0.2.5\",\"via_proxy\":false,"
				     "\"status\":\"ok\",\"error\":null,\"comm\":\"dig\"}"),
			 CF_AGG_COUNTED);
	assert_int_equal(add_json(a, "{\"schema_version\":1,\"event\":\"datagram_flow_start\","
				     "\"protocol\":\"icmpv4\",\"remote_addr\":\"192.0.2.6\","
				     "\"remote_ip\":\"192.0.2.6\",\"via_proxy\":false,"
				     "\"status\":\"error\",\"error\":\"Operation not permitted\"}"),
			 CF_AGG_COUNTED);
	assert_int_equal(add_json(a, "{\"schema_version\":1,\"event\":\"datagram_flow_end\","
				     "\"protocol\":\"udp\",\"remote_addr\":\"192.0.2.5:53\","
				     "\"bytes_sent\":40,\"bytes_received\":120,\"packets_sent\":1,"
				     "\"packets_received\":1}"),
			 CF_AGG_COUNTED);
	assert_int_equal(a->unknown_events, 0);
	/* a datagram flow's start is its attempt and its result */
	assert_int_equal(a->attempts, 2);
	assert_int_equal(a->attempts_direct, 2);
	assert_int_equal(a->results_ok, 1);
	assert_int_equal(a->results_error, 1);
	assert_non_null(cf_tally_find(&a->errors, "Operation not permitted", 23));
	assert_non_null(cf_tally_find(&a->targets, "192.0.2.6", 9));
	e = cf_tally_find(&a->processes, "dig", 3);
	assert_non_null(e);
	assert_int_equal(e->count, 1);
	assert_int_equal(a->flows_ended, 1);
	assert_int_equal(a->bytes_sent, 40);
	assert_int_equal(a->bytes_received, 120);
	e = cf_tally_find(&a->protocols, "udp", 3);
	assert_non_null(e);
	assert_int_equal(e->count, 2);
	cf_agg_free(a);
}

static void fields_of_the_wrong_type_count_as_missing(void **state)
{
	struct cf_agg *a;

	(void)state;
	assert_int_equal(cf_agg_new(&a), 0);
	assert_int_equal(add_json(a, "{\"event\":\"connect_attempt\",\"remote_addr\":5,"
				     "\"via_proxy\":\"yes\",\"comm\":[],\"protocol\":1}"),
			 CF_AGG_COUNTED);
	assert_int_equal(add_json(a, "{\"event\":\"connect_result\",\"status\":true}"),
			 CF_AGG_COUNTED);
	assert_int_equal(add_json(a, "{\"event\":\"flow_end\",\"bytes_sent\":-5,"
				     "\"bytes_received\":\"9\"}"),
			 CF_AGG_COUNTED);
	assert_int_equal(add_json(a,
				  "{\"event\":\"dns_answer\",\"answer_ips\":[1,null,\"192.0.2.1\"],"
				  "\"qname\":7}"),
			 CF_AGG_COUNTED);
	assert_int_equal(a->attempts, 1);
	assert_int_equal(a->attempts_proxied + a->attempts_direct, 0);
	assert_non_null(cf_tally_find(&a->targets, CF_TALLY_NONE, strlen(CF_TALLY_NONE)));
	assert_int_equal(a->processes.n, 0);
	assert_int_equal(a->protocols.n, 0);
	assert_int_equal(a->results_ok + a->results_error, 0);
	assert_int_equal(a->bytes_sent + a->bytes_received, 0);
	assert_non_null(cf_tally_find(&a->ip_names, "192.0.2.1", 9));
	assert_int_equal(a->ip_names.n, 1);
	cf_agg_free(a);
}

static void connections_are_attributed_to_the_latest_name_of_their_ip(void **state)
{
	struct cf_agg *a;
	struct cf_tally_entry *e;

	(void)state;
	assert_int_equal(cf_agg_new(&a), 0);
	add_json(a, "{\"event\":\"dns_answer\",\"qname\":\"one.example\","
		    "\"answer_ips\":[\"192.0.2.1\"]}");
	add_json(a, "{\"event\":\"connect_attempt\",\"remote_addr\":\"192.0.2.1:80\","
		    "\"remote_ip\":\"192.0.2.1\"}");
	add_json(a, "{\"event\":\"dns_answer\",\"qname\":\"two.example\","
		    "\"answer_ips\":[\"192.0.2.1\"]}");
	add_json(a, "{\"event\":\"connect_attempt\",\"remote_addr\":\"192.0.2.1:80\","
		    "\"remote_ip\":\"192.0.2.1\"}");
	add_json(a, "{\"event\":\"connect_attempt\",\"remote_addr\":\"192.0.2.9:80\","
		    "\"remote_ip\":\"192.0.2.9\"}");
	e = cf_tally_find(&a->correlations, "one.example", 11);
	assert_non_null(e);
	assert_int_equal(e->count, 1);
	e = cf_tally_find(&a->correlations, "two.example", 11);
	assert_non_null(e);
	assert_int_equal(e->count, 1);
	assert_int_equal(a->correlations.n, 2); /* 192.0.2.9 was never resolved */
	/* The target lists every name that resolved to its IP. */
	e = cf_tally_find(&a->targets, "192.0.2.1:80", 12);
	assert_non_null(e);
	assert_int_equal(e->count, 2);
	assert_int_equal(cf_agg_target_names(a, e)->n, 2);
	assert_null(cf_agg_target_names(a, cf_tally_find(&a->targets, "192.0.2.9:80", 12)));
	cf_agg_free(a);
}

static void distinct_targets_over_the_cap_show_as_other_in_the_report(void **state)
{
	size_t n = CF_TALLY_MAX_KEYS + 30;
	size_t cap = n * 120;
	char *log = malloc(cap);
	struct capture err;
	size_t o = 0;
	json_t *j, *first;

	(void)state;
	assert_non_null(log);
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(
		    log + o, cap - o,
		    "{\"event\":\"connect_attempt\",\"remote_addr\":\"10.%zu.%zu.1:80\"}\n",
		    i / 256, i % 256);
	j = report_json_of(log, o, &err);
	first = json_array_get(json_object_get(j, "top_targets"), 0);
	assert_string_equal(json_string_value(json_object_get(first, "key")), CF_TALLY_OTHER);
	assert_int_equal(json_integer_value(json_object_get(first, "count")), 30);
	assert_int_equal(json_array_size(json_object_get(j, "top_targets")), 100);
	json_decref(j);
	capture_free(&err);
	free(log);
}

/* --- rendering -------------------------------------------------------------- */

static void text_escapes_controls_and_bidi_and_markdown_escapes_specials(void **state)
{
	struct capture out;
	size_t w;

	(void)state;
	capture_open(&out);
	w = cf_fput_escaped(out.f, "a\x1b[1m\x7f\xc2\x9b\xe2\x80\xae\xff|*_", 15, CF_ESCAPE_TEXT);
	fputc('\n', out.f);
	cf_fput_escaped(out.f, "a|b*c_[x](y)<z>&`q`\\~", 21, CF_ESCAPE_MARKDOWN);
	capture_close(&out);
	assert_string_equal(out.buf, "a\\x1b[1m\\x7f\\u009b\\u202e\\xff|*_\n"
				     "a\\|b\\*c\\_\\[x\\](y)\\<z\\>&amp;\\`q\\`\\\\\\~");
	assert_int_equal(w, 1 + 4 + 3 + 4 + 6 + 6 + 4 + 3);
	assert_int_equal(cf_escaped_width("\xc3\xa9t\xc3\xa9", CF_ESCAPE_TEXT), 3);
	capture_free(&out);
}

static void timestamps_are_formatted_in_utc_with_milliseconds(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(cf_format_ts_ms(1714564800250, buf, sizeof(buf)),
			    "2024-05-01T12:00:00.250Z");
	assert_string_equal(cf_format_ts_ms(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
	assert_string_equal(cf_format_ts_ms(-1, buf, sizeof(buf)), "1969-12-31T23:59:59.999Z");
}

static void text_lists_are_cut_with_a_count_of_the_rest(void **state)
{
	struct cf_list_spec s = {.limit = 2};
	struct cf_tally t;
	struct capture out;
	struct cf_agg *a;

	(void)state;
	assert_int_equal(cf_agg_new(&a), 0);
	cf_tally_init(&t, 10);
	cf_tally_add(&t, "x", 1, 3);
	cf_tally_add(&t, "long-key", 8, 12);
	cf_tally_add(&t, "y", 1, 1);
	capture_open(&out);
	assert_int_equal(cf_list_text(out.f, a, &t, &s, "  "), 0);
	capture_close(&out);
	assert_string_equal(out.buf, "  long-key  12\n"
				     "  x          3\n"
				     "  \xe2\x80\xa6 1 more\n");
	capture_free(&out);
	cf_tally_free(&t);
	cf_agg_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(golden_clean_run_log_renders_as_expected_in_all_formats),
	    cmocka_unit_test(golden_damaged_hostile_log_renders_as_expected_in_all_formats),
	    cmocka_unit_test(missing_file_is_enoent),
	    cmocka_unit_test(directory_is_eisdir),
	    cmocka_unit_test(unknown_format_is_einval),
	    cmocka_unit_test(malformed_lines_are_reported_with_their_numbers_and_skipped),
	    cmocka_unit_test(truncated_last_line_is_reported_and_earlier_lines_count),
	    cmocka_unit_test(garbage_bytes_never_stop_the_report),
	    cmocka_unit_test(empty_log_gives_an_empty_report),
	    cmocka_unit_test(messages_stop_after_the_cap_with_a_count_of_the_rest),
	    cmocka_unit_test(over_long_line_is_skipped_and_the_next_one_read),
	    cmocka_unit_test(over_long_last_line_without_newline_is_reported),
	    cmocka_unit_test(writing_the_report_to_a_full_device_is_eio),
	    cmocka_unit_test(null_err_out_is_allowed),
	    cmocka_unit_test(ranking_is_count_descending_then_key_ascending),
	    cmocka_unit_test(empty_tally_ranks_to_nothing),
	    cmocka_unit_test(keys_over_the_cap_are_counted_as_other),
	    cmocka_unit_test(sub_tallies_are_capped),
	    cmocka_unit_test(long_keys_are_cut_on_a_character_boundary),
	    cmocka_unit_test(nul_and_invalid_bytes_in_keys_become_replacement_characters),
	    cmocka_unit_test(aggregator_classifies_events),
	    cmocka_unit_test(datagram_flows_count_as_connections_and_traffic),
	    cmocka_unit_test(fields_of_the_wrong_type_count_as_missing),
	    cmocka_unit_test(connections_are_attributed_to_the_latest_name_of_their_ip),
	    cmocka_unit_test(distinct_targets_over_the_cap_show_as_other_in_the_report),
	    cmocka_unit_test(text_escapes_controls_and_bidi_and_markdown_escapes_specials),
	    cmocka_unit_test(timestamps_are_formatted_in_utc_with_milliseconds),
	    cmocka_unit_test(text_lists_are_cut_with_a_count_of_the_rest),
	    cmocka_unit_test(original_targets_and_dns_policy_views),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
