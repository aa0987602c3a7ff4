/* SPDX-License-Identifier: MIT */
/*
 * The egress capture views: the tree's flows as they leave the host, on the
 * engine's own host sockets (docs/capture.md).
 *
 * - "egress" (this file): synthesized by the engine, which owns every host
 *   socket the tree's traffic leaves through. Each socket has a struct
 *   cf_egress_sock next to it; the protocol handlers report what happens on
 *   it (opened, bytes sent and received, FIN, closed) and the view writes
 *   that as IP packets with the socket's real local and remote addresses.
 * - "wire-egress" (wire.c): a packet socket on the host, filtered to the
 *   4-tuples of the same sockets; the open and close calls here keep its set.
 *
 * Every function is a no-op on a socket no view records, so the handlers
 * call them unconditionally.
 */
#ifndef CF_ENGINE_EGRESS_H
#define CF_ENGINE_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "engine/ctx.h"
#include "net/addr.h"

/* Directions as the host sees them. */
enum cf_egress_dir {
	CF_EGRESS_OUT = 0, /* sent by the host's socket */
	CF_EGRESS_IN = 1,  /* received by it */
};

struct cf_egress;
struct cf_wire;

/* One host socket as the egress views know it; embed it in the socket's owner (zeroed). */
struct cf_egress_sock {
	struct cf_egress *eg; /* the synthesized view, or NULL */
	struct cf_wire *wire; /* the wire view's 4-tuple set, or NULL */
	bool open;
	uint8_t proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP or IPPROTO_ICMPV6 */
	struct cf_ip local, remote;
	uint16_t lport, rport; /* ICMP echo sockets: lport is the echo id, rport 0 */
	/* TCP, synthesized: next sequence number of each direction and what was written */
	uint32_t next[2];
	bool established, fin[2], closed;
};

/* Start the synthesized view into @w (borrowed: capture/files.h closes it). Return 0 or -errno. */
int cf_egress_start(struct cf_engine *e, struct cf_pcapng *w);

/* Periodic flush, so an interrupted run leaves a valid file. */
void cf_egress_on_tick(struct cf_engine *e);

/* Stop the view (the writer stays open). Return 0 or its first write error; *packets: written. */
int cf_egress_finish(struct cf_engine *e, uint64_t *packets);

/*
 * The engine's socket @fd for the tree (@proto as in struct cf_egress_sock)
 * is connected to @peer, or its connect() is in progress: learn its local
 * address, add it to the wire set, and for TCP write the SYN.
 */
void cf_egress_sock_open(struct cf_engine *e, struct cf_egress_sock *s, int fd, uint8_t proto,
			 const struct sockaddr *peer);

/*
 * The socket is being closed (@reset: with SO_LINGER 0). TCP: an established
 * connection not closed yet gets the host's FIN, or RST when @reset. Idempotent.
 */
void cf_egress_sock_close(struct cf_egress_sock *s, bool reset);

/* TCP: the connect() completed: the peer's SYN-ACK and the host's ACK. */
void cf_egress_tcp_connected(struct cf_egress_sock *s);

/* TCP: the connect() was refused: the peer's RST. */
void cf_egress_tcp_refused(struct cf_egress_sock *s);

/* TCP: @len bytes moved in direction @dir, as data segments. */
void cf_egress_tcp_data(struct cf_egress_sock *s, enum cf_egress_dir dir, const void *data,
			size_t len);

/*
 * TCP: the same for @len bytes waiting in pipe @fd, which are read (all of
 * them, recorded or not). Return 0 or -errno when the pipe held fewer.
 */
int cf_egress_tcp_data_fd(struct cf_egress_sock *s, enum cf_egress_dir dir, int fd, size_t len);

/* TCP: @len bytes of direction @dir went by unrecorded: sequence numbers skip them. */
void cf_egress_tcp_gap(struct cf_egress_sock *s, enum cf_egress_dir dir, size_t len);

/* TCP: FIN in direction @dir (and the other side's ACK of it). */
void cf_egress_tcp_fin(struct cf_egress_sock *s, enum cf_egress_dir dir);

/* TCP: RST in direction @dir; the connection is over for the view. */
void cf_egress_tcp_rst(struct cf_egress_sock *s, enum cf_egress_dir dir);

/*
 * UDP or ICMP echo: one datagram sent (@dir OUT, with TTL / hop limit @ttl)
 * or received, as given to send() / returned by recv(): the UDP payload, or
 * the ICMP message (8-byte echo header and data).
 */
void cf_egress_dgram(struct cf_egress_sock *s, enum cf_egress_dir dir, const void *data, size_t len,
		     uint8_t ttl);

/*
 * An ICMP error the socket received (IP_RECVERR) from @from, about the
 * datagram whose payload (@sent, as the error queue returns it) it sent.
 */
void cf_egress_icmp_error(struct cf_egress_sock *s, const struct cf_ip *from, uint8_t type,
			  uint8_t code, uint32_t info, const void *sent, size_t sent_len);

#endif
