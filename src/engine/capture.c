/* SPDX-License-Identifier: MIT */
/*
 * Which packets are the tree's, each exactly once: on tun0 everything (what
 * the tree sent to the engine, and what the engine wrote back) except the
 * vetted SYN the engine re-injects, which the tree already sent once; on lo
 * each packet is seen leaving and arriving, so only the outgoing copy is
 * kept. TCP after the SYN travels lo in the sandbox, so it is all there.
 * Timestamps are the kernel's (SO_TIMESTAMPNS), in nanoseconds.
 */
#include "engine/capture.h"

#include <errno.h>
#include <stdint.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "engine/pktring.h"
#include "util/log.h"

#define BATCH 256 /* packets read one by one per readiness event, without a ring */

int cf_capture_start(struct cf_engine *e, int fd, struct cf_pcapng *w)
{
	int r;

	e->capture_fd = fd;
	e->capture = w;
	e->w_capture.kind = CF_W_CAPTURE;
	r = cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "sandbox",
				    "childflow child view: tun0 and lo of the sandbox, each "
				    "packet once");
	if (r < 0)
		return r;
	e->capture_iface = r;
	r = cf_pktring_open(&e->capture_ring, fd, CF_PKTRING_BLOCK_SIZE, CF_PKTRING_BLOCKS);
	if (r < 0)
		log_warn("capture: no packet ring (%s): packets are read one at a time, and more "
			 "are dropped under load (the run reports how many)", strerror(-r));
	return cf_engine_watch(e, fd, EPOLLIN, &e->w_capture);
}

/* The engine's re-injection of a vetted SYN: the tree already sent it once. */
static bool is_reinjected_syn(const struct cf_engine *e, const uint8_t *buf, size_t len)
{
	struct cf_pkt pkt;

	if (cf_pkt_parse(buf, len, &pkt) < 0 || pkt.proto != IPPROTO_TCP)
		return false;
	return (pkt.tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN &&
	       (cf_ip_equal(&pkt.src, &e->plan.child4) || cf_ip_equal(&pkt.src, &e->plan.child6));
}

static uint64_t ts_of(struct msghdr *msg)
{
	struct cmsghdr *c;
	struct timespec ts;

	for (c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Whether the packet seen on @ifindex (@pkttype) is one to keep, and which
 * way it went for the tree (*@dir).
 */
static bool keep(const struct cf_engine *e, const uint8_t *buf, size_t len, int ifindex,
		 uint8_t pkttype, enum cf_pcapng_dir *dir)
{
	struct cf_pkt pkt;

	*dir = pkttype == PACKET_OUTGOING ? CF_PCAPNG_DIR_OUT : CF_PCAPNG_DIR_IN;
	if (ifindex == 1) {
		/*
		 * lo: keep one copy, the one going out (the socket's filter drops
		 * the other already); which way it goes for the tree follows from
		 * its destination (one of the tree's own addresses means it comes
		 * towards the tree).
		 */
		if (pkttype != PACKET_OUTGOING)
			return false;
		if (cf_pkt_parse(buf, len, &pkt) == 0)
			*dir = cf_ip_equal(&pkt.dst, &e->plan.child4) ||
				       cf_ip_equal(&pkt.dst, &e->plan.child6)
				       ? CF_PCAPNG_DIR_IN
				       : CF_PCAPNG_DIR_OUT;
		return true;
	}
	/* tun0: "outgoing" is what the tree sent, the rest is what the engine wrote back. */
	return pkttype == PACKET_OUTGOING || !is_reinjected_syn(e, buf, len);
}

static void write_packet(struct cf_engine *e, uint64_t ts, const uint8_t *buf, size_t len,
			 enum cf_pcapng_dir dir)
{
	int r;

	if (e->capture_err)
		return;
	r = cf_pcapng_write_packet(e->capture, e->capture_iface, ts, buf, len, dir);
	if (r < 0) {
		e->capture_err = r;
		log_error("capture: cannot write the pcapng file: %s (capture stopped)",
			  strerror(-r));
	}
}

/* Without a ring: read one packet; return 1 when one was handled, -EAGAIN when none is left. */
static int read_one(struct cf_engine *e)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} u;
	struct sockaddr_ll sll;
	struct iovec iov = { .iov_base = e->rxbuf, .iov_len = sizeof(e->rxbuf) };
	struct msghdr msg = { .msg_name = &sll, .msg_namelen = sizeof(sll), .msg_iov = &iov,
			      .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	ssize_t n = recvmsg(e->capture_fd, &msg, MSG_DONTWAIT);
	enum cf_pcapng_dir dir;

	if (n < 0)
		return -errno;
	if (keep(e, e->rxbuf, (size_t)n, sll.sll_ifindex, sll.sll_pkttype, &dir))
		write_packet(e, ts_of(&msg), e->rxbuf, (size_t)n, dir);
	return 1;
}

static void on_ring_packet(void *arg, const struct cf_pktring_pkt *pkt)
{
	struct cf_engine *e = arg;
	enum cf_pcapng_dir dir;

	if (keep(e, pkt->data, pkt->len, pkt->ifindex, pkt->pkttype, &dir))
		write_packet(e, pkt->ts_ns, pkt->data, pkt->len, dir);
}

static void read_batch(struct cf_engine *e, size_t max)
{
	if (e->capture_ring.map) {
		cf_pktring_read(&e->capture_ring, max, on_ring_packet, e);
		return;
	}
	for (size_t i = 0; i < BATCH && !e->capture_err; i++)
		if (read_one(e) < 0)
			return;
}

void cf_capture_on_readable(struct cf_engine *e)
{
	if (!e->capture_err)
		read_batch(e, e->capture_ring.map ? SIZE_MAX : 1);
}

void cf_capture_poll(struct cf_engine *e)
{
	if (e->capture_ring.map && !e->capture_err)
		read_batch(e, SIZE_MAX);
}

void cf_capture_on_tick(struct cf_engine *e)
{
	if (e->capture && !e->capture_err)
		(void)cf_pcapng_flush(e->capture);
}

int cf_capture_finish(struct cf_engine *e, uint64_t *dropped)
{
	struct tpacket_stats st;
	socklen_t sl = sizeof(st);
	int r;

	*dropped = 0;
	if (!e->capture)
		return 0;
	cf_pktring_settle(&e->capture_ring);
	if (e->capture_ring.map)
		read_batch(e, SIZE_MAX);
	else
		while (!e->capture_err && read_one(e) > 0)
			;
	if (getsockopt(e->capture_fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
		*dropped = st.tp_drops;
	cf_pktring_close(&e->capture_ring);
	close(e->capture_fd);
	e->capture_fd = -1;
	r = cf_pcapng_close(e->capture);
	e->capture = NULL;
	return e->capture_err ? e->capture_err : r;
}
