// SPDX-License-Identifier: MIT
/*
 * Non-blocking TLS client for https:// proxies.
 *
 * Theory of operation: one SSL_CTX per run (struct cf_tls_ctx) holds the
 * policy: TLS >= 1.2, peer verification against OpenSSL's default trust paths,
 * no renegotiation, small idle buffers (SSL_MODE_RELEASE_BUFFERS: thousands of
 * proxied flows may be open). Each connection is an SSL on the engine's socket
 * through a plain socket BIO (the socket is not owned; childflow ignores SIGPIPE,
 * so a write to a closed socket is an EPIPE, not a signal).
 *
 * The host name (or IP literal) check is set per connection on the SSL's
 * X509_VERIFY_PARAM, so OpenSSL reports a mismatch as an ordinary verify error
 * (X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH). "Insecure" is a verify
 * callback that lets through the trust errors listed in trust_error() and
 * nothing else: the name check runs after chain building and its error reaches
 * the same callback, which refuses it.
 *
 * Errors: every SSL call starts with an empty OpenSSL error queue and leaves it
 * empty; the first failure is kept as text in the struct ("proxy TLS: ...") and
 * marks the connection broken, after which close_notify is not attempted.
 */
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct cf_tls_ctx {
	SSL_CTX *ctx;
};

struct cf_tls {
	SSL *ssl;
	int wants;
	bool connected; /* handshake done */
	bool broken;	/* a fatal error happened: no close_notify */
	bool closed;	/* close_notify sent */
	char err[160];
};

/* Certificate errors that only say "not trusted here"; never a name mismatch. */
static bool trust_error(int err)
{
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return true;
	default:
		return false;
	}
}

static int insecure_verify(int ok, X509_STORE_CTX *store)
{
	return ok || trust_error(X509_STORE_CTX_get_error(store));
}

int cf_tls_ctx_new(bool insecure, struct cf_tls_ctx **out)
{
	struct cf_tls_ctx *c;
	SSL_CTX *ctx;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		free(c);
		ERR_clear_error();
		return -ENOMEM;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		SSL_CTX_free(ctx);
		free(c);
		ERR_clear_error();
		return -EIO;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, insecure ? insecure_verify : NULL);
	c->ctx = ctx;
	*out = c;
	return 0;
}

void cf_tls_ctx_free(struct cf_tls_ctx *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

/* Expect @host in the peer certificate: an IP literal as an iPAddress, else a DNS name. */
static int set_peer_name(SSL *ssl, const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -EINVAL;
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)
		return -EINVAL;
	return 0;
}

int cf_tls_new(const struct cf_tls_ctx *ctx, int fd, const char *host, struct cf_tls **out)
{
	struct cf_tls *t;
	int r;

	*out = NULL;
	if (!ctx || fd < 0 || !host || !*host)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ssl = SSL_new(ctx->ctx);
	if (!t->ssl) {
		r = -ENOMEM;
		goto fail;
	}
	r = set_peer_name(t->ssl, host);
	if (r < 0)
		goto fail;
	if (SSL_set_fd(t->ssl, fd) != 1) {
		r = -ENOMEM;
		goto fail;
	}
	SSL_set_connect_state(t->ssl);
	*out = t;
	return 0;
fail:
	ERR_clear_error();
	cf_tls_free(t);
	return r;
}

void cf_tls_free(struct cf_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* Text for an SSL_ERROR_SSL failure; the return value the caller should see. */
static int describe_ssl_error(struct cf_tls *t)
{
	unsigned long e = ERR_peek_error();
	long v = SSL_get_verify_result(t->ssl);
	const char *reason;

	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		snprintf(t->err, sizeof(t->err), "proxy TLS: connection closed by the proxy");
		return -ECONNRESET;
	}
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
	    v != X509_V_OK) {
		if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
			snprintf(t->err, sizeof(t->err), "proxy TLS: hostname mismatch");
		else
			snprintf(t->err, sizeof(t->err), "proxy TLS: certificate verify failed: %s",
				 X509_verify_cert_error_string(v));
		return -ECONNREFUSED;
	}
	reason = e ? ERR_reason_error_string(e) : NULL;
	snprintf(t->err, sizeof(t->err), "proxy TLS: %s", reason ? reason : "protocol error");
	return -ECONNREFUSED;
}

/*
 * Turn a failed SSL call's result into -EAGAIN (recording what it waits for) or a
 * recorded failure. @saved_errno is errno right after the call.
 */
static int ssl_failure(struct cf_tls *t, int ret, int saved_errno)
{
	int r;

	switch (SSL_get_error(t->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		t->wants = CF_TLS_WANT_READ;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		t->wants = CF_TLS_WANT_WRITE;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(t->err, sizeof(t->err), "proxy TLS: connection closed by the proxy");
		r = -ECONNRESET;
		break;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() != 0) {
			r = describe_ssl_error(t);
		} else if (saved_errno == 0) {
			snprintf(t->err, sizeof(t->err),
				 "proxy TLS: connection closed by the proxy");
			r = -ECONNRESET;
		} else {
			snprintf(t->err, sizeof(t->err), "proxy TLS: %s", strerror(saved_errno));
			r = -saved_errno;
		}
		break;
	default:
		r = describe_ssl_error(t);
		break;
	}
	t->broken = true;
	t->wants = 0;
	ERR_clear_error();
	return r;
}

int cf_tls_handshake(struct cf_tls *t)
{
	int ret;

	if (t->broken)
		return -ECONNREFUSED;
	if (t->connected)
		return 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(t->ssl);
	if (ret == 1) {
		t->connected = true;
		t->wants = 0;
		return 0;
	}
	return ssl_failure(t, ret, errno);
}

int cf_tls_wants(const struct cf_tls *t)
{
	return t->wants;
}

ssize_t cf_tls_read(struct cf_tls *t, void *buf, size_t len)
{
	size_t got = 0;
	int ret;

	if (t->broken)
		return -EPIPE;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	ret = SSL_read_ex(t->ssl, buf, len, &got);
	if (ret == 1) {
		t->wants = 0;
		return (ssize_t)got;
	}
	if (SSL_get_error(t->ssl, ret) == SSL_ERROR_ZERO_RETURN) {
		t->wants = 0;
		return 0;
	}
	return ssl_failure(t, ret, errno);
}

ssize_t cf_tls_write(struct cf_tls *t, const void *buf, size_t len)
{
	size_t done = 0;
	int ret;

	if (t->broken || t->closed)
		return -EPIPE;
	if (len == 0)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	ret = SSL_write_ex(t->ssl, buf, len, &done);
	if (ret == 1) {
		t->wants = 0;
		return (ssize_t)done;
	}
	return ssl_failure(t, ret, errno);
}

int cf_tls_shutdown(struct cf_tls *t)
{
	int ret;

	if (t->closed)
		return 0;
	if (t->broken || !t->connected)
		return -ENOTCONN;
	ERR_clear_error();
	errno = 0;
	ret = SSL_shutdown(t->ssl);
	if (ret >= 0) {
		t->closed = true;
		return 0;
	}
	return ssl_failure(t, ret, errno);
}

const char *cf_tls_error(const struct cf_tls *t)
{
	return t->err[0] ? t->err : NULL;
}
