/* SPDX-License-Identifier: MIT */
/*
 * Which packets are the tree's, each exactly once: on tun0 everything (what
 * the tree sent to the engine, and what the engine wrote back) except the
 * vetted SYN the engine re-injects, which the tree already sent once; on lo
 * each packet is seen leaving and arriving, so only the outgoing copy is
 * kept. TCP after the SYN travels lo in the sandbox, so it is all there.
 * Timestamps are the kernel's (SO_TIMESTAMPNS), in nanoseconds. The
 * packets are written by a thread of their own (capdrain.h).
 */
#include "engine/capture.h"

#include <linux/if_packet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "engine/capdrain.h"
#include "engine/pktring.h"
#include "net/packet.h"

/* The engine's re-injection of a vetted SYN: the tree already sent it once. */
static bool is_reinjected_syn(const struct cf_plan *plan, const uint8_t *buf, size_t len)
{
	struct cf_pkt pkt;

	if (cf_pkt_parse(buf, len, &pkt) < 0 || pkt.proto != IPPROTO_TCP)
		return false;
	return (pkt.tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN &&
	       (cf_ip_equal(&pkt.src, &plan->child4) || cf_ip_equal(&pkt.src, &plan->child6));
}

/*
 * Whether the packet seen on @ifindex (@pkttype) is one to keep, and which
 * way it went for the tree (*@dir). Runs on the capture thread: @arg is the
 * engine's plan, which does not change after start.
 */
static bool keep(void *arg, const uint8_t *buf, size_t len, int ifindex, uint8_t pkttype,
		 enum cf_pcapng_dir *dir)
{
	const struct cf_plan *plan = arg;
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
			*dir = cf_ip_equal(&pkt.dst, &plan->child4) ||
				       cf_ip_equal(&pkt.dst, &plan->child6)
				   ? CF_PCAPNG_DIR_IN
				   : CF_PCAPNG_DIR_OUT;
		return true;
	}
	/* tun0: "outgoing" is what the tree sent, the rest is what the engine wrote back. */
	return pkttype == PACKET_OUTGOING || !is_reinjected_syn(plan, buf, len);
}

int cf_capture_start(struct cf_engine *e, int fd, struct cf_pcapng *w)
{
	struct cf_capdrain_opts o = {
	    .fd = fd,
	    .out = w,
	    .ring_blocks = CF_PKTRING_BLOCKS,
	    .keep = keep,
	    .keep_arg = &e->plan,
	};
	int r;

	e->capture_fd = fd;
	e->capture = w;
	r = cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "sandbox",
				    "childflow child view: tun0 and lo of the sandbox, each "
				    "packet once");
	if (r < 0)
		return r;
	o.iface = r;
	return cf_capdrain_start(&o, &e->capture_drain);
}

void cf_capture_wait_room(struct cf_engine *e)
{
	cf_capdrain_wait_room(e->capture_drain);
}

int cf_capture_finish(struct cf_engine *e, uint64_t *dropped, uint64_t *packets)
{
	int err;

	*dropped = *packets = 0;
	if (!e->capture)
		return 0;
	err = cf_capdrain_stop(e->capture_drain, dropped);
	e->capture_drain = NULL;
	*packets = cf_pcapng_packets(e->capture); /* the thread's count, now that it ended */
	if (e->capture_fd >= 0)
		close(e->capture_fd);
	e->capture_fd = -1;
	e->capture = NULL;
	return err;
}
