/* SPDX-License-Identifier: MIT */
/*
 * --rate-limit: one token bucket per direction for the whole tree (0: the
 * tree's bytes out, 1: bytes to the tree), shared by every TCP relay (which
 * splices no more than the bucket allows and waits for a timer) and every
 * UDP datagram (dropped when the bucket is short, as a congested link would),
 * the tree's own flows and --publish's inbound ones alike.
 */
#ifndef CF_ENGINE_RATELIMIT_H
#define CF_ENGINE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/ctx.h"
#include "util/tbucket.h"

/* Burst: RATE_BURST_MS of the rate, at least RATE_BURST_MIN bytes. */
#define CF_RATE_BURST_MS 100
#define CF_RATE_BURST_MIN 65536

/* With --rate-limit: the buckets and their timer. Return 0 or -errno. */
int cf_ratelimit_init(struct cf_engine *e);

/* Keep the counters in e->res and release everything. */
void cf_ratelimit_fini(struct cf_engine *e);

/* The bucket of direction @dir, or NULL without --rate-limit. */
struct cf_tbucket *cf_ratelimit_bucket(struct cf_engine *e, int dir);

/*
 * cf_ratelimit_datagram() - whether a datagram of @len bytes in direction
 * @dir may pass now (then its bytes are taken); false: drop it (counted).
 */
bool cf_ratelimit_datagram(struct cf_engine *e, int dir, size_t len);

/* A relay of direction @dir waits for tokens: make sure the timer will wake it. */
void cf_ratelimit_wait(struct cf_engine *e, int dir);

/* The timer fired: give the waiting relays another turn. */
void cf_ratelimit_on_timer(struct cf_engine *e);

#endif
