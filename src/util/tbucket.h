/* SPDX-License-Identifier: MIT */
/*
 * A token bucket in bytes, with the time given by the caller (nanoseconds of
 * any monotonic clock), so it is pure arithmetic: --rate-limit's pacing.
 */
#ifndef CF_UTIL_TBUCKET_H
#define CF_UTIL_TBUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct cf_tbucket {
	uint64_t rate;	 /* bytes per second, > 0 */
	uint64_t burst;	 /* most tokens it holds */
	uint64_t tokens; /* bytes that may pass now */
	uint64_t last_ns;
	/* What passed: bytes, and the refill times around the first and last take. */
	uint64_t passed, first_take_ns, last_take_ns;
	bool took;
};

/*
 * cf_tbucket_init() - a full bucket of @burst bytes refilled at @rate bytes
 * per second (@rate > 0; @rate and @burst at most 1.25e11: their product with
 * 1e9 stays within 64 bits). Times are @now_ns or later.
 */
void cf_tbucket_init(struct cf_tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns);

/* cf_tbucket_avail() - refill @b up to @now_ns; return the bytes that may pass now. */
uint64_t cf_tbucket_avail(struct cf_tbucket *b, uint64_t now_ns);

/*
 * cf_tbucket_take() - @n bytes passed, right after cf_tbucket_avail() (whose
 * time they are counted at).
 */
void cf_tbucket_take(struct cf_tbucket *b, uint64_t n);

/*
 * cf_tbucket_wait_ns() - how long after the last refill until @want bytes
 * (capped at the burst) may pass: 0 when they may now.
 */
uint64_t cf_tbucket_wait_ns(const struct cf_tbucket *b, uint64_t want);

#endif
