/* SPDX-License-Identifier: MIT */
/*
 * Opening a flow's upstream side through the configured proxy, after the TCP
 * connect to the proxy succeeded: TLS first for https:// proxies, then the
 * HTTP CONNECT or SOCKS5 handshake (proxy/handshake.h). Non-blocking; the
 * engine calls cf_upstream_progress() on every event of the socket.
 */
#ifndef CF_ENGINE_UPSTREAM_H
#define CF_ENGINE_UPSTREAM_H

#include <stdint.h>

#include "capture/capview.h"
#include "engine/ctx.h"
#include "engine/flows.h"

struct cf_upstream;
struct cf_tls;

enum cf_upstream_status {
	CF_UPSTREAM_PENDING,
	CF_UPSTREAM_DONE,
	CF_UPSTREAM_FAILED,
};

/*
 * Start the proxy session for @f over the connected socket @fd, whose bytes
 * (the handshake, and what follows it in the same reads) go to the egress
 * capture @eg. Return 0 or -errno.
 */
int cf_upstream_new(struct cf_engine *e, const struct cf_flow *f, int fd,
		    struct cf_capview_sock *eg, struct cf_upstream **out);

/* Free it, and its TLS session unless taken (NULL is fine). */
void cf_upstream_free(struct cf_upstream *u);

/*
 * cf_upstream_exact() - read nothing past the proxy's reply (http:// and
 * socks5:// only: TLS records cannot be peeked): cf_upstream_leftover() then
 * stays empty and bytes the destination sent first stay in the socket.
 */
void cf_upstream_exact(struct cf_upstream *u);

/* Drive it; *events gets the epoll events to wait for while PENDING. */
enum cf_upstream_status cf_upstream_progress(struct cf_upstream *u, uint32_t *events);

/*
 * cf_upstream_wire_bytes() - the bytes the handshake wrote to and read from
 * the socket, exact reads (cf_upstream_exact()) only: what a tunnel's
 * socket counted before the flow's own bytes.
 */
void cf_upstream_wire_bytes(const struct cf_upstream *u, uint64_t *out, uint64_t *in);

/* After FAILED: the errno the tree's connect() gets and a text for the flow log. */
int cf_upstream_error(const struct cf_upstream *u, const char **text);

/*
 * After FAILED: why the https:// proxy's certificate was refused (one line),
 * or NULL when the failure was something else.
 */
const char *cf_upstream_cert_refused(const struct cf_upstream *u);

/* After DONE: bytes the origin already sent through the tunnel (to deliver first). */
size_t cf_upstream_leftover(const struct cf_upstream *u, const uint8_t **data);

/* After DONE: the TLS session to relay through (https:// proxies), or NULL. Ownership moves. */
struct cf_tls *cf_upstream_take_tls(struct cf_upstream *u);

#endif
