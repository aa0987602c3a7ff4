/* SPDX-License-Identifier: MIT */
/*
 * A thread that drains a packet socket into a pcapng file, so that the
 * engine thread, which relays the very bytes being captured, spends no time
 * on the capture. With a packet ring (pktring.h) large packets are written
 * straight from the ring's blocks (cf_pcapng_write_packet_ref()): each
 * captured byte is copied once, into the file.
 *
 * Nothing is lost to a slow output: while half the ring or more waits to
 * be written, cf_capdrain_wait_room() holds the producer (the engine calls
 * it before every event) until the thread has caught up. The traffic being
 * captured then waits for the capture instead of overflowing the ring.
 */
#ifndef CF_CAPTURE_CAPDRAIN_H
#define CF_CAPTURE_CAPDRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/pcapng.h"

struct cf_capdrain;

/*
 * Whether to keep the packet @pkt (@len bytes from the network header) seen
 * on @ifindex as @pkttype (PACKET_OUTGOING, ...), and which way it went
 * (*@dir). Called from the thread.
 */
typedef bool (*cf_capdrain_keep_fn)(void *arg, const uint8_t *pkt, size_t len, int ifindex,
				    uint8_t pkttype, enum cf_pcapng_dir *dir);

struct cf_capdrain_opts {
	int fd;		       /* AF_PACKET socket (SOCK_DGRAM, SO_TIMESTAMPNS); not owned */
	struct cf_pcapng *out; /* the thread's alone until cf_capdrain_stop(); not owned */
	int iface;	       /* the interface id in @out for every packet */
	size_t ring_blocks;    /* ring of blocks of CF_PKTRING_BLOCK_SIZE; 0: no ring */
	cf_capdrain_keep_fn keep;
	void *keep_arg; /* read by the thread: must not change while it runs */
};

/*
 * cf_capdrain_start() - set up the ring and start the thread. When no ring
 * can be set up, warn and read packets one at a time (the kernel then drops
 * more under load; cf_capdrain_stop() counts them). Return 0 or -errno.
 */
int cf_capdrain_start(const struct cf_capdrain_opts *o, struct cf_capdrain **out);

/*
 * cf_capdrain_wait_room() - from the producer's thread: wait while half
 * the ring or more waits to be written. Returns at once without a ring.
 */
void cf_capdrain_wait_room(struct cf_capdrain *d);

/*
 * cf_capdrain_stop() - write what is still queued (a block the kernel is
 * filling is waited for, a little over CF_PKTRING_RETIRE_MS), flush, stop
 * the thread and free @d (NULL is fine). *@dropped: packets the kernel
 * dropped. Return 0 or the first write error (-errno).
 */
int cf_capdrain_stop(struct cf_capdrain *d, uint64_t *dropped);

#endif
