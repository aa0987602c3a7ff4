/* SPDX-License-Identifier: MIT */
/*
 * Theory of operation: the synthesized "egress" view.
 *
 * The engine owns every host socket the tree's traffic leaves through, so
 * it knows each one's real 4-tuple (getsockname/getpeername) and every byte
 * that passes it. This file turns those events into the packets a capture
 * on the host would show, with LINKTYPE_RAW IPv4/IPv6 and correct checksums:
 *
 *   TCP   SYN when connect() starts; SYN-ACK + ACK when it completes (RST
 *         from the peer when refused); data segments as the relay moves the
 *         bytes, sequence numbers counted per direction, each segment
 *         acknowledging everything recorded the other way, at most one IP
 *         packet (65,495 / 65,515 bytes) each, then the receiver's ACK once
 *         per batch the engine moved; FIN (with the other side's ACK) for
 *         each direction's end; RST when the engine aborts the socket or the
 *         peer resets it. Initial sequence numbers are made up; options only
 *         on the SYNs (window scale 7).
 *   UDP   one datagram per send() / recv(), unfragmented.
 *   ICMP  echo requests and replies with the socket's echo id; errors the
 *         socket received, quoting the datagram as the host sent it.
 *
 * Timestamps are the moment the engine recorded the event. The data are
 * exact; the segmentation, timing and TCP bookkeeping are the engine's.
 */
#include "capture/egress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capture/pcapng.h"
#include "net/packet.h"
#include "util/log.h"

#define SYN_WINDOW 65535
#define WINDOW_SCALE 7
/* Scaled by 2^7: about 8 MiB, so big synthesized segments never look like a full window. */
#define DATA_WINDOW 65535
#define EGRESS_TTL 64
#define PKT_CAP (CF_PKT_IP6_HDR_LEN + CF_PKT_TCP_HDR_LEN + CF_PKT_TCP_OPTS_MAX + 65536)

struct cf_egress {
	struct cf_pcapng *w;
	int iface;
	int err;
	uint32_t rng; /* xorshift32 state for initial sequence numbers */
	uint16_t ip_id;
	uint8_t pkt[PKT_CAP];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cf_egress_start(struct cf_pcapng *w, struct cf_egress **out)
{
	struct cf_egress *eg = calloc(1, sizeof(*eg));
	int r;

	*out = NULL;
	if (!eg)
		return -ENOMEM;
	eg->w = w;
	eg->rng = (uint32_t)now_ns() | 1u;
	r = cf_pcapng_add_interface(w, CF_PCAPNG_LINKTYPE_RAW, "egress",
				    "childflow egress view: the tree's flows on childflow's "
				    "host sockets (host addresses and ports), synthesized by "
				    "the engine");
	if (r < 0) {
		free(eg);
		return r;
	}
	eg->iface = r;
	*out = eg;
	return 0;
}

void cf_egress_flush(struct cf_egress *eg)
{
	if (eg && !eg->err)
		(void)cf_pcapng_flush(eg->w);
}

void cf_egress_stop(struct cf_egress *eg, struct cf_capview_stats *st)
{
	*st = (struct cf_capview_stats){0};
	if (!eg)
		return;
	st->packets = cf_pcapng_packets(eg->w);
	st->err = eg->err;
	free(eg);
}

/*
 * Write the @len bytes of packet built at @pkt: eg->pkt, or room in the
 * writer's buffer (cf_pcapng_packet_room()), which spares a copy of bulk data.
 */
static void emit_at(struct cf_egress *eg, enum cf_capview_dir dir, const uint8_t *pkt, ssize_t len)
{
	enum cf_pcapng_dir d = dir == CF_CAPVIEW_OUT ? CF_PCAPNG_DIR_OUT : CF_PCAPNG_DIR_IN;
	int r;

	if (len <= 0 || eg->err)
		return;
	if (pkt == eg->pkt)
		r = cf_pcapng_write_packet(eg->w, eg->iface, now_ns(), pkt, (size_t)len, d);
	else
		r = cf_pcapng_packet_commit(eg->w, eg->iface, now_ns(), (size_t)len, d);
	if (r < 0) {
		eg->err = r;
		log_error("capture: cannot write the egress pcapng file: %s (capture stopped)",
			  strerror(-r));
	}
}

/* A socket the synthesized view records, with a writer that still works. */
static struct cf_egress *recording(const struct cf_capview_sock *s)
{
	return s->open && s->eg && !s->eg->err ? s->eg : NULL;
}

static void ends(const struct cf_capview_sock *s, enum cf_capview_dir dir, const struct cf_ip **src,
		 uint16_t *sport, const struct cf_ip **dst, uint16_t *dport)
{
	bool out = dir == CF_CAPVIEW_OUT;

	*src = out ? &s->local : &s->remote;
	*dst = out ? &s->remote : &s->local;
	*sport = out ? s->lport : s->rport;
	*dport = out ? s->rport : s->lport;
}

/* ---- TCP segments ---- */

static uint32_t next_isn(struct cf_egress *eg)
{
	uint32_t x = eg->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	eg->rng = x;
	return x;
}

/* The SYN / SYN-ACK options: NOP, window scale. */
static const uint8_t syn_opts[4] = {1, 3, 3, WINDOW_SCALE};

static void emit(struct cf_egress *eg, enum cf_capview_dir dir, ssize_t len)
{
	emit_at(eg, dir, eg->pkt, len);
}

/* A TCP segment built at @pkt (@cap bytes; its payload may already be in place). */
static void tcp_emit_at(struct cf_capview_sock *s, enum cf_capview_dir dir, uint8_t flags,
			uint32_t seq, const uint8_t *data, size_t len, uint8_t *pkt, size_t cap)
{
	struct cf_egress *eg = s->eg;
	struct cf_pkt_tcp_seg seg = {
	    .seq = seq,
	    .ack = (flags & TH_ACK) ? s->next[1 - dir] : 0,
	    .flags = flags,
	    .window = (flags & TH_RST)	 ? 0
		      : (flags & TH_SYN) ? SYN_WINDOW
					 : DATA_WINDOW,
	    .opts = (flags & TH_SYN) ? syn_opts : NULL,
	    .opts_len = (flags & TH_SYN) ? sizeof(syn_opts) : 0,
	    .payload = data,
	    .len = len,
	    .ttl = EGRESS_TTL,
	    .ip_id = eg->ip_id++,
	};

	ends(s, dir, &seg.src, &seg.sport, &seg.dst, &seg.dport);
	emit_at(eg, dir, pkt, cf_pkt_build_tcp(pkt, cap, &seg));
}

static void tcp_emit(struct cf_capview_sock *s, enum cf_capview_dir dir, uint8_t flags,
		     uint32_t seq, const uint8_t *data, size_t len)
{
	tcp_emit_at(s, dir, flags, seq, data, len, s->eg->pkt, sizeof(s->eg->pkt));
}

void cf_egress_sock_opened(struct cf_capview_sock *s)
{
	uint32_t isn;

	if (s->proto != IPPROTO_TCP || !recording(s))
		return;
	isn = next_isn(s->eg);
	tcp_emit(s, CF_CAPVIEW_OUT, TH_SYN, isn, NULL, 0);
	s->next[CF_CAPVIEW_OUT] = isn + 1;
}

/* ---- TCP ---- */

void cf_capview_tcp_connected(struct cf_capview_sock *s)
{
	uint32_t isn;

	if (!recording(s) || s->proto != IPPROTO_TCP || s->established)
		return;
	isn = next_isn(s->eg);
	s->next[CF_CAPVIEW_IN] = isn + 1;
	tcp_emit(s, CF_CAPVIEW_IN, TH_SYN | TH_ACK, isn, NULL, 0);
	tcp_emit(s, CF_CAPVIEW_OUT, TH_ACK, s->next[CF_CAPVIEW_OUT], NULL, 0);
	s->established = true;
}

void cf_capview_tcp_refused(struct cf_capview_sock *s)
{
	if (!recording(s) || s->proto != IPPROTO_TCP || s->established)
		return;
	s->next[CF_CAPVIEW_IN] = 0;
	tcp_emit(s, CF_CAPVIEW_IN, TH_RST | TH_ACK, 0, NULL, 0);
	s->closed = true;
}

static bool tcp_live(const struct cf_capview_sock *s)
{
	return recording(s) && s->proto == IPPROTO_TCP && s->established && !s->closed;
}

/* Largest TCP payload of one synthesized segment (one IP packet, no options). */
static size_t seg_max(const struct cf_capview_sock *s)
{
	return s->local.family == AF_INET ? 65535 - CF_PKT_IP4_HDR_LEN - CF_PKT_TCP_HDR_LEN
					  : 65535 - CF_PKT_TCP_HDR_LEN;
}

/* One data segment, built at @pkt (@cap bytes), whose bytes may already be in place there. */
static void tcp_segment_at(struct cf_capview_sock *s, enum cf_capview_dir dir, const uint8_t *data,
			   size_t len, bool last, uint8_t *pkt, size_t cap)
{
	uint32_t seq = s->next[dir];

	s->next[dir] += (uint32_t)len;
	/* The ack field is the other direction's next number: set after this one moved on. */
	tcp_emit_at(s, dir, (uint8_t)(TH_ACK | (last ? TH_PUSH : 0)), seq, data, len, pkt, cap);
}

static void tcp_segment(struct cf_capview_sock *s, enum cf_capview_dir dir, const uint8_t *data,
			size_t len, bool last)
{
	tcp_segment_at(s, dir, data, len, last, s->eg->pkt, sizeof(s->eg->pkt));
}

/* The receiver's ACK of everything so far (bytes in flight stay within the window). */
static void tcp_ack_from_other(struct cf_capview_sock *s, enum cf_capview_dir dir)
{
	enum cf_capview_dir other = dir == CF_CAPVIEW_OUT ? CF_CAPVIEW_IN : CF_CAPVIEW_OUT;

	tcp_emit(s, other, TH_ACK, s->next[other], NULL, 0);
}

void cf_capview_tcp_data(struct cf_capview_sock *s, enum cf_capview_dir dir, const void *data,
			 size_t len)
{
	const uint8_t *p = data;

	if (!tcp_live(s) || len == 0)
		return;
	while (len > 0) {
		size_t n = len < seg_max(s) ? len : seg_max(s);

		tcp_segment(s, dir, p, n, n == len);
		p += n;
		len -= n;
	}
	tcp_ack_from_other(s, dir);
}

int cf_capview_tcp_data_fd(struct cf_capview_sock *s, enum cf_capview_dir dir, int fd, size_t len)
{
	struct cf_egress *eg = s->eg;
	bool live = tcp_live(s);
	size_t off = s->local.family == AF_INET ? CF_PKT_TCP4_PAYLOAD_OFF : CF_PKT_TCP6_PAYLOAD_OFF;

	if (!eg)
		return -EINVAL; /* only a recorded socket has a tap */
	while (len > 0) {
		size_t want = len < seg_max(s) ? len : seg_max(s);
		/* Read in place, straight into the file's buffer when there is room. */
		uint8_t *room = live ? cf_pcapng_packet_room(eg->w, off + want) : NULL;
		uint8_t *pkt = room ? room : eg->pkt;
		size_t cap = room ? off + want : sizeof(eg->pkt);
		ssize_t n;

		/* Read even when not recorded any more (write error, closed): empty the tap. */
		n = read(fd, pkt + off, want);
		if (n <= 0) {
			cf_capview_tcp_gap(s, dir, len);
			return n < 0 ? -errno : -EIO;
		}
		len -= (size_t)n;
		if (live)
			tcp_segment_at(s, dir, pkt + off, (size_t)n, len == 0, pkt, cap);
	}
	if (live && tcp_live(s))
		tcp_ack_from_other(s, dir);
	return 0;
}

void cf_capview_tcp_gap(struct cf_capview_sock *s, enum cf_capview_dir dir, size_t len)
{
	if (tcp_live(s))
		s->next[dir] += (uint32_t)len;
}

void cf_capview_tcp_fin(struct cf_capview_sock *s, enum cf_capview_dir dir)
{
	enum cf_capview_dir other = dir == CF_CAPVIEW_OUT ? CF_CAPVIEW_IN : CF_CAPVIEW_OUT;

	if (!tcp_live(s) || s->fin[dir])
		return;
	s->fin[dir] = true;
	s->next[dir]++;
	tcp_emit(s, dir, TH_FIN | TH_ACK, s->next[dir] - 1, NULL, 0);
	tcp_emit(s, other, TH_ACK, s->next[other], NULL, 0);
}

void cf_capview_tcp_rst(struct cf_capview_sock *s, enum cf_capview_dir dir)
{
	if (!tcp_live(s))
		return;
	tcp_emit(s, dir, TH_RST | TH_ACK, s->next[dir], NULL, 0);
	s->closed = true;
}

/* ---- datagrams ---- */

/* Build the datagram @s sent or received into eg->pkt. Return its length or -errno. */
static ssize_t build_dgram(struct cf_capview_sock *s, enum cf_capview_dir dir, const uint8_t *p,
			   size_t len, uint8_t ttl)
{
	struct cf_egress *eg = s->eg;
	const struct cf_ip *src, *dst;
	uint16_t sport, dport;

	ends(s, dir, &src, &sport, &dst, &dport);
	if (s->proto == IPPROTO_UDP)
		return cf_pkt_build_udp(eg->pkt, sizeof(eg->pkt), src, sport, dst, dport, p, len,
					ttl, eg->ip_id++);
	if (len < CF_PKT_ICMP_HDR_LEN)
		return -EINVAL;
	return cf_pkt_build_icmp_echo(eg->pkt, sizeof(eg->pkt), src, dst, dir == CF_CAPVIEW_IN,
				      s->lport, (uint16_t)(p[6] << 8 | p[7]),
				      p + CF_PKT_ICMP_HDR_LEN, len - CF_PKT_ICMP_HDR_LEN, ttl);
}

void cf_capview_dgram(struct cf_capview_sock *s, enum cf_capview_dir dir, const void *data,
		      size_t len, uint8_t ttl)
{
	if (!recording(s) || s->proto == IPPROTO_TCP)
		return;
	emit(s->eg, dir, build_dgram(s, dir, data, len, ttl));
}

void cf_capview_icmp_error(struct cf_capview_sock *s, const struct cf_ip *from, uint8_t type,
			   uint8_t code, uint32_t info, const void *sent, size_t sent_len)
{
	struct cf_egress *eg = s->eg;
	struct cf_pkt orig;
	ssize_t n;

	if (!from)
		from = &s->remote;
	if (!recording(s) || s->proto == IPPROTO_TCP || from->family != s->local.family)
		return;
	/* The datagram as it left (the quote's TTL is not known: 1 is what expired). */
	n = build_dgram(s, CF_CAPVIEW_OUT, sent, sent_len, 1);
	if (n <= 0 || cf_pkt_parse(eg->pkt, (size_t)n, &orig) < 0)
		return;
	/* Built in place: the quote is moved before the headers are written. */
	emit(eg, CF_CAPVIEW_IN,
	     cf_pkt_build_icmp_error(eg->pkt, sizeof(eg->pkt), &orig, from, type, code, info));
}
