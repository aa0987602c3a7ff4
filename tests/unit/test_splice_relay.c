// SPDX-License-Identifier: MIT
/*
 * Tests of src/engine/relay.c over real kernel objects: two AF_UNIX stream
 * socketpairs stand for the tree's side and the upstream side (splice() and
 * tee() work on them as on TCP sockets), the test plays both peers. Covered:
 * bytes and half-close both ways, the egress tap (every byte the upstream
 * socket sends and receives, in order, only bytes really sent, EOF in each
 * direction), and which side a failure came from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/relay.h"

#define BIG (1u << 20)

struct pair {
	int child_app, child_relay; /* the tree's end and the relay's child-side socket */
	int up_relay, up_app;	    /* the relay's upstream socket and the peer's end */
	struct cf_relay r;
};

/* What the tap was told, per direction. */
struct tapped {
	uint8_t *buf[2];
	size_t len[2];
	size_t gaps[2];
	int eofs[2];
};

static void nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static void pair_open(struct pair *p)
{
	int a[2], b[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	p->child_app = a[0];
	p->child_relay = a[1];
	p->up_relay = b[0];
	p->up_app = b[1];
	nonblock(p->child_relay);
	nonblock(p->up_relay);
	nonblock(p->child_app);
	nonblock(p->up_app);
	assert_int_equal(cf_relay_init(&p->r, p->child_relay, p->up_relay, NULL), 0);
}

static void pair_close(struct pair *p)
{
	cf_relay_fini(&p->r, NULL);
	close(p->child_app);
	close(p->child_relay);
	close(p->up_relay);
	if (p->up_app >= 0)
		close(p->up_app);
}

static void tap_bytes(void *arg, int dir, int fd, size_t n)
{
	struct tapped *t = arg;

	t->buf[dir] = realloc(t->buf[dir], t->len[dir] + n);
	assert_non_null(t->buf[dir]);
	assert_int_equal(read(fd, t->buf[dir] + t->len[dir], n), (ssize_t)n);
	t->len[dir] += n;
}

static void tap_gap(void *arg, int dir, size_t n)
{
	struct tapped *t = arg;

	t->gaps[dir] += n;
}

static void tap_eof(void *arg, int dir)
{
	struct tapped *t = arg;

	t->eofs[dir]++;
}

static void set_tap(struct pair *p, struct tapped *t)
{
	const struct cf_relay_tap tap = {
	    .bytes = tap_bytes, .gap = tap_gap, .eof = tap_eof, .arg = t};

	memset(t, 0, sizeof(*t));
	assert_int_equal(cf_relay_set_tap(&p->r, &tap), 0);
}

static void tapped_free(struct tapped *t)
{
	free(t->buf[0]);
	free(t->buf[1]);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *b = malloc(n);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 7 + seed + (i >> 8));
	return b;
}

/*
 * Push @n bytes of @out into @wfd and collect everything arriving at @rfd,
 * running the relay in between, until all arrived. Return what arrived (n bytes).
 */
static uint8_t *pump(struct pair *p, int wfd, int rfd, const uint8_t *out, size_t n)
{
	uint8_t *in = malloc(n);
	size_t sent = 0, got = 0;

	assert_non_null(in);
	for (int rounds = 0; got < n; rounds++) {
		ssize_t k;

		assert_true(rounds < 100000);
		if (sent < n) {
			k = write(wfd, out + sent, n - sent > 65536 ? 65536 : n - sent);
			if (k > 0)
				sent += (size_t)k;
		}
		assert_int_equal(cf_relay_progress(&p->r), CF_RELAY_ACTIVE);
		k = read(rfd, in + got, n - got);
		if (k > 0)
			got += (size_t)k;
	}
	return in;
}

static void relay_moves_bytes_both_ways_and_passes_half_close(void **state)
{
	struct pair p;
	char buf[16];

	(void)state;
	pair_open(&p);
	assert_int_equal(write(p.child_app, "hello", 5), 5);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(read(p.up_app, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(write(p.up_app, "world!", 6), 6);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(read(p.child_app, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "world!", 6);

	assert_int_equal(shutdown(p.child_app, SHUT_WR), 0);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(read(p.up_app, buf, sizeof(buf)), 0); /* EOF passed on */
	assert_int_equal(write(p.up_app, "late", 4), 4);       /* the other way still works */
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(read(p.child_app, buf, sizeof(buf)), 4);
	assert_int_equal(shutdown(p.up_app, SHUT_WR), 0);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_DONE);
	/* the last FIN is the caller's close(), which DONE asks for: no shutdown() before it */
	assert_int_equal(read(p.child_app, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(p.r.dir[0].bytes, 5);
	assert_int_equal(p.r.dir[1].bytes, 10);
	cf_relay_fini(&p.r, NULL);
	assert_int_equal(close(p.child_relay), 0);
	assert_int_equal(read(p.child_app, buf, sizeof(buf)), 0);
	p.child_relay = open("/dev/null", O_RDONLY | O_CLOEXEC); /* for pair_close */
	pair_close(&p);
}

static void tap_sees_every_byte_upstream_sends_and_receives_in_order(void **state)
{
	uint8_t *up = pattern(BIG, 1), *down = pattern(BIG + 333, 2), *got;
	struct tapped t;
	struct pair p;

	(void)state;
	pair_open(&p);
	set_tap(&p, &t);
	got = pump(&p, p.child_app, p.up_app, up, BIG);
	assert_memory_equal(got, up, BIG);
	free(got);
	got = pump(&p, p.up_app, p.child_app, down, BIG + 333);
	assert_memory_equal(got, down, BIG + 333);
	free(got);

	assert_int_equal(t.len[0], BIG);
	assert_memory_equal(t.buf[0], up, BIG);
	assert_int_equal(t.len[1], BIG + 333);
	assert_memory_equal(t.buf[1], down, BIG + 333);
	assert_int_equal(t.gaps[0] + t.gaps[1], 0);
	assert_int_equal(t.eofs[0] + t.eofs[1], 0);
	tapped_free(&t);
	free(up);
	free(down);
	pair_close(&p);
}

/* With upstream not reading, only bytes its socket accepted count as sent. */
static void tap_records_only_bytes_really_sent_upstream(void **state)
{
	uint8_t *up = pattern(BIG, 3), *got = malloc(BIG);
	size_t sent = 0, got_n = 0;
	struct tapped t;
	struct pair p;
	ssize_t k;

	(void)state;
	assert_non_null(got);
	pair_open(&p);
	set_tap(&p, &t);
	/* Fill until nothing moves: the upstream socket's buffer is full. */
	for (int i = 0; i < 1000 && sent < BIG; i++) {
		k = write(p.child_app, up + sent, BIG - sent);
		if (k > 0)
			sent += (size_t)k;
		assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	}
	assert_true(p.r.dir[0].bytes < BIG);
	assert_int_equal(t.len[0], p.r.dir[0].bytes);
	assert_memory_equal(t.buf[0], up, t.len[0]);
	/* Now let upstream read everything. */
	while (got_n < BIG) {
		k = write(p.child_app, up + sent, BIG - sent);
		if (k > 0)
			sent += (size_t)k;
		assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
		assert_int_equal(t.len[0], p.r.dir[0].bytes);
		k = read(p.up_app, got + got_n, BIG - got_n);
		if (k > 0)
			got_n += (size_t)k;
	}
	assert_int_equal(t.len[0], BIG);
	assert_memory_equal(t.buf[0], up, BIG);
	assert_memory_equal(got, up, BIG);
	tapped_free(&t);
	free(up);
	free(got);
	pair_close(&p);
}

static void tap_is_told_each_directions_end(void **state)
{
	struct tapped t;
	struct pair p;
	char buf[8];

	(void)state;
	pair_open(&p);
	set_tap(&p, &t);
	assert_int_equal(shutdown(p.up_app, SHUT_WR), 0);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(t.eofs[1], 1); /* EOF from upstream */
	assert_int_equal(t.eofs[0], 0);
	assert_int_equal(write(p.child_app, "bye", 3), 3);
	assert_int_equal(shutdown(p.child_app, SHUT_WR), 0);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_DONE);
	assert_int_equal(t.eofs[0], 1); /* shutdown passed on to upstream, after the data */
	assert_int_equal(t.len[0], 3);
	assert_int_equal(read(p.up_app, buf, sizeof(buf)), 3);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_DONE);
	assert_int_equal(t.eofs[0] + t.eofs[1], 2); /* once each */
	tapped_free(&t);
	pair_close(&p);
}

static void reset_names_the_side_that_failed(void **state)
{
	struct pair p;

	(void)state;
	pair_open(&p);
	close(p.up_app); /* upstream gone: writing to it fails */
	p.up_app = -1;
	assert_int_equal(write(p.child_app, "data", 4), 4);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_RESET);
	assert_int_equal(p.r.error_side, 1);
	assert_int_equal(p.r.error, EPIPE);
	pair_close(&p);
}

static void untapped_relay_never_calls_a_tap_and_fini_is_safe_twice(void **state)
{
	struct pair p;
	char buf[8];

	(void)state;
	pair_open(&p);
	assert_false(p.r.tapping);
	assert_int_equal(write(p.child_app, "x", 1), 1);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(read(p.up_app, buf, sizeof(buf)), 1);
	cf_relay_fini(&p.r, NULL);
	pair_close(&p); /* fini again: nothing left to close */
}

static void an_idle_relay_holds_no_pipe_and_reuses_the_pools(void **state)
{
	static struct cf_pipe_pool pool;
	struct pair p;
	char buf[16];

	(void)state;
	pair_open(&p);
	cf_relay_fini(&p.r, NULL);
	assert_int_equal(cf_relay_init(&p.r, p.child_relay, p.up_relay, &pool), 0);
	assert_int_equal(p.r.dir[0].pipe_r, -1);
	assert_int_equal(p.r.dir[1].pipe_r, -1);
	assert_int_equal(write(p.child_app, "hello", 5), 5);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(read(p.up_app, buf, sizeof(buf)), 5);
	/* both directions looked for bytes with a pipe and gave it back: one pipe, pooled */
	assert_int_equal(p.r.dir[0].pipe_r, -1);
	assert_int_equal(p.r.dir[1].pipe_r, -1);
	assert_int_equal(pool.n, 1);
	/* bytes the destination cannot take keep their pipe until they can go */
	for (size_t sent = 0; sent < 4 * BIG;) {
		static char chunk[65536];
		ssize_t k = write(p.up_app, chunk, sizeof(chunk));

		if (k <= 0)
			break;
		sent += (size_t)k;
		cf_relay_progress(&p.r);
	}
	assert_true(p.r.dir[1].in_pipe > 0);
	assert_true(p.r.dir[1].pipe_r >= 0);
	assert_int_equal(p.r.dir[0].pipe_r, -1); /* the idle way looked with another, pooled */
	assert_int_equal(pool.n, 1);
	cf_relay_fini(&p.r, &pool); /* not empty: closed, never pooled */
	assert_int_equal(pool.n, 1);
	pair_close(&p);
	cf_pipe_pool_drain(&pool);
}

static void a_relay_without_descriptors_waits_then_moves_the_bytes(void **state)
{
	struct rlimit old, lim;
	struct pair p;
	char buf[16];
	int lowest;

	(void)state;
	pair_open(&p);
	assert_int_equal(write(p.child_app, "wait", 4), 4);
	/* no descriptor below the limit is free: pipe2() fails with EMFILE */
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = (struct rlimit){.rlim_cur = (rlim_t)lowest, .rlim_max = old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_true(p.r.starved);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(read(p.up_app, buf, sizeof(buf)), -1); /* nothing went, nothing lost */
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_false(p.r.starved);
	assert_int_equal(read(p.up_app, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "wait", 4);
	pair_close(&p);
}

/*
 * --rate-limit: a relay that used up its bucket waits for the limit's timer
 * (throttled, no call for another turn), even though the bucket refills
 * while it runs. At 1 GB/s a byte comes back every nanosecond: reading those
 * round after round was a busy loop of tiny reads.
 */
static void a_relay_that_used_its_tokens_waits_for_the_timer(void **state)
{
	static char chunk[65536];
	struct cf_tbucket b;
	struct timespec ts;
	struct pair p;
	size_t offered = 0;
	ssize_t k;

	(void)state;
	pair_open(&p);
	while ((k = write(p.child_app, chunk, sizeof(chunk))) > 0)
		offered += (size_t)k;
	assert_true(offered > 2 * sizeof(chunk)); /* more than the burst waits */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	cf_tbucket_init(&b, 1000000000, sizeof(chunk),
			(uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
	p.r.limit[0] = &b;
	assert_int_equal(cf_relay_progress(&p.r), CF_RELAY_ACTIVE);
	assert_int_equal(p.r.throttled, 1);
	/* the burst (and what refilled while it was read), not all that waits */
	assert_true(p.r.dir[0].bytes >= sizeof(chunk) && p.r.dir[0].bytes < offered);
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(relay_moves_bytes_both_ways_and_passes_half_close),
	    cmocka_unit_test(an_idle_relay_holds_no_pipe_and_reuses_the_pools),
	    cmocka_unit_test(a_relay_without_descriptors_waits_then_moves_the_bytes),
	    cmocka_unit_test(tap_sees_every_byte_upstream_sends_and_receives_in_order),
	    cmocka_unit_test(tap_records_only_bytes_really_sent_upstream),
	    cmocka_unit_test(tap_is_told_each_directions_end),
	    cmocka_unit_test(reset_names_the_side_that_failed),
	    cmocka_unit_test(untapped_relay_never_calls_a_tap_and_fini_is_safe_twice),
	    cmocka_unit_test(a_relay_that_used_its_tokens_waits_for_the_timer),
	};

	signal(SIGPIPE, SIG_IGN); /* as childflow: a write to a closed peer is -EPIPE */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
