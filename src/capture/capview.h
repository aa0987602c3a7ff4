/* SPDX-License-Identifier: MIT */
/*
 * The capture views of one run, as a backend's engine drives them
 * (docs/capture.md): the only header of capture/ an engine includes. The
 * views know pcapng, packet sockets and threads; the engine knows none of
 * that, only when its host sockets open, move bytes and close. The views
 * know no engine struct: everything they are told comes in plain types
 * (net/addr.h, file descriptors, bytes).
 *
 * - "child": every packet the tree sent or received, as it saw it, from a
 *   packet socket on the tree's side (a thread of its own writes it:
 *   child.c, capdrain.c, pktring.c).
 * - "egress": synthesized from the engine's host sockets (egress.c), which
 *   the engine reports through the cf_capview_sock hooks below.
 * - "wire-egress": a host packet socket filtered to the 4-tuples of the
 *   same sockets (wire.c); the engine's loop watches its descriptor.
 * - the rootful backend's egress view: what its nft table copies to an
 *   NFLOG group (hostview.c); the engine's loop watches that descriptor.
 *
 * Every hook is a no-op when no view records (a NULL set, a socket no view
 * knows), so the engine calls them unconditionally. The writers and the
 * files stay capture/files.h's: the views write, flush and stop writing.
 */
#ifndef CF_CAPTURE_CAPVIEW_H
#define CF_CAPTURE_CAPVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/addr.h"

struct cf_pcapng;
struct cf_capview;
struct cf_egress;
struct cf_wire;
struct cf_hostview;

/* Directions as the host sees them. */
enum cf_capview_dir {
	CF_CAPVIEW_OUT = 0, /* sent by the host's socket */
	CF_CAPVIEW_IN = 1,  /* received by it */
};

struct cf_capview_opts {
	/*
	 * The child view: a packet socket that sees the tree's packets
	 * (SOCK_DGRAM, SO_TIMESTAMPNS; tun0 and lo of the sandbox, and the
	 * rootful tree's veth), and the tree's addresses (tun0's, and the
	 * veth's or family 0), which tell which way a packet on lo goes and
	 * which SYN the engine re-injected (child.c's filter).
	 */
	struct cf_pcapng *child; /* NULL: the view is off */
	int child_fd;
	struct cf_ip tree4, tree6, link4, link6;
	struct cf_pcapng *egress; /* the synthesized egress view, or NULL */
	struct cf_pcapng *wire;	  /* the wire-egress view, or NULL */
	int wire_fd;		  /* its host packet socket (cf_capture_wire_socket()) */
	struct cf_pcapng *host;	  /* rootful: the egress view from NFLOG, or NULL */
	int host_fd;		  /* its NFLOG socket, bound to the run's group */
};

/* What one view wrote, when it stopped. */
struct cf_capview_stats {
	int err;	  /* the first write error (-errno), or 0 */
	uint64_t packets; /* written */
	uint64_t dropped; /* dropped by the kernel before the view read them */
};

/* One host socket as the egress views know it; embed it in the socket's owner (zeroed). */
struct cf_capview_sock {
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

/*
 * cf_capview_start() - Start the views @o turns on (*@out is NULL when none
 * is). Its descriptors are the views' from this call on, whatever it
 * returns; its writers are borrowed. Return 0 or -errno (nothing started).
 */
int cf_capview_start(const struct cf_capview_opts *o, struct cf_capview **out);

/*
 * cf_capview_poll_fd() - The descriptor the caller's loop must watch for
 * EPOLLIN and report with cf_capview_on_readable(), or -1.
 */
int cf_capview_poll_fd(const struct cf_capview *v);

/* cf_capview_on_readable() - The descriptor of cf_capview_poll_fd() is readable. */
void cf_capview_on_readable(struct cf_capview *v);

/* cf_capview_on_tick() - Periodic: flush, so an interrupted run leaves valid files. */
void cf_capview_on_tick(struct cf_capview *v);

/*
 * cf_capview_wait_room() - Wait while the child view's thread is half a
 * packet ring behind (cheap when it is not). Called before every event the
 * engine handles, so that however fast relays produce traffic, the ring
 * does not overflow: the relays wait for the capture instead.
 */
void cf_capview_wait_room(struct cf_capview *v);

/*
 * cf_capview_stop_child() - Write what the child view still has queued,
 * flush, stop its thread and close its socket; @st gets what it wrote
 * (zero without the view).
 */
void cf_capview_stop_child(struct cf_capview *v, struct cf_capview_stats *st);

/*
 * cf_capview_free() - Stop every view still running (the egress views after
 * the engine closed its sockets: closing still writes FIN and RST), close
 * their sockets and free @v (NULL is fine). @egress gets what the egress or
 * wire-egress view wrote.
 */
void cf_capview_free(struct cf_capview *v, struct cf_capview_stats *egress);

/*
 * cf_capview_sock_open() - The engine's host socket @fd for the tree
 * (@proto as in struct cf_capview_sock) is connected to @peer, or its
 * connect() is in progress: learn its local address, add it to the wire
 * set, and for TCP write the SYN.
 */
void cf_capview_sock_open(struct cf_capview *v, struct cf_capview_sock *s, int fd, uint8_t proto,
			  const struct sockaddr *peer);

/*
 * cf_capview_sock_close() - The socket is being closed (@reset: with
 * SO_LINGER 0). TCP: an established connection not closed yet gets the
 * host's FIN, or RST when @reset. Idempotent.
 */
void cf_capview_sock_close(struct cf_capview_sock *s, bool reset);

/*
 * cf_capview_sock_taps() - Whether the synthesized view wants the socket's
 * bytes (cf_capview_tcp_data_fd()): tap the relay only then.
 */
bool cf_capview_sock_taps(const struct cf_capview_sock *s);

/* cf_capview_tcp_connected() - The connect() completed: the peer's SYN-ACK and the host's ACK. */
void cf_capview_tcp_connected(struct cf_capview_sock *s);

/* cf_capview_tcp_refused() - The connect() was refused: the peer's RST. */
void cf_capview_tcp_refused(struct cf_capview_sock *s);

/* cf_capview_tcp_data() - @len bytes moved in direction @dir, as data segments. */
void cf_capview_tcp_data(struct cf_capview_sock *s, enum cf_capview_dir dir, const void *data,
			 size_t len);

/*
 * cf_capview_tcp_data_fd() - The same for @len bytes waiting in pipe @fd,
 * which are read (all of them, recorded or not). Return 0 or -errno when
 * the pipe held fewer.
 */
int cf_capview_tcp_data_fd(struct cf_capview_sock *s, enum cf_capview_dir dir, int fd, size_t len);

/* cf_capview_tcp_gap() - @len bytes of @dir went by unrecorded: sequence numbers skip them. */
void cf_capview_tcp_gap(struct cf_capview_sock *s, enum cf_capview_dir dir, size_t len);

/* cf_capview_tcp_fin() - FIN in direction @dir (and the other side's ACK of it). */
void cf_capview_tcp_fin(struct cf_capview_sock *s, enum cf_capview_dir dir);

/* cf_capview_tcp_rst() - RST in direction @dir; the connection is over for the view. */
void cf_capview_tcp_rst(struct cf_capview_sock *s, enum cf_capview_dir dir);

/*
 * cf_capview_dgram() - UDP or ICMP echo: one datagram sent (@dir OUT, with
 * TTL / hop limit @ttl) or received, as given to send() / returned by
 * recv(): the UDP payload, or the ICMP message (8-byte echo header and data).
 */
void cf_capview_dgram(struct cf_capview_sock *s, enum cf_capview_dir dir, const void *data,
		      size_t len, uint8_t ttl);

/*
 * cf_capview_icmp_error() - An ICMP error the socket received (IP_RECVERR)
 * from @from (NULL: from the socket's peer), about the datagram whose
 * payload (@sent, as the error queue returns it) it sent.
 */
void cf_capview_icmp_error(struct cf_capview_sock *s, const struct cf_ip *from, uint8_t type,
			   uint8_t code, uint32_t info, const void *sent, size_t sent_len);

#endif
