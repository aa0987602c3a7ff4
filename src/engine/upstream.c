/* SPDX-License-Identifier: MIT */
#include "engine/upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>

#include "dns/synth.h"
#include "policy/policy.h"
#include "proxy/handshake.h"
#include "proxy/tls.h"

#define LEFTOVER_MAX 4096

struct cf_upstream {
	int fd;
	struct cf_capview_sock *eg;
	struct cf_tls *tls; /* NULL for http:// and socks5:// */
	bool tls_done;
	struct cf_hs *hs;
	bool exact;		    /* read only the proxy's reply (cf_upstream_exact()) */
	uint64_t wire_out, wire_in; /* the handshake's bytes on the socket (without TLS) */
	int err;
	char text[160];
	uint8_t leftover[LEFTOVER_MAX];
	size_t leftover_len;
};

static void fail(struct cf_upstream *u, int err, const char *text)
{
	u->err = err;
	snprintf(u->text, sizeof(u->text), "%s", text);
}

/*
 * Address rules (CIDRs, private and metadata blocks) judge the address the
 * tree resolved; a proxy asked for the name would resolve it again, possibly
 * to an address those rules deny. With any of them active the proxy is
 * asked for the address. (Domain rules judge the name, which stays the same.)
 */
static bool address_rules(const struct cf_config *c)
{
	return c->allow_cidrs.n || c->deny_cidrs.n || c->block_private || c->block_metadata;
}

/*
 * The name to ask the proxy for instead of @f's address, or NULL: for a
 * stand-in address (--proxy-remote-dns) the name it stands for; otherwise the
 * name the tree asked for when it got this address (its last query), provided
 * policy's name memory still holds the binding (TTL not expired), else the
 * last of the names that memory holds for it (a CNAME alias before an owner).
 * cf_upstream_new() asks only when no address rule is active (address_rules()).
 */
static const char *target_name(struct cf_engine *e, const struct cf_flow *f)
{
	if (e->synth && cf_synth_contains(&f->dst))
		return cf_synth_name(e->synth, &f->dst, e->now_ms);

	const char *asked = cf_flow_asked_name(e, &f->dst);
	const char *names[16];
	size_t n = cf_policy_names_for(e->policy, &f->dst, e->now_ms, names, 16);

	for (size_t i = 0; asked && i < n; i++)
		if (strcmp(names[i], asked) == 0)
			return asked;
	return n > 0 ? names[n - 1] : NULL;
}

int cf_upstream_new(struct cf_engine *e, const struct cf_flow *f, int fd,
		    struct cf_capview_sock *eg, struct cf_upstream **out)
{
	const struct cf_config *cfg = e->cfg;
	struct cf_upstream *u = calloc(1, sizeof(*u));
	struct cf_hs_target t = {
	    .name = cfg->proxy_send_ip || address_rules(cfg) ? NULL : target_name(e, f),
	    .ip = &f->dst,
	    .port = f->dport,
	};
	/* A stand-in address means nothing to the proxy: only its name can be sent. */
	bool name_only = e->synth && cf_synth_contains(&f->dst);
	int r;

	if (!u)
		return -ENOMEM;
	u->fd = fd;
	u->eg = eg;
	r = name_only && !t.name
		? -EINVAL
		: cf_hs_new(&cfg->proxy, cfg->proxy_user, cfg->proxy_password, &t, &u->hs);
	if (r == -EINVAL && t.name && !name_only) {
		/* A name unsafe to put in a request: ask for the address instead. */
		t.name = NULL;
		r = cf_hs_new(&cfg->proxy, cfg->proxy_user, cfg->proxy_password, &t, &u->hs);
	}
	if (r == 0 && cfg->proxy.scheme == CF_PROXY_HTTPS)
		r = cf_tls_new(e->tls_ctx, fd, cfg->proxy.host, &u->tls);
	if (r < 0) {
		cf_upstream_free(u);
		return r;
	}
	*out = u;
	return 0;
}

void cf_upstream_free(struct cf_upstream *u)
{
	if (!u)
		return;
	cf_hs_free(u->hs);
	cf_tls_free(u->tls);
	free(u);
}

static ssize_t io_write(struct cf_upstream *u, const uint8_t *p, size_t n)
{
	ssize_t w = u->tls ? cf_tls_write(u->tls, p, n) : send(u->fd, p, n, MSG_NOSIGNAL);

	if (w < 0 && !u->tls)
		return -errno;
	if (w > 0)
		cf_capview_tcp_data(u->eg, CF_CAPVIEW_OUT, p, (size_t)w);
	return w;
}

static ssize_t io_read(struct cf_upstream *u, uint8_t *p, size_t n)
{
	ssize_t r = u->tls ? cf_tls_read(u->tls, p, n) : recv(u->fd, p, n, 0);

	if (r < 0 && !u->tls)
		return -errno;
	if (r > 0)
		cf_capview_tcp_data(u->eg, CF_CAPVIEW_IN, p, (size_t)r);
	else if (r == 0)
		cf_capview_tcp_fin(u->eg, CF_CAPVIEW_IN);
	return r;
}

/* Events to wait for after -EAGAIN on @write (or a read). */
static uint32_t wait_events(const struct cf_upstream *u, bool write)
{
	if (u->tls)
		return (cf_tls_wants(u->tls) & CF_TLS_WANT_WRITE) ? EPOLLOUT : EPOLLIN;
	return write ? EPOLLOUT : EPOLLIN;
}

static enum cf_upstream_status tls_step(struct cf_upstream *u, uint32_t *events)
{
	int r = cf_tls_handshake(u->tls);

	if (r == -EAGAIN) {
		*events = wait_events(u, false);
		return CF_UPSTREAM_PENDING;
	}
	if (r < 0) {
		const char *why = cf_tls_error(u->tls);

		fail(u, ECONNREFUSED, why ? why : "proxy TLS: handshake failed");
		return CF_UPSTREAM_FAILED;
	}
	u->tls_done = true;
	return CF_UPSTREAM_DONE;
}

/* Feed what the proxy sent; keep bytes past its reply for the tree. */
static enum cf_hs_status feed(struct cf_upstream *u, const uint8_t *buf, size_t n)
{
	size_t used = 0;
	enum cf_hs_status st = cf_hs_input(u->hs, buf, n, &used);

	if (st == CF_HS_DONE && used < n) {
		size_t extra = n - used;

		if (extra > LEFTOVER_MAX)
			extra = LEFTOVER_MAX; /* bounded by the read size below */
		memcpy(u->leftover, buf + used, extra);
		u->leftover_len = extra;
	}
	return st;
}

/*
 * Read what the proxy sent without taking a byte past its reply: peek, let
 * the handshake say how much of it is the reply, and take only that. What
 * follows (a banner the destination sent in the same segment) stays queued
 * in the socket for whoever gets it next. Return the status, or -errno in *err.
 */
static enum cf_hs_status read_exact(struct cf_upstream *u, uint8_t *buf, size_t len, int *err)
{
	ssize_t r = recv(u->fd, buf, len, MSG_PEEK);
	enum cf_hs_status st;
	size_t used = 0;

	*err = 0;
	if (r < 0) {
		*err = -errno;
		return CF_HS_WANT_READ;
	}
	st = cf_hs_input(u->hs, buf, (size_t)r, &used); /* 0 = EOF: the handshake reports it */
	if (used > 0 && recv(u->fd, buf, used, 0) != (ssize_t)used) {
		*err = -EIO; /* it was queued a moment ago and nobody else reads it */
	} else if (used > 0) {
		u->wire_in += used;
		cf_capview_tcp_data(u->eg, CF_CAPVIEW_IN, buf, used);
	}
	return st;
}

static enum cf_upstream_status hs_step(struct cf_upstream *u, uint32_t *events)
{
	uint8_t buf[LEFTOVER_MAX];
	const uint8_t *out;
	enum cf_hs_status st = cf_hs_status(u->hs);

	for (;;) {
		size_t n = cf_hs_pending_output(u->hs, &out);
		ssize_t r;

		if (st == CF_HS_DONE)
			return CF_UPSTREAM_DONE;
		if (st == CF_HS_FAILED) {
			const char *why = NULL;

			u->err = cf_hs_error(u->hs, &why);
			fail(u, u->err ? u->err : ECONNREFUSED,
			     why ? why : "proxy: handshake failed");
			return CF_UPSTREAM_FAILED;
		}
		if (n > 0) {
			r = io_write(u, out, n);
			if (r > 0)
				u->wire_out += (uint64_t)r;
			if (r == -EAGAIN) {
				*events = wait_events(u, true);
				return CF_UPSTREAM_PENDING;
			}
			if (r < 0)
				goto io_error;
			cf_hs_consumed_output(u->hs, (size_t)r);
			continue;
		}
		if (u->exact) {
			int err;

			st = read_exact(u, buf, sizeof(buf), &err);
			r = err;
		} else {
			r = io_read(u, buf, sizeof(buf));
			if (r >= 0)
				st =
				    feed(u, buf, (size_t)r); /* 0 = EOF: the handshake reports it */
		}
		if (r == -EAGAIN) {
			*events = wait_events(u, false);
			return CF_UPSTREAM_PENDING;
		}
		if (r < 0)
			goto io_error;
	}
io_error:
	fail(u, ECONNREFUSED, "proxy: connection lost during the handshake");
	return CF_UPSTREAM_FAILED;
}

enum cf_upstream_status cf_upstream_progress(struct cf_upstream *u, uint32_t *events)
{
	if (u->tls && !u->tls_done) {
		enum cf_upstream_status s = tls_step(u, events);

		if (s != CF_UPSTREAM_DONE)
			return s;
	}
	return hs_step(u, events);
}

void cf_upstream_exact(struct cf_upstream *u)
{
	u->exact = !u->tls;
}

void cf_upstream_wire_bytes(const struct cf_upstream *u, uint64_t *out, uint64_t *in)
{
	*out = u->wire_out;
	*in = u->wire_in;
}

int cf_upstream_error(const struct cf_upstream *u, const char **text)
{
	*text = u->text;
	return u->err ? u->err : ECONNREFUSED;
}

size_t cf_upstream_leftover(const struct cf_upstream *u, const uint8_t **data)
{
	*data = u->leftover;
	return u->leftover_len;
}

const char *cf_upstream_cert_refused(const struct cf_upstream *u)
{
	return u->tls ? cf_tls_cert_refused(u->tls) : NULL;
}

struct cf_tls *cf_upstream_take_tls(struct cf_upstream *u)
{
	struct cf_tls *t = u->tls;

	u->tls = NULL;
	return t;
}
