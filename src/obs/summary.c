// SPDX-License-Identifier: MIT
/*
 * The post-run summary (--summary): facts of the run from the caller, and
 * what the aggregator counted (docs/summary-schema.md). Text is for people;
 * JSON is one line, so a script can take the last line of stderr even when
 * the command wrote there too.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "obs/agg.h"
#include "obs/compat.h"
#include "obs/flowlog.h"
#include "obs/render.h"
#include "obs/text.h"
#include "util/cleanup.h"

#define SUMMARY_SCHEMA_VERSION 2
#define SUMMARY_TOP 5	    /* entries per ranked list in text */
#define SUMMARY_SUB_TOP 3   /* names per target, targets per error in text */
#define SUMMARY_JSON_TOP 20 /* entries per ranked list in JSON */

/* --- text ----------------------------------------------------------------- */

static bool shell_safe(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "_@%+=:,./-",
			    *s))
			return false;
	return true;
}

/*
 * Print @argv as a shell would need it typed (single quotes where needed);
 * for a terminal (@escape) with control characters escaped, as they are.
 */
static void print_command(FILE *f, char *const *argv, bool escape)
{
	if (!argv || !argv[0]) {
		fputs("none", f);
		return;
	}
	for (size_t i = 0; argv[i]; i++) {
		const char *s = argv[i];

		if (i)
			fputc(' ', f);
		if (shell_safe(s)) {
			fputs(s, f);
			continue;
		}
		fputc('\'', f);
		for (const char *q; (q = strchr(s, '\'')); s = q + 1) {
			if (escape)
				cf_fput_escaped(f, s, (size_t)(q - s), CF_ESCAPE_TEXT);
			else
				fwrite(s, 1, (size_t)(q - s), f);
			fputs("'\\''", f);
		}
		if (escape)
			cf_fput_escaped(f, s, strlen(s), CF_ESCAPE_TEXT);
		else
			fputs(s, f);
		fputc('\'', f);
	}
}

static void print_strv(FILE *f, const char *const *v, const char *sep)
{
	if (!v || !v[0]) {
		fputs("none", f);
		return;
	}
	for (size_t i = 0; v[i]; i++) {
		if (i)
			fputs(sep, f);
		cf_fput_escaped(f, v[i], strlen(v[i]), CF_ESCAPE_TEXT);
	}
}

static int print_violations_text(FILE *f, const struct cf_agg *a)
{
	const char *labels[] = {"by reason_code   ", "by control       ", "by matched_domain"};
	const struct cf_tally *lists[] = {&a->v_reason, &a->v_control, &a->v_domain};

	fprintf(f, "  policy violations  %" PRIu64 "\n", a->violations);
	if (!a->violations)
		return 0;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		fprintf(f, "    %s  ", labels[i]);
		if (cf_list_inline(f, lists[i], SUMMARY_TOP, CF_ESCAPE_TEXT) < 0)
			return -ENOMEM;
		fputc('\n', f);
	}
	return 0;
}

/* Bits per second over @ms of @bytes (0 when too short to say). */
static uint64_t achieved_bps(uint64_t bytes, uint64_t ms)
{
	return ms ? bytes * 8 * 1000 / ms : 0;
}

static void print_rate_text(FILE *f, const struct cf_run_rate *r)
{
	static const char *const dir[2] = {"sent", "received"};

	fprintf(f, "  rate limit         %" PRIu64 " bit/s each way, burst %" PRIu64 " bytes\n",
		r->limit_bps, r->burst_bytes);
	for (int i = 0; i < 2; i++)
		fprintf(f,
			"    %-8s         %" PRIu64 " bytes in %" PRIu64 " ms, %" PRIu64
			" bit/s, %" PRIu64 " datagrams dropped\n",
			dir[i], r->bytes[i], r->ms[i], achieved_bps(r->bytes[i], r->ms[i]),
			r->dropped[i]);
}

static int print_text(const struct cf_obs *o, const struct cf_agg *a, const struct cf_run_info *run,
		      FILE *f)
{
	const struct cf_list_spec targets = {.limit = SUMMARY_TOP,
					     .sub_name = "names",
					     .sub_limit = SUMMARY_SUB_TOP,
					     .names_of_target = true};
	const struct cf_list_spec errors = {
	    .limit = SUMMARY_TOP, .sub_name = "targets", .sub_limit = SUMMARY_SUB_TOP};
	const struct cf_list_spec failures = {.limit = SUMMARY_TOP,
					      .note_name = "phase",
					      .sub_name = "details",
					      .sub_limit = SUMMARY_SUB_TOP};
	int err = cf_obs_flow_log_error(o);

	fputs("childflow summary\n  backend            ", f);
	print_strv(f, (const char *const[]){run->backend, NULL}, "");
	fputs("\n  command            ", f);
	print_command(f, run->command, true);
	fprintf(f, "\n  exit code          %d\n  controls           ", run->exit_code);
	print_strv(f, run->controls, ", ");
	fputs("\n  captures           ", f);
	print_strv(f, run->captures, ", ");
	fputs("\n  flow log           ", f);
	print_strv(f, (const char *const[]){run->flow_log, NULL}, "");
	if (err)
		fprintf(f, " (writing failed: %s; later events are missing from it)",
			strerror(-err));
	if (cf_obs_dropped_events(o))
		fprintf(f, "\n  dropped events     %" PRIu64 " (out of memory)",
			cf_obs_dropped_events(o));
	fprintf(f, "\n  events             %" PRIu64 "  ", a->events);
	if (cf_list_inline(f, &a->by_type, 0, CF_ESCAPE_TEXT) < 0)
		return -ENOMEM;
	fprintf(f,
		"\n  connections        %" PRIu64 " attempts (%" PRIu64 " via proxy, %" PRIu64
		" direct), %" PRIu64 " ok, %" PRIu64 " failed\n",
		a->attempts, a->attempts_proxied, a->attempts_direct, a->results_ok,
		a->results_error);
	if (a->path_socket || a->path_relay || a->path_kernel)
		fprintf(f,
			"  tcp paths          %" PRIu64 " switched socket, %" PRIu64
			" relay, %" PRIu64 " kernel\n",
			a->path_socket, a->path_relay, a->path_kernel);
	fputs("  inbound            ", f);
	if (cf_inbound_text(f, a, SUMMARY_TOP, CF_ESCAPE_TEXT) < 0)
		return -ENOMEM;
	fputs("\n  top targets\n", f);
	if (cf_list_text(f, a, &a->targets, &targets, "    ") < 0 ||
	    print_violations_text(f, a) < 0)
		return -ENOMEM;
	fprintf(f, "  connect errors     %" PRIu64 "\n", a->results_error);
	if (a->results_error && cf_list_text(f, a, &a->errors, &errors, "    ") < 0)
		return -ENOMEM;
	fprintf(f, "  runtime failures   %" PRIu64 "\n", a->failures);
	if (a->failures && cf_list_text(f, a, &a->f_reason, &failures, "    ") < 0)
		return -ENOMEM;
	if (run->rate)
		print_rate_text(f, run->rate);
	return 0;
}

/* --- JSON ----------------------------------------------------------------- */

static json_t *strv_json(const char *const *v)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && v && v[i]; i++) {
		if (json_array_append_new(arr, cf_json_string_sane(v[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The command as one shell-quoted string (the original's "command"); "" for none. */
static json_t *command_json(char *const *argv)
{
	cleanup_free char *buf = NULL;
	size_t len = 0;
	FILE *m;

	if (!argv || !argv[0])
		return json_string("");
	m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	print_command(m, argv, false);
	if (fclose(m) != 0 || !buf)
		return NULL;
	return cf_json_stringn_sane(buf, len);
}

static json_t *string_or_null(const char *s)
{
	return s ? cf_json_string_sane(s) : json_null();
}

/* The original's "capture" object. */
static json_t *capture_json(const struct cf_run_info *run)
{
	bool on = run->capture_requested != NULL;
	bool both = on && strcmp(run->capture_requested, "both") == 0;
	const char *single = run->capture_child ? run->capture_child : run->capture_egress;
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "status", json_string(on ? "enabled" : "disabled"));
	r |= cf_obj_set(o, "requested", string_or_null(run->capture_requested));
	r |= cf_obj_set(o, "effective", string_or_null(run->capture_effective));
	r |= cf_obj_set(o, "output", string_or_null(on && !both ? single : NULL));
	r |= cf_obj_set(o, "child_output", string_or_null(both ? run->capture_child : NULL));
	r |= cf_obj_set(o, "egress_output", string_or_null(both ? run->capture_egress : NULL));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * The original's "flow_log" object. Its aggregates are filled whatever the
 * status: the summary counts the run's events whether or not they were
 * written (docs/summary-schema.md).
 */
static json_t *original_flow_log_json(const struct cf_obs *o, const struct cf_agg *a,
				      const struct cf_run_info *run)
{
	const char *status = !run->flow_log		? "disabled"
			     : cf_obs_flow_log_error(o) ? "unavailable"
							: "available";
	struct cf_compat_view v;
	json_t *j;
	int r = 0;

	if (cf_compat_view_build(a, &v) < 0)
		return NULL;
	j = json_object();
	r |= cf_obj_set(j, "status", json_string(status));
	r |= cf_obj_set(j, "path", string_or_null(run->flow_log));
	r |= cf_obj_set(j, "event_counts", cf_compat_event_counts(a));
	r |= cf_obj_set(j, "top_dns_name", cf_compat_top_dns_name(a, &v));
	r |= cf_obj_set(j, "dns_policy_rows", cf_compat_dns_policy_rows(a, &v, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "top_dns_policy_correlation", cf_compat_top_dns_policy(a, &v));
	r |= cf_obj_set(j, "top_target", cf_compat_top_target(a, &v));
	r |=
	    cf_obj_set(j, "policy_violations", cf_compat_ranked(a, &a->v_reason, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "policy_controls", cf_compat_ranked(a, &a->v_control, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "policy_matched_domains",
			cf_compat_ranked(a, &a->v_domain, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "connect_errors", cf_compat_ranked(a, &a->errors, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "runtime_failures", cf_compat_ranked(a, &a->f_reason, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "runtime_failure_phases",
			cf_compat_ranked(a, &a->f_phase, SUMMARY_JSON_TOP));
	cf_compat_view_free(&v);
	if (r) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *rate_json(const struct cf_run_rate *r)
{
	static const char *const dir[2] = {"sent", "received"};
	json_t *j;
	int e = 0;

	if (!r)
		return json_null();
	j = json_object();
	e |= cf_obj_set(j, "limit_bps", cf_json_u64(r->limit_bps));
	e |= cf_obj_set(j, "burst_bytes", cf_json_u64(r->burst_bytes));
	for (int i = 0; i < 2; i++) {
		json_t *d = json_object();

		e |= cf_obj_set(d, "bytes", cf_json_u64(r->bytes[i]));
		e |= cf_obj_set(d, "duration_ms", cf_json_u64(r->ms[i]));
		e |=
		    cf_obj_set(d, "achieved_bps", cf_json_u64(achieved_bps(r->bytes[i], r->ms[i])));
		e |= cf_obj_set(d, "datagrams_dropped", cf_json_u64(r->dropped[i]));
		e |= cf_obj_set(j, dir[i], d);
	}
	if (e) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *summary_json(const struct cf_obs *o, const struct cf_agg *a,
			    const struct cf_run_info *run)
{
	json_t *j = json_object();
	int err = cf_obs_flow_log_error(o);
	int r = 0;

	/* The original's fields first (docs/summary-schema.md), then ours. */
	r |= cf_obj_set(j, "backend", cf_json_string_sane(run->backend));
	r |= cf_obj_set(j, "command", command_json(run->command));
	r |= cf_obj_set(j, "exit_code", json_integer(run->exit_code));
	r |= cf_obj_set(j, "sandbox_controls", strv_json(run->controls));
	r |= cf_obj_set(j, "capture", capture_json(run));
	r |= cf_obj_set(j, "flow_log", original_flow_log_json(o, a, run));
	r |= cf_obj_set(j, "schema_version", json_integer(SUMMARY_SCHEMA_VERSION));
	r |= cf_obj_set(j, "argv", strv_json((const char *const *)run->command));
	r |= cf_obj_set(j, "controls", strv_json(run->controls));
	r |= cf_obj_set(j, "captures", strv_json(run->captures));
	r |= cf_obj_set(j, "flow_log_error", err ? json_string(strerror(-err)) : json_null());
	r |= cf_obj_set(j, "dropped_events", cf_json_u64(cf_obs_dropped_events(o)));
	r |= cf_obj_set(j, "events", cf_json_events(a));
	r |= cf_obj_set(j, "connections", cf_json_connections(a));
	r |= cf_obj_set(j, "top_targets", cf_json_top_targets(a, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "violations", cf_json_violations(a, SUMMARY_JSON_TOP, false));
	r |= cf_obj_set(j, "connect_errors", cf_json_connect_errors(a, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "runtime_failures", cf_json_runtime_failures(a, SUMMARY_JSON_TOP));
	r |= cf_obj_set(j, "rate_limit", rate_json(run->rate));
	r |= cf_obj_set(j, "inbound", cf_json_inbound(a, SUMMARY_JSON_TOP));
	if (r) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int cf_obs_print_summary(const struct cf_obs *o, const struct cf_run_info *run, bool json,
			 FILE *out)
{
	static const struct cf_run_info no_run = {.exit_code = 0};
	struct cf_agg *empty = NULL;
	const struct cf_agg *a = cf_obs_agg(o);
	int r;

	if (!run)
		run = &no_run;
	if (!a) {
		r = cf_agg_new(&empty);
		if (r < 0)
			return r;
		a = empty;
	}
	if (json) {
		json_t *j = summary_json(o, a, run);

		r = -ENOMEM;
		if (j) {
			r = json_dumpf(j, out, JSON_COMPACT) < 0 ? -EIO : 0;
			fputc('\n', out);
			json_decref(j);
		}
	} else {
		r = print_text(o, a, run, out);
	}
	cf_agg_free(empty);
	if (r == 0 && (fflush(out) != 0 || ferror(out)))
		r = -EIO;
	return r;
}
