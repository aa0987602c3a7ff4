/* SPDX-License-Identifier: MIT */
/*
 * Rendering of ranked lists, shared by the summary and the report (private
 * to src/obs). One list is described once (struct cf_list_spec) and printed
 * as JSON ({"key", "count", ...} entries), aligned text or a Markdown table,
 * so the three formats always show the same entries in the same order.
 */
#ifndef CF_OBS_RENDER_H
#define CF_OBS_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "obs/agg.h"
#include "obs/text.h"

struct cf_list_spec {
	size_t limit;	       /* entries shown; 0: all */
	const char *sub_name;  /* JSON member / column title of the sub-list; NULL: none */
	size_t sub_limit;      /* sub-entries shown; 0: all */
	const char *note_name; /* JSON member / column title of the note; NULL: none */
	bool names_of_target;  /* the sub-list is cf_agg_target_names(), not the entry's own */
};

/* cf_json_u64() - A JSON integer of @v (clamped to INT64_MAX). NULL when out of memory. */
json_t *cf_json_u64(uint64_t v);

/*
 * cf_obj_set() - json_object_set_new() that also fails (releasing @v) on a
 * NULL @obj or @v, so calls can be chained. Return: 0 or -1.
 */
int cf_obj_set(json_t *obj, const char *key, json_t *v);

/*
 * cf_list_json() - The ranked list of @t (see cf_tally_rank()) as a JSON
 * array of {"key", "count"[, note_name][, sub_name: [...]]}, at most
 * @s->limit entries. Return: a new reference, or NULL when out of memory.
 */
json_t *cf_list_json(const struct cf_agg *a, const struct cf_tally *t,
		     const struct cf_list_spec *s);

/*
 * cf_list_text() - Print the ranked list of @t as aligned lines, each
 * starting with @indent ("none" when empty; "… N more" when cut).
 * Return: 0 or -ENOMEM.
 */
int cf_list_text(FILE *f, const struct cf_agg *a, const struct cf_tally *t,
		 const struct cf_list_spec *s, const char *indent);

/*
 * cf_list_markdown() - Print the ranked list of @t as a Markdown table whose
 * first column is titled @key_title ("_none_" when empty). Return: 0 or -ENOMEM.
 */
int cf_list_markdown(FILE *f, const struct cf_agg *a, const struct cf_tally *t,
		     const struct cf_list_spec *s, const char *key_title);

/*
 * cf_top_text() - Print "key (count)" of the first entry of @t escaped for
 * @mode, or "none". Return: 0 or -ENOMEM.
 */
int cf_top_text(FILE *f, const struct cf_tally *t, enum cf_escape mode);

/*
 * cf_list_inline() - Print "k1 (n1), k2 (n2), +N more" of the first @limit
 * entries of @t (0: all), escaped for @mode, or "none". Return: 0 or -ENOMEM.
 */
int cf_list_inline(FILE *f, const struct cf_tally *t, size_t limit, enum cf_escape mode);

/*
 * JSON sections shared by the summary and the report; ranked lists hold at
 * most @limit entries (0: all) and sub-lists all their entries. Each returns
 * a new reference, or NULL when out of memory.
 */
/* {"total", "by_type": [...]} */
json_t *cf_json_events(const struct cf_agg *a);
/* {"attempts", "via_proxy", "direct", "ok", "error"} */
json_t *cf_json_connections(const struct cf_agg *a);
/* {"total", "by_reason_code", "by_control", "by_matched_domain"[, "by_matched_cidr", "by_target"]}
 */
json_t *cf_json_violations(const struct cf_agg *a, size_t limit, bool full);
/* {"total", "by_error": [{key, count, "targets"}]} */
json_t *cf_json_connect_errors(const struct cf_agg *a, size_t limit);
/* {"total", "by_reason_code": [{key, count, "phase", "details"}]} */
json_t *cf_json_runtime_failures(const struct cf_agg *a, size_t limit);
/* [{key: "ip:port", count, "names": [...]}] */
json_t *cf_json_top_targets(const struct cf_agg *a, size_t limit);
/* --publish: {"flows", "failed", "ended", "bytes_sent", "bytes_received", "published": [...]} */
json_t *cf_json_inbound(const struct cf_agg *a, size_t limit);
/* --publish: "N flows (M failed): mapping (n), ...", or "none". Return: 0 or -ENOMEM. */
int cf_inbound_text(FILE *f, const struct cf_agg *a, size_t limit, enum cf_escape mode);

#endif
