/* SPDX-License-Identifier: MIT */
/*
 * Each direction has an assembly buffer (the frame being read) and an
 * output buffer holding only whole frames, so an answer the engine makes up
 * for a denied query never lands inside a resolver's answer. A direction
 * stops reading while its output buffer could not take one more maximal
 * frame; the stream is done when both sides reached EOF and everything
 * queued was written.
 */
#include "engine/dnsstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/message.h"

#define FRAME_MAX CF_DNSSTREAM_FRAME_MAX

struct dns_dir {
	uint8_t in[FRAME_MAX];
	size_t in_len;
	uint8_t out[2 * FRAME_MAX];
	size_t out_len;
	bool eof, shut;
};

struct cf_dnsstream {
	struct dns_dir q; /* tree -> resolver */
	struct dns_dir a; /* resolver -> tree */
	uint64_t moved;	  /* bytes read or written so far: "did this pass make progress?" */
	struct cf_egress_sock *eg; /* the upstream socket, for the egress capture */
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

void cf_dnsstream_free(struct cf_dnsstream *s)
{
	free(s);
}

static void queue(struct dns_dir *d, const uint8_t *frame, size_t len)
{
	memcpy(d->out + d->out_len, frame, len);
	d->out_len += len;
}

/*
 * A query the tree sent: forward it, answer it empty when policy says no,
 * or answer it with stand-in addresses under remote DNS.
 */
static void on_query(struct cf_engine *e, struct cf_dnsstream *s, const struct cf_flow *f,
		     const uint8_t *frame, size_t len)
{
	uint8_t ans[FRAME_MAX];
	int verdict;
	ssize_t n;

	cf_flow_dns_query(e, f->id, true, frame + 2, len - 2, &f->dst, f->dport, &verdict);
	if (verdict == 0 && e->synth) {
		n = cf_flow_dns_remote_answer(e, f->id, true, &f->dst, f->dport, frame + 2,
					      len - 2, ans + 2, sizeof(ans) - 2);
	} else if (verdict == 0) {
		queue(&s->q, frame, len);
		return;
	} else {
		n = cf_dns_build_empty_answer(frame + 2, len - 2, 0, ans + 2, sizeof(ans) - 2);
		if (n > 0)
			cf_flow_dns_synthetic(e, f->id, true, &f->dst, f->dport, ans + 2,
					      (size_t)n);
	}
	if (n <= 0)
		return;
	ans[0] = (uint8_t)(n >> 8);
	ans[1] = (uint8_t)n;
	queue(&s->a, ans, (size_t)n + 2);
}

static void on_answer(struct cf_engine *e, struct cf_dnsstream *s, const struct cf_flow *f,
		      const uint8_t *frame, size_t len)
{
	cf_flow_dns_relayed(e, f->id, true, &f->dst, f->dport, frame + 2, len - 2);
	queue(&s->a, frame, len);
}

/* Read frames from @fd into @d->in; hand each whole one to @cb. Return 0 or -errno. */
static int read_frames(struct cf_engine *e, struct cf_dnsstream *s, const struct cf_flow *f,
		       int fd, struct dns_dir *d, bool queries)
{
	struct dns_dir *target = queries ? &s->q : &s->a;

	/* A query may be answered by the engine, into the answer direction: room for both. */
	while (!d->eof && target->out_len + FRAME_MAX <= sizeof(target->out) &&
	       (!queries || s->a.out_len + FRAME_MAX <= sizeof(s->a.out))) {
		ssize_t n = read(fd, d->in + d->in_len, cf_dnsstream_want(d->in, d->in_len));
		size_t whole;

		if (n == 0) {
			d->eof = true;
			if (!queries)
				cf_egress_tcp_fin(s->eg, CF_EGRESS_IN);
			break;
		}
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (!queries)
			cf_egress_tcp_data(s->eg, CF_EGRESS_IN, d->in + d->in_len, (size_t)n);
		s->moved += (uint64_t)n;
		whole = cf_dnsstream_got(d->in, &d->in_len, (size_t)n);
		if (whole > 0 && queries)
			on_query(e, s, f, d->in, whole);
		else if (whole > 0)
			on_answer(e, s, f, d->in, whole);
	}
	return 0;
}

/* Write @d->out to @fd; after EOF of the reading side and an empty queue, shut it down. */
static int flush(struct cf_dnsstream *s, struct dns_dir *d, bool src_eof, int fd)
{
	while (d->out_len > 0) {
		ssize_t n = send(fd, d->out, d->out_len, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (d == &s->q)
			cf_egress_tcp_data(s->eg, CF_EGRESS_OUT, d->out, (size_t)n);
		memmove(d->out, d->out + n, d->out_len - (size_t)n);
		d->out_len -= (size_t)n;
		s->moved += (uint64_t)n;
	}
	if (src_eof && !d->shut) {
		if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		d->shut = true;
		if (d == &s->q)
			cf_egress_tcp_fin(s->eg, CF_EGRESS_OUT);
	}
	return 0;
}

enum cf_relay_state cf_dnsstream_progress(struct cf_engine *e, struct cf_dnsstream *s,
					  const struct cf_flow *f, int child_fd, int up_fd,
					  struct cf_egress_sock *eg)
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
