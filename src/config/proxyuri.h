/* SPDX-License-Identifier: MIT */
/*
 * Upstream proxy URIs: "SCHEME://[USER[:PASSWORD]@]HOST[:PORT][/]" with
 * SCHEME http, https or socks5, HOST a name, an IPv4 literal or a bracketed
 * IPv6 literal, and USER/PASSWORD percent-encoded. Nothing this module writes
 * into an error message or a masked URI ever contains the password.
 * It sits in config (not proxy/) because it fills config's struct cf_proxy
 * for the command line and profiles, and config may not include upward.
 */
#ifndef CF_CONFIG_PROXYURI_H
#define CF_CONFIG_PROXYURI_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* Default ports when the URI names none. */
#define CF_PROXY_HTTP_PORT 80
#define CF_PROXY_HTTPS_PORT 443
#define CF_PROXY_SOCKS5_PORT 1080

/*
 * cf_proxy_parse() - parse a proxy URI into @out (overwritten, not freed first;
 * release it with cf_proxy_free()). On failure @out is left as CF_PROXY_NONE
 * and @err (if @errlen > 0) gets a one-line reason quoting the URI with its
 * password masked. Return 0, -EINVAL or -ENOMEM.
 */
int cf_proxy_parse(const char *uri, struct cf_proxy *out, char *err, size_t errlen);

/* cf_proxy_scheme_name() - "http", "https", "socks5", or "none". */
const char *cf_proxy_scheme_name(enum cf_proxy_scheme s);

/*
 * cf_proxy_format() - write @p back as a URI ("socks5://u:p@[2001:db8::1]:1080",
 * port always explicit, userinfo percent-encoded; the password as "***" when
 * @mask_password). Return the length written, -EINVAL for CF_PROXY_NONE or
 * -ENOSPC when @buf is too small (then @buf holds "" if @len > 0).
 */
int cf_proxy_format(const struct cf_proxy *p, bool mask_password, char *buf, size_t len);

/*
 * cf_proxy_password_span() - where the password of @uri sits, as the parser
 * splits it (between the first ':' of the userinfo and the last '@'): set
 * *@off and *@len and return true, or return false when there is none.
 */
bool cf_proxy_password_span(const char *uri, size_t *off, size_t *len);

#endif
