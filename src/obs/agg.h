/* SPDX-License-Identifier: MIT */
/*
 * The flow-log aggregator behind --summary and --report (private to src/obs).
 *
 * Theory of operation: both the live run and --report feed the same
 * function, cf_agg_add(), one parsed flow-log event (a jansson object) at a
 * time, so a summary and a report of the same events always agree. The
 * aggregator keeps counters and "tallies": string-keyed counters with a hard
 * cap on distinct keys (CF_TALLY_MAX_KEYS; counts of keys first seen after
 * the cap go to "(other)"), each entry optionally holding a small sub-tally
 * (e.g. the answer IPs of one DNS name, capped at CF_TALLY_MAX_SUB_KEYS) and
 * a note (one remembered string, e.g. the latest name an IP was resolved
 * from). Keys are cut at CF_TALLY_KEY_MAX bytes. Memory is therefore bounded
 * whatever the length of the log, and a tally update is one hash lookup.
 */
#ifndef CF_OBS_AGG_H
#define CF_OBS_AGG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_TALLY_MAX_KEYS 10000u
#define CF_TALLY_MAX_SUB_KEYS 8u
#define CF_TALLY_KEY_MAX 256u /* bytes; longer keys are cut and end with U+2026 */
#define CF_TALLY_OTHER "(other)"
#define CF_TALLY_NONE "(none)" /* key for a field that is null or missing */

struct cf_tally_entry {
	uint64_t count;
	uint64_t hash;
	struct cf_tally *sub; /* NULL until something is added to it */
	char *note;	      /* meaning depends on the tally; NULL when unset */
	char key[];
};

struct cf_tally {
	struct cf_tally_entry **slots; /* open addressing, linear probing */
	size_t nslots, n, max_keys;
	uint64_t other; /* counts of keys that did not fit (cap reached or out of memory) */
};

/* One line of a ranked list; entry is NULL for the "(other)" line. */
struct cf_rank {
	const char *key;
	uint64_t count;
	const struct cf_tally_entry *entry;
};

/* cf_tally_init() - Make @t an empty tally of at most @max_keys distinct keys. */
void cf_tally_init(struct cf_tally *t, size_t max_keys);

/* cf_tally_free() - Release everything @t holds (sub-tallies included); @t stays usable as empty.
 */
void cf_tally_free(struct cf_tally *t);

/*
 * cf_tally_add() - Add @n to the count of the @len-byte key @key (NUL bytes
 * become U+FFFD, keys over CF_TALLY_KEY_MAX bytes are cut). @n may be 0 to
 * get the entry without counting. Return: the entry, or NULL when the key did
 * not fit (its count went to "(other)").
 */
struct cf_tally_entry *cf_tally_add(struct cf_tally *t, const char *key, size_t len, uint64_t n);

/* cf_tally_find() - The entry of @key (normalised as cf_tally_add() does), or NULL. */
struct cf_tally_entry *cf_tally_find(const struct cf_tally *t, const char *key, size_t len);

/* cf_tally_add_sub() - cf_tally_add() on @e's sub-tally (created on first use). */
struct cf_tally_entry *cf_tally_add_sub(struct cf_tally_entry *e, const char *key, size_t len,
					uint64_t n);

/* cf_tally_set_note() - Replace @e's note by a copy of @s (@len bytes). Return: 0 or -ENOMEM. */
int cf_tally_set_note(struct cf_tally_entry *e, const char *s, size_t len);

/*
 * cf_tally_rank() - All entries of @t (plus "(other)" when it counted
 * anything), sorted by count descending, then key ascending (bytewise).
 * Return: 0 with *@out (free() it; NULL when empty) and *@n set, or -ENOMEM.
 */
int cf_tally_rank(const struct cf_tally *t, struct cf_rank **out, size_t *n);

/* cf_tally_distinct() - Number of lines cf_tally_rank() would return. */
size_t cf_tally_distinct(const struct cf_tally *t);

/* How many recent DNS queries a denial of one of them is looked up among. */
#define CF_AGG_RECENT_QUERIES 256u

/* What the aggregator knows after some events. Read it; change it only with cf_agg_add(). */
struct cf_agg {
	uint64_t events;	 /* events of a known type */
	uint64_t unknown_events; /* valid events of a type this version does not know */
	bool have_ts;
	int64_t first_ts_ms, last_ts_ms;

	struct cf_tally by_type;   /* event type */
	struct cf_tally protocols; /* value of "protocol", per event that has one */

	/* connect_attempt / connect_result / flow_end, and datagram_flow_start / _end (UDP, ICMP)
	 */
	uint64_t attempts, attempts_proxied, attempts_direct;
	uint64_t results_ok, results_error;
	/* TCP results by connect_result's "path": "socket", "relay", "kernel" */
	uint64_t path_socket, path_relay, path_kernel;
	uint64_t flows_ended, bytes_sent, bytes_received;
	struct cf_tally targets;      /* remote_addr; note: remote_ip */
	struct cf_tally processes;    /* comm of attempts; sub: exe */
	struct cf_tally correlations; /* DNS name; sub: targets connected to after that name */
	struct cf_tally errors;	      /* connect_result error; sub: targets */

	/* policy_violation */
	uint64_t violations;
	struct cf_tally v_reason, v_control, v_domain, v_cidr, v_target;

	/* runtime_failure */
	uint64_t failures;
	struct cf_tally f_reason; /* reason_code; note: phase (first seen); sub: detail */

	/* dns_query / dns_answer */
	uint64_t dns_queries, dns_answers, dns_synthetic;
	struct cf_tally dns_names; /* qname (queries); sub: answer IPs */
	struct cf_tally qtypes;
	struct cf_tally ip_names; /* answer IP; sub: names; note: the latest name */

	/* For the original's per-target and DNS-policy views (compat.c). */
	struct cf_tally t_ok, t_error; /* remote_addr of ok / error results; note: remote_ip */
	struct cf_tally t_end;	       /* remote_addr of ended flows; note: remote_ip */
	struct cf_tally ip_domains;    /* remote_ip of violations with a matched_domain; sub: it */
	struct cf_tally dns_answer_names; /* qname of dns_answer */
	struct cf_tally f_phase;	  /* runtime_failure phase */
	struct cf_tally name_domains;	  /* qname of a denied DNS exchange; sub: matched_domain */
	/* The latest DNS queries (flow_id, qname), to name the query a DNS denial is about. */
	struct {
		int64_t flow_id;
		char *qname; /* NULL: unused */
	} recent_queries[CF_AGG_RECENT_QUERIES];
	size_t recent_next;

	/* --publish: events with "direction": "inbound", counted here and nowhere above */
	uint64_t inbound_ok, inbound_failed, inbound_ended;
	uint64_t inbound_bytes_sent, inbound_bytes_received; /* sent: by the tree */
	struct cf_tally inbound; /* published mapping of started flows; sub: client IPs */
};

/* How cf_agg_add() took an event. */
enum cf_agg_result {
	CF_AGG_COUNTED,	      /* a known event, counted */
	CF_AGG_UNKNOWN_EVENT, /* valid, but of an event type this version does not know: ignored */
	CF_AGG_NOT_OBJECT,    /* not a JSON object */
	CF_AGG_NO_EVENT,      /* no "event" field */
	CF_AGG_EVENT_NOT_STRING, /* "event" is not a string */
	CF_AGG_BAD_VERSION,	 /* "schema_version" present but not 1 */
};

/* cf_agg_new() - An empty aggregator. Return: 0 or -ENOMEM. */
int cf_agg_new(struct cf_agg **out);

/* cf_agg_free() - Release @a (NULL ok). */
void cf_agg_free(struct cf_agg *a);

/*
 * cf_agg_add() - Count one flow-log event. Fields of the wrong type count as
 * missing; unknown fields are ignored. Return: an enum cf_agg_result.
 */
enum cf_agg_result cf_agg_add(struct cf_agg *a, const json_t *ev);

/* cf_agg_result_str() - What a non-counted result means, for "line N: ..." messages. */
const char *cf_agg_result_str(enum cf_agg_result r);

/* cf_agg_target_names() - The DNS names whose answers held the IP of @target (an entry of
 * a->targets), or NULL. */
const struct cf_tally *cf_agg_target_names(const struct cf_agg *a,
					   const struct cf_tally_entry *target);

struct cf_obs;

/* cf_obs_agg() - The aggregator of a live run (defined in flowlog.c). */
const struct cf_agg *cf_obs_agg(const struct cf_obs *o);

#endif
