/* SPDX-License-Identifier: MIT */
/*
 * Each direction has an assembly buffer (the frame being read) and an
 * output buffer holding only whole frames, so an answer the engine makes up
 * for a denied query never lands inside a resolver's answer. A direction
 * stops reading while its output buffer could not take one more maximal
 * frame; the stream is done when both sides reached EOF and everything
 * queued was written.
 *
 * Buffers are sized to what arrives: an assembly buffer grows with the bytes
 * of the frame, never past the length its prefix announced, and both are
 * given back when they empty out while larger than BUF_KEEP. A stream that
 * holds one partial frame costs BUF_MIN bytes, not a maximal frame; with at
 * most CF_DNSSTREAM_MAX streams (tcp.c) the engine's DNS-over-TCP memory is
 * bounded even against a tree that opens streams and never finishes them.
 */
#include "engine/dnsstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/message.h"

#define FRAME_MAX CF_DNSSTREAM_FRAME_MAX
/* Queued whole frames a direction may hold before it stops reading. */
#define OUT_MAX (2 * FRAME_MAX)
/* First allocation of a buffer: a typical query or answer fits. */
#define BUF_MIN 512
/* A buffer larger than this is freed when it empties; smaller ones are kept. */
#define BUF_KEEP 4096

struct dns_buf {
	uint8_t *p;
	size_t len, cap;
};

struct dns_dir {
	struct dns_buf in;  /* the frame being assembled, its 2-byte prefix first */
	struct dns_buf out; /* whole frames waiting to be written */
	bool eof, shut;
};

struct cf_dnsstream {
	struct dns_dir q; /* tree -> resolver */
	struct dns_dir a; /* resolver -> tree */
	uint64_t moved;	  /* bytes read or written so far: "did this pass make progress?" */
	struct cf_capview_sock *eg; /* the upstream socket, for the egress capture */
};

size_t cf_dnsstream_want(const uint8_t *buf, size_t len)
{
	size_t whole;

	if (len < 2)
		return 2 - len;
	whole = 2 + ((size_t)buf[0] << 8 | buf[1]);
	return len < whole ? whole - len : 0;
}

size_t cf_dnsstream_got(const uint8_t *buf, size_t *len, size_t n)
{
	size_t whole = *len + n;

	*len = whole;
	if (cf_dnsstream_want(buf, whole) > 0)
		return 0;
	*len = 0;
	return whole > 2 ? whole : 0;
}

int cf_dnsstream_new(struct cf_dnsstream **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void buf_free(struct dns_buf *b)
{
	free(b->p);
	*b = (struct dns_buf){0};
}

void cf_dnsstream_free(struct cf_dnsstream *s)
{
	if (!s)
		return;
	buf_free(&s->q.in);
	buf_free(&s->q.out);
	buf_free(&s->a.in);
	buf_free(&s->a.out);
	free(s);
}

/*
 * Capacity for @need bytes in @b, doubling from BUF_MIN but never past
 * @limit (at least @need). Return 0 or -ENOMEM.
 */
static int buf_reserve(struct dns_buf *b, size_t need, size_t limit)
{
	size_t cap = b->cap ? b->cap : BUF_MIN;
	uint8_t *p;

	if (need <= b->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > limit)
		cap = limit > need ? limit : need;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* @b is empty: give its memory back if it grew for a large frame. */
static void buf_emptied(struct dns_buf *b)
{
	b->len = 0;
	if (b->cap > BUF_KEEP)
		buf_free(b);
}

static int queue(struct dns_dir *d, const uint8_t *frame, size_t len)
{
	int r = buf_reserve(&d->out, d->out.len + len, OUT_MAX);

	if (r < 0)
		return r;
	memcpy(d->out.p + d->out.len, frame, len);
	d->out.len += len;
	return 0;
}

/*
 * A query the tree sent: forward it, answer it empty when policy says no,
 * or answer it with stand-in addresses under remote DNS.
 */
static int on_query(struct cf_engine *e, struct cf_dnsstream *s, const struct cf_flow *f,
		    const uint8_t *frame, size_t len)
{
	uint8_t ans[FRAME_MAX];
	int verdict;
	ssize_t n;

	cf_flow_dns_query(e, f->id, true, frame + 2, len - 2, &f->dst, f->dport, &verdict);
	if (verdict > 0) {
		n = cf_flow_dns_remote_answer(e, f->id, true, &f->dst, f->dport, frame + 2, len - 2,
					      ans + 2, sizeof(ans) - 2);
	} else if (verdict == 0) {
		return queue(&s->q, frame, len);
	} else {
		n = cf_dns_build_empty_answer(frame + 2, len - 2, 0, ans + 2, sizeof(ans) - 2);
		if (n > 0)
			cf_flow_dns_synthetic(e, f->id, true, &f->dst, f->dport, ans + 2,
					      (size_t)n);
	}
	if (n <= 0)
		return 0;
	ans[0] = (uint8_t)(n >> 8);
	ans[1] = (uint8_t)n;
	return queue(&s->a, ans, (size_t)n + 2);
}

static int on_answer(struct cf_engine *e, struct cf_dnsstream *s, const struct cf_flow *f,
		     const uint8_t *frame, size_t len)
{
	cf_flow_dns_relayed(e, f->id, true, &f->dst, f->dport, frame + 2, len - 2);
	return queue(&s->a, frame, len);
}

/*
 * A frame of @whole bytes was completed in @d->in (cf_dnsstream_got(); 0 for
 * an empty message, which is dropped): hand it on, start the next one.
 */
static int frame_done(struct cf_engine *e, struct cf_dnsstream *s, const struct cf_flow *f,
		      struct dns_dir *d, size_t whole, bool queries)
{
	int r = 0;

	if (whole > 0)
		r = queries ? on_query(e, s, f, d->in.p, whole)
			    : on_answer(e, s, f, d->in.p, whole);
	buf_emptied(&d->in);
	return r;
}

/* Read frames from @fd into @d->in; hand each whole one on. Return 0 or -errno. */
static int read_frames(struct cf_engine *e, struct cf_dnsstream *s, const struct cf_flow *f, int fd,
		       struct dns_dir *d, bool queries)
{
	struct dns_dir *target = queries ? &s->q : &s->a;

	/* A query may be answered by the engine, into the answer direction: room for both. */
	while (!d->eof && target->out.len + FRAME_MAX <= OUT_MAX &&
	       (!queries || s->a.out.len + FRAME_MAX <= OUT_MAX)) {
		/* the frame's whole length once its prefix is in, 2 until then */
		size_t frame = d->in.len + cf_dnsstream_want(d->in.p, d->in.len);
		/* Grow with the bytes that come, never past what the prefix announced. */
		size_t limit = frame > BUF_MIN ? frame : BUF_MIN;
		size_t need = d->in.len * 2 > BUF_MIN ? d->in.len * 2 : BUF_MIN;
		int r = buf_reserve(&d->in, need < limit ? need : limit, limit);
		size_t whole;
		ssize_t n;

		if (r < 0)
			return r;
		n = read(fd, d->in.p + d->in.len,
			 (d->in.cap < frame ? d->in.cap : frame) - d->in.len);
		if (n == 0) {
			d->eof = true;
			if (!queries)
				cf_capview_tcp_fin(s->eg, CF_CAPVIEW_IN);
			break;
		}
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (!queries)
			cf_capview_tcp_data(s->eg, CF_CAPVIEW_IN, d->in.p + d->in.len, (size_t)n);
		s->moved += (uint64_t)n;
		whole = cf_dnsstream_got(d->in.p, &d->in.len, (size_t)n);
		if (d->in.len > 0)
			continue; /* not whole yet */
		r = frame_done(e, s, f, d, whole, queries);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Write @d->out to @fd; after EOF of the reading side and an empty queue, shut it down. */
static int flush(struct cf_dnsstream *s, struct dns_dir *d, bool src_eof, int fd)
{
	while (d->out.len > 0) {
		ssize_t n = send(fd, d->out.p, d->out.len, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (d == &s->q)
			cf_capview_tcp_data(s->eg, CF_CAPVIEW_OUT, d->out.p, (size_t)n);
		memmove(d->out.p, d->out.p + n, d->out.len - (size_t)n);
		d->out.len -= (size_t)n;
		s->moved += (uint64_t)n;
		if (d->out.len == 0)
			buf_emptied(&d->out);
	}
	if (src_eof && !d->shut) {
		if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		d->shut = true;
		if (d == &s->q)
			cf_capview_tcp_fin(s->eg, CF_CAPVIEW_OUT);
	}
	return 0;
}

enum cf_relay_state cf_dnsstream_progress(struct cf_engine *e, struct cf_dnsstream *s,
					  const struct cf_flow *f, int child_fd, int up_fd,
					  struct cf_capview_sock *eg)
{
	uint64_t before;
	int err;

	s->eg = eg;
	/* Edge-triggered: go round until a whole pass moves nothing. */
	do {
		before = s->moved;
		err = read_frames(e, s, f, child_fd, &s->q, true);
		if (err == 0 && up_fd >= 0)
			err = read_frames(e, s, f, up_fd, &s->a, false);
		if (err == 0 && up_fd >= 0)
			err = flush(s, &s->q, s->q.eof, up_fd);
		/* Without a resolver (up_fd -1) the answers end when the queries do. */
		if (err == 0)
			err = flush(s, &s->a, up_fd >= 0 ? s->a.eof : s->q.eof, child_fd);
		if (err < 0)
			return CF_RELAY_RESET;
	} while (before != s->moved);
	if (up_fd < 0)
		s->q.shut = s->q.eof;
	return s->q.shut && s->a.shut ? CF_RELAY_DONE : CF_RELAY_ACTIVE;
}
