/* SPDX-License-Identifier: MIT */
/*
 * Which packets are the tree's, each exactly once: on tun0 everything (what
 * the tree sent to the engine, and what the engine wrote back) except the
 * vetted SYN the engine re-injects, which the tree already sent once; on lo
 * each packet is seen leaving and arriving, so only the outgoing copy is
 * kept. TCP after the SYN travels lo in the sandbox, so it is all there.
 * The rootful tree's veth (eth0) carries what the host's kernel forwards:
 * each packet once, leaving or arriving, all kept.
 * Timestamps are the kernel's (SO_TIMESTAMPNS), in nanoseconds. The
 * packets are written by a thread of their own (capdrain.h).
 */
#include "capture/child.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/capdrain.h"
#include "capture/pcapng.h"
#include "capture/pktring.h"
#include "net/packet.h"

struct cf_child_view {
	struct cf_ip tree[CF_CHILD_VIEW_ADDRS]; /* read by the thread: constant after start */
	struct cf_pcapng *w;
	int fd;
	struct cf_capdrain *drain; /* the thread writing it */
};

/* Whether @ip is one of the tree's own addresses. */
static bool is_tree(const struct cf_child_view *c, const struct cf_ip *ip)
{
	for (size_t i = 0; i < CF_CHILD_VIEW_ADDRS; i++)
		if (c->tree[i].family && cf_ip_equal(ip, &c->tree[i]))
			return true;
	return false;
}

/* The engine's re-injection of a vetted SYN: the tree already sent it once. */
static bool is_reinjected_syn(const struct cf_child_view *c, const uint8_t *buf, size_t len)
{
	struct cf_pkt pkt;

	if (cf_pkt_parse(buf, len, &pkt) < 0 || pkt.proto != IPPROTO_TCP)
		return false;
	return (pkt.tcp_flags & (TH_SYN | TH_ACK)) == TH_SYN && is_tree(c, &pkt.src);
}

/*
 * Whether the packet seen on @ifindex (@pkttype) is one to keep, and which
 * way it went for the tree (*@dir). Runs on the capture thread: @arg is the
 * view, whose addresses do not change after start.
 */
static bool keep(void *arg, const uint8_t *buf, size_t len, int ifindex, uint8_t pkttype,
		 enum cf_pcapng_dir *dir)
{
	const struct cf_child_view *c = arg;
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
			*dir = is_tree(c, &pkt.dst) ? CF_PCAPNG_DIR_IN : CF_PCAPNG_DIR_OUT;
		return true;
	}
	/* tun0: "outgoing" is what the tree sent, the rest is what the engine wrote back. */
	return pkttype == PACKET_OUTGOING || !is_reinjected_syn(c, buf, len);
}

/* Describe the view in @c->w and start its thread. */
static int start_drain(struct cf_child_view *c)
{
	struct cf_capdrain_opts o = {
	    .fd = c->fd,
	    .out = c->w,
	    .ring_blocks = CF_PKTRING_BLOCKS,
	    .keep = keep,
	    .keep_arg = c,
	};
	int r = cf_pcapng_add_interface(c->w, CF_PCAPNG_LINKTYPE_RAW, "sandbox",
					"childflow child view: tun0 and lo of the sandbox, each "
					"packet once");

	if (r < 0)
		return r;
	o.iface = r;
	return cf_capdrain_start(&o, &c->drain);
}

int cf_child_view_start(struct cf_pcapng *w, int fd, const struct cf_ip tree[CF_CHILD_VIEW_ADDRS],
			struct cf_child_view **out)
{
	struct cf_child_view *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	*c = (struct cf_child_view){.w = w, .fd = fd};
	memcpy(c->tree, tree, sizeof(c->tree));
	r = start_drain(c);
	if (r < 0) {
		close(fd);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void cf_child_view_wait_room(struct cf_child_view *c)
{
	if (c)
		cf_capdrain_wait_room(c->drain);
}

void cf_child_view_stop(struct cf_child_view *c, struct cf_capview_stats *st)
{
	*st = (struct cf_capview_stats){0};
	if (!c)
		return;
	st->err = cf_capdrain_stop(c->drain, &st->dropped);
	st->packets = cf_pcapng_packets(c->w); /* the thread's count, now that it ended */
	close(c->fd);
	free(c);
}
