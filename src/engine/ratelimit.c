// SPDX-License-Identifier: MIT
/*
 * Theory of operation: --rate-limit.
 *
 * Two buckets (util/tbucket.h) of RATE/8 bytes per second, each holding a
 * burst of CF_RATE_BURST_MS of the rate (at least CF_RATE_BURST_MIN bytes),
 * full at the start. A TCP relay (relay.c) reads from a socket only what its
 * direction's bucket holds, so the sender is held back by TCP's own flow
 * control (the socket's receive window fills); when the bucket is empty, or
 * ended a read (it refills all the time: reading the few bytes each round
 * finds would be a busy loop), the relay is marked throttled and tcp.c
 * (publish.c for --publish's inbound relays) gives it another turn when the
 * one-shot timer here fires, armed for the time WAKE_BYTES take to refill.
 * A UDP datagram (dgram.c, and publish.c's both ways) passes whole or is
 * dropped. The buckets count what passed, and when first and last, for the
 * summary's achieved rate.
 */
#include "engine/ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "engine/publish.h"
#include "engine/tcp.h"

/* Wake a waiting relay for 10 ms of the rate, at most this many bytes. */
#define WAKE_BYTES_MAX 16384

struct cf_ratelimit {
	struct cf_tbucket b[2];
	int timerfd;
	struct cf_watch w;
	bool armed;
	uint64_t dropped[2]; /* UDP datagrams */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int cf_ratelimit_init(struct cf_engine *e)
{
	uint64_t rate, burst, t = now_ns();
	struct cf_ratelimit *rl;
	int r;

	if (!e->cfg->rate_limit)
		return 0;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	rate = e->cfg->rate_limit / 8;
	burst = rate * CF_RATE_BURST_MS / 1000;
	if (burst < CF_RATE_BURST_MIN)
		burst = CF_RATE_BURST_MIN;
	for (int i = 0; i < 2; i++)
		cf_tbucket_init(&rl->b[i], rate, burst, t);
	rl->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	rl->w.kind = CF_W_RATELIMIT;
	if (rl->timerfd < 0) {
		r = -errno;
		free(rl);
		return r;
	}
	r = cf_engine_watch(e, rl->timerfd, EPOLLIN, &rl->w);
	if (r < 0) {
		close(rl->timerfd);
		free(rl);
		return r;
	}
	e->ratelimit = rl;
	return 0;
}

void cf_ratelimit_fini(struct cf_engine *e)
{
	struct cf_ratelimit *rl = e->ratelimit;

	if (!rl)
		return;
	e->res->rate_bps = e->cfg->rate_limit;
	e->res->rate_burst = rl->b[0].burst;
	for (int i = 0; i < 2; i++) {
		e->res->rate_bytes[i] = rl->b[i].passed;
		e->res->rate_ms[i] = (rl->b[i].last_take_ns - rl->b[i].first_take_ns) / 1000000;
		e->res->rate_dropped[i] = rl->dropped[i];
	}
	close(rl->timerfd);
	free(rl);
	e->ratelimit = NULL;
}

struct cf_tbucket *cf_ratelimit_bucket(struct cf_engine *e, int dir)
{
	return e->ratelimit ? &e->ratelimit->b[dir] : NULL;
}

bool cf_ratelimit_datagram(struct cf_engine *e, int dir, size_t len)
{
	struct cf_ratelimit *rl = e->ratelimit;
	uint64_t t;

	if (!rl)
		return true;
	t = now_ns();
	if (cf_tbucket_avail(&rl->b[dir], t) < len) {
		rl->dropped[dir]++;
		return false;
	}
	cf_tbucket_take(&rl->b[dir], len);
	return true;
}

void cf_ratelimit_wait(struct cf_engine *e, int dir)
{
	struct cf_ratelimit *rl = e->ratelimit;
	struct itimerspec its = {{0, 0}, {0, 0}};
	uint64_t want, wait;

	if (!rl || rl->armed)
		return;
	want = rl->b[dir].rate / 100;
	if (want > WAKE_BYTES_MAX)
		want = WAKE_BYTES_MAX;
	wait = cf_tbucket_wait_ns(&rl->b[dir], want ? want : 1);
	if (wait < 100000)
		wait = 100000; /* 0.1 ms: a zero it_value would disarm the timer */
	its.it_value.tv_sec = (time_t)(wait / 1000000000ULL);
	its.it_value.tv_nsec = (long)(wait % 1000000000ULL);
	if (timerfd_settime(rl->timerfd, 0, &its, NULL) == 0)
		rl->armed = true;
}

void cf_ratelimit_on_timer(struct cf_engine *e)
{
	struct cf_ratelimit *rl = e->ratelimit;
	uint64_t ticks;

	if (!rl)
		return;
	(void)!read(rl->timerfd, &ticks, sizeof(ticks));
	rl->armed = false;
	cf_tcp_wake_throttled(e);
	cf_publish_wake_throttled(e);
}
