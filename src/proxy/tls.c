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
 * (X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH). "Insecure" is
 * SSL_VERIFY_NONE, like curl's --proxy-insecure: any certificate is accepted,
 * whatever its issuer, dates or names (the user asked for exactly that; the
 * engine warns once). When a certificate is refused, the failure text names
 * the verify error, the name that was expected and the certificate's subject,
 * so the user can tell a private CA from a wrong host.
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
	bool connected;	   /* handshake done */
	bool broken;	   /* a fatal error happened: no close_notify */
	bool closed;	   /* close_notify sent */
	bool cert_refused; /* the failure was the peer certificate's verification */
	char host[256];	   /* the name or IP literal the certificate must carry */
	char subject[200]; /* of the certificate refused, or "" */
	char err[160];
	char why[640]; /* cert_refused: the verify error, the expected name, the subject */
};

/* @cert's subject, one line. */
static void subject_of(X509 *cert, char *buf, size_t len)
{
	BIO *mem = BIO_new(BIO_s_mem());
	long n;
	char *p;

	snprintf(buf, len, "?");
	if (!mem)
		return;
	/* ONELINE escapes bytes above 0x7f as \XX: nothing a terminal would interpret */
	if (X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE) >= 0) {
		n = BIO_get_mem_data(mem, &p);
		if (n > 0)
			snprintf(buf, len, "%.*s", (int)(n < (long)len ? n : (long)len - 1), p);
	}
	BIO_free(mem);
	/* a subject is the peer's text: no control characters on the user's terminal */
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/*
 * Verification keeps its verdict (@ok); on a refusal the server's own
 * certificate's subject is kept for the message, as OpenSSL does not keep
 * the peer certificate of a failed handshake.
 */
static int remember_subject(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct cf_tls *t = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(store);

	if (!ok && t && leaf && !t->subject[0])
		subject_of(leaf, t->subject, sizeof(t->subject));
	return ok;
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
	if (insecure)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, remember_subject);
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
	snprintf(t->host, sizeof(t->host), "%s", host);
	r = set_peer_name(t->ssl, host);
	if (r < 0)
		goto fail;
	SSL_set_app_data(t->ssl, t);
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

/* Record why the certificate was refused (verify result @v). */
static void describe_cert_error(struct cf_tls *t, long v)
{
	bool name = v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH;

	if (name)
		snprintf(t->err, sizeof(t->err), "proxy TLS: hostname mismatch");
	else
		snprintf(t->err, sizeof(t->err), "proxy TLS: certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
	snprintf(t->why, sizeof(t->why), "%s (X509 error %ld) for %s; certificate subject: %s",
		 name ? "the certificate does not name the proxy"
		      : X509_verify_cert_error_string(v),
		 v, t->host, t->subject[0] ? t->subject : "?");
	t->cert_refused = true;
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
		describe_cert_error(t, v);
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

const char *cf_tls_cert_refused(const struct cf_tls *t)
{
	return t->cert_refused ? t->why : NULL;
}
