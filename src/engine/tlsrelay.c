/* SPDX-License-Identifier: MIT */
#include "engine/tlsrelay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/tls.h"

#define BUF 16384

struct dir {
	uint8_t buf[BUF];
	size_t off, len; /* pending bytes: buf[off .. off+len) */
	uint64_t bytes;
	bool eof, shut;
};

struct cf_tlsrelay {
	int fd;
	struct cf_tls *tls;
	struct cf_capview_sock *eg;
	struct dir up;	 /* tree -> proxy */
	struct dir down; /* proxy -> tree */
	uint64_t moved;
	struct cf_tbucket *limit[2]; /* --rate-limit: up, down (NULL: none) */
	unsigned throttled;
};

void cf_tlsrelay_set_limit(struct cf_tlsrelay *r, struct cf_tbucket *up, struct cf_tbucket *down)
{
	r->limit[0] = up;
	r->limit[1] = down;
}

unsigned cf_tlsrelay_throttled(const struct cf_tlsrelay *r)
{
	return r->throttled;
}

/* How much direction @i may read now (at most BUF); 0 marks it throttled. */
static size_t allowance(struct cf_tlsrelay *r, int i)
{
	struct timespec ts;
	uint64_t avail;

	if (!r->limit[i])
		return BUF;
	if (r->throttled & (1u << i))
		return 0; /* the bucket ran dry in this progress: wait for the timer */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	avail = cf_tbucket_avail(r->limit[i],
				 (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
	if (avail == 0)
		r->throttled |= 1u << i;
	return avail < BUF ? (size_t)avail : BUF;
}

/*
 * @n bytes of direction @i were read, of the @allow it was given. When the
 * bucket, not the source, ended the read, the direction waits for the
 * limit's timer: the bucket refills all the time, and reading the few bytes
 * it holds round after round would be a busy loop (relay.c fill() says the
 * same).
 */
static void took(struct cf_tlsrelay *r, int i, size_t n, size_t allow)
{
	if (!r->limit[i])
		return;
	cf_tbucket_take(r->limit[i], n);
	if (allow < BUF && n == allow)
		r->throttled |= 1u << i;
}

int cf_tlsrelay_new(int child_fd, struct cf_tls *tls, struct cf_capview_sock *eg,
		    struct cf_tlsrelay **out)
{
	struct cf_tlsrelay *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->fd = child_fd;
	r->tls = tls;
	r->eg = eg;
	*out = r;
	return 0;
}

void cf_tlsrelay_free(struct cf_tlsrelay *r)
{
	if (!r)
		return;
	cf_tls_free(r->tls);
	free(r);
}

/* Tree -> proxy. Return 0 or -errno. */
static int step_up(struct cf_tlsrelay *r)
{
	struct dir *d = &r->up;
	size_t allow;
	ssize_t n;

	if (d->len == 0 && !d->eof && (allow = allowance(r, 0)) > 0) {
		n = read(r->fd, d->buf, allow);
		if (n == 0)
			d->eof = true;
		else if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		else {
			took(r, 0, (size_t)n, allow);
			d->off = 0;
			d->len = (size_t)n;
			r->moved += (uint64_t)n;
		}
	}
	if (d->len > 0) {
		/* After -EAGAIN OpenSSL needs the same bytes again, which stay in buf. */
		n = cf_tls_write(r->tls, d->buf + d->off, d->len);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		cf_capview_tcp_data(r->eg, CF_CAPVIEW_OUT, d->buf + d->off, (size_t)n);
		d->off += (size_t)n;
		d->len -= (size_t)n;
		d->bytes += (uint64_t)n;
		r->moved += (uint64_t)n;
	}
	if (d->eof && d->len == 0 && !d->shut) {
		int s = cf_tls_shutdown(r->tls);

		if (s == -EAGAIN)
			return 0;
		d->shut = true;
		r->moved++;
	}
	return 0;
}

/* Proxy -> tree. Return 0 or -errno. */
static int step_down(struct cf_tlsrelay *r)
{
	struct dir *d = &r->down;
	size_t allow;
	ssize_t n;

	if (d->len == 0 && !d->eof && (allow = allowance(r, 1)) > 0) {
		n = cf_tls_read(r->tls, d->buf, allow);
		if (n == 0) {
			d->eof = true;
			cf_capview_tcp_fin(r->eg, CF_CAPVIEW_IN);
		} else if (n == -EAGAIN)
			;
		else if (n < 0)
			return (int)n;
		else {
			took(r, 1, (size_t)n, allow);
			cf_capview_tcp_data(r->eg, CF_CAPVIEW_IN, d->buf, (size_t)n);
			d->off = 0;
			d->len = (size_t)n;
			r->moved += (uint64_t)n;
		}
	}
	if (d->len > 0) {
		n = send(r->fd, d->buf + d->off, d->len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		d->off += (size_t)n;
		d->len -= (size_t)n;
		d->bytes += (uint64_t)n;
		r->moved += (uint64_t)n;
	}
	if (d->eof && d->len == 0 && !d->shut) {
		if (shutdown(r->fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		d->shut = true;
		r->moved++;
	}
	return 0;
}

enum cf_relay_state cf_tlsrelay_progress(struct cf_tlsrelay *r)
{
	uint64_t before;

	r->throttled = 0;
	do {
		before = r->moved;
		if (step_up(r) < 0 || step_down(r) < 0)
			return CF_RELAY_RESET;
	} while (before != r->moved);
	return r->up.shut && r->down.shut ? CF_RELAY_DONE : CF_RELAY_ACTIVE;
}

void cf_tlsrelay_bytes(const struct cf_tlsrelay *r, uint64_t bytes[2])
{
	bytes[0] = r->up.bytes;
	bytes[1] = r->down.bytes;
}

bool cf_tlsrelay_sent_eof(const struct cf_tlsrelay *r)
{
	return r->up.shut;
}
