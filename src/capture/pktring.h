/* SPDX-License-Identifier: MIT */
/*
 * A TPACKET_V3 receive ring on a packet socket: the kernel writes packets
 * into memory shared with the engine, in blocks, instead of queueing them on
 * the socket, whose queue is capped by net.core.rmem_max (a few hundred KiB
 * that a rootless process cannot raise) and overflows at once under bulk
 * traffic. Reading costs no system call per packet either.
 */
#ifndef CF_CAPTURE_PKTRING_H
#define CF_CAPTURE_PKTRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 32 blocks of 1 MiB: any packet (at most 64 KiB on lo and tun0) fits in a block. */
#define CF_PKTRING_BLOCK_SIZE (1u << 20)
#define CF_PKTRING_BLOCKS 32u
/* A block with packets is handed over at the latest after this long. */
#define CF_PKTRING_RETIRE_MS 10u

struct cf_pktring {
	int fd;
	uint8_t *map;
	size_t block_size, nblocks;
	size_t cur; /* the next block to read; atomic, for cf_pktring_backlogged() */
};

struct cf_pktring_pkt {
	const uint8_t *data; /* from the network header (SOCK_DGRAM socket) */
	size_t len;	     /* bytes at @data */
	size_t wire_len;     /* the packet's length; more than @len only if truncated */
	uint64_t ts_ns;	     /* kernel timestamp, CLOCK_REALTIME */
	int ifindex;
	uint16_t protocol; /* ETH_P_IP, ... (host byte order) */
	uint16_t hatype;   /* ARPHRD_LOOPBACK, ... */
	uint8_t pkttype;   /* PACKET_OUTGOING, PACKET_HOST, ... */
};

/*
 * cf_pktring_open() - switch the packet socket @fd to TPACKET_V3 and map a
 * ring of @nblocks blocks of @block_size bytes (a multiple of the page size).
 * @r does not own @fd. Return 0 or -errno (then @r is unusable and @fd is
 * unchanged unless the version was set).
 */
int cf_pktring_open(struct cf_pktring *r, int fd, size_t block_size, size_t nblocks);

typedef void (*cf_pktring_fn)(void *arg, const struct cf_pktring_pkt *pkt);
typedef void (*cf_pktring_block_fn)(void *arg);

/*
 * cf_pktring_read() - call @fn for every packet of up to @max_blocks blocks
 * the kernel handed over, oldest first, and give the blocks back. Before a
 * block goes back, @block_end (if not NULL) is called: whatever still
 * refers to the block's packets must be done with them then.
 * Return the number of blocks read.
 */
size_t cf_pktring_read(struct cf_pktring *r, size_t max_blocks, cf_pktring_fn fn,
		       cf_pktring_block_fn block_end, void *arg);

/*
 * cf_pktring_backlogged() - whether half the ring or more waits to be read.
 * Safe to call from another thread than the one reading.
 */
bool cf_pktring_backlogged(const struct cf_pktring *r);

/*
 * cf_pktring_settle() - when the block the kernel is filling holds packets,
 * wait (at most a little over CF_PKTRING_RETIRE_MS) until it is handed
 * over, so a final cf_pktring_read() sees every packet. For the end of a
 * capture, when no more traffic comes.
 */
void cf_pktring_settle(struct cf_pktring *r);

/*
 * cf_pktring_recv() - without a ring: read one packet of packet socket @fd
 * into @buf (@cap bytes) and describe it in @pkt as a ring would, with the
 * kernel's timestamp (SO_TIMESTAMPNS; the time now if there is none).
 * Return 0 or -errno (-EAGAIN: none is waiting).
 */
int cf_pktring_recv(int fd, uint8_t *buf, size_t cap, struct cf_pktring_pkt *pkt);

/* cf_pktring_close() - unmap the ring (@fd stays open; NULL map is fine). */
void cf_pktring_close(struct cf_pktring *r);

#endif
