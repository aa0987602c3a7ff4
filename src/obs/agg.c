// SPDX-License-Identifier: MIT
/*
 * Bounded tallies and the flow-log aggregator (see agg.h for the theory).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "obs/agg.h"
#include "obs/text.h"
#include "util/cleanup.h"

#define ELLIPSIS "\xe2\x80\xa6"	   /* U+2026 */
#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */
#define KEYBUF_SIZE (CF_TALLY_KEY_MAX + 8)

/* --- tallies ------------------------------------------------------------ */

/*
 * Copy @len bytes of @s into @buf (KEYBUF_SIZE bytes) as a key: NUL and bytes
 * that are not valid UTF-8 become U+FFFD. A key that would be longer than
 * CF_TALLY_KEY_MAX bytes is cut on a character boundary and ends with U+2026,
 * within the limit. Return: its length.
 */
static size_t key_normalise(const char *s, size_t len, char *buf)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, i = 0, safe = 0; /* safe: last boundary with room for U+2026 */

	while (i < len) {
		uint32_t cp = 0;
		size_t l = cf_utf8_next(u + i, len - i, &cp);
		bool replace = l == 0 || cp == 0;
		size_t need = replace ? 3 : l;

		if (o + need > CF_TALLY_KEY_MAX) {
			memcpy(buf + safe, ELLIPSIS, 3);
			o = safe + 3;
			break;
		}
		if (replace)
			memcpy(buf + o, REPLACEMENT, 3);
		else
			memcpy(buf + o, s + i, l);
		o += need;
		i += l ? l : 1;
		if (o <= CF_TALLY_KEY_MAX - 3)
			safe = o;
	}
	buf[o] = '\0';
	return o;
}

static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void cf_tally_init(struct cf_tally *t, size_t max_keys)
{
	*t = (struct cf_tally){.max_keys = max_keys};
}

static void entry_free(struct cf_tally_entry *e)
{
	if (e->sub) {
		cf_tally_free(e->sub);
		free(e->sub);
	}
	free(e->note);
	free(e);
}

void cf_tally_free(struct cf_tally *t)
{
	for (size_t i = 0; i < t->nslots; i++)
		if (t->slots[i])
			entry_free(t->slots[i]);
	free(t->slots);
	cf_tally_init(t, t->max_keys);
}

/* The slot holding @key, or the empty slot where it would go. */
static size_t slot_of(const struct cf_tally *t, const char *key, uint64_t hash)
{
	size_t mask = t->nslots - 1;
	size_t i = (size_t)hash & mask;

	while (t->slots[i] && (t->slots[i]->hash != hash || strcmp(t->slots[i]->key, key) != 0))
		i = (i + 1) & mask;
	return i;
}

/* Make room for one more entry (load factor at most 1/2). Return: 0 or -ENOMEM. */
static int grow(struct cf_tally *t)
{
	struct cf_tally_entry **old = t->slots;
	size_t oldn = t->nslots;
	size_t n = oldn ? oldn * 2 : 16;

	if ((t->n + 1) * 2 <= oldn)
		return 0;
	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->nslots = n;
	for (size_t i = 0; i < oldn; i++)
		if (old[i])
			t->slots[slot_of(t, old[i]->key, old[i]->hash)] = old[i];
	free(old);
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

struct cf_tally_entry *cf_tally_find(const struct cf_tally *t, const char *key, size_t len)
{
	char buf[KEYBUF_SIZE];
	size_t klen = key_normalise(key, len, buf);

	if (t->nslots == 0)
		return NULL;
	return t->slots[slot_of(t, buf, fnv1a(buf, klen))];
}

struct cf_tally_entry *cf_tally_add(struct cf_tally *t, const char *key, size_t len, uint64_t n)
{
	char buf[KEYBUF_SIZE];
	size_t klen = key_normalise(key, len, buf);
	uint64_t hash = fnv1a(buf, klen);
	struct cf_tally_entry *e;
	size_t i;

	if (t->nslots) {
		e = t->slots[slot_of(t, buf, hash)];
		if (e) {
			e->count = sat_add(e->count, n);
			return e;
		}
	}
	if (t->n >= t->max_keys || grow(t) < 0)
		goto other;
	e = calloc(1, sizeof(*e) + klen + 1);
	if (!e)
		goto other;
	memcpy(e->key, buf, klen + 1);
	e->hash = hash;
	e->count = n;
	i = slot_of(t, buf, hash);
	t->slots[i] = e;
	t->n++;
	return e;
other:
	t->other = sat_add(t->other, n);
	return NULL;
}

struct cf_tally_entry *cf_tally_add_sub(struct cf_tally_entry *e, const char *key, size_t len,
					uint64_t n)
{
	if (!e->sub) {
		e->sub = malloc(sizeof(*e->sub));
		if (!e->sub)
			return NULL;
		cf_tally_init(e->sub, CF_TALLY_MAX_SUB_KEYS);
	}
	return cf_tally_add(e->sub, key, len, n);
}

int cf_tally_set_note(struct cf_tally_entry *e, const char *s, size_t len)
{
	char *copy;

	if (e->note && strlen(e->note) == len && memcmp(e->note, s, len) == 0)
		return 0;
	copy = malloc(KEYBUF_SIZE);
	if (!copy)
		return -ENOMEM;
	key_normalise(s, len, copy);
	free(e->note);
	e->note = copy;
	return 0;
}

static int rank_cmp(const void *pa, const void *pb)
{
	const struct cf_rank *a = pa, *b = pb;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return strcmp(a->key, b->key);
}

size_t cf_tally_distinct(const struct cf_tally *t)
{
	return t->n + (t->other ? 1 : 0);
}

int cf_tally_rank(const struct cf_tally *t, struct cf_rank **out, size_t *n)
{
	size_t total = cf_tally_distinct(t), k = 0;
	struct cf_rank *r;

	*out = NULL;
	*n = 0;
	if (total == 0)
		return 0;
	r = calloc(total, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < t->nslots; i++) {
		const struct cf_tally_entry *e = t->slots[i];

		if (e)
			r[k++] = (struct cf_rank){.key = e->key, .count = e->count, .entry = e};
	}
	if (t->other)
		r[k++] = (struct cf_rank){.key = CF_TALLY_OTHER, .count = t->other};
	qsort(r, k, sizeof(*r), rank_cmp);
	*out = r;
	*n = k;
	return 0;
}

/* --- the aggregator ----------------------------------------------------- */

int cf_agg_new(struct cf_agg **out)
{
	struct cf_agg *a = calloc(1, sizeof(*a));
	struct cf_tally *tallies[] = {
	    &a->by_type,  &a->protocols,    &a->targets,   &a->processes,  &a->correlations,
	    &a->errors,	  &a->v_reason,	    &a->v_control, &a->v_domain,   &a->v_cidr,
	    &a->v_target, &a->f_reason,	    &a->dns_names, &a->qtypes,	   &a->ip_names,
	    &a->t_ok,	  &a->t_error,	    &a->t_end,	   &a->ip_domains, &a->dns_answer_names,
	    &a->f_phase,  &a->name_domains, &a->inbound,
	};

	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < CF_ARRAY_SIZE(tallies); i++)
		cf_tally_init(tallies[i], CF_TALLY_MAX_KEYS);
	*out = a;
	return 0;
}

void cf_agg_free(struct cf_agg *a)
{
	if (!a)
		return;
	struct cf_tally *tallies[] = {
	    &a->by_type,  &a->protocols,    &a->targets,   &a->processes,  &a->correlations,
	    &a->errors,	  &a->v_reason,	    &a->v_control, &a->v_domain,   &a->v_cidr,
	    &a->v_target, &a->f_reason,	    &a->dns_names, &a->qtypes,	   &a->ip_names,
	    &a->t_ok,	  &a->t_error,	    &a->t_end,	   &a->ip_domains, &a->dns_answer_names,
	    &a->f_phase,  &a->name_domains, &a->inbound,
	};

	for (size_t i = 0; i < CF_ARRAY_SIZE(tallies); i++)
		cf_tally_free(tallies[i]);
	for (size_t i = 0; i < CF_AGG_RECENT_QUERIES; i++)
		free(a->recent_queries[i].qname);
	free(a);
}

/* A string field of @ev and its length, or NULL when missing, null or not a string. */
static const char *str_field(const json_t *ev, const char *name, size_t *len)
{
	const json_t *v = json_object_get(ev, name);

	if (!json_is_string(v)) {
		*len = 0;
		return NULL;
	}
	*len = json_string_length(v);
	return json_string_value(v);
}

/* Like str_field(), but an empty string counts as missing too. */
static const char *nonempty_field(const json_t *ev, const char *name, size_t *len)
{
	const char *s = str_field(ev, name, len);

	return s && *len ? s : NULL;
}

/* A non-negative integer field of @ev, or 0. */
static uint64_t uint_field(const json_t *ev, const char *name)
{
	const json_t *v = json_object_get(ev, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return 0;
	return (uint64_t)json_integer_value(v);
}

/* Add 1 to @t under the string field @name of @ev, or under "(none)" when it has none. */
static struct cf_tally_entry *count_field(struct cf_tally *t, const json_t *ev, const char *name)
{
	size_t len;
	const char *s = str_field(ev, name, &len);

	if (!s)
		return cf_tally_add(t, CF_TALLY_NONE, strlen(CF_TALLY_NONE), 1);
	return cf_tally_add(t, s, len, 1);
}

/* Add 1 to @t under the string field @name of @ev when it is a non-empty string. */
static void count_optional(struct cf_tally *t, const json_t *ev, const char *name)
{
	size_t len;
	const char *s = nonempty_field(ev, name, &len);

	if (s)
		cf_tally_add(t, s, len, 1);
}

/* Add 1 to @e's sub-tally under the string field @name of @ev, when it has one. */
static void count_sub(struct cf_tally_entry *e, const json_t *ev, const char *name)
{
	size_t len;
	const char *s = str_field(ev, name, &len);

	if (e && s)
		cf_tally_add_sub(e, s, len, 1);
}

/*
 * Add 1 to @t under the event's remote_addr ("(none)" when it has none) and
 * remember its remote_ip as the entry's note, unless @known (NULL: none)
 * holds the target already with its IP: the original's views take the IP
 * from there, and a note per entry of every per-target tally would double
 * the aggregator's memory.
 */
static struct cf_tally_entry *count_target(struct cf_tally *t, const json_t *ev,
					   const struct cf_tally *known)
{
	const struct cf_tally_entry *k;
	size_t tlen, iplen;
	const char *target = str_field(ev, "remote_addr", &tlen);
	const char *ip = str_field(ev, "remote_ip", &iplen);
	struct cf_tally_entry *e;

	if (!target) {
		target = CF_TALLY_NONE;
		tlen = strlen(CF_TALLY_NONE);
	}
	e = cf_tally_add(t, target, tlen, 1);
	if (!e || !ip || e->note)
		return e;
	k = known ? cf_tally_find(known, target, tlen) : NULL;
	if (!k || !k->note)
		cf_tally_set_note(e, ip, iplen);
	return e;
}

/* Remember the query's flow_id and qname in the ring of recent queries. */
static void remember_query(struct cf_agg *a, const json_t *ev)
{
	const json_t *id = json_object_get(ev, "flow_id");
	size_t len, i = a->recent_next;
	const char *qname = str_field(ev, "qname", &len);
	char *copy;

	if (!json_is_integer(id) || !qname)
		return;
	copy = strndup(qname, len);
	if (!copy)
		return;
	free(a->recent_queries[i].qname);
	a->recent_queries[i].flow_id = json_integer_value(id);
	a->recent_queries[i].qname = copy;
	a->recent_next = (i + 1) % CF_AGG_RECENT_QUERIES;
}

/* The qname of the recent query of @ev's flow_id, or NULL. */
static const char *recent_qname(const struct cf_agg *a, const json_t *ev)
{
	const json_t *id = json_object_get(ev, "flow_id");

	if (!json_is_integer(id))
		return NULL;
	for (size_t i = 0; i < CF_AGG_RECENT_QUERIES; i++)
		if (a->recent_queries[i].qname &&
		    a->recent_queries[i].flow_id == json_integer_value(id))
			return a->recent_queries[i].qname;
	return NULL;
}

static void add_dns_query(struct cf_agg *a, const json_t *ev)
{
	a->dns_queries++;
	remember_query(a, ev);
	count_field(&a->dns_names, ev, "qname");
	count_field(&a->qtypes, ev, "qtype");
}

static void add_dns_answer(struct cf_agg *a, const json_t *ev)
{
	const json_t *ips = json_object_get(ev, "answer_ips");
	const json_t *ip;
	struct cf_tally_entry *name;
	size_t i, nlen, ilen;
	const char *qname = str_field(ev, "qname", &nlen), *mode;

	a->dns_answers++;
	mode = str_field(ev, "mode", &ilen);
	if (mode && strcmp(mode, "synthetic_empty") == 0)
		a->dns_synthetic++;
	if (!qname) {
		qname = CF_TALLY_NONE;
		nlen = strlen(CF_TALLY_NONE);
	}
	name = cf_tally_add(&a->dns_names, qname, nlen, 0);
	cf_tally_add(&a->dns_answer_names, qname, nlen, 1);
	if (!json_is_array(ips))
		return;
	json_array_foreach(ips, i, ip)
	{
		struct cf_tally_entry *e;

		if (!json_is_string(ip))
			continue;
		ilen = json_string_length(ip);
		if (name)
			cf_tally_add_sub(name, json_string_value(ip), ilen, 1);
		e = cf_tally_add(&a->ip_names, json_string_value(ip), ilen, 1);
		if (e) {
			cf_tally_add_sub(e, qname, nlen, 1);
			cf_tally_set_note(e, qname, nlen);
		}
	}
}

static void add_connect_attempt(struct cf_agg *a, const json_t *ev)
{
	const json_t *proxy = json_object_get(ev, "via_proxy");
	struct cf_tally_entry *ipn = NULL;
	size_t tlen, iplen, clen;
	const char *target = str_field(ev, "remote_addr", &tlen);
	const char *ip = str_field(ev, "remote_ip", &iplen);
	const char *comm = nonempty_field(ev, "comm", &clen);

	a->attempts++;
	if (json_is_true(proxy))
		a->attempts_proxied++;
	else if (json_is_false(proxy))
		a->attempts_direct++;
	if (!target) {
		target = CF_TALLY_NONE;
		tlen = strlen(CF_TALLY_NONE);
	}
	count_target(&a->targets, ev, NULL);
	if (comm)
		count_sub(cf_tally_add(&a->processes, comm, clen, 1), ev, "exe");
	/* Attribute the attempt to the name that most recently resolved to its IP. */
	if (ip)
		ipn = cf_tally_find(&a->ip_names, ip, iplen);
	if (ipn && ipn->note) {
		struct cf_tally_entry *c =
		    cf_tally_add(&a->correlations, ipn->note, strlen(ipn->note), 1);

		if (c)
			cf_tally_add_sub(c, target, tlen, 1);
	}
}

/* The path a TCP result took (flow log v1's connect_result "path"); others count nowhere. */
static void count_path(struct cf_agg *a, const json_t *ev)
{
	size_t len;
	const char *path = str_field(ev, "path", &len);

	if (!path)
		return;
	if (strcmp(path, "socket") == 0)
		a->path_socket++;
	else if (strcmp(path, "relay") == 0)
		a->path_relay++;
	else if (strcmp(path, "kernel") == 0)
		a->path_kernel++;
}

static void add_connect_result(struct cf_agg *a, const json_t *ev)
{
	size_t len;
	const char *status = str_field(ev, "status", &len);
	struct cf_tally_entry *e;

	if (!status)
		return;
	count_path(a, ev);
	if (strcmp(status, "ok") == 0) {
		a->results_ok++;
		count_target(&a->t_ok, ev, &a->targets);
	} else if (strcmp(status, "error") == 0) {
		a->results_error++;
		count_target(&a->t_error, ev, &a->targets);
		e = count_field(&a->errors, ev, "error");
		count_sub(e, ev, "remote_addr");
	}
}

static void add_policy_violation(struct cf_agg *a, const json_t *ev)
{
	size_t dlen, iplen, plen;
	const char *domain = nonempty_field(ev, "matched_domain", &dlen);
	const char *ip = str_field(ev, "remote_ip", &iplen);
	const char *proto = str_field(ev, "protocol", &plen);

	a->violations++;
	/*
	 * The original correlates blocked domains to targets and DNS names by
	 * IP. A denied DNS query's remote is the resolver, not a destination:
	 * it would tie the domain to the resolver's address.
	 */
	if (domain && ip && !(proto && strcmp(proto, "dns") == 0)) {
		struct cf_tally_entry *e = cf_tally_add(&a->ip_domains, ip, iplen, 1);

		if (e)
			cf_tally_add_sub(e, domain, dlen, 1);
	} else if (domain) {
		/* A denied DNS exchange: its domain goes with the name asked for. */
		const char *qname = recent_qname(a, ev);
		struct cf_tally_entry *e =
		    qname ? cf_tally_add(&a->name_domains, qname, strlen(qname), 1) : NULL;

		if (e)
			cf_tally_add_sub(e, domain, dlen, 1);
	}
	count_field(&a->v_reason, ev, "reason_code");
	count_field(&a->v_control, ev, "control");
	count_optional(&a->v_domain, ev, "matched_domain");
	count_optional(&a->v_cidr, ev, "matched_cidr");
	count_field(&a->v_target, ev, "remote");
}

static void add_flow_end(struct cf_agg *a, const json_t *ev)
{
	a->flows_ended++;
	count_target(&a->t_end, ev, &a->targets);
	a->bytes_sent = sat_add(a->bytes_sent, uint_field(ev, "bytes_sent"));
	a->bytes_received = sat_add(a->bytes_received, uint_field(ev, "bytes_received"));
}

/* A datagram flow's one start event counts as a connection's attempt and its result. */
static void add_datagram_flow_start(struct cf_agg *a, const json_t *ev)
{
	add_connect_attempt(a, ev);
	add_connect_result(a, ev);
}

/*
 * An inbound flow's event (--publish): not a destination of the tree, so it
 * is kept out of the connections and targets above. A flow counts once, at
 * its connect_result (TCP) or datagram_flow_start (UDP).
 */
static void add_inbound(struct cf_agg *a, const char *name, const json_t *ev)
{
	size_t slen, plen, iplen;
	const char *status = str_field(ev, "status", &slen);
	const char *mapping = str_field(ev, "published", &plen);
	const char *ip = str_field(ev, "remote_ip", &iplen);
	struct cf_tally_entry *e;

	if (strcmp(name, "flow_end") == 0 || strcmp(name, "datagram_flow_end") == 0) {
		a->inbound_ended++;
		a->inbound_bytes_sent =
		    sat_add(a->inbound_bytes_sent, uint_field(ev, "bytes_sent"));
		a->inbound_bytes_received =
		    sat_add(a->inbound_bytes_received, uint_field(ev, "bytes_received"));
		return;
	}
	if (!status)
		return;
	if (strcmp(status, "ok") != 0) {
		a->inbound_failed++;
		return;
	}
	a->inbound_ok++;
	e = mapping ? cf_tally_add(&a->inbound, mapping, plen, 1) : NULL;
	if (e && ip)
		cf_tally_add_sub(e, ip, iplen, 1);
}

static void add_runtime_failure(struct cf_agg *a, const json_t *ev)
{
	struct cf_tally_entry *e;
	size_t plen;
	const char *phase = str_field(ev, "phase", &plen);

	a->failures++;
	count_field(&a->f_phase, ev, "phase");
	e = count_field(&a->f_reason, ev, "reason_code");
	if (!e)
		return;
	if (phase && !e->note)
		cf_tally_set_note(e, phase, plen);
	count_sub(e, ev, "detail");
}

static const struct {
	const char *name;
	void (*add)(struct cf_agg *a, const json_t *ev);
} event_types[] = {
    {"dns_query", add_dns_query},
    {"dns_answer", add_dns_answer},
    {"connect_attempt", add_connect_attempt},
    {"connect_result", add_connect_result},
    {"policy_violation", add_policy_violation},
    {"flow_end", add_flow_end},
    {"runtime_failure", add_runtime_failure},
    {"datagram_flow_start", add_datagram_flow_start},
    {"datagram_flow_end", add_flow_end},
};

enum cf_agg_result cf_agg_add(struct cf_agg *a, const json_t *ev)
{
	const json_t *event, *version, *ts;
	const char *name;

	if (!json_is_object(ev))
		return CF_AGG_NOT_OBJECT;
	event = json_object_get(ev, "event");
	if (!event)
		return CF_AGG_NO_EVENT;
	if (!json_is_string(event))
		return CF_AGG_EVENT_NOT_STRING;
	version = json_object_get(ev, "schema_version");
	if (version && (!json_is_integer(version) || json_integer_value(version) != 1))
		return CF_AGG_BAD_VERSION;
	name = json_string_value(event);
	for (size_t i = 0; i < CF_ARRAY_SIZE(event_types); i++) {
		size_t plen;
		const char *proto;

		if (strcmp(name, event_types[i].name) != 0)
			continue;
		a->events++;
		cf_tally_add(&a->by_type, name, strlen(name), 1);
		ts = json_object_get(ev, "ts_ms");
		if (json_is_integer(ts)) {
			int64_t v = json_integer_value(ts);

			if (!a->have_ts || v < a->first_ts_ms)
				a->first_ts_ms = v;
			if (!a->have_ts || v > a->last_ts_ms)
				a->last_ts_ms = v;
			a->have_ts = true;
		}
		proto = str_field(ev, "protocol", &plen);
		if (proto)
			cf_tally_add(&a->protocols, proto, plen, 1);
		proto = str_field(ev, "direction", &plen);
		if (proto && strcmp(proto, "inbound") == 0)
			add_inbound(a, name, ev);
		else
			event_types[i].add(a, ev);
		return CF_AGG_COUNTED;
	}
	a->unknown_events++;
	return CF_AGG_UNKNOWN_EVENT;
}

const char *cf_agg_result_str(enum cf_agg_result r)
{
	switch (r) {
	case CF_AGG_COUNTED:
		return "counted";
	case CF_AGG_UNKNOWN_EVENT:
		return "unknown event type";
	case CF_AGG_NOT_OBJECT:
		return "not a JSON object";
	case CF_AGG_NO_EVENT:
		return "no 'event' field";
	case CF_AGG_EVENT_NOT_STRING:
		return "'event' is not a string";
	case CF_AGG_BAD_VERSION:
		return "unsupported 'schema_version' (expected 1)";
	}
	return "?";
}

const struct cf_tally *cf_agg_target_names(const struct cf_agg *a,
					   const struct cf_tally_entry *target)
{
	const struct cf_tally_entry *e;

	if (!target || !target->note)
		return NULL;
	e = cf_tally_find(&a->ip_names, target->note, strlen(target->note));
	return e ? e->sub : NULL;
}
