/* SPDX-License-Identifier: MIT */
/*
 * TLS to an https:// proxy: a non-blocking OpenSSL client over a socket the
 * engine owns. The certificate is checked against the system trust store
 * (OpenSSL's default paths; SSL_CERT_FILE / SSL_CERT_DIR override them) and the
 * proxy's host name (or IP literal). "Insecure" accepts any certificate (no
 * trust, date or name check), like curl's --proxy-insecure. TLS 1.2 or later.
 * See docs/proxy.md.
 */
#ifndef CF_PROXY_TLS_H
#define CF_PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Settings shared by every TLS connection of one run (wraps one SSL_CTX). */
struct cf_tls_ctx;

/* One TLS client connection. */
struct cf_tls;

enum cf_tls_want {
	CF_TLS_WANT_READ = 1,
	CF_TLS_WANT_WRITE = 2,
};

/*
 * cf_tls_ctx_new() - create the client settings; @insecure accepts any
 * certificate. Return 0, -ENOMEM or -EIO.
 */
int cf_tls_ctx_new(bool insecure, struct cf_tls_ctx **out);

/* cf_tls_ctx_free() - free @c; connections made from it stay usable. NULL is fine. */
void cf_tls_ctx_free(struct cf_tls_ctx *c);

/*
 * cf_tls_new() - a client on connected non-blocking socket @fd (not owned: the
 * caller closes it after cf_tls_free()) expecting a certificate for @host (a name,
 * sent as SNI, or an IP literal, without brackets). Return 0, -EINVAL or -ENOMEM.
 */
int cf_tls_new(const struct cf_tls_ctx *ctx, int fd, const char *host, struct cf_tls **out);

/* cf_tls_free() - free @t without closing its socket. NULL is fine. */
void cf_tls_free(struct cf_tls *t);

/*
 * cf_tls_handshake() - drive the handshake. Return 0 when done, -EAGAIN to be
 * called again once cf_tls_wants() is satisfied, or on failure (see cf_tls_error())
 * -ECONNREFUSED (certificate refused, TLS alert or protocol error), -ECONNRESET
 * (the peer closed) or the socket's -errno.
 */
int cf_tls_handshake(struct cf_tls *t);

/* cf_tls_wants() - after -EAGAIN: CF_TLS_WANT_READ and/or CF_TLS_WANT_WRITE. */
int cf_tls_wants(const struct cf_tls *t);

/*
 * cf_tls_read() - read up to @len decrypted bytes. Return the count, 0 at the
 * peer's close_notify, -EAGAIN (see cf_tls_wants()), -ECONNRESET when the peer
 * closed without close_notify (a truncated stream), or another -errno.
 */
ssize_t cf_tls_read(struct cf_tls *t, void *buf, size_t len);

/*
 * cf_tls_write() - encrypt and send up to @len bytes. Return the count taken
 * (may be short), -EAGAIN (retry later with the same bytes), or -errno.
 */
ssize_t cf_tls_write(struct cf_tls *t, const void *buf, size_t len);

/*
 * cf_tls_shutdown() - send close_notify once, best effort (not after an error).
 * Return 0 when it was sent, -EAGAIN to retry, or -errno.
 */
int cf_tls_shutdown(struct cf_tls *t);

/* cf_tls_error() - "proxy TLS: ..." for the last failure, or NULL when there was none. */
const char *cf_tls_error(const struct cf_tls *t);

/*
 * cf_tls_cert_refused() - after a failed handshake: when the peer certificate
 * was refused, one line saying why (the verify error and its number, the name
 * expected, the certificate's subject); NULL for any other failure.
 */
const char *cf_tls_cert_refused(const struct cf_tls *t);

#endif
