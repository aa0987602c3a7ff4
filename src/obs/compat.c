// SPDX-License-Identifier: MIT
/*
 * The original's summary and report shapes (see compat.h).
 *
 * Theory of operation: cf_compat_view_build() turns the aggregator's
 * per-target tallies (attempts, ok and error results, ended flows, each keyed
 * by remote_addr) into one ranked array of targets, an index of it by IP,
 * and a ranked array of DNS names. A name's correlated targets are those
 * whose IP is among its answer IPs (at most CF_TALLY_MAX_SUB_KEYS of them),
 * found by binary search in the index, so no view is quadratic in the size
 * of the log. Blocked domains are correlated by IP too: a policy_violation's
 * matched_domain counts for its remote_ip.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "obs/compat.h"
#include "obs/render.h"
#include "obs/text.h"
#include "util/cleanup.h"

/* dns_policy_rows beyond this many are not considered (a hostile log's worst case). */
#define MAX_ROWS 100000u

/* --- building the view -------------------------------------------------------- */

static uint64_t count_in(const struct cf_tally *t, const char *key)
{
	const struct cf_tally_entry *e = cf_tally_find(t, key, strlen(key));

	return e ? e->count : 0;
}

static int target_cmp(const void *pa, const void *pb)
{
	const struct cf_compat_target *a = pa, *b = pb;

	if (a->attempts != b->attempts)
		return a->attempts > b->attempts ? -1 : 1;
	if (a->error != b->error)
		return a->error > b->error ? -1 : 1;
	if (a->ok != b->ok)
		return a->ok > b->ok ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* The per-target tallies, attempts first (its order decides nothing: the result is sorted). */
static void target_tallies(const struct cf_agg *a, const struct cf_tally *t[4])
{
	t[0] = &a->targets;
	t[1] = &a->t_ok;
	t[2] = &a->t_error;
	t[3] = &a->t_end;
}

/* The IP of target @e: its own note, or (agg.c sets only one) that of another tally's entry. */
static const char *ip_of(const struct cf_tally *const t[4], const struct cf_tally_entry *e)
{
	for (size_t i = 0; !e->note && i < 4; i++) {
		const struct cf_tally_entry *o = cf_tally_find(t[i], e->key, strlen(e->key));

		if (o && o->note)
			return o->note;
	}
	return e->note;
}

/* Add every key of the per-target tallies once to @out (room for all). Return: the count. */
static size_t collect_targets(const struct cf_agg *a, struct cf_compat_target *out)
{
	const struct cf_tally *t[4];
	size_t n = 0;

	target_tallies(a, t);
	for (size_t i = 0; i < 4; i++) {
		for (size_t s = 0; s < t[i]->nslots; s++) {
			const struct cf_tally_entry *e = t[i]->slots[s];
			bool seen = false;

			for (size_t j = 0; e && j < i && !seen; j++)
				seen = cf_tally_find(t[j], e->key, strlen(e->key)) != NULL;
			if (!e || seen)
				continue;
			out[n++] = (struct cf_compat_target){
			    .key = e->key,
			    .ip = ip_of(t, e),
			    .attempts = count_in(&a->targets, e->key),
			    .ok = count_in(&a->t_ok, e->key),
			    .error = count_in(&a->t_error, e->key),
			    .end = count_in(&a->t_end, e->key),
			};
		}
	}
	if (a->targets.other || a->t_ok.other || a->t_error.other || a->t_end.other)
		out[n++] = (struct cf_compat_target){.key = CF_TALLY_OTHER,
						     .attempts = a->targets.other,
						     .ok = a->t_ok.other,
						     .error = a->t_error.other,
						     .end = a->t_end.other};
	return n;
}

/* For qsort_r-less sorting of the IP index: the array it indexes. */
struct ip_ref {
	const char *ip;
	size_t idx;
};

static int ip_ref_cmp(const void *pa, const void *pb)
{
	const struct ip_ref *a = pa, *b = pb;
	int c = strcmp(a->ip, b->ip);

	if (c)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int build_ip_index(struct cf_compat_view *v)
{
	cleanup_free struct ip_ref *refs = NULL;
	size_t n = 0;

	if (v->ntargets == 0)
		return 0;
	refs = calloc(v->ntargets, sizeof(*refs));
	v->by_ip = calloc(v->ntargets, sizeof(*v->by_ip));
	if (!refs || !v->by_ip)
		return -ENOMEM;
	for (size_t i = 0; i < v->ntargets; i++)
		if (v->targets[i].ip)
			refs[n++] = (struct ip_ref){v->targets[i].ip, i};
	qsort(refs, n, sizeof(*refs), ip_ref_cmp);
	for (size_t i = 0; i < n; i++)
		v->by_ip[i] = refs[i].idx;
	v->nby_ip = n;
	return 0;
}

static int name_cmp(const void *pa, const void *pb)
{
	const struct cf_compat_name *a = pa, *b = pb;

	if (a->e->count != b->e->count)
		return a->e->count > b->e->count ? -1 : 1;
	if (a->answers != b->answers)
		return a->answers > b->answers ? -1 : 1;
	return strcmp(a->e->key, b->e->key);
}

static int build_names(const struct cf_agg *a, struct cf_compat_view *v)
{
	const struct cf_tally *t = &a->dns_names;

	if (t->n == 0)
		return 0;
	v->names = calloc(t->n, sizeof(*v->names));
	if (!v->names)
		return -ENOMEM;
	for (size_t s = 0; s < t->nslots; s++) {
		const struct cf_tally_entry *e = t->slots[s];

		if (e)
			v->names[v->nnames++] = (struct cf_compat_name){
			    .e = e, .answers = count_in(&a->dns_answer_names, e->key)};
	}
	qsort(v->names, v->nnames, sizeof(*v->names), name_cmp);
	return 0;
}

int cf_compat_view_build(const struct cf_agg *a, struct cf_compat_view *v)
{
	size_t room = a->targets.n + a->t_ok.n + a->t_error.n + a->t_end.n + 1;

	*v = (struct cf_compat_view){0};
	v->targets = calloc(room, sizeof(*v->targets));
	if (!v->targets)
		return -ENOMEM;
	v->ntargets = collect_targets(a, v->targets);
	qsort(v->targets, v->ntargets, sizeof(*v->targets), target_cmp);
	if (build_ip_index(v) < 0 || build_names(a, v) < 0) {
		cf_compat_view_free(v);
		return -ENOMEM;
	}
	return 0;
}

void cf_compat_view_free(struct cf_compat_view *v)
{
	free(v->targets);
	free(v->by_ip);
	free(v->names);
	*v = (struct cf_compat_view){0};
}

/* --- small pieces ------------------------------------------------------------- */

static json_t *fail(json_t *j)
{
	json_decref(j);
	return NULL;
}

json_t *cf_compat_event_counts(const struct cf_agg *a)
{
	static const char *const types[] = {
	    "dns_query",	   "dns_answer",	"connect_attempt", "connect_result",
	    "policy_violation",	   "flow_end",		"runtime_failure", NULL,
	    "datagram_flow_start", "datagram_flow_end",
	};
	json_t *o = json_object();
	int r = cf_obj_set(o, "total", cf_json_u64(a->events + a->unknown_events));

	for (size_t i = 0; i < CF_ARRAY_SIZE(types); i++) {
		if (!types[i]) /* the original's list ends with unknown_event; ours follow */
			r |= cf_obj_set(o, "unknown_event", cf_json_u64(a->unknown_events));
		else
			r |= cf_obj_set(o, types[i], cf_json_u64(count_in(&a->by_type, types[i])));
	}
	return r ? fail(o) : o;
}

json_t *cf_compat_map(const struct cf_tally *t)
{
	cleanup_free struct cf_rank *r = NULL;
	json_t *o;
	size_t n;
	int err = 0;

	if (cf_tally_rank(t, &r, &n) < 0)
		return NULL;
	o = json_object();
	/* Tally keys are valid UTF-8 without NUL (cf_tally_add() made them so): fit for JSON. */
	for (size_t i = 0; i < n; i++)
		err |= cf_obj_set(o, r[i].key, cf_json_u64(r[i].count));
	return err ? fail(o) : o;
}

json_t *cf_compat_ranked(const struct cf_agg *a, const struct cf_tally *t, size_t limit)
{
	const struct cf_list_spec s = {.limit = limit};

	return cf_list_json(a, t, &s);
}

json_t *cf_compat_proxy_usage(const struct cf_agg *a)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "proxied_connect_attempts", cf_json_u64(a->attempts_proxied));
	r |= cf_obj_set(o, "direct_connect_attempts", cf_json_u64(a->attempts_direct));
	return r ? fail(o) : o;
}

/* The keys of @t, ranked, as an array of strings (an empty array for NULL). */
static json_t *keys_json(const struct cf_tally *t)
{
	cleanup_free struct cf_rank *r = NULL;
	json_t *arr;
	size_t n = 0;

	if (t && cf_tally_rank(t, &r, &n) < 0)
		return NULL;
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, cf_json_string_sane(r[i].key)) < 0)
			return fail(arr);
	return arr;
}

/* The ranked list of @t ({key, count}), an empty array for NULL. */
static json_t *ranked_or_empty(const struct cf_agg *a, const struct cf_tally *t)
{
	const struct cf_tally empty = {0};

	return cf_compat_ranked(a, t ? t : &empty, 0);
}

/* The sub-tally of @key's entry in @t, or NULL. */
static const struct cf_tally *sub_of(const struct cf_tally *t, const char *key)
{
	const struct cf_tally_entry *e = key ? cf_tally_find(t, key, strlen(key)) : NULL;

	return e ? e->sub : NULL;
}

/* --- targets ------------------------------------------------------------------ */

static json_t *target_json(const struct cf_agg *a, const struct cf_compat_target *t, bool dns_names)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "target", cf_json_string_sane(t->key));
	r |= cf_obj_set(o, "connect_attempts", cf_json_u64(t->attempts));
	r |= cf_obj_set(o, "connect_ok", cf_json_u64(t->ok));
	r |= cf_obj_set(o, "connect_error", cf_json_u64(t->error));
	r |= cf_obj_set(o, "flow_end", cf_json_u64(t->end));
	if (dns_names)
		r |= cf_obj_set(o, "dns_names", keys_json(sub_of(&a->ip_names, t->ip)));
	r |= cf_obj_set(o, "matched_domains", ranked_or_empty(a, sub_of(&a->ip_domains, t->ip)));
	return r ? fail(o) : o;
}

static size_t shown(size_t n, size_t limit)
{
	return limit && limit < n ? limit : n;
}

json_t *cf_compat_targets(const struct cf_agg *a, const struct cf_compat_view *v, size_t limit)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < shown(v->ntargets, limit); i++)
		if (json_array_append_new(arr, target_json(a, &v->targets[i], true)) < 0)
			return fail(arr);
	return arr;
}

json_t *cf_compat_top_target(const struct cf_agg *a, const struct cf_compat_view *v)
{
	return v->ntargets ? target_json(a, &v->targets[0], true) : json_null();
}

/* --- DNS names ---------------------------------------------------------------- */

/* First position in v->by_ip whose target's IP is not below @ip. */
static size_t ip_lower_bound(const struct cf_compat_view *v, const char *ip)
{
	size_t lo = 0, hi = v->nby_ip;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v->targets[v->by_ip[mid]].ip, ip) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int idx_cmp(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;

	return a < b ? -1 : a > b;
}

/*
 * The targets correlated to @nm (whose IP is one of its answer IPs), as
 * ranked indices into v->targets. Return: 0 with *@out (free() it) and *@n,
 * or -ENOMEM.
 */
static int name_targets(const struct cf_compat_view *v, const struct cf_compat_name *nm,
			size_t **out, size_t *n)
{
	const struct cf_tally *ips = nm->e->sub;
	size_t cap = 0, k = 0;
	size_t *idx;

	*out = NULL;
	*n = 0;
	for (size_t s = 0; ips && s < ips->nslots; s++) {
		const struct cf_tally_entry *ip = ips->slots[s];

		for (size_t p = ip ? ip_lower_bound(v, ip->key) : v->nby_ip;
		     p < v->nby_ip && strcmp(v->targets[v->by_ip[p]].ip, ip->key) == 0; p++)
			cap++;
	}
	if (cap == 0)
		return 0;
	idx = calloc(cap, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t s = 0; s < ips->nslots; s++) {
		const struct cf_tally_entry *ip = ips->slots[s];

		for (size_t p = ip ? ip_lower_bound(v, ip->key) : v->nby_ip;
		     p < v->nby_ip && strcmp(v->targets[v->by_ip[p]].ip, ip->key) == 0; p++)
			idx[k++] = v->by_ip[p];
	}
	qsort(idx, k, sizeof(*idx), idx_cmp);
	*out = idx;
	*n = k;
	return 0;
}

/* Add the counts of every key of @d (NULL: none) to @sum. */
static void add_all(struct cf_tally *sum, const struct cf_tally *d)
{
	for (size_t i = 0; d && i < d->nslots; i++)
		if (d->slots[i])
			cf_tally_add(sum, d->slots[i]->key, strlen(d->slots[i]->key),
				     d->slots[i]->count);
	if (d && d->other)
		cf_tally_add(sum, CF_TALLY_OTHER, strlen(CF_TALLY_OTHER), d->other);
}

/*
 * The blocked domains of @nm: those of its own denied DNS exchanges and
 * those of violations at its answer IPs, summed, as a ranked list.
 */
static json_t *name_domains(const struct cf_agg *a, const struct cf_compat_name *nm)
{
	const struct cf_tally *ips = nm->e->sub;
	struct cf_tally sum;
	json_t *j;

	cf_tally_init(&sum, CF_TALLY_MAX_SUB_KEYS);
	add_all(&sum, sub_of(&a->name_domains, nm->e->key));
	for (size_t s = 0; ips && s < ips->nslots; s++)
		if (ips->slots[s])
			add_all(&sum, sub_of(&a->ip_domains, ips->slots[s]->key));
	j = cf_compat_ranked(a, &sum, 0);
	cf_tally_free(&sum);
	return j;
}

static bool name_has_domains(const struct cf_agg *a, const struct cf_compat_name *nm)
{
	const struct cf_tally *ips = nm->e->sub;

	if (sub_of(&a->name_domains, nm->e->key))
		return true;
	for (size_t s = 0; ips && s < ips->nslots; s++)
		if (ips->slots[s] && sub_of(&a->ip_domains, ips->slots[s]->key))
			return true;
	return false;
}

/* {"qname", "queries", "answers", "answer_ips"} of @nm. */
static json_t *name_base(const struct cf_compat_name *nm)
{
	json_t *o = json_object();
	int r = 0;

	r |= cf_obj_set(o, "qname", cf_json_string_sane(nm->e->key));
	r |= cf_obj_set(o, "queries", cf_json_u64(nm->e->count));
	r |= cf_obj_set(o, "answers", cf_json_u64(nm->answers));
	r |= cf_obj_set(o, "answer_ips", keys_json(nm->e->sub));
	return r ? fail(o) : o;
}

static json_t *name_json(const struct cf_agg *a, const struct cf_compat_view *v,
			 const struct cf_compat_name *nm, unsigned flags)
{
	json_t *o = name_base(nm), *targets;
	cleanup_free size_t *idx = NULL;
	size_t n;
	int r = 0;

	if (o && (flags & CF_COMPAT_NAME_DOMAINS))
		r |= cf_obj_set(o, "matched_domains", name_domains(a, nm));
	if (!o || r || !(flags & CF_COMPAT_NAME_TARGETS))
		return r ? fail(o) : o;
	if (name_targets(v, nm, &idx, &n) < 0)
		return fail(o);
	targets = json_array();
	for (size_t i = 0; targets && i < n; i++)
		if (json_array_append_new(targets, target_json(a, &v->targets[idx[i]], false)) <
		    0) {
			json_decref(targets);
			return fail(o);
		}
	return cf_obj_set(o, "targets", targets) ? fail(o) : o;
}

json_t *cf_compat_names(const struct cf_agg *a, const struct cf_compat_view *v, size_t limit,
			unsigned flags)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < shown(v->nnames, limit); i++)
		if (json_array_append_new(arr, name_json(a, v, &v->names[i], flags)) < 0)
			return fail(arr);
	return arr;
}

json_t *cf_compat_top_dns_name(const struct cf_agg *a, const struct cf_compat_view *v)
{
	for (size_t i = 0; i < v->nnames; i++) {
		cleanup_free size_t *idx = NULL;
		size_t n;

		if (name_targets(v, &v->names[i], &idx, &n) < 0)
			return NULL;
		if (n)
			return name_json(a, v, &v->names[i], CF_COMPAT_NAME_TARGETS);
	}
	if (v->nnames)
		return name_json(a, v, &v->names[0], CF_COMPAT_NAME_TARGETS);
	return json_null();
}

json_t *cf_compat_top_dns_policy(const struct cf_agg *a, const struct cf_compat_view *v)
{
	const unsigned flags = CF_COMPAT_NAME_TARGETS | CF_COMPAT_NAME_DOMAINS;

	for (size_t i = 0; i < v->nnames; i++)
		if (name_has_domains(a, &v->names[i]))
			return name_json(a, v, &v->names[i], flags);
	if (v->nnames)
		return name_json(a, v, &v->names[0], flags);
	return json_null();
}

/* --- dns_policy_rows ---------------------------------------------------------- */

struct row {
	const struct cf_compat_name *nm;
	const struct cf_compat_target *t; /* NULL: a name with blocked domains and no target */
};

static int row_cmp(const void *pa, const void *pb)
{
	const struct row *a = pa, *b = pb;
	static const struct cf_compat_target none = {.key = ""};
	const struct cf_compat_target *ta = a->t ? a->t : &none, *tb = b->t ? b->t : &none;
	int c;

	if (ta->attempts != tb->attempts)
		return ta->attempts > tb->attempts ? -1 : 1;
	if (ta->error != tb->error)
		return ta->error > tb->error ? -1 : 1;
	if (ta->ok != tb->ok)
		return ta->ok > tb->ok ? -1 : 1;
	c = strcmp(a->nm->e->key, b->nm->e->key);
	if (c)
		return c;
	if (!a->t || !b->t)
		return !a->t ? (b->t ? -1 : 0) : 1;
	return strcmp(a->t->key, b->t->key);
}

static json_t *row_json(const struct cf_agg *a, const struct row *rw)
{
	static const struct cf_compat_target none = {.key = NULL};
	const struct cf_compat_target *t = rw->t ? rw->t : &none;
	json_t *o = name_base(rw->nm);
	int r = 0;

	r |= cf_obj_set(o, "target", rw->t ? cf_json_string_sane(t->key) : json_null());
	r |= cf_obj_set(o, "target_ip", rw->t && t->ip ? cf_json_string_sane(t->ip) : json_null());
	r |= cf_obj_set(o, "connect_attempts", cf_json_u64(t->attempts));
	r |= cf_obj_set(o, "connect_ok", cf_json_u64(t->ok));
	r |= cf_obj_set(o, "connect_error", cf_json_u64(t->error));
	r |= cf_obj_set(o, "flow_end", cf_json_u64(t->end));
	r |= cf_obj_set(o, "matched_domains",
			rw->t ? ranked_or_empty(a, sub_of(&a->ip_domains, t->ip))
			      : name_domains(a, rw->nm));
	return r ? fail(o) : o;
}

/* Append the rows of @nm to @rows (room for MAX_ROWS). Return: 0 or -ENOMEM. */
static int name_rows(const struct cf_agg *a, const struct cf_compat_view *v,
		     const struct cf_compat_name *nm, struct row *rows, size_t *n)
{
	cleanup_free size_t *idx = NULL;
	size_t k;

	if (name_targets(v, nm, &idx, &k) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < k && *n < MAX_ROWS; i++)
		rows[(*n)++] = (struct row){nm, &v->targets[idx[i]]};
	if (k == 0 && *n < MAX_ROWS && name_has_domains(a, nm))
		rows[(*n)++] = (struct row){nm, NULL};
	return 0;
}

json_t *cf_compat_dns_policy_rows(const struct cf_agg *a, const struct cf_compat_view *v,
				  size_t limit)
{
	cleanup_free struct row *rows = NULL;
	json_t *arr;
	size_t n = 0;

	if (v->nnames) {
		rows = calloc(MAX_ROWS, sizeof(*rows));
		if (!rows)
			return NULL;
	}
	for (size_t i = 0; i < v->nnames && n < MAX_ROWS; i++)
		if (name_rows(a, v, &v->names[i], rows, &n) < 0)
			return NULL;
	if (n)
		qsort(rows, n, sizeof(*rows), row_cmp);
	arr = json_array();
	for (size_t i = 0; arr && i < shown(n, limit); i++)
		if (json_array_append_new(arr, row_json(a, &rows[i])) < 0)
			return fail(arr);
	return arr;
}
