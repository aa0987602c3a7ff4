/* SPDX-License-Identifier: MIT */
/*
 * Moving bytes between two connected stream sockets with splice() through
 * a pipe per direction, never through user space. Half-close is preserved:
 * EOF on one side becomes shutdown(SHUT_WR) on the other once its pipe has
 * drained. Used edge-triggered: call cf_relay_progress() on any event of
 * either socket; it runs each direction until it would block.
 */
#ifndef CF_ENGINE_RELAY_H
#define CF_ENGINE_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cf_relay_dir {
	int pipe_r, pipe_w;
	size_t in_pipe;	 /* bytes sitting in the pipe */
	size_t pipe_cap;
	uint64_t bytes;	 /* bytes delivered to the destination */
	bool src_eof;
	bool dst_shut;
};

enum cf_relay_state {
	CF_RELAY_ACTIVE,
	CF_RELAY_DONE,	/* both directions reached EOF and were passed on */
	CF_RELAY_RESET, /* one side failed: close both, with RST */
};

/*
 * Empty pipes kept for the next connection: creating and sizing two pipes
 * per connection is four system calls, closing them four more. An empty
 * pipe holds no pages, so the pool costs only its descriptors.
 */
#define CF_PIPE_POOL_MAX 256

struct cf_pipe_pool {
	int fd[CF_PIPE_POOL_MAX][2];
	size_t cap[CF_PIPE_POOL_MAX];
	size_t n;
};

/* Close every pooled pipe. */
void cf_pipe_pool_drain(struct cf_pipe_pool *pool);

struct cf_relay {
	int fd[2];		    /* fd[0] child side, fd[1] upstream side */
	struct cf_relay_dir dir[2]; /* dir[0]: fd[0] -> fd[1]; dir[1]: fd[1] -> fd[0] */
	int error;		    /* errno that caused CF_RELAY_RESET */
};

/*
 * Set up pipes for a relay between @a and @b (fds stay owned by the caller),
 * taking them from @pool when it has some. Return 0 or -errno.
 */
int cf_relay_init(struct cf_relay *r, int a, int b, struct cf_pipe_pool *pool);

/* Move what can be moved now. */
enum cf_relay_state cf_relay_progress(struct cf_relay *r);

/* Give the pipes back to @pool when empty (else close them); the sockets stay open. */
void cf_relay_fini(struct cf_relay *r, struct cf_pipe_pool *pool);

#endif
