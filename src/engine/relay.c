/* SPDX-License-Identifier: MIT */
#include "engine/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Larger pipes mean fewer splice calls per MiB on the bulk path. */
#define RELAY_PIPE_SIZE (1 << 18)

void cf_pipe_pool_drain(struct cf_pipe_pool *pool)
{
	while (pool->n > 0) {
		pool->n--;
		close(pool->fd[pool->n][0]);
		close(pool->fd[pool->n][1]);
	}
}

/* Give direction @d a pipe, from the pool or new. Return 0 or -errno. */
static int take_pipe(struct cf_relay *r, struct cf_relay_dir *d)
{
	struct cf_pipe_pool *pool = r->pool;
	int p[2], sz;

	if (d->pipe_r >= 0)
		return 0;
	if (pool && pool->n > 0) {
		pool->n--;
		d->pipe_r = pool->fd[pool->n][0];
		d->pipe_w = pool->fd[pool->n][1];
		d->pipe_cap = pool->cap[pool->n];
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	d->pipe_r = p[0];
	d->pipe_w = p[1];
	/* Best effort: the default pipe size works, only slower (pipe-max-size may cap it). */
	sz = fcntl(p[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
	if (sz < 0)
		sz = fcntl(p[1], F_GETPIPE_SZ);
	d->pipe_cap = sz > 0 ? (size_t)sz : 65536;
	return 0;
}

/* Return @d's pipe to @pool when it is empty (only then may it carry other bytes), else close it.
 */
static void put_pipe(struct cf_relay_dir *d, struct cf_pipe_pool *pool)
{
	if (d->pipe_r < 0)
		return;
	if (pool && d->in_pipe == 0 && pool->n < CF_PIPE_POOL_MAX) {
		pool->fd[pool->n][0] = d->pipe_r;
		pool->fd[pool->n][1] = d->pipe_w;
		pool->cap[pool->n] = d->pipe_cap;
		pool->n++;
	} else {
		close(d->pipe_r);
		close(d->pipe_w);
	}
	d->pipe_r = d->pipe_w = -1;
}

int cf_relay_init(struct cf_relay *r, int a, int b, struct cf_pipe_pool *pool)
{
	memset(r, 0, sizeof(*r));
	r->fd[0] = a;
	r->fd[1] = b;
	r->pool = pool;
	for (int i = 0; i < 2; i++) {
		r->dir[i].pipe_r = r->dir[i].pipe_w = -1;
		r->dir[i].tap_r = r->dir[i].tap_w = -1;
	}
	return 0;
}

static void tap_close(struct cf_relay *r)
{
	for (int i = 0; i < 2; i++) {
		struct cf_relay_dir *d = &r->dir[i];

		if (d->tap_r >= 0) {
			close(d->tap_r);
			close(d->tap_w);
		}
		d->tap_r = d->tap_w = -1;
	}
	r->tapping = false;
}

int cf_relay_set_tap(struct cf_relay *r, const struct cf_relay_tap *tap)
{
	for (int i = 0; i < 2; i++) {
		struct cf_relay_dir *d = &r->dir[i];
		int p[2], sz, err = take_pipe(r, d);

		if (err < 0) {
			tap_close(r);
			return err;
		}
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
			err = -errno;
			tap_close(r);
			return err;
		}
		/* tee() copies buffers, not bytes: as many slots as the relay pipe has. */
		sz = fcntl(p[1], F_SETPIPE_SZ, (int)d->pipe_cap);
		if (sz < 0)
			sz = fcntl(p[1], F_GETPIPE_SZ);
		d->tap_r = p[0];
		d->tap_w = p[1];
		d->tap_cap = sz > 0 ? (size_t)sz : 4096;
		r->tapping = true; /* from the first pipe on: cf_relay_fini() closes them */
	}
	r->tap = *tap;
	return 0;
}

void cf_relay_fini(struct cf_relay *r, struct cf_pipe_pool *pool)
{
	if (r->tapping)
		tap_close(r);
	for (int i = 0; i < 2; i++)
		put_pipe(&r->dir[i], pool);
}

/* Copy the @n bytes just put into an empty pipe of direction 1 to the tap. */
static void tap_fill(struct cf_relay *r, struct cf_relay_dir *d, size_t n)
{
	ssize_t t = tee(d->pipe_r, d->tap_w, n, SPLICE_F_NONBLOCK);

	if (t > 0)
		r->tap.bytes(r->tap.arg, 1, d->tap_r, (size_t)t);
	if ((size_t)(t > 0 ? t : 0) < n)
		r->tap.gap(r->tap.arg, 1, n - (size_t)(t > 0 ? t : 0));
}

/* What direction @i's bucket lets it read now (SIZE_MAX: no limit); 0 marks it throttled. */
static size_t allowance(struct cf_relay *r, int i)
{
	struct timespec ts;
	uint64_t avail;

	if (!r->limit[i])
		return SIZE_MAX;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	avail = cf_tbucket_avail(r->limit[i],
				 (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
	if (avail == 0)
		r->throttled |= 1u << i;
	return avail < SIZE_MAX ? (size_t)avail : SIZE_MAX;
}

/* Fill direction @i's pipe from its source. Return 1 if progress, 0 if blocked/EOF, -errno. */
static int fill(struct cf_relay *r, int i)
{
	struct cf_relay_dir *d = &r->dir[i];
	bool tap = r->tapping && i == 1, bounded = false;
	size_t room;
	ssize_t n;

	if (d->src_eof)
		return 0;
	if (d->pipe_r < 0) {
		int err = take_pipe(r, d);

		if (err == -EMFILE || err == -ENFILE) {
			r->starved = true; /* wait for descriptors rather than fail */
			return 0;
		}
		if (err < 0)
			return err;
	}
	if (d->in_pipe >= d->pipe_cap)
		return 0;
	room = d->pipe_cap - d->in_pipe;
	if (tap) {
		/* tee() copies from the pipe's head: the new bytes must be all there is. */
		if (d->in_pipe > 0)
			return 0;
		if (room > d->tap_cap)
			room = d->tap_cap;
	}
	if (r->limit[i]) {
		size_t allow;

		if (r->throttled & (1u << i))
			return 0; /* the bucket ran dry in this progress: wait for the timer */
		allow = allowance(r, i);
		if (allow == 0)
			return 0;
		if (room > allow) {
			room = allow;
			bounded = true;
		}
	}
	n = splice(r->fd[i], NULL, d->pipe_w, NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		if (r->limit[i])
			cf_tbucket_take(r->limit[i], (uint64_t)n);
		/*
		 * The bucket, not the socket, ended this read. It refills all the
		 * time, so the next round would find a few bytes again and read
		 * them, round after round, and ask for another turn at once: a
		 * busy loop of tiny reads. Wait instead for --rate-limit's timer,
		 * which wakes the relay when a useful amount has refilled.
		 */
		if (bounded && (size_t)n == room)
			r->throttled |= 1u << i;
		d->in_pipe += (size_t)n;
		if (tap)
			tap_fill(r, d, (size_t)n);
		return 1;
	}
	if (n == 0) {
		d->src_eof = true;
		if (tap)
			r->tap.eof(r->tap.arg, 1);
		return 1;
	}
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/* Drain direction @i's pipe into its destination. Return 1: progress, 0: blocked/empty, -errno. */
static int drain(struct cf_relay *r, int i)
{
	struct cf_relay_dir *d = &r->dir[i];
	bool tap = r->tapping && i == 0;
	size_t len = d->in_pipe;
	ssize_t n;

	if (d->in_pipe == 0)
		return 0;
	if (tap) {
		/* Send only bytes already copied to the tap, so exactly those are recorded. */
		if (d->tapped == 0) {
			ssize_t t = tee(d->pipe_r, d->tap_w, d->in_pipe, SPLICE_F_NONBLOCK);

			d->tapped = t > 0 ? (size_t)t : 0;
		}
		if (d->tapped > 0)
			len = d->tapped;
	}
	n = splice(d->pipe_r, NULL, r->fd[1 - i], NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		d->in_pipe -= (size_t)n;
		d->bytes += (uint64_t)n;
		if (tap && d->tapped > 0) {
			d->tapped -= (size_t)n;
			r->tap.bytes(r->tap.arg, 0, d->tap_r, (size_t)n);
		} else if (tap) {
			r->tap.gap(r->tap.arg, 0, (size_t)n);
		}
		return 1;
	}
	return n < 0 && errno != EAGAIN && errno != EINTR ? -errno : 0;
}

/*
 * Run direction @i until it would block or its turn is used up (*@more set).
 * Return 0 or -errno (r->error_side set).
 */
static int dir_progress(struct cf_relay *r, int i, bool *more)
{
	struct cf_relay_dir *d = &r->dir[i];
	int a, b, rounds = 0;

	do {
		if (++rounds > CF_RELAY_TURN_ROUNDS) {
			*more = true;
			return 0;
		}
		a = fill(r, i);
		if (a < 0) {
			r->error_side = i;
			return a;
		}
		b = drain(r, i);
		if (b < 0) {
			r->error_side = 1 - i;
			return b;
		}
	} while (a > 0 || b > 0);
	/* Nothing waits in the pipe: an idle direction holds none (a tapped one keeps both). */
	if (!r->tapping && d->in_pipe == 0)
		put_pipe(d, r->pool);
	if (d->src_eof && d->in_pipe == 0 && !d->dst_shut) {
		/*
		 * ENOTCONN: the peer is already gone; the other direction will tell.
		 * When the other direction is done too, the relay is, and both
		 * sockets are closed right away: close() sends this FIN (nothing
		 * is left unread), so the shutdown() is spared.
		 */
		if (!r->dir[1 - i].dst_shut && shutdown(r->fd[1 - i], SHUT_WR) < 0 &&
		    errno != ENOTCONN) {
			r->error_side = 1 - i;
			return -errno;
		}
		d->dst_shut = true;
		if (r->tapping && i == 0)
			r->tap.eof(r->tap.arg, 0);
	}
	return 0;
}

enum cf_relay_state cf_relay_progress(struct cf_relay *r)
{
	bool more = false;

	r->starved = false;
	r->throttled = 0;
	for (int i = 0; i < 2; i++) {
		int err = dir_progress(r, i, &more);

		if (err < 0) {
			r->error = -err;
			return CF_RELAY_RESET;
		}
	}
	if (more)
		return CF_RELAY_MORE;
	if (r->dir[0].dst_shut && r->dir[1].dst_shut)
		return CF_RELAY_DONE;
	return CF_RELAY_ACTIVE;
}

bool cf_relay_sent_eof(const struct cf_relay *r)
{
	return r->dir[0].dst_shut;
}
