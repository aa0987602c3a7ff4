/* SPDX-License-Identifier: MIT */
/*
 * The host's resolv.conf (where the forwarder sends the child's DNS by
 * default) and the one generated for the child. Only "nameserver" lines
 * matter: search domains and options are the child's own business, and its
 * resolv.conf is generated, not copied.
 */
#ifndef CF_DNS_RESOLVCONF_H
#define CF_DNS_RESOLVCONF_H

#include <stddef.h>
#include <sys/types.h>

#include "net/addr.h"

#define CF_RESOLV_MAX 8

/* Largest resolv.conf cf_resolvconf_read() accepts. */
#define CF_RESOLV_FILE_MAX (1024 * 1024)

struct cf_resolvconf {
	struct cf_ip servers[CF_RESOLV_MAX]; /* "nameserver" lines in order, duplicates dropped */
	size_t n;
};

/**
 * cf_resolvconf_parse() - Collect the nameservers of resolv.conf text.
 * @text:	NUL-terminated file contents
 * @out:	filled with up to CF_RESOLV_MAX distinct servers, in file order
 *
 * As glibc reads it: "nameserver" at the start of a line (leading blanks
 * allowed), then blanks and one address; anything after the address, and
 * anything after '#' or ';', is ignored. Addresses must be strict literals
 * (inet_pton: no "127.1", no hex). A v6 address with a %zone is skipped
 * (a link-local server is not reachable from the engine's sockets the same
 * way), as are malformed lines, repeats and servers beyond CF_RESOLV_MAX.
 *
 * Return: 0, or -EINVAL if @text or @out is NULL.
 */
int cf_resolvconf_parse(const char *text, struct cf_resolvconf *out);

/**
 * cf_resolvconf_read() - Read and parse a resolv.conf file (symlinks followed).
 * @path:	the file, usually "/etc/resolv.conf"
 * @out:	as cf_resolvconf_parse(); zeroed on failure
 *
 * Return: 0, -errno from open()/read(), -EFBIG beyond CF_RESOLV_FILE_MAX, or -ENOMEM.
 */
int cf_resolvconf_read(const char *path, struct cf_resolvconf *out);

/**
 * cf_resolvconf_render() - Write the child's resolv.conf.
 * @servers:	resolvers, v4 and v6 (may be NULL if @n is 0)
 * @n:		number of @servers
 * @buf:	output, NUL-terminated on success
 * @cap:	size of @buf
 *
 * One comment line saying childflow generated the file, then one
 * "nameserver ADDR" line per server: IPv4 first, then IPv6, each in the
 * given order. No search or options lines.
 *
 * Return: length written (without the NUL), -ENOSPC, or -EINVAL for an
 * address that is neither AF_INET nor AF_INET6.
 */
ssize_t cf_resolvconf_render(const struct cf_ip *servers, size_t n, char *buf, size_t cap);

#endif
