/* SPDX-License-Identifier: MIT */
/*
 * The thread owns the ring's reading position and the pcapng writer; the
 * producer only looks at the ring (cf_pktring_backlogged(), made for that)
 * and sleeps on mu/moved. The thread announces every block it gives back,
 * so a waiting producer rechecks after each one. After a write error the
 * thread goes on giving blocks back without writing them, so the producer
 * is never held by a capture that has stopped.
 */
#include "capture/capdrain.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "capture/pktring.h"
#include "util/log.h"
#include "util/thread.h"

/* Packets at least this long are written from the ring, smaller ones copied. */
#define REF_MIN 512
/* Packets read one by one per wake-up, without a ring. */
#define BATCH 256

struct cf_capdrain {
	struct cf_capdrain_opts o;
	struct cf_pktring ring;
	int evfd; /* wakes the thread to stop */
	int error;
	bool stop; /* atomic */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t moved; /* a block went back, or the thread ended */
	unsigned waiting;     /* producers in cf_capdrain_wait_room() (under mu) */
	bool done;	      /* the thread ended (under mu) */
	uint8_t rxbuf[65536]; /* without a ring */
};

static void write_error(struct cf_capdrain *d, int r)
{
	if (d->error)
		return;
	d->error = r;
	log_error("capture: cannot write the pcapng file: %s (capture stopped)", strerror(-r));
}

static void put(struct cf_capdrain *d, const uint8_t *p, size_t len, int ifindex, uint8_t pkttype,
		uint64_t ts_ns, bool by_ref)
{
	enum cf_pcapng_dir dir;
	int r;

	if (d->error || !d->o.keep(d->o.keep_arg, p, len, ifindex, pkttype, &dir))
		return;
	if (by_ref && len >= REF_MIN)
		r = cf_pcapng_write_packet_ref(d->o.out, d->o.iface, ts_ns, p, len, dir);
	else
		r = cf_pcapng_write_packet(d->o.out, d->o.iface, ts_ns, p, len, dir);
	if (r < 0)
		write_error(d, r);
}

static void on_ring_packet(void *arg, const struct cf_pktring_pkt *pkt)
{
	put(arg, pkt->data, pkt->len, pkt->ifindex, pkt->pkttype, pkt->ts_ns, true);
}

/*
 * The block goes back to the kernel next: what refers to it must be written
 * now. Always asked, whatever d->error says: after a write error the
 * writer's own sticky error has dropped its references already, after any
 * other it still holds them.
 */
static void flush(void *arg)
{
	struct cf_capdrain *d = arg;
	int r = cf_pcapng_flush(d->o.out);

	if (r < 0)
		write_error(d, r);
}

static void announce(struct cf_capdrain *d, bool done)
{
	pthread_mutex_lock(&d->mu);
	if (done)
		d->done = true;
	if (d->waiting || done)
		pthread_cond_broadcast(&d->moved);
	pthread_mutex_unlock(&d->mu);
}

/* Without a ring: read one packet; 0, or -errno (-EAGAIN: none is left). */
static int read_one(struct cf_capdrain *d)
{
	struct cf_pktring_pkt pkt;
	int r = cf_pktring_recv(d->o.fd, d->rxbuf, sizeof(d->rxbuf), &pkt);

	if (r == 0)
		put(d, pkt.data, pkt.len, pkt.ifindex, pkt.pkttype, pkt.ts_ns, false);
	return r;
}

/* Write what the kernel has handed over so far; without a ring a batch, or @all of it. */
static void drain(struct cf_capdrain *d, bool all)
{
	if (d->ring.map) {
		while (cf_pktring_read(&d->ring, 1, on_ring_packet, flush, d) > 0)
			announce(d, false);
		return;
	}
	for (int i = 0; (all || i < BATCH) && read_one(d) == 0; i++)
		;
	flush(d);
}

static void *drain_main(void *arg)
{
	struct cf_capdrain *d = arg;
	struct pollfd p[2] = {{.fd = d->o.fd, .events = POLLIN}, {.fd = d->evfd, .events = POLLIN}};

	for (;;) {
		drain(d, false);
		if (__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE))
			break;
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			int err = errno;

			log_error("capture: cannot wait for packets: %s (capture stopped)",
				  strerror(err));
			if (!d->error)
				d->error = -err;
			break;
		}
	}
	cf_pktring_settle(&d->ring);
	drain(d, true);
	announce(d, true);
	return NULL;
}

/* Free @d, whose thread is not running (any more). */
static void destroy(struct cf_capdrain *d)
{
	cf_pktring_close(&d->ring);
	pthread_cond_destroy(&d->moved);
	pthread_mutex_destroy(&d->mu);
	close(d->evfd);
	free(d);
}

int cf_capdrain_start(const struct cf_capdrain_opts *o, struct cf_capdrain **out)
{
	struct cf_capdrain *d;
	int r;

	if (!o || o->fd < 0 || !o->out || !o->keep || !out)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->o = *o;
	d->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->evfd < 0) {
		r = -errno;
		free(d);
		return r;
	}
	r = o->ring_blocks ? cf_pktring_open(&d->ring, o->fd, CF_PKTRING_BLOCK_SIZE, o->ring_blocks)
			   : -ENOTSUP;
	if (r < 0 && o->ring_blocks)
		log_warn("capture: no packet ring (%s): packets are read one at a time, and more "
			 "are dropped under load (the run reports how many)",
			 strerror(-r));
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->moved, NULL);
	r = cf_thread_start(&d->thread, drain_main, d);
	if (r < 0) {
		destroy(d);
		return r;
	}
	*out = d;
	return 0;
}

void cf_capdrain_wait_room(struct cf_capdrain *d)
{
	if (!d || !cf_pktring_backlogged(&d->ring))
		return;
	pthread_mutex_lock(&d->mu);
	d->waiting++;
	while (!d->done && cf_pktring_backlogged(&d->ring))
		pthread_cond_wait(&d->moved, &d->mu);
	d->waiting--;
	pthread_mutex_unlock(&d->mu);
}

int cf_capdrain_stop(struct cf_capdrain *d, uint64_t *dropped)
{
	struct tpacket_stats st;
	socklen_t sl = sizeof(st);
	const uint64_t one = 1;
	int r;

	if (dropped)
		*dropped = 0;
	if (!d)
		return 0;
	__atomic_store_n(&d->stop, true, __ATOMIC_RELEASE);
	(void)!write(d->evfd, &one, sizeof(one));
	pthread_join(d->thread, NULL);
	if (dropped && getsockopt(d->o.fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
		*dropped = st.tp_drops;
	r = d->error;
	destroy(d);
	return r;
}
