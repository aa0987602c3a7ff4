/* SPDX-License-Identifier: MIT */
/*
 * A background writer: the caller fills buffers, a thread of the writer's
 * own write()s them to a file descriptor, in order. It exists so the engine
 * thread never spends its time in write() for a capture file: a 500 MiB
 * capture is 500 MiB of write()s, all of it relaying time lost otherwise.
 *
 * Memory is bounded: @nbufs buffers of @buf_size bytes. When all are
 * waiting to be written, cf_bgwrite_submit() waits for the thread.
 *
 * The thread starts at the first submit, so a process that forks or
 * clones before that (childflow launches the tree after opening its
 * capture files) has only one thread when it does. It blocks every signal:
 * signals stay with the thread that handles them.
 *
 * Errors: the first failed write() is kept; the thread writes nothing
 * after it, and every later call returns it.
 */
#ifndef CF_UTIL_BGWRITE_H
#define CF_UTIL_BGWRITE_H

#include <stddef.h>
#include <stdint.h>

struct cf_bgwrite;

/* A writer for @fd (not owned). Return 0 or -errno (-EINVAL, -ENOMEM). */
int cf_bgwrite_new(int fd, size_t buf_size, unsigned nbufs, struct cf_bgwrite **out);

/* The buffer to fill next, cf_bgwrite_size() bytes; valid until the next submit. */
uint8_t *cf_bgwrite_buffer(struct cf_bgwrite *w);
size_t cf_bgwrite_size(const struct cf_bgwrite *w);

/*
 * Hand the first @len bytes of the current buffer to the thread (nothing
 * when @len is 0), waiting while no buffer is free. Return 0 or the first
 * write error so far (-errno; the buffer is then dropped).
 */
int cf_bgwrite_submit(struct cf_bgwrite *w, size_t len);

/*
 * Wait until everything submitted is written or dropped. *@written (if not
 * NULL): bytes of the buffers written whole. Return 0 or the first error.
 */
int cf_bgwrite_sync(struct cf_bgwrite *w, uint64_t *written);

/* Sync, stop the thread and free @w (NULL is fine). Return as cf_bgwrite_sync(). */
int cf_bgwrite_free(struct cf_bgwrite *w, uint64_t *written);

#endif
