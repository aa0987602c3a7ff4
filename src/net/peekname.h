/* SPDX-License-Identifier: MIT */
/*
 * The name a TCP client's first bytes carry: the server_name (SNI) of a TLS
 * ClientHello, or the Host header of an HTTP/1 request. The engine peeks at
 * what the tree sends on a new connection and checks that name against the
 * domain rules before relaying a byte (docs/policy.md, "Names in the first
 * bytes").
 *
 * Pure and without allocation: @buf is whatever has arrived so far, and the
 * answer says whether more bytes could change it. Hostile input: every
 * length is checked against what is there.
 */
#ifndef CF_NET_PEEKNAME_H
#define CF_NET_PEEKNAME_H

#include <stddef.h>
#include <stdint.h>

/* What the first bytes are, as far as they go. */
enum cf_peek {
	CF_PEEK_NONE, /* neither TLS nor HTTP/1, or one without a name: nothing to check */
	CF_PEEK_MORE, /* a beginning of either, still without its name: wait for more */
	CF_PEEK_NAME, /* a name was found */
};

/* Where the name was found. */
enum cf_peek_kind {
	CF_PEEK_TLS_SNI,
	CF_PEEK_HTTP_HOST,
};

/* Room for a name: 255 bytes and its NUL (longer names are reported as NONE). */
#define CF_PEEK_NAME_MAX 256

/* Bytes worth waiting for: a ClientHello or request head longer than this is NONE. */
#define CF_PEEK_WINDOW 16384

/*
 * cf_peek_name() - Look for the name in the first @len bytes a client sent.
 * TLS: handshake records (content type 22) carrying a ClientHello, which
 * may span several records; the first host_name of its server_name
 * extension. HTTP/1: a request line "METHOD TARGET HTTP/1.x" and its first
 * Host header, up to the blank line that ends the head; the port is cut
 * off. The name is copied into @name as it was sent (not normalised; bytes
 * outside printable ASCII as '?'); an
 * IP literal (dotted IPv4 or a bracketed IPv6 Host) is not a name: NONE.
 * At @len >= CF_PEEK_WINDOW the answer is never MORE.
 * Return: CF_PEEK_NAME with @name and *@kind set, CF_PEEK_MORE or CF_PEEK_NONE.
 */
enum cf_peek cf_peek_name(const uint8_t *buf, size_t len, char name[CF_PEEK_NAME_MAX],
			  enum cf_peek_kind *kind);

/* cf_peek_kind_name() - "TLS SNI" or "HTTP Host", for messages. */
const char *cf_peek_kind_name(enum cf_peek_kind kind);

#endif
