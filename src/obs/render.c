// SPDX-License-Identifier: MIT
/*
 * Ranked lists as JSON, aligned text and Markdown tables (see render.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "obs/render.h"
#include "util/cleanup.h"

/* Keys wider than this are not padded (the count column moves right). */
#define TEXT_KEY_COLUMN_MAX 40u

json_t *cf_json_u64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

int cf_obj_set(json_t *obj, const char *key, json_t *v)
{
	if (!obj || !v) {
		json_decref(v);
		return -1;
	}
	return json_object_set_new(obj, key, v);
}

static size_t shown(size_t n, size_t limit)
{
	return limit && limit < n ? limit : n;
}

static const struct cf_tally *sub_of(const struct cf_agg *a, const struct cf_rank *r,
				     const struct cf_list_spec *s)
{
	if (!s->sub_name || !r->entry)
		return NULL;
	return s->names_of_target ? cf_agg_target_names(a, r->entry) : r->entry->sub;
}

static json_t *entry_json(const char *key, uint64_t count)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "key", cf_json_string_sane(key));
	r |= cf_obj_set(o, "count", cf_json_u64(count));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *cf_list_json(const struct cf_agg *a, const struct cf_tally *t, const struct cf_list_spec *s)
{
	cleanup_free struct cf_rank *r = NULL;
	json_t *arr;
	size_t n;

	if (cf_tally_rank(t, &r, &n) < 0)
		return NULL;
	arr = json_array();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < shown(n, s->limit); i++) {
		json_t *e = entry_json(r[i].key, r[i].count);
		const struct cf_tally *sub = sub_of(a, &r[i], s);
		int err = 0;

		if (e && s->note_name)
			err |=
			    cf_obj_set(e, s->note_name,
				       cf_json_string_sane(r[i].entry ? r[i].entry->note : NULL));
		if (e && s->sub_name) {
			struct cf_list_spec ss = {.limit = s->sub_limit};
			struct cf_tally empty = {0};

			err |= cf_obj_set(e, s->sub_name, cf_list_json(a, sub ? sub : &empty, &ss));
		}
		if (!e || err || json_array_append_new(arr, e) < 0) {
			if (e && err)
				json_decref(e);
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Print "k1 (n1), k2 (n2), +N more" of @t. Return: 0 or -ENOMEM. */
static int print_sub(FILE *f, const struct cf_tally *t, size_t limit, enum cf_escape mode)
{
	cleanup_free struct cf_rank *r = NULL;
	size_t n;

	if (cf_tally_rank(t, &r, &n) < 0)
		return -ENOMEM;
	if (n == 0)
		fputs("none", f);
	for (size_t i = 0; i < shown(n, limit); i++) {
		if (i)
			fputs(", ", f);
		cf_fput_escaped(f, r[i].key, strlen(r[i].key), mode);
		fprintf(f, " (%" PRIu64 ")", r[i].count);
	}
	if (shown(n, limit) < n)
		fprintf(f, ", +%zu more", n - shown(n, limit));
	return 0;
}

static int digits(uint64_t v)
{
	int d = 1;

	while (v >= 10) {
		v /= 10;
		d++;
	}
	return d;
}

int cf_list_text(FILE *f, const struct cf_agg *a, const struct cf_tally *t,
		 const struct cf_list_spec *s, const char *indent)
{
	cleanup_free struct cf_rank *r = NULL;
	size_t n, keyw = 0;
	int countw = 1;

	if (cf_tally_rank(t, &r, &n) < 0)
		return -ENOMEM;
	if (n == 0) {
		fprintf(f, "%snone\n", indent);
		return 0;
	}
	for (size_t i = 0; i < shown(n, s->limit); i++) {
		size_t w = cf_escaped_width(r[i].key, CF_ESCAPE_TEXT);

		if (w <= TEXT_KEY_COLUMN_MAX && w > keyw)
			keyw = w;
		if (digits(r[i].count) > countw)
			countw = digits(r[i].count);
	}
	for (size_t i = 0; i < shown(n, s->limit); i++) {
		const struct cf_tally *sub = sub_of(a, &r[i], s);
		size_t w;

		fputs(indent, f);
		w = cf_fput_escaped(f, r[i].key, strlen(r[i].key), CF_ESCAPE_TEXT);
		fprintf(f, "%*s  %*" PRIu64, (int)(w < keyw ? keyw - w : 0), "", countw,
			r[i].count);
		if (s->note_name && r[i].entry && r[i].entry->note) {
			fputs("  [", f);
			cf_fput_escaped(f, r[i].entry->note, strlen(r[i].entry->note),
					CF_ESCAPE_TEXT);
			fputc(']', f);
		}
		if (sub && cf_tally_distinct(sub)) {
			fputs("  ", f);
			if (print_sub(f, sub, s->sub_limit, CF_ESCAPE_TEXT) < 0)
				return -ENOMEM;
		}
		fputc('\n', f);
	}
	if (shown(n, s->limit) < n)
		fprintf(f, "%s\u2026 %zu more\n", indent, n - shown(n, s->limit));
	return 0;
}

int cf_list_markdown(FILE *f, const struct cf_agg *a, const struct cf_tally *t,
		     const struct cf_list_spec *s, const char *key_title)
{
	cleanup_free struct cf_rank *r = NULL;
	size_t n;

	if (cf_tally_rank(t, &r, &n) < 0)
		return -ENOMEM;
	if (n == 0) {
		fputs("_none_\n", f);
		return 0;
	}
	fprintf(f, "| %s | count |", key_title);
	if (s->note_name)
		fprintf(f, " %s |", s->note_name);
	if (s->sub_name)
		fprintf(f, " %s |", s->sub_name);
	fputs("\n| --- | ---: |", f);
	if (s->note_name)
		fputs(" --- |", f);
	if (s->sub_name)
		fputs(" --- |", f);
	fputc('\n', f);
	for (size_t i = 0; i < shown(n, s->limit); i++) {
		const struct cf_tally *sub = sub_of(a, &r[i], s);
		const char *note = r[i].entry ? r[i].entry->note : NULL;

		fputs("| ", f);
		cf_fput_escaped(f, r[i].key, strlen(r[i].key), CF_ESCAPE_MARKDOWN);
		fprintf(f, " | %" PRIu64 " |", r[i].count);
		if (s->note_name) {
			fputc(' ', f);
			if (note)
				cf_fput_escaped(f, note, strlen(note), CF_ESCAPE_MARKDOWN);
			fputs(" |", f);
		}
		if (s->sub_name) {
			fputc(' ', f);
			if (sub && print_sub(f, sub, s->sub_limit, CF_ESCAPE_MARKDOWN) < 0)
				return -ENOMEM;
			fputs(" |", f);
		}
		fputc('\n', f);
	}
	if (shown(n, s->limit) < n)
		fprintf(f, "\n_\u2026 %zu more_\n", n - shown(n, s->limit));
	return 0;
}

int cf_top_text(FILE *f, const struct cf_tally *t, enum cf_escape mode)
{
	cleanup_free struct cf_rank *r = NULL;
	size_t n;

	if (cf_tally_rank(t, &r, &n) < 0)
		return -ENOMEM;
	if (n == 0) {
		fputs("none", f);
		return 0;
	}
	cf_fput_escaped(f, r[0].key, strlen(r[0].key), mode);
	fprintf(f, " (%" PRIu64 ")", r[0].count);
	return 0;
}

int cf_list_inline(FILE *f, const struct cf_tally *t, size_t limit, enum cf_escape mode)
{
	return print_sub(f, t, limit, mode);
}

/* {"total": @total, @name: @list} (@list is consumed). */
static json_t *counted_list(uint64_t total, const char *name, json_t *list)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "total", cf_json_u64(total));
	r |= cf_obj_set(o, name, list);
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *cf_json_events(const struct cf_agg *a)
{
	struct cf_list_spec s = {0};

	return counted_list(a->events, "by_type", cf_list_json(a, &a->by_type, &s));
}

/* TCP connection results per path; always the three keys. */
static json_t *by_path(const struct cf_agg *a)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "socket", cf_json_u64(a->path_socket));
	r |= cf_obj_set(o, "relay", cf_json_u64(a->path_relay));
	r |= cf_obj_set(o, "kernel", cf_json_u64(a->path_kernel));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *cf_json_connections(const struct cf_agg *a)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "attempts", cf_json_u64(a->attempts));
	r |= cf_obj_set(o, "via_proxy", cf_json_u64(a->attempts_proxied));
	r |= cf_obj_set(o, "direct", cf_json_u64(a->attempts_direct));
	r |= cf_obj_set(o, "ok", cf_json_u64(a->results_ok));
	r |= cf_obj_set(o, "error", cf_json_u64(a->results_error));
	r |= cf_obj_set(o, "by_path", by_path(a));
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *cf_json_violations(const struct cf_agg *a, size_t limit, bool full)
{
	struct cf_list_spec s = {.limit = limit};
	json_t *o =
	    counted_list(a->violations, "by_reason_code", cf_list_json(a, &a->v_reason, &s));
	int r = 0;

	r |= cf_obj_set(o, "by_control", cf_list_json(a, &a->v_control, &s));
	r |= cf_obj_set(o, "by_matched_domain", cf_list_json(a, &a->v_domain, &s));
	if (full) {
		r |= cf_obj_set(o, "by_matched_cidr", cf_list_json(a, &a->v_cidr, &s));
		r |= cf_obj_set(o, "by_target", cf_list_json(a, &a->v_target, &s));
	}
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *cf_json_connect_errors(const struct cf_agg *a, size_t limit)
{
	struct cf_list_spec s = {.limit = limit, .sub_name = "targets"};

	return counted_list(a->results_error, "by_error", cf_list_json(a, &a->errors, &s));
}

json_t *cf_json_runtime_failures(const struct cf_agg *a, size_t limit)
{
	struct cf_list_spec s = {.limit = limit, .note_name = "phase", .sub_name = "details"};

	return counted_list(a->failures, "by_reason_code", cf_list_json(a, &a->f_reason, &s));
}

json_t *cf_json_top_targets(const struct cf_agg *a, size_t limit)
{
	struct cf_list_spec s = {.limit = limit, .sub_name = "names", .names_of_target = true};

	return cf_list_json(a, &a->targets, &s);
}

json_t *cf_json_inbound(const struct cf_agg *a, size_t limit)
{
	cleanup_free struct cf_rank *rank = NULL;
	json_t *o = json_object(), *list = json_array();
	size_t n = 0;
	int r = cf_tally_rank(&a->inbound, &rank, &n) < 0 ? -1 : 0;

	for (size_t i = 0; r == 0 && i < n && (limit == 0 || i < limit); i++) {
		json_t *m = json_object(), *clients = json_array();
		cleanup_free struct cf_rank *sub = NULL;
		size_t ns = 0;

		if (rank[i].entry && rank[i].entry->sub &&
		    cf_tally_rank(rank[i].entry->sub, &sub, &ns) < 0)
			r = -1;
		for (size_t k = 0; r == 0 && k < ns && (limit == 0 || k < limit); k++)
			r |= json_array_append_new(clients, cf_json_string_sane(sub[k].key));
		r |= cf_obj_set(m, "mapping", cf_json_string_sane(rank[i].key));
		r |= cf_obj_set(m, "flows", cf_json_u64(rank[i].count));
		r |= cf_obj_set(m, "clients", clients);
		r |= json_array_append_new(list, m);
	}
	r |= cf_obj_set(o, "flows", cf_json_u64(a->inbound_ok));
	r |= cf_obj_set(o, "failed", cf_json_u64(a->inbound_failed));
	r |= cf_obj_set(o, "ended", cf_json_u64(a->inbound_ended));
	r |= cf_obj_set(o, "bytes_sent", cf_json_u64(a->inbound_bytes_sent));
	r |= cf_obj_set(o, "bytes_received", cf_json_u64(a->inbound_bytes_received));
	r |= cf_obj_set(o, "published", list);
	if (r) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int cf_inbound_text(FILE *f, const struct cf_agg *a, size_t limit, enum cf_escape mode)
{
	if (a->inbound_ok == 0 && a->inbound_failed == 0) {
		fputs("none", f);
		return 0;
	}
	fprintf(f, "%" PRIu64 " flows (%" PRIu64 " failed): ", a->inbound_ok, a->inbound_failed);
	return cf_list_inline(f, &a->inbound, limit, mode);
}
