/* SPDX-License-Identifier: MIT */
#include "engine/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
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

static int dir_init(struct cf_relay_dir *d, struct cf_pipe_pool *pool)
{
	int p[2], sz;

	memset(d, 0, sizeof(*d));
	d->pipe_r = d->pipe_w = -1;
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

int cf_relay_init(struct cf_relay *r, int a, int b, struct cf_pipe_pool *pool)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->fd[0] = a;
	r->fd[1] = b;
	r->dir[1].pipe_r = r->dir[1].pipe_w = -1;
	err = dir_init(&r->dir[0], pool);
	if (err == 0)
		err = dir_init(&r->dir[1], pool);
	if (err < 0)
		cf_relay_fini(r, NULL);
	return err;
}

void cf_relay_fini(struct cf_relay *r, struct cf_pipe_pool *pool)
{
	for (int i = 0; i < 2; i++) {
		struct cf_relay_dir *d = &r->dir[i];

		if (d->pipe_r < 0)
			continue;
		/* Only a pipe known to be empty may carry another connection's bytes. */
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
}

/* Fill the pipe from @src. Return 1 if progress, 0 if blocked/EOF, -errno on error. */
static int fill(struct cf_relay_dir *d, int src)
{
	ssize_t n;

	if (d->src_eof || d->in_pipe >= d->pipe_cap)
		return 0;
	n = splice(src, NULL, d->pipe_w, NULL, d->pipe_cap - d->in_pipe,
		   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		d->in_pipe += (size_t)n;
		return 1;
	}
	if (n == 0) {
		d->src_eof = true;
		return 1;
	}
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/* Drain the pipe into @dst. Return 1 if progress, 0 if blocked/empty, -errno on error. */
static int drain(struct cf_relay_dir *d, int dst)
{
	ssize_t n;

	if (d->in_pipe == 0)
		return 0;
	n = splice(d->pipe_r, NULL, dst, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		d->in_pipe -= (size_t)n;
		d->bytes += (uint64_t)n;
		return 1;
	}
	return n < 0 && errno != EAGAIN && errno != EINTR ? -errno : 0;
}

static int dir_progress(struct cf_relay_dir *d, int src, int dst)
{
	int a, b;

	do {
		a = fill(d, src);
		if (a < 0)
			return a;
		b = drain(d, dst);
		if (b < 0)
			return b;
	} while (a > 0 || b > 0);
	if (d->src_eof && d->in_pipe == 0 && !d->dst_shut) {
		/* ENOTCONN: the peer is already gone; the other direction will tell. */
		if (shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		d->dst_shut = true;
	}
	return 0;
}

enum cf_relay_state cf_relay_progress(struct cf_relay *r)
{
	for (int i = 0; i < 2; i++) {
		int err = dir_progress(&r->dir[i], r->fd[i], r->fd[1 - i]);

		if (err < 0) {
			r->error = -err;
			return CF_RELAY_RESET;
		}
	}
	if (r->dir[0].dst_shut && r->dir[1].dst_shut)
		return CF_RELAY_DONE;
	return CF_RELAY_ACTIVE;
}
