// SPDX-License-Identifier: MIT
/*
 * --report: read a flow log and render it.
 *
 * Theory of operation: a fixed buffer (CF_REPORT_MAX_LINE plus one read
 * chunk) is filled with fread() and cut at '\n' with memchr(); each line is
 * parsed with jansson and handed to cf_agg_add(), then freed. Memory is the
 * buffer, one parsed line and the aggregator's bounded tallies, so a log of
 * any length is read in one pass. A line that is too long is skipped without
 * being buffered. Rendering then walks the aggregator once per format.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "obs/agg.h"
#include "obs/compat.h"
#include "obs/render.h"
#include "obs/report.h"
#include "obs/text.h"
#include "util/cleanup.h"

_Static_assert(CF_REPORT_TEXT == CF_FORMAT_TEXT && CF_REPORT_JSON == CF_FORMAT_JSON &&
		   CF_REPORT_MARKDOWN == CF_FORMAT_MARKDOWN,
	       "report formats follow enum cf_format");

#define REPORT_SCHEMA_VERSION 2
#define READ_CHUNK ((size_t)64 * 1024)
#define REPORT_TOP 10	    /* entries per ranked list in text and Markdown */
#define REPORT_SUB_TOP 5    /* sub-entries per entry in text and Markdown */
#define REPORT_JSON_TOP 100 /* entries per ranked list in JSON (sub-lists: all) */

/* What reading the log found, besides the events themselves. */
struct read_stats {
	uint64_t lines, blank, events, unknown_events, malformed;
};

struct report {
	const char *name;
	struct read_stats st;
	struct cf_agg *agg;
};

/* --- reading -------------------------------------------------------------- */

struct reader {
	FILE *f;
	char *buf;
	size_t cap, start, end;
	bool eof;
};

/*
 * Return 1 with the next line (without its '\n') in @line/@len, 0 at the end,
 * or -errno. A line over CF_REPORT_MAX_LINE bytes is consumed but not kept:
 * it comes back empty with *@too_long set.
 */
static int next_line(struct reader *r, const char **line, size_t *len, bool *too_long)
{
	*too_long = false;
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		size_t n;

		if (nl || r->eof) {
			if (!nl && r->start == r->end && !*too_long)
				return 0;
			*line = r->buf + r->start;
			*len = nl ? (size_t)(nl - *line) : r->end - r->start;
			r->start = nl ? (size_t)(nl - r->buf) + 1 : r->end;
			if (*len > CF_REPORT_MAX_LINE)
				*too_long = true;
			if (*too_long)
				*len = 0;
			return 1;
		}
		if (r->end - r->start > CF_REPORT_MAX_LINE) {
			*too_long = true; /* drop what we have, keep looking for the end */
			r->start = r->end = 0;
		} else if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		errno = 0;
		n = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
		r->end += n;
		if (n == 0) {
			if (ferror(r->f))
				return errno ? -errno : -EIO;
			r->eof = true;
		}
	}
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r", s[i]) || s[i] == '\0')
			return false;
	return true;
}

static void malformed(struct report *rep, FILE *err_out, uint64_t lineno, const char *what)
{
	if (rep->st.malformed++ >= CF_REPORT_MAX_MESSAGES || !err_out)
		return;
	cf_fput_escaped(err_out, rep->name, strlen(rep->name), CF_ESCAPE_TEXT);
	fprintf(err_out, ": line %" PRIu64 ": %s\n", lineno, what);
}

static void take_line(struct report *rep, FILE *err_out, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *ev;
	enum cf_agg_result res;

	if (is_blank(line, len)) {
		rep->st.blank++;
		return;
	}
	ev = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!ev) {
		malformed(rep, err_out, rep->st.lines, "not JSON");
		return;
	}
	res = cf_agg_add(rep->agg, ev);
	json_decref(ev);
	if (res == CF_AGG_COUNTED)
		rep->st.events++;
	else if (res == CF_AGG_UNKNOWN_EVENT)
		rep->st.unknown_events++;
	else
		malformed(rep, err_out, rep->st.lines, cf_agg_result_str(res));
}

static int read_log(struct report *rep, FILE *in, FILE *err_out)
{
	char too_long_msg[64];
	struct reader rd = {.f = in, .cap = CF_REPORT_MAX_LINE + 1 + READ_CHUNK};
	const char *line = NULL;
	size_t len = 0;
	bool too_long;
	int r;

	rd.buf = malloc(rd.cap);
	if (!rd.buf)
		return -ENOMEM;
	snprintf(too_long_msg, sizeof(too_long_msg), "longer than %zu bytes", CF_REPORT_MAX_LINE);
	while ((r = next_line(&rd, &line, &len, &too_long)) > 0) {
		rep->st.lines++;
		if (too_long)
			malformed(rep, err_out, rep->st.lines, too_long_msg);
		else
			take_line(rep, err_out, line, len);
	}
	free(rd.buf);
	if (err_out && rep->st.malformed > CF_REPORT_MAX_MESSAGES) {
		cf_fput_escaped(err_out, rep->name, strlen(rep->name), CF_ESCAPE_TEXT);
		fprintf(err_out, ": %" PRIu64 " more malformed lines not shown\n",
			rep->st.malformed - CF_REPORT_MAX_MESSAGES);
	}
	return r;
}

/* --- shared pieces ---------------------------------------------------------- */

/* "2024-05-01T12:00:00.000Z .. 2024-05-01T12:00:05.250Z (5.250 s)" or "unknown". */
static void print_time_span(FILE *f, const struct cf_agg *a)
{
	char from[32], to[32];
	int64_t d;

	if (!a->have_ts) {
		fputs("unknown", f);
		return;
	}
	d = a->last_ts_ms - a->first_ts_ms;
	fprintf(f, "%s .. %s (%" PRId64 ".%03" PRId64 " s)",
		cf_format_ts_ms(a->first_ts_ms, from, sizeof(from)),
		cf_format_ts_ms(a->last_ts_ms, to, sizeof(to)), d / 1000, d % 1000);
}

static const struct cf_list_spec plain = {.limit = REPORT_TOP};
static const struct cf_list_spec errors_spec = {
    .limit = REPORT_TOP, .sub_name = "targets", .sub_limit = REPORT_SUB_TOP};
static const struct cf_list_spec failures_spec = {
    .limit = REPORT_TOP, .note_name = "phase", .sub_name = "details", .sub_limit = REPORT_SUB_TOP};
static const struct cf_list_spec names_spec = {
    .limit = REPORT_TOP, .sub_name = "answer IPs", .sub_limit = REPORT_SUB_TOP};
static const struct cf_list_spec corr_spec = {
    .limit = REPORT_TOP, .sub_name = "targets", .sub_limit = REPORT_SUB_TOP};
static const struct cf_list_spec targets_spec = {.limit = REPORT_TOP,
						 .sub_name = "DNS names",
						 .sub_limit = REPORT_SUB_TOP,
						 .names_of_target = true};
static const struct cf_list_spec procs_spec = {
    .limit = REPORT_TOP, .sub_name = "executables", .sub_limit = REPORT_SUB_TOP};

struct section {
	const char *title; /* text label / Markdown heading */
	const struct cf_tally *(*tally)(const struct cf_agg *a);
	const struct cf_list_spec *spec;
	const char *key_title; /* Markdown first column */
};

#define TALLY_GETTER(field)                                                                        \
	static const struct cf_tally *get_##field(const struct cf_agg *a)                          \
	{                                                                                          \
		return &a->field;                                                                  \
	}
TALLY_GETTER(v_reason)
TALLY_GETTER(v_control)
TALLY_GETTER(v_domain)
TALLY_GETTER(v_cidr)
TALLY_GETTER(v_target)
TALLY_GETTER(dns_names)
TALLY_GETTER(qtypes)

static const struct section violation_sections[] = {
    {"by reason_code", get_v_reason, &plain, "reason_code"},
    {"by control", get_v_control, &plain, "control"},
    {"by matched_domain", get_v_domain, &plain, "matched_domain"},
    {"by matched_cidr", get_v_cidr, &plain, "matched_cidr"},
    {"by target", get_v_target, &plain, "remote"},
};

static const struct section dns_sections[] = {
    {"top names", get_dns_names, &names_spec, "qname"},
    {"query types", get_qtypes, &plain, "qtype"},
};

/* --- text ----------------------------------------------------------------- */

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static int text_sections(FILE *f, const struct cf_agg *a, const struct section *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "  %s\n", s[i].title);
		if (cf_list_text(f, a, s[i].tally(a), s[i].spec, "    ") < 0)
			return -ENOMEM;
	}
	return 0;
}

static int render_text(const struct report *rep, FILE *f)
{
	const struct cf_agg *a = rep->agg;
	int r = 0;

	fputs("childflow report: ", f);
	cf_fput_escaped(f, rep->name, strlen(rep->name), CF_ESCAPE_TEXT);
	fprintf(f,
		"\n  lines  %" PRIu64 " (%" PRIu64 " events, %" PRIu64 " unknown events, %" PRIu64
		" malformed, %" PRIu64 " blank)\n  time   ",
		rep->st.lines, rep->st.events, rep->st.unknown_events, rep->st.malformed,
		rep->st.blank);
	print_time_span(f, a);

	fprintf(f, "\n\nEvents: %" PRIu64 "\n", a->events);
	r |= cf_list_text(f, a, &a->by_type, &plain, "  ");
	fputs("\nProtocols (events per \"protocol\" value)\n", f);
	r |= cf_list_text(f, a, &a->protocols, &plain, "  ");

	fprintf(f,
		"\nConnections\n  attempts     %" PRIu64 " (%" PRIu64 " via proxy, %" PRIu64
		" direct)\n  results      %" PRIu64 " ok, %" PRIu64
		" failed\n  flows ended  %" PRIu64 " (%" PRIu64 " bytes sent, %" PRIu64
		" bytes received)\n",
		a->attempts, a->attempts_proxied, a->attempts_direct, a->results_ok,
		a->results_error, a->flows_ended, a->bytes_sent, a->bytes_received);

	fprintf(f, "\nPolicy violations: %" PRIu64 "\n", a->violations);
	if (a->violations)
		r |= text_sections(f, a, violation_sections, CF_ARRAY_SIZE(violation_sections));
	fprintf(f, "\nConnect errors: %" PRIu64 "\n", a->results_error);
	if (a->results_error)
		r |= cf_list_text(f, a, &a->errors, &errors_spec, "  ");
	fprintf(f, "\nRuntime failures: %" PRIu64 "\n", a->failures);
	if (a->failures)
		r |= cf_list_text(f, a, &a->f_reason, &failures_spec, "  ");
	fputs("\nInbound (--publish): ", f);
	r |= cf_inbound_text(f, a, 0, CF_ESCAPE_TEXT);
	fputc('\n', f);

	fprintf(f, "\nDNS: %" PRIu64 " %s, %" PRIu64 " %s (%" PRIu64 " synthetic_empty)\n",
		a->dns_queries, plural(a->dns_queries, "query", "queries"), a->dns_answers,
		plural(a->dns_answers, "answer", "answers"), a->dns_synthetic);
	if (a->dns_queries || a->dns_answers)
		r |= text_sections(f, a, dns_sections, CF_ARRAY_SIZE(dns_sections));
	fputs("\nDNS name -> target correlations\n", f);
	r |= cf_list_text(f, a, &a->correlations, &corr_spec, "  ");
	fputs("\nTop targets\n", f);
	r |= cf_list_text(f, a, &a->targets, &targets_spec, "  ");
	fputs("\nProcesses\n", f);
	r |= cf_list_text(f, a, &a->processes, &procs_spec, "  ");
	return r ? -ENOMEM : 0;
}

/* --- Markdown --------------------------------------------------------------- */

static void md(FILE *f, const char *s)
{
	cf_fput_escaped(f, s, strlen(s), CF_ESCAPE_MARKDOWN);
}

/* The first entry of @t's ranking, or NULL (with @buf owning the ranking). */
static const struct cf_rank *top_of(const struct cf_tally *t, struct cf_rank **buf)
{
	size_t n;

	if (cf_tally_rank(t, buf, &n) < 0 || n == 0)
		return NULL;
	return *buf;
}

static int md_highlights(FILE *f, const struct report *rep)
{
	const struct cf_agg *a = rep->agg;
	cleanup_free struct cf_rank *tr = NULL, *nr = NULL;
	const struct cf_rank *target = top_of(&a->targets, &tr);
	const struct cf_rank *name = top_of(&a->dns_names, &nr);
	const struct cf_tally *tn = target ? cf_agg_target_names(a, target->entry) : NULL;
	int r = 0;

	fprintf(f, "## Highlights\n\n- %" PRIu64 " %s", a->events,
		plural(a->events, "event", "events"));
	if (a->have_ts) {
		fputs(", ", f);
		print_time_span(f, a);
	}
	if (rep->st.malformed)
		fprintf(f, "; **%" PRIu64 " malformed %s skipped**", rep->st.malformed,
			plural(rep->st.malformed, "line", "lines"));
	if (a->violations) {
		fprintf(f, "\n- **%" PRIu64 " policy %s**, most by reason ", a->violations,
			plural(a->violations, "violation", "violations"));
		r |= cf_top_text(f, &a->v_reason, CF_ESCAPE_MARKDOWN);
	} else {
		fputs("\n- No policy violations", f);
	}
	fprintf(f,
		"\n- %" PRIu64 " connection %s (%" PRIu64 " via proxy, %" PRIu64
		" direct), %" PRIu64 " failed",
		a->attempts, plural(a->attempts, "attempt", "attempts"), a->attempts_proxied,
		a->attempts_direct, a->results_error);
	if (a->results_error) {
		fputs(", most often ", f);
		r |= cf_top_text(f, &a->errors, CF_ESCAPE_MARKDOWN);
	}
	if (target) {
		fputs("\n- Top target: ", f);
		md(f, target->key);
		fprintf(f, " (%" PRIu64 ")", target->count);
		if (tn && cf_tally_distinct(tn)) {
			fputs(", resolved from ", f);
			r |= cf_list_inline(f, tn, 3, CF_ESCAPE_MARKDOWN);
		}
	}
	if (name) {
		fputs("\n- Top DNS name: ", f);
		md(f, name->key);
		fprintf(f, " (%" PRIu64 " %s)", name->count,
			plural(name->count, "query", "queries"));
	}
	if (a->failures) {
		fprintf(f, "\n- **%" PRIu64 " runtime %s**: ", a->failures,
			plural(a->failures, "failure", "failures"));
		r |= cf_list_inline(f, &a->f_reason, 3, CF_ESCAPE_MARKDOWN);
	}
	fputs("\n", f);
	return r ? -ENOMEM : 0;
}

static int md_sections(FILE *f, const struct cf_agg *a, const struct section *s, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		fprintf(f, "\n### %c%s\n\n", toupper((unsigned char)s[i].title[0]), s[i].title + 1);
		r |= cf_list_markdown(f, a, s[i].tally(a), s[i].spec, s[i].key_title);
	}
	return r;
}

static int render_markdown(const struct report *rep, FILE *f)
{
	const struct cf_agg *a = rep->agg;
	int r = 0;

	fputs("# childflow report\n\nFlow log: ", f);
	md(f, rep->name);
	fputs("\n\n", f);
	r |= md_highlights(f, rep);

	fprintf(f,
		"\n## Lines\n\n| lines | events | unknown events | malformed | blank |\n"
		"| ---: | ---: | ---: | ---: | ---: |\n| %" PRIu64 " | %" PRIu64 " | %" PRIu64
		" | %" PRIu64 " | %" PRIu64 " |\n",
		rep->st.lines, rep->st.events, rep->st.unknown_events, rep->st.malformed,
		rep->st.blank);
	fprintf(f, "\n## Events: %" PRIu64 "\n\n", a->events);
	r |= cf_list_markdown(f, a, &a->by_type, &plain, "event");
	fputs("\n## Protocols\n\nEvents per `protocol` value.\n\n", f);
	r |= cf_list_markdown(f, a, &a->protocols, &plain, "protocol");
	fprintf(f,
		"\n## Connections\n\n| attempts | via proxy | direct | ok | failed | flows ended "
		"| bytes sent | bytes received |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: "
		"| ---: |\n| %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
		" | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " |\n",
		a->attempts, a->attempts_proxied, a->attempts_direct, a->results_ok,
		a->results_error, a->flows_ended, a->bytes_sent, a->bytes_received);

	fprintf(f, "\n## Policy violations: %" PRIu64 "\n", a->violations);
	if (a->violations)
		r |= md_sections(f, a, violation_sections, CF_ARRAY_SIZE(violation_sections));
	fprintf(f, "\n## Connect errors: %" PRIu64 "\n\n", a->results_error);
	r |= cf_list_markdown(f, a, &a->errors, &errors_spec, "error");
	fprintf(f, "\n## Runtime failures: %" PRIu64 "\n\n", a->failures);
	r |= cf_list_markdown(f, a, &a->f_reason, &failures_spec, "reason_code");
	fputs("\n## Inbound (--publish)\n\n", f);
	r |= cf_inbound_text(f, a, 0, CF_ESCAPE_MARKDOWN);
	fputs(".\n", f);

	fprintf(f, "\n## DNS\n\n%" PRIu64 " %s, %" PRIu64 " %s (%" PRIu64 " synthetic\\_empty).\n",
		a->dns_queries, plural(a->dns_queries, "query", "queries"), a->dns_answers,
		plural(a->dns_answers, "answer", "answers"), a->dns_synthetic);
	if (a->dns_queries || a->dns_answers)
		r |= md_sections(f, a, dns_sections, CF_ARRAY_SIZE(dns_sections));
	fputs("\n## DNS name \xe2\x86\x92 target correlations\n\n", f);
	r |= cf_list_markdown(f, a, &a->correlations, &corr_spec, "DNS name");
	fputs("\n## Top targets\n\n", f);
	r |= cf_list_markdown(f, a, &a->targets, &targets_spec, "target");
	fputs("\n## Processes\n\n", f);
	r |= cf_list_markdown(f, a, &a->processes, &procs_spec, "comm");
	return r ? -ENOMEM : 0;
}

/* --- JSON ----------------------------------------------------------------- */

static json_t *lines_json(const struct read_stats *st)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "total", cf_json_u64(st->lines));
	r |= cf_obj_set(o, "events", cf_json_u64(st->events));
	r |= cf_obj_set(o, "unknown_events", cf_json_u64(st->unknown_events));
	r |= cf_obj_set(o, "malformed", cf_json_u64(st->malformed));
	r |= cf_obj_set(o, "blank", cf_json_u64(st->blank));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *time_json(const struct cf_agg *a)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "first_ts_ms", a->have_ts ? json_integer(a->first_ts_ms) : json_null());
	r |= cf_obj_set(o, "last_ts_ms", a->have_ts ? json_integer(a->last_ts_ms) : json_null());
	r |= cf_obj_set(o, "duration_ms",
			a->have_ts ? json_integer(a->last_ts_ms - a->first_ts_ms) : json_null());
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *traffic_json(const struct cf_agg *a)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "flows_ended", cf_json_u64(a->flows_ended));
	r |= cf_obj_set(o, "bytes_sent", cf_json_u64(a->bytes_sent));
	r |= cf_obj_set(o, "bytes_received", cf_json_u64(a->bytes_received));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *dns_json(const struct cf_agg *a)
{
	const struct cf_list_spec names = {.limit = REPORT_JSON_TOP, .sub_name = "answer_ips"};
	const struct cf_list_spec types = {.limit = REPORT_JSON_TOP};
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "queries", cf_json_u64(a->dns_queries));
	r |= cf_obj_set(o, "answers", cf_json_u64(a->dns_answers));
	r |= cf_obj_set(o, "synthetic_empty", cf_json_u64(a->dns_synthetic));
	r |= cf_obj_set(o, "top_names", cf_list_json(a, &a->dns_names, &names));
	r |= cf_obj_set(o, "qtypes", cf_list_json(a, &a->qtypes, &types));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *limits_json(void)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "max_keys", json_integer(CF_TALLY_MAX_KEYS));
	r |= cf_obj_set(o, "max_sub_keys", json_integer(CF_TALLY_MAX_SUB_KEYS));
	r |= cf_obj_set(o, "max_key_bytes", json_integer(CF_TALLY_KEY_MAX));
	r |= cf_obj_set(o, "list_entries", json_integer(REPORT_JSON_TOP));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The original's top-level fields (docs/report-schema.md, "Fields of the original"). */
static int original_json(json_t *j, const struct report *rep, const struct cf_compat_view *v)
{
	const struct cf_agg *a = rep->agg;
	const struct {
		const char *map, *sorted;
		const struct cf_tally *t;
	} maps[] = {
	    {"protocols", "sorted_protocols", &a->protocols},
	    {"policy_violations", "sorted_policy_violations", &a->v_reason},
	    {"policy_controls", "sorted_policy_controls", &a->v_control},
	    {"policy_matched_domains", "sorted_policy_matched_domains", &a->v_domain},
	    {"connect_errors", "sorted_connect_errors", &a->errors},
	    {"runtime_failures", "sorted_runtime_failures", &a->f_reason},
	    {"runtime_failure_phases", "sorted_runtime_failure_phases", &a->f_phase},
	};
	json_t *versions = json_array();
	int r = 0;

	/* Every event counted was read as version 1 (others are malformed lines). */
	if (versions && a->events + a->unknown_events)
		r |= json_array_append_new(versions, json_integer(1));
	r |= cf_obj_set(j, "flow_log", cf_json_string_sane(rep->name));
	r |= cf_obj_set(j, "schema_versions", versions);
	r |= cf_obj_set(j, "event_counts", cf_compat_event_counts(a));
	r |= cf_obj_set(j, "top_dns_names", cf_compat_names(a, v, REPORT_JSON_TOP, 0));
	r |= cf_obj_set(j, "dns_target_correlations",
			cf_compat_names(a, v, REPORT_JSON_TOP, CF_COMPAT_NAME_TARGETS));
	r |= cf_obj_set(j, "dns_policy_correlations",
			cf_compat_names(a, v, REPORT_JSON_TOP,
					CF_COMPAT_NAME_TARGETS | CF_COMPAT_NAME_DOMAINS));
	r |= cf_obj_set(j, "dns_policy_rows", cf_compat_dns_policy_rows(a, v, REPORT_JSON_TOP));
	r |= cf_obj_set(j, "proxy_usage", cf_compat_proxy_usage(a));
	for (size_t i = 0; i < CF_ARRAY_SIZE(maps); i++) {
		r |= cf_obj_set(j, maps[i].map, cf_compat_map(maps[i].t));
		r |= cf_obj_set(j, maps[i].sorted, cf_compat_ranked(a, maps[i].t, 0));
	}
	r |= cf_obj_set(j, "top_connection_targets", cf_compat_targets(a, v, REPORT_JSON_TOP));
	return r ? -ENOMEM : 0;
}

static int render_json(const struct report *rep, FILE *f)
{
	const struct cf_agg *a = rep->agg;
	const struct cf_list_spec corr = {.limit = REPORT_JSON_TOP, .sub_name = "targets"};
	const struct cf_list_spec procs = {.limit = REPORT_JSON_TOP, .sub_name = "exe"};
	struct cf_compat_view v;
	json_t *j;
	int r;

	if (cf_compat_view_build(a, &v) < 0)
		return -ENOMEM;
	j = json_object();
	r = original_json(j, rep, &v);
	cf_compat_view_free(&v);
	r |= cf_obj_set(j, "schema_version", json_integer(REPORT_SCHEMA_VERSION));
	r |= cf_obj_set(j, "source", cf_json_string_sane(rep->name));
	r |= cf_obj_set(j, "lines", lines_json(&rep->st));
	r |= cf_obj_set(j, "time", time_json(a));
	r |= cf_obj_set(j, "events", cf_json_events(a));
	r |= cf_obj_set(j, "connections", cf_json_connections(a));
	r |= cf_obj_set(j, "traffic", traffic_json(a));
	r |= cf_obj_set(j, "violations", cf_json_violations(a, REPORT_JSON_TOP, true));
	r |= cf_obj_set(j, "connect_error_details", cf_json_connect_errors(a, REPORT_JSON_TOP));
	r |= cf_obj_set(j, "runtime_failure_details", cf_json_runtime_failures(a, REPORT_JSON_TOP));
	r |= cf_obj_set(j, "dns", dns_json(a));
	r |= cf_obj_set(j, "correlations", cf_list_json(a, &a->correlations, &corr));
	r |= cf_obj_set(j, "top_targets", cf_json_top_targets(a, REPORT_JSON_TOP));
	r |= cf_obj_set(j, "processes", cf_list_json(a, &a->processes, &procs));
	r |= cf_obj_set(j, "limits", limits_json());
	r |= cf_obj_set(j, "inbound", cf_json_inbound(a, REPORT_JSON_TOP));
	if (r) {
		json_decref(j);
		return -ENOMEM;
	}
	r = json_dumpf(j, f, JSON_INDENT(2)) < 0 ? -EIO : 0;
	fputc('\n', f);
	json_decref(j);
	return r;
}

/* --- entry points ----------------------------------------------------------- */

int cf_report_stream(FILE *in, const char *name, int format, FILE *out, FILE *err_out)
{
	struct report rep = {.name = name};
	int r;

	if (format != CF_REPORT_TEXT && format != CF_REPORT_JSON && format != CF_REPORT_MARKDOWN)
		return -EINVAL;
	r = cf_agg_new(&rep.agg);
	if (r < 0)
		return r;
	r = read_log(&rep, in, err_out);
	if (r == 0) {
		if (format == CF_REPORT_JSON)
			r = render_json(&rep, out);
		else if (format == CF_REPORT_MARKDOWN)
			r = render_markdown(&rep, out);
		else
			r = render_text(&rep, out);
	}
	cf_agg_free(rep.agg);
	if (r == 0 && (fflush(out) != 0 || ferror(out)))
		r = -EIO;
	return r;
}

int cf_report_run(const char *path, int format, FILE *out, FILE *err_out)
{
	FILE *in;
	int r;

	if (format != CF_REPORT_TEXT && format != CF_REPORT_JSON && format != CF_REPORT_MARKDOWN)
		return -EINVAL;
	in = fopen(path, "re");
	if (!in)
		return -errno;
	r = cf_report_stream(in, path, format, out, err_out);
	fclose(in);
	return r;
}
