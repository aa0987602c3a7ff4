/* SPDX-License-Identifier: MIT */
/*
 * Relaying a connection whose upstream side is a TLS session to an https://
 * proxy: bytes must pass through user space (OpenSSL), so this copies
 * through two fixed buffers instead of splicing. Half-close: EOF from the
 * tree becomes TLS close_notify; close_notify from the proxy becomes
 * shutdown(SHUT_WR) towards the tree.
 */
#ifndef CF_ENGINE_TLSRELAY_H
#define CF_ENGINE_TLSRELAY_H

#include <stdint.h>

#include "capture/capview.h"
#include "engine/relay.h"

struct cf_tls;
struct cf_tlsrelay;

/*
 * Relay between @child_fd and @tls (ownership of @tls moves in); the
 * plaintext written to and read from the proxy goes to the egress capture
 * @eg. Return 0 or -ENOMEM.
 */
int cf_tlsrelay_new(int child_fd, struct cf_tls *tls, struct cf_capview_sock *eg,
		    struct cf_tlsrelay **out);

/* --rate-limit: read no more than @up (tree -> proxy) and @down hold (NULL: no limit). */
void cf_tlsrelay_set_limit(struct cf_tlsrelay *r, struct cf_tbucket *up, struct cf_tbucket *down);

/* Bit i: direction i (0 up, 1 down) waited for tokens in the last progress. */
unsigned cf_tlsrelay_throttled(const struct cf_tlsrelay *r);

/* Free it and its TLS session (NULL is fine). */
void cf_tlsrelay_free(struct cf_tlsrelay *r);

/* Move what can be moved now (edge triggered). */
enum cf_relay_state cf_tlsrelay_progress(struct cf_tlsrelay *r);

/* Bytes delivered so far: [0] tree -> upstream, [1] upstream -> tree. */
void cf_tlsrelay_bytes(const struct cf_tlsrelay *r, uint64_t bytes[2]);

/* True once the tree's end was passed on to the proxy (TLS close_notify). */
bool cf_tlsrelay_sent_eof(const struct cf_tlsrelay *r);

#endif
