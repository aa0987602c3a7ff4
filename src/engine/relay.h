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

#include "util/tbucket.h"

struct cf_relay_dir {
	int pipe_r, pipe_w;
	size_t in_pipe; /* bytes sitting in the pipe */
	size_t pipe_cap;
	uint64_t bytes; /* bytes delivered to the destination */
	bool src_eof;
	bool dst_shut;
	/* With a tap: a pipe holding a copy (tee) of the first @tapped bytes of the pipe. */
	int tap_r, tap_w;
	size_t tap_cap, tapped;
};

/*
 * A tap on a relay's upstream side (the egress capture view): it learns every
 * byte the upstream socket sends (direction 0) and receives (direction 1)
 * while the relay stays on the splice path; the bytes are tee(2)d into a
 * second pipe. Direction 1 is copied as it is read from upstream (the pipe
 * is only refilled once empty), direction 0 as it is written to upstream.
 */
struct cf_relay_tap {
	/* @n bytes of direction @dir wait in pipe @fd: read all of them. */
	void (*bytes)(void *arg, int dir, int fd, size_t n);
	/* @n bytes of direction @dir moved without a copy (tee failed). */
	void (*gap)(void *arg, int dir, size_t n);
	/* Direction @dir ended: EOF from upstream (1), or shutdown passed on to it (0). */
	void (*eof)(void *arg, int dir);
	void *arg;
};

enum cf_relay_state {
	CF_RELAY_ACTIVE,
	CF_RELAY_DONE,	/* both directions reached EOF; close both (that sends the last FIN) */
	CF_RELAY_RESET, /* one side failed: close both, with RST */
	CF_RELAY_MORE,	/* turn used up with data still moving: call again soon, no event will */
};

/*
 * Pipe loads one direction moves per cf_relay_progress() call: a bulk
 * transfer that never runs dry would otherwise keep the engine in one
 * relay, starving other connections and the capture.
 */
#define CF_RELAY_TURN_ROUNDS 16

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
	int error_side;		    /* index in fd[] of the socket that failed */
	bool tapping;		    /* tap set: the dir[].tap_* pipes exist */
	bool starved;		    /* the last progress wanted a pipe and no fd was left */
	/* --rate-limit: each direction reads no more than its bucket holds (NULL: no limit). */
	struct cf_tbucket *limit[2];
	unsigned throttled;	   /* bit i: direction i used up its tokens in the last progress */
	struct cf_pipe_pool *pool; /* where pipes come from and go back to, or NULL */
	struct cf_relay_tap tap;
};

/*
 * Set up a relay between @a and @b (fds stay owned by the caller). A
 * direction holds a pipe only while bytes wait in it: it takes one from
 * @pool (or makes one) when there is something to move, and gives it back
 * once empty, so an idle connection costs its two sockets only. When no
 * pipe can be made (EMFILE, ENFILE), progress sets @starved and waits
 * instead of failing: call it again once descriptors were freed. Return 0
 * or -errno.
 */
int cf_relay_init(struct cf_relay *r, int a, int b, struct cf_pipe_pool *pool);

/*
 * Add @tap (after cf_relay_init(), before any progress); a tapped relay
 * keeps its pipes. Return 0, or -errno and no tap.
 */
int cf_relay_set_tap(struct cf_relay *r, const struct cf_relay_tap *tap);

/* Move what can be moved now. */
enum cf_relay_state cf_relay_progress(struct cf_relay *r);

/* Give the pipes back to @pool when empty (else close them); the sockets stay open. */
void cf_relay_fini(struct cf_relay *r, struct cf_pipe_pool *pool);

/* True once the tree's end (FIN) was passed on to the destination. */
bool cf_relay_sent_eof(const struct cf_relay *r);

#endif
