/* SPDX-License-Identifier: MIT */
/*
 * The ring's layout is the kernel's (Documentation/networking/packet_mmap.rst):
 * blocks owned by the kernel until their status says TP_STATUS_USER, each
 * holding num_pkts packets chained by tp_next_offset. The status word is
 * the only thing shared both ways, so it is read with acquire and written
 * with release ordering.
 */
#include "capture/pktring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

static struct tpacket_block_desc *block(const struct cf_pktring *r, size_t i)
{
	return (struct tpacket_block_desc *)(void *)(r->map + i * r->block_size);
}

static bool user_owned(const struct tpacket_block_desc *b)
{
	return __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

int cf_pktring_open(struct cf_pktring *r, int fd, size_t block_size, size_t nblocks)
{
	int version = TPACKET_V3;
	struct tpacket_req3 req = {
	    .tp_block_size = (unsigned)block_size,
	    .tp_block_nr = (unsigned)nblocks,
	    /* V3 packs packets of any size into a block; the frame is the unit of account. */
	    .tp_frame_size = 2048,
	    .tp_frame_nr = (unsigned)(block_size / 2048 * nblocks),
	    .tp_retire_blk_tov = CF_PKTRING_RETIRE_MS,
	};
	void *map;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (block_size < 2048 || nblocks == 0)
		return -EINVAL;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		return -errno;
	map = mmap(NULL, block_size * nblocks, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	r->fd = fd;
	r->map = map;
	r->block_size = block_size;
	r->nblocks = nblocks;
	return 0;
}

static void read_block(struct tpacket_block_desc *b, cf_pktring_fn fn, void *arg)
{
	uint8_t *p = (uint8_t *)b + b->hdr.bh1.offset_to_first_pkt;

	for (uint32_t i = 0; i < b->hdr.bh1.num_pkts; i++) {
		const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)(void *)p;
		const struct sockaddr_ll *sll =
		    (const struct sockaddr_ll *)(const void *)(p + TPACKET_ALIGN(sizeof(*h)));
		struct cf_pktring_pkt pkt = {
		    .data = p + h->tp_net,
		    .len = h->tp_snaplen,
		    .wire_len = h->tp_len,
		    .ts_ns = (uint64_t)h->tp_sec * 1000000000u + h->tp_nsec,
		    .ifindex = sll->sll_ifindex,
		    .protocol = ntohs(sll->sll_protocol),
		    .hatype = sll->sll_hatype,
		    .pkttype = sll->sll_pkttype,
		};

		fn(arg, &pkt);
		p += h->tp_next_offset;
	}
}

size_t cf_pktring_read(struct cf_pktring *r, size_t max_blocks, cf_pktring_fn fn,
		       cf_pktring_block_fn block_end, void *arg)
{
	size_t n = 0;

	while (r->map && n < max_blocks) {
		struct tpacket_block_desc *b = block(r, r->cur);

		if (!user_owned(b))
			break;
		read_block(b, fn, arg);
		if (block_end)
			block_end(arg);
		__atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		__atomic_store_n(&r->cur, (r->cur + 1) % r->nblocks, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}

bool cf_pktring_backlogged(const struct cf_pktring *r)
{
	size_t cur = __atomic_load_n(&r->cur, __ATOMIC_ACQUIRE);

	/* The kernel fills blocks in order: if the one half a ring ahead is full, all before it
	 * are. */
	return r->map && user_owned(block(r, (cur + r->nblocks / 2) % r->nblocks));
}

void cf_pktring_settle(struct cf_pktring *r)
{
	struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
	const struct tpacket_block_desc *b;

	if (!r->map)
		return;
	b = block(r, r->cur);
	/* Nothing pending, or already handed over: no need to wait. */
	if (user_owned(b) || __atomic_load_n(&b->hdr.bh1.num_pkts, __ATOMIC_ACQUIRE) == 0)
		return;
	(void)poll(&pfd, 1, 2 * CF_PKTRING_RETIRE_MS + 5);
}

static uint64_t ts_of(struct msghdr *msg)
{
	struct timespec ts;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cf_pktring_recv(int fd, uint8_t *buf, size_t cap, struct cf_pktring_pkt *pkt)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} u;
	struct sockaddr_ll sll;
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr msg = {.msg_name = &sll,
			     .msg_namelen = sizeof(sll),
			     .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);

	if (n < 0)
		return -errno;
	*pkt = (struct cf_pktring_pkt){
	    .data = buf,
	    .len = (size_t)n < cap ? (size_t)n : cap,
	    .wire_len = (size_t)n,
	    .ts_ns = ts_of(&msg),
	    .ifindex = sll.sll_ifindex,
	    .protocol = ntohs(sll.sll_protocol),
	    .hatype = sll.sll_hatype,
	    .pkttype = sll.sll_pkttype,
	};
	return 0;
}

void cf_pktring_close(struct cf_pktring *r)
{
	if (r->map)
		munmap(r->map, r->block_size * r->nblocks);
	r->map = NULL;
}
