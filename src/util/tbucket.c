// SPDX-License-Identifier: MIT
#include "util/tbucket.h"

#define NS 1000000000ULL

void cf_tbucket_init(struct cf_tbucket *b, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	b->rate = rate ? rate : 1;
	b->burst = burst;
	b->tokens = burst;
	b->last_ns = now_ns;
	b->passed = b->first_take_ns = b->last_take_ns = 0;
	b->took = false;
}

uint64_t cf_tbucket_avail(struct cf_tbucket *b, uint64_t now_ns)
{
	uint64_t elapsed, add;

	if (now_ns <= b->last_ns)
		return b->tokens;
	elapsed = now_ns - b->last_ns;
	/* Past the time to fill the whole bucket: full (and no overflow below). */
	if (elapsed >= (b->burst - b->tokens) * NS / b->rate + 1) {
		b->tokens = b->burst;
		b->last_ns = now_ns;
		return b->tokens;
	}
	add = elapsed * b->rate / NS;
	if (add == 0)
		return b->tokens;
	b->tokens += add;
	/* Keep the remainder: only the time whole tokens stand for is spent. */
	b->last_ns += add * NS / b->rate;
	return b->tokens;
}

void cf_tbucket_take(struct cf_tbucket *b, uint64_t n)
{
	b->tokens = n < b->tokens ? b->tokens - n : 0;
	b->passed += n;
	if (!b->took)
		b->first_take_ns = b->last_ns;
	b->took = true;
	b->last_take_ns = b->last_ns;
}

uint64_t cf_tbucket_wait_ns(const struct cf_tbucket *b, uint64_t want)
{
	if (want > b->burst)
		want = b->burst;
	if (b->tokens >= want)
		return 0;
	return ((want - b->tokens) * NS + b->rate - 1) / b->rate;
}
