/* SPDX-License-Identifier: MIT */
/*
 * DNS over TCP between the tree and the resolver, message by message: each
 * length-prefixed query is decided by policy (denied ones are answered
 * empty by the engine and never reach the resolver), each answer of
 * childflow's own resolver teaches the policy's name memory (an answer of a
 * server the tree addressed itself is relayed, never learned). Used instead
 * of the splice relay for every TCP flow to port 53.
 */
#ifndef CF_ENGINE_DNSSTREAM_H
#define CF_ENGINE_DNSSTREAM_H

#include "capture/capview.h"
#include "engine/ctx.h"
#include "engine/flows.h"
#include "engine/relay.h"

struct cf_dnsstream;

/*
 * Most DNS-over-TCP streams the tree may have at once (tcp.c refuses more
 * with a RST). Stub resolvers use TCP only for a truncated answer, one
 * query per connection, and real servers allow fewer clients (dnsmasq 20,
 * unbound 10 per thread), so 64 is far above any honest tree; it bounds
 * a hostile one to 64 x (a maximal frame in and out each way), about 25 MiB
 * in the worst case and BUF_MIN bytes per stream when frames stay partial.
 */
#define CF_DNSSTREAM_MAX 64u
/* Largest DNS-over-TCP frame: the 2-byte length, then up to 65535 bytes of message. */
#define CF_DNSSTREAM_FRAME_MAX (2 + 65535)

/*
 * cf_dnsstream_want() - bytes still missing from the frame whose first @len
 * bytes are at @buf: the rest of the length prefix, else the rest of the
 * message; 0 once the frame is whole. Reading only that much never reads
 * into the next frame, and never past CF_DNSSTREAM_FRAME_MAX in all.
 */
size_t cf_dnsstream_want(const uint8_t *buf, size_t len);

/*
 * cf_dnsstream_got() - count @n bytes just read into the frame at @buf, after
 * the *@len it held (@n at most what cf_dnsstream_want() asked for). When
 * that completes the frame, *@len goes back to 0 for the next one and the
 * frame's length is returned if it carries a message (a frame of length 0
 * is dropped); otherwise 0.
 */
size_t cf_dnsstream_got(const uint8_t *buf, size_t *len, size_t n);

/* Allocate the stream state. Return 0 or -ENOMEM. */
int cf_dnsstream_new(struct cf_dnsstream **out);

/* Free it (NULL is fine). */
void cf_dnsstream_free(struct cf_dnsstream *s);

/*
 * Move whole messages between @child_fd and @up_fd (non-blocking, edge
 * triggered: call on any event of either); what @up_fd sends and receives
 * goes to the egress capture @eg. @up_fd -1: no resolver, the engine answers
 * every query itself (cf_flow_dns_local()). Return CF_RELAY_ACTIVE,
 * CF_RELAY_DONE when both sides finished, or CF_RELAY_RESET.
 */
enum cf_relay_state cf_dnsstream_progress(struct cf_engine *e, struct cf_dnsstream *s,
					  const struct cf_flow *f, int child_fd, int up_fd,
					  struct cf_capview_sock *eg);

#endif
