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
#include "util/log.h"

#define BATCH 256

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

/* Read one packet; return its length, 0 when it is not kept, -EAGAIN when none is left. */
static ssize_t read_one(struct cf_engine *e, uint64_t *ts, enum cf_pcapng_dir *dir)
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

	if (n < 0)
		return -errno;
	*ts = ts_of(&msg);
	*dir = sll.sll_pkttype == PACKET_OUTGOING ? CF_PCAPNG_DIR_OUT : CF_PCAPNG_DIR_IN;
	if (sll.sll_ifindex == 1) {
		/*
		 * lo: keep one copy, the one going out; which way it goes for the
		 * tree follows from its destination (one of the tree's own addresses
		 * means it comes towards the tree).
		 */
		struct cf_pkt pkt;

		if (sll.sll_pkttype != PACKET_OUTGOING)
			return 0;
		if (cf_pkt_parse(e->rxbuf, (size_t)n, &pkt) == 0)
			*dir = cf_ip_equal(&pkt.dst, &e->plan.child4) ||
				       cf_ip_equal(&pkt.dst, &e->plan.child6)
				       ? CF_PCAPNG_DIR_IN
				       : CF_PCAPNG_DIR_OUT;
		return n;
	}
	/* tun0: "outgoing" is what the tree sent, the rest is what the engine wrote back. */
	if (sll.sll_pkttype != PACKET_OUTGOING && is_reinjected_syn(e, e->rxbuf, (size_t)n))
		return 0;
	return n;
}

static void read_batch(struct cf_engine *e, int max)
{
	for (int i = 0; i < max; i++) {
		enum cf_pcapng_dir dir = CF_PCAPNG_DIR_UNKNOWN;
		uint64_t ts = 0;
		ssize_t n = read_one(e, &ts, &dir);
		int r;

		if (n < 0)
			return;
		if (n == 0)
			continue;
		r = cf_pcapng_write_packet(e->capture, e->capture_iface, ts, e->rxbuf, (size_t)n,
					   dir);
		if (r < 0 && !e->capture_err) {
			e->capture_err = r;
			log_error("capture: cannot write the pcapng file: %s (capture stopped)",
				  strerror(-r));
		}
	}
}

void cf_capture_on_readable(struct cf_engine *e)
{
	if (!e->capture_err)
		read_batch(e, BATCH);
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
	if (!e->capture_err)
		read_batch(e, 1 << 20);
	if (getsockopt(e->capture_fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
		*dropped = st.tp_drops;
	close(e->capture_fd);
	e->capture_fd = -1;
	r = cf_pcapng_close(e->capture);
	e->capture = NULL;
	return e->capture_err ? e->capture_err : r;
}
