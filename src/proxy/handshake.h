/* SPDX-License-Identifier: MIT */
/*
 * Upstream proxy client handshakes (HTTP CONNECT, SOCKS5), sans I/O.
 *
 * The engine owns the socket and the event loop; a struct cf_hs only turns
 * "what the proxy sent" into "what to send next" and a final verdict. The
 * caller loops:
 *
 *   WANT_WRITE: send cf_hs_pending_output(), report it with cf_hs_consumed_output()
 *   WANT_READ:  read from the proxy, feed it to cf_hs_input() (n == 0 means EOF)
 *   DONE:       the tunnel is open; input bytes past *used are the origin's
 *   FAILED:     cf_hs_error() says what the tree's connect() should see
 *
 * The handshake never consumes a byte past the end of the proxy's reply, so
 * bytes the origin sends first (SSH, SMTP banners) stay with the caller. See
 * docs/proxy.md for the wire formats and the error mapping.
 */
#ifndef CF_PROXY_HANDSHAKE_H
#define CF_PROXY_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "net/addr.h"

/* Most header bytes (status line included, 1xx interim responses too) read from an HTTP proxy. */
#define CF_HS_HTTP_MAX_REPLY 16384

enum cf_hs_status {
	CF_HS_WANT_WRITE,
	CF_HS_WANT_READ,
	CF_HS_DONE,
	CF_HS_FAILED,
};

/* One handshake; a fixed-size allocation with no pointers into the caller's memory. */
struct cf_hs;

/* What the tunnel should reach. */
struct cf_hs_target {
	const char *name;	/* DNS name the tree resolved, or NULL to ask for the address */
	const struct cf_ip *ip; /* used when name is NULL */
	uint16_t port;
};

/*
 * cf_hs_new() - start a handshake for @proxy (http/https: HTTP CONNECT; socks5:
 * RFC 1928, with RFC 1929 user/password when credentials are set). @user and
 * @password, when non-NULL, each override the URI's; credentials are "set" when
 * either ends up non-NULL (a missing half is sent empty). Return 0, -EINVAL
 * (scheme none, port 0, no ip, a name that is not a plain host name), -ENAMETOOLONG
 * (name over 255 bytes, SOCKS5 user or password over 255 bytes, HTTP credentials
 * too long) or -ENOMEM.
 */
int cf_hs_new(const struct cf_proxy *proxy, const char *user, const char *password,
	      const struct cf_hs_target *target, struct cf_hs **out);

/* cf_hs_free() - wipe (the request may hold credentials) and free @hs; NULL is fine. */
void cf_hs_free(struct cf_hs *hs);

/*
 * cf_hs_pending_output() - point *@data at the bytes to send next and return
 * their count (0 when nothing is due). Valid until the next call on @hs.
 */
size_t cf_hs_pending_output(struct cf_hs *hs, const uint8_t **data);

/* cf_hs_consumed_output() - tell @hs that @n bytes of the pending output were sent. */
void cf_hs_consumed_output(struct cf_hs *hs, size_t n);

/*
 * cf_hs_input() - feed @n bytes read from the proxy (@n == 0: the proxy closed
 * the connection). *@used gets how many bytes the handshake took; *@used < @n
 * only with CF_HS_DONE (the rest is tunnel data, from the origin) or
 * CF_HS_FAILED. Return the new status.
 */
enum cf_hs_status cf_hs_input(struct cf_hs *hs, const uint8_t *data, size_t n, size_t *used);

/* cf_hs_status() - the current status of @hs. */
enum cf_hs_status cf_hs_status(const struct cf_hs *hs);

/*
 * cf_hs_error() - after CF_HS_FAILED: return the positive errno the tree's
 * connect() should see and set *@text to a one-line reason for the flow log
 * ("proxy: HTTP 407 Proxy Authentication Required"); it never holds credentials
 * or bytes chosen by the proxy beyond a status number. Otherwise return 0 and set
 * *@text to NULL.
 */
int cf_hs_error(const struct cf_hs *hs, const char **text);

/*
 * cf_hs_new_udp() - start a SOCKS5 UDP ASSOCIATE (RFC 1928 section 7) with
 * @proxy (socks5 only), credentials as for cf_hs_new(); the request names
 * the zero address of @family and port 0 (the client's UDP port is not known
 * yet). Driven like a CONNECT; after CF_HS_DONE cf_hs_bound() gives the relay
 * address and the control connection must stay open. Return 0, -EINVAL,
 * -ENAMETOOLONG or -ENOMEM.
 */
int cf_hs_new_udp(const struct cf_proxy *proxy, const char *user, const char *password, int family,
		  struct cf_hs **out);

/*
 * cf_hs_bound() - after CF_HS_DONE of a SOCKS5 handshake: the reply's
 * BND.ADDR and BND.PORT (for UDP ASSOCIATE: where to send datagrams; the zero
 * address means the proxy's own). Return 0, -EAFNOSUPPORT (a domain name or
 * not SOCKS5) or -EINVAL (not done).
 */
int cf_hs_bound(const struct cf_hs *hs, struct cf_ip *ip, uint16_t *port);

/* Longest SOCKS5 UDP request header: RSV FRAG ATYP, an IPv6 address, the port. */
#define CF_SOCKS_UDP_HDR_MAX (3 + 1 + 16 + 2)

/*
 * cf_socks_udp_encode() - write the SOCKS5 UDP request header for @ip:@port
 * (FRAG 0) then @len bytes of @payload (which may already sit in @buf: it is
 * moved) into @buf (@cap bytes). Return the datagram's length, -EMSGSIZE or
 * -EAFNOSUPPORT.
 */
ssize_t cf_socks_udp_encode(uint8_t *buf, size_t cap, const struct cf_ip *ip, uint16_t port,
			    const uint8_t *payload, size_t len);

/*
 * cf_socks_udp_decode() - parse the header of a datagram from the UDP relay:
 * its source address @ip:@port and *@hdr_len (the payload follows). Return 0,
 * -EBADMSG (malformed), -EPROTO (a fragment, FRAG != 0: dropped) or
 * -EAFNOSUPPORT (a domain name as source).
 */
int cf_socks_udp_decode(const uint8_t *buf, size_t len, struct cf_ip *ip, uint16_t *port,
			size_t *hdr_len);

#endif
