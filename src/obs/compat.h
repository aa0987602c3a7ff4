/* SPDX-License-Identifier: MIT */
/*
 * The original childflow's summary and report shapes (private to src/obs).
 *
 * Tools written for the original (release 0.8.1) read its summary and report
 * JSON: event_counts, maps plus sorted_* lists, top_connection_targets with
 * ok/error/end counts per target, and DNS-name views correlated to targets
 * and to blocked domains by IP. This module computes those views from the
 * same aggregator as our own fields, so both always agree; summary.c and
 * report.c put them beside ours (docs/summary-schema.md,
 * docs/report-schema.md, "Fields of the original").
 *
 * A target's counts cover TCP (connect_attempt, connect_result, flow_end)
 * and UDP/ICMP flows (datagram_flow_start counts as an attempt and its
 * result, datagram_flow_end as an ended flow), as our own fields do.
 */
#ifndef CF_OBS_COMPAT_H
#define CF_OBS_COMPAT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "obs/agg.h"

/* One connection target with its counts, built from the aggregator. */
struct cf_compat_target {
	const char *key; /* remote_addr */
	const char *ip;	 /* remote_ip, NULL when unknown */
	uint64_t attempts, ok, error, end;
};

/* One DNS name (an entry of agg->dns_names) with its counts. */
struct cf_compat_name {
	const struct cf_tally_entry *e; /* key: qname; count: queries; sub: answer IPs */
	uint64_t answers;
};

/* The targets and names of an aggregator, ranked as the original ranks them. */
struct cf_compat_view {
	struct cf_compat_target *targets; /* attempts, errors, oks desc, then key */
	size_t ntargets;
	size_t *by_ip; /* indices into targets, sorted by ip, then index */
	size_t nby_ip;
	struct cf_compat_name *names; /* queries, answers desc, then qname */
	size_t nnames;
};

/* cf_compat_view_build() - Rank @a's targets and DNS names into @v. Return: 0 or -ENOMEM. */
int cf_compat_view_build(const struct cf_agg *a, struct cf_compat_view *v);

/* cf_compat_view_free() - Release what cf_compat_view_build() allocated. */
void cf_compat_view_free(struct cf_compat_view *v);

/*
 * JSON pieces in the original's shapes. Lists hold at most @limit entries
 * (0: all). Each returns a new reference, or NULL when out of memory.
 */
/* {"total", "dns_query", ..., "unknown_event", "datagram_flow_start", "datagram_flow_end"} */
json_t *cf_compat_event_counts(const struct cf_agg *a);
/* {key: count, ...} of every entry of @t (with "(other)" when it counted anything) */
json_t *cf_compat_map(const struct cf_tally *t);
/* [{"key", "count"}] of @t, ranked */
json_t *cf_compat_ranked(const struct cf_agg *a, const struct cf_tally *t, size_t limit);
/* {"proxied_connect_attempts", "direct_connect_attempts"} */
json_t *cf_compat_proxy_usage(const struct cf_agg *a);
/* top_connection_targets: [{"target", counts, "dns_names", "matched_domains"}] */
json_t *cf_compat_targets(const struct cf_agg *a, const struct cf_compat_view *v, size_t limit);
/* The first of cf_compat_targets(), or JSON null when there is none. */
json_t *cf_compat_top_target(const struct cf_agg *a, const struct cf_compat_view *v);

/* What a DNS-name entry holds besides qname, queries, answers and answer_ips. */
#define CF_COMPAT_NAME_TARGETS 0x1u /* "targets": correlated targets */
#define CF_COMPAT_NAME_DOMAINS 0x2u /* "matched_domains": blocked domains of its answer IPs */

/* top_dns_names, dns_target_correlations, dns_policy_correlations (by @flags). */
json_t *cf_compat_names(const struct cf_agg *a, const struct cf_compat_view *v, size_t limit,
			unsigned flags);
/* The summary's top_dns_name: the first name with a correlated target (else the first), or null. */
json_t *cf_compat_top_dns_name(const struct cf_agg *a, const struct cf_compat_view *v);
/* The summary's top_dns_policy_correlation: the first name with a matched domain (else the first),
 * or null. */
json_t *cf_compat_top_dns_policy(const struct cf_agg *a, const struct cf_compat_view *v);
/* dns_policy_rows: one row per (name, correlated target), or (name, null) with matched domains. */
json_t *cf_compat_dns_policy_rows(const struct cf_agg *a, const struct cf_compat_view *v,
				  size_t limit);

#endif
