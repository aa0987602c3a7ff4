/* SPDX-License-Identifier: MIT */
/*
 * The buffers form a ring: [head, head + count) are submitted and wait for
 * the thread (head is being written); fill, the caller's alone, is the one
 * it fills, always (head + count) % n. Everything the two threads share is
 * under mu.
 */
#include "util/bgwrite.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/thread.h"

struct cf_bgwrite {
	int fd;
	size_t size;
	unsigned n;
	uint8_t **buf;
	size_t *len;
	pthread_mutex_t mu;
	pthread_cond_t work; /* count became non-zero, or stop */
	pthread_cond_t done; /* count went down */
	unsigned head, count;
	unsigned fill;
	int error;
	uint64_t written;
	bool started, stop;
	pthread_t thread;
};

/* Account for one buffer's write (called with mu held). */
static void account(struct cf_bgwrite *w, size_t len, int r)
{
	if (r < 0 && w->error == 0)
		w->error = r;
	if (r == 0)
		w->written += len;
}

static void *writer_main(void *arg)
{
	struct cf_bgwrite *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		unsigned i;
		size_t len;
		int r = 0;

		while (w->count == 0 && !w->stop)
			pthread_cond_wait(&w->work, &w->mu);
		if (w->count == 0)
			break;
		i = w->head;
		len = w->len[i];
		/* The buffer is the thread's until head moves: write it unlocked. */
		if (w->error == 0) {
			pthread_mutex_unlock(&w->mu);
			r = cf_write_all(w->fd, w->buf[i], len);
			pthread_mutex_lock(&w->mu);
		} else {
			r = w->error;
		}
		account(w, len, r);
		w->head = (w->head + 1) % w->n;
		w->count--;
		pthread_cond_broadcast(&w->done);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int start_thread(struct cf_bgwrite *w)
{
	int r = cf_thread_start(&w->thread, writer_main, w);

	if (r == 0)
		w->started = true;
	return r;
}

int cf_bgwrite_new(int fd, size_t buf_size, unsigned nbufs, struct cf_bgwrite **out)
{
	struct cf_bgwrite *w;

	if (fd < 0 || buf_size == 0 || nbufs < 2 || !out)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = fd;
	w->size = buf_size;
	w->n = nbufs;
	w->buf = calloc(nbufs, sizeof(*w->buf));
	w->len = calloc(nbufs, sizeof(*w->len));
	if (!w->buf || !w->len)
		goto fail;
	for (unsigned i = 0; i < nbufs; i++) {
		w->buf[i] = malloc(buf_size);
		if (!w->buf[i])
			goto fail;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	*out = w;
	return 0;
fail:
	for (unsigned i = 0; w->buf && i < nbufs; i++)
		free(w->buf[i]);
	free(w->buf);
	free(w->len);
	free(w);
	return -ENOMEM;
}

uint8_t *cf_bgwrite_buffer(struct cf_bgwrite *w)
{
	return w->buf[w->fill];
}

size_t cf_bgwrite_size(const struct cf_bgwrite *w)
{
	return w->size;
}

int cf_bgwrite_submit(struct cf_bgwrite *w, size_t len)
{
	int r;

	if (len > w->size)
		return -EINVAL;
	if (len > 0 && !w->started && start_thread(w) < 0) {
		/* No thread to be had: write here, slower but nothing lost. */
		r = w->error ? w->error : cf_write_all(w->fd, w->buf[w->fill], len);
		account(w, len, r);
		return w->error;
	}
	pthread_mutex_lock(&w->mu);
	if (len > 0) {
		w->len[w->fill] = len;
		w->fill = (w->fill + 1) % w->n;
		w->count++;
		pthread_cond_signal(&w->work);
	}
	/* The next buffer to fill must not be one still waiting to be written. */
	while (w->count == w->n)
		pthread_cond_wait(&w->done, &w->mu);
	r = w->error;
	pthread_mutex_unlock(&w->mu);
	return r;
}

int cf_bgwrite_sync(struct cf_bgwrite *w, uint64_t *written)
{
	int r;

	pthread_mutex_lock(&w->mu);
	while (w->count > 0)
		pthread_cond_wait(&w->done, &w->mu);
	r = w->error;
	if (written)
		*written = w->written;
	pthread_mutex_unlock(&w->mu);
	return r;
}

int cf_bgwrite_free(struct cf_bgwrite *w, uint64_t *written)
{
	int r;

	if (!w)
		return 0;
	r = cf_bgwrite_sync(w, written);
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->work);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	for (unsigned i = 0; i < w->n; i++)
		free(w->buf[i]);
	free(w->buf);
	free(w->len);
	free(w);
	return r;
}
